"""The sound library: the project's ambient beds and cues, or a user's own audio file."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from guided_audio import publish
from guided_audio.errors import EncoderError, SoundError, did_you_mean
from guided_audio.ffmpeg import decode_audio, ffmpeg_exe
from guided_audio.paths import cache_dir, data_folder

if TYPE_CHECKING:
    from numpy.typing import NDArray

KINDS = {"bed": "ambient bed", "cue": "cue sound"}


@dataclass(frozen=True)
class SoundInfo:
    name: str
    kind: str  # bed | cue
    description: str
    path: Path


@dataclass(frozen=True)
class SoundSpec:
    """One sound of the library: its name, kind, description, seed and maker."""

    name: str
    kind: Literal["bed", "cue"]
    seed: int
    maker: str  # the function in guided_audio.soundgen that synthesizes it
    description: str

    @property
    def filename(self) -> str:
        """File name in the sounds folder."""
        return f"{self.name}.flac"

    def render(self) -> NDArray[Any]:
        """Synthesize the sound: float64 samples shaped (frames, 2), full scale 1.0."""
        import numpy as np

        from guided_audio import soundgen

        make: Callable[[np.random.Generator], NDArray[Any]] = getattr(soundgen, self.maker)
        return make(np.random.default_rng(self.seed))


# Seeds are arbitrary fixed constants; changing one changes that sound's file.
_SPECS = (
    SoundSpec("soft-rain", "bed", 1101, "make_soft_rain",
              "Soft rain with sparse gentle droplets, low-passed so it is not hissy."),
    SoundSpec("ocean-swell", "bed", 1102, "make_ocean_swell",
              "Slow ocean swell rising and falling every 7.5-10 seconds."),
    SoundSpec("warm-room", "bed", 1103, "make_warm_room",
              "Very quiet warm room tone: soft low noise, no hum."),
    SoundSpec("gentle-drone", "bed", 1104, "make_gentle_drone",
              "Gentle drone: a soft open fifth on A with very slow beating."),
    SoundSpec("night-air", "bed", 1105, "make_night_air",
              "Quiet night air with slow breathing-like movement and faint distant crickets."),
    SoundSpec("singing-bowl", "cue", 2101, "make_singing_bowl",
              "Singing bowl strike with slow beating and a long (~6 s) decay."),
    SoundSpec("bell", "cue", 2102, "make_bell",
              "Soft, warm meditation bell with a medium (~4 s) decay."),
    SoundSpec("soft-chime", "cue", 2103, "make_soft_chime",
              "Soft high chime near 880 Hz with a short (~2 s) decay."),
    SoundSpec("wood-tick", "cue", 2104, "make_wood_tick",
              "Soft wooden tick, a short gentle knock."),
)
CATALOGUE: dict[str, SoundSpec] = {spec.name: spec for spec in _SPECS}


def library_dir() -> Path:
    """The folder of the built-in sounds."""
    return data_folder("guided_audio.builtin_sounds", "sounds")


def catalogue() -> list[SoundInfo]:
    """Every built-in sound, beds first."""
    folder = library_dir()
    found = [
        SoundInfo(spec.name, spec.kind, spec.description, folder / spec.filename)
        for spec in CATALOGUE.values()
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
    cache = _DecodedCache(path, stamp, sample_rate)
    samples = cache.get()
    if samples is None:
        try:
            samples = decode_audio(str(path), sample_rate=sample_rate, channels=2)
        except EncoderError as exc:
            raise SoundError(f"{path}: cannot be read as audio ({exc.message})") from exc
        if not len(samples):
            raise SoundError(f"{path}: contains no audio")
        cache.put(samples)
    samples.setflags(write=False)
    return samples


class _DecodedCache:
    """A sound decoded once, kept in the cache folder (an ffmpeg run costs more than reading it).

    Kept under the file's path, size and modification time, the sample rate, and the ffmpeg
    that decoded it; an entry ends with a SHA-256 of itself and is checked when read.
    """

    MAGIC = b"GUIDED-AUDIO-SOUND 1\n"

    def __init__(self, path: Path, stamp: int, sample_rate: int):
        self.folder = cache_dir() / "sounds"
        try:
            size = path.stat().st_size
            exe = Path(ffmpeg_exe())
            tool = (str(exe), exe.stat().st_size, exe.stat().st_mtime_ns)
        except OSError:
            self.key = ""  # nothing to key it by: always decoded
            return
        identity = json.dumps([str(path), size, stamp, sample_rate, tool])
        self.key = hashlib.sha256(identity.encode("utf-8")).hexdigest()

    def get(self) -> NDArray[Any] | None:
        import numpy as np

        if not self.key:
            return None
        try:
            data = (self.folder / f"{self.key}.f32").read_bytes()
        except OSError:
            return None
        entry = publish.unseal(data, self.MAGIC)
        if entry is None or entry[0] != self.key.encode("ascii") or len(entry[1]) % 8:
            return None
        samples: NDArray[Any] = np.frombuffer(entry[1], dtype="<f4").reshape(-1, 2)
        return samples if len(samples) else None

    def put(self, samples: NDArray[Any]) -> None:
        import numpy as np

        if not self.key:
            return
        entry = publish.seal(self.MAGIC, self.key.encode("ascii"), np.ascontiguousarray(samples, dtype="<f4").tobytes())
        with contextlib.suppress(OSError):
            publish.remove_stale_temp_files(self.folder / ".tmp")
            publish.write_through(self.folder / f"{self.key}.f32", entry, self.folder / ".tmp")
