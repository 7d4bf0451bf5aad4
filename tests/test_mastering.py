"""Mastering: the streaming loudness meter, the limiter curve, and delivered loudness and peaks.

The independent reference for delivered files is ffmpeg's ebur128 filter (integrated
loudness and 4x-oversampled true peak); for the meter itself it is pyloudnorm.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from pathlib import Path

import mutagen
import numpy as np
import pyloudnorm
import pytest

from guided_audio import ffmpeg, loudness, mastering, practices
from guided_audio.ffmpeg import ffmpeg_exe
from guided_audio.mastering import FRAME, Master, _smooth
from guided_audio.mix import Levels
from guided_audio.render import RenderRequest, render

SR = 44100
FRAME_SAMPLES = round(SR * FRAME)
FORMATS = ("mp3", "ogg", "opus", "flac", "m4a", "wav")
# Breathing (the shortest built-in, 3 minutes) in every format; every other built-in in flac at its
# shortest length, those of more than 5 minutes only in the slow run (minutes of audio each on a
# shared 2-core machine).
EVERY_FORMAT = ("breathing",)
OTHER_BUILTINS = tuple(n for n in practices.builtin_names() if n not in EVERY_FORMAT)


def _shortest(name: str) -> float:
    return float(practices.load(name).minutes.min or 1.0)


BUILTIN_CASES = [(p, f) for p in EVERY_FORMAT for f in FORMATS] + [
    pytest.param(p, "flac", marks=[pytest.mark.slow] if _shortest(p) > 5 else []) for p in OTHER_BUILTINS
]
TRUE_PEAK_LIMIT = -1.0  # dBTP, what every delivered file promises
LU_TOLERANCE = 1.0


# -- helpers -------------------------------------------------------------------------------




_I = re.compile(r"I:\s*(-?[\d.]+|-inf)\s*LUFS")
_PEAK = re.compile(r"Peak:\s*(-?[\d.]+|-inf)\s*dBFS")


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of a file by ffmpeg's ebur128 filter."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-i", str(path),
           "-af", "ebur128=peak=true", "-f", "null", "-"]
    err = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
    summary = err[err.rindex("Summary:"):]
    return float(_I.search(summary).group(1)), float(_PEAK.search(summary).group(1))


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """Write float samples (frames, 2) in [-1, 1] as 16-bit stereo WAV."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(SR)
        out.writeframes(pcm.tobytes())
    return path


def write_template(folder: Path, body: str, *, ambient: str = "warm-room", name: str = "t.j2") -> Path:
    front = f'title = "Mastering test"\nambient = "{ambient}"\n[minutes]\ndefault = 1\nmin = 0.1\nmax = 30\n'
    path = folder / name
    path.write_text(f"+++\n{front}+++\n{body.strip()}\n", encoding="utf-8")
    return path


def frame_energies(signal: np.ndarray) -> np.ndarray:
    """K-weighted energy of every 10 ms frame (all channels), as the master's model keeps them."""
    power = loudness.k_power(signal, SR)
    frames = -(-len(power) // FRAME_SAMPLES)
    padded = np.zeros(frames * FRAME_SAMPLES)
    padded[: len(power)] = power
    return padded.reshape(frames, FRAME_SAMPLES).sum(axis=1)


def lufs_of(energies: np.ndarray) -> float:
    return loudness.integrated(energies, FRAME_SAMPLES, SR)


def noise_bursts(channels: int, seed: int = 7) -> np.ndarray:
    """Noise bursts at very different levels with true silence between (the gates matter)."""
    rng = np.random.default_rng(seed)
    parts = []
    for level_db, seconds in [(-12, 3.0), (None, 2.0), (-30, 4.0), (-20, 2.5), (None, 1.3),
                              (-45, 3.0), (-8, 0.7), (-75, 3.0), (-25, 5.1)]:
        n = round(seconds * SR)
        if level_db is None:
            parts.append(np.zeros((n, channels)))
        else:
            parts.append(rng.standard_normal((n, channels)) * 10 ** (level_db / 20))
    return np.concatenate(parts).astype(np.float32)


def sine_with_silences(channels: int) -> np.ndarray:
    t = np.arange(round(2.3 * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * 997 * t)
    low = 0.05 * np.sin(2 * np.pi * 60 * t)
    gap = np.zeros(round(1.7 * SR))
    mono = np.concatenate([tone, gap, low, gap[: round(0.4 * SR)], tone * 0.5, gap, tone + low])
    cols = [mono] + [np.roll(mono, 5 * c) * (1 - 0.3 * c) for c in range(1, channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def reference_lufs(signal: np.ndarray) -> float:
    data = signal.astype(np.float64)
    return float(pyloudnorm.Meter(SR).integrated_loudness(data[:, 0] if data.shape[1] == 1 else data))


# -- the meter -----------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [2, 1])
@pytest.mark.parametrize("make", [noise_bursts, sine_with_silences], ids=["noise-bursts", "sine-silences"])
def test_meter_matches_pyloudnorm(make, channels):
    signal = make(channels)
    ref = reference_lufs(signal)
    assert np.isfinite(ref)
    assert lufs_of(frame_energies(signal)) == pytest.approx(ref, abs=0.1)


def test_k_weighting_has_the_recommendations_coefficients_at_48_khz():
    (shelf_b, shelf_a), (hp_b, hp_a) = loudness.k_weighting(48000)
    assert shelf_b == pytest.approx((1.53512485958697, -2.69169618940638, 1.19839281085285), abs=1e-9)
    assert shelf_a == pytest.approx((1.0, -1.69065929318241, 0.73248077421585), abs=1e-9)
    assert hp_b == (1.0, -2.0, 1.0)
    assert hp_a == pytest.approx((1.0, -1.99004745483398, 0.99007225036621), abs=1e-9)


def test_looped_power_is_the_steady_state_of_the_loop():
    loop = noise_bursts(2, seed=5)[: 3 * SR]
    steady = loudness.k_power(np.concatenate([loop, loop]), SR)[len(loop):]
    assert np.allclose(loudness.k_power(loop, SR, loop=True), steady, rtol=1e-6, atol=1e-12)


def test_true_peak_envelope_finds_the_peak_between_samples():
    n = np.arange(SR)
    x = (0.5 * np.sin(2 * np.pi * n / 4 + np.pi / 4)).astype(np.float32)[:, None]  # samples at +-0.354
    envelope = loudness.peak_envelope(x)
    assert np.abs(x).max() == pytest.approx(0.354, abs=1e-3)
    assert envelope[100:-100].max() == pytest.approx(0.5, abs=0.01)


def limiter_like_gains(frames: int) -> np.ndarray:
    """Per-frame gains like a limiter's and a fader's: a slow swell plus sudden dips that recover."""
    t = np.arange(frames) * FRAME
    gains = 0.6 + 0.35 * np.sin(2 * np.pi * t / 3.7)
    dips = np.ones(frames)
    for at, depth in [(150, 0.2), (900, 0.5), (1300, 0.1), (2100, 0.35)]:
        dips[at] = depth
    return gains * _smooth(dips, FRAME)


def test_integrated_with_frame_gains_matches_the_scaled_signal():
    signal = noise_bursts(2, seed=11)
    energies = frame_energies(signal)
    frames = len(energies)
    gains = limiter_like_gains(frames)
    scaled = signal * np.repeat(gains, FRAME_SAMPLES)[: len(signal), None].astype(np.float32)
    assert lufs_of(energies * gains**2) == pytest.approx(reference_lufs(scaled), abs=0.15)
    # (not exactly -6.02 dB for half the gain: the quietest bursts fall under the -70 LUFS gate)
    assert lufs_of(energies * 0.25) == pytest.approx(reference_lufs(signal * 0.5), abs=0.1)


# -- the limiter curve ---------------------------------------------------------------------


def sparse_needs(seed: int = 5, frames: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    needed = np.ones(frames)
    for at in rng.choice(frames - 200, 25, replace=False):
        needed[at : at + rng.integers(1, 6)] = rng.uniform(0.1, 0.95)
    at = frames // 3
    needed[at : at + 60] = np.linspace(0.3, 0.9, 60)  # a sustained loud passage
    return needed


def test_smooth_never_exceeds_the_need_and_recovers():
    needed = sparse_needs()
    curve = _smooth(needed, FRAME)
    assert curve.shape == needed.shape
    assert np.all(curve <= 1.0)
    assert np.all(curve <= needed + 1e-12)
    # one frame either side too, so interpolating between frame centres stays under the need
    assert np.all(curve[1:] <= needed[:-1] + 1e-12)
    assert np.all(curve[:-1] <= needed[1:] + 1e-12)
    # release: it rises steadily after the last dip and is (almost) fully back within 0.6 s
    last = int(np.flatnonzero(needed < 1.0).max()) + 1
    release = curve[last + 1 :]
    assert np.all(np.diff(release) >= 0)
    assert release[int(0.6 / FRAME)] > 0.999
    assert curve[-1] == pytest.approx(1.0, abs=1e-6)
    # and it is not a brick wall: right after a short dip it is still below 1 (no pumping)
    isolated = np.ones(400)
    isolated[100] = 0.25
    smooth = _smooth(isolated, FRAME)
    assert smooth[100] <= 0.25 and 0.25 < smooth[102] < 0.99  # recovers over RELEASE, not at once


def test_smooth_leaves_unlimited_signal_alone():
    assert np.array_equal(_smooth(np.ones(500), FRAME), np.ones(500))


@pytest.mark.parametrize("start", [0, 441 * 37 + 123])
def test_applied_limiter_stays_under_each_frames_need(start):
    """Master.apply interpolates the curve per sample; no sample's gain may exceed its frame's need."""
    needed = sparse_needs(seed=9, frames=800)
    master = Master(gain_db=0.0, limiter=_smooth(needed, FRAME), frame=FRAME_SAMPLES,
                    measured_lufs=-16.0, target_lufs=-16.0)
    length = len(needed) * FRAME_SAMPLES - start
    gain = master.apply(start, np.ones((length, 2), dtype=np.float32))[:, 0]
    frame_of_sample = (start + np.arange(length)) // FRAME_SAMPLES
    assert np.all(gain <= needed[frame_of_sample] + 1e-6)
    # it limits only around the dips: far from every dip the gain is back to 1
    quiet = np.convolve(needed < 1.0, np.ones(121), mode="same") == 0
    assert np.all(gain[quiet[frame_of_sample]] > 0.999)


# -- renders: peaky sources ----------------------------------------------------------------


def click_train(seconds: float = 3.0, seed: int = 1) -> np.ndarray:
    """Full-scale single-sample clicks every 25 ms and five 5 ms full-scale noise bursts."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * SR))
    x[:: int(0.025 * SR)] = 1.0
    for k in range(5):
        at = int((0.3 + 0.6 * k) * SR)
        x[at : at + 220] = rng.choice([-1.0, 1.0], 220)
    return np.stack([x, np.roll(x, 3)], axis=1)


@pytest.fixture(scope="module")
def peaky_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("peaky")
    cue = write_wav(folder / "clicks.wav", click_train())
    return write_template(folder, f"""
@cue {cue} wait=0.5
Welcome. This is a short test with a very peaky sound.
@cue {cue}
Breathe in, and breathe out, slowly.
@pause 1
@cue {cue}
Thank you.
""")


def render_peaky(template: Path, folder: Path, fmt: str, cache: Path):
    # cue at 0 dB: full-scale clicks in the mix, about 20 dB of limiting on them
    return render(RenderRequest(practice=str(template), minutes=1, output=folder / f"peaky.{fmt}",
                                cache_dir=cache, levels=Levels(cue=0.0)))


# Every ffmpeg the render may run: encoders overshoot differently from build to build.
FFMPEGS = ["bundled"] + (["system"] if shutil.which("ffmpeg") else [])


@pytest.fixture(params=FFMPEGS)
def which_ffmpeg(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "system":
        monkeypatch.setenv(ffmpeg.ENV, "system")
    else:
        monkeypatch.delenv(ffmpeg.ENV, raising=False)
    return str(request.param)


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_peaky_click_train_is_limited_and_on_target(peaky_template, tmp_path, cache_dir, fmt, which_ffmpeg):
    result = render_peaky(peaky_template, tmp_path, fmt, cache_dir)
    assert result.master.limiter.min() < 0.5  # the limiter really had work to do
    lufs, peak = ebur128(result.audio)
    assert peak <= TRUE_PEAK_LIMIT
    if fmt == "flac":
        assert lufs == pytest.approx(-16.0, abs=LU_TOLERANCE)
    else:
        # A lossy encoder low-passes much of a full-scale click train's energy away (Debian's LAME
        # took 1.4 LU here), and raising the gain only feeds the limiter: the render may miss the
        # target on such a signal, but never silently.
        missed = [w for w in result.warnings if "the written file measures" in w]
        assert lufs == pytest.approx(-16.0, abs=LU_TOLERANCE) or missed, (lufs, result.warnings)


def test_peaky_click_train_in_m4a_stays_under_minus_1_dbtp(peaky_template, tmp_path, cache_dir, which_ffmpeg):
    result = render_peaky(peaky_template, tmp_path, "m4a", cache_dir)
    _, peak = ebur128(result.audio)
    assert peak <= TRUE_PEAK_LIMIT


def test_loudness_made_of_short_bursts_only_keeps_a_finite_gain_and_the_ceiling(tmp_path, cache_dir):
    n = np.arange(int(0.003 * SR))
    x = np.zeros(2 * SR)
    x[: len(n)] = np.sin(2 * np.pi * 1000 * n / SR)  # a 3 ms full-scale blip every 2 s
    cue = write_wav(tmp_path / "blip.wav", np.stack([x, x], axis=1))
    template = write_template(tmp_path, "\n".join([f"@cue {cue} wait=2"] * 15), ambient="none")
    result = render(RenderRequest(practice=str(template), minutes=1, output=tmp_path / "blips.flac",
                                  cache_dir=cache_dir))
    assert np.isfinite(result.master.gain_db)
    lufs, peak = ebur128(result.audio)
    assert peak <= TRUE_PEAK_LIMIT
    assert lufs <= -16.0 + LU_TOLERANCE  # it may fall short of the target, never overshoot


def test_intersample_peaks_in_a_quiet_mix_stay_under_the_ceiling(tmp_path, cache_dir):
    n = np.arange(int(0.02 * SR))
    burst = np.zeros(2 * SR)
    burst[: len(n)] = 0.895 * np.sin(2 * np.pi * n / 4 + np.pi / 4)  # samples at +-0.63, true peak 0.895
    cue = write_wav(tmp_path / "fs4.wav", np.stack([burst, burst], axis=1))
    t = np.arange(3 * SR) / SR
    bed = 0.063 * np.sin(2 * np.pi * 441 * t)
    bed_path = write_wav(tmp_path / "bed.wav", np.stack([bed, bed], axis=1))
    template = write_template(tmp_path, "\n".join([f"@cue {cue} wait=2"] * 15), ambient=str(bed_path))
    result = render(RenderRequest(practice=str(template), minutes=1, output=tmp_path / "fs4.flac",
                                  cache_dir=cache_dir))
    lufs, peak = ebur128(result.audio)
    assert lufs == pytest.approx(-16.0, abs=LU_TOLERANCE)
    assert peak <= TRUE_PEAK_LIMIT


# -- renders: every built-in practice in every format --------------------------------------


def builtin_or_skip(name: str) -> str:
    if name not in practices.builtin_names():
        pytest.skip(f"built-in practice '{name}' is not there (yet)")
    return name


def session_minutes(practice: str, fmt: str) -> float:
    """The practice's shortest allowed length: each practice x format pair is checked at it."""
    return _shortest(practice)


@pytest.mark.parametrize("practice, fmt", BUILTIN_CASES)
def test_builtin_practice_meets_loudness_and_true_peak(practice, fmt, tmp_path, cache_dir):
    minutes = session_minutes(builtin_or_skip(practice), fmt)
    result = render(RenderRequest(practice=practice, minutes=minutes,
                                  output=tmp_path / f"{practice}.{fmt}", cache_dir=cache_dir))
    assert result.audio.suffix == f".{fmt}" and result.audio.is_file()
    lufs, peak = ebur128(result.audio)
    assert lufs == pytest.approx(-16.0, abs=LU_TOLERANCE), f"{practice}.{fmt}: {lufs} LUFS"
    assert peak <= TRUE_PEAK_LIMIT, f"{practice}.{fmt}: {peak} dBTP"


def test_mono_render_is_mono_at_minus_19(tmp_path, cache_dir):
    name = builtin_or_skip("breathing")
    result = render(RenderRequest(practice=name, minutes=3, output=tmp_path / "mono.flac",
                                  cache_dir=cache_dir, channels=1))
    assert mutagen.File(result.audio).info.channels == 1
    assert result.master.target_lufs == -19.0
    lufs, peak = ebur128(result.audio)
    assert lufs == pytest.approx(-19.0, abs=LU_TOLERANCE)
    assert peak <= TRUE_PEAK_LIMIT


def test_explicit_loudness_target_is_met(tmp_path, cache_dir, peaky_template):
    result = render(RenderRequest(practice=str(peaky_template), minutes=1, output=tmp_path / "quiet.flac",
                                  cache_dir=cache_dir, loudness=-23.0))
    lufs, peak = ebur128(result.audio)
    assert lufs == pytest.approx(-23.0, abs=LU_TOLERANCE)
    assert peak <= TRUE_PEAK_LIMIT


class _Planned(Exception):
    """Stops a render once mastering is planned: the plan is all these tests need."""


def planned_master(monkeypatch: pytest.MonkeyPatch, request: RenderRequest) -> Master:
    real_plan, found = mastering.predict, []

    def plan_then_stop(*args, **kwargs):
        found.append(real_plan(*args, **kwargs))
        raise _Planned

    monkeypatch.setattr(mastering, "predict", plan_then_stop)
    with pytest.raises(_Planned):
        render(request)
    monkeypatch.setattr(mastering, "predict", real_plan)
    return found[0]


@pytest.mark.slow
@pytest.mark.xfail(reason=(
    "Known limit: a long session that is mostly breathing cues and bed measures quieter than its "
    "speech (those stretches pass the loudness gate), so mastering to the integrated target raises "
    "the whole session, speech included; the make-up cap keeps the limiter from squashing speech"))
def test_breathing_levels_do_not_depend_on_session_length(monkeypatch, tmp_path, cache_dir):
    name = builtin_or_skip("breathing")
    masters = {minutes: planned_master(monkeypatch, RenderRequest(
        practice=name, minutes=minutes, output=tmp_path / f"b{minutes}.flac", cache_dir=cache_dir))
        for minutes in (10, 20)}
    assert masters[20].gain_db == pytest.approx(masters[10].gain_db, abs=3.0)
    for master in masters.values():
        assert 20 * np.log10(master.limiter.min()) > -8.0  # limiting stays a peak control


@pytest.mark.parametrize("practice, channels", [("breathing", 2), ("comfort", 1)])
def test_the_model_predicts_the_rendered_mix(practice, channels, monkeypatch, tmp_path, cache_dir):
    """The master plans from the mix's parts; the mix rendered for real has that loudness, and
    no frame's true peak passes the model's bound."""
    captured = []

    def grab(mix, *args, **kwargs):
        captured.append(mix)
        raise _Planned

    monkeypatch.setattr(mastering, "predict", grab)
    with pytest.raises(_Planned):
        render(RenderRequest(practice=builtin_or_skip(practice), minutes=5, output=tmp_path / "m.flac",
                             cache_dir=cache_dir, voice="pyttsx3", channels=channels))
    mix = captured[0]
    energy, bound = mix.model(FRAME_SAMPLES)
    audio = mix.render(0, mix.length)
    assert lufs_of(energy) == pytest.approx(lufs_of(frame_energies(audio)), abs=0.3)
    envelope = loudness.peak_envelope(audio)
    frames = len(envelope) // FRAME_SAMPLES
    actual = envelope[: frames * FRAME_SAMPLES].reshape(frames, FRAME_SAMPLES).max(axis=1)
    assert (actual <= bound[:frames] * 1.0001 + 1e-6).all()
