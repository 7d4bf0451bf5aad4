"""What a render is asked for, and the settings it resolves to before any work is done.

A `RenderRequest` holds what the user gave: many values are optional ("the session's", "the
practice's", "the best installed voice"). `guided_audio.render.resolve` turns it, once, into
`Settings`: every value concrete and checked, which is all the pipeline's stages read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from guided_audio import encoding, sidecars, speech
from guided_audio.levels import Levels

SAMPLE_RATE = 44100  # every session is mixed, mastered and encoded at this rate


@dataclass(frozen=True)
class TagOverrides:
    """What the user says a player should show, over the practice's own values."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    track: tuple[int, int] | None = None
    cover: Path | None = None


@dataclass(frozen=True)
class RenderRequest:
    """Everything that decides what a render produces, as given (None: a default applies)."""

    practice: str
    settings: dict[str, str] = field(default_factory=dict)
    minutes: float | None = None
    voice: str | None = None  # the main voice: ENGINE:VOICE, a voice id, or None for the default
    second_voice: str | None = None  # for lines after '@voice second' (default: the main voice)
    strict: bool = False  # a missing recorded line is an error, not a fallback to the engine
    rate: int | None = None  # base words per minute; None: the session's, else speech.DEFAULT_WPM
    ambient: str | None = None  # None: the practice's default; "none": no bed
    format: str | None = None
    output: Path | None = None
    loudness: float | None = None  # None: -16 LUFS for stereo, -19 for mono
    channels: int = 2
    cache_dir: Path = field(default_factory=speech.default_cache_dir)
    levels: Levels = Levels()
    sidecars: tuple[str, ...] = sidecars.ALL
    tags: TagOverrides = TagOverrides()


@dataclass(frozen=True)
class Settings:
    """A request resolved: every value the render uses, concrete."""

    fmt: encoding.Format
    output: Path  # the audio file
    rate: int  # base words per minute
    voice: str  # the main voice spec, e.g. "piper:joe"
    second_voice: str  # the voice of '@voice second' lines (the main voice unless one was given)
    second_voice_given: bool
    ambient: str | None  # the first bed; None: no bed
    loudness: float  # LUFS
    channels: int
    cache_dir: Path
    levels: Levels
    sidecars: tuple[str, ...]
    tags: TagOverrides
    strict: bool

    @property
    def voices(self) -> dict[str, str | None]:
        """Voice role -> voice spec."""
        return {"main": self.voice, "second": self.second_voice}
