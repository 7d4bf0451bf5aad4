"""Loudness (ITU-R BS.1770-4) and true peak with numpy alone, for whole short sounds.

The master predicts a session's loudness from its parts (see `Mix.model`): each distinct clip,
cue and bed is K-weighted once, as a whole, and its energy is placed wherever the timeline
puts it. These are the pieces that needs: the K-weighting as an impulse response applied by
FFT, per-sample true-peak envelopes (4x oversampled, also used by `mastering` on the frames it
mixes and on the written file), and the gated integration over 10 ms frames.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

KERNEL = 8192  # samples of the K-weighting's impulse response kept: the rest is below float precision
OVERSAMPLE = 4  # BS.1770-4's true peak: four times the sample rate
PHASE_TAPS = 24  # taps per phase (96 in all): the recommendation's 48 read sharp clicks 1 dB low against ffmpeg's meter
CHUNK = 1 << 16  # samples handled at once by the chunked helpers
HOP = 0.1  # seconds per hop of the gating blocks, which are four hops (400 ms) long


Biquad = tuple[tuple[float, float, float], tuple[float, float, float]]


def k_weighting(sample_rate: int) -> list[Biquad]:
    """The two biquads of the K-weighting, (b, a) each, designed for `sample_rate`.

    A high shelf (about +4 dB above 1.7 kHz: the head's effect) then a high-pass near 38 Hz
    (the RLB curve), from their analogue prototypes through the bilinear transform. At 48 kHz
    they give the coefficients printed in the recommendation.
    """

    def biquad(fc: float, q: float, gain_db: float, shelf: bool) -> Biquad:
        k = math.tan(math.pi * fc / sample_rate)
        norm = 1 + k / q + k * k
        a = (1.0, 2 * (k * k - 1) / norm, (1 - k / q + k * k) / norm)
        if not shelf:
            return (1.0, -2.0, 1.0), a
        vh = 10 ** (gain_db / 20)
        vb = vh**0.4996667741545416
        b = ((vh + vb * k / q + k * k) / norm, 2 * (k * k - vh) / norm, (vh - vb * k / q + k * k) / norm)
        return b, a

    return [
        biquad(1681.974450955533, 0.7071752369554196, 3.999843853973347, shelf=True),
        biquad(38.13547087602444, 0.5003270373238773, 0.0, shelf=False),
    ]


@functools.lru_cache(maxsize=4)
def _kernel(sample_rate: int) -> NDArray[Any]:
    """The K-weighting's impulse response, KERNEL samples of it."""
    x = [1.0] + [0.0] * (KERNEL - 1)
    for b, a in k_weighting(sample_rate):
        y, x1, x2, y1, y2 = [], 0.0, 0.0, 0.0, 0.0
        for v in x:
            out = b[0] * v + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
            x2, x1, y2, y1 = x1, v, y1, out
            y.append(out)
        x = y
    return np.array(x)


def k_power(sound: NDArray[Any], sample_rate: int, loop: bool = False) -> NDArray[Any]:
    """The K-weighted power of each sample of `sound` (frames, channels), summed over its channels.

    A sound is taken as silence before it, or, with `loop`, as its own end repeated before it
    (a bed that loops). The filter's ring after the sound's end is left out. The convolution
    runs in chunks (overlap-add), so a long bed needs little memory.
    """
    x = np.asarray(sound).reshape(len(sound), -1)
    n = len(x)
    if loop and n:
        warm = np.resize(x, (KERNEL * (KERNEL // n + 1) if n < KERNEL else n, x.shape[1]))[-KERNEL:]
        x = np.concatenate([warm, x])
    spectrum = _spectrum(sample_rate)
    size = len(spectrum) * 2 - 2
    chunk = size - KERNEL + 1
    power = np.empty(len(x))
    carry: NDArray[Any] = np.zeros((KERNEL - 1, x.shape[1]))  # the tail still to add to the next chunk
    for at in range(0, len(x), chunk):
        part = np.asarray(x[at : at + chunk], dtype=np.float64)
        out = np.fft.irfft(np.fft.rfft(part, size, axis=0) * spectrum[:, None], size, axis=0)
        out[: KERNEL - 1] += carry
        carry = out[len(part) : len(part) + KERNEL - 1].copy()
        power[at : at + len(part)] = np.einsum("ij,ij->i", out[: len(part)], out[: len(part)])
    return power[-n:] if loop and n else power


@functools.lru_cache(maxsize=4)
def _spectrum(sample_rate: int) -> NDArray[Any]:
    """The K-weighting's spectrum for the chunked convolution (FFTs of 65536 points)."""
    return np.fft.rfft(_kernel(sample_rate), 1 << 16)


def _interpolator() -> NDArray[Any]:
    """Rows that give the points a quarter, a half and three quarters of the way to the next sample.

    Row p interpolates x(n + p/4) from the PHASE_TAPS samples around it: a sinc under a Kaiser window, each row
    scaled to unit gain.
    """
    half = PHASE_TAPS // 2
    offsets = np.arange(PHASE_TAPS) - (half - 1)  # -11 ... 12
    rows = []
    for p in range(1, OVERSAMPLE):
        x = offsets - p / OVERSAMPLE
        window = np.i0(6.0 * np.sqrt(np.clip(1 - (x / half) ** 2, 0, 1))) / np.i0(6.0)
        row = np.sinc(x) * window
        rows.append(row / row.sum())
    return np.array(rows)


_TAPS = [np.ascontiguousarray(row[::-1], dtype=np.float32) for row in _interpolator()]  # as convolution kernels


def peak_envelope(sound: NDArray[Any]) -> NDArray[Any]:
    """For each sample of `sound` (frames, channels), the largest magnitude in any channel at it
    and at the three oversampled points between it and the next sample (in chunks: little memory)."""
    x = np.asarray(sound).reshape(len(sound), -1)
    n = len(x)
    env = np.empty(n, dtype=np.float32)
    before, after = PHASE_TAPS // 2 - 1, PHASE_TAPS // 2  # samples each point needs on either side
    for at in range(0, n, CHUNK):
        size = min(CHUNK, n - at)
        lo, hi = max(0, at - before), min(n, at + size + after)
        part = np.zeros((size + before + after, x.shape[1]), dtype=np.float32)
        part[lo - (at - before) : hi - (at - before)] = x[lo:hi]
        out = np.abs(part[before : before + size]).max(axis=1)
        for channel in np.ascontiguousarray(part.T):
            for row in _TAPS:  # each point between samples: the row's taps over the samples around it
                np.maximum(out, np.abs(np.convolve(channel, row, mode="valid")), out=out)
        env[at : at + size] = out
    return env


def integrated(energy: NDArray[Any], frame: int, sample_rate: int) -> float:
    """Integrated loudness in LUFS of a signal given as the K-weighted energy of each frame.

    `energy[i]` is the sum of the K-weighted squares (all channels) over frame i of `frame`
    samples; blocks of 400 ms on a 100 ms hop are gated at -70 LUFS and then 10 LU under
    the mean of what passed.
    """
    per_hop = round(HOP * sample_rate / frame)
    hops = energy[: len(energy) // per_hop * per_hop].reshape(-1, per_hop).sum(axis=1)
    if len(hops) < 4:
        return float("-inf")
    blocks = (hops[:-3] + hops[1:-2] + hops[2:-1] + hops[3:]) / (4 * per_hop * frame)
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(blocks)
    gated = blocks[loudness >= -70.0]
    if not len(gated):
        return float("-inf")
    relative = -0.691 + 10 * np.log10(gated.mean()) - 10.0
    final = gated[-0.691 + 10 * np.log10(gated) >= relative]
    return float(-0.691 + 10 * np.log10(final.mean()))
