"""The library's private podcast feed: RSS 2.0 with the iTunes and Podcasting 2.0 tags.

What the feed says about an episode comes from the item's summary in the state file: its
title, its description (the practice and its length; never a private setting), its files.
The `[feed]` table of the manifest is checked here when the manifest is read (`check`).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from guided_audio import __version__
from guided_audio.build import artwork
from guided_audio.errors import BadInput, did_you_mean
from guided_audio.publish import clean_text

if TYPE_CHECKING:
    from guided_audio.build.manifest import Manifest

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
# The Podcasting 2.0 namespace by the name the specification tells every client to take as identical to
# https://podcastindex.org/namespace/1.0: gPodder's podcastparser knows only this one, and without it
# sees neither the transcripts nor the chapters.
PODCAST = "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md"
ATOM = "http://www.w3.org/2005/Atom"
MIME = {"mp3": "audio/mpeg", "m4a": "audio/mp4", "ogg": "audio/ogg", "opus": "audio/ogg", "flac": "audio/flac",
        "wav": "audio/wav"}
# Podcasting 2.0: a feed's podcast:guid is the UUIDv5 of its URL (scheme and trailing slashes removed)
# in this namespace.
PODCAST_GUIDS = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
FEED = "feed.xml"

# The keys of a manifest's [feed] table and what they mean (the README's table says the same).
KEYS = {
    "base_url": "the http(s) address the library folder is served at (required)",
    "title": "the podcast's title (default: the manifest's title)",
    "description": "the podcast's description (default: the manifest's description)",
    "author": "shown as the podcast's author (default: guided_audio)",
    "email": "the owner's address, for podcast:locked",
    "language": "the language tag of the podcast, such as en or en-GB (default: en)",
    "image": "channel art: a square PNG or JPEG of 1400 to 3000 pixels, relative to the manifest "
             "(default: a cover drawn from the title)",
    "guid": "the podcast's podcast:guid, to keep it when the folder moves (default: from the feed's address)",
}

ET.register_namespace("itunes", ITUNES)
ET.register_namespace("podcast", PODCAST)
ET.register_namespace("atom", ATOM)


# -- the [feed] table ---------------------------------------------------------------------------


def check(manifest: Path, table: dict[str, Any]) -> dict[str, str]:
    """The manifest's [feed] table checked, its values as text; base_url ends in one slash.

    Unknown keys, values that are not text, a missing or relative base_url and an image
    that is not square art of 1400 to 3000 px are errors (BadInput, exit 2) naming the manifest.
    """
    where = f"{manifest}: [feed]"
    for key, value in table.items():
        if key not in KEYS:
            raise BadInput(f"{where}: unknown key '{key}'" + did_you_mean(key, KEYS))
        if not isinstance(value, str) or not value.strip() or len(value) > 4000:
            raise BadInput(f"{where}: {key} should be a non-empty piece of text, such as {key} = \"...\"")
    if "base_url" not in table:
        raise BadInput(f"{where}: base_url is missing: give the address the library folder is served at, such "
                       "as base_url = \"https://example.org/library/\"")
    feed = {key: clean_text(value).strip() for key, value in table.items()}
    feed["base_url"] = _base_url(where, feed["base_url"])
    if "language" in feed and not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", feed["language"]):
        raise BadInput(f"{where}: language '{feed['language']}' should be a language tag, such as en or en-GB")
    if "email" in feed and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", feed["email"]):
        raise BadInput(f"{where}: email '{feed['email']}' should be an address, such as clinic@example.org")
    if "guid" in feed:
        try:
            feed["guid"] = str(uuid.UUID(feed["guid"]))
        except ValueError:
            raise BadInput(f"{where}: guid '{feed['guid']}' should be a UUID, such as the podcast:guid of the "
                           "feed.xml written before") from None
    if "image" in feed:
        feed["image"] = str(artwork.check_image(manifest, feed["image"]))
    return feed


def _base_url(where: str, url: str) -> str:
    """An absolute http(s) address, its path percent-encoded, ending in one slash."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or re.search(r"\s", url):
        raise BadInput(f"{where}: base_url '{url}' should be an absolute http:// or https:// address, such as "
                       "https://example.org/library/")
    if parts.query or parts.fragment:
        raise BadInput(f"{where}: base_url '{url}' should be the folder's address, without ? or #")
    path = quote(parts.path, safe="/%:@!$&'()*+,;=~")
    return urlunsplit((parts.scheme.lower(), parts.netloc, path.rstrip("/") + "/", "", ""))


def feed_guid(url: str) -> str:
    """The podcast:guid of the feed at `url`, as Podcasting 2.0 derives it."""
    return str(uuid.uuid5(PODCAST_GUIDS, re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url).rstrip("/")))


# -- the feed -------------------------------------------------------------------------------


def feed_xml(manifest: Manifest, root: Path, entries: list[tuple[str, dict[str, Any]]], art: str) -> str:
    """A private podcast feed: RSS 2.0 with the iTunes and Podcasting 2.0 tags, kept out of directories.

    `art` is the channel art's path in the library folder. Written with ElementTree, so
    every text and attribute is escaped; control characters, which XML cannot hold, are
    removed first.
    """
    feed = manifest.feed or {}
    base = feed["base_url"]
    title = feed.get("title") or manifest.title
    language = feed.get("language", "en")
    art_url = base + _url_path(art)

    rss = ET.Element("rss", {"version": "2.0"})
    channel = _add(rss, "channel")
    _add(channel, "title", title)
    _add(channel, "link", base)
    _add(channel, "description", feed.get("description") or manifest.description or title)
    _add(channel, "language", language)
    _add(channel, "generator", f"guided_audio {__version__}")
    _add(channel, f"{{{ATOM}}}link", href=base + FEED, rel="self", type="application/rss+xml")
    image = _add(channel, "image")
    _add(image, "url", art_url)
    _add(image, "title", title)
    _add(image, "link", base)
    _add(channel, f"{{{ITUNES}}}image", href=art_url)
    _add(channel, f"{{{ITUNES}}}author", feed.get("author", "guided_audio"))
    _add(channel, f"{{{ITUNES}}}block", "Yes")
    _add(channel, f"{{{ITUNES}}}explicit", "false")
    _add(channel, f"{{{PODCAST}}}block", "yes")
    _add(channel, f"{{{PODCAST}}}locked", "yes", **({"owner": feed["email"]} if "email" in feed else {}))
    _add(channel, f"{{{PODCAST}}}guid", feed.get("guid") or feed_guid(base + FEED))
    for key, entry in entries:
        _item(channel, root, base, key, entry, art_url, language)
    ET.indent(rss)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(rss, encoding="unicode") + "\n"


def _item(channel: ET.Element, root: Path, base: str, key: str, entry: dict[str, Any], art_url: str,
          language: str) -> None:
    """One episode: its audio, its words, its art, its chapters and captions."""
    built = time.strptime(entry["built"], "%Y-%m-%dT%H:%M:%SZ")
    item = _add(channel, "item")
    _add(item, "title", entry["title"])
    description = entry.get("description") or entry["title"]
    _add(item, "description", description)
    _add(item, f"{{{ITUNES}}}summary", description)
    _add(item, "guid", _item_guid(key), isPermaLink="false")
    _add(item, "pubDate", time.strftime("%a, %d %b %Y %H:%M:%S +0000", built))
    _add(item, "enclosure", url=base + _url_path(entry["file"]), length=(root / entry["file"]).stat().st_size,
         type=MIME[entry["format"]])
    _add(item, f"{{{ITUNES}}}duration", round(entry["duration"]))
    _add(item, f"{{{ITUNES}}}image", href=art_url)
    side = entry.get("sidecars", {})
    if "chapters" in side:
        _add(item, f"{{{PODCAST}}}chapters", url=base + _url_path(side["chapters"]), type="application/json+chapters")
    if "vtt" in side:  # one transcript: readers that keep one per item (feedparser) would keep only the last
        _add(item, f"{{{PODCAST}}}transcript", url=base + _url_path(side["vtt"]), type="text/vtt",
             language=entry.get("language") or language, rel="captions")


def _add(parent: ET.Element, tag: str, text: object = None, **attrs: object) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: clean_text(str(v)) for k, v in attrs.items()})
    if text is not None:
        element.text = clean_text(str(text), newlines=True)
    return element


def _url_path(relative: str) -> str:
    """A library path as the path of a URL (a name with letters beyond ASCII is percent-encoded)."""
    return quote(relative, safe="/")


def _item_guid(name: str) -> str:
    """A stable identifier: the same item always gives the same guid."""
    digest = hashlib.sha1(f"guided_audio:{name}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
