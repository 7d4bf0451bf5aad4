"""The mix's levels, measured exactly on synthetic material.

Timelines and Mix objects are built directly with made-up sounds whose level is known
at every sample: a constant (DC) bed shows the bed's gain curve sample by sample, sine
beds and loops show continuity, silent speech clips keep the voice out of the way, and
RMS windows of whole periods of the breath guide's tones give its envelope.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from guided_audio import markup, sounds
from guided_audio.mix import GUIDE_HZ, Levels, Mix, db
from guided_audio.speech import Clip, Line
from guided_audio.timeline import Event, Timeline, plan

SR = 44100
LEVELS = Levels()
FULL = db(LEVELS.bed)  # the bed's gain when nothing ducks or fades it
DC = 0.5  # value of a constant bed or cue: the mix then shows the gain curve directly
GUIDE_WINDOW = 2250  # 51 ms: whole periods of every guide tone (196, 294, 392 Hz = 2, 3, 4 x 98 Hz)


def s(seconds: float) -> int:
    return round(seconds * SR)


def speech_event(start: float, end: float, n: int = 0) -> Event:
    return Event("speech", s(start), s(end), text=f"line {n}", rate=100)


def make_timeline(seconds: float, *events: Event) -> Timeline:
    order = {"section": 0, "ambient": 1, "phase": 2, "guide": 3, "silence": 4, "cue": 5, "speech": 6}
    ordered = sorted(events, key=lambda e: (e.start, order[e.kind], e.end))
    return Timeline(SR, s(seconds), tuple(ordered))


def silent_clips(timeline: Timeline) -> dict[Line, Clip]:
    return {Line(e.text, e.rate): Clip(np.zeros(e.end - e.start, np.float32), SR) for e in timeline.of_kind("speech")}


def constant(value: float, seconds: float = 2.0) -> np.ndarray:
    return np.full((s(seconds), 2), value, dtype=np.float32)


def sine_loop(freq: float, frames: int, amplitude: float = 0.5, phase: float = 0.0) -> np.ndarray:
    """A seamless stereo loop: `freq` must give whole periods in `frames` samples."""
    n = np.arange(frames)
    left = amplitude * np.sin(2 * np.pi * freq * n / SR + phase)
    right = amplitude * np.cos(2 * np.pi * freq * n / SR + phase)
    return np.stack([left, right], axis=1).astype(np.float32)


def render_all(mix: Mix) -> np.ndarray:
    """The whole mix through the same block path a render uses."""
    return np.concatenate([block for _, block in mix.blocks()])


def bed_gain(timeline: Timeline, levels: Levels = LEVELS) -> np.ndarray:
    """The bed's gain at every sample: a constant bed under silent speech."""
    mix = Mix(timeline, silent_clips(timeline), {}, {"dc": constant(DC)}, "dc", levels)
    out = render_all(mix)
    assert np.array_equal(out[:, 0], out[:, 1])
    return out[:, 0].astype(np.float64) / DC


def to_db(ratio: float) -> float:
    return 20 * np.log10(ratio)


def windowed_rms(x: np.ndarray, window: int = GUIDE_WINDOW) -> np.ndarray:
    """RMS of every window of `window` samples; element i is centred on sample i + window // 2."""
    energy = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    return np.sqrt(np.maximum(energy[window:] - energy[:-window], 0.0) / window)


# -- ducking of the bed under speech --------------------------------------------------------


@pytest.mark.parametrize("duck", [None, 20.0])
def test_bed_is_duck_db_lower_under_speech(duck):
    levels = Levels() if duck is None else Levels(duck=duck)
    depth = 15.0 if duck is None else duck
    timeline = make_timeline(40, speech_event(10, 14, 1), speech_event(25, 28, 2))
    gain = bed_gain(timeline, levels)
    under = gain[s(11) : s(13.5)]
    between = gain[s(16) : s(23)]
    assert np.ptp(under) < 1e-6 and np.ptp(between) < 1e-6  # flat where it should be
    assert between.mean() == pytest.approx(FULL, rel=1e-5)
    assert to_db(under.mean() / between.mean()) == pytest.approx(-depth, abs=0.02)


def test_bed_ramps_down_before_the_first_word_and_up_after_the_last():
    start, end = 10.0, 14.0
    gain = bed_gain(make_timeline(30, speech_event(start, end)))
    ducked = FULL * db(-LEVELS.duck)
    # full level until the ramp, which starts duck_down before the word
    assert np.allclose(gain[s(5) : s(start - LEVELS.duck_down - 0.01)], FULL, rtol=1e-5)
    # already all the way down when the word starts (within 0.1 dB), and down through the line
    assert to_db(gain[s(start)] / ducked) < 0.1
    assert np.all(gain[s(start) : s(end)] <= ducked * db(0.1))
    # the way down is gradual and one-way
    down = gain[s(start - LEVELS.duck_down - 0.1) : s(start) + 1]
    assert np.all(np.diff(down) <= 1e-9)
    assert np.max(np.abs(np.diff(down))) < FULL * 0.002
    # still down at the last word's end, then back up over duck_up, gradually
    assert to_db(gain[s(end) - 1] / ducked) < 0.1
    up = gain[s(end) : s(end + LEVELS.duck_up + 0.1)]
    assert np.all(np.diff(up) >= -1e-9)
    assert np.max(np.abs(np.diff(up))) < FULL * 0.002
    assert gain[s(end + 0.3)] < FULL * db(-1)  # not a jump back up
    assert np.allclose(gain[s(end + LEVELS.duck_up + 0.01) : s(25)], FULL, rtol=1e-5)


@pytest.mark.parametrize("gap, stays_down", [(0.5, True), (1.0, True), (1.2, True), (2.0, False), (3.0, False)])
def test_bed_stays_down_through_short_gaps(gap, stays_down):
    first_end = 12.0
    timeline = make_timeline(30, speech_event(8, first_end, 1), speech_event(first_end + gap, first_end + gap + 3, 2))
    gain = bed_gain(timeline)
    ducked = FULL * db(-LEVELS.duck)
    in_gap = gain[s(first_end) : s(first_end + gap)]
    if stays_down:
        assert np.all(in_gap <= ducked * db(0.1))
    else:
        assert in_gap.max() > FULL * db(-1.5)  # the bed comes (nearly) back between the lines


# -- fades and crossfades of the bed --------------------------------------------------------


@pytest.mark.parametrize("levels", [Levels(), Levels(fade_in=2.0, fade_out=8.0)], ids=["default", "2s-8s"])
def test_bed_fades_in_from_silence_and_out_to_silence(levels):
    length = 40.0
    gain = bed_gain(make_timeline(length), levels)
    full = db(levels.bed)
    fade_in, fade_out = s(levels.fade_in), s(levels.fade_out)
    assert gain[0] < full * 1e-3
    assert np.all(np.diff(gain[: fade_in + 1]) >= -1e-9)
    assert gain[fade_in // 2] == pytest.approx(full * np.sin(np.pi / 4), rel=2e-3)  # equal-power curve
    assert np.allclose(gain[fade_in + 16 : len(gain) - fade_out - 16], full, rtol=1e-5)
    assert np.all(np.diff(gain[-fade_out:]) <= 1e-9)
    assert gain[len(gain) - fade_out // 2] == pytest.approx(full * np.sin(np.pi / 4), rel=2e-3)
    assert gain[-1] < full * 1e-3
    # smooth: no step bigger than the steepest part of the fade moves in one gain step
    steepest = full * (np.pi / 2) * 16 / min(fade_in, fade_out)
    assert np.max(np.abs(np.diff(gain))) < 1.5 * steepest


def test_bed_crossfades_and_stops_without_discontinuities():
    """Bed a, then b from 10 s (crossfaded over 3 s), then none from 20 s (b fades out)."""
    a = sine_loop(100.0, SR)  # whole periods in the loop: seamless
    b = sine_loop(150.0, SR, phase=1.0)
    timeline = make_timeline(
        30,
        Event("ambient", s(10), s(10), name="b"),
        Event("ambient", s(20), s(20), name="none"),
    )
    mix = Mix(timeline, {}, {}, {"a": a, "b": b}, "a")
    out = render_all(mix).astype(np.float64)
    # the largest step a 150 Hz sine of amplitude 0.5 at the bed's gain can take
    slope = 0.5 * FULL * 2 * np.pi * 150.0 / SR
    assert np.max(np.abs(np.diff(out, axis=0))) < 1.2 * slope
    # equal-power crossfade of two unrelated tones: the level holds steady through it
    window = SR // 50 * 10  # whole periods of both tones
    rms = windowed_rms(out[:, 0], window)
    steady = rms[s(5) : s(18) - window]
    assert to_db(steady.max() / steady.min()) < 0.1
    # only a before the change, only b after the crossfade, nothing once b has faded out
    def amplitude_at(freq: float, at: float) -> float:
        n = np.arange(s(at), s(at) + window)
        return float(2 * np.abs(np.mean(out[n, 0] * np.exp(-2j * np.pi * freq * n / SR))))
    assert amplitude_at(100, 6) == pytest.approx(0.5 * FULL, rel=1e-3)
    assert amplitude_at(150, 6) < 1e-4
    assert amplitude_at(100, 14) < 1e-4
    assert amplitude_at(150, 14) == pytest.approx(0.5 * FULL, rel=1e-3)
    assert np.all(out[s(23) :] == 0.0)


def test_bed_loops_exactly_and_seamlessly():
    loop = sine_loop(3 * SR / 1000, 1000)  # 3 periods in 1000 samples; blocks are not multiples of it
    mix = Mix(make_timeline(20), {}, {}, {"loop": loop}, "loop")
    out = render_all(mix)
    n = np.arange(s(5), s(14))
    expected = loop[n % len(loop)] * np.float32(FULL)
    np.testing.assert_allclose(out[n], expected, rtol=1e-6, atol=1e-7)
    slope = 0.5 * FULL * 2 * np.pi * (3 * SR / 1000) / SR
    assert np.max(np.abs(np.diff(out.astype(np.float64), axis=0))) < 1.1 * slope


@pytest.mark.parametrize("name", sorted(sounds.names("bed")))
def test_builtin_bed_has_no_click_at_its_loop_point(name):
    bed = sounds.load(sounds.resolve(name, "bed", "test"), SR)
    mix = Mix(make_timeline(len(bed) / SR + 10), {}, {}, {name: bed}, name)
    wrap = len(bed)
    around = mix.render(wrap - SR // 2, wrap + SR // 2).astype(np.float64)
    jumps = np.abs(np.diff(around, axis=0)).max(axis=1)
    at_wrap = jumps[SR // 2 - 1]  # from the loop's last sample to its first
    others = np.delete(jumps, SR // 2 - 1)
    assert at_wrap <= np.percentile(others, 99.9), f"{name}: {at_wrap:.5f} at the loop point"


# -- cues, the guide and the voice ----------------------------------------------------------


@pytest.mark.parametrize("cue_duck", [None, 10.0])
def test_cue_and_guide_drop_cue_duck_db_under_speech(cue_duck):
    levels = Levels() if cue_duck is None else Levels(cue_duck=cue_duck)
    depth = 6.0 if cue_duck is None else cue_duck
    speech = speech_event(8, 11)
    cue = Event("cue", s(2), s(18), name="dc")
    guide = Event("guide", s(2), s(18), name="hold", levels=(1.0, 1.0))
    # the cue alone: a constant, so the mix shows its gain
    timeline = make_timeline(20, speech, cue)
    out = render_all(Mix(timeline, silent_clips(timeline), {"dc": constant(DC, 16)}, {}, None, levels))[:, 0]
    before, under = out[s(5)], out[s(9.5)]
    assert before == pytest.approx(DC * db(levels.cue), rel=1e-5)
    assert to_db(under / before) == pytest.approx(-depth, abs=0.02)
    assert to_db(out[speech.start] / before) < -depth + 0.1  # already down at the word's first sample
    # the guide alone, held at full swell
    timeline = make_timeline(20, speech, guide)
    rms = windowed_rms(render_all(Mix(timeline, silent_clips(timeline), {}, {}, None, levels))[:, 0])
    half = GUIDE_WINDOW // 2
    assert to_db(rms[s(9.5) - half] / rms[s(5) - half]) == pytest.approx(-depth, abs=0.02)


def test_voice_is_placed_at_its_sample_with_its_gain_and_not_ducked():
    t = np.arange(s(2)) / SR
    voice = (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    timeline = make_timeline(20, speech_event(7.3, 7.3 + len(voice) / SR))
    line = timeline.of_kind("speech")[0]
    bed = sine_loop(100.0, SR)
    levels = Levels(voice=-3.0)
    with_voice = render_all(Mix(timeline, {Line(line.text, line.rate): Clip(voice, SR)}, {}, {"a": bed}, "a", levels))
    bed_only = render_all(Mix(timeline, silent_clips(timeline), {}, {"a": bed}, "a", levels))
    placed = (with_voice - bed_only).astype(np.float64)
    expected = np.zeros(len(placed))
    expected[line.start : line.start + len(voice)] = voice * db(-3.0)
    step = 1 / 32767  # the mix holds levelled speech as 16-bit samples
    np.testing.assert_allclose(placed[:, 0], expected, atol=step)
    np.testing.assert_allclose(placed[:, 1], expected, atol=step)


def test_mono_is_the_average_of_the_channels():
    speech = speech_event(6, 8)
    timeline = make_timeline(
        15, speech,
        Event("cue", s(3), s(5), name="c"),
        Event("guide", s(4), s(9), name="inhale", levels=(0.0, 1.0)),
        Event("guide", s(9), s(12), name="exhale", levels=(1.0, 0.0)),
    )
    rng = np.random.default_rng(3)
    cue = (0.2 * rng.standard_normal((s(2), 2))).astype(np.float32)
    bed = sine_loop(100.0, SR, phase=0.3)  # left and right differ
    words = (0.3 * rng.standard_normal(speech.end - speech.start)).astype(np.float32)
    voice = {Line(speech.text, speech.rate): Clip(words, SR)}
    stereo = render_all(Mix(timeline, voice, {"c": cue}, {"a": bed}, "a", channels=2))
    mono = render_all(Mix(timeline, voice, {"c": cue}, {"a": bed}, "a", channels=1))
    assert stereo.shape == (timeline.length, 2) and mono.shape == (timeline.length, 1)
    assert not np.allclose(stereo[:, 0], stereo[:, 1])
    np.testing.assert_allclose(mono[:, 0], stereo.mean(axis=1), atol=1e-7)


# -- the breath guide over a long session ---------------------------------------------------


GUIDE_SCRIPT = """
Opening words for the test.
@breathe {phases} fill guide=on cue=none
@breathe {phases} cycles=1 guide=on cue=none
Closing words.
"""


def guide_session(phases: dict[str, str], minutes: float = 20) -> Timeline:
    text = GUIDE_SCRIPT.format(phases=" ".join(f"{k}={v}" for k, v in phases.items()))
    return plan(markup.parse(text), base_wpm=115, speech_length=lambda text, wpm, *voice: s(3),
                cue_length=lambda name: SR, sample_rate=SR, target_seconds=minutes * 60)


@pytest.mark.parametrize("phases", [
    {"in": "4.4", "hold": "1.3", "out": "6.5"},
    {"in": "4.4", "out": "6.5"},
], ids=["in-hold-out", "in-out"])
def test_guide_envelope_follows_the_breath_to_the_last_cycle(phases):
    """Peaks at the top of the breath, troughs at the end of each exhale, no drift in 20 minutes."""
    timeline = guide_session(phases)
    period = sum(Fraction(v) for v in phases.values())
    inhale, hold = Fraction(phases["in"]), Fraction(phases.get("hold", "0"))
    inhales = [e for e in timeline.of_kind("phase") if e.name == "inhale"]
    start = inhales[0].start
    cycles = len(inhales) - 1  # the fill block's cycles; one more block of one cycle follows
    assert cycles * period > 17 * 60
    # the timeline itself: cycle k starts at exactly start + k x period, to the sample
    assert [e.start for e in inhales] == [start + round(k * period * SR) for k in range(cycles + 1)]

    mix = Mix(timeline, silent_clips(timeline), {}, {}, None)
    half = GUIDE_WINDOW // 2
    tolerance = s(0.060)
    slope_limit = 1.15 * db(LEVELS.guide) * 2 * np.pi * (GUIDE_HZ[0] + 0.35 * GUIDE_HZ[1] + 0.12 * GUIDE_HZ[2]) / SR
    plateau = None
    for k in (0, cycles - 1):  # the first cycle and the last one of the 20-minute block
        a = start + round(k * period * SR)
        b = start + round((k + 1) * period * SR)  # end of this exhale, start of the next inhale
        top_from = start + round((k * period + inhale) * SR)
        top_to = start + round((k * period + inhale + hold) * SR)
        x = mix.render(a - SR, b + SR)[:, 0].astype(np.float64)  # 1 s either side of the cycle
        rms = windowed_rms(x)
        centres = np.arange(len(rms)) + half + (a - SR)

        def at(sample: int, rms: np.ndarray = rms, first: int = a - SR) -> float:
            """The RMS of the window centred on `sample`."""
            return float(rms[sample - first - half])

        # no clicks: the guide's phase runs on across every phase boundary
        assert np.max(np.abs(np.diff(x))) < slope_limit
        # the trough at the end of the exhale
        near = (centres > b - SR // 2) & (centres < b + SR // 2)
        trough = centres[near][np.argmin(rms[near])]
        assert abs(trough - b) <= tolerance, f"cycle {k}: trough {(trough - b) / SR:+.3f} s off"
        # the peak at the top of the breath (anywhere in a hold, which is flat)
        inside = (centres >= a) & (centres <= b)
        peak = centres[inside][np.argmax(rms[inside])]
        assert top_from - tolerance <= peak <= top_to + tolerance, f"cycle {k}: peak at {(peak - a) / SR:.3f} s"
        top = rms[inside].max()
        if hold:
            assert at(top_from + half) > 0.999 * top and at(top_to - half) > 0.999 * top
        assert at(top_from - s(0.5)) < 0.99 * top and at(top_to + s(0.5)) < 0.99 * top
        assert at(a + s(0.03)) < 0.01 * top and at(b - s(0.03)) < 0.01 * top
        # the same swell in the last cycle as in the first
        plateau = top if plateau is None else plateau
        assert top == pytest.approx(plateau, rel=1e-3)


def test_speech_is_held_only_while_it_is_heard() -> None:
    """A long session's clips are read when first played and let go after their last use."""
    rng = np.random.default_rng(7)
    events = [speech_event(10 * n, 10 * n + 2, n) for n in range(60)]  # 60 distinct lines over 10 minutes
    events.append(speech_event(595, 597, 0))  # the first line again, at the very end
    timeline = make_timeline(600, *events)
    clips = {Line(e.text, e.rate): Clip((rng.standard_normal(e.end - e.start) * 0.1).astype(np.float32), SR)
             for e in timeline.of_kind("speech")}
    mix = Mix(timeline, clips, {}, {}, None)
    most = 0
    blocks = []
    for _, block in mix.blocks():
        blocks.append(block)
        most = max(most, len(mix.voice.held))
    assert most <= 3  # the current line, the repeated first line, and one a block ahead at most
    assert not mix.voice.held
    again = Mix(timeline, clips, {}, {}, None)
    whole = again.render(0, timeline.length)  # out of order and all at once: the same samples
    assert np.array_equal(np.concatenate(blocks), whole)
