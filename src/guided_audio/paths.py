"""Where things live: the built-in data (installed beside the package, or in a source checkout),
and the cache folder a render uses."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from contextvars import ContextVar
from importlib import resources
from pathlib import Path

_CACHE: ContextVar[Path | None] = ContextVar("guided_audio_cache", default=None)


@functools.cache
def data_folder(package: str, checkout_folder: str) -> Path:
    """The folder of an installed data package, else the checkout's top-level folder."""
    try:
        folder = Path(str(resources.files(package)))
        if folder.is_dir():
            return folder
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - depends on the install
        pass
    return Path(__file__).resolve().parents[2] / checkout_folder


def default_cache_dir() -> Path:
    """Where caches go by default: $GUIDED_AUDIO_CACHE, else the user's cache folder."""
    if os.environ.get("GUIDED_AUDIO_CACHE"):
        return Path(os.environ["GUIDED_AUDIO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "guided_audio"


def cache_dir() -> Path:
    """The cache folder in use: a render's own (`--cache-dir`, see `using_cache`), else the default."""
    return _CACHE.get() or default_cache_dir()


@contextlib.contextmanager
def using_cache(folder: Path) -> Iterator[None]:
    """Within the block (and the contexts copied from it), every cache goes into `folder`."""
    token = _CACHE.set(folder)
    try:
        yield
    finally:
        _CACHE.reset(token)
