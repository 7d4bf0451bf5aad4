"""The program of a render: one practice, or a session file's parts, and the settings they bring."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from guided_audio import health, markup, practices, privacy, sessions, speech
from guided_audio.errors import MarkupError, ParameterError
from guided_audio.request import RenderRequest


@dataclass(frozen=True)
class Program:
    """What is rendered: its parts in order, and what describes the whole."""

    name: str  # for default file names and tags
    title: str
    parts: tuple[sessions.Part, ...]
    ambient: str  # the default bed
    language: str
    crisis_resources: str = ""
    warnings: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # private text, for `privacy.redact`

    @property
    def minutes(self) -> float:
        return cast(float, sum(part.values["minutes"] for part in self.parts))

    def texts(self) -> list[str]:
        """Each part's rendered markup; between parts, a bridge to the next one."""
        texts = []
        for part, following in zip(self.parts, [*self.parts[1:], None]):
            text = part.practice.render_markup(part.values)
            texts.append(text if following is None else text.rstrip("\n") + "\n" + bridge(following.title))
        return texts

    def scripts(self) -> list[markup.Script]:
        """Each part's parsed script."""
        return [markup.parse(text, source=str(part.practice.path)) for part, text in zip(self.parts, self.texts())]

    def check_bounds(self, scripts: list[markup.Script], base_wpm: int) -> None:
        """Stop before any synthesis when a part plans more time than its practice allows.

        Any single pause, silence or breathing block longer than the practice's maximum length, or a
        part whose fixed items (speech estimated, pauses, breathing blocks) add up to more, is a
        MarkupError (exit 2) naming the line.
        """
        for part, script in zip(self.parts, scripts):
            most = part.practice.minutes.max
            limit = most * 60 if most is not None else markup.MAX_SECONDS
            allowed = f"the practice's maximum of {limit / 60:g} minutes"
            total = 0.0
            for item in script.items:
                seconds = _fixed_seconds(item, base_wpm)
                if seconds > limit:
                    raise MarkupError(f"this lasts {seconds / 60:.1f} minutes, more than {allowed}",
                                      source=script.source, line=item.line)
                total += seconds
            if total > limit * 1.05 + 30:
                raise MarkupError(f"the script plans about {total / 60:.0f} minutes, more than {allowed}",
                                  source=script.source, line=script.items[-1].line)

    def settings(self) -> dict[str, Any]:
        """Every part's non-private parameter values (for the tags and the sidecar)."""
        if len(self.parts) == 1:
            return self.parts[0].practice.public(self.parts[0].values)
        return {f"{n + 1}. {part.practice.name}": part.practice.public(part.values)
                for n, part in enumerate(self.parts)}

    def shown_privately(self) -> tuple[str, ...]:
        """Private texts and the names of the health flags set: what a page showing the words leaves out."""
        flags = {name.replace("_", " ") for part in self.parts for name in health.FLAGS
                 if part.values.get(name) is True}
        return tuple(sorted({*self.secrets, *flags}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """A message or metadata text with any private text taken out."""
        return privacy.redact(text, self.secrets)


def _fixed_seconds(item: markup.Item, base_wpm: int) -> float:
    """Seconds an item takes whatever the target length: fill shares count as nothing."""
    if isinstance(item, markup.Pause):
        return item.length.seconds
    if isinstance(item, markup.Breathe):
        return item.cycles * item.period if item.cycles is not None else (item.length or markup.Length()).seconds
    if isinstance(item, markup.Speech):  # the same estimate `guided-audio script` plans with
        return speech.estimate_samples(item.text, item.rate.resolve(base_wpm), 1000) / 1000 + item.gap
    if isinstance(item, markup.Cue):
        return item.wait or 0.0
    return 0.0


def bridge(title: str) -> str:
    """The markup that ends a part of a session and names the next."""
    name = markup.literal(title)
    return f"@pause 3\nWhen you're ready, we'll move on to the next part: {name}.\n@pause 4\n"


def load(request: RenderRequest) -> tuple[Program, RenderRequest]:
    """The program a request names, and the request with the session's render defaults filled in."""
    if sessions.is_session(request.practice):
        if request.minutes is not None:
            raise ParameterError("--minutes: a session's parts set their own minutes in the session file")
        session = sessions.load(Path(request.practice), request.settings, request.strict)
        first = session.parts[0].practice
        program = Program(
            name=Path(request.practice).stem, title=session.title, parts=session.parts,
            ambient=str(session.render.get("ambient", first.ambient)), language=first.language,
            crisis_resources=session.crisis_resources, warnings=session.warnings,
            secrets=tuple(session.secrets),
        )
        defaults = {k: session.render[k] for k in ("voice", "second_voice", "rate", "ambient", "format", "loudness")
                    if k in session.render and getattr(request, k) is None}
        tags = request.tags
        for key in ("artist", "album"):
            if key in session.render and getattr(tags, key) is None:
                tags = dataclasses.replace(tags, **{key: session.render[key]})
        if request.tags.title is None:
            tags = dataclasses.replace(tags, title=session.title)
        return program, dataclasses.replace(request, tags=tags, **defaults)
    practice = practices.load(request.practice)
    values = practice.bind(request.settings, request.minutes)
    warnings = []
    if "health" in request.settings:
        lost = practice.unadapted(health.parse_list(str(request.settings["health"])))
        if lost:
            message = sessions.unadapted_message(practice.name, len(lost))
            if request.strict:
                raise ParameterError(f"--set health: {message}")
            warnings.append(f"--set health: {message}")
    warnings += sessions.name_warnings(practice, values, "--set")
    part = sessions.Part(practice, values, practice.title)
    program = Program(practice.name, practice.title, (part,), practice.ambient, practice.language,
                      warnings=tuple(warnings), secrets=tuple(privacy.private_texts(practice.private_values(values))))
    return program, request
