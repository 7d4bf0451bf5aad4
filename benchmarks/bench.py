"""Render-time benchmark: our render against ffmpeg alone and against a plain pydub pipeline.

    python benchmarks/bench.py                       # breathing 20 min and reconnect-night 60 min, mp3 and flac
    python benchmarks/bench.py --practice comfort --minutes 10 --format opus [--pydub]
    GUIDED_AUDIO_FFMPEG=system python benchmarks/bench.py   # with the ffmpeg on PATH

Every figure comes from this one run: each row is the median of --repeat turns of ours and ffmpeg
alone, taken in turn (the machine may be shared, so compare the ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from guided_audio import encoding
from guided_audio.ffmpeg import ffmpeg_exe

RENDER = """
import sys, time
from pathlib import Path
from guided_audio.render import RenderRequest, render
if len(sys.argv) > 5:  # keep the samples the encoder is given (the last encoding's), as raw float32
    import numpy as np
    from guided_audio import encoding
    real = encoding.encode
    def encode(blocks, **options):
        def kept():
            with open(sys.argv[5], "wb") as raw:
                for start, block in blocks:
                    raw.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
                    yield start, block
        return real(kept(), **options)
    encoding.encode = encode
start = time.perf_counter()
render(RenderRequest(practice=sys.argv[1], minutes=float(sys.argv[2]), output=Path(sys.argv[3]), format=sys.argv[4]))
status = Path("/proc/self/status").read_text()  # VmHWM: this program's own peak (ru_maxrss keeps the parent's)
print(time.perf_counter() - start, next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:")))
"""


def timed(cmd: list[str]) -> float:
    """Wall-clock seconds of a command, which must succeed."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def ours(practice: str, minutes: float, out: Path, fmt: str, keep: Path | None = None) -> tuple[float, float, float]:
    """(wall seconds of the whole command, seconds inside render(), peak RSS in MB).

    With `keep`, the samples given to the encoder are also written there (untimed runs only).
    """
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RENDER, practice, str(minutes), str(out), fmt, *([str(keep)] if keep else [])],
        check=True, capture_output=True, text=True,
    )
    wall = time.perf_counter() - start
    inner, rss_kb = proc.stdout.split()
    return wall, float(inner), int(rss_kb) / 1024


def ffmpeg_alone(raw: Path, fmt: encoding.Format, folder: Path) -> float:
    """Seconds ffmpeg takes to encode the very samples our render gave its encoder (raw float32) in `fmt`.

    Not the samples decoded from our file: a lossy file decodes band-limited, which encodes faster
    than the full-band mix (LAME: 1.1 s less for 20 minutes).
    """
    return timed([ffmpeg_exe(), "-v", "error", "-y", "-f", "f32le", "-ar", "44100", "-ac", "2", "-i", str(raw),
                  *fmt.output_args, "-f", fmt.muxer, str(folder / f"ffmpeg{fmt.extension}")])


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


CASES = [("breathing", 20.0), ("reconnect-night", 60.0)]  # the longest breathing session, the longest evening
FORMATS = ["mp3", "flac"]


def ffmpeg_version(exe: str) -> str:
    """The first line of `ffmpeg -version`, shortened: which build ran."""
    first = subprocess.run([exe, "-version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    return " ".join(first.split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--practice", help="one practice instead of the standard cases")
    parser.add_argument("--minutes", type=float, default=20, help="its length (with --practice)")
    parser.add_argument("--format", action="append", choices=list(encoding.FORMATS),
                        help="a format to measure (repeatable; default: mp3 and flac)")
    parser.add_argument("--repeat", type=int, default=3, help="turns of ours and ffmpeg alone per row (default 3)")
    parser.add_argument("--pydub", action="store_true", help="also time the slow pydub overlay pipeline")
    parser.add_argument("--no-pydub", action="store_true", help=argparse.SUPPRESS)  # the default now
    args = parser.parse_args()
    cases = [(args.practice, args.minutes)] if args.practice else CASES
    formats = args.format or FORMATS
    exe = ffmpeg_exe()
    os.environ.setdefault("PYDUB_FFMPEG", exe)
    print(f"ffmpeg: {ffmpeg_version(exe)} ({exe})")
    print("Each row: ours, then ffmpeg alone encoding the samples our render gave its encoder with the same")
    print(f"binary, {args.repeat} times in turn (the speech cache warmed first); the medians, and the range of the")
    print("ratios of each turn. Compare ratios: the machine may be shared.\n")
    print(f"| {'practice':<16} | {'min':>3} | {'format':<6} | {'ours s':>7} | {'ffmpeg s':>8} | {'ratio':>5} "
          f"| {'ratios':>11} | {'render() s':>10} | {'peak RSS MB':>11} |")
    print(f"| {'-' * 16} | {'-' * 3}: | {'-' * 6} | {'-' * 6}: | {'-' * 7}: | {'-' * 4}: | {'-' * 11} "
          f"| {'-' * 9}: | {'-' * 10}: |")
    with tempfile.TemporaryDirectory(prefix="guided-audio-bench-") as tmp:
        folder = Path(tmp)
        for practice, minutes in cases:
            for name in formats:
                fmt = encoding.FORMATS[name]
                out = folder / f"ours{fmt.extension}"
                raw = folder / "same.f32"
                ours(practice, minutes, out, fmt.name, keep=raw)  # fills the caches, keeps the samples
                os.sync()  # the kept samples' writeback would otherwise run during the timed render
                turns = []
                for _ in range(args.repeat):
                    wall, inner, rss = ours(practice, minutes, out, fmt.name)
                    turns.append((wall, ffmpeg_alone(raw, fmt, folder), inner, rss))
                wall, alone, inner = (statistics.median(t[i] for t in turns) for i in range(3))
                rss = max(t[3] for t in turns)
                ratios = sorted(t[0] / t[1] for t in turns)
                spread = f"{ratios[0]:.2f}-{ratios[-1]:.2f}"
                print(f"| {practice:<16} | {minutes:>3g} | {name:<6} | {wall:>7.2f} | {alone:>8.2f} | "
                      f"{wall / alone:>5.2f} | {spread:>11} | {inner:>10.2f} | {rss:>11.0f} |", flush=True)
                if args.pydub:
                    from pydub import AudioSegment

                    AudioSegment.converter = exe
                    pydub = pydub_reference(out.with_suffix(".json"), fmt, folder)
                    print(f"    pydub overlay pipeline {pydub:.2f} s, {pydub / wall:.2f} times ours")


if __name__ == "__main__":
    main()
