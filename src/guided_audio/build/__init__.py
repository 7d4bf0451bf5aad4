"""Library builds: a manifest of sessions, and matrices of variants, rendered into one folder.

    title = "Riverside practice library"
    [defaults]                    # render settings for every item
    format = "mp3"
    [feed]                        # optional: a private podcast feed of the library
    base_url = "https://example.org/library/"
    [[sessions]]                  # one output: a practice or a session file
    name = "evening-alex-sam"
    session = "evening.toml"
    [[matrix]]                    # many outputs: every combination of the lists
    album = "Breathing"
    practice = ["breathing"]
    minutes = [3, 5]
    ambient = ["warm-room", "soft-rain"]
    name = "{practice}-{minutes}min-{ambient}"

Items render in parallel processes, or on the workers of a Dask cluster (`--cluster`).
An item whose inputs (template sources, settings,
sounds, voice, package version) are unchanged since its last build is skipped. Every
file is written whole or not at all, a lock keeps two builds out of one folder, and
one failing item does not stop the others.

Containment: every file a manifest names stays inside the -o folder. An album or name
that is absolute or has a `..` or dot-only part is an error (exit 2), and so is a path
that leaves the folder once resolved (an album folder that is a symlink out of it).
Names are slugs that keep their letters: `Zoë & Sam` is `zoë-sam`.

Clashes: the whole set of files an item writes (the audio, every sidecar and its
album's playlist) is checked against every other item's. Sidecars are named after the
audio file without its extension, so a matrix over `format = ["mp3", "ogg"]` whose name
pattern leaves out the format would give two items one set of captions: that is an
error naming both items, with the fix (put `{format}` in the name pattern), rather than
file names a player would not pair with the audio.

Publishing: a worker renders an item into temporary files and hands them to the build
process, which renames them into place and records the item in the state file in one
step that an interrupt waits for; nothing is published that the state file does not
record. On Ctrl-C or SIGTERM the workers stop, their temporary files are removed, the
playlists and index are written for what was built, and the exit status is 130.

`--dry-run` writes nothing (no folder, no lock, no clean-up) and checks every item that
would be built the way a render would (settings, minutes, session files, the script,
the output names); an item that would fail is reported as failed.

The stages, one module each, in the order a build runs them:

    manifest     the manifest read, checked and expanded into items
    fingerprint  what an item depends on, hashed
    plan         which items to render, which are up to date, which would fail
    state        the folder's lock and its record of what was built
    local        an executor: items rendered in worker processes (worker: one item)
    cluster      an executor: items rendered on a Dask cluster's workers (remote: on a worker)
    outputs      playlists, index.json and the player page (index.html)
    feed         the podcast feed; artwork: its channel art
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

from guided_audio import publish
from guided_audio.build import local
from guided_audio.build.manifest import DEFAULT_KEYS, ITEM_KEYS, Item, Manifest, load
from guided_audio.build.outputs import write_outputs
from guided_audio.build.plan import Report, check_containment, plan
from guided_audio.build.state import LOCK, STATE, Locked, read_state, write_state
from guided_audio.errors import ExitStatus, GuidedAudioError

__all__ = ["DEFAULT_KEYS", "ITEM_KEYS", "LOCK", "STATE", "BuildInterrupted", "Item", "Manifest", "Report", "build",
           "load"]


class BuildInterrupted(GuidedAudioError):
    """Ctrl-C or SIGTERM during a build; exit status 130. What was built is recorded."""

    exit_status = ExitStatus.INTERRUPTED


def build(
    manifest: Manifest,
    root: Path,
    *,
    jobs: int,
    dry_run: bool = False,
    cache_dir: Path | None = None,
    on_event: Callable[[str, str, str], None] = lambda kind, name, detail: None,
    cluster: str | None = None,
    shared_storage: bool = False,
) -> Report:
    """Render every item whose inputs changed; write playlists, the index and the feed.

    With `cluster` (a Dask scheduler's address) the items render on its workers, and with
    `shared_storage` those workers write into the library folder; see `build.cluster`.
    """
    report = Report()
    publish.check_targets([root / LOCK], option="-o")
    check_containment(manifest, root)
    if dry_run:  # writes nothing: no folder, no lock, no clean-up
        state = read_state(root)
        for item, _ in plan(manifest, root, state, report, on_event, full_check=True):
            on_event("would build", item.name, str(item.path(root)))
        return report
    root.mkdir(parents=True, exist_ok=True)
    with Locked(root), _executor(manifest, root, jobs, cache_dir, cluster, shared_storage) as render_all:
        publish.remove_stale_partials(root, recursive=True)
        state = read_state(root)
        current = {item.key for item in manifest.items}
        todo = plan(manifest, root, state, report, on_event, full_check=False)
        try:
            with contextlib.closing(render_all(todo)) as results:
                for item, key, outcome in results:
                    if isinstance(outcome, str):
                        report.failed.append((item.name, outcome))
                        on_event("failed", item.name, outcome)
                        continue
                    pairs = [(Path(temp), Path(target)) for temp, target in outcome.pop("publish")]
                    with publish.shielded():  # published and recorded together, or neither
                        try:
                            publish.commit(pairs, option=item.label)
                        except GuidedAudioError as exc:
                            report.failed.append((item.name, str(exc)))
                            on_event("failed", item.name, str(exc))
                            continue
                        built = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                        state[item.key] = {"name": item.name, "key": key, "built": built, **outcome}
                        write_state(root, state)
                    report.built.append(item.name)
                    on_event("built", item.name, str(item.path(root)))
                    for warning in outcome.get("warnings", []):
                        on_event("warning", item.name, warning)
        except KeyboardInterrupt:
            with publish.shielded():
                write_outputs(manifest, root, {k: v for k, v in state.items() if k in current}, cache_dir)
            count = len(report.built)
            raise BuildInterrupted(
                f"interrupted: {count} item{'s' if count != 1 else ''} built and recorded before the interrupt"
                + (f" ({', '.join(report.built[:3])}{', ...' if count > 3 else ''})" if count else "")
                + "; build again to finish") from None
        write_outputs(manifest, root, {k: v for k, v in state.items() if k in current}, cache_dir)
    return report


@contextlib.contextmanager
def _executor(
    manifest: Manifest, root: Path, jobs: int, cache_dir: Path | None, cluster: str | None, shared_storage: bool
) -> Iterator[Callable[[list[tuple[Item, str]]], Generator[tuple[Item, str, dict[str, Any] | str], None, None]]]:
    """How items are rendered: in local processes, or on the workers of a Dask cluster."""
    if cluster is None:
        yield lambda todo: local.render_all(todo, root, jobs, cache_dir)
        return
    from guided_audio.build.cluster import Cluster

    with Cluster(cluster, manifest, root, shared_storage=shared_storage) as connected:
        yield lambda todo: connected.render_all(todo, cache_dir)
