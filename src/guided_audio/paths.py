"""Where the built-in data lives: installed beside the package, or in a source checkout."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path


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
