"""The therapist's recorded voice, the recording script, and two voices in one session."""

from __future__ import annotations

import csv
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import decode, write_template

from guided_audio import speech
from guided_audio.cli import cli
from guided_audio.errors import BadInput
from guided_audio.render import RenderRequest, render

FRONT = 'title = "Voices"\n[minutes]\ndefault = 0.3\nmin = 0.1\nmax = 5\n'
BODY = """\
# Arriving
Welcome to this short practice.
@pause 1
If it feels right, you might say to your partner:
@voice second
I am here with you.
@voice main
Notice how that lands.
"""
RATE = 44100


@pytest.fixture
def template(tmp_path: Path) -> Path:
    return write_template(tmp_path, BODY, name="voices.j2", front=FRONT)


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def script_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "lines.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def record(path: Path, seconds: float, hz: float, *, lead: float = 0.4, tail: float = 0.6, level: float = 0.3) -> None:
    """A stand-in 'recording': room noise, a voiced tone for the words, room noise."""
    rng = np.random.default_rng(int(hz))
    t = np.arange(int(seconds * RATE)) / RATE
    words = level * np.sin(2 * np.pi * hz * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)
    x = np.concatenate([np.zeros(int(lead * RATE)), words, np.zeros(int(tail * RATE))])
    x += rng.normal(0, 0.002, len(x))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def test_recording_script_ids_are_stable_across_runs(template: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    assert run("lines", template, "-o", first)[0] == 0
    assert run("lines", template, "-o", second)[0] == 0
    assert script_rows(first) == script_rows(second)
    rows = script_rows(first)
    assert [r["text"] for r in rows] == [
        "Welcome to this short practice.", "If it feels right, you might say to your partner:",
        "I am here with you.", "Notice how that lands."]
    assert [r["voice"] for r in rows] == ["main", "main", "second", "main"]
    assert all(r["id"] == speech.line_id(r["text"]) for r in rows)
    readable = (first / "recording-script.txt").read_text(encoding="utf-8")
    assert all(f"[{r['id']}]" in readable for r in rows)


def test_line_ids_are_readable_and_change_with_the_text() -> None:
    a = speech.line_id("Notice how that lands.")
    assert a.startswith("notice-how-that-lands-") and a == speech.line_id("Notice how that lands.")
    assert a != speech.line_id("Notice how that lands!")


@pytest.fixture
def recordings(template: Path, tmp_path: Path) -> Path:
    """Recordings for every line but the last, at distinct pitches so they can be told apart."""
    folder = tmp_path / "recordings"
    assert run("lines", template, "-o", folder)[0] == 0
    rows = script_rows(folder)
    for n, row in enumerate(rows[:-1]):
        record(folder / f"{row['id']}.wav", 1.0 + 0.2 * n, 300 + 100 * n, level=0.05 + 0.2 * n)
    return folder


def test_recorded_clips_replace_the_engine_line_by_line(template: Path, recordings: Path, tmp_path: Path,
                                                        speech_cache: Path) -> None:
    result = render(RenderRequest(practice=str(template), voice=f"recorded:{recordings}",
                                  output=tmp_path / "out" / "rec.flac", cache_dir=speech_cache, ambient="none"))
    audio, _ = decode(result.audio)
    doc = json.loads(result.sidecar.read_text())
    spoken = [e for e in doc["events"] if e["kind"] == "speech"]
    rows = script_rows(recordings)
    # each recorded line lasts as long as its words (trimmed of the room), not the file
    for n, (event, row) in enumerate(zip(spoken[:-1], rows)):
        assert event["text"] == row["text"]
        assert abs((event["end"] - event["start"]) - (1.0 + 0.2 * n)) < 0.25, event
    # recordings are levelled: speech RMS of the quiet and the loud recording match within 2 dB
    def rms(e: dict) -> float:
        seg = audio[int(e["start"] * RATE) + 2000 : int(e["end"] * RATE) - 2000]
        return 20 * np.log10(np.sqrt(np.mean(seg**2)))
    assert abs(rms(spoken[0]) - rms(spoken[2])) < 2.0
    # the missing one was spoken by the engine, with a warning naming its id
    missing = rows[-1]
    assert any(missing["id"] in w and "speech engine says it" in w for w in result.warnings)


def test_missing_recording_is_an_error_with_strict(template: Path, recordings: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no recording"):
        render(RenderRequest(practice=str(template), voice=f"recorded:{recordings}", strict=True,
                             output=tmp_path / "out" / "x.flac"))
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    code, _, err = run("render", template, "--voice", f"recorded:{recordings}", "--strict", "-o",
                       tmp_path / "out" / "y.mp3")
    assert code == 2 and err.startswith("error: --voice recorded:") and "no recording" in err


def test_unreadable_recording_falls_back(template: Path, recordings: Path, tmp_path: Path) -> None:
    first = script_rows(recordings)[0]["id"]
    (recordings / f"{first}.wav").write_bytes(b"this is not audio")
    result = render(RenderRequest(practice=str(template), voice=f"recorded:{recordings}",
                                  output=tmp_path / "x.flac"))
    assert any(first in w for w in result.warnings)


def test_recorded_voice_needs_an_existing_folder(template: Path, tmp_path: Path) -> None:
    code, _, err = run("render", template, "--voice", f"recorded:{tmp_path / 'nope'}", "-o", tmp_path / "x.mp3")
    assert code == 2 and "no such folder" in err


def test_two_voices_in_one_render(template: Path, tmp_path: Path, speech_cache: Path) -> None:
    result = render(RenderRequest(practice=str(template), second_voice="gmw/en-us", ambient="none",
                                  output=tmp_path / "two.flac", cache_dir=speech_cache))
    doc = json.loads(result.sidecar.read_text())
    voices = {e["text"]: e["voice"] for e in doc["events"] if e["kind"] == "speech"}
    assert voices["I am here with you."] == "second"
    assert voices["Notice how that lands."] == "main"
    assert not result.warnings
    # the second voice really is another voice: its clip differs from the main voice's
    main = speech.synthesize([speech.Line("I am here with you.", 115)], sample_rate=RATE, cache_dir=speech_cache)
    other = speech.synthesize([speech.Line("I am here with you.", 115, "gmw/en-us")], sample_rate=RATE,
                              cache_dir=speech_cache)
    a, b = next(iter(main.values())).samples, next(iter(other.values())).samples
    assert len(a) != len(b) or not np.allclose(a, b)


def test_second_voice_missing_is_a_visible_warning(template: Path, tmp_path: Path) -> None:
    code, _, err = run("render", template, "-q", "-o", tmp_path / "x.mp3")
    assert code == 0
    assert "warning: the script has lines for a second voice" in err
