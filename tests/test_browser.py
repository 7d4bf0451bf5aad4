"""The studio and the player in a real browser: the system's Chromium, driven by Selenium.

Nothing is downloaded: the driver is the system's chromedriver, given by path, so Selenium Manager
never runs. Without Chromium and its driver (the `chromium` and `chromium-driver` packages, which
.ci/run installs) these tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_studio import SHORT

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver") or next(
    (p for p in ("/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver") if os.path.exists(p)), None)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver)"),
]


def start_browser(width: int = 1280, height: int = 800) -> Any:
    """Headless Chromium with autoplay allowed, through the system's chromedriver."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager, if it ran at all, must not download
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def start_studio(folder: Path, cache: Path) -> tuple[subprocess.Popen[str], str]:
    """`guided-audio studio` on a free port; the process and the address it printed."""
    env = {**os.environ, "GUIDED_AUDIO_CACHE": str(cache)}
    process = subprocess.Popen([sys.executable, "-m", "guided_audio", "studio", "--folder", str(folder)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("http://127.0.0.1:"):
        process.kill()
        raise AssertionError(f"the studio did not start: {line} {process.stderr.read() if process.stderr else ''}")
    return process, line


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, speech_cache: Path) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("studio")
    (folder / "short-breath.j2").write_text(SHORT, encoding="utf-8")
    process, address = start_studio(folder, speech_cache)
    try:
        yield address, folder
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def until(test: Callable[[], Any], timeout: float = 20, what: str = "", browser: Any = None) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = test()
        if value:
            return value
        if time.monotonic() > end:
            shown = f"; the page at {browser.current_url} shows: {browser.find_element('tag name', 'body').text}" \
                if browser is not None else ""
            raise AssertionError(f"timed out waiting for {what or test}{shown}")
        time.sleep(0.1)


def at(browser: Any, seconds: float) -> dict[str, str]:
    """Seek the paused player to `seconds`; what the page shows then."""
    return dict(browser.execute_async_script(
        """const [t, done] = arguments; const a = document.getElementById("audio");
        const read = () => done({scale: breath.getAttribute("data-scale"), phase: breath.getAttribute("data-phase"),
          caption: document.getElementById("caption").textContent,
          chapter: [...document.querySelectorAll("#chapters [aria-current=true]")].map(b => b.firstChild.textContent).join()});
        const breath = document.getElementById("breath");
        a.pause(); a.addEventListener("seeked", () => requestAnimationFrame(read), {once: true}); a.currentTime = t;""",
        seconds))


def page_data(browser: Any) -> dict[str, Any]:
    return dict(json.loads(browser.find_element("id", "player-data").get_attribute("textContent"))["sessions"][0])


def test_compose_preview_render_and_play(studio: tuple[str, Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    address, _ = studio
    browser.get(address)
    until(lambda: "token" not in browser.current_url, what="the token to leave the address")
    browser.find_element(By.PARTIAL_LINK_TEXT, "A minute of breath").click()

    preview = browser.find_element(By.ID, "preview-text")
    assert "Welcome. You can stop" in preview.text
    name = browser.find_element(By.ID, "partner_a")
    name.send_keys("Robin")
    until(lambda: "Welcome, Robin." in preview.text, what="the preview to follow the form")

    minutes = browser.find_element(By.ID, "minutes")
    minutes.clear()
    minutes.send_keys("9")
    error = browser.find_element(By.ID, "minutes-error")
    until(lambda: "out of range" in error.text, what="the error beside the minutes")
    minutes.clear()
    minutes.send_keys("1")
    until(lambda: error.text == "", what="the error to go")
    browser.find_element(By.ID, "voice").send_keys("pyttsx3")
    browser.find_element(By.ID, "render").click()

    until(lambda: browser.current_url.endswith("/player.html"), timeout=90, what="the render and its player",
          browser=browser)
    data = page_data(browser)
    assert [c["title"] for c in data["chapters"]] == ["Arriving", "Breathing", "Closing"]
    inhale = next(p for p in data["phases"] if p["name"] == "inhale")
    exhale = next(p for p in data["phases"] if p["name"] == "exhale")
    until(lambda: browser.execute_script("return document.getElementById('audio').readyState >= 1"))

    # Playing: time moves, and the breath shape grows through the in-breath with it.
    browser.execute_script("document.getElementById('audio').currentTime = arguments[0];", inhale["start"] + 0.2)
    browser.find_element(By.ID, "play").click()
    until(lambda: browser.execute_script("return !document.getElementById('audio').paused"), what="playing")
    early = float(browser.find_element(By.ID, "breath").get_attribute("data-scale"))
    until(lambda: browser.execute_script("return document.getElementById('audio').currentTime") > inhale["start"] + 2,
          timeout=10, what="the audio to play on")
    later = float(browser.find_element(By.ID, "breath").get_attribute("data-scale"))
    assert later > early
    assert browser.find_element(By.ID, "play").text == "Pause"

    # Seeking: what the page shows follows the audio's time.
    start, end = at(browser, inhale["start"] + 0.1), at(browser, inhale["end"] - 0.1)
    assert start["phase"] == end["phase"] == "inhale"
    assert float(end["scale"]) > float(start["scale"]) + 0.3
    out_start, out_end = at(browser, exhale["start"] + 0.1), at(browser, exhale["end"] - 0.1)
    assert float(out_end["scale"]) < float(out_start["scale"]) - 0.3
    first_cue, last_cue = data["cues"][0], data["cues"][-1]
    assert at(browser, first_cue["start"] + 0.05)["caption"] == first_cue["text"]
    assert "Robin" in first_cue["text"]
    closing = at(browser, last_cue["start"] + 0.05)
    assert closing["caption"] == last_cue["text"] and closing["chapter"] == "Closing"
    assert at(browser, 0.5)["chapter"] == "Arriving"

    # A chapter is a button: it jumps there.
    browser.find_elements(By.CSS_SELECTOR, "#chapters button")[1].click()
    breathing = data["chapters"][1]["start"]
    until(lambda: abs(browser.execute_script("return document.getElementById('audio').currentTime") - breathing) < 1.5)
    browser.execute_script("document.getElementById('audio').pause()")

    # The render is listed, with its files to download.
    browser.get(address.split("?")[0])
    listing = browser.find_element(By.ID, "renders").text
    assert "A minute of breath" in listing and "mp3" in listing


def test_the_player_works_from_disk(studio: tuple[str, Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _, folder = studio
    pages = sorted(folder.glob("renders/*/player.html"))
    if not pages:
        pytest.skip("needs the render of the test before")
    browser.get(pages[-1].as_uri())
    data = page_data(browser)
    chapters = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#chapters button")]
    assert len(chapters) == 3 and chapters[0].startswith("Arriving")
    until(lambda: browser.execute_script("return document.getElementById('audio').readyState >= 1"),
          what="the audio beside the page to load")
    cue = data["cues"][1]
    assert at(browser, cue["start"] + 0.05)["caption"] == cue["text"]


def test_a_request_without_the_token_is_refused(studio: tuple[str, Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    address, _ = studio
    root = address.split("?")[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(root, timeout=10)
    assert refused.value.code == 403
    browser.get(root)  # cookies are deleted for the page's own site
    browser.delete_all_cookies()
    browser.get(root + "practice/breathing")
    assert "token" in browser.find_element(By.TAG_NAME, "body").text
    assert not browser.find_elements(By.ID, "practice-form")


def test_pages_fit_a_phone(studio: tuple[str, Path], browser: Any) -> None:
    address, folder = studio
    root = address.split("?")[0]
    browser.get(address)
    pages = [root + "practice/breathing", root + "session", root]
    pages += [p.as_uri() for p in sorted(folder.glob("renders/*/player.html"))[:1]]
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        for page in pages:
            browser.get(page)
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= 390, f"{page} is {width} pixels wide on a phone"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
