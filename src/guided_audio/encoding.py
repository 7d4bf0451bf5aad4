"""Encoding: the mastered mix streamed into ffmpeg, one encoder per output format."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from typing import IO, TYPE_CHECKING, Any

from guided_audio import background
from guided_audio.errors import EncoderError
from guided_audio.ffmpeg import ffmpeg_exe
from guided_audio.tags import ISO639_2, Chapter, ffmetadata

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEMUXERS = {"adts": "aac"}  # the reader of a streaming muxer, where its name differs


@dataclass(frozen=True)
class Format:
    """An output format: file extension, ffmpeg encoder arguments and the tag container."""

    name: str
    extension: str
    muxer: str
    codec_args: tuple[str, ...]
    container: str | None  # the tag writer's key (None: no tags)
    description: str
    ffmpeg_chapters: bool = False  # chapters go in while encoding (mutagen cannot write them)
    peak_ceiling: float = -2.0  # dBTP the mix is limited to, so the encoded file stays under -1 dBTP
    muxer_options: tuple[tuple[str, str], ...] = ()  # the muxer's own options, e.g. ID3 version
    stream: str = ""  # a muxer that can stream the same encoded audio into a pipe (default: `muxer`)

    @property
    def muxer_args(self) -> list[str]:
        """ffmpeg's arguments for this format's muxer options, e.g. ['-id3v2_version', '4']."""
        return [arg for key, value in self.muxer_options for arg in (f"-{key}", value)]

    @property
    def output_args(self) -> list[str]:
        """ffmpeg's arguments for this format's codec and muxer options, before '-f MUXER PATH'."""
        return [*self.codec_args, *self.muxer_args]


FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> None:
    """Make an output format available by name."""
    FORMATS[fmt.name] = fmt


for _fmt in (
    Format("mp3", ".mp3", "mp3", ("-c:a", "libmp3lame", "-b:a", "128k"), "id3",
           "MP3 128 kb/s (plays everywhere)", muxer_options=(("id3v2_version", "4"),)),
    Format("ogg", ".ogg", "ogg", ("-c:a", "libvorbis", "-q:a", "5"), "vorbis", "Ogg Vorbis quality 5",
           peak_ceiling=-2.5),
    Format("opus", ".opus", "opus", ("-c:a", "libopus", "-b:a", "96k", "-ar", "48000"), "vorbis", "Opus 96 kb/s",
           peak_ceiling=-3.0, stream="ogg"),  # Opus overshoots most: up to 1.2 dB on sharp speech here
    Format("flac", ".flac", "flac", ("-c:a", "flac", "-sample_fmt", "s16"), "flac", "FLAC, lossless 16-bit"),
    Format("m4a", ".m4a", "ipod", ("-c:a", "aac", "-b:a", "128k"), "mp4", "AAC 128 kb/s in MP4",
           ffmpeg_chapters=True, peak_ceiling=-3.0,  # AAC overshoots sharp clicks by 2-3 dB
           muxer_options=(("movflags", "+faststart"),), stream="adts"),
    Format("wav", ".wav", "wav", ("-c:a", "pcm_s16le",), None, "WAV 16-bit (no tags; an intermediate)"),
):
    register_format(_fmt)


def format_for(name: str | None, path: Path | None) -> Format:
    """The format named, or the one the output path's extension implies (default mp3)."""
    from guided_audio.errors import OutputError

    if name:
        if name not in FORMATS:
            raise OutputError(f"--format: unknown format '{name}' (choose from {', '.join(FORMATS)})")
        return FORMATS[name]
    if path is not None and path.suffix:
        for fmt in FORMATS.values():
            if fmt.extension == path.suffix.lower():
                return fmt
        raise OutputError(f"-o {path}: unknown extension '{path.suffix}' (use {', '.join(f.extension for f in FORMATS.values())} or --format)")
    return FORMATS["mp3"]


def encode(
    blocks: Iterable[tuple[int, NDArray[Any]]],
    *,
    sample_rate: int,
    channels: int,
    fmt: Format,
    path: Path,
    progress: Callable[[int], None] = lambda n: None,
    chapters: tuple[Chapter, ...] = (),
    language: str = "en",
    tap: Sequence[str] = (),
) -> str | None:
    """Stream float32 blocks into ffmpeg, which writes `path` in `fmt`.

    With `tap` (the arguments of a second ffmpeg after its input, e.g. a loudness meter), the
    encoder also streams the very audio it writes into that second ffmpeg, which reads it while
    the encoding goes on, on the other core; its messages (stderr) are returned. A format whose
    chapters ffmpeg writes cannot be streamed that way (the stream drops them): then None is
    returned and the caller reads the file instead.
    """
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels), "-i", "pipe:0",
    ]
    streamed = bool(tap) and not (fmt.ffmpeg_chapters and chapters)
    with tempfile.TemporaryDirectory(prefix="guided-audio-encode-") as tmp:
        if fmt.ffmpeg_chapters and chapters:  # MP4 chapters: mutagen cannot write them, ffmpeg can
            meta = Path(tmp) / "chapters.txt"
            meta.write_text(ffmetadata(chapters), encoding="utf-8")
            cmd += ["-f", "ffmetadata", "-i", str(meta), "-map", "0:a", "-map_chapters", "1"]
        cmd += [*fmt.codec_args, "-metadata:s:a:0", f"language={ISO639_2.get(language, 'und')}"]
        if streamed:
            options = "".join(f":{key}={value}" for key, value in fmt.muxer_options)
            target = str(path).replace("\\", "\\\\").replace("|", "\\|").replace("[", "\\[")
            stream = fmt.stream or fmt.muxer  # if the reader fails, the file is still written ('onfail')
            cmd += ["-map", "0:a", "-f", "tee", f"[f={fmt.muxer}{options}]{target}|[f={stream}:onfail=ignore]pipe:1"]
            reader = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-f", DEMUXERS.get(stream, stream),
                      "-i", "pipe:0", *tap]
            return _run(cmd, blocks, fmt, progress, reader)
        cmd += [*fmt.muxer_args, "-f", fmt.muxer, str(path)]
        _run(cmd, blocks, fmt, progress)
        return None


def _run(cmd: list[str], blocks: Iterable[tuple[int, NDArray[Any]]], fmt: Format,
         progress: Callable[[int], None], reader_cmd: list[str] | None = None) -> str | None:
    import numpy as np
    with tempfile.TemporaryFile() as errors, tempfile.TemporaryFile() as heard:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=errors,
                                stdout=subprocess.PIPE if reader_cmd else subprocess.DEVNULL)
        reader = None
        if reader_cmd:
            reader = subprocess.Popen(reader_cmd, stdin=proc.stdout, stdout=subprocess.DEVNULL, stderr=heard)
            background.lower(reader.pid)  # it only reads along: the encoder comes first
            assert proc.stdout is not None
            proc.stdout.close()  # the reader holds it now: it sees the end when the encoder exits
        assert proc.stdin is not None
        _widen(proc.stdin)
        # A writer thread feeds ffmpeg while this thread mixes the next blocks: numpy
        # releases the GIL, so mixing and encoding run on two cores at once.
        queue: Queue[bytes | None] = Queue(maxsize=8)
        writer = threading.Thread(target=_feed, args=(queue, proc.stdin), daemon=True)
        writer.start()
        try:
            for _, block in blocks:
                if not _put(queue, np.ascontiguousarray(block, dtype="<f4").tobytes(), writer):
                    break  # ffmpeg stopped early
                progress(len(block))
        except BaseException:
            proc.kill()
            if reader is not None:
                reader.kill()
            raise
        finally:
            _put(queue, None, writer)
            writer.join()
            if not proc.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
        status = proc.wait()
        read_status = reader.wait() if reader is not None else 0
        if status != 0:
            errors.seek(0)
            lines = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise EncoderError(
                f"ffmpeg could not encode {fmt.name} ({lines[-1] if lines else f'exit status {status}'}); "
                f"check that {ffmpeg_exe()} works and has the {fmt.codec_args[1]} encoder"
            )
        if reader is None or read_status != 0:
            return None
        heard.seek(0)
        return heard.read().decode("utf-8", "replace")


PIPE_BYTES = 1 << 20  # the pipe into the encoder: about 30 ms of its work, so it never waits for this process


def _widen(pipe: IO[bytes]) -> None:
    """Give the pipe into ffmpeg a larger buffer, where the system allows (Linux).

    The default 64 KiB holds about 2 ms of the mp3 encoder's work: the writer thread, waiting
    its turn for the interpreter's lock behind the mixing, would leave the encoder idle.
    """
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # another system, or a lower limit: the default size still works, a little slower


def _feed(queue: Queue[bytes | None], pipe: IO[bytes]) -> None:
    """Write queued chunks into ffmpeg's stdin until the end marker; stop early if ffmpeg quits."""
    try:
        while (chunk := queue.get()) is not None:
            pipe.write(chunk)
        pipe.close()
    except (BrokenPipeError, ValueError):
        pass  # ffmpeg stopped: its exit status says why; the producer sees this thread end


def _put(queue: Queue[bytes | None], item: bytes | None, writer: threading.Thread) -> bool:
    """Queue an item for the writer; False if the writer has stopped."""
    while writer.is_alive():
        try:
            queue.put(item, timeout=0.1)
            return True
        except Full:
            continue
    return False
