"""Planning a large library: each template, script and folder is read once, whatever the item count.

The time of a 10,000-item dry run is measured by `make bench`; these tests check the
structure that keeps it small, and that what is shared gives every item its own answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from guided_audio import build as builds
from guided_audio import practices, program
from guided_audio.build.fingerprint import Fingerprints, fingerprint

MATRIX = """
title = "Clinic"
[[matrix]]
practice = ["breathing", "comfort"]
minutes = [10, 12, 15]
ambient = ["warm-room", "soft-rain"]
voice = ["pyttsx3:", "piper:joe"]
rate = [100, 110, 120, 130, 140]
name = "{practice}-{minutes}-{ambient}-{voice}-{rate}"
"""


def _manifest(tmp_path: Path, text: str = MATRIX) -> builds.Manifest:
    path = tmp_path / "clinic.toml"
    path.write_text(text, encoding="utf-8")
    return builds.load(path)


def test_dry_run_renders_each_script_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = _manifest(tmp_path)
    assert len(manifest.items) == 120
    scripts = []
    real = program.Program.scripts

    def counted(self: program.Program) -> list:  # type: ignore[type-arg]
        scripts.append(self.name)
        return real(self)

    monkeypatch.setattr(program.Program, "scripts", counted)
    reads = []
    real_read = practices._read
    monkeypatch.setattr(practices, "_read", lambda path, builtin: reads.append(path) or real_read(path, builtin=builtin))
    practices._LOADED.clear()
    report = builds.build(manifest, tmp_path / "out", jobs=1, dry_run=True)
    assert not report.failed and not report.built
    assert sorted(scripts) == sorted(["breathing", "comfort"] * 3)  # one per practice and length
    assert len(reads) == 2  # each template read once


def test_shared_checks_still_answer_for_each_item(tmp_path: Path) -> None:
    """A length one practice cannot have fails for those items only; the rest would build."""
    manifest = _manifest(tmp_path, MATRIX.replace("minutes = [10, 12, 15]", "minutes = [10, 25]"))
    events: list[tuple[str, str]] = []
    report = builds.build(manifest, tmp_path / "out", jobs=1, dry_run=True,
                          on_event=lambda kind, name, detail: events.append((kind, name)))
    failed = {name for name, _ in report.failed}
    assert failed and all(name.startswith("breathing-25-") for name in failed)  # breathing allows 3 to 20
    assert {name for kind, name in events if kind == "would build"} == {
        item.name for item in manifest.items} - failed


def test_a_template_edited_between_loads_is_read_again(tmp_path: Path) -> None:
    template = tmp_path / "mine.j2"
    text = '+++\ntitle = "{}"\n[minutes]\ndefault = 1\nmin = 0.5\nmax = 5\n+++\n# Start\nHello.\n'
    template.write_text(text.format("First"), encoding="utf-8")
    assert practices.load(str(template)).title == "First"
    template.write_text(text.format("Second, longer"), encoding="utf-8")
    assert practices.load(str(template)).title == "Second, longer"


def test_one_fingerprint_per_item_from_shared_reads(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    shared = Fingerprints()
    keys = [shared(item) for item in manifest.items]
    assert len(set(keys)) == len(keys)
    assert keys[:5] == [fingerprint(item) for item in manifest.items[:5]]
