"""Commands that only read text start without the numerical libraries (numpy, scipy).

Each case runs in a fresh interpreter, since this test process has imported them long ago.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from guided_audio.cli import cli
try:
    cli.main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print(",".join(m for m in ("numpy", "scipy") if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["practices"], ["sounds"], ["show", "breathing"], ["render", "--help"]])
def test_text_commands_do_not_load_numpy(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    loaded = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert loaded == "", f"guided-audio {' '.join(args)} imported {loaded}"
