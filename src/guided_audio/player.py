"""The player page: one self-contained HTML file that plays renders with their chapters, captions
and a breath guide to watch.

Everything the page needs is inside it (style, script, and the captions' cues, chapters and breath
phases as JSON), so it works opened from disk (`file://`, where browsers fetch nothing) as well as
from the feed's host. It carries only what a listener sees: titles, chapter titles, the spoken
captions and the breath phases; never a render's settings, health flags, off-limits areas, stop
word or own phrases (the timeline sidecar's `settings` are not read at all, and the captions show
private texts as [private]).
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from guided_audio import markup, privacy, sidecars
from guided_audio.errors import BadInput
from guided_audio.publish import atomic_write_text, clean_text

PAGE_NAME = "player.html"
PHASES = frozenset(markup.PHASE_NAMES.values())
_STAMP = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{3})$")


@dataclass(frozen=True)
class PlayerSession:
    """What the page shows of one render; URLs are relative to the page."""

    title: str
    audio: str
    duration: float
    vtt: str | None
    chapters: list[dict[str, Any]]  # {"startTime", "title"}
    phases: list[dict[str, Any]]  # {"name", "start", "end"}, name one of markup.PHASE_NAMES' values
    cues: list[dict[str, Any]] = field(default_factory=list)  # {"start", "end", "text"}, from the captions


def player_html(sessions: list[PlayerSession], *, title: str) -> str:
    """One self-contained page (inline style and script, no other file) playing `sessions`."""
    data = {"sessions": [_session_data(s) for s in sessions]}
    items = "\n".join(
        f'<li><button type="button" class="pick" data-index="{n}">{html.escape(s.title)}'
        f'<span class="len">{_clock(s.duration)}</span></button></li>'
        for n, s in enumerate(sessions)
    )
    return _TEMPLATE.format(
        title=html.escape(clean_text(title)),
        style=_asset("player.css"),
        script=_asset("player.js"),
        data=script_json(data),
        sessions=items,
        many="" if len(sessions) > 1 else " hidden",
    )


def session_from_sidecars(audio: Path, page_dir: Path, secrets: Sequence[str] = ()) -> PlayerSession:
    """A render's page data, read from its timeline, chapters and captions sidecars beside it.

    The captions keep the words as spoken, except the render's private texts and health flags
    (`secrets`: the stop word, the couple's own phrases, "stoma", ...), shown as [private]: a
    page is on a screen.
    """
    timeline = _read_json(sidecars.path_for(audio, "json"))
    chapters_doc = _read_json(sidecars.path_for(audio, "chapters"))
    vtt = sidecars.path_for(audio, "vtt")
    events = timeline.get("events", []) if isinstance(timeline.get("events"), list) else []
    phases = [{"name": str(e["name"]), "start": float(e["start"]), "end": float(e["end"])}
              for e in events if isinstance(e, dict) and e.get("kind") == "phase" and e.get("name") in PHASES]
    chapter_rows = chapters_doc.get("chapters", []) if isinstance(chapters_doc.get("chapters"), list) else []
    chapters = [{"startTime": float(c.get("startTime", 0)), "title": clean_text(str(c.get("title", "")))}
                for c in chapter_rows if isinstance(c, dict)]
    title = chapters_doc.get("title") or timeline.get("title") or audio.stem
    duration = timeline.get("duration", 0.0)
    return PlayerSession(
        title=clean_text(str(title)),
        audio=_relative(audio, page_dir),
        duration=float(duration) if isinstance(duration, (int, float)) else 0.0,
        vtt=_relative(vtt, page_dir) if vtt.is_file() else None,
        chapters=chapters,
        phases=phases,
        cues=[{**cue, "text": privacy.redact(cue["text"], secrets)} for cue in read_vtt(vtt)] if vtt.is_file() else [],
    )


def write_player(audio: Path, secrets: Sequence[str] = ()) -> Path:
    """Write `player.html` beside a render, whole or not at all; its path."""
    if not audio.is_file():
        raise BadInput(f"--player: no audio file at {audio}")
    session = session_from_sidecars(audio, audio.parent, secrets)
    page = audio.with_name(PAGE_NAME)
    atomic_write_text(page, player_html([session], title=session.title), option="--player")
    return page


def read_vtt(path: Path) -> list[dict[str, Any]]:
    """The cues of a WebVTT file as {"start", "end", "text"} (text unescaped, lines joined by newlines)."""
    cues: list[dict[str, Any]] = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").replace("\r\n", "\n")):
        lines = block.strip("\n").split("\n")
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue
        start_text, _, end_text = lines[timing].partition("-->")
        start, end = _seconds(start_text.strip()), _seconds(end_text.strip().split(" ")[0])
        if start is None or end is None:
            continue
        text = "\n".join(lines[timing + 1 :])
        cues.append({"start": start, "end": end, "text": html.unescape(re.sub(r"<[^>]*>", "", text))})
    return cues


def script_json(data: Any) -> str:
    """JSON safe inside a <script> element: no '</' to end it early, no '<!--' to open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--").replace("\u2028", "\\u2028").replace(
        "\u2029", "\\u2029")


def _session_data(s: PlayerSession) -> dict[str, Any]:
    return {
        "title": s.title, "audio": s.audio, "duration": s.duration, "vtt": s.vtt,
        "chapters": [{"start": float(c["startTime"]), "title": str(c["title"])} for c in s.chapters],
        "phases": [{"name": str(p["name"]), "start": float(p["start"]), "end": float(p["end"])}
                   for p in s.phases if p.get("name") in PHASES],
        "cues": [{"start": float(c["start"]), "end": float(c["end"]), "text": str(c["text"])} for c in s.cues],
    }


def _seconds(stamp: str) -> float | None:
    match = _STAMP.match(stamp)
    if not match:
        return None
    hours, minutes, secs, ms = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + secs + ms / 1000


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _relative(path: Path, page_dir: Path) -> str:
    """`path` as a URL relative to a page in `page_dir`, each part percent-encoded."""
    from urllib.parse import quote

    rel = os.path.relpath(path.resolve(), page_dir.resolve())
    return "/".join(quote(part) for part in Path(rel).parts)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: cannot read this sidecar: {exc}") from None
    return doc if isinstance(doc, dict) else {}


def _asset(name: str) -> str:
    return (resources.files("guided_audio") / "player_assets" / name).read_text(encoding="utf-8")


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main class="player">
<h1 id="title">{title}</h1>
<nav class="sessions"{many} aria-label="Sessions"><ol>
{sessions}
</ol></nav>
<section class="now" aria-label="Now playing">
<h2 id="session-title"></h2>
<div class="guide" aria-hidden="true"><div id="breath" class="breath" data-phase="" data-scale="0.550"></div></div>
<p id="breath-label" class="breath-label" aria-live="off"></p>
<p id="caption" class="caption" aria-live="polite"></p>
<audio id="audio" controls preload="metadata"></audio>
<div class="controls">
<button type="button" id="back" aria-label="Back 15 seconds" title="Back 15 seconds (Left arrow)">&#8630; 15</button>
<button type="button" id="play" aria-label="Play" title="Play or pause (Space)">Play</button>
<button type="button" id="forward" aria-label="Forward 15 seconds" title="Forward 15 seconds (Right arrow)">15 &#8631;</button>
</div>
<p class="time"><span id="clock">0:00</span></p>
</section>
<nav class="chapters" aria-label="Chapters"><h2>Chapters</h2><ol id="chapters"></ol></nav>
<p class="files"><a id="download" href="" download>Download the audio</a> <a id="vtt" href="" hidden download>Captions (WebVTT)</a></p>
</main>
<script type="application/json" id="player-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""
