"""Tags: the session's metadata written into the audio file, one writer per container."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import mutagen
from mutagen import id3
from mutagen.mp4 import MP4

from guided_audio.errors import EncoderError


@dataclass(frozen=True)
class Metadata:
    """What a player shows about a session."""

    title: str
    artist: str
    album: str
    genre: str
    comment: str
    date: str  # YYYY-MM-DD


Writer = Callable[[Path, Metadata], None]
WRITERS: dict[str, Writer] = {}


def register_writer(container: str, writer: Writer) -> None:
    """Make a tag writer available for a container."""
    WRITERS[container] = writer


def write(path: Path, container: str | None, meta: Metadata) -> None:
    """Write `meta` into the file at `path` with the container's writer (none for wav)."""
    if container is None:
        return
    try:
        WRITERS[container](path, meta)
    except mutagen.MutagenError as exc:
        raise EncoderError(f"could not write tags into {path.name}: {exc}") from exc


def _id3(path: Path, meta: Metadata) -> None:
    tags = id3.ID3()
    tags.add(id3.TIT2(encoding=3, text=meta.title))
    tags.add(id3.TPE1(encoding=3, text=meta.artist))
    tags.add(id3.TALB(encoding=3, text=meta.album))
    tags.add(id3.TCON(encoding=3, text=meta.genre))
    tags.add(id3.TDRC(encoding=3, text=meta.date))
    tags.add(id3.COMM(encoding=3, lang="eng", desc="", text=meta.comment))
    tags.save(path, v2_version=4)


def _comments(meta: Metadata) -> dict[str, list[str]]:
    return {
        "TITLE": [meta.title],
        "ARTIST": [meta.artist],
        "ALBUM": [meta.album],
        "GENRE": [meta.genre],
        "DATE": [meta.date],
        "COMMENT": [meta.comment],
        "DESCRIPTION": [meta.comment],
    }


def _vorbis(path: Path, meta: Metadata) -> None:
    audio = mutagen.File(path)  # OggVorbis or OggOpus
    if audio is None:
        raise EncoderError(f"could not read back {path.name} to tag it")
    if audio.tags is None:
        audio.add_tags()
    audio.tags.update(_comments(meta))
    audio.save()


def _mp4(path: Path, meta: Metadata) -> None:
    audio = MP4(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.update({
        "\xa9nam": [meta.title],
        "\xa9ART": [meta.artist],
        "\xa9alb": [meta.album],
        "\xa9gen": [meta.genre],
        "\xa9day": [meta.date],
        "\xa9cmt": [meta.comment],
    })
    audio.save()


register_writer("id3", _id3)
register_writer("vorbis", _vorbis)
register_writer("flac", _vorbis)
register_writer("mp4", _mp4)
