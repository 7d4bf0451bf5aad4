"""The studio over HTTP: its guard (token, Host, origin, size), forms and their errors by field, the
session composer's files, confinement to its folder, and privacy on the player page."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from guided_audio import sessions
from guided_audio.cli import cli
from guided_audio.studio import composer
from guided_audio.studio.app import create_app
from guided_audio.studio.folder import LOCK, StudioLock

PORT = 8765
TOKEN = "test-token-123"
BASE = f"http://127.0.0.1:{PORT}"

# A one-minute practice with a breathing block: quick to render with eSpeak.
SHORT = """+++
title = "A minute of breath"
description = "One minute: arriving, a few slow breaths together, and a close."
ambient = "none"

[minutes]
default = 1
min = 1
max = 2

[params.partner_a]
type = "str"
default = ""
help = "One partner's name."

[params.cycles]
type = "int"
default = 3
min = 1
max = 4
help = "Breaths together."

[params.stop_word]
type = "str"
default = ""
help = "The couple's word to stop."
private = true
+++
# Arriving
Welcome{% if partner_a %}, {{ partner_a }}{% endif %}. You can stop at any time.
@pause 2
# Breathing
Let's breathe together.
@breathe in=4 hold=2 out=6 cycles={{ cycles }} say_in="in" say_out="out" say_cycles=1
# Closing
Notice the room around you. Thank you both.
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    f = tmp_path / "studio"
    f.mkdir()
    (f / "short-breath.j2").write_text(SHORT, encoding="utf-8")
    return f


@pytest.fixture
def client(folder: Path) -> TestClient:
    c = TestClient(create_app(folder, token=TOKEN, port=PORT), base_url=BASE, follow_redirects=False)
    c.cookies.set(f"guided_audio_studio_{PORT}", TOKEN)
    return c


def anonymous(folder: Path) -> TestClient:
    return TestClient(create_app(folder, token=TOKEN, port=PORT), base_url=BASE, follow_redirects=False)


# -- the guard -------------------------------------------------------------------------------


def test_a_request_without_the_token_is_refused(folder: Path) -> None:
    c = anonymous(folder)
    for path in ("/", "/practice/breathing", "/static/studio.css", "/session"):
        assert c.get(path).status_code == 403
    assert c.get("/?token=wrong").status_code == 403
    assert c.post("/practice/breathing/preview", data={"minutes": "5"}).status_code == 403


def test_the_token_in_the_address_sets_a_cookie_and_leaves_the_address(folder: Path) -> None:
    c = anonymous(folder)
    first = c.get(f"/?token={TOKEN}")
    assert first.status_code == 303 and first.headers["location"] == "/"
    assert "HttpOnly" in first.headers["set-cookie"] and "SameSite=Strict" in first.headers["set-cookie"]
    assert c.get("/").status_code == 200  # the cookie now carries it


def test_another_host_name_is_refused_even_with_the_token(folder: Path) -> None:
    c = TestClient(create_app(folder, token=TOKEN, port=PORT), base_url=f"http://rebound.example:{PORT}")
    assert c.get(f"/?token={TOKEN}").status_code == 403
    c = TestClient(create_app(folder, token=TOKEN, port=PORT), base_url="http://127.0.0.1:9999")
    assert c.get(f"/?token={TOKEN}").status_code == 403


def test_a_post_from_another_origin_is_refused(client: TestClient) -> None:
    r = client.post("/practice/breathing/preview", data={"minutes": "5"}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    ok = client.post("/practice/breathing/preview", data={"minutes": "5"}, headers={"origin": BASE})
    assert ok.status_code == 200


def test_responses_carry_no_cors_and_a_strict_policy(client: TestClient) -> None:
    r = client.get("/", headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


def test_a_large_upload_is_refused(client: TestClient) -> None:
    big = b"#" * (2 << 20)
    r = client.post("/session/upload", files={"file": ("big.toml", big, "text/plain")})
    assert r.status_code == 413


def test_one_studio_per_folder(folder: Path) -> None:
    from guided_audio.errors import BadInput

    with StudioLock(folder), pytest.raises(BadInput, match="another studio"), StudioLock(folder):
        pass
    assert (folder / LOCK).exists()


def test_the_studio_command_refuses_a_port_in_use(tmp_path: Path, runner: CliRunner) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = runner.invoke(cli, ["studio", "--port", str(port), "--folder", str(tmp_path / "f")])
    assert result.exit_code == 2
    assert f"--port {port}" in result.stderr


# -- practices and their forms ----------------------------------------------------------------


def test_the_list_has_built_in_and_folder_practices_with_descriptions(client: TestClient) -> None:
    page = client.get("/").text
    assert "Breathing together" in page and "Synchronized breathing" in page
    assert "A minute of breath" in page and "this folder" in page
    assert "/practice/file%3Ashort-breath.j2" in page


def test_the_form_comes_from_front_matter(client: TestClient) -> None:
    page = client.get("/practice/breathing").text
    assert re.search(r'<select id="pattern" name="pattern"', page)
    assert 'name="minutes" type="number"' in page and 'min="3"' in page
    assert re.search(r'name="stop_word".*?</div>', page, re.S)
    stop = page[page.index('data-field="stop_word"'):]
    assert "private" in stop[: stop.index("</label>")]
    assert 'name="health" value="panic"' in page


def browser_form(practice: str, **values: str) -> dict[str, str]:
    """What a browser sends for a practice's form as the page shows it, with `values` typed in."""
    from guided_audio import practices
    from guided_audio.studio import forms

    shown = {f.name: f.value for f in forms.fields(practices.load(practice), {})}
    shown = {k: v for k, v in shown.items() if v != "false"}  # an unticked box sends nothing
    return {**shown, **values}


def test_the_preview_is_the_text_the_script_command_prints(client: TestClient, runner: CliRunner) -> None:
    data = browser_form("breathing", minutes="4", pattern="box", partner_a="Alex", partner_b="Sam")
    r = client.post("/practice/breathing/preview", data=data)
    result = r.json()
    cli_run = runner.invoke(cli, ["script", "breathing", "--minutes", "4", "--set", "pattern=box",
                                  "--set", "partner_a=Alex", "--set", "partner_b=Sam"])
    assert cli_run.exit_code == 0
    assert result["errors"] == {}
    assert result["text"] == cli_run.stdout
    assert result["planned"] in cli_run.stderr


def test_the_preview_changes_with_the_settings(client: TestClient) -> None:
    a = client.post("/practice/file:short-breath.j2/preview", data={"partner_a": "Alex"}).json()
    b = client.post("/practice/file:short-breath.j2/preview", data={"partner_a": "Robin"}).json()
    assert "Alex" in a["text"] and "Robin" in b["text"] and a["text"] != b["text"]


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"minutes": "99"}, "minutes", "out of range"),
    ({"minutes": "soon"}, "minutes", "not a number"),
    ({"pattern": "fast"}, "pattern", "is not one of"),
    ({"inhale": "abc"}, "inhale", "not a valid float"),
])
def test_a_bad_value_is_reported_beside_its_field(client: TestClient, data: dict[str, str], field: str,
                                                  words: str) -> None:
    errors = client.post("/practice/breathing/preview", data=data).json()["errors"]
    assert field in errors and words in errors[field]
    page = client.post("/practice/breathing/render", data=data)
    assert page.status_code == 400
    box = page.text[page.text.index(f'data-field="{field}"'):]
    assert words in box[: box.index("</div>")]


def test_a_private_value_is_not_repeated_in_its_error(client: TestClient) -> None:
    form = client.post("/practice/breathing/preview", data={"stop_word": "x" * 5000}).json()
    assert "x" * 50 not in json.dumps(form["errors"])


def test_an_unknown_practice_or_a_path_outside_is_not_found(client: TestClient, folder: Path) -> None:
    (folder.parent / "outside.j2").write_text(SHORT, encoding="utf-8")
    assert client.get("/practice/nope").status_code == 404
    assert client.get("/practice/file:..%2Foutside.j2").status_code == 404
    (folder / "link.j2").symlink_to(folder.parent / "outside.j2")
    assert client.get("/practice/file:link.j2").status_code == 404


# -- the session composer ---------------------------------------------------------------------------


def composer_form(**extra: str) -> dict[str, str]:
    form = {"file_name": "tuesday", "title": "Tuesday evening", "partner_a": "Alex", "partner_b": "Sam",
            "stop_word": "pineapple", "off_limits_a": "left shoulder\nscar", "parts": "2",
            "p0-practice": "breathing", "p0-minutes": "4", "p0-pattern": "box",
            "p1-practice": "file:short-breath.j2", "p1-minutes": "1", "p1-cycles": "2"}
    form.update(extra)
    return form


def test_a_saved_session_is_the_toml_the_cli_reads(client: TestClient, folder: Path) -> None:
    r = client.post("/session", data={**composer_form(action="save"), "health": ["panic", "stoma"]})
    assert r.status_code == 200, r.text
    assert "Saved as sessions/tuesday.toml" in r.text
    path = folder / "sessions" / "tuesday.toml"
    session = sessions.load(path)
    assert [p.practice.name for p in session.parts] == ["breathing", "short-breath"]
    assert session.parts[0].values["pattern"] == "box" and session.parts[0].values["stop_word"] == "pineapple"
    assert session.parts[1].values["cycles"] == 2 and session.parts[0].values["panic"] is True
    assert session.couple["off_limits_a"] == ["left shoulder", "scar"]
    again = client.get("/session?name=tuesday").text
    assert 'value="pineapple"' in again and "left shoulder\nscar" in again
    assert 'name="p1-practice" value="file:short-breath.j2"' in again


def test_a_session_roundtrips_through_the_composer(folder: Path) -> None:
    c = composer.from_form(composer_form(), ["panic"])
    text = composer.to_toml(c, folder)
    back = composer.from_toml(text, folder, "tuesday")
    assert back == c or composer.to_toml(back, folder) == text


def test_parts_are_added_moved_and_removed(client: TestClient) -> None:
    page = client.post("/session", data={**composer_form(action="add"), "new_part": "comfort"}).text
    assert 'name="p2-practice" value="comfort"' in page
    page = client.post("/session", data=composer_form(action="up:1")).text
    assert 'name="p0-practice" value="file:short-breath.j2"' in page
    page = client.post("/session", data=composer_form(action="remove:0")).text
    assert 'name="p0-practice" value="file:short-breath.j2"' in page and "p1-practice" not in page


def test_composer_errors_are_shown_beside_their_fields(client: TestClient, folder: Path) -> None:
    r = client.post("/session", data=composer_form(action="save", file_name="../../etc/x", **{"p0-minutes": "1"}))
    assert r.status_code == 400
    for field in ("file_name", "p0-minutes"):
        box = r.text[r.text.index(f'data-field="{field}"'):]
        assert 'class="error"' in box and box.index("</div>") > box.index("role=\"alert\">") + 10
    assert not list(folder.rglob("*.toml"))


def test_a_session_file_is_loaded_by_upload(client: TestClient, folder: Path) -> None:
    text = composer.to_toml(composer.from_form(composer_form(), []), folder)
    r = client.post("/session/upload", files={"file": ("../Evening Plan.toml", text.encode(), "text/plain")})
    assert r.status_code == 200
    assert 'value="evening-plan"' in r.text and 'value="pineapple"' in r.text


def test_an_uploaded_session_cannot_reach_templates_outside(client: TestClient, folder: Path) -> None:
    (folder.parent / "outside.j2").write_text(SHORT, encoding="utf-8")
    text = 'title = "x"\n[[parts]]\npractice = "../../outside.j2"\n'
    r = client.post("/session/upload", files={"file": ("x.toml", text.encode(), "text/plain")})
    assert r.status_code == 400 and "is outside the studio" in r.text


# -- renders, and privacy on the player page ---------------------------------------------------------


def wait(client: TestClient, location: str, timeout: float = 120) -> dict[str, object]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        state: dict[str, object] = client.get(location + "/state").json()
        if state["state"] != "running":
            return state
        time.sleep(0.3)
    raise AssertionError("the render did not finish")


def test_a_render_writes_only_inside_the_folder_and_its_player_keeps_privacy(
        client: TestClient, folder: Path, tmp_path: Path) -> None:
    before = {p for p in tmp_path.rglob("*")} - {p for p in folder.rglob("*")}
    form = composer_form(action="render", stop_word="", **{"p0-minutes": "3", "p0-pattern": "box"})
    form.update({"notes": "", "crisis_resources": "Call the clinic", "voice": "pyttsx3", "ambient": "none",
                 "safe_zones_b": "hands", "health": "panic"})
    r = client.post("/session", data=form)
    assert r.status_code == 303, r.text
    state = wait(client, r.headers["location"])
    assert state["state"] == "done", state
    assert {"Speaking", "Mixing and encoding"} <= set(state["stages"])  # type: ignore[arg-type]
    name = str(state["render"])
    assert re.fullmatch(r"tuesday-\d{8}-\d{6}", name)
    after = {p for p in tmp_path.rglob("*")} - {p for p in folder.rglob("*")}
    assert after == before  # nothing written beside the folder
    page = client.get(f"/renders/{name}/player.html")
    assert page.status_code == 200 and "'unsafe-inline'" not in page.headers["content-security-policy"]
    for secret in ("left shoulder", "scar", "hands", "panic", "Call the clinic", "off_limits", "settings"):
        assert secret.lower() not in page.text.lower(), secret
    listing = client.get("/").text
    assert f"/renders/{name}/player.html" in listing and "Tuesday evening" in listing
    audio = client.get(f"/renders/{name}/tuesday.mp3", headers={"range": "bytes=0-99"})
    assert audio.status_code == 206 and len(audio.content) == 100
    assert client.get(f"/renders/{name}/..%2F..%2Fshort-breath.j2").status_code == 404


def test_a_failed_render_says_why_and_leaves_the_studio_running(client: TestClient, folder: Path) -> None:
    r = client.post("/practice/file:short-breath.j2/render", data={"minutes": "1", "voice": "nosuchengine:x"})
    assert r.status_code == 303
    state = wait(client, r.headers["location"], timeout=60)
    assert state["state"] == "failed" and "nosuchengine" in str(state["error"])
    assert client.get("/").status_code == 200
    assert client.get(r.headers["location"]).status_code == 200
    assert not list((folder / "renders").iterdir())  # no empty folder left for it
