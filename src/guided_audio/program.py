"""The program of a render: one practice, or a session file's parts, and the settings they bring."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guided_audio import markup, practices, sessions

if TYPE_CHECKING:
    from guided_audio.render import RenderRequest


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

    @property
    def minutes(self) -> float:
        return sum(part.values["minutes"] for part in self.parts)

    def scripts(self) -> list[markup.Script]:
        """Each part's rendered and parsed script."""
        return [part.practice.script(part.values) for part in self.parts]

    def settings(self) -> dict[str, Any]:
        """Every part's parameter values (for the tags and the sidecar)."""
        if len(self.parts) == 1:
            return _shown(self.parts[0].values)
        return {f"{n + 1}. {part.practice.name}": _shown(part.values) for n, part in enumerate(self.parts)}


def load(request: "RenderRequest") -> tuple[Program, "RenderRequest"]:
    """The program a request names, and the request with the session's render defaults filled in."""
    if sessions.is_session(request.practice):
        if request.minutes is not None:
            from guided_audio.errors import ParameterError

            raise ParameterError("--minutes: a session's parts set their own minutes in the session file")
        session = sessions.load(Path(request.practice), request.settings, request.strict)
        first = session.parts[0].practice
        program = Program(
            name=Path(request.practice).stem, title=session.title, parts=session.parts,
            ambient=str(session.render.get("ambient", first.ambient)), language=first.language,
            crisis_resources=session.crisis_resources, warnings=session.warnings,
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
    part = sessions.Part(practice, values, practice.title)
    return Program(practice.name, practice.title, (part,), practice.ambient, practice.language), request


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != "seconds"}
