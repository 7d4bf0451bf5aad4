"""Mastering: one fixed gain to the target loudness, and a true-peak limiter only where needed.

Loudness is measured per ITU-R BS.1770-4 (K-weighting from pyloudnorm's filter design,
400 ms gating blocks on a 100 ms hop) while the mix streams past, so memory does not
grow with the session's length. The limiter is planned from per-frame true peaks
(4x oversampled) as a slow gain curve and applied when the mix is rendered again.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from guided_audio.errors import EncoderError
from guided_audio.ffmpeg import ffmpeg_exe
from guided_audio.mix import STEP, Mix, release_curve

DEFAULT_LUFS = -16.0  # spoken-word stereo target (Apple Podcasts; AES TD1004 range)
DEFAULT_MONO_LUFS = -19.0  # the same perceived level for mono files
PEAK_CEILING_DBTP = -2.0  # leaves room for lossy encoders' overshoot under -1 dBTP
FRAME = 0.01  # seconds per limiter frame
RELEASE = 0.06  # seconds for the limiter to recover: it catches transients, not whole words
MAKEUP_ROUNDS = 12  # each round costs no rendering; the error shrinks by about half a round
MAX_MAKEUP_DB = 9.0  # beyond this the limiter would be squashing speech (its crest is held to 12 dB in the mix)
INTERSAMPLE_DB = 3.5  # how far a true peak may rise over the samples around it (fs/4: 3 dB)
EDGE = 16  # samples of context on each side of an oversampled frame
MAX_RUN = 1024  # frames mixed again at once for oversampling: about ten seconds


@dataclass(frozen=True)
class Master:
    """How to turn the mix into the delivered signal."""

    gain_db: float
    limiter: NDArray[Any]  # linear gain per frame (1.0 where no limiting is needed)
    frame: int  # samples per limiter frame
    measured_lufs: float
    target_lufs: float

    def apply(self, start: int, block: NDArray[Any]) -> NDArray[Any]:
        """Scale a block of the mix that starts at sample `start`."""
        scale = np.float32(10 ** (self.gain_db / 20))
        first, last = start // self.frame, (start + len(block)) // self.frame + 2
        curve = self.limiter[max(0, first - 1) : last]
        if not len(curve) or curve.min() >= 1.0:
            out = block * scale
        else:
            # The curve is computed every STEP samples; each step takes the lower of its two
            # ends, so it never rises above the linear interpolation between frame centres.
            grid = (np.arange(start, start + len(block) + STEP, STEP) + 0.5) / self.frame - 0.5
            points = np.interp(grid, np.arange(len(self.limiter)), self.limiter)
            steps = np.minimum(points[:-1], points[1:]).astype(np.float32) * scale
            out = block * np.repeat(steps, STEP)[: len(block), None]
        return np.clip(out, -1.0, 1.0, out=out)


class LoudnessMeter:
    """Integrated loudness (BS.1770-4) of a signal fed in consecutive blocks.

    It keeps the K-weighted energy of every 10 ms frame, so the loudness of the same
    signal under a slowly varying gain (the limiter's) can be computed without
    rendering the mix again.
    """

    def __init__(self, sample_rate: int, channels: int = 2):
        import pyloudnorm  # scipy.signal takes a second to import: only renders pay for it

        filters = pyloudnorm.Meter(sample_rate)._filters
        # float32 filtering is several times faster and far more precise than a meter needs
        self.sos = np.array([np.concatenate([f.b, f.a]) for f in filters.values()], dtype=np.float32)
        self.state = np.zeros((len(self.sos), 2, channels), dtype=np.float32)
        self.frame = int(round(sample_rate * FRAME))
        self.carry = np.zeros((0, channels), dtype=np.float32)
        self.energies: list[NDArray[Any]] = []  # K-weighted energy per frame, channels summed

    def feed(self, block: NDArray[Any]) -> None:
        from scipy.signal import sosfilt

        weighted, self.state = sosfilt(self.sos, block, axis=0, zi=self.state)
        data = np.concatenate([self.carry, weighted]) if len(self.carry) else weighted
        whole = len(data) // self.frame * self.frame
        frames = data[:whole].reshape(-1, self.frame, data.shape[1])
        self.energies.append(np.einsum("ijk,ijk->i", frames, frames))
        self.carry = data[whole:]

    def integrated(self, frame_gains: NDArray[Any] | None = None) -> float:
        """Integrated loudness in LUFS, optionally as if each frame were scaled by a gain."""
        energy = np.concatenate(self.energies) if self.energies else np.zeros(0)
        if frame_gains is not None:
            energy = energy * frame_gains[: len(energy)] ** 2
        per_hop = round(0.1 / FRAME)  # 100 ms hops; gating blocks are four hops (400 ms)
        hops = energy[: len(energy) // per_hop * per_hop].reshape(-1, per_hop).sum(axis=1)
        if len(hops) < 4:
            return float("-inf")
        blocks = (hops[:-3] + hops[1:-2] + hops[2:-1] + hops[3:]) / (4 * per_hop * self.frame)
        with np.errstate(divide="ignore"):
            loudness = -0.691 + 10 * np.log10(blocks)
        gated = blocks[loudness >= -70.0]
        if not len(gated):
            return float("-inf")
        relative = -0.691 + 10 * np.log10(gated.mean()) - 10.0
        final = gated[-0.691 + 10 * np.log10(gated) >= relative]
        return float(-0.691 + 10 * np.log10(final.mean()))


def sample_peaks(block: NDArray[Any], frame: int) -> NDArray[Any]:
    """The largest sample of each frame of a block (the last frame may be short)."""
    n = len(block) // frame * frame
    peaks: NDArray[Any] = np.abs(block[:n]).reshape(-1, frame, block.shape[1]).max(axis=(1, 2))
    if n < len(block):
        peaks = np.append(peaks, np.abs(block[n:]).max())
    return peaks


def true_peaks(mix: Mix, peaks: NDArray[Any], frame: int, candidates: NDArray[Any]) -> NDArray[Any]:
    """`peaks` with 4x-oversampled true peaks for the candidate frames, rendered again in runs.

    Only frames that could pass the ceiling need it, so only they are mixed again: a few
    runs of speech, not the whole session.
    """
    from scipy.signal import resample_poly

    peaks = peaks.copy()
    if not len(candidates):
        return peaks
    # runs of consecutive frames, cut to bounded lengths (a continuous guide tone makes one long run)
    breaks = np.flatnonzero((np.diff(candidates) > 1) | (np.arange(1, len(candidates)) % MAX_RUN == 0)) + 1
    for run in np.split(candidates, breaks):
        a = max(0, int(run[0]) * frame - EDGE)
        b = min(mix.length, (int(run[-1]) + 1) * frame + EDGE)
        upsampled = np.abs(resample_poly(mix.render(a, b), 4, 1, axis=0)).max(axis=1)
        starts = np.maximum(0, (run * frame - a) * 4)  # each frame's stretch, to the next one's start
        peaks[run] = np.maximum(peaks[run], np.maximum.reduceat(upsampled, starts))
    return peaks


def plan(mix: Mix, target_lufs: float = DEFAULT_LUFS, ceiling_dbtp: float = PEAK_CEILING_DBTP) -> Master:
    """Measure the mix once and plan the gain and the limiter that bring it to the target."""
    meter = LoudnessMeter(mix.sr, mix.channels)
    frame = meter.frame
    peaks = []
    for _, block in mix.blocks(size=frame * 256):
        meter.feed(block)
        peaks.append(sample_peaks(block, frame))
    measured = meter.integrated()
    if not np.isfinite(measured):
        return Master(0.0, np.ones(1), frame, measured, target_lufs)
    ceiling = 10 ** (ceiling_dbtp / 20)
    gain_db = target_lufs - measured
    # A true peak lies at most ~3.5 dB over the samples around it; with the largest gain the
    # make-up may reach, frames below this cannot touch the ceiling and need no oversampling.
    reach = 10 ** ((gain_db + MAX_MAKEUP_DB + INTERSAMPLE_DB) / 20)
    raw = np.concatenate(peaks)
    raw_peaks = true_peaks(mix, raw, frame, np.flatnonzero(raw * reach > ceiling))
    limiter = _limiter(raw_peaks, gain_db, ceiling)
    planned = gain_db
    for _ in range(MAKEUP_ROUNDS):  # limiting takes a little loudness: make it up, limit again
        if limiter.min() >= 1.0:
            break
        limited = meter.integrated(limiter)
        error = target_lufs - (limited + gain_db)
        if not np.isfinite(limited) or abs(error) < 0.05:
            break
        gain_db = min(gain_db + error, planned + MAX_MAKEUP_DB)
        limiter = _limiter(raw_peaks, gain_db, ceiling)
        if gain_db >= planned + MAX_MAKEUP_DB:
            break
    return Master(gain_db, limiter, frame, measured, target_lufs)


def _limiter(peaks: NDArray[Any], gain_db: float, ceiling: float) -> NDArray[Any]:
    """The limiter's gain per frame that keeps `peaks` raised by `gain_db` under `ceiling`."""
    needed = np.minimum(1.0, ceiling / np.maximum(peaks * 10 ** (gain_db / 20), 1e-12))
    return _smooth(needed, FRAME)


def _smooth(needed: NDArray[Any], frame_seconds: float) -> NDArray[Any]:
    """A gain curve at or below `needed` everywhere: instant attack, gradual release."""
    return release_curve(needed, frame_seconds / RELEASE * 4)


# -- the written file --------------------------------------------------------------------------

DELIVERED_PEAK_DBTP = -1.0  # what every delivered file promises
LOUDNESS_TOLERANCE = 0.5  # LU from the target before a file is encoded again
LOUDNESS_PROMISE = 1.0  # LU from the target that every delivered file keeps, or the render warns


@dataclass(frozen=True)
class Measured:
    """Integrated loudness and true peak of a written file, read back by ffmpeg (EBU R128)."""

    lufs: float
    true_peak: float

    @property
    def lufs_known(self) -> bool:
        return math.isfinite(self.lufs)

    @property
    def peak_known(self) -> bool:
        return math.isfinite(self.true_peak)

    def meets(self, target: float, tolerance: float = LOUDNESS_TOLERANCE) -> bool:
        loud = not self.lufs_known or abs(self.lufs - target) <= tolerance
        return loud and (not self.peak_known or self.true_peak <= DELIVERED_PEAK_DBTP)

    def describe(self) -> str:
        return f"{self.lufs:.1f} LUFS, true peak {self.true_peak:.1f} dBTP"


_INTEGRATED = re.compile(r"I:\s*(-?[\d.]+|-inf)\s*LUFS")
_TRUE_PEAK = re.compile(r"Peak:\s*(-?[\d.]+|-inf)\s*dBFS")


EBUR128 = ["-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-"]  # ffmpeg's arguments after -i


def parse_ebur128(stderr: str) -> Measured | None:
    """The loudness and true peak in the summary ffmpeg's ebur128 filter prints, or None."""
    at = stderr.rfind("Summary:")
    loud, peak = _INTEGRATED.search(stderr[at:]), _TRUE_PEAK.search(stderr[at:])
    if at < 0 or loud is None or peak is None:
        return None
    return Measured(float(loud.group(1)), float(peak.group(1)))


def measure_file(path: Path) -> Measured:
    """Decode `path` with ffmpeg and measure it (ebur128 with true peak)."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-i", str(path), *EBUR128]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    measured = parse_ebur128(proc.stderr)
    if proc.returncode != 0 or measured is None:
        last = proc.stderr.strip().splitlines()[-1:] or ["?"]
        raise EncoderError(f"ffmpeg could not measure the file it wrote ({last})")
    return measured


def overshoots(path: Path, sample_rate: int, channels: int, frame: int, raised_db: float = 0.0) -> dict[int, float]:
    """Frames of a written file whose 4x-oversampled peak, raised by `raised_db`, passes the delivered ceiling.

    The file is decoded as a stream, so memory stays flat; only frames whose samples come
    within INTERSAMPLE_DB of the ceiling are oversampled. Returns frame index -> true peak (linear).
    """
    from scipy.signal import resample_poly

    raise_by = 10 ** (raised_db / 20)
    ceiling = 10 ** (DELIVERED_PEAK_DBTP / 20) / raise_by
    near = ceiling / 10 ** (INTERSAMPLE_DB / 20)
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
           "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(sample_rate), "-"]
    found: dict[int, float] = {}
    block_frames = 256
    size = frame * block_frames * channels * 4
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        at = 0  # frames read so far
        while True:
            raw = proc.stdout.read(size)
            if not raw:
                break
            whole = raw[: len(raw) // (4 * channels) * 4 * channels]
            block: NDArray[Any] = np.frombuffer(whole, dtype="<f4").reshape(-1, channels)
            peaks = sample_peaks(block, frame)
            for index in np.flatnonzero(peaks > near):
                a, b = int(index) * frame, min(len(block), (int(index) + 1) * frame)
                context = block[max(0, a - EDGE) : b + EDGE]
                peak = float(np.abs(resample_poly(context, 4, 1, axis=0)).max())
                if peak > ceiling:
                    found[at + int(index)] = peak * raise_by
            at += -(-len(block) // frame)
    if proc.returncode != 0:
        raise EncoderError("ffmpeg could not decode the file it wrote")
    return found


def tighten(master: Master, found: dict[int, float], margin_db: float = 0.5) -> Master:
    """`master` with its limiter lowered where the written file passed the ceiling, and only there."""
    if not found:
        return master
    ceiling = 10 ** ((DELIVERED_PEAK_DBTP - margin_db) / 20)
    need = np.ones(max(len(master.limiter), max(found) + 3))
    for index, peak in found.items():
        for near in range(max(0, index - 2), index + 3):  # the encoder's delay and pre-echo blur a frame or two
            need[near] = min(need[near], ceiling / peak)
    limiter = np.ones(len(need))
    limiter[: len(master.limiter)] = master.limiter
    return Master(master.gain_db, limiter * _smooth(need, FRAME), master.frame, master.measured_lufs,
                  master.target_lufs)
