"""The timeline: golden cases with fake speech and cue lengths, and property tests."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guided_audio import markup
from guided_audio.markup import (
    Breathe,
    Cue,
    Length,
    Pause,
    Rate,
    Script,
    Section,
    Speech,
)
from guided_audio.timeline import CUE_WAIT_CAP, TAIL, Timeline, plan

SR = 10_000  # golden cases: 1 s = 10 000 samples, one character of speech = 1 000 samples


def speech_len(text: str, wpm: int) -> int:
    return len(text) * 1000


def plan_text(text: str, *, sr: int = SR, cue_seconds: float = 2.0, target: float | None = None,
              speech_length=speech_len) -> Timeline:
    return plan(markup.parse(text), base_wpm=100, speech_length=speech_length,
                cue_length=lambda name: int(cue_seconds * sr), sample_rate=sr, target_seconds=target)


def spans(tl: Timeline, kind: str) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in tl.of_kind(kind)]


GAP = round(markup.DEFAULT_GAP * SR)
TAIL_S = round(TAIL * SR)


# -- speech and pauses -------------------------------------------------------------------


def test_automatic_gap_after_speech() -> None:
    tl = plan_text("Hello.\nWorld.\n")
    assert spans(tl, "speech") == [(0, 6000), (6000 + GAP, 12000 + GAP)]
    assert tl.length == 12000 + GAP + GAP + TAIL_S  # the last gap is kept before the tail


def test_speech_event_carries_text_and_resolved_rate() -> None:
    tl = plan_text("@rate 90%\nSlow.\n@rate 150\nFast.\n")
    assert [(e.text, e.rate) for e in tl.of_kind("speech")] == [("Slow.", 90), ("Fast.", 150)]


def test_gap_directive_changes_later_gaps() -> None:
    tl = plan_text("A.\n@gap 0.5\nB.\nC.\n")
    assert spans(tl, "speech") == [(0, 2000), (2000 + GAP, 4000 + GAP), (9000 + GAP, 11000 + GAP)]


@pytest.mark.parametrize("pause, at", [("@pause 2", 2000 + 20000), ("@pause 0", 2000), ("@pause 0.25", 4500)])
def test_explicit_pause_replaces_the_gap(pause: str, at: int) -> None:
    tl = plan_text(f"A.\n{pause}\nB.\n")
    assert tl.of_kind("speech")[1].start == at


def test_silence_is_an_event_pause_is_not() -> None:
    tl = plan_text("A.\n@silence 3\n@pause 1\nB.\n")
    assert spans(tl, "silence") == [(2000, 32000)]
    assert tl.of_kind("speech")[1].start == 42000


def test_consecutive_pauses_add_up() -> None:
    tl = plan_text("@pause 1\n@pause 2\nA.\n")
    assert tl.of_kind("speech")[0].start == 30000


def test_tail_after_last_sound() -> None:
    tl = plan_text("@pause 5\n")
    assert (tl.length, tl.events) == (50000 + TAIL_S, ())
    assert tl.seconds == 5 + TAIL


# -- cues --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cue_seconds, wait", [(2.0, 2.0), (7.5, CUE_WAIT_CAP), (4.0, 4.0)])
def test_cue_default_wait_is_its_length_capped(cue_seconds: float, wait: float) -> None:
    tl = plan_text("@cue bell\nA.\n", cue_seconds=cue_seconds)
    (cue,) = tl.of_kind("cue")
    assert (cue.start, cue.end, cue.name) == (0, int(cue_seconds * SR), "bell")
    assert tl.of_kind("speech")[0].start == round(wait * SR)


@pytest.mark.parametrize("wait, at", [("0", 0), ("1.5", 15000), ("10", 100000)])
def test_cue_explicit_wait(wait: str, at: int) -> None:
    tl = plan_text(f"@cue bell wait={wait}\nA.\n", cue_seconds=5)
    assert tl.of_kind("speech")[0].start == at


def test_cue_after_speech_waits_for_the_gap() -> None:
    tl = plan_text("Hi.\n@cue bell\n")
    assert spans(tl, "cue") == [(3000 + GAP, 3000 + GAP + 20000)]


def test_length_covers_a_ringing_cue() -> None:
    tl = plan_text("@cue gong wait=0\n", cue_seconds=9)
    assert tl.length == 90000 + TAIL_S


# -- sections and ambient ---------------------------------------------------------------------


def test_sections_close_at_the_next_section_and_at_the_end() -> None:
    tl = plan_text("# One\nHi.\n# Two\nYo.\n@pause 1\n")
    two = 3000 + GAP
    assert [(e.text, e.start, e.end) for e in tl.of_kind("section")] == [
        ("One", 0, two), ("Two", two, tl.length)
    ]


def test_section_event_sorts_before_what_it_contains() -> None:
    tl = plan_text("# One\n@cue bell\nHi.\n")
    assert [e.kind for e in tl.events] == ["section", "cue", "line", "speech"]  # a line before its phrases


def test_ambient_change_is_placed_after_the_pending_gap() -> None:
    tl = plan_text("Hi.\n@ambient soft-rain\n@ambient none\n")
    assert [(e.start, e.name) for e in tl.of_kind("ambient")] == [(3000 + GAP, "soft-rain"), (3000 + GAP, "none")]


# -- fill -------------------------------------------------------------------------------------


def test_fill_pause_reaches_the_target_exactly() -> None:
    tl = plan_text("Hello.\n@pause fill\nBye.\n", target=60)
    assert tl.length == 60 * SR
    assert tl.of_kind("speech")[1].end == 60 * SR - GAP - TAIL_S


def test_fill_weights_share_the_time() -> None:
    tl = plan_text("A.\n@pause fill\nB.\n@pause fill:3\nC.\n", target=100)
    a, b, c = tl.of_kind("speech")
    first, second = b.start - a.end, c.start - b.end
    assert first + second == 100 * SR - (6000 + GAP + TAIL_S)
    assert second == pytest.approx(3 * first, abs=2)


def test_fill_without_target_takes_no_time() -> None:
    tl = plan_text("A.\n@pause fill\nB.\n")
    assert tl.of_kind("speech")[1].start == 2000


def test_target_shorter_than_the_fixed_part() -> None:
    tl = plan_text("A long line that takes a while.\n@pause fill\n", target=1)
    assert tl.length == 31000 + TAIL_S


def test_fill_breathe_reaches_the_target_within_one_period() -> None:
    tl = plan_text("Welcome.\n@breathe in=4 out=6 fill\nBye.\n", target=300)
    period = 10 * SR
    assert 300 * SR - period < tl.length <= 300 * SR
    phases = tl.of_kind("phase")
    assert len(phases) % 2 == 0 and len(phases) // 2 == (300 * SR - (12000 + 2 * GAP + TAIL_S)) // period


def test_fill_breathe_and_pause_share_then_pause_takes_the_remainder() -> None:
    tl = plan_text("@breathe in=3.3 out=5.1 fill\n@pause fill\nBye.\n", target=200)
    assert tl.length == 200 * SR


def test_fill_breathe_without_room_runs_one_cycle_with_a_warning() -> None:
    tl = plan_text("A very long line of speech here.\n@breathe in=4 out=6 fill\n", target=5)
    assert len(tl.of_kind("phase")) == 2
    assert len(tl.warnings) == 1 and "line 2" in tl.warnings[0] and "no room" in tl.warnings[0]


def test_fill_after_a_ringing_cue_still_reaches_the_target() -> None:
    tl = plan_text("@cue bell\n@pause fill\n", cue_seconds=5.0, target=60)  # bell waits 4 s of its 5
    assert tl.length == 60 * SR


# -- breathing blocks ---------------------------------------------------------------------------


def test_breathe_cycles_phases_and_cues() -> None:
    tl = plan_text("@breathe in=2 hold=1 out=3 cycles=2 cue=tick\n", cue_seconds=0.5)
    assert [(e.name, e.start, e.end) for e in tl.of_kind("phase")] == [
        ("inhale", 0, 20000), ("hold", 20000, 30000), ("exhale", 30000, 60000),
        ("inhale", 60000, 80000), ("hold", 80000, 90000), ("exhale", 90000, 120000),
    ]
    assert spans(tl, "cue") == [(0, 5000), (30000, 35000), (60000, 65000), (90000, 95000)]
    assert all(e.name == "tick" for e in tl.of_kind("cue"))


def test_breathe_without_cue_has_no_cue_events() -> None:
    assert plan_text("@breathe in=2 out=2 cycles=3 cue=none\n").of_kind("cue") == []


def test_breathe_seconds_rounds_down_to_whole_cycles() -> None:
    tl = plan_text("@breathe in=4 out=6 seconds=35\nAfter.\n")
    assert len(tl.of_kind("phase")) == 6
    assert tl.of_kind("speech")[0].start == 30 * SR


def test_breathe_seconds_shorter_than_a_cycle_runs_one() -> None:
    assert len(plan_text("@breathe in=4 out=6 seconds=3\n").of_kind("phase")) == 2


def test_speech_after_breathe_starts_at_block_end_and_gap_before_it_is_kept() -> None:
    tl = plan_text("Hi.\n@breathe in=1 out=1 cycles=1 cue=none\nBye.\n")
    assert tl.of_kind("phase")[0].start == 3000 + GAP
    assert tl.of_kind("speech")[1].start == 3000 + GAP + 20000


def test_two_hours_of_resonance_breathing_do_not_drift() -> None:
    sr = 44100
    tl = plan_text("@breathe in=4.4 out=6.5 seconds=7200 cue=none\n", sr=sr)
    inhales = [e.start for e in tl.of_kind("phase") if e.name == "inhale"]
    exhales = [e.start for e in tl.of_kind("phase") if e.name == "exhale"]
    assert len(inhales) == 660  # floor(7200 / 10.9)
    assert inhales == [k * 480690 for k in range(660)]  # 10.9 s x 44100 = 480690 samples exactly
    assert exhales == [k * 480690 + 194040 for k in range(660)]
    assert tl.of_kind("phase")[-1].end == 660 * 480690


def test_cycle_k_starts_at_round_k_period_for_a_non_integral_period() -> None:
    sr = 44100
    tl = plan_text("Intro line.\n@breathe in=4.4003 out=6.5 seconds=7200 cue=none\n", sr=sr)
    start = 11000 + round(markup.DEFAULT_GAP * sr)
    period = Fraction("10.9003")
    inhales = [e.start for e in tl.of_kind("phase") if e.name == "inhale"]
    assert inhales == [start + round(k * period * sr) for k in range(len(inhales))]
    assert abs(inhales[-1] - (start + float(len(inhales) - 1) * 10.9003 * sr)) <= 1


def test_words_at_phase_starts_only_in_the_first_say_cycles() -> None:
    text = '@breathe in=4 out=6 cycles=5 cue=none say_in="in" say_out="and out" say_cycles=2\n'
    tl = plan_text(text, speech_length=lambda t, wpm: len(t) * 1000)
    phases = tl.of_kind("phase")
    words = tl.of_kind("speech")
    assert [(w.text, w.start, w.end) for w in words] == [
        ("in", 0, 2000), ("and out", 40000, 47000), ("in", 100000, 102000), ("and out", 140000, 147000),
    ]
    assert [w.start for w in words] == [p.start for p in phases[:4]]


def test_words_in_every_cycle_by_default() -> None:
    tl = plan_text('@breathe in=4 out=6 cycles=3 say_in=in\n')
    assert [w.start for w in tl.of_kind("speech")] == [0, 100000, 200000]


def test_word_takes_the_rate_in_force() -> None:
    tl = plan_text('@rate 80%\n@breathe in=4 out=6 cycles=1 say_in=in\n')
    assert tl.of_kind("speech")[0].rate == 80


def test_too_long_word_is_dropped_with_a_warning() -> None:
    # 'exhale slowly now' takes 1.7 s; the 1.8 s phase leaves 1.65 s after the margin
    text = '@breathe in=4 out=1.8 cycles=3 say_in=in say_out="exhale slowly now"\n'
    tl = plan_text(text, speech_length=lambda t, wpm: len(t) * 1000)
    assert [w.text for w in tl.of_kind("speech")] == ["in", "in", "in"]
    assert len(tl.warnings) == 1  # reported once, not once per cycle
    assert "'exhale slowly now'" in tl.warnings[0] and "line 1" in tl.warnings[0]
    assert "exhale" in tl.warnings[0]


def test_word_that_just_fits_is_kept() -> None:
    tl = plan_text('@breathe in=4 out=1.85 cycles=1 say_out="exhale slowly now"\n')
    assert [w.text for w in tl.of_kind("speech")] == ["exhale slowly now"]


# -- property tests -------------------------------------------------------------------------

RATES = st.sampled_from([Rate(percent=100.0), Rate(percent=80.0), Rate(wpm=140.0)])
DECIS = st.integers(min_value=1, max_value=80).map(lambda n: n / 10)  # 0.1 .. 8.0 s


def length_of(text: str, wpm: int, sr: int) -> int:
    """Fake speech: the text is 'w' + centiseconds."""
    return int(text[1:]) * sr // 100


WORD = st.integers(min_value=1, max_value=300).map(lambda c: f"w{c}")


@st.composite
def breathe(draw, *, fill_ok: bool = True, cue_ok: bool = True) -> Breathe:
    phases = [("in", draw(DECIS))]
    for p in ("top", "hold"):
        if draw(st.booleans()):
            phases.append((p, draw(DECIS)))
    phases.append(("out", draw(DECIS)))
    if draw(st.booleans()):
        phases.append(("rest", draw(DECIS)))
    mode = draw(st.sampled_from(["cycles", "seconds", "fill"] if fill_ok else ["cycles", "seconds"]))
    cycles = draw(st.integers(1, 6)) if mode == "cycles" else None
    length = None
    if mode == "seconds":
        length = Length(seconds=draw(st.integers(1, 90)) * 1.0)
    elif mode == "fill":
        length = Length(fill=draw(st.sampled_from([0.5, 1.0, 2.0])))
    keys = [p for p, _ in phases]
    words = draw(st.dictionaries(st.sampled_from(keys), WORD, max_size=len(keys)))
    return Breathe(tuple(phases), length, cycles, draw(st.sampled_from(["chime", None])) if cue_ok else None,
                   False, words, draw(st.none() | st.integers(1, 3)), draw(RATES), 1)


def items_strategy(*, fill_ok: bool = True, ringing_cues: bool = True):
    speech = st.builds(Speech, WORD, RATES, DECIS | st.just(0.0), st.just(1))
    pause_len = st.builds(Length, seconds=DECIS | st.just(0.0))
    if fill_ok:
        pause_len = pause_len | st.builds(Length, fill=st.sampled_from([0.5, 1.0, 3.0]))
    pause = st.builds(Pause, pause_len, st.booleans(), st.just(1))
    wait = (st.none() | DECIS | st.just(0.0)) if ringing_cues else st.none()
    cue = st.builds(Cue, st.sampled_from(["bell", "tick"]), wait, st.just(1))
    section = st.builds(Section, st.sampled_from(["A", "B"]), st.just(1))
    block = breathe(fill_ok=fill_ok, cue_ok=ringing_cues)
    return st.lists(st.one_of(speech, pause, cue, section, block), max_size=12)


def plan_items(items, sr: int, *, cue_seconds: dict[str, float], target: float | None = None) -> Timeline:
    return plan(Script("<prop>", tuple(items)), base_wpm=115,
                speech_length=lambda t, wpm: length_of(t, wpm, sr),
                cue_length=lambda name: int(cue_seconds[name] * sr), sample_rate=sr,
                target_seconds=target)


SAMPLE_RATES = st.sampled_from([8000, 22050, 44100])
CUES = st.fixed_dictionaries({"bell": st.sampled_from([0.5, 3.0, 7.0]), "tick": st.sampled_from([0.05, 0.3]),
                              "chime": st.sampled_from([0.2, 2.5])})
PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_invariants(tl: Timeline) -> None:
    starts = [e.start for e in tl.events]
    assert starts == sorted(starts)
    for e in tl.events:
        assert 0 <= e.start <= e.end <= tl.length, e
    speech = sorted(tl.of_kind("speech"), key=lambda e: e.start)
    for a, b in itertools.pairwise(speech):
        assert a.end <= b.start, (a, b)
    phases = tl.of_kind("phase")
    for a, b in itertools.pairwise(phases):
        assert a.end <= b.start, (a, b)


@PROPS
@given(items=items_strategy(), sr=SAMPLE_RATES, cues=CUES, target=st.none() | st.integers(10, 900))
def test_property_events_sorted_in_range_and_speech_never_overlaps(items, sr, cues, target) -> None:
    check_invariants(plan_items(items, sr, cue_seconds=cues, target=target))


@PROPS
@given(before=items_strategy(fill_ok=False), block=breathe(fill_ok=False), after=items_strategy(fill_ok=False),
       sr=SAMPLE_RATES, cues=CUES)
def test_property_phases_of_a_block_tile_it(before, block, after, sr, cues) -> None:
    def blockless(xs: list) -> list:
        return [i for i in xs if not isinstance(i, Breathe)]

    tl = plan_items([*blockless(before), block, *blockless(after)], sr, cue_seconds=cues)
    check_invariants(tl)
    phases = tl.of_kind("phase")
    period = sum(Fraction(str(s)) for _, s in block.phases)
    cycles = block.cycles or max(1, int(Fraction(str(block.length.seconds)) / period))
    assert len(phases) == cycles * len(block.phases)
    for a, b in itertools.pairwise(phases):
        assert a.end == b.start  # no gaps, no overlaps
    start = phases[0].start
    assert phases[-1].end == start + round(cycles * period * sr)
    names = [markup.PHASE_NAMES[p] for p, _ in block.phases] * cycles
    assert [p.name for p in phases] == names
    for k in range(cycles):
        assert phases[k * len(block.phases)].start == start + round(k * period * sr)
    for p, (_, seconds) in zip(phases, block.phases * cycles):
        assert abs((p.end - p.start) - seconds * sr) <= 1


@PROPS
@given(items=items_strategy(ringing_cues=False), sr=SAMPLE_RATES, extra=st.integers(0, 600))
def test_property_fill_reaches_the_target_within_one_period(items, sr, extra) -> None:
    fills = [i for i in items if isinstance(i, (Pause, Breathe)) and i.length is not None and i.length.fill]
    cues = {"bell": 0.5, "tick": 0.05, "chime": 0.05}  # no cue rings past its wait (see the xfail above)
    natural = plan_items(items, sr, cue_seconds=cues).length
    target = natural / sr + extra
    tl = plan_items(items, sr, cue_seconds=cues, target=target)
    check_invariants(tl)
    if not fills:
        assert tl.length == natural
        return
    periods = [round(i.period * sr) for i in fills if isinstance(i, Breathe)]
    last = fills[-1]
    slack = round(last.period * sr) if isinstance(last, Breathe) else 0
    assert round(target * sr) - slack - len(fills) <= tl.length <= round(target * sr) + sum(periods) + len(fills)
