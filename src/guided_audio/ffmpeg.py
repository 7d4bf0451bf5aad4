"""Finding and running the ffmpeg binary (system first, then the imageio-ffmpeg wheel)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from typing import Any

import numpy as np
from numpy.typing import NDArray

from guided_audio.errors import EncoderError


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Return the path of an ffmpeg binary: the one on PATH, else the bundled one."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise EncoderError("ffmpeg not found: install ffmpeg or the imageio-ffmpeg package") from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(args: list[str], *, what: str, input_bytes: bytes | None = None) -> bytes:
    """Run ffmpeg with `args`; raise EncoderError naming `what` on failure."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *args]
    if input_bytes is not None:
        cmd.remove("-nostdin")
    proc = subprocess.run(cmd, input=input_bytes, capture_output=True)
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise EncoderError(f"ffmpeg failed while {what}: {detail[-1] if detail else 'no message'}")
    return proc.stdout


def decode_audio(path: str, *, sample_rate: int, channels: int) -> NDArray[Any]:
    """Decode any file ffmpeg reads to float32 samples shaped (frames, channels)."""
    raw = run_ffmpeg(
        ["-i", str(path), "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels),
         "-ar", str(sample_rate), "-"],
        what=f"decoding {path}",
    )
    return np.frombuffer(raw, dtype="<f4").reshape(-1, channels).copy()
