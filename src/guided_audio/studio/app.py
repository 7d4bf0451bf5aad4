"""The studio's pages and endpoints: practices, their forms and previews, the session composer,
renders with their progress, and the player pages of finished renders."""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from guided_audio import health
from guided_audio.errors import BadInput, GuidedAudioError
from guided_audio.paths import data_folder
from guided_audio.practices import Practice
from guided_audio.publish import temp_name
from guided_audio.request import RenderRequest
from guided_audio.studio import composer, forms, jobs, security
from guided_audio.studio import folder as folders
from guided_audio.studio.preview import Preview, preview
from guided_audio.studio.security import ASGIApp, Guard

STUDIO_DATA = data_folder("guided_audio.studio", "src/guided_audio/studio")


@dataclass(frozen=True)
class Outcome:
    """What checking a form found: the preview, or errors by field ('' for the form as a whole)."""

    preview: Preview | None
    errors: dict[str, str]


class Studio:
    """One folder's studio: its pages, over the folder's practices, sessions and renders."""

    def __init__(self, folder: Path):
        self.folder = folder.resolve()
        self.jobs = jobs.Jobs(self.folder)
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(STUDIO_DATA / "templates"),
                                      autoescape=True, undefined=jinja2.StrictUndefined)

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=status)

    # -- lists --------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return self.page("index.html", choices=folders.practice_choices(self.folder),
                         session_files=folders.session_files(self.folder), renders=folders.renders(self.folder),
                         folder=str(self.folder))

    # -- a practice's form ----------------------------------------------------------------

    async def practice(self, request: Request) -> Response:
        key = request.path_params["key"]
        practice = self._practice(key)
        outcome = self.check_practice(key, {}, [])
        return self.practice_page(key, practice, {}, [], outcome)

    async def practice_preview(self, request: Request) -> Response:
        key = request.path_params["key"]
        self._practice(key)
        values, flags = _values(await request.form())
        outcome = self.check_practice(key, values, flags)
        shown = outcome.preview
        return JSONResponse({
            "text": shown.text if shown else "", "planned": shown.planned if shown else "",
            "warnings": list(shown.warnings) if shown else [], "errors": outcome.errors,
        })

    async def practice_render(self, request: Request) -> Response:
        key = request.path_params["key"]
        practice = self._practice(key)
        values, flags = _values(await request.form())
        outcome = self.check_practice(key, values, flags)
        if outcome.errors:
            return self.practice_page(key, practice, values, flags, outcome, status=400)
        settings, minutes, _ = forms.settings(practice, values, flags)
        job = self.start(practice.name, folders.practice_spec(self.folder, key), settings, minutes, values)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    def check_practice(self, key: str, values: dict[str, str], flags: list[str]) -> Outcome:
        """Every field checked on its own, then the whole script as `guided-audio script` makes it."""
        practice = folders.load_practice(self.folder, key)
        settings, minutes, minutes_error = forms.settings(practice, values, flags)
        errors: dict[str, str] = {"minutes": minutes_error} if minutes_error else {}
        for name, raw in settings.items():
            if name != "health":
                try:
                    practice.param(name).convert(raw, f"--set {name}")
                except GuidedAudioError as exc:
                    errors[name] = str(exc)
        if errors:
            return Outcome(None, errors)
        try:
            return Outcome(preview(RenderRequest(folders.practice_spec(self.folder, key), settings, minutes)), {})
        except GuidedAudioError as exc:
            return Outcome(None, {forms.field_of(exc): str(exc)})

    def practice_page(self, key: str, practice: Practice, values: dict[str, str], flags: list[str], outcome: Outcome,
                      status: int = 200) -> HTMLResponse:
        fields = forms.with_errors(forms.fields(practice, values), outcome.errors)
        return self.page("practice.html", status, key=key, practice=practice, fields=fields,
                         flags=forms.flags(practice, flags), preview=outcome.preview,
                         general=outcome.errors.get(forms.GENERAL, ""), health_error=outcome.errors.get("health", ""),
                         voice=values.get("voice", ""))

    def _practice(self, key: str) -> Practice:
        try:
            return folders.load_practice(self.folder, key)
        except BadInput as exc:
            raise NotFound(exc.message) from None

    # -- the session composer ----------------------------------------------------------------

    async def composer_page(self, request: Request) -> Response:
        name = request.query_params.get("name", "")
        if name:
            path = folders.session_path(self.folder, name)
            if not path.is_file():
                raise NotFound(f"no session file sessions/{name}.toml")
            c = composer.from_toml(path.read_text(encoding="utf-8"), self.folder, name)
        else:
            c = composer.Composer()
            composer.apply(c, "add", "breathing", self.folder)
        return self.composer_view(c, {})

    async def composer_post(self, request: Request) -> Response:
        form = await request.form()
        values, flags = _values(form)
        c = composer.from_form(values, flags)
        action = values.get("action", "")
        if action.split(":")[0] in ("add", "up", "down", "remove"):
            composer.apply(c, action, values.get("new_part", ""), self.folder)
            return self.composer_view(c, {})
        errors = composer.check(c, self.folder)
        if errors:
            return self.composer_view(c, errors, status=400)
        shown, errors = self.check_session(c, keep=action in ("save", "render"))
        if errors:
            return self.composer_view(c, errors, status=400)
        if action == "render":
            path = folders.session_path(self.folder, c.file_name)
            job = self.start(c.file_name, str(path), {}, None, {**c.render})
            return RedirectResponse(f"/jobs/{job.id}", status_code=303)
        note = f"Saved as sessions/{c.file_name}.toml" if action == "save" else ""
        return self.composer_view(c, {}, shown=shown, note=note)

    async def composer_upload(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return self.composer_view(composer.Composer(), {"": "choose a session file (.toml) to load"}, status=400)
        data = await upload.read(security.MAX_BODY + 1)
        stem = Path(upload.filename or "session").stem
        try:
            c = composer.from_toml(data.decode("utf-8-sig"), self.folder, stem)
        except (BadInput, UnicodeDecodeError) as exc:
            message = exc.message if isinstance(exc, BadInput) else "the file is not UTF-8 text"
            return self.composer_view(composer.Composer(), {"": message}, status=400)
        return self.composer_view(c, {}, note="Loaded; save to keep it in this folder.")

    def check_session(self, c: composer.Composer, *, keep: bool) -> tuple[Preview | None, dict[str, str]]:
        """The session file written and read back as the CLI reads it; kept as sessions/NAME.toml if `keep`."""
        target = folders.session_path(self.folder, c.file_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_name(target).with_suffix(".toml")
        named = f"sessions/{c.file_name}.toml"
        try:
            temp.write_text(composer.to_toml(c, self.folder), encoding="utf-8")
            shown = preview(RenderRequest(str(temp)))
            if keep:
                os.replace(temp, target)
            return replace(shown, warnings=tuple(w.replace(str(temp), named) for w in shown.warnings)), {}
        except GuidedAudioError as exc:
            return None, {"": str(exc).replace(str(temp), named)}
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()

    def composer_view(self, c: composer.Composer, errors: dict[str, str], status: int = 200,
                      shown: Preview | None = None, note: str = "") -> HTMLResponse:
        parts = []
        for i, part in enumerate(c.parts):
            p = composer.prefix(i)
            try:
                practice = folders.load_practice(self.folder, part.key)
            except BadInput as exc:
                errors = {**errors, p + "practice": exc.message}
                continue
            fields = forms.fields(practice, {p + k: v for k, v in part.values.items()}, prefix=p,
                                  skip=composer.COUPLE_PARAMS)
            parts.append({"index": i, "key": part.key, "practice": practice,
                          "fields": forms.with_errors(fields, errors, prefix=p), "error": errors.get(p + "practice", "")})
        return self.page("session.html", status, c=c, parts=parts, errors=errors, flags=forms.flags(None, c.health),
                         choices=folders.practice_choices(self.folder), preview=shown, note=note,
                         private=composer.PRIVATE, lists=composer.COUPLE_LISTS)

    # -- renders --------------------------------------------------------------------------------

    def start(self, slug_source: str, spec: str, settings: dict[str, str], minutes: float | None,
              options: dict[str, str]) -> jobs.Job:
        """Start a render into renders/SLUG-TIME/SLUG.mp3: the name comes from a slug, never typed text."""
        base = folders.slug(slug_source, "render")
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"{base}-{stamp}"
        n = 1
        while (self.folder / folders.RENDERS / name).exists():
            n += 1
            name = f"{base}-{stamp}-{n}"
        out = folders.inside(self.folder, Path(folders.RENDERS) / name / f"{base}.mp3")
        out.parent.mkdir(parents=True)
        request = {"practice": spec, "settings": settings, "minutes": minutes, "output": str(out),
                   "voice": options.get("voice", ""), "ambient": options.get("ambient", "")}
        return self.jobs.start(name, request)

    async def job_page(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            raise NotFound("no such render")
        return self.page("job.html", job=job)

    async def job_state(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            raise NotFound("no such render")
        return JSONResponse(job.public())

    async def render_file(self, request: Request) -> Response:
        found = folders.find_render(self.folder, request.path_params["name"])
        wanted = request.path_params.get("file", "player.html")
        path = next((p for p in found.files if p.name == wanted), None) if found else None
        if found is None or path is None:
            raise NotFound("no such file")
        path = folders.inside(self.folder, path)
        if request.query_params.get("download"):
            return FileResponse(path, filename=path.name, content_disposition_type="attachment")
        if path.suffix == ".html":
            page = path.read_text(encoding="utf-8")
            return HTMLResponse(page, headers={"content-security-policy": security.inline_csp(page)})
        return FileResponse(path)


class NotFound(Exception):
    """A page for something the folder does not hold."""


def _values(form: FormData) -> tuple[dict[str, str], list[str]]:
    """A form's text fields (the last of each name) and its ticked health flags."""
    values = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "health"}
    flags = [v for v in form.getlist("health") if isinstance(v, str) and v in health.FLAGS]
    return values, flags


async def _not_found(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(str(exc) or "not found", status_code=404)


async def _bad_input(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"error: {exc}", status_code=400)


async def _too_large(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"The upload is larger than {security.MAX_BODY >> 10} KiB.", status_code=413)


def create_app(folder: Path, *, token: str, port: int) -> ASGIApp:
    """The studio for `folder`, behind its guard (see security.py)."""
    studio = Studio(folder)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        studio.jobs.stop_all()

    app = Starlette(
        routes=[
            Route("/", studio.index),
            Route("/practice/{key}", studio.practice),
            Route("/practice/{key}/preview", studio.practice_preview, methods=["POST"]),
            Route("/practice/{key}/render", studio.practice_render, methods=["POST"]),
            Route("/session", studio.composer_page),
            Route("/session", studio.composer_post, methods=["POST"]),
            Route("/session/upload", studio.composer_upload, methods=["POST"]),
            Route("/jobs/{job}", studio.job_page),
            Route("/jobs/{job}/state", studio.job_state),
            Route("/renders/{name}/", studio.render_file),
            Route("/renders/{name}/{file}", studio.render_file),
            Mount("/static", StaticFiles(directory=STUDIO_DATA / "static"), name="static"),
        ],
        exception_handlers={NotFound: _not_found, BadInput: _bad_input, security.TooLarge: _too_large},
        lifespan=lifespan,
    )
    return Guard(app, token=token, port=port)

