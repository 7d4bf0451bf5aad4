"""What an item depends on: a fingerprint of everything that changes its output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from guided_audio import __version__, practices, sessions, sounds
from guided_audio.build.manifest import Item


def fingerprint(item: Item) -> str:
    """A hash of everything that changes the item's output."""
    h = hashlib.sha256()
    h.update(json.dumps([__version__, item.target, item.settings, item.options, item.title, item.album],
                        sort_keys=True, default=str).encode())
    for source in sources(item):
        h.update(source.name.encode())
        h.update(source.read_bytes())
    for sound in sorted(sounds.library_dir().glob("*.flac")):
        stat = sound.stat()
        h.update(f"{sound.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for option in ("ambient", "voice", "second_voice"):
        value = str(item.options.get(option) or "").split(":", 1)[-1]
        local = Path(value) if value else None  # "pyttsx3:" names no file (not the current folder)
        if local is not None and local.exists():  # a user's bed file or a folder of recordings
            for f in sorted(local.rglob("*") if local.is_dir() else [local]):
                if f.is_file():
                    h.update(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}".encode())
    return h.hexdigest()


def sources(item: Item) -> list[Path]:
    """The template files (and session file) an item is made from."""
    if sessions.is_session(item.target):
        session = sessions.load(Path(item.target))
        return [Path(item.target), *sorted({part.practice.path for part in session.parts})]
    return [practices.load(item.target).path]


