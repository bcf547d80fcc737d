"""Putting a stage's recorded outs back into the workspace from the object store."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mltrail.data.project import Project, ensure_gitignored
from mltrail.errors import InvalidInput
from mltrail.pipeline.spec import Stage
from mltrail.pipeline.stage import Backup, Workspace


def restore_outs(
    project: Project,
    ws: Workspace,
    stage: Stage,
    entry: dict[str, Any],
    *,
    skip: Collection[str] = (),
) -> None:
    """Make the stage's outs and metrics files those of ``entry`` (a run-cache or lock entry).

    The current outs are moved aside first and put back if anything fails, so a restore never
    leaves a half-written out. Every file is verified against its hash as it is placed. Outs in
    ``skip`` are left alone (``cache: false`` outs, which the object store does not hold).
    """
    from mltrail.data.links import current_umask, place
    from mltrail.data.ops import checkout
    from mltrail.data.pointer import Pointer, pointer_path, write_pointer

    items = {i["path"]: i for i in [*entry.get("outs", []), *entry.get("metrics", [])]}
    wanted = [o for o in stage.all_outs() if o.path not in skip]
    outs = [o for o in wanted if o.path in items]
    if len(outs) != len(wanted):
        raise InvalidInput(f"the recorded outs of stage {stage.name!r} do not match its outs")
    paths = [o.path for o in outs]
    ws.forget(paths)
    tmp = project.dir / "tmp" / "restore" / stage.name
    store = project.store()
    with Backup(project.root, tmp, paths) as backup:
        cached = []
        for o in outs:
            item = items[o.path]
            full = project.root / o.path
            if o.cache and o not in stage.metrics:
                kind = "dir" if "nfiles" in item else "file"
                pointer = Pointer(item["hash"], kind, item["size"], item.get("nfiles"))
                write_pointer(pointer_path(full), pointer)
                ensure_gitignored(full)
                cached.append(o.path)
            else:
                full.parent.mkdir(parents=True, exist_ok=True)
                place(
                    store.path_of(item["hash"]),
                    item["hash"],
                    full,
                    link="copy",
                    executable=False,
                    umask=current_umask(),
                )
        if cached:
            checkout(cached, start=project.root, force=True)
        backup.drop()
    ws.forget(paths)


__all__ = ["restore_outs"]
