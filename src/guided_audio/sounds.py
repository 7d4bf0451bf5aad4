"""The sound library: the project's ambient beds and cues, or a user's own audio file."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from guided_audio.errors import EncoderError, SoundError, did_you_mean
from guided_audio.ffmpeg import decode_audio
from guided_audio.paths import data_folder

KINDS = {"bed": "ambient bed", "cue": "cue sound"}


@dataclass(frozen=True)
class SoundInfo:
    name: str
    kind: str  # bed | cue
    description: str
    path: Path


def library_dir() -> Path:
    """The folder of the built-in sounds."""
    return data_folder("guided_audio.builtin_sounds", "sounds")


def catalogue() -> list[SoundInfo]:
    """Every built-in sound, beds first."""
    from guided_audio.soundgen import SOUNDS

    folder = library_dir()
    found = [
        SoundInfo(spec.name, spec.kind, spec.description, folder / spec.filename)
        for spec in SOUNDS.values()
        if (folder / spec.filename).is_file()
    ]
    return sorted(found, key=lambda s: (s.kind != "bed", s.name))


def names(kind: str) -> list[str]:
    """Names of the built-in sounds of one kind."""
    return [s.name for s in catalogue() if s.kind == kind]


def resolve(name_or_path: str, kind: str, option: str, relative_to: Path | None = None) -> Path:
    """The file behind a sound name or path; SoundError naming `option` if there is none.

    A relative path is looked up beside `relative_to` (a template's folder) first.
    """
    if "/" in name_or_path or "\\" in name_or_path or Path(name_or_path).suffix:
        path = Path(name_or_path)
        if relative_to is not None and not path.is_absolute() and (relative_to / path).is_file():
            path = relative_to / path
        if not path.is_file():
            raise SoundError(f"{option} {name_or_path}: no such file")
        return path
    for sound in catalogue():
        if sound.name == name_or_path and sound.kind == kind:
            return sound.path
    choices = names(kind)
    suggestion = did_you_mean(name_or_path, choices)
    raise SoundError(
        f"{option} {name_or_path}: no {KINDS[kind]} by that name{suggestion} "
        f"(built-in: {', '.join(choices)}; or give a file path)"
    )


def load(path: Path, sample_rate: int) -> NDArray[Any]:
    """Decode a sound to float32 stereo at `sample_rate`, shaped (frames, 2)."""
    resolved = path.resolve()
    try:
        stamp = resolved.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _decoded(resolved, stamp, sample_rate)


@functools.lru_cache(maxsize=32)
def _decoded(path: Path, stamp: int, sample_rate: int) -> NDArray[Any]:
    try:
        samples = decode_audio(str(path), sample_rate=sample_rate, channels=2)
    except EncoderError as exc:
        raise SoundError(f"{path}: cannot be read as audio ({exc.message})") from exc
    if not len(samples):
        raise SoundError(f"{path}: contains no audio")
    samples.setflags(write=False)
    return samples
