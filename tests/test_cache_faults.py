"""Faults in the speech cache and the engine worker: each heals, or fails in one clean line.

The cache cases render through the CLI with the real engine (pyttsx3 + eSpeak NG) from a
copy of a primed cache, damage it, and check: exit 0, one warning, speech in the audio,
the entry repaired (byte for byte what a clean run writes). The worker cases replace the
worker's command by small fake processes (hung, chatty, crashing, babbling) and check:
one `error:` line naming the line by number and id (never its words), exit 1, the worker
killed and waited for, and nothing left in the temp folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import decode, write_template

from guided_audio import publish, speech
from guided_audio.cli import cli
from guided_audio.engines import pyttsx3_engine
from guided_audio.engines.pyttsx3_engine import Pyttsx3Engine
from guided_audio.speech import Clip, ClipCache, Line

FRONT = """
title = "Faults"
ambient = "none"
[minutes]
default = 0.1
min = 0.05
max = 1
"""
FIRST, SECOND = "Breathe in slowly.", "Let your shoulders soften."
BODY = f"""
# Start
{FIRST}
@pause 1
{SECOND}
"""


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "speech").rglob("*.clip"))


def warnings_of(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def has_speech(path: Path) -> bool:
    samples, _ = decode(path)
    return bool(np.sqrt(np.mean(samples**2)) > 1e-3 and np.abs(samples).max() > 0.05)


@pytest.fixture(scope="module")
def primed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A template, a cache holding its two lines, and the audio a clean run renders."""
    root = tmp_path_factory.mktemp("primed")
    template = write_template(root, BODY, name="faults.j2", front=FRONT)
    cache = root / "cache"
    audio = root / "out" / "clean.wav"
    result = CliRunner().invoke(cli, ["render", str(template), "-o", str(audio), "--voice", "pyttsx3:", "-q"],
                                env={"GUIDED_AUDIO_CACHE": str(cache)})
    assert result.exit_code == 0, result.output
    assert len(entries(cache)) == 2
    return {"template": template, "cache": cache, "audio": audio}


@pytest.fixture
def cache(primed: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the primed cache, used by this test's renders."""
    copy = tmp_path / "cache"
    shutil.copytree(primed["cache"], copy)
    monkeypatch.setenv("GUIDED_AUDIO_CACHE", str(copy))
    return copy


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty temp folder of this test's own (TMPDIR), to see what a render leaves in it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    return folder


def render(runner: CliRunner, primed: dict[str, Path], out: Path) -> Any:
    return runner.invoke(cli, ["render", str(primed["template"]), "-o", str(out), "--voice", "pyttsx3:", "-q"])


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- damaged entries: a miss, spoken again, rewritten, one warning -----------------------------


def _truncate(a: Path, b: Path) -> None:
    a.write_bytes(a.read_bytes()[: a.stat().st_size // 2])


def _flip_sample(a: Path, b: Path) -> None:
    data = bytearray(a.read_bytes())
    data[len(data) * 2 // 3] ^= 0x40
    a.write_bytes(bytes(data))


def _flip_header(a: Path, b: Path) -> None:
    data = bytearray(a.read_bytes())
    at = data.index(b'"rate": ') + len(b'"rate": ')  # 22050 -> 32050: a plausible rate, a wrong one
    data[at] ^= 0x01
    a.write_bytes(bytes(data))


def _zero_length(a: Path, b: Path) -> None:
    a.write_bytes(b"")


def _garbage(a: Path, b: Path) -> None:
    a.write_bytes(np.random.default_rng(7).integers(0, 256, 50_000, dtype=np.uint8).tobytes())


def _old_format(a: Path, b: Path) -> None:
    with open(a, "wb") as handle:  # what the cache held before entries were checked: a bare npz
        np.savez(handle, samples=np.zeros(100, np.float32), rate=np.int64(22050))


def _swap(a: Path, b: Path) -> None:
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)


DAMAGE: dict[str, tuple[Callable[[Path, Path], None], int]] = {
    "truncated": (_truncate, 1),
    "bit-flipped samples": (_flip_sample, 1),
    "bit-flipped header": (_flip_header, 1),
    "zero-length": (_zero_length, 1),
    "garbage": (_garbage, 1),
    "old unchecked format": (_old_format, 1),
    "swapped (another line's audio)": (_swap, 2),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_entry_is_spoken_again_and_repaired(
    kind: str, primed: dict[str, Path], cache: Path, runner: CliRunner, tmp_path: Path
) -> None:
    damage, damaged = DAMAGE[kind]
    # The entry written first is the line spoken first: eSpeak carries a little state from one
    # utterance to the next, so only that one is spoken again exactly as a clean run spoke it.
    a, b = sorted(entries(cache), key=lambda p: p.stat().st_mtime_ns)
    clean = {p.name: p.read_bytes() for p in (a, b)}
    damage(a, b)
    out = tmp_path / "out" / "healed.wav"

    result = render(runner, primed, out)

    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.output + result.stderr and "error" not in result.stderr
    (warning,) = warnings_of(result)
    assert f"held {damaged} damaged or mismatched clip(s)" in warning and "repaired" in warning
    assert FIRST not in warning and SECOND not in warning
    assert has_speech(out)
    assert out.read_bytes() == primed["audio"].read_bytes()  # the right words, not the damaged ones
    assert {p.name: p.read_bytes() for p in entries(cache)} == clean  # rewritten as a clean run writes
    assert list((cache / "speech" / ".tmp").iterdir()) == []

    again = render(runner, primed, tmp_path / "out" / "again.wav")  # healed for good: quiet, all cached
    assert again.exit_code == 0 and warnings_of(again) == [], again.stderr


def test_every_damaged_entry_of_a_render_gives_one_warning(
    primed: dict[str, Path], cache: Path, runner: CliRunner, tmp_path: Path
) -> None:
    a, b = entries(cache)
    _truncate(a, b)
    _zero_length(b, a)
    result = render(runner, primed, tmp_path / "out" / "two.wav")
    assert result.exit_code == 0, result.stderr
    assert len(warnings_of(result)) == 1 and "held 2 damaged" in result.stderr


def test_an_entry_read_for_another_engine_identity_is_a_miss(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    line = Line("Hello.", 115)
    clip = Clip(np.linspace(-0.5, 0.5, 1000, dtype=np.float32), 22050)
    cache.put({"engine": "a"}, line, clip)
    foreign = cache.path(cache.key({"engine": "b"}, line))
    foreign.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(cache.path(cache.key({"engine": "a"}, line)), foreign)  # b's entry holds a's header
    assert cache.get({"engine": "b"}, line) is None and cache.damaged == 1
    got = cache.get({"engine": "a"}, line)
    assert got is not None and np.array_equal(got.samples, clip.samples) and got.sample_rate == 22050


def test_entries_never_hold_the_words_of_a_line(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    cache.put({"engine": "a"}, Line("Pineapple is our word.", 115), Clip(np.ones(10, np.float32) / 2, 22050))
    (entry,) = entries(tmp_path)
    assert b"Pineapple" not in entry.read_bytes()


def test_writing_an_entry_removes_the_unchecked_entry_of_old_versions(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    line = Line("Hello.", 115)
    legacy = cache.path(cache.key({"engine": "a"}, line)).with_suffix(".npz")
    legacy.parent.mkdir(parents=True)
    _old_format(legacy, legacy)
    cache.put({"engine": "a"}, line, Clip(np.ones(10, np.float32) / 2, 22050))
    assert not legacy.exists() and cache.get({"engine": "a"}, line) is not None


# -- a cache that cannot be written: the render goes on without it -----------------------------


def test_a_cache_folder_that_cannot_be_made_is_done_without(
    primed: dict[str, Path], runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GUIDED_AUDIO_CACHE", str(blocker / "cache"))  # tests run as root: chmod would not stop us
    out = tmp_path / "out" / "uncached.wav"
    result = render(runner, primed, out)
    assert result.exit_code == 0, result.stderr
    (warning,) = warnings_of(result)
    assert "cannot be written" in warning and "without caching" in warning
    assert "Traceback" not in result.stderr
    assert out.read_bytes() == primed["audio"].read_bytes()
    assert blocker.read_text() == "not a folder"


class _FullDisk:
    """Stands in for the os module in speech.py: every file it opens fills up after 100 bytes."""

    def __init__(self) -> None:
        self.opened = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fdopen(self, fd: int, mode: str = "r") -> Any:
        self.opened += 1
        handle = os.fdopen(fd, mode)

        class Full:
            def __enter__(self) -> Full:
                return self

            def __exit__(self, *exc: object) -> None:
                handle.close()

            def write(self, data: bytes) -> int:
                handle.write(data[:100])
                handle.flush()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return Full()


def test_a_full_cache_is_done_without_and_leaves_no_temp_file(
    primed: dict[str, Path], runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("GUIDED_AUDIO_CACHE", str(cache))
    full = _FullDisk()
    monkeypatch.setattr(publish, "os", full)  # the cache writes through publish.write_through
    out = tmp_path / "out" / "full.wav"
    result = render(runner, primed, out)
    assert result.exit_code == 0, result.stderr
    (warning,) = warnings_of(result)
    assert os.strerror(errno.ENOSPC) in warning and "without caching" in warning
    assert full.opened == 2  # the speech cache stops trying after its first failure; the cover's tries once
    assert out.read_bytes() == primed["audio"].read_bytes()
    assert entries(cache) == [] and list((cache / "speech" / ".tmp").iterdir()) == []


# -- temp files and parallel workers -------------------------------------------------------------


def test_stale_temp_files_of_gone_processes_are_removed(
    primed: dict[str, Path], cache: Path, runner: CliRunner, tmp_path: Path
) -> None:
    temp = cache / "speech" / ".tmp"
    temp.mkdir(exist_ok=True)
    stale = temp / f"{dead_pid()}-half.tmp"
    stale.write_bytes(b"half an entry")
    live = temp / f"{os.getpid()}-writing.tmp"  # a writer that is still running
    live.write_bytes(b"being written")
    result = render(runner, primed, tmp_path / "out" / "a.wav")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in temp.iterdir()) == [live.name]


def test_stale_speech_folders_of_gone_processes_are_removed(
    primed: dict[str, Path], runner: CliRunner, tmp_path: Path, temp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUIDED_AUDIO_CACHE", str(tmp_path / "fresh-cache"))  # lines must reach the engine
    stale = temp_dir / f"{speech.SPEECH_TEMP_PREFIX}{dead_pid()}-x1"
    stale.mkdir()
    (stale / "00000.wav").write_bytes(b"RIFF")
    live = temp_dir / f"{speech.SPEECH_TEMP_PREFIX}{os.getpid()}-x2"
    live.mkdir()
    other = temp_dir / "someone-elses-folder"
    other.mkdir()
    result = render(runner, primed, tmp_path / "out" / "a.wav")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in temp_dir.iterdir()) == sorted([live.name, other.name])


def test_a_reader_never_sees_half_an_entry(tmp_path: Path) -> None:
    """One thread rewrites an entry again and again while another reads it: never damaged."""
    line = Line("Again and again.", 115)
    clip = Clip(np.sin(np.arange(200_000, dtype=np.float32) / 10), 22050)
    writer_cache, reader_cache = ClipCache(tmp_path), ClipCache(tmp_path)
    writes = 150
    finished = threading.Event()

    def write() -> None:
        try:
            for _ in range(writes):
                writer_cache.put({"engine": "x"}, line, clip)
        finally:
            finished.set()

    thread = threading.Thread(target=write)
    thread.start()
    seen = 0
    while not finished.is_set():
        got = reader_cache.get({"engine": "x"}, line)
        if got is not None:
            seen += 1
            assert np.array_equal(got.samples, clip.samples)
    thread.join()
    last = reader_cache.get({"engine": "x"}, line)
    assert last is not None and np.array_equal(last.samples, clip.samples)
    assert reader_cache.damaged == 0 and writer_cache.write_error is None
    assert list((tmp_path / "speech" / ".tmp").iterdir()) == []


# -- the engine worker -----------------------------------------------------------------------------


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Every process started during the test, to check each was waited for."""
    started: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    class Recorded(real):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    return started


def fake_worker(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """The pyttsx3 worker replaced by a Python snippet."""
    monkeypatch.setattr(Pyttsx3Engine, "command", lambda self: [sys.executable, "-c", code])


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache, so every line reaches the engine."""
    folder = tmp_path / "fresh-cache"
    monkeypatch.setenv("GUIDED_AUDIO_CACHE", str(folder))
    return folder


def assert_engine_failure(result: Any, *needles: str) -> str:
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output + result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert FIRST not in lines[0] and SECOND not in lines[0]  # lines are named by number and id
    return lines[0]


HANG = "import sys, time; sys.stdin.read(); time.sleep(600)"
DONE_THEN_HANG = (
    "import json, sys, time; request = json.loads(sys.stdin.read()); "
    "print(json.dumps({'done': 0}), flush=True); time.sleep(600)"
)


@pytest.mark.parametrize(("code", "which"), [(HANG, "line 1 of 2"), (DONE_THEN_HANG, "line 2 of 2")])
def test_a_hung_engine_is_stopped_with_one_line(
    code: str, which: str, primed: dict[str, Path], runner: CliRunner, tmp_path: Path, temp_dir: Path,
    fresh: Path, workers: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_worker(monkeypatch, code)
    monkeypatch.setenv(pyttsx3_engine.TIMEOUT_ENV, "0.2")
    out = tmp_path / "out" / "hung.wav"
    result = render(runner, primed, out)
    line = assert_engine_failure(result, "did not finish", which, "(id ", "stopped")
    assert speech.line_id(FIRST if which.startswith("line 1") else SECOND)[-6:] in line
    assert [p.returncode for p in workers if p.args[-1] == code] == [-9]  # killed and waited for
    assert list(temp_dir.iterdir()) == []
    assert not out.exists() and entries(fresh) == []


def test_a_chatty_engine_does_not_block(
    primed: dict[str, Path], runner: CliRunner, tmp_path: Path, temp_dir: Path, fresh: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Megabytes on stderr before the real worker runs: drained, so the pipe never fills."""
    fake_worker(monkeypatch, (
        "import runpy, sys; sys.stderr.write('eSpeak chatter\\n' * 200_000); sys.stderr.flush(); "
        f"runpy.run_module({pyttsx3_engine.WORKER!r}, run_name='__main__', alter_sys=True)"
    ))
    out = tmp_path / "out" / "chatty.wav"
    result = render(runner, primed, out)
    assert result.exit_code == 0, result.stderr
    assert warnings_of(result) == [] and has_speech(out)
    assert out.read_bytes() == primed["audio"].read_bytes()
    assert len(entries(fresh)) == 2
    assert list(temp_dir.iterdir()) == []


@pytest.mark.parametrize(("code", "needles"), [
    ("import sys; sys.stdin.read(); sys.stderr.write('noise\\nespeak: boom\\n'); sys.exit(3)",
     ("speech engine stopped (espeak: boom)",)),
    ("import sys; sys.stdin.read(); print('Audio saved to nowhere', flush=True); sys.exit(0)",
     ("sent something unreadable",)),
    ("import sys; sys.stdin.read()", ("stopped before line 1 of 2 (id ",)),
    ("import json, sys; sys.stdin.read(); print(json.dumps({'error': 'driver broke', 'index': 1}))",
     ("pyttsx3 failed on line 2 of 2 (id ", "driver broke")),
    ("import os; os.kill(os.getpid(), 9)", ("exit status -9",)),
])
def test_a_failing_engine_is_one_clean_line(
    code: str, needles: tuple[str, ...], primed: dict[str, Path], runner: CliRunner, tmp_path: Path,
    temp_dir: Path, fresh: Path, workers: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_worker(monkeypatch, code)
    out = tmp_path / "out" / "failed.wav"
    result = render(runner, primed, out)
    assert_engine_failure(result, *needles)
    assert all(p.returncode is not None for p in workers)
    assert list(temp_dir.iterdir()) == []
    assert not out.exists() and entries(fresh) == []


def test_an_interrupt_stops_and_reaps_the_worker(
    tmp_path: Path, workers: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the engine speaks (here: as the first line is reported) leaves no worker behind."""
    fake_worker(monkeypatch, DONE_THEN_HANG)

    def interrupt(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Pyttsx3Engine().synthesize([Line(FIRST, 115), Line(SECOND, 115)], None, tmp_path, interrupt)
    assert [p.returncode for p in workers] == [-9]


def test_a_bad_timeout_setting_is_bad_input(
    primed: dict[str, Path], runner: CliRunner, tmp_path: Path, fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pyttsx3_engine.TIMEOUT_ENV, "soon")
    result = render(runner, primed, tmp_path / "out" / "a.wav")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"error: ${pyttsx3_engine.TIMEOUT_ENV}: 'soon'")


def test_the_line_timeout_grows_with_the_text() -> None:
    engine = Pyttsx3Engine(line_timeout=2.0)
    assert engine._timeout("") == 2.0
    assert engine._timeout("x" * 100) == 4.0
    assert Pyttsx3Engine()._timeout("") >= 30.0  # generous by default
