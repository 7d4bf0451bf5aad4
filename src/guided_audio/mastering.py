"""Mastering: one fixed gain to the target loudness, and a true-peak limiter only where needed.

Loudness is measured per ITU-R BS.1770-4 (K-weighting from pyloudnorm's filter design,
400 ms gating blocks on a 100 ms hop) while the mix streams past, so memory does not
grow with the session's length. The limiter is planned from per-frame true peaks
(4x oversampled) as a slow gain curve and applied when the mix is rendered again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyloudnorm
from scipy.signal import lfilter, lfilter_zi, resample_poly

from guided_audio.mix import Mix

DEFAULT_LUFS = -16.0  # spoken-word stereo target (Apple Podcasts; AES TD1004 range)
PEAK_CEILING_DBTP = -2.0  # leaves room for lossy encoders' overshoot under -1 dBTP
FRAME = 0.01  # seconds per limiter frame
RELEASE = 0.25  # seconds for the limiter to recover
MAKEUP_ROUNDS = 4


@dataclass(frozen=True)
class Master:
    """How to turn the mix into the delivered signal."""

    gain_db: float
    limiter: np.ndarray  # linear gain per frame (1.0 where no limiting is needed)
    frame: int  # samples per limiter frame
    measured_lufs: float
    target_lufs: float

    def apply(self, start: int, block: np.ndarray) -> np.ndarray:
        """Scale a block of the mix that starts at sample `start`."""
        n = len(block)
        frames = np.arange(start, start + n) / self.frame - 0.5
        curve = np.interp(frames, np.arange(len(self.limiter)), self.limiter)
        gain = (10 ** (self.gain_db / 20) * curve).astype(np.float32)
        return np.clip(block * gain[:, None], -1.0, 1.0)


class LoudnessMeter:
    """Integrated loudness (BS.1770-4) of a signal fed in consecutive blocks."""

    def __init__(self, sample_rate: int, channels: int = 2):
        filters = pyloudnorm.Meter(sample_rate)._filters
        self.stages = [(f.b, f.a) for f in filters.values()]
        self.state = [[lfilter_zi(b, a) * 0.0 for b, a in self.stages] for _ in range(channels)]
        self.hop = int(round(sample_rate * 0.1))
        self.carry = np.zeros((0, channels))
        self.hops: list[float] = []  # sum of channel mean squares per 100 ms hop

    def feed(self, block: np.ndarray) -> None:
        weighted = np.empty(block.shape, dtype=np.float64)
        for ch in range(block.shape[1]):
            x = block[:, ch].astype(np.float64)
            for n, (b, a) in enumerate(self.stages):
                x, self.state[ch][n] = lfilter(b, a, x, zi=self.state[ch][n])
            weighted[:, ch] = x
        data = np.concatenate([self.carry, weighted]) if len(self.carry) else weighted
        whole = len(data) // self.hop * self.hop
        if whole:
            squares = (data[:whole] ** 2).reshape(-1, self.hop, data.shape[1]).sum(axis=1)
            self.hops.extend(squares.sum(axis=1).tolist())
        self.carry = data[whole:]

    def integrated(self) -> float:
        hops = np.array(self.hops)
        if len(hops) < 4:
            return float("-inf")
        blocks = (hops[:-3] + hops[1:-2] + hops[2:-1] + hops[3:]) / (4 * self.hop)
        with np.errstate(divide="ignore"):
            loudness = -0.691 + 10 * np.log10(blocks)
        gated = blocks[loudness >= -70.0]
        if not len(gated):
            return float("-inf")
        relative = -0.691 + 10 * np.log10(gated.mean()) - 10.0
        with np.errstate(divide="ignore"):
            final = gated[-0.691 + 10 * np.log10(gated) >= relative]
        return float(-0.691 + 10 * np.log10(final.mean()))


def frame_peaks(block: np.ndarray, frame: int, oversample_above: float) -> np.ndarray:
    """Per-frame peak of a block; frames whose sample peak is high get a 4x true-peak estimate."""
    n = len(block) // frame * frame
    peaks = np.abs(block[:n]).reshape(-1, frame, block.shape[1]).max(axis=(1, 2))
    hot = np.flatnonzero(peaks > oversample_above)
    for i in hot:
        a, b = max(0, i * frame - 16), min(len(block), (i + 1) * frame + 16)
        peaks[i] = max(peaks[i], float(np.abs(resample_poly(block[a:b], 4, 1, axis=0)).max()))
    if n < len(block):
        peaks = np.append(peaks, np.abs(block[n:]).max())
    return peaks


def plan(mix: Mix, target_lufs: float = DEFAULT_LUFS, ceiling_dbtp: float = PEAK_CEILING_DBTP) -> Master:
    """Measure the mix and plan the gain and the limiter that bring it to the target."""
    frame = int(FRAME * mix.sr)
    meter = LoudnessMeter(mix.sr)
    peaks = []
    for _, block in mix.blocks(size=frame * 4096):
        meter.feed(block)
        peaks.append(frame_peaks(block, frame, oversample_above=0.25))
    measured = meter.integrated()
    if not np.isfinite(measured):
        return Master(0.0, np.ones(1), frame, measured, target_lufs)
    gain_db = target_lufs - measured
    raw_peaks = np.concatenate(peaks)
    peak = raw_peaks * 10 ** (gain_db / 20)
    ceiling = 10 ** (ceiling_dbtp / 20)
    needed = np.minimum(1.0, ceiling / np.maximum(peak, 1e-9))
    limiter = _smooth(needed, frame / mix.sr)
    for _ in range(MAKEUP_ROUNDS):  # limiting took a little loudness: measure again, make it up
        if limiter.min() >= 1.0:
            break
        error = target_lufs - _measure_limited(mix, Master(gain_db, limiter, frame, measured, target_lufs))
        if abs(error) < 0.05:
            break
        gain_db += error
        needed = np.minimum(1.0, ceiling / np.maximum(raw_peaks * 10 ** (gain_db / 20), 1e-9))
        limiter = _smooth(needed, frame / mix.sr)
    return Master(gain_db, limiter, frame, measured, target_lufs)


def _smooth(needed: np.ndarray, frame_seconds: float) -> np.ndarray:
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


def _measure_limited(mix: Mix, master: Master) -> float:
    meter = LoudnessMeter(mix.sr)
    for start, block in mix.blocks(size=master.frame * 4096):
        meter.feed(master.apply(start, block))
    return meter.integrated()
