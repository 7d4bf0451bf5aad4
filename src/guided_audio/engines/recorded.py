"""The recorded voice: a therapist's own recordings of the script's lines, one file per line id.

`guided-audio lines PRACTICE` writes the recording script with each line's id; the
recordings go into a folder as ID.wav (or .flac, .mp3, .ogg, .opus, .m4a), and
`--voice recorded:FOLDER` uses them. A line with no usable recording is reported to
the speech stage, which has the default engine say it (or stops, with --strict).
"""

from __future__ import annotations

import hashlib
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from guided_audio.errors import EncoderError, ParameterError
from guided_audio.ffmpeg import decode_audio
from guided_audio.speech import Clip, Line, VoiceInfo, line_id

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif")
RATE = 44100
LEVEL_DBFS = -20.0  # speech RMS every recording is brought to, so lines sit evenly
FRAME = 0.01  # seconds per analysis frame
KEEP_BEFORE, KEEP_AFTER = 0.05, 0.12  # seconds of the room kept around the speech


class RecordedEngine:
    """Lines read from a folder of recordings named by line id."""

    name = "recorded"

    def identity(self, voice: str | None) -> dict[str, str]:
        folder = self._folder(voice)
        listing = sorted(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()
            if p.suffix.lower() in AUDIO_SUFFIXES
        )
        digest = hashlib.sha256(repr(listing).encode()).hexdigest()
        return {"engine": self.name, "folder": str(folder.resolve()), "recordings": digest}

    def synthesize(
        self, lines: list[Line], voice: str | None, folder: Path, done: Callable[[int], None]
    ) -> list[Path | None]:
        recordings = {p.stem: p for p in self._folder(voice).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES}
        out: list[Path | None] = []
        for n, line in enumerate(lines):
            source = recordings.get(line_id(line.text))
            out.append(self._readable(source, folder / f"{n:05d}.wav") if source else None)
            done(1)
        return out

    def voices(self) -> list[VoiceInfo]:
        return []  # any folder of recordings is a voice: --voice recorded:FOLDER

    def finish(self, clip: Clip) -> Clip:
        """Trim the room before and after the words, and bring the speech to a common level."""
        x = clip.samples
        frame = max(1, int(FRAME * clip.sample_rate))
        n = len(x) // frame
        if n < 3:
            return clip
        rms = np.sqrt((x[: n * frame].reshape(n, frame).astype(np.float64) ** 2).mean(axis=1)) + 1e-9
        floor = np.percentile(rms, 10)
        threshold = max(floor * 3.0, rms.max() * 0.02)  # ~10 dB over the room, or -34 dB under the peak
        loud = np.flatnonzero(rms > threshold)
        if not len(loud):
            return clip
        a = max(0, loud[0] * frame - int(KEEP_BEFORE * clip.sample_rate))
        b = min(len(x), (loud[-1] + 1) * frame + int(KEEP_AFTER * clip.sample_rate))
        speech_rms = float(np.sqrt((rms[loud] ** 2).mean()))
        gain = 10 ** (LEVEL_DBFS / 20) / speech_rms
        peak = float(np.abs(x[a:b]).max()) or 1.0
        gain = min(gain, 0.95 / peak)  # never clip a loud recording
        return Clip((x[a:b] * gain).astype(np.float32), clip.sample_rate)

    @staticmethod
    def _folder(voice: str | None) -> Path:
        if not voice:
            raise ParameterError("--voice recorded:FOLDER needs the folder of recordings")
        folder = Path(voice).expanduser()
        if not folder.is_dir():
            raise ParameterError(f"--voice recorded:{voice}: no such folder")
        return folder

    @staticmethod
    def _readable(source: Path, target: Path) -> Path | None:
        """The recording as mono WAV, or None when it cannot be decoded (then it falls back)."""
        try:
            samples = decode_audio(str(source), sample_rate=RATE, channels=1)[:, 0]
        except EncoderError:
            return None
        if not len(samples):
            return None
        with wave.open(str(target), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
        return target
