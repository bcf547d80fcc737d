"""Registered models: the list, one model, one version, and moving or removing aliases.

The pages read the registry through the store the server serves and check permissions as the
REST routes in ``server/routes/registry.py`` do: ``allow`` before anything is read or changed,
``visible_model`` for listings, and ``actor`` for the name written into the audit trail. A
source run in an experiment the user may not see shows as its id only.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mltrail import validation as v
from mltrail.access import Principal, actor, allow, visible_experiment, visible_model
from mltrail.entities import ModelVersion, Run
from mltrail.errors import (
    MltrailError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from mltrail.server.app import ServerState
from mltrail.ui.app import State, Who, can, render
from mltrail.ui.pages.datasets import human_size

router = APIRouter(include_in_schema=False)

#: Most metric columns the versions table shows (the version page shows them all).
MAX_METRIC_COLUMNS = 8
#: Audit events shown on a model's page, newest first.
HISTORY_LIMIT = 200

#: How each audit action reads in the history table.
ACTIONS = {
    "create_model": "created the model",
    "update_model": "changed the description",
    "rename_model": "renamed the model",
    "delete_model": "deleted the model",
    "set_model_tag": "set a model tag",
    "delete_model_tag": "removed a model tag",
    "create_version": "registered a version",
    "update_version": "changed a version's description",
    "set_version_tag": "set a version tag",
    "delete_version_tag": "removed a version tag",
    "delete_version": "deleted a version",
    "set_alias": "set an alias",
    "delete_alias": "removed an alias",
    "transition_stage": "changed the stage",
}


async def _form(request: Request) -> dict[str, str]:
    """A posted urlencoded form as {field: first value} (no multipart needed for small forms)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: vals[0] for k, vals in parse_qs(body, keep_blank_values=True).items()}


Form = Annotated[dict[str, str], Depends(_form)]


# -- pages ---------------------------------------------------------------------------------------


@router.get("/models")
def models_page(request: Request, who: Who, state: State, q: str = "") -> Response:
    """Registered models by name, with their latest version, aliases and last update."""
    allow(who, "read")
    found = [m for m in _all_models(state) if visible_model(who, m.name)]
    needle = q.strip().lower()
    if needle:
        found = [
            m for m in found if needle in m.name.lower() or needle in (m.description or "").lower()
        ]
    return render(request, "models.html", area="models", models=found, q=q)


@router.get("/models/{name}")
def model_page(request: Request, name: str, who: Who, state: State) -> Response:
    """One model: its versions with their source runs and metrics, aliases, tags and history."""
    allow(who, "read", model=name)
    return _model_page(request, who, state, name)


@router.get("/models/{name}/versions/{version}")
def version_page(request: Request, name: str, version: str, who: Who, state: State) -> Response:
    """One version: its source run (metrics, params, inputs), files, aliases and stage."""
    allow(who, "read", model=name)
    mv = state.store.get_model_version(name, v.check_version(version))
    return _version_page(request, who, state, mv)


@router.post("/models/{name}/aliases")
def change_alias(request: Request, name: str, form: Form, who: Who, state: State) -> Response:
    """Set, move or remove an alias, as ``PUT``/``DELETE /api/v1/models/{name}/aliases`` do."""
    allow(who, "write", model=name)
    alias = form.get("alias", "").strip()
    comment = form.get("comment", "").strip() or None
    removing = form.get("action") == "remove"
    try:
        v.check_comment(comment)
        if removing:
            state.store.delete_model_alias(name, alias, actor(who, None), comment)
        else:
            number = v.check_version(form.get("version", ""))
            state.store.set_model_alias(
                name, v.check_alias(alias), number, actor(who, None), comment
            )
    except (PermissionDenied, Unauthenticated):
        raise
    except MltrailError as exc:
        # The form again, with what was typed and what is wrong with it.
        failed = {"alias": alias, "version": form.get("version", ""), "comment": comment or ""}
        back = _back(form.get("next", ""), name)
        if back.startswith(f"/models/{quote(name)}/versions/"):
            mv = state.store.get_model_version(name, int(back.rsplit("/", 1)[1]))
            return _version_page(request, who, state, mv, error=exc, form=failed, status=400)
        return _model_page(request, who, state, name, error=exc, form=failed, status=400)
    target = _back(form.get("next", ""), name)
    done = "removed=" if removing else f"version={number}&set="
    return RedirectResponse(f"{target}?{done}{quote(alias, safe='')}", status_code=303)


# -- helpers -------------------------------------------------------------------------------------


def _all_models(state: ServerState) -> list[Any]:
    """Every registered model, following the store's pages."""
    out: list[Any] = []
    token: str | None = None
    while True:
        page = state.store.list_registered_models(None, 1000, token)
        out.extend(page)
        token = page.next_page_token
        if not token:
            return out


def _back(target: str, name: str) -> str:
    """Where to go after a change: the model's page or one of its version pages, nothing else."""
    base = f"/models/{quote(name)}"
    if target == base:
        return target
    prefix = f"{base}/versions/"
    number = target[len(prefix) :]
    if target.startswith(prefix) and number.isascii() and number.isdigit():
        return target
    return base


def _source_runs(
    who: Principal, state: ServerState, versions: list[ModelVersion]
) -> dict[str, Run | None]:
    """The source run of each version by id; None when it is gone or the user may not see it."""
    runs: dict[str, Run | None] = {}
    for mv in versions:
        if not mv.run_id or mv.run_id in runs:
            continue
        try:
            run = state.store.get_run(mv.run_id)
        except NotFound:
            run = None
        if run is not None and not visible_experiment(who, run.info.experiment_id):
            run = None
        runs[mv.run_id] = run
    return runs


def _model_page(
    request: Request,
    who: Principal,
    state: ServerState,
    name: str,
    *,
    error: MltrailError | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    model = state.store.get_registered_model(name)
    versions = state.store.list_model_versions(name, include_deleted=True)
    runs = _source_runs(who, state, versions)
    keys = sorted({k for r in runs.values() if r is not None for k in r.data.metrics})
    events = state.store.get_registry_events(name, limit=HISTORY_LIMIT)
    return render(
        request,
        "model.html",
        status,
        area="models",
        model=model,
        versions=versions,
        active=[mv for mv in versions if mv.lifecycle_stage == "active"],
        runs=runs,
        metric_keys=keys[:MAX_METRIC_COLUMNS],
        more_metrics=max(0, len(keys) - MAX_METRIC_COLUMNS),
        events=events,
        actions=ACTIONS,
        history_limit=HISTORY_LIMIT,
        may_write=can(who, "write", model=name),
        error=error,
        form=form or {},
        notice=_notice(request),
    )


def _version_page(
    request: Request,
    who: Principal,
    state: ServerState,
    mv: ModelVersion,
    *,
    error: MltrailError | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    run = _source_runs(who, state, [mv]).get(mv.run_id or "")
    inputs = state.store.get_run_datasets(run.info.run_id) if run is not None else []
    files, files_error = _files(state, mv)
    model = state.store.get_registered_model(mv.name)
    return render(
        request,
        "model_version.html",
        status,
        area="models",
        model=model,
        mv=mv,
        alias_pairs=[(a, mv.version) for a in sorted(mv.aliases)],
        run=run,
        datasets=inputs,
        files=files,
        files_error=files_error,
        size=human_size,
        may_write=can(who, "write", model=mv.name),
        error=error,
        form=form or {},
        notice=_notice(request),
    )


def _notice(request: Request) -> str | None:
    """The line that confirms a change just made (redirect-after-POST carries it)."""
    query = request.query_params
    if query.get("set"):
        return f"Alias {query['set']} now points at version {query.get('version', '?')}."
    if query.get("removed"):
        return f"Alias {query['removed']} was removed."
    return None


def _files(state: ServerState, mv: ModelVersion) -> tuple[list[dict[str, Any]], str | None]:
    """The version's files as tree rows (folders first at each level), or why they are missing."""
    from mltrail.objects.tree import read_tree

    try:
        tree = read_tree(state.objects, mv.tree_hash)
    except MltrailError as exc:
        return [], exc.message
    return tree_rows([(e.path, e.hash, e.size) for e in tree]), None


def tree_rows(entries: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """Files as an indented listing: one row per folder and file, each with its depth and size."""
    folders: dict[str, int] = {}
    for path, _, size in entries:
        parts = path.split("/")
        for i in range(1, len(parts)):
            key = "/".join(parts[:i])
            folders[key] = folders.get(key, 0) + size
    rows: list[dict[str, Any]] = []
    for key in folders:
        rows.append({"path": key, "dir": True, "size": folders[key], "hash": ""})
    for path, h, size in entries:
        rows.append({"path": path, "dir": False, "size": size, "hash": h})
    # Sorting by path parts puts each folder before its contents; folders before files.
    rows.sort(
        key=lambda r: [
            (0 if (i < len(r["path"].split("/")) - 1 or r["dir"]) else 1, p)
            for i, p in enumerate(r["path"].split("/"))
        ]
    )
    for r in rows:
        r["depth"] = r["path"].count("/")
        r["name"] = r["path"].rsplit("/", 1)[-1]
    return rows
