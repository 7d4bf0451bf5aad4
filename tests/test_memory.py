"""Peak memory does not grow with the session's length: everything streams in blocks.

Each measured render runs in a fresh interpreter, which prints its own peak resident
set size (VmHWM; ffmpeg runs as a child and is not counted).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from guided_audio.render import RenderRequest, render

TEMPLATE = """+++
title = "Long breathing"
ambient = "ocean-swell"
[minutes]
default = 5
min = 1
max = 200
+++
# Arriving
@cue singing-bowl
Welcome, both of you. Settle into a comfortable position, and let the day fall away.
Notice the support beneath you, and the room around you.
@rate 90%
Let your breath find its own pace for a moment.
# Breathing together
@breathe in=4.4 out=6.5 fill cue=soft-chime guide=on say_in="in" say_out="and out" say_cycles=4
# Closing
Let the breath return to its own rhythm.
Notice your partner beside you, and the room around you.
@cue bell
"""

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from guided_audio.render import RenderRequest, render
    practice, minutes, output, cache = sys.argv[1:5]
    result = render(RenderRequest(practice=practice, minutes=float(minutes), output=Path(output),
                                  cache_dir=Path(cache)))
    assert result.speech.synthesized == 0, "the cache should have been warm"
    print(result.timeline.seconds)
    # VmHWM, the peak of this program's own memory: ru_maxrss would count the test process
    # this child was started from (Linux keeps it across exec)
    status = Path("/proc/self/status").read_text()
    print(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")))
""")




@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("memory")
    path = folder / "long-breathing.j2"
    path.write_text(TEMPLATE, encoding="utf-8")
    # fill the speech cache here, so the measured renders only mix, master and encode
    render(RenderRequest(practice=str(path), minutes=1, output=folder / "warm.flac", cache_dir=cache_dir))
    return path


def peak_rss_mb(template: Path, minutes: float, output: Path, cache: Path) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(template), str(minutes), str(output), str(cache)],
        check=False, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seconds, kilobytes = proc.stdout.split()[-2:]
    assert float(seconds) == pytest.approx(minutes * 60, abs=15)  # it really was that long
    assert output.is_file()
    return int(kilobytes) / 1024


CEILING_MB = 150  # peak resident memory of a render with a warm speech cache, whatever its length


def test_memory_does_not_grow_with_length(template, cache_dir, tmp_path):
    short = peak_rss_mb(template, 5, tmp_path / "five.flac", cache_dir)
    long = peak_rss_mb(template, 20, tmp_path / "twenty.mp3", cache_dir)
    print(f"peak RSS: 5 min {short:.0f} MB, 20 min {long:.0f} MB")
    assert long < short + 15, f"5 min: {short:.0f} MB, 20 min: {long:.0f} MB"
    assert long < CEILING_MB, f"20 min: {long:.0f} MB"


@pytest.mark.slow
@pytest.mark.parametrize("minutes", [60, 180])
def test_long_mp3_renders_stay_under_the_ceiling(template, cache_dir, tmp_path, minutes):
    peak = peak_rss_mb(template, minutes, tmp_path / "long.mp3", cache_dir)
    print(f"peak RSS: {minutes} min {peak:.0f} MB")
    assert peak < CEILING_MB, f"{minutes} min: peak RSS {peak:.0f} MB"
