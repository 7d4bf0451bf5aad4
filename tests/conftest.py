"""Shared fixtures and helpers: one speech cache per run, template files, decoding, loudness."""

from __future__ import annotations

import inspect
import re
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from guided_audio.ffmpeg import ffmpeg_exe

DECODE_RATE = 44100


@pytest.fixture(scope="session")
def speech_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One speech cache for the whole run: the real engine says each line once."""
    return tmp_path_factory.mktemp("speech-cache")


@pytest.fixture(autouse=True)
def _cache_env(monkeypatch: pytest.MonkeyPatch, speech_cache: Path) -> None:
    """CLI runs (and RenderRequest's default cache_dir) use the session cache, never ~/.cache."""
    monkeypatch.setenv("GUIDED_AUDIO_CACHE", str(speech_cache))


@pytest.fixture(scope="session")
def cache_dir(speech_cache: Path) -> Path:
    """The run's speech cache, under the name the sound tests use."""
    return speech_cache


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """--debug sets a module global of the CLI; keep it from leaking between tests."""
    from guided_audio import cli

    monkeypatch.setattr(cli, "_debug", False)


@pytest.fixture
def runner() -> CliRunner:
    """A CliRunner that keeps stdout and stderr apart on every click version."""
    # click >= 8.2 keeps them apart by default; older click needs mix_stderr=False.
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # pragma: no cover - depends on the click installed
    return CliRunner()


def write_template(folder: Path, body: str, *, name: str = "practice.j2", front: str | None = None) -> Path:
    """Write a template file: front matter (default: a minimal valid one) and a body."""
    if front is None:
        front = 'title = "Test practice"\n'
    text = "+++\n" + textwrap.dedent(front).strip("\n") + "\n+++\n" + textwrap.dedent(body).lstrip("\n")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def make_template(tmp_path: Path) -> Callable[..., Path]:
    """make_template(body, front=..., name=...) -> path of a template in tmp_path."""

    def make(body: str, *, name: str = "practice.j2", front: str | None = None) -> Path:
        return write_template(tmp_path, body, name=name, front=front)

    return make


def decode(path: Path | str) -> tuple[np.ndarray, int]:
    """Decode any audio file with ffmpeg to float32 (frames, 2) at 44100 Hz."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
           "-f", "f32le", "-acodec", "pcm_f32le", "-ac", "2", "-ar", str(DECODE_RATE), "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2).copy(), DECODE_RATE


def children(pid: int) -> list[int]:
    """Processes whose parent is pid (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_gone(pid: int, timeout: float) -> None:
    """Wait until a process that is not our child has ended (gone, or a zombie holding no files)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not end")


_INTEGRATED = re.compile(r"I:\s*(-?[\d.]+|-inf)\s*LUFS")
_PEAK = re.compile(r"Peak:\s*(-?[\d.]+|-inf)\s*dBFS")


def loudness(path: Path | str) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP) from ffmpeg's ebur128 summary."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-i", str(path),
           "-af", "ebur128=peak=true", "-f", "null", "-"]
    err = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
    summary = err[err.rindex("Summary:"):]
    return float(_INTEGRATED.search(summary).group(1)), float(_PEAK.search(summary).group(1))
