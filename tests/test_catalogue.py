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


# -- the new practices, rendered for real ------------------------------------------------------

THERAPIST = {
    "small-wins": ("mp3", 5, {"partner_a": "Robin", "partner_b": "Kai", "stop_word": "lantern",
                              "own_phrases": "I am allowed to rest", "health": "panic,stoma"}),
    "closeness": ("ogg", 10, {"partner_a": "Jo", "partner_b": "Ren", "ritual": "tea on the porch",
                              "massage_area": "shoulders", "health": "lymphedema"}),
}


def test_new_practices_render_with_a_therapists_settings(tmp_path: Path) -> None:
    """The real engine and encoder: the file plays for the minutes asked, speaks, meets the
    loudness target, and none of the private values is written anywhere beside the audio."""
    import json

    import mutagen
    from conftest import loudness

    from guided_audio.render import RenderRequest, render

    for name, (fmt, minutes, settings) in THERAPIST.items():
        out = tmp_path / f"{name}.{fmt}"
        result = render(RenderRequest(name, dict(settings), minutes, voice="pyttsx3", second_voice="pyttsx3",
                                      output=out))
        assert abs(result.timeline.seconds - minutes * 60) <= 15, (name, result.timeline.seconds)
        audio = mutagen.File(out)
        assert audio is not None and abs(audio.info.length - minutes * 60) <= 15
        lufs, peak = loudness(out)
        assert abs(lufs + 16.0) <= 1.0 and peak <= -1.0, (name, lufs, peak)
        doc = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
        spoken = [e for e in doc["events"] if e["kind"] == "speech"]
        assert sum(e["end"] - e["start"] for e in spoken) > minutes * 60 * 0.15, name
        # What is said is in the captions and the lyrics (the stop word is spoken); nothing else holds it.
        tags = {k: v for k, v in audio.tags.items() if "USLT" not in k and "LYRICS" not in k.upper()}
        written = json.dumps({k: v for k, v in doc.items() if k != "events"}) + str(tags) + out.name
        for key in ("stop_word", "own_phrases", "ritual"):
            if key in settings:
                assert settings[key] not in written, (name, key)
        assert "stoma" not in written and "lymphedema" not in written and "panic" not in written
