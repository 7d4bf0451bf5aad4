"""The pyttsx3 engine: the platform's own voices (eSpeak NG on Linux, nsss, SAPI5).

pyttsx3 runs in a worker process (`guided_audio.engines._pyttsx3_worker`): eSpeak NG
calls exit() when its data is missing and pyttsx3 prints to stdout, and neither may
reach the user. The worker writes one file per line and reports each on a pipe.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from guided_audio.errors import EngineError, ParameterError
from guided_audio.speech import Line, VoiceInfo

WORKER = "guided_audio.engines._pyttsx3_worker"


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
        self._run({"command": "say", "voice": voice, "jobs": jobs}, on_line=lambda msg: done(1) if "done" in msg else None)
        return paths

    def voices(self) -> list[VoiceInfo]:
        found: list[VoiceInfo] = []

        def collect(msg: dict[str, Any]) -> None:
            if "voice" in msg:
                v = msg["voice"]
                found.append(VoiceInfo(v["id"], v["name"], tuple(v["languages"]), v["gender"] or ""))

        self._run({"command": "voices"}, on_line=collect)
        return found

    def _run(self, request: dict[str, Any], on_line: Callable[[dict[str, Any]], None]) -> None:
        env = dict(os.environ, PYTHONIOENCODING="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", WORKER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(json.dumps(request).encode("utf-8"))
        proc.stdin.close()
        problem = None
        for raw in proc.stdout:
            msg = json.loads(raw)
            if "error" in msg:
                problem = msg
            else:
                on_line(msg)
        stderr = proc.stderr.read().decode("utf-8", "replace").strip()
        status = proc.wait()
        if problem and problem.get("kind") == "voice":
            raise ParameterError(f"--voice: {problem['error']} (see 'guided-audio voices')")
        if problem:
            raise EngineError(f"pyttsx3: {problem['error']}")
        if status != 0:
            last = stderr.splitlines()[-1] if stderr else f"exit status {status}"
            raise EngineError(
                f"the pyttsx3 speech engine stopped ({last}); check that eSpeak NG and its data "
                "are installed (or reinstall the espeakng-loader package)"
            )
