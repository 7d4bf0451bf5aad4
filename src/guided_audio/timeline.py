"""The timeline: every event of a session placed at an exact sample position.

Positions are integers in samples. Breath cycles are placed from exact rational
arithmetic (cycle k of a block starts at block start + k x period), so a long
session does not drift however many cycles it has.

A spoken line is placed as its phrases (see `guided_audio.phrasing`): one `speech`
event per phrase, with the pauses between them carrying the line's pace, and one
`line` event spanning them all with the line's whole text and rate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from guided_audio import markup, phrasing
from guided_audio.phrasing import Phrase

# (text, words per minute[, voice role]) -> samples; the role is passed only when it is not "main"
SpeechLength = Callable[..., int]
Phrases = Callable[[str, int, str], Sequence[Phrase]]  # (text, wpm, voice role) -> the line's phrases
CueLength = Callable[[str], int]  # cue name -> samples of the whole sound
CUE_WAIT_CAP = 4.0  # seconds the script waits after a cue by default
TAIL = 3.0  # seconds after the last sound, for ring-outs and the bed's fade-out
FILL_ROUNDS = 4
WORD_MARGIN = 0.15  # seconds a word spoken at a phase start leaves before the next phase


@dataclass(frozen=True)
class Event:
    """One thing that happens in the session, from `start` to `end` samples."""

    kind: str  # speech | line | cue | phase | guide | silence | section | part | ambient
    start: int
    end: int
    text: str = ""  # speech text (a phrase), a line's whole text, or a section title
    name: str = ""  # cue name, breath phase, ambient bed
    rate: int = 0  # words per minute: a phrase's engine rate, a line's pace
    voice: str = "main"  # the voice role of speech
    levels: tuple[float, float] = (0.0, 0.0)  # a guide's swell from and to (0..1)


@dataclass(frozen=True)
class Timeline:
    """A session's events, sorted by start, and its total length."""

    sample_rate: int
    length: int
    events: tuple[Event, ...]
    warnings: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return self.length / self.sample_rate

    def of_kind(self, kind: str) -> list[Event]:
        """The events of one kind, in order."""
        return [e for e in self.events if e.kind == kind]


def plan(
    script: markup.Script,
    *,
    base_wpm: int,
    speech_length: SpeechLength,
    cue_length: CueLength,
    sample_rate: int,
    target_seconds: float | None = None,
    phrases: Phrases | None = None,
) -> Timeline:
    """Place every item of `script`; fill items share the time left to reach `target_seconds`.

    `phrases` splits a line into phrases (default: every line is one phrase at its own rate).
    """
    layout = _Layout(script, base_wpm, speech_length, cue_length, sample_rate, phrases or whole_line)
    fill_samples = 0
    if target_seconds is not None and layout.fill_weight() > 0:
        target = round(target_seconds * sample_rate)
        for _ in range(FILL_ROUNDS):
            # A sound still ringing at the end absorbs some of the fill: top up while that
            # helps, but never past the target (breathing blocks take whole cycles).
            short = target - layout.run(fill_samples=fill_samples, placing=False)
            if short <= 0:
                break
            if layout.run(fill_samples=fill_samples + short, placing=False) > target:
                break
            fill_samples += short
    end = layout.run(fill_samples=fill_samples, placing=True)
    late = target_seconds is not None and end > (target_seconds + max(OVERRUN, 0.03 * target_seconds)) * sample_rate
    if late and target_seconds is not None and layout.fill_weight() > 0:
        layout.warnings.append(
            f"the script's spoken parts take {_clock(end / sample_rate)}, longer than the {target_seconds / 60:g} "
            "minutes asked, leaving no quiet time to share out: choose a longer session, or fewer options"
        )
    return layout.timeline()


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{round(seconds % 60):02d}"


OVERRUN = 15.0  # seconds past the target a session may run (whole breaths, a ringing bell) without a word


def whole_line(text: str, wpm: int, role: str) -> tuple[Phrase, ...]:
    """A line as one phrase at its own rate (no phrasing)."""
    return (Phrase(text, wpm),)


class _Layout:
    def __init__(
        self, script: markup.Script, base_wpm: int, speech_length: SpeechLength, cue_length: CueLength,
        sample_rate: int, phrases: Phrases,
    ) -> None:
        self.script = script
        self.phrases = phrases
        self.base_wpm = base_wpm
        self.speech_length = speech_length
        self.cue_length = cue_length
        self.sr = sample_rate

    def fill_weight(self) -> float:
        return sum(
            item.length.fill
            for item in self.script.items
            if isinstance(item, (markup.Pause, markup.Breathe)) and item.length is not None
        )

    def samples(self, seconds: float | Fraction) -> int:
        return round(Fraction(str(seconds)) * self.sr) if isinstance(seconds, float) else round(seconds * self.sr)

    def run(self, *, fill_samples: int, placing: bool) -> int:
        """Lay out the script; return the total length in samples."""
        self.events: list[Event] = []
        self.warnings: list[str] = []
        self.cursor = 0
        self.pending = 0  # the automatic gap after the last spoken line, not yet spent
        self.fill_left = fill_samples
        self.weight_left = self.fill_weight()
        self.last_end = 0
        self.placing = placing
        for item in self.script.items:
            getattr(self, "place_" + type(item).__name__.lower())(item)
        end = max(self.cursor + self.pending, self.last_end) + self.samples(TAIL)
        self.length = end
        self.close_sections()
        return end

    def timeline(self) -> Timeline:
        order = {"section": 0, "ambient": 1, "phase": 2, "guide": 3, "silence": 4, "cue": 5, "line": 6, "speech": 7}
        events = sorted(self.events, key=lambda e: (e.start, order[e.kind], e.end))
        return Timeline(self.sr, self.length, tuple(events), tuple(dict.fromkeys(self.warnings)))

    def length_of(self, text: str, wpm: int, voice: str) -> int:
        return self.speech_length(text, wpm) if voice == "main" else self.speech_length(text, wpm, voice)

    def add(self, event: Event) -> None:
        self.events.append(event)
        self.last_end = max(self.last_end, event.end)

    def flush(self) -> None:
        self.cursor += self.pending
        self.pending = 0

    def share(self, weight: float) -> int:
        """This fill item's share of the fill time left."""
        if self.weight_left <= 0:
            return 0
        share = round(self.fill_left * weight / self.weight_left)
        self.weight_left -= weight
        return share

    def spend_fill(self, used: int) -> None:
        self.fill_left = max(0, self.fill_left - used)

    # -- items ------------------------------------------------------------------------

    def place_speech(self, item: markup.Speech) -> None:
        """The line's phrases with the pauses that pace them; time they cannot hold goes after the line."""
        self.flush()
        wpm = item.rate.resolve(self.base_wpm)
        phrases = self.phrases(item.text, wpm, item.voice)
        lengths = [self.length_of(p.text, p.wpm, item.voice) for p in phrases]
        offsets, after = phrasing.place(item.text, wpm, phrases, lengths, self.sr)
        start = self.cursor
        for phrase, offset, length in zip(phrases, offsets, lengths):
            a = start + offset
            self.add(Event("speech", a, a + length, text=phrase.text, rate=phrase.wpm, voice=item.voice))
        self.cursor = start + offsets[-1] + lengths[-1]
        self.add(Event("line", start, self.cursor, text=item.text, rate=wpm, voice=item.voice))
        self.pending = self.samples(item.gap) + after

    def place_pause(self, item: markup.Pause) -> None:
        self.pending = 0  # an explicit pause replaces the automatic gap
        if item.length.fill:
            length = self.share(item.length.fill)
            self.spend_fill(length)
        else:
            length = self.samples(item.length.seconds)
        if item.silence:
            self.add(Event("silence", self.cursor, self.cursor + length))
        self.cursor += length

    def place_section(self, item: markup.Section) -> None:
        self.flush()
        self.add(Event("section", self.cursor, self.cursor, text=item.title))

    def place_ambient(self, item: markup.Ambient) -> None:
        self.add(Event("ambient", self.cursor + self.pending, self.cursor + self.pending, name=item.name or "none"))

    def place_cue(self, item: markup.Cue) -> None:
        self.flush()
        length = self.cue_length(item.name)
        wait = self.samples(item.wait) if item.wait is not None else min(length, self.samples(CUE_WAIT_CAP))
        self.add(Event("cue", self.cursor, self.cursor + length, name=item.name))
        self.cursor += wait

    def place_breathe(self, item: markup.Breathe) -> None:
        self.flush()
        period = sum((Fraction(str(s)) for _, s in item.phases), Fraction(0))
        period_samples = period * self.sr
        if item.cycles is not None:
            cycles = item.cycles
        elif item.length is not None and item.length.fill:
            share = self.share(item.length.fill)
            cycles = math.floor(share / period_samples)
            if self.placing and cycles < 1:
                self.warnings.append(
                    f"line {item.line}: the target length leaves no room for this breathing block; "
                    "it runs for one cycle and the session is longer than asked"
                )
            cycles = max(1 if self.placing else 0, cycles)  # measuring: a block with no share takes no time
            self.spend_fill(round(cycles * period_samples))
        else:
            assert item.length is not None  # the parser gives a breathing block cycles or a length
            cycles = max(1, math.floor(Fraction(str(item.length.seconds)) / period))
        start = self.cursor
        if self.placing:
            self.place_cycles(item, start, cycles, period)
        self.cursor = start + round(cycles * period_samples)

    def place_cycles(self, item: markup.Breathe, start: int, cycles: int, period: Fraction) -> None:
        offsets = []
        at = Fraction(0)
        for phase, seconds in item.phases:
            offsets.append((phase, at, at + Fraction(str(seconds))))
            at += Fraction(str(seconds))
        wpm = item.rate.resolve(self.base_wpm)
        words = {p: (w, self.length_of(w, wpm, item.voice)) for p, w in item.words.items()}
        for phase, word_and_length in list(words.items()):
            seconds = dict(item.phases)[phase]
            room = self.samples(Fraction(str(seconds)) - Fraction(str(WORD_MARGIN)))
            if word_and_length[1] > room:
                self.warnings.append(
                    f"line {item.line}: '{word_and_length[0]}' takes "
                    f"{word_and_length[1] / self.sr:.2f} s, longer than the {seconds:g} s "
                    f"{markup.PHASE_NAMES[phase]} phase; it is not spoken (shorten the word or "
                    "lengthen the phase)"
                )
                del words[phase]
        say_cycles = item.say_cycles if item.say_cycles is not None else cycles
        swells = _swells([p for p, _ in item.phases]) if item.guide else {}
        for k in range(cycles):
            for phase, begin, finish in offsets:
                a = start + round((k * period + begin) * self.sr)
                b = start + round((k * period + finish) * self.sr)
                self.add(Event("phase", a, b, name=markup.PHASE_NAMES[phase]))
                if phase in swells:
                    self.add(Event("guide", a, b, name=markup.PHASE_NAMES[phase], levels=swells[phase]))
                if item.cue and phase in ("in", "out"):
                    self.add(Event("cue", a, a + self.cue_length(item.cue), name=item.cue))
                if phase in words and k < say_cycles:
                    word, length = words[phase]
                    self.add(Event("speech", a, a + length, text=word, rate=wpm, voice=item.voice))

    def close_sections(self) -> None:
        sections = [i for i, e in enumerate(self.events) if e.kind == "section"]
        for n, index in enumerate(sections):
            nxt = self.events[sections[n + 1]].start if n + 1 < len(sections) else self.length
            event = self.events[index]
            self.events[index] = Event("section", event.start, nxt, text=event.text)


def _swells(phases: list[str]) -> dict[str, tuple[float, float]]:
    """The breath guide's level from and to in each phase: up on the in-breath, down on the out."""
    top = 0.8 if "top" in phases else 1.0  # a top-up inhale rises the rest of the way
    swells = {"in": (0.0, top), "top": (top, 1.0), "out": (1.0, 0.0)}
    if "hold" in phases:
        swells["hold"] = (1.0, 1.0)
    return {p: swells[p] for p in phases if p in swells}  # no guide sound in a rest


def join(parts: list[tuple[str, Timeline]]) -> Timeline:
    """Timelines one after another, each marked by a `part` event with its title."""
    events: list[Event] = []
    warnings: list[str] = []
    at = 0
    for number, (title, part) in enumerate(parts, start=1):
        events.append(Event("part", at, at + part.length, text=title))
        events.extend(dataclasses.replace(e, start=e.start + at, end=e.end + at) for e in part.events)
        warnings.extend(f"part {number}: {w}" for w in part.warnings)
        at += part.length
    return Timeline(parts[0][1].sample_rate, at, tuple(events), tuple(warnings))
