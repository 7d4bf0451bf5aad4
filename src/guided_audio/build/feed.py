"""The library's private podcast feed: RSS 2.0 with the iTunes and Podcasting 2.0 tags."""

from __future__ import annotations

import hashlib
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import quote

from guided_audio import __version__
from guided_audio.build.manifest import Manifest
from guided_audio.publish import clean_text

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"
MIME = {"mp3": "audio/mpeg", "m4a": "audio/mp4", "ogg": "audio/ogg", "opus": "audio/ogg", "flac": "audio/flac",
        "wav": "audio/wav"}

ET.register_namespace("itunes", ITUNES)
ET.register_namespace("podcast", PODCAST)
ET.register_namespace("atom", ATOM)


def feed_xml(manifest: Manifest, root: Path, entries: list[tuple[str, dict[str, Any]]]) -> str:
    """A private podcast feed: RSS 2.0 with the iTunes and Podcasting 2.0 tags, kept out of directories.

    Written with ElementTree, so every text and attribute is escaped; control characters,
    which XML cannot hold, are removed first.
    """
    feed = manifest.feed or {}
    base = clean_text(str(feed.get("base_url", ""))).rstrip("/") + "/"

    def add(parent: ET.Element, tag: str, text: object = None, **attrs: object) -> ET.Element:
        element = ET.SubElement(parent, tag, {k: clean_text(str(v)) for k, v in attrs.items()})
        if text is not None:
            element.text = clean_text(str(text), newlines=True)
        return element

    rss = ET.Element("rss", {"version": "2.0"})
    channel = add(rss, "channel")
    add(channel, "title", feed.get("title", manifest.title))
    add(channel, "link", base)
    add(channel, "description", feed.get("description", manifest.description or manifest.title))
    add(channel, "language", feed.get("language", "en"))
    add(channel, "generator", f"guided_audio {__version__}")
    add(channel, f"{{{ATOM}}}link", href=base + "feed.xml", rel="self", type="application/rss+xml")
    add(channel, f"{{{ITUNES}}}author", feed.get("author", "guided_audio"))
    add(channel, f"{{{ITUNES}}}block", "Yes")
    add(channel, f"{{{ITUNES}}}explicit", "false")
    add(channel, f"{{{PODCAST}}}block", "yes")
    add(channel, f"{{{PODCAST}}}locked", "yes", owner=feed.get("email", ""))
    add(channel, f"{{{PODCAST}}}guid", _guid(manifest.title))
    for key, entry in entries:
        built = time.strptime(entry["built"], "%Y-%m-%dT%H:%M:%SZ")
        item = add(channel, "item")
        add(item, "title", clean_text(str(entry["title"])))
        add(item, "guid", _guid(key), isPermaLink="false")
        add(item, "pubDate", time.strftime("%a, %d %b %Y %H:%M:%S +0000", built))
        add(item, "enclosure", url=base + _url_path(entry["file"]), length=(root / entry["file"]).stat().st_size,
            type=MIME[entry["format"]])
        add(item, f"{{{ITUNES}}}duration", round(entry["duration"]))
        side = entry.get("sidecars", {})
        if "chapters" in side:
            add(item, f"{{{PODCAST}}}chapters", url=base + _url_path(side["chapters"]),
                type="application/json+chapters")
        if "vtt" in side:
            add(item, f"{{{PODCAST}}}transcript", url=base + _url_path(side["vtt"]), type="text/vtt")
        if "srt" in side:
            add(item, f"{{{PODCAST}}}transcript", url=base + _url_path(side["srt"]), type="application/x-subrip")
    ET.indent(rss)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(rss, encoding="unicode") + "\n"


def _url_path(relative: str) -> str:
    """A library path as the path of a URL (a name with letters beyond ASCII is percent-encoded)."""
    return quote(relative, safe="/")


def _guid(name: str) -> str:
    """A stable identifier: the same name always gives the same guid."""
    digest = hashlib.sha1(f"guided_audio:{name}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
