"""A practice's front matter as form fields, form values as the settings the CLI takes, and errors by field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from guided_audio import health, practices
from guided_audio.errors import GuidedAudioError

GENERAL = ""  # the key of an error that concerns no one field
_SET = re.compile(r"^(?:.*?: )?--set ([a-z_][a-z0-9_]*):")
_MINUTES = re.compile(r"^(?:.*?: )?--minutes\b")


@dataclass(frozen=True)
class Field:
    """One input of a form, from one parameter."""

    name: str  # the form field's name
    key: str  # the parameter's name
    type: str  # str, int, float, bool or choice
    value: str  # as shown in the input
    help: str
    private: bool
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    error: str = ""

    @property
    def step(self) -> str:
        return "1" if self.type == "int" else "any"

    @property
    def checked(self) -> bool:
        return self.value.lower() in ("true", "1", "yes", "on")

    @property
    def hint(self) -> str:
        return practices.Param(self.key, self.type, "", "", self.min, self.max, self.choices).describe_range()


@dataclass(frozen=True)
class Flag:
    """A health flag's checkbox."""

    name: str
    meaning: str
    adapted: str  # "adapted", "needs no change" or "not adapted"
    checked: bool


def shown(value: Any) -> str:
    """A parameter value as an input shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fields(practice: practices.Practice, values: Mapping[str, str], prefix: str = "",
           skip: frozenset[str] = frozenset()) -> list[Field]:
    """The practice's minutes and parameters (health flags apart) as fields, filled from `values`."""
    out = []
    for param in (practice.minutes, *practice.params):
        if health.is_flag(param.name) or param.name in skip:
            continue
        name = prefix + param.name
        if param.type == "bool":
            value = "true" if _truthy(values.get(name)) else "false" if values else shown(param.default)
        else:
            value = values.get(name, shown(param.default))
        out.append(Field(name, param.name, param.type, value, param.help, param.private, param.min, param.max,
                         param.choices))
    return out


def flags(practice: practices.Practice | None, checked: list[str]) -> list[Flag]:
    """A checkbox for every health flag, saying whether the practice adapts to it."""
    out = []
    for flag, meaning in health.FLAGS.items():
        if practice is None:
            adapted = ""
        elif flag in practice.health_flags:
            adapted = "adapted"
        elif flag in practice.unaffected_by:
            adapted = "needs no change"
        else:
            adapted = "not adapted"
        out.append(Flag(flag, meaning, adapted, flag in checked))
    return out


def settings(practice: practices.Practice, values: Mapping[str, str], checked_flags: list[str],
             prefix: str = "") -> tuple[dict[str, str], float | None, str]:
    """The --set settings and --minutes a practice form's values stand for, and an error for the minutes."""
    out: dict[str, str] = {}
    for param in practice.params:
        if health.is_flag(param.name):
            continue
        name = prefix + param.name
        if param.type == "bool":
            out[param.name] = "true" if _truthy(values.get(name)) else "false"
        elif name in values:
            out[param.name] = values[name]
    if checked_flags:
        out["health"] = ",".join(checked_flags)
    raw = values.get(prefix + "minutes", "").strip()
    if not raw:
        return out, None, ""
    try:
        return out, float(raw), ""
    except ValueError:
        return out, None, f"--minutes: {raw!r} is not a number ({practice.minutes.describe_range()})"


def field_of(error: GuidedAudioError) -> str:
    """The parameter an error message blames ('minutes', 'health', a parameter), or GENERAL."""
    text = str(error)
    match = _SET.match(text)
    if match:
        return match.group(1)
    if _MINUTES.match(text):
        return "minutes"
    return GENERAL


def with_errors(form: list[Field], errors: Mapping[str, str], prefix: str = "") -> list[Field]:
    """The fields, each with the error that names it."""
    return [replace(f, error=errors.get(f.key if not prefix else f.name, "")) for f in form]


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes", "on")
