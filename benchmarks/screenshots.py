"""Screenshots of the studio and the player for the README, at phone and desktop sizes.

    python benchmarks/screenshots.py [--out docs/screenshots] [--voice pyttsx3]

Starts `guided-audio studio` on a scratch folder, renders a short breathing session through it,
and photographs the practice form, the session composer and the player in the system's Chromium
(Debian's `chromium` and `chromium-driver`; nothing is downloaded). The images are reduced to a
palette so they stay small in the repository.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZES = {"phone": (390, 844), "desktop": (1280, 800)}


def browser() -> Any:
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--mute-audio",
                "--hide-scrollbars", "--window-size=1280,800"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))


def size(driver: Any, name: str) -> None:
    width, height = SIZES[name]
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": name == "phone"})


def shoot(driver: Any, path: Path) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    image.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(path, f"{path.stat().st_size // 1024} KiB")


def wait(test: Any, timeout: float = 120) -> Any:
    end = time.monotonic() + timeout
    while not (value := test()):
        if time.monotonic() > end:
            raise SystemExit("timed out")
        time.sleep(0.2)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--voice", default="pyttsx3", help="voice of the sample render (default: eSpeak, quick)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory(prefix="studio-shots-") as scratch:
        studio = subprocess.Popen([sys.executable, "-m", "guided_audio", "studio", "--folder", scratch],
                                  stdout=subprocess.PIPE, text=True)
        assert studio.stdout is not None
        address = studio.stdout.readline().strip()
        root = address.split("?")[0]
        driver = browser()
        try:
            driver.get(address)
            driver.get(root + "practice/breathing")
            for name, value in (("partner_a", "Alex"), ("partner_b", "Sam")):
                driver.find_element(By.ID, name).send_keys(value)
            wait(lambda: "Alex" in driver.find_element(By.ID, "preview-text").text)
            for name in SIZES:
                size(driver, name)
                driver.execute_script("window.scrollTo(0, 0)")
                shoot(driver, args.out / f"studio-practice-{name}.png")

            driver.get(root + "session")
            size(driver, "desktop")
            shoot(driver, args.out / "studio-composer-desktop.png")

            driver.get(root + "practice/breathing")
            for name, value in (("partner_a", "Alex"), ("partner_b", "Sam"), ("voice", args.voice)):
                driver.find_element(By.ID, name).send_keys(value)
            minutes = driver.find_element(By.ID, "minutes")
            minutes.clear()
            minutes.send_keys("3")
            driver.find_element(By.ID, "render").click()
            wait(lambda: driver.current_url.endswith("/player.html"))
            data = json.loads(driver.find_element(By.ID, "player-data").get_attribute("textContent"))["sessions"][0]
            inhale = next(p for p in data["phases"] if p["name"] == "inhale")
            spoken = [(c, p) for p in data["phases"] if p["name"] == "inhale" for c in data["cues"]
                      if p["start"] <= c["start"] + 0.5 < p["end"]]  # words over an in-breath, if any
            moment = spoken[0][0]["start"] + 0.5 if spoken else (inhale["start"] + inhale["end"]) / 2
            for name in SIZES:
                size(driver, name)
                driver.execute_async_script(
                    "const [t, done] = arguments; const a = document.getElementById('audio');"
                    "a.addEventListener('seeked', () => setTimeout(done, 300), {once: true}); a.currentTime = t;",
                    moment)
                shoot(driver, args.out / f"player-{name}.png")
            driver.get(root)
            size(driver, "desktop")
            shoot(driver, args.out / "studio-list-desktop.png")
        finally:
            driver.quit()
            studio.terminate()
            studio.wait(timeout=20)


if __name__ == "__main__":
    main()
