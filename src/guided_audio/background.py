"""Work that feeds the encoder, done beside it at a lower priority.

A render waits for one thing: the encoder. Mixing, limiting and metering run on the other core
while it encodes, but they must never take a core from it when the machine is short of one, so
they run at a lower priority: the threads that mix (`ahead`) and the process that meters
(`lower`). Only their order of turns changes, never their result.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator
from queue import Empty, Full, Queue
from typing import TypeVar, cast

T = TypeVar("T")
NICENESS = 10  # how much lower than the encoder (0 to 19)
_DONE = object()


def lower(pid: int | None = None) -> None:
    """Lower the priority of process `pid`, or of the calling thread (None), where the system allows.

    On Linux each thread has its own priority, so a thread lowered this way leaves the rest of
    the program as it was. Elsewhere, or when it is not allowed, nothing changes.
    """
    if pid is None and not sys.platform.startswith("linux"):
        return  # a thread's own priority is Linux's; elsewhere it would lower the whole program
    target = threading.get_native_id() if pid is None else pid
    try:
        now = os.getpriority(os.PRIO_PROCESS, target)
        os.setpriority(os.PRIO_PROCESS, target, min(19, now + NICENESS))
    except (AttributeError, OSError):
        pass  # no priorities here, or the process is already gone


def ahead(items: Iterable[T], depth: int = 2, name: str = "guided-audio-feed") -> Iterator[T]:
    """`items`, worked out on a thread of lower priority up to `depth` items ahead of the caller.

    An error raised while working one out is raised here, in order. When the caller stops
    early, the thread stops after the item it is working on.
    """
    queue: Queue[tuple[bool, object]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def work() -> None:
        lower()
        source = iter(items)
        try:
            for item in source:
                if not put((True, item)):
                    return
            put((True, _DONE))
        except BaseException as exc:  # handed to the caller, who raises it
            put((False, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                ok, item = queue.get(timeout=0.1)
            except Empty:
                if not thread.is_alive() and queue.empty():
                    raise RuntimeError(f"{name} stopped without a word") from None
                continue
            if not ok:
                assert isinstance(item, BaseException)
                raise item
            if item is _DONE:
                return
            yield cast(T, item)
    finally:
        stop.set()
        thread.join()
