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

Containment: every file a manifest names stays inside the -o folder. An album or name
that is absolute or has a `..` or dot-only part is an error (exit 2), and so is a path
that leaves the folder once resolved (an album folder that is a symlink out of it).
Names are slugs that keep their letters: `Zoë & Sam` is `zoë-sam`.

Clashes: the whole set of files an item writes (the audio, every sidecar and its
album's playlist) is checked against every other item's. Sidecars are named after the
audio file without its extension, so a matrix over `format = ["mp3", "ogg"]` whose name
pattern leaves out the format would give two items one set of captions: that is an
error naming both items, with the fix (put `{format}` in the name pattern), rather than
file names a player would not pair with the audio.

Publishing: a worker renders an item into temporary files and hands them to the build
process, which renames them into place and records the item in the state file in one
step that an interrupt waits for; nothing is published that the state file does not
record. On Ctrl-C or SIGTERM the workers stop, their temporary files are removed, the
playlists and index are written for what was built, and the exit status is 130.

`--dry-run` writes nothing (no folder, no lock, no clean-up) and checks every item that
would be built the way a render would (settings, minutes, session files, the script,
the output names); an item that would fail is reported as failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import re
import signal
import string
import sys
import threading
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from guided_audio import __version__, encoding, options, practices, publish, sessions, sidecars, sounds
from guided_audio.errors import BadInput, ExitStatus, GuidedAudioError, did_you_mean
from guided_audio.publish import clean_text

if TYPE_CHECKING:
    from guided_audio.render import RenderRequest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STATE = ".guided-audio-build.json"
LOCK = ".guided-audio-build.lock"
ITEM_KEYS = {"name", "album", "title", "practice", "session", "minutes", "voice", "second_voice", "rate",
             "ambient", "format", "settings", "artist"}
DEFAULT_KEYS = ITEM_KEYS - {"name", "practice", "session", "title", "settings"} | {"loudness"}
MAX_ITEMS = 20000  # items of one manifest
ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"
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
    where: str = ""  # the manifest entry it comes from, for messages

    @property
    def format(self) -> encoding.Format:
        return encoding.FORMATS[self.options.get("format", "mp3")]

    @property
    def key(self) -> str:
        """The item's place in the library (album folder, name, extension): unique in a manifest."""
        return f"{_slug(self.album)}/{self.name}{self.format.extension}"

    def path(self, root: Path) -> Path:
        return root / self.key

    @property
    def playlist(self) -> str:
        """The album's playlist, relative to the library folder."""
        return f"{_slug(self.album)}/{_slug(self.album)}.m3u8"

    def files(self) -> list[str]:
        """Every file the item writes, relative to the library folder: audio, sidecars, playlist."""
        audio = PurePosixPath(self.key)
        return [self.key, *(str(sidecars.path_for(Path(audio), kind).as_posix()) for kind in sidecars.ALL),
                self.playlist]

    @property
    def label(self) -> str:
        """How messages name the item: its manifest entry and name."""
        return f"{self.where} '{self.name}'" if self.where else f"'{self.name}'"


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
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: {exc}") from None
    except RecursionError:
        raise BadInput(f"{path}: values are nested too deeply") from None
    unknown = set(doc) - {"title", "description", "defaults", "feed", "sessions", "matrix"}
    if unknown:
        raise BadInput(f"{path}: unknown key '{sorted(unknown)[0]}' (known: title, description, defaults, feed, "
                       "sessions, matrix)")
    defaults = _table(path, "[defaults]", doc.get("defaults", {}))
    _check_keys(path, "[defaults]", defaults, DEFAULT_KEYS)
    _check_options(path, "[defaults]", defaults)
    if "feed" in doc:
        _table(path, "[feed]", doc["feed"])
    items = [_item(path, _table(path, f"[[sessions]] {n + 1}", entry), defaults, f"[[sessions]] {n + 1}")
             for n, entry in enumerate(_tables(path, "sessions", doc))]
    for n, matrix in enumerate(_tables(path, "matrix", doc)):
        items += _expand(path, _table(path, f"[[matrix]] {n + 1}", matrix), defaults, f"[[matrix]] {n + 1}")
        if len(items) > MAX_ITEMS:
            raise BadInput(f"{path}: more than {MAX_ITEMS} items; split the library into several manifests")
    _check_clashes(path, items)
    if not items:
        raise BadInput(f"{path}: no [[sessions]] or [[matrix]] to build")
    return Manifest(path, str(doc.get("title", path.stem)), str(doc.get("description", "")), tuple(items),
                    doc.get("feed"))


def _table(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput(f"{path}: {where} should be a table, not {type(value).__name__}")
    return value


def _tables(path: Path, key: str, doc: dict[str, Any]) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise BadInput(f"{path}: {key} should be a list of [[{key}]] tables")
    return value


def _check_options(path: Path, where: str, table: dict[str, Any]) -> None:
    """Render options through the same schema as the command line and session files."""
    for key, value in table.items():
        if key in options.OPTIONS:
            message = options.problem(key, value)
            if message:
                raise BadInput(f"{path}: {where}: {message}")
    for key in ("name", "practice", "session"):
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip() or "\0" in value
                                  or len(value) > 1000):
            raise BadInput(f"{path}: {where}: {key} should be a short piece of text")


def _check_keys(path: Path, where: str, table: dict[str, Any], known: set[str]) -> None:
    for key in table:
        if key not in known:
            raise BadInput(f"{path}: {where}: unknown key '{key}'" + did_you_mean(key, known))


def _item(path: Path, entry: dict[str, Any], defaults: dict[str, Any], where: str) -> Item:
    _check_keys(path, where, entry, ITEM_KEYS)
    _check_options(path, where, entry)
    if ("practice" in entry) == ("session" in entry):
        raise BadInput(f"{path}: {where}: give either practice = NAME or session = FILE")
    target = str(entry.get("practice") or entry.get("session"))
    if "session" in entry or "/" in target or target.endswith(".j2"):
        target = str((path.parent / target).resolve())
    name = str(entry.get("name") or _slug(Path(target).stem))
    album = str(entry.get("album", defaults.get("album", "Library")))
    _contained(path, where, "name", name)
    _contained(path, where, "album", album)
    options = {k: v for k, v in {**defaults, **entry}.items() if k in DEFAULT_KEYS - {"album"}}
    if options.get("format", "mp3") not in encoding.FORMATS:
        raise BadInput(f"{path}: {where}: unknown format '{options['format']}'")
    settings = {k: _setting(v) for k, v in _table(path, f"{where}: settings", entry.get("settings", {})).items()}
    return Item(_slug(name), album, entry.get("title"), target, settings, options, where=where)


def _contained(path: Path, where: str, key: str, value: str) -> None:
    """A name or album must name a place inside the library folder: no absolute path, no `..`."""
    parts = [*PurePosixPath(value).parts, *PureWindowsPath(value).parts]
    if (PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or value.startswith("~")
            or any(p.strip() and set(p.strip()) == {"."} for p in parts)):
        raise BadInput(f"{path}: {where}: {key} '{value}' would leave the -o folder; give a plain name")
    if not _slug(value, fallback=""):
        raise BadInput(f"{path}: {where}: {key} '{value}' has no letters or digits to name a file")


def _check_clashes(path: Path, items: list[Item]) -> None:
    """No two items write the same file (audio, sidecar); a playlist is shared only within its album."""
    owners: dict[str, Item] = {}
    for item in items:
        for file in item.files()[:-1]:
            other = owners.get(file)
            if other is not None:
                hint = ("put {format} in the name pattern: sidecars are named after the audio file without "
                        "its extension" if other.format != item.format and other.key != item.key
                        else "make the name pattern include what differs")
                raise BadInput(f"{path}: output name {file} used more than once, by {other.label} and "
                               f"{item.label}: {hint}")
            owners[file] = item
    for item in items:
        other = owners.get(item.playlist)
        if other is not None:
            raise BadInput(f"{path}: output name {item.playlist} used more than once, by the playlist of album "
                           f"'{item.album}' and {other.label}")


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
    _check_pattern(path, where, pattern)
    count = math.prod(len(values) for values in axes.values())
    if count > MAX_ITEMS:
        raise BadInput(f"{path}: {where}: {count} combinations, more than {MAX_ITEMS}; split the matrix")
    for key, values in axes.items():
        for value in values:
            _check_options(path, f"{where}: {key}", {key: value})
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
        items.append(dataclasses.replace(_item(path, {**entry, "name": name}, defaults, where), variant=variant,
                                         where=f"{where} ({variant})" if variant else where))
    return items


def _check_pattern(path: Path, where: str, pattern: str) -> None:
    """A name pattern names fields, plainly: no format specs or conversions (no huge widths)."""
    try:
        fields = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise BadInput(f"{path}: {where}: name pattern '{pattern}': {exc}") from None
    for _, field_name, spec, conversion in fields:
        if field_name is None:
            continue
        if field_name not in ITEM_KEYS or spec or conversion:
            raise BadInput(f"{path}: {where}: name pattern '{pattern}': use plain fields such as {{practice}}, "
                           f"{{minutes}}, {{ambient}}, {{voice}}, {{format}}")


def _shown(key: str, value: Any) -> str:
    return f"{value:g} min" if key == "minutes" and isinstance(value, (int, float)) else str(value)


def _slug(text: str, fallback: str = "item") -> str:
    """A file name from any text: lower case, NFC, letters of every script kept; others become `-`."""
    text = unicodedata.normalize("NFC", clean_text(text)).lower()
    return re.sub(r"[^\w.-]+", "-", text, flags=re.UNICODE).strip("-.") or fallback


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
        value = str(item.options.get(option) or "").split(":", 1)[-1]
        local = Path(value) if value else None  # "pyttsx3:" names no file (not the current folder)
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


class BuildInterrupted(GuidedAudioError):
    """Ctrl-C or SIGTERM during a build; exit status 130. What was built is recorded."""

    exit_status = ExitStatus.INTERRUPTED


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
    publish.check_targets([root / LOCK], option="-o")
    check_containment(manifest, root)
    if dry_run:  # writes nothing: no folder, no lock, no clean-up
        state = _read_state(root)
        for item, _ in _plan(manifest, root, state, report, on_event, full_check=True):
            on_event("would build", item.name, str(item.path(root)))
        return report
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        publish.remove_stale_partials(root, recursive=True)
        state = _read_state(root)
        current = {item.key for item in manifest.items}
        todo = _plan(manifest, root, state, report, on_event, full_check=False)
        try:
            with contextlib.closing(_render_all(todo, root, jobs, cache_dir)) as results:
                for item, key, outcome in results:
                    if isinstance(outcome, str):
                        report.failed.append((item.name, outcome))
                        on_event("failed", item.name, outcome)
                        continue
                    pairs = [(Path(temp), Path(target)) for temp, target in outcome.pop("publish")]
                    with publish.shielded():  # published and recorded together, or neither
                        try:
                            publish.commit(pairs, option=item.label)
                        except GuidedAudioError as exc:
                            report.failed.append((item.name, str(exc)))
                            on_event("failed", item.name, str(exc))
                            continue
                        built = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                        state[item.key] = {"name": item.name, "key": key, "built": built, **outcome}
                        _write_state(root, state)
                    report.built.append(item.name)
                    on_event("built", item.name, str(item.path(root)))
        except KeyboardInterrupt:
            with publish.shielded():
                _write_outputs(manifest, root, {k: v for k, v in state.items() if k in current})
            count = len(report.built)
            raise BuildInterrupted(
                f"interrupted: {count} item{'s' if count != 1 else ''} built and recorded before the interrupt"
                + (f" ({', '.join(report.built[:3])}{', ...' if count > 3 else ''})" if count else "")
                + "; build again to finish") from None
        _write_outputs(manifest, root, {k: v for k, v in state.items() if k in current})
    return report


def check_containment(manifest: Manifest, root: Path) -> None:
    """Every file an item writes resolves to a place inside the library folder (symlinks followed)."""
    top = root.resolve()
    for item in manifest.items:
        for file in item.files():
            resolved = (root / file).resolve()
            if resolved != top and top not in resolved.parents:
                raise BadInput(f"{manifest.path}: {item.label}: {file} would be written outside the -o folder "
                               f"{root} (to {resolved})")


def _plan(
    manifest: Manifest, root: Path, state: dict[str, dict[str, Any]], report: Report,
    on_event: Callable[[str, str, str], None], *, full_check: bool,
) -> list[tuple[Item, str]]:
    """The items to build, each checked the way a render would check it; the rest reported."""
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
            continue
        problem = check_item(item, root, full=full_check)
        if problem is not None:
            report.failed.append((item.name, problem))
            on_event("failed", item.name, problem)
            continue
        todo.append((item, key))
    return todo


def check_item(item: Item, root: Path, *, full: bool) -> str | None:
    """Why the item would fail to render, found without rendering or writing; None if it would not.

    Its settings, minutes and session files are loaded as a render loads them and its
    output files are checked; `full` also renders and parses the script and checks its bounds.
    """
    from guided_audio.render import resolve

    try:
        publish.check_targets([root / file for file in item.files()], option=item.label)
        program, settings = resolve(_request(item, root, None))  # as a render resolves it, before any work
        if full:
            program.check_bounds(program.scripts(), settings.rate)
    except GuidedAudioError as exc:
        return str(exc)
    except OSError as exc:
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return None


def _request(item: Item, root: Path, cache_dir: str | None) -> RenderRequest:
    """The render request of an item, as a worker renders it."""
    from guided_audio.render import RenderRequest, TagOverrides

    options = item.options
    cache: dict[str, Any] = {"cache_dir": Path(cache_dir)} if cache_dir else {}
    return RenderRequest(
        practice=item.target, settings=item.settings, minutes=options.get("minutes"),
        voice=options.get("voice"), second_voice=options.get("second_voice"), rate=options.get("rate"),
        ambient=options.get("ambient"), format=options.get("format", "mp3"), output=item.path(root),
        loudness=options.get("loudness"), tags=TagOverrides(title=item.title, album=item.album,
                                                            artist=options.get("artist")),
        **cache,
    )


def _render_all(
    todo: list[tuple[Item, str]], root: Path, jobs: int, cache_dir: Path | None
) -> Generator[tuple[Item, str, dict[str, Any] | str], None, None]:
    """Render items in worker processes; yield each as it finishes (a summary dict, or the error).

    A summary's "publish" holds the (temp, target) pairs the worker left for this process to
    rename into place. When the consumer stops early (an interrupt), the workers are told to
    stop, and the temporary files of results not taken are removed.
    """
    if not todo:
        return
    # Spawned, not forked: a worker must not inherit the folder's lock, and each one
    # ends itself if the build is killed (see _worker_init).
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context, initializer=_worker_init,
                               initargs=(os.getpid(),))
    running: dict[Future[dict[str, Any] | str], tuple[Item, str]] = {}
    handed: list[Any] = []  # the temporary files of the result last handed over
    try:
        for item, key in todo:
            running[pool.submit(render_item, item, str(root), str(cache_dir) if cache_dir else None)] = (item, key)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                item, key = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # a worker that died: report it, go on
                    outcome = f"{type(exc).__name__}: {exc}"
                handed = list(outcome.get("publish", [])) if isinstance(outcome, dict) else []
                yield item, key, outcome
    except BaseException:
        _stop(pool, running)
        _remove_temps(handed)  # interrupted before it was published (once published, its temps are gone)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop(pool: ProcessPoolExecutor, running: dict[Future[dict[str, Any] | str], tuple[Item, str]]) -> None:
    """Stop the workers: no new items, a render in progress interrupted, every temporary file removed."""
    for future in running:
        future.cancel()
    processes = dict(getattr(pool, "_processes", None) or {})
    for pid in processes:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    pool.shutdown(wait=True, cancel_futures=True)
    for future in running:
        if future.done() and not future.cancelled() and future.exception() is None:
            result = future.result()
            if isinstance(result, dict):
                _remove_temps(result.get("publish", []))


def _remove_temps(pairs: list[Any]) -> None:
    """Remove the temporary files of (temp, target) pairs a worker handed over; gone ones are skipped."""
    for temp, _ in pairs:
        with contextlib.suppress(OSError):
            Path(temp).unlink()


# -- in a worker process ----------------------------------------------------------------------

_worker = threading.local()
_stopping = False


def _worker_init(parent: int) -> None:
    """In a worker: stop on SIGTERM, leave Ctrl-C to the build process, end when the build is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the build process decides, and tells us with SIGTERM
    signal.signal(signal.SIGTERM, _worker_sigterm)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.05)
        publish.remove_outstanding()  # what the build process will never publish
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker_sigterm(signum: int, frame: FrameType | None) -> None:
    global _stopping
    _stopping = True
    if getattr(_worker, "busy", False):
        raise KeyboardInterrupt  # the render removes its temporary files on the way out


def render_item(item: Item, root: str, cache_dir: str | None) -> dict[str, Any] | str:
    """Render one item (in a worker process); a summary for the index, or the error's message.

    The rendered files stay temporary: the summary's "publish" lists them for the build
    process, which renames them into place when it records the item.
    """
    from guided_audio.render import render

    if _stopping:
        return "interrupted"
    _worker.busy = True
    try:
        with publish.handing_off() as pairs:
            result = render(_request(item, Path(root), cache_dir))
    except GuidedAudioError as exc:
        return str(exc)
    except KeyboardInterrupt:
        return "interrupted"
    finally:
        _worker.busy = False
    temps = {target: temp for temp, target in pairs}
    audio = result.audio
    title = _title_of(temps.get(result.sidecar) if result.sidecar else None, audio)
    return {
        "file": audio.relative_to(root).as_posix(),
        "album": clean_text(item.album),
        "title": clean_text(item.title or (f"{title} ({item.variant})" if item.variant else title)),
        "duration": round(result.timeline.seconds, 3),
        "bytes": temps.get(audio, audio).stat().st_size,
        "format": item.format.name,
        "sidecars": {kind: p.relative_to(root).as_posix() for kind, p in result.sidecars.items()},
        "warnings": list(result.warnings),
        "publish": [(str(temp), str(target)) for temp, target in pairs],
    }


def _title_of(sidecar: Path | None, audio: Path) -> str:
    try:
        assert sidecar is not None
        title: str = json.loads(sidecar.read_text(encoding="utf-8"))["title"]
        return title
    except (AssertionError, OSError, ValueError, KeyError, TypeError):
        return audio.stem


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
    except (OSError, UnicodeDecodeError):
        pass
    publish.atomic_write_text(path, text, option="-o")


# -- playlists, index and feed ----------------------------------------------------------------


def _write_outputs(manifest: Manifest, root: Path, state: dict[str, dict[str, Any]]) -> None:
    entries = [(key, state[key]) for key in (i.key for i in manifest.items) if key in state]
    albums: dict[str, list[dict[str, Any]]] = {}
    for _, entry in entries:
        albums.setdefault(entry["album"], []).append(entry)
    for album, rows in albums.items():
        folder = _slug(album)
        lines = ["#EXTM3U", f"#PLAYLIST:{clean_text(album)}"]
        for row in rows:
            lines += [f"#EXTINF:{round(row['duration'])},{clean_text(str(row['title']))}",
                      PurePosixPath(row["file"]).relative_to(folder).as_posix()]
        _atomic(root / folder / f"{folder}.m3u8", "\n".join(lines) + "\n")
    index = {"title": manifest.title, "description": manifest.description, "generator": f"guided_audio {__version__}",
             "items": [{"id": key, **entry} for key, entry in entries]}
    _atomic(root / "index.json", json.dumps(index, indent=1, ensure_ascii=False) + "\n")
    if manifest.feed is not None:
        _atomic(root / "feed.xml", feed_xml(manifest, root, entries))


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
