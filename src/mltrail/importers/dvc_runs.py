"""The executions DVC recorded in Git, as runs: each commit that changed a stage's ``dvc.lock``
entry, and each DVC experiment (``refs/exps/…``: a commit whose parent is its baseline).

One run per (commit, stage whose entry changed from the commit's first parent), in the pipeline's
experiment, as ``mltrail repro`` records a stage: named after the stage, tagged with the stage,
the pipeline, the Git commit (and the experiment's name for ``refs/exps`` commits), with the
lock's params, the numbers of the stage's metrics files at that commit (from Git, or from the
converted DVC object when DVC cached them), its deps and outs as input and output datasets where
that revision's pointers name them, FINISHED at the commit's time. Each run carries the marker
``mltrail.import.dvc = COMMIT:STAGE``: a rerun finds it and adds nothing twice. The marker comes
in the run's last write, with its params and metrics; until then the run has only
``mltrail.import.dvc.pending``, and a rerun moves such a run (an interrupted import's) to the bin
and makes it again.
"""

from __future__ import annotations

import json
import posixpath
from typing import TYPE_CHECKING, Any

from mltrail.data.git import GitRepo
from mltrail.entities import DatasetRef, LifecycleStage, Metric, RunBatch
from mltrail.errors import MltrailError
from mltrail.importers.dvc_files import LOCK_NAME, LockStage, parse_lock

if TYPE_CHECKING:
    from mltrail.importers.dvc import _Import

MARKER = "mltrail.import.dvc"
PENDING = "mltrail.import.dvc.pending"
TAG_EXPERIMENT = "mltrail.dvc.experiment"


def _lock_commits(git: GitRepo, lock: str) -> list[tuple[str, str, int, str]]:
    """Return ``(commit, first parent, time, subject)`` of commits that changed ``lock``."""
    out = git._git(
        "log", "--all", "--format=%H%x1f%P%x1f%ct%x1f%s", "--", lock, what="read dvc.lock's log"
    )
    rows = []
    for line in out.splitlines():
        commit, parents, when, subject = line.split("\x1f", 3)
        rows.append((commit, (parents.split() or [""])[0], int(when), subject))
    return rows


def _experiments(git: GitRepo) -> dict[str, str]:
    """Return ``{commit: experiment name}`` of DVC's experiment refs."""
    out = git._git(
        "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps", what="list experiments"
    )
    found = {}
    for line in out.splitlines():
        commit, _, ref = line.partition(" ")
        parts = ref.split("/")
        # refs/exps/<xx>/<baseline rest>/<name>; refs/exps/exec/... are DVC's own workings.
        if len(parts) >= 5 and parts[2] not in ("exec", "runs", "temp"):
            found[commit] = parts[-1]
    return found


def _entry_key(stage: LockStage) -> str:
    return json.dumps(
        [stage.cmd, [(d.path, d.md5) for d in stage.deps], stage.params,
         [(o.path, o.md5) for o in stage.outs]], sort_keys=True, default=str,
    )  # fmt: skip


def _numbers(doc: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.update(_numbers(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool) and prefix:
        out[prefix] = float(doc)
    return out


def import_runs(job: _Import) -> None:
    """Create the runs of the commits that changed dvc.lock and of DVC's experiments."""
    git = job.git()
    if git is None:
        return
    lock_name = git.prefix + LOCK_NAME
    commits = _lock_commits(git, lock_name)
    if not commits:
        return
    exps = _experiments(git)
    specs = [f"{c}:{lock_name}" for c, _, _, _ in commits]
    specs += [f"{p}:{lock_name}" for _, p, _, _ in commits if p]
    texts = git._cat_objects(specs)

    def lock_at(commit: str) -> dict[str, LockStage]:
        text = texts.get(f"{commit}:{lock_name}")
        if text is None:
            return {}
        try:
            return parse_lock(text, f"{LOCK_NAME} at {commit[:7]}")
        except MltrailError:
            return {}

    todo = []
    for commit, parent, when, subject in commits:
        now, before = lock_at(commit), lock_at(parent) if parent else {}
        for name, stage in now.items():
            old = before.get(name)
            if old is None or _entry_key(old) != _entry_key(stage):
                todo.append((commit, when, subject, name, stage))
    if not todo:
        return
    if job.dry_run:
        job.report.runs_imported = len(todo)
        return
    client = job.client()
    store = client.store
    exp_name = job.pipeline_name()
    exp = store.get_experiment_by_name(exp_name)
    exp_id = exp.experiment_id if exp is not None else store.create_experiment(exp_name)
    # An import killed mid-run left a run without its marker (half made: redone) or one with
    # its marker but still RUNNING (everything written but the end).
    for r in _all_runs(client, exp_id, f"tags.`{PENDING}` != ''"):
        if MARKER not in r.data.tags:
            store.set_run_lifecycle(r.info.run_id, LifecycleStage.DELETED.value)
    marked = _all_runs(client, exp_id, f"tags.`{MARKER}` != ''")
    for r in marked:
        if r.info.status == "RUNNING":
            store.update_run(r.info.run_id, status="FINISHED", end_time=r.info.start_time)
    done = {r.data.tags.get(MARKER) for r in marked}
    for commit, when, _, name, stage in reversed(todo):  # oldest first
        marker = f"{commit}:{name}"
        if marker in done:
            job.report.runs_existing += 1
            continue
        try:
            _one_run(job, git, store, exp_id, exp_name, commit, when, name, stage, exps, marker)
        except MltrailError as e:
            job.skip(f"run of stage {name} at {commit[:7]}", e.message)
            continue
        job.report.runs_imported += 1


def _all_runs(client: Any, exp_id: str, filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([exp_id], filter_string, max_results=1000, page_token=token)
        runs += list(page)
        token = getattr(page, "token", None)
        if not token:
            return runs


def _one_run(
    job: _Import,
    git: GitRepo,
    store: Any,
    exp_id: str,
    pipeline: str,
    commit: str,
    when: int,
    name: str,
    stage: LockStage,
    exps: dict[str, str],
    marker: str,
) -> None:
    from mltrail.pipeline.runner import TAG_PIPELINE, TAG_RESTORED, TAG_STAGE
    from mltrail.pipeline.stage import flat_params
    from mltrail.tracking.capture import TAG_COMMAND, TAG_GIT_COMMIT

    stages = job.stages_at(git, commit)
    spec = stages.get(name)
    wdir = spec.wdir if spec is not None else "."
    cmd = " && ".join(stage.cmd) if isinstance(stage.cmd, list) else str(stage.cmd)
    tags = {
        PENDING: marker,
        TAG_GIT_COMMIT: commit,
        TAG_PIPELINE: pipeline,
        TAG_STAGE: name,
        TAG_COMMAND: cmd,
        TAG_RESTORED: "false",
    }
    run_name = name
    if commit in exps:
        tags[TAG_EXPERIMENT] = exps[commit]
        run_name = f"{exps[commit]}/{name}"
    ms = when * 1000
    run = store.create_run(exp_id, run_name, "dvc", ms, tags=tags)
    run_id = run.info.run_id
    params = {posixpath.normpath(posixpath.join(wdir, f)): dict(v) for f, v in stage.params.items()}
    metrics: dict[str, float] = {}
    for o in spec.outs if spec is not None else []:
        if o.kind == "metrics":
            metrics.update(_numbers(_read_at(job, git, commit, o.path, stage, wdir)))
    pointers = job.pointers_at(commit)

    def refs(items: list[Any], context: str | None = None) -> list[DatasetRef]:
        out = []
        for d in items:
            p = pointers.get(posixpath.normpath(posixpath.join(wdir, d.path)))
            if p is not None:
                path = posixpath.normpath(posixpath.join(wdir, d.path))
                out.append(DatasetRef(path, p.hash, p.kind, p.size, p.nfiles, context))
        return out

    inputs, outputs = refs(stage.deps), refs(stage.outs)
    if inputs:
        store.log_run_datasets(run_id, "input", inputs)
    if outputs:
        store.log_run_datasets(run_id, "output", outputs)
    # The marker last, in the same transaction as params and metrics: a run with it is complete.
    batch = RunBatch(
        run_id,
        [Metric(k, v, ms, 0) for k, v in sorted(metrics.items())],
        flat_params(params),
        {MARKER: marker},
    )
    errors = store.write_batches([batch])
    if errors:
        raise errors[run_id] if run_id in errors else next(iter(errors.values()))
    store.update_run(run_id, status="FINISHED", end_time=ms)


def _read_at(
    job: _Import, git: GitRepo, commit: str, path: str, stage: LockStage, wdir: str
) -> Any:
    """Return a metrics file's parsed content at ``commit``: from Git, else the DVC object."""
    from mltrail.importers.dvc_files import load_yaml

    text = git.file_at(commit, path)
    if text is None:
        for o in stage.outs:
            if posixpath.normpath(posixpath.join(wdir, o.path)) == path and o.md5:
                found = job.objects.lookup(o.md5)
                if found is not None:
                    text = job.objects.store.read_bytes(found.hash)
    if text is None:
        return None
    try:
        return json.loads(text) if path.endswith(".json") else load_yaml(text, path)
    except (ValueError, MltrailError):
        return None


__all__ = ["MARKER", "PENDING", "TAG_EXPERIMENT", "import_runs"]
