"""What runs on a cluster's workers: the check of what a worker renders with, and one item rendered.

Both are plain functions of this package, so a worker needs guided-audio installed (the
same version as the client, which `environment` lets the client check). A worker renders
an item into a private folder of its own and returns the finished files; nothing it
writes is ever published by it, so a worker that dies mid-item leaves nothing behind
that the build would take for a result.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from guided_audio import publish
from guided_audio.build import worker
from guided_audio.build.manifest import Item
from guided_audio.errors import GuidedAudioError

WORK = ".guided-audio-work"  # with shared storage: the workers' private folders inside the library folder
PRIVATE_PREFIX = "guided-audio-build-"  # + "PID-": a worker's private folder for one item
LOCAL_KEYS = {"model", "model_mtime", "folder", "recordings"}  # voice identity that is about this machine's files


def environment(voices: list[str | None], targets: list[str]) -> dict[str, Any]:
    """What this machine renders with: the package version, voices, built-in sounds and the manifest's sources."""
    import guided_audio

    return {**_installation(tuple(voices)), "version": guided_audio.__version__,  # read anew: cheap, and it decides
            "sources": {target: source_digest(target) for target in targets}}


@functools.lru_cache(maxsize=8)
def _installation(voices: tuple[str | None, ...]) -> dict[str, Any]:
    from guided_audio import sounds, speech

    installed = sorted(f"{name}:{v.id}" for name in speech.engine_names() for v in speech.get_engine(name).voices())
    identities: dict[str, dict[str, str] | str] = {}
    for voice in voices:
        engine, voice_id = speech.split_voice(voice or speech.default_voice())
        try:
            found = speech.get_engine(engine).identity(voice_id)
            identities[voice or ""] = {k: v for k, v in found.items() if k not in LOCAL_KEYS}
        except GuidedAudioError as exc:
            identities[voice or ""] = f"not usable: {exc}"
    return {
        "default voice": speech.default_voice(),
        "voices": installed,
        "voice identities": identities,
        "sounds": {p.name: _digest([p]) for p in sorted(sounds.library_dir().glob("*.flac"))},
    }


def source_digest(target: str) -> str:
    """A hash of the template and session files a target is made from ('missing' if they cannot be read)."""
    from guided_audio.build.fingerprint import sources

    try:
        return _digest(sources(target))
    except (GuidedAudioError, OSError):
        return "missing"


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def differences(mine: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """The first way a worker's environment differs from the client's, in words; None if it does not."""
    if theirs.get("version") != mine["version"]:
        return f"has guided-audio {theirs.get('version')}, this machine {mine['version']}"
    if theirs.get("default voice") != mine["default voice"]:
        return f"would speak with {theirs.get('default voice')} by default, this machine with {mine['default voice']}"
    missing = sorted(set(mine["voices"]) - set(theirs.get("voices", [])))
    extra = sorted(set(theirs.get("voices", [])) - set(mine["voices"]))
    if missing or extra:
        return "has other voices than this machine (" + "; ".join(
            part for part in (f"missing {', '.join(missing[:3])}" if missing else "",
                              f"extra {', '.join(extra[:3])}" if extra else "") if part) + ")"
    for voice, identity in mine["voice identities"].items():
        if theirs.get("voice identities", {}).get(voice) != identity:
            return f"has another build of the voice {voice or mine['default voice']}"
    for name, digest in mine["sounds"].items():
        if theirs.get("sounds", {}).get(name) != digest:
            return f"has another built-in sound {name}"
    for target, digest in mine.get("sources", {}).items():
        if digest != "missing" and theirs.get("sources", {}).get(target) != digest:
            return (f"does not have {target} as this machine has it; the manifest's templates and session files "
                    "must be at the same paths on every worker")
    return None


def render(item: Item, root: str, cache_dir: str | None, expected: dict[str, Any], shared: bool) -> dict[str, Any] | str:
    """Render one item on a worker; its summary with the finished files, or the error's message.

    The item is rendered into a private folder: one on this machine whose files come back
    as bytes, or (`shared`) one inside the library folder that the client reads in place.
    The summary's "files" lists (path relative to the library folder, bytes or the
    temporary file's path) for the client to publish.
    """
    mine = {**expected, "sources": {item.target: expected["sources"].get(item.target, "missing")}}
    problem = differences(mine, environment([v or None for v in expected["voice identities"]], [item.target]))
    if problem is not None:
        return f"the worker {_address()} {problem}"
    private = _private_folder(Path(root) / WORK if shared else Path(tempfile.gettempdir()))
    try:
        summary = worker.render_item(item, str(private), cache_dir)
        if isinstance(summary, str):
            return summary
        pairs = [(Path(temp), Path(target)) for temp, target in summary.pop("publish")]
        files: list[tuple[str, bytes | str]] = [
            (target.relative_to(private).as_posix(), str(temp) if shared else temp.read_bytes())
            for temp, target in pairs]
        return {**summary, "files": files, "folder": str(private) if shared else None}
    finally:
        if not shared:
            shutil.rmtree(private, ignore_errors=True)


def _address() -> str:
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # not in a worker
        return "(unknown)"


def _private_folder(base: Path) -> Path:
    """A new folder for one item, named by this process; those of processes gone are removed first."""
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            pid = entry.name[len(PRIVATE_PREFIX):].split("-", 1)[0]
            if (entry.name.startswith(PRIVATE_PREFIX) and pid.isdigit() and not publish.alive(int(pid))
                    and base == Path(tempfile.gettempdir())):  # in a shared folder, another machine's pid means nothing
                shutil.rmtree(entry, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-", dir=base))
