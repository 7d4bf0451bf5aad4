"""The built-in library as a user meets it: listed by `practices`, in the README, in the examples."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from click.testing import CliRunner

from guided_audio import practices
from guided_audio.cli import cli

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NEW = ["listening", "values", "needs-map", "closeness", "clinician-questions", "small-wins"]


def test_fourteen_practices_are_listed() -> None:
    names = practices.builtin_names()
    assert len(names) == 14 and all(n in names for n in NEW), names
    out = CliRunner().invoke(cli, ["practices"]).output
    for name in names:
        assert re.search(rf"^\s*{re.escape(name)}\b", out, re.MULTILINE), f"'practices' does not list {name}"


def test_readme_table_lists_every_builtin_with_its_range() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Built-in practices"):]
    table = table[: table.index("\n\n", table.index("| --- |"))]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([\w-]+)` \| ([^|]+) \|", table, re.MULTILINE)}
    for name in practices.builtin_names():
        assert name in rows, f"the README's table of built-ins has no row for {name}"
        m = practices.load(name).minutes
        assert rows[name].strip() == f"{m.min:g}-{m.max:g} ({m.default:g})", (name, rows[name])


def _practices_in(path: Path) -> set[str]:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    found = {part.get("practice") for part in doc.get("parts", [])}
    found |= {item.get("practice") for item in doc.get("sessions", [])}
    for matrix in doc.get("matrix", []):
        found |= set(matrix.get("practice", []))
    return {p for p in found if isinstance(p, str)}


def test_every_builtin_appears_in_the_examples() -> None:
    used: set[str] = set()
    for path in sorted((ROOT / "examples").glob("*.toml")):
        used |= _practices_in(path)
    missing = [n for n in NEW if n not in used]
    assert not missing, f"no example uses {', '.join(missing)}"


def test_every_example_session_loads() -> None:
    from guided_audio.program import load
    from guided_audio.request import RenderRequest

    for path in sorted((ROOT / "examples").glob("*.toml")):
        if "parts" in tomllib.loads(path.read_text(encoding="utf-8")):
            program, _ = load(RenderRequest(str(path)))
            assert program.scripts(), path
