"""Bad input that once ran without end or was accepted: each a one-line error before any work.

Every case runs the command line and checks the exit status, the message, and that nothing was
written (the output folder's listing afterwards).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_template

from guided_audio import practices
from guided_audio.cli import cli

FRONT = 'title = "Limits"\nambient = "none"\n[minutes]\ndefault = 1\nmin = 0.1\nmax = 20\n'


def render(runner: CliRunner, target: Path | str, out: Path, *args: str):
    return runner.invoke(cli, ["render", str(target), "-o", str(out / "x.mp3"), "-q", *map(str, args)])


def one_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("body, message", [
    ("Hello.\n@breathe in=4 out=6 cycles=100000000\n", "cycles=100000000: needs a whole number from 1 to 5000"),
    ("Hello.\n@pause 1000000000\n", "longer than the 10800 s allowed"),
    ("Hello.\n@breathe in=4 out=6 cycles=4000\n", "more than the practice's maximum of 20 minutes"),
    ("Hello.\n" + "@pause 600\n" * 3, "the script plans about 30 minutes, more than the practice's maximum"),
    ("Hello.\n@breathe in=0.1 out=0.1 fill\n", "@breathe"),
    ("{{ lipsum(n=1000000) }}\n", "spoken line"),  # lipsum is small in the sandbox: its line is just too long
    ('{{ "a" * 100000000 }}\n', "repeats a value to more than 2000000 characters"),
    ("{{ 9 ** 9999999 }}\n", "raises to the power 9999999"),
    ("{{ 'x'|center(1000000000) }}\n", "template"),
    ("@pause 3\n", "nothing to say"),
    ("", "nothing to say"),
])
def test_unbounded_or_empty_scripts_stop_before_any_work(
    body: str, message: str, tmp_path: Path, runner: CliRunner
) -> None:
    template = write_template(tmp_path, body, name="limits.j2", front=FRONT)
    out = tmp_path / "out"
    result = render(runner, template, out)
    assert result.exit_code == 2, result.stderr
    assert message in one_error(result)
    assert not out.exists()


def test_a_template_that_runs_too_long_is_stopped(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(practices, "MAX_RENDER_SECONDS", 0.5)
    body = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}Hi.\n"
    template = write_template(tmp_path, body, name="slow.j2", front=FRONT)
    out = tmp_path / "out"
    result = render(runner, template, out)
    assert result.exit_code == 2
    assert "took more than 0.5 seconds" in one_error(result)
    assert not out.exists()


@pytest.mark.parametrize("render_table, message", [
    ("loudness = 5.0", "[render] loudness 5 is out of range (-30 to -10)"),
    ("loudness = -200.0", "[render] loudness -200 is out of range (-30 to -10)"),
    ("rate = 0", "[render] rate 0 is out of range (60 to 400)"),
    ("rate = 100000", "[render] rate 100000 is out of range (60 to 400)"),
    ('format = "aiff"', "[render] format 'aiff' is not one of mp3, ogg, opus, flac, m4a, wav"),
    ('voice = ""', "[render] voice is empty"),
])
def test_a_session_render_table_is_checked_like_the_command_line(
    render_table: str, message: str, tmp_path: Path, runner: CliRunner
) -> None:
    session = tmp_path / "evening.toml"
    session.write_text(f'[render]\n{render_table}\n[[parts]]\npractice = "breathing"\n', encoding="utf-8")
    out = tmp_path / "out"
    result = render(runner, session, out)
    assert result.exit_code == 2
    assert f"{session}:2: {message}" in result.stderr  # the file and the line, never an option not given
    assert "--format" not in result.stderr and "--rate" not in result.stderr
    assert not out.exists()


def test_a_bed_shorter_than_a_second_is_a_warning(tmp_path: Path, runner: CliRunner) -> None:
    import wave

    bed = tmp_path / "short.wav"
    with wave.open(str(bed), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(44100)
        tone = (0.1 * np.sin(np.arange(4000) / 10) * 32767).astype("<i2")
        handle.writeframes(tone.tobytes())
    template = write_template(tmp_path, "Hello there.\n@pause fill\n", name="bed.j2",
                              front=FRONT.replace('ambient = "none"', f'ambient = "{bed}"'))
    result = runner.invoke(cli, ["render", str(template), "--minutes", "0.2", "-o", str(tmp_path / "o" / "x.flac"),
                                 "-q", "--voice", "pyttsx3"])
    assert result.exit_code == 0, result.stderr
    assert "only 0.09 s of audio could be decoded" in result.stderr


def test_a_dry_run_finds_a_script_longer_than_its_practice_and_writes_nothing(
    tmp_path: Path, runner: CliRunner
) -> None:
    write_template(tmp_path, "Hello.\n" + "@pause 600\n" * 3, name="long.j2", front=FRONT)
    manifest = tmp_path / "library.toml"
    manifest.write_text('[[sessions]]\npractice = "long.j2"\n', encoding="utf-8")
    out = tmp_path / "lib"
    result = runner.invoke(cli, ["build", str(manifest), "-o", str(out), "--dry-run"])
    assert result.exit_code != 0
    assert "more than the practice's maximum of 20 minutes" in result.output + result.stderr
    assert not out.exists()
