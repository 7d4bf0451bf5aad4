"""Renders the studio started: each in a child process (see worker.py), its progress read as it comes."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
        process = subprocess.Popen(
            [sys.executable, "-m", "guided_audio.studio.worker"], cwd=self.folder, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        with self.lock:
            self.jobs[job.id] = job
            self.processes[job.id] = process
        threading.Thread(target=self._follow, args=(job, process, json.dumps(request)), daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def _follow(self, job: Job, process: subprocess.Popen[str], request: str) -> None:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        process.stdin.write(request)
        process.stdin.close()
        for line in process.stdout:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self._record(job, row)
        stderr = process.stderr.read()
        code = process.wait()
        with self.lock:
            if job.state == "running":
                job.state = "failed"
                lines = [line for line in stderr.splitlines() if line.strip()]
                job.error = f"the render stopped (exit status {code})" + (f": {lines[-1]}" if lines else "")
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
            job.state, job.error = "failed", str(row["error"])

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
