"""Tracked datasets: every path runs read or wrote, and the versions of one path with their runs.

Only runs in experiments the user may see count, as in the REST route ``GET /api/v1/datasets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mltrail.access import allow, visible_experiment, visible_experiment_ids
from mltrail.entities import DatasetRef, DatasetUse
from mltrail.errors import NotFound
from mltrail.ui.app import State, Who, render

router = APIRouter(include_in_schema=False)


def human_size(n: int | None) -> str:
    """A byte count as ``512 B``, ``1.5 KB``, ``12 MB`` (powers of 1024, as ``du -h``)."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


@dataclass
class Version:
    """One version of a dataset path and the runs that read or wrote it."""

    ref: DatasetRef
    first_seen: int
    last_seen: int
    consumed: list[DatasetUse] = field(default_factory=list)
    produced: list[DatasetUse] = field(default_factory=list)


def versions_of(uses: list[DatasetUse]) -> list[Version]:
    """Group a path's uses by version hash, the most recently used version first."""
    found: dict[str, Version] = {}
    for use in uses:
        ver = found.get(use.dataset.hash)
        if ver is None:
            ver = found[use.dataset.hash] = Version(use.dataset, use.timestamp, use.timestamp)
        ver.first_seen = min(ver.first_seen, use.timestamp)
        ver.last_seen = max(ver.last_seen, use.timestamp)
        (ver.consumed if use.direction == "input" else ver.produced).append(use)
    return sorted(found.values(), key=lambda x: (x.last_seen, x.ref.hash), reverse=True)


@router.get("/datasets")
def datasets_page(request: Request, who: Who, state: State, q: str = "") -> Response:
    """Every tracked dataset path with its version count, latest version and runs."""
    allow(who, "read")
    found = state.store.list_datasets(visible_experiment_ids(who, state.store))
    needle = q.strip().lower()
    if needle:
        found = [d for d in found if needle in d.path.lower()]
    return render(request, "datasets.html", area="datasets", datasets=found, q=q, size=human_size)


@router.get("/datasets/{path:path}")
def dataset_page(request: Request, path: str, who: Who, state: State) -> Response:
    """The versions of a dataset path: hash, files, size, when seen, the runs that used them."""
    allow(who, "read")
    uses = [
        u
        for u in state.store.find_dataset_uses(path=path)
        if visible_experiment(who, u.experiment_id)
    ]
    if not uses:
        raise NotFound(
            f"no run read or wrote a dataset at {path!r}",
            hint="Runs record datasets with log_input / log_output; see the datasets list.",
        )
    versions = versions_of(uses)
    return render(
        request,
        "dataset.html",
        area="datasets",
        path=path,
        versions=versions,
        runs=len({u.run_id for u in uses}),
        selected=request.query_params.get("hash", ""),
        size=human_size,
    )
