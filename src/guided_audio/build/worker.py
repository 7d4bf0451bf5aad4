"""One item rendered in a worker process: the render request, and the summary handed back.

A worker renders into temporary files and does not publish them: the summary's "publish"
lists (temp, target) pairs for the build process, which renames them into place when it
records the item (see `guided_audio.build.build`).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from guided_audio import publish
from guided_audio.build.manifest import Item
from guided_audio.errors import GuidedAudioError
from guided_audio.publish import clean_text

if TYPE_CHECKING:
    from guided_audio.render import RenderRequest


def request(item: Item, root: Path, cache_dir: str | None) -> RenderRequest:
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


_worker = threading.local()
_stopping = False


def init(parent: int) -> None:
    """In a worker: stop on SIGTERM, leave Ctrl-C to the build process, end when the build is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the build process decides, and tells us with SIGTERM
    signal.signal(signal.SIGTERM, _on_sigterm)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.05)
        publish.remove_outstanding()  # what the build process will never publish
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
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
            result = render(request(item, Path(root), cache_dir))
    except GuidedAudioError as exc:
        return str(exc)
    except KeyboardInterrupt:
        return "interrupted"
    finally:
        _worker.busy = False
    temps = {target: temp for temp, target in pairs}
    audio = result.audio
    title = title_of(temps.get(result.sidecar) if result.sidecar else None, audio)
    return {
        "file": audio.relative_to(root).as_posix(),
        "album": clean_text(item.album),
        "title": clean_text(item.title or (f"{title} ({item.variant})" if item.variant else title)),
        "duration": round(result.timeline.seconds, 3),
        "bytes": temps.get(audio, audio).stat().st_size,
        "format": item.format.name,
        "sidecars": {kind: p.relative_to(root).as_posix() for kind, p in result.sidecars.items()},
        "description": clean_text(result.description),
        "language": result.language,
        "warnings": list(result.warnings),
        "publish": [(str(temp), str(target)) for temp, target in pairs],
    }


def title_of(sidecar: Path | None, audio: Path) -> str:
    try:
        assert sidecar is not None
        title: str = json.loads(sidecar.read_text(encoding="utf-8"))["title"]
        return title
    except (AssertionError, OSError, ValueError, KeyError, TypeError):
        return audio.stem
