"""Library-build benchmark: local processes against a two-worker Dask cluster, and the cost of planning.

    python benchmarks/bench_build.py            # a small library from examples/library.toml
    python benchmarks/bench_build.py --full     # examples/library.toml itself (several minutes)
    python benchmarks/bench_build.py --items 2000   # a smaller planning manifest

Each build starts from an empty library folder with the speech cache filled by an untimed
build first, so the figures are rendering and encoding, not the speech engine. The cluster
(a LocalCluster: a scheduler and two one-thread worker processes on this machine) is
started before its builds and not timed; it builds twice, since a worker's first item also
loads the imports and the voice, and each build includes the check of the workers.
Planning: a matrix manifest of N items timed through `build --dry-run` (which checks every
item as a render would) and through the fingerprints alone. Every figure comes from this
one run; the machine may be shared, so compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SMALL = """\
title = "Benchmark library"
[defaults]
format = "mp3"
[[sessions]]
name = "comfort-5min"
album = "Everyday practices"
practice = "comfort"
minutes = 5
[[matrix]]
album = "Breathing together"
practice = ["breathing"]
minutes = [3, 5]
ambient = ["warm-room", "soft-rain"]
name = "{practice}-{minutes}min-{ambient}"
settings = { pattern = "extended-exhale" }
"""
FORMATS = ["mp3", "ogg", "opus", "flac", "m4a", "wav"]


def build(manifest: Path, root: Path, cache: Path, *more: str) -> float:
    """Wall-clock seconds of `guided-audio build` into an empty folder; it must succeed."""
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "guided_audio", "build", str(manifest), "-o", str(root), "-q",
                    "--cache-dir", str(cache), *more], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def builds(manifest: Path, folder: Path) -> list[tuple[str, float]]:
    """(how, seconds) for -j 1, -j 2 and a two-worker cluster, after an untimed build fills the cache."""
    from distributed import LocalCluster

    cache = folder / "speech-cache"
    build(manifest, folder / "warm-up", cache, "-j", "2")
    rows = [(f"local -j {jobs}", build(manifest, folder / f"j{jobs}", cache, "-j", str(jobs))) for jobs in (1, 2)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        for when in ("new workers", "workers warm"):  # a worker's first item loads the voice and the imports
            rows.append((f"Dask, 2 workers ({when})", build(manifest, folder / "cluster", cache, "--cluster",
                                                            cluster.scheduler_address)))
    return rows


def matrix(items: int) -> str:
    """A manifest of `items` breathing variants: minutes x ambient x format."""
    formats = FORMATS[:2]
    ambients = ["warm-room", "soft-rain", "ocean-swell", "night-air", "gentle-drone"]
    steps = max(1, items // (len(formats) * len(ambients)))
    minutes = ", ".join(f"{3 + n * 0.01:.2f}" for n in range(steps))
    return (f'title = "Planning benchmark"\n[[matrix]]\nalbum = "Breathing"\npractice = ["breathing"]\n'
            f"minutes = [{minutes}]\nambient = {ambients}\nformat = {formats}\n"
            'name = "{practice}-{minutes}min-{ambient}-{format}"\n').replace("'", '"')


def planning(items: int, folder: Path) -> list[tuple[str, str]]:
    """(what, figure) for the planning of an N-item matrix: loading, fingerprints, the dry run."""
    from guided_audio.build import load
    from guided_audio.build.fingerprint import fingerprint

    manifest = folder / "matrix.toml"
    manifest.write_text(matrix(items), encoding="utf-8")
    start = time.perf_counter()
    loaded = load(manifest)
    loading = time.perf_counter() - start
    start = time.perf_counter()
    for item in loaded.items:
        fingerprint(item)
    prints = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "guided_audio", "build", str(manifest), "-o", str(folder / "plan"),
                    "--dry-run", "-q"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dry = time.perf_counter() - start
    n = len(loaded.items)
    return [("items", f"{n}"), ("manifest load s", f"{loading:.2f}"),
            ("fingerprints s", f"{prints:.2f} ({prints / n * 1000:.3f} ms an item)"),
            ("build --dry-run s", f"{dry:.2f} ({dry / n * 1000:.3f} ms an item)")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="build examples/library.toml itself")
    parser.add_argument("--items", type=int, default=10000, help="items of the planning manifest")
    parser.add_argument("--no-builds", action="store_true", help="only the planning figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="guided-audio-bench-build-") as temp:
        folder = Path(temp)
        if not args.no_builds:
            if args.full:
                manifest = EXAMPLES / "library.toml"
            else:
                manifest = folder / "library.toml"
                manifest.write_text(SMALL, encoding="utf-8")
            rows = builds(manifest, folder)
            print(f"\nBuilding {manifest.name if args.full else 'a 5-item library from examples/library.toml'}"
                  f" ({os.cpu_count()} cores):\n")
            print("| how | wall s | vs -j 1 |\n| --- | ---: | ---: |")
            for how, seconds in rows:
                print(f"| {how} | {seconds:.2f} | {seconds / rows[0][1]:.2f} |")
        print(f"\nPlanning a {args.items}-item matrix manifest:\n")
        print("| what | figure |\n| --- | ---: |")
        for what, figure in planning(args.items, folder):
            print(f"| {what} | {figure} |")


if __name__ == "__main__":
    main()
