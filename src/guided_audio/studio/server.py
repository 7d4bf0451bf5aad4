"""Starting the studio: its folder locked, a free port on 127.0.0.1, a fresh token, the address printed."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"  # never another interface: the studio is for the person at this machine


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def address(port: int, token: str) -> str:
    return f"http://{HOST}:{port}/?token={token}"


def serve(folder: Path, port: int | None = None, *, announce: Callable[[str], None] = print,
          token: str | None = None) -> None:
    """Serve the studio for `folder` until interrupted; `announce` gets the address once it listens."""
    import uvicorn

    from guided_audio.errors import BadInput
    from guided_audio.studio.app import create_app
    from guided_audio.studio.folder import StudioLock

    folder.mkdir(parents=True, exist_ok=True)
    with StudioLock(folder):
        if port is None:
            port = free_port()
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((HOST, port))
                except OSError:
                    raise BadInput(f"--port {port}: the port is in use or not allowed") from None
        token = token or secrets.token_urlsafe(24)
        app = create_app(folder, token=token, port=port)
        config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False,
                                server_header=False, lifespan="on")
        server = uvicorn.Server(config)
        original = server.startup

        async def startup(sockets: list[socket.socket] | None = None) -> None:
            await original(sockets)
            if server.started:
                announce(address(port, token))

        server.startup = startup  # type: ignore[method-assign]
        server.run()
