"""Mastering: one fixed gain to the target loudness, and a true-peak limiter only where needed.

Loudness is measured per ITU-R BS.1770-4 (K-weighting from pyloudnorm's filter design,
400 ms gating blocks on a 100 ms hop) while the mix streams past, so memory does not
grow with the session's length. The limiter is planned from per-frame true peaks
(4x oversampled) as a slow gain curve and applied when the mix is rendered again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from guided_audio.mix import STEP, Mix

DEFAULT_LUFS = -16.0  # spoken-word stereo target (Apple Podcasts; AES TD1004 range)
DEFAULT_MONO_LUFS = -19.0  # the same perceived level for mono files
PEAK_CEILING_DBTP = -2.0  # leaves room for lossy encoders' overshoot under -1 dBTP
FRAME = 0.01  # seconds per limiter frame
RELEASE = 0.06  # seconds for the limiter to recover: it catches transients, not whole words
MAKEUP_ROUNDS = 12  # each round costs no rendering; the error shrinks by about half a round
MAX_MAKEUP_DB = 6.0  # beyond this the limiter would be squashing speech: stop short of the target
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
    # Looking one frame either side keeps the interpolated curve under the need.
    need = needed.copy()
    need[1:] = np.minimum(need[1:], needed[:-1])
    need[:-1] = np.minimum(need[:-1], needed[1:])
    if need.min() >= 1.0:
        return need
    step = frame_seconds / RELEASE
    out = np.empty_like(need)
    level = 1.0
    for i, n in enumerate(need):
        level = min(n, level + (1.0 - level) * step * 4)
        out[i] = level
    return out
