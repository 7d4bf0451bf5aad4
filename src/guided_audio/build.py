"""Library builds: a manifest of sessions, and matrices of variants, rendered into one folder.

    title = "Riverside practice library"
    [defaults]                    # render settings for every item
    format = "mp3"
    [feed]                        # optional: a private podcast feed of the library
    base_url = "https://example.org/library/"
    [[sessions]]                  # one output: a practice or a session file
    name = "evening-alex-sam"
    session = "evening.toml"
    [[matrix]]                    # many outputs: every combination of the lists
    album = "Breathing"
    practice = ["breathing"]
    minutes = [3, 5]
    ambient = ["warm-room", "soft-rain"]
    name = "{practice}-{minutes}min-{ambient}"

Items render in parallel processes. An item whose inputs (template sources, settings,
sounds, voice, package version) are unchanged since its last build is skipped. Every
file is written whole or not at all, a lock keeps two builds out of one folder, and
one failing item does not stop the others.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from guided_audio import __version__, encoding, practices, sessions, sounds
from guided_audio.errors import BadInput, GuidedAudioError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STATE = ".guided-audio-build.json"
LOCK = ".guided-audio-build.lock"
ITEM_KEYS = {"name", "album", "title", "practice", "session", "minutes", "voice", "second_voice", "rate",
             "ambient", "format", "settings", "artist"}
DEFAULT_KEYS = ITEM_KEYS - {"name", "practice", "session", "title", "settings"} | {"loudness"}
MIME = {"mp3": "audio/mpeg", "m4a": "audio/mp4", "ogg": "audio/ogg", "opus": "audio/ogg", "flac": "audio/flac",
        "wav": "audio/wav"}


@dataclass(frozen=True)
class Item:
    """One output of a library."""

    name: str
    album: str
    title: str | None
    target: str  # a practice name, a template path or a session file path
    settings: dict[str, str]
    options: dict[str, Any]  # minutes, voice, second_voice, rate, ambient, format, loudness, artist
    variant: str = ""  # what sets a matrix item apart, added to its title

    @property
    def format(self) -> encoding.Format:
        return encoding.FORMATS[self.options.get("format", "mp3")]

    @property
    def key(self) -> str:
        """The item's place in the library (album folder, name, extension): unique in a manifest."""
        return f"{_slug(self.album)}/{self.name}{self.format.extension}"

    def path(self, root: Path) -> Path:
        return root / self.key


@dataclass
class Report:
    """What a build did; its exit status follows from it."""

    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0


@dataclass(frozen=True)
class Manifest:
    path: Path
    title: str
    description: str
    items: tuple[Item, ...]
    feed: dict[str, Any] | None


# -- the manifest -----------------------------------------------------------------------------


def load(path: Path) -> Manifest:
    """Read a library manifest and expand its matrices into items with distinct names."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: {exc}") from None
    unknown = set(doc) - {"title", "description", "defaults", "feed", "sessions", "matrix"}
    if unknown:
        raise BadInput(f"{path}: unknown key '{sorted(unknown)[0]}' (known: title, description, defaults, feed, "
                       "sessions, matrix)")
    defaults = doc.get("defaults", {})
    _check_keys(path, "[defaults]", defaults, DEFAULT_KEYS)
    items = [_item(path, entry, defaults, f"[[sessions]] {n + 1}") for n, entry in enumerate(doc.get("sessions", []))]
    for n, matrix in enumerate(doc.get("matrix", [])):
        items += _expand(path, matrix, defaults, f"[[matrix]] {n + 1}")
    seen: dict[str, int] = {}
    for item in items:
        key = item.key
        seen[key] = seen.get(key, 0) + 1
    clashes = [k for k, count in seen.items() if count > 1]
    if clashes:
        raise BadInput(f"{path}: {len(clashes)} output name(s) used more than once, first {clashes[0]}: "
                       "make the name pattern include what differs")
    if not items:
        raise BadInput(f"{path}: no [[sessions]] or [[matrix]] to build")
    return Manifest(path, str(doc.get("title", path.stem)), str(doc.get("description", "")), tuple(items),
                    doc.get("feed"))


def _check_keys(path: Path, where: str, table: dict[str, Any], known: set[str]) -> None:
    for key in table:
        if key not in known:
            raise BadInput(f"{path}: {where}: unknown key '{key}'" + did_you_mean(key, known))


def _item(path: Path, entry: dict[str, Any], defaults: dict[str, Any], where: str) -> Item:
    _check_keys(path, where, entry, ITEM_KEYS)
    if ("practice" in entry) == ("session" in entry):
        raise BadInput(f"{path}: {where}: give either practice = NAME or session = FILE")
    target = str(entry.get("practice") or entry.get("session"))
    if "session" in entry or "/" in target or target.endswith(".j2"):
        target = str((path.parent / target).resolve())
    name = entry.get("name") or _slug(Path(target).stem)
    options = {k: v for k, v in {**defaults, **entry}.items() if k in DEFAULT_KEYS - {"album"}}
    if options.get("format", "mp3") not in encoding.FORMATS:
        raise BadInput(f"{path}: {where}: unknown format '{options['format']}'")
    settings = {k: _setting(v) for k, v in entry.get("settings", {}).items()}
    return Item(_slug(str(name)), str(entry.get("album", defaults.get("album", "Library"))), entry.get("title"),
                target, settings, options)


def _setting(value: Any) -> str:
    """A manifest value as `--set` text: true/false, and a list (of health flags) as a, b."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _expand(path: Path, matrix: dict[str, Any], defaults: dict[str, Any], where: str) -> list[Item]:
    axes = {k: v for k, v in matrix.items() if isinstance(v, list)}
    fixed = {k: v for k, v in matrix.items() if not isinstance(v, list)}
    pattern = str(fixed.pop("name", "{practice}-{minutes}min"))
    items = []
    for combo in itertools.product(*axes.values()):
        entry = {**fixed, **dict(zip(axes, combo))}
        fields = {k: _slug(Path(str(v)).stem if k in ("practice", "session") else str(v)) for k, v in entry.items()
                  if k != "settings"}
        try:
            name = pattern.format(**{**{k: "" for k in ITEM_KEYS}, **fields})
        except (KeyError, IndexError, ValueError) as exc:
            raise BadInput(f"{path}: {where}: name pattern '{pattern}': {exc}") from None
        variant = ", ".join(_shown(k, v) for k, v in zip(axes, combo) if k not in ("practice", "session"))
        items.append(dataclasses.replace(_item(path, {**entry, "name": name}, defaults, where), variant=variant))
    return items


def _shown(key: str, value: Any) -> str:
    return f"{value:g} min" if key == "minutes" else str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower() or "item"


# -- what an item depends on ------------------------------------------------------------------


def fingerprint(item: Item) -> str:
    """A hash of everything that changes the item's output."""
    h = hashlib.sha256()
    h.update(json.dumps([__version__, item.target, item.settings, item.options, item.title, item.album],
                        sort_keys=True, default=str).encode())
    for source in _sources(item):
        h.update(source.name.encode())
        h.update(source.read_bytes())
    for sound in sorted(sounds.library_dir().glob("*.flac")):
        stat = sound.stat()
        h.update(f"{sound.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for option in ("ambient", "voice", "second_voice"):
        value = str(item.options.get(option) or "")
        local = Path(value.split(":", 1)[-1]) if value else None
        if local is not None and local.exists():  # a user's bed file or a folder of recordings
            for f in sorted(local.rglob("*") if local.is_dir() else [local]):
                if f.is_file():
                    h.update(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}".encode())
    return h.hexdigest()


def _sources(item: Item) -> list[Path]:
    """The template files (and session file) an item is made from."""
    if sessions.is_session(item.target):
        session = sessions.load(Path(item.target))
        return [Path(item.target), *sorted({part.practice.path for part in session.parts})]
    return [practices.load(item.target).path]


# -- running a build --------------------------------------------------------------------------


def build(
    manifest: Manifest,
    root: Path,
    *,
    jobs: int,
    dry_run: bool = False,
    cache_dir: Path | None = None,
    on_event: Callable[[str, str, str], None] = lambda kind, name, detail: None,
) -> Report:
    """Render every item whose inputs changed; write playlists, the index and the feed."""
    report = Report()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        _remove_partials(root)
        state = _read_state(root)
        todo: list[tuple[Item, str]] = []
        for item in manifest.items:
            try:
                key = fingerprint(item)
            except GuidedAudioError as exc:
                report.failed.append((item.name, str(exc)))
                on_event("failed", item.name, str(exc))
                continue
            entry = state.get(item.key)
            if entry and entry.get("key") == key and item.path(root).exists():
                report.skipped.append(item.name)
                on_event("skipped", item.name, "unchanged")
            else:
                todo.append((item, key))
        if dry_run:
            for item, _ in todo:
                on_event("would build", item.name, str(item.path(root)))
            return report
        for item, key, outcome in _render_all(todo, root, jobs, cache_dir):
            if isinstance(outcome, dict):
                state[item.key] = {"name": item.name, "key": key, "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **outcome}
                _write_state(root, state)
                report.built.append(item.name)
                on_event("built", item.name, str(item.path(root)))
            else:
                report.failed.append((item.name, outcome))
                on_event("failed", item.name, outcome)
        current = {item.key for item in manifest.items}
        _write_outputs(manifest, root, {k: v for k, v in state.items() if k in current})
    return report


def _render_all(
    todo: list[tuple[Item, str]], root: Path, jobs: int, cache_dir: Path | None
) -> Iterator[tuple[Item, str, dict[str, Any] | str]]:
    """Render items in worker processes; yield each as it finishes (a summary dict, or the error)."""
    if not todo:
        return
    # Spawned, not forked: a worker must not inherit the folder's lock, and each one
    # ends itself if the build is killed (see _watch_parent).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context, initializer=_watch_parent,
                             initargs=(os.getpid(),)) as pool:
        running: dict[Future[dict[str, Any] | str], tuple[Item, str]] = {
            pool.submit(render_item, item, str(root), str(cache_dir) if cache_dir else None): (item, key)
            for item, key in todo
        }
        try:
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    item, key = running.pop(future)
                    try:
                        yield item, key, future.result()
                    except Exception as exc:  # a worker that died: report it, go on
                        yield item, key, f"{type(exc).__name__}: {exc}"
        except BaseException:
            for future in running:
                future.cancel()
            raise


def _watch_parent(parent: int) -> None:
    """In a worker: exit when the build process that started it is gone (killed, say)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def render_item(item: Item, root: str, cache_dir: str | None) -> dict[str, Any] | str:
    """Render one item (in a worker process); a summary for the index, or the error's message."""
    from guided_audio.render import RenderRequest, TagOverrides, render

    options = item.options
    cache: dict[str, Any] = {"cache_dir": Path(cache_dir)} if cache_dir else {}
    request = RenderRequest(
        practice=item.target, settings=item.settings, minutes=options.get("minutes"),
        voice=options.get("voice"), second_voice=options.get("second_voice"), rate=options.get("rate"),
        ambient=options.get("ambient"), format=options.get("format", "mp3"), output=item.path(Path(root)),
        loudness=options.get("loudness"), tags=TagOverrides(title=item.title, album=item.album,
                                                            artist=options.get("artist")),
        **cache,
    )
    try:
        result = render(request)
    except GuidedAudioError as exc:
        return str(exc)
    audio = result.audio
    return {
        "file": str(audio.relative_to(root)),
        "album": item.album,
        "title": item.title or (f"{_title_of(result)} ({item.variant})" if item.variant else _title_of(result)),
        "duration": round(result.timeline.seconds, 3),
        "bytes": audio.stat().st_size,
        "format": item.format.name,
        "sidecars": {kind: str(p.relative_to(root)) for kind, p in result.sidecars.items()},
        "warnings": list(result.warnings),
    }


def _title_of(result: Any) -> str:
    try:
        title: str = json.loads(result.sidecar.read_text())["title"]
        return title
    except (OSError, ValueError, KeyError, AttributeError):
        stem: str = result.audio.stem
        return stem


class _locked:
    """An exclusive lock on the output folder for the whole build."""

    def __init__(self, root: Path):
        self.path = root / LOCK

    def __enter__(self) -> _locked:
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise BadInput(f"-o {self.path.parent}: another build is writing to this folder; wait for it to end") from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _remove_partials(root: Path) -> None:
    """Temporary files a killed build left behind (the lock says no other build is writing)."""
    for partial in root.rglob(".*.partial-*"):
        partial.unlink(missing_ok=True)


def _read_state(root: Path) -> dict[str, dict[str, Any]]:
    try:
        state: dict[str, dict[str, Any]] = json.loads((root / STATE).read_text(encoding="utf-8"))
        return state
    except (OSError, ValueError):
        return {}


def _write_state(root: Path, state: dict[str, dict[str, Any]]) -> None:
    _atomic(root / STATE, json.dumps(state, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def _atomic(path: Path, text: str) -> None:
    """Replace a file whole, and only when its text changes (a no-op build touches nothing)."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


# -- playlists, index and feed ----------------------------------------------------------------


def _write_outputs(manifest: Manifest, root: Path, state: dict[str, dict[str, Any]]) -> None:
    entries = [(key, state[key]) for key in (i.key for i in manifest.items) if key in state]
    albums: dict[str, list[dict[str, Any]]] = {}
    for _, entry in entries:
        albums.setdefault(entry["album"], []).append(entry)
    for album, rows in albums.items():
        lines = ["#EXTM3U", f"#PLAYLIST:{album}"]
        for row in rows:
            lines += [f"#EXTINF:{round(row['duration'])},{row['title']}", str(Path(row["file"]).relative_to(_slug(album)))]
        _atomic(root / _slug(album) / f"{_slug(album)}.m3u8", "\n".join(lines) + "\n")
    index = {"title": manifest.title, "description": manifest.description, "generator": f"guided_audio {__version__}",
             "items": [{"id": key, **entry} for key, entry in entries]}
    _atomic(root / "index.json", json.dumps(index, indent=1, ensure_ascii=False) + "\n")
    if manifest.feed is not None:
        _atomic(root / "feed.xml", feed_xml(manifest, root, entries))


def feed_xml(manifest: Manifest, root: Path, entries: list[tuple[str, dict[str, Any]]]) -> str:
    """A private podcast feed: RSS 2.0 with the iTunes and Podcasting 2.0 tags, kept out of directories."""
    feed = manifest.feed or {}
    base = str(feed.get("base_url", "")).rstrip("/") + "/"
    title = escape(str(feed.get("title", manifest.title)))
    author = escape(str(feed.get("author", "guided_audio")))
    description = escape(str(feed.get("description", manifest.description or manifest.title)))
    language = escape(str(feed.get("language", "en")))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        'xmlns:podcast="https://podcastindex.org/namespace/1.0" xmlns:atom="http://www.w3.org/2005/Atom">',
        "<channel>",
        f"<title>{title}</title>",
        f"<link>{escape(base)}</link>",
        f"<description>{description}</description>",
        f"<language>{language}</language>",
        f"<generator>guided_audio {__version__}</generator>",
        f'<atom:link href="{escape(base)}feed.xml" rel="self" type="application/rss+xml"/>',
        f"<itunes:author>{author}</itunes:author>",
        "<itunes:block>Yes</itunes:block>",
        "<itunes:explicit>false</itunes:explicit>",
        "<podcast:block>yes</podcast:block>",
        f'<podcast:locked owner="{escape(str(feed.get("email", "")))}">yes</podcast:locked>',
        f'<podcast:guid>{_guid(manifest.title)}</podcast:guid>',
    ]
    for key, entry in entries:
        url = base + entry["file"]
        built = time.strptime(entry["built"], "%Y-%m-%dT%H:%M:%SZ")
        out += [
            "<item>",
            f"<title>{escape(entry['title'])}</title>",
            f'<guid isPermaLink="false">{_guid(key)}</guid>',
            f"<pubDate>{time.strftime('%a, %d %b %Y %H:%M:%S +0000', built)}</pubDate>",
            f'<enclosure url="{escape(url)}" length="{(root / entry["file"]).stat().st_size}" '
            f'type="{MIME[entry["format"]]}"/>',
            f"<itunes:duration>{round(entry['duration'])}</itunes:duration>",
        ]
        side = entry.get("sidecars", {})
        if "chapters" in side:
            out.append(f'<podcast:chapters url="{escape(base + side["chapters"])}" type="application/json+chapters"/>')
        if "vtt" in side:
            out.append(f'<podcast:transcript url="{escape(base + side["vtt"])}" type="text/vtt"/>')
        if "srt" in side:
            out.append(f'<podcast:transcript url="{escape(base + side["srt"])}" type="application/x-subrip"/>')
        out.append("</item>")
    out += ["</channel>", "</rss>"]
    return "\n".join(out) + "\n"


def _guid(name: str) -> str:
    """A stable identifier: the same name always gives the same guid."""
    digest = hashlib.sha1(f"guided_audio:{name}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"

