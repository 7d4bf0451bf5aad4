"""What every request to the studio passes first: a Host it expects, its token, a same-origin form, a
bounded body; and the headers every response carries.

The studio listens on 127.0.0.1 only. The token in the address it prints is the key: a request
without it (in the query, or in the cookie the first visit sets) is refused with 403, so another
user of the machine or a web page the browser has open cannot drive it. The Host header must name
the studio itself, so a name rebound to 127.0.0.1 by some DNS server (DNS rebinding) gets nothing;
a POST from another origin is refused; bodies are capped; no CORS header is ever sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 1 << 20  # bytes: a form or a session file is a few kilobytes
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" would make form posts send Origin: null
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def cookie_name(port: int) -> str:
    """The token's cookie; cookies ignore ports, so each studio's has its own name."""
    return f"guided_audio_studio_{port}"


def inline_csp(page: str) -> str:
    """A policy for a self-contained page (the player): its own inline style and script, by hash, and no other."""
    hashes = []
    for tag in ("script", "style"):
        for body in re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.S):
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            hashes.append((tag, f"'sha256-{digest}'"))
    scripts = " ".join(h for t, h in hashes if t == "script") or "'none'"
    styles = " ".join(h for t, h in hashes if t == "style") or "'none'"
    return (f"default-src 'none'; script-src {scripts}; style-src {styles}; media-src 'self'; img-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class Guard:
    """ASGI middleware: the Host, token, origin and size checks, and the headers (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, token: str, port: int, max_body: int = MAX_BODY):
        self.app = app
        self.token = token
        self.port = port
        self.max_body = max_body
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.origins = {f"http://{h}" for h in self.hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if headers.get("host", "") not in self.hosts:
            return await _plain(send, 403, "This address is not the studio's (Host refused).")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        given = query.get("token") or _cookie(headers.get("cookie", ""), cookie_name(self.port)) \
            or headers.get("authorization", "").removeprefix("token ")
        if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
            return await _plain(send, 403, "Open the studio with the address it printed, token included.")
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if (origin is not None and origin not in self.origins) or headers.get("sec-fetch-site") == "cross-site":
                return await _plain(send, 403, "Requests from other sites are refused.")
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_body:
            return await _plain(send, 413, f"The upload is larger than {self.max_body >> 10} KiB.")
        if "token" in query and method == "GET":  # set the cookie, and take the token out of the address bar
            rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
            location = scope.get("path", "/") + (f"?{rest}" if rest else "")
            cookie = f"{cookie_name(self.port)}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            return await _plain(send, 303, "See the studio.", [(b"location", location.encode()),
                                                                (b"set-cookie", cookie.encode())])
        await self.app(scope, self._bounded(receive), self._headed(send))

    def _bounded(self, receive: Receive) -> Receive:
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise TooLarge
            return message

        return bounded

    def _headed(self, send: Send) -> Send:
        async def headed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"access-control-allow-origin"]
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers + _HEADERS
            await send(message)

        return headed


class TooLarge(Exception):
    """A body went past the limit while it was read (one sent without a length)."""


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


async def _plain(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *(extra or []), *_HEADERS]})
    await send({"type": "http.response.body", "body": body})
