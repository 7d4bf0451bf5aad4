"""Render options: one schema for the command line, a session's [render] table and a manifest.

Each option has one type and one range, checked here whichever way it was given; the message
names where it came from (`--rate`, `evening.toml:12`, `library.toml: [defaults]`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from guided_audio import encoding
from guided_audio.errors import did_you_mean

MAX_TEXT = 200  # characters of a voice, bed, artist or album value
RATE_RANGE = (60, 400)  # words per minute
LOUDNESS_RANGE = (-30.0, -10.0)  # LUFS
MINUTES_RANGE = (0.01, 240.0)  # any positive length; the practice's own range is checked by the practice


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # text | int | number | choice
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def problem(self, value: Any) -> str | None:
        """Why `value` is not acceptable, or None."""
        if self.kind in ("text", "choice"):
            if not isinstance(value, str):
                return f"{self.name} should be text, not {value!r}"
            if not value.strip():
                return f"{self.name} is empty"
            if len(value) > MAX_TEXT:
                return f"{self.name} is longer than {MAX_TEXT} characters"
            if self.choices and value not in self.choices:
                return f"{self.name} {value!r} is not one of {', '.join(self.choices)}" + did_you_mean(value, self.choices)
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{self.name} should be a {'whole number' if self.kind == 'int' else 'number'}, not {value!r}"
        if self.kind == "int" and isinstance(value, float) and not value.is_integer():
            return f"{self.name} should be a whole number, not {value!r}"
        if not math.isfinite(value) or (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            return f"{self.name} {value:g} is out of range ({self.low:g} to {self.high:g})"
        return None


OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("voice", "text"),
        Option("second_voice", "text"),
        Option("rate", "int", *RATE_RANGE),
        Option("ambient", "text"),
        Option("format", "choice", choices=tuple(encoding.FORMATS)),
        Option("loudness", "number", *LOUDNESS_RANGE),
        Option("minutes", "number", *MINUTES_RANGE),
        Option("artist", "text"),
        Option("album", "text"),
        Option("title", "text"),
    )
}


def problem(key: str, value: Any, known: set[str] | None = None) -> str | None:
    """Why `key = value` is not a valid render option (among `known`, default all), or None."""
    names = known if known is not None else set(OPTIONS)
    if key not in names or key not in OPTIONS:
        return f"unknown key '{key}'" + did_you_mean(key, names)
    return OPTIONS[key].problem(value)
