"""Deterministic synthesizer for the project's ambient beds and cue sounds.

Every sound in ``sounds/`` is made here from seeded noise and sine waves; no
recordings are used. Run ``python -m guided_audio.soundgen [--out DIR]`` to
regenerate the FLAC files (44.1 kHz, 16-bit, stereo). Each sound has a fixed
seed in ``SOUNDS``, so two runs give identical samples.

Beds are 30 s seamless loops. Their noise is built directly as a spectrum of
exactly ``LOOP_FRAMES`` points and turned into audio with one inverse real
FFT, so the signal is periodic with that length by construction. Every later
step keeps that property: filters are applied in the frequency domain over the
whole loop (circular), amplitude movements use whole numbers of cycles per
loop, and sparse events that run past the end are wrapped onto the start.
Stereo width comes from mixing one shared noise with one independent noise per
channel, so left and right are related but not identical.

* ``soft-rain``: pink noise band-limited to about 150 Hz - 3.5 kHz plus a
  quieter low-passed brown layer for body, with ~4.5 soft droplets a second
  (short damped sines whose pitch rises slightly, randomly panned), the
  droplet layer low-passed again so nothing ticks sharply.
* ``ocean-swell``: a low "body" noise band (60-700 Hz) and a brighter "wash"
  band (300 Hz - 3 kHz) both following a swell envelope made of 10 s and 7.5 s
  cosines; the wash follows the square of the envelope so it only rises at the
  crest of each swell. The loop starts in a trough.
* ``warm-room``: brown-ish noise (1/f above 80 Hz) between 35 Hz and ~700 Hz
  with a broad +3 dB bump around 180 Hz for warmth. It is continuous noise,
  so there is no mains hum line at 50/60 Hz.
* ``gentle-drone``: an open fifth on A (110 Hz, 165 Hz, 220 Hz, a faint
  330 Hz), each tone a soft triangle-like partial (odd harmonics at 1/n^2) with
  a quieter detuned twin that beats slowly (every 10-15 s). All frequencies
  are multiples of 1/30 Hz, so each partial completes whole cycles per loop.
* ``night-air``: pink noise from 250 Hz to ~6 kHz in two layers whose balance
  follows a slow, breathing-like swell (7.5 s and 10 s cosines; the upper
  layer moves more), plus four sparse trains of quiet ~4.5 kHz cricket chirps
  that are low-passed and smeared with a short diffuse tail so they sound far.

Cues start with a raised-cosine attack of a few milliseconds (first sample is
zero), decay exponentially and end with a short fade to exact silence; they
are peak-normalized to -6 dBFS.

* ``singing-bowl``: partials at 1, 2.76, 5.4 and 8.9 x 220 Hz; each is a pair
  a few tenths of a hertz to a few hertz apart, so it beats, with different
  beat phases left and right. The fundamental rings longest (T60 ~7 s, audible ~6 s).
* ``bell``: a warm meditation bell at 330 Hz with partials 1, 2.01, 2.98,
  4.16 and 5.43, upper partials quiet and short, T60 ~4 s.
* ``soft-chime``: two sines at 880 Hz and 881.5 Hz plus a quiet octave at
  1760 Hz, T60 ~2 s.
* ``wood-tick``: three damped modes (420, 950, 2480 Hz) plus a short
  band-passed noise burst, all gone within ~0.3 s; the file is 1 s long.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from guided_audio.ffmpeg import ffmpeg_exe
from guided_audio.sounds import CATALOGUE

SAMPLE_RATE = 44_100
LOOP_SECONDS = 30
LOOP_FRAMES = SAMPLE_RATE * LOOP_SECONDS
CUE_PEAK_DB = -6.0
BED_PEAK_LIMIT_DB = -3.0

Audio = NDArray[Any]  # float64, shape (frames, 2), full scale = 1.0


# --------------------------------------------------------------------------
# Small numeric helpers
# --------------------------------------------------------------------------


def db_to_amp(db: float) -> float:
    """Convert decibels to a linear amplitude factor."""
    return float(10.0 ** (db / 20.0))


def rms_dbfs(x: NDArray[Any]) -> float:
    """Return the RMS level of all samples in dBFS (full scale = 1.0)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return float(20.0 * np.log10(max(rms, 1e-12)))


def peak_dbfs(x: NDArray[Any]) -> float:
    """Return the sample peak of all samples in dBFS."""
    return float(20.0 * np.log10(max(float(np.max(np.abs(x))), 1e-12)))


def _freqs(n: int) -> NDArray[Any]:
    return np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)


def _lowpass(f: NDArray[Any], cutoff: float, order: int = 2) -> NDArray[Any]:
    """Butterworth-shaped magnitude response (zero phase)."""
    gain: NDArray[Any] = 1.0 / np.sqrt(1.0 + (f / cutoff) ** (2 * order))
    return gain


def _highpass(f: NDArray[Any], cutoff: float, order: int = 2) -> NDArray[Any]:
    safe = np.maximum(f, 1e-9)  # DC gets (numerically) zero gain
    gain: NDArray[Any] = 1.0 / np.sqrt(1.0 + (cutoff / safe) ** (2 * order))
    return gain


def _tilt(f: NDArray[Any], exponent: float, floor_hz: float = 20.0) -> NDArray[Any]:
    """Amplitude slope 1/f**exponent (0.5 = pink, 1 = brown), flat below floor_hz."""
    gain: NDArray[Any] = np.maximum(f, floor_hz) ** -exponent
    return gain


def _bump(f: NDArray[Any], centre: float, octaves: float, gain_db: float) -> NDArray[Any]:
    """Broad bell-shaped boost on a log-frequency axis."""
    dist = np.log2(np.maximum(f, 1e-9) / centre) / octaves
    gain: NDArray[Any] = 1.0 + (db_to_amp(gain_db) - 1.0) * np.exp(-0.5 * dist**2)
    return gain


# --------------------------------------------------------------------------
# Loop-safe building blocks (everything here is periodic in the loop length)
# --------------------------------------------------------------------------


def _shaped_noise(rng: np.random.Generator, n: int, gain: NDArray[Any]) -> NDArray[Any]:
    """Mono noise with magnitude `gain` over rfft bins, periodic in n, unit RMS."""
    # Drawing the spectrum directly (instead of FFT-ing white noise) is the
    # same statistically and makes the loop periodicity explicit.
    bins = n // 2 + 1
    spectrum = (rng.standard_normal(bins) + 1j * rng.standard_normal(bins)) * gain
    spectrum[0] = 0.0  # no DC offset
    x = np.fft.irfft(spectrum, n=n)
    unit: NDArray[Any] = x / np.sqrt(np.mean(x**2))
    return unit


def _stereo_noise(
    rng: np.random.Generator, n: int, gain: NDArray[Any], correlation: float
) -> Audio:
    """Stereo noise whose channels have the given correlation (0..1)."""
    shared = _shaped_noise(rng, n, gain)
    own = np.sqrt(1.0 - correlation)
    left = np.sqrt(correlation) * shared + own * _shaped_noise(rng, n, gain)
    right = np.sqrt(correlation) * shared + own * _shaped_noise(rng, n, gain)
    return np.column_stack([left, right])


def _circular_filter(x: NDArray[Any], gain: NDArray[Any]) -> NDArray[Any]:
    """Zero-phase filter over the whole loop; circular, so loops stay seamless."""
    spectrum = np.fft.rfft(x, axis=0)
    shape = (-1,) + (1,) * (x.ndim - 1)
    return np.fft.irfft(spectrum * gain.reshape(shape), n=x.shape[0], axis=0)


def _circular_convolve(x: NDArray[Any], ir: NDArray[Any]) -> NDArray[Any]:
    """Convolve each column of x with the matching column of ir, wrapping at the loop end."""
    n = x.shape[0]
    padded = np.zeros_like(x)
    padded[: ir.shape[0]] = ir
    return np.fft.irfft(np.fft.rfft(x, axis=0) * np.fft.rfft(padded, axis=0), n=n, axis=0)


def _loop_cos(n: int, cycles: int) -> NDArray[Any]:
    """cos() completing a whole number of cycles over n samples (0 rad at sample 0)."""
    return np.cos(2.0 * np.pi * cycles * np.arange(n) / n)


def _loop_freq(hz: float, seconds: int = LOOP_SECONDS) -> float:
    """Snap a frequency to a whole number of cycles per loop."""
    return round(hz * seconds) / seconds


def _scatter(n: int, events: Iterable[tuple[int, Audio]]) -> Audio:
    """Sum stereo events at start offsets into an n-frame loop, wrapping tails onto the start."""
    events = list(events)
    longest = max((len(e) for _, e in events), default=0)
    assert longest <= n, "an event longer than the loop would wrap more than once"
    buf = np.zeros((n + longest, 2))
    for start, event in events:
        buf[start : start + len(event)] += event
    buf[: longest] += buf[n:]  # the part that ran past the loop end continues at its start
    return buf[:n]


def _pan(mono: NDArray[Any], position: float) -> Audio:
    """Equal-power pan; position -1 (left) .. +1 (right), centre keeps unit gain per channel."""
    angle = (position + 1.0) * np.pi / 4.0
    panned: Audio = np.column_stack([mono * np.cos(angle), mono * np.sin(angle)]) * np.sqrt(2.0)
    return panned


def _set_rms(x: Audio, db: float) -> Audio:
    scaled: Audio = x * (db_to_amp(db) / np.sqrt(np.mean(x**2)))
    return scaled


def _finish_bed(x: Audio, rms_db: float) -> Audio:
    """Set a bed's RMS, and pull it down if that would push peaks past the limit."""
    x = _set_rms(x, rms_db)
    limit = db_to_amp(BED_PEAK_LIMIT_DB - 0.5)  # margin for 16-bit rounding
    peak = float(np.max(np.abs(x)))
    return x * (limit / peak) if peak > limit else x


def _time(seconds: float) -> NDArray[Any]:
    return np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE


def _attack(frames: int) -> NDArray[Any]:
    """Raised-cosine ramp from 0 to 1 (first value exactly 0)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.arange(frames) / frames)


# --------------------------------------------------------------------------
# Beds
# --------------------------------------------------------------------------


def _droplet(rng: np.random.Generator) -> NDArray[Any]:
    """One soft drop: a damped sine whose pitch rises a little, like a small 'plip'."""
    t = _time(0.06)
    f0 = np.exp(rng.uniform(np.log(1400.0), np.log(3200.0)))
    pitch = f0 * (1.0 + 0.35 * (1.0 - np.exp(-t / 0.012)))
    phase = 2.0 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    env = np.exp(-t / rng.uniform(0.006, 0.016))
    env[:44] *= _attack(44)  # 1 ms attack so a drop never clicks
    return np.asarray(np.sin(phase) * env)


def make_soft_rain(rng: np.random.Generator) -> Audio:
    """Soft rain: band-limited pink noise, a brown body layer and sparse soft droplets."""
    n, f = LOOP_FRAMES, _freqs(LOOP_FRAMES)
    hiss = _stereo_noise(rng, n, _tilt(f, 0.5) * _highpass(f, 150) * _lowpass(f, 3500), 0.35)
    body = _stereo_noise(rng, n, _tilt(f, 1.0) * _highpass(f, 40) * _lowpass(f, 500), 0.5)
    count = round(4.5 * LOOP_SECONDS)
    drops = _scatter(n, (
        (int(rng.integers(n)),
         _pan(_droplet(rng) * db_to_amp(rng.uniform(-15.0, 0.0)), rng.uniform(-0.7, 0.7)))
        for _ in range(count)
    ))
    # Low-pass the drops again so they read as soft taps, not ticks.
    drops = _circular_filter(drops, _lowpass(f, 4000, 1))
    drops = _set_rms(drops, -11.0)
    # Rain intensity breathes very slightly (cycles of 15 s and 10 s).
    swell = 1.0 + 0.06 * _loop_cos(n, 2) + 0.04 * _loop_cos(n, 3)
    mix = (hiss + db_to_amp(-6.0) * body) * swell[:, None] + drops
    return _finish_bed(mix, -28.0)


def make_ocean_swell(rng: np.random.Generator) -> Audio:
    """Ocean swell: low and bright noise bands rising and falling with 10 s and 7.5 s swells."""
    n, f = LOOP_FRAMES, _freqs(LOOP_FRAMES)
    body = _stereo_noise(rng, n, _tilt(f, 1.0, 60) * _highpass(f, 60) * _lowpass(f, 700), 0.5)
    wash = _stereo_noise(rng, n, _tilt(f, 0.5) * _highpass(f, 300) * _lowpass(f, 3000), 0.3)
    # 0 at the loop start (a trough) and even around it, so the loop seam is calm;
    # 3 and 4 cycles per 30 s are the 10 s and 7.5 s swells.
    swell3 = 0.5 - 0.5 * _loop_cos(n, 3)
    swell4 = 0.5 - 0.5 * _loop_cos(n, 4)
    # Slightly different mixes left and right make the swell drift across the image.
    env = np.column_stack([0.6 * swell3 + 0.4 * swell4, 0.5 * swell3 + 0.5 * swell4])
    mix = body * (0.35 + 0.65 * env) + db_to_amp(-4.0) * wash * (0.08 + 0.92 * env**2)
    return _finish_bed(mix, -28.0)


def make_warm_room(rng: np.random.Generator) -> Audio:
    """Warm room tone: quiet brown-ish low noise with a broad low-mid warmth, no hum lines."""
    n, f = LOOP_FRAMES, _freqs(LOOP_FRAMES)
    gain = _lowpass(f, 80, 1) * _highpass(f, 35) * _lowpass(f, 700) * _bump(f, 180, 1.0, 3.0)
    return _finish_bed(_stereo_noise(rng, n, gain, 0.6), -30.0)


# (base Hz, level, twin detune Hz): the twin beats against the base tone.
# Detunes are multiples of 1/30 Hz, so beats repeat within the loop.
_DRONE_TONES: tuple[tuple[float, float, float], ...] = (
    (110.0, 1.0, 0.1),  # A2, beats every 10 s
    (165.0, 0.7, 2 / 30),  # E3 (exact fifth), beats every 15 s
    (220.0, 0.35, 0.1),  # A3
    (330.0, 0.1, 2 / 30),  # E4, barely there
)


def _soft_triangle(t: NDArray[Any], hz: float, phase: float) -> NDArray[Any]:
    """Triangle-like tone with only its first three odd harmonics (rounder than a true triangle)."""
    out = np.zeros_like(t)
    for k in (1, 3, 5):
        out += np.sin(2.0 * np.pi * _loop_freq(k * hz) * t + k * phase) / k**2
    return out


def make_gentle_drone(rng: np.random.Generator) -> Audio:
    """Gentle drone: an open fifth on A of soft partials with slow beating; whole cycles per loop."""
    t = np.arange(LOOP_FRAMES) / SAMPLE_RATE
    # Main tones share their phase in both channels so a mono sum never cancels them.
    mains = sum((level * _soft_triangle(t, hz, rng.uniform(0, 2 * np.pi)) for hz, level, _ in _DRONE_TONES),
                np.zeros_like(t))
    channels = []
    for side in (1.0, -1.0):  # left twin sharp, right twin flat: beats drift across the image
        ch = mains.copy()
        for hz, level, detune in _DRONE_TONES:
            ch += 0.3 * level * _soft_triangle(t, hz + side * detune, rng.uniform(0, 2 * np.pi))
        channels.append(ch)
    tremolo = 1.0 + 0.1 * _loop_cos(LOOP_FRAMES, 1)  # one very slow breath per loop
    return _finish_bed(np.column_stack(channels) * tremolo[:, None], -29.0)


def _cricket_train(rng: np.random.Generator) -> NDArray[Any]:
    """A few regular chirps, each 3-4 Hann-windowed pulses of a ~4.5 kHz tone."""
    carrier = rng.uniform(4200.0, 4800.0)
    pulse = np.hanning(int(0.014 * SAMPLE_RATE))
    pulse_step, chirp_step = int(0.028 * SAMPLE_RATE), int(rng.uniform(0.45, 0.6) * SAMPLE_RATE)
    chirps = int(rng.integers(3, 6))
    env = np.zeros(chirps * chirp_step)
    for c in range(chirps):
        loud = rng.uniform(0.6, 1.0)
        for p in range(int(rng.integers(3, 5))):
            start = c * chirp_step + p * pulse_step
            env[start : start + len(pulse)] += loud * pulse
    return np.asarray(env * np.sin(2.0 * np.pi * carrier * np.arange(len(env)) / SAMPLE_RATE))


def _distance_tail(rng: np.random.Generator) -> Audio:
    """Stereo impulse response: direct sound plus a short decorrelated diffuse tail."""
    t = _time(0.3)
    ir = rng.standard_normal((len(t), 2)) * np.exp(-t / 0.06)[:, None] * 0.08
    ir[0] += 0.5
    return np.asarray(ir)


def make_night_air(rng: np.random.Generator) -> Audio:
    """Night air: airy noise with slow breathing-like movement and sparse distant crickets."""
    n, f = LOOP_FRAMES, _freqs(LOOP_FRAMES)
    low = _stereo_noise(rng, n, _tilt(f, 0.5) * _highpass(f, 250) * _lowpass(f, 1500), 0.4)
    high = _stereo_noise(rng, n, _tilt(f, 0.5) * _highpass(f, 1500) * _lowpass(f, 6000, 1), 0.3)
    # Two incommensurate-looking periods (7.5 s and 10 s) so the movement does not
    # set a strict breathing pace that could fight the voice's own pacing.
    breath = 0.5 - 0.5 * (0.7 * _loop_cos(n, 4) + 0.3 * _loop_cos(n, 3))
    air = low * (0.8 + 0.2 * breath)[:, None] + 0.7 * high * (0.45 + 0.55 * breath)[:, None]
    air = _set_rms(air, 0.0)
    crickets = _scatter(n, (
        (int(rng.integers(n)), _pan(_cricket_train(rng), rng.uniform(-0.8, 0.8)))
        for _ in range(4)
    ))
    crickets = _circular_convolve(_circular_filter(crickets, _lowpass(f, 5000, 1)), _distance_tail(rng))
    crickets *= db_to_amp(-12.0) / np.max(np.abs(crickets))  # chirp peaks well under the air
    return _finish_bed(air + crickets, -30.0)


# --------------------------------------------------------------------------
# Cues
# --------------------------------------------------------------------------

# A struck partial: (frequency Hz, level, T60 seconds, beat Hz of its close twin).
Partial = tuple[float, float, float, float]


def _struck(
    rng: np.random.Generator, partials: Sequence[Partial], seconds: float, twin_level: float
) -> Audio:
    """Exponentially decaying partial pairs; twin phases differ per channel so beats move."""
    t = _time(seconds)
    out = np.zeros((len(t), 2))
    for hz, level, t60, beat in partials:
        decay = np.exp(-t * np.log(1000.0) / t60)  # -60 dB after t60 seconds
        main = np.sin(2.0 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
        for ch in range(2):
            twin = np.sin(2.0 * np.pi * (hz + beat) * t + rng.uniform(0, 2 * np.pi))
            out[:, ch] += level * decay * (main + twin_level * twin)
    return out


def _finish_cue(x: Audio, attack_ms: float, fade_s: float) -> Audio:
    """Soft attack, fade the last fade_s seconds to exact silence, normalize peak to -6 dBFS."""
    a = int(attack_ms * SAMPLE_RATE / 1000)
    x[:a] *= _attack(a)[:, None]
    r = int(fade_s * SAMPLE_RATE)
    x[-r:] *= (0.5 + 0.5 * np.cos(np.pi * np.linspace(0.0, 1.0, r)))[:, None]
    normalized: Audio = x * (db_to_amp(CUE_PEAK_DB) / np.max(np.abs(x)))
    return normalized


def _felt_mallet(rng: np.random.Generator, seconds: float, cutoff: float, tau: float) -> Audio:
    """Short low-passed noise thump: the soft contact of a felt mallet."""
    t = _time(seconds)
    sos = signal.butter(2, cutoff, "lowpass", fs=SAMPLE_RATE, output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal((len(t), 2)), axis=0)
    thump: Audio = noise / np.max(np.abs(noise)) * np.exp(-t / tau)[:, None]
    return thump


def _pad_to(x: Audio, frames: int) -> Audio:
    return np.pad(x, ((0, frames - len(x)), (0, 0)))


def make_singing_bowl(rng: np.random.Generator) -> Audio:
    """Singing bowl strike: beating inharmonic partial pairs over a long decay."""
    f0 = 220.0
    partials = [
        (f0, 1.0, 7.0, 0.8),
        (2.76 * f0, 0.45, 4.0, 1.6),
        (5.4 * f0, 0.2, 2.5, 2.5),
        (8.9 * f0, 0.07, 1.5, 3.5),
    ]
    x = _struck(rng, partials, 7.0, twin_level=0.7)
    x += 0.08 * _pad_to(_felt_mallet(rng, 0.05, 600.0, 0.008), len(x))
    return _finish_cue(x, attack_ms=5.0, fade_s=1.0)


def make_bell(rng: np.random.Generator) -> Audio:
    """Soft meditation bell: warm inharmonic partials with a medium decay."""
    f0 = 330.0
    partials = [
        (f0, 1.0, 4.0, 0.6),
        (2.01 * f0, 0.45, 2.8, 0.9),
        (2.98 * f0, 0.2, 2.0, 1.2),
        (4.16 * f0, 0.1, 1.4, 1.8),
        (5.43 * f0, 0.05, 1.0, 2.4),
    ]
    x = _struck(rng, partials, 5.0, twin_level=0.5)
    x += 0.06 * _pad_to(_felt_mallet(rng, 0.05, 900.0, 0.006), len(x))
    return _finish_cue(x, attack_ms=4.0, fade_s=1.0)


def make_soft_chime(rng: np.random.Generator) -> Audio:
    """Soft chime: two close sines near 880 Hz plus a quiet octave, short decay."""
    partials = [(880.0, 1.0, 2.0, 1.5), (1760.0, 0.25, 1.2, 0.0)]
    x = _struck(rng, partials, 2.5, twin_level=0.6)
    return _finish_cue(x, attack_ms=3.0, fade_s=0.5)


def make_wood_tick(rng: np.random.Generator) -> Audio:
    """Soft wooden tick: damped modes of a small block plus a band-passed contact burst."""
    t = _time(1.0)
    modes = [(420.0, 0.3, 0.035), (950.0, 1.0, 0.025), (2480.0, 0.3, 0.010)]  # Hz, level, tau s
    mono = sum((lvl * np.exp(-t / tau) * np.sin(2 * np.pi * hz * t) for hz, lvl, tau in modes), np.zeros_like(t))
    sos = signal.butter(2, (700.0, 2500.0), "bandpass", fs=SAMPLE_RATE, output="sos")
    burst = signal.sosfilt(sos, rng.standard_normal((len(t), 2)), axis=0)
    burst *= 0.25 * np.exp(-t / 0.004)[:, None] / np.max(np.abs(burst))
    x: Audio = mono[:, None] + burst
    x[int(0.35 * SAMPLE_RATE) :] = 0.0  # already below -80 dB here; make the rest true silence
    x[: int(0.35 * SAMPLE_RATE)] = _finish_cue(x[: int(0.35 * SAMPLE_RATE)], 1.5, 0.1)
    return x


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


# The catalogue (names, kinds, seeds, descriptions) lives in `guided_audio.sounds`, which needs no
# numerical libraries; each entry names its maker here.
SOUNDS = CATALOGUE


# --------------------------------------------------------------------------
# Encoding and command line
# --------------------------------------------------------------------------


def default_out_dir() -> Path:
    """The repository's sounds/ folder."""
    return Path(__file__).resolve().parents[2] / "sounds"


def to_int16(x: Audio) -> NDArray[Any]:
    """Round float samples to 16-bit integers (no dither: deterministic, levels are far above the LSB)."""
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")


def write_flac(audio: Audio, path: Path) -> None:
    """Encode stereo float audio as 16-bit FLAC at `path`, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_flac = path.with_name(f".{path.stem}.tmp.flac")
    with tempfile.TemporaryDirectory() as tmp_dir:
        wav_path = Path(tmp_dir) / "sound.wav"
        with wave.open(str(wav_path), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(to_int16(audio).tobytes())
        # bitexact + no metadata: identical bytes across runs, no encoder version tag.
        cmd = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(wav_path),
               "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
               "-c:a", "flac", "-compression_level", "8", "-f", "flac", str(tmp_flac)]
        try:
            subprocess.run(cmd, check=True, capture_output=True)
            os.replace(tmp_flac, path)
        except subprocess.CalledProcessError as exc:
            tmp_flac.unlink(missing_ok=True)
            detail = exc.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"ffmpeg failed for {path.name}: {detail}") from exc


def stereo_correlation(x: Audio) -> float:
    """Pearson correlation between the left and right channels."""
    return float(np.corrcoef(x[:, 0], x[:, 1])[0, 1])


def spectral_centroid(x: Audio) -> float:
    """Power-weighted mean frequency in Hz (a rough 'brightness' number)."""
    power = np.abs(np.fft.rfft(x.mean(axis=1))) ** 2
    f = _freqs(len(x))
    return float(np.sum(f * power) / np.sum(power))


def generate(out_dir: Path, names: Sequence[str] | None = None) -> None:
    """Render the named sounds (default: all) to FLAC files in out_dir, printing their levels."""
    print(f"{'sound':<14}{'kind':<5}{'secs':>6}{'RMS dBFS':>10}{'peak dBFS':>11}"
          f"{'L/R corr':>10}{'centroid':>10}{'time s':>8}")
    for name in names or list(SOUNDS):
        spec = SOUNDS[name]
        started = time.perf_counter()
        audio = spec.render()
        write_flac(audio, out_dir / spec.filename)
        print(f"{name:<14}{spec.kind:<5}{len(audio) / SAMPLE_RATE:>6.2f}{rms_dbfs(audio):>10.1f}"
              f"{peak_dbfs(audio):>11.1f}{stereo_correlation(audio):>10.2f}"
              f"{spectral_centroid(audio):>9.0f}Hz{time.perf_counter() - started:>8.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: regenerate the sound library."""
    parser = argparse.ArgumentParser(
        prog="python -m guided_audio.soundgen", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=default_out_dir(),
                        help="output folder (default: %(default)s)")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="sounds to render (default: all): " + ", ".join(SOUNDS))
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SOUNDS]
    if unknown:
        parser.error(f"unknown sound(s): {', '.join(unknown)}")
    started = time.perf_counter()
    generate(args.out, args.names)
    print(f"done in {time.perf_counter() - started:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
