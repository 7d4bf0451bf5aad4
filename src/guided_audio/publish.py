"""Publishing files: whole or not at all, checked before the work, cleaned up after a crash.

Every file the tool writes goes through here:

* `Publisher` writes a set of targets (an audio file and its sidecars, say) to temporary
  files beside them and renames them into place together. If one rename fails, the ones
  already renamed are rolled back (what was there before is restored, new files are
  removed) and every temporary file is removed: all or nothing.
* `check_targets` and `check_cover` find, before any rendering, what would make the
  publishing fail: a folder that cannot be created, a folder in the way of a file, a
  name longer than the file system allows, a cover image too big, too large or broken.
  Their errors are `OutputError`/`BadInput` (exit status 2) naming the option given.
* `atomic_write_bytes` / `atomic_write_text` replace one file whole.
* Temporary files are named `.NAME.partial-PID-RANDOM.EXT`: the process id says whose
  they are, so `remove_stale_partials` removes only those whose process is gone.
* `install_signal_handlers` makes SIGTERM an interrupt like Ctrl-C (KeyboardInterrupt,
  exit status 130), and `shielded` holds interrupts back while a set of files is being
  renamed into place and recorded, so an interrupt never leaves half a set.
* `handing_off` lets a build worker render without publishing: its publishers hand their
  finished temporary files to the build process, which publishes them with `commit` and
  records them in its state file in one step.
* `clean_text` removes control characters from text written into captions, tags,
  playlists and feeds.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import secrets
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType

from guided_audio.errors import BadInput, OutputError

PARTIAL = re.compile(r"^\..*\.partial-(\d+)(?:-[0-9a-z]+)?(?:\..*)?$")
MAX_COVER_BYTES = 10 * 1024 * 1024  # FLAC picture blocks hold at most 16 MiB; players want far less
MAX_COVER_PIXELS = 3000 * 3000

# -- temporary files and their owners ---------------------------------------------------------


def temp_name(target: Path, tag: str = "") -> Path:
    """A temporary file beside `target`: `.NAME.partial-PID-RANDOM.EXT`, short enough for the folder."""
    suffix = target.suffix if len(target.suffix) <= 16 else ""
    marker = f".partial-{os.getpid()}-{secrets.token_hex(4)}{tag}{suffix}"
    room = max(1, _name_max(target.parent) - len(marker.encode()) - 1)
    stem = target.stem.encode()[:room].decode("utf-8", "ignore") or "f"
    return target.with_name(f".{stem}{marker}")


def owner(path: Path) -> int | None:
    """The process id a temporary file is named after, or None if it is not one of ours."""
    match = PARTIAL.match(path.name)
    return int(match.group(1)) if match else None


def alive(pid: int) -> bool:
    """Whether a process with this id runs (a zombie holds no files: it counts as gone)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def remove_stale_partials(folder: Path, *, recursive: bool = False) -> list[Path]:
    """Remove the temporary files in `folder` whose process is gone; the removed paths."""
    removed: list[Path] = []
    try:
        candidates = list(folder.rglob(".*.partial-*") if recursive else folder.glob(".*.partial-*"))
    except OSError:
        return removed
    for path in candidates:
        pid = owner(path)
        if pid is None or alive(pid):
            continue
        with contextlib.suppress(OSError):
            if path.is_file() or path.is_symlink():
                path.unlink()
                removed.append(path)
    return removed


# -- what can be known before the work ----------------------------------------------------


@functools.lru_cache(maxsize=256)
def _name_max(folder: Path) -> int:
    """The longest file name (in bytes) the file system of `folder` (or its nearest ancestor) allows."""
    for candidate in (folder, *folder.parents):
        try:
            return int(os.pathconf(candidate, "PC_NAME_MAX"))
        except (OSError, ValueError):
            continue
    return 255


def check_names(targets: Sequence[Path], option: str = "-o") -> None:
    """Raise OutputError (exit 2) if any part of a target's path is too long for the file system."""
    for target in targets:
        limit = _name_max(target.parent)
        for part in target.parts:
            size = len(part.encode("utf-8", "surrogateescape"))
            if part not in ("/", "") and size > limit:
                shown = f"{option} {target}" if option else str(target)
                short = part if len(part) <= 40 else part[:37] + "..."
                raise OutputError(f"{shown}: the name '{short}' is {size} bytes long; this file system allows "
                                  f"{limit}")


def check_targets(targets: Sequence[Path], option: str = "-o", *,
                  folders: dict[Path, str | None] | None = None) -> None:
    """Raise OutputError (exit 2) if any target could not be published; writes nothing.

    Checked: every name fits the file system, no folder is in the way of a file, every
    folder on the way either exists as a folder or can be created in a writable one.
    `folders` keeps what was found of each folder, for many targets checked in a row.
    """
    check_names(targets, option)
    for target in targets:
        shown = f"{option} {target}" if option else str(target)
        if _safely(target.is_dir):
            raise OutputError(f"{shown}: a folder is in the way of the file {target.name}")
        if folders is not None and target.parent in folders:
            problem = folders[target.parent]
        else:
            problem = folder_problem(target.parent)
            if folders is not None:
                folders[target.parent] = problem
        if problem:
            raise OutputError(f"{shown}: {problem}")


def folder_problem(folder: Path) -> str | None:
    """Why files could not be written in `folder` (created if need be); None if they could."""
    existing = next((p for p in (folder, *folder.parents) if _safely(p.exists)), Path("."))
    if not _safely(existing.is_dir):
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"folder {existing} is not writable"
    return None


def _safely(test: Callable[[], bool]) -> bool:
    try:
        return test()
    except OSError:
        return False


def check_cover(path: Path, option: str = "--cover") -> None:
    """Raise BadInput (exit 2) unless `path` is a whole PNG or JPEG of a size players take."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadInput(f"{option} {path}: {exc.strerror}") from None
    if size > MAX_COVER_BYTES:
        raise BadInput(f"{option} {path}: {size / 1e6:.1f} MB is too big for a cover "
                       f"(at most {MAX_COVER_BYTES // (1024 * 1024)} MB)")
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                kind, (width, height) = image.format, image.size
                if kind not in ("PNG", "JPEG"):
                    raise BadInput(f"{option} {path}: a {kind} image; use a PNG or JPEG")
                if width * height > MAX_COVER_PIXELS:
                    raise BadInput(f"{option} {path}: {width}x{height} pixels is too large for a cover "
                                   "(at most 3000x3000)")
                image.verify()
            with Image.open(path) as image:  # verify() does not decode JPEG data: load it too
                image.load()
    except BadInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput(f"{option} {path}: too many pixels for a cover (at most 3000x3000)") from None
    except Exception as exc:  # Pillow raises many kinds for a broken file
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"{option} {path}: not a PNG or JPEG image, or a broken one ({detail})") from None


# -- interrupts ---------------------------------------------------------------------------


_shield = threading.local()
_pending: list[int] = []


def _handler(signum: int, frame: FrameType | None) -> None:
    if getattr(_shield, "depth", 0) > 0:
        _pending.append(signum)  # raised when the shielded step ends
        return
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGTERM (and Ctrl-C) raise KeyboardInterrupt, held back inside `shielded` steps."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, _handler)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold back an interrupt until the block ends (a few renames and a state file)."""
    _shield.depth = getattr(_shield, "depth", 0) + 1
    try:
        yield
    finally:
        _shield.depth -= 1
        if _shield.depth == 0 and _pending and threading.current_thread() is threading.main_thread():
            _pending.clear()
            raise KeyboardInterrupt


# -- publishing ---------------------------------------------------------------------------


class PublishError(OutputError):
    """A set of files could not be renamed into place; nothing of it was published."""


def commit(pairs: Sequence[tuple[Path, Path]], option: str = "-o") -> None:
    """Rename each (temp, target) into place, all or nothing; temps are gone afterwards.

    A target that existed is kept under a hard link (or a temporary name) until every
    rename has succeeded, so a failure restores it.
    """
    done: list[tuple[Path, Path | None]] = []  # (target, its backup or None if it was new)
    with shielded():
        try:
            for temp, target in pairs:
                backup = None
                if target.exists() and not target.is_dir():
                    backup = temp_name(target, ".old")
                    try:
                        os.link(target, backup)
                    except OSError:
                        os.replace(target, backup)
                done.append((target, backup))
                os.replace(temp, target)
        except OSError as exc:
            _roll_back(done)
            for temp, _ in pairs:
                with contextlib.suppress(OSError):
                    temp.unlink()
            failed = exc.filename2 or exc.filename or ""
            why = "a folder is in the way" if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST) \
                else (exc.strerror or str(exc))
            target_name = next((t for tmp, t in pairs if str(tmp) == str(exc.filename)), Path(str(failed)))
            raise PublishError(f"{option} {pairs[0][1]}: cannot write {target_name} ({why}); "
                               "nothing was published") from None
        for _, backup in done:
            if backup is not None:
                with contextlib.suppress(OSError):
                    backup.unlink()


def _roll_back(done: list[tuple[Path, Path | None]]) -> None:
    for target, backup in reversed(done):
        with contextlib.suppress(OSError):
            if backup is not None:
                os.replace(backup, target)
            elif target.exists() and not target.is_dir():
                target.unlink()


class _HandOff(threading.local):
    def __init__(self) -> None:
        self.pairs: list[tuple[Path, Path]] | None = None


_hand_off = _HandOff()
_outstanding: set[Path] = set()  # temps of this process not yet published or removed
_outstanding_lock = threading.Lock()


@contextlib.contextmanager
def handing_off() -> Iterator[list[tuple[Path, Path]]]:
    """Publishers in this block keep their finished temps; the (temp, target) pairs are yielded."""
    pairs: list[tuple[Path, Path]] = []
    previous, _hand_off.pairs = _hand_off.pairs, pairs
    try:
        yield pairs
    except BaseException:
        for temp, _ in pairs:
            with contextlib.suppress(OSError):
                temp.unlink()
        raise
    finally:
        _hand_off.pairs = previous


def remove_outstanding() -> None:
    """Remove every temporary file of this process (a worker whose build is gone)."""
    with _outstanding_lock:
        paths = list(_outstanding)
        _outstanding.clear()
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def forget(temps: Sequence[Path]) -> None:
    """Temps that were published or removed by another process."""
    with _outstanding_lock:
        _outstanding.difference_update(temps)


class Publisher:
    """Writes go to temporary files beside their targets and are renamed into place together.

    Constructing one checks the targets (and a cover image to embed) before any work, and
    removes stale temporary files of dead processes from the targets' folders.
    """

    def __init__(self, *targets: Path, cover: Path | None = None, option: str = "-o"):
        self.targets = targets
        self.option = option
        check_targets(targets, option)
        if cover is not None:
            check_cover(cover)
        for folder in dict.fromkeys(t.parent for t in targets):
            remove_stale_partials(folder)
        self.temps = {t: temp_name(t) for t in targets}

    def temp(self, target: Path) -> Path:
        return self.temps[target]

    def __enter__(self) -> Publisher:
        for target in self.targets:  # created only now, so a render that fails early leaves nothing
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"{self.option} {target}: cannot create folder {target.parent} "
                                  f"({exc.strerror})") from None
        with _outstanding_lock:
            _outstanding.update(self.temps.values())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        pairs = [(temp, target) for target, temp in self.temps.items()]
        if kind is None:
            missing = [t for t, _ in pairs if not t.exists()]
            if missing:
                self._discard()
                raise OutputError(f"{self.option} {self.targets[0]}: {missing[0].name} was not written")
            if _hand_off.pairs is not None:
                _hand_off.pairs.extend(pairs)  # the build process publishes them
                return
            try:
                commit(pairs, self.option)
            finally:
                forget([t for t, _ in pairs])
        else:
            self._discard()

    def _discard(self) -> None:
        for temp in self.temps.values():
            with contextlib.suppress(OSError):
                temp.unlink()
        forget(list(self.temps.values()))


def atomic_write_bytes(path: Path, data: bytes, option: str = "") -> None:
    """Replace `path` with `data` whole: a temp file beside it renamed into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{option + ' ' if option else ''}{path}: cannot create folder {path.parent} "
                          f"({exc.strerror})") from None
    temp = temp_name(path)
    with _outstanding_lock:
        _outstanding.add(temp)
    try:
        temp.write_bytes(data)
        commit([(temp, path)], option)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
        forget([temp])


def write_through(path: Path, data: bytes, temp_folder: Path) -> None:
    """Write `data` to `path` whole, through a temp file in `temp_folder` named by our process id.

    For caches: readers in other processes never see half a file, a writer's leftovers are
    found in one folder (the cache sweeps it by process id), and an OSError is left to the
    caller, for whom a failed write may be no error at all.
    """
    temp_folder.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=temp_folder, prefix=f"{os.getpid()}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def seal(magic: bytes, header: bytes, payload: bytes) -> bytes:
    """A cache entry: `magic`, one header line, the payload, and a SHA-256 of all that (see `unseal`)."""
    body = magic + header + b"\n" + payload
    return body + hashlib.sha256(body).digest()


def unseal(data: bytes, magic: bytes) -> tuple[bytes, memoryview] | None:
    """The header line and the payload of an entry `seal` made, or None unless it is whole and unchanged."""
    size = hashlib.sha256().digest_size
    if len(data) < len(magic) + size or not data.startswith(magic):
        return None
    body = memoryview(data)[:-size]
    if hashlib.sha256(body).digest() != data[-size:]:
        return None
    end = data.find(b"\n", len(magic), len(body))
    if end < 0:
        return None
    return data[len(magic) : end], body[end + 1 :]


def remove_stale_temp_files(temp_folder: Path) -> None:
    """Remove the temp files `write_through` left in `temp_folder` for writers whose process is gone."""
    try:
        names = os.listdir(temp_folder)
    except OSError:
        return
    for name in names:
        pid = name.split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            with contextlib.suppress(OSError):
                (temp_folder / name).unlink()


def atomic_write_text(path: Path, text: str, option: str = "") -> None:
    """Replace `path` with `text` (UTF-8) whole."""
    atomic_write_bytes(path, text.encode("utf-8"), option)


# -- text hygiene -------------------------------------------------------------------------

_BREAKS = re.compile(r"\r\n|[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: str, *, newlines: bool = False) -> str:
    """`text` without control characters (C0 but tab and newline, DEL, C1).

    Line breaks of any kind become a newline if `newlines`, else a space (a title, a
    playlist entry); a tab becomes a space unless newlines are kept.
    """
    text = _BREAKS.sub("\n" if newlines else " ", text)
    if not newlines:
        text = text.replace("\t", " ")
    return _CONTROLS.sub("", text)
