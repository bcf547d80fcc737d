"""Every version of the ``.dvc`` and ``dvc.lock`` files in Git, as mltrail pointers.

The raw log of all refs (branches, tags, ``refs/exps``) names each version (blob) those files ever
had. Each blob is parsed once; a ``dvc.lock`` takes the wdir and cache flags of its stages from the
``dvc.yaml`` of the first commit that has it. Its outs' objects are converted like the current
ones, and the blob's translation goes into ``.mltrail/imported-pointers.json``
(:mod:`mltrail.data.imported`), which is how ``open(rev=…)``, ``data diff`` and ``data log`` see
revisions from before the cutover. Versions whose objects are nowhere are listed, not fatal.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.data.git import GitRepo, raw_log_z
from mltrail.data.imported import ImportedBlob, read_imported, write_imported
from mltrail.errors import MltrailError
from mltrail.importers.dvc_files import (
    LOCK_NAME,
    YAML_NAME,
    DvcOut,
    load_yaml,
    parse_dvc_file,
    parse_lock,
    repo_path,
)
from mltrail.importers.dvc_objects import ObjectProblem
from mltrail.importers.dvc_yaml import DEFAULT_PARAMS, parse_pipeline
from mltrail.importers.report import Skipped

if TYPE_CHECKING:
    from mltrail.importers.dvc import _Import


def dvc_file_versions(git: GitRepo) -> list[tuple[str, str, str]]:
    """Return ``(blob, path, first commit seen)`` of every version of a ``.dvc``/``dvc.lock``."""
    out = git._git(
        "log",
        "--all",
        "-m",
        "--raw",
        "-z",  # paths as they are: quoted ones (non-ASCII) would match no file
        "--no-abbrev",
        "--format=\x1e%H",
        "--",
        "*.dvc",
        "*" + LOCK_NAME,
        what="read the history of the DVC files",
    )
    seen: dict[str, tuple[str, str, str]] = {}
    for commit, changes in raw_log_z(out):
        for blob, path in changes:
            name = posixpath.basename(path)
            if set(blob) == {"0"} or not path.startswith(git.prefix):
                continue
            if not (name == LOCK_NAME or (name.endswith(".dvc") and name != ".dvc")):
                continue
            if "/.dvc/" in f"/{path}":
                continue
            # The log is newest first: the last commit seen is the oldest one with the blob.
            seen[blob] = (blob, path, commit.strip())
    return list(seen.values())


def import_history(job: _Import) -> None:
    """Record every historical version of the DVC files; convert the objects found."""
    git = job.git()
    if git is None:
        job.report.notes.append("not a Git repository with commits: no history to import")
        return
    table = read_imported(job.project.dir)
    versions = [v for v in dvc_file_versions(git) if v[0] not in table]
    if not versions:
        job.report.history_versions = sum(len(t.pointers) for t in table.values())
        return
    texts = git._cat_objects([b for b, _, _ in versions])
    batch: list[tuple[DvcOut, Path | None, str]] = []
    owners: list[tuple[str, str]] = []  # (blob, path relative to the file's folder)
    found: dict[str, ImportedBlob] = {}
    labels: dict[str, str] = {}
    for blob, path, commit in versions:
        text = texts.get(blob)
        if text is None:
            continue
        folder = posixpath.dirname(path)
        label = f"{path[len(git.prefix) :]} at {commit[:7]}"
        labels[blob] = label
        try:
            outs = _outs_of(git, path, commit, text, label)
        except MltrailError as e:
            job.report.unavailable.append(_skipped(label, e.message))
            continue
        found[blob] = ImportedBlob("dvc", [path])
        for rel, out in outs:
            ws = job.root / posixpath.join(folder[len(git.prefix) :], rel)
            batch.append((out, ws, f"{label}: {rel}"))
            owners.append((blob, rel))
    results = job.objects.convert_outs(batch)
    for (blob, rel), (_, _, what), got in zip(owners, batch, results, strict=True):
        if isinstance(got, ObjectProblem):
            found[blob].missing[rel] = got.message
            job.report.unavailable.append(_skipped(what, got.message))
        else:
            found[blob].pointers[rel] = got
    table.update(found)
    job.report.history_versions = sum(len(t.pointers) for t in table.values())
    if not job.dry_run and write_imported(job.project.dir, table):
        from mltrail.data.imported import IMPORTED_FILE

        job.changed(job.project.dir / IMPORTED_FILE)
        git._imported = None  # read the new table when runs and versions resolve revisions


def _skipped(what: str, why: str) -> Skipped:
    return Skipped(what, why)


def _outs_of(
    git: GitRepo, path: str, commit: str, text: bytes, label: str
) -> list[tuple[str, DvcOut]]:
    """Return ``(path relative to the file's folder, out)`` of the cached outs of one version."""
    if posixpath.basename(path) != LOCK_NAME:
        parsed = parse_dvc_file(text, label)
        folder = posixpath.dirname(path[len(git.prefix) :])
        outs = []
        for o in parsed.outs:
            if o.cache and o.md5:
                # Checked against the repository root, kept relative to the file's folder.
                full = repo_path(folder, parsed.wdir, o.path, label)
                outs.append((posixpath.relpath(full, folder or "."), o))
        return outs
    lock = parse_lock(text, label)
    folder = posixpath.dirname(path)
    stages = _stages_at(git, commit, folder)
    out = []
    for name, locked in lock.items():
        stage = stages.get(name)
        wdir = stage.wdir if stage is not None else "."
        cached = {o.path for o in stage.outs if o.cache} if stage is not None else None
        for o in locked.outs:
            full = repo_path(posixpath.dirname(path[len(git.prefix) :]), wdir, o.path, label)
            rel = posixpath.relpath(full, posixpath.dirname(path[len(git.prefix) :]) or ".")
            # Without the dvc.yaml of that time, an out counts as data only when it is cached
            # somewhere (uncached outs and metrics live in Git and are no data version).
            if o.md5 and (cached is None or rel in cached):
                out.append((rel, o))
    return out


def _stages_at(git: GitRepo, commit: str, folder: str) -> dict[str, Any]:
    """Return the expanded stages of the dvc.yaml beside a dvc.lock at ``commit`` (by name)."""
    prefix = f"{folder}/" if folder else ""
    spec = f"{commit}:{prefix}{YAML_NAME}"
    raw = git._cat_objects([spec]).get(spec)
    if raw is None:
        return {}
    cache: dict[str, Any] = {}

    def read_file(rel: str) -> dict[str, Any] | None:
        from mltrail.pipeline.params import parse_bytes

        if rel not in cache:
            s = f"{commit}:{prefix}{rel}"
            data = git._cat_objects([s]).get(s)
            try:
                suffix = Path(rel).suffix or ".yaml"
                cache[rel] = None if data is None else parse_bytes(data, suffix, rel, "")
            except MltrailError:
                cache[rel] = None
        return cache[rel]

    try:
        doc = load_yaml(raw, f"{YAML_NAME} at {commit[:7]}")
    except MltrailError:
        return {}
    read_file(DEFAULT_PARAMS)
    return {s.name: s for s in parse_pipeline(doc, ".", read_file).stages}


__all__ = ["dvc_file_versions", "import_history"]
