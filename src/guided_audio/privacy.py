"""Private settings: what shapes the words but is never written as metadata or shown in a message.

Private are the health flags, off-limits areas and safe zones, the couple's own phrases, the stop
word and signal, and any template parameter marked `private = true`. Settings written into tags,
sidecars, indexes and feeds leave them out (`Practice.public`); as a second line of defence,
`redact` takes any private text out of a message or a metadata field that was built from other
text (a warning that quotes a spoken line, say). The words actually spoken (the transcript,
lyrics and captions) are the audio's own and keep what is said aloud.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from guided_audio import markup

REDACTED = "[private]"


def private_texts(values: Iterable[Any]) -> list[str]:
    """The pieces of private text among `values` (strings, or lists of strings), longest first."""
    found: set[str] = set()
    for value in values:
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, str):
                text = markup.spoken(item).strip()
                found.update(p.strip() for p in [text, *text.split("|")] if len(p.strip()) >= 2)
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every private piece, as a whole word and in any case, replaced by [private]."""
    for secret in secrets:
        pattern = r"(?<!\w)" + re.escape(secret) + r"(?!\w)"
        text = re.sub(pattern, REDACTED, markup.spoken(text), flags=re.IGNORECASE)
    return text


def redact_all(data: Any, secrets: list[str]) -> Any:
    """`redact` through the strings of a JSON-like structure."""
    if not secrets:
        return data
    if isinstance(data, str):
        return redact(data, secrets)
    if isinstance(data, dict):
        return {redact_all(k, secrets): redact_all(v, secrets) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_all(v, secrets) for v in data]
    return data
