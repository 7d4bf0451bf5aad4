"""Renders the studio started: each in a child process (see worker.py), its progress read as it comes."""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass
class Job:
    """One render: where it is, and how it ended."""

    id: str
    name: str  # the render's folder under renders/
    stage: str = "Starting"
    fraction: float = 0.0
    stages: list[str] = field(default_factory=list)
    state: str = "running"  # running, done or failed
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"state": self.state, "stage": self.stage, "fraction": round(self.fraction, 3),
                "stages": self.stages, "error": self.error, "warnings": self.warnings, "render": self.name}


class Jobs:
    """The renders of one studio, by id."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.jobs: dict[str, Job] = {}
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.lock = threading.Lock()

    def start(self, name: str, request: dict[str, Any]) -> Job:
        """Start rendering `request` (see worker.main) into renders/NAME/."""
        job = Job(secrets.token_hex(8), name)
        # Not a pipe, so a chatty child cannot stall; _follow closes it when the render ends.
        errors = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "guided_audio.studio.worker"], cwd=self.folder, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
        )
        with self.lock:
            self.jobs[job.id] = job
            self.processes[job.id] = process
        target = Path(request["output"]).parent
        threading.Thread(target=self._follow, args=(job, process, json.dumps(request), target, errors),
                         daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def _follow(self, job: Job, process: subprocess.Popen[str], request: str, target: Path, errors: IO[str]) -> None:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(request)
        process.stdin.close()
        for line in process.stdout:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self._record(job, row)
        code = process.wait()
        with errors:
            errors.seek(0)
            stderr = errors.read()
        if job.state != "done":
            with contextlib.suppress(OSError):  # the render's folder, if nothing was published into it
                target.rmdir()
        with self.lock:
            if job.state != "done":  # failed only now, once the process has ended and tidied up
                lines = [line for line in stderr.splitlines() if line.strip()]
                job.error = job.error or f"the render stopped (exit status {code})" + (f": {lines[-1]}" if lines else "")
                job.state = "failed"
            self.processes.pop(job.id, None)

    @staticmethod
    def _record(job: Job, row: dict[str, Any]) -> None:
        if "stage" in row:
            job.stage, job.fraction = str(row["stage"]), float(row.get("fraction", 0.0))
            if job.stage not in job.stages:
                job.stages.append(job.stage)
        elif "done" in row:
            job.state, job.fraction = "done", 1.0
            job.warnings = [str(w) for w in row.get("warnings", [])]
        elif "error" in row:
            job.error = str(row["error"])

    def stop_all(self) -> None:
        """End every render still running (the studio is closing)."""
        with self.lock:
            running = list(self.processes.values())
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
