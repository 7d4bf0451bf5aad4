"""Chapters, captions, cover art and full tags in every format, read back by two readers."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import mutagen
import numpy as np
import pytest
from conftest import decode, write_template

from guided_audio import cover, sidecars
from guided_audio.cli import cli
from guided_audio.inspection import ffmpeg_chapters, inspect
from guided_audio.render import RenderRequest, TagOverrides, render

FRONT = 'title = "Évening — ☾ calm"\n[minutes]\ndefault = 0.5\nmin = 0.1\nmax = 5\n'
BODY = """\
# Arriving
@cue bell
Welcome, Zoë and Sam, to this short practice, with nothing to achieve and nothing to get right.
@pause 1
# Breathing
@breathe in=3 out=4 cycles=2 cue=soft-chime say_in="in" say_out="and out"
# Closing
Notice the room around you, the light, the air, and the places where you are supported.
"""
FORMATS = ["mp3", "ogg", "opus", "flac", "m4a"]
STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d)[.,](\d{3}) --> (\d\d):(\d\d):(\d\d)[.,](\d{3})$")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_template(tmp_path_factory.mktemp("deliverables"), BODY, name="evening.j2", front=FRONT)


@pytest.fixture(scope="module", params=FORMATS)
def rendered(request, template: Path, tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    fmt = request.param
    out = tmp_path_factory.mktemp(f"out-{fmt}") / f"évening.{fmt}"
    result = render(RenderRequest(
        practice=str(template), output=out, cache_dir=cache_dir,
        tags=TagOverrides(artist="Dr. Zoë Åberg", album="Für uns", track=(2, 5)),
    ))
    return fmt, result, json.loads(result.sidecar.read_text(encoding="utf-8"))


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_captions(text: str, kind: str) -> list[tuple[float, float, list[str]]]:
    """A strict reader: header, numbering, time lines, at most the allowed line count and length."""
    blocks = text.strip("\n").split("\n\n")
    if kind == "vtt":
        assert blocks[0] == "WEBVTT"
        blocks = blocks[1:]
    cues = []
    for n, block in enumerate(blocks, start=1):
        lines = block.split("\n")
        if kind == "srt":
            assert lines[0] == str(n)
            lines = lines[1:]
        match = STAMP.match(lines[0])
        assert match, lines[0]
        separator = "," if kind == "srt" else "."
        assert separator in lines[0]
        start, end = seconds(*match.groups()[:4]), seconds(*match.groups()[4:])
        text_lines = lines[1:]
        width, most = (sidecars.SRT_LINE, sidecars.SRT_LINES) if kind == "srt" else (sidecars.VTT_LINE, sidecars.VTT_LINES)
        assert 1 <= len(text_lines) <= most and all(0 < len(line) <= width for line in text_lines), text_lines
        assert start < end
        cues.append((start, end, text_lines))
    return cues


def test_tags_read_back_by_mutagen(rendered) -> None:
    _, result, doc = rendered
    report = inspect(result.audio)
    assert report.tags["title"] == "Évening — ☾ calm"
    assert report.tags["artist"] == "Dr. Zoë Åberg"
    assert report.tags["album"] == "Für uns"
    assert report.tags["album artist"] == "Dr. Zoë Åberg"
    assert report.tags["genre"] == "Meditation"
    assert report.tags["date"]
    assert report.tags["language"] in ("en", "eng")
    assert report.tags["track"] in ("2/5", "2")
    assert "evening:" in report.tags["comment"] or "évening" in report.tags["comment"].lower() or report.tags["comment"]
    spoken = [e["text"] for e in doc["events"] if e["kind"] == "speech"]
    for line in spoken:
        assert line in report.lyrics
    assert report.cover is not None and report.cover[0] == "image/png"


def test_cover_bytes_are_the_generated_cover(rendered) -> None:
    fmt, result, _ = rendered
    expected = cover.generate("Évening — ☾ calm", "guided_audio", "evening")
    audio = mutagen.File(result.audio)
    if fmt == "mp3":
        data = audio.tags.getall("APIC")[0].data
    elif fmt == "m4a":
        data = bytes(audio.tags["covr"][0])
    elif fmt == "flac":
        data = audio.pictures[0].data
    else:
        import base64

        from mutagen.flac import Picture

        data = Picture(base64.b64decode(audio.tags["metadata_block_picture"][0])).data
    assert data == expected


def test_chapters_read_back_by_ffmpeg_match_the_timeline(rendered) -> None:
    fmt, result, doc = rendered
    sections = [e for e in doc["events"] if e["kind"] == "section"]
    chapters = ffmpeg_chapters(result.audio)
    assert [c[2] for c in chapters] == [s["text"] for s in sections]
    for (start, _end, _), section in zip(chapters, sections):
        assert abs(start - section["start"]) <= 0.05, (fmt, start, section)


def test_chapters_read_back_by_mutagen(rendered) -> None:
    fmt, result, doc = rendered
    sections = [e for e in doc["events"] if e["kind"] == "section"]
    audio = mutagen.File(result.audio)
    if fmt == "mp3":
        toc = audio.tags.getall("CTOC")[0]
        chaps = {c.element_id: c for c in audio.tags.getall("CHAP")}
        found = [(chaps[i].start_time / 1000, str(chaps[i].sub_frames["TIT2"])) for i in toc.child_element_ids]
    elif fmt == "m4a":
        found = [(c.start, c.title) for c in audio.chapters]
    else:
        found = []
        for n in range(len(sections)):
            h, m, s = audio.tags[f"CHAPTER{n:03d}"][0].split(":")
            found.append((int(h) * 3600 + int(m) * 60 + float(s), audio.tags[f"CHAPTER{n:03d}NAME"][0]))
    assert [t for _, t in found] == [s["text"] for s in sections]
    for (start, _), section in zip(found, sections):
        assert abs(start - section["start"]) <= 0.05


def test_captions_follow_the_speech_in_the_audio(rendered) -> None:
    _, result, doc = rendered
    audio, rate = decode(result.audio)
    envelope = np.sqrt(np.convolve((audio**2).mean(axis=1), np.ones(441) / 441, mode="same"))
    speech = [e for e in doc["events"] if e["kind"] == "speech"]
    for kind in ("vtt", "srt"):
        cues = parse_captions(result.sidecars[kind].read_text(encoding="utf-8"), kind)
        for (_, b, _), (c, _, _) in itertools.pairwise(cues):
            assert b <= c, "captions overlap"
        # every cue lies inside a speech event, and the words of the events are all there
        for start, end, _ in cues:
            assert any(e["start"] - 0.05 <= start and end <= e["end"] + 0.05 for e in speech), (start, end)
        joined = " ".join(" ".join(lines) for _, _, lines in cues)
        assert joined.split() == " ".join(e["text"] for e in speech).split()
    # the long first line: the audio is much louder during its cue than in the quiet before the bell
    first = next(e for e in speech if e["text"].startswith("Welcome"))
    inside = envelope[int(first["start"] * rate) : int(first["end"] * rate)].mean()
    before = envelope[int((first["start"] - 0.6) * rate) : int((first["start"] - 0.3) * rate)].mean()
    assert 20 * np.log10(inside / max(before, 1e-9)) > 6


def test_podcasting_chapters_json(rendered) -> None:
    _, result, doc = rendered
    chapters = json.loads(result.sidecars["chapters"].read_text(encoding="utf-8"))
    assert chapters["version"] == "1.2.0"
    sections = [e for e in doc["events"] if e["kind"] == "section"]
    assert [(c["startTime"], c["title"]) for c in chapters["chapters"]] == [(s["start"], s["text"]) for s in sections]


def test_inspect_command_shows_what_landed(rendered, runner) -> None:
    _, result, _ = rendered
    out = runner.invoke(cli, ["inspect", str(result.audio)])
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert "Évening — ☾ calm" in text and "chapters:  3" in text and "cover:     image/png" in text
    assert re.search(r"loudness:\s+-1[5-7]\.\d LUFS", text)


def test_sidecar_options(template: Path, tmp_path: Path, runner, cache_dir: Path) -> None:
    out = runner.invoke(cli, ["render", str(template), "-q", "--sidecars", "vtt,chapters", "-o", str(tmp_path / "a.mp3")])
    assert out.exit_code == 0, out.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.chapters.json", "a.mp3", "a.vtt"]
    out = runner.invoke(cli, ["render", str(template), "-q", "--no-sidecars", "-o", str(tmp_path / "b" / "b.mp3")])
    assert out.exit_code == 0 and sorted(p.name for p in (tmp_path / "b").iterdir()) == ["b.mp3"]
    out = runner.invoke(cli, ["render", str(template), "--sidecars", "vtt,pdf", "-o", str(tmp_path / "c.mp3")])
    assert out.exit_code == 2 and "unknown sidecar 'pdf'" in out.stderr


def test_cover_option_and_bad_cover(template: Path, tmp_path: Path, runner) -> None:
    art = tmp_path / "art.png"
    art.write_bytes(cover.generate("Mine", "x", "y"))
    out = runner.invoke(cli, ["render", str(template), "-q", "--cover", str(art), "-o", str(tmp_path / "a.flac")])
    assert out.exit_code == 0, out.output
    assert mutagen.File(tmp_path / "a.flac").pictures[0].data == art.read_bytes()
    bad = tmp_path / "art.txt"
    bad.write_text("not an image")
    out = runner.invoke(cli, ["render", str(template), "--cover", str(bad), "-o", str(tmp_path / "b.flac")])
    assert out.exit_code == 2 and "not a PNG or JPEG" in out.stderr
    out = runner.invoke(cli, ["render", str(template), "--track", "6/5", "-o", str(tmp_path / "c.flac")])
    assert out.exit_code == 2 and "--track" in out.stderr
