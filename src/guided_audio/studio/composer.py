"""A couple's session as the composer's form, and as the session TOML the command line reads.

The couple's settings are given once; each part is a practice with its own minutes and parameters
(the couple-wide ones apart). The file is written by `to_toml` and read back by `from_toml`, and
`sessions.load` checks it, exactly as `guided-audio render SESSION.toml` would.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guided_audio import health, sessions
from guided_audio.errors import BadInput, ParameterError
from guided_audio.studio import folder as folders
from guided_audio.studio import forms

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Couple settings typed once and passed to every part whose practice has a parameter of that name.
COUPLE_TEXT = ("partner_a", "partner_b", "stop_word", "stop_gesture", "own_phrases", "crisis_resources")
COUPLE_LISTS = ("off_limits_a", "off_limits_b", "safe_zones_a", "safe_zones_b")
COUPLE_PARAMS = frozenset(COUPLE_TEXT)
PRIVATE = frozenset(sessions.PRIVATE_KEYS) | frozenset(COUPLE_LISTS) | {"stop_word", "stop_gesture", "own_phrases"}
RENDER_TEXT = ("voice", "ambient")
MAX_PARTS = 12


@dataclass
class PartForm:
    """One part: a practice key and its form values (field name without the part's prefix)."""

    key: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Composer:
    """Everything the composer's form holds."""

    file_name: str = "session"
    title: str = "An evening together"
    description: str = ""
    couple: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    health: list[str] = field(default_factory=list)
    render: dict[str, str] = field(default_factory=dict)
    parts: list[PartForm] = field(default_factory=list)


def prefix(index: int) -> str:
    return f"p{index}-"


def from_form(form: Mapping[str, str], checked: Sequence[str]) -> Composer:
    """The composer as its form was submitted (`checked`: the health checkboxes ticked)."""
    c = Composer(
        file_name=form.get("file_name", "").strip(), title=form.get("title", ""),
        description=form.get("description", ""),
        couple={k: form.get(k, "") for k in COUPLE_TEXT},
        lists={k: [line.strip() for line in form.get(k, "").splitlines() if line.strip()] for k in COUPLE_LISTS},
        health=[f for f in checked if f in health.FLAGS],
        render={k: form.get(k, "").strip() for k in RENDER_TEXT},
    )
    try:
        count = min(int(form.get("parts", "0")), MAX_PARTS)
    except ValueError:
        count = 0
    for i in range(count):
        p = prefix(i)
        key = form.get(p + "practice", "")
        if key:
            c.parts.append(PartForm(key, {k[len(p):]: v for k, v in form.items() if k.startswith(p)}))
    return c


def apply(c: Composer, action: str, new_part: str, folder: Path) -> None:
    """Add, move or remove a part as a composer button asks."""
    verb, _, number = action.partition(":")
    index = int(number) if number.isdigit() else -1
    if verb == "add" and new_part and len(c.parts) < MAX_PARTS:
        practice = folders.load_practice(folder, new_part)
        values = {f.key: f.value for f in forms.fields(practice, {}, skip=COUPLE_PARAMS)}
        c.parts.append(PartForm(new_part, values))
    elif verb == "remove" and 0 <= index < len(c.parts):
        del c.parts[index]
    elif verb == "up" and 0 < index < len(c.parts):
        c.parts[index - 1], c.parts[index] = c.parts[index], c.parts[index - 1]
    elif verb == "down" and 0 <= index < len(c.parts) - 1:
        c.parts[index + 1], c.parts[index] = c.parts[index], c.parts[index + 1]


def check(c: Composer, folder: Path) -> dict[str, str]:
    """Problems by form field name ('' for the session as a whole); each value checked on its own."""
    errors: dict[str, str] = {}
    if not folders.is_slug(c.file_name):
        errors["file_name"] = "use lowercase letters, digits and hyphens (up to 48), e.g. tuesday-evening"
    if not c.parts:
        errors[""] = "add at least one part"
    used: set[str] = set()
    for i, part in enumerate(c.parts):
        p = prefix(i)
        try:
            practice = folders.load_practice(folder, part.key)
        except BadInput as exc:
            errors[p + "practice"] = exc.message
            continue
        used |= {param.name for param in practice.params}
        for f in forms.fields(practice, part.values, skip=COUPLE_PARAMS):
            param = practice.minutes if f.key == "minutes" else practice.param(f.key)
            try:
                param.convert(f.value, f.key)
            except ParameterError as exc:
                errors[p + f.key] = exc.message
    for key in ("stop_word", "stop_gesture", "own_phrases"):
        if c.couple.get(key, "").strip() and c.parts and key not in used:
            errors[key] = "none of the parts takes this; it would not be used"
    return errors


def to_toml(c: Composer, folder: Path) -> str:
    """The session file for the composer's values (check it first with `check`)."""
    out = [f"title = {_text(c.title)}"]
    if c.description:
        out.append(f"description = {_text(c.description)}")
    out += ["", "[couple]"]
    for key in COUPLE_TEXT:
        if c.couple.get(key, "").strip() or key in ("partner_a", "partner_b"):
            out.append(f"{key} = {_text(c.couple.get(key, ''))}")
    out.append(f"health = {_list(c.health)}")
    for key in COUPLE_LISTS:
        out.append(f"{key} = {_list(c.lists.get(key, []))}")
    render = {k: v for k, v in c.render.items() if v}
    if render:
        out += ["", "[render]"] + [f"{k} = {_text(v)}" for k, v in render.items()]
    for part in c.parts:
        practice = folders.load_practice(folder, part.key)
        spec = "../" + part.key[len("file:"):] if part.key.startswith("file:") else part.key
        out += ["", "[[parts]]", f"practice = {_text(spec)}"]
        for f in forms.fields(practice, part.values, skip=COUPLE_PARAMS):
            param = practice.minutes if f.key == "minutes" else practice.param(f.key)
            value = param.convert(f.value, f.key)
            if f.key == "minutes" or value != param.default:  # text as typed: reading it marks it again
                out.append(f"{f.key} = {_value(f.value if param.type in ('str', 'choice') else value)}")
    return "\n".join(out) + "\n"


def from_toml(text: str, folder: Path, file_name: str) -> Composer:
    """The composer for a session file's text (a file of sessions/ or an upload); BadInput if unreadable."""
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise BadInput(f"this is not a session file: {exc}") from None
    couple = doc.get("couple", {}) if isinstance(doc.get("couple"), dict) else {}
    render = doc.get("render", {}) if isinstance(doc.get("render"), dict) else {}
    c = Composer(
        file_name=folders.slug(file_name), title=str(doc.get("title", "")), description=str(doc.get("description", "")),
        couple={k: _joined(couple.get(k, "")) for k in COUPLE_TEXT},
        lists={k: [str(v) for v in couple.get(k, [])] if isinstance(couple.get(k), list) else [] for k in COUPLE_LISTS},
        health=[str(f) for f in couple.get("health", []) if str(f) in health.FLAGS]
        if isinstance(couple.get("health"), list) else [],
        render={k: str(render.get(k, "")) for k in RENDER_TEXT},
    )
    parts = doc.get("parts", []) if isinstance(doc.get("parts"), list) else []
    for part in parts[:MAX_PARTS]:
        if not isinstance(part, dict):
            continue
        key = _key(str(part.get("practice", "")), folder)
        practice = folders.load_practice(folder, key)
        given = {k: forms.shown(v) for k, v in part.items() if k != "practice"}
        values = {f.key: given.get(f.key, f.value) for f in forms.fields(practice, {}, skip=COUPLE_PARAMS)}
        c.parts.append(PartForm(key, values))
    return c


def _key(spec: str, folder: Path) -> str:
    """The practice key of a session file's `practice =`: a built-in name, or a template of the folder."""
    if "/" not in spec and not spec.endswith(".j2"):
        folders.load_practice(folder, spec)
        return spec
    path = folders.inside(folder, Path(folders.SESSIONS) / spec)
    if path.parent != folder.resolve():
        raise BadInput(f"practice '{spec}': the studio uses templates directly in its folder")
    return "file:" + path.name


def _joined(value: Any) -> str:
    return "|".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_text(v) for v in values) + "]"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _text(str(value))
