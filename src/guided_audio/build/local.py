"""The local executor: items rendered in a pool of worker processes on this machine."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Generator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from guided_audio.build import worker
from guided_audio.build.manifest import Item


def render_all(
    todo: list[tuple[Item, str]], root: Path, jobs: int, cache_dir: Path | None
) -> Generator[tuple[Item, str, dict[str, Any] | str], None, None]:
    """Render items in worker processes; yield each as it finishes (a summary dict, or the error).

    A summary's "publish" holds the (temp, target) pairs the worker left for this process to
    rename into place. When the consumer stops early (an interrupt), the workers are told to
    stop, and the temporary files of results not taken are removed.
    """
    if not todo:
        return
    # Spawned, not forked: a worker must not inherit the folder's lock, and each one
    # ends itself if the build is killed (see worker.init).
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context, initializer=worker.init,
                               initargs=(os.getpid(),))
    running: dict[Future[dict[str, Any] | str], tuple[Item, str]] = {}
    handed: list[Any] = []  # the temporary files of the result last handed over
    try:
        for item, key in todo:
            running[pool.submit(worker.render_item, item, str(root), str(cache_dir) if cache_dir else None)] = (item, key)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                item, key = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # a worker that died: report it, go on
                    outcome = f"{type(exc).__name__}: {exc}"
                handed = list(outcome.get("publish", [])) if isinstance(outcome, dict) else []
                yield item, key, outcome
    except BaseException:
        _stop(pool, running)
        remove_temps(handed)  # interrupted before it was published (once published, its temps are gone)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop(pool: ProcessPoolExecutor, running: dict[Future[dict[str, Any] | str], tuple[Item, str]]) -> None:
    """Stop the workers: no new items, a render in progress interrupted, every temporary file removed."""
    for future in running:
        future.cancel()
    processes = dict(getattr(pool, "_processes", None) or {})
    for pid in processes:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    pool.shutdown(wait=True, cancel_futures=True)
    for future in running:
        if future.done() and not future.cancelled() and future.exception() is None:
            result = future.result()
            if isinstance(result, dict):
                remove_temps(result.get("publish", []))


def remove_temps(pairs: list[Any]) -> None:
    """Remove the temporary files of (temp, target) pairs a worker handed over; gone ones are skipped."""
    for temp, _ in pairs:
        with contextlib.suppress(OSError):
            Path(temp).unlink()
