"""The mix: speech, cues and the ambient bed summed into float32 stereo, block by block.

Nothing is mixed by repeated overlays: each block of the session is one float32
buffer, and every event that touches it is added at its sample position. The bed's
level is gain automation computed from the known speech positions (ducking), with
fades at the start, the end and where the bed changes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from guided_audio.speech import Clip, Line
from guided_audio.timeline import Event, Timeline

CHANNELS = 2
BLOCK = 1 << 16  # samples per block: bounded memory whatever the session length
STEP = 16  # samples between computed points of the bed's gain curve


def db(value: float) -> float:
    """Decibels to a linear gain."""
    return float(10 ** (value / 20))


@dataclass(frozen=True)
class Levels:
    """Layer gains in dB and the bed's automation."""

    voice: float = 0.0
    cue: float = -10.0
    bed: float = 0.0
    duck: float = 15.0  # dB the bed drops under speech (12-20; 20 for accessibility)
    duck_down: float = 0.4  # seconds the bed takes to go down, ending at the first word
    duck_up: float = 0.9  # seconds it takes to come back after the last word
    duck_bridge: float = 1.2  # gaps shorter than this stay ducked
    fade_in: float = 4.0
    fade_out: float = 5.0
    crossfade: float = 3.0


@dataclass(frozen=True)
class BedSegment:
    """One bed playing from `start` to `end` samples, fading in and out at its edges."""

    sound: np.ndarray  # (frames, 2) loop
    start: int
    end: int
    fade_in: int
    fade_out: int


class Mix:
    """The session's audio, rendered on demand for any range of samples."""

    def __init__(
        self,
        timeline: Timeline,
        clips: dict[Line, Clip],
        cues: dict[str, np.ndarray],
        beds: dict[str, np.ndarray],
        first_bed: str | None,
        levels: Levels = Levels(),
    ):
        self.timeline = timeline
        self.sr = timeline.sample_rate
        self.length = timeline.length
        self.levels = levels
        self.sounds: list[tuple[int, np.ndarray, float]] = []  # (start, samples, gain)
        for event in timeline.events:
            if event.kind == "speech":
                mono = clips[Line(event.text, event.rate)].samples
                self.sounds.append((event.start, mono[:, None], db(levels.voice)))
            elif event.kind == "cue":
                self.sounds.append((event.start, cues[event.name], db(levels.cue)))
        self.starts = np.array([s for s, _, _ in self.sounds], dtype=np.int64)
        self.ends = np.array([s + len(x) for s, x, _ in self.sounds], dtype=np.int64)
        self.beds = self._bed_segments(beds, first_bed)
        self.ducks = self._duck_regions(timeline.of_kind("speech"))

    # -- public -------------------------------------------------------------------------

    def render(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) of the mix as (frames, 2) float32."""
        out = np.zeros((stop - start, CHANNELS), dtype=np.float32)
        self._add_bed(out, start, stop)
        for i in np.flatnonzero((self.starts < stop) & (self.ends > start)):
            at, samples, gain = self.sounds[i]
            a, b = max(start, at), min(stop, at + len(samples))
            out[a - start : b - start] += samples[a - at : b - at] * np.float32(gain)
        return out

    def blocks(self, size: int = BLOCK) -> Iterator[tuple[int, np.ndarray]]:
        """The whole mix in consecutive blocks: (start sample, samples).

        The next block is mixed on a worker thread while the caller uses this one
        (numpy releases the GIL), so a consumer such as the meter or the encoder
        runs beside the mixing on a second core.
        """
        starts = range(0, self.length, size)
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = [pool.submit(self.render, a, min(self.length, a + size)) for a in starts[:2]]
            for n, start in enumerate(starts):
                block = ahead.pop(0).result()
                if n + 2 < len(starts):
                    nxt = starts[n + 2]
                    ahead.append(pool.submit(self.render, nxt, min(self.length, nxt + size)))
                yield start, block

    # -- the bed --------------------------------------------------------------------------

    def _bed_segments(self, beds: dict[str, np.ndarray], first: str | None) -> list[BedSegment]:
        lv, sr = self.levels, self.sr
        changes = [(0, first)] + [(e.start, None if e.name == "none" else e.name) for e in self.timeline.of_kind("ambient")]
        segments = []
        for n, (at, name) in enumerate(changes):
            end = changes[n + 1][0] if n + 1 < len(changes) else self.length
            if name is None or end <= at:
                continue
            last = end >= self.length
            fade_out = int((lv.fade_out if last else lv.crossfade) * sr)
            fade_in = int((lv.fade_in if at == 0 else lv.crossfade) * sr)
            stop = end if last else min(self.length, end + fade_out)
            segments.append(BedSegment(beds[name], at, stop, fade_in, fade_out))
        return segments

    def _add_bed(self, out: np.ndarray, start: int, stop: int) -> None:
        # Gains are computed every STEP samples: ramps of a second or so have no audible steps.
        grid = np.arange(start, stop + STEP, STEP, dtype=np.float64)
        duck = self._bed_gain(grid)
        for seg in self.beds:
            a, b = max(start, seg.start), min(stop, seg.end)
            if a >= b:
                continue
            envelope = duck * _fade(grid, seg)
            gain = np.repeat(envelope.astype(np.float32), STEP)[a - start : b - start]
            out[a - start : b - start] += _looped(seg.sound, a - seg.start, b - a) * gain[:, None]

    def _duck_regions(self, speech: list[Event]) -> tuple[np.ndarray, np.ndarray]:
        """Ducking depth (0..1) as breakpoints: speech spans merged across short gaps, with ramps."""
        lv, sr = self.levels, self.sr
        down, up = int(lv.duck_down * sr), int(lv.duck_up * sr)
        bridge = max(int(lv.duck_bridge * sr), down + up)  # ramps never overlap
        regions: list[list[int]] = []
        for e in speech:
            if regions and e.start - regions[-1][1] < bridge:
                regions[-1][1] = max(regions[-1][1], e.end)
            else:
                regions.append([e.start, e.end])
        xs = [x for s, e in regions for x in (s - down, s, e, e + up)]
        ys = [y for _ in regions for y in (0.0, 1.0, 1.0, 0.0)]
        return np.array(xs, dtype=np.float64), np.array(ys)

    def _bed_gain(self, t: np.ndarray) -> np.ndarray:
        """Linear bed gain at samples `t`: base level, lowered in dB around speech."""
        xs, ys = self.ducks
        depth = np.interp(t, xs, ys) if len(xs) else np.zeros(len(t))
        return db(self.levels.bed) * 10 ** (-self.levels.duck * depth / 20)


def _fade(t: np.ndarray, seg: BedSegment) -> np.ndarray:
    """A segment's fade-in and fade-out at samples `t`, on equal-power curves."""
    ramp = np.minimum((t - seg.start) / max(seg.fade_in, 1), (seg.end - t) / max(seg.fade_out, 1))
    return np.sin(np.clip(ramp, 0.0, 1.0) * (np.pi / 2))


def _looped(sound: np.ndarray, offset: int, frames: int) -> np.ndarray:
    """`frames` samples of a loop starting `offset` samples into it."""
    offset %= len(sound)
    if offset + frames <= len(sound):
        return sound[offset : offset + frames]
    parts = [sound[offset:]]
    left = frames - len(parts[0])
    while left > 0:
        parts.append(sound[: min(left, len(sound))])
        left -= len(parts[-1])
    return np.concatenate(parts)
