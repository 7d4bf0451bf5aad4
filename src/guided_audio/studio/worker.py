"""A render for the studio, in a process of its own: a request as JSON on stdin, progress as JSON lines out.

Each stdout line is one of {"stage", "fraction"}, {"done": AUDIO, "player": PAGE} or {"error", "field"}.
Running apart, a render can neither block the studio's server nor take it down.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guided_audio.errors import GuidedAudioError
from guided_audio.progress import Progress


def emit(row: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(row) + "\n")
    sys.stdout.flush()


class LineProgress(Progress):
    """Each stage and how far it has come, a JSON line at most five times a second."""

    def stage(self, label: str, total: int) -> Callable[[int], None]:
        emit({"stage": label, "fraction": 0.0})
        done, last = 0, 0.0

        def update(n: int) -> None:
            nonlocal done, last
            done += n
            now = time.monotonic()
            if now - last >= 0.2 or done >= total:
                last = now
                emit({"stage": label, "fraction": min(1.0, done / total) if total > 0 else 1.0})

        return update


def main() -> int:
    from guided_audio.player import write_player
    from guided_audio.render import RenderRequest, render
    from guided_audio.studio.forms import field_of

    job = json.loads(sys.stdin.read())
    request = RenderRequest(practice=job["practice"], settings=job.get("settings", {}), minutes=job.get("minutes"),
                            voice=job.get("voice") or None, ambient=job.get("ambient") or None,
                            output=Path(job["output"]))
    try:
        result = render(request, LineProgress())
        page = write_player(result.audio, result.secrets)
    except GuidedAudioError as exc:
        emit({"error": str(exc), "field": field_of(exc)})
        return int(exc.exit_status)
    emit({"done": str(result.audio), "player": str(page), "warnings": list(result.warnings)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
