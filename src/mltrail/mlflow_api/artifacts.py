"""MLflow's artifact calls on mltrail's content-addressed store: list, record, find, delete.

Every file the mlflow client sends is stored once by its BLAKE3 hash and recorded as an artifact
of its run (or as a file of its logged model), exactly as ``mt.log_artifact`` records it, so the
same bytes logged twice take the space of one copy and ``mltrail runs show`` lists them.
Registered versions are read-only: their files are frozen by the version's tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mltrail.entities import FileInfo
from mltrail.errors import InvalidInput, InvalidState, NotFound
from mltrail.mlflow_api import codec
from mltrail.mlflow_api.context import Context
from mltrail.mlflow_api.uris import (
    LOGGED_MODEL,
    RUN,
    ArtifactPath,
    parse_artifact_path,
)


def resolve(ctx: Context, path: str, level: str) -> ArtifactPath:
    """Read an artifact path and check the caller may ``level`` (read/write) what it names."""
    where = parse_artifact_path(path)
    if where.kind == RUN:
        assert where.run_id is not None
        info = ctx.store.get_run_info(where.run_id)
        ctx.access.allow(level, experiment_id=info.experiment_id)
        if where.experiment_id is not None and where.experiment_id != info.experiment_id:
            raise NotFound(f"run {where.run_id} is not in experiment {where.experiment_id}")
    elif where.kind == LOGGED_MODEL:
        assert where.model_id is not None
        model = ctx.store.get_logged_model(where.model_id)
        ctx.access.allow(level, experiment_id=model.experiment_id)
        if where.experiment_id != model.experiment_id:
            raise NotFound(
                f"logged model {model.model_id} is not in experiment {where.experiment_id}"
            )
    else:
        from mltrail.mlflow_api.registry import existing_model

        assert where.name is not None
        ctx.access.allow("read", model=where.name)
        existing_model(ctx, where.name)  # before the store's error, which lists other models
        if level != "read":
            raise InvalidState(
                f"version {where.version} of {where.name} is registered: its files cannot change",
                hint="Log the new files to a run and register them as a new version.",
            )
    return where


def files_of(ctx: Context, where: ArtifactPath) -> list[FileInfo]:
    """The files under ``where`` (the file itself, or everything in the folder), paths relative
    to the root of their run, logged model or version."""
    prefix = where.path or None
    if where.kind == RUN:
        assert where.run_id is not None
        return ctx.store.list_artifacts(where.run_id, prefix)
    if where.kind == LOGGED_MODEL:
        assert where.model_id is not None
        return ctx.store.list_logged_model_files(where.model_id, prefix)
    assert where.name is not None and where.version is not None
    from mltrail.registry.client import tree_files

    version = ctx.store.get_model_version(where.name, where.version)
    rows = tree_files(ctx.objects, version)
    inside = where.path.strip("/")
    return [f for f in rows if not inside or f.path == inside or f.path.startswith(inside + "/")]


def _children(files: Sequence[FileInfo], base: str) -> list[dict[str, Any]]:
    """The entries directly inside folder ``base``: files, and folders once each."""
    prefix = base.strip("/") + "/" if base.strip("/") else ""
    found: dict[str, dict[str, Any]] = {}
    for f in files:
        if not f.path.startswith(prefix):
            continue
        rest = f.path[len(prefix) :]
        head, slash, _ = rest.partition("/")
        if slash:
            found.setdefault(head, codec.file_info(head, True, None))
        else:
            found[head] = codec.file_info(head, False, f.size)
    return [found[k] for k in sorted(found)]


def list_dir(ctx: Context, path: str) -> list[dict[str, Any]]:
    """mlflow-artifacts listing: the entries directly inside ``path`` (names relative to it).

    A run's listing leaves out the folders of its logged models: the mlflow client lists those
    as the models' own files, as MLflow 3 keeps them apart.
    """
    where = resolve(ctx, path, "read")
    files = files_of(ctx, where)
    if len(files) == 1 and files[0].path == where.path:
        return []  # a file, not a folder
    if where.kind == RUN:
        files = _without_models(ctx, where.run_id or "", files)
    return _children(files, where.path)


def list_run(ctx: Context, run_id: str, path: str) -> list[dict[str, Any]]:
    """artifacts/list: a run's entries inside ``path``, paths relative to the run's root."""
    files = ctx.store.list_artifacts(run_id, path.strip("/") or None)
    files = _without_models(ctx, run_id, files)
    base = path.strip("/")
    return [
        {**entry, "path": f"{base}/{entry['path']}" if base else entry["path"]}
        for entry in _children(files, base)
    ]


def _without_models(ctx: Context, run_id: str, files: list[FileInfo]) -> list[FileInfo]:
    info = ctx.store.get_run_info(run_id)
    folders = [
        m.artifact_path + "/"
        for m in ctx.store.list_logged_models([info.experiment_id], run_id=run_id)
        if m.artifact_path
    ]
    if not folders:
        return files
    return [f for f in files if not any(f.path.startswith(p) for p in folders)]


def find_file(ctx: Context, path: str) -> FileInfo:
    """The one file an mlflow-artifacts path names, for download."""
    where = resolve(ctx, path, "read")
    if not where.path:
        raise InvalidInput(f"{path!r} is a folder, not a file; list it instead")
    for f in files_of(ctx, where):
        if f.path == where.path:
            return f
    raise NotFound(f"no artifact at {path!r}")


def record_file(ctx: Context, where: ArtifactPath, hash: str, size: int) -> FileInfo:
    """Record a stored object as the file at ``where`` (replacing what was there)."""
    if not where.path:
        raise InvalidInput("an upload needs a file name after the run's or model's root")
    entry = FileInfo(where.path, hash, size, 0o644)
    if where.kind == RUN:
        assert where.run_id is not None
        ctx.store.add_artifacts(where.run_id, [entry])
    else:
        assert where.kind == LOGGED_MODEL and where.model_id is not None
        ctx.store.add_logged_model_files(where.model_id, [entry])
    return entry


def delete(ctx: Context, path: str) -> int:
    """Forget the file or folder at ``path``; its objects stay until garbage collection."""
    where = resolve(ctx, path, "write")
    if where.kind == RUN:
        assert where.run_id is not None
        return ctx.store.delete_artifacts(where.run_id, where.path)
    assert where.kind == LOGGED_MODEL and where.model_id is not None
    model = ctx.store.get_logged_model(where.model_id)
    if model.run_id is None:
        raise InvalidInput(
            f"the files of logged model {model.model_id} cannot be deleted one by one",
            hint="Delete the logged model instead (DELETE logged-models/<id>).",
        )
    inside = f"{model.artifact_path}/{where.path}".rstrip("/")
    return ctx.store.delete_artifacts(model.run_id, inside)


def join_parts(ctx: Context, where: ArtifactPath, part_hashes: Sequence[str]) -> FileInfo:
    """Complete a multipart upload: the parts (objects), in order, become one file at ``where``."""
    import os
    import tempfile

    from mltrail.objects.hashing import CHUNK_SIZE, check_hash

    hashes = [check_hash(h) for h in part_hashes]
    missing = ctx.objects.missing(hashes)
    if missing:
        raise InvalidInput(
            f"{len(missing)} of the {len(hashes)} parts were never uploaded",
            hint="Upload every part again, then complete the upload.",
        )
    fd, tmp = tempfile.mkstemp(prefix="mltrail-mpu-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for h in hashes:
                with ctx.objects.open(h) as src:
                    while chunk := src.read(CHUNK_SIZE):
                        out.write(chunk)
        info = ctx.objects.put_file(tmp)
    finally:
        os.unlink(tmp)
    return record_file(ctx, where, info.hash, info.size)

