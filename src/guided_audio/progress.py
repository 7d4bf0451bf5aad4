"""What a long piece of work reports while it runs: the command line draws it, tests ignore it."""

from __future__ import annotations

from collections.abc import Callable


class Progress:
    """Receives progress of the long stages of a render."""

    def stage(self, label: str, total: int) -> Callable[[int], None]:
        return lambda n: None

    def done(self) -> None:
        pass
