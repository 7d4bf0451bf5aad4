"""Speech through the real pyttsx3 engine and the content-addressed clip cache."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from guided_audio import speech
from guided_audio.engines.pyttsx3_engine import Pyttsx3Engine
from guided_audio.errors import EngineError, ParameterError
from guided_audio.speech import ClipCache, Line, SpeechReport

LINES = [Line("Breathe in gently.", 115), Line("And let it go.", 115), Line("in", 104)]
THRESHOLD = 10 ** (speech.SILENCE_DB / 20)


def say(lines, cache: Path, *, rate: int = 44100, voice: str | None = None, report: SpeechReport | None = None):
    return speech.synthesize(lines, voice=voice, sample_rate=rate, cache_dir=cache, report=report)


def cached_files(cache: Path) -> list[Path]:
    return sorted((cache / "speech").rglob("*.clip"))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory):
    """The three lines said once into a fresh cache: (cache dir, clips, report)."""
    cache = tmp_path_factory.mktemp("clips")
    report = SpeechReport()
    clips = say(LINES, cache, report=report)
    return cache, clips, report


def test_first_run_synthesizes_every_line_and_caches_it(first_run) -> None:
    cache, clips, report = first_run
    assert (report.synthesized, report.cached) == (3, 0)
    assert set(clips) == set(LINES)
    assert len(cached_files(cache)) == 3
    assert not [p for p in (cache / "speech").rglob("*") if p.suffix == ".tmp"]
    assert report.warnings == []


def test_second_run_reads_the_cache_and_never_calls_the_engine(first_run, monkeypatch) -> None:
    cache, clips, _ = first_run

    def refuse(*args, **kwargs):
        raise AssertionError("the engine was called for cached lines")

    monkeypatch.setattr(Pyttsx3Engine, "synthesize", refuse)
    report = SpeechReport()
    again = say(LINES, cache, report=report)
    assert (report.synthesized, report.cached) == (0, 3)
    for line in LINES:
        np.testing.assert_array_equal(again[line].samples, clips[line].samples)


def test_repeated_lines_are_synthesized_once(tmp_path: Path) -> None:
    report = SpeechReport()
    line = Line("Once is enough.", 115)
    clips = say([line, line, line], tmp_path, report=report)
    assert (report.synthesized, report.cached, len(clips)) == (1, 0, 1)


def test_progress_counts_every_distinct_line(first_run, tmp_path: Path) -> None:
    cache, _, _ = first_run
    ticks: list[int] = []
    speech.synthesize([*LINES, Line("A new line here.", 115)], voice=None, sample_rate=44100,
                      cache_dir=cache, progress=ticks.append)
    assert sum(ticks) == 4


def test_only_the_missing_line_reaches_the_engine(first_run, monkeypatch) -> None:
    cache, _, _ = first_run
    asked: list[list[Line]] = []
    real = Pyttsx3Engine.synthesize

    def spy(self, lines, voice, folder, done):
        asked.append(list(lines))
        return real(self, lines, voice, folder, done)

    monkeypatch.setattr(Pyttsx3Engine, "synthesize", spy)
    slower = Line("Breathe in gently.", 90)
    report = SpeechReport()
    say([*LINES, slower], cache, report=report)
    assert asked == [[slower]]
    assert (report.synthesized, report.cached) == (1, 3)


def test_cache_key_changes_with_text_rate_and_voice(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    engine = Pyttsx3Engine()
    base = cache.key(engine.identity(None), Line("Hello.", 115))
    assert base == cache.key(engine.identity(None), Line("Hello.", 115))
    assert base == cache.key(engine.identity(""), Line("Hello.", 115))  # "" means the default voice
    others = {
        cache.key(engine.identity(None), Line("Hello!", 115)),
        cache.key(engine.identity(None), Line("Hello.", 116)),
        cache.key(engine.identity("gmw/en-us"), Line("Hello.", 115)),
        cache.key(engine.identity("gmw/en"), Line("Hello.", 115)),
    }
    assert base not in others and len(others) == 4
    assert cache.path(base) == tmp_path / "speech" / base[:2] / f"{base}.clip"


def test_identity_names_engine_version_backend_and_voice() -> None:
    ident = Pyttsx3Engine().identity("gmw/en-us")
    assert ident["engine"] == "pyttsx3" and ident["voice"] == "gmw/en-us"
    assert ident["version"] and ident["backend"]


def test_another_voice_is_a_cache_miss(first_run) -> None:
    cache, clips, _ = first_run
    report = SpeechReport()
    other = say([LINES[0]], cache, voice="gmw/en-us", report=report)
    assert report.synthesized == 1
    assert not np.array_equal(other[LINES[0]].samples, clips[LINES[0]].samples)


def test_unknown_voice_is_a_parameter_error(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="--voice"):
        say([Line("Hello.", 115)], tmp_path, voice="no-such-voice-xyz")
    assert cached_files(tmp_path) == []


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
def test_clips_are_float32_at_the_asked_rate(first_run, rate: int) -> None:
    cache, clips, _ = first_run
    at_rate = say(LINES, cache, rate=rate)
    for line in LINES:
        clip = at_rate[line]
        assert clip.sample_rate == rate
        assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
        assert clip.seconds == pytest.approx(clips[line].seconds, abs=0.001)
        assert np.abs(clip.samples).max() <= 1.0


def test_clips_are_trimmed_to_the_speech(first_run) -> None:
    _, clips, _ = first_run
    for line in LINES:
        x, sr = clips[line].samples, clips[line].sample_rate
        loud = np.flatnonzero(np.abs(x) > THRESHOLD)
        edge = int((speech.EDGE_PAD + 0.01) * sr)
        assert loud[0] <= edge, f"{line.text!r} starts with {loud[0] / sr:.3f} s of silence"
        assert len(x) - 1 - loud[-1] <= edge, f"{line.text!r} ends with silence"
        assert clips[line].seconds > 0.15


def test_longer_text_and_slower_rate_make_longer_clips(first_run) -> None:
    cache, clips, _ = first_run
    slow = say([Line("Breathe in gently.", 70)], cache)[Line("Breathe in gently.", 70)]
    assert clips[LINES[0]].seconds > clips[LINES[2]].seconds
    assert slow.seconds > clips[LINES[0]].seconds * 1.2


# -- a fake engine for the error path -------------------------------------------------------


class SilentEngine:
    """Writes a WAV of zeros for every line."""

    name = "silent"

    def identity(self, voice):
        return {"engine": self.name, "voice": voice or "default"}

    def synthesize(self, lines, voice, folder, done):
        paths = []
        for i, _ in enumerate(lines):
            path = folder / f"{i}.wav"
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(22050)
                w.writeframes(np.zeros(22050, dtype="<i2").tobytes())
            paths.append(path)
            done(1)
        return paths

    def voices(self):
        return []


@pytest.fixture
def silent_engine(monkeypatch: pytest.MonkeyPatch) -> str:
    speech.engine_names()  # load the real engines first
    monkeypatch.setattr(speech, "_ENGINES", dict(speech._ENGINES))
    speech.register_engine("silent", SilentEngine)
    return "silent:"


def test_silent_engine_output_is_an_engine_error(silent_engine: str, tmp_path: Path) -> None:
    assert "silent" in speech.engine_names()
    with pytest.raises(EngineError, match=r"no audible speech for line 1 of 1 \(id [0-9a-f]{6}\)") as caught:
        say([Line("Hello there.", 115)], tmp_path, voice=silent_engine)
    assert "Hello" not in str(caught.value)  # a line may hold a private word: named by its id
    assert cached_files(tmp_path) == []


def test_engine_prefix_selects_the_engine(silent_engine: str) -> None:
    assert speech.split_voice("silent:") == ("silent", None)
    assert speech.split_voice("silent:v1") == ("silent", "v1")
    assert speech.split_voice("gmw/en-us") == ("pyttsx3", "gmw/en-us")
    assert speech.split_voice("nosuch:v") == ("pyttsx3", "nosuch:v")
    assert speech.split_voice(None) == ("pyttsx3", None)


def test_registering_an_engine_first_keeps_the_entry_point_engines(monkeypatch) -> None:
    monkeypatch.setattr(speech, "_ENGINES", {})
    monkeypatch.setattr(speech, "_entry_points_loaded", False)
    speech.register_engine("silent", SilentEngine)
    assert "pyttsx3" in speech.engine_names()


def test_stored_clips_are_read_from_the_cache_when_needed(first_run, tmp_path: Path) -> None:
    """A render asks for stored clips: cached lines come back as names in the cache and a length,
    and their samples are the very ones a plain read gives."""
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(first_run[0], cache)
    clips = say(LINES, cache)  # at the render's rate, as a render keeps them
    stored = speech.synthesize(LINES, sample_rate=44100, cache_dir=cache, stored=True)
    for line in LINES:
        held = stored[line]
        assert isinstance(held, speech.StoredClip)
        assert held.frames == len(clips[line].samples) and held.sample_rate == 44100
        assert np.array_equal(held.samples, clips[line].samples)


def test_a_stored_clip_damaged_after_the_check_is_a_clear_error(first_run, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "cache"
    shutil.copytree(first_run[0], copy)
    say(LINES[:1], copy)  # at the render's rate, as a render keeps them
    stored = speech.synthesize(LINES[:1], sample_rate=44100, cache_dir=copy, stored=True)
    for entry in cached_files(copy):
        entry.write_bytes(entry.read_bytes()[:-10])  # damaged after it was checked
    with pytest.raises(EngineError, match="changed during the render") as caught:
        _ = stored[LINES[0]].samples
    assert LINES[0].text not in str(caught.value)  # lines are named by id, never quoted
