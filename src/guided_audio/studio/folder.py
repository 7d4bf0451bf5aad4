"""The studio's folder: one studio at a time, its templates, sessions and renders, and nothing outside it."""

from __future__ import annotations

import fcntl
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from guided_audio import practices
from guided_audio.errors import BadInput, OutputError

LOCK = ".guided-audio-studio.lock"
SESSIONS = "sessions"
RENDERS = "renders"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
AUDIO_SUFFIXES = (".mp3", ".ogg", ".opus", ".flac", ".m4a", ".wav")


def slug(text: str, fallback: str = "session") -> str:
    """A file-name-safe name: lowercase letters, digits and hyphens."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-")
    return out or fallback


def is_slug(text: str) -> bool:
    return bool(_SLUG.match(text))


def inside(folder: Path, path: Path) -> Path:
    """`path` resolved (symlinks followed), if it lies within `folder`; else an OutputError."""
    root = folder.resolve()
    resolved = (root / path).resolve()
    if resolved != root and root not in resolved.parents:
        raise OutputError(f"{path} is outside the studio's folder")
    return resolved


class StudioLock:
    """An exclusive lock on the folder for as long as a studio serves it."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK
        self.handle: IO[str] | None = None

    def __enter__(self) -> StudioLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise BadInput(f"another studio is already serving {self.path.parent} (its lock: {self.path})") from None
        self.handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


@dataclass(frozen=True)
class Choice:
    """A practice the studio offers: its key in URLs and forms, and what the list shows."""

    key: str  # a built-in name, or "file:NAME.j2" for the folder's own template
    title: str
    description: str
    own: bool


def practice_choices(folder: Path) -> list[Choice]:
    """The built-in practices, then the folder's own templates (a broken one is listed with its error)."""
    out = []
    for name in practices.builtin_names():
        p = practices.load(name)
        out.append(Choice(name, p.title, p.description, own=False))
    for path in sorted(folder.glob("*" + practices.TEMPLATE_SUFFIX)):
        key = "file:" + path.name
        try:
            p = load_practice(folder, key)
        except BadInput as exc:
            out.append(Choice(key, path.name, f"cannot be used: {exc.message}", own=True))
            continue
        out.append(Choice(key, p.title, p.description, own=True))
    return out


def load_practice(folder: Path, key: str) -> practices.Practice:
    """A practice by its key: built-in by name, or a template file directly in the folder (sandboxed)."""
    if key.startswith("file:"):
        name = key[len("file:"):]
        if "/" in name or "\\" in name or not name.endswith(practices.TEMPLATE_SUFFIX) or name.startswith("."):
            raise BadInput(f"'{name}' is not a template of the studio's folder")
        path = inside(folder, Path(name))
        return practices.from_file(path, builtin=False)
    if key not in practices.builtin_names():
        raise BadInput(f"unknown practice '{key}'")
    return practices.load(key)


def practice_spec(folder: Path, key: str) -> str:
    """What a RenderRequest or a session file's `practice =` names for a practice key."""
    if key.startswith("file:"):
        return str(inside(folder, Path(key[len("file:"):])))
    return key


def session_files(folder: Path) -> list[str]:
    """The names (without .toml) of the session files in the folder's sessions/ folder."""
    base = folder / SESSIONS
    return sorted(p.stem for p in base.glob("*.toml") if is_slug(p.stem) and p.is_file()) if base.is_dir() else []


def session_path(folder: Path, name: str) -> Path:
    """sessions/NAME.toml for a slug NAME, inside the folder."""
    if not is_slug(name):
        raise BadInput("a session's file name uses lowercase letters, digits and hyphens (up to 48)")
    return inside(folder, Path(SESSIONS) / f"{name}.toml")


@dataclass(frozen=True)
class Render:
    """A finished render in the folder: renders/NAME/ with its audio, sidecars and player page."""

    name: str
    title: str
    audio: Path
    files: tuple[Path, ...]
    seconds: float


def renders(folder: Path) -> list[Render]:
    """The renders in the folder, newest first."""
    base = folder / RENDERS
    if not base.is_dir():
        return []
    out = []
    for sub in sorted(base.iterdir(), key=lambda p: p.name, reverse=True):
        found = find_render(folder, sub.name)
        if found is not None:
            out.append(found)
    return out


def find_render(folder: Path, name: str) -> Render | None:
    """The render called `name`, or None."""
    if not is_slug(name):
        return None
    sub = inside(folder, Path(RENDERS) / name)
    if not sub.is_dir():
        return None
    audio = next((p for p in sorted(sub.iterdir()) if p.suffix in AUDIO_SUFFIXES and not p.name.startswith(".")), None)
    if audio is None:
        return None
    title, seconds = audio.stem, 0.0
    try:
        doc = json.loads(audio.with_suffix(".chapters.json").read_text(encoding="utf-8"))
        title = str(doc.get("title") or title)
        timeline = json.loads(audio.with_suffix(".json").read_text(encoding="utf-8"))
        seconds = float(timeline.get("duration", 0.0))
    except (OSError, ValueError, AttributeError):
        pass
    files = tuple(p for p in sorted(sub.iterdir()) if p.is_file() and not p.name.startswith("."))
    return Render(name, title, audio, files, seconds)
