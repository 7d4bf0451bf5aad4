"""Cover art: a calm, legible square image with the practice's title, made for each practice."""

from __future__ import annotations

import hashlib
import io
import textwrap
from pathlib import Path

from guided_audio.errors import BadInput

SIZE = 1400  # podcast directories and players ask for square art of 1400 to 3000 pixels
# Soft evening colours; a practice always gets the same pair, picked from its name.
PALETTES = (
    ((46, 58, 89), (122, 104, 150)),
    ((38, 70, 83), (115, 150, 140)),
    ((70, 52, 78), (176, 128, 140)),
    ((44, 62, 80), (150, 140, 110)),
    ((58, 74, 66), (160, 170, 140)),
)


def generate(title: str, subtitle: str, key: str, size: int = SIZE) -> bytes:
    """A PNG cover: a vertical gradient, a soft circle, and the title in large type."""
    from PIL import Image, ImageDraw, ImageFont

    top, bottom = PALETTES[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(PALETTES)]
    unit = size / 1000  # the layout is drawn on a 1000-unit square, scaled to the size asked for
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    for row in range(size):
        t = row / (size - 1)
        draw.line([(0, row), (size, row)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
    glow = tuple(min(255, c + 40) for c in bottom)
    draw.ellipse((size * 0.3, size * 0.14, size * 0.7, size * 0.54), outline=glow, width=round(6 * unit))
    title_font = ImageFont.load_default(size=round(86 * unit))
    small_font = ImageFont.load_default(size=round(40 * unit))
    lines = textwrap.wrap(title, width=18)[:3]
    y = size * 0.6
    for line in lines:
        width = draw.textlength(line, font=title_font)
        draw.text(((size - width) / 2, y), line, font=title_font, fill=(250, 246, 240))
        y += 100 * unit
    width = draw.textlength(subtitle, font=small_font)
    draw.text(((size - width) / 2, size * 0.935), subtitle, font=small_font, fill=(235, 228, 220))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def cached(title: str, subtitle: str, key: str, cache_dir: Path) -> bytes:
    """`generate`, kept in the cache folder: a render with a cover made before needs no imaging library.

    The entry is named by everything that changes the image (the words, the size, the version
    of the library that drew it); a cache that cannot be read or written is simply not used.
    """
    from importlib import metadata

    try:
        drawer = metadata.version("pillow")
    except metadata.PackageNotFoundError:
        drawer = "?"
    name = hashlib.sha256(repr((title, subtitle, key, SIZE, PALETTES, drawer, 2)).encode()).hexdigest()
    path = cache_dir / "covers" / f"{name}.png"
    try:
        data = path.read_bytes()
        if data.startswith(b"\x89PNG"):
            return data
    except OSError:
        pass
    data = generate(title, subtitle, key)
    try:
        from guided_audio.publish import write_through

        write_through(path, data, cache_dir / "covers" / ".tmp")
    except OSError:
        pass
    return data


def load(path: Path) -> tuple[bytes, str]:
    """A user's cover image as (bytes, mime type); PNG and JPEG are what players show."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"--cover {path}: {exc.strerror}") from None
    if data.startswith(b"\x89PNG"):
        return data, "image/png"
    if data.startswith(b"\xff\xd8"):
        return data, "image/jpeg"
    raise BadInput(f"--cover {path}: not a PNG or JPEG image")
