"""Planning a build: which items to render, which are up to date, and which would fail.

Each item is checked the way a render would check it, before any work: its settings,
minutes and session files, and its output names; a dry run also renders and parses the
script. An item that would fail is reported, and the others go on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guided_audio import markup, publish
from guided_audio.build import worker
from guided_audio.build.fingerprint import Fingerprints
from guided_audio.build.manifest import Item, Manifest
from guided_audio.errors import BadInput, GuidedAudioError

if TYPE_CHECKING:
    from guided_audio.program import Program


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
    inside: dict[str, bool] = {}  # each folder resolved once; a file itself only when it is a symlink
    for item in manifest.items:
        for file in item.files():
            folder = os.path.dirname(file)
            if folder not in inside:
                resolved = (root / folder).resolve()
                inside[folder] = resolved == top or top in resolved.parents
            if inside[folder] and not os.path.islink(os.path.join(root, file)):
                continue
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
    fingerprint = Fingerprints()
    checker = Checker(root, full=full_check)
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
        problem = checker(item)
        if problem is not None:
            report.failed.append((item.name, problem))
            on_event("failed", item.name, problem)
            continue
        todo.append((item, key))
    return todo


class Checker:
    """Why an item would fail to render, found without rendering or writing; None if it would not.

    Its output files are checked, and its settings, minutes and session files are loaded
    as a render loads them; `full` also renders and parses the script and checks its
    bounds. Items that differ only in what does not change the words (voice, bed, format,
    name) share one script, rendered once.
    """

    def __init__(self, root: Path, *, full: bool) -> None:
        self.root = root
        self.full = full
        self._scripts: dict[str, list[markup.Script]] = {}
        self._bounds: dict[tuple[str, int], GuidedAudioError | None] = {}
        self._folders: dict[Path, str | None] = {}

    def __call__(self, item: Item) -> str | None:
        from guided_audio.render import resolve

        try:
            publish.check_targets([self.root / file for file in item.files()], option=item.label,
                                  folders=self._folders)
            program, settings = resolve(worker.request(item, self.root, None))  # as a render resolves it
            if self.full:
                self._check_bounds(item, program, settings.rate)
        except GuidedAudioError as exc:
            return str(exc)
        except OSError as exc:
            return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        return None

    def _check_bounds(self, item: Item, program: Program, rate: int) -> None:
        """The script rendered and its length checked, once for every item with the same words and rate."""
        key = json.dumps([item.target, item.settings, item.options.get("minutes")], sort_keys=True, default=str)
        if (key, rate) not in self._bounds:
            try:
                if key not in self._scripts:
                    self._scripts[key] = program.scripts()
                program.check_bounds(self._scripts[key], rate)
                self._bounds[key, rate] = None
            except GuidedAudioError as exc:
                self._bounds[key, rate] = exc
        problem = self._bounds[key, rate]
        if problem is not None:
            raise problem


def check_item(item: Item, root: Path, *, full: bool) -> str | None:
    """Why one item would fail to render; None if it would not (see `Checker`)."""
    return Checker(root, full=full)(item)
