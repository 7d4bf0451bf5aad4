"""Commands that only read text start without the numerical, cluster and web libraries.

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
print(",".join(m for m in ("numpy", "scipy", "distributed", "dask", "starlette", "uvicorn") if m in sys.modules),
      file=sys.stderr)
"""


def loaded_by(*args: str) -> str:
    """The heavy modules `guided-audio ARGS` imported, in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""


@pytest.mark.parametrize("args", [["--help"], ["practices"], ["sounds"], ["show", "breathing"], ["render", "--help"],
                                  ["build", "--help"], ["studio", "--help"]])
def test_text_commands_load_no_numerical_cluster_or_web_library(args: list[str]) -> None:
    """Only a render needs numpy, only a build with --cluster needs dask, only the studio's server the web stack."""
    loaded = loaded_by(*args)
    assert loaded == "", f"guided-audio {' '.join(args)} imported {loaded}"
