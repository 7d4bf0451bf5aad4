"""Session files: one couple's evening as TOML, an ordered list of practices with shared settings.

    title = "Tuesday evening"
    [couple]                     # passed to every part whose template has a parameter of that name
    partner_a = "Alex"
    partner_b = "Sam"
    health = ["panic"]           # health flags, each becomes a true flag parameter
    crisis_resources = "..."     # never spoken: written into the tags' description and the sidecar
    [render]                     # defaults for the render options
    voice = "piper:joe"
    [[parts]]
    practice = "breathing"
    minutes = 5
    pattern = "resonance"        # that practice's own parameters

Validation collects every problem with its line and reports them all at once.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guided_audio import practices
from guided_audio.errors import BadInput, ParameterError, TemplateError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HEALTH_FLAGS = (
    "respiratory", "cardiac", "pregnancy", "panic", "trauma", "spinal_cord_injury_t6", "recent_surgery",
    "stoma", "catheter", "lymphedema", "chronic_pain",
)
# Couple settings the session itself understands; any parameter of a part's template is also accepted.
COUPLE_KEYS = {
    "partner_a": str, "partner_b": str, "pronouns_a": str, "pronouns_b": str, "address": str,
    "language": str, "health": list, "off_limits_a": list, "off_limits_b": list, "safe_zones_a": list,
    "safe_zones_b": list, "crisis_resources": str, "notes": str,
}
NEVER_SPOKEN = ("off_limits_a", "off_limits_b", "safe_zones_a", "safe_zones_b", "crisis_resources", "notes")
RENDER_KEYS = {
    "voice": str, "second_voice": str, "rate": int, "ambient": str, "format": str, "loudness": (int, float),
    "artist": str, "album": str,
}
TOP_KEYS = {"title", "description", "couple", "render", "parts"}


@dataclass(frozen=True)
class Part:
    """One practice of a session with its bound parameter values."""

    practice: practices.Practice
    values: dict[str, Any]
    title: str


@dataclass(frozen=True)
class Session:
    path: Path
    title: str
    description: str
    parts: tuple[Part, ...]
    render: dict[str, Any]
    couple: dict[str, Any]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def crisis_resources(self) -> str:
        return str(self.couple.get("crisis_resources", ""))


class SessionErrors(BadInput):
    """Every problem found in a session file, one per line."""

    def __init__(self, path: Path, problems: list[tuple[int | None, str]]):
        lines = [f"{path}:{line}: {msg}" if line else f"{path}: {msg}" for line, msg in problems]
        super().__init__(f"{len(problems)} problem(s) in the session file:\n" + "\n".join(lines))

    def __str__(self) -> str:
        return self.message


def is_session(name_or_path: str) -> bool:
    """Whether a render argument names a session file."""
    return name_or_path.endswith(".toml")


def load(path: Path, overrides: dict[str, str] | None = None, strict: bool = False) -> Session:
    """Read and check a session file; raise SessionErrors listing every problem with its line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise SessionErrors(path, [(int(match.group(1)) if match else None, str(exc))]) from None
    checker = _Checker(path, text)
    session = checker.check(doc, overrides or {})
    if strict and checker.warnings:
        checker.problems += checker.warnings
    if checker.problems:
        raise SessionErrors(path, checker.problems)
    return session


class _Checker:
    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = _key_lines(text)
        self.problems: list[tuple[int | None, str]] = []
        self.warnings: list[tuple[int | None, str]] = []

    def problem(self, where: tuple, message: str) -> None:
        self.problems.append((self.lines.get(where), message))

    def check(self, doc: dict[str, Any], overrides: dict[str, str]) -> Session:
        for key in doc:
            if key not in TOP_KEYS:
                self.unknown((key,), key, TOP_KEYS)
        couple = dict(doc.get("couple", {}))
        couple.update(overrides)
        render = dict(doc.get("render", {}))
        for key, value in render.items():
            self.typed(("render", key), key, value, RENDER_KEYS)
        health = couple.get("health", [])
        for flag in health if isinstance(health, list) else []:
            if flag not in HEALTH_FLAGS:
                hint = did_you_mean(str(flag), HEALTH_FLAGS) or f" (known: {', '.join(HEALTH_FLAGS)})"
                self.problem(("couple", "health"), f"unknown health flag '{flag}'{hint}")
        parts_doc = doc.get("parts", [])
        if not parts_doc:
            self.problem(("parts",), "a session needs at least one [[parts]] table with a practice")
        loaded = [self.practice(i, p) for i, p in enumerate(parts_doc)]
        template_params = {param.name for p in loaded if p for param in p.params}
        for key, value in couple.items():
            if key in COUPLE_KEYS:
                self.typed(("couple", key), key, value, COUPLE_KEYS)
            elif key not in template_params:
                self.unknown(("couple", key), key, set(COUPLE_KEYS) | template_params, table="[couple]")
        parts = [self.part(i, p, practice, couple) for i, (p, practice) in enumerate(zip(parts_doc, loaded))]
        return Session(
            path=self.path,
            title=str(doc.get("title", self.path.stem)),
            description=str(doc.get("description", "")),
            parts=tuple(p for p in parts if p is not None),
            render=render,
            couple=couple,
            warnings=tuple(f"{self.path}:{line}: {msg}" if line else f"{self.path}: {msg}" for line, msg in self.warnings),
        )

    def practice(self, index: int, part: Any) -> practices.Practice | None:
        if not isinstance(part, dict) or "practice" not in part:
            self.problem(("parts", index), f"part {index + 1} needs practice = NAME")
            return None
        name = str(part["practice"])
        if "/" in name or name.endswith(practices.TEMPLATE_SUFFIX):  # relative to the session file
            name = str((self.path.parent / name))
        try:
            return practices.load(name)
        except TemplateError as exc:
            self.problem(("parts", index, "practice"), str(exc))
            return None

    def part(self, index: int, doc: dict, practice: practices.Practice | None, couple: dict) -> Part | None:
        if practice is None:
            return None
        names = {p.name for p in practice.params}
        settings: dict[str, Any] = {k: v for k, v in couple.items() if k in names and k not in NEVER_SPOKEN}
        for flag in couple.get("health", []) if isinstance(couple.get("health"), list) else []:
            if flag in names:
                settings[flag] = True
            else:
                self.warnings.append((self.lines.get(("couple", "health")),
                                      f"part {index + 1} ({practice.name}) has no '{flag}' adaptation"))
        for key, value in doc.items():
            if key in ("practice", "minutes", "title"):
                continue
            if key not in names:
                self.unknown(("parts", index, key), key, names, table=f"part {index + 1} ({practice.name})")
                continue
            settings[key] = value
        label = f"part {index + 1} ({practice.name})"
        bad = False
        for key, value in settings.items():  # each value on its own, so every bad one is reported
            try:
                practice.param(key).convert(value, key)
            except ParameterError as exc:
                self.problem(("parts", index, key) if key in doc else ("couple", key), f"{label}: {exc.message}")
                bad = True
        try:
            practice.minutes.convert(doc.get("minutes", practice.minutes.default), "minutes")
        except ParameterError as exc:
            self.problem(("parts", index, "minutes"), f"{label}: {exc.message}")
            bad = True
        if bad:
            return None
        values = practice.bind(settings, doc.get("minutes"))
        return Part(practice, values, str(doc.get("title", practice.title)))

    def typed(self, where: tuple, key: str, value: Any, known: dict[str, Any]) -> None:
        if key not in known:
            self.unknown(where, key, set(known), table=f"[{where[0]}]")
        elif not isinstance(value, known[key]) or isinstance(value, bool) and known[key] is not bool:
            names = {str: "text", int: "whole number", list: "list"}
            expected = names.get(known[key], "number")
            self.problem(where, f"{key} should be a {expected}, not {value!r}")

    def unknown(self, where: tuple, key: str, known: set[str], table: str = "the session") -> None:
        self.problem(where, f"unknown key '{key}' in {table}" + did_you_mean(key, known))


def _key_lines(text: str) -> dict[tuple, int]:
    """Line numbers of keys: ('couple', 'partner_a'), ('parts', 0, 'minutes'), ('parts', 0), ('title',)."""
    lines: dict[tuple, int] = {}
    table: tuple = ()
    parts = -1
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("["):  # a header may carry a comment: [couple]  # notes
            line = re.sub(r"\s*#.*$", "", line)
        if line.startswith("[[") and line.endswith("]]"):
            name = line[2:-2].strip()
            if name == "parts":
                parts += 1
                table = ("parts", parts)
            else:
                table = (name,)
            lines.setdefault(table, number)
        elif line.startswith("[") and line.endswith("]"):
            table = (line[1:-1].strip(),)
            lines.setdefault(table, number)
        else:
            match = re.match(r'^"?([A-Za-z0-9_\-]+)"?\s*=', line)
            if match:
                lines.setdefault((*table, match.group(1)), number)
    return lines


STARTER = '''\
# A couple's session for guided-audio: render it with
#   guided-audio script SESSION.toml     (see the words first)
#   guided-audio render SESSION.toml
# Every part becomes a chapter. Lines starting with # are notes for you.

title = "An evening together"
description = "Arriving, breathing together, and a gentle close."

[couple]
partner_a = ""                # names as they should be spoken; leave empty for "your partner"
partner_b = ""
pronouns_a = ""               # for your notes; the scripts use names and "your partner"
pronouns_b = ""
stop_word = ""                # spoken in the opening as the couple's word to stop
# Health flags change what is rendered (holds off, slower and softer cues, touch adaptations):
# respiratory, cardiac, pregnancy, panic, trauma, spinal_cord_injury_t6, recent_surgery,
# stoma, catheter, lymphedema, chronic_pain
health = []
# Never spoken: kept in your session file and, for crisis resources, in the file's description.
off_limits_a = []
off_limits_b = []
crisis_resources = ""
own_phrases = ""              # the couple's own phrases, separated by |, inserted verbatim

[render]
# voice = "piper:joe"         # see 'guided-audio voices'
# rate = 110                  # words per minute
ambient = "warm-room"         # see 'guided-audio sounds'; "none" for silence
# format = "mp3"

[[parts]]
practice = "breathing"        # 'guided-audio show breathing' lists its parameters
minutes = 5
pattern = "extended-exhale"

[[parts]]
practice = "comfort"
minutes = 8
'''
