"""Tests for the sound generator and the committed sound library in sounds/."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from guided_audio import soundgen
from guided_audio.ffmpeg import ffmpeg_exe
from guided_audio.soundgen import LOOP_FRAMES, SAMPLE_RATE, SOUNDS

ROOT = Path(__file__).resolve().parents[1]
SOUND_DIR = ROOT / "sounds"
BEDS = [name for name, spec in SOUNDS.items() if spec.kind == "bed"]
CUES = [name for name, spec in SOUNDS.items() if spec.kind == "cue"]
EXPECTED = {"soft-rain", "ocean-swell", "warm-room", "gentle-drone", "night-air",
            "singing-bowl", "bell", "soft-chime", "wood-tick"}


def db(x: np.ndarray) -> float:
    """RMS of x in dBFS."""
    return 20 * np.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-12))


def flac_streaminfo(path: Path) -> tuple[int, int, int, int]:
    """Read (sample rate, channels, bits per sample, total frames) from a FLAC header."""
    data = path.read_bytes()[:42]
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "not a FLAC file starting with STREAMINFO"
    packed = int.from_bytes(data[18:26], "big")  # bytes 10..17 of the STREAMINFO block
    return (packed >> 44, ((packed >> 41) & 0x7) + 1, ((packed >> 36) & 0x1F) + 1,
            packed & 0xFFFFFFFFF)


@cache
def decoded(name: str) -> np.ndarray:
    """Decode sounds/NAME.flac with ffmpeg to float32 (frames, 2)."""
    cmd = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i",
           str(SOUND_DIR / f"{name}.flac"), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2).astype(np.float64)


def test_registry_names_and_fields() -> None:
    assert set(SOUNDS) == EXPECTED
    for name, spec in SOUNDS.items():
        assert spec.name == name and spec.kind in ("bed", "cue")
        assert spec.description and "\n" not in spec.description
    assert len({spec.seed for spec in SOUNDS.values()}) == len(SOUNDS)


@pytest.mark.parametrize("name", ["warm-room", "wood-tick"])
def test_render_is_deterministic(name: str) -> None:
    first, second = SOUNDS[name].render(), SOUNDS[name].render()
    assert first.shape == second.shape
    assert np.array_equal(first, second)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_file_format(name: str) -> None:
    rate, channels, bits, frames = flac_streaminfo(SOUND_DIR / f"{name}.flac")
    assert (rate, channels, bits) == (SAMPLE_RATE, 2, 16)
    audio = decoded(name)
    assert len(audio) == frames
    if SOUNDS[name].kind == "bed":
        assert frames == LOOP_FRAMES
    else:
        assert SAMPLE_RATE <= frames <= 7 * SAMPLE_RATE


@pytest.mark.parametrize("name", ["gentle-drone", "soft-chime"])
def test_committed_file_matches_generator(name: str) -> None:
    # 1 LSB of slack: libm differences between machines may flip a rounding.
    fresh = soundgen.to_int16(SOUNDS[name].render()).astype(np.int32)
    stored = np.round(decoded(name) * 32768).astype(np.int32)
    assert fresh.shape == stored.shape
    assert np.max(np.abs(fresh - stored)) <= 1


@pytest.mark.parametrize("name", BEDS)
def test_bed_loops_seamlessly(name: str) -> None:
    x = decoded(name)
    typical = np.percentile(np.abs(np.diff(x, axis=0)), 99, axis=0)
    assert np.all(np.abs(x[0] - x[-1]) <= 4 * typical)
    half = SAMPLE_RATE // 2
    assert abs(db(x[:half]) - db(x[-half:])) <= 1.5


@pytest.mark.parametrize("name", BEDS)
def test_bed_levels_and_width(name: str) -> None:
    x = decoded(name)
    assert -31.0 <= db(x) <= -25.0
    assert 20 * np.log10(np.max(np.abs(x))) <= -3.0
    correlation = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
    assert 0.2 <= correlation <= 0.97  # related but not identical channels


@pytest.mark.parametrize("name", CUES)
def test_cue_attack_decay_and_peak(name: str) -> None:
    x = decoded(name)
    peak = np.max(np.abs(x))
    assert -6.5 <= 20 * np.log10(peak) <= -5.5
    assert np.all(np.abs(x[0]) < 1e-3)  # starts from silence: no click
    assert np.max(np.abs(x[: SAMPLE_RATE // 2000])) < 0.5 * peak  # attack takes a few ms
    ms20 = SAMPLE_RATE // 50
    windows = x[: len(x) // ms20 * ms20].reshape(-1, ms20, 2)
    levels = [db(w) for w in windows]
    assert levels[0] >= max(levels) - 6.0  # no leading silence: the sound starts at once
    assert db(x[-SAMPLE_RATE // 20:]) < -60.0 and np.max(np.abs(x[-ms20:])) < 1e-3


def test_warm_room_has_no_mains_hum() -> None:
    f, power = signal.welch(decoded("warm-room").mean(axis=1), SAMPLE_RATE, nperseg=1 << 16)
    for hum in (50, 60, 100, 120):
        at = power[np.argmin(np.abs(f - hum))]
        around = power[(np.abs(f - hum) > 2) & (np.abs(f - hum) < 10)]
        assert at < 4 * np.median(around)


def test_soft_rain_is_not_hissy() -> None:
    f, power = signal.welch(decoded("soft-rain").mean(axis=1), SAMPLE_RATE, nperseg=1 << 14)
    assert power[f > 6000].sum() < 0.02 * power.sum()


def test_sound_library_is_modest_in_size() -> None:
    total = sum(p.stat().st_size for p in SOUND_DIR.glob("*.flac"))
    assert total < 15 * 1024 * 1024
