"""Which ffmpeg runs: the bundled one by default, another by GUIDED_AUDIO_FFMPEG."""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio_ffmpeg
import pytest
from click.testing import CliRunner
from conftest import loudness, write_template

from guided_audio import ffmpeg
from guided_audio.cli import cli

BODY = """
# Start
@cue bell wait=2
Hello, this is a short test of the encoder.
@pause fill
Goodbye.
"""
FRONT = 'title = "Encoder"\nambient = "none"\n[minutes]\ndefault = 0.3\nmin = 0.1\nmax = 1\n'


def test_the_bundled_ffmpeg_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ffmpeg.ENV, raising=False)
    assert ffmpeg.ffmpeg_exe() == imageio_ffmpeg.get_ffmpeg_exe()


def test_a_wrong_choice_is_an_error_naming_the_variable(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = write_template(tmp_path, BODY, name="enc.j2", front=FRONT)
    monkeypatch.setenv(ffmpeg.ENV, str(tmp_path / "no-such-ffmpeg"))
    result = runner.invoke(cli, ["render", str(template), "-o", str(tmp_path / "out" / "x.mp3"), "-q"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {ffmpeg.ENV}=") and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


CHOICES = ["bundled"] + (["system"] if shutil.which("ffmpeg") else [])


@pytest.mark.parametrize("choice", CHOICES)
@pytest.mark.parametrize("fmt", ["mp3", "m4a"])
def test_every_available_ffmpeg_meets_the_target_on_the_written_file(
    choice: str, fmt: str, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = write_template(tmp_path, BODY, name="enc.j2", front=FRONT)
    if choice == "system":
        monkeypatch.setenv(ffmpeg.ENV, "system")
    else:
        monkeypatch.delenv(ffmpeg.ENV, raising=False)
    out = tmp_path / "out" / f"x.{fmt}"
    result = runner.invoke(cli, ["render", str(template), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    lufs, peak = loudness(out)  # measured by the same binary, independently of the render
    assert abs(lufs + 16.0) <= 1.0 and peak <= -1.0, (choice, fmt, lufs, peak)
