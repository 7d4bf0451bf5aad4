"""Worker process for the pyttsx3 engine: reads a JSON request on stdin, reports JSON lines.

Its stdout is kept for the reports; pyttsx3's own printing goes to a null device.
Reports never quote a line's text (it may hold a private word): a failure names the
line by its index in the request.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time
import wave

WRITE_TIMEOUT = 30.0  # seconds


def _prepare_espeak() -> None:
    """On Linux without a system eSpeak NG, point pyttsx3 at the espeakng-loader wheel."""
    if not sys.platform.startswith("linux") or ctypes.util.find_library("espeak-ng"):
        return
    import espeakng_loader

    data = espeakng_loader.get_data_path()
    if not os.path.isdir(data):
        raise RuntimeError(f"eSpeak NG data folder missing: {data}")
    os.environ["ESPEAK_DATA_PATH"] = str(data)
    # Loaded by soname later by pyttsx3; preloading with the default RTLD_LOCAL is enough.
    ctypes.CDLL(str(espeakng_loader.get_library_path()))


def _frames(path: str) -> int:
    try:
        with wave.open(path, "rb") as wav:
            return wav.getnframes()
    except (OSError, EOFError, wave.Error):
        return os.path.getsize(path) if os.path.exists(path) else 0


def _watch_espeak(driver: object) -> threading.Event | None:
    """An event set when the espeak driver has completely finished an utterance.

    The driver writes the file from eSpeak's callback thread, then marks itself idle and
    ends its loop. If the next line starts before that callback returns, the late "end of
    loop" cancels the next line, which is then never written (seen on a busy machine).
    Wrapping the callback tells us when it has returned.
    """
    from pyttsx3.drivers import _espeak

    original = getattr(driver, "_onSynth", None)
    if original is None:
        return None
    finished = threading.Event()

    def callback(wav, numsamples, events):  # type: ignore[no-untyped-def]
        i, terminated = 0, False
        while events[i].type != _espeak.EVENT_LIST_TERMINATED:
            terminated = terminated or events[i].type == _espeak.EVENT_MSG_TERMINATED
            i += 1
        result = original(wav, numsamples, events)
        if terminated:
            finished.set()
        return result

    _espeak.SetSynthCallback(callback)
    return finished


def _idle() -> None:
    from pyttsx3.drivers import _espeak

    deadline = time.monotonic() + WRITE_TIMEOUT
    while _espeak.IsPlaying() and time.monotonic() < deadline:
        time.sleep(0.002)


def _written(path: str, finished: threading.Event | None) -> bool:
    """Wait until the driver is done with the utterance and has written a WAV with frames."""
    deadline = time.monotonic() + WRITE_TIMEOUT
    if finished is not None and not finished.wait(WRITE_TIMEOUT):
        return False
    while time.monotonic() < deadline:
        if _frames(path) > 0:
            return True
        time.sleep(0.005)
    return False


def main() -> None:
    report = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- stays open for the worker's whole life

    def send(**msg: object) -> None:
        report.write(json.dumps(msg) + "\n")

    request = json.loads(sys.stdin.read())
    try:
        _prepare_espeak()
        import pyttsx3

        engine = pyttsx3.init()
    except Exception as exc:  # reported, then the parent explains what to check
        send(error=f"cannot start the speech engine: {exc}")
        return
    sync = None
    if getattr(engine, "driver_name", "") == "espeak" or sys.platform.startswith("linux"):
        try:
            from pyttsx3.drivers import _espeak

            sync = _espeak.Synchronize
        except Exception:
            sync = None
    driver = getattr(getattr(engine, "proxy", None), "_driver", None)
    finished = _watch_espeak(driver) if sync is not None else None
    errors: list[str] = []
    engine.connect("error", lambda name=None, exception=None: errors.append(str(exception)))
    voices = engine.getProperty("voices")
    if request["command"] == "voices":
        for v in voices:
            langs = [lang.decode("utf-8", "replace") if isinstance(lang, bytes) else str(lang)
                     for lang in (v.languages or [])]
            send(voice={"id": v.id, "name": v.name, "languages": langs, "gender": v.gender})
        return
    voice = request.get("voice")
    if voice:
        match = [v.id for v in voices if voice in (v.id, v.name)]
        if not match:
            send(error=f"no voice '{voice}' in this speech engine", kind="voice")
            return
        engine.setProperty("voice", match[0])
    for index, job in enumerate(request["jobs"]):
        engine.setProperty("rate", int(job["rate"]))
        if finished is not None:
            finished.clear()
            # While eSpeak still counts the last line as playing, the driver's end-of-loop
            # would cancel the new line at once: wait until it is idle.
            _idle()
        # One save_to_file + runAndWait per clip: several queued saves keep only the last.
        engine.save_to_file(job["text"], job["path"])
        engine.runAndWait()
        if sync is not None:
            sync()
        # runAndWait can return before the driver has written the file, most of all on a busy
        # machine; starting the next line then would save this audio under the next name.
        if not _written(job["path"], finished):
            send(error=f"no audio was written within {WRITE_TIMEOUT:g} s", index=index)
            return
        if errors:
            send(error=errors[-1], index=index)
            return
        send(done=index)


if __name__ == "__main__":
    main()
