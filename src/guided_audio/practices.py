"""Practices: script templates with TOML front matter that declares their parameters.

A template file starts with front matter between two `+++` lines, then a Jinja2 body
that renders to the script markup (see `guided_audio.markup`).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import hashlib
import math
import re
import signal
import string
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache
import jinja2.sandbox

from guided_audio import health, markup, publish
from guided_audio.errors import ParameterError, TemplateError, did_you_mean
from guided_audio.paths import cache_dir, data_folder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TEMPLATE_SUFFIX = ".j2"
PARAM_TYPES = ("str", "int", "float", "bool", "choice")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
# Values every template receives besides its parameters. In a session of several parts,
# `opening` is true only for the first part (welcome, safety note, stop word) and `closing`
# only for the last (the ending); a practice rendered alone has both.
RESERVED = {"minutes", "seconds", "opening", "closing", "health"}


@dataclass(frozen=True)
class Param:
    """One declared template parameter."""

    name: str
    type: str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    private: bool = False  # shapes what is said; never written as a setting or shown in a message

    def describe_range(self) -> str:
        """Allowed values as a short phrase."""
        if self.type == "choice":
            return "one of " + ", ".join(self.choices)
        if self.type == "bool":
            return "true or false"
        if self.min is not None or self.max is not None:
            return f"{_fmt(self.min)} to {_fmt(self.max)}"
        return "any " + {"str": "text", "int": "whole number", "float": "number"}[self.type]

    def convert(self, raw: Any, where: str) -> Any:
        """Turn a user's value (text or TOML value) into this parameter's type, checked."""
        value = raw
        try:
            if self.type == "bool":
                if isinstance(raw, str):
                    if raw.lower() not in _TRUE | _FALSE:
                        raise ValueError
                    value = raw.lower() in _TRUE
                elif not isinstance(raw, bool):
                    raise ValueError
            elif self.type == "int":
                if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                    raise ValueError
                value = int(raw)
            elif self.type == "float":
                if isinstance(raw, bool):
                    raise ValueError
                value = float(raw)
            else:
                value = str(raw)
        except (ValueError, TypeError, OverflowError):  # text that is no number, a list, 1e400 as an int
            raise ParameterError(
                f"{where}: {self._shown(raw)} is not a valid {self.type} ({self.describe_range()})"
            ) from None
        if self.type == "choice" and value not in self.choices:
            raise ParameterError(f"{where}: {self._shown(raw)} is not {self.describe_range()}")
        if self.type in ("int", "float"):
            if not math.isfinite(value):
                raise ParameterError(f"{where}: {raw!r} is not a finite number ({self.describe_range()})")
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                raise ParameterError(f"{where}: {raw} is out of range ({self.describe_range()})")
        if self.type == "str":
            value = markup.literal(value)
        return value

    def _shown(self, raw: Any) -> str:
        return "the value given" if self.private else repr(raw)


@dataclass(frozen=True)
class Practice:
    """A practice template: its metadata, parameters and Jinja2 body."""

    name: str
    path: Path
    title: str
    description: str
    ambient: str
    language: str
    sources: tuple[str, ...]
    minutes: Param
    params: tuple[Param, ...]
    body: str  # the Jinja2 text after the front matter
    offset: int  # lines before the body: a body line n is line n + offset of the file
    builtin: bool
    unaffected_by: tuple[str, ...] = ()  # health flags checked and needing no words here

    @property
    def health_flags(self) -> tuple[str, ...]:
        """The health flags this practice adapts to (its parameters named like a flag)."""
        return tuple(p.name for p in self.params if health.is_flag(p.name))

    def unadapted(self, flags: list[str]) -> list[str]:
        """The flags among `flags` this practice can neither adapt to nor safely ignore."""
        return [f for f in flags if f not in self.health_flags and f not in self.unaffected_by]

    def private_values(self, values: dict[str, Any]) -> list[Any]:
        """The values of the private parameters (for `privacy.private_texts`)."""
        return [values[p.name] for p in self.params if p.private]

    def public(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values that may be written as settings: no private parameter, no reserved name."""
        private = {p.name for p in self.params if p.private}
        return {k: v for k, v in values.items() if k not in private and k not in RESERVED - {"minutes"}}

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(name)

    def bind(
        self, settings: dict[str, Any], minutes: float | None = None, *, opening: bool = True, closing: bool = True
    ) -> dict[str, Any]:
        """Defaults overlaid with the user's settings, checked; raise ParameterError naming the key.

        `health` (a list, or text such as "panic, stoma") sets each flag this practice adapts to;
        the caller warns about the rest (see `unadapted`).
        """
        names = [p.name for p in self.params]
        values: dict[str, Any] = {p.name: p.default for p in self.params}
        settings = dict(settings)
        flags = settings.pop("health", None)
        if flags is not None:
            listed = flags if isinstance(flags, list) else health.parse_list(str(flags))
            for flag in listed:
                if flag in names:
                    values[flag] = True
        for key, raw in settings.items():
            if key not in names:
                suggestion = did_you_mean(key, names)
                raise ParameterError(
                    f"--set {key}: '{self.name}' has no parameter '{key}'{suggestion} "
                    f"(see 'guided-audio show {self.name}')"
                )
            values[key] = self.param(key).convert(raw, f"--set {key}")
        values["minutes"] = self.minutes.convert(
            self.minutes.default if minutes is None else minutes, "--minutes"
        )
        values["seconds"] = values["minutes"] * 60
        values["opening"], values["closing"] = opening, closing
        return values

    def render_markup(self, values: dict[str, Any]) -> str:
        """Render the template body with `values`; raise TemplateError naming file and line."""
        try:
            template = _compiled(self.body, sandboxed=not self.builtin)
            with _time_limit(MAX_RENDER_SECONDS):
                return _bounded_output(template.generate(**values))
        except _TooMuch as exc:
            raise TemplateError(str(exc), source=self.path) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(exc.message or "syntax error", source=self.path, line=self._line(exc.lineno)) from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(str(exc), source=self.path, line=self._line(_template_line(exc))) from exc
        except Exception as exc:  # an error inside the template's own expressions
            raise TemplateError(f"{type(exc).__name__}: {exc}", source=self.path,
                                line=self._line(_template_line(exc))) from exc

    def _line(self, body_line: int | None) -> int | None:
        return body_line + self.offset if body_line else None

    def script(self, values: dict[str, Any]) -> markup.Script:
        """Render and parse: the practice's Script for these values."""
        return markup.parse(self.render_markup(values), source=str(self.path))


def _fmt(value: float | None) -> str:
    if value is None:
        return "any"
    return str(int(value)) if float(value).is_integer() else str(value)


# Bounds on rendering a template, whoever wrote it: its output and the time it may take.
MAX_RENDER_CHARS = 2_000_000
MAX_RENDER_SECONDS = 10.0
MAX_RENDER_MEMORY = 1 << 30  # bytes; each single step is bounded by MAX_RENDER_CHARS besides


class _TooMuch(Exception):
    """A template asked for more output or time than any script needs."""


_SIZED = (str, list, tuple)
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\d*)(?:\.(\d*))?")


def _too_big(number: Any) -> bool:
    return isinstance(number, int) and abs(number) > MAX_RENDER_CHARS


def _check_format(template: str, args: tuple[Any, ...], kwargs: dict[str, Any], braces: bool) -> None:
    """Refuse a format (`%` or `str.format`) whose widths or precisions ask for a huge result."""
    if braces:
        specs = [spec or "" for _, _, spec, _ in string.Formatter().parse(template)]
    else:
        specs = [m.group(1) + "." + (m.group(2) or "") for m in _PERCENT_FIELD.finditer(template)]
    numbers = [int(n) for spec in specs for n in re.findall(r"\d+", spec)]
    if any(_too_big(n) for n in [*numbers, *args, *kwargs.values()]):  # a '*' or '{}' width comes from an argument
        raise _TooMuch(f"the template formats a value wider than {MAX_RENDER_CHARS} characters")


def _check_call(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a string method or filter call whose result would be huge, before it is made."""
    given = [*args, *kwargs.values()]
    if any(isinstance(v, _SIZED) and len(v) > MAX_RENDER_CHARS for v in given):
        raise _TooMuch(f"the template passes a value longer than {MAX_RENDER_CHARS} characters")
    size = len(value) if isinstance(value, _SIZED) else 0
    if name in ("center", "ljust", "rjust", "zfill", "indent", "batch", "slice") and any(map(_too_big, given)):
        raise _TooMuch(f"the template asks {name} for more than {MAX_RENDER_CHARS} characters or items")
    if name == "expandtabs" and isinstance(value, str):
        size += value.count("\t") * max([8, *(v for v in given if isinstance(v, int))])
    elif name == "replace" and isinstance(value, str) and len(args) >= 2 and isinstance(args[0], str) \
            and isinstance(args[1], str):
        size += value.count(args[0]) * len(args[1]) + (len(args[1]) if not args[0] else 0)
    elif name == "join" and isinstance(value, str) and args and isinstance(args[0], (list, tuple)):
        size = sum(len(v) if isinstance(v, str) else 20 for v in args[0]) + len(value) * len(args[0])
    elif name == "join" and isinstance(value, (list, tuple)):  # the filter: value|join(separator)
        separator = args[0] if args and isinstance(args[0], str) else ""
        size = sum(len(v) if isinstance(v, str) else 20 for v in value) + len(separator) * len(value)
    elif name == "format" and isinstance(value, str):
        _check_format(value, args, kwargs, braces=False)
    if size > 2 * MAX_RENDER_CHARS:
        raise _TooMuch(f"the template builds a value longer than {MAX_RENDER_CHARS} characters with {name}")


def _bounded_filter(name: str, function: Any) -> Any:
    """A filter that checks its arguments first (see `_check_call`); Jinja2's pass_* marks are kept."""

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        values = [a for a in args if not isinstance(a, (jinja2.runtime.Context, jinja2.Environment,
                                                             jinja2.nodes.EvalContext))]
        if values:
            _check_call(name, values[0], tuple(values[1:]), kwargs)
        return function(*args, **kwargs)

    return bounded


class _BoundedNamespace(jinja2.utils.Namespace):
    """`namespace()`, whose attributes cannot grow past any script's length one step at a time."""

    def __setitem__(self, name: str, value: Any) -> None:
        if isinstance(value, _SIZED) and len(value) > MAX_RENDER_CHARS:
            raise _TooMuch(f"the template builds a value longer than {MAX_RENDER_CHARS} characters")
        super().__setitem__(name, value)


class _BoundedSandbox(jinja2.sandbox.SandboxedEnvironment):
    """Jinja2's sandbox, with operators, string methods and filters that cannot build huge values."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        _check_call(getattr(__obj, "__name__", "") if isinstance(owner, str) else "", owner, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> Any:
            _check_format(template, args, kwargs, braces=True)
            return wrapped(*args, **kwargs)

        return bounded

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise _TooMuch(f"the template raises to the power {right}; at most 64 is allowed")
        if operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED) \
                and len(left) + len(right) > MAX_RENDER_CHARS:
            raise _TooMuch(f"the template builds a value longer than {MAX_RENDER_CHARS} characters")
        if operator == "%" and isinstance(left, str):
            _check_format(left, right if isinstance(right, tuple) else (right,), {}, braces=False)
        if operator == "*":
            sized, count = (left, right) if isinstance(left, _SIZED) else (right, left)
            if isinstance(sized, _SIZED) and isinstance(count, int) \
                    and len(sized) * count > MAX_RENDER_CHARS:
                raise _TooMuch(f"the template repeats a value to more than {MAX_RENDER_CHARS} characters")
        return super().call_binop(context, operator, left, right)


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # Jinja2's parameter names
    """Jinja2's lipsum, with at most 20 paragraphs of at most 100 words."""
    from jinja2.utils import generate_lorem_ipsum

    return str(generate_lorem_ipsum(n=builtins.min(n, 20), html=html, min=builtins.min(min, 100),
                                    max=builtins.min(max, 100)))


def _environment(*, sandboxed: bool) -> jinja2.Environment:
    cls = _BoundedSandbox if sandboxed else jinja2.Environment
    env = cls(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals["lipsum"] = _lipsum
    if sandboxed:
        env.globals["namespace"] = _BoundedNamespace
        env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items()}
    return env


COMPILED_VERSION = "1"  # bump when _environment's options change: compiled templates are kept by it


@functools.lru_cache(maxsize=64)
def _compiled(body: str, *, sandboxed: bool) -> jinja2.Template:
    """A template body compiled once per process, and kept compiled in the cache between runs.

    Compiling a practice costs far more than rendering it. The compiled code is kept under a
    hash of the body, the environment and Jinja2's and Python's versions; values are never
    in it, only the template's own text.
    """
    env = _environment(sandboxed=sandboxed)
    env.loader = jinja2.FunctionLoader(lambda name: (body, None, lambda: True))
    env.bytecode_cache = _CompiledCache()
    name = hashlib.sha256(f"{COMPILED_VERSION}\0{sandboxed}\0{body}".encode()).hexdigest()
    return env.get_template(name)


class _CompiledCache(jinja2.BytecodeCache):
    """Compiled templates as files in the cache folder; one that cannot be read or written is skipped."""

    def __init__(self) -> None:
        self.folder = cache_dir() / "templates"

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            with open(self.folder / f"{bucket.key}.code", "rb") as handle:
                bucket.load_bytecode(handle)
        except Exception:  # missing, unreadable or damaged: compiled again
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            publish.remove_stale_temp_files(self.folder / ".tmp")
            publish.write_through(self.folder / f"{bucket.key}.code", bucket.bytecode_to_string(),
                                  self.folder / ".tmp")


def _bounded_output(chunks: Iterator[str]) -> str:
    """Join a template's output, stopping once it is longer than any script needs."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RENDER_CHARS:
            raise _TooMuch(f"the template's output is longer than {MAX_RENDER_CHARS} characters")
        out.append(chunk)
    return "".join(out)


def _peak_memory() -> int:
    """The process's peak resident memory in bytes (0 where it cannot be told)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _TooMuch if the block runs longer than `seconds` or grows the process by more than
    MAX_RENDER_MEMORY bytes, many small steps at a time (main thread only; elsewhere no limit).

    An alarm set by someone else (a test runner's timeout) is put back afterwards, less the time used.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        if time.monotonic() - started > seconds:
            raise _TooMuch(f"the template took more than {seconds:g} seconds to render")
        if _peak_memory() - memory > MAX_RENDER_MEMORY:
            raise _TooMuch(f"the template needed more than {MAX_RENDER_MEMORY >> 20} MB of memory to render")

    started = time.monotonic()
    memory = _peak_memory()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    pending, interval = signal.setitimer(signal.ITIMER_REAL, min(seconds, 0.05), min(seconds, 0.05))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if pending:
            signal.setitimer(signal.ITIMER_REAL, max(pending - (time.monotonic() - started), 0.001), interval)


def _template_line(exc: BaseException) -> int | None:
    """The template line an error was raised from, found in the traceback Jinja2 rewrote."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# -- loading ------------------------------------------------------------------------------


def builtin_dir() -> Path:
    """The folder of the built-in practice templates."""
    return data_folder("guided_audio.builtin_scripts", "scripts")


def builtin_names() -> list[str]:
    """Names of the built-in practices, sorted."""
    return sorted(p.name[: -len(TEMPLATE_SUFFIX)] for p in builtin_dir().glob("*" + TEMPLATE_SUFFIX))


def load(name_or_path: str) -> Practice:
    """A built-in practice by name, or a user's template by path."""
    candidate = Path(name_or_path)
    looks_like_path = candidate.suffix or "/" in name_or_path or "\\" in name_or_path
    if looks_like_path:
        if not _is_file(candidate):
            raise TemplateError("no such template file", source=name_or_path)
        return from_file(candidate, builtin=False)
    path = builtin_dir() / f"{name_or_path}{TEMPLATE_SUFFIX}"
    if not _is_file(path):
        names = builtin_names()
        suggestion = did_you_mean(name_or_path, names)
        raise TemplateError(
            f"unknown practice '{name_or_path}'{suggestion} (built-in: {', '.join(names)}; "
            "or give the path of a .j2 template)"
        )
    return from_file(path, builtin=True)


def _is_file(path: Path) -> bool:
    """Whether `path` is a file; a name the system cannot look up (too long, say) is none."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


_LOADED: dict[tuple[str, bool, int, int, int], Practice] = {}  # practices read, by path and file stats


def from_file(path: Path, *, builtin: bool) -> Practice:
    """Read a template file: front matter, parameters and body.

    A file read before and unchanged since (same size, times and inode) is not read again:
    a library build loads each of its few templates once for thousands of items.
    """
    try:
        stat = path.stat()
        key = (str(path.absolute()), builtin, stat.st_mtime_ns, stat.st_size, stat.st_ino)
    except (OSError, ValueError):
        key = None
    if key is not None and key in _LOADED:
        return _LOADED[key]
    practice = _read(path, builtin=builtin)
    if key is not None:
        if len(_LOADED) >= 256:
            _LOADED.clear()
        _LOADED[key] = practice
    return practice


def _read(path: Path, *, builtin: bool) -> Practice:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read template: {exc}", source=path) from exc
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "+++":
        raise TemplateError("a template starts with TOML front matter between '+++' lines", source=path, line=1)
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "+++")
    except StopIteration:
        raise TemplateError("front matter is not closed by a '+++' line", source=path, line=1) from None
    try:
        meta = tomllib.loads("".join(lines[1:end]))
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) + 1 if match else 1
        raise TemplateError(f"front matter: {exc}", source=path, line=line) from exc
    except RecursionError:
        raise TemplateError("front matter: values nested too deeply", source=path, line=1) from None
    return _practice(path, meta, "".join(lines[end + 1 :]), end + 1, builtin)


def _practice(path: Path, meta: dict[str, Any], body: str, offset: int, builtin: bool) -> Practice:
    def need(table: dict[str, Any], key: str, where: str) -> Any:
        if key not in table:
            raise TemplateError(f"front matter: {where} needs '{key}'", source=path)
        return table[key]

    known = {"title", "description", "ambient", "language", "sources", "minutes", "params", "unaffected_by"}
    unknown = sorted(set(meta) - known)
    if unknown:
        raise TemplateError(f"front matter: unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})", source=path)
    for key, kind in (("minutes", dict), ("params", dict), ("sources", list), ("unaffected_by", list)):
        if key in meta and not isinstance(meta[key], kind):
            raise TemplateError(f"front matter: {key} must be a {'table' if kind is dict else 'list'}", source=path)
    minutes_table = meta.get("minutes", {"default": 5, "min": 1, "max": 90})
    minutes = _param(path, "minutes", {"type": "float", "help": "Target length in minutes.", **minutes_table},
                     need, table="minutes")
    params = tuple(_param(path, name, spec, need, table=f"params.{name}") for name, spec in meta.get("params", {}).items())
    unaffected = tuple(str(f) for f in meta.get("unaffected_by", ()))
    for flag in unaffected:
        if not health.is_flag(flag):
            raise TemplateError(f"front matter: unaffected_by: {health.unknown_flag_hint(flag)}", source=path)
    return Practice(
        name=path.name[: -len(TEMPLATE_SUFFIX)] if path.name.endswith(TEMPLATE_SUFFIX) else path.stem,
        path=path,
        title=str(need(meta, "title", "the template")),
        description=str(meta.get("description", "")),
        ambient=str(meta.get("ambient", "warm-room")),
        language=str(meta.get("language", "en")),
        sources=tuple(str(s) for s in meta.get("sources", ())),
        minutes=minutes,
        params=params,
        body=body,
        offset=offset,
        builtin=builtin,
        unaffected_by=unaffected,
    )


def _param(path: Path, name: str, spec: Any, need: Any, table: str) -> Param:
    where = table
    if not isinstance(spec, dict):
        raise TemplateError(f"front matter: {where} must be a table", source=path)
    if table != "minutes" and (not _NAME.match(name) or name in RESERVED):
        raise TemplateError(f"front matter: '{name}' is not a usable parameter name", source=path)
    kind = need(spec, "type", where)
    if kind not in PARAM_TYPES:
        raise TemplateError(f"front matter: {where}.type '{kind}' is not one of {', '.join(PARAM_TYPES)}", source=path)
    unknown = sorted(set(spec) - {"type", "default", "help", "min", "max", "choices", "private"})
    if unknown:
        raise TemplateError(f"front matter: {where} has unknown key '{unknown[0]}'", source=path)
    for key in ("min", "max"):
        bound = spec.get(key)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))
                                  or math.isnan(bound)):
            raise TemplateError(f"front matter: {where}.{key} must be a number", source=path)
    choices = spec.get("choices", [])
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise TemplateError(f"front matter: {where}.choices must be a list of text", source=path)
    param = Param(
        name=name,
        type=kind,
        default=need(spec, "default", where),
        help=str(need(spec, "help", where)),
        min=spec.get("min"),
        max=spec.get("max"),
        choices=tuple(choices),
        private=bool(spec.get("private", False)) or health.is_flag(name),  # a health flag is always private
    )
    if health.is_flag(name) and kind != "bool":
        raise TemplateError(f"front matter: {where} is a health flag and must be a bool", source=path)
    if kind == "choice" and not param.choices:
        raise TemplateError(f"front matter: {where} is a choice but lists no choices", source=path)
    try:
        default = param.convert(param.default, f"{where}.default")
    except ParameterError as exc:
        raise TemplateError(f"front matter: {exc.message}", source=path) from None
    return Param(**{**param.__dict__, "default": default})
