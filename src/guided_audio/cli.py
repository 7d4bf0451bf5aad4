"""The command line: a thin layer over the stages; errors become one-line messages.

Exit statuses: 0 success, 1 the speech engine or ffmpeg failed, 2 bad input (an
option, template, markup, sound or output path), 130 interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from guided_audio import __version__, encoding, health, practices, sounds, speech
from guided_audio.errors import BadInput, ExitStatus, GuidedAudioError
from guided_audio.levels import Levels
from guided_audio.progress import Progress
from guided_audio.request import SAMPLE_RATE
from guided_audio.sidecars import ALL as SIDECARS

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

_F = TypeVar("_F", bound=Callable[..., Any])

_debug = bool(os.environ.get("GUIDED_AUDIO_DEBUG"))


class CLI(click.Group):
    """A group whose errors are one `error:` line with a documented exit status."""

    def main(
        self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
        standalone_mode: bool = True, **extra: Any,
    ) -> NoReturn:
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except GuidedAudioError as exc:
            status = _fail(str(exc), exc.exit_status, exc)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            status = _fail(exc.format_message() + hint, ExitStatus.BAD_INPUT, exc)
        except click.ClickException as exc:
            status = _fail(exc.format_message(), ExitStatus.BAD_INPUT, exc)
        except (KeyboardInterrupt, click.Abort) as exc:
            status = _fail("interrupted; nothing was written", ExitStatus.INTERRUPTED, exc)
        except OSError as exc:
            status = _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), ExitStatus.FAILURE, exc)
        sys.exit(int(status or 0))


def _fail(message: str, status: int, exc: BaseException) -> int:
    if _debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    click.echo(f"error: {message}", err=True)
    return status


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    global _debug
    _debug = _debug or value
    logging.basicConfig(level=logging.DEBUG if _debug else logging.WARNING, format="%(levelname)s: %(message)s")


@click.group(cls=CLI, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="guided-audio")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
              help="Show tracebacks for errors.")
def cli() -> None:
    """Render practice scripts into voice-guided audio sessions.

    Start with 'guided-audio practices', look at one with 'guided-audio show
    breathing', then 'guided-audio render breathing'.
    """


def main() -> None:
    """Console-script entry point."""
    from guided_audio.publish import install_signal_handlers

    install_signal_handlers()  # SIGTERM is an interrupt like Ctrl-C: temporary files are removed, exit 130
    cli(prog_name="guided-audio")


# -- listing ---------------------------------------------------------------------------


@cli.command("practices")
def list_practices() -> None:
    """List the built-in practices."""
    for name in practices.builtin_names():
        p = practices.load(name)
        click.echo(f"{name:<14} {p.title}: {p.description}")


@cli.command()
@click.argument("practice")
def show(practice: str) -> None:
    """Show a practice's parameters, defaults and allowed values."""
    p = practices.load(practice)
    click.echo(f"{p.title} ({p.name})\n{p.description}\n")
    m = p.minutes
    click.echo(f"--minutes N      default {m.default:g}; {m.describe_range()} minutes")
    click.echo(f"ambient bed      default {p.ambient}\n")
    click.echo("Parameters (--set NAME=VALUE):")
    for param in p.params:
        if health.is_flag(param.name):
            continue
        default = "''" if param.default == "" else param.default
        private = "; private" if param.private else ""
        click.echo(f"  {param.name} ({param.type}, default {default}; {param.describe_range()}{private})")
        click.echo(f"      {param.help}")
    click.echo("\nHealth flags (--set health=FLAG,FLAG or a session's health = [...]; private):")
    said = {param.name: param.help for param in p.params if health.is_flag(param.name)}
    for flag in health.FLAGS:
        if flag in p.health_flags:  # what this practice says for it, in its own help text
            click.echo(f"  {flag:<28} adapted")
            click.echo(f"      {said.get(flag) or health.FLAGS[flag]}")
        elif flag in p.unaffected_by:
            click.echo(f"  {flag:<28} needs no change in this practice")
        else:
            click.echo(f"  {flag:<28} NOT adapted: a warning, or an error with --strict")
    click.echo("\nPrivate values shape what is said and are never written into tags, sidecars, indexes, feeds,\n"
               "file names or messages.")
    if p.sources:
        click.echo("\nSources: " + "; ".join(p.sources))


@cli.command()
def voices() -> None:
    """List the voices of each speech engine (use one with --voice); '* default' marks the default."""
    default = speech.voice_name(speech.default_voice())
    marked = False
    for name in speech.engine_names():
        for v in speech.get_engine(name).voices():
            langs = ",".join(v.languages)
            mark = f"{name}:{v.id}" == default and not marked
            marked = marked or mark
            click.echo(f"{name}:{v.id:<24} {v.name:<28} {langs}" + ("  * default" if mark else ""))
    if not marked:
        click.echo(f"{default:<32} the engine's own default voice  * default")
    click.echo(f"\n* default: the voice used without --voice is {default}")


@cli.command("sounds")
def list_sounds() -> None:
    """List the ambient beds (--ambient) and cue sounds (@cue) of the library."""
    for kind, heading in (("bed", "Ambient beds (--ambient NAME)"), ("cue", "Cue sounds (@cue NAME)")):
        click.echo(heading)
        for s in sounds.catalogue():
            if s.kind == kind:
                click.echo(f"  {s.name:<14} {s.description}")
    click.echo("A path to your own audio file works too; 'none' turns the bed off.")


# -- scripts and renders -------------------------------------------------------------------

_set_option = click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE",
    help="Set a practice parameter (repeatable); see 'guided-audio show PRACTICE'. "
         "--set health=FLAG,FLAG sets health flags.",
)
_minutes_option = click.option("--minutes", type=float, help="Target length in minutes (default: the practice's).")
_rate_option = click.option(
    "--rate", type=click.IntRange(60, 400),
    help=f"Base speaking rate in words per minute (default {speech.DEFAULT_WPM}); scripts slow it after the opening.",
)


def _settings(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{pair}' is not KEY=VALUE", param_hint="--set")
        out[key.strip()] = value
    return out


@cli.command()
@click.argument("practice", metavar="PRACTICE_OR_PATH_OR_SESSION")
@_set_option
@_minutes_option
@_rate_option
@click.option("--strict", is_flag=True, help="Treat a session file's warnings as errors.")
def script(practice: str, settings: tuple[str, ...], minutes: float | None, rate: int | None, strict: bool) -> None:
    """Print the rendered script markup and its planned duration (no audio).

    For a session file, every part is printed under a '// part N' line.
    """
    from guided_audio.program import load as load_program
    from guided_audio.render import RenderRequest, plan_parts

    program, request = load_program(RenderRequest(practice, _settings(settings), minutes, rate=rate, strict=strict))
    rate = request.rate or speech.DEFAULT_WPM
    texts = program.texts()
    scripts = program.scripts()  # parsed before anything is printed: a bad line prints only the error
    program.check_bounds(scripts, rate)
    timeline = plan_parts(
        program, scripts, rate,
        speech_length=lambda t, wpm, role="main": speech.estimate_samples(t, wpm, SAMPLE_RATE),
        cue_length=lambda name: 3 * SAMPLE_RATE,
    )
    for number, (part, text) in enumerate(zip(program.parts, texts), start=1):
        if len(program.parts) > 1:
            click.echo(f"// part {number}: {part.title} ({part.practice.name}, {part.values['minutes']:g} min)")
        click.echo(text.rstrip("\n"))  # line numbers match errors
    seconds = timeline.seconds
    warnings = [program.redact(w) for w in (*program.warnings, *timeline.warnings)]
    click.echo(f"\n// planned duration: about {int(seconds // 60)}:{int(seconds % 60):02d} "
               f"(speech lengths estimated at {rate} wpm)", err=True)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.command("new-session")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def new_session(path: Path, force: bool) -> None:
    """Write a commented starter session file for one couple's evening."""
    from guided_audio.publish import atomic_write_text, check_targets
    from guided_audio.sessions import starter

    if path.exists() and not force:
        raise click.BadParameter(f"{path} exists (use --force to replace it)", param_hint="PATH")
    check_targets([path], option="PATH")
    atomic_write_text(path, starter(), option="PATH")
    click.echo(str(path))


@cli.command()
@click.argument("practice", metavar="PRACTICE_OR_PATH")
@_set_option
@_minutes_option
@click.option("-o", "--output", "folder", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for the script (default: output/PRACTICE-recording).")
def lines(practice: str, settings: tuple[str, ...], minutes: float | None, folder: Path | None) -> None:
    """Write a recording script (text and CSV) of a practice's lines, each with a stable id.

    Record each line into the folder as ID.wav, then render with --voice recorded:FOLDER.
    """
    from guided_audio import recording
    from guided_audio.render import Publisher

    p = practices.load(practice)
    found = recording.script_lines(p.script(p.bind(_settings(settings), minutes)))
    folder = folder or Path("output") / f"{p.name}-recording"
    text, csv_path = folder / "recording-script.txt", folder / "lines.csv"
    with Publisher(text, csv_path) as publish:
        publish.temp(text).write_text(recording.readable(p.title, found), encoding="utf-8")
        publish.temp(csv_path).write_text(recording.table(found), encoding="utf-8")
    click.echo(f"{len(found)} lines to record", err=True)
    click.echo(str(text))
    click.echo(str(csv_path))


@cli.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=lambda: os.cpu_count() or 1,
              show_default="the number of cores", help="Items rendered at once.")
@click.option("-o", "--output", "root", type=click.Path(path_type=Path, file_okay=False),
              help="Library folder (default: output/MANIFEST).")
@click.option("--dry-run", is_flag=True, help="List what would be built and what is up to date; render nothing.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Speech cache (default: as for render).")
@click.option("-q", "--quiet", is_flag=True, help="Only the final report.")
@click.option("--cluster", metavar="tcp://HOST:PORT",
              help="Render on the workers of this Dask scheduler (needs the [cluster] extra); -j is then unused.")
@click.option("--shared-storage", is_flag=True,
              help="With --cluster: the workers write into the -o folder, which is the same path on every machine.")
def build(manifest: Path, jobs: int, root: Path | None, dry_run: bool, cache_dir: Path | None, quiet: bool,
          cluster: str | None, shared_storage: bool) -> None:
    """Build a library of sessions from a manifest, in parallel and incrementally.

    Unchanged items are skipped; one failing item does not stop the rest; the build
    ends with a report (with the warnings of the items built) and exits 1 if anything
    failed. Playlists (.m3u8), index.json and, if the manifest has a [feed] table, a
    private podcast feed are written.
    """
    from guided_audio import build as builds

    if shared_storage and not cluster:
        raise BadInput("--shared-storage: give --cluster too (a local build always writes into the -o folder)")
    loaded = builds.load(manifest)
    root = root or Path("output") / manifest.stem
    total = len(loaded.items)
    bar = None
    if not quiet and sys.stderr.isatty() and not dry_run:
        bar = click.progressbar(length=total, label="Building".ljust(12), file=sys.stderr, show_pos=True)
        bar.__enter__()

    warnings: list[tuple[str, str]] = []  # shown with the report, after the progress display

    def event(kind: str, name: str, detail: str) -> None:
        if kind == "warning":
            warnings.append((name, detail))
            return
        if bar is not None:
            bar.update(1)
            if kind == "failed":
                click.echo(f"\nfailed: {name}: {detail}", err=True)
        elif not quiet or kind == "failed":
            click.echo(f"{kind}: {name}" + (f" ({detail})" if kind in ("failed", "would build") else ""), err=True)

    try:
        report = builds.build(loaded, root, jobs=jobs, dry_run=dry_run, cache_dir=cache_dir, on_event=event,
                                cluster=cluster, shared_storage=shared_storage)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if dry_run:
        click.echo(f"{total - len(report.skipped) - len(report.failed)} to build, {len(report.skipped)} up to date, "
                   f"{len(report.failed)} cannot be read")
    else:
        click.echo(f"{len(report.built)} built, {len(report.skipped)} skipped (unchanged), {len(report.failed)} failed"
                   f" -> {root}")
    for name, reason in report.failed:
        click.echo(f"  failed: {name}: {reason}", err=True)
    for name, warning in warnings:
        click.echo(f"warning: {name}: {warning}", err=True)
    if report.exit_status:
        sys.exit(report.exit_status)


class _Bar(Progress):
    """Progress bars on stderr, only when it is a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar: ProgressBar[int] | None = None

    def stage(self, label: str, total: int) -> Callable[[int], None]:
        self.done()
        if not self.enabled or total <= 0:
            return lambda n: None
        self.bar = click.progressbar(length=total, label=label.ljust(20), file=sys.stderr, show_eta=True)
        self.bar.__enter__()
        return self.bar.update

    def done(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _levels_option(f: _F) -> _F:
    """--duck, --accessible and one gain option per layer, gathered into a Levels."""
    defaults = Levels()
    f = click.option("--accessible", is_flag=True,
                     help="Duck the bed 20 dB under speech, for listeners who find background sound hard.")(f)
    f = click.option("--duck", type=click.FloatRange(12, 20), default=defaults.duck, show_default=True,
                     help="dB the ambient bed drops under speech.")(f)
    for layer in ("guide", "cue", "bed", "voice"):
        f = click.option(f"--{layer}-level", type=click.FloatRange(-40, 12), default=getattr(defaults, layer),
                         show_default=True, metavar="DB", help=f"Gain of the {layer} layer in dB.")(f)
    return f


def _levels(options: dict[str, Any]) -> Levels:
    duck = 20.0 if options.pop("accessible") else options.pop("duck")
    options.pop("duck", None)
    gains = {layer: options.pop(f"{layer}_level") for layer in ("voice", "bed", "cue", "guide")}
    return Levels(duck=duck, **gains)


@cli.command()
@click.argument("practice", metavar="PRACTICE_OR_PATH_OR_SESSION")
@_set_option
@_minutes_option
@click.option("--voice", metavar="ID", help="Voice to speak with: a voice id (see 'guided-audio voices'), "
              "ENGINE:VOICE such as piper:joe, or recorded:FOLDER for the therapist's own recordings.")
@click.option("--second-voice", metavar="ID", help="Voice for lines after '@voice second' (default: the main voice).")
@click.option("--strict", is_flag=True, help="Warnings are errors: a line missing from recorded:FOLDER, "
              "or a session file's warnings.")
@_rate_option
@click.option("--ambient", metavar="NAME|PATH|none", help="Ambient bed (see 'guided-audio sounds'); default: the practice's.")
@_levels_option
@click.option("--format", "fmt", type=click.Choice(list(encoding.FORMATS)), help="Output format (default: from -o, else mp3).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output file (default: output/PRACTICE-NmMIN.FORMAT).")
@click.option("--mono", is_flag=True, help="Write one channel instead of two.")
@click.option("--loudness", type=click.FloatRange(-30, -10), metavar="LUFS",
              help="Target integrated loudness (default -16 LUFS, or -19 with --mono).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=speech.default_cache_dir, show_default=False,
              help="The cache: synthesized speech, the master's analyses, compiled templates and decoded sounds "
                   "(default: ~/.cache/guided_audio or $GUIDED_AUDIO_CACHE).")
@click.option("--sidecars", "sidecar_list", default=",".join(SIDECARS), show_default=True, metavar="LIST",
              help="Sidecar files to write beside the audio, from: " + ", ".join(SIDECARS) + ".")
@click.option("--no-sidecars", is_flag=True, help="Write no sidecar files.")
@click.option("--title", help="Title tag (default: the practice's title).")
@click.option("--artist", help="Artist tag, e.g. the therapist's name (default: guided_audio).")
@click.option("--album", help="Album tag (default: Guided practices).")
@click.option("--track", metavar="N/M", help="Track number within a set, e.g. 2/5.")
@click.option("--cover", type=click.Path(path_type=Path, dir_okay=False), metavar="IMAGE",
              help="Cover art (PNG or JPEG) instead of the generated one.")
@click.option("--player", is_flag=True, help="Also write player.html beside the audio: a page that plays it with "
              "its chapters, captions and a breath guide, opened from disk or a web host (needs the json, vtt and "
              "chapters sidecars).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
def render(
    practice: str, settings: tuple[str, ...], minutes: float | None, voice: str | None, second_voice: str | None,
    strict: bool, rate: int | None, ambient: str | None, fmt: str | None, output: Path | None, mono: bool,
    loudness: float | None, cache_dir: Path, sidecar_list: str, no_sidecars: bool, title: str | None,
    artist: str | None, album: str | None, track: str | None, cover: Path | None, player: bool, quiet: bool,
    **level_options: Any,
) -> None:
    """Render a practice or a session file (.toml) to a tagged audio file.

    Captions, chapters and a timeline are written beside it. A session file's
    [render] settings are the defaults; options given here win.
    """
    from guided_audio.render import RenderRequest, TagOverrides
    from guided_audio.render import render as render_session

    kinds = () if no_sidecars else _sidecar_kinds(sidecar_list)
    if player and not {"json", "vtt", "chapters"} <= set(kinds):
        raise click.BadParameter("the player page needs the json, vtt and chapters sidecars", param_hint="--player")
    request = RenderRequest(
        practice=practice, settings=_settings(settings), minutes=minutes, voice=voice,
        second_voice=second_voice, strict=strict, rate=rate,
        ambient=ambient, format=fmt, output=output, loudness=loudness, channels=1 if mono else 2,
        cache_dir=cache_dir, levels=_levels(level_options),
        sidecars=kinds,
        tags=TagOverrides(title=title, artist=artist, album=album, track=_track(track), cover=cover),
    )
    result = render_session(request, _Bar(enabled=not quiet and sys.stderr.isatty()))
    page = None
    if player:
        from guided_audio.player import write_player

        page = write_player(result.audio, result.secrets)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    seconds = result.timeline.seconds
    if not quiet:
        click.echo(
            f"{result.audio} ({int(seconds // 60)}:{int(seconds % 60):02d}, "
            f"{result.written.describe() if result.written else f'{result.master.target_lufs:g} LUFS'} as written; "
            f"voice {result.voice}; {result.speech.synthesized} phrases spoken, {result.speech.cached} from cache)",
            err=True
        )
    click.echo(str(result.audio))
    for path in result.sidecars.values():
        click.echo(str(path))
    if page is not None:
        click.echo(str(page))


_SAY_TEMPLATE = """+++
title = "Voice preview"
description = "A few words in a voice, through the same chain as a render."
ambient = "none"
[minutes]
default = 0.1
min = 0.01
max = 5
[params.text]
type = "str"
default = ""
help = "The words to say."
+++
{{ text }}
"""


@cli.command()
@click.argument("text")
@click.option("--voice", metavar="ID", help="Voice to speak with (default: the default voice; see 'guided-audio voices').")
@_rate_option
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("output") / "say-preview.mp3",
              show_default=True, help="Output file; its extension picks the format.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=speech.default_cache_dir, show_default=False,
              help="Where synthesized speech is cached (as for render).")
def say(text: str, voice: str | None, rate: int | None, output: Path, cache_dir: Path) -> None:
    """Say TEXT in a voice into a short file, to choose a voice before a long render.

    The words go through the same chain as a render (phrasing, speech, mastering,
    encoding): a one-line script rendered with no bed and no sidecars.
    """
    import tempfile

    from guided_audio.render import RenderRequest
    from guided_audio.render import render as render_session

    if not text.strip():
        raise click.BadParameter("nothing to say", param_hint="TEXT")
    with tempfile.TemporaryDirectory(prefix="guided-audio-say-") as folder:
        template = Path(folder) / "say-preview.j2"
        template.write_text(_SAY_TEMPLATE, encoding="utf-8")
        request = RenderRequest(practice=str(template), settings={"text": text}, voice=voice, rate=rate,
                                ambient="none", output=output, cache_dir=cache_dir, sidecars=())
        result = render_session(request)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{result.voice} said it in {result.timeline.seconds:.1f} s: {result.audio}", err=True)
    click.echo(str(result.audio))


def _sidecar_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in SIDECARS]
    if unknown:
        raise click.BadParameter(f"unknown sidecar '{unknown[0]}' (choose from {', '.join(SIDECARS)})",
                                 param_hint="--sidecars")
    return kinds


def _track(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    n, sep, total = text.partition("/")
    if not (n.isdigit() and total.isdigit() and sep) or not 1 <= int(n) <= int(total):
        raise click.BadParameter(f"'{text}' is not N/M with 1 <= N <= M", param_hint="--track")
    return int(n), int(total)


@cli.command()
@click.option("--port", type=click.IntRange(1024, 65535), help="Port on 127.0.0.1 (default: a free one).")
@click.option("--folder", type=click.Path(path_type=Path, file_okay=False), default=Path("output") / "studio",
              show_default=True, help="The studio's folder: its own templates (*.j2), sessions/ and renders/. "
              "The studio writes nothing outside it.")
def studio(port: int | None, folder: Path) -> None:
    """Start the studio, a web app in your browser: compose, preview, render and play sessions.

    It listens on 127.0.0.1 only, and prints its address with a secret token: open that
    address; anything without the token is refused. Ctrl-C stops it. One studio per folder.
    """
    import contextlib

    from guided_audio.studio.server import serve

    def announce(address: str) -> None:
        click.echo(f"The studio for {folder} is at:\n    {address}\nCtrl-C stops it.", err=True)
        click.echo(address)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a studio is meant to end: no error
        serve(folder, port, announce=announce)
    click.echo("The studio has stopped.", err=True)


@cli.command("inspect")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def inspect_file(file: Path) -> None:
    """Show the tags, chapters, cover, duration and loudness of any audio file."""
    from guided_audio.inspection import format_report, inspect

    click.echo(format_report(inspect(file)))
