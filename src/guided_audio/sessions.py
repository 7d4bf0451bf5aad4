"""Session files: one couple's evening as TOML, an ordered list of practices with shared settings.

    title = "Tuesday evening"
    [couple]                     # passed to every part whose template has a parameter of that name
    partner_a = "Alex"
    partner_b = "Sam"
    health = ["panic"]           # health flags (guided_audio.health), private like every value marked so
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

from guided_audio import health as health_flags
from guided_audio import options, practices, privacy
from guided_audio.errors import BadInput, ParameterError, TemplateError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HEALTH_FLAGS = tuple(health_flags.FLAGS)
# Couple settings the session itself understands; any parameter of a part's template is also accepted.
COUPLE_KEYS = {
    "partner_a": str, "partner_b": str, "pronouns_a": str, "pronouns_b": str, "address": str,
    "language": str, "health": list, "off_limits_a": list, "off_limits_b": list, "safe_zones_a": list,
    "safe_zones_b": list, "crisis_resources": str, "notes": str,
}
NEVER_SPOKEN = ("off_limits_a", "off_limits_b", "safe_zones_a", "safe_zones_b", "crisis_resources", "notes",
                "pronouns_a", "pronouns_b")
# Never written as settings or shown in messages, whichever template parameters they meet.
PRIVATE_KEYS = ("health", "off_limits_a", "off_limits_b", "safe_zones_a", "safe_zones_b", "notes", "stop_word",
                "stop_gesture", "own_phrases")
RENDER_KEYS = ("voice", "second_voice", "rate", "ambient", "format", "loudness", "artist", "album")  # see options
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

    @property
    def secrets(self) -> list[str]:
        """Every piece of private text in the couple's settings and the parts' private values."""
        values = [v for k, v in self.couple.items() if k in PRIVATE_KEYS]
        values += [v for part in self.parts for v in part.practice.private_values(part.values)]
        return privacy.private_texts(values)


def unadapted_message(practice: str, count: int) -> str:
    """The warning for health flags a practice cannot honour; it names no flag (they are private)."""
    flags = "1 of the health flags" if count == 1 else f"{count} of the health flags"
    return (f"{practice} has no adaptation for {flags} given; 'guided-audio show {practice}' lists the flags "
            "it adapts to (use --strict to make this an error)")


def name_warnings(practice: practices.Practice, values: dict[str, Any], where: str) -> list[str]:
    """A warning when only one partner is named: the scripts then name neither."""
    names = [n for n in ("partner_a", "partner_b") if n in values]
    given = [n for n in names if str(values[n]).strip()]
    if len(names) == 2 and len(given) == 1:
        return [f"{where} {given[0]}: only one partner has a name, and {practice.name} names both or neither; "
                "it will say 'both of you' and 'your partner' (set the other name too)"]
    return []


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
    except RecursionError:
        raise SessionErrors(path, [(None, "values nested too deeply")]) from None
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

    def problem(self, where: tuple[str | int, ...], message: str) -> None:
        self.problems.append((self.lines.get(where), message))

    def check(self, doc: dict[str, Any], overrides: dict[str, str]) -> Session:
        for key in doc:
            if key not in TOP_KEYS:
                self.unknown((key,), key, TOP_KEYS)
        couple = dict(self.table(doc, "couple", dict))
        couple.update(overrides)
        render = dict(self.table(doc, "render", dict))
        for key, value in render.items():
            message = options.problem(key, value, set(RENDER_KEYS))
            if message:
                self.problem(("render", key), f"[render] {message}")
        health = couple.get("health", [])
        if isinstance(health, str):  # from --set health=a,b
            health = couple["health"] = health_flags.split(health)
        for flag in health if isinstance(health, list) else []:
            if flag not in HEALTH_FLAGS:
                self.problem(("couple", "health"), health_flags.unknown_flag_hint(str(flag)))
        for key in ("pronouns_a", "pronouns_b"):
            if str(couple.get(key, "")).strip():
                self.warnings.append((self.lines.get(("couple", key)),
                                      f"{key} is kept as a note only: the scripts use names and 'your partner', "
                                      "never pronouns"))
        parts_doc = self.table(doc, "parts", list)
        if not parts_doc:
            self.problem(("parts",), "a session needs at least one [[parts]] table with a practice")
        loaded = [self.practice(i, p) for i, p in enumerate(parts_doc)]
        template_params = {param.name for p in loaded if p for param in p.params}
        for key, value in couple.items():
            if key in COUPLE_KEYS:
                self.typed(("couple", key), key, value, COUPLE_KEYS)
            elif key not in template_params:
                self.unknown(("couple", key), key, set(COUPLE_KEYS) | template_params, table="[couple]")
        last = len(parts_doc) - 1
        parts = [self.part(i, p, practice, couple, opening=i == 0, closing=i == last)
                 for i, (p, practice) in enumerate(zip(parts_doc, loaded))]
        named = next((p for p in parts if p is not None), None)
        if named is not None:
            self.warnings += [(self.lines.get(("couple", "partner_a")), w)
                              for w in name_warnings(named.practice, named.values, "[couple]")]
        return Session(
            path=self.path,
            title=str(doc.get("title", self.path.stem)),
            description=str(doc.get("description", "")),
            parts=tuple(p for p in parts if p is not None),
            render=render,
            couple=couple,
            warnings=tuple(f"{self.path}:{line}: {msg}" if line else f"{self.path}: {msg}" for line, msg in self.warnings),
        )

    def table(self, doc: dict[str, Any], key: str, kind: type) -> Any:
        """doc[key] when it is of the kind it must be ([couple] and [render] tables, [[parts]] a list)."""
        value = doc.get(key, kind())
        if isinstance(value, kind):
            return value
        self.problem((key,), f"{key} must be {'a table' if kind is dict else 'a list of [[parts]] tables'}")
        return kind()

    def practice(self, index: int, part: Any) -> practices.Practice | None:
        if not isinstance(part, dict) or "practice" not in part:
            self.problem(("parts", index), f"part {index + 1} needs practice = NAME")
            return None
        name = str(part["practice"])
        if "/" in name or name.endswith(practices.TEMPLATE_SUFFIX):  # relative to the session file
            name = str(self.path.parent / name)
        try:
            return practices.load(name)
        except TemplateError as exc:
            self.problem(("parts", index, "practice"), str(exc))
            return None

    def part(self, index: int, doc: dict[str, Any], practice: practices.Practice | None, couple: dict[str, Any],
             opening: bool, closing: bool) -> Part | None:
        if practice is None:
            return None
        names = {p.name for p in practice.params}
        settings: dict[str, Any] = {k: v for k, v in couple.items() if k in names and k not in NEVER_SPOKEN}
        flags = [f for f in couple.get("health", []) if f in HEALTH_FLAGS] if isinstance(couple.get("health"), list) else []
        for flag in flags:  # over a couple-level value of the same name; a part's own value still wins
            if flag in names:
                settings[flag] = True
        lost = practice.unadapted(flags)
        if lost:
            self.warnings.append((self.lines.get(("couple", "health")),
                                  f"part {index + 1}: {unadapted_message(practice.name, len(lost))}"))
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
        values = practice.bind(settings, doc.get("minutes"), opening=opening, closing=closing)
        return Part(practice, values, str(doc.get("title", practice.title)))

    def typed(self, where: tuple[str | int, ...], key: str, value: Any, known: dict[str, Any]) -> None:
        if key not in known:
            self.unknown(where, key, set(known), table=f"[{where[0]}]")
        elif not isinstance(value, known[key]) or (isinstance(value, bool) and known[key] is not bool):
            names = {str: "text", int: "whole number", list: "list"}
            expected = names.get(known[key], "number")
            shown = "the value given" if key in PRIVATE_KEYS else repr(value)
            self.problem(where, f"{key} should be a {expected}, not {shown}")

    def unknown(self, where: tuple[str | int, ...], key: str, known: set[str], table: str = "the session") -> None:
        self.problem(where, f"unknown key '{key}' in {table}" + did_you_mean(key, known))


def _key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Line numbers of keys: ('couple', 'partner_a'), ('parts', 0, 'minutes'), ('parts', 0), ('title',)."""
    lines: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
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


def starter() -> str:
    """A commented starter session file, with the health flags explained."""
    flags = "\n".join(f"#   {line}" for line in health_flags.describe())
    return _STARTER.replace("{flags}", flags)


_STARTER = '''\
# A couple's session for guided-audio: render it with
#   guided-audio script SESSION.toml     (see the words first)
#   guided-audio render SESSION.toml
# Every part becomes a chapter; the session is one evening: one welcome, safety note and
# stop-word line at the start, a short bridge between parts, one closing at the end.
# Lines starting with # are notes for you.

title = "An evening together"
description = "Arriving, breathing together, and a gentle close."

[couple]
partner_a = ""                # names as they should be spoken; set both, or neither for "your partner"
partner_b = ""
stop_word = ""                # private: spoken in the opening as the couple's word to stop
# Health flags (private) change what is said; 'guided-audio show PRACTICE' tells which it adapts to:
{flags}
health = []
# Private and never spoken: kept in this file only.
off_limits_a = []             # each partner's areas to leave out; the scripts say "the areas you agreed"
off_limits_b = []
safe_zones_a = []
safe_zones_b = []
# Never spoken: written into the file's description and sidecar for the couple to find.
crisis_resources = ""
own_phrases = ""              # private: the couple's own phrases, separated by |, offered verbatim

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
