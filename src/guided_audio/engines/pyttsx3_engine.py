"""The pyttsx3 engine: the platform's own voices (eSpeak NG on Linux, nsss, SAPI5).

pyttsx3 runs in a worker process (`guided_audio.engines._pyttsx3_worker`): eSpeak NG
calls exit() when its data is missing and pyttsx3 prints to stdout, and neither may
reach the user. The worker writes one file per line and reports each on a pipe.

The worker is watched: its stderr is drained while its reports are read, each line has a
deadline (LINE_TIMEOUT seconds, or $GUIDED_AUDIO_ENGINE_TIMEOUT, times 1 + characters/100;
the first line also gets as much again to start the engine), and on any failure the
worker is killed and waited for. Messages name a line by its number and id, never by its
words (a line may hold a private word).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from guided_audio.errors import EngineError, ParameterError
from guided_audio.speech import Line, VoiceInfo, describe_line

WORKER = "guided_audio.engines._pyttsx3_worker"
LINE_TIMEOUT = 60.0  # seconds a line may take (eSpeak says ~100 a second); more for long lines
TIMEOUT_ENV = "GUIDED_AUDIO_ENGINE_TIMEOUT"  # overrides LINE_TIMEOUT (tests use a short one)
MAX_REPORT = 1 << 20  # longest report line read from the worker
PHRASE_WPM = 150  # the rate eSpeak NG says a line's phrases at (see guided_audio.phrasing)


def espeak_identity() -> str:
    """Which eSpeak NG the worker will load: the system's, else the espeakng-loader wheel's."""
    if not sys.platform.startswith("linux"):
        return sys.platform
    system = ctypes.util.find_library("espeak-ng")
    if system:
        return f"system:{system}"
    try:
        return f"espeakng-loader=={metadata.version('espeakng-loader')}"
    except metadata.PackageNotFoundError:
        return "none"


class Pyttsx3Engine:
    """Speech through pyttsx3, one clip per line, in a worker process."""

    name = "pyttsx3"

    def __init__(self, line_timeout: float | None = None) -> None:
        self.line_timeout = line_timeout  # None: $GUIDED_AUDIO_ENGINE_TIMEOUT, else LINE_TIMEOUT

    def identity(self, voice: str | None) -> dict[str, str]:
        return {
            "engine": self.name,
            "version": metadata.version("pyttsx3"),
            "backend": espeak_identity(),
            "voice": voice or "default",
        }

    def synthesize(
        self, lines: list[Line], voice: str | None, folder: Path, done: Callable[[int], None]
    ) -> list[Path]:
        paths = [folder / f"{i:05d}.wav" for i in range(len(lines))]
        jobs = [{"text": line.text, "rate": line.wpm, "path": str(p)} for line, p in zip(lines, paths)]
        texts = [line.text for line in lines]
        finished = 0

        def on_line(msg: dict[str, Any]) -> None:
            nonlocal finished
            if "done" in msg:
                finished += 1
                done(1)

        self._run({"command": "say", "voice": voice, "jobs": jobs}, on_line=on_line, texts=texts)
        if finished < len(lines):
            raise EngineError(
                f"the pyttsx3 speech engine stopped before {describe_line(finished + 1, len(lines), texts[finished])} "
                "without saying why; check that eSpeak NG and its data are installed"
            )
        return paths

    def phrase_wpm(self, voice: str | None) -> int:
        """The rate a line's phrases are said at; pauses between them carry a slower pace."""
        return PHRASE_WPM

    def voices(self) -> list[VoiceInfo]:
        found: list[VoiceInfo] = []

        def collect(msg: dict[str, Any]) -> None:
            if "voice" in msg:
                v = msg["voice"]
                found.append(VoiceInfo(v["id"], v["name"], tuple(v["languages"]), v["gender"] or ""))

        self._run({"command": "voices"}, on_line=collect, texts=[])
        return found

    def command(self) -> list[str]:
        """How the worker process is started."""
        return [sys.executable, "-m", WORKER]

    def _timeout(self, text: str, base: float | None = None) -> float:
        """Seconds a line may take: generous, and longer for a longer text."""
        if base is None:
            base = self.line_timeout if self.line_timeout is not None else timeout_setting()
        return base * (1.0 + len(text) / 100.0)

    def _run(self, request: dict[str, Any], on_line: Callable[[dict[str, Any]], None], texts: list[str]) -> None:
        """Run the worker on one request: each reported line to `on_line`, any failure an error.

        stdin is written, stdout read and stderr drained by their own threads, so no pipe can
        fill up and block the worker; the main thread waits for each report with a deadline
        (startup plus the line's own allowance) and kills the worker when it passes. Whatever
        happens, the worker is killed if still running and waited for before this returns.
        """
        base = self._timeout("")  # read (and checked) before the worker starts
        env = dict(os.environ, PYTHONIOENCODING="utf-8")
        proc = subprocess.Popen(
            self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        assert proc.stdin and proc.stdout and proc.stderr
        reports: queue.Queue[bytes | None] = queue.Queue()
        stderr = _Tail()
        threads = [
            threading.Thread(target=_feed, args=(proc.stdin, json.dumps(request).encode("utf-8")), daemon=True),
            threading.Thread(target=_lines, args=(proc.stdout, reports), daemon=True),
            threading.Thread(target=stderr.drain, args=(proc.stderr,), daemon=True),
        ]
        for thread in threads:
            thread.start()
        problem: dict[str, Any] | None = None
        try:
            index = 0  # the line being said
            # The first line's allowance includes starting the engine.
            allowance = base + self._timeout(texts[0] if texts else "", base)
            deadline = time.monotonic() + allowance
            while True:
                try:
                    raw = reports.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    what = describe_line(index + 1, len(texts), texts[index]) if index < len(texts) else "its work"
                    raise EngineError(
                        f"the pyttsx3 speech engine did not finish {what} within {allowance:.3g} s; it was stopped"
                    ) from None
                if raw is None:
                    break
                msg = _parse(raw)
                if msg is None:
                    raise EngineError("the pyttsx3 speech engine's worker sent something unreadable; it was stopped")
                if "error" in msg:
                    problem = msg
                    break
                on_line(msg)
                if "done" in msg:
                    index += 1
                    allowance = self._timeout(texts[index] if index < len(texts) else "", base)
                    deadline = time.monotonic() + allowance
            status = _wait(proc, base)
        finally:
            _stop(proc)
            for thread in threads:
                thread.join(timeout=5)
        if problem and problem.get("kind") == "voice":
            raise ParameterError(f"--voice: {problem['error']} (see 'guided-audio voices')")
        if problem:
            at = problem.get("index")
            where = (f" on {describe_line(at + 1, len(texts), texts[at])}"
                     if isinstance(at, int) and 0 <= at < len(texts) else "")
            raise EngineError(f"pyttsx3 failed{where}: {_one_line(str(problem['error']))}")
        if status != 0:
            last = stderr.last_line() or f"exit status {status}"
            raise EngineError(
                f"the pyttsx3 speech engine stopped ({last}); check that eSpeak NG and its data "
                "are installed (or reinstall the espeakng-loader package)"
            )


def timeout_setting() -> float:
    """Seconds allowed per line before the length bonus: $GUIDED_AUDIO_ENGINE_TIMEOUT, else LINE_TIMEOUT."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return LINE_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ParameterError(f"${TIMEOUT_ENV}: '{raw}' is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise ParameterError(f"${TIMEOUT_ENV}: {raw} is out of range (more than 0, at most 3600 seconds)")
    return value


class _Tail:
    """The last few kilobytes a pipe carried, read to its end (memory stays bounded)."""

    KEEP = 8192

    def __init__(self) -> None:
        self.data = b""

    def drain(self, pipe: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := pipe.read1(65536) if hasattr(pipe, "read1") else pipe.read(65536):
                self.data = (self.data + chunk)[-self.KEEP :]

    def last_line(self) -> str:
        lines = self.data.decode("utf-8", "replace").strip().splitlines()
        return _one_line(lines[-1]) if lines else ""


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write the request and close stdin (a worker that died early is noticed by its status)."""
    with contextlib.suppress(OSError, ValueError):
        pipe.write(data)
    with contextlib.suppress(OSError, ValueError):
        pipe.close()


def _lines(pipe: IO[bytes], out: queue.Queue[bytes | None]) -> None:
    """Every report line (bounded in length) into `out`, then None."""
    try:
        while raw := pipe.readline(MAX_REPORT):
            out.put(raw)
    except (OSError, ValueError):
        pass
    finally:
        out.put(None)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        msg = json.loads(raw)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The worker's exit status once its output has ended (killed if it lingers)."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return proc.wait()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the worker if it still runs and wait for it: no zombie, no worker writing on."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
