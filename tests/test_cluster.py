"""Library builds on a real Dask cluster: a scheduler and two worker processes on 127.0.0.1.

The cluster is started once for the module and torn down after it, failures included.
Builds run as the command line does, in their own process; a client of the test's own
watches the workers (to kill one mid-item, or to give one another version).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import write_template
from test_build import MINUTES

from guided_audio.build import remote
from guided_audio.build.state import STATE
from guided_audio.cli import cli

HAVE_DISTRIBUTED = importlib.util.find_spec("distributed") is not None
needs_distributed = pytest.mark.skipif(
    not HAVE_DISTRIBUTED, reason="distributed is not installed (pip install 'guided-audio[cluster]')")
START_TIMEOUT = 60  # seconds for the scheduler and workers to come up
BUILD_TIMEOUT = 120

BODY = """
# Start
Hello, this is {word}.
@pause fill
Goodbye.
"""
SESSION = """\
title = "Evening"
[render]
ambient = "none"
[[parts]]
practice = "one.j2"
minutes = 0.3
[[parts]]
practice = "two.j2"
minutes = 0.2
"""
MANIFEST = """\
title = "Cluster library"
[defaults]
format = "flac"
voice = "pyttsx3:"
[[sessions]]
name = "evening"
album = "Evenings"
session = "evening.toml"
format = "mp3"
[[matrix]]
album = "Tiny"
practice = ["one.j2", "two.j2"]
minutes = [0.2]
name = "{practice}-{minutes}"
"""


def library(folder: Path) -> Path:
    """A manifest of three short items (one a session of two parts), spoken by eSpeak NG."""
    folder.mkdir(parents=True, exist_ok=True)
    for word in ("one", "two"):
        write_template(folder, BODY.format(word=word), name=f"{word}.j2", front=MINUTES.format(title=word.title()))
    (folder / "evening.toml").write_text(SESSION, encoding="utf-8")
    manifest = folder / "library.toml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    return manifest


def run_build(manifest: Path, root: Path, cache: Path, *more: str, timeout: float = BUILD_TIMEOUT,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "guided_audio", "build", str(manifest), "-o", str(root), "-q",
                           "--cache-dir", str(cache), *more], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def start(args: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process and every process it started (a worker's nanny, its worker, their eSpeak)."""
    for signum, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # what the nanny left


@contextlib.contextmanager
def scheduler(folder: Path) -> Iterator[str]:
    """A scheduler on 127.0.0.1 (no workers); its address."""
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "scheduler.json"
    proc = start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                  "--scheduler-file", str(file)], folder / "scheduler.log", folder)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not file.exists() or not file.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (folder / "scheduler.log").read_text()
            time.sleep(0.1)
        yield str(json.loads(file.read_text())["address"])
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """(address, a client of the test's own) of a scheduler with two one-thread workers under nannies."""
    if not HAVE_DISTRIBUTED:
        pytest.skip("distributed is not installed")
    from distributed import Client

    folder = tmp_path_factory.mktemp("cluster")
    with scheduler(folder) as address, contextlib.ExitStack() as stack:
        for n in (1, 2):
            place = folder / f"worker-{n}"  # a working folder of its own: paths must not depend on it
            place.mkdir()
            worker = start(["distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
                            "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(place)],
                           folder / f"worker-{n}.log", place)
            stack.callback(stop, worker)
        client = Client(address, timeout=START_TIMEOUT, set_as_default=False)
        stack.callback(client.close)
        client.wait_for_workers(2, timeout=START_TIMEOUT)
        yield address, client


def outputs(root: Path) -> dict[str, bytes]:
    """Every file of a library but the ones that record when it was built."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in (STATE, "index.json", ".guided-audio-build.lock")}


def keys(root: Path) -> dict[str, str]:
    return {item: entry["key"] for item, entry in json.loads((root / STATE).read_text()).items()}


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".partial-" in p.name or p.name == remote.WORK]


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# -- the build on a cluster ---------------------------------------------------------------------


@needs_distributed
@pytest.mark.timeout(BUILD_TIMEOUT * 3)
def test_a_cluster_build_matches_a_local_one_and_a_rebuild_skips_everything(
    cluster: tuple[str, Any], tmp_path: Path
) -> None:
    address, _ = cluster
    manifest, cache = library(tmp_path / "src"), tmp_path / "cache"
    # eSpeak NG does not always say a line the same way twice, and items spoken at once may each
    # say a shared line: one build item by item fills the cache, and both builds read it from there.
    assert run_build(manifest, tmp_path / "first", cache, "-j", "1").returncode == 0
    on_cluster = run_build(manifest, tmp_path / "cluster", cache, "--cluster", address)
    assert on_cluster.returncode == 0, on_cluster.stderr
    assert "3 built, 0 skipped (unchanged), 0 failed" in on_cluster.stdout
    local = run_build(manifest, tmp_path / "local", cache, "-j", "2")
    assert local.returncode == 0, local.stderr
    assert keys(tmp_path / "cluster") == keys(tmp_path / "local")
    assert outputs(tmp_path / "cluster") == outputs(tmp_path / "local")  # audio, sidecars and playlists
    assert not leftovers(tmp_path / "cluster")
    again = run_build(manifest, tmp_path / "cluster", cache, "--cluster", address)
    assert again.returncode == 0, again.stderr
    assert "0 built, 3 skipped (unchanged), 0 failed" in again.stdout


@needs_distributed
@pytest.mark.timeout(BUILD_TIMEOUT * 2)
def test_a_worker_killed_mid_item_leaves_a_complete_library(cluster: tuple[str, Any], tmp_path: Path) -> None:
    """Its item runs again on another worker; with shared storage, its temporary files never reach the library."""
    address, client = cluster
    manifest, root = library(tmp_path / "src"), tmp_path / "library"
    build = subprocess.Popen([sys.executable, "-m", "guided_audio", "build", str(manifest), "-o", str(root), "-q",
                              "--cache-dir", str(tmp_path / "cache"), "--cluster", address, "--shared-storage"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + BUILD_TIMEOUT
        busy: list[str] = []
        while not busy and build.poll() is None and time.monotonic() < deadline:
            busy = [w for w, tasks in client.processing().items() if any("guided-audio" in str(t) for t in tasks)]
            time.sleep(0.05)
        assert busy, "no worker ever rendered an item"
        time.sleep(0.3)  # well into the item (the cache is cold: eSpeak speaks every line)
        pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        out, err = build.communicate(timeout=BUILD_TIMEOUT)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
    assert build.returncode == 0, err
    assert "3 built, 0 skipped (unchanged), 0 failed" in out
    assert not leftovers(root)
    state = json.loads((root / STATE).read_text())
    assert len(state) == 3
    for entry in state.values():
        assert (root / entry["file"]).stat().st_size == entry["bytes"]  # each file whole, as recorded
    client.wait_for_workers(2, timeout=START_TIMEOUT)  # the nanny brings the worker back for the next tests


@needs_distributed
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_a_worker_with_another_version_is_refused(cluster: tuple[str, Any], tmp_path: Path) -> None:
    address, client = cluster
    worker = sorted(client.scheduler_info()["workers"])[0]
    client.run(version_setter("0.0.0-other"), workers=[worker])
    try:
        proc = run_build(library(tmp_path / "src"), tmp_path / "library", tmp_path / "cache", "--cluster", address)
    finally:
        client.run(version_setter(None), workers=[worker])
    line = one_line_error(proc)
    assert f"--cluster {address}" in line and worker in line and "0.0.0-other" in line
    assert not list((tmp_path / "library").rglob("*.flac"))


def version_setter(version: str | None) -> Any:
    """A function that makes a worker pretend to be another release (None: the real one again).

    Made here, not at the top of the module, so it travels by value: workers cannot import the tests.
    """

    def set_version() -> None:
        import importlib.metadata

        import guided_audio

        guided_audio.__version__ = version or importlib.metadata.version("guided-audio")

    return set_version


@needs_distributed
@pytest.mark.timeout(60)
def test_a_cluster_that_cannot_be_reached_is_an_error_naming_the_option(tmp_path: Path) -> None:
    proc = run_build(library(tmp_path / "src"), tmp_path / "library", tmp_path / "cache", "--cluster",
                     "tcp://127.0.0.1:1", env={"GUIDED_AUDIO_CLUSTER_TIMEOUT": "1"})
    assert one_line_error(proc).startswith("error: --cluster tcp://127.0.0.1:1: cannot reach the scheduler")
    bad = run_build(library(tmp_path / "src"), tmp_path / "library", tmp_path / "cache", "--cluster", "nonsense")
    assert "not a scheduler address" in one_line_error(bad)


@needs_distributed
@pytest.mark.timeout(90)
def test_a_scheduler_without_workers_is_an_error(tmp_path: Path) -> None:
    with scheduler(tmp_path / "lonely") as address:
        proc = run_build(library(tmp_path / "src"), tmp_path / "library", tmp_path / "cache", "--cluster", address,
                         env={"GUIDED_AUDIO_CLUSTER_TIMEOUT": "1"})
    line = one_line_error(proc)
    assert f"--cluster {address}" in line and "no workers" in line


# -- without a cluster ------------------------------------------------------------------------


def test_shared_storage_needs_a_cluster(tmp_path: Path, runner: Any) -> None:
    result = runner.invoke(cli, ["build", str(library(tmp_path)), "-o", str(tmp_path / "out"), "--shared-storage"])
    assert result.exit_code == 2
    assert "--shared-storage" in result.stderr and "--cluster" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_worker_is_compared_on_version_voices_sounds_and_sources() -> None:
    mine: dict[str, Any] = {"version": "1.0", "default voice": "pyttsx3", "voices": ["pyttsx3:en", "piper:joe"],
                            "voice identities": {"": {"engine": "pyttsx3"}}, "sounds": {"bell.flac": "aa"},
                            "sources": {"/lib/one.j2": "s1", "/lib/gone.j2": "missing"}}
    assert remote.differences(mine, json.loads(json.dumps(mine))) is None
    cases = {
        "version": ({"version": "0.9"}, "has guided-audio 0.9, this machine 1.0"),
        "voices": ({"voices": ["pyttsx3:en"]}, "other voices than this machine (missing piper:joe)"),
        "identity": ({"voice identities": {"": {"engine": "pyttsx3", "backend": "x"}}}, "another build of the voice"),
        "sounds": ({"sounds": {"bell.flac": "bb"}}, "another built-in sound bell.flac"),
        "sources": ({"sources": {"/lib/one.j2": "missing"}}, "does not have /lib/one.j2"),
    }
    for change, expected in cases.values():
        problem = remote.differences(mine, {**mine, **change})
        assert problem is not None and expected in problem, (change, problem)
