"""The mix: voice, cues, breath guide and ambient bed summed into float32, block by block.

Nothing is mixed by repeated overlays: each block of the session is one float32
buffer, and every event that touches it is added at its sample position. Levels
move by gain automation computed from the known speech positions: the bed ducks
well under speech, cues and the guide a little, so a word at a phase start is
never masked by its cue. The bed fades in, out, and across changes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from guided_audio import analysis, background
from guided_audio.analysis import Analysis
from guided_audio.levels import Levels as Levels
from guided_audio.speech import Clip, Line, StoredClip
from guided_audio.timeline import Event, Timeline

BLOCK = 1 << 16  # samples per block: bounded memory whatever the session length
RELEASE_BLOCK = 1 << 16  # frames of a gain curve worked out at once
STEP = 16  # samples between computed points of gain curves (ramps last ~1 s: no audible steps)
MODEL_STRETCH = 1 << 15  # frames of a bed the model works out at once (about five minutes)
GUIDE_HZ = (196.0, 294.0, 392.0)  # the guide tone: G3 with its fifth and octave, soft and low
GUIDE_BRIGHT = (0.35, 0.12)  # levels of the fifth and the octave, times the swell (brighter near the top)


def db(value: float) -> float:
    """Decibels to a linear gain."""
    return float(10 ** (value / 20))


@dataclass(frozen=True)
class BedSegment:
    """One bed playing from `start` to `end` samples, fading in and out at its edges."""

    sound: NDArray[Any]  # (frames, 2) loop
    start: int
    end: int
    fade_in: int
    fade_out: int


class Mix:
    """The session's audio, rendered on demand for any range of samples.

    The speech is the largest thing a render holds, so it is held only while it is heard:
    each clip is read (a `StoredClip` from the speech cache) and levelled when the first block
    that plays it is mixed, and let go after the block that plays it for the last time. A
    session's memory stays flat with its length.
    """

    def __init__(
        self,
        timeline: Timeline,
        clips: dict[Line, Clip | StoredClip],
        cues: dict[str, NDArray[Any]],
        beds: dict[str, NDArray[Any]],
        first_bed: str | None,
        levels: Levels = Levels(),
        channels: int = 2,
        voices: dict[str, str | None] | None = None,
        cache_dir: Path | None = None,
    ):
        self.timeline = timeline
        self.store = analysis.Store(cache_dir / "analysis" if cache_dir is not None else None)
        self.sr = timeline.sample_rate
        self.length = timeline.length
        self.levels = levels
        self.channels = channels
        voices = voices or {}  # voice role -> voice spec (absent: the default voice)
        speech = [(e.start, Line(e.text, e.rate, voices.get(e.voice))) for e in timeline.of_kind("speech")]
        self.voice = _Voice(speech, clips, self.sr, db(levels.voice) / 32767)
        self.cues = _Placed([(e.start, cues[e.name]) for e in timeline.of_kind("cue")], db(levels.cue))
        self.guides = timeline.of_kind("guide")
        self.guide_starts = np.array([e.start for e in self.guides], dtype=np.int64)
        self.guide_ends = np.array([e.end for e in self.guides], dtype=np.int64)
        self.beds = self._bed_segments(beds, first_bed)
        # A line's pauses between its phrases stay ducked: the bed comes up between lines, not inside them.
        spoken = sorted(timeline.of_kind("speech") + timeline.of_kind("line"), key=lambda e: (e.start, e.end))
        self.ducking = _ducking(spoken, levels, self.sr)

    # -- public -------------------------------------------------------------------------

    def render(self, start: int, stop: int) -> NDArray[Any]:
        """Samples [start, stop) of the mix as (frames, channels) float32."""
        grid = np.arange(start, stop + STEP, STEP, dtype=np.float64)
        depth = np.interp(grid, *self.ducking) if len(self.ducking[0]) else np.zeros(len(grid))
        out = np.zeros((stop - start, 2), dtype=np.float32)
        self._add_bed(out, start, stop, grid, depth)
        if self.cues.touch(start, stop) or self._guides_near(start, stop).size:
            effects = np.zeros((stop - start, 2), dtype=np.float32)
            self.cues.add(effects, start, stop)
            self._add_guide(effects, start, stop)
            out += effects * _steps(10 ** (-self.levels.cue_duck * depth / 20), len(out))[:, None]
        self.voice.add(out, start, stop)
        if self.channels == 1:
            mono: NDArray[Any] = out.mean(axis=1, keepdims=True)
            return mono
        return out

    def blocks(self, size: int = BLOCK) -> Iterator[tuple[int, NDArray[Any]]]:
        """The whole mix in consecutive blocks: (start sample, samples).

        The next blocks are mixed on a worker thread while the caller uses this one (numpy
        releases the GIL), so a consumer such as the encoder runs beside the mixing on a
        second core; the worker has the lower priority (`background.ahead`).
        """
        starts = range(0, self.length, size)
        return background.ahead(((a, self.render(a, min(self.length, a + size))) for a in starts), name="guided-audio-mix")

    def model(self, frame: int) -> tuple[NDArray[Any], NDArray[Any]]:
        """The mix described per frame without rendering it: (K-weighted energy, peak bound).

        Each distinct clip, cue and bed is analysed once, as a whole; its energy is placed where
        the timeline puts it, under the gains and the ducking the mix applies there. The layers
        are unrelated sounds, so their energies add. The peak bound is the sum of the layers'
        true peaks (4x oversampled) in the frame: the mix can never go above it. Only the two
        answers span the session; everything else is worked out a stretch at a time.
        """
        count = -(-self.length // frame)
        energy = np.zeros(count)
        peak = np.zeros(count, dtype=np.float32)  # a bound: float precision is plenty
        channels = self.channels  # the voice and the guide are heard in each channel
        # the voice: a mono clip is heard in both channels (twice its energy), unducked
        voice = float(self.voice.gain) ** 2
        for known, starts in self.voice.analyses(self.store):
            self._place(energy, peak, known, starts, frame, voice * channels, math.sqrt(voice), duck=0.0)
        # cues and the breath guide: ducked a little under speech
        cue = float(self.cues.gain) ** 2
        for sound, starts in _by_sound(self.cues.sounds):
            known = self._analysed(self._heard(sound))
            self._place(energy, peak, known, starts, frame, cue, math.sqrt(cue), self.levels.cue_duck)
        self._guide_model(energy, peak, frame, channels)
        # the beds: each segment's loop under its fades and the ducking (one stretch at a time: the
        # model's largest buffer, so it is not worked out beside anything else)
        for seg in self.beds:
            self._bed_model(energy, peak, seg, frame)
        return energy, peak

    def _analysed(self, sound: NDArray[Any], loop: bool = False) -> Analysis:
        """A cue's or a bed's analysis, from the cache when its samples were analysed before."""
        return self.store.analysed(analysis.samples_key(sound, self.sr, loop), lambda: sound, self.sr, loop)

    def _ducking_of(self, first: int, last: int, frame: int, duck: float) -> tuple[NDArray[Any], NDArray[Any]]:
        """Gains of a layer ducked by up to `duck` dB over frames first..last: (in the middle, at most)."""
        if not duck or not len(self.ducking[0]):
            ones = np.ones(last - first + 1)
            return ones, ones
        edges = np.arange(first, last + 2) * frame
        middle = np.interp(edges[:-1] + frame / 2, *self.ducking)
        # the least ducking anywhere in the frame (gains are held for STEP samples)
        least = np.minimum(np.interp(edges[:-1] - STEP, *self.ducking), np.interp(edges[1:], *self.ducking))
        return 10 ** (-duck * middle / 20), 10 ** (-duck * least / 20)

    def _heard(self, sound: NDArray[Any]) -> NDArray[Any]:
        """A stereo sound as the output channels hear it (mixed down for a mono file)."""
        if self.channels == 1 and sound.ndim == 2 and sound.shape[1] == 2:
            return np.asarray(sound.mean(axis=1, keepdims=True))
        return sound

    def _place(self, energy: NDArray[Any], peak: NDArray[Any], known: Analysis, starts: list[int],
               frame: int, power_gain: float, peak_gain: float, duck: float) -> None:
        """Add a sound's energy and peaks at every start where it plays."""
        n = known.length
        if not n:
            return
        for start in starts:
            first, last = start // frame, min((start + n - 1) // frame, len(energy) - 1)
            if last < first:
                continue
            middle, most = self._ducking_of(first, last, frame, duck)
            edges = np.clip(np.arange(first, last + 2) * frame - start, 0, n)
            before = known.energy_before(edges)
            energy[first : last + 1] += (before[1:] - before[:-1]) * power_gain * middle**2
            peak[first : last + 1] += known.peaks_between(edges) * peak_gain * most

    def _guide_model(self, energy: NDArray[Any], peak: NDArray[Any], frame: int, channels: int) -> None:
        """The guide's energy and peak per frame, from its swell (its tones lie where K-weighting is flat)."""
        gain = db(self.levels.guide)
        for e in self.guides:
            first, last = e.start // frame, min((e.end - 1) // frame, len(energy) - 1)
            if last < first:
                continue
            middle_gain, most = self._ducking_of(first, last, frame, self.levels.cue_duck)
            bounds = np.clip(np.arange(first, last + 2) * frame, e.start, e.end)
            swell = _swell(e, (bounds[1:] + bounds[:-1]) / 2)
            amplitude = swell * gain
            mean_square = amplitude**2 * (1 + sum((level * swell) ** 2 for level in GUIDE_BRIGHT)) / 2
            energy[first : last + 1] += mean_square * (bounds[1:] - bounds[:-1]) * channels * middle_gain**2
            # the swell's largest value in the frame: it moves one way, so it is at one end
            at_edges = _swell(e, bounds)
            top = np.maximum(at_edges[:-1], at_edges[1:])
            peak[first : last + 1] += top * gain * (1 + sum(GUIDE_BRIGHT) * top) * most

    def _bed_model(self, energy: NDArray[Any], peak: NDArray[Any], seg: BedSegment, frame: int) -> None:
        """A bed segment's energy and peaks per frame: its loop's, wherever the loop is in each frame."""
        sound = self._heard(seg.sound)
        size = len(sound)
        known = self._analysed(sound, loop=True)
        chunks = known.peaks_between(np.append(np.arange(0, size, frame), size))  # the loop's peaks, frame by frame
        level = db(self.levels.bed)

        def upto(position: NDArray[Any]) -> NDArray[Any]:  # energy of the looped bed from its start up to position
            loops, rest = np.divmod(position, size)
            total: NDArray[Any] = loops * known.cumulative[-1] + known.energy_before(rest)
            return total

        first_frame, last_frame = seg.start // frame, min((seg.end - 1) // frame, len(energy) - 1)
        for first in range(first_frame, last_frame + 1, MODEL_STRETCH):
            last = min(last_frame, first + MODEL_STRETCH - 1)
            a = np.clip(np.arange(first, last + 1) * frame, seg.start, seg.end)
            b = np.clip(a - a % frame + frame, seg.start, seg.end)
            offset, length = (a - seg.start) % size, b - a
            middle, most = self._ducking_of(first, last, frame, self.levels.duck)
            edges = np.arange(first, last + 2) * frame
            fade = _fade(edges[:-1] + frame / 2, seg)
            fade_most = np.maximum(_fade(edges[:-1] - STEP, seg), _fade(edges[1:], seg))
            start = a - seg.start
            energy[first : last + 1] += (upto(start + length) - upto(start)) * (level * middle * fade) ** 2
            ends = (offset + np.maximum(length, 1) - 1) % size
            loop_peak = np.maximum(chunks[offset // frame], chunks[ends // frame])
            peak[first : last + 1] += loop_peak * level * most * fade_most

    # -- the bed --------------------------------------------------------------------------

    def _bed_segments(self, beds: dict[str, NDArray[Any]], first: str | None) -> list[BedSegment]:
        lv, sr = self.levels, self.sr
        if first is None and not beds:  # no bed at all (--ambient none): the script's changes too
            return []
        changes = [(0, first)] + [
            (e.start, None if e.name == "none" else e.name) for e in self.timeline.of_kind("ambient")
        ]
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

    def _add_bed(self, out: NDArray[Any], start: int, stop: int, grid: NDArray[Any], depth: NDArray[Any]) -> None:
        duck = db(self.levels.bed) * 10 ** (-self.levels.duck * depth / 20)  # ramps move in dB
        for seg in self.beds:
            a, b = max(start, seg.start), min(stop, seg.end)
            if a >= b:
                continue
            gain = _steps(duck * _fade(grid, seg), stop - start)[a - start : b - start]
            out[a - start : b - start] += _looped(seg.sound, a - seg.start, b - a) * gain[:, None]

    # -- the breath guide -----------------------------------------------------------------

    def _guides_near(self, start: int, stop: int) -> NDArray[Any]:
        """The guides that sound in [start, stop), by index."""
        return np.flatnonzero((self.guide_starts < stop) & (self.guide_ends > start))

    def _add_guide(self, out: NDArray[Any], start: int, stop: int) -> None:
        """A soft chord that swells up through each in-breath and down through each out-breath."""
        near = self._guides_near(start, stop)
        if not len(near):
            return
        gain = db(self.levels.guide)
        for i in near:
            e = self.guides[i]
            a, b = max(start, e.start), min(stop, e.end)
            t = np.arange(a, b, dtype=np.float64)
            swell = _swell(e, t)
            seconds = t / self.sr  # phase from the absolute sample: no clicks between phases
            tone = np.sin(2 * np.pi * GUIDE_HZ[0] * seconds)
            tone += GUIDE_BRIGHT[0] * swell * np.sin(2 * np.pi * GUIDE_HZ[1] * seconds)
            tone += GUIDE_BRIGHT[1] * swell * np.sin(2 * np.pi * GUIDE_HZ[2] * seconds)
            out[a - start : b - start] += (tone * swell * gain).astype(np.float32)[:, None]


VOICE_CREST_DB = 12.0  # speech peaks held to this far above the clip's speaking level
VOICE_FRAME = 0.005  # seconds per step of the voice leveller's gain
VOICE_RELEASE = 0.06  # seconds for its gain to come back
LEVELLING = f"1;crest={VOICE_CREST_DB};frame={VOICE_FRAME};release={VOICE_RELEASE};int16"  # in analyses' keys


def level_voice(samples: NDArray[Any], sr: int) -> NDArray[Any]:
    """A spoken clip with its sharpest peaks softened, its words untouched.

    Synthetic voices (Piper's above all) have plosive peaks far above their speaking level; a
    spoken-word master needs a modest crest, or its limiter has to squash the whole voice to
    reach the loudness target. Peaks more than VOICE_CREST_DB above the clip's speaking level
    (the RMS of its voiced samples) are brought down with an instant attack and a short release.
    """
    voiced = samples[np.abs(samples) > 0.01]
    if len(voiced) < sr // 50:
        return samples
    ceiling = float(np.sqrt(np.mean(voiced.astype(np.float64) ** 2))) * 10 ** (VOICE_CREST_DB / 20)
    frame = max(1, int(VOICE_FRAME * sr))
    count = -(-len(samples) // frame)
    padded = np.zeros(count * frame, dtype=np.float32)
    padded[: len(samples)] = np.abs(samples)
    peaks = padded.reshape(count, frame).max(axis=1)
    needed = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-9))
    if needed.min() >= 1.0:
        return samples
    gain = release_curve(needed.astype(np.float64), VOICE_FRAME / VOICE_RELEASE).astype(needed.dtype)
    curve = np.interp(np.arange(len(samples)), np.arange(count) * frame + frame / 2, gain)
    return np.asarray(samples * curve, dtype=np.float32)


def release_curve(needed: NDArray[Any], step: float) -> NDArray[Any]:
    """A gain curve at or below `needed` everywhere: instant attack, a release of `step` per frame.

    Each frame also takes its neighbours' need, so a curve interpolated between frame centres
    stays under the need too. Used by the voice leveller here and by the master's limiter.
    """
    need = neighbours_need(needed)
    if need.min() >= 1.0 or step >= 1.0:
        return need
    release = Release(step)
    curve = np.empty_like(need)
    for at in range(0, len(need), RELEASE_BLOCK):  # a long session has a million frames
        curve[at : at + RELEASE_BLOCK] = release.follow(need[at : at + RELEASE_BLOCK])
    return curve


def neighbours_need(needed: NDArray[Any]) -> NDArray[Any]:
    """Each frame's need, lowered to its neighbours' where theirs is lower."""
    need = needed.copy()
    need[1:] = np.minimum(need[1:], needed[:-1])
    need[:-1] = np.minimum(need[:-1], needed[1:])
    return need


class Release:
    """A release curve worked out a stretch of frames at a time, in order, with its depth carried.

    How far the gain is below 1 falls by (1 - step) a frame unless a frame needs it lower:
    depth[i] = max(1 - need[i], depth[i - 1] * (1 - step)), which is the largest of
    (1 - need[j]) * (1 - step) ** (i - j) over j <= i: a running maximum, taken in logs.
    """

    def __init__(self, step: float):
        self.step = step
        self.decay = math.log(1.0 - step) if step < 1.0 else -math.inf
        self.carried = 0.0  # the depth at the end of the last stretch

    def follow(self, need: NDArray[Any]) -> NDArray[Any]:
        """The curve over the next stretch of frames, given their need (neighbours' included)."""
        if not len(need):
            return np.asarray(need, dtype=np.float64)
        if self.step >= 1.0:
            return np.asarray(np.minimum(need, 1.0), dtype=np.float64)
        if self.carried == 0.0 and need.min() >= 1.0:
            return np.ones(len(need))
        ramp = np.arange(len(need)) * self.decay
        with np.errstate(divide="ignore"):
            depth = np.log(1.0 - np.minimum(need, 1.0).astype(np.float64))
        depth -= ramp
        np.maximum.accumulate(depth, out=depth)
        depth += ramp
        np.exp(depth, out=depth)
        np.maximum(depth, self.carried * np.exp(ramp + self.decay), out=depth)
        self.carried = float(depth[-1])
        if self.carried < 1e-12:
            self.carried = 0.0
        curve: NDArray[Any] = np.minimum(need, 1.0 - depth)
        return curve


class _Placed:
    """Sounds placed at sample positions, added into any block they touch."""

    def __init__(self, sounds: list[tuple[int, NDArray[Any]]], gain: float):
        self.sounds = sounds
        self.gain = np.float32(gain)
        self.starts = np.array([s for s, _ in sounds], dtype=np.int64)
        self.ends = np.array([s + len(x) for s, x in sounds], dtype=np.int64)

    def touch(self, start: int, stop: int) -> bool:
        """Whether any sound plays in [start, stop)."""
        return bool(((self.starts < stop) & (self.ends > start)).any())

    def add(self, out: NDArray[Any], start: int, stop: int) -> None:
        for i in np.flatnonzero((self.starts < stop) & (self.ends > start)):
            at, samples = self.sounds[i]
            a, b = max(start, at), min(stop, at + len(samples))
            out[a - start : b - start] += samples[a - at : b - at] * self.gain


class _Voice:
    """The speech placed where the timeline puts it; each clip levelled and held only while it is heard.

    Clips are kept as 16-bit samples while held: the delivered file has no more resolution.
    Blocks are mixed in order, so a clip is read once; a block asked for out of order (the
    mastering's look at a loud stretch) reads again what it needs.
    """

    def __init__(self, speech: list[tuple[int, Line]], clips: dict[Line, Clip | StoredClip], sr: int, gain: float):
        self.lines = [line for _, line in speech]
        self.clips, self.sr = clips, sr
        self.gain = np.float32(gain)
        self.starts = np.array([start for start, _ in speech], dtype=np.int64)
        self.ends = self.starts + np.array([clips[line].frames for line in self.lines], dtype=np.int64)
        self.last_end: dict[Line, int] = {}  # where each clip is heard for the last time
        for line, end in zip(self.lines, self.ends):
            self.last_end[line] = max(self.last_end.get(line, 0), int(end))
        self.held: dict[Line, NDArray[Any]] = {}
        self.lock = threading.Lock()  # the mix may be rendered ahead on a worker thread

    def levelled(self, line: Line) -> NDArray[Any]:
        """A clip levelled, as 16-bit samples of shape (frames, 1)."""
        level = level_voice(self.clips[line].samples, self.sr)
        samples: NDArray[Any] = np.round(np.clip(level, -1.0, 1.0) * 32767).astype(np.int16)[:, None]
        return samples

    def analyses(self, store: analysis.Store) -> Iterator[tuple[Analysis, list[int]]]:
        """Every distinct clip's analysis, levelled, with each start where it plays.

        A clip in the speech cache has its analysis kept under the entry's checksum and the
        levelling; only a clip analysed for the first time is read, one at a time.
        """
        starts: dict[Line, list[int]] = {}
        for start, line in zip(self.starts.tolist(), self.lines):
            starts.setdefault(line, []).append(start)
        for line, where in starts.items():
            clip = self.clips[line]
            checksum = clip.checksum() if isinstance(clip, StoredClip) else None

            def levelled(line: Line = line) -> NDArray[Any]:
                held = self.held.get(line)
                return held if held is not None else self.levelled(line)

            if checksum is None:
                yield Analysis.of(levelled(), self.sr), where
            else:
                name = analysis.key("voice", LEVELLING, self.sr, checksum)
                yield store.analysed(name, levelled, self.sr), where

    def add(self, out: NDArray[Any], start: int, stop: int) -> None:
        with self.lock:
            for i in np.flatnonzero((self.starts < stop) & (self.ends > start)):
                line, at = self.lines[i], int(self.starts[i])
                samples = self.held.get(line)
                if samples is None:
                    samples = self.held[line] = self.levelled(line)
                a, b = max(start, at), min(stop, at + len(samples))
                out[a - start : b - start] += samples[a - at : b - at] * self.gain
            for line in [line for line in self.held if self.last_end[line] <= stop]:
                del self.held[line]  # heard for the last time


def _swell(guide: Event, t: NDArray[Any]) -> NDArray[Any]:
    """A guide's swell (0..1) at samples `t`: from its first level to its second on a half cosine."""
    lo, hi = guide.levels
    x = (t - guide.start) / max(guide.end - guide.start, 1)
    swell: NDArray[Any] = lo + (hi - lo) * (1 - np.cos(np.pi * x)) / 2
    return swell


def _by_sound(placed: list[tuple[int, NDArray[Any]]]) -> list[tuple[NDArray[Any], list[int]]]:
    """Placed sounds grouped by the sound (the same array), with every start of each."""
    groups: dict[int, tuple[NDArray[Any], list[int]]] = {}
    for start, sound in placed:
        groups.setdefault(id(sound), (sound, []))[1].append(start)
    return list(groups.values())


def _ducking(speech: list[Event], levels: Levels, sr: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """Ducking depth (0..1) as breakpoints: speech spans merged across short gaps, with ramps."""
    down, up = int(levels.duck_down * sr), int(levels.duck_up * sr)
    bridge = max(int(levels.duck_bridge * sr), down + up)  # ramps never overlap
    regions: list[list[int]] = []
    for e in speech:
        if regions and e.start - regions[-1][1] < bridge:
            regions[-1][1] = max(regions[-1][1], e.end)
        else:
            regions.append([e.start, e.end])
    xs = [x for s, e in regions for x in (s - down, s, e, e + up)]
    ys = [y for _ in regions for y in (0.0, 1.0, 1.0, 0.0)]
    return np.array(xs, dtype=np.float64), np.array(ys)


def _steps(points: NDArray[Any], frames: int) -> NDArray[Any]:
    """A gain curve given every STEP samples, held across each step, as float32 per sample."""
    return np.repeat(points.astype(np.float32), STEP)[:frames]


def _fade(t: NDArray[Any], seg: BedSegment) -> NDArray[Any]:
    """A segment's fade-in and fade-out at samples `t`, on equal-power curves."""
    ramp = np.minimum((t - seg.start) / max(seg.fade_in, 1), (seg.end - t) / max(seg.fade_out, 1))
    return np.sin(np.clip(ramp, 0.0, 1.0) * (np.pi / 2))


def _looped(sound: NDArray[Any], offset: int, frames: int) -> NDArray[Any]:
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
