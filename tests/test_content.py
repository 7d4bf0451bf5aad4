"""Content check of the built-in practice templates (issue 9, item 10).

Every built-in's script is rendered and planned (no audio: speech lengths estimated, cues 3 s) at its
minimum, default and maximum length: alone, with all the health flags it declares at once, and with
each declared flag on its own at the default length. The rules come from /work/shared/PRACTICE-NOTES.md
and the template contract (the spoken key phrases per health flag):

1. banned phrases are never spoken;
2. the first section is "Arriving", the last "Closing"; the first spoken minute invites the couple to
   stop or pause and says "not now"; the closing says "slowly"; breathing's opening lasts 60-90 s from
   5 minutes up; every closing lasts at least 30 s;
3. "avoid breathing too deeply" within the first minute of each paced-breathing section and at most
   240 s apart while paced breathing goes on;
4. no sentence of a spoken line more than 3 times in one render (breath phase words do not count);
5. every practice covers all health flags, and each flag it declares changes the words and speaks the
   contract's key phrases;
6. breathing: paced breathing is at least half of a session from 5 minutes up and grows with length;
   under a breath flag no hold and no out-breath over 6.5 s, whatever the pattern;
7. a three-part session is one evening: one welcome, one stop-word line, one safety note, two bridges,
   one closing;
8. partner names carrying line breaks and markup are spoken as words and change nothing else.

Renders are cached per (practice, minutes, settings): each is planned once per run.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from guided_audio import health, markup, practices, speech
from guided_audio.program import load as load_program
from guided_audio.render import SAMPLE_RATE, RenderRequest, plan_parts
from guided_audio.timeline import Event

SR = SAMPLE_RATE
BREATH_FLAGS = health.BREATH_FLAGS
DEVICE_FLAGS = health.DEVICE_FLAGS
# Flags that only matter where there is touch: a practice declaring one is a touch practice.
TOUCH_ONLY_FLAGS = (*DEVICE_FLAGS, "spinal_cord_injury_below_t6", "spinal_cord_injury_t6", "lymphedema")
REMINDER = "avoid breathing too deeply"
MAX_REPEATS = 3
RUN_BREAK = 30  # seconds without a phase event that end a paced-breathing section
FIRST_REMINDER = 60  # seconds after a paced-breathing section starts
REMINDER_GAP = 240  # seconds between reminders while paced breathing goes on
LONGEST_OUT = 6.5  # seconds of out-breath allowed under a breath flag
# Settings rendered alone besides the defaults, per practice: time-out's solo soothing track is heard by
# one person (so it need not say "either of you can say not now").
VARIANTS = {
    "time-out": [(("part", "soothe"),)],
    # the sensate stages a therapist may set, grief-journal's shared mode and milestone, a short check-in
    "gentle-touch": [(("stage", "2"),), (("stage", "3"),), (("stage", "4"),), (("stage", "5"),)],
    "reconnect-night": [(("stage", "2"),), (("stage", "4"),)],
    "grief-journal": [(("mode", "shared"),), (("mode", "shared"), ("milestone", "true")),
                      (("together", "false"), ("milestone", "true"))],
    "weekly-check-in": [(("frustration", "false"), ("request", "false"))],
}


# -- loading and rendering ----------------------------------------------------------------------


@functools.cache
def practice(name: str) -> practices.Practice:
    return practices.load(name)


def _names() -> list[str]:
    return practices.builtin_names()


def _loadable(name: str) -> practices.Practice | None:
    try:
        return practice(name)
    except Exception:  # reported by test_builtin_loads; the cases of a broken template are left out
        return None


def lengths(name: str) -> list[float]:
    """The practice's minimum, default and maximum length (minutes), without repeats."""
    p = _loadable(name)
    if p is None:
        return []
    m = p.minutes
    return list(dict.fromkeys(float(x) for x in (m.min, m.default, m.max) if x is not None))


def default_length(name: str) -> float:
    return float(practice(name).minutes.default)


def _fmt_settings(settings: Iterable[tuple[str, str]]) -> str:
    return " ".join(f"{k}={v!r}" if k in ("partner_a", "partner_b") else f"{k}={v}" for k, v in settings)


class Rendered:
    """One planned render and the views of it the checks need."""

    def __init__(self, source: str, minutes: float | None, settings: tuple[tuple[str, str], ...]):
        self.source, self.minutes, self.settings = source, minutes, settings
        program, _ = load_program(RenderRequest(source, dict(settings), minutes))
        self.program = program
        self.scripts = program.scripts()
        self.timeline = plan_parts(
            program, self.scripts, speech.DEFAULT_WPM,
            speech_length=lambda t, wpm, role="main": speech.estimate_samples(t, wpm, SR),
            cue_length=lambda name: 3 * SR,
        )
        self.items = [item for s in self.scripts for item in s.items]
        # Speech items only (what the narrator says as lines), and everything spoken (with breath words).
        self.lines = [item.text for item in self.items if isinstance(item, markup.Speech)]
        self.spoken = [text for s in self.scripts for text, _, _ in s.spoken_texts()]
        self.text = "\n".join(norm(t) for t in self.spoken)
        events = self.timeline.events
        self.phases = [e for e in events if e.kind == "phase"]
        self.sections = [e for e in events if e.kind == "section"]
        breath_words = {w for item in self.items if isinstance(item, markup.Breathe) for w in item.words.values()}
        phase_starts = {e.start for e in self.phases}
        # Speech events of spoken lines (breath words left out), and every speech event.
        self.all_speech = [e for e in events if e.kind == "speech"]
        self.speech = [e for e in self.all_speech if not (e.start in phase_starts and e.text in breath_words)]

    @property
    def label(self) -> str:
        length = "its session-file lengths" if self.minutes is None else f"{self.minutes:g} min"
        flags = dict(self.settings).get("health", "")
        rest = [(k, v) for k, v in self.settings if k != "health"]
        text = f"{self.source} at {length}, flags: {flags.replace(',', ', ') or 'none'}"
        return text + (f", {_fmt_settings(rest)}" if rest else "")

    def paced_seconds(self) -> float:
        return sum(e.end - e.start for e in self.phases) / SR


@functools.cache
def _render(source: str, minutes: float | None, settings: tuple[tuple[str, str], ...]) -> Rendered:
    return Rendered(source, minutes, settings)


def render(source: str, minutes: float | None = None, settings: tuple[tuple[str, str], ...] = ()) -> Rendered:
    """The planned render (cached); a template that cannot render fails the test with its error."""
    try:
        return _render(source, minutes, settings)
    except Exception as exc:  # any error is the finding
        error = f"{type(exc).__name__}: {exc}"
    where = f"{source} at {minutes:g} min" if minutes is not None else source
    pytest.fail(f"{where}, settings {_fmt_settings(settings) or 'none'}: cannot render: {error}", pytrace=False)


def check(label: str, problems: list[str], limit: int = 12) -> None:
    """Fail with every distinct problem (up to `limit`), one a line, under the render's label."""
    problems = list(dict.fromkeys(problems))
    if problems:
        shown = problems[:limit] + ([f"... and {len(problems) - limit} more"] if len(problems) > limit else [])
        pytest.fail(f"{label}:\n  " + "\n  ".join(shown), pytrace=False)


def with_flags(flags: Iterable[str], *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    flags = list(flags)
    return ((("health", ",".join(flags)),) if flags else ()) + tuple(extra)


def norm(text: str) -> str:
    """Spoken text for matching: curly quotes and apostrophes made straight."""
    return (markup.spoken(text).replace("\u2019", "'").replace("\u2018", "'")
            .replace("\u201c", '"').replace("\u201d", '"'))


def ts(samples: int | float) -> str:
    seconds = samples / SR
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def quote(text: str, limit: int = 160) -> str:
    text = norm(text)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def find(pattern: str, rendered: Rendered) -> list[str]:
    """Every spoken line (Speech and breath words) where `pattern` (a regex, case-insensitive) occurs."""
    rx = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
    return [t for t in dict.fromkeys(rendered.spoken) if rx.search(norm(t))]


def says(rendered: Rendered, phrase: str) -> bool:
    return phrase.lower() in rendered.text.lower()


# -- the cases ----------------------------------------------------------------------------------


def _case_id(name: str, minutes: float, settings: tuple, tag: str | None = None) -> str:
    flags = dict(settings).get("health", "")
    rest = "-".join(f"{k}={v}" for k, v in settings if k != "health")
    tag = tag or flags or "alone"
    return "-".join(x for x in (name, f"{minutes:g}min", tag, rest) if x)


def _case(name: str, minutes: float, settings: tuple, tag: str | None = None) -> object:
    """One (name, minutes, settings) case, named after them."""
    return pytest.param(name, minutes, settings, id=_case_id(name, minutes, settings, tag))


def _alone_cases() -> list:
    cases = []
    for name in _names():
        p = _loadable(name)
        params = {q.name: q for q in p.params} if p else {}
        variants = [v for v in VARIANTS.get(name, [])  # only while the template still has that setting
                    if all(k in params and (not params[k].choices or val in params[k].choices) for k, val in v)]
        for settings in [(), *variants]:
            for minutes in lengths(name):
                cases.append(_case(name, minutes, tuple(settings)))
    return cases


def _all_flag_cases() -> list:
    cases = []
    for name in _names():
        p = _loadable(name)
        if p is None or not p.health_flags:
            continue
        for minutes in lengths(name):
            settings = with_flags(p.health_flags)
            cases.append(_case(name, minutes, settings, "all_flags"))
    return cases


def _single_flag_cases() -> list:
    cases = []
    for name in _names():
        p = _loadable(name)
        if p is None:
            continue
        for flag in p.health_flags:
            settings = with_flags([flag])
            minutes = default_length(name)
            cases.append(_case(name, minutes, settings))
    return cases


ALONE = _alone_cases()
ALL_FLAGS = _all_flag_cases()
SINGLE_FLAG = _single_flag_cases()
EVERY_RENDER = ALONE + ALL_FLAGS + SINGLE_FLAG


@pytest.mark.parametrize("name", _names())
def test_builtin_loads(name: str) -> None:
    try:
        p = practice(name)
    except Exception as exc:  # any error is the finding
        p, error = None, f"{type(exc).__name__}: {exc}"
    if p is None:
        pytest.fail(f"{name}: cannot load: {error}", pytrace=False)
    check(name, [] if p.minutes.min is not None and p.minutes.max is not None else ["[minutes] needs min and max"])
    render(name, default_length(name))


# -- 1. banned phrases --------------------------------------------------------------------------

BANNED = {
    "normal": r"\bnormal(ly|ity)?\b",
    "broken": r"\bbroken\b",
    "fix": r"\bfix(es|ed|ing)?\b",
    "restore": r"\brestor(e|es|ed|ing)\b",
    "get back to": r"\b(get|gets|getting|got) back to\b",
    "perform": r"\bperform\w*",
    "turn on": r"\b(turn|turns|turned|turning) on\b",
    "you will feel": r"\byou( will|'ll) feel\b",
    "imperative 'relax your' at a sentence start": r"(^|[.!?:;]\s+|^[\"']|\s[\"'])relax your\b",
    "deeper": r"\bdeeper\b",
}


@pytest.mark.parametrize("name, minutes, settings", EVERY_RENDER)
def test_no_banned_phrases(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    check(r.label, [f"banned {phrase!r} in {quote(line)}" for phrase, rx in BANNED.items() for line in find(rx, r)])


# -- 2. opening and closing ---------------------------------------------------------------------


def _solo(settings: tuple) -> bool:
    return dict(settings).get("part") == "soothe"


def _heard(events: list[Event]) -> str:
    return "".join(f"\n      {ts(e.start)} {quote(e.text, 110)}" for e in events)


def _section(r: Rendered, title: str) -> Event | None:
    """The first 'Arriving' / the last 'Closing' section."""
    matching = [e for e in r.sections if e.text == title]
    if not matching:
        return None
    return matching[-1] if title == "Closing" else matching[0]


def _required_section(r: Rendered, title: str) -> Event:
    """`_section`, failing the test under the render's label when there is none."""
    found = _section(r, title)
    if found is None:
        check(r.label, [f"no {title!r} section"])
    assert found is not None
    return found


@pytest.mark.parametrize("name, minutes, settings", ALONE)
def test_first_section_is_arriving_and_last_is_closing(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    titles = [e.text for e in r.sections]
    problems = []
    if not titles:
        problems.append("no sections at all")
    else:
        if titles[0] != "Arriving":
            problems.append(f"first section is {titles[0]!r}, not 'Arriving' (sections: {titles})")
        if titles[-1] != "Closing":
            problems.append(f"last section is {titles[-1]!r}, not 'Closing' (sections: {titles})")
        before = [e for e in r.speech if e.start < r.sections[0].start]
        if before:
            problems.append("spoken before the first section:" + _heard(before[:3]))
    check(r.label, problems)


@pytest.mark.parametrize("name, minutes, settings", ALONE)
def test_first_minute_invites_stopping_and_not_now(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    first = [e for e in r.speech if e.start < 60 * SR]
    text = " ".join(norm(e.text) for e in first).lower()
    problems = []
    if not re.search(r"\b(stop|pause)", text):
        problems.append("the first spoken minute has no invitation to stop or pause ('stop' / 'pause')")
    if not _solo(settings) and "not now" not in text:
        problems.append("the first spoken minute never says 'not now'")
    if problems:
        problems.append("first minute:" + _heard(first))
    check(r.label, problems)


@pytest.mark.parametrize("name, minutes, settings", ALONE)
def test_closing_says_slowly(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    closing = _required_section(r, "Closing")
    said = [e for e in r.speech if closing.start <= e.start < closing.end]
    if not any("slowly" in norm(e.text).lower() for e in said):
        check(r.label, [f"the closing ({ts(closing.start)}-{ts(closing.end)}) never says 'slowly':" + _heard(said)])


@pytest.mark.parametrize("name, minutes, settings",
                         [c for c in ALONE if c.values[0] == "breathing" and c.values[1] >= 5])
def test_breathing_opening_lasts_60_to_90_seconds(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    arriving = _required_section(r, "Arriving")
    seconds = (arriving.end - arriving.start) / SR
    if not 60 <= seconds <= 90:
        first_breath = r.phases[0].start if r.phases else r.timeline.length
        after = [f"{e.text!r} {ts(e.start)}-{ts(e.end)}" for e in r.sections
                 if arriving.end <= e.start < first_breath]
        check(r.label, [f"'Arriving' lasts {seconds:.0f} s ({ts(arriving.start)}-{ts(arriving.end)}), not 60-90 s; "
                        f"then {', '.join(after) or 'nothing'} before paced breathing at {ts(first_breath)}"])


@pytest.mark.parametrize("name, minutes, settings", ALONE)
def test_closing_lasts_at_least_30_seconds(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    closing = _required_section(r, "Closing")
    seconds = (closing.end - closing.start) / SR
    if seconds < 30:
        check(r.label, [f"'Closing' lasts {seconds:.0f} s ({ts(closing.start)}-{ts(closing.end)}), under 30 s"])


# -- 3. over-breathing --------------------------------------------------------------------------


def paced_sections(r: Rendered) -> list[tuple[int, int]]:
    """(start, end) of each run of phase events; a run ends after > RUN_BREAK s without a phase."""
    runs: list[list[int]] = []
    for e in sorted(r.phases, key=lambda e: e.start):
        if runs and e.start - runs[-1][1] <= RUN_BREAK * SR:
            runs[-1][1] = max(runs[-1][1], e.end)
        else:
            runs.append([e.start, e.end])
    return [(a, b) for a, b in runs]


@pytest.mark.parametrize("name, minutes, settings", EVERY_RENDER)
def test_over_breathing_reminder(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    runs = paced_sections(r)
    if not runs:
        pytest.skip("no paced breathing in this render")
    # A reminder spoken as a breath word (say_out="...") counts too: it is heard during paced breathing.
    reminders = [e.start for e in r.all_speech if REMINDER in norm(e.text).lower()]
    problems = []
    for start, end in runs:
        marks = sorted(t for t in reminders if start <= t <= end)
        where = f"paced breathing {ts(start)}-{ts(end)}"
        if not any(t <= start + FIRST_REMINDER * SR for t in marks):
            near = [ts(t) for t in reminders if abs(t - start) <= 180 * SR]
            problems.append(f"{where}: no '{REMINDER}' in its first {FIRST_REMINDER} s"
                            + (f" (said near it at {', '.join(near)})" if near else " (none within 3 min of it)"))
        for a, b in itertools.pairwise(marks):
            if b - a > REMINDER_GAP * SR:
                problems.append(f"{where}: {(b - a) / SR:.0f} s between reminders at {ts(a)} and {ts(b)}")
        if marks and end - marks[-1] > REMINDER_GAP * SR:
            problems.append(f"{where}: {(end - marks[-1]) / SR:.0f} s of paced breathing after the last reminder "
                            f"at {ts(marks[-1])}")
    check(r.label, problems)


# -- 4. repetition cap --------------------------------------------------------------------------


def sentences(text: str) -> list[str]:
    """The normalised sentences of a spoken line: lower case, no punctuation, single spaces."""
    out = []
    for piece in re.split(r"(?<=[.!?\u2026])\s+", norm(text)):
        words = " ".join(re.sub(r"[^\w\s']", " ", piece.lower()).replace("'", "").split())
        if words:
            out.append(words)
    return out


@pytest.mark.parametrize("name, minutes, settings", EVERY_RENDER)
def test_no_sentence_more_than_three_times(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    counts = Counter(s for line in r.lines for s in sentences(line))
    check(r.label, [f"{n}x {s!r}" for s, n in counts.most_common() if n > MAX_REPEATS])


# -- 5. health flags ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", _names())
def test_every_flag_is_covered(name: str) -> None:
    p = practice(name)
    missing = [f for f in health.FLAGS if f not in p.health_flags and f not in p.unaffected_by]
    both = [f for f in p.unaffected_by if f in p.health_flags]
    problems = [f"flags neither adapted to nor in unaffected_by: {', '.join(missing)}"] if missing else []
    if both:
        problems.append(f"flags both declared and in unaffected_by: {', '.join(both)}")
    r = render(name, default_length(name), with_flags(health.FLAGS))
    problems += [f"with every flag: {w}" for w in r.program.warnings if "no adaptation" in w]
    check(name, problems)


BACK = r"\bon (your|their|our) backs?\b|\b(lie|lying) flat\b"


def required_phrases(flag: str, r: Rendered) -> list[str]:
    """The contract's key phrases for `flag` in this render."""
    if flag in BREATH_FLAGS:
        phrases = ["only a suggestion", "own pace"] if r.phases else []
        if flag == "panic" and r.phases:
            phrases.append("slower and softer")
        return phrases
    return {
        "spinal_cord_injury_t6": ["pounding headache", "sit upright"],
        "spinal_cord_injury_below_t6": ["cannot feel"],
        "lymphedema": ["light touch only"],
        "chronic_pain": ["pillows", "medication"],
        **{d: ["no pressure"] for d in DEVICE_FLAGS},
    }.get(flag, [])


def flag_problems(flag: str, r: Rendered) -> list[str]:
    problems = [f"{flag}: never says {phrase!r}" for phrase in required_phrases(flag, r) if not says(r, phrase)]
    if flag == "pregnancy":
        problems += [f"pregnancy: on the back: {quote(t)}" for t in find(BACK, r)]
    if flag == "panic":
        problems += [f"panic: a line starts with 'slower and softer': {quote(t)}"
                     for t in r.lines if norm(t).strip().lower().startswith("slower and softer")]
    if flag == "trauma":
        p = practice(r.source)
        if any(f in p.health_flags for f in TOUCH_ONLY_FLAGS) and not re.search(r"\bleads?\b", r.text, re.IGNORECASE):
            problems.append("trauma: a touch practice never says the touched partner 'leads'")
    return problems


@pytest.mark.parametrize("name, minutes, settings", SINGLE_FLAG)
def test_each_flag_is_spoken(name: str, minutes: float, settings: tuple) -> None:
    flag = dict(settings)["health"]
    r = render(name, minutes, settings)
    plain = render(name, minutes)
    problems = flag_problems(flag, r)
    if r.spoken == plain.spoken:
        problems.append(f"{flag}: the spoken text is the same as with no flag")
    elif flag == "trauma" and r.phases:
        before = {s for line in plain.spoken for s in sentences(line)}
        added = {s for line in r.spoken for s in sentences(line)} - before
        if not any(re.search(r"\b(sounds?|hands?|contact)\b", s) for s in added):
            problems.append("trauma: no other anchor than the breath (sounds, hands, contact) in the added lines")
    check(r.label, problems)


@pytest.mark.parametrize("name, minutes, settings", ALL_FLAGS)
def test_all_flags_at_once_keep_every_adaptation(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    check(r.label, [p for flag in practice(name).health_flags for p in flag_problems(flag, r)])


def _posture_cases() -> list:
    cases = []
    for name in _names():
        p = _loadable(name)
        if p is None or "pregnancy" not in p.health_flags:
            continue
        postures = next((q.choices for q in p.params if q.name == "posture"), ())
        for posture in postures:
            settings = with_flags(["pregnancy"], ("posture", posture))
            cases.append(_case(name, default_length(name), settings))
    return cases


@pytest.mark.parametrize("name, minutes, settings", _posture_cases())
def test_pregnancy_never_lies_on_the_back(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    check(r.label, [f"on the back: {quote(t)}" for t in find(BACK, r)])


# -- 6. breathing specifics ---------------------------------------------------------------------


def _breathing_lengths() -> list[float]:
    if _loadable("breathing") is None:
        return []
    m = practice("breathing").minutes
    return sorted({x for x in (5.0, 10.0, 20.0, *lengths("breathing")) if x >= 5 and m.min <= x <= m.max})


@pytest.mark.parametrize("minutes", _breathing_lengths(), ids=lambda m: f"breathing-{m:g}min")
def test_breathing_is_mostly_paced(minutes: float) -> None:
    r = render("breathing", minutes)
    paced, total = r.paced_seconds(), r.timeline.seconds
    if paced < total / 2:
        check(r.label, [f"paced breathing is {paced:.0f} s of {total:.0f} s ({100 * paced / total:.0f}%), "
                        f"under half; the first paced breath at {ts(r.phases[0].start) if r.phases else '-'}"])


def test_breathing_grows_with_length() -> None:
    m = practice("breathing").minutes
    steps = [x for x in (5.0, 10.0, 20.0) if m.min <= x <= m.max]
    paced = [render("breathing", x).paced_seconds() for x in steps]
    shown = ", ".join(f"{x:g} min: {s:.0f} s" for x, s in zip(steps, paced))
    check("breathing", [] if all(a < b for a, b in itertools.pairwise(paced)) else
          [f"paced breathing does not grow with length ({shown})"])


def _gentle_cases() -> list:
    """Every breath flag of every practice that declares one, under its most demanding settings:
    holds on, every pattern, and a custom pattern at its longest out-breath and hold."""
    cases = []
    for name in _names():
        p = _loadable(name)
        if p is None:
            continue
        params = {q.name: q for q in p.params}
        patterns = params["pattern"].choices if "pattern" in params and params["pattern"].choices else (None,)
        holds = (("holds", "true"),) if "holds" in params else ()
        for flag in p.health_flags:
            if flag not in BREATH_FLAGS:
                continue
            for pattern in patterns:
                extra = [*holds, *((("pattern", pattern),) if pattern else ())]
                if pattern == "custom":
                    extra += [(k, f"{params[k].max:g}") for k in ("exhale", "hold", "rest")
                              if k in params and params[k].max is not None]
                settings = with_flags([flag], *extra)
                cases.append(_case(name, default_length(name), settings))
    return cases


@pytest.mark.parametrize("name, minutes, settings", _gentle_cases())
def test_breath_flags_mean_no_holds_and_short_out_breaths(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    holds = [e for e in r.phases if e.name == "hold"]
    long_out = [e for e in r.phases if e.name == "exhale" and (e.end - e.start) / SR > LONGEST_OUT]
    problems = []
    if holds:
        problems.append(f"{len(holds)} hold phases, the first at {ts(holds[0].start)} "
                        f"({(holds[0].end - holds[0].start) / SR:g} s)")
    if long_out:
        problems.append(f"{len(long_out)} out-breaths over {LONGEST_OUT} s, the first at {ts(long_out[0].start)} "
                        f"({(long_out[0].end - long_out[0].start) / SR:g} s)")
    check(r.label, problems)


# -- 7. a session is one evening ----------------------------------------------------------------

STOP_WORD = "Marmalade"
SESSION_PARTS = ("breathing", "gentle-touch", "comfort")


def test_session_flows_as_one_evening(tmp_path: Path) -> None:
    body = "".join(f'\n[[parts]]\npractice = "{n}"\nminutes = {practice(n).minutes.min:g}\n' for n in SESSION_PARTS)
    path = tmp_path / "evening.toml"
    path.write_text(f'title = "One evening"\n\n[couple]\npartner_a = "Alex"\npartner_b = "Sam"\n'
                    f'stop_word = "{STOP_WORD}"\n{body}', encoding="utf-8")
    r = render(str(path))
    lines = [norm(t) for t in r.spoken]
    welcome = [t for t in lines for s in re.split(r"(?<=[.!?])\s+", t) if s.lower().startswith("welcome")]
    counted = {
        "sentences starting 'Welcome'": (welcome, 1),
        f"times the stop word {STOP_WORD!r} is spoken": (
            [t for t in lines for _ in re.findall(rf"\b{STOP_WORD}\b", t, re.IGNORECASE)], 1),
        # the general safety note, in its long ("not a substitute for therapy or medical advice") or short
        # ("this is not therapy or medical advice") form
        "general safety notes ('not a substitute' / 'medical advice')": (
            [t for t in lines if re.search(r"not a substitute|medical advice", t, re.IGNORECASE)], 1),
        "bridges 'we'll move on to the next part'": ([t for t in lines if "we'll move on to the next part" in t.lower()], 2),
        "'Closing' sections": ([e.text for e in r.sections if e.text == "Closing"], 1),
    }
    problems = []
    for what, (found, want) in counted.items():
        if len(found) != want:
            shown = "".join(f"\n      {quote(t, 110)}" for t in found) if "section" not in what else ""
            problems.append(f"{len(found)} {what}, expected {want}{shown}")
    if problems:
        problems.append(f"sections: {[e.text for e in r.sections]}")
    mins = ", ".join(f"{n} {practice(n).minutes.min:g} min" for n in SESSION_PARTS)
    check(f"session of {mins} (stop word set)", problems)


# -- 8. names are text, never markup ------------------------------------------------------------

_BREAKS = "\r\v\f\x1c\x85\u2028"
NASTY_NAMES = {
    "cr-u2028": ("Alex\r@pause 1000000000\r# X", "Sam\u2028@cue /etc/passwd\u2028// c"),
    "vt-ff-fs-nel": ("Alex\v@pause 1000000000\f# X", "Sam\x1c// c\x85@cue /etc/passwd"),
    "markup-first": ("@pause 1000000000", "# X"),
    "quotes": ('Alex "@pause 500"', '// c "Sam'),
}


def _plain(name: str) -> str:
    """The same number of words without markup: a baseline name that is estimated to speak as long."""
    for ch in _BREAKS:
        name = name.replace(ch, " ")
    return name.replace("@", "a").replace("#", "h").replace("/", "s").replace('"', "q")


def _pieces(name: str) -> list[str]:
    pieces = re.split("[" + re.escape(_BREAKS) + "]", name)
    return [" ".join(p.replace('"', " ").split()) for p in pieces if p.strip(' "')]


@pytest.mark.parametrize("case", list(NASTY_NAMES))
@pytest.mark.parametrize("name", _names())
def test_names_are_text_never_markup(name: str, case: str) -> None:
    """Compared with the same render with plain names of as many words (so that estimated speech
    lengths match): the same script items, the same cue events, the same length within 2 s."""
    a, b = NASTY_NAMES[case]
    minutes = default_length(name)
    r = render(name, minutes, (("partner_a", a), ("partner_b", b)))
    base = render(name, minutes, (("partner_a", _plain(a)), ("partner_b", _plain(b))))
    kinds = lambda x: Counter(type(i).__name__ for i in x.items)  # noqa: E731
    problems = []
    if kinds(r) != kinds(base):
        problems.append(f"script items {dict(kinds(r))} differ from the plain-named render's {dict(kinds(base))}")
    cues, base_cues = len(r.timeline.of_kind("cue")), len(base.timeline.of_kind("cue"))
    if cues != base_cues:
        problems.append(f"{cues} cue events, {base_cues} with plain names")
    if abs(r.timeline.seconds - base.timeline.seconds) > 2:
        problems.append(f"lasts {r.timeline.seconds:.0f} s, {base.timeline.seconds:.0f} s with plain names")
    text = " ".join(r.text.replace('"', " ").split())
    missing = [p for p in _pieces(a) + _pieces(b) if p not in text]
    if missing:
        problems.append(f"name pieces never spoken: {missing}")
    check(r.label, problems)


@pytest.mark.parametrize("name, minutes, settings", ALONE + SINGLE_FLAG)
def test_the_length_asked_is_kept(name: str, minutes: float, settings: tuple) -> None:
    r = render(name, minutes, settings)
    check(r.label, [w for w in r.timeline.warnings if "longer than the" in w])
