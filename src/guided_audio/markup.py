"""The script markup: what a rendered template says, one item per line.

A line is one of:

    # Section title
    Any other text: one spoken utterance.
    @pause SECONDS | @pause fill[:WEIGHT]
    @silence SECONDS | @silence fill[:WEIGHT]
    @cue NAME|none [wait=SECONDS]
    @breathe in=S out=S [top=S] [hold=S] [rest=S] (cycles=N | seconds=S | fill[:W])
             [cue=NAME|none] [guide=on|off] [say_in="..."] [say_top=..] [say_hold=..]
             [say_out=..] [say_rest=..] [say_cycles=N]
    @ambient NAME | @ambient none
    @rate WPM | @rate PERCENT%
    @gap SECONDS
    @voice main | @voice second
    // comment

Blank lines and comments are ignored. See the README for the full description.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from guided_audio.errors import MarkupError

DEFAULT_GAP = 1.6
VOICE_ROLES = ("main", "second")  # render's --voice and --second-voice
BREATH_PHASES = ("in", "top", "hold", "out", "rest")
PHASE_NAMES = {"in": "inhale", "top": "top-up", "hold": "hold", "out": "exhale", "rest": "rest"}
MAX_SPOKEN_CHARS = 600
# Bounds on every number, so that no script, however written, asks for unbounded work. A
# practice's own maximum length is checked on the whole plan (see `guided_audio.program`).
MAX_SECONDS = 3 * 3600  # any single pause, silence or breathing block
MAX_GAP = 30.0  # @gap and a cue's wait
MAX_FILL_WEIGHT = 1000.0
MAX_CYCLES = 5000
MIN_BREATH = 1.0  # seconds of one whole breath: a shorter one would plan unbounded cycles
MAX_ITEMS = 20000  # lines of markup that do something
# Put before a markup character in a value (see `literal`): the line is then spoken text, and
# the mark itself is taken out of what is spoken.
LITERAL_MARK = "\u2060"  # WORD JOINER: invisible, and not whitespace, so `strip()` keeps it
# Every character str.splitlines() breaks at, and the other control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MARKUP_START = re.compile(r"(@|#|/)")


def literal(value: str) -> str:
    """A user's value as plain words, safe anywhere a template puts it.

    Line breaks of every kind and other control characters become spaces (a value cannot start a
    new line of markup), quotes and backslashes cannot end or escape a directive's quoted argument,
    and every '@', '#' and '/' is marked so that no piece of the value, even one a template splits
    off and puts at the start of a line, reads as a directive, a section or a comment.
    """
    text = _CONTROL.sub(" ", value.replace(LITERAL_MARK, ""))
    text = text.replace('"', "\u201d").replace("\\", " ")
    text = " ".join(text.split())
    return _MARKUP_START.sub(LITERAL_MARK + r"\1", text)


def spoken(text: str) -> str:
    """Text as it is spoken: without the marks `literal` adds."""
    return text.replace(LITERAL_MARK, "")


@dataclass(frozen=True)
class Rate:
    """A speaking rate: absolute words per minute, or a percentage of the session's base rate."""

    wpm: float | None = None
    percent: float | None = None

    def resolve(self, base_wpm: float) -> int:
        """Words per minute for a session whose base rate is `base_wpm`."""
        if self.wpm is not None:
            return int(round(self.wpm))
        return int(round(base_wpm * (self.percent if self.percent is not None else 100.0) / 100.0))


@dataclass(frozen=True)
class Length:
    """A duration in seconds, or a weighted share of the time left to reach the target length."""

    seconds: float = 0.0
    fill: float = 0.0  # weight; > 0 means "fill"


@dataclass(frozen=True)
class Speech:
    text: str
    rate: Rate
    gap: float
    line: int
    voice: str = "main"


@dataclass(frozen=True)
class Pause:
    length: Length
    silence: bool
    line: int


@dataclass(frozen=True)
class Section:
    title: str
    line: int


@dataclass(frozen=True)
class Cue:
    name: str
    wait: float | None
    line: int


@dataclass(frozen=True)
class Breathe:
    phases: tuple[tuple[str, float], ...]  # (phase key, seconds) with zero-length phases left out
    length: Length | None  # seconds or fill; None when cycles is given
    cycles: int | None
    cue: str | None
    guide: bool
    words: dict[str, str] = field(hash=False)
    say_cycles: int | None
    rate: Rate
    line: int
    voice: str = "main"

    @property
    def period(self) -> float:
        return sum(seconds for _, seconds in self.phases)


@dataclass(frozen=True)
class Ambient:
    name: str | None
    line: int


Item = Speech | Pause | Section | Cue | Breathe | Ambient


@dataclass(frozen=True)
class Script:
    """A parsed script: its items in order, and where it came from."""

    source: str
    items: tuple[Item, ...]

    def spoken_texts(self) -> list[tuple[str, Rate, str]]:
        """Every (text, rate, voice role) the speech engine must say, in order, with repeats."""
        out: list[tuple[str, Rate, str]] = []
        for item in self.items:
            if isinstance(item, Speech):
                out.append((item.text, item.rate, item.voice))
            elif isinstance(item, Breathe):
                out.extend((word, item.rate, item.voice) for word in item.words.values())
        return out

    def audible(self) -> bool:
        """Whether the script says or sounds anything: a spoken line, a cue, a breath cue or guide."""
        return any(
            isinstance(item, (Speech, Cue)) or (isinstance(item, Breathe) and (item.cue or item.guide or item.words))
            for item in self.items
        )

    def voice_roles(self) -> set[str]:
        """The voice roles the script uses."""
        return {role for _, _, role in self.spoken_texts()}


_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def parse(text: str, source: str = "<script>") -> Script:
    """Parse rendered markup into a Script, or raise MarkupError naming the line."""
    parser = _Parser(source)
    for number, raw in enumerate(text.splitlines(), start=1):
        parser.line(raw.strip(), number)
        if len(parser.items) > MAX_ITEMS:
            raise MarkupError(f"the script has more than {MAX_ITEMS} items; split it into parts", source=source,
                              line=number)
    return Script(source=source, items=tuple(parser.items))


class _Parser:
    def __init__(self, source: str):
        self.source = source
        self.items: list[Item] = []
        self.rate = Rate(percent=100.0)
        self.gap = DEFAULT_GAP
        self.voice = "main"

    def fail(self, message: str, number: int) -> MarkupError:
        return MarkupError(message, source=self.source, line=number)

    def line(self, text: str, number: int) -> None:
        if not text or text.startswith("//"):  # a value from `literal` never starts a line with these
            return
        if text.startswith("#"):
            title = text.lstrip("#").strip()
            if not title:
                raise self.fail("a section line needs a title after '#'", number)
            self.items.append(Section(spoken(title), number))
        elif text.startswith("@"):
            self.directive(text, number)
        else:
            if len(text) > MAX_SPOKEN_CHARS:
                raise self.fail(
                    f"spoken line is {len(text)} characters; split it (at most {MAX_SPOKEN_CHARS})",
                    number,
                )
            self.items.append(Speech(spoken(text), self.rate, self.gap, number, self.voice))

    def directive(self, text: str, number: int) -> None:
        try:
            words = shlex.split(text[1:])
        except ValueError as exc:
            raise self.fail(f"cannot read directive: {exc}", number) from None
        if not words:
            raise self.fail("empty directive '@'", number)
        name, args = words[0], words[1:]
        handler = getattr(self, f"do_{name}", None)
        if handler is None:
            known = ", ".join("@" + n[3:] for n in dir(self) if n.startswith("do_"))
            raise self.fail(f"unknown directive @{name} (known: {known})", number)
        handler(args, number)

    # -- directives -------------------------------------------------------------------

    def do_pause(self, args: list[str], number: int) -> None:
        self.items.append(Pause(self.length(args, number, "@pause"), False, number))

    def do_silence(self, args: list[str], number: int) -> None:
        self.items.append(Pause(self.length(args, number, "@silence"), True, number))

    def do_gap(self, args: list[str], number: int) -> None:
        self.gap = self.seconds(self.single(args, number, "@gap"), number, "@gap", limit=MAX_GAP)

    def do_rate(self, args: list[str], number: int) -> None:
        value = self.single(args, number, "@rate")
        if value.endswith("%"):
            percent = self.seconds(value[:-1], number, "@rate", limit=1e6)
            if not 50 <= percent <= 200:
                raise self.fail(f"@rate {value}: a percentage must be between 50% and 200%", number)
            self.rate = Rate(percent=percent)
        else:
            wpm = self.seconds(value, number, "@rate", limit=1e6)
            if not 60 <= wpm <= 400:
                raise self.fail(f"@rate {value}: words per minute must be between 60 and 400", number)
            self.rate = Rate(wpm=wpm)

    def do_voice(self, args: list[str], number: int) -> None:
        role = self.single(args, number, "@voice")
        if role not in VOICE_ROLES:
            raise self.fail(f"@voice {role}: use @voice main or @voice second (render's --voice and --second-voice)", number)
        self.voice = role

    def do_ambient(self, args: list[str], number: int) -> None:
        value = self.single(args, number, "@ambient")
        self.items.append(Ambient(None if value == "none" else value, number))

    def do_cue(self, args: list[str], number: int) -> None:
        if not args:
            raise self.fail("@cue needs a sound name, e.g. '@cue bell'", number)
        options = self.options(args[1:], number, "@cue", {"wait"})
        wait = self.seconds(options["wait"], number, "@cue wait", limit=MAX_GAP) if "wait" in options else None
        if args[0] != "none":  # 'none' lets a template pass a user's "no cue" straight through
            self.items.append(Cue(args[0], wait, number))

    def do_breathe(self, args: list[str], number: int) -> None:
        keys = {*BREATH_PHASES, "cycles", "seconds", "cue", "guide", "say_cycles"}
        keys |= {f"say_{p}" for p in BREATH_PHASES}
        flags = [a for a in args if a.startswith("fill")]
        options = self.options([a for a in args if a not in flags], number, "@breathe", keys)
        phases = tuple(
            (p, self.seconds(options[p], number, f"@breathe {p}"))
            for p in BREATH_PHASES
            if p in options
        )
        given = dict(phases)
        if given.get("in", 0) <= 0 or given.get("out", 0) <= 0:
            raise self.fail("@breathe needs in=SECONDS and out=SECONDS, both above zero", number)
        if any(s > 60 for _, s in phases):
            raise self.fail("@breathe: a phase longer than 60 seconds is not a breath", number)
        phases = tuple((p, s) for p, s in phases if s > 0)
        if sum(s for _, s in phases) < MIN_BREATH:
            raise self.fail(f"@breathe: a whole breath shorter than {MIN_BREATH:g} second is not a breath", number)
        chosen = [k for k in ("cycles", "seconds") if k in options] + (["fill"] if flags else [])
        if len(chosen) != 1:
            raise self.fail("@breathe needs exactly one of cycles=N, seconds=S or fill", number)
        cycles = self.count(options["cycles"], number, "cycles") if "cycles" in options else None
        length = None
        if "seconds" in options:
            length = Length(seconds=self.seconds(options["seconds"], number, "@breathe seconds"))
        elif flags:
            length = self.length(flags, number, "@breathe")
        guide = options.get("guide", "off")
        if guide not in ("on", "off"):
            raise self.fail(f"@breathe guide={guide}: use guide=on or guide=off", number)
        words = {p: spoken(options[f"say_{p}"]) for p in BREATH_PHASES if spoken(options.get(f"say_{p}", "")).strip()}
        unused = [p for p in words if p not in dict(phases)]
        if unused:
            raise self.fail(f"@breathe say_{unused[0]} is set but that phase has no length", number)
        say_cycles = self.count(options["say_cycles"], number, "say_cycles") if "say_cycles" in options else None
        cue = options.get("cue", "soft-chime")
        self.items.append(
            Breathe(phases, length, cycles, None if cue == "none" else cue, guide == "on",
                    words, say_cycles, self.rate, number, self.voice)
        )

    # -- argument helpers -------------------------------------------------------------

    def single(self, args: list[str], number: int, what: str) -> str:
        if len(args) != 1:
            raise self.fail(f"{what} takes exactly one value", number)
        return args[0]

    def seconds(self, value: str, number: int, what: str, limit: float = MAX_SECONDS) -> float:
        if not _NUMBER.match(value) or len(value) > 12:
            raise self.fail(f"{what}: '{value[:20]}' is not a number of seconds", number)
        seconds = float(value)
        if seconds > limit:
            raise self.fail(f"{what}: {value} seconds is longer than the {limit:g} s allowed", number)
        return seconds

    def count(self, value: str, number: int, what: str, limit: int = MAX_CYCLES) -> int:
        if not value.isdecimal() or len(value) > 9 or not 1 <= int(value) <= limit:
            raise self.fail(f"{what}={value[:20]}: needs a whole number from 1 to {limit}", number)
        return int(value)

    def length(self, args: list[str], number: int, what: str) -> Length:
        value = self.single(args, number, what)
        if value == "fill" or value.startswith("fill:"):
            weight = value[5:] or "1"
            if not _NUMBER.match(weight) or len(weight) > 12 or not 0 < float(weight) <= MAX_FILL_WEIGHT:
                raise self.fail(f"{what} {value[:20]}: the weight after 'fill:' must be a number above 0, "
                                f"at most {MAX_FILL_WEIGHT:g}", number)
            return Length(fill=float(weight))
        return Length(seconds=self.seconds(value, number, what))

    def options(self, args: list[str], number: int, what: str, allowed: set[str]) -> dict[str, str]:
        options: dict[str, str] = {}
        for arg in args:
            key, sep, value = arg.partition("=")
            if not sep:
                raise self.fail(f"{what}: expected KEY=VALUE, got '{arg}'", number)
            if key not in allowed:
                raise self.fail(f"{what}: unknown option '{key}' (known: {', '.join(sorted(allowed))})", number)
            options[key] = value
        return options
