"""Private means private, and typed values are words: the health vocabulary, redaction and markup safety.

The end-to-end test renders a real session with the real engine and encoder, reads the written
tags back with mutagen, and searches every file the render and a library build wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import mutagen
import pytest
from click.testing import CliRunner

from guided_audio import health, markup, practices, privacy
from guided_audio.cli import cli
from guided_audio.program import load as load_program
from guided_audio.render import RenderRequest

# Distinctive tokens: none of them can occur by chance in a script or a tag.
STOP = "Quillstopword"
PHRASE = "Quillownphrase"
GESTURE = "Quillgesture"
OFF_LIMITS = "Quilloffarea"
SAFE_ZONE = "Quillsafezone"
NOTES = "Quillnotes"
CRISIS = "Call the Quillcrisis line"

LINE_BREAKS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


# -- names and phrases are words, never markup ---------------------------------------------


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[repr(b) for b in LINE_BREAKS])
def test_every_line_break_in_a_value_is_neutralised(brk: str) -> None:
    value = f"Alex{brk}@pause 1000000000{brk}# X{brk}// hidden"
    text = markup.literal(value)
    assert text.splitlines() == [text]
    script = markup.parse(f"Welcome, {text}.\n{text}\n")
    assert all(isinstance(item, markup.Speech) for item in script.items)
    assert "@pause 1000000000" in script.items[1].text  # spoken as the words typed
    assert markup.LITERAL_MARK not in script.items[1].text


@pytest.mark.parametrize("value", ["@pause 500", "#Section", "// a comment", '@cue /etc/passwd', 'say "hi" \\ ok'])
def test_a_value_at_the_start_of_a_line_or_in_a_directive_stays_words(value: str) -> None:
    text = markup.literal(value)
    script = markup.parse(f"{text}\n@breathe in=4 out=6 cycles=1 say_in=\"{text}, in\"\n")
    speech, breathe = script.items
    assert isinstance(speech, markup.Speech)
    assert isinstance(breathe, markup.Breathe)
    assert "in" in breathe.words


def test_own_phrases_split_by_a_template_stay_words() -> None:
    text = markup.literal("hello|@pause 5|#title")
    lines = "\n".join(piece.strip() for piece in text.split("|"))
    assert all(isinstance(item, markup.Speech) for item in markup.parse(lines).items)


@pytest.mark.parametrize("practice", practices.builtin_names())
def test_markup_in_names_and_phrases_renders_as_plain_words(practice: str) -> None:
    p = practices.load(practice)
    nasty = {"partner_a": "Alex\r@pause 1000000000\r# X", "partner_b": "@pause 500"}
    text_params = [q.name for q in p.params if q.type == "str" and q.name not in nasty]
    settings = {**nasty, **{name: "@cue /etc/passwd|@pause 9999" for name in text_params}}
    plain = {"partner_a": "Alex", "partner_b": "Sam", **{name: "cue etc passwd|pause 9999" for name in text_params}}
    program, _ = load_program(RenderRequest(practice, settings))
    baseline, _ = load_program(RenderRequest(practice, plain))
    scripts, base_scripts = program.scripts(), baseline.scripts()

    def counts(scripts: list[markup.Script]) -> tuple[int, int, float]:
        items = [i for s in scripts for i in s.items]
        pauses = [i for i in items if isinstance(i, markup.Pause)]
        return (sum(isinstance(i, markup.Cue) for i in items), len(pauses),
                max((i.length.seconds for i in pauses), default=0.0))

    assert counts(scripts) == counts(base_scripts)
    spoken = " ".join(t for s in scripts for t, _, _ in s.spoken_texts())
    assert "pause 500" in spoken and "Alex" in spoken


# -- one vocabulary of health flags ----------------------------------------------------------


def test_every_builtin_covers_every_flag() -> None:
    for name in practices.builtin_names():
        p = practices.load(name)
        missing = [f for f in health.FLAGS if f not in p.health_flags and f not in p.unaffected_by]
        assert not missing, f"{name} neither adapts to nor is checked against {missing}"
        assert all(p.param(f).private for f in p.health_flags)


def test_touch_practices_adapt_to_every_touch_flag() -> None:
    touch = [f for f in health.FLAGS if f not in health.BREATH_FLAGS]
    for name in ("gentle-touch", "reconnect-night"):
        assert set(touch) <= set(practices.load(name).health_flags), name


def test_ambiguous_and_unknown_flags_say_what_to_write(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["script", "breathing", "--set", "health=spinal_cord_injury"])
    assert result.exit_code == 2
    assert "spinal_cord_injury_t6" in result.stderr and "spinal_cord_injury_below_t6" in result.stderr
    result = runner.invoke(cli, ["script", "breathing", "--set", "health=panik"])
    assert result.exit_code == 2 and "did you mean 'panic'" in result.stderr


def test_a_flag_a_part_cannot_adapt_to_is_one_warning_naming_the_part_and_not_the_flag(
    tmp_path: Path, runner: CliRunner, make_template
) -> None:
    template = make_template("# Arriving\nHello.\n", name="plain.j2")
    session = tmp_path / "s.toml"
    session.write_text(f'[couple]\nhealth = ["stoma", "lymphedema"]\n[[parts]]\npractice = "{template}"\n')
    result = runner.invoke(cli, ["script", str(session)])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "plain" in warnings[0] and "2 of the health flags" in warnings[0]
    assert "stoma" not in result.stderr and "lymphedema" not in result.stderr
    strict = runner.invoke(cli, ["script", str(session), "--strict"])
    assert strict.exit_code == 2 and "plain" in strict.stderr


def test_the_starter_session_lists_the_one_vocabulary(tmp_path: Path, runner: CliRunner) -> None:
    path = tmp_path / "new.toml"
    assert runner.invoke(cli, ["new-session", str(path)]).exit_code == 0
    text = path.read_text()
    assert all(flag in text for flag in health.FLAGS)
    assert runner.invoke(cli, ["script", str(path)]).exit_code == 0


def test_show_marks_private_parameters_and_lists_flags(runner: CliRunner) -> None:
    out = runner.invoke(cli, ["show", "gentle-touch"]).output
    assert "stop_word (str, default ''; any text; private)" in out
    assert all(flag in out for flag in health.FLAGS)


# -- redaction --------------------------------------------------------------------------------


def test_redact_takes_out_whole_words_in_any_case() -> None:
    secrets = privacy.private_texts(["Pine", ["left knee"], "one|two words"])
    assert privacy.redact("Say PINE, not pineapple; the Left Knee; two words", secrets) == (
        "Say [private], not pineapple; the [private]; [private]")


def test_private_value_errors_do_not_echo_the_value(tmp_path: Path, runner: CliRunner) -> None:
    session = tmp_path / "s.toml"
    session.write_text(f'[couple]\noff_limits_a = "{OFF_LIMITS}"\n[[parts]]\npractice = "breathing"\n')
    result = runner.invoke(cli, ["script", str(session)])
    assert result.exit_code == 2 and "off_limits_a" in result.stderr
    assert OFF_LIMITS not in result.stderr


# -- end to end: nothing private in the files --------------------------------------------------


SESSION = f"""\
title = "Our evening"
[couple]
partner_a = "Alex"
partner_b = "Sam"
stop_word = "{STOP}"
stop_gesture = "{GESTURE}"
own_phrases = "{PHRASE}"
health = {json.dumps(list(health.FLAGS))}
off_limits_a = ["{OFF_LIMITS}"]
safe_zones_b = ["{SAFE_ZONE}"]
notes = "{NOTES}"
crisis_resources = "{CRISIS}"
[[parts]]
practice = "breathing"
minutes = 3
[[parts]]
practice = "comfort"
minutes = 5
"""
FLAG_WORDS = list(health.FLAGS)


def _tag_texts(path: Path) -> dict[str, str]:
    """Every tag of an audio file as text, read back with mutagen."""
    audio = mutagen.File(path)
    assert audio is not None and audio.tags is not None
    return {str(key): str(value) for key, value in audio.tags.items()}


def _assert_private_absent(text: str, where: str, *, spoken_allowed: bool) -> None:
    for token in (OFF_LIMITS, SAFE_ZONE, NOTES):
        assert token not in text, f"{token} in {where}"
    if not spoken_allowed:
        for token in (STOP, PHRASE, GESTURE):
            assert token not in text, f"{token} in {where}"
        for flag in FLAG_WORDS:
            assert f"{flag}=" not in text and f'"{flag}"' not in text, f"{flag} in {where}"


def test_a_session_with_every_flag_and_private_values_writes_none_of_them(
    tmp_path: Path, runner: CliRunner, speech_cache: Path
) -> None:
    session = tmp_path / "evening.toml"
    session.write_text(SESSION, encoding="utf-8")
    out = tmp_path / "out" / "evening.mp3"
    result = runner.invoke(cli, ["render", str(session), "-o", str(out), "--voice", "pyttsx3:", "-q"])
    assert result.exit_code == 0, result.stderr
    _assert_private_absent(result.output + result.stderr, "messages", spoken_allowed=False)
    assert "no adaptation" not in result.stderr  # every flag reaches a part that adapts to it or needs none

    # Tags: the transcript (lyrics) is what is said aloud; every other tag holds no private value.
    tags = _tag_texts(out)
    lyrics = " ".join(v for k, v in tags.items() if k.startswith("USLT"))
    assert STOP in lyrics  # the stop word is spoken, so it is in the words of the audio
    for key, value in tags.items():
        _assert_private_absent(value, f"tag {key}", spoken_allowed=key.startswith(("USLT", "SYLT")))
    comment = " ".join(v for k, v in tags.items() if k.startswith("COMM"))
    assert "breathing" in comment and "Quillcrisis" in comment  # what made the file, and where to find help

    # Sidecars: settings and metadata hold nothing private; spoken events may hold what is said.
    files = [p for p in out.parent.iterdir() if p.is_file()]
    assert all(OFF_LIMITS not in p.name and STOP not in p.name for p in files)
    assert OFF_LIMITS.encode() not in out.read_bytes()
    for path in files:
        if path.suffix in (".json", ".vtt", ".srt"):
            text = path.read_text(encoding="utf-8")
            _assert_private_absent(text, path.name, spoken_allowed=True)
    timeline = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    metadata = {k: v for k, v in timeline.items() if k not in ("events",)}
    _assert_private_absent(json.dumps(metadata), "timeline metadata", spoken_allowed=False)


def test_a_library_build_publishes_no_private_value(tmp_path: Path, runner: CliRunner) -> None:
    manifest = tmp_path / "library.toml"
    manifest.write_text(f"""\
title = "Clinic library"
[defaults]
voice = "pyttsx3:"
format = "mp3"
[feed]
base_url = "https://example.org/lib/"
[[sessions]]
name = "breath"
album = "Breathing"
practice = "breathing"
minutes = 3
settings = {{ stop_word = "{STOP}", health = ["panic", "cardiac"] }}
""", encoding="utf-8")
    out = tmp_path / "lib"
    result = runner.invoke(cli, ["build", str(manifest), "-o", str(out), "-j", "1"])
    assert result.exit_code == 0, result.output + result.stderr
    _assert_private_absent(result.output + result.stderr, "build messages", spoken_allowed=False)
    for name in ("index.json", "feed.xml", "breathing/breathing.m3u8"):
        text = (out / name).read_text(encoding="utf-8")
        _assert_private_absent(text, name, spoken_allowed=False)
        assert "panic" not in text and "cardiac" not in text
