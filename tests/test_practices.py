"""Practices: front matter, parameters and binding, Jinja errors with file lines, the sandbox."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from guided_audio import practices
from guided_audio.errors import ParameterError, TemplateError
from guided_audio.markup import Section, Speech

FRONT = '''
title = "Calm"
description = "A calm practice."
ambient = "soft-rain"
sources = ["Someone 2020"]

[minutes]
default = 2
min = 0.5
max = 10
help = "Length."

[params.name]
type = "str"
default = "friend"
help = "A name."

[params.count]
type = "int"
default = 3
min = 1
max = 8
help = "How many."

[params.speed]
type = "float"
default = 1.5
min = 0.5
max = 3.0
help = "How fast."

[params.soft]
type = "bool"
default = "yes"
help = "Soft or not."

[params.mood]
type = "choice"
choices = ["calm", "bright"]
default = "calm"
help = "Mood."
'''
FRONT_LINES = FRONT.strip("\n").count("\n") + 1 + 2  # the '+++' lines too


@pytest.fixture
def calm(make_template) -> practices.Practice:
    path = make_template("# Start\nHello {{ name }}.\n", name="calm.j2", front=FRONT)
    return practices.load(str(path))


def load_body(make_template, body: str, front: str = FRONT) -> practices.Practice:
    return practices.load(str(make_template(body, name="calm.j2", front=front)))


def template_error(make_template, body: str, front: str = 'title = "T"\n') -> TemplateError:
    path = make_template(body, name="bad.j2", front=front)
    with pytest.raises(TemplateError) as info:
        p = practices.load(str(path))
        p.script(p.bind({}))
    return info.value


# -- front matter --------------------------------------------------------------------------


def test_front_matter_fields(calm: practices.Practice) -> None:
    assert (calm.name, calm.title, calm.description, calm.ambient) == ("calm", "Calm", "A calm practice.", "soft-rain")
    assert calm.sources == ("Someone 2020",)
    assert calm.builtin is False
    assert (calm.minutes.default, calm.minutes.min, calm.minutes.max, calm.minutes.type) == (2.0, 0.5, 10, "float")
    assert [p.name for p in calm.params] == ["name", "count", "speed", "soft", "mood"]


def test_defaults_are_converted_to_their_types(calm: practices.Practice) -> None:
    assert calm.param("soft").default is True
    assert calm.param("count").default == 3 and isinstance(calm.param("count").default, int)
    assert calm.param("mood").choices == ("calm", "bright")


def test_minimal_front_matter_gets_defaults(make_template) -> None:
    p = practices.load(str(make_template("Hi.\n", front='title = "T"')))
    assert (p.description, p.ambient, p.sources, p.params) == ("", "warm-room", (), ())
    assert (p.minutes.default, p.minutes.min, p.minutes.max) == (5, 1, 90)


def test_body_follows_the_front_matter(make_template) -> None:
    p = load_body(make_template, "# Start\nHello.\n")
    assert p.body.splitlines()[:2] == ["# Start", "Hello."]
    assert p.path.read_text().splitlines()[p.offset] == "# Start"  # body line n is file line n + offset
    items = p.script(p.bind({})).items  # markup lines count in the rendered script, as 'script' prints it
    assert items == (Section("Start", 1), Speech("Hello.", items[1].rate, items[1].gap, 2))


@pytest.mark.parametrize(
    "front, message",
    [
        ('description = "no title"', "needs 'title'"),
        ('title = "T"\ncolour = "red"', "unknown key 'colour'"),
        ('title = "T"\n[params.x]\ndefault = 1\nhelp = "h"', "params.x needs 'type'"),
        ('title = "T"\n[params.x]\ntype = "int"\nhelp = "h"', "params.x needs 'default'"),
        ('title = "T"\n[params.x]\ntype = "int"\ndefault = 1', "params.x needs 'help'"),
        ('title = "T"\n[params.x]\ntype = "list"\ndefault = 1\nhelp = "h"', "'list' is not one of"),
        ('title = "T"\n[params.x]\ntype = "int"\ndefault = 1\nhelp = "h"\nstep = 2', "unknown key 'step'"),
        ('title = "T"\n[params.x]\ntype = "choice"\ndefault = "a"\nhelp = "h"', "lists no choices"),
        ('title = "T"\n[params.x]\ntype = "int"\ndefault = "many"\nhelp = "h"', "params.x.default"),
        ('title = "T"\n[params.x]\ntype = "int"\ndefault = 9\nmax = 5\nhelp = "h"', "out of range"),
        ('title = "T"\n[params.x]\ntype = "choice"\nchoices = ["a"]\ndefault = "b"\nhelp = "h"', "params.x.default"),
        ('title = "T"\n[params.x]\ntype = "bool"\ndefault = "perhaps"\nhelp = "h"', "params.x.default"),
        ('title = "T"\n[params.seconds]\ntype = "int"\ndefault = 1\nhelp = "h"', "not a usable parameter name"),
        ('title = "T"\n[params.Big]\ntype = "int"\ndefault = 1\nhelp = "h"', "not a usable parameter name"),
        ('title = "T"\nparams = { x = 3 }', "params.x must be a table"),
        ('title = "T"\n[minutes]\nmin = 1', "minutes needs 'default'"),
    ],
)
def test_front_matter_validation(make_template, front: str, message: str) -> None:
    path = make_template("Hi.\n", name="bad.j2", front=front)
    with pytest.raises(TemplateError, match=message) as info:
        practices.load(str(path))
    assert info.value.source == str(path)


def test_params_minutes_is_a_reserved_name(make_template) -> None:
    path = make_template("Hi.\n", name="bad.j2", front='title = "T"\n[params.minutes]\ntype = "int"\ndefault = 1\nhelp = "h"')
    with pytest.raises(TemplateError, match="not a usable parameter name"):
        practices.load(str(path))


def test_toml_error_names_the_file_line(make_template) -> None:
    path = make_template("Hi.\n", name="bad.j2", front='title = "T"\ndescription = oops\n')
    with pytest.raises(TemplateError, match="front matter") as info:
        practices.load(str(path))
    assert (info.value.source, info.value.line) == (str(path), 3)


def test_template_must_start_with_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "x.j2"
    path.write_text("Hello.\n")
    with pytest.raises(TemplateError, match=r"\+\+\+") as info:
        practices.load(str(path))
    assert info.value.line == 1


def test_front_matter_must_be_closed(tmp_path: Path) -> None:
    path = tmp_path / "x.j2"
    path.write_text('+++\ntitle = "T"\nHello.\n')
    with pytest.raises(TemplateError, match="not closed"):
        practices.load(str(path))


def test_missing_template_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no such template file") as info:
        practices.load(str(tmp_path / "nope.j2"))
    assert info.value.source == str(tmp_path / "nope.j2")


def test_unknown_builtin_suggests_a_name() -> None:
    with pytest.raises(TemplateError, match="did you mean 'breathing'"):
        practices.load("breathin")


def test_builtin_practice_loads_and_renders_with_defaults() -> None:
    assert "breathing" in practices.builtin_names()
    p = practices.load("breathing")
    assert p.builtin and p.title
    script = p.script(p.bind({}))
    assert any(isinstance(i, Section) for i in script.items)


# -- bind ----------------------------------------------------------------------------------


def test_bind_defaults_minutes_and_seconds(calm: practices.Practice) -> None:
    values = calm.bind({})
    assert values == {"name": "friend", "count": 3, "speed": 1.5, "soft": True, "mood": "calm",
                      "minutes": 2.0, "seconds": 120.0, "opening": True, "closing": True}


def test_bind_converts_text_values(calm: practices.Practice) -> None:
    values = calm.bind({"name": "Ana", "count": "7", "speed": "2.25", "soft": "Off", "mood": "bright"}, minutes=4)
    assert values["name"] == "Ana"
    assert values["count"] == 7 and type(values["count"]) is int
    assert values["speed"] == 2.25
    assert values["soft"] is False
    assert values["mood"] == "bright"
    assert (values["minutes"], values["seconds"]) == (4.0, 240.0)


@pytest.mark.parametrize("raw, expected", [("true", True), ("YES", True), ("on", True), ("1", True),
                                           ("false", False), ("no", False), ("off", False), ("0", False)])
def test_bind_bool_spellings(calm: practices.Practice, raw: str, expected: bool) -> None:
    assert calm.bind({"soft": raw})["soft"] is expected


@pytest.mark.parametrize(
    "key, raw, message",
    [
        ("count", "3.5", "not a valid int"),
        ("count", "three", "not a valid int"),
        ("count", "9", "out of range"),
        ("count", "0", "out of range"),
        ("speed", "fast", "not a valid float"),
        ("speed", "3.5", "out of range"),
        ("soft", "maybe", "not a valid bool"),
        ("mood", "grumpy", "one of calm, bright"),
    ],
)
def test_bind_rejects_bad_values_naming_the_key(calm: practices.Practice, key: str, raw: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message) as info:
        calm.bind({key: raw})
    assert str(info.value).startswith(f"--set {key}: ")


def test_bind_unknown_key_suggests_the_nearest(calm: practices.Practice) -> None:
    with pytest.raises(ParameterError, match="did you mean 'count'") as info:
        calm.bind({"cuont": "3"})
    assert "--set cuont" in str(info.value) and "'calm'" in str(info.value)


def test_bind_unknown_key_without_a_near_name(calm: practices.Practice) -> None:
    with pytest.raises(ParameterError, match="no parameter 'zzzzzz'") as info:
        calm.bind({"zzzzzz": "3"})
    assert "did you mean" not in str(info.value)


def test_bind_minutes_is_not_a_set_key(calm: practices.Practice) -> None:
    with pytest.raises(ParameterError, match="no parameter 'minutes'"):
        calm.bind({"minutes": "3"})


@pytest.mark.parametrize("minutes", [0.25, 11, 1000])
def test_bind_minutes_outside_the_range(calm: practices.Practice, minutes: float) -> None:
    with pytest.raises(ParameterError, match=r"--minutes: .* out of range \(0.5 to 10\)"):
        calm.bind({}, minutes=minutes)


@pytest.mark.parametrize("where", ["minutes", "speed"])
def test_bind_rejects_nan(calm: practices.Practice, where: str) -> None:
    with pytest.raises(ParameterError):
        if where == "minutes":
            calm.bind({}, minutes=math.nan)
        else:
            calm.bind({"speed": "nan"})


# -- Jinja errors ------------------------------------------------------------------------------


def test_syntax_error_names_file_and_line(make_template) -> None:
    # front matter: lines 1-3; body line 4 'Hello.', line 5 the broken tag
    err = template_error(make_template, "Hello.\n{{ name }\nMore.\n")
    assert err.source.endswith("bad.j2") and err.line == 5
    assert str(err).startswith(f"{err.source}:5: ")


def test_unclosed_block_names_the_file(make_template) -> None:
    err = template_error(make_template, "Hello.\n{% if x %}\nbad\n")
    assert err.source.endswith("bad.j2") and err.line is not None and err.line >= 5


def test_undefined_variable_names_file_and_line(make_template) -> None:
    body = "# Start\n{% if true %}\nHello.\n{% endif %}\nAnd {{ nobody }} here.\n"
    err = template_error(make_template, body)
    assert "'nobody' is undefined" in err.message
    assert err.source.endswith("bad.j2") and err.line == 8


def test_undefined_variable_after_long_front_matter(make_template) -> None:
    err = template_error(make_template, "Hello.\n\n{{ name }} and {{ missing }}\n", front=FRONT)
    assert err.line == FRONT_LINES + 3


def test_error_in_an_expression_names_its_line(make_template) -> None:
    err = template_error(make_template, "Hello.\nBreathe {{ 1 // 0 }} times.\n")
    assert "ZeroDivisionError" in err.message and err.line == 5


def test_undefined_in_a_loop_names_its_line(make_template) -> None:
    err = template_error(make_template, "{% for i in range(2) %}\nLine {{ i }}.\n{{ i.nope }}\n{% endfor %}\n")
    assert err.line == 6


@pytest.mark.parametrize("expr", ["''.__class__.__mro__", "cycler.__init__.__globals__", "lipsum.__globals__"])
def test_user_template_is_sandboxed(make_template, expr: str) -> None:
    err = template_error(make_template, "Hello.\n{{ " + expr + " }}\n")
    assert "unsafe" in err.message or "undefined" in err.message
    assert err.line == 5


def test_sandbox_error_is_a_template_error_from_security_error(make_template) -> None:
    import jinja2.sandbox

    err = template_error(make_template, "{{ ''.__class__.__mro__ }}\n")
    assert isinstance(err.__cause__, jinja2.sandbox.SecurityError)


def test_rendered_markup_error_names_the_rendered_template(make_template) -> None:
    path = make_template("Hello.\n@breathe in=4\n", name="bad.j2", front='title = "T"')
    p = practices.load(str(path))
    with pytest.raises(Exception) as info:
        p.script(p.bind({}))
    assert str(info.value).startswith(f"{path}: line 2 of the rendered script")
