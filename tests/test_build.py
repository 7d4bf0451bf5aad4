"""Library builds: manifests, matrices, incremental rebuilds, the lock, killed builds, playlists and the feed."""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import children, wait_gone, write_template

import guided_audio.cli as cli_module
from guided_audio import build as builds
from guided_audio import speech
from guided_audio.cli import cli
from guided_audio.ffmpeg import decode_audio

MINUTES = """
title = "{title}"
[minutes]
default = 0.3
min = 0.1
max = 5
help = "Length."
"""
ONE = """
# Start
Hello, this is one.
@pause fill
Goodbye.
"""
TWO = """
# Start
@cue wood-tick
Hello, this is two.
@pause fill
Goodbye.
"""
BROKEN = """
# Start
Hello, this is one.
@pause banana
"""
SESSION = """\
title = "Evening"
[render]
ambient = "none"
[[parts]]
practice = "one.j2"
minutes = 0.4
[[parts]]
practice = "two.j2"
title = "Second part"
minutes = 0.2
"""
BASE = "https://example.org/library/"
MANIFEST = f"""\
title = "Test library"
description = "Tiny practices for the tests."
[defaults]
format = "flac"
[feed]
base_url = "{BASE}"
author = "The tests"
email = "tests@example.org"
[[sessions]]
name = "evening"
album = "Evenings"
session = "evening.toml"
format = "mp3"
[[matrix]]
album = "Short practices"
practice = ["one.j2", "two.j2"]
minutes = [0.1, 0.2]
ambient = ["none", "warm-room"]
name = "{{practice}}-{{minutes}}min-{{ambient}}"
"""
MATRIX_NAMES = [f"{p}-{m}min-{a}" for p in ("one", "two") for m in ("0.1", "0.2") for a in ("none", "warm-room")]
NAMES = ["evening", *MATRIX_NAMES]
SIDECARS = (".json", ".vtt", ".srt", ".chapters.json")
NS = {"itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
      "podcast": "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md"}
TIMES: dict[str, float] = {}


def new_runner() -> CliRunner:
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # pragma: no cover - depends on the click installed
    return CliRunner()


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "_debug", False)


def templates(folder: Path) -> None:
    write_template(folder, ONE, name="one.j2", front=MINUTES.format(title="One"))
    write_template(folder, TWO, name="two.j2", front=MINUTES.format(title="Two"))
    (folder / "evening.toml").write_text(SESSION, encoding="utf-8")


def build_cli(manifest: Path, root: Path, cache: Path, *more: object, jobs: int = 2):
    """Run `guided-audio build`; (result, seconds)."""
    start = time.perf_counter()
    result = new_runner().invoke(cli, [str(a) for a in ("build", manifest, "-o", root, "-j", jobs,
                                                         "--cache-dir", cache, *more)])
    return result, time.perf_counter() - start


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root (but the lock) with its inode and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != builds.LOCK}


def audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".mp3", ".flac") and not p.name.startswith("."))


def partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") and "partial" in p.name]


def index(root: Path) -> dict[str, dict]:
    return {item["name"]: item for item in json.loads((root / "index.json").read_text(encoding="utf-8"))["items"]}


def feed(root: Path) -> ET.Element:
    return ET.parse(root / "feed.xml").getroot()


def feed_items(root: Path) -> dict[str, ET.Element]:
    """Feed items by the file their enclosure points at."""
    items = feed(root).findall("channel/item")
    return {item.find("enclosure").get("url").removeprefix(BASE): item for item in items}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, speech_cache: Path):
    """The example library built once with -j 2: (manifest, root, result)."""
    folder = tmp_path_factory.mktemp("library")
    templates(folder)
    manifest = folder / "library.toml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    root = folder / "out"
    # speak the few lines once, one at a time, so parallel workers only read the cache
    lines = ["Hello, this is one.", "Hello, this is two.", "Goodbye."]
    speech.synthesize([speech.Line(text, speech.DEFAULT_WPM) for text in lines], sample_rate=44100,
                      cache_dir=speech_cache)
    result, seconds = build_cli(manifest, root, speech_cache)
    TIMES["first build -j 2"] = seconds
    return manifest, root, result


# -- a full build ---------------------------------------------------------------------------


def test_build_renders_every_item_with_distinct_stable_names(library) -> None:
    manifest, root, result = library
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"9 built, 0 skipped (unchanged), 0 failed -> {root}")
    names = [item.name for item in builds.load(manifest).items]
    assert names == NAMES  # the pattern's names, in manifest order
    assert names == [item.name for item in builds.load(manifest).items]  # stable
    expected = [root / "evenings" / "evening.mp3"] + [root / "short-practices" / f"{n}.flac" for n in MATRIX_NAMES]
    assert audio_files(root) == sorted(expected)
    for audio in expected:
        for suffix in SIDECARS:
            assert audio.with_name(audio.stem + suffix).is_file(), (audio, suffix)
        sidecar = json.loads(audio.with_suffix(".json").read_text(encoding="utf-8"))
        assert sidecar["file"] == audio.name
    assert partials(root) == []


def test_build_items_follow_their_settings(library) -> None:
    _, root, _ = library
    items = index(root)
    for name in MATRIX_NAMES:
        doc = json.loads((root / items[name]["file"]).with_suffix(".json").read_text(encoding="utf-8"))
        ambient = "none" if name.endswith("none") else "warm-room"
        assert doc["ambient"] == ambient
        assert doc["settings"]["minutes"] == (0.1 if "-0.1min" in name else 0.2)
    evening = json.loads((root / "evenings" / "evening.json").read_text(encoding="utf-8"))
    assert [e["text"] for e in evening["events"] if e["kind"] == "part"] == ["One", "Second part"]


def test_playlists_point_at_real_files(library) -> None:
    _, root, _ = library
    playlists = sorted(root.rglob("*.m3u8"))
    assert [p.relative_to(root).as_posix() for p in playlists] == [
        "evenings/evenings.m3u8", "short-practices/short-practices.m3u8"]
    for playlist in playlists:
        lines = playlist.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "#EXTM3U"
        entries = [line for line in lines if line and not line.startswith("#")]
        extinf = [line for line in lines if line.startswith("#EXTINF:")]
        assert len(extinf) == len(entries) > 0
        for line in extinf:
            seconds, _, title = line.removeprefix("#EXTINF:").partition(",")
            assert int(seconds) > 0 and title
        for entry in entries:
            assert not Path(entry).is_absolute() and "://" not in entry
            assert (playlist.parent / entry).is_file(), entry
        # every audio file of the album, each once
        assert sorted(entries) == sorted(p.name for p in audio_files(playlist.parent))
        for number, line in enumerate(lines):  # each #EXTINF is followed by its file
            if line.startswith("#EXTINF:"):
                assert not lines[number + 1].startswith("#")


def test_index_lists_every_item_with_duration_and_bytes(library) -> None:
    _, root, _ = library
    doc = json.loads((root / "index.json").read_text(encoding="utf-8"))
    assert doc["title"] == "Test library"
    items = {item["name"]: item for item in doc["items"]}
    assert sorted(items) == sorted(NAMES) and len(doc["items"]) == len(NAMES)
    for name, item in items.items():
        audio = root / item["file"]
        assert audio.is_file()
        assert item["bytes"] == audio.stat().st_size
        assert item["duration"] > 5
        assert item["album"] == ("Evenings" if name == "evening" else "Short practices")
    assert items["evening"]["duration"] == pytest.approx(36.0, abs=0.1)  # parts of 0.4 and 0.2 minutes


def test_feed_is_a_private_podcast(library) -> None:
    _, root, _ = library
    text = (root / "feed.xml").read_text(encoding="utf-8")
    for prefix, uri in NS.items():
        assert f'xmlns:{prefix}="{uri}"' in text
    rss = feed(root)
    channel = rss.find("channel")
    assert channel.findtext("title") == "Test library"
    assert channel.findtext("itunes:block", namespaces=NS) == "Yes"
    assert channel.findtext("podcast:block", namespaces=NS) == "yes"
    locked = channel.find("podcast:locked", NS)
    assert locked is not None and locked.text == "yes" and locked.get("owner") == "tests@example.org"
    items = channel.findall("item")
    assert len(items) == len(NAMES)
    guids = [item.findtext("guid") for item in items]
    assert len(set(guids)) == len(guids)
    files = {str(p.relative_to(root)) for p in audio_files(root)}
    seen = set()
    for item in items:
        enclosure = item.find("enclosure")
        url = enclosure.get("url")
        assert url.startswith(BASE)
        audio = root / url.removeprefix(BASE)
        seen.add(url.removeprefix(BASE))
        assert int(enclosure.get("length")) == audio.stat().st_size  # the exact byte size
        assert enclosure.get("type") == {".mp3": "audio/mpeg", ".flac": "audio/flac"}[audio.suffix]
        assert int(item.findtext("itunes:duration", namespaces=NS)) > 0
        chapters = item.find("podcast:chapters", NS)
        assert (root / chapters.get("url").removeprefix(BASE)).is_file()
        transcripts = item.findall("podcast:transcript", NS)  # one: readers keep one per item
        assert [t.get("type") for t in transcripts] == ["text/vtt"]
        assert (root / transcripts[0].get("url").removeprefix(BASE)).is_file()
    assert seen == files


# -- incremental builds ---------------------------------------------------------------------


def test_second_build_skips_everything_and_rewrites_nothing(library, speech_cache: Path) -> None:
    manifest, root, _ = library
    before = snapshot(root)
    guids = {url: item.findtext("guid") for url, item in feed_items(root).items()}
    result, seconds = build_cli(manifest, root, speech_cache)
    TIMES["no-op rebuild -j 2"] = seconds
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"0 built, {len(NAMES)} skipped (unchanged), 0 failed")
    after = snapshot(root)
    outputs = [k for k in before if not k.endswith((".m3u8", "index.json", "feed.xml"))]
    assert outputs
    assert {k: after[k] for k in outputs} == {k: before[k] for k in outputs}  # audio, sidecars, state
    assert set(after) == set(before)
    assert {url: item.findtext("guid") for url, item in feed_items(root).items()} == guids


def test_second_build_leaves_playlists_index_and_feed_alone(library, speech_cache: Path) -> None:
    manifest, root, _ = library
    before = snapshot(root)
    result, _ = build_cli(manifest, root, speech_cache)
    assert result.exit_code == 0, result.stderr
    assert snapshot(root) == before


def test_changing_one_template_rebuilds_only_its_items(library, speech_cache: Path) -> None:
    manifest, root, _ = library
    guids = {url: item.findtext("guid") for url, item in feed_items(root).items()}
    one = manifest.parent / "one.j2"
    one.write_text(one.read_text(encoding="utf-8").replace("Goodbye.", "@pause 0.5\nGoodbye."), encoding="utf-8")
    uses_one = ["evening", *(n for n in MATRIX_NAMES if n.startswith("one-"))]  # the session has a part of one.j2
    untouched = [n for n in MATRIX_NAMES if n.startswith("two-")]
    before = snapshot(root)

    dry, _ = build_cli(manifest, root, speech_cache, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.startswith(f"{len(uses_one)} to build, {len(untouched)} up to date, 0 cannot be read")
    would = sorted(line.split()[2] for line in dry.stderr.splitlines() if line.startswith("would build:"))
    assert would == sorted(uses_one)
    assert snapshot(root) == before  # nothing rendered, nothing written
    assert partials(root) == []

    result, _ = build_cli(manifest, root, speech_cache)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{len(uses_one)} built, {len(untouched)} skipped (unchanged), 0 failed")
    built = sorted(line.split()[1] for line in result.stderr.splitlines() if line.startswith("built:"))
    assert built == sorted(uses_one)
    after = snapshot(root)
    items = index(root)
    for name in untouched:
        assert after[items[name]["file"]] == before[items[name]["file"]]
    for name in uses_one:
        assert after[items[name]["file"]] != before[items[name]["file"]]
    # guids stay, enclosures follow the new files
    assert {url: item.findtext("guid") for url, item in feed_items(root).items()} == guids
    for url, item in feed_items(root).items():
        assert int(item.find("enclosure").get("length")) == (root / url).stat().st_size


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("entries, clash", [
    (('[[matrix]]\nalbum = "Short"\npractice = ["one.j2"]\nminutes = [0.1]\nambient = ["none", "warm-room"]\n'
      'name = "{practice}-{minutes}min"\n'), "short/one-0.1min.flac"),
    ('[[sessions]]\nname = "twice"\npractice = "one.j2"\n[[sessions]]\nname = "twice"\npractice = "two.j2"\n',
     "library/twice.flac"),
])
def test_duplicate_output_names_are_an_error(tmp_path: Path, speech_cache: Path, entries: str, clash: str) -> None:
    templates(tmp_path)
    manifest = tmp_path / "dupes.toml"
    manifest.write_text('[defaults]\nformat = "flac"\n' + entries, encoding="utf-8")
    root = tmp_path / "out"
    result, _ = build_cli(manifest, root, speech_cache)
    assert result.exit_code == 2
    assert "used more than once" in result.stderr and clash in result.stderr
    assert not root.exists()


def test_one_name_in_two_formats_is_rejected_or_tracked_apart(tmp_path: Path, speech_cache: Path) -> None:
    templates(tmp_path)
    manifest = tmp_path / "formats.toml"
    manifest.write_text('[[matrix]]\npractice = ["one.j2"]\nminutes = [0.1]\nambient = ["none"]\n'
                        'format = ["flac", "mp3"]\nname = "{practice}"\n', encoding="utf-8")
    root = tmp_path / "out"
    result, _ = build_cli(manifest, root, speech_cache)
    if result.exit_code == 2 and "more than once" in result.stderr:
        return  # rejected like any other clash: fine
    assert result.exit_code == 0, result.stderr
    files = [item["file"] for item in json.loads((root / "index.json").read_text())["items"]]
    assert sorted(files) == ["library/one.flac", "library/one.mp3"]
    again, _ = build_cli(manifest, root, speech_cache)
    assert again.stdout.startswith("0 built, 2 skipped")


def test_a_failing_item_is_reported_and_the_others_built(tmp_path: Path, speech_cache: Path) -> None:
    templates(tmp_path)
    write_template(tmp_path, BROKEN, name="broken.j2", front=MINUTES.format(title="Broken"))
    manifest = tmp_path / "mixed.toml"
    manifest.write_text('[defaults]\nformat = "flac"\nambient = "none"\n'
                        '[[sessions]]\nname = "broken"\npractice = "broken.j2"\n'
                        '[[sessions]]\nname = "fine"\npractice = "one.j2"\nminutes = 0.1\n', encoding="utf-8")
    root = tmp_path / "out"
    result, _ = build_cli(manifest, root, speech_cache)
    assert result.exit_code == 1
    assert result.stdout.startswith("1 built, 0 skipped (unchanged), 1 failed")
    failed = [line for line in result.stderr.splitlines() if line.startswith("  failed: broken:")]
    assert len(failed) == 1 and "banana" in failed[0] and "line 3" in failed[0]
    assert (root / "library" / "fine.flac").is_file()
    assert not (root / "library" / "broken.flac").exists()
    assert sorted(index(root)) == ["fine"]
    assert partials(root) == []

    again, _ = build_cli(manifest, root, speech_cache)
    assert again.exit_code == 1
    assert again.stdout.startswith("0 built, 1 skipped (unchanged), 1 failed")


def test_a_second_build_into_the_same_folder_is_refused(tmp_path: Path, speech_cache: Path) -> None:
    templates(tmp_path)
    manifest = tmp_path / "one.toml"
    manifest.write_text('[[sessions]]\npractice = "one.j2"\nminutes = 0.1\nformat = "flac"\nambient = "none"\n',
                        encoding="utf-8")
    root = tmp_path / "out"
    root.mkdir()
    with open(root / builds.LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another build holds the folder
        result, _ = build_cli(manifest, root, speech_cache)
        assert result.exit_code == 2
        assert "another build is writing" in result.stderr
        assert sorted(p.name for p in root.iterdir()) == [builds.LOCK]  # nothing rendered or written
        fcntl.flock(handle, fcntl.LOCK_UN)
    result, _ = build_cli(manifest, root, speech_cache)
    assert result.exit_code == 0, result.stderr
    assert (root / "library" / "one.flac").is_file()


# -- a killed build -------------------------------------------------------------------------

KILL_MANIFEST = """\
[defaults]
format = "flac"
ambient = "none"
[[matrix]]
practice = ["one.j2", "two.j2"]
minutes = [0.1, 0.15, 0.2]
"""


def recorded(root: Path) -> set[str]:
    try:
        return {entry["name"] for entry in json.loads((root / builds.STATE).read_text(encoding="utf-8")).values()}
    except (OSError, ValueError):
        return set()


def start_and_kill(tmp_path: Path, speech_cache: Path, *, workers_too: bool) -> tuple[Path, Path, set[str], list[int]]:
    """Start a -j 1 build of six items, SIGKILL it once its first item is done.

    Returns (manifest, root, items recorded at the kill, worker processes left alive).
    """
    templates(tmp_path)
    manifest = tmp_path / "six.toml"
    manifest.write_text(KILL_MANIFEST, encoding="utf-8")
    root = tmp_path / "out"
    log = (tmp_path / "build.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "guided_audio", "build", str(manifest), "-o", str(root),
                             "-j", "1", "-q", "--cache-dir", str(speech_cache)],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not (recorded(root) and audio_files(root)):
            assert proc.poll() is None, (tmp_path / "build.log").read_text()
            assert time.monotonic() < deadline, "the build built nothing in 60 s"
            time.sleep(0.01)
        workers = children(proc.pid)
        proc.kill()  # SIGKILL
        if workers_too:
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            for pid in workers:
                wait_gone(pid, timeout=10.0)
            workers = []
    finally:
        proc.kill()
        proc.wait()
        log.close()
    done = recorded(root)
    assert 0 < len(done) < 6, done  # killed part-way
    return manifest, root, done, workers


def check_recovery(manifest: Path, root: Path, speech_cache: Path, done: set[str]) -> None:
    """The build after a killed one: cleans up, builds what was missing, leaves whole files."""
    # what a killed render may leave: a temporary audio file and a temporary state file
    (root / "library" / ".one-0.1min.partial-999999.flac").write_bytes(b"fLaC half")
    (root / f".{builds.STATE}.partial-999999").write_text("{", encoding="utf-8")
    names = [item.name for item in builds.load(manifest).items]
    result, _ = build_cli(manifest, root, speech_cache)
    assert result.exit_code == 0, result.stderr
    built = {line.split()[1] for line in result.stderr.splitlines() if line.startswith("built:")}
    skipped = {line.split()[1] for line in result.stderr.splitlines() if line.startswith("skipped:")}
    assert skipped == done  # what the killed build finished is kept
    assert built == set(names) - done  # only what was missing is built
    assert partials(root) == []
    items = index(root)
    assert sorted(items) == sorted(names)
    for audio in audio_files(root):
        samples = decode_audio(str(audio), sample_rate=8000, channels=1)  # raises on a broken file
        item = items[audio.stem]
        assert len(samples) / 8000 == pytest.approx(item["duration"], abs=0.1), audio  # not truncated
        assert item["bytes"] == audio.stat().st_size


def test_a_killed_build_is_finished_by_the_next(tmp_path: Path, speech_cache: Path) -> None:
    """The build and its worker processes killed at once, as when the machine runs out of memory."""
    manifest, root, done, _ = start_and_kill(tmp_path, speech_cache, workers_too=True)
    check_recovery(manifest, root, speech_cache, done)


def test_a_build_killed_alone_is_finished_by_the_next(tmp_path: Path, speech_cache: Path) -> None:
    """Only the build process killed (kill -9 PID): its worker processes must not outlive it."""
    manifest, root, done, workers = start_and_kill(tmp_path, speech_cache, workers_too=False)
    try:
        for pid in workers:  # a worker notices its parent's death, removes its temporary files and ends
            wait_gone(pid, timeout=10.0)
        check_recovery(manifest, root, speech_cache, done)
    finally:
        for pid in workers:  # the orphaned workers this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# -- build times ----------------------------------------------------------------------------


def test_print_build_times(library, tmp_path: Path, speech_cache: Path) -> None:
    """Not a check: the example build's times with -j 1 and -j 2 and a no-op rebuild (see pytest -s)."""
    manifest, _, _ = library
    times = {}
    for jobs in (1, 2):
        result, times[f"-j {jobs}"] = build_cli(manifest, tmp_path / f"j{jobs}", speech_cache, jobs=jobs)
        assert result.exit_code == 0, result.stderr
    result, times["no-op rebuild"] = build_cli(manifest, tmp_path / "j2", speech_cache)
    assert result.stdout.startswith("0 built")
    print(f"\nexample build of {len(NAMES)} items (speech cached): "
          + ", ".join(f"{k} {v:.2f} s" for k, v in times.items())
          + "".join(f"; {k} {v:.2f} s" for k, v in TIMES.items()))
