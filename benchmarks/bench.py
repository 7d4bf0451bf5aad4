"""Render-time benchmark: our render against ffmpeg alone and against a plain pydub pipeline.

    python benchmarks/bench.py [--practice breathing] [--minutes 20] [--format mp3] [--no-pydub]

Every figure comes from this one run; the machine may be shared, so compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from guided_audio import encoding
from guided_audio.ffmpeg import ffmpeg_exe

RENDER = """
import resource, sys, time
from pathlib import Path
from guided_audio.render import RenderRequest, render
start = time.perf_counter()
render(RenderRequest(practice=sys.argv[1], minutes=float(sys.argv[2]), output=Path(sys.argv[3]), format=sys.argv[4]))
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def timed(cmd: list[str]) -> float:
    """Wall-clock seconds of a command, which must succeed."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def ours(practice: str, minutes: float, out: Path, fmt: str) -> tuple[float, float, float]:
    """(wall seconds of the whole command, seconds inside render(), peak RSS in MB)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RENDER, practice, str(minutes), str(out), fmt],
        check=True, capture_output=True, text=True,
    )
    wall = time.perf_counter() - start
    inner, rss_kb = proc.stdout.split()
    return wall, float(inner), int(rss_kb) / 1024


def ffmpeg_alone(audio: Path, fmt: encoding.Format, folder: Path) -> float:
    """Seconds ffmpeg takes to encode the same samples (read from raw PCM) to the same format."""
    raw = folder / "same.f32"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(audio), "-f", "f32le", "-ar", "44100",
                    "-ac", "2", str(raw)], check=True)
    return timed([ffmpeg_exe(), "-v", "error", "-y", "-f", "f32le", "-ar", "44100", "-ac", "2", "-i", str(raw),
                  *fmt.codec_args, "-f", fmt.muxer, str(folder / f"ffmpeg{fmt.extension}")])


def pydub_reference(sidecar: Path, fmt: encoding.Format, folder: Path) -> float:
    """Seconds for the plain pydub way: a looped bed, one overlay per event, then export."""
    from pydub import AudioSegment

    from guided_audio import sounds, speech

    doc = json.loads(sidecar.read_text())
    lines = [speech.Line(e["text"], e["rate"]) for e in doc["events"] if e["kind"] == "speech"]
    clips = speech.synthesize(lines, voice=None, sample_rate=44100, cache_dir=speech.default_cache_dir())

    def segment(samples) -> AudioSegment:
        pcm = (samples.clip(-1, 1) * 32767).astype("<i2")
        channels = 1 if pcm.ndim == 1 else pcm.shape[1]
        return AudioSegment(pcm.tobytes(), frame_rate=44100, sample_width=2, channels=channels)

    cue_audio = {n: segment(sounds.load(sounds.resolve(n, "cue", "cue"), 44100))
                 for n in {e["name"] for e in doc["events"] if e["kind"] == "cue"}}
    bed_loop = segment(sounds.load(sounds.resolve(doc["ambient"], "bed", "bed"), 44100)) - 6
    start = time.perf_counter()
    length_ms = int(doc["duration"] * 1000)
    bed = bed_loop * (length_ms // len(bed_loop) + 1)
    mix = bed[:length_ms].fade_in(4000).fade_out(5000)
    for e in doc["events"]:
        if e["kind"] == "speech":
            mix = mix.overlay(segment(clips[speech.Line(e["text"], e["rate"])].samples), position=int(e["start"] * 1000))
        elif e["kind"] == "cue":
            mix = mix.overlay(cue_audio[e["name"]] - 10, position=int(e["start"] * 1000))
    mix.export(str(folder / f"pydub{fmt.extension}"), format=fmt.muxer, codec=fmt.codec_args[1],
               parameters=list(fmt.codec_args[2:]))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--practice", default="breathing")
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--format", default="mp3", choices=list(encoding.FORMATS))
    parser.add_argument("--no-pydub", action="store_true", help="skip the slow pydub reference")
    args = parser.parse_args()
    fmt = encoding.FORMATS[args.format]
    os.environ.setdefault("PYDUB_FFMPEG", ffmpeg_exe())
    with tempfile.TemporaryDirectory(prefix="guided-audio-bench-") as tmp:
        folder = Path(tmp)
        out = folder / f"ours{fmt.extension}"
        print(f"{args.practice}, {args.minutes:g} minutes, {fmt.name}", flush=True)
        cold, _, _ = ours(args.practice, args.minutes, out, fmt.name)  # fills the speech cache
        wall, inner, rss = ours(args.practice, args.minutes, out, fmt.name)
        alone = ffmpeg_alone(out, fmt, folder)
        print(f"  our render (warm speech cache)   {wall:7.2f} s  (inside render(): {inner:.2f} s; "
              f"first run {cold:.2f} s)")
        print(f"  ffmpeg alone, same audio         {alone:7.2f} s")
        print(f"  ratio ours / ffmpeg              {wall / alone:7.2f}  (render() alone: {inner / alone:.2f})")
        print(f"  peak memory of our render        {rss:7.0f} MB")
        if not args.no_pydub:
            from pydub import AudioSegment

            AudioSegment.converter = ffmpeg_exe()
            pydub = pydub_reference(out.with_suffix(".json"), fmt, folder)
            print(f"  pydub overlay pipeline           {pydub:7.2f} s")
            print(f"  ratio pydub / ours               {pydub / wall:7.2f}")


if __name__ == "__main__":
    main()
