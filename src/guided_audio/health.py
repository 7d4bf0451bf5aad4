"""Health flags: the one vocabulary for session files, `--set health=...`, templates and the README.

A flag is a private boolean parameter of a template: a template adapts to a flag by declaring a
`bool` parameter of that name. A template that has been checked against a flag and needs no
words for it lists the flag in its front matter's `unaffected_by`. Any other flag given to it
cannot be honoured, which is a warning (an error with --strict).

Flags are health information about real people: they shape what is said and are never written
into tags, sidecars, indexes, feeds or messages (see `guided_audio.privacy`).
"""

from __future__ import annotations

from collections.abc import Iterable

from guided_audio.errors import ParameterError, did_you_mean

# flag -> what it means, as `show`, `new-session` and the README explain it
FLAGS: dict[str, str] = {
    "respiratory": "a lung or breathing condition: no holds, gentle out-breaths, own pace",
    "cardiac": "a heart condition: no holds, gentle out-breaths, own pace",
    "pregnancy": "pregnancy: no holds, gentle out-breaths, side-lying or sitting, never flat on the back",
    "recent_surgery": "recent surgery: no holds, gentle out-breaths, own pace",
    "panic": "prone to panic: 'slower and softer' woven in, never 'deeper'; no holds",
    "trauma": "the breath or touch may not feel safe: other anchors; the touched partner leads",
    "spinal_cord_injury_below_t6": "spinal cord injury below T6: skin that cannot feel, look as well as touch",
    "spinal_cord_injury_t6": "spinal cord injury at or above T6: also the autonomic dysreflexia warning",
    "stoma": "a stoma: no pressure, touch goes around it",
    "catheter": "a catheter: no pressure, touch goes around it",
    "port": "an implanted port: no pressure, touch goes around it",
    "pump": "a pump (insulin, pain): no pressure, touch goes around it",
    "fresh_incision": "a fresh incision or wound: no pressure, touch goes around it",
    "radiation_field": "skin in a radiation field: no pressure, touch goes around it",
    "lymphedema": "lymphedema: light touch only on the affected limb",
    "chronic_pain": "chronic pain or arthritis: warm up, pillows, time it with medication",
}
BREATH_FLAGS = ("respiratory", "cardiac", "pregnancy", "recent_surgery", "panic")
DEVICE_FLAGS = ("stoma", "catheter", "port", "pump", "fresh_incision", "radiation_field")
# Names people reach for that need a choice between flags, with the hint to give.
_AMBIGUOUS = {
    "spinal_cord_injury": "say which: spinal_cord_injury_t6 (at or above T6) or spinal_cord_injury_below_t6",
    "sci": "say which: spinal_cord_injury_t6 (at or above T6) or spinal_cord_injury_below_t6",
    "devices": "name each device: " + ", ".join(DEVICE_FLAGS),
    "device": "name each device: " + ", ".join(DEVICE_FLAGS),
}


def is_flag(name: str) -> bool:
    return name in FLAGS


def unknown_flag_hint(flag: str) -> str:
    """Why `flag` is not a flag, and what to write instead."""
    if flag in _AMBIGUOUS:
        return f"'{flag}' is not a health flag; {_AMBIGUOUS[flag]}"
    hint = did_you_mean(flag, FLAGS) or f" (known: {', '.join(FLAGS)})"
    return f"unknown health flag '{flag}'{hint}"


def split(text: str) -> list[str]:
    """The names in `a,b c`, unchecked."""
    return text.replace(",", " ").split()


def parse_list(text: str, option: str = "--set health") -> list[str]:
    """Flags from `a,b c`: checked against the vocabulary, duplicates dropped."""
    flags: list[str] = []
    for flag in split(text):
        if flag not in FLAGS:
            raise ParameterError(f"{option}: {unknown_flag_hint(flag)}")
        if flag not in flags:
            flags.append(flag)
    return flags


def describe(flags: Iterable[str] = FLAGS) -> list[str]:
    """`name: meaning` lines for help texts."""
    return [f"{flag}: {FLAGS[flag]}" for flag in flags]
