"""The orchestrator: a practice and its settings in, a finished audio file and sidecar out.

    template + parameters -> script -> speech clips -> timeline -> mix -> master
    -> encode -> tags -> sidecar -> published (renamed into place)
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from guided_audio import (
    __version__,
    cover,
    encoding,
    markup,
    mastering,
    privacy,
    sidecars,
    sounds,
    speech,
    tags,
)
from guided_audio import program as programs
from guided_audio.errors import MarkupError, OutputError, SoundError
from guided_audio.mix import Levels, Mix
from guided_audio.program import Program
from guided_audio.timeline import Timeline, join, plan

SAMPLE_RATE = 44100


class Progress:
    """Receives progress of the long stages; the command line draws it, tests ignore it."""

    def stage(self, label: str, total: int) -> Callable[[int], None]:
        return lambda n: None

    def done(self) -> None:
        pass


@dataclass(frozen=True)
class TagOverrides:
    """What the user says a player should show, over the practice's own values."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    track: tuple[int, int] | None = None
    cover: Path | None = None


@dataclass(frozen=True)
class RenderRequest:
    """Everything that decides what a render produces."""

    practice: str
    settings: dict[str, str] = field(default_factory=dict)
    minutes: float | None = None
    voice: str | None = None  # the main voice: ENGINE:VOICE, a voice id, or None for the default
    second_voice: str | None = None  # for lines after '@voice second' (default: the main voice)
    strict: bool = False  # a missing recorded line is an error, not a fallback to the engine
    rate: int | None = None  # base words per minute; None: the session's, else speech.DEFAULT_WPM
    ambient: str | None = None  # None: the practice's default; "none": no bed
    format: str | None = None
    output: Path | None = None
    loudness: float | None = None  # None: -16 LUFS for stereo, -19 for mono
    channels: int = 2
    cache_dir: Path = field(default_factory=speech.default_cache_dir)
    levels: Levels = Levels()
    sidecars: tuple[str, ...] = sidecars.ALL
    tags: TagOverrides = TagOverrides()


@dataclass(frozen=True)
class RenderResult:
    audio: Path
    sidecar: Path | None  # the timeline JSON, unless it was turned off
    sidecars: dict[str, Path]
    timeline: Timeline
    master: mastering.Master
    speech: speech.SpeechReport
    warnings: tuple[str, ...]


def render(request: RenderRequest, progress: Progress = Progress()) -> RenderResult:
    """Render one practice or session, reading top to bottom like the data flows."""
    program, request = load_program(request)
    fmt, audio_path = output_path(request, program)
    scripts = program.scripts()
    cues, beds, first_bed = load_sounds(scripts, program, request.ambient)
    report = speech.SpeechReport(warnings=list(program.warnings))
    voices = voice_roles(scripts, request, report)
    clips = speak(scripts, request, voices, progress, report)
    timeline = plan_parts(
        program, scripts, base_rate(request),
        speech_length=lambda text, wpm, role="main": len(clips[speech.Line(text, wpm, voices[role])].samples),
        cue_length=lambda name: len(cues[name]),
    )
    timeline = dataclasses.replace(timeline, warnings=tuple(program.redact(w) for w in timeline.warnings))
    mix = Mix(timeline, clips, cues, beds, first_bed, request.levels, request.channels, voices)
    master = mastering.plan(mix, target_loudness(request), fmt.peak_ceiling)
    metadata = describe(program, request, first_bed, timeline)
    texts = sidecar_texts(request, program, fmt, audio_path, first_bed, timeline, master)
    outputs = {kind: sidecars.path_for(audio_path, kind) for kind in texts}
    with Publisher(audio_path, *outputs.values()) as publish:
        update = progress.stage("Mixing and encoding", timeline.length)
        blocks = ((start, master.apply(start, block)) for start, block in mix.blocks())
        encoding.encode(blocks, sample_rate=SAMPLE_RATE, channels=request.channels, fmt=fmt,
                        path=publish.temp(audio_path), progress=update, chapters=metadata.chapters,
                        language=metadata.language)
        tags.write(publish.temp(audio_path), fmt.container, metadata)
        for kind, text in texts.items():
            sidecars.write_text(publish.temp(outputs[kind]), text)
    progress.done()
    warnings = tuple(program.redact(w) for w in (*report.warnings, *timeline.warnings))
    return RenderResult(audio_path, outputs.get("json"), outputs, timeline, master, report, warnings)


# -- stages that need a little more than one line ----------------------------------------


def target_loudness(request: RenderRequest) -> float:
    """The loudness to master to: the request's, else the spoken-word default for its channels."""
    if request.loudness is not None:
        return request.loudness
    return mastering.DEFAULT_LUFS if request.channels == 2 else mastering.DEFAULT_MONO_LUFS


def base_rate(request: RenderRequest) -> int:
    """The base words per minute of a request that went through `load_program`."""
    assert request.rate is not None, "load_program fills in the rate"
    return request.rate


def load_program(request: RenderRequest) -> tuple[Program, RenderRequest]:
    """The practice or session to render, with the session's render settings as defaults."""
    program, request = programs.load(request)
    if request.rate is None:
        request = dataclasses.replace(request, rate=speech.DEFAULT_WPM)
    return program, request


def output_path(request: RenderRequest, program: Program) -> tuple[encoding.Format, Path]:
    """The output format and path, checked to be writable before any work is done."""
    fmt = encoding.format_for(request.format, request.output)
    path = request.output
    if path is None:
        path = Path("output") / f"{program.name}-{program.minutes:g}min{fmt.extension}"
    if path.is_dir():
        raise OutputError(f"-o {path}: is a folder; give a file name")
    if not path.suffix:
        path = path.with_name(path.name + fmt.extension)
    elif path.suffix.lower() != fmt.extension:
        raise OutputError(f"-o {path}: the extension does not match --format {fmt.name} (use {fmt.extension})")
    folder = path.parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise OutputError(f"-o {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"-o {path}: folder {existing} is not writable")
    return fmt, path


def load_sounds(
    scripts: list[markup.Script], program: Program, ambient: str | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str | None]:
    """Decode every cue and bed the scripts use; errors name the option or script line."""
    cues: dict[str, np.ndarray] = {}
    beds: dict[str, np.ndarray] = {}
    items = [(script, item) for script in scripts for item in script.items]
    for script, item in items:
        name = item.name if isinstance(item, markup.Cue) else getattr(item, "cue", None)
        if name and name not in cues:
            cues[name] = _sound(name, "cue", "@cue", script.source, item.line)
    if ambient == "none":
        return cues, beds, None
    first = ambient or program.ambient
    if first != "none":
        option = "--ambient" if ambient else f"{program.name}: ambient ="
        beds[first] = sounds.load(sounds.resolve(first, "bed", option), SAMPLE_RATE)
    for script, item in items:
        if isinstance(item, markup.Ambient) and item.name and item.name not in beds:
            beds[item.name] = _sound(item.name, "bed", "@ambient", script.source, item.line)
    return cues, beds, first if first != "none" else None


def _sound(name: str, kind: str, option: str, source: str, line: int) -> np.ndarray:
    try:
        return sounds.load(sounds.resolve(name, kind, option, Path(source).parent), SAMPLE_RATE)
    except SoundError as exc:  # named like a markup error: the script line is what to fix
        raise MarkupError(exc.message, source=source, line=line) from None


def voice_roles(
    scripts: list[markup.Script], request: RenderRequest, report: speech.SpeechReport
) -> dict[str, str | None]:
    """Which voice speaks each role the scripts use."""
    voices = {"main": request.voice, "second": request.second_voice or request.voice}
    if any("second" in script.voice_roles() for script in scripts) and request.second_voice is None:
        report.warnings.append("the script has lines for a second voice and no --second-voice was given; "
                               "the main voice speaks them")
    return voices


def speak(
    scripts: list[markup.Script], request: RenderRequest, voices: dict[str, str | None], progress: Progress,
    report: speech.SpeechReport,
) -> dict[speech.Line, speech.Clip]:
    """Every distinct spoken line as a clip at the session's sample rate."""
    base_wpm = base_rate(request)
    lines = [speech.Line(text, rate.resolve(base_wpm), voices[role])
             for script in scripts for text, rate, role in script.spoken_texts()]
    update = progress.stage("Speaking", len(set(lines)))
    return speech.synthesize(
        lines, sample_rate=SAMPLE_RATE, cache_dir=request.cache_dir, progress=update, report=report,
        strict=request.strict,
    )


def plan_parts(
    program: Program, scripts: list[markup.Script], base_wpm: int,
    speech_length: Callable[..., int], cue_length: Callable[[str], int],
) -> Timeline:
    """Each part's timeline, reaching its own minutes, joined one after another."""
    parts = [
        plan(
            script,
            base_wpm=base_wpm,
            speech_length=speech_length,
            cue_length=cue_length,
            sample_rate=SAMPLE_RATE,
            target_seconds=part.values["minutes"] * 60,
        )
        for part, script in zip(program.parts, scripts)
    ]
    if len(parts) == 1:
        return parts[0]
    return join([(part.title, t) for part, t in zip(program.parts, parts)])


def describe(program: Program, request: RenderRequest, bed: str | None, timeline: Timeline) -> tags.Metadata:
    """The tags a player shows: names, settings, chapters, the transcript and the cover."""
    over = request.tags
    title = over.title or program.title
    if over.cover is not None:
        art, mime = cover.load(over.cover)
    else:
        art, mime = cover.generate(title, "guided_audio", program.name), "image/png"
    ms = 1000 / timeline.sample_rate
    marks = timeline.of_kind("part") or timeline.of_kind("section")  # a session's chapters are its parts
    chapters = tuple(tags.Chapter(round(e.start * ms), round(e.end * ms), e.text) for e in marks)
    comment = (f"{program.name}: {_flat(program.settings())}; voice={request.voice or 'default'}; "
               f"rate={request.rate} wpm; ambient={bed or 'none'}; loudness={target_loudness(request):g} LUFS; "
               f"guided_audio {__version__}")
    comment = program.redact(comment)
    if program.crisis_resources:
        comment += f"\nIf you need support: {program.crisis_resources}"
    return tags.Metadata(
        title=title,
        artist=over.artist or "guided_audio",
        album=over.album or "Guided practices",
        album_artist=over.artist or "guided_audio",
        track=over.track,
        genre="Meditation",
        comment=comment,
        date=datetime.date.today().isoformat(),
        language=program.language,
        lyrics=sidecars.transcript(timeline),
        cover=art,
        cover_mime=mime,
        chapters=chapters,
    )


def sidecar_texts(
    request: RenderRequest, program: Program, fmt: encoding.Format, audio_path: Path, bed: str | None,
    timeline: Timeline, master: mastering.Master,
) -> dict[str, str]:
    """The text of every sidecar the request asks for, by kind."""
    texts: dict[str, str] = {}
    for kind in request.sidecars:
        if kind == "json":
            info = {"practice": program.name, "title": program.title, "file": audio_path.name,
                    "format": fmt.name, "settings": program.settings(), "voice": request.voice or "default",
                    "rate": request.rate, "ambient": bed or "none", "channels": request.channels,
                    "loudness": {"target_lufs": master.target_lufs, "gain_db": round(master.gain_db, 2)}}
            info = privacy.redact_all(info, list(program.secrets))
            if program.crisis_resources:
                info["crisis_resources"] = program.crisis_resources
            texts[kind] = sidecars.timeline_json(timeline, info)
        else:
            texts[kind] = sidecars.KINDS[kind][1](timeline, request.tags.title or program.title)
    return texts


def _flat(settings: dict[str, Any]) -> str:
    return "; ".join(f"{k}={_flat(v) if isinstance(v, dict) else v}" for k, v in settings.items() if v != "")


class Publisher:
    """Writes go to temporary files beside their targets and are renamed into place together."""

    def __init__(self, *targets: Path):
        self.targets = targets
        self.temps = {t: t.with_name(f".{t.stem}.partial-{os.getpid()}{t.suffix}") for t in targets}

    def temp(self, target: Path) -> Path:
        return self.temps[target]

    def __enter__(self) -> Publisher:
        for target in self.targets:  # created only now, so a render that fails early leaves nothing
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"-o {target}: cannot create folder {target.parent} ({exc.strerror})") from None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            for target, temp in self.temps.items():
                os.replace(temp, target)
        else:
            for temp in self.temps.values():
                temp.unlink(missing_ok=True)
