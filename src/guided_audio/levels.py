"""The gains of the mix's layers and the automation of the bed, as a user sets them.

Kept apart from `mix` (which needs numpy) so that the command line can read its options
without loading the numerical libraries.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Levels:
    """Layer gains in dB, and the automation of the bed."""

    voice: float = 0.0
    cue: float = -10.0
    guide: float = -24.0
    bed: float = -4.0
    duck: float = 15.0  # dB the bed drops under speech (12-20; 20 for accessibility)
    cue_duck: float = 6.0  # dB cues and the guide drop under speech
    duck_down: float = 0.4  # seconds the bed takes to go down, ending at the first word
    duck_up: float = 0.9  # seconds it takes to come back after the last word
    duck_bridge: float = 1.2  # gaps shorter than this stay ducked
    fade_in: float = 4.0
    fade_out: float = 5.0
    crossfade: float = 3.0
