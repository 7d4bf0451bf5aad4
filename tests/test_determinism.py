"""The same inputs give the same samples; a different input gives different ones."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from guided_audio.ffmpeg import ffmpeg_exe
from guided_audio.mix import Levels
from guided_audio.render import RenderRequest, render

TEMPLATE = """+++
title = "Determinism"
ambient = "warm-room"
[minutes]
default = 1
min = 0.5
max = 5
+++
# Arriving
@cue bell wait=2
Welcome. This short session checks that a render repeats exactly.
# Breathing
@breathe in=2.5 hold=0.5 out=3.5 cycles=3 guide=on say_in="in" say_out="out" say_cycles=1
@ambient soft-rain
Let the breath return to its own rhythm.
@pause fill
@cue bell
"""




@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("determinism") / "determinism.j2"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


def pcm(path: Path) -> np.ndarray:
    """The file's samples exactly as stored (16-bit FLAC decoded to int16, no resampling)."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
           "-f", "s16le", "-acodec", "pcm_s16le", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<i2").reshape(-1, 2)


def sidecar_events(result) -> list:
    return json.loads(result.sidecar.read_text(encoding="utf-8"))["events"]


def render_to(folder: Path, template: Path, cache: Path, **options):
    folder.mkdir(parents=True, exist_ok=True)
    return render(RenderRequest(practice=str(template), minutes=1, output=folder / "session.flac",
                                cache_dir=cache, **options))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, template: Path, cache_dir: Path):
    render_to(tmp_path_factory.mktemp("warm-up"), template, cache_dir)  # the cache is warm from here on
    result = render_to(tmp_path_factory.mktemp("first"), template, cache_dir)
    return result, pcm(result.audio)


def test_same_settings_give_identical_samples(reference, template, cache_dir, tmp_path):
    first, first_pcm = reference
    second = render_to(tmp_path / "second", template, cache_dir)
    assert second.speech.synthesized == 0  # the cache was warm: nothing was spoken again
    again = pcm(second.audio)
    assert len(first_pcm) > 40 * 44100 and np.abs(first_pcm).max() > 10000  # a real, loud session
    assert np.array_equal(first_pcm, again)
    assert second.master.gain_db == first.master.gain_db
    assert sidecar_events(second) == sidecar_events(first)


def test_a_cold_speech_cache_gives_the_same_samples(template, tmp_path):
    """Two renders that each start from an empty cache (a fresh machine) give the same samples.

    eSpeak NG carries a little state from one utterance to the next, so a line spoken after
    other lines can differ by a few samples; from the same (empty) cache the lines are spoken
    in the same order, and the cache keeps every later render identical.
    """
    one = render_to(tmp_path / "one", template, tmp_path / "cache-one")
    two = render_to(tmp_path / "two", template, tmp_path / "cache-two")
    assert one.speech.synthesized > 0 and two.speech.synthesized > 0
    assert np.array_equal(pcm(one.audio), pcm(two.audio))


@pytest.mark.parametrize("change", [
    {"ambient": "night-air"},
    {"ambient": "none"},
    {"levels": Levels(guide=-18.0)},
    {"levels": Levels(duck=20.0)},
], ids=["other-bed", "no-bed", "louder-guide", "deeper-duck"])
def test_a_different_setting_changes_the_samples(reference, template, cache_dir, tmp_path, change):
    _, first_pcm = reference
    other = pcm(render_to(tmp_path / "other", template, cache_dir, **change).audio)
    assert other.shape == first_pcm.shape  # same timeline, different sound
    differ = np.any(other != first_pcm, axis=1)
    assert differ.mean() > 0.05, f"only {differ.mean():.1%} of the samples changed"
