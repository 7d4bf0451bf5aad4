"""The library folder's own files: the lock that keeps two builds out, and the state of what was built.

The state file records, for every published item, its fingerprint and its summary for the
index; an item is skipped when its fingerprint is unchanged and its audio is still there.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from typing import Any

from guided_audio import publish
from guided_audio.errors import BadInput

STATE = ".guided-audio-build.json"
LOCK = ".guided-audio-build.lock"


class Locked:
    """An exclusive lock on the output folder for the whole build."""

    def __init__(self, root: Path):
        self.path = root / LOCK

    def __enter__(self) -> Locked:
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise BadInput(f"-o {self.path.parent}: another build is writing to this folder; wait for it to end") from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def read_state(root: Path) -> dict[str, dict[str, Any]]:
    try:
        state: dict[str, dict[str, Any]] = json.loads((root / STATE).read_text(encoding="utf-8"))
        return state
    except (OSError, ValueError):
        return {}


def write_state(root: Path, state: dict[str, dict[str, Any]]) -> None:
    write_if_changed(root / STATE, json.dumps(state, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def write_if_changed(path: Path, content: str | bytes) -> None:
    """Replace a file whole, and only when its content changes (a no-op build touches nothing)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    publish.atomic_write_bytes(path, data, option="-o")
