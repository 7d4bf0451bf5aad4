"""Sidecars: files written beside the audio (the timeline JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from guided_audio.timeline import Timeline


def timeline_json(timeline: Timeline, info: dict[str, Any]) -> str:
    """The timeline as JSON: duration, sample rate and every event in seconds."""
    sr = timeline.sample_rate

    def event(e) -> dict[str, Any]:
        row: dict[str, Any] = {"kind": e.kind, "start": round(e.start / sr, 3), "end": round(e.end / sr, 3)}
        if e.kind in ("speech", "section"):
            row["text"] = e.text
        if e.name:
            row["name"] = e.name
        if e.kind == "speech":
            row["rate"] = e.rate
        if e.kind == "guide":
            row["levels"] = list(e.levels)
        return row

    doc = {
        **info,
        "duration": round(timeline.seconds, 3),
        "sample_rate": sr,
        "warnings": list(timeline.warnings),
        "events": [event(e) for e in timeline.events],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write a sidecar file (the caller renames it into place)."""
    path.write_text(text, encoding="utf-8")
