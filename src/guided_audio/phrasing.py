"""Phrasing: a spoken line as phrases at a calm but natural rate, with pauses that carry the pace.

Human narrators of guided practices do not speak in slow motion: they say a phrase at a
natural rate and let the pauses between phrases and sentences carry the pace. A line is
split at sentence boundaries (. ! ?), clause boundaries (, ; : and dashes) and, in a long
stretch without punctuation, once before a conjunction or preposition near its middle (a
breath group). Each phrase is synthesized on its own at the voice's phrase rate (see
`speech.phrase_rate`), and the time the line should take at its words-per-minute rate,
less the phrases' real lengths, is shared among the boundaries by kind (`allocate`).
What the boundaries cannot hold goes after the line, so the session keeps its pace.

A voice without a phrase rate (recordings), or a line asked for at or above the voice's
phrase rate, is one phrase spoken at the line's own rate, as before.

`phrases_of` is the one function the timeline and the speech stage both use, so the
clips synthesized are exactly the phrases the timeline places.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from guided_audio import markup, speech

SENTENCE, CLAUSE, BREATH, END = "sentence", "clause", "breath", ""
# Seconds of pause at a boundary: (shortest, longest, weight in sharing the time left).
# PRACTICE-NOTES: 1.5-2 s between sentences, shorter within a sentence.
PAUSES: dict[str, tuple[float, float, float]] = {
    SENTENCE: (0.6, 2.0, 3.0),
    CLAUSE: (0.3, 1.4, 1.2),
    BREATH: (0.2, 1.0, 0.8),
}
# A stretch of this many words without punctuation is split before a joining word near its middle
# (halves still this long are split again). Measured on the practices' lines with joe: at 9 words
# (and pauses of at most 1.0 / 0.6 s) lines ran 16 % faster than asked; at 7 words 8 %.
BREATH_WORDS = 7
MIN_CLAUSE_WORDS = 2  # a shorter clause ("Now,") stays with its neighbour: Piper phrases it itself
# Words a breath group may start with: conjunctions and prepositions.
_JOINS = frozenset({
    "and", "but", "or", "so", "as", "while", "when", "whenever", "until", "because", "if", "though",
    "although", "that", "which", "where", "with", "without", "into", "onto", "to", "toward", "towards",
    "from", "for", "of", "in", "on", "at", "through", "across", "around", "over", "under", "between",
    "against", "along", "after", "before", "like", "than", "about", "within", "beside", "upon", "then",
    "once", "since", "whether", "how", "what", "who", "whatever", "wherever", "however",
    "might", "may", "can", "could", "would", "should", "will",  # a breath before the verb of a long subject
})
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "e.g", "i.e", "etc", "vs"})
_SENTENCE_END = re.compile(r"(?:[.!?\u2026]+)[\"'\u201d\u2019)\]]*$")
_CLAUSE_END = re.compile(r"[,;:][\"'\u201d\u2019)\]]*$")
_DASH = re.compile(r"^(?:-{1,2}|\u2013|\u2014)$")


@dataclass(frozen=True)
class Phrase:
    """A piece of a line spoken on its own, its engine rate, and the boundary after it."""

    text: str
    wpm: int
    after: str = END  # SENTENCE, CLAUSE, BREATH, or END (the last phrase of its line)


def words(text: str) -> int:
    """The words a line's pace is counted in (a dash is not a word)."""
    return sum(1 for token in text.split() if any(c.isalnum() for c in token))


def split(text: str) -> list[tuple[str, str]]:
    """`text` as (phrase, boundary after it) pairs; the last boundary is END."""
    pieces: list[list[str]] = [[]]
    kinds: list[str] = []
    tokens = text.split()
    for n, token in enumerate(tokens):
        last = n == len(tokens) - 1
        if _DASH.match(token):  # a spaced dash is not spoken: a clause boundary
            if pieces[-1]:
                kinds.append(CLAUSE)
                pieces.append([])
            continue
        pieces[-1].append(token)
        if last:
            break
        kind = _boundary(token)
        if kind:
            kinds.append(kind)
            pieces.append([])
    pieces = [p for p in pieces if p] or [[]]
    kinds = kinds[: len(pieces) - 1]
    pairs = _merge_short(list(zip(pieces, [*kinds, END])))
    out: list[tuple[str, str]] = []
    for piece, kind in pairs:
        groups = _breath_groups(piece)
        out.extend((" ".join(g), BREATH) for g in groups[:-1])
        out.append((" ".join(groups[-1]), kind))
    return out


def _boundary(token: str) -> str:
    """The boundary a token ends with, if any."""
    bare = token.rstrip(".").lower()
    if _SENTENCE_END.search(token) and not (token.endswith(".") and bare in _ABBREVIATIONS):
        return SENTENCE
    if _CLAUSE_END.search(token) or token.endswith(("\u2014", "\u2013", "--")):
        return CLAUSE
    return END


def _merge_short(pairs: list[tuple[list[str], str]]) -> list[tuple[list[str], str]]:
    """A clause of fewer than MIN_CLAUSE_WORDS words joined to the phrase after it (or before it)."""
    out: list[tuple[list[str], str]] = []
    carry: list[str] = []
    for piece, kind in pairs:
        piece = carry + piece
        carry = []
        if kind == CLAUSE and len(piece) < MIN_CLAUSE_WORDS:
            carry = piece
            continue
        if len(piece) < MIN_CLAUSE_WORDS and out and out[-1][1] == CLAUSE:
            previous, _ = out.pop()
            piece = previous + piece
        out.append((piece, kind))
    if carry:  # only a short clause at the very end: keep it
        out.append((carry, END))
    return out


def _breath_groups(piece: list[str]) -> list[list[str]]:
    """A long stretch split before a joining word near its middle (each half again if still long)."""
    if len(piece) < BREATH_WORDS:
        return [piece]
    middle = len(piece) / 2
    candidates = [i for i in range(3, len(piece) - 2)
                  if _bare(piece[i]) in _JOINS and _bare(piece[i - 1]) not in _JOINS]  # not "or | as"
    if not candidates:
        return [piece]
    at = min(candidates, key=lambda i: (abs(i - middle), i))
    return _breath_groups(piece[:at]) + _breath_groups(piece[at:])


def _bare(word: str) -> str:
    return word.lower().strip("\"'\u201c\u2018\u201d\u2019()")


def phrases_of(text: str, wpm: int, voice: str | None) -> tuple[Phrase, ...]:
    """The phrases of a line at `wpm` spoken by `voice` (None: the default voice)."""
    rate = speech.phrase_rate(voice)
    if rate is None or wpm >= rate:
        return (Phrase(text, wpm),)
    return tuple(Phrase(piece, rate, kind) for piece, kind in split(text))


def paced(phrases: Sequence[Phrase], wpm: int) -> bool:
    """Whether the pauses carry the line's pace (its phrases are spoken faster than `wpm`)."""
    return phrases[0].wpm > wpm


def target_seconds(text: str, wpm: int) -> float:
    """How long a line should take, pauses included, at `wpm`."""
    return words(text) * 60.0 / max(wpm, 1)


def allocate(boundaries: Sequence[str], room: float) -> tuple[list[float], float]:
    """Seconds of pause at each boundary, sharing `room` seconds by kind, and what is left over.

    Every boundary gets at least its shortest pause (so a line whose phrases already fill
    its time runs a little long) and at most its longest; the rest is shared in proportion
    to the kinds' weights, and what no boundary can hold is returned to go after the line.
    """
    pauses = [PAUSES[kind][0] for kind in boundaries]
    rest = room - sum(pauses)
    if rest <= 0:
        return pauses, 0.0
    open_ = [i for i, kind in enumerate(boundaries) if PAUSES[kind][1] > pauses[i]]
    while rest > 1e-9 and open_:
        weight = sum(PAUSES[boundaries[i]][2] for i in open_)
        share = rest / weight
        full = [i for i in open_ if pauses[i] + share * PAUSES[boundaries[i]][2] >= PAUSES[boundaries[i]][1]]
        if not full:
            for i in open_:
                pauses[i] += share * PAUSES[boundaries[i]][2]
            rest = 0.0
            break
        for i in full:
            rest -= PAUSES[boundaries[i]][1] - pauses[i]
            pauses[i] = PAUSES[boundaries[i]][1]
        open_ = [i for i in open_ if i not in full]
    return pauses, max(0.0, float(rest))


def place(text: str, wpm: int, phrases: Sequence[Phrase], lengths: Sequence[int],
          sample_rate: int) -> tuple[list[int], int]:
    """Where each phrase of a line starts (samples from the line's start), and the samples to add after it.

    `lengths` are the phrases' real lengths in samples. A line that is not paced by pauses
    (one phrase at the line's own rate) gets nothing added.
    """
    if not paced(phrases, wpm):
        return [sum(lengths[:n]) for n in range(len(lengths))], 0
    room = target_seconds(text, wpm) - sum(lengths) / sample_rate
    pauses, after = allocate([p.after for p in phrases[:-1]], room)
    offsets: list[int] = []
    at = 0
    for length, pause in zip(lengths, [*pauses, 0.0]):
        offsets.append(at)
        at += length + round(pause * sample_rate)
    return offsets, round(after * sample_rate)


def script_lines(script: markup.Script, base_wpm: int, voices: dict[str, str | None]) -> list[speech.Line]:
    """Every clip a script needs: the phrases of its lines, and its breathing words whole."""
    out: list[speech.Line] = []
    for item in script.items:
        if isinstance(item, markup.Speech):
            voice = voices[item.voice]
            wpm = item.rate.resolve(base_wpm)
            out.extend(speech.Line(p.text, p.wpm, voice) for p in phrases_of(item.text, wpm, voice))
        elif isinstance(item, markup.Breathe):
            wpm = item.rate.resolve(base_wpm)
            out.extend(speech.Line(word, wpm, voices[item.voice]) for word in item.words.values())
    return out
