"""The command line through click's CliRunner: listings, script, errors and exit statuses."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from guided_audio import encoding, practices
from guided_audio.cli import cli
from guided_audio.engines.pyttsx3_engine import Pyttsx3Engine
from guided_audio.errors import EngineError

FRONT = """
title = "Tiny"
description = "A tiny practice."
ambient = "warm-room"
[minutes]
default = 0.3
min = 0.1
max = 1
help = "Length."
[params.name]
type = "str"
default = "friend"
help = "Name."
[params.n]
type = "int"
default = 2
min = 1
max = 5
help = "Count."
"""
GOOD = """
# Start
@cue wood-tick
Hello {{ name }}, this is a tiny session.
@pause fill
Goodbye.
"""
FRONT_LINES = FRONT.strip("\n").count("\n") + 3  # the body starts on the next line






@pytest.fixture
def good(make_template) -> Path:
    return make_template(GOOD, name="tiny.j2", front=FRONT)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, [str(a) for a in args])


def assert_bad_input(result, *needles: str) -> str:
    """Exit 2, exactly one stderr line starting 'error:' that contains every needle, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return lines[0]


# -- listings ----------------------------------------------------------------------------------


def test_practices_lists_the_builtins(runner: CliRunner) -> None:
    result = run(runner, "practices")
    assert result.exit_code == 0
    assert result.stdout.startswith("breathing") and "Breathing together" in result.stdout


def test_show_builtin(runner: CliRunner) -> None:
    result = run(runner, "show", "breathing")
    assert result.exit_code == 0
    assert "(breathing)" in result.stdout.splitlines()[0]
    assert "--minutes N      default" in result.stdout
    assert "Parameters (--set NAME=VALUE):" in result.stdout


def test_show_user_template(runner: CliRunner, good: Path) -> None:
    result = run(runner, "show", good)
    assert result.exit_code == 0
    assert "Tiny (tiny)" in result.stdout
    assert "n (int, default 2; 1 to 5)" in result.stdout
    assert "name (str, default friend; any text)" in result.stdout


def test_sounds_lists_beds_and_cues(runner: CliRunner) -> None:
    result = run(runner, "sounds")
    assert result.exit_code == 0
    beds, cues = result.stdout.split("Cue sounds")
    assert "warm-room" in beds and "soft-rain" in beds and "bell" not in beds
    assert "bell" in cues and "soft-chime" in cues


def test_voices_lists_the_engine_voices(runner: CliRunner) -> None:
    result = run(runner, "voices")
    assert result.exit_code == 0
    assert any(line.startswith("pyttsx3:gmw/en-us") for line in result.stdout.splitlines())


def test_version(runner: CliRunner) -> None:
    result = run(runner, "--version")
    assert result.exit_code == 0 and "guided-audio" in result.stdout


def test_script_prints_markup_and_planned_duration(runner: CliRunner, good: Path) -> None:
    result = run(runner, "script", good, "--set", "name=Ana", "--minutes", "0.5")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "# Start", "@cue wood-tick", "Hello Ana, this is a tiny session.", "@pause fill", "Goodbye."
    ]
    assert "// planned duration: about 0:30" in result.stderr


def test_script_builtin_fills_the_minutes(runner: CliRunner) -> None:
    result = run(runner, "script", "breathing", "--minutes", "3")
    assert result.exit_code == 0, result.output
    assert "@breathe" in result.stdout
    planned = re.search(r"// planned duration: about (\d+):(\d\d)", result.stderr)
    assert planned, result.stderr
    assert abs(int(planned[1]) * 60 + int(planned[2]) - 180) <= 15


def test_minutes_nan_is_bad_input(runner: CliRunner, good: Path) -> None:
    assert_bad_input(run(runner, "script", good, "--minutes", "nan"), "--minutes")


# -- bad input: exit 2, one line, nothing written -----------------------------------------------


def test_unknown_practice(runner: CliRunner, out: Path) -> None:
    assert_bad_input(run(runner, "render", "breathin", "-o", out / "x.mp3"), "unknown practice 'breathin'",
                     "did you mean 'breathing'")
    assert list(out.iterdir()) == []


def test_missing_template_file(runner: CliRunner, tmp_path: Path, out: Path) -> None:
    missing = tmp_path / "nope.j2"
    assert_bad_input(run(runner, "render", missing, "-o", out / "x.mp3"), str(missing), "no such template file")


@pytest.mark.parametrize(
    "setting, needles",
    [
        ("nam=Bo", ["--set nam", "did you mean 'name'"]),
        ("n=three", ["--set n", "not a valid int"]),
        ("n=2.5", ["--set n", "not a valid int"]),
        ("n=9", ["--set n", "out of range (1 to 5)"]),
        ("novalue", ["--set", "not KEY=VALUE"]),
    ],
)
def test_bad_set(runner: CliRunner, good: Path, out: Path, setting: str, needles: list[str]) -> None:
    assert_bad_input(run(runner, "render", good, "--set", setting, "-o", out / "x.mp3", "-q"), *needles)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("minutes", ["0.05", "2"])
def test_minutes_outside_the_range(runner: CliRunner, good: Path, out: Path, minutes: str) -> None:
    assert_bad_input(run(runner, "render", good, "--minutes", minutes, "-o", out / "x.mp3"),
                     "--minutes", "out of range (0.1 to 1)")
    assert list(out.iterdir()) == []


def test_bad_set_in_script_too(runner: CliRunner, good: Path) -> None:
    assert_bad_input(run(runner, "script", good, "--set", "n=0"), "--set n")


def test_template_syntax_error_names_file_and_line(runner: CliRunner, make_template, out: Path) -> None:
    bad = make_template("# Start\nHello {{ name }.\n", name="broken.j2", front=FRONT)
    assert_bad_input(run(runner, "render", bad, "-o", out / "x.mp3"), f"{bad}:{FRONT_LINES + 2}:")
    assert list(out.iterdir()) == []


def test_undefined_variable_names_file_and_line(runner: CliRunner, make_template, out: Path) -> None:
    bad = make_template("# Start\nHello.\n{% if n > 1 %}\nAgain {{ nmae }}.\n{% endif %}\n", name="undef.j2", front=FRONT)
    line = assert_bad_input(run(runner, "render", bad, "-o", out / "x.mp3"), f"{bad}:{FRONT_LINES + 4}:")
    assert "'nmae' is undefined" in line
    assert list(out.iterdir()) == []


def test_undefined_variable_in_script_command(runner: CliRunner, make_template) -> None:
    bad = make_template("Hi.\n{{ nope }}\n", name="undef.j2", front=FRONT)
    assert_bad_input(run(runner, "script", bad), f"{bad}:{FRONT_LINES + 2}:")


def test_malformed_markup_names_template_and_line(runner: CliRunner, make_template, out: Path) -> None:
    bad = make_template("# Start\nHello.\n@breathe in=4 cycles=2\n", name="markup.j2", front=FRONT)
    assert_bad_input(run(runner, "render", bad, "-o", out / "x.mp3"), f"{bad}: line 3 of the rendered script",
                     "in=SECONDS")
    assert list(out.iterdir()) == []


def test_markup_error_line_can_be_found(runner: CliRunner, make_template) -> None:
    body = "# Start\n{% if true %}\nHello.\n{% endif %}\n@breathe in=4 cycles=2\n"
    bad = make_template(body, name="markup.j2", front=FRONT)
    message = assert_bad_input(run(runner, "script", bad))
    line = int(re.search(r"line (\d+) of the rendered script", message)[1])
    file_lines = bad.read_text().splitlines()
    printed = run(runner, "script", make_template(body.replace("@breathe in=4 cycles=2", "@pause 1"),
                                                  name="ok.j2", front=FRONT)).stdout.splitlines()
    assert file_lines[line - 1].startswith("@breathe") or (
        line <= len(printed) and printed[line - 1].startswith("@pause"))


def test_unknown_cue_names_template_line(runner: CliRunner, make_template, out: Path) -> None:
    bad = make_template("# Start\nHello.\n@cue gongg\n", name="cue.j2", front=FRONT)
    assert_bad_input(run(runner, "render", bad, "-o", out / "x.mp3"), f"{bad}: line 3 of the rendered script",
                     "@cue gongg")
    assert list(out.iterdir()) == []


def test_missing_ambient_file(runner: CliRunner, good: Path, tmp_path: Path, out: Path) -> None:
    missing = tmp_path / "rain.flac"
    assert_bad_input(run(runner, "render", good, "--ambient", missing, "-o", out / "x.mp3"),
                     f"--ambient {missing}: no such file")
    assert list(out.iterdir()) == []


def test_unknown_ambient_name_suggests(runner: CliRunner, good: Path, out: Path) -> None:
    assert_bad_input(run(runner, "render", good, "--ambient", "soft-rian", "-o", out / "x.mp3"),
                     "--ambient soft-rian", "did you mean 'soft-rain'")


def test_unknown_format_is_a_click_choice_error(runner: CliRunner, good: Path, out: Path) -> None:
    line = assert_bad_input(run(runner, "render", good, "--format", "aiff", "-o", out / "x"), "--format", "aiff")
    for name in encoding.FORMATS:
        assert name in line
    assert list(out.iterdir()) == []


def test_unknown_output_extension(runner: CliRunner, good: Path, out: Path) -> None:
    assert_bad_input(run(runner, "render", good, "-o", out / "x.aiff"), "-o", "unknown extension '.aiff'")


def test_rate_out_of_range_is_a_click_error(runner: CliRunner, good: Path) -> None:
    assert_bad_input(run(runner, "render", good, "--rate", "20"), "--rate")


def test_output_under_a_regular_file(runner: CliRunner, good: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    assert_bad_input(run(runner, "render", good, "-o", afile / "x.mp3"), f"-o {afile / 'x.mp3'}", "is a file, not a folder")
    assert afile.read_text() == "not a folder"


def test_output_is_a_folder_named_like_audio(runner: CliRunner, good: Path, tmp_path: Path) -> None:
    folder = tmp_path / "session.mp3"
    folder.mkdir()
    assert_bad_input(run(runner, "render", good, "-o", folder), "is a folder")
    assert list(folder.iterdir()) == []


def test_output_is_an_existing_folder(runner: CliRunner, good: Path, out: Path) -> None:
    assert_bad_input(run(runner, "render", good, "-o", out, "-q"), "is a folder")


def test_unknown_voice(runner: CliRunner, good: Path, out: Path) -> None:
    assert_bad_input(run(runner, "render", good, "--voice", "no-such-voice", "-o", out / "x.mp3", "-q"),
                     "--voice", "no-such-voice")
    assert list(out.iterdir()) == []


def test_debug_shows_a_traceback(runner: CliRunner, make_template) -> None:
    bad = make_template("Hi.\n{{ nope }}\n", name="undef.j2", front=FRONT)
    result = run(runner, "--debug", "script", bad)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "UndefinedError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


# -- failures: exit 1 ---------------------------------------------------------------------------


def test_engine_failure_exits_1(runner: CliRunner, good: Path, out: Path, tmp_path: Path, monkeypatch) -> None:
    def broken(self, lines, voice, folder, done):
        raise EngineError("pyttsx3: the fake engine broke")

    monkeypatch.setattr(Pyttsx3Engine, "synthesize", broken)
    result = run(runner, "render", good, "-o", out / "x.mp3", "-q", "--cache-dir", tmp_path / "fresh-cache",
                 "--voice", "pyttsx3")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["error: pyttsx3: the fake engine broke"]
    assert "Traceback" not in result.output
    assert list(out.iterdir()) == []


def test_ffmpeg_failure_exits_1_and_removes_partial_files(runner: CliRunner, good: Path, out: Path,
                                                          tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "fake-ffmpeg"
    # It writes half a file where the encoder would (the tee muxer's first output), then fails;
    # as the meter reading the encoded stream (output '-') it just ends.
    fake.write_text(
        '#!/bin/sh\nfor last; do :; done\n'
        'case "$last" in\n  -) exit 0 ;;\n  *"|"*) target=${last#*]}; target=${target%%|*} ;;\n  *) target=$last ;;\nesac\n'
        'echo partial > "$target"\necho "fake encoder exploded" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setattr(encoding, "ffmpeg_exe", lambda: str(fake))
    result = run(runner, "render", good, "-o", out / "x.mp3", "-q")
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ffmpeg could not encode mp3 (fake encoder exploded)")
    assert "Traceback" not in result.output
    assert list(out.iterdir()) == []


def test_interrupt_exits_130(runner: CliRunner, good: Path, out: Path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(practices, "load", interrupted)  # Ctrl-C while the render starts
    result = run(runner, "render", good, "-o", out / "x.mp3")
    assert result.exit_code == 130
    assert result.stderr.strip() == "error: interrupted; nothing was written"


# -- success ------------------------------------------------------------------------------------


def test_render_quiet_prints_the_two_paths(runner: CliRunner, good: Path, out: Path) -> None:
    result = run(runner, "render", good, "-o", out / "tiny.ogg", "-q", "--set", "name=Bo", "--minutes", "0.4")
    assert result.exit_code == 0, result.output
    audio, sidecar = out / "tiny.ogg", out / "tiny.json"
    assert result.stdout.splitlines()[:2] == [str(audio), str(sidecar)]
    assert result.stderr == ""
    names = os.listdir(out)
    assert {"tiny.json", "tiny.ogg"} <= set(names)
    assert not [n for n in names if n.startswith(".")], names
    doc = json.loads(sidecar.read_text())
    assert doc["format"] == "ogg" and doc["settings"] == {"name": "Bo", "n": 2, "minutes": 0.4}
    assert doc["duration"] == pytest.approx(24.0, abs=0.01)
    assert audio.stat().st_size > 10_000
