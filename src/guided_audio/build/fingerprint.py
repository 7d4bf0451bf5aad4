"""What an item depends on: a fingerprint of everything that changes its output.

A library of thousands of items shares a handful of templates, session files and sounds;
`Fingerprints` reads and hashes each of them once per build, so planning costs little more
per item than hashing its settings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from guided_audio import __version__, practices, sessions, sounds
from guided_audio.build.manifest import Item


class Fingerprints:
    """Fingerprints of a build's items; each input file is read once."""

    def __init__(self) -> None:
        self._sources: dict[str, bytes] = {}  # target -> digest of its template (and session) files
        self._files: dict[str, bytes] = {}  # a user's bed file or folder of recordings -> digest of its stats
        self._sounds: bytes | None = None

    def __call__(self, item: Item) -> str:
        """A hash of everything that changes the item's output."""
        h = hashlib.sha256()
        h.update(json.dumps([__version__, item.target, item.settings, item.options, item.title, item.album],
                            sort_keys=True, default=str).encode())
        h.update(self._source_digest(item.target))
        h.update(self._sound_digest())
        for option in ("ambient", "voice", "second_voice"):
            value = str(item.options.get(option) or "").split(":", 1)[-1]
            if value:  # "pyttsx3:" names no file (not the current folder)
                h.update(self._file_digest(value))
        return h.hexdigest()

    def _source_digest(self, target: str) -> bytes:
        if target not in self._sources:
            h = hashlib.sha256()
            for source in sources(target):
                h.update(source.name.encode())
                h.update(source.read_bytes())
            self._sources[target] = h.digest()
        return self._sources[target]

    def _sound_digest(self) -> bytes:
        if self._sounds is None:
            h = hashlib.sha256()
            for sound in sorted(sounds.library_dir().glob("*.flac")):
                stat = sound.stat()
                h.update(f"{sound.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
            self._sounds = h.digest()
        return self._sounds

    def _file_digest(self, value: str) -> bytes:
        if value not in self._files:
            h = hashlib.sha256()
            local = Path(value)
            if local.exists():  # a user's bed file or a folder of recordings; a voice name is no file
                for f in sorted(local.rglob("*") if local.is_dir() else [local]):
                    if f.is_file():
                        h.update(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}".encode())
            self._files[value] = h.digest()
        return self._files[value]


def fingerprint(item: Item) -> str:
    """A hash of everything that changes one item's output."""
    return Fingerprints()(item)


def sources(target: str) -> list[Path]:
    """The template files (and session file) an item is made from."""
    if sessions.is_session(target):
        session = sessions.load(Path(target))
        return [Path(target), *sorted({part.practice.path for part in session.parts})]
    return [practices.load(target).path]
