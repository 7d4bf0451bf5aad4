"""Tags: the session's metadata, chapters, transcript and cover written into the audio file.

One writer per container, in a registry keyed by the container's name:
ID3 for mp3 (chapters as CTOC + CHAP frames), Vorbis comments for Ogg Vorbis, Opus
and FLAC (chapters as CHAPTERnnn comments, cover as a FLAC picture), and MP4 atoms
for m4a (its chapters are written by ffmpeg while encoding; a later save keeps them).
Every text is written without control characters (`publish.clean_text`): newlines are
kept only in the comment and the lyrics.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import mutagen
from mutagen import id3
from mutagen.flac import FLAC, Picture, VCFLACDict
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm, MP4Tags

from guided_audio.errors import EncoderError
from guided_audio.publish import clean_text


@dataclass(frozen=True)
class Chapter:
    """A chapter from `start` to `end` milliseconds."""

    start: int
    end: int
    title: str


@dataclass(frozen=True)
class Metadata:
    """What a player shows about a session."""

    title: str
    artist: str
    album: str
    genre: str
    comment: str
    date: str  # YYYY-MM-DD
    album_artist: str = ""
    track: tuple[int, int] | None = None  # (n, of N)
    language: str = "en"  # ISO 639-1; ID3 wants the three-letter code
    lyrics: str = ""  # the full transcript
    cover: bytes = b""
    cover_mime: str = "image/png"
    chapters: tuple[Chapter, ...] = field(default_factory=tuple)


LANGUAGE_ATOM = "----:com.apple.iTunes:LANGUAGE"  # MP4 has no standard language tag
Writer = Callable[[Path, Metadata], None]
WRITERS: dict[str, Writer] = {}
ISO639_2 = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa", "nl": "nld", "it": "ita", "pt": "por"}


def register_writer(container: str, writer: Writer) -> None:
    """Make a tag writer available for a container."""
    WRITERS[container] = writer


def write(path: Path, container: str | None, meta: Metadata) -> None:
    """Write `meta` into the file at `path` with the container's writer (none for wav)."""
    if container is None:
        return
    meta = clean(meta)
    try:
        WRITERS[container](path, meta)
    except mutagen.MutagenError as exc:
        raise EncoderError(f"could not write tags into {path.name}: {exc}") from exc


def clean(meta: Metadata) -> Metadata:
    """`meta` without control characters; only the comment and the lyrics keep their line breaks."""
    return dataclasses.replace(
        meta, title=clean_text(meta.title), artist=clean_text(meta.artist), album=clean_text(meta.album),
        genre=clean_text(meta.genre), date=clean_text(meta.date), album_artist=clean_text(meta.album_artist),
        language=clean_text(meta.language), comment=clean_text(meta.comment, newlines=True),
        lyrics=clean_text(meta.lyrics, newlines=True),
        chapters=tuple(dataclasses.replace(c, title=clean_text(c.title)) for c in meta.chapters),
    )


def chapter_stamp(ms: int) -> str:
    """HH:MM:SS.mmm, as CHAPTERnnn comments want it."""
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def ffmetadata(chapters: tuple[Chapter, ...]) -> str:
    """An ffmpeg metadata file with the chapters (for containers mutagen cannot chapter)."""
    out = [";FFMETADATA1"]
    for c in chapters:
        title = clean_text(c.title).replace("\\", "\\\\").replace("=", "\\=").replace(";", "\\;").replace("#", "\\#")
        out += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={c.start}", f"END={c.end}", f"title={title}"]
    return "\n".join(out) + "\n"


# -- ID3 (mp3) -----------------------------------------------------------------------------


def _id3(path: Path, meta: Metadata) -> None:
    lang = ISO639_2.get(meta.language, "eng")
    tags = id3.ID3()
    for frame, text in ((id3.TIT2, meta.title), (id3.TPE1, meta.artist), (id3.TALB, meta.album),
                        (id3.TPE2, meta.album_artist), (id3.TCON, meta.genre), (id3.TDRC, meta.date),
                        (id3.TLAN, lang)):
        if text:
            tags.add(frame(encoding=3, text=text))
    if meta.track:
        tags.add(id3.TRCK(encoding=3, text=f"{meta.track[0]}/{meta.track[1]}"))
    tags.add(id3.COMM(encoding=3, lang=lang, desc="", text=meta.comment))
    if meta.lyrics:
        tags.add(id3.USLT(encoding=3, lang=lang, desc="", text=meta.lyrics))
    if meta.cover:
        tags.add(id3.APIC(encoding=3, mime=meta.cover_mime, type=3, desc="Cover", data=meta.cover))
    if meta.chapters:
        ids = _chapter_ids(meta.chapters)
        tags.add(id3.CTOC(element_id="toc", flags=id3.CTOCFlags.TOP_LEVEL | id3.CTOCFlags.ORDERED,
                          child_element_ids=ids, sub_frames=[id3.TIT2(encoding=3, text="Chapters")]))
        for element, c in zip(ids, meta.chapters):
            tags.add(id3.CHAP(element_id=element, start_time=c.start, end_time=c.end,
                              sub_frames=[id3.TIT2(encoding=3, text=c.title)]))
    tags.save(path, v2_version=4)


def _chapter_ids(chapters: tuple[Chapter, ...]) -> list[str]:
    """CHAP element ids that keep the frames in time order in the file.

    mutagen stores frames by size, then by key; ffmpeg lists mp3 chapters in stored
    order. Padding the ids so every CHAP frame has the same size leaves the key (the
    numbered id) to decide, so readers that ignore the CTOC still see them in order.
    """
    sizes = [len(c.title.encode("utf-8")) for c in chapters]
    return [f"chp{i:03d}" + "_" * (max(sizes) - size) for i, size in enumerate(sizes)]


# -- Vorbis comments (ogg, opus, flac) -----------------------------------------------------


def _comments(meta: Metadata) -> dict[str, list[str]]:
    comments = {
        "TITLE": [meta.title],
        "ARTIST": [meta.artist],
        "ALBUM": [meta.album],
        "GENRE": [meta.genre],
        "DATE": [meta.date],
        "LANGUAGE": [meta.language],
        "COMMENT": [meta.comment],
        "DESCRIPTION": [meta.comment],
    }
    if meta.album_artist:
        comments["ALBUMARTIST"] = [meta.album_artist]
    if meta.track:
        comments["TRACKNUMBER"] = [str(meta.track[0])]
        comments["TRACKTOTAL"] = [str(meta.track[1])]
    if meta.lyrics:
        comments["LYRICS"] = [meta.lyrics]
    for i, c in enumerate(meta.chapters):
        comments[f"CHAPTER{i:03d}"] = [chapter_stamp(c.start)]
        comments[f"CHAPTER{i:03d}NAME"] = [c.title]
    return comments


def _picture(meta: Metadata) -> Picture:
    picture = Picture()
    picture.type = 3  # front cover
    picture.mime = meta.cover_mime
    picture.desc = "Cover"
    picture.data = meta.cover
    return picture


def _ogg(path: Path, meta: Metadata) -> None:
    audio = mutagen.File(path)  # OggVorbis or OggOpus
    if audio is None:
        raise EncoderError(f"could not read back {path.name} to tag it")
    if audio.tags is None:
        audio.add_tags()
    audio.tags.update(_comments(meta))
    if meta.cover:
        audio.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(_picture(meta).write()).decode("ascii")]
    audio.save()


def _flac(path: Path, meta: Metadata) -> None:
    audio = FLAC(path)
    if audio.tags is None:
        audio.add_tags()
    cast(VCFLACDict, audio.tags).update(_comments(meta))  # add_tags() made them
    audio.clear_pictures()
    if meta.cover:
        audio.add_picture(_picture(meta))
    audio.save()


# -- MP4 (m4a) -----------------------------------------------------------------------------


def _mp4(path: Path, meta: Metadata) -> None:
    audio = MP4(path)
    if audio.tags is None:
        audio.add_tags()
    atoms = {
        "\xa9nam": [meta.title],
        "\xa9ART": [meta.artist],
        "\xa9alb": [meta.album],
        "\xa9gen": [meta.genre],
        "\xa9day": [meta.date],
        "\xa9cmt": [meta.comment],
        LANGUAGE_ATOM: [MP4FreeForm(meta.language.encode("utf-8"))],
    }
    if meta.album_artist:
        atoms["aART"] = [meta.album_artist]
    if meta.track:
        atoms["trkn"] = [meta.track]
    if meta.lyrics:
        atoms["\xa9lyr"] = [meta.lyrics]
    if meta.cover:
        kind = MP4Cover.FORMAT_PNG if meta.cover_mime == "image/png" else MP4Cover.FORMAT_JPEG
        atoms["covr"] = [MP4Cover(meta.cover, imageformat=kind)]
    cast(MP4Tags, audio.tags).update(atoms)  # mutagen types MP4.tags as None only
    audio.save()


register_writer("id3", _id3)
register_writer("vorbis", _ogg)
register_writer("flac", _flac)
register_writer("mp4", _mp4)
