"""The model's analyses of sounds, and the streaming limiter that works on the mixed blocks.

An analysis keeps a sound's K-weighted energy and true peak per bin; it must give the same
numbers whether just worked out or read back from the cache, bound every stretch's true
peak, and be worked out again when its entry is damaged. The limiter measures the frames a
plan marks as the blocks stream by; however the mix is cut into blocks, it must give the
same samples, and keep them under the ceiling.
"""

from __future__ import annotations

import numpy as np
import pytest

from guided_audio import loudness
from guided_audio.analysis import BIN, Analysis, Store, key, samples_key
from guided_audio.mastering import FRAME, Limiter, Plan, _smooth
from guided_audio.mix import neighbours_need

SR = 44100
FRAME_SAMPLES = round(SR * FRAME)


def speechlike(seconds: float = 6.0, channels: int = 1, seed: int = 3) -> np.ndarray:
    """Noise under a syllable-rate envelope, with a few sharp clicks: peaks between samples."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * np.arange(n) / SR) ** 2
    x = rng.standard_normal((n, channels)) * 0.15 * envelope[:, None]
    for at in rng.integers(0, n - 10, 12):
        x[at] = 0.95 * np.sign(rng.standard_normal(channels))
        x[at + 1] = -x[at]  # a sample-rate zigzag: its true peak lies between the samples
    return x.astype(np.float32)


# -- analyses --------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
def test_analysis_energy_matches_the_k_weighted_power_at_bin_edges(channels):
    sound = speechlike(channels=channels)
    known = Analysis.of(sound, SR)
    exact = np.concatenate([[0.0], np.cumsum(loudness.k_power(sound, SR))])
    edges = np.arange(0, len(sound) + 1, BIN)
    assert np.allclose(known.energy_before(edges), exact[edges], rtol=1e-9)
    # between edges, a frame's energy is off by at most a bin's share at each end
    starts = np.arange(0, len(sound) - FRAME_SAMPLES, FRAME_SAMPLES) + 7
    placed = known.energy_before(starts + FRAME_SAMPLES) - known.energy_before(starts)
    actual = exact[starts + FRAME_SAMPLES] - exact[starts]
    assert abs(placed.sum() / actual.sum() - 1) < 1e-3


def test_analysis_peaks_bound_every_stretch_and_are_close():
    sound = speechlike(channels=2)
    known = Analysis.of(sound, SR)
    envelope = loudness.peak_envelope(sound)
    edges = np.unique(np.concatenate([[0], np.arange(123, len(sound), FRAME_SAMPLES), [len(sound)]]))
    bound = known.peaks_between(edges)
    actual = np.maximum.reduceat(envelope, edges[:-1])
    assert (bound >= actual).all()
    assert np.median(bound / actual) < 1.05  # a bin's worth of the neighbours at most


def test_a_stored_analysis_reads_back_identical_and_a_damaged_one_is_worked_out_again(tmp_path):
    sound = speechlike()
    store = Store(tmp_path)
    name = samples_key(sound, SR, False)
    made = store.analysed(name, lambda: sound, SR)
    assert store.path(name).is_file()

    def never() -> np.ndarray:
        raise AssertionError("a stored analysis was analysed again")

    again = Store(tmp_path).analysed(name, never, SR)
    assert again.length == made.length
    assert np.array_equal(again.cumulative, made.cumulative) and np.array_equal(again.peaks, made.peaks)
    data = bytearray(store.path(name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    store.path(name).write_bytes(bytes(data))
    assert Store(tmp_path).get(name) is None
    redone = Store(tmp_path).analysed(name, lambda: sound, SR)
    assert np.array_equal(redone.peaks, made.peaks)
    assert Store(tmp_path).get(name) is not None  # and stored again


def test_keys_change_with_what_shapes_an_analysis():
    sound = speechlike()
    other = sound.copy()
    other[100] += 0.001
    assert samples_key(sound, SR, False) != samples_key(other, SR, False)
    assert samples_key(sound, SR, False) != samples_key(sound, SR, True)
    assert samples_key(sound, SR, False) != samples_key(sound, 48000, False)
    assert key("voice", "a", "sum1") != key("voice", "a", "sum2")


def test_a_store_that_cannot_be_written_is_done_without(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    store = Store(blocked)
    sound = speechlike(seconds=1.0)
    made = store.analysed("ab" * 32, lambda: sound, SR)
    assert made.length == len(sound) and store.get("ab" * 32) is None


# -- the streaming limiter ------------------------------------------------------------------


def plan_for(signal: np.ndarray, ceiling_dbtp: float, gain_db: float = 0.0, slack: float = 1.3) -> Plan:
    """A plan whose bound is above each frame's true peak by `slack`, as the model's is."""
    envelope = loudness.peak_envelope(signal)
    frames = -(-len(signal) // FRAME_SAMPLES)
    padded = np.zeros(frames * FRAME_SAMPLES, dtype=np.float32)
    padded[: len(envelope)] = envelope
    bound = padded.reshape(frames, FRAME_SAMPLES).max(axis=1) * slack
    return Plan(gain_db, bound, FRAME_SAMPLES, ceiling_dbtp, -16.0, -16.0)


def blocks_of(signal: np.ndarray, size: int):
    for at in range(0, len(signal), size):
        yield at, signal[at : at + size]


def streamed(plan: Plan, signal: np.ndarray, size: int) -> tuple[np.ndarray, Limiter]:
    limiter = Limiter(plan, len(signal))
    out = list(limiter.blocks(blocks_of(signal, size)))
    assert [start for start, _ in out] == list(range(0, len(signal), size))  # every block, in order
    return np.concatenate([block for _, block in out]), limiter


@pytest.mark.parametrize("channels", [1, 2])
def test_streamed_limiter_keeps_the_true_peak_under_the_ceiling(channels):
    signal = speechlike(seconds=8.0, channels=channels)
    plan = plan_for(signal, ceiling_dbtp=-6.0, gain_db=2.0)
    out, limiter = streamed(plan, signal, 1 << 16)
    assert limiter.master.limiter.min() < 0.5  # it had work to do
    assert 20 * np.log10(loudness.peak_envelope(out).max()) <= -6.0 + 0.1
    # and it only limits where the plan said it might: elsewhere the gain alone is applied
    quiet = ~np.convolve(plan.candidates(), np.ones(31), mode="same").astype(bool)
    scale = 10 ** (2.0 / 20)
    for frame in np.flatnonzero(quiet)[:200]:
        a, b = frame * FRAME_SAMPLES, (frame + 1) * FRAME_SAMPLES
        assert np.allclose(out[a:b], np.clip(signal[a:b] * np.float32(scale), -1, 1), atol=1e-6)


@pytest.mark.parametrize("size", [1000, 441, 17, 1 << 15])
def test_streamed_limiter_gives_the_same_samples_however_the_mix_is_cut(size):
    signal = speechlike(seconds=5.0, channels=2)
    plan = plan_for(signal, ceiling_dbtp=-6.0)
    whole, reference = streamed(plan, signal, 1 << 16)
    cut, limiter = streamed(plan, signal, size)
    assert np.allclose(limiter.master.limiter, reference.master.limiter, rtol=0, atol=1e-12)
    assert np.allclose(cut, whole, rtol=0, atol=1e-6)
    # the whole curve, applied at once, gives the streamed samples
    assert np.allclose(limiter.master.apply(0, signal), cut, rtol=0, atol=1e-6)


def test_streamed_limiter_curve_is_the_release_curve_of_the_exact_needs():
    signal = speechlike(seconds=5.0, channels=2)
    plan = plan_for(signal, ceiling_dbtp=-6.0)
    _, limiter = streamed(plan, signal, 4096)
    curve = limiter.master.limiter
    needed = limiter.needed
    assert np.all(curve <= neighbours_need(needed) + 1e-12)
    assert np.allclose(curve, _smooth(needed, FRAME), rtol=0, atol=1e-9)


def test_plan_extra_curve_lowers_the_limiter_where_asked():
    signal = speechlike(seconds=3.0, channels=2)
    plan = plan_for(signal, ceiling_dbtp=-6.0)
    extra = np.ones(len(plan.bound))
    extra[100:110] = 0.5
    _, plain = streamed(plan, signal, 1 << 16)
    _, lowered = streamed(Plan(**{**plan.__dict__, "extra": extra}), signal, 1 << 16)
    assert np.allclose(lowered.master.limiter, plain.master.limiter * extra)


def test_the_model_is_the_same_from_the_cache(tmp_path):
    from guided_audio.mix import Mix
    from guided_audio.speech import Clip, Line
    from guided_audio.timeline import Event, Timeline

    speech = speechlike(seconds=2.0)[:, 0]
    bed = speechlike(seconds=3.0, channels=2, seed=5) * 0.3
    cue = speechlike(seconds=0.5, channels=2, seed=6)
    events = (Event("cue", SR, SR + len(cue), name="c"), Event("speech", 2 * SR, 2 * SR + len(speech), text="hello", rate=100))
    timeline = Timeline(SR, 10 * SR, events)

    def model() -> tuple[np.ndarray, np.ndarray]:
        mix = Mix(timeline, {Line("hello", 100): Clip(speech, SR)}, {"c": cue}, {"b": bed}, "b", cache_dir=tmp_path)
        return mix.model(FRAME_SAMPLES)

    fresh = model()
    assert list((tmp_path / "analysis").rglob("*.analysis"))  # the bed's and the cue's
    cached = model()
    assert np.array_equal(fresh[0], cached[0]) and np.array_equal(fresh[1], cached[1])
