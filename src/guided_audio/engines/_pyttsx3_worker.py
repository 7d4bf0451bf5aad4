"""Worker process for the pyttsx3 engine: reads a JSON request on stdin, reports JSON lines.

Its stdout is kept for the reports; pyttsx3's own printing goes to a null device.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
import wave


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


def main() -> None:
    report = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")

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
    errors: list[str] = []
    engine.connect("error", lambda name=None, exception=None: errors.append(str(exception)))
    voices = engine.getProperty("voices")
    if request["command"] == "voices":
        for v in voices:
            langs = [l.decode("utf-8", "replace") if isinstance(l, bytes) else str(l) for l in (v.languages or [])]
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
        # One save_to_file + runAndWait per clip: several queued saves keep only the last.
        engine.save_to_file(job["text"], job["path"])
        engine.runAndWait()
        if sync is not None:
            sync()  # runAndWait can return before eSpeak has written the file
        if errors:
            send(error=f"failed on {job['text']!r}: {errors[-1]}")
            return
        if _frames(job["path"]) <= 0:
            send(error=f"no audio was written for {job['text']!r}")
            return
        send(done=index)


if __name__ == "__main__":
    main()
