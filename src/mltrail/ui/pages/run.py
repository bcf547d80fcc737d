"""One run: what it is, its params, metrics (with charts), tags, code, environment, datasets,
models made from it, and its artifacts (browsed by folder, previewed, downloaded).

Artifacts are served from the object store by their recorded hash, never by a path on disk, so
an artifact path can only name one of the run's own files. Downloads are attachments with
``nosniff``; only raster images and SVG are ever served inline (for ``<img>`` previews), and SVG,
which can carry script, comes with ``Content-Security-Policy: sandbox`` so that opening it
directly runs nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from mltrail import validation as v
from mltrail.access import allow_run, visible_versions
from mltrail.entities import FileInfo
from mltrail.errors import MltrailError, NotFound
from mltrail.server.app import ServerState
from mltrail.tracking import capture as c
from mltrail.tracking.liveness import shown
from mltrail.ui.app import State, Who, render
from mltrail.ui.pages.datasets import human_size

router = APIRouter(include_in_schema=False)

#: At most this much of a file is read for a preview (the rest is a download away).
PREVIEW_BYTES = 1 << 20
#: Rows of a CSV file shown as a table.
CSV_ROWS = 100
#: Lines of the captured package list shown on the page.
PACKAGES_SHOWN = 2000

#: Images previewed inline, by extension. Anything else is only ever an attachment.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
#: Served with an SVG: no script, no fetches, only its own inline styles.
_SVG_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
_CSV = {".csv": ",", ".tsv": "\t"}
_CHUNK = 1 << 20


# -- the page ------------------------------------------------------------------------------------


@router.get("/runs/{run_id}")
def run_page(
    request: Request, run_id: str, who: Who, state: State, path: str = "", file: str = ""
) -> Response:
    """A run's page; ``path`` opens an artifact folder, ``file`` previews one artifact."""
    allow_run(who, state.store, run_id, "read")
    run = state.store.get_run(run_id)
    info = run.info
    try:
        experiment = state.store.get_experiment(info.experiment_id)
    except NotFound:  # a run always has one; this only guards a damaged store
        experiment = None
    files = state.store.list_artifacts(run_id)
    folder = v.check_artifact_path(path) if path.strip("/") else ""
    preview = None
    if file:
        found = _artifact(files, v.check_artifact_path(file))
        folder = os.path.dirname(found.path)
        preview = preview_of(state, run_id, found)
    by_path = {f.path: f for f in files}
    tags = run.data.tags
    return render(
        request,
        "run.html",
        area="experiments",
        run=run,
        run_id=run_id,
        info=info,
        seen=shown(run),
        experiment=experiment,
        params=sorted(run.data.params.items()),
        metrics=sorted(run.data.metrics.items()),
        user_tags=sorted((k, x) for k, x in tags.items() if not k.startswith(c.PREFIX)),
        system_tags=sorted((k, x) for k, x in tags.items() if k.startswith(c.PREFIX)),
        code=_code(tags, by_path),
        env=_environment(state, tags, by_path),
        datasets=state.store.get_run_datasets(run_id),
        models=visible_versions(who, state.store.find_model_versions(run_id=run_id)),
        folder=folder,
        crumbs=_crumbs(folder),
        listing=listing(files, folder),
        artifact_count=len(files),
        artifact_bytes=sum(f.size for f in files),
        preview=preview,
        size=human_size,
        chart_data={"run_id": run_id, "keys": sorted(run.data.metrics)},
    )


def _code(tags: dict[str, str], files: dict[str, FileInfo]) -> dict[str, Any]:
    """The run's code version from its system tags; the diff artifact if it recorded one."""
    return {
        "commit": tags.get(c.TAG_GIT_COMMIT),
        "branch": tags.get(c.TAG_GIT_BRANCH),
        "dirty": tags.get(c.TAG_GIT_DIRTY),
        "repo": tags.get(c.TAG_GIT_REPO),
        "command": tags.get(c.TAG_COMMAND),
        "entry_point": tags.get(c.TAG_ENTRY_POINT),
        "diff": files.get(c.DIFF_ARTIFACT),
    }


def _environment(state: ServerState, tags: dict[str, str], files: dict[str, FileInfo]) -> Any:
    """Python and platform from the tags; the package list if the run captured one."""
    packages: list[str] | None = None
    info = files.get(c.REQUIREMENTS_ARTIFACT)
    if info is not None:
        try:
            text, _ = _read_head(state, info.hash, PREVIEW_BYTES)
            packages = [p for p in text.decode("utf-8", "replace").splitlines() if p.strip()]
        except (MltrailError, OSError):  # a missing object must not take the page down
            packages = None
    return {
        "python": tags.get(c.TAG_PYTHON),
        "platform": tags.get(c.TAG_PLATFORM),
        "packages": packages[:PACKAGES_SHOWN] if packages is not None else None,
        "packages_total": len(packages) if packages is not None else 0,
        "requirements": info,
    }


# -- artifact folders ----------------------------------------------------------------------------


@dataclass
class Folder:
    """A folder inside the current one: its name, path, and what lies under it."""

    name: str
    path: str
    files: int = 0
    size: int = 0


@dataclass
class Listing:
    """What one artifact folder holds: folders first, then files, each by name."""

    folders: list[Folder] = field(default_factory=list)
    files: list[tuple[str, FileInfo]] = field(default_factory=list)


def listing(files: list[FileInfo], folder: str) -> Listing:
    """The immediate contents of ``folder`` ('' for the top) among a run's artifact files."""
    prefix = folder + "/" if folder else ""
    out = Listing()
    folders: dict[str, Folder] = {}
    for f in files:
        if not f.path.startswith(prefix):
            continue
        rest = f.path[len(prefix) :]
        head, sep, _ = rest.partition("/")
        if sep:
            sub = folders.setdefault(head, Folder(head, prefix + head))
            sub.files += 1
            sub.size += f.size
        else:
            out.files.append((rest, f))
    if folder and not folders and not out.files:
        raise NotFound(
            f"the run has no artifact folder {folder!r}",
            hint="Pick a folder from the run's artifact list.",
        )
    out.folders = sorted(folders.values(), key=lambda d: d.name)
    out.files.sort(key=lambda item: item[0])
    return out


def _crumbs(folder: str) -> list[tuple[str, str]]:
    """(name, path) of each folder from the top down to ``folder``."""
    parts = folder.split("/") if folder else []
    return [(p, "/".join(parts[: i + 1])) for i, p in enumerate(parts)]


def _artifact(files: list[FileInfo], path: str) -> FileInfo:
    """The run's artifact file at ``path`` (already checked), else NotFound."""
    for f in files:
        if f.path == path:
            return f
    raise NotFound(
        f"the run has no artifact file {path!r}",
        hint="Pick a file from the run's artifact list.",
    )


def _find(state: ServerState, run_id: str, path: str) -> FileInfo:
    clean = v.check_artifact_path(path)
    return _artifact(state.store.list_artifacts(run_id, clean), clean)


# -- previews ------------------------------------------------------------------------------------


@dataclass
class Preview:
    """How one artifact file is shown: ``kind`` is image, csv, json, text, binary or error."""

    info: FileInfo
    kind: str
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)
    truncated: bool = False
    message: str = ""

    @property
    def name(self) -> str:
        """The file's name without its folder."""
        return os.path.basename(self.info.path)


def preview_of(state: ServerState, run_id: str, info: FileInfo) -> Preview:
    """Read the start of an artifact and decide how to show it (capped at PREVIEW_BYTES)."""
    ext = os.path.splitext(info.path)[1].lower()
    if ext in IMAGE_TYPES:
        return Preview(info, "image")
    try:
        head, truncated = _read_head(state, info.hash, PREVIEW_BYTES)
    except (MltrailError, OSError) as exc:
        return Preview(info, "error", message=f"cannot read this file: {exc}")
    if b"\0" in head[:8192]:
        return Preview(info, "binary")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(head) - 3:  # a character cut in two by the cap
            text = head[: exc.start].decode("utf-8")
        else:
            return Preview(info, "binary")
    if ext in _CSV:
        rows = []
        reader = csv.reader(io.StringIO(text), delimiter=_CSV[ext])
        try:
            for row in reader:
                rows.append(row)
                if len(rows) > CSV_ROWS:  # the header and CSV_ROWS rows
                    break
        except csv.Error:
            return Preview(info, "text", text=text, truncated=truncated)
        more = truncated or len(rows) > CSV_ROWS
        return Preview(info, "csv", rows=rows[: CSV_ROWS + 1], truncated=more)
    if ext == ".json" and not truncated:
        try:
            pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return Preview(info, "text", text=text, message="not valid JSON; shown as text")
        return Preview(info, "json", text=pretty)
    return Preview(info, "text", text=text, truncated=truncated)


def _read_head(state: ServerState, hash: str, limit: int) -> tuple[bytes, bool]:
    """The first ``limit`` bytes of an object, and whether there was more."""
    with state.objects.open(hash) as stream:
        data = stream.read(limit + 1)
    return data[:limit], len(data) > limit


@router.get("/runs/{run_id}/artifacts/preview")
def artifact_preview(request: Request, run_id: str, path: str, who: Who, state: State) -> Response:
    """The preview of one artifact file as an HTML fragment (the run page inserts it)."""
    allow_run(who, state.store, run_id, "read")
    info = _find(state, run_id, path)
    return render(
        request,
        "_artifact_preview.html",
        preview=preview_of(state, run_id, info),
        run_id=run_id,
        size=human_size,
    )


@router.get("/runs/{run_id}/artifacts/raw")
def artifact_raw(
    request: Request, run_id: str, path: str, who: Who, state: State, inline: bool = False
) -> Response:
    """One artifact file's bytes: an attachment, or inline for an image preview."""
    allow_run(who, state.store, run_id, "read")
    info = _find(state, run_id, path)
    # A path can be logged again with other bytes, so the browser asks each time; the content
    # hash is the ETag, so unchanged bytes are not sent twice.
    etag = f'"{info.hash}"'
    cache = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=cache)
    name = os.path.basename(info.path)
    headers = {"X-Content-Type-Options": "nosniff", "Content-Length": str(info.size), **cache}
    image = IMAGE_TYPES.get(os.path.splitext(name)[1].lower())
    if inline and image:
        media = image
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(name)}"
        if media == "image/svg+xml":
            # SVG may hold script: opened directly it runs in a sandbox with no script at all.
            headers["Content-Security-Policy"] = _SVG_POLICY
    else:
        media = "application/octet-stream"
        headers["Content-Disposition"] = _attachment(name)
    stream = state.objects.open(info.hash)  # opened here, so a missing object is a clean 404
    return StreamingResponse(_chunks(stream), media_type=media, headers=headers)


def _attachment(name: str) -> str:
    """A Content-Disposition naming ``name`` safely (ASCII fallback plus RFC 5987 UTF-8)."""
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def _chunks(stream: Any) -> Iterator[bytes]:
    """The stream's bytes in 1 MB pieces, closing it at the end."""
    try:
        while chunk := stream.read(_CHUNK):
            yield chunk
    finally:
        stream.close()
