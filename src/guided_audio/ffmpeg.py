"""Finding and running the ffmpeg binary.

The bundled one (the imageio-ffmpeg wheel) is the default: the same build on every machine,
so the same inputs give the same bytes. `GUIDED_AUDIO_FFMPEG` chooses another: a path to an
ffmpeg binary, or `system` for the one on PATH.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from guided_audio.errors import EncoderError, ParameterError

if TYPE_CHECKING:
    from numpy.typing import NDArray

ENV = "GUIDED_AUDIO_FFMPEG"


def ffmpeg_exe() -> str:
    """The path of the ffmpeg binary to run (see the module docstring)."""
    return _find(os.environ.get(ENV, "").strip())


@functools.lru_cache(maxsize=4)
def _find(choice: str) -> str:
    if choice == "system":
        found = shutil.which("ffmpeg")
        if not found:
            raise ParameterError(f"{ENV}=system: no ffmpeg on PATH (unset {ENV} to use the bundled one)")
        return found
    if choice:
        if not (os.path.isfile(choice) and os.access(choice, os.X_OK)):
            raise ParameterError(f"{ENV}={choice}: not an executable file (unset it to use the bundled ffmpeg)")
        return choice
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - it is a dependency
        found = shutil.which("ffmpeg")
        if found:
            return found
        raise EncoderError("ffmpeg not found: install the imageio-ffmpeg package, or set "
                           f"{ENV} to an ffmpeg binary") from None
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
    import numpy as np
    raw = run_ffmpeg(
        ["-i", str(path), "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels),
         "-ar", str(sample_rate), "-"],
        what=f"decoding {path}",
    )
    return np.frombuffer(raw, dtype="<f4").reshape(-1, channels)  # read-only, and no second copy
