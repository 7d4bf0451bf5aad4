"""The library manifest: its tables read and checked, its matrices expanded into items.

Every name and album is checked to stay inside the library folder, and no two items may
write the same file; see the package's docstring for the rules.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import re
import string
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from guided_audio import encoding, options, sidecars
from guided_audio.build.feed import check as check_feed
from guided_audio.errors import BadInput, did_you_mean
from guided_audio.publish import clean_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ITEM_KEYS = {"name", "album", "title", "practice", "session", "minutes", "voice", "second_voice", "rate",
             "ambient", "format", "settings", "artist"}
DEFAULT_KEYS = ITEM_KEYS - {"name", "practice", "session", "title", "settings"} | {"loudness"}
MAX_ITEMS = 20000  # items of one manifest


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

    @functools.cached_property
    def key(self) -> str:
        """The item's place in the library (album folder, name, extension): unique in a manifest."""
        return f"{slug(self.album)}/{self.name}{self.format.extension}"

    def path(self, root: Path) -> Path:
        return root / self.key

    @functools.cached_property
    def playlist(self) -> str:
        """The album's playlist, relative to the library folder."""
        return f"{slug(self.album)}/{slug(self.album)}.m3u8"

    def files(self) -> list[str]:
        """Every file the item writes, relative to the library folder: audio, sidecars, playlist."""
        return list(self._files)

    @functools.cached_property
    def _files(self) -> tuple[str, ...]:
        audio = PurePosixPath(self.key)
        return (self.key, *(str(sidecars.path_for(Path(audio), kind).as_posix()) for kind in sidecars.ALL),
                self.playlist)

    @property
    def label(self) -> str:
        """How messages name the item: its manifest entry and name."""
        return f"{self.where} '{self.name}'" if self.where else f"'{self.name}'"


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
    feed = check_feed(path, _table(path, "[feed]", doc["feed"])) if "feed" in doc else None
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
                    feed)


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
    name = str(entry.get("name") or slug(Path(target).stem))
    album = str(entry.get("album", defaults.get("album", "Library")))
    _contained(path, where, "name", name)
    _contained(path, where, "album", album)
    options = {k: v for k, v in {**defaults, **entry}.items() if k in DEFAULT_KEYS - {"album"}}
    if options.get("format", "mp3") not in encoding.FORMATS:
        raise BadInput(f"{path}: {where}: unknown format '{options['format']}'")
    settings = {k: _setting(v) for k, v in _table(path, f"{where}: settings", entry.get("settings", {})).items()}
    return Item(slug(name), album, entry.get("title"), target, settings, options, where=where)


def _contained(path: Path, where: str, key: str, value: str) -> None:
    """A name or album must name a place inside the library folder: no absolute path, no `..`."""
    problem = _leaves_folder(value)
    if problem:
        raise BadInput(f"{path}: {where}: {key} '{value}' {problem}")


@functools.lru_cache(maxsize=4096)
def _leaves_folder(value: str) -> str | None:
    parts = [*PurePosixPath(value).parts, *PureWindowsPath(value).parts]
    if (PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or value.startswith("~")
            or any(p.strip() and set(p.strip()) == {"."} for p in parts)):
        return "would leave the -o folder; give a plain name"
    if not slug(value, fallback=""):
        return "has no letters or digits to name a file"
    return None


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
        fields = {k: _field(k, str(v)) for k, v in entry.items() if k != "settings"}
        try:
            name = pattern.format(**{**{k: "" for k in ITEM_KEYS}, **fields})
        except (KeyError, IndexError, ValueError) as exc:
            raise BadInput(f"{path}: {where}: name pattern '{pattern}': {exc}") from None
        variant = ", ".join(_shown(k, v) for k, v in zip(axes, combo) if k not in ("practice", "session"))
        items.append(dataclasses.replace(_item(path, {**entry, "name": name}, defaults, where), variant=variant,
                                         where=f"{where} ({variant})" if variant else where))
    return items


@functools.lru_cache(maxsize=4096)
def _field(key: str, value: str) -> str:
    """A value as it appears in a name pattern: a slug (of a template or session file's stem)."""
    return slug(Path(value).stem if key in ("practice", "session") else value)


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


@functools.lru_cache(maxsize=4096)
def slug(text: str, fallback: str = "item") -> str:
    """A file name from any text: lower case, NFC, letters of every script kept; others become `-`."""
    text = unicodedata.normalize("NFC", clean_text(text)).lower()
    return re.sub(r"[^\w.-]+", "-", text, flags=re.UNICODE).strip("-.") or fallback


# -- what an item depends on ------------------------------------------------------------------
