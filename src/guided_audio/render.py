"""The orchestrator: a practice and its settings in, a finished audio file and sidecar out.

    request -> settings (resolved once) -> template + parameters -> script -> speech clips
    -> timeline -> mix -> master -> encode (measured as written) -> tags -> sidecars
    -> published (renamed into place together)
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from guided_audio import (
    __version__,
    background,
    cover,
    encoding,
    markup,
    mastering,
    paths,
    phrasing,
    privacy,
    publish,
    sidecars,
    sounds,
    speech,
    tags,
)
from guided_audio import program as programs
from guided_audio.errors import MarkupError, OutputError, SoundError, TemplateError
from guided_audio.ffmpeg import ffmpeg_exe
from guided_audio.mix import Mix
from guided_audio.program import Program
from guided_audio.progress import Progress as Progress
from guided_audio.publish import Publisher as Publisher  # where the `lines` command finds it
from guided_audio.request import SAMPLE_RATE as SAMPLE_RATE
from guided_audio.request import RenderRequest as RenderRequest
from guided_audio.request import Settings
from guided_audio.request import TagOverrides as TagOverrides
from guided_audio.timeline import Phrases, Timeline, join, plan


@dataclass(frozen=True)
class RenderResult:
    audio: Path
    sidecar: Path | None  # the timeline JSON, unless it was turned off
    sidecars: dict[str, Path]
    timeline: Timeline
    master: mastering.Master
    speech: speech.SpeechReport
    warnings: tuple[str, ...]
    voice: str = ""  # the main voice that spoke, e.g. "piper:joe"
    written: mastering.Measured | None = None  # loudness and true peak of the file as written
    description: str = ""  # what a listing (a library's index and feed) says about it; nothing private
    language: str = ""  # the language of its words, such as "en"
    secrets: tuple[str, ...] = ()  # private texts and health flags, kept off pages that show the words




def render(request: RenderRequest, progress: Progress = Progress()) -> RenderResult:
    """Render one practice or session, reading top to bottom like the data flows."""
    with paths.using_cache(request.cache_dir):  # every cache a render keeps goes into its --cache-dir
        program, settings = resolve(request)
        audio_path = settings.output
        outputs = {kind: sidecars.path_for(audio_path, kind) for kind in settings.sidecars}
        publisher = Publisher(audio_path, *outputs.values(), cover=settings.tags.cover)  # checked before any work
        scripts = program.scripts()
        program.check_bounds(scripts, settings.rate)
        if not any(script.audible() for script in scripts):
            raise TemplateError("the script has nothing to say: no spoken line and no cue (see 'guided-audio script')",
                                source=str(program.parts[0].practice.path))
        report = speech.SpeechReport(warnings=list(program.warnings))
        cues, beds = load_sounds(scripts, program, settings.ambient, report.warnings)
        check_voice_roles(scripts, settings, report)
        clips = speak(scripts, settings, progress, report)
        voices = settings.voices
        timeline = plan_parts(
            program, scripts, settings.rate,
            speech_length=lambda text, wpm, role="main": clips[speech.Line(text, wpm, voices[role])].frames,
            cue_length=lambda name: len(cues[name]),
            phrases=lambda text, wpm, role: phrasing.phrases_of(text, wpm, voices[role]),
        )
        timeline = dataclasses.replace(timeline, warnings=tuple(program.redact(w) for w in timeline.warnings))
        mix = Mix(timeline, clips, cues, beds, settings.ambient, settings.levels, settings.channels, voices,
                  cache_dir=settings.cache_dir)
        metadata = describe(program, settings, timeline)
        with publisher as publish:
            master, written = encode_verified(mix, settings, publish.temp(audio_path), metadata, progress,
                                              report.warnings)
            tags.write(publish.temp(audio_path), settings.fmt.container, metadata)
            texts = sidecar_texts(settings, program, timeline, master, written)
            for kind, text in texts.items():
                sidecars.write_text(publish.temp(outputs[kind]), text)
        progress.done()
        warnings = tuple(program.redact(w) for w in (*report.warnings, *timeline.warnings))
        return RenderResult(audio_path, outputs.get("json"), outputs, timeline, master, report, warnings,
                            speech.voice_name(settings.voice), written, listing(program), program.language,
                            program.shown_privately())


# -- stages that need a little more than one line ----------------------------------------


def encode_verified(
    mix: Mix, settings: Settings, path: Path, metadata: tags.Metadata, progress: Progress, warnings: list[str],
) -> tuple[mastering.Master, mastering.Measured]:
    """Master and encode the mix, then measure the file that was written; correct it once if it is off.

    Encoders overshoot peaks and shift loudness by amounts that differ from build to build, so the
    written file, not the mix, is what has to meet the target and the ceiling. When it misses
    either, the plan is made again with the target and the ceiling moved by what was missed, and
    the file is encoded once more.
    """
    target, fmt = settings.loudness, settings.fmt
    plan = mastering.predict(mix, target, fmt.peak_ceiling)
    for attempt in range(2):
        label = "Mixing and encoding" if attempt == 0 else "Encoding again to meet the target"
        update = progress.stage(label, mix.length)
        limiter = mastering.Limiter(plan, mix.length)
        mastered = background.ahead(limiter.blocks(mix.blocks()), name="guided-audio-master")
        heard = encoding.encode(mastered, sample_rate=SAMPLE_RATE, channels=settings.channels,
                                fmt=fmt, path=path, progress=update, chapters=metadata.chapters,
                                language=metadata.language,
                                tap=mastering.EBUR128)  # measured as it is written, on the other core
        master = limiter.master
        written = (mastering.parse_ebur128(heard) if heard else None) or mastering.measure_file(path)
        if attempt == 1 or written.meets(target):
            break
        raised = 0.0  # dB the next encode is louder than this one
        if written.lufs_known and abs(written.lufs - target) > mastering.LOUDNESS_TOLERANCE:
            raised = max(-3.0, min(3.0, target - written.lufs))  # what the encoder took, given back
            plan = dataclasses.replace(mastering.predict(mix, target + raised, fmt.peak_ceiling), target_lufs=target)
        if written.peak_known and written.true_peak + raised > mastering.DELIVERED_PEAK_DBTP:
            # the encoder overshot, or will once louder: limit harder only where the file (raised) passes the ceiling
            found = mastering.overshoots(path, SAMPLE_RATE, settings.channels, plan.frame, raised_db=raised)
            plan = mastering.tighten(plan, found)
    if not written.meets(target, mastering.LOUDNESS_PROMISE):
        warnings.append(f"the written file measures {written.describe()}, not {target:g} LUFS within "
                        f"{mastering.LOUDNESS_PROMISE:g} LU and at most {mastering.DELIVERED_PEAK_DBTP:g} dBTP")
    return master, written


def resolve(request: RenderRequest) -> tuple[Program, Settings]:
    """The practice or session to render, and every setting made concrete, once, before any work.

    Given values win; then a session's [render] table; then the defaults: the practice's bed,
    the best installed voice, the base rate, -16 LUFS (-19 for mono), mp3 in output/.
    """
    program, request = programs.load(request)
    fmt, path = output_path(request, program)
    ffmpeg_exe()  # the encoder chosen (GUIDED_AUDIO_FFMPEG) is checked before any work
    voice = request.voice or speech.default_voice()
    ambient = request.ambient or program.ambient
    loudness = request.loudness
    if loudness is None:
        loudness = mastering.DEFAULT_LUFS if request.channels == 2 else mastering.DEFAULT_MONO_LUFS
    return program, Settings(
        fmt=fmt, output=path, rate=request.rate or speech.DEFAULT_WPM, voice=voice,
        second_voice=request.second_voice or voice, second_voice_given=request.second_voice is not None,
        ambient=None if ambient == "none" else ambient, loudness=loudness, channels=request.channels,
        cache_dir=request.cache_dir, levels=request.levels, sidecars=request.sidecars, tags=request.tags,
        strict=request.strict,
    )


def output_path(request: RenderRequest, program: Program) -> tuple[encoding.Format, Path]:
    """The output format and path, checked to be writable before any work is done."""
    fmt = encoding.format_for(request.format, request.output)
    path = request.output
    if path is None:
        path = Path("output") / f"{program.name}-{program.minutes:g}min{fmt.extension}"
    publish.check_names([path])  # a name the file system cannot hold is exit 2 before anything else
    if path.is_dir():
        raise OutputError(f"-o {path}: is a folder; give a file name")
    if not path.suffix:
        path = path.with_name(path.name + fmt.extension)
    elif path.suffix.lower() != fmt.extension:
        raise OutputError(f"-o {path}: the extension does not match --format {fmt.name} (use {fmt.extension})")
    problem = publish.folder_problem(path.parent)
    if problem:
        raise OutputError(f"-o {path}: {problem}")
    return fmt, path


def load_sounds(
    scripts: list[markup.Script], program: Program, ambient: str | None, warnings: list[str]
) -> tuple[dict[str, NDArray[Any]], dict[str, NDArray[Any]]]:
    """Decode every cue and bed the scripts use; errors name the option or script line.

    Each sound is an ffmpeg run of its own, so they are decoded side by side. A bed shorter
    than a second loops audibly: that is a warning.
    """
    cues: dict[str, Wanted] = {}
    beds: dict[str, Wanted] = {}
    items = [(script, item) for script in scripts for item in script.items]
    for script, item in items:
        name = item.name if isinstance(item, markup.Cue) else getattr(item, "cue", None)
        if name and name not in cues:
            cues[name] = _wanted(name, "cue", "@cue", script.source, item.line)
    if ambient is not None:
        option = f"{program.name}: ambient =" if ambient == program.ambient else "--ambient"
        beds[ambient] = Wanted(sounds.resolve(ambient, "bed", option), "", 0)
        for script, item in items:
            if isinstance(item, markup.Ambient) and item.name and item.name not in beds:
                beds[item.name] = _wanted(item.name, "bed", "@ambient", script.source, item.line)
    wanted = [*cues.values(), *beds.values()]
    with ThreadPoolExecutor(max_workers=4) as pool:  # each in a copy of this context: the same cache folder
        running = [pool.submit(contextvars.copy_context().run, _decode, w) for w in wanted]
        decoded = {id(w): job.result() for w, job in zip(wanted, running)}
    bed_sounds = {name: decoded[id(w)] for name, w in beds.items()}
    for name, samples in bed_sounds.items():
        if len(samples) < SAMPLE_RATE:
            warnings.append(f"ambient bed {name}: only {len(samples) / SAMPLE_RATE:.2f} s of audio could be "
                            "decoded; it loops audibly (is the file complete?)")
    return {name: decoded[id(w)] for name, w in cues.items()}, bed_sounds


@dataclass(frozen=True)
class Wanted:
    """A sound to decode, and the script line that asked for it ("" for an option)."""

    path: Path
    source: str
    line: int


def _wanted(name: str, kind: str, option: str, source: str, line: int) -> Wanted:
    try:
        return Wanted(sounds.resolve(name, kind, option, Path(source).parent), source, line)
    except SoundError as exc:  # named like a markup error: the script line is what to fix
        raise MarkupError(exc.message, source=source, line=line) from None


def _decode(wanted: Wanted) -> NDArray[Any]:
    try:
        return sounds.load(wanted.path, SAMPLE_RATE)
    except SoundError as exc:
        if not wanted.source:
            raise
        raise MarkupError(exc.message, source=wanted.source, line=wanted.line) from None


def check_voice_roles(scripts: list[markup.Script], settings: Settings, report: speech.SpeechReport) -> None:
    """A warning when the scripts have second-voice lines and no second voice was given."""
    if any("second" in script.voice_roles() for script in scripts) and not settings.second_voice_given:
        report.warnings.append("the script has lines for a second voice and no --second-voice was given; "
                               "the main voice speaks them")


def speak(
    scripts: list[markup.Script], settings: Settings, progress: Progress, report: speech.SpeechReport,
) -> dict[speech.Line, speech.Clip | speech.StoredClip]:
    """Every distinct phrase the timeline will place (see `phrasing`) as a clip at the session's rate.

    Lines already in the speech cache stay there until the mix reads them, one at a time.
    """
    lines = [line for script in scripts for line in phrasing.script_lines(script, settings.rate, settings.voices)]
    update = progress.stage("Speaking", len(set(lines)))
    return speech.synthesize(
        lines, sample_rate=SAMPLE_RATE, cache_dir=settings.cache_dir, progress=update, report=report,
        strict=settings.strict, stored=True,
    )


def plan_parts(
    program: Program, scripts: list[markup.Script], base_wpm: int,
    speech_length: Callable[..., int], cue_length: Callable[[str], int],
    phrases: Phrases | None = None,
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
            phrases=phrases,
        )
        for part, script in zip(program.parts, scripts)
    ]
    if len(parts) == 1:
        return parts[0]
    return join([(part.title, t) for part, t in zip(program.parts, parts)])


def describe(program: Program, settings: Settings, timeline: Timeline) -> tags.Metadata:
    """The tags a player shows: names, settings, chapters, the transcript and the cover."""
    over = settings.tags
    title = over.title or program.title
    if over.cover is not None:
        art, mime = cover.load(over.cover)
    else:
        art, mime = cover.cached(title, "guided_audio", program.name, settings.cache_dir), "image/png"
    ms = 1000 / timeline.sample_rate
    marks = timeline.of_kind("part") or timeline.of_kind("section")  # a session's chapters are its parts
    chapters = tuple(tags.Chapter(round(e.start * ms), round(e.end * ms), e.text) for e in marks)
    comment = (f"{program.name}: {_flat(program.settings())}; voice={speech.voice_name(settings.voice)}; "
               f"rate={settings.rate} wpm; ambient={settings.ambient or 'none'}; loudness={settings.loudness:g} LUFS; "
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


def listing(program: Program) -> str:
    """A plain-text description for a listing: the practice (or a session's parts) and its minutes.

    Made from titles, the template's own description and the minutes, so no setting (private
    or not) is in it; private text is taken out all the same, as a second line of defence.
    """
    if len(program.parts) == 1:
        part = program.parts[0]
        text = f"{part.title}, {_minutes(program.minutes)}. {part.practice.description}"
    else:
        parts = "; ".join(f"{part.title} ({_minutes(part.values['minutes'])})" for part in program.parts)
        text = f"{program.title}, {_minutes(program.minutes)}, in {len(program.parts)} parts: {parts}."
    return program.redact(text.strip())


def _minutes(value: float) -> str:
    return f"{value:g} minute" + ("" if value == 1 else "s")


def sidecar_texts(
    settings: Settings, program: Program, timeline: Timeline, master: mastering.Master, written: mastering.Measured,
) -> dict[str, str]:
    """The text of every sidecar the settings ask for, by kind."""
    texts: dict[str, str] = {}
    for kind in settings.sidecars:
        if kind == "json":
            info = {"practice": program.name, "title": program.title, "file": settings.output.name,
                    "format": settings.fmt.name, "settings": program.settings(),
                    "voice": speech.voice_name(settings.voice), "rate": settings.rate,
                    "ambient": settings.ambient or "none", "channels": settings.channels,
                    "loudness": {"target_lufs": master.target_lufs, "gain_db": round(master.gain_db, 2),
                                 "measured_lufs": written.lufs, "true_peak_dbtp": written.true_peak}}
            info = privacy.redact_all(info, list(program.secrets))
            if program.crisis_resources:
                info["crisis_resources"] = program.crisis_resources
            texts[kind] = sidecars.timeline_json(timeline, info)
        else:
            texts[kind] = sidecars.KINDS[kind][1](timeline, settings.tags.title or program.title)
    return texts


def _flat(settings: dict[str, Any]) -> str:
    return "; ".join(f"{k}={_flat(v) if isinstance(v, dict) else v}" for k, v in settings.items() if v != "")
