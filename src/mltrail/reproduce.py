"""Reproduce a run: its code commit and input data in a temporary Git worktree, its command again.

:func:`reproduce` first refuses what cannot work (no recorded commit, a commit this repository
lacks, uncommitted changes without ``allow_dirty``, no command), then:

1. ``git worktree add --detach`` the run's commit into a temporary folder (with ``allow_dirty``,
   the run's recorded diff is applied on top);
2. gives that worktree a ``.mltrail/`` whose ``objects`` is the project's own cache, and restores
   the run's input versions the commit does not already hold: fetched from the remote when the
   cache lacks them (a missing object is an error naming its dataset, file and hash), their
   pointer files written, checked out;
3. deletes the recorded outputs and runs the command there - the recorded command line, or for
   a pipeline stage's run the stage's ``cmd`` at that commit with the run's params - its output
   streamed to the caller, the tracking store pointed at the project's store so the runs it logs
   are recorded like any other, tagged ``mltrail.reproduce.of = <run id>`` (``record=False``
   sends them to a throwaway store);
4. hashes each output dataset the run recorded and compares it with the recorded version;
5. removes the worktree (unless ``keep``), also when anything above failed.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mltrail.data.git import GitRepo
from mltrail.data.pointer import Pointer, pointer_path, read_pointer, write_pointer
from mltrail.data.project import Project
from mltrail.data.transfer import MissingObject
from mltrail.data.workspace import QUIET, Reporter
from mltrail.entities import DatasetRef
from mltrail.errors import IntegrityError, InvalidInput, InvalidState, MltrailError, NotFound
from mltrail.tracking import capture as cap

if TYPE_CHECKING:
    from mltrail.objects.local import LocalObjectStore
    from mltrail.tracking.client import MltrailClient

PathArg = str | os.PathLike[str]
Verdict = Literal["same", "different", "missing"]

#: Tag on every run the re-run logs: the id of the run it reproduces.
TAG_REPRODUCES = "mltrail.reproduce.of"
#: Lines of the command's output kept for the error message when it fails.
_TAIL_LINES = 20
_GIT_TIMEOUT = 600


@dataclass(frozen=True)
class OutputCheck:
    """One output dataset of the run: the version it recorded and the one the re-run produced."""

    path: str
    kind: str
    recorded: str
    #: None when the re-run did not produce the path.
    reproduced: str | None

    @property
    def verdict(self) -> Verdict:
        """``same``, ``different`` or ``missing``."""
        if self.reproduced is None:
            return "missing"
        return "same" if self.reproduced == self.recorded else "different"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "path": self.path,
            "kind": self.kind,
            "recorded": self.recorded,
            "reproduced": self.reproduced,
            "result": self.verdict,
        }


@dataclass
class Reproduction:
    """What :func:`reproduce` did and found."""

    run_id: str
    commit: str
    #: The command as it was run (paths into the original checkout moved into the worktree).
    command: list[str]
    #: Where it ran, relative to the worktree's top (POSIX, "." for the top).
    cwd: str
    #: True when ``command`` is one shell line (a pipeline stage's command).
    shell: bool = False
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[OutputCheck] = field(default_factory=list)
    #: Objects fetched from the remote before the re-run.
    fetched: int = 0
    #: Runs the re-run logged (tagged mltrail.reproduce.of); empty with record=False.
    recorded_runs: list[str] = field(default_factory=list)
    #: The worktree, when kept; None once removed.
    worktree: str | None = None
    dirty_applied: bool = False
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def all_match(self) -> bool:
        """True when every recorded output hashed the same (vacuously true with none)."""
        return all(o.verdict == "same" for o in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "run_id": self.run_id,
            "commit": self.commit,
            "command": self.command,
            "shell": self.shell,
            "cwd": self.cwd,
            "inputs": [d.to_dict() for d in self.inputs],
            "outputs": [o.to_dict() for o in self.outputs],
            "all_match": self.all_match,
            "fetched": self.fetched,
            "recorded_runs": self.recorded_runs,
            "worktree": self.worktree,
            "dirty_applied": self.dirty_applied,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class _Plan:
    run_id: str
    commit: str
    command: str
    entry_point: str
    dirty: bool
    inputs: list[DatasetRef]
    outputs: list[DatasetRef]
    #: The pipeline stage whose execution the run records (``mltrail.stage``), else None.
    stage: str | None = None
    #: The run's params (a stage run's are the values its command read).
    params: dict[str, str] = field(default_factory=dict)


def reproduce(
    run: str,
    *,
    client: MltrailClient | None = None,
    start: PathArg | None = None,
    keep: bool = False,
    allow_dirty: bool = False,
    record: bool = True,
    remote: str | None = None,
    jobs: int | None = None,
    reporter: Reporter = QUIET,
    output: Callable[[str], None] | None = None,
) -> Reproduction:
    """Re-run a run's command on its commit and input data; compare the outputs' hashes.

    ``run`` is a run id or a unique prefix. The project is found from ``start`` (default: the
    working directory); the run is read through ``client`` (default: the project's store).
    ``output`` receives each line the command prints (default: written to stderr).
    """
    began = time.monotonic()
    project = Project.find(start)
    owned = client is None
    if client is None:
        from mltrail.config import ENV_TRACKING_URI
        from mltrail.tracking.client import MltrailClient

        uri = os.environ.get(ENV_TRACKING_URI) or str(project.dir)
        client = MltrailClient(uri, create=False)
    try:
        repo = GitRepo(project.root)
        plan = _plan(client, run, repo, allow_dirty)
        result = Reproduction(plan.run_id, plan.commit, [], ".", inputs=plan.inputs)
        diff = _recorded_diff(client, plan) if plan.dirty else None
        with _Worktree(repo, plan.commit, keep) as wt:
            if diff is not None:
                _apply_diff(wt.path, diff, plan)
                result.dirty_applied = True
            elif plan.dirty:
                result.warnings.append(
                    f"run {plan.run_id} recorded uncommitted changes but no diff artifact "
                    f"({cap.DIFF_ARTIFACT}); the code is commit {plan.commit[:12]} as committed"
                )
            root = wt.path / repo.prefix if repo.prefix else wt.path
            project.share_into(root)
            # Inputs the commit itself holds as recorded (code, committed files) are left alone.
            needed = [ref for ref in plan.inputs if not _matches(root, ref)]
            result.fetched = _ensure_inputs(project, needed, remote, jobs, reporter)
            _restore_inputs(root, needed, reporter)
            if plan.stage is not None:
                shell, cwd, notes = _stage_command(plan, root)
                argv = [shell]
                result.shell = True
            else:
                argv, cwd, notes = _command(plan, repo.top, wt.path, root)
            result.warnings += notes
            result.command, result.cwd = argv, Path(os.path.relpath(cwd, wt.path)).as_posix()
            # An output left from the commit must not pass for one the command wrote.
            _clear_outputs(
                root, [o for o in plan.outputs if o.path not in {i.path for i in plan.inputs}]
            )
            started_ms = int(time.time() * 1000)
            env = _environment(client, plan, record, wt.scratch)
            _run(argv, cwd, env, output, plan.run_id, wt, shell=result.shell)
            result.outputs = [_check(root, ref) for ref in plan.outputs]
            if record:
                result.recorded_runs = _logged_runs(client, plan.run_id, started_ms)
            result.worktree = str(wt.path) if keep else None
        result.seconds = time.monotonic() - began
        return result
    finally:
        if owned:
            client.close()


# -- checks before anything is written -------------------------------------------------------------


def _plan(client: MltrailClient, ref: str, repo: GitRepo, allow_dirty: bool) -> _Plan:
    from mltrail.pipeline.runner import TAG_STAGE

    run_id = client.resolve_run_id(ref)
    run = client.get_run(run_id)
    tags = run.data.tags
    commit = tags.get(cap.TAG_GIT_COMMIT, "").strip()
    if not commit:
        raise InvalidState(
            f"run {run_id} has no recorded Git commit (no {cap.TAG_GIT_COMMIT} tag)",
            hint="Only runs started inside a Git repository with capture on (the default) can "
            "be reproduced.",
        )
    try:
        commit = repo.resolve(commit)
    except InvalidInput:
        origin = tags.get(cap.TAG_GIT_REPO)
        raise NotFound(
            f"commit {commit} of run {run_id} is not in this repository ({repo.top})",
            hint="Fetch it (git fetch --all"
            + (f", or git fetch {origin}" if origin else "")
            + "), or reproduce from the clone where it was made.",
        ) from None
    dirty = tags.get(cap.TAG_GIT_DIRTY) == "true"
    if dirty and not allow_dirty:
        raise InvalidState(
            f"run {run_id} was recorded with uncommitted changes on top of commit "
            f"{commit[:12]} ({cap.TAG_GIT_DIRTY}=true), so that commit alone is not the code "
            "that ran",
            hint="Pass --allow-dirty to re-run it with its recorded diff applied, or reproduce a "
            "run recorded from a clean tree.",
        )
    command = tags.get(cap.TAG_COMMAND, "").strip()
    if not command:
        raise InvalidState(
            f"run {run_id} recorded no command (no {cap.TAG_COMMAND} tag)",
            hint="Runs record their command line when capture is on (the default; "
            "MLTRAIL_CAPTURE=0 turns it off).",
        )
    inputs: dict[str, DatasetRef] = {}
    outputs: dict[str, DatasetRef] = {}
    # Oldest first, so a dataset logged twice keeps its last version.
    for rd in sorted(client.get_run_datasets(run_id), key=lambda d: d.timestamp):
        (inputs if rd.direction == "input" else outputs)[rd.dataset.path] = rd.dataset
    return _Plan(
        run_id,
        commit,
        command,
        tags.get(cap.TAG_ENTRY_POINT, ""),
        dirty,
        [inputs[p] for p in sorted(inputs)],
        [outputs[p] for p in sorted(outputs)],
        stage=tags.get(TAG_STAGE) or None,
        params=dict(run.data.params),
    )


def _pointer(ref: DatasetRef) -> Pointer:
    return Pointer(ref.hash, ref.kind, ref.size, ref.nfiles)  # type: ignore[arg-type]


def _absent(store: LocalObjectStore, inputs: list[DatasetRef]) -> list[MissingObject]:
    """Return the objects of ``inputs`` the local cache lacks (a folder's tree counts as one)."""
    from mltrail.objects.tree import read_tree

    wanted: dict[str, MissingObject] = {}
    for ref in inputs:
        if ref.kind == "dir":
            try:
                tree = read_tree(store, ref.hash)
            except NotFound:
                wanted.setdefault(ref.hash, MissingObject(ref.path, "", ref.hash))
                continue
            for e in tree:
                wanted.setdefault(e.hash, MissingObject(ref.path, e.path, e.hash))
        else:
            wanted.setdefault(ref.hash, MissingObject(ref.path, "", ref.hash))
    absent = store.missing(wanted)
    return [m for h, m in wanted.items() if h in absent]


def _ensure_inputs(
    project: Project,
    inputs: list[DatasetRef],
    remote: str | None,
    jobs: int | None,
    reporter: Reporter,
) -> int:
    """Make sure every input object is in the local cache, fetching; return how many came."""
    from mltrail.data.remotes import get_remote
    from mltrail.data.transfer import fetch_versions

    absent = _absent(project.store(), inputs)
    if not absent:
        return 0
    first = absent[0]
    try:
        get_remote(project.dir, remote)
    except NotFound as e:
        raise NotFound(
            f"input {first.describe()} is not in the local cache"
            + (f" ({len(absent)} objects missing)" if len(absent) > 1 else "")
            + f", and it cannot be fetched: {e.message}",
            hint="Add a remote that has it (mltrail remote add NAME URL), or pick one with -r.",
        ) from None
    lacking = sorted({m.dataset for m in absent})
    versions = [(ref.path, _pointer(ref)) for ref in inputs if ref.path in lacking]
    try:
        done = fetch_versions(
            versions, remote=remote, jobs=jobs, start=project.root, reporter=reporter
        )
    except NotFound as e:
        raise NotFound(f"cannot restore the run's inputs: {e.message}", hint=e.hint) from None
    return done.copied


def _recorded_diff(client: MltrailClient, plan: _Plan) -> str | None:
    try:
        text = client.read_artifact(plan.run_id, cap.DIFF_ARTIFACT)
    except NotFound:
        return None
    return text.decode("utf-8", "surrogateescape") if text.strip() else None


# -- the worktree ----------------------------------------------------------------------------------


class _Worktree:
    """``git worktree add --detach`` into a temp folder; removed on exit unless kept."""

    def __init__(self, repo: GitRepo, commit: str, keep: bool) -> None:
        self.repo, self.commit, self.keep = repo, commit, keep
        # git worktree add accepts an empty folder: a kept worktree is then the only thing left.
        self.path = Path(tempfile.mkdtemp(prefix="mltrail-reproduce-"))
        #: A throwaway store for record=False, outside the worktree so Git never sees it.
        self.scratch = self.path.with_name(self.path.name + "-store")

    def __enter__(self) -> _Worktree:
        try:
            _git(self.repo.top, "worktree", "add", "--detach", str(self.path), self.commit)
        except BaseException:
            shutil.rmtree(self.path, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self.keep:
            return
        # If git cannot remove it, the folder goes anyway and prune makes Git forget it.
        with contextlib.suppress(MltrailError):
            _git(self.repo.top, "worktree", "remove", "--force", str(self.path))
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(MltrailError):
            _git(self.repo.top, "worktree", "prune")


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, input=stdin, capture_output=True, timeout=_GIT_TIMEOUT
        )
    except FileNotFoundError:
        raise InvalidState("git is not installed", hint="Install Git and try again.") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()
        raise InvalidState(
            f"git {args[0]} failed: {err.splitlines()[-1] if err else done.returncode}",
            hint=f"The full command was: git {shlex.join(args)} (in {cwd})",
        )
    return done.stdout.decode("utf-8", "replace")


def _apply_diff(top: Path, diff: str, plan: _Plan) -> None:
    try:
        patch = diff.encode("utf-8", "surrogateescape")
        _git(top, "apply", "--whitespace=nowarn", "-", stdin=patch)
    except InvalidState as e:
        raise InvalidState(
            f"the uncommitted changes run {plan.run_id} recorded do not apply to commit "
            f"{plan.commit[:12]}: {e.message}",
            hint=f"Inspect them with `mltrail runs download {plan.run_id} {cap.DIFF_ARTIFACT}`.",
        ) from None


def _restore_inputs(root: Path, inputs: list[DatasetRef], reporter: Reporter) -> None:
    """Write the inputs' pointer files as the run recorded them, then check them out."""
    from mltrail.data.ops import checkout

    if not inputs:
        return
    for ref in inputs:
        ptr = pointer_path(root / ref.path)
        ptr.parent.mkdir(parents=True, exist_ok=True)
        want = _pointer(ref)
        try:
            same = ptr.exists() and read_pointer(ptr) == want
        except InvalidInput:
            same = False
        if not same:
            write_pointer(ptr, want)
    try:
        checkout([root / ref.path for ref in inputs], start=root, force=True, reporter=reporter)
    except (NotFound, IntegrityError) as e:
        raise type(e)(f"cannot restore the run's inputs: {e.message}", hint=e.hint) from None


def _matches(root: Path, ref: DatasetRef) -> bool:
    """Return True if the worktree already holds the version ``ref`` names at its path."""
    from mltrail.objects.hashing import hash_file
    from mltrail.objects.tree import scan_tree

    path = root / ref.path
    if ref.kind == "dir":
        return path.is_dir() and scan_tree(path)[0].hash == ref.hash
    return path.is_file() and hash_file(path) == ref.hash


def _clear_outputs(root: Path, outputs: list[DatasetRef]) -> None:
    for ref in outputs:
        path = root / ref.path
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()


# -- the command -----------------------------------------------------------------------------------


def _inside(path: str, top: Path) -> str | None:
    """Return ``path`` relative to ``top`` if it is an absolute path under it, else None."""
    if not os.path.isabs(path):
        return None
    real, real_top = os.path.realpath(path), os.path.realpath(top)
    if real == real_top:
        return "."
    if real.startswith(real_top + os.sep):
        return os.path.relpath(real, real_top)
    return None


def _command(plan: _Plan, top: Path, wt: Path, root: Path) -> tuple[list[str], Path, list[str]]:
    """Return the argv to run, the folder to run it in, and notes for the user."""
    notes: list[str] = []
    try:
        argv = shlex.split(plan.command)
    except ValueError as e:
        raise InvalidInput(
            f"the recorded command of run {plan.run_id} cannot be parsed ({e}): {plan.command}"
        ) from None
    if not argv:
        raise InvalidState(f"run {plan.run_id} recorded an empty command")
    # Paths into the original checkout are moved into the worktree: the code and data there.
    moved = []
    for arg in argv:
        rel = _inside(arg, top)
        moved.append(str(wt / rel) if rel is not None else arg)
    argv = moved
    exe = argv[0]
    if os.path.isabs(exe) and not os.path.exists(exe) and Path(exe).name.startswith("python"):
        notes.append(f"the recorded interpreter {exe} no longer exists; used {sys.executable}")
        argv[0] = sys.executable
    # The working folder is not recorded: run where the entry point is found, project root first.
    entry = plan.entry_point
    if entry and not os.path.isabs(entry):
        for folder in (root, wt):
            if (folder / entry).exists():
                return argv, folder, notes
        notes.append(
            f"the entry point {entry} was not found in the commit's project root or repository "
            "top; ran from the project root"
        )
    return argv, root, notes


def _stage_command(plan: _Plan, root: Path) -> tuple[str, Path, list[str]]:
    """Return a stage run's shell command and folder, from mltrail.yaml at the run's commit.

    The params the run recorded are written into the worktree's params files first, so a run
    made with ``repro -S`` or ``--grid`` is re-run with its own values.
    """
    from mltrail.pipeline.spec import load

    notes: list[str] = []
    try:
        stage = load(root).stages.get(plan.stage or "")
    except InvalidInput as e:
        stage = None
        notes.append(f"cannot read mltrail.yaml at commit {plan.commit[:12]}: {e.message}")
    if stage is None:
        notes.append(
            f"stage {plan.stage!r} is not in mltrail.yaml at commit {plan.commit[:12]}; ran the "
            "recorded command from the project root"
        )
        return plan.command, root, notes
    notes += _apply_params(root, plan.params)
    return stage.command, root / stage.wdir, notes


def _apply_params(root: Path, params: dict[str, str]) -> list[str]:
    """Set the worktree's params to the values the stage run recorded; return notes."""
    from mltrail.pipeline.params import (
        get_key,
        parse_value,
        read_params_file,
        set_key,
        write_params_file,
    )
    from mltrail.pipeline.spec import DEFAULT_PARAMS
    from mltrail.pipeline.stage import flat_params

    by_file: dict[str, dict[str, str]] = {}
    for label, value in params.items():
        file, _, key = label.rpartition(":")
        by_file.setdefault(file or DEFAULT_PARAMS, {})[key] = value
    notes = []
    for file, values in by_file.items():
        path = root / file
        try:
            doc = read_params_file(path)
        except InvalidInput as e:
            notes.append(f"cannot apply the run's params to {file}: {e.message}")
            continue
        changed = []
        for key, recorded in values.items():
            try:
                current = flat_params({DEFAULT_PARAMS: {key: get_key(doc, key)}}).get(key)
            except KeyError:
                current = None
            if current != recorded:
                set_key(doc, key, parse_value(recorded))
                changed.append(f"{key}={recorded}")
        if changed:
            try:
                write_params_file(path, doc)
            except InvalidInput as e:
                notes.append(f"cannot apply the run's params to {file}: {e.message}")
                continue
            notes.append(f"set the run's params in {file}: {', '.join(changed)}")
    return notes


def _environment(client: MltrailClient, plan: _Plan, record: bool, scratch: Path) -> dict[str, str]:
    from mltrail.config import ENV_OBJECTS, ENV_TRACKING_URI
    from mltrail.tracking.fluent import ENV_RUN_TAGS

    env = dict(os.environ)
    if record:
        env[ENV_TRACKING_URI] = client.tracking_uri
        if client.location.objects:
            env[ENV_OBJECTS] = client.location.objects
    else:
        scratch.mkdir(parents=True, exist_ok=True)
        env[ENV_TRACKING_URI] = f"sqlite:///{scratch / 'mltrail.db'}"
        env[ENV_OBJECTS] = str(scratch / "objects")
    env[ENV_RUN_TAGS] = json.dumps({TAG_REPRODUCES: plan.run_id})
    if plan.stage is not None:
        env["MLTRAIL_STAGE"] = plan.stage  # as `mltrail repro` runs a stage's command
    return env


def _run(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    output: Callable[[str], None] | None,
    run_id: str,
    wt: _Worktree,
    *,
    shell: bool = False,
) -> None:
    show = output or (lambda line: print(line, file=sys.stderr, flush=True))
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            argv[0] if shell else argv,
            shell=shell,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as e:
        raise InvalidState(
            f"cannot run the recorded command of run {run_id}: {argv[0]}: {e.strerror or e}",
            hint="Install the program it needs, then try again.",
        ) from None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            show(line)
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if code != 0:
        where = (
            f"the worktree is kept at {wt.path}"
            if wt.keep
            else "rerun with --keep to inspect the worktree"
        )
        raise InvalidState(
            f"the re-run of run {run_id} failed: "
            f"{argv[0] if shell else shlex.join(argv)} exited with status {code}",
            hint=f"Its output is above; {where}.",
        )


# -- comparing -------------------------------------------------------------------------------------


def _check(root: Path, ref: DatasetRef) -> OutputCheck:
    """Hash what the re-run left at an output's path."""
    from mltrail.objects.hashing import hash_file
    from mltrail.objects.tree import scan_tree

    path = root / ref.path
    if path.is_dir():
        tree, _ = scan_tree(path)
        return OutputCheck(ref.path, ref.kind, ref.hash, tree.hash)
    if path.is_file():
        return OutputCheck(ref.path, ref.kind, ref.hash, hash_file(path))
    return OutputCheck(ref.path, ref.kind, ref.hash, None)


def _logged_runs(client: MltrailClient, run_id: str, since_ms: int) -> list[str]:
    """Return the runs the re-run logged (they carry the mltrail.reproduce.of tag)."""
    ids = [e.experiment_id for e in client.list_experiments()]
    if not ids:
        return []
    found = client.search_runs(
        ids, f"tags.`{TAG_REPRODUCES}` = '{run_id}' AND attributes.start_time >= {since_ms}"
    )
    return [run.info.run_id for run in found]


__all__ = ["TAG_REPRODUCES", "OutputCheck", "Reproduction", "reproduce"]
