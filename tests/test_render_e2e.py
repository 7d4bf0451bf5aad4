"""End to end: a small template through the real engine, mix, mastering, ffmpeg and tags."""

from __future__ import annotations

import json
from pathlib import Path

import mutagen
import numpy as np
import pytest
from conftest import decode, loudness, write_template

from guided_audio import encoding, mastering
from guided_audio.render import RenderRequest, render

FRONT = """
title = "End to end session"
description = "A small practice for the tests."
ambient = "warm-room"
[minutes]
default = 0.5
min = 0.1
max = 2
help = "Length."
[params.name]
type = "str"
default = "friend"
help = "Who is listening."
"""
BODY = """
# Arriving
@cue bell wait=5.4
Welcome, {{ name }}. This is a short test session.
@pause 1.5
Now we will breathe together, slowly.
# Breathing
@breathe in=2.5 out=3.5 cycles=2 cue=soft-chime say_in="in" say_out="and out"
@pause 2.5
# Closing
@cue bell wait=5.4
And thank you for listening.
"""
FORMATS = list(encoding.FORMATS)
SR = 44100
FRAME = int(0.01 * SR)  # 10 ms analysis frames


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_template(tmp_path_factory.mktemp("template"), BODY, name="e2e.j2", front=FRONT)


@pytest.fixture(scope="module", params=FORMATS)
def rendered(request, template: Path, speech_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """One render per format: (result, folder, sidecar document, decoded samples)."""
    fmt = request.param
    folder = tmp_path_factory.mktemp(f"out-{fmt}")
    result = render(RenderRequest(practice=str(template), format=fmt, output=folder / "session",
                                  cache_dir=speech_cache))
    doc = json.loads(result.sidecar.read_text(encoding="utf-8"))
    samples, rate = decode(result.audio)
    assert rate == SR
    return fmt, result, folder, doc, samples


def rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-10))


def window(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[round(start * SR) : round(end * SR)]


def busy(doc: dict) -> list[tuple[float, float]]:
    """Spans where a voice or a cue sounds, per the sidecar."""
    return sorted((e["start"], e["end"]) for e in doc["events"] if e["kind"] in ("speech", "cue"))


def quiet_before(doc: dict, t: float, length: float = 0.3) -> tuple[float, float]:
    """The latest bed-only stretch of `length` seconds ending at or before t (after the fade-in)."""
    spans = busy(doc)
    end = t
    while end - length >= 4.0:
        clash = [a for a, b in spans if a < end and b > end - length]
        if not clash:
            return end - length, end
        end = min(clash)
    raise AssertionError(f"no quiet stretch before {t}")


def onset(samples: np.ndarray, near: float, *, reference: tuple[float, float], rise_db: float = 12.0) -> float:
    """First 10 ms frame within 0.5 s of `near` whose level rises rise_db over the reference."""
    mono = samples.mean(axis=1)
    floor = rms_db(window(samples, *reference))
    a = round((near - 0.5) * SR)
    frames = mono[a : a + SR].reshape(-1, FRAME)
    levels = 20 * np.log10(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-10)
    hot = np.flatnonzero(levels > floor + rise_db)
    assert len(hot), f"no onset near {near:.3f} s"
    return (a + hot[0] * FRAME) / SR


def speech_lines(doc: dict) -> list[dict]:
    return [e for e in doc["events"] if e["kind"] == "speech" and len(e["text"]) > 20]


# -- files ---------------------------------------------------------------------------------


def test_audio_and_sidecar_are_published_without_leftovers(rendered) -> None:
    fmt, result, folder, doc, _ = rendered
    ext = encoding.FORMATS[fmt].extension
    assert result.audio == folder / f"session{ext}" and result.audio.is_file()
    assert result.sidecar == folder / "session.json" and result.sidecar.is_file()
    names = sorted(p.name for p in folder.iterdir())
    assert {f"session{ext}", "session.json"} <= set(names)
    assert not [n for n in names if n.startswith(".") or "partial" in n], names  # temporaries are gone
    assert all(n.startswith("session.") for n in names), names  # other sidecars, if any, share the stem
    assert (doc["file"], doc["format"], doc["title"]) == (f"session{ext}", fmt, "End to end session")
    assert doc["settings"] == {"name": "friend", "minutes": 0.5}
    assert doc["ambient"] == "warm-room" and doc["sample_rate"] == SR


def test_sidecar_matches_the_timeline(rendered) -> None:
    _, result, _, doc, _ = rendered
    assert doc["duration"] == pytest.approx(result.timeline.seconds, abs=0.001)
    assert len(doc["events"]) == len(result.timeline.events)
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds.count("section") == 3 and kinds.count("phase") == 4
    texts = [e["text"] for e in doc["events"] if e["kind"] == "speech"]
    assert texts[0].startswith("Welcome, friend.") and texts.count("in") == 2 and texts.count("and out") == 2
    assert 30 < doc["duration"] < 45


def test_duration_matches_the_sidecar(rendered) -> None:
    fmt, _, _, doc, samples = rendered
    assert abs(len(samples) / SR - doc["duration"]) <= 0.060, fmt


# -- the audio is where the sidecar says ----------------------------------------------------


def test_speech_is_louder_than_the_bed_before_it(rendered) -> None:
    fmt, _, _, doc, samples = rendered
    for e in [e for e in doc["events"] if e["kind"] == "speech"]:
        quiet = quiet_before(doc, e["start"])
        voice = rms_db(window(samples, e["start"], e["end"]))
        bed = rms_db(window(samples, *quiet))
        assert voice > bed + 10, f"{fmt}: {e['text']!r} at {e['start']} is {voice:.1f} dB, bed {bed:.1f} dB"


def test_speech_onsets_are_where_the_sidecar_says(rendered) -> None:
    fmt, _, _, doc, samples = rendered
    lines = speech_lines(doc)
    assert len(lines) == 3
    for e in lines:
        found = onset(samples, e["start"], reference=quiet_before(doc, e["start"]))
        # a soft first word ("And ...") takes a few 10 ms frames to rise 12 dB over the bed, and a
        # limited onset one frame more: 75 ms still catches a line placed a phrase away
        assert abs(found - e["start"]) <= 0.075, f"{fmt}: {e['text']!r} starts at {found:.3f}, sidecar {e['start']}"


def test_cue_onsets_are_where_the_sidecar_says(rendered) -> None:
    fmt, _, _, doc, samples = rendered
    bells = [e for e in doc["events"] if e["kind"] == "cue" and e["name"] == "bell"]
    assert bells[0]["start"] == 0.0
    first = np.flatnonzero(np.abs(samples.mean(axis=1)) > 10 ** (-40 / 20))[0] / SR
    assert first <= 0.030, f"{fmt}: the opening bell starts at {first:.3f} s"
    last = bells[1]
    found = onset(samples, last["start"], reference=quiet_before(doc, last["start"]), rise_db=6.0)
    assert abs(found - last["start"]) <= 0.050, f"{fmt}: closing bell at {found:.3f}, sidecar {last['start']}"


def test_breath_chimes_follow_the_phases(rendered) -> None:
    doc = rendered[3]
    phases = [e for e in doc["events"] if e["kind"] == "phase"]
    chimes = [e for e in doc["events"] if e["kind"] == "cue" and e["name"] == "soft-chime"]
    assert [c["start"] for c in chimes] == [p["start"] for p in phases]


# -- tags and loudness --------------------------------------------------------------------------


def test_tags_read_back(rendered) -> None:
    fmt, result, _, _, _ = rendered
    if fmt == "wav":
        pytest.skip("wav carries no tags")
    audio = mutagen.File(result.audio)
    assert audio is not None and audio.tags is not None
    if fmt == "mp3":
        tags = audio.tags
        got = {k: str(tags[f].text[0]) for k, f in
               (("title", "TIT2"), ("artist", "TPE1"), ("album", "TALB"), ("genre", "TCON"), ("date", "TDRC"))}
        got["comment"] = tags.getall("COMM")[0].text[0]
    elif fmt == "m4a":
        tags = audio.tags
        got = {k: tags[f][0] for k, f in (("title", "\xa9nam"), ("artist", "\xa9ART"), ("album", "\xa9alb"),
                                           ("genre", "\xa9gen"), ("date", "\xa9day"), ("comment", "\xa9cmt"))}
    else:
        got = {k: audio[k.upper()][0] for k in ("title", "artist", "album", "genre", "date", "comment")}
    assert got["title"] == "End to end session"
    assert (got["artist"], got["album"], got["genre"]) == ("guided_audio", "Guided practices", "Meditation")
    assert len(got["date"]) == 10 and got["date"][4] == "-"
    assert got["comment"].startswith("e2e: name=friend; minutes=0.5;")
    assert "ambient=warm-room" in got["comment"]


MAKEUP_BUG = (
    "BUG: mastering.plan's make-up loop adds the last loudness error to gain_db after the limiter "
    "for that round was planned; when MAKEUP_ROUNDS run out (the error here stays ~1 dB each "
    "round) the returned Master pairs a gain ~1 dB above the one its limiter was planned for, so "
    "peaks land near -1 dBFS instead of under the -2 dBTP ceiling and lossy encodes exceed -1 dBTP")


def test_loudness(rendered) -> None:
    fmt, result, _, doc, _ = rendered
    lufs, _ = loudness(result.audio)
    assert abs(lufs - (-16.0)) <= 1.0, f"{fmt}: {lufs} LUFS"
    assert doc["loudness"]["target_lufs"] == -16.0


def test_true_peak(rendered, request: pytest.FixtureRequest) -> None:
    fmt, result, _, _, _ = rendered
    _, peak = loudness(result.audio)
    assert peak <= -1.0, f"{fmt}: true peak {peak} dBTP"


def test_lossless_output_respects_the_limiter_ceiling(rendered) -> None:
    fmt, result, _, _, _ = rendered
    if fmt not in ("wav", "flac"):
        pytest.skip("lossy encoders may overshoot the ceiling a little")
    _, peak = loudness(result.audio)
    assert peak <= mastering.PEAK_CEILING_DBTP + 0.2, f"{fmt}: true peak {peak} dBTP"
