"""One root exception, a few meaningful kinds, and the exit statuses they map to."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from pathlib import Path


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest choice, or "" when none is close."""
    hint = difflib.get_close_matches(word, sorted(choices), n=1)
    return f"; did you mean '{hint[0]}'?" if hint else ""


class ExitStatus(enum.IntEnum):
    """Exit statuses of the command line; documented in the README."""

    OK = 0
    FAILURE = 1  # the speech engine or ffmpeg failed
    BAD_INPUT = 2  # the user's input (option, template, markup, path) is wrong
    INTERRUPTED = 130  # Ctrl-C


class GuidedAudioError(Exception):
    """Root of every error the tool reports as a one-line `error:` message."""

    exit_status = ExitStatus.FAILURE

    def __init__(self, message: str, *, source: str | Path | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.source = str(source) if source is not None else None
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = self.source + (f":{self.line}" if self.line else "") + ": "
        return where + self.message


class BadInput(GuidedAudioError):
    """Something the user gave us is wrong; exit status 2."""

    exit_status = ExitStatus.BAD_INPUT


class TemplateError(BadInput):
    """A practice template is missing, malformed or fails to render."""


class MarkupError(BadInput):
    """The rendered script markup has a line we cannot read."""

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}line {self.line} of the rendered script ('guided-audio script' shows it): {self.message}"


class ParameterError(BadInput):
    """An option or --set value is unknown, ill-typed or out of range."""


class SoundError(BadInput):
    """An ambient bed or cue sound cannot be found or read."""


class OutputError(BadInput):
    """The output path cannot be written or names an unknown format."""


class EngineError(GuidedAudioError):
    """The speech engine failed or produced unusable audio; exit status 1."""


class EncoderError(GuidedAudioError):
    """ffmpeg failed to encode or decode; exit status 1."""
