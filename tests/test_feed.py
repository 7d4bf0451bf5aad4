"""The library feed as real clients see it: gPodder's podcastparser, feedparser and an HTTP server.

One small library of two real practices, spoken by eSpeak at their shortest, is built once
into a folder that a local http.server serves at the feed's base_url; the tests read its
feed, fetch what it links to, look for private values, and build it again.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import re
import struct
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import feedparser
import mutagen
import podcastparser
import pytest
from click.testing import CliRunner
from conftest import write_template

from guided_audio.build.feed import feed_guid
from guided_audio.cli import cli

# Private values (the couple's own phrases, their stop word, health flags): they shape the words and
# must appear nowhere a build writes but the audio and its captions.
PHRASES = "Zebra lantern|Quiet harbour"
STOP = "Quillstopword"
FLAGS = ["cardiac", "stoma", "pregnancy"]
SECRETS = ["Zebra lantern", "Quiet harbour", STOP, *FLAGS]
LIBRARY = """\
title = "Feed library"
description = "Two practices for the feed tests."
[defaults]
voice = "pyttsx3:"
format = "mp3"
[feed]
base_url = "{base}"
title = "Our practices"
author = "The tests"
email = "tests@example.org"
[[sessions]]
name = "comfort"
album = "Everyday"
practice = "comfort"
minutes = 5
settings = {{ own_phrases = "{phrases}", stop_word = "{stop}", health = {flags} }}
[[sessions]]
name = "breathing"
album = "Breathing"
practice = "breathing"
minutes = 3
settings = {{ partner_a = "Alex", health = ["pregnancy"] }}
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def runner() -> CliRunner:
    import inspect

    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # pragma: no cover - depends on the click installed
    return CliRunner()


def build(manifest: Path, root: Path, cache: Path, *more: str) -> Any:
    return runner().invoke(cli, ["build", str(manifest), "-o", str(root), "-j", "2", "--cache-dir", str(cache),
                                 *more])


@pytest.fixture(scope="module")
def feed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A speech cache of these tests' own: what other tests find in the shared cache stays as it was."""
    return tmp_path_factory.mktemp("feed-speech-cache")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, feed_cache: Path):
    """The library built once into a served folder: (manifest, root, base_url, result)."""
    site = tmp_path_factory.mktemp("site")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/lib/"
    manifest = tmp_path_factory.mktemp("manifest") / "library.toml"
    manifest.write_text(LIBRARY.format(base=base, phrases=PHRASES, stop=STOP, flags=json.dumps(FLAGS)),
                        encoding="utf-8")
    root = site / "lib"
    result = build(manifest, root, feed_cache)
    try:
        yield manifest, root, base, result
    finally:
        server.shutdown()
        server.server_close()


def index(root: Path) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in json.loads((root / "index.json").read_text(encoding="utf-8"))["items"]}


def local(root: Path, base: str, url: str) -> Path:
    assert url.startswith(base), url
    return root / urllib.request.url2pathname(url.removeprefix(base))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# -- the build --------------------------------------------------------------------------------


def test_the_build_shows_each_items_warnings_after_its_report(library) -> None:
    _, root, _, result = library
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"2 built, 0 skipped (unchanged), 0 failed -> {root}")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert any(line.startswith("warning: breathing: ") and "only one partner has a name" in line
               for line in warnings), result.stderr
    assert index(root)["breathing"]["warnings"]  # and kept in the index, as before


# -- two real podcast clients -------------------------------------------------------------------


def test_podcastparser_sees_the_art_every_episode_and_its_captions(library) -> None:
    _, root, base, _ = library
    with open(root / "feed.xml", "rb") as handle:
        podcast = podcastparser.parse(base + "feed.xml", handle)
    assert podcast["title"] == "Our practices"
    assert podcast["cover_url"] == base + "cover.png"
    items = index(root)
    assert len(podcast["episodes"]) == len(items) == 2
    for episode in podcast["episodes"]:
        (enclosure,) = episode["enclosures"]
        audio = local(root, base, enclosure["url"])
        assert enclosure["file_size"] == audio.stat().st_size
        assert enclosure["mime_type"] == "audio/mpeg"
        item = next(i for i in items.values() if root / i["file"] == audio)
        assert episode["total_time"] == round(item["duration"]) > 0
        assert episode["episode_art_url"] == base + "cover.png"
        assert episode["transcript_url"] == base + item["sidecars"]["vtt"]
        assert episode["chapters_json_url"] == base + item["sidecars"]["chapters"]
        assert episode["description"] == item["description"]


def test_feedparser_sees_the_art_every_episode_and_the_vtt(library) -> None:
    _, root, base, _ = library
    parsed = feedparser.parse((root / "feed.xml").read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.image.href == base + "cover.png"
    items = index(root)
    assert len(parsed.entries) == 2
    for entry in parsed.entries:
        (enclosure,) = entry.enclosures
        audio = local(root, base, enclosure.href)
        assert int(enclosure.length) == audio.stat().st_size
        item = next(i for i in items.values() if root / i["file"] == audio)
        assert int(entry.itunes_duration) == round(item["duration"])
        assert entry.image.href == base + "cover.png"
        assert entry.summary == item["description"]
        transcript = entry.podcast_transcript  # feedparser keeps one transcript per item: it must be the VTT
        assert transcript["url"] == base + item["sidecars"]["vtt"]
        assert (transcript["type"], transcript["rel"], transcript["language"]) == ("text/vtt", "captions", "en")


def test_episode_descriptions_name_the_practice_and_its_minutes(library) -> None:
    _, root, _, _ = library
    items = index(root)
    assert items["comfort"]["description"].startswith("Comfort on a hard day, 5 minutes. Prompts for comforting")
    assert items["breathing"]["description"].startswith("Breathing together, 3 minutes. ")


def test_the_podcast_guid_is_the_uuid5_of_the_feed_url(library) -> None:
    _, root, base, _ = library
    parsed = feedparser.parse((root / "feed.xml").read_bytes())
    name = (base + "feed.xml").removeprefix("http://")
    assert parsed.feed.podcast_guid == str(uuid.uuid5(uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6"), name))


@pytest.mark.parametrize(("url", "guid"), [
    ("https://podnews.net/rss", "9b024349-ccf0-5f69-a609-6b82873eab3c"),  # the specification's examples
    ("https://mp3s.nashownotes.com/pc20rss.xml", "917393e3-1b1e-5cef-ace4-edaa54e1f810"),
    ("http://podnews.net/rss//", "9b024349-ccf0-5f69-a609-6b82873eab3c"),
])
def test_feed_guid_follows_the_podcasting_2_rule(url: str, guid: str) -> None:
    assert feed_guid(url) == guid


# -- artwork ----------------------------------------------------------------------------------


def test_the_channel_art_is_square_and_big_enough_for_directories(library) -> None:
    _, root, _, _ = library
    width, height = png_size((root / "cover.png").read_bytes())
    assert width == height and 1400 <= width <= 3000


def test_the_cover_in_each_episode_is_at_least_1400_px(library) -> None:
    from PIL import Image

    _, root, _, _ = library
    for item in index(root).values():
        tags = mutagen.File(root / item["file"]).tags
        (picture,) = tags.getall("APIC")
        with Image.open(io.BytesIO(picture.data)) as image:
            assert image.size[0] == image.size[1] >= 1400


# -- served over HTTP ---------------------------------------------------------------------------


def test_a_client_fetches_every_enclosure_and_transcript_by_the_feeds_urls(library) -> None:
    _, root, base, _ = library
    with urllib.request.urlopen(base + "feed.xml", timeout=10) as response:
        parsed = feedparser.parse(response.read())
    for entry in parsed.entries:
        (enclosure,) = entry.enclosures
        with urllib.request.urlopen(enclosure.href, timeout=10) as response:
            body = response.read()
            assert int(response.headers["Content-Length"]) == int(enclosure.length) == len(body)
        assert body == local(root, base, enclosure.href).read_bytes()
        with urllib.request.urlopen(entry.podcast_transcript["url"], timeout=10) as response:
            assert response.read().startswith(b"WEBVTT")
    with urllib.request.urlopen(parsed.feed.image.href, timeout=10) as response:
        assert png_size(response.read())[0] >= 1400


# -- privacy ------------------------------------------------------------------------------------


def test_no_private_value_reaches_the_feed_index_playlists_or_messages(library) -> None:
    _, root, _, result = library
    written = {path.name: path.read_text(encoding="utf-8")
               for path in [root / "feed.xml", root / "index.json", *root.glob("*/*.m3u8")]}
    written["build messages"] = result.stdout + result.stderr
    for where, text in written.items():
        for secret in SECRETS:
            assert secret.lower() not in text.lower(), f"{secret!r} in {where}"


# -- a rebuild ----------------------------------------------------------------------------------


def test_a_rebuild_that_changes_nothing_leaves_every_byte(library, feed_cache: Path) -> None:
    manifest, root, _, _ = library
    files = ["index.json", "feed.xml", "cover.png", "index.html"]
    before = {name: (root / name).read_bytes() for name in files}
    result = build(manifest, root, feed_cache)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("0 built, 2 skipped (unchanged), 0 failed")
    assert "warning:" not in result.stderr  # shown when an item is built, not each time it is skipped
    assert {name: (root / name).read_bytes() for name in files} == before


# -- the [feed] table ---------------------------------------------------------------------------

TINY = """
# Start
Hello, this is the feed.
@pause fill
Goodbye.
"""
TINY_FRONT = """
title = "Tiny"
[minutes]
default = 0.1
min = 0.1
max = 1
help = "Length."
"""


def tiny_manifest(folder: Path, feed: str) -> Path:
    write_template(folder, TINY, name="tiny.j2", front=TINY_FRONT)
    manifest = folder / "library.toml"
    manifest.write_text(f"""\
title = "Tiny library"
[feed]
{feed}
[[sessions]]
name = "tiny"
practice = "tiny.j2"
ambient = "none"
voice = "pyttsx3:"
""", encoding="utf-8")
    return manifest


def image(path: Path, size: tuple[int, int], kind: str = "PNG") -> str:
    from PIL import Image

    Image.new("RGB", size, (60, 70, 90)).save(path, format=kind)
    return path.name


@pytest.mark.parametrize(("feed", "message"), [
    ('base_urll = "https://example.org/lib/"', "[feed]: unknown key 'base_urll'; did you mean 'base_url'?"),
    ('title = "A library"', "[feed]: base_url is missing"),
    ('base_url = "example.org/lib/"', "[feed]: base_url 'example.org/lib/' should be an absolute http://"),
    ('base_url = "ftp://example.org/lib/"', "should be an absolute http:// or https:// address"),
    ('base_url = "https://example.org/lib/?a=1"', "should be the folder's address, without ? or #"),
    ('base_url = "https://example.org/"\ntitle = 3', "[feed]: title should be a non-empty piece of text"),
    ('base_url = "https://example.org/"\nlanguage = "English please"', "language 'English please' should be"),
    ('base_url = "https://example.org/"\nimage = "missing.png"', "missing.png: no such file"),
    ('base_url = "https://example.org/"\nimage = "small.png"', "1000x1000 pixels; channel art is a square"),
    ('base_url = "https://example.org/"\nimage = "wide.jpg"', "1600x1400 pixels; channel art is a square"),
    ('base_url = "https://example.org/"\nimage = "notes.png"', "not a PNG or JPEG image"),
])
def test_a_bad_feed_table_is_a_one_line_error_naming_the_manifest(tmp_path: Path, feed: str, message: str) -> None:
    image(tmp_path / "small.png", (1000, 1000))
    image(tmp_path / "wide.jpg", (1600, 1400), "JPEG")
    (tmp_path / "notes.png").write_text("not an image", encoding="utf-8")
    manifest = tiny_manifest(tmp_path, feed)
    result = runner().invoke(cli, ["build", str(manifest), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"error: {manifest}: [feed]"), result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_the_manifests_own_art_is_copied_and_named_in_the_feed(tmp_path: Path, feed_cache: Path) -> None:
    art = image(tmp_path / "art.jpg", (1500, 1500), "JPEG")
    manifest = tiny_manifest(tmp_path, f'base_url = "https://example.org/tiny"\nimage = "{art}"')
    root = tmp_path / "out"
    result = build(manifest, root, feed_cache)
    assert result.exit_code == 0, result.stderr
    assert (root / "cover.jpg").read_bytes() == (tmp_path / art).read_bytes()
    assert not (root / "cover.png").exists()
    parsed = feedparser.parse((root / "feed.xml").read_bytes())
    assert parsed.feed.image.href == "https://example.org/tiny/cover.jpg"
    assert parsed.entries[0].enclosures[0].href == "https://example.org/tiny/library/tiny.mp3"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(f'image = "{art}"\n', ""), encoding="utf-8")
    result = build(manifest, root, feed_cache)  # without an image: a drawn cover, and the copy is gone
    assert result.exit_code == 0, result.stderr
    assert png_size((root / "cover.png").read_bytes())[0] >= 1400 and not (root / "cover.jpg").exists()
    assert feedparser.parse((root / "feed.xml").read_bytes()).feed.image.href == "https://example.org/tiny/cover.png"


# -- the library's player page ------------------------------------------------------------------


def test_the_library_has_a_player_page_with_every_session(library, feed_cache: Path) -> None:
    _, root, base, _ = library
    page = (root / "index.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="player-data">(.*?)</script>', page,
                                re.S).group(1).replace("<\\/", "</"))  # type: ignore[union-attr]
    titles = {item["title"] for item in index(root).values()}
    assert {s["title"] for s in data["sessions"]} == titles
    for session in data["sessions"]:
        assert (root / urllib.request.url2pathname(session["audio"])).is_file()  # relative to the page
        assert session["cues"] and session["chapters"]
    assert any(session["phases"] for session in data["sessions"])  # the breathing session's guide
    with urllib.request.urlopen(base + "index.html", timeout=10) as response:  # served with the feed
        assert response.read().decode("utf-8") == page
    for secret in SECRETS:
        assert secret.lower() not in page.lower(), secret
