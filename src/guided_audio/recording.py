"""The recording script: every distinct line of a practice with its id, to read aloud and record."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from guided_audio import markup
from guided_audio.speech import line_id


@dataclass(frozen=True)
class ScriptLine:
    id: str
    section: str
    voice: str
    text: str


def script_lines(script: markup.Script) -> list[ScriptLine]:
    """Each distinct spoken line once, in order of first use, with its section and voice role."""
    seen: dict[tuple[str, str], ScriptLine] = {}
    section = ""
    for item in script.items:
        if isinstance(item, markup.Section):
            section = item.title
            continue
        if isinstance(item, markup.Speech):
            texts = [item.text]
        elif isinstance(item, markup.Breathe):
            texts = list(item.words.values())
        else:
            continue
        for text in texts:
            seen.setdefault((text, item.voice), ScriptLine(line_id(text), section, item.voice, text))
    return list(seen.values())


def readable(title: str, lines: list[ScriptLine]) -> str:
    """A script to read from: sections as headings, each line under its id."""
    out = [
        f"Recording script: {title}",
        "",
        "Record each line as its own file named by its id, e.g. " + (lines[0].id if lines else "ID") + ".wav",
        "(wav, flac, mp3, ogg, opus or m4a), in a quiet room, at an even, unhurried pace.",
        "A little silence before and after each line is fine: it is trimmed, and every line is levelled.",
        "Then: guided-audio render PRACTICE --voice recorded:FOLDER",
    ]
    section = None
    for line in lines:
        if line.section != section:
            section = line.section
            out += ["", f"== {section or 'Opening'} =="]
        voice = "  (second voice)" if line.voice != "main" else ""
        out += ["", f"[{line.id}]{voice}", f"    {line.text}"]
    return "\n".join(out) + "\n"


def table(lines: list[ScriptLine]) -> str:
    """The lines as CSV: id, section, voice, text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "section", "voice", "text"])
    for line in lines:
        writer.writerow([line.id, line.section, line.voice, line.text])
    return buffer.getvalue()
