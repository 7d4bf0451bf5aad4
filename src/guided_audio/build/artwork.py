"""The feed's channel art: the manifest's own square image, or one drawn from the feed's title.

Podcast directories and players want square art of 1400 to 3000 pixels, PNG or JPEG. A
manifest's `[feed] image` is checked against that when the manifest is read; without one,
a cover is drawn the way the episodes' covers are. Either is written into the library
folder as `cover.png` (or `cover.jpg`), whole, and only when its bytes change.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from guided_audio import cover, publish
from guided_audio.build.state import write_if_changed
from guided_audio.errors import BadInput

MIN_SIDE, MAX_SIDE = 1400, 3000
NAME = "cover"


def check_image(manifest: Path, value: str) -> Path:
    """The `[feed] image` file (relative to the manifest), checked: a square PNG or JPEG of 1400 to 3000 px."""
    path = manifest.parent / value
    where = f"{manifest}: [feed] image"
    if not path.is_file():
        raise BadInput(f"{where} {path}: no such file")
    publish.check_cover(path, option=where)
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    if width != height or not MIN_SIDE <= width <= MAX_SIDE:
        raise BadInput(f"{where} {path}: {width}x{height} pixels; channel art is a square of {MIN_SIDE} to "
                       f"{MAX_SIDE} pixels")
    return path.resolve()


def write(title: str, key: str, image: str | None, root: Path, cache_dir: Path) -> str:
    """Write the channel art into the library folder; its name there.

    `image` is a checked file to copy (see `check_image`); without one, a cover is drawn
    from `title`, its colours picked by `key`, and kept in the cache like the episodes' covers.
    """
    if image:
        try:
            data = Path(image).read_bytes()
        except OSError as exc:
            raise BadInput(f"[feed] image {image}: {exc.strerror}") from None
        name = NAME + (".png" if data.startswith(b"\x89PNG") else ".jpg")
    else:
        data, name = cover.cached(title, "guided_audio", key, cache_dir), NAME + ".png"
    write_if_changed(root / name, data)
    for other in (NAME + ".png", NAME + ".jpg"):
        if other != name:  # the art of an earlier build in the other format: the feed no longer names it
            with contextlib.suppress(OSError):
                (root / other).unlink()
    return name
