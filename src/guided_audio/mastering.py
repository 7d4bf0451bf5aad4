"""Mastering: one fixed gain to the target loudness, and a true-peak limiter only where needed.

The plan is made without rendering the session: its loudness (ITU-R BS.1770-4, 400 ms gating
blocks on a 100 ms hop) and a bound of its true peak in every 10 ms frame are predicted from
its parts (`Mix.model`). The frames whose bound could reach the ceiling are measured exactly
(4x oversampled) as the mix streams into the encoder, a block ahead of the block being scaled
(`Limiter`): the limiter is a slow gain curve over those frames. The file that is written is
measured again (`render`).
"""

from __future__ import annotations

import math
import re
import subprocess
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from guided_audio import loudness
from guided_audio.errors import EncoderError
from guided_audio.ffmpeg import ffmpeg_exe
from guided_audio.mix import STEP, Mix, Release, neighbours_need, release_curve

DEFAULT_LUFS = -16.0  # spoken-word stereo target (Apple Podcasts; AES TD1004 range)
DEFAULT_MONO_LUFS = -19.0  # the same perceived level for mono files
PEAK_CEILING_DBTP = -2.0  # leaves room for lossy encoders' overshoot under -1 dBTP
FRAME = 0.01  # seconds per limiter frame
RELEASE = 0.06  # seconds for the limiter to recover: it catches transients, not whole words
RELEASE_STEP = FRAME / RELEASE * 4  # how far the limiter's depth falls back each frame
MAKEUP_ROUNDS = 12  # each round costs no rendering; the error shrinks by about half a round
MAX_MAKEUP_DB = 9.0  # beyond this the limiter would be squashing speech (its crest is held to 12 dB in the mix)
INTERSAMPLE_DB = 3.5  # how far a true peak may rise over the samples around it (fs/4: 3 dB)
EDGE = 16  # samples of context on each side of an oversampled frame
GAP = 4  # frames between two loud stretches below which they are oversampled as one


@dataclass(frozen=True)
class Master:
    """How the mix was turned into the delivered signal: one gain, and the limiter's curve."""

    gain_db: float
    limiter: NDArray[Any]  # linear gain per frame (1.0 where no limiting is needed)
    frame: int  # samples per limiter frame
    measured_lufs: float
    target_lufs: float

    def apply(self, start: int, block: NDArray[Any]) -> NDArray[Any]:
        """Scale a block of the mix that starts at sample `start`."""
        return _scaled(block, start, self.limiter, self.frame, self.gain_db)


def _scaled(block: NDArray[Any], start: int, limiter: NDArray[Any], frame: int, gain_db: float) -> NDArray[Any]:
    """A block of the mix under the gain and the limiter's curve (per frame), clipped to full scale."""
    scale = np.float32(10 ** (gain_db / 20))
    first, last = start // frame, (start + len(block)) // frame + 2
    curve = limiter[max(0, first - 1) : last]
    if not len(curve) or curve.min() >= 1.0:
        out = block * scale
    else:
        # The curve is computed every STEP samples (from sample 0, wherever the block starts);
        # each step takes the lower of its two ends, so it never rises above the linear
        # interpolation between frame centres.
        base = start - start % STEP
        grid = (np.arange(base, start + len(block) + STEP, STEP) + 0.5) / frame - 0.5
        lo = max(0, first - 1)  # only the frames around the block: the curve spans the session
        points = np.interp(grid - lo, np.arange(len(curve)), curve)
        steps = np.minimum(points[:-1], points[1:]).astype(np.float32) * scale
        out = block * np.repeat(steps, STEP)[start - base : start - base + len(block), None]
    return np.clip(out, -1.0, 1.0, out=out)


def sample_peaks(block: NDArray[Any], frame: int) -> NDArray[Any]:
    """The largest sample of each frame of a block (the last frame may be short)."""
    n = len(block) // frame * frame
    peaks: NDArray[Any] = np.abs(block[:n]).reshape(-1, frame, block.shape[1]).max(axis=(1, 2))
    if n < len(block):
        peaks = np.append(peaks, np.abs(block[n:]).max())
    return peaks


@dataclass(frozen=True)
class Plan:
    """The master as it is known before the mix is rendered: the gain, and where to limit.

    `bound` is an upper bound of the mix's true peak in each frame (the model's). A frame whose
    bound, raised by the gain, stays under the ceiling needs no limiting; the others are
    measured as the mix streams (`Limiter`). `extra` is a gain curve the limiter is multiplied
    by: where a first encoding of the file passed the ceiling (`tighten`).
    """

    gain_db: float
    bound: NDArray[Any]
    frame: int
    ceiling_dbtp: float
    measured_lufs: float
    target_lufs: float
    extra: NDArray[Any] | None = None

    def candidates(self) -> NDArray[Any]:
        """Which frames may need limiting (a mask)."""
        reach = 10 ** ((self.gain_db - self.ceiling_dbtp) / 20)
        mask: NDArray[Any] = self.bound * reach > 1.0
        return mask


def predict(mix: Mix, target_lufs: float = DEFAULT_LUFS, ceiling_dbtp: float = PEAK_CEILING_DBTP) -> Plan:
    """Plan the gain from the mix's parts, without rendering the mix.

    Each clip, cue and bed is measured once and placed where the timeline plays it
    (`Mix.model`): the session's loudness and an upper bound of its true peak in every frame
    follow, for a fraction of a pass over the samples. The gain makes up for a limiter that
    works on the bound; the real peaks are lower, so the limiter takes a little less and the
    file lands a little above the target (about 0.1 LU). The written file is measured after
    encoding all the same (see `render.encode_verified`).
    """
    frame = int(round(mix.sr * FRAME))
    energy, peaks = mix.model(frame)

    def integrated(frame_gains: NDArray[Any] | None = None) -> float:
        scaled = energy if frame_gains is None else energy * frame_gains[: len(energy)] ** 2
        return loudness.integrated(scaled, frame, mix.sr)

    fitted = _fit(integrated, peaks, frame, target_lufs, ceiling_dbtp)
    return Plan(fitted.gain_db, peaks, frame, ceiling_dbtp, fitted.measured_lufs, target_lufs)


def _fit(
    integrated: Callable[[NDArray[Any] | None], float], peaks: NDArray[Any], frame: int,
    target_lufs: float, ceiling_dbtp: float,
) -> Master:
    """The gain to the target, and the limiter that keeps `peaks` (per frame) under the ceiling."""
    measured = integrated(None)
    if not np.isfinite(measured):
        return Master(0.0, np.ones(1), frame, measured, target_lufs)
    ceiling = 10 ** (ceiling_dbtp / 20)
    gain_db = target_lufs - measured
    limiter = _limiter(peaks, gain_db, ceiling)
    planned = gain_db
    for _ in range(MAKEUP_ROUNDS):  # limiting takes a little loudness: make it up, limit again
        if limiter.min() >= 1.0:
            break
        limited = integrated(limiter)
        error = target_lufs - (limited + gain_db)
        if not np.isfinite(limited) or abs(error) < 0.05:
            break
        gain_db = min(gain_db + error, planned + MAX_MAKEUP_DB)
        limiter = _limiter(peaks, gain_db, ceiling)
        if gain_db >= planned + MAX_MAKEUP_DB:
            break
    return Master(gain_db, limiter, frame, measured, target_lufs)


def _limiter(peaks: NDArray[Any], gain_db: float, ceiling: float) -> NDArray[Any]:
    """The limiter's gain per frame that keeps `peaks` raised by `gain_db` under `ceiling`."""
    needed = np.minimum(1.0, ceiling / np.maximum(peaks * 10 ** (gain_db / 20), 1e-12))
    return _smooth(needed, FRAME)


def _smooth(needed: NDArray[Any], frame_seconds: float) -> NDArray[Any]:
    """A gain curve at or below `needed` everywhere: instant attack, gradual release."""
    return release_curve(needed, frame_seconds / RELEASE * 4)


class Limiter:
    """A plan applied to the mix as it streams, its limiter worked out on the way.

    The true peak (4x oversampled) of each frame the plan marks is measured on the mixed
    blocks themselves, so nothing is mixed twice and the curve follows the very samples that
    are encoded. A block is let through once the frames just after it are measured (the
    curve at a frame depends on its neighbours): the limiter runs a block behind the mix.
    After the stream, `master` is the whole master.
    """

    def __init__(self, plan: Plan, length: int):
        self.plan, self.length = plan, length
        frames = len(plan.bound)
        self.candidate = plan.candidates()
        self.needed = np.ones(frames)
        self.curve = np.ones(frames)
        self.release = Release(RELEASE_STEP)
        self.extra: NDArray[Any] | None = None  # the plan's extra curve, at the session's length
        if plan.extra is not None:
            self.extra = np.ones(frames)
            size = min(frames, len(plan.extra))
            self.extra[:size] = plan.extra[:size]
        self.gain = 10 ** (plan.gain_db / 20)
        self.ceiling = 10 ** (plan.ceiling_dbtp / 20)
        self.measured = 0  # frames whose need is known
        self.settled = 0  # frames whose curve is final
        self.kept: NDArray[Any] = np.zeros((0, 1), dtype=np.float32)  # samples from `kept_from` on, for the next frames' context
        self.kept_from = 0

    @property
    def master(self) -> Master:
        plan = self.plan
        return Master(plan.gain_db, self.curve, plan.frame, plan.measured_lufs, plan.target_lufs)

    def blocks(self, mixed: Iterable[tuple[int, NDArray[Any]]]) -> Iterator[tuple[int, NDArray[Any]]]:
        """The mix's blocks (in order, from the start), mastered."""
        frame, frames = self.plan.frame, len(self.curve)
        held: deque[tuple[int, NDArray[Any]]] = deque()
        end = 0
        for start, block in mixed:
            held.append((start, block))
            end = start + len(block)
            self._keep(start, block)
            self._measure(min(frames, max(0, end - EDGE) // frame))
            self._settle(max(0, self.measured - 1))
            while held and min(frames, (held[0][0] + len(held[0][1])) // frame + 2) <= self.settled:
                yield self._apply(*held.popleft())
        self._measure(frames)
        self._settle(frames)
        while held:
            yield self._apply(*held.popleft())

    def _keep(self, start: int, block: NDArray[Any]) -> None:
        if not len(self.kept):
            self.kept, self.kept_from = block, start
        else:
            self.kept = np.concatenate([self.kept, block])

    def _measure(self, upto: int) -> None:
        """Measure the marked frames before `upto` (their samples and context are kept)."""
        frame, first = self.plan.frame, self.measured
        if upto <= first:
            return
        marked = first + np.flatnonzero(self.candidate[first:upto])
        if len(marked):
            for run in np.split(marked, np.flatnonzero(np.diff(marked) > GAP) + 1):
                lo, hi = int(run[0]), int(run[-1]) + 1
                a = max(0, lo * frame - EDGE)
                b = min(self.length, hi * frame + EDGE)
                envelope = loudness.peak_envelope(self.kept[a - self.kept_from : b - self.kept_from])
                # each frame's own samples (their neighbours only shape the points between them)
                bounds = np.minimum(np.arange(lo, hi + 1) * frame - a, len(envelope))
                peaks = np.maximum.reduceat(np.append(envelope, np.float32(0.0)), bounds)[:-1][run - lo]
                self.needed[run] = np.minimum(1.0, self.ceiling / np.maximum(peaks * self.gain, 1e-12))
        self.measured = upto
        keep_from = max(0, upto * frame - EDGE)  # what the next frames' context needs
        if keep_from > self.kept_from:
            self.kept = self.kept[keep_from - self.kept_from :]
            self.kept_from = keep_from

    def _settle(self, upto: int) -> None:
        """Work out the curve up to frame `upto` (each frame's need and its neighbours' are known)."""
        lo, hi = self.settled, upto
        if hi <= lo:
            return
        a, b = max(0, lo - 1), min(len(self.needed), hi + 1)
        need = neighbours_need(self.needed[a:b])[lo - a : lo - a + hi - lo]
        curve = self.release.follow(need)
        self.curve[lo:hi] = curve if self.extra is None else curve * self.extra[lo:hi]
        self.settled = hi

    def _apply(self, start: int, block: NDArray[Any]) -> tuple[int, NDArray[Any]]:
        return start, _scaled(block, start, self.curve, self.plan.frame, self.plan.gain_db)


# -- the written file --------------------------------------------------------------------------

DELIVERED_PEAK_DBTP = -1.0  # what every delivered file promises
LOUDNESS_TOLERANCE = 0.5  # LU from the target before a file is encoded again
LOUDNESS_PROMISE = 1.0  # LU from the target that every delivered file keeps, or the render warns


@dataclass(frozen=True)
class Measured:
    """Integrated loudness and true peak of a written file, read back by ffmpeg (EBU R128)."""

    lufs: float
    true_peak: float

    @property
    def lufs_known(self) -> bool:
        return math.isfinite(self.lufs)

    @property
    def peak_known(self) -> bool:
        return math.isfinite(self.true_peak)

    def meets(self, target: float, tolerance: float = LOUDNESS_TOLERANCE) -> bool:
        loud = not self.lufs_known or abs(self.lufs - target) <= tolerance
        return loud and (not self.peak_known or self.true_peak <= DELIVERED_PEAK_DBTP)

    def describe(self) -> str:
        return f"{self.lufs:.1f} LUFS, true peak {self.true_peak:.1f} dBTP"


_INTEGRATED = re.compile(r"I:\s*(-?[\d.]+|-inf)\s*LUFS")
_TRUE_PEAK = re.compile(r"Peak:\s*(-?[\d.]+|-inf)\s*dBFS")


EBUR128 = ["-map", "0:a:0", "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"]  # after -i; the summary only


def parse_ebur128(stderr: str) -> Measured | None:
    """The loudness and true peak in the summary ffmpeg's ebur128 filter prints, or None."""
    at = stderr.rfind("Summary:")
    loud, peak = _INTEGRATED.search(stderr[at:]), _TRUE_PEAK.search(stderr[at:])
    if at < 0 or loud is None or peak is None:
        return None
    return Measured(float(loud.group(1)), float(peak.group(1)))


def measure_file(path: Path) -> Measured:
    """Decode `path` with ffmpeg and measure it (ebur128 with true peak)."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-i", str(path), *EBUR128]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    measured = parse_ebur128(proc.stderr)
    if proc.returncode != 0 or measured is None:
        last = proc.stderr.strip().splitlines()[-1:] or ["?"]
        raise EncoderError(f"ffmpeg could not measure the file it wrote ({last})")
    return measured


def overshoots(path: Path, sample_rate: int, channels: int, frame: int, raised_db: float = 0.0) -> dict[int, float]:
    """Frames of a written file whose 4x-oversampled peak, raised by `raised_db`, passes the delivered ceiling.

    The file is decoded as a stream, so memory stays flat; only frames whose samples come
    within INTERSAMPLE_DB of the ceiling are oversampled. Returns frame index -> true peak (linear).
    """
    raise_by = 10 ** (raised_db / 20)
    ceiling = 10 ** (DELIVERED_PEAK_DBTP / 20) / raise_by
    near = ceiling / 10 ** (INTERSAMPLE_DB / 20)
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
           "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(sample_rate), "-"]
    found: dict[int, float] = {}
    block_frames = 256
    size = frame * block_frames * channels * 4
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        at = 0  # frames read so far
        while True:
            raw = proc.stdout.read(size)
            if not raw:
                break
            whole = raw[: len(raw) // (4 * channels) * 4 * channels]
            block: NDArray[Any] = np.frombuffer(whole, dtype="<f4").reshape(-1, channels)
            peaks = sample_peaks(block, frame)
            for index in np.flatnonzero(peaks > near):
                a, b = int(index) * frame, min(len(block), (int(index) + 1) * frame)
                context = block[max(0, a - EDGE) : b + EDGE]
                peak = float(loudness.peak_envelope(context).max())
                if peak > ceiling:
                    found[at + int(index)] = peak * raise_by
            at += -(-len(block) // frame)
    if proc.returncode != 0:
        raise EncoderError("ffmpeg could not decode the file it wrote")
    return found


def tighten(plan: Plan, found: dict[int, float], margin_db: float = 0.5) -> Plan:
    """`plan` with its limiter lowered where the written file passed the ceiling, and only there."""
    if not found:
        return plan
    ceiling = 10 ** ((DELIVERED_PEAK_DBTP - margin_db) / 20)
    need = np.ones(max(len(plan.bound), max(found) + 3))
    for index, peak in found.items():
        for near in range(max(0, index - 2), index + 3):  # the encoder's delay and pre-echo blur a frame or two
            need[near] = min(need[near], ceiling / peak)
    extra = _smooth(need, FRAME)[: len(plan.bound)]
    if plan.extra is not None:
        extra = extra * plan.extra[: len(extra)]
    return replace(plan, extra=extra)
