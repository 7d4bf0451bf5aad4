"""What a render keeps between runs so that it starts at once: compiled templates and decoded sounds.

Each must give exactly what working it out again gives, be keyed on what shapes it, be worked
out again when its entry is damaged, and never stop a render when the cache cannot be written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from guided_audio import practices, sounds
from guided_audio.errors import TemplateError

BODY = "# Start\n{% if true %}\nHello {{ name }}.\n{% endif %}\nAnd {{ 10 // divisor }} here.\n"
FRONT = 'title = "T"\n[params.name]\ntype = "str"\ndefault = "friend"\nhelp = "A name."\n[params.divisor]\ntype = "int"\ndefault = 2\nmin = 0\nmax = 9\nhelp = "A number."\n'


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("GUIDED_AUDIO_CACHE", str(folder))
    practices._compiled.cache_clear()
    sounds._decoded.cache_clear()
    yield folder
    practices._compiled.cache_clear()
    sounds._decoded.cache_clear()


def script_of(path: Path, **values: object) -> str:
    practice = practices.load(str(path))
    return practice.render_markup(practice.bind({k: str(v) for k, v in values.items()}))


def test_a_compiled_template_is_kept_and_gives_the_same_script(make_template, own_cache: Path) -> None:
    path = make_template(BODY, front=FRONT)
    fresh = script_of(path)
    kept = list((own_cache / "templates").glob("*.code"))
    assert len(kept) == 1
    practices._compiled.cache_clear()
    assert script_of(path) == fresh
    assert script_of(path, name="Sam") != fresh  # values are given at each render, never kept
    assert b"friend" not in kept[0].read_bytes() and b"Sam" not in kept[0].read_bytes()


def test_an_error_in_a_kept_template_still_names_its_line(make_template, own_cache: Path) -> None:
    path = make_template(BODY, front=FRONT, name="bad.j2")
    script_of(path)  # compiled and kept
    practices._compiled.cache_clear()
    with pytest.raises(TemplateError) as info:
        script_of(path, divisor=0)
    assert "ZeroDivisionError" in info.value.message
    assert info.value.line == FRONT.count("\n") + 2 + 5  # the front matter's lines, its two fences, body line 5


def test_a_damaged_or_unwritable_template_cache_is_compiled_again(make_template, own_cache: Path) -> None:
    path = make_template(BODY, front=FRONT)
    fresh = script_of(path)
    (entry,) = (own_cache / "templates").glob("*.code")
    entry.write_bytes(entry.read_bytes()[:40] + b"\x00garbage")
    practices._compiled.cache_clear()
    assert script_of(path) == fresh
    shutil.rmtree(own_cache)
    own_cache.write_text("a file where the cache folder should be")
    practices._compiled.cache_clear()
    assert script_of(path) == fresh


def test_a_decoded_sound_is_kept_and_read_back_identical(own_cache: Path) -> None:
    path = sounds.resolve("soft-chime", "cue", "--cue")
    fresh = np.array(sounds.load(path, 44100))
    (entry,) = (own_cache / "sounds").glob("*.f32")
    sounds._decoded.cache_clear()
    kept = sounds.load(path, 44100)
    assert np.array_equal(kept, fresh)
    assert not kept.flags.writeable
    # a damaged entry is decoded again
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0x40
    entry.write_bytes(bytes(data))
    sounds._decoded.cache_clear()
    assert np.array_equal(sounds.load(path, 44100), fresh)


def test_a_changed_sound_file_is_decoded_again(tmp_path: Path, own_cache: Path) -> None:
    mine = tmp_path / "mine.flac"
    shutil.copy(sounds.resolve("soft-chime", "cue", "--cue"), mine)
    first = np.array(sounds.load(mine, 44100))
    shutil.copy(sounds.resolve("wood-tick", "cue", "--cue"), mine)
    os.utime(mine, ns=(os.stat(mine).st_atime_ns, os.stat(mine).st_mtime_ns + 10**9))
    sounds._decoded.cache_clear()
    second = sounds.load(mine, 44100)
    assert len(second) != len(first) or not np.array_equal(second, first)
    assert len(list((own_cache / "sounds").glob("*.f32"))) == 2
    assert np.array_equal(sounds.load(mine, 22050)[:0], np.zeros((0, 2), np.float32))  # another rate: its own entry
    assert len(list((own_cache / "sounds").glob("*.f32"))) == 3


def test_a_render_keeps_everything_in_its_own_cache_dir(make_template, tmp_path: Path, own_cache: Path) -> None:
    """--cache-dir holds every cache of a render: nothing goes to the default folder."""
    from guided_audio.render import RenderRequest, render

    front = 'title = "Own cache"\nambient = "warm-room"\n[minutes]\ndefault = 0.3\nmin = 0.1\nmax = 2\nhelp = "Length."\n'
    path = make_template("# One\n@cue soft-chime wait=1\nA single quiet line.\n", front=front)
    mine = tmp_path / "mine"
    render(RenderRequest(practice=str(path), output=tmp_path / "out.flac", cache_dir=mine, voice="pyttsx3"))
    assert list((mine / "speech").rglob("*.clip"))
    assert list((mine / "templates").glob("*.code"))
    assert len(list((mine / "sounds").glob("*.f32"))) == 2  # the bed and the cue
    assert list((mine / "analysis").rglob("*.analysis"))
    assert not own_cache.exists() or not [p for p in own_cache.rglob("*") if p.is_file()]
