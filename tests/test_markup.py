"""The script markup parser: directives, options, state, and errors that name source and line."""

from __future__ import annotations

import pytest

from guided_audio import markup
from guided_audio.errors import BadInput, MarkupError
from guided_audio.markup import (
    DEFAULT_GAP,
    Ambient,
    Breathe,
    Cue,
    Length,
    Pause,
    Rate,
    Section,
    Speech,
    parse,
)


def items(text: str) -> tuple:
    return parse(text, source="test.md").items


def only(text: str):
    (item,) = items(text)
    return item


# -- plain lines ----------------------------------------------------------------------------


def test_speech_line_with_defaults() -> None:
    assert only("Hello there.") == Speech("Hello there.", Rate(percent=100.0), DEFAULT_GAP, 1)


def test_surrounding_whitespace_is_stripped() -> None:
    assert only("   Breathe in.   \t").text == "Breathe in."


def test_blank_lines_and_comments_are_ignored_but_counted() -> None:
    script = items("\n// a comment\n   \n  // indented comment\nSpoken.\n")
    assert script == (Speech("Spoken.", Rate(percent=100.0), DEFAULT_GAP, 5),)


def test_section_titles() -> None:
    assert items("# Arriving\n### Deep   title  #\n") == (
        Section("Arriving", 1), Section("Deep   title  #", 2)
    )


def test_section_needs_a_title() -> None:
    with pytest.raises(MarkupError, match="title"):
        items("Hello.\n##\n")


def test_spoken_texts_lists_speech_and_breath_words_in_order() -> None:
    script = parse('One.\n@rate 80%\n@breathe in=4 out=6 cycles=2 say_in=in say_out="and out"\nTwo.\n')
    assert script.spoken_texts() == [
        ("One.", Rate(percent=100.0), "main"),
        ("in", Rate(percent=80.0), "main"),
        ("and out", Rate(percent=80.0), "main"),
        ("Two.", Rate(percent=80.0), "main"),
    ]


def test_script_keeps_its_source() -> None:
    assert parse("Hi.", source="x.j2 (rendered)").source == "x.j2 (rendered)"


# -- pause and silence -------------------------------------------------------------------


@pytest.mark.parametrize("directive, silence", [("pause", False), ("silence", True)])
def test_pause_and_silence_seconds(directive: str, silence: bool) -> None:
    assert only(f"@{directive} 2.5") == Pause(Length(seconds=2.5), silence, 1)


@pytest.mark.parametrize(
    "arg, weight", [("fill", 1.0), ("fill:2", 2.0), ("fill:0.5", 0.5), ("fill:", 1.0)]
)
def test_fill_weights(arg: str, weight: float) -> None:
    assert only(f"@pause {arg}").length == Length(fill=weight)


@pytest.mark.parametrize("arg", ["fill:0", "fill:x", "fill:-1", "fill:1e3"])
def test_bad_fill_weight(arg: str) -> None:
    with pytest.raises(MarkupError, match="weight"):
        items(f"@pause {arg}")


# -- cue, ambient -------------------------------------------------------------------------


def test_cue_default_wait_is_none() -> None:
    assert only("@cue bell") == Cue("bell", None, 1)


def test_cue_wait_option() -> None:
    assert only("@cue singing-bowl wait=0.75") == Cue("singing-bowl", 0.75, 1)


def test_cue_needs_a_name() -> None:
    with pytest.raises(MarkupError, match="sound name"):
        items("@cue")


def test_cue_unknown_option() -> None:
    with pytest.raises(MarkupError, match="unknown option 'loud'"):
        items("@cue bell loud=3")


def test_cue_option_without_equals() -> None:
    with pytest.raises(MarkupError, match="KEY=VALUE"):
        items("@cue bell wait")


def test_ambient_names_and_none() -> None:
    got = items('@ambient soft-rain\n@ambient none\n@ambient "./my bed.flac"')
    assert got == (Ambient("soft-rain", 1), Ambient(None, 2), Ambient("./my bed.flac", 3))


# -- rate and gap state ---------------------------------------------------------------------


def test_rate_and_gap_are_carried_to_later_speech() -> None:
    got = items("A.\n@rate 90%\nB.\n@gap 0.5\nC.\n@rate 140\nD.\n")
    assert got == (
        Speech("A.", Rate(percent=100.0), DEFAULT_GAP, 1),
        Speech("B.", Rate(percent=90.0), DEFAULT_GAP, 3),
        Speech("C.", Rate(percent=90.0), 0.5, 5),
        Speech("D.", Rate(wpm=140.0), 0.5, 7),
    )


def test_rate_resolve() -> None:
    assert Rate(percent=90.0).resolve(115) == 104
    assert Rate(wpm=140.0).resolve(115) == 140
    assert Rate().resolve(115) == 115


def test_breathe_takes_the_current_rate() -> None:
    assert only_breathe("@rate 80%\n@breathe in=4 out=4 cycles=1").rate == Rate(percent=80.0)


@pytest.mark.parametrize("value", ["49%", "201%", "59", "401"])
def test_rate_out_of_range(value: str) -> None:
    with pytest.raises(MarkupError, match="between"):
        items(f"@rate {value}")


@pytest.mark.parametrize("line", ["@gap", "@gap 1 2", "@rate", "@ambient", "@ambient a b"])
def test_single_value_directives_need_exactly_one(line: str) -> None:
    with pytest.raises(MarkupError, match="exactly one value"):
        items(line)


# -- breathe ---------------------------------------------------------------------------


def only_breathe(text: str) -> Breathe:
    got = [i for i in items(text) if isinstance(i, Breathe)]
    assert len(got) == 1
    return got[0]


def test_breathe_cycles_minimal() -> None:
    b = only_breathe("@breathe in=4 out=6 cycles=3")
    assert b.phases == (("in", 4.0), ("out", 6.0))
    assert (b.cycles, b.length, b.cue, b.guide, b.words, b.say_cycles) == (3, None, "soft-chime", False, {}, None)
    assert b.period == 10.0


def test_breathe_all_phases_in_canonical_order() -> None:
    b = only_breathe("@breathe rest=1 out=6 hold=2 top=1 in=3 seconds=60")
    assert b.phases == (("in", 3.0), ("top", 1.0), ("hold", 2.0), ("out", 6.0), ("rest", 1.0))
    assert b.length == Length(seconds=60.0) and b.cycles is None


def test_breathe_zero_length_phases_are_left_out() -> None:
    b = only_breathe("@breathe in=4 hold=0 out=6 rest=0 cycles=1")
    assert b.phases == (("in", 4.0), ("out", 6.0))


@pytest.mark.parametrize("arg, weight", [("fill", 1.0), ("fill:3", 3.0)])
def test_breathe_fill(arg: str, weight: float) -> None:
    b = only_breathe(f"@breathe in=4 out=6 {arg}")
    assert b.length == Length(fill=weight) and b.cycles is None


def test_breathe_options_cue_guide_words_say_cycles() -> None:
    b = only_breathe(
        '@breathe in=4 hold=2 out=6 cycles=5 cue=wood-tick guide=on say_in="breathe in" '
        "say_hold=hold say_out='and out' say_cycles=2"
    )
    assert b.cue == "wood-tick" and b.guide is True and b.say_cycles == 2
    assert b.words == {"in": "breathe in", "hold": "hold", "out": "and out"}


def test_breathe_cue_none() -> None:
    assert only_breathe("@breathe in=4 out=6 cycles=1 cue=none").cue is None


def test_breathe_empty_word_is_ignored() -> None:
    assert only_breathe('@breathe in=4 out=6 cycles=1 say_in=""').words == {}


@pytest.mark.parametrize(
    "line, message",
    [
        ("@breathe out=6 cycles=1", "in=SECONDS and out=SECONDS"),
        ("@breathe in=4 cycles=1", "in=SECONDS and out=SECONDS"),
        ("@breathe in=0 out=6 cycles=1", "in=SECONDS and out=SECONDS"),
        ("@breathe in=4 out=6", "exactly one of"),
        ("@breathe in=4 out=6 cycles=2 seconds=30", "exactly one of"),
        ("@breathe in=4 out=6 cycles=2 fill", "exactly one of"),
        ("@breathe in=4 out=6 seconds=30 fill", "exactly one of"),
        ("@breathe in=4 out=6 cycles=0", "from 1 to 5000"),
        ("@breathe in=4 out=6 cycles=2.5", "from 1 to 5000"),
        ("@breathe in=4 out=61 cycles=1", "longer than 60"),
        ("@breathe in=4 out=6 cycles=1 guide=maybe", "guide=on"),
        ("@breathe in=4 out=6 cycles=1 say_hold=hold", "say_hold"),
        ("@breathe in=4 hold=0 out=6 cycles=1 say_hold=hold", "say_hold"),
        ("@breathe in=4 out=6 cycles=1 say_cycles=0", "from 1 to 5000"),
        ("@breathe in=4 out=6 cycles=1 speed=2", "unknown option 'speed'"),
        ("@breathe in=four out=6 cycles=1", "not a number"),
        ("@breathe in=4 out=6 cycles", "KEY=VALUE"),
    ],
)
def test_breathe_errors(line: str, message: str) -> None:
    with pytest.raises(MarkupError, match=message):
        items(line)


# -- errors name the source and the line ----------------------------------------------------


@pytest.mark.parametrize(
    "bad, message",
    [
        ("@chant om", "unknown directive @chant"),
        ("@pause soon", "not a number"),
        ("@pause -1", "not a number"),
        ("@pause 1e3", "not a number"),
        ("@gap x", "not a number"),
        ("@pause", "exactly one value"),
        ("@breathe out=6 cycles=2", "in=SECONDS"),
        ("@breathe in=4 out=6 cycles=2 seconds=20", "exactly one of"),
        ("@cue bell volume=3", "unknown option"),
        ("@breathe in=4 out=6 cycles=2 say_top=up", "say_top"),
        ("x" * (markup.MAX_SPOKEN_CHARS + 1), "split it"),
        ('@cue "bell', "cannot read directive"),
        ("@", "empty directive"),
    ],
)
def test_malformed_line_names_source_and_line(bad: str, message: str) -> None:
    text = "# Start\nHello.\n\n// comment\n" + bad + "\nAfter.\n"
    with pytest.raises(MarkupError, match=message) as info:
        parse(text, source="calm.j2")
    err = info.value
    assert (err.source, err.line) == ("calm.j2", 5)
    assert str(err).startswith("calm.j2: line 5 of the rendered script")
    assert isinstance(err, BadInput)


def test_unknown_directive_lists_the_known_ones() -> None:
    with pytest.raises(MarkupError) as info:
        items("@wait 3")
    for name in ("@pause", "@silence", "@cue", "@breathe", "@ambient", "@rate", "@gap"):
        assert name in str(info.value)


def test_longest_allowed_line_is_accepted() -> None:
    assert only("y" * markup.MAX_SPOKEN_CHARS).text == "y" * markup.MAX_SPOKEN_CHARS


def test_overlong_line_reports_its_length() -> None:
    with pytest.raises(MarkupError, match=f"{markup.MAX_SPOKEN_CHARS + 5} characters"):
        items("z" * (markup.MAX_SPOKEN_CHARS + 5))


def test_voice_switches_the_role_of_following_lines() -> None:
    script = parse("One.\n@voice second\nTwo.\n@breathe in=4 out=6 cycles=1 say_in=in\n@voice main\nThree.\n")
    assert [(t, v) for t, _, v in script.spoken_texts()] == [
        ("One.", "main"), ("Two.", "second"), ("in", "second"), ("Three.", "main")]
    assert script.voice_roles() == {"main", "second"}


def test_voice_role_must_be_known() -> None:
    with pytest.raises(MarkupError, match="@voice main or @voice second"):
        parse("@voice narrator\n")
