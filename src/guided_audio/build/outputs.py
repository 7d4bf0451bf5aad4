"""What a build writes besides the items: each album's playlist, the index, the player page and the feed.

Each is written whole, and only when its bytes change, so a build that changes nothing
touches nothing: the index is written with sorted keys, and the feed's dates are the
items' build times from the state file.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path, PurePosixPath
from typing import Any

from guided_audio import __version__, player
from guided_audio.build import artwork, worker
from guided_audio.build.feed import FEED, feed_xml
from guided_audio.build.manifest import Item, Manifest, slug
from guided_audio.build.state import write_if_changed
from guided_audio.errors import GuidedAudioError
from guided_audio.publish import clean_text

PLAYER = "index.html"  # the library's player page: open it, or serve the folder, to listen


def write_outputs(manifest: Manifest, root: Path, state: dict[str, dict[str, Any]], cache_dir: Path | None = None,
                  ) -> None:
    """Write each album's playlist, index.json, the player page and, with a [feed] table, the art and feed.xml."""
    entries = [(key, state[key]) for key in (i.key for i in manifest.items) if key in state]
    albums: dict[str, list[dict[str, Any]]] = {}
    for _, entry in entries:
        albums.setdefault(entry["album"], []).append(entry)
    for album, rows in albums.items():
        folder = slug(album)
        lines = ["#EXTM3U", f"#PLAYLIST:{clean_text(album)}"]
        for row in rows:
            lines += [f"#EXTINF:{round(row['duration'])},{clean_text(str(row['title']))}",
                      PurePosixPath(row["file"]).relative_to(folder).as_posix()]
        write_if_changed(root / folder / f"{folder}.m3u8", "\n".join(lines) + "\n")
    index = {"title": manifest.title, "description": manifest.description, "generator": f"guided_audio {__version__}",
             "items": [{"id": key, **entry} for key, entry in entries]}
    write_if_changed(root / "index.json", json.dumps(index, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    write_if_changed(root / PLAYER, player_page(manifest, root, entries))
    if manifest.feed is not None:
        if cache_dir is None:
            from guided_audio.speech import default_cache_dir

            cache_dir = default_cache_dir()
        art = artwork.write(manifest.feed.get("title") or manifest.title, manifest.title, manifest.feed.get("image"),
                            root, cache_dir)
        write_if_changed(root / FEED, feed_xml(manifest, root, entries, art))


def player_page(manifest: Manifest, root: Path, entries: list[tuple[str, dict[str, Any]]]) -> str:
    """One page that plays every session of the library, with its chapters, captions and breath guide."""
    items = {item.key: item for item in manifest.items}
    sessions = [dataclasses.replace(player.session_from_sidecars(root / entry["file"], root, _secrets(items[key])),
                                    title=clean_text(str(entry["title"])))
                for key, entry in entries]
    return player.player_html(sessions, title=manifest.title)


def _secrets(item: Item) -> tuple[str, ...]:
    """The item's private texts, kept off the page (its practice loaded as a render loads it)."""
    from guided_audio import program

    try:
        loaded, _ = program.load(worker.request(item, Path("."), None))
    except GuidedAudioError:
        return ()
    return loaded.shown_privately()
