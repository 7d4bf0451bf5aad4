"""Publishing: contained, checked before the work, all or nothing, clean text, and interrupts.

Every case runs the command line and checks the exit status, the one-line message and
what is in the folder afterwards: nothing half-written, no temporary file left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import children, wait_gone, write_template

from guided_audio import encoding
from guided_audio.cli import cli
from guided_audio.ffmpeg import ffmpeg_exe

TINY_FRONT = """
title = "Tiny"
[minutes]
default = 0.1
min = 0.1
max = 5
help = "Length."
"""
TINY = """
# Start
Hello, this is tiny.
@pause fill
Goodbye.
"""
VOICE = "pyttsx3:"
GUIDED_AUDIO = Path(sys.executable).parent / "guided-audio"
CONTROLS = [chr(c) for c in (*range(0, 9), *range(11, 32), *range(0x7F, 0xA0))]


# -- helpers --------------------------------------------------------------------------------


def tiny(folder: Path, name: str = "tiny.j2", body: str = TINY) -> Path:
    return write_template(folder, body, name=name, front=TINY_FRONT)


def listing(folder: Path) -> list[str]:
    """Every file and folder under `folder`, relative, sorted ([] if it does not exist)."""
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def partials(folder: Path) -> list[str]:
    return [p for p in listing(folder) if ".partial-" in p]


def error_line(result: Result) -> str:
    """The one `error:` line of a failed run (and only one line)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    return lines[0]


def render(runner: CliRunner, *args: object) -> Result:
    return runner.invoke(cli, ["render", *(str(a) for a in args), "--voice", VOICE, "--ambient", "none", "-q"])


def build(runner: CliRunner, manifest: Path, root: Path, *more: object) -> Result:
    return runner.invoke(cli, ["build", str(manifest), "-o", str(root), "-j", "2", "-q", *(str(m) for m in more)])


def nothing_synthesized(cache: Path) -> bool:
    return not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_manifest(folder: Path, text: str) -> Path:
    tiny(folder)
    manifest = folder / "library.toml"
    manifest.write_text(text, encoding="utf-8")
    return manifest


def wait_for(predicate, proc: subprocess.Popen[bytes], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the process ended (status {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} in {timeout:g} s"
        time.sleep(0.01)


# -- containment ----------------------------------------------------------------------------


@pytest.mark.parametrize("entry", [
    'album = ".."',
    'album = "/tmp/elsewhere"',
    'album = "a/../../b"',
    'name = "../escape"',
    'name = "..."',
    'album = "~/music"',
])
def test_a_manifest_path_out_of_the_folder_is_rejected(runner: CliRunner, tmp_path: Path, entry: str) -> None:
    manifest = write_manifest(tmp_path, f'[[sessions]]\npractice = "tiny.j2"\n{entry}\n')
    root = tmp_path / "lib" / "out"
    result = build(runner, manifest, root)
    assert result.exit_code == 2, result.stderr
    line = error_line(result)
    assert "would leave the -o folder" in line and "[[sessions]] 1" in line
    assert listing(tmp_path / "lib") == []  # nothing written, not even the folder


def test_an_album_folder_linked_out_of_the_library_is_rejected(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[[sessions]]\npractice = "tiny.j2"\nalbum = "Linked"\n')
    root, outside = tmp_path / "out", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "linked").symlink_to(outside, target_is_directory=True)
    result = build(runner, manifest, root)
    assert result.exit_code == 2, result.stderr
    assert "outside the -o folder" in error_line(result)
    assert listing(root) == ["linked"] and listing(outside) == []


def test_a_format_matrix_without_the_format_in_its_names_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[[matrix]]\npractice = ["tiny.j2"]\nformat = ["mp3", "ogg"]\n'
                                        'ambient = "none"\nname = "{practice}"\n')
    root = tmp_path / "out"
    result = build(runner, manifest, root)
    assert result.exit_code == 2, result.stderr
    line = error_line(result)
    assert "library/tiny.json used more than once" in line
    assert "[[matrix]] 1 (mp3) 'tiny'" in line and "[[matrix]] 1 (ogg) 'tiny'" in line
    assert "{format}" in line
    assert not root.exists()


def test_a_format_matrix_with_the_format_in_its_names_gives_distinct_sidecars(
        runner: CliRunner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[[matrix]]\npractice = ["tiny.j2"]\nformat = ["mp3", "ogg"]\n'
                                        'ambient = "none"\nvoice = "pyttsx3:"\nname = "{practice}-{format}"\n')
    root = tmp_path / "out"
    result = build(runner, manifest, root)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("2 built")
    files = [p for p in listing(root) if p.startswith("library/")]
    for name, ext in (("tiny-mp3", ".mp3"), ("tiny-ogg", ".ogg")):
        for suffix in (ext, ".json", ".vtt", ".srt", ".chapters.json"):
            assert f"library/{name}{suffix}" in files
        assert json.loads((root / "library" / f"{name}.json").read_text(encoding="utf-8"))["file"] == name + ext
    assert partials(root) == []


def test_names_keep_their_letters(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[[sessions]]\npractice = "tiny.j2"\nname = "Zoë and Sam"\n'
                                        'album = "Für Zoë"\nambient = "none"\n')
    result = runner.invoke(cli, ["build", str(manifest), "-o", str(tmp_path / "out"), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("1 to build")
    assert "zoë-and-sam" in result.stderr and "für-zoë/zoë-and-sam.mp3" in result.stderr
    assert not (tmp_path / "out").exists()


# -- checked before any work ----------------------------------------------------------------


def test_a_folder_in_the_way_of_a_sidecar_fails_before_rendering(runner: CliRunner, tmp_path: Path) -> None:
    template, out, cache = tiny(tmp_path), tmp_path / "out", tmp_path / "cache"
    (out / "tiny.srt").mkdir(parents=True)
    result = render(runner, template, "-o", out / "tiny.mp3", "--cache-dir", cache)
    assert result.exit_code == 2, result.stderr
    line = error_line(result)
    assert "-o " in line and "a folder is in the way of the file tiny.srt" in line
    assert listing(out) == ["tiny.srt"]
    assert nothing_synthesized(cache)


def test_a_too_long_output_name_fails_before_rendering(runner: CliRunner, tmp_path: Path) -> None:
    template, cache = tiny(tmp_path), tmp_path / "cache"
    out = tmp_path / ("n" * 300)
    result = render(runner, template, "-o", out / "tiny.mp3", "--cache-dir", cache)
    assert result.exit_code == 2, result.stderr
    line = error_line(result)
    assert line.startswith("error: -o ") and "300 bytes long" in line
    assert listing(tmp_path) == ["tiny.j2"]
    assert nothing_synthesized(cache)


def test_a_too_long_library_folder_fails_before_rendering(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[[sessions]]\npractice = "tiny.j2"\n')
    result = build(runner, manifest, tmp_path / ("l" * 300))
    assert result.exit_code == 2, result.stderr
    assert "-o " in error_line(result) and "300 bytes long" in error_line(result)
    assert listing(tmp_path) == ["library.toml", "tiny.j2"]


def _png(path: Path, size: tuple[int, int]) -> Path:
    from PIL import Image

    Image.new("RGB", size, (90, 120, 150)).save(path, format="PNG")
    return path


def _jpeg(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (600, 600), (90, 120, 150)).save(path, format="JPEG")
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: _png(p / "huge.png", (4000, 4000)), "4000x4000 pixels is too large"),
    (lambda p: (p / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(11 * 1024 * 1024)) and p / "big.png",
     "too big for a cover"),
    (lambda p: (p / "cut.jpg").write_bytes(_jpeg(p / "whole.jpg").read_bytes()[:2000]) and p / "cut.jpg",
     "not a PNG or JPEG image, or a broken one"),
    (lambda p: (p / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64) and p / "fake.png",
     "not a PNG or JPEG image, or a broken one"),
])
def test_a_bad_cover_fails_before_rendering(runner: CliRunner, tmp_path: Path, make, message: str) -> None:
    images = tmp_path / "images"
    images.mkdir()
    cover = make(images)
    template, out, cache = tiny(tmp_path), tmp_path / "out", tmp_path / "cache"
    result = render(runner, template, "-o", out / "tiny.flac", "--cover", cover, "--cache-dir", cache)
    assert result.exit_code == 2, result.stderr
    line = error_line(result)
    assert line.startswith(f"error: --cover {cover}: ") and message in line
    assert listing(out) == []
    assert nothing_synthesized(cache)


# -- all or nothing -------------------------------------------------------------------------


def test_a_failed_rename_rolls_back_the_whole_set(runner: CliRunner, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    template, out = tiny(tmp_path), tmp_path / "out"
    first = render(runner, template, "-o", out / "tiny.mp3")
    assert first.exit_code == 0, first.stderr
    before = {name: (out / name).read_bytes() for name in listing(out)}
    real = encoding.encode

    def encode_then_block(*args, **kwargs) -> None:  # after the checks: a folder appears where a sidecar goes
        real(*args, **kwargs)
        (out / "tiny.srt").unlink()
        (out / "tiny.srt").mkdir()

    monkeypatch.setattr(encoding, "encode", encode_then_block)
    result = render(runner, template, "-o", out / "tiny.mp3", "--title", "A new title")
    assert result.exit_code == 2, result.stderr
    line = error_line(result)
    assert "cannot write" in line and "tiny.srt" in line and "nothing was published" in line
    assert listing(out) == sorted(before)  # no temporary or backup file left
    for name, data in before.items():
        if name != "tiny.srt":
            assert (out / name).read_bytes() == data, name  # the earlier set, restored
    assert (out / "tiny.srt").is_dir()


def test_stale_partials_of_dead_processes_are_removed_live_ones_kept(runner: CliRunner, tmp_path: Path) -> None:
    template, out = tiny(tmp_path), tmp_path / "out"
    out.mkdir()
    dead = dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [out / f".tiny.partial-{dead}-0a1b2c3d.mp3", out / f".other.partial-{dead}.json"]
        kept = out / f".tiny.partial-{live.pid}-0a1b2c3d.mp3"
        for path in (*stale, kept):
            path.write_bytes(b"half")
        (out / "notes.partial-1.txt").write_text("not ours", encoding="utf-8")  # not hidden: not a temp file
        result = render(runner, template, "-o", out / "tiny.mp3")
        assert result.exit_code == 0, result.stderr
        assert listing(out) == sorted([kept.name, "notes.partial-1.txt", "tiny.chapters.json", "tiny.json",
                                       "tiny.mp3", "tiny.srt", "tiny.vtt"])
    finally:
        live.kill()
        live.wait()


# -- dry runs -------------------------------------------------------------------------------


def test_a_dry_run_writes_nothing_and_reports_what_would_fail(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[defaults]\nambient = "none"\n'
                                        '[[sessions]]\nname = "fine"\npractice = "tiny.j2"\n'
                                        '[[sessions]]\nname = "long"\npractice = "tiny.j2"\nminutes = 50\n'
                                        '[[sessions]]\nname = "unknown"\npractice = "tiny.j2"\n'
                                        'settings = { colour = "blue" }\n')
    root = tmp_path / "out"
    result = build(runner, manifest, root, "--dry-run")
    assert result.exit_code == 1, result.stderr
    assert result.stdout.startswith("1 to build, 0 up to date, 2 cannot be read")
    failed = {line.split()[1].rstrip(":") for line in result.stderr.splitlines() if line.startswith("  failed:")}
    assert failed == {"long", "unknown"}
    assert not root.exists()


def test_a_dry_run_leaves_an_existing_folder_alone(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[[sessions]]\npractice = "tiny.j2"\nambient = "none"\n')
    root = tmp_path / "out"
    (root / "library").mkdir(parents=True)
    stale = root / "library" / f".tiny.partial-{dead_pid()}-0a1b2c3d.mp3"
    stale.write_bytes(b"half")
    result = build(runner, manifest, root, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert listing(root) == ["library", f"library/{stale.name}"]  # no lock, no state, the partial kept


# -- text hygiene ---------------------------------------------------------------------------

FEED_MANIFEST = r'''
title = "Quotes \" and <brackets> & a bell\u0007"
description = "Line one\nline two\u001b[31m"
[feed]
base_url = "https://example.org/a\"b<c>\u0007/"
email = "x\"<y>@example.org\u0007"
author = "A & B </author>"
[[sessions]]
name = "tiny"
album = "Zoë & Sam"
title = "Line one\nline two\u0007 <b> \"q\" \u0085\u2028end"
practice = "tiny.j2"
ambient = "none"
voice = "pyttsx3:"
format = "ogg"
'''


def test_feed_and_playlists_take_any_text(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, FEED_MANIFEST)
    root = tmp_path / "out"
    result = build(runner, manifest, root)
    assert result.exit_code == 0, result.stderr
    assert partials(root) == []
    assert "zoë-sam/zoë-sam.m3u8" in listing(root) and "zoë-sam/tiny.ogg" in listing(root)
    text = (root / "feed.xml").read_text(encoding="utf-8")
    assert not any(c in text for c in CONTROLS)
    channel = ET.fromstring(text).find("channel")  # well-formed
    assert channel.findtext("title") == 'Quotes " and <brackets> & a bell'
    assert channel.findtext("link") == "https://example.org/a%22b%3Cc%3E/"  # a URL's path, percent-encoded
    ns = {"podcast": "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
          "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd"}
    assert channel.find("podcast:locked", ns).get("owner") == 'x"<y>@example.org'
    assert channel.findtext("itunes:author", namespaces=ns) == "A & B </author>"
    item = channel.find("item")
    assert item.findtext("title") == 'Line one line two <b> "q"   end'
    url = item.find("enclosure").get("url")
    assert url == "https://example.org/a%22b%3Cc%3E/zo%C3%AB-sam/tiny.ogg"
    playlist = (root / "zoë-sam" / "zoë-sam.m3u8").read_text(encoding="utf-8")
    assert not any(c in playlist for c in CONTROLS)
    lines = playlist.splitlines()
    assert lines[:2] == ["#EXTM3U", "#PLAYLIST:Zoë & Sam"] and lines[3:] == ["tiny.ogg"]
    assert lines[2].startswith("#EXTINF:") and lines[2].endswith(',Line one line two <b> "q"   end')
    index = json.loads((root / "index.json").read_text(encoding="utf-8"))
    assert index["items"][0]["title"] == 'Line one line two <b> "q"   end'


CONTROL_FRONT = TINY_FRONT.replace('title = "Tiny"', 'title = "Tiny\\u0007 bell"')
CONTROL_BODY = "# Start\x1b here\nHello\x07 there, this\x7f is\x9b tiny.\n@pause fill\nGoodbye.\n"


def test_control_characters_stay_out_of_captions_lyrics_and_tags(runner: CliRunner, tmp_path: Path) -> None:
    import mutagen

    template = write_template(tmp_path, CONTROL_BODY, name="bell.j2", front=CONTROL_FRONT)
    out = tmp_path / "out"
    result = render(runner, template, "-o", out / "bell.mp3")
    if result.exit_code == 2 and "control" in result.stderr:
        pytest.skip("the markup reader refuses control characters itself")  # also fine
    assert result.exit_code == 0, result.stderr
    for name in ("bell.vtt", "bell.srt", "bell.chapters.json", "bell.json"):
        text = (out / name).read_text(encoding="utf-8")
        assert not any(c in text for c in CONTROLS), name
        assert "\\u0007" not in text and "\\u001b" not in text, name
    vtt = (out / "bell.vtt").read_text(encoding="utf-8")
    assert "Hello there," in vtt and "this is tiny." in vtt  # one cue per phrase
    tags = mutagen.File(out / "bell.mp3")
    texts = [str(frame) for frame in tags.tags.values()]
    assert any("Hello there" in t for t in texts)  # the lyrics
    assert not any(c in t for t in texts for c in CONTROLS)
    assert partials(out) == []


# -- interrupts -----------------------------------------------------------------------------


def _start(args: list[str], cache: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(GUIDED_AUDIO), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "GUIDED_AUDIO_CACHE": str(cache), **(env or {})},
                            start_new_session=True)


def _end(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything it left behind
    return proc.returncode, err.decode()


def test_sigterm_during_speech_exits_130_and_writes_nothing(tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    proc = _start(["render", "breathing", "--minutes", "3", "--voice", VOICE, "-o", str(out / "b.mp3")], cache)
    wait_for(lambda: any(p.is_file() for p in cache.rglob("*")), proc, "speech in the cache")
    proc.send_signal(signal.SIGTERM)
    status, err = _end(proc)
    assert status == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted; nothing was written"
    assert listing(out) == []


def test_sigterm_during_encoding_exits_130_and_removes_temporary_files(tmp_path: Path, speech_cache: Path) -> None:
    template, out = tiny(tmp_path), tmp_path / "out"
    shim = tmp_path / "bin"
    shim.mkdir()
    # an ffmpeg that starts the encoded file and then hangs, so the signal comes mid-encode
    (shim / "ffmpeg").write_text(
        '#!/bin/sh\nfor last; do :; done\ncase "$last" in *.partial-*) echo start > "$last"; exec sleep 60;; esac\n'
        f'exec "{ffmpeg_exe()}" "$@"\n')
    (shim / "ffmpeg").chmod(0o755)
    proc = _start(["render", str(template), "--voice", VOICE, "--ambient", "none", "-o", str(out / "tiny.mp3")],
                  speech_cache, env={"PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"})
    wait_for(lambda: bool(partials(out)), proc, "a temporary file")
    proc.send_signal(signal.SIGTERM)
    status, err = _end(proc)
    assert status == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted; nothing was written"
    assert listing(out) == []


SIGTERM_MANIFEST = """\
[defaults]
ambient = "none"
voice = "pyttsx3:"
format = "flac"
[[matrix]]
practice = ["tiny.j2"]
minutes = [0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17]
"""


def test_sigterm_during_a_build_publishes_only_what_it_records(runner: CliRunner, tmp_path: Path,
                                                               speech_cache: Path) -> None:
    manifest = write_manifest(tmp_path, SIGTERM_MANIFEST)
    root = tmp_path / "out"
    state = root / ".guided-audio-build.json"

    def recorded() -> set[str]:
        try:
            return {entry["file"] for entry in json.loads(state.read_text(encoding="utf-8")).values()}
        except (OSError, ValueError):
            return set()

    proc = _start(["build", str(manifest), "-o", str(root), "-j", "2", "-q"], speech_cache)
    wait_for(lambda: bool(recorded()), proc, "a recorded item")
    workers = children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    status, err = _end(proc)
    for pid in workers:
        wait_gone(pid, timeout=30.0)
    assert status == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted: ") and "build again to finish" in last
    count = int(last.removeprefix("error: interrupted: ").split()[0])
    done = recorded()
    assert count == len(done) and 0 < count < 8, last
    audio = {p for p in listing(root) if p.endswith(".flac")}
    assert audio == done  # every published file is recorded, every recorded one published
    assert partials(root) == []
    index = json.loads((root / "index.json").read_text(encoding="utf-8"))
    assert {item["file"] for item in index["items"]} == done
    again = build(runner, manifest, root)
    assert again.exit_code == 0, again.stderr
    assert again.stdout.startswith(f"{8 - count} built, {count} skipped")
