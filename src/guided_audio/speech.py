"""Speech: every spoken line turned into a clip, through a content-addressed cache.

Engines are backends in a registry keyed by name (the built-in ones register through
the same `guided_audio.engines` entry-point group a third-party engine would use).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np

from guided_audio.errors import BadInput, EngineError, ParameterError

log = logging.getLogger(__name__)
DEFAULT_ENGINE = "pyttsx3"
DEFAULT_WPM = 115  # PRACTICE-NOTES: 100-120 words per minute; templates slow ~10% after the opening
SILENCE_DB = -50.0  # below this a clip's edges count as silence and are trimmed
EDGE_PAD = 0.02  # seconds of the engine's own silence kept at each edge


@dataclass(frozen=True)
class Clip:
    """Mono float32 samples in [-1, 1] at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Line:
    """One thing to say: the text, its rate in words per minute, and the voice (None: default)."""

    text: str
    wpm: int
    voice: str | None = None


def line_id(text: str) -> str:
    """A stable, readable id for a line: its first words and a short hash of the whole text."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = "-".join(words[:4])[:28].strip("-") or "line"
    return f"{slug}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:6]}"


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    name: str
    languages: tuple[str, ...] = ()
    gender: str = ""


class Engine(Protocol):
    """A speech engine backend."""

    name: str

    def identity(self, voice: str | None) -> dict[str, str]:
        """Everything about the engine and voice that changes its output (for the cache key)."""

    def synthesize(
        self, lines: list[Line], voice: str | None, folder: Path, done: Callable[[int], None]
    ) -> Sequence[Path | None]:
        """One audio file per line (None: this engine has no audio for it); call done(n) as lines finish."""

    def voices(self) -> list[VoiceInfo]:
        """The voices this engine can use here."""


_ENGINES: dict[str, Callable[[], Engine]] = {}
_entry_points_loaded = False
_INSTANCES: dict[str, tuple[Callable[[], Engine], Engine]] = {}  # name -> (factory, instance)


def register_engine(name: str, factory: Callable[[], Engine]) -> None:
    """Make an engine available by name (replacing one of the same name)."""
    _ENGINES[name] = factory


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in metadata.entry_points(group="guided_audio.engines"):
        if entry.name in _ENGINES:  # registered directly already: that one wins
            continue
        try:
            register_engine(entry.name, entry.load())
        except Exception as exc:  # a broken plugin must not stop the tool
            log.warning("speech engine '%s' could not be loaded: %s", entry.name, exc)
    if DEFAULT_ENGINE not in _ENGINES:  # running from a source tree without entry points
        from guided_audio.engines.pyttsx3_engine import Pyttsx3Engine

        register_engine(DEFAULT_ENGINE, Pyttsx3Engine)


def engine_names() -> list[str]:
    """Registered engine names."""
    _load_entry_points()
    return sorted(_ENGINES)


def get_engine(name: str) -> Engine:
    """The engine of that name, made once per process (a neural voice loads its model once)."""
    _load_entry_points()
    if name not in _ENGINES:
        raise ParameterError(f"--voice: unknown speech engine '{name}' (available: {', '.join(engine_names())})")
    factory = _ENGINES[name]
    if _INSTANCES.get(name, (None,))[0] is not factory:
        _INSTANCES[name] = (factory, factory())
    return _INSTANCES[name][1]


def split_voice(spec: str | None) -> tuple[str, str | None]:
    """'ENGINE:VOICE', 'VOICE' or None -> (engine name, voice or None)."""
    if spec:
        prefix, sep, rest = spec.partition(":")
        if sep and prefix in engine_names():
            return prefix, rest or None
    return DEFAULT_ENGINE, spec or None


# -- cache ---------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where clips are cached: $GUIDED_AUDIO_CACHE, else the user's cache folder."""
    if os.environ.get("GUIDED_AUDIO_CACHE"):
        return Path(os.environ["GUIDED_AUDIO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "guided_audio"


class ClipCache:
    """Engine output stored under a hash of everything that shapes it."""

    def __init__(self, folder: Path):
        self.folder = folder / "speech"

    def key(self, identity: dict[str, str], line: Line) -> str:
        blob = json.dumps({"engine": identity, "text": line.text, "wpm": line.wpm}, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, key: str) -> Clip | None:
        path = self.path(key)
        try:
            with np.load(path) as data:
                return Clip(data["samples"].astype(np.float32), int(data["rate"]))
        except (OSError, KeyError, ValueError):
            return None

    def put(self, key: str, clip: Clip) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, samples=clip.samples, rate=np.int64(clip.sample_rate))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# -- synthesis -----------------------------------------------------------------------------


@dataclass
class SpeechReport:
    synthesized: int = 0
    cached: int = 0
    warnings: list[str] = field(default_factory=list)


def synthesize(
    lines: Iterable[Line],
    *,
    voice: str | None = None,
    sample_rate: int,
    cache_dir: Path,
    progress: Callable[[int], None] = lambda n: None,
    report: SpeechReport | None = None,
    strict: bool = False,
) -> dict[Line, Clip]:
    """A clip at `sample_rate` for every distinct line; only cache misses reach an engine.

    A line's own voice wins over `voice`. A line a voice cannot provide (a recording
    that is missing) is spoken by the default engine with a warning, or is an error
    when `strict`.
    """
    report = report if report is not None else SpeechReport()
    unique = list(dict.fromkeys(lines))
    by_voice: dict[str | None, list[Line]] = {}
    for line in unique:
        by_voice.setdefault(line.voice or voice, []).append(line)
    raw: dict[Line, Clip] = {}
    for spec, group in by_voice.items():
        found, missing = _synthesize_voice(spec, group, cache_dir, progress, report)
        raw.update(found)
        if missing:
            raw.update(_fallback(spec, missing, cache_dir, progress, report, strict))
    return {line: _prepared(raw[line], sample_rate) for line in unique}


def _synthesize_voice(
    spec: str | None, lines: list[Line], cache_dir: Path, progress: Callable[[int], None], report: SpeechReport
) -> tuple[dict[Line, Clip], list[Line]]:
    """Clips of one voice from the cache or its engine, and the lines it has no audio for."""
    engine_name, voice_id = split_voice(spec)
    engine = get_engine(engine_name)
    identity = engine.identity(voice_id)
    cache = ClipCache(cache_dir)
    found: dict[Line, Clip] = {}
    todo: list[Line] = []
    for line in lines:
        clip = cache.get(cache.key(identity, line))
        if clip is None:
            todo.append(line)
        else:
            found[line] = clip
            progress(1)
    report.cached += len(lines) - len(todo)
    missing: list[Line] = []
    if todo:
        finish = getattr(engine, "finish", lambda clip: clip)
        with tempfile.TemporaryDirectory(prefix="guided-audio-speech-") as tmp:
            for line, path in zip(todo, engine.synthesize(todo, voice_id, Path(tmp), progress)):
                if path is None:
                    missing.append(line)
                    continue
                clip = _checked(finish(_read_clip(path)), line)
                cache.put(cache.key(identity, line), clip)
                found[line] = clip
        report.synthesized += len(todo) - len(missing)
    return found, missing


def _fallback(
    spec: str | None, lines: list[Line], cache_dir: Path, progress: Callable[[int], None],
    report: SpeechReport, strict: bool,
) -> dict[Line, Clip]:
    """Lines a voice could not provide, spoken by the default engine instead (or an error)."""
    first = lines[0]
    if strict:
        raise BadInput(
            f"--voice {spec}: no recording for {len(lines)} line(s), first {line_id(first.text)} "
            f"({first.text!r}); record them or leave out --strict to use the speech engine"
        )
    for line in lines:
        report.warnings.append(
            f"{spec}: no recording {line_id(line.text)} for {line.text!r}; the speech engine says it instead"
        )
    substitutes = {line: Line(line.text, line.wpm, DEFAULT_ENGINE + ":") for line in lines}
    found, _still = _synthesize_voice(None, list(substitutes.values()), cache_dir, progress, report)
    return {line: found[sub] for line, sub in substitutes.items()}


def _read_clip(path: Path) -> Clip:
    import wave

    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() == 2:
                data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
                data = data.reshape(-1, wav.getnchannels()).mean(axis=1)
                return Clip((data / 32768.0).astype(np.float32), wav.getframerate())
    except (wave.Error, EOFError, OSError):
        pass
    from guided_audio.ffmpeg import decode_audio  # AIFF from macOS, or anything else

    if not path.is_file():
        return Clip(np.zeros(0, np.float32), 22050)
    return Clip(decode_audio(str(path), sample_rate=22050, channels=1)[:, 0], 22050)


def _checked(clip: Clip, line: Line) -> Clip:
    """Refuse silence: a line the engine could not speak is an error, never a quiet gap."""
    words = max(1, len(line.text.split()))
    loud = np.abs(clip.samples) > 10 ** (SILENCE_DB / 20)
    shortest = min(0.15, 0.05 * words)
    if clip.seconds < shortest or loud.sum() < shortest * clip.sample_rate * 0.2:
        raise EngineError(
            f"the speech engine produced no audible speech for {line.text!r} "
            "(check the voice with 'guided-audio voices' and that eSpeak NG works)"
        )
    longest = 10.0 + words * 60.0 / max(line.wpm, 1) * 4
    if clip.seconds > longest:
        raise EngineError(f"the speech engine produced {clip.seconds:.0f} s of audio for {line.text!r}; expected far less")
    return clip


def _prepared(clip: Clip, sample_rate: int) -> Clip:
    """Trim the engine's silent edges and resample to the session rate."""
    loud = np.flatnonzero(np.abs(clip.samples) > 10 ** (SILENCE_DB / 20))
    pad = int(EDGE_PAD * clip.sample_rate)
    samples = clip.samples[max(0, loud[0] - pad) : loud[-1] + 1 + pad]
    if clip.sample_rate != sample_rate:
        from scipy.signal import resample_poly

        g = np.gcd(clip.sample_rate, sample_rate)
        samples = resample_poly(samples, sample_rate // g, clip.sample_rate // g)
    return Clip(np.clip(samples, -1.0, 1.0).astype(np.float32), sample_rate)


def estimate_samples(text: str, wpm: int, sample_rate: int) -> int:
    """A rough length for planning without synthesis (used by `guided-audio script`)."""
    words = max(1, len(text.split()))
    pauses = text.count(",") * 0.15 + text.count(".") * 0.3
    return int((words * 60.0 / wpm + pauses) * sample_rate)
