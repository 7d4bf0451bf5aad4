"""The cluster executor: items rendered by the workers of a Dask cluster (`build --cluster ADDRESS`).

The client (this process) keeps everything that must be in one place: the lock, the
fingerprints and the state file, publishing, the playlists, index and feed, and the
report. The workers only render: each item in a private folder, its finished files sent
back as bytes that the client writes as temporary files beside their targets, or, with
shared storage, left in a private folder inside the library folder (the same path on
every machine) for the client to rename into place. Either way only the client publishes,
so a worker that dies mid-item leaves nothing half-written in the library; Dask runs its
item again on another worker.

Before any item is sent, every worker is asked what it renders with (see
`remote.environment`); a worker with another package version, other voices, other
built-in sounds, or without the manifest's files at the same paths is refused. An item
is checked again on the worker that renders it, which catches a worker that joined later.

`distributed` is imported only here, and only for a build with --cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guided_audio import publish
from guided_audio.build import remote
from guided_audio.build.local import remove_temps
from guided_audio.build.manifest import Item, Manifest
from guided_audio.errors import BadInput

if TYPE_CHECKING:
    from distributed import Client

OPTION = "--cluster"
TIMEOUT = 10.0  # seconds to reach the scheduler, and for a first worker to be there
INSTALL = "install the extra: pip install 'guided-audio[cluster]'"


def timeout() -> float:
    """Seconds to wait for the scheduler and its workers ($GUIDED_AUDIO_CLUSTER_TIMEOUT, else TIMEOUT)."""
    try:
        return max(0.5, float(os.environ.get("GUIDED_AUDIO_CLUSTER_TIMEOUT", TIMEOUT)))
    except ValueError:
        return TIMEOUT


class Cluster:
    """A connection to a Dask scheduler whose workers render as this machine would."""

    def __init__(self, address: str, manifest: Manifest, root: Path, *, shared_storage: bool = False):
        self.address = address
        self.manifest = manifest
        self.root = root.resolve()  # sent to the workers: their working folder is not ours
        self.shared = shared_storage
        self.client: Client | None = None
        self.expected: dict[str, Any] = {}

    def __enter__(self) -> Cluster:
        self.client = connect(self.address)
        try:
            self.expected = self._check_workers(self.client)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=timeout())
            self.client = None
        if self.shared:
            shutil.rmtree(self.root / remote.WORK, ignore_errors=True)

    def _check_workers(self, client: Client) -> dict[str, Any]:
        """This machine's environment, once every worker is known to have the same one."""
        voices = sorted({item.options.get("voice") for item in self.manifest.items}
                        | {item.options.get("second_voice") for item in self.manifest.items if
                           item.options.get("second_voice")}, key=str)
        targets = sorted({item.target for item in self.manifest.items})
        mine = remote.environment(voices, targets)
        if self.shared:
            shutil.rmtree(self.root / remote.WORK, ignore_errors=True)  # what a killed build left
            probe = self.root / remote.WORK / f"probe-{secrets.token_hex(8)}"
            publish.atomic_write_text(probe, probe.name, option="--shared-storage")
        answers = client.run(remote.environment, voices, targets, on_error="return")
        for address, theirs in sorted(answers.items()):
            if isinstance(theirs, BaseException):
                raise BadInput(f"{OPTION} {self.address}: the worker {address} cannot render "
                               f"({type(theirs).__name__}: {theirs}); install guided-audio[cluster] there")
            problem = remote.differences(mine, theirs)
            if problem is not None:
                raise BadInput(f"{OPTION} {self.address}: the worker {address} {problem}; every worker needs "
                               "the same guided-audio version, voices and sounds as this machine")
        if self.shared:
            seen = client.run(_reads, str(probe), on_error="return")
            for address, text in sorted(seen.items()):
                if text != probe.name:
                    raise BadInput(f"--shared-storage: the worker {address} does not see the library folder "
                                   f"{self.root}; it must be the same folder at the same path on every worker")
        return mine

    def render_all(
        self, todo: list[tuple[Item, str]], cache_dir: Path | None
    ) -> Generator[tuple[Item, str, dict[str, Any] | str], None, None]:
        """Render items on the workers; yield each as it finishes (a summary dict, or the error).

        As with the local executor, a summary's "publish" holds (temp, target) pairs for the
        build to rename into place. When the consumer stops early (an interrupt), the items
        not finished are cancelled and the temporary files of results not taken are removed.
        """
        if not todo:
            return
        from distributed import as_completed

        client = self.client
        assert client is not None, "render_all outside `with Cluster(...)`"
        cache = str(cache_dir.resolve()) if cache_dir else None
        running = {
            client.submit(remote.render, item, str(self.root), cache, self.expected, self.shared, pure=False,
                          key=f"guided-audio {item.key} {secrets.token_hex(4)}"): (item, key)
            for item, key in todo
        }
        handed: list[Any] = []
        try:
            for future in as_completed(list(running), loop=client.loop):
                item, key = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # the item's worker died too often, or the task could not run
                    detail = str(exc).splitlines()[0] if str(exc) else ""
                    outcome = f"on the cluster: {type(exc).__name__}: {detail}".rstrip(": ")
                future.release()
                if isinstance(outcome, dict):
                    outcome = self._receive(item, outcome)
                handed = list(outcome.get("publish", [])) if isinstance(outcome, dict) else []
                yield item, key, outcome
        except BaseException:
            with contextlib.suppress(Exception):
                client.cancel(list(running), force=True)
            remove_temps(handed)  # interrupted before it was published (once published, its temps are gone)
            raise

    def _receive(self, item: Item, summary: dict[str, Any]) -> dict[str, Any] | str:
        """The summary with "publish" pairs: the item's files as temporary files beside their targets."""
        allowed = set(item.files())
        pairs: list[tuple[str, str]] = []
        try:
            for relative, content in summary.pop("files"):
                if relative not in allowed:
                    raise BadInput(f"{item.label}: a worker returned {relative}, which is not one of the item's files")
                target = self.root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, bytes):
                    temp = publish.temp_name(target)
                    pairs.append((str(temp), str(target)))
                    _write(temp, content)
                else:  # shared storage: the worker's temporary file, read in place
                    pairs.append((content, str(target)))
        except (OSError, BadInput) as exc:
            remove_temps(pairs)
            return str(exc) if isinstance(exc, BadInput) else f"{target}: {exc.strerror or exc}"
        summary.pop("folder", None)
        return {**summary, "publish": pairs}


def connect(address: str) -> Client:
    """A client of the scheduler at `address` with at least one worker; BadInput naming --cluster if not."""
    try:
        from distributed import Client
    except ImportError:
        raise BadInput(f"{OPTION}: the cluster support is not installed; {INSTALL}") from None
    _check_address(address)
    wait = timeout()
    try:
        client = Client(address, timeout=wait, set_as_default=False)
    except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"{OPTION} {address}: cannot reach the scheduler in {wait:g} s ({detail})") from None
    try:
        client.wait_for_workers(1, timeout=wait)
    except (OSError, TimeoutError, asyncio.TimeoutError):  # distributed's timeouts are asyncio's (apart before 3.11)
        client.close()
        raise BadInput(f"{OPTION} {address}: the scheduler has no workers (none joined in {wait:g} s); start "
                       f"some with: dask worker {address} --nthreads 1") from None
    return client


def _check_address(address: str) -> None:
    """BadInput unless `address` reads as a scheduler's address (a bad one would leave a client hanging)."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address)
        parse_host_port(location)
        if scheme not in backends:
            raise ValueError(f"unknown protocol '{scheme}'")
    except ValueError as exc:
        raise BadInput(f"{OPTION} {address}: not a scheduler address such as tcp://HOST:8786 ({exc})") from None


def _write(temp: Path, content: bytes) -> None:
    with open(temp, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _reads(path: str) -> str:
    """On a worker: the text of a file the client wrote (the shared-storage check)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
