"""Sidecars: files written beside the audio.

    NAME.json           the timeline: every event, in seconds
    NAME.vtt, NAME.srt  captions, one cue per spoken phrase (a long phrase over several cues)
    NAME.chapters.json  Podcasting 2.0 chapters

Text from a script reaches these files without control characters (see
`publish.clean_text`); WebVTT cue text escapes `&`, `<` and `>`, and no cue text holds
the `-->` that would start a new cue.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guided_audio.publish import clean_text
from guided_audio.timeline import Event, Timeline

VTT_LINE, VTT_LINES = 65, 2  # WebVTT: lines of at most 65 characters
SRT_LINE, SRT_LINES = 32, 2  # SRT convention: at most 2 lines of 32 characters


@dataclass(frozen=True)
class Caption:
    start: float  # seconds
    end: float
    lines: tuple[str, ...]


def timeline_json(timeline: Timeline, info: dict[str, Any]) -> str:
    """The timeline as JSON: duration, sample rate and every event in seconds."""
    sr = timeline.sample_rate

    def event(e: Event) -> dict[str, Any]:
        row: dict[str, Any] = {"kind": e.kind, "start": round(e.start / sr, 3), "end": round(e.end / sr, 3)}
        if e.kind in ("speech", "line", "section", "part"):
            row["text"] = clean_text(e.text)
        if e.name:
            row["name"] = e.name
        if e.kind in ("speech", "line"):
            row["rate"] = e.rate
            row["voice"] = e.voice
        if e.kind == "guide":
            row["levels"] = list(e.levels)
        return row

    doc = {
        **_clean_values(info),
        "duration": round(timeline.seconds, 3),
        "sample_rate": sr,
        "warnings": list(timeline.warnings),
        "events": [event(e) for e in timeline.events],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def _clean_values(value: Any) -> Any:
    """Strings in nested dicts and lists without control characters."""
    if isinstance(value, str):
        return clean_text(value, newlines=True)
    if isinstance(value, dict):
        return {k: _clean_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_values(v) for v in value]
    return value


def captions(timeline: Timeline, width: int, max_lines: int) -> list[Caption]:
    """Caption cues: each spoken line wrapped to `width`, split into cues of `max_lines` lines.

    A line split over several cues shares its speech time in proportion to the characters
    of each cue, so cues follow the voice and never overlap.
    """
    sr = timeline.sample_rate
    out: list[Caption] = []
    for e in timeline.of_kind("speech"):
        lines = _wrap(clean_text(e.text).replace("-->", "->"), width)
        groups = [tuple(lines[i : i + max_lines]) for i in range(0, len(lines), max_lines)]
        total = sum(len(" ".join(g)) for g in groups)
        at = e.start / sr
        for group in groups:
            share = (e.end - e.start) / sr * len(" ".join(group)) / total
            out.append(Caption(round(at, 3), round(at + share, 3), group))
            at += share
    return out


def webvtt(timeline: Timeline) -> str:
    """Captions as WebVTT."""
    cues = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n" + "\n".join(_vtt_escape(line) for line in c.lines)
            for c in captions(timeline, VTT_LINE, VTT_LINES)]
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


def srt(timeline: Timeline) -> str:
    """Captions as SubRip."""
    cues = [f"{n}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n" + "\n".join(c.lines)
            for n, c in enumerate(captions(timeline, SRT_LINE, SRT_LINES), start=1)]
    return "\n\n".join(cues) + "\n"


def chapters_json(timeline: Timeline, title: str) -> str:
    """Podcasting 2.0 chapters (version 1.2.0) from the sections."""
    sr = timeline.sample_rate
    marks = timeline.of_kind("part") or timeline.of_kind("section")  # a session's chapters are its parts
    chapters = [{"startTime": round(e.start / sr, 3), "endTime": round(e.end / sr, 3), "title": clean_text(e.text)}
                for e in marks]
    return json.dumps({"version": "1.2.0", "title": clean_text(title), "chapters": chapters}, indent=1, ensure_ascii=False) + "\n"


def transcript(timeline: Timeline) -> str:
    """The words of the session, a line each (whole lines, not their phrases), with section headings."""
    out: list[str] = []
    line_end = -1  # the phrases of a line lie within its `line` event
    for e in timeline.events:
        if e.kind in ("part", "section"):
            heading = f"[{clean_text(e.text)}]"
            out += ["", heading] if out else [heading]
        elif e.kind == "line":
            out.append(clean_text(e.text))
            line_end = e.end
        elif e.kind == "speech" and e.start >= line_end:
            out.append(clean_text(e.text))
    return "\n".join(out)


# name -> (file suffix, maker(timeline, title))
KINDS: dict[str, tuple[str, Callable[[Timeline, str], str]]] = {
    "vtt": (".vtt", lambda t, title: webvtt(t)),
    "srt": (".srt", lambda t, title: srt(t)),
    "chapters": (".chapters.json", chapters_json),
}
ALL = ("json", "vtt", "srt", "chapters")


def path_for(audio: Path, kind: str) -> Path:
    """Where a sidecar of `kind` goes beside `audio`."""
    suffix = ".json" if kind == "json" else KINDS[kind][0]
    return audio.with_name(audio.stem + suffix)


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        while len(word) > width:  # a word longer than a line is cut, not lost
            lines.append(word[:width])
            word = word[width:]
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _stamp(seconds: float, separator: str) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{separator}{ms % 1000:03d}"


def write_text(path: Path, text: str) -> None:
    """Write a sidecar file (the caller renames it into place: see `publish.Publisher`)."""
    path.write_text(text, encoding="utf-8")
