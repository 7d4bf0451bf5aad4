"""Inspection: what actually landed in an audio file, read back by mutagen and by ffmpeg."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mutagen
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4

from guided_audio.errors import BadInput
from guided_audio.ffmpeg import run_ffmpeg
from guided_audio.tags import LANGUAGE_ATOM

# The tags shown, by a common name, for each container's own keys.
ID3_NAMES = {"TIT2": "title", "TPE1": "artist", "TALB": "album", "TPE2": "album artist", "TRCK": "track",
             "TCON": "genre", "TDRC": "date", "TLAN": "language", "COMM": "comment"}
VORBIS_NAMES = {"title": "title", "artist": "artist", "album": "album", "albumartist": "album artist",
                "tracknumber": "track", "tracktotal": "tracks", "genre": "genre", "date": "date",
                "language": "language", "comment": "comment"}
MP4_NAMES = {"\xa9nam": "title", "\xa9ART": "artist", "\xa9alb": "album", "aART": "album artist",
             "trkn": "track", "\xa9gen": "genre", "\xa9day": "date", "\xa9cmt": "comment"}


@dataclass
class Report:
    """What a file carries."""

    path: Path
    codec: str = ""
    sample_rate: int = 0
    channels: int = 0
    seconds: float = 0.0
    loudness: float | None = None
    true_peak: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    lyrics: str = ""
    cover: tuple[str, int] | None = None  # (mime, bytes)
    chapters: list[tuple[float, float, str]] = field(default_factory=list)  # as ffmpeg reads them


def inspect(path: Path) -> Report:
    """Read tags with mutagen, and chapters, duration and loudness with ffmpeg."""
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    report = Report(path)
    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        raise BadInput(f"{path}: cannot read tags ({exc})") from None
    if audio is not None:
        _read_tags(audio, report)
    report.chapters = ffmpeg_chapters(path)
    _measure(path, report)
    return report


def ffmpeg_chapters(path: Path) -> list[tuple[float, float, str]]:
    """The chapters as ffmpeg reads them: (start s, end s, title)."""
    text = run_ffmpeg(["-i", str(path), "-f", "ffmetadata", "-"], what=f"reading {path}").decode("utf-8", "replace")
    chapters = []
    for block in text.split("[CHAPTER]")[1:]:
        fields = dict(re.findall(r"^(\w+)=(.*)$", block, re.M))
        num, den = (int(x) for x in fields.get("TIMEBASE", "1/1000").split("/"))
        chapters.append((int(fields["START"]) * num / den, int(fields["END"]) * num / den,
                         fields.get("title", "").replace("\\", "")))
    return chapters


def _read_tags(audio: mutagen.FileType, report: Report) -> None:
    report.codec = type(audio).__name__
    tags: Any = audio.tags  # mutagen declares FileType.tags as None; it is the format's tag object
    if isinstance(tags, ID3):
        for frame in tags.values():
            name = ID3_NAMES.get(frame.FrameID)
            if name:
                report.tags[name] = str(frame)
            elif frame.FrameID == "USLT":
                report.lyrics = frame.text
            elif frame.FrameID == "APIC":
                report.cover = (frame.mime, len(frame.data))
    elif isinstance(audio, MP4) and tags is not None:
        for key, name in MP4_NAMES.items():
            if key in tags:
                value = tags[key][0]
                report.tags[name] = "/".join(map(str, value)) if isinstance(value, tuple) else str(value)
        report.lyrics = tags.get("\xa9lyr", [""])[0]
        if LANGUAGE_ATOM in tags:
            report.tags["language"] = bytes(tags[LANGUAGE_ATOM][0]).decode("utf-8", "replace")
        if tags.get("covr"):
            art = tags["covr"][0]
            report.cover = ("image/png" if art.imageformat == art.FORMAT_PNG else "image/jpeg", len(art))
    elif tags is not None:  # Vorbis comments
        for key, name in VORBIS_NAMES.items():
            if key in tags:
                report.tags[name] = tags[key][0]
        report.lyrics = tags.get("lyrics", [""])[0]
        if isinstance(audio, FLAC) and audio.pictures:
            report.cover = (audio.pictures[0].mime, len(audio.pictures[0].data))
        elif tags.get("metadata_block_picture"):
            import base64

            picture = Picture(base64.b64decode(tags["metadata_block_picture"][0]))
            report.cover = (picture.mime, len(picture.data))


def _measure(path: Path, report: Report) -> None:
    import subprocess

    from guided_audio.ffmpeg import ffmpeg_exe
    from guided_audio.mastering import EBUR128, parse_ebur128

    proc = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(path), *EBUR128],
                          capture_output=True, text=True)
    err = proc.stderr
    stream = re.search(r"Audio: (\w+).*?, (\d+) Hz, (mono|stereo|\d+ channels)", err)
    if stream:
        report.codec = stream.group(1)
        report.sample_rate = int(stream.group(2))
        report.channels = {"mono": 1, "stereo": 2}.get(stream.group(3)) or int(stream.group(3).split()[0])
    times = re.findall(r"time=(\d+):(\d+):(\d+\.\d+)", err)
    if times:
        h, m, s = times[-1]
        report.seconds = int(h) * 3600 + int(m) * 60 + float(s)
    measured = parse_ebur128(err)
    report.loudness = measured.lufs if measured else None
    report.true_peak = measured.true_peak if measured else None


def format_report(r: Report) -> str:
    """The report as the text `guided-audio inspect` prints."""
    minutes, seconds = divmod(r.seconds, 60)
    lines = [f"file:      {r.path}",
             f"audio:     {r.codec}, {r.sample_rate} Hz, {r.channels} ch, {int(minutes)}:{seconds:06.3f}"]
    if r.loudness is not None:
        lines.append(f"loudness:  {r.loudness:.1f} LUFS integrated, true peak {r.true_peak:.1f} dBTP")
    lines.append("tags:" if r.tags else "tags:      none")
    for key, value in r.tags.items():
        lines.append(f"  {key + ':':<14}{value}")
    lines.append(f"cover:     {r.cover[0]}, {r.cover[1]:,} bytes" if r.cover else "cover:     none")
    lyric_lines = [line for line in r.lyrics.splitlines() if line.strip()]
    lines.append(f"lyrics:    {len(lyric_lines)} lines" if lyric_lines else "lyrics:    none")
    lines.append(f"chapters:  {len(r.chapters)}" if r.chapters else "chapters:  none")
    for start, _, title in r.chapters:
        m, s = divmod(start, 60)
        lines.append(f"  {int(m // 60):02d}:{int(m % 60):02d}:{s:06.3f}  {title}")
    return "\n".join(lines)
