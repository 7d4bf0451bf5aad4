"""The player page: self-contained, escaped, built from the sidecars, and free of private settings."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner
from test_studio import SHORT

from guided_audio import player
from guided_audio.cli import cli
from guided_audio.player import PlayerSession, player_html, read_vtt, session_from_sidecars, write_player


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parsed(page: str) -> Elements:
    p = Elements()
    p.feed(page)
    return p


def embedded(page: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="player-data">(.*?)</script>', page, re.S)
    assert match
    data: dict[str, object] = json.loads(match.group(1))
    return data


HOSTILE = '</script><script>alert(1)</script><!-- & "quotes"'


def session(**changes: object) -> PlayerSession:
    values: dict[str, object] = dict(
        title="Evening", audio="evening.mp3", duration=61.5, vtt="evening.vtt",
        chapters=[{"startTime": 0.0, "title": "Arriving"}, {"startTime": 20.0, "title": "Breathing"}],
        phases=[{"name": "inhale", "start": 21.0, "end": 25.0}, {"name": "exhale", "start": 25.0, "end": 31.0}],
        cues=[{"start": 1.0, "end": 3.0, "text": "Welcome, both of you."}])
    values.update(changes)
    return PlayerSession(**values)  # type: ignore[arg-type]


def test_the_page_is_self_contained() -> None:
    page = player_html([session()], title="Evening")
    tags = parsed(page).tags
    assert not [a for _, a in tags if a.get("src") or (a.get("href") or "").startswith(("http", "//"))]
    assert [t for t, _ in tags].count("style") == 1
    assert "<link" not in page and "@import" not in page and "fetch(" not in page
    assert embedded(page)["sessions"][0]["phases"][0]["name"] == "inhale"  # type: ignore[index]


def test_text_from_anywhere_stays_text() -> None:
    s = session(title=HOSTILE, chapters=[{"startTime": 0, "title": HOSTILE}],
                cues=[{"start": 0, "end": 1, "text": HOSTILE}])
    page = player_html([s, session()], title=HOSTILE)
    p = parsed(page)
    assert [t for t, _ in p.tags].count("script") == 2  # the data and the code, nothing injected
    assert "alert(1)</script>" not in page
    data = embedded(page)["sessions"]
    assert data[0]["title"] == HOSTILE and data[0]["cues"][0]["text"] == HOSTILE  # type: ignore[index]
    assert "<title>&lt;/script&gt;" in page


def test_only_breath_phases_reach_the_page() -> None:
    s = session(phases=[{"name": "inhale", "start": 0, "end": 4}, {"name": "evil", "start": 4, "end": 5}])
    assert [p["name"] for p in embedded(player_html([s], title="x"))["sessions"][0]["phases"]] == ["inhale"]  # type: ignore[index]


def test_vtt_cues_are_read_back_unescaped(tmp_path: Path) -> None:
    vtt = tmp_path / "a.vtt"
    vtt.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nYou &amp; me\n&lt;here&gt;\n\n"
                   "01:00:03.250 --> 01:00:04.000 align:start\nlater\n", encoding="utf-8")
    assert read_vtt(vtt) == [{"start": 1.0, "end": 2.5, "text": "You & me\n<here>"},
                             {"start": 3603.25, "end": 3604.0, "text": "later"}]


def write_sidecars(folder: Path, name: str = "my evening") -> Path:
    audio = folder / f"{name}.mp3"
    audio.write_bytes(b"ID3")
    (folder / f"{name}.json").write_text(json.dumps({
        "title": "Evening", "duration": 60.0,
        "settings": {"stop_word": "pineapple", "off_limits_a": ["scar"], "panic": True},
        "crisis_resources": "Call the clinic",
        "events": [{"kind": "phase", "name": "inhale", "start": 10.0, "end": 14.0},
                   {"kind": "speech", "text": "Welcome.", "start": 0.5, "end": 1.5}],
    }), encoding="utf-8")
    (folder / f"{name}.chapters.json").write_text(json.dumps({
        "version": "1.2.0", "title": "Evening", "chapters": [{"startTime": 0, "endTime": 9, "title": "Arriving"}]}),
        encoding="utf-8")
    (folder / f"{name}.vtt").write_text("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nWelcome.\n", encoding="utf-8")
    return audio


def test_sessions_are_read_from_the_sidecars_with_urls_relative_to_the_page(tmp_path: Path) -> None:
    (tmp_path / "renders").mkdir()
    audio = write_sidecars(tmp_path / "renders")
    s = session_from_sidecars(audio, tmp_path)
    assert s.audio == "renders/my%20evening.mp3" and s.vtt == "renders/my%20evening.vtt"
    assert s.phases == [{"name": "inhale", "start": 10.0, "end": 14.0}]
    assert s.chapters == [{"startTime": 0.0, "title": "Arriving"}]
    assert s.cues == [{"start": 0.5, "end": 1.5, "text": "Welcome."}] and s.duration == 60.0


def test_no_setting_of_the_timeline_reaches_the_page(tmp_path: Path) -> None:
    page = write_player(write_sidecars(tmp_path)).read_text(encoding="utf-8")
    for secret in ("pineapple", "scar", "panic", "Call the clinic", "settings", "crisis"):
        assert secret not in page
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []


def test_render_writes_the_player_beside_the_audio(tmp_path: Path, runner: CliRunner) -> None:
    template = tmp_path / "short.j2"
    template.write_text(SHORT, encoding="utf-8")
    out = tmp_path / "out" / "short.mp3"
    result = runner.invoke(cli, ["render", str(template), "--voice", "pyttsx3", "-q", "-o", str(out), "--player",
                                 "--set", "stop_word=pineapple", "--set", "cycles=1"])
    assert result.exit_code == 0, result.stderr
    page = out.with_name(player.PAGE_NAME)
    assert result.stdout.splitlines()[-1] == str(page)
    data = embedded(page.read_text(encoding="utf-8"))["sessions"][0]  # type: ignore[index]
    assert data["audio"] == "short.mp3" and [c["title"] for c in data["chapters"]] == ["Arriving", "Breathing", "Closing"]
    assert {p["name"] for p in data["phases"]} == {"inhale", "hold", "exhale"}
    assert "pineapple" not in page.read_text(encoding="utf-8")  # private, and not spoken by this template


def test_the_player_needs_its_sidecars(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["render", "breathing", "--no-sidecars", "--player", "-o", str(tmp_path / "a.mp3")])
    assert result.exit_code == 2 and "--player" in result.stderr
    assert not list(tmp_path.iterdir())


def test_private_words_spoken_aloud_are_shown_as_private_on_the_page(tmp_path: Path, runner: CliRunner) -> None:
    """The captions file keeps what is said; the page, which is on a screen, does not show the stop word."""
    out = tmp_path / "comfort.mp3"
    result = runner.invoke(cli, ["render", "comfort", "--voice", "pyttsx3", "-q", "-o", str(out), "--player",
                                 "--minutes", "5", "--set", "stop_word=Pineapple",
                                 "--set", "own_phrases=Zebra lantern", "--set", "health=stoma"])
    assert result.exit_code == 0, result.stderr
    assert "pineapple" in out.with_suffix(".vtt").read_text(encoding="utf-8").lower()  # it is spoken
    page = out.with_name(player.PAGE_NAME).read_text(encoding="utf-8")
    for private in ("pineapple", "zebra", "stoma"):
        assert private not in page.lower(), private
    cues = embedded(page)["sessions"][0]["cues"]  # type: ignore[index]
    assert any("[private]" in cue["text"] for cue in cues)
