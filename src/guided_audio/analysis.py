"""What the mastering model knows of a sound, and where it is kept between renders.

The model (`Mix.model`) places each clip's, cue's and bed's K-weighted energy and true peak
where the timeline plays it. Analysing a sound (K-weighting, 4x oversampling) costs far more
than placing it, and a session places the same hundred clips in every render, so an analysis
is kept in the cache under a key of everything that shapes it: the clip entry's own checksum
(or the bed's samples), the voice levelling and these constants. An entry is checked when it
is read; a damaged one is analysed again and rewritten.

An analysis is kept per bin of BIN samples: the energy summed before each bin edge (placed
between two edges by interpolation) and the largest true peak in each bin (a frame's peak is
bounded by the bins it touches). So it is a quarter of the clip's size, and the same whether
it was just worked out or read back.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from guided_audio import loudness, publish

log = logging.getLogger(__name__)
BIN = 16  # samples per bin: 0.36 ms at 44.1 kHz, finer than any frame edge needs
VERSION = f"2;bin={BIN};kernel={loudness.KERNEL};taps={loudness.PHASE_TAPS};oversample={loudness.OVERSAMPLE}"


@dataclass(frozen=True)
class Analysis:
    """A sound's K-weighted energy (all channels) and true peak, per bin of BIN samples."""

    length: int  # samples
    cumulative: NDArray[Any]  # float64, one more than the bins: the energy before each bin edge
    peaks: NDArray[Any]  # float32 per bin: the largest true peak (4x oversampled) in it

    @classmethod
    def of(cls, sound: NDArray[Any], sample_rate: int, loop: bool = False) -> Analysis:
        """Analyse `sound` (frames, channels); with `loop`, as a loop that plays its own end before it."""
        n = len(sound)
        bins = -(-n // BIN)
        power = np.zeros(bins * BIN)
        power[:n] = loudness.k_power(sound, sample_rate, loop=loop)
        cumulative = np.zeros(bins + 1)
        np.cumsum(power.reshape(bins, BIN).sum(axis=1), out=cumulative[1:])
        envelope = np.zeros(bins * BIN, dtype=np.float32)
        envelope[:n] = loudness.peak_envelope(sound)
        return cls(n, cumulative, envelope.reshape(bins, BIN).max(axis=1))

    def energy_before(self, positions: NDArray[Any]) -> NDArray[Any]:
        """The energy of the samples before each position (0..length), between bin edges by interpolation."""
        edges = np.minimum(np.arange(len(self.cumulative)) * BIN, self.length)
        energy: NDArray[Any] = np.interp(positions, edges, self.cumulative)
        return energy

    def peaks_between(self, edges: NDArray[Any]) -> NDArray[Any]:
        """The largest true peak in each stretch [edges[i], edges[i + 1]) (increasing positions, 0..length).

        A bin that two stretches share counts in both: a bound, never less than the samples' peak.
        """
        first = np.asarray(edges[:-1]) // BIN
        last = (np.asarray(edges[1:]) - 1) // BIN
        padded = np.append(self.peaks, np.float32(0.0))
        found: NDArray[Any] = np.maximum.reduceat(padded, np.append(first, last[-1] + 1))[:-1]
        peaks: NDArray[Any] = np.maximum(found, self.peaks[np.clip(last, 0, len(self.peaks) - 1)])
        return peaks

    # -- as bytes ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return (np.ascontiguousarray(self.cumulative, dtype="<f8").tobytes()
                + np.ascontiguousarray(self.peaks, dtype="<f4").tobytes())

    @classmethod
    def from_bytes(cls, length: int, data: bytes | memoryview) -> Analysis | None:
        bins = -(-length // BIN)
        if length < 0 or len(data) != (bins + 1) * 8 + bins * 4:
            return None
        cumulative = np.frombuffer(data, dtype="<f8", count=bins + 1).astype(np.float64)
        peaks = np.frombuffer(data, dtype="<f4", offset=(bins + 1) * 8).astype(np.float32)
        if not (np.isfinite(cumulative).all() and np.isfinite(peaks).all()):
            return None
        return cls(length, cumulative, peaks)


def key(*parts: object) -> str:
    """A cache key of everything that shapes an analysis (with this module's version)."""
    return hashlib.sha256(json.dumps([VERSION, *map(str, parts)]).encode("utf-8")).hexdigest()


def samples_key(sound: NDArray[Any], *parts: object) -> str:
    """A key for a sound known only by its samples (a bed, a cue)."""
    digest = hashlib.sha256(np.ascontiguousarray(sound).tobytes()).hexdigest()
    return key(digest, sound.dtype.str, sound.shape, *parts)


class Store:
    """Analyses kept as files under their keys, each checked when it is read.

    An entry is MAGIC, a JSON header line (its key and length), the arrays, and a SHA-256 of
    everything before it. Entries are written through a temp file in the store's `.tmp`
    folder (named by the writer's process id) and renamed into place. A store that cannot be
    written is done without: the analysis is simply worked out again next time.
    """

    MAGIC = b"GUIDED-AUDIO-ANALYSIS 1\n"
    SUFFIX = ".analysis"
    MAX_BYTES = 256 * 1024 * 1024

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.writable = folder is not None
        if folder is not None:
            publish.remove_stale_temp_files(folder / ".tmp")

    def path(self, name: str) -> Path:
        assert self.folder is not None
        return self.folder / name[:2] / f"{name}{self.SUFFIX}"

    def analysed(self, name: str, sound: Callable[[], NDArray[Any]], sample_rate: int, loop: bool = False) -> Analysis:
        """The analysis stored under `name`, or the sound `sound()` gives analysed and stored."""
        found = self.get(name)
        if found is not None:
            return found
        made = Analysis.of(sound(), sample_rate, loop=loop)
        self.put(name, made)
        return made

    def get(self, name: str) -> Analysis | None:
        if self.folder is None:
            return None
        try:
            with open(self.path(name), "rb") as handle:
                data = handle.read(self.MAX_BYTES + 1)
        except OSError:
            return None
        entry = publish.unseal(data, self.MAGIC) if len(data) <= self.MAX_BYTES else None
        if entry is None:
            log.debug("analysis %s is damaged; it is worked out again", name)
            return None
        try:
            header = json.loads(entry[0].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if not (isinstance(header, dict) and header.get("key") == name and isinstance(header.get("length"), int)):
            return None
        return Analysis.from_bytes(header["length"], entry[1])

    def put(self, name: str, analysis: Analysis) -> None:
        if self.folder is None or not self.writable:
            return
        header = json.dumps({"key": name, "length": analysis.length}, sort_keys=True).encode("utf-8")
        try:
            publish.write_through(self.path(name), publish.seal(self.MAGIC, header, analysis.to_bytes()),
                                  self.folder / ".tmp")
        except OSError as exc:
            log.debug("analysis %s not stored: %s", name, exc)
            self.writable = False  # once is enough: the render goes on without storing

