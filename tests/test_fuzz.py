"""Property tests: random text and values never give a traceback or unbounded work.

Each reader of user input (the markup parser, a template's front matter, `bind`, the sandboxed
template body, a session file, a library manifest) either returns its result or raises one of the
project's own errors (`GuidedAudioError`), which the command line reports as a one-line message.
Anything else is a traceback. Work is bounded: a parsed script that passes the bounds check plans
a bounded number of events, and each reader finishes within a few seconds (an alarm turns a run
that does not into a failure instead of a hang).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from guided_audio import build, markup, practices, program, sessions, timeline
from guided_audio.errors import GuidedAudioError

FUZZ = settings(
    max_examples=100,
    deadline=None,
    # the suite's autouse fixtures (an environment variable, a module flag) are harmless here
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FEW = settings(FUZZ, max_examples=50)
SECONDS = 20.0  # far more than any single example needs; a run that takes longer is unbounded work
MAX_EVENTS = 400_000  # far more than a 90-minute script plans


class Unbounded(Exception):
    """The code under test ran longer than any input should make it."""


@contextlib.contextmanager
def bounded(seconds: float = SECONDS) -> Iterator[None]:
    """Raise Unbounded if the block runs longer than `seconds`; any earlier alarm is put back."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield  # pragma: no cover - the suite runs in the main thread on POSIX
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise Unbounded(f"still running after {seconds:g} s")

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    pending, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if pending:
            signal.setitimer(signal.ITIMER_REAL, max(pending - (time.monotonic() - started), 0.001), interval)


def outcome(call: Callable[[], Any], seconds: float = SECONDS) -> Any:
    """The call's result, or the GuidedAudioError it raised; any other exception propagates."""
    with bounded(seconds):
        try:
            result = call()
        except GuidedAudioError as exc:
            str(exc)  # the message itself must not fail
            result = exc
    if currently_in_test_context():  # see --hypothesis-show-statistics
        event(f"{type(result).__name__}")
    return result


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh(root: Path) -> Path:
    """A new empty folder for one example (hypothesis runs many examples per test call)."""
    return Path(tempfile.mkdtemp(dir=root))


# -- building blocks ------------------------------------------------------------------------

# Characters that break lines (str.splitlines), control characters, quotes, markup characters,
# invisible and non-ASCII digits, the mark `literal` adds: everything a parser can trip on.
SPECIAL = ("\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\x07",
           "\x1b", "\x7f", "\t", " ", "\u00a0", "\u3000", '"', "'", "\\", "`", "@", "#", "/", "//", "=", "%", ":",
           "{", "}", "{{", "{%", "[", "]", "+++", markup.LITERAL_MARK, "\ufeff", "\u200b", "\u0663", "\uff11",
           "\u00b2", "\u00bd", "\U0001f600", "e", "é", "1", "0", ".", "-", "_", ",")
chars = st.one_of(st.sampled_from(SPECIAL), st.characters(codec="utf-8"))  # files are UTF-8: no lone surrogates
text = st.lists(chars, max_size=40).map("".join)
short_text = st.lists(chars, max_size=12).map("".join)
LINE_BREAKS = ("\n", "\r\n", "\r", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x85")

NUMBER_WORDS = ("0", "1", "4", "6", "0.5", "2.5", "60", "61", "90", "3600", "10800", "10801", "0.0000000001",
                "0.00000001", "1.", ".5", "1e3", "1e400", "-1", "+1", "nan", "inf", "-inf", "99999999999",
                "999999999999", "9" * 40, "1" * 400, "\u0663", "\uff14", "\u00b2", "\u00bd", "4\u0663", "5%", "50%",
                "200%", "201%", "%", "0x10", "1_000", " 4", "")
numbers = st.one_of(
    st.sampled_from(NUMBER_WORDS),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda f: f"{f:.6f}"),
    st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=3).map(str),
)

DIRECTIVES = ("pause", "silence", "cue", "breathe", "ambient", "rate", "gap", "voice", "", "unknown", "do_pause",
              "__init__", "line", "fail")
OPTION_KEYS = (*markup.BREATH_PHASES, "cycles", "seconds", "cue", "guide", "say_cycles", "wait", "fill",
               *(f"say_{p}" for p in markup.BREATH_PHASES), "bogus", "")
OPTION_WORDS = ("fill", "fill:", "fill:0", "fill:1", "fill:2.5", "fill:1000", "fill:1001", "fill:1e9", "fill:-1",
                "none", "on", "off", "main", "second", "bell", "soft-chime", "true")


def quoted(value: str) -> str:
    return '"' + value + '"'


values = st.one_of(numbers, st.sampled_from(OPTION_WORDS), short_text, short_text.map(quoted),
                   short_text.map(lambda t: "'" + t + "'"))
arguments = st.one_of(values, st.tuples(st.sampled_from(OPTION_KEYS), values).map(lambda kv: f"{kv[0]}={kv[1]}"))


@st.composite
def directive_lines(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(DIRECTIVES))
    args = draw(st.lists(arguments, max_size=8))
    if name == "breathe" and draw(st.booleans()):  # often well formed, so the planner gets to work
        phases = {p: draw(numbers) for p in draw(st.sets(st.sampled_from(markup.BREATH_PHASES), max_size=5))}
        phases.setdefault("in", draw(numbers))
        phases.setdefault("out", draw(numbers))
        length = draw(st.sampled_from(("cycles=", "seconds=", "fill", "fill:"))) + draw(numbers)
        args = [f"{k}={v}" for k, v in phases.items()] + [length.replace("fill" + "0", "fill"), *args[:2]]
    space = draw(st.sampled_from((" ", "  ", "\t", " \u00a0")))
    return draw(st.sampled_from(("@", " @", "@ "))) + name + "".join(space + a for a in args)


lines = st.one_of(
    directive_lines(),
    text,
    text.map(lambda t: "#" + t),
    text.map(lambda t: "//" + t),
    st.sampled_from(("@breathe in=4 out=6 fill", "@breathe in=0.0000000001 out=0.0000000001 fill",
                     "@breathe in=0.0000000001 out=0.0000000001 seconds=5400",
                     "@breathe in=0.0000000001 out=0.0000000001 cycles=5000 cue=bell guide=on say_in=x",
                     "@pause fill", "@silence fill:1000", "@pause 10800", "@cue bell wait=30", "@gap 30",
                     "@rate 400", "@rate 50%", "@voice second", "@ambient none", "Hello.", "x" * 600, "x" * 601)),
)


@st.composite
def scripts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(lines, max_size=25))
    out = ""
    for line in parts:
        out += line + draw(st.sampled_from(LINE_BREAKS))
    return out


def fuzz_practice(most: float = 90) -> practices.Practice:
    """A practice whose maximum length is `most` minutes, for `Program.check_bounds`."""
    minutes = practices.Param("minutes", "float", 5.0, "Target length in minutes.", 1, most)
    return practices.Practice(
        name="fuzz", path=Path("fuzz.j2"), title="Fuzz", description="", ambient="none", language="en", sources=(),
        minutes=minutes, params=(), body="", offset=0, builtin=False,
    )


def check_and_plan(script: markup.Script, target_seconds: float) -> timeline.Timeline | None:
    """The render's bounds check against a 90-minute practice, then the timeline; None when refused."""
    part = sessions.Part(fuzz_practice(), {"minutes": 5.0}, "Fuzz")
    whole = program.Program(name="fuzz", title="Fuzz", parts=(part,), ambient="none", language="en")
    try:
        whole.check_bounds([script], 115)
    except GuidedAudioError:
        return None
    return timeline.plan(script, base_wpm=115, speech_length=lambda t, wpm, role="main": 44100,
                         cue_length=lambda n: 44100, sample_rate=44100, target_seconds=target_seconds)


# -- the markup parser ----------------------------------------------------------------------


@FUZZ
@given(source=st.one_of(scripts(), text, st.text()), target=st.floats(min_value=0, max_value=600))
@example(source="@breathe in=0.0000000001 out=0.0000000001 fill\n", target=600.0)
@example(source="@breathe in=0.0000000001 out=0.0000000001 seconds=5400\n", target=1.0)
@example(source="@breathe in=0.0000000001 out=0.0000000001 cycles=5000\n" * 100, target=1.0)
@example(source="@breathe in=4 out=6 cycles=\u00b2\n", target=1.0)
@example(source="@breathe in=4 out=6 say_cycles=\u00b2 cycles=1\n", target=1.0)
@example(source="@pause fill\n" * 20001, target=1.0)
def test_markup_parse_and_plan_are_total_and_bounded(source: str, target: float) -> None:
    with bounded():
        try:
            script = markup.parse(source, source="fuzz.md")
        except GuidedAudioError as exc:
            assert str(exc)
            event("refused")
            return
        assert isinstance(script, markup.Script)
        assert len(script.items) <= markup.MAX_ITEMS
        planned = check_and_plan(script, target)
    event("refused by the bounds check" if planned is None else "planned")
    if planned is not None:
        assert len(planned.events) <= MAX_EVENTS
        assert planned.length >= 0


# -- markup.literal -------------------------------------------------------------------------

user_values = st.one_of(st.text(max_size=200), st.lists(chars, max_size=60).map("".join),
                        st.lists(st.sampled_from(SPECIAL), max_size=30).map("".join))


@FUZZ
@given(value=user_values)
@example(value="@pause 3")
@example(value="a\n@pause 3\n# title\n// comment")
@example(value='x" cycles=5 say_out="y')
@example(value="\\")
@example(value="\u2028@cue bell")
@example(value=markup.LITERAL_MARK + "@rate 400")
def test_literal_is_one_line_of_words_wherever_a_template_puts_it(value: str) -> None:
    safe = markup.literal(value)
    assert len(safe.splitlines()) <= 1
    said = markup.spoken(safe)
    # at the start of a line, alone or split into words one per line: spoken text only
    for text_ in (safe, *safe.split()):
        items = markup.parse(text_ + "\n").items
        assert all(isinstance(item, markup.Speech) for item in items)
        assert len(items) == (1 if markup.spoken(text_).strip() else 0)
    if said.strip():
        assert markup.parse(safe).items[0].text == said  # type: ignore[union-attr]
    # inside a directive's quoted argument: that directive, with the value as its words
    (breathe,) = markup.parse(f'@breathe in=4 out=6 cycles=2 say_in="{safe}" say_out="{safe}"\n').items
    assert isinstance(breathe, markup.Breathe)
    assert breathe.cycles == 2 and breathe.period == 10
    expected = {"in": said, "out": said} if said.strip() else {}
    assert breathe.words == expected
    cue = markup.parse(f'@cue "{safe}" wait=2\n').items
    if safe not in ("", "none"):
        assert cue == (markup.Cue(safe, 2.0, 1),)


# -- TOML documents ---------------------------------------------------------------------------


def toml_string(value: str) -> str:
    out = json.dumps(value, ensure_ascii=False)
    return out.replace("\x7f", "\\u007f")


def toml_key(key: str) -> str:
    return toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)  # pragma: no cover


def toml_document(doc: dict[str, Any]) -> str:
    """A TOML document: scalars first, then tables, then arrays of tables (header forms are exercised)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    arrays: list[tuple[str, list[dict[str, Any]]]] = []
    for key, value in doc.items():
        if isinstance(value, dict) and value and all(not isinstance(v, dict) for v in value.values()):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
    for key, table in tables:
        lines.append(f"[{toml_key(key)}]")
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    for key, array in arrays:
        for table in array:
            lines.append(f"[[{toml_key(key)}]]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


keys = st.one_of(st.sampled_from(("", "a", "x", "title", "type", "default", "min", "max", "choices", "private")),
                 short_text)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from((0, 1, 5, 90, 2**63 - 1, -(2**63))),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from((0.5, 1.0, 1e308, -0.0, 5.5)),
    short_text,
    st.sampled_from(("", "none", "true", "yes", "panic", "5", "1e400", "nan", "a,b", "x" * 300)),
    st.dates(),
    st.datetimes(),
    st.times(),
)
toml_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(keys, inner, max_size=3)),
                           max_leaves=8)


def anything_or(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the well-formed shape, sometimes any TOML value in its place."""
    return st.one_of(strategy, strategy, strategy, toml_values)


# -- front matter, bind and the template body --------------------------------------------------

FLAG_NAMES = tuple(sorted(practices.health.FLAGS))
param_names = st.one_of(st.sampled_from(("pace", "name", "count", "ok", "choice", "partner_a", "stop_word",
                                         *FLAG_NAMES[:4])),
                        st.sampled_from(("minutes", "seconds", "health", "Bad", "1x", "a-b", "")), short_text)
SPEC_KEYS = ("type", "default", "help", "min", "max", "choices", "private", "extra")


@st.composite
def faulty(draw: st.DrawFn, table: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """A well-formed table, or (one time in three) with one key dropped or set to any TOML value."""
    if draw(st.integers(0, 2)) == 0:
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            table.pop(key, None)
        else:
            table[key] = draw(toml_values)
    return table


def number_in(low: float | None, high: float | None, integer: bool) -> st.SearchStrategy[Any]:
    lo = -1000 if low is None else low
    hi = 1000 if high is None else high
    if integer:
        return st.integers(math.ceil(lo), math.floor(hi)) if math.ceil(lo) <= math.floor(hi) else st.just(lo)
    return st.floats(lo, hi, allow_nan=False)


@st.composite
def param_specs(draw: st.DrawFn, minutes: bool = False) -> dict[str, Any]:
    kind = "float" if minutes else draw(st.sampled_from(practices.PARAM_TYPES))
    spec: dict[str, Any] = {"type": kind, "help": draw(short_text)}
    if kind == "choice":
        spec["choices"] = draw(st.lists(short_text, min_size=1, max_size=3, unique=True))
        spec["default"] = draw(st.sampled_from(spec["choices"]))
    elif kind in ("int", "float"):
        low, high = sorted(draw(st.tuples(number_in(1, 90, kind == "int"), number_in(1, 90, kind == "int"))))
        if draw(st.booleans()) or minutes:
            spec["min"], spec["max"] = low, high
        spec["default"] = draw(number_in(low, high, kind == "int"))
    else:
        spec["default"] = draw(st.booleans() if kind == "bool" else short_text)
    if draw(st.booleans()):
        spec["private"] = draw(st.booleans())
    if minutes:
        del spec["type"], spec["help"]
    return draw(faulty(spec, SPEC_KEYS))


@st.composite
def front_matter(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {"title": draw(short_text)}
    if draw(st.booleans()):
        meta["minutes"] = draw(param_specs(minutes=True))
    meta["params"] = draw(st.dictionaries(param_names, param_specs(), max_size=4))
    for key, strategy in (("description", short_text), ("ambient", short_text), ("language", short_text),
                          ("sources", st.lists(short_text, max_size=2)),
                          ("unaffected_by", st.lists(st.sampled_from(FLAG_NAMES), max_size=2))):
        if draw(st.booleans()):
            meta[key] = draw(strategy)
    return draw(faulty(meta, ("title", "minutes", "params", "sources", "unaffected_by", "description", "bogus")))


toml_ish = st.lists(st.one_of(st.sampled_from(("[", "]", "[[", "]]", "=", '"', "'", '"""', "{", "}", ",", ".",
                                               "\n", "#", "+++", "title", "params", "minutes", "type", "default",
                                               " = ", "1", "1e400", "nan", "true", "[params.x]", "[minutes]")),
                              chars), max_size=60).map("".join)
settings_values = st.one_of(toml_values, st.sampled_from(("1e400", "nan", "-inf", "9" * 400, "true", "")))


def write_practice(folder: Path, front: str, body: str = "Hello.\n") -> Path:
    path = folder / "fuzz.j2"
    path.write_text("+++\n" + front + "\n+++\n" + body, encoding="utf-8")
    return path


def exercise_practice(practice: practices.Practice, settings_: dict[str, Any], minutes: Any) -> None:
    """bind with random settings, then render and parse with the defaults (bounded)."""
    assert isinstance(practice, practices.Practice)
    for param in practice.params:  # a loaded parameter's default is already of its type
        assert outcome(lambda p=param: p.convert(p.default, "default")) == param.default
    bound = outcome(lambda: practice.bind(settings_, minutes))
    assert isinstance(bound, (dict, GuidedAudioError))
    values = outcome(lambda: practice.bind({}))
    if isinstance(values, dict):
        rendered = outcome(lambda: practice.render_markup(values))
        assert isinstance(rendered, (str, GuidedAudioError))
        if isinstance(rendered, str):
            outcome(lambda: markup.parse(rendered))


@FUZZ
@given(meta=front_matter(), settings_=st.dictionaries(st.one_of(param_names, st.just("health")), settings_values,
                                                    max_size=4),
       minutes=st.one_of(st.none(), st.floats(), st.integers(), st.just("5"), toml_values))
@example(meta={"title": "T", "params": 3}, settings_={}, minutes=None)
@example(meta={"title": "T", "minutes": 3}, settings_={}, minutes=None)
@example(meta={"title": "T", "sources": 3}, settings_={}, minutes=None)
@example(meta={"title": "T", "unaffected_by": 3}, settings_={}, minutes=None)
@example(meta={"title": "T", "params": {"a": {"type": "int", "default": 1, "help": "h", "min": "a"}}},
         settings_={}, minutes=None)
@example(meta={"title": "T", "params": {"a": {"type": "choice", "default": 1, "help": "h", "choices": 3}}},
         settings_={}, minutes=None)
@example(meta={"title": "T", "params": {"a": {"type": "choice", "default": "a", "help": "h",
                                              "choices": [{"x": 1}]}}}, settings_={}, minutes=None)
@example(meta={"title": "T", "params": {"a": {"type": "float", "default": [1], "help": "h"}}},
         settings_={}, minutes=None)
@example(meta={"title": "T", "params": {"a": {"type": "int", "default": 1, "help": "h", "min": [1]}}},
         settings_={}, minutes=None)
@example(meta={"title": "T", "minutes": {"default": 5, "max": "a"}}, settings_={}, minutes=None)
@example(meta={"title": "T", "params": {"a": {"type": "int", "default": 1, "help": "h"}}},
         settings_={"a": [1]}, minutes=[1])
@example(meta={"title": "T", "params": {"a": {"type": "float", "default": 1, "help": "h"}}},
         settings_={"a": 10**400}, minutes=10**400)
@example(meta={"title": "T", "params": {"a": {"type": "int", "default": 1, "help": "h", "min": float("nan")}}},
         settings_={"a": 5}, minutes=None)
def test_front_matter_and_bind_are_total(fuzz_root: Path, meta: dict[str, Any], settings_: dict[str, Any],
                                         minutes: Any) -> None:
    path = write_practice(fresh(fuzz_root), toml_document(meta))
    practice = outcome(lambda: practices.from_file(path, builtin=False))
    if isinstance(practice, GuidedAudioError):
        return
    exercise_practice(practice, settings_, minutes)


@FEW
@given(front=toml_ish, body=text)
@example(front="x = " + "[" * 500 + "]" * 500, body="")
@example(front="x = " + "{a = " * 500 + "}" * 500, body="")
def test_front_matter_of_random_text_is_total(fuzz_root: Path, front: str, body: str) -> None:
    path = write_practice(fresh(fuzz_root), front, body)
    practice = outcome(lambda: practices.from_file(path, builtin=False))
    if not isinstance(practice, GuidedAudioError):
        exercise_practice(practice, {}, None)


@FEW
@given(data=st.one_of(st.binary(max_size=200), text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                      st.sampled_from((b"", b"+++", b"+++\n", b"\xef\xbb\xbf+++\ntitle='x'\n+++\n", b"\xff\xfe+++",
                                       b"+++\r\ntitle='x'\r\n+++\r\nHi.", b"+++\x85title='x'\x85+++\x85Hi."))))
def test_any_template_file_is_read_or_refused(fuzz_root: Path, data: bytes) -> None:
    path = fresh(fuzz_root) / "fuzz.j2"
    path.write_bytes(data)
    practice = outcome(lambda: practices.from_file(path, builtin=False))
    if not isinstance(practice, GuidedAudioError):
        exercise_practice(practice, {}, None)


# Jinja bodies: expressions built from the sandbox's operators, filters and string methods, with
# numbers from tiny to huge. The sandbox bounds the output (MAX_RENDER_CHARS) and the time.
HUGE = ("0", "1", "3", "-1", "64", "65", "1000", "100000", "2000001", "10**6", "10**9", "10**12", "10**100",
        "1e308", "(10**64)", "99999999999")
atoms = st.one_of(st.sampled_from(("name", "pace", "count", "ok", "minutes", "seconds", "opening", "closing",
                                   "'a'", "'x\\ny'", "'\\t'", "'@pause 3'", "'%s'", "'%d'", "'{}'", "''",
                                   "[1, 2]", "[]", "none", "true", "1.5", "'%1000000000s'", "'{:>1000000000}'",
                                   "'%.1000000000f'", "'%*s'", "lipsum(2)", "range(3)|list", "'ab' * 1000000")),
                  st.sampled_from(HUGE))


def jinja_expressions(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    number = st.sampled_from(HUGE)
    return st.one_of(
        st.tuples(inner, st.sampled_from(("+", "-", "*", "**", "/", "//", "%", "~", "and", "or", "==", "<", "in")),
                  inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, st.sampled_from(("center", "indent", "truncate", "wordwrap", "batch", "slice", "round",
                                          "int", "float", "string", "upper", "title", "trim", "length", "abs",
                                          "first", "last", "list", "join", "sum", "min", "max", "unique", "reverse",
                                          "wordcount", "default", "e", "filesizeformat", "tojson")),
                  st.lists(st.one_of(number, inner), max_size=2))
        .map(lambda t: f"({t[0]}|{t[1]}({', '.join(t[2])}))"),
        st.tuples(inner, st.lists(st.one_of(number, inner), max_size=3))
        .map(lambda t: f"({t[0]}|format({', '.join(t[1])}))"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]}|replace({t[1]}, {t[2]}))"),
        st.tuples(inner, st.sampled_from(("center", "ljust", "rjust", "zfill", "expandtabs", "format", "replace",
                                          "split", "join", "upper", "count", "strip", "splitlines", "partition")),
                  st.lists(st.one_of(number, inner), max_size=2))
        .map(lambda t: f"({t[0]}).{t[1]}({', '.join(t[2])})"),
        st.tuples(inner, number).map(lambda t: f"lipsum({t[1]}, false, {t[1]}, {t[1]})"),
        st.tuples(number, inner).map(lambda t: f"range({t[0]})|join({t[1]})"),
    )


expressions = st.recursive(atoms, jinja_expressions, max_leaves=5)
body_pieces = st.one_of(
    expressions.map(lambda e: "{{ " + e + " }}\n"),
    expressions.map(lambda e: "{% if " + e + " %}Yes.\n{% else %}No.\n{% endif %}\n"),
    st.tuples(st.sampled_from(("3", "50", "10**9", "name", "[1, 2]")), expressions)
    .map(lambda t: "{% for i in range(" + t[0] + ") %}{{ " + t[1] + " }}\n{% endfor %}\n"),
    expressions.map(lambda e: "{% set v = " + e + " %}{{ v }}\n"),
    expressions.map(lambda e: "{% set ns = namespace(v=" + e + ") %}{% set ns.v = ns.v ~ ns.v %}{{ ns.v }}\n"),
    expressions.map(lambda e: "{% macro m(x) %}{{ x }}{% endmacro %}{{ m(" + e + ") }}\n"),
    st.sampled_from(("{{ ''.__class__ }}", "{{ x }}", "{% for %}", "{{ 1/0 }}", "{% raw %}", "{{ name.",
                     "{% include 'x' %}", "{% import 'x' as y %}", "{{ cycler }}", "{{ self }}", "{{ loop }}",
                     "{% extends 'x' %}", "{{ range(10**6) }}", "@pause {{ pace }}\n", "{{ lipsum(10**9) }}\n")),
    text,
)
BODY_FRONT = """title = "Fuzz"
[params.name]
type = "str"
default = "Sam"
help = "h"
[params.pace]
type = "float"
default = 4.5
help = "h"
[params.count]
type = "int"
default = 3
help = "h"
[params.ok]
type = "bool"
default = true
help = "h"
"""


@pytest.fixture(scope="module")
def body_practice(tmp_path_factory: pytest.TempPathFactory) -> practices.Practice:
    path = write_practice(tmp_path_factory.mktemp("body"), BODY_FRONT)
    return practices.from_file(path, builtin=False)


@FUZZ
@given(pieces=st.lists(body_pieces, min_size=1, max_size=4))
@example(pieces=["{{ 'x'|center(10**9) }}"])
@example(pieces=["{{ 'x\\ny'|indent(10**9) }}"])
@example(pieces=["{{ '%*s'|format(1000000000, 'x') }}"])
@example(pieces=["{{ '%1000000000s'|format('x') }}"])
@example(pieces=["{{ '%.1000000000f'|format(1.5) }}"])
@example(pieces=["{{ '%1000000000s' % 'x' }}"])
@example(pieces=["{{ '{:>1000000000}'.format(1) }}"])
@example(pieces=["{{ '{:>{}}'.format(1, 10**9) }}"])
@example(pieces=["{{ 'x'.center(10**9) }}", "{{ 'x'.ljust(10**9) }}", "{{ 'x'.zfill(10**9) }}"])
@example(pieces=["{{ ('\\t' * 1000000).expandtabs(100000) }}"])
@example(pieces=["{{ ('x' * 1999999)|replace('', 'y' * 1999999) }}"])
@example(pieces=["{{ ('x' * 1999999).replace('', 'y' * 1999999) }}"])
@example(pieces=["{{ ('x' * 1999999) + ('y' * 1999999) + ('z' * 1999999) }}"])
@example(pieces=["{{ [1]|batch(10**9, 0)|list }}"])
@example(pieces=["{% set ns = namespace(v='x' * 1999999) %}{% for i in range(40) %}{% set ns.v = ns.v ~ ns.v %}"
                 "{% endfor %}{{ ns.v|length }}"])
@example(pieces=["{% macro m(x, n) %}{{ m(x ~ x, n - 1) if n else x|length }}{% endmacro %}{{ m('x' * 1999999, 40) }}"])
def test_sandboxed_body_renders_or_fails_within_bounds(body_practice: practices.Practice, pieces: list[str]) -> None:
    practice = dataclasses.replace(body_practice, body="".join(pieces))
    values = practice.bind({})
    rendered = outcome(lambda: practice.render_markup(values))
    assert isinstance(rendered, (str, GuidedAudioError))
    if isinstance(rendered, str):
        assert len(rendered) <= practices.MAX_RENDER_CHARS
        outcome(lambda: markup.parse(rendered))


def test_a_slow_body_is_stopped_by_the_time_limit(body_practice: practices.Practice,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(practices, "MAX_RENDER_SECONDS", 0.3)
    practice = dataclasses.replace(body_practice, body="{% for i in range(99999) %}{% for j in range(99999) %}"
                                                       "{% endfor %}{% endfor %}")
    started = time.monotonic()
    error = outcome(lambda: practice.render_markup(practice.bind({})))
    assert isinstance(error, GuidedAudioError) and "seconds" in str(error)
    assert time.monotonic() - started < 5


# -- session files ----------------------------------------------------------------------------

BUILTINS = tuple(practices.builtin_names())
BUILTIN_SPECS = {n: practices.load(n) for n in BUILTINS}
BUILTIN_PARAMS = tuple(sorted({p.name for practice in BUILTIN_SPECS.values() for p in practice.params}))


def param_values(param: practices.Param) -> st.SearchStrategy[Any]:
    """Values a session could rightly give a parameter."""
    if param.type == "choice":
        return st.sampled_from(param.choices)
    if param.type == "bool":
        return st.booleans()
    if param.type in ("int", "float"):
        return number_in(param.min, param.max, param.type == "int")
    return short_text
practice_names = st.one_of(
    st.sampled_from(BUILTINS),
    st.sampled_from(("", ".", "..", "/", ".j2", "fuzz.j2", "../fuzz.j2", "sub/x.j2", "/dev/null", "/etc/passwd",
                     "nope", "breathing.j2", "a\u0000b", "a\u0000.j2", "x" * 300, "x/" * 2100, "x" * 300 + ".j2",
                     "~/x.j2", "\\x.j2", "breathing ")),
    short_text,
)
couple_tables = st.one_of(
    st.fixed_dictionaries({}, optional={"partner_a": short_text, "partner_b": short_text,
                                        "health": st.lists(st.sampled_from(FLAG_NAMES), max_size=3, unique=True),
                                        "stop_word": short_text, "crisis_resources": short_text,
                                        "off_limits_a": st.lists(short_text, max_size=2)}),
    st.dictionaries(
        st.one_of(st.sampled_from(tuple(sessions.COUPLE_KEYS)), st.sampled_from(BUILTIN_PARAMS), keys),
        st.one_of(toml_values, st.lists(st.one_of(st.sampled_from(FLAG_NAMES), short_text), max_size=3),
                  st.sampled_from(("panic, stoma", "panic", "", "Sam", "x" * 300))),
        max_size=5,
    ),
)
render_tables = st.one_of(st.fixed_dictionaries({}, optional={
    "voice": st.just("piper:joe"), "rate": st.integers(60, 400), "format": st.sampled_from(("mp3", "ogg")),
    "loudness": st.floats(-30, -10), "ambient": st.just("warm-room")}), st.dictionaries(
    st.one_of(st.sampled_from(sessions.RENDER_KEYS), keys),
    st.one_of(toml_values, st.sampled_from(("mp3", "ogg", "piper:joe", "warm-room", "", " ", "\x00", "x" * 201)),
              st.integers(50, 450), st.floats(-40, 0)),
    max_size=4,
))


@st.composite
def part_tables(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(BUILTINS))
    practice = BUILTIN_SPECS[name]
    part: dict[str, Any] = {"practice": name}
    if draw(st.booleans()):
        part["minutes"] = draw(number_in(practice.minutes.min, practice.minutes.max, False))
    if draw(st.booleans()):
        part["title"] = draw(short_text)
    for param in draw(st.lists(st.sampled_from(practice.params), max_size=4, unique_by=lambda p: p.name)):
        part[param.name] = draw(param_values(param))
    if draw(st.integers(0, 2)) == 0:  # one fault
        key = draw(st.one_of(st.sampled_from(("practice", "minutes", "title")), st.sampled_from(BUILTIN_PARAMS), keys))
        part[key] = draw(st.one_of(practice_names, settings_values)) if key == "practice" else draw(settings_values)
    return part


@st.composite
def session_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"parts": draw(st.lists(part_tables(), min_size=1, max_size=3))}
    for key, strategy in (("title", short_text), ("description", short_text), ("couple", couple_tables),
                          ("render", render_tables)):
        if draw(st.booleans()):
            doc[key] = draw(strategy)
    return draw(faulty(doc, ("title", "couple", "render", "parts", "extra")))


def write_session(folder: Path, text_: str) -> Path:
    write_practice(folder, 'title = "Local"\n[params.partner_a]\ntype = "str"\ndefault = ""\nhelp = "h"\n')
    path = folder / "evening.toml"
    path.write_text(text_, encoding="utf-8")
    return path


def load_session(path: Path, overrides: dict[str, str] | None = None, strict: bool = False) -> None:
    result = outcome(lambda: sessions.load(path, overrides, strict))
    assert isinstance(result, (sessions.Session, GuidedAudioError))
    if isinstance(result, sessions.Session):
        assert result.parts
        assert isinstance(result.secrets, list)


@FUZZ
@given(doc=session_documents(), overrides=st.one_of(st.none(), st.dictionaries(keys, short_text, max_size=2)),
       strict=st.booleans())
@example(doc={"couple": 3, "parts": [{"practice": "breathing"}]}, overrides=None, strict=False)
@example(doc={"render": 3, "parts": [{"practice": "breathing"}]}, overrides=None, strict=False)
@example(doc={"parts": 3}, overrides=None, strict=False)
@example(doc={"parts": [{"practice": "breathing", "minutes": [1]}]}, overrides=None, strict=False)
@example(doc={"parts": [{"practice": "x" * 300}]}, overrides=None, strict=False)
@example(doc={"parts": [{"practice": "x/" * 2100}]}, overrides=None, strict=False)
@example(doc={"parts": [{"practice": "breathing", "inhale": [4]}]}, overrides=None, strict=False)
@example(doc={"couple": {"health": "panic, stoma"}, "parts": [{"practice": "comfort"}]}, overrides=None,
         strict=True)
@example(doc={"couple": {"health": [["panic"]], "partner_a": [1]}, "parts": [{"practice": "breathing"}]},
         overrides={"health": "nope"}, strict=False)
def test_session_reader_is_total(fuzz_root: Path, doc: dict[str, Any], overrides: dict[str, str] | None,
                                 strict: bool) -> None:
    load_session(write_session(fresh(fuzz_root), toml_document(doc)), overrides, strict)


@FEW
@given(text_=st.one_of(toml_ish, text, session_documents().map(toml_document).map(lambda t: t[: len(t) // 2])))
@example(text_="title = " + "[" * 500 + "]" * 500)
@example(text_="[[parts]]\npractice = " + "{a = " * 500 + "}" * 500)
def test_session_reader_of_random_text_is_total(fuzz_root: Path, text_: str) -> None:
    load_session(write_session(fresh(fuzz_root), text_))


# -- library manifests ------------------------------------------------------------------------
#
# `build.load` is the manifest reader. Well-typed documents (tables where tables go, lists of tables
# for [[sessions]] and [[matrix]]) with random values must be read or refused. Ill-typed ones still
# crash it: those are listed in KNOWN_MANIFEST_CRASHES and expected to fail until build.py is fixed.

item_values = st.one_of(
    st.sampled_from(("breathing", "comfort", "fuzz.j2", "evening.toml", "../x.toml", "/abs.toml", "..", ".", "~x",
                     "a/b", "C:\\x", "Zoë & Sam", "mp3", "ogg", "wav", "x" * 300, "{practice}", "{minutes}",
                     "{format}-{name}", "{nope}", "{0}", "{}", "{practice!r}", "{practice[0]}", "{{", "}")),
    short_text,
    st.integers(-5, 500),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.booleans(),
)
STRING_KEYS = ("name", "album", "title", "practice", "session", "voice", "second_voice", "ambient", "artist")


GOOD_ITEM_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
    "album": st.sampled_from(("Breathing", "Evenings", "Zoë & Sam")),
    "title": short_text,
    "minutes": st.integers(1, 20),
    "voice": st.sampled_from(("piper:joe", "espeak")),
    "second_voice": st.sampled_from(("piper:amy",)),
    "rate": st.integers(60, 400),
    "ambient": st.sampled_from(("warm-room", "none")),
    "format": st.sampled_from(("mp3", "ogg", "flac")),
    "artist": short_text,
}


@st.composite
def manifest_entries(draw: st.DrawFn, matrix: bool) -> dict[str, Any]:
    """A well-formed [[sessions]] or [[matrix]] entry, or (one time in three) one with a fault."""
    entry: dict[str, Any] = {}
    if draw(st.integers(0, 3)):
        entry["practice"] = draw(st.sampled_from(BUILTINS))
    else:
        entry["session"] = draw(st.sampled_from(("evening.toml", "sub/evening.toml")))
    for key in draw(st.lists(st.sampled_from(sorted(GOOD_ITEM_VALUES)), max_size=4, unique=True)):
        entry[key] = draw(GOOD_ITEM_VALUES[key])
    if matrix:
        for key in draw(st.lists(st.sampled_from(("practice", "minutes", "format", "rate", "voice")), max_size=3,
                                 unique=True)):
            axis = BUILTINS if key == "practice" else None
            entry[key] = draw(st.lists(st.sampled_from(axis) if axis else GOOD_ITEM_VALUES[key], min_size=1,
                                       max_size=3, unique=True))
        if "practice" in entry:
            entry.pop("session", None)
        if draw(st.booleans()):
            entry["name"] = draw(st.sampled_from(("{practice}-{minutes}min-{format}-{rate}-{voice}",
                                                  "{practice}-{format}", "{nope}", "{0}", "x", "{practice:>20}",
                                                  "{minutes!r}", "{{literal}}", "../{practice}", "{album}-{voice}")))
    if draw(st.booleans()):
        entry["settings"] = draw(st.dictionaries(st.one_of(st.sampled_from(BUILTIN_PARAMS), keys),
                                                 st.one_of(scalars, st.lists(short_text, max_size=2)), max_size=3))
    if draw(st.integers(0, 2)) == 0:  # one fault, of the kinds build.load refuses today
        key = draw(st.sampled_from(sorted(build.ITEM_KEYS)))
        value = draw(item_values)
        if key == "format":
            value = draw(st.sampled_from(("MP3", "xyz", "")))
        elif key == "minutes":
            value = draw(st.one_of(st.integers(), st.floats(allow_nan=False)))
        elif key == "settings":
            value = {}
        elif key in STRING_KEYS and not isinstance(value, str):
            value = str(value)
        entry[key] = value
    return entry


manifest_documents = st.fixed_dictionaries(
    {"sessions": st.lists(manifest_entries(matrix=False), max_size=3)},
    optional={
        "title": anything_or(short_text),
        "description": anything_or(short_text),
        "defaults": st.dictionaries(st.sampled_from(sorted(build.DEFAULT_KEYS | {"name", "bogus"})),
                                    st.one_of(st.sampled_from(("mp3", "ogg", "Album", "warm-room")),
                                              st.integers(60, 400)), max_size=3),
        "feed": st.dictionaries(st.sampled_from(("base_url", "title", "description", "author")), short_text,
                                max_size=2),
        "matrix": st.lists(manifest_entries(matrix=True), max_size=2),
    },
)


def load_manifest(folder: Path, text_: str) -> None:
    path = folder / "library.toml"
    path.write_text(text_, encoding="utf-8")
    result = outcome(lambda: build.load(path), seconds=10)
    assert isinstance(result, (build.Manifest, GuidedAudioError))
    if isinstance(result, build.Manifest):
        assert result.items
        for item in result.items:
            assert ".." not in Path(item.key).parts and not Path(item.key).is_absolute()


@FUZZ
@given(doc=manifest_documents)
def test_manifest_reader_is_total_on_well_typed_documents(fuzz_root: Path, doc: dict[str, Any]) -> None:
    load_manifest(fresh(fuzz_root), toml_document(doc))


@FEW
@given(text_=st.one_of(toml_ish, text, manifest_documents.map(toml_document).map(lambda t: t[: len(t) // 2])))
def test_manifest_reader_of_random_text_is_total(fuzz_root: Path, text_: str) -> None:
    load_manifest(fresh(fuzz_root), text_)


@FEW
@given(doc=st.fixed_dictionaries({}, optional={key: toml_values for key in ("title", "defaults", "feed", "sessions",
                                                                              "matrix")}))
def test_manifest_reader_is_total_on_any_document(fuzz_root: Path, doc: dict[str, Any]) -> None:
    load_manifest(fresh(fuzz_root), toml_document(doc))


MATRIX_AXIS = "[" + ", ".join(str(n) for n in range(1, 101)) + "]"
# Each of these once crashed the reader or ran without bound; each is now a one-line error.
ILL_FORMED_MANIFESTS = {
    "defaults is not a table (TypeError)": 'defaults = 3\n[[sessions]]\npractice = "breathing"\n',
    "sessions is not a list (TypeError)": "sessions = 3\n",
    "a [[sessions]] entry is not a table (TypeError)": "sessions = [1]\n",
    "matrix is not a list (TypeError)": "matrix = 3\n",
    "a [[matrix]] entry is not a table (AttributeError)": "matrix = [1]\n",
    "settings is not a table (AttributeError)": '[[sessions]]\npractice = "breathing"\nsettings = 3\n',
    "format is a list in [[sessions]] (TypeError: unhashable)": '[[sessions]]\npractice = "breathing"\nformat = [1]\n',
    "a session path with a NUL (ValueError from resolve)": '[[sessions]]\nsession = "a\\u0000.toml"\n',
    "a matrix axis of text minutes (ValueError from '{:g}')": '[[matrix]]\npractice = ["breathing"]\nminutes = ["x"]\n',
    "a name pattern padding to 10**9 characters (unbounded time and memory)":
        '[[matrix]]\npractice = ["breathing"]\nname = "{practice:>100000000}"\n',
    "values nested too deeply for tomllib (RecursionError)": "title = " + "[" * 500 + "]" * 500 + "\n",
    "a matrix of 10**6 combinations (unbounded time and memory)":
        f'[[matrix]]\npractice = ["breathing"]\nminutes = {MATRIX_AXIS}\nrate = {MATRIX_AXIS}\n'
        f'voice = {MATRIX_AXIS}\nname = "{{minutes}}-{{rate}}-{{voice}}"\n',
}


@pytest.mark.parametrize("text_", [pytest.param(doc, id=why) for why, doc in ILL_FORMED_MANIFESTS.items()])
def test_ill_formed_manifests_are_one_error(fuzz_root: Path, text_: str) -> None:
    path = fresh(fuzz_root) / "library.toml"
    path.write_text(text_, encoding="utf-8")
    result = outcome(lambda: build.load(path), seconds=2)
    assert isinstance(result, GuidedAudioError)


def test_fuzz_helpers_catch_a_hang() -> None:
    with pytest.raises(Unbounded):
        outcome(lambda: [re.sub("x", "y", "x" * 10) for _ in iter(int, 1)], seconds=0.2)
