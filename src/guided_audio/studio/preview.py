"""The script preview: the text, planned length and warnings `guided-audio script` prints."""

from __future__ import annotations

from dataclasses import dataclass

from guided_audio import speech
from guided_audio.request import SAMPLE_RATE, RenderRequest


@dataclass(frozen=True)
class Preview:
    text: str  # what `guided-audio script` prints on stdout
    planned: str  # its '// planned duration' line
    seconds: float
    warnings: tuple[str, ...]


def preview(request: RenderRequest) -> Preview:
    """Render the script of a request without audio, as the `script` command does; BadInput if it is wrong."""
    from guided_audio.program import load as load_program
    from guided_audio.render import plan_parts

    program, request = load_program(request)
    rate = request.rate or speech.DEFAULT_WPM
    texts = program.texts()
    scripts = program.scripts()
    program.check_bounds(scripts, rate)
    timeline = plan_parts(
        program, scripts, rate,
        speech_length=lambda t, wpm, role="main": speech.estimate_samples(t, wpm, SAMPLE_RATE),
        cue_length=lambda name: 3 * SAMPLE_RATE,
    )
    out = []
    for number, (part, text) in enumerate(zip(program.parts, texts), start=1):
        if len(program.parts) > 1:
            out.append(f"// part {number}: {part.title} ({part.practice.name}, {part.values['minutes']:g} min)")
        out.append(text.rstrip("\n"))
    seconds = timeline.seconds
    planned = (f"// planned duration: about {int(seconds // 60)}:{int(seconds % 60):02d} "
               f"(speech lengths estimated at {rate} wpm)")
    warnings = tuple(program.redact(w) for w in (*program.warnings, *timeline.warnings))
    return Preview("\n".join(out) + "\n", planned, seconds, warnings)
