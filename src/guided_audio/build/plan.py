"""Planning a build: which items to render, which are up to date, and which would fail.

Each item is checked the way a render would check it, before any work: its settings,
minutes and session files, and its output names; a dry run also renders and parses the
script. An item that would fail is reported, and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guided_audio import publish
from guided_audio.build import worker
from guided_audio.build.fingerprint import fingerprint
from guided_audio.build.manifest import Item, Manifest
from guided_audio.errors import BadInput, GuidedAudioError


@dataclass
class Report:
    """What a build did; its exit status follows from it."""

    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0


def check_containment(manifest: Manifest, root: Path) -> None:
    """Every file an item writes resolves to a place inside the library folder (symlinks followed)."""
    top = root.resolve()
    for item in manifest.items:
        for file in item.files():
            resolved = (root / file).resolve()
            if resolved != top and top not in resolved.parents:
                raise BadInput(f"{manifest.path}: {item.label}: {file} would be written outside the -o folder "
                               f"{root} (to {resolved})")


def plan(
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
        program, settings = resolve(worker.request(item, root, None))  # as a render resolves it, before any work
        if full:
            program.check_bounds(program.scripts(), settings.rate)
    except GuidedAudioError as exc:
        return str(exc)
    except OSError as exc:
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return None


