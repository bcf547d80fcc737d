"""``mltrail import dvc``: a DVC repository's data, pipeline, remotes and history into mltrail.

- ``.dvc`` files → ``.trail`` pointers; their objects from DVC's cache, the workspace or a DVC
  remote, checked against DVC's MD5 and stored under their BLAKE3 (:mod:`.dvc_objects`).
- ``dvc.yaml`` → ``mltrail.yaml``, ``dvc.lock`` → ``mltrail.lock`` (:mod:`.dvc_pipeline`), the
  cached outs of the lock → ``.trail`` pointers, so ``mltrail repro`` runs nothing DVC had run.
- DVC remotes → mltrail remotes (beside DVC's: mltrail's objects are named by another hash).
- Every version of the ``.dvc`` and ``dvc.lock`` files in the Git history → the table of
  imported pointers (:mod:`mltrail.data.imported`), so old revisions resolve (:mod:`.dvc_history`);
  the commits that changed ``dvc.lock`` and DVC experiments → runs, GTO tags → registry versions.

DVC's files and cache are only read. What the import writes is listed in the report
(``changed``); a second run with nothing new writes nothing.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.atomic import write_text_atomic
from mltrail.config import PROJECT_DIR, init_project
from mltrail.data.pointer import Pointer, pointer_path, read_pointer, write_pointer
from mltrail.data.project import Project, ensure_gitignored
from mltrail.data.workspace import QUIET, Reporter
from mltrail.errors import InvalidInput, MltrailError
from mltrail.importers.dvc_files import (
    DVC_DIR,
    LOCK_NAME,
    YAML_NAME,
    DvcConfig,
    DvcOut,
    find_dvc_files,
    load_yaml,
    parse_dvc_file,
    parse_lock,
    read_config,
    repo_path,
)
from mltrail.importers.dvc_objects import ObjectImporter, ObjectProblem
from mltrail.importers.dvc_pipeline import HEADER, LockConverter, convert_lock, write_pipeline
from mltrail.importers.dvc_yaml import DvcPipeline, parse_pipeline, resolve_top, vars_of
from mltrail.importers.report import Report, Skipped

if TYPE_CHECKING:
    from mltrail.tracking.client import MltrailClient

#: Appended to a DVC remote's URL to make the mltrail remote's: a sibling, never inside DVC's
#: own prefix (DVC's `gc -c` removes what it does not know under its prefix).
REMOTE_SUFFIX = "-mltrail"


@dataclass
class DvcImportReport(Report):
    """What an import brought in (in a dry run, would), and what it left out."""

    source: str
    dry_run: bool = False
    pointers_written: int = 0
    pointers_unchanged: int = 0
    objects_stored: int = 0
    object_bytes: int = 0
    objects_already: int = 0
    objects_from_remote: int = 0
    stages: int = 0
    stages_locked: int = 0
    remotes_added: int = 0
    history_versions: int = 0
    runs_imported: int = 0
    runs_existing: int = 0
    model_versions: int = 0
    #: Files the import created or changed, relative to the repository.
    changed: list[str] = field(default_factory=list)
    #: Stages mltrail will run, because DVC's lock does not match the workspace.
    stale_stages: list[Skipped] = field(default_factory=list)
    #: Old versions whose data was found nowhere: listed, not fatal.
    unavailable: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The git commands of the cutover commit (run by remove_dvc=True, except the commit).
    cutover: list[str] = field(default_factory=list)
    #: Files ``remove_dvc=True`` took out of Git (and the workspace) with ``git rm``.
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def find_repo(path: str | os.PathLike[str]) -> Path:
    """Return the root of the DVC repository at ``path``; InvalidInput when it is not one."""
    root = Path(path).resolve()
    if not root.is_dir():
        raise InvalidInput(f"{path} is not a folder", hint="Pass the folder of a DVC repository.")
    if not (root / DVC_DIR).is_dir():
        above = next((p for p in root.parents if (p / DVC_DIR).is_dir()), None)
        raise InvalidInput(
            f"{root} is not a DVC repository (it has no {DVC_DIR}/ folder)",
            hint=f"Run it in {above}, the repository above." if above else
            "Run it in the folder where `dvc init` was run, or pass that folder.",
        )  # fmt: skip
    return root


def import_dvc(
    path: str | os.PathLike[str] = ".",
    client: MltrailClient | None = None,
    *,
    dry_run: bool = False,
    remove_dvc: bool = False,
    remote_urls: dict[str, str] | None = None,
    history: bool = True,
    reporter: Reporter = QUIET,
) -> DvcImportReport:
    """Import the DVC repository at ``path`` into the mltrail project there (created if needed).

    ``remote_urls`` maps a DVC remote's name to the URL its mltrail remote gets (default: DVC's
    URL with ``-mltrail`` appended). ``client`` (default: the project's store) receives the runs
    and registry versions of the history. ``remove_dvc`` also runs the ``git rm``/``git add`` of
    the cutover. Problems are listed in ``skipped``; everything else is still imported.
    """
    root = find_repo(path)
    job = _Import(root, client, dry_run, remote_urls or {}, reporter)
    try:
        job.run(history=history)
        if remove_dvc and not dry_run:
            job.remove_dvc()
    finally:
        job.close()
    return job.report


class _Import:
    """One import's state: the project, the object converter, the report."""

    def __init__(
        self,
        root: Path,
        client: MltrailClient | None,
        dry_run: bool,
        remote_urls: dict[str, str],
        reporter: Reporter,
    ) -> None:
        self.root = root
        self.dry_run = dry_run
        self.remote_urls = remote_urls
        self.report = DvcImportReport(str(root), dry_run)
        self.config: DvcConfig = read_config(root)
        project_dir = root / PROJECT_DIR
        if not dry_run and not project_dir.is_dir():
            init_project(root)
            self.changed(project_dir / "config.toml", project_dir / ".gitignore")
        self.project = Project(root, project_dir)
        self._tmp = tempfile.mkdtemp(prefix="mltrail-dvc-") if dry_run else None
        self.objects = ObjectImporter(
            root,
            project_dir,
            self.config,
            self.project.store(),
            dry_run=dry_run,
            reporter=reporter,
            tmp=Path(self._tmp) if self._tmp else None,
        )
        self._client = client
        self._own_client = False
        #: GTO artifact name → root-relative path, from dvc.yaml's ``artifacts:``.
        self.artifacts: dict[str, str] = {}
        self._stat: Any = None
        #: Root-relative data path → (DVC md5, pointer) of every out converted from the workspace.
        self.known: dict[str, tuple[str, Pointer]] = {}
        self.trail_files: list[str] = []
        self._stages: dict[str, dict[str, Any]] = {}
        self._git: Any = None
        self._pointers: dict[str, dict[str, Pointer]] = {}
        self.dvc_files: list[str] = []
        #: DVC files with an out that got no pointer: never removed by the cutover.
        self.incomplete: set[str] = set()

    def close(self) -> None:
        """Save the object state, close what was opened."""
        self.objects.close()
        if self._stat is not None:
            self._stat.close()
        if self._own_client and self._client is not None:
            self._client.close()
        if self._tmp:
            import shutil

            shutil.rmtree(self._tmp, ignore_errors=True)

    def client(self) -> MltrailClient:
        """Return the store's client, opened on the project on first use."""
        if self._client is None:
            from mltrail.config import resolve
            from mltrail.tracking.client import MltrailClient

            loc = resolve(create=False, start=self.root)
            self._client = MltrailClient(loc.tracking_uri, loc.objects)
            self._own_client = True
        return self._client

    def pipeline_name(self) -> str:
        """Return the pipeline's experiment: mltrail.yaml's ``pipeline:``, or the folder name."""
        from mltrail.pipeline.spec import load

        try:
            return load(self.root).name
        except MltrailError:
            return self.root.name or "pipeline"

    def stages_at(self, git: Any, commit: str) -> dict[str, Any]:
        """Return the expanded dvc.yaml stages at ``commit`` by name (read once per commit)."""
        from mltrail.importers.dvc_history import _stages_at

        if commit not in self._stages:
            self._stages[commit] = _stages_at(git, commit, git.prefix.rstrip("/"))
        return self._stages[commit]

    def pointers_at(self, commit: str) -> dict[str, Pointer]:
        """Return every pointer at ``commit``, imported ones included (read once per commit)."""
        if commit not in self._pointers:
            self._pointers[commit] = self.git().pointers_at(commit)
        return self._pointers[commit]

    def rel(self, p: Path) -> str:
        """Return ``p`` relative to the repository, POSIX style."""
        return Path(os.path.relpath(p, self.root)).as_posix()

    def changed(self, *paths: Path) -> None:
        """Record files the import wrote."""
        for p in paths:
            r = self.rel(p)
            if r not in self.report.changed:
                self.report.changed.append(r)

    def skip(self, what: str, reason: str) -> None:
        """Record something left out."""
        self.report.skipped.append(Skipped(what, reason))

    def scan(self, rel: str) -> Any:
        """Return mltrail's scan of a workspace path (through the stat cache), or None."""
        from mltrail.data.statcache import StatCache
        from mltrail.data.workspace import scan

        full = self.root / rel
        if not os.path.exists(full):
            return None
        if self._stat is None:
            where = Path(self._tmp) / "stat.db" if self._tmp else None
            self._stat = StatCache(where) if where else self.project.stat_cache()
        return scan(self.root, full, self._stat)

    # -- the steps -------------------------------------------------------------------------------

    def run(self, *, history: bool) -> None:
        """Convert pointers, pipeline, remotes, then the history."""
        if not self.dry_run:
            self.project.ignore_local_state()
        self.pointers()
        self.pipeline()
        self.remotes()
        if history:
            from mltrail.importers.dvc_history import import_history

            import_history(self)
            from mltrail.importers.dvc_runs import import_runs

            import_runs(self)
            from mltrail.importers.dvc_registry import import_registry

            import_registry(self)
        self.cutover()
        st = self.objects.stats
        self.report.objects_stored = st.objects
        self.report.object_bytes = st.bytes
        self.report.objects_already = st.already
        self.report.objects_from_remote = st.from_remote
        for damaged in st.damaged_copies:
            self.report.notes.append(f"damaged copy passed over: {damaged}")

    def write_trail(self, rel: str, pointer: Pointer) -> None:
        """Write the ``.trail`` pointer of a data path (unless it already says this)."""
        data = self.root / rel
        # The last guard before writing: a path from DVC's files never leads out of the repository.
        if not Path(os.path.abspath(data)).is_relative_to(self.root):
            raise InvalidInput(f"{rel} is outside the repository {self.root}")
        ptr = pointer_path(data)
        self.trail_files.append(self.rel(ptr))
        try:
            old = read_pointer(ptr) if ptr.exists() else None
        except InvalidInput:
            old = None
        if old == pointer:
            self.report.pointers_unchanged += 1
            return
        self.report.pointers_written += 1
        if self.dry_run:
            return
        write_pointer(ptr, pointer)
        self.changed(ptr)
        if ensure_gitignored(data):
            self.changed(data.parent / ".gitignore")

    def track(
        self, batch: list[tuple[DvcOut, Path | None, str]], targets: list[str], owners: list[str]
    ) -> None:
        """Convert DVC outs (``targets``: their root-relative paths) and write their pointers.

        ``owners`` names the DVC file of each out.
        """
        results = self.objects.convert_outs(batch)
        for rel, owner, (out, _, what), got in zip(targets, owners, batch, results, strict=True):
            if isinstance(got, ObjectProblem):
                self.skip(what, got.message)
                self.incomplete.add(owner)
                continue
            self.known[rel] = (out.md5 or "", got)
            self.write_trail(rel, got)

    def git(self) -> Any:
        """Return the Git repository holding the DVC repository, or None (none, or no commits)."""
        if self._git is None:
            from mltrail.data.git import GitRepo

            try:
                repo = GitRepo(self.root)
                repo.resolve("HEAD")
                self._git = repo
            except MltrailError:
                self._git = False
        return self._git or None

    def pointers(self) -> None:
        """``.dvc`` files → ``.trail`` pointers."""
        batch: list[tuple[DvcOut, Path | None, str]] = []
        targets: list[str] = []
        owners: list[str] = []
        for f in find_dvc_files(self.root):
            name = self.rel(f)
            try:
                parsed = parse_dvc_file(f.read_bytes(), name)
            except (OSError, MltrailError) as e:
                self.skip(name, getattr(e, "message", str(e)))
                continue
            self.dvc_files.append(name)
            if parsed.imported_from:
                self.report.notes.append(
                    f"{name} was imported from {parsed.imported_from} (dvc import); its data "
                    "comes across, the link to update it from there does not"
                )
            for out in parsed.outs:
                try:
                    rel = repo_path(posixpath.dirname(name), parsed.wdir, out.path, name)
                except InvalidInput as e:
                    self.skip(f"{name}: {out.path}", e.message)
                    self.incomplete.add(name)
                    continue
                if not out.cache:
                    self.skip(f"{name}: {out.path}", "cache: false (DVC does not store it)")
                    self.incomplete.add(name)
                    continue
                batch.append((out, self.root / rel, f"{name}: {out.path}"))
                targets.append(rel)
                owners.append(name)
        self.track(batch, targets, owners)

    def read_params(self, rel: str) -> dict[str, Any] | None:
        """Return a params/vars file's mapping from the workspace, or None if it is absent."""
        from mltrail.pipeline.params import read_params_file

        path = self.root / rel
        if not path.is_file():
            return None
        return read_params_file(path)

    def pipeline(self) -> None:
        """``dvc.yaml`` → ``mltrail.yaml``, ``dvc.lock`` → ``mltrail.lock`` and out pointers."""
        for extra in sorted(self.root.rglob(YAML_NAME)):
            if (
                extra.parent != self.root
                and DVC_DIR not in extra.parts
                and ".git" not in extra.parts
            ):
                self.skip(
                    self.rel(extra),
                    "a dvc.yaml below the root: mltrail reads one mltrail.yaml at the project "
                    "root (merge its stages into the root dvc.yaml, then import again)",
                )
        path = self.root / YAML_NAME
        if not path.is_file():
            return
        try:
            raw = load_yaml(path.read_bytes(), YAML_NAME) or {}
        except MltrailError as e:
            self.skip(YAML_NAME, e.message)
            return
        dvc = parse_pipeline(raw, ".", self.read_params)
        for where, why in dvc.unsupported:
            self.skip(where, why)
        if not isinstance(raw, dict):
            return  # named in unsupported: nothing of it can be converted
        self.report.stages = len(dvc.stages)
        try:
            text, groups_left, kept = write_pipeline(
                self.root,
                raw,
                dvc,
                vars_of(raw, ".", self.read_params),
                lambda v: resolve_top(raw, ".", self.read_params, v),
            )
        except MltrailError as e:
            self.skip(YAML_NAME, f"cannot be written as mltrail.yaml: {e.message}")
            return
        for where, why in groups_left:
            self.skip(where, why)
        self._write_pipeline_file(text)
        self.artifacts = dvc.artifacts
        dvc.stages = [s for s in dvc.stages if s.name in kept]
        self.report.stages = len(dvc.stages)
        self._lock(dvc)

    def _write_pipeline_file(self, text: str) -> None:
        target = self.root / "mltrail.yaml"
        try:
            old = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = None
        if old == text:
            return
        if old is not None and not old.startswith(HEADER):
            self.skip(
                "mltrail.yaml",
                "it exists and was not written by this import; left as it is (move it away to "
                "convert dvc.yaml)",
            )
            return
        if not self.dry_run:
            write_text_atomic(target, text)
        self.changed(target)

    def _lock(self, dvc: DvcPipeline) -> None:
        lock_path = self.root / LOCK_NAME
        if not lock_path.is_file():
            return
        try:
            lock = parse_lock(lock_path.read_bytes(), LOCK_NAME)
        except MltrailError as e:
            self.skip(LOCK_NAME, e.message)
            return
        # The cached outs of the stages DVC ran are DVC objects like those of .dvc files.
        batch: list[tuple[DvcOut, Path | None, str]] = []
        targets: list[str] = []
        for stage in dvc.stages:
            locked = lock.get(stage.name)
            if locked is None:
                continue
            cached = {o.path for o in stage.outs if o.cache}
            for o in locked.outs:
                rel = posixpath.normpath(posixpath.join(stage.wdir, o.path))
                if rel in cached:
                    batch.append((o, self.root / rel, f"{LOCK_NAME} stage {stage.name}: {rel}"))
                    targets.append(rel)
        self.track(batch, targets, [LOCK_NAME] * len(targets))
        entries, stale = convert_lock(
            dvc.stages, lock, LockConverter(self.root, self.scan, self.known)
        )
        for name, why in stale:
            self.report.stale_stages.append(Skipped(f"stage {name}", why))
        self.report.stages_locked = len(entries)
        from mltrail.pipeline.lock import read_lock, write_lock

        existing = read_lock(self.root)
        # What mltrail itself recorded since an earlier import wins over DVC's older record.
        merged = {n: existing.get(n, entries.get(n)) for n in [s.name for s in dvc.stages]}
        merged = {n: e for n, e in merged.items() if e is not None}
        merged.update({n: e for n, e in existing.items() if n not in merged})
        if merged == existing:
            return
        if not self.dry_run:
            write_lock(self.root, merged)
        self.changed(self.root / "mltrail.lock")

    def remotes(self) -> None:
        """DVC remotes → mltrail remotes (default kept)."""
        from mltrail.data.remotes import add_remote, check_remote_name, list_remotes

        have = {r.name: r for r in list_remotes(self.project.dir)} if not self.dry_run else {}
        for name, r in self.config.remotes.items():
            url = self.remote_urls.get(name)
            if url is None:
                if r.url.startswith("s3://"):
                    url = r.url.rstrip("/")
                    url = url + REMOTE_SUFFIX if "/" in url[len("s3://") :] else url + "/mltrail"
                elif "://" in r.url:
                    self.skip(f"DVC remote {name!r}", f"{r.url}: only local and s3:// remotes")
                    continue
                else:
                    url = r.url.rstrip("/\\") + REMOTE_SUFFIX
                    # Inside the project, keep it relative so a clone elsewhere finds it too.
                    if Path(url).resolve().is_relative_to(self.root):
                        url = os.path.relpath(url, self.root)
            try:
                check_remote_name(name)
            except MltrailError as e:
                self.skip(f"DVC remote {name!r}", e.message)
                continue
            if r.access_key_id or r.secret_access_key:
                self.report.notes.append(
                    f"remote {name!r}: DVC's config holds its credentials; mltrail reads them "
                    "from the environment or ~/.aws (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                    "AWS_PROFILE), never from its config"
                )
            old = have.get(name)
            endpoint = r.endpoint_url if url.startswith("s3://") else None
            if old is not None:
                if (old.url, old.endpoint_url) != (url, endpoint):
                    self.skip(
                        f"DVC remote {name!r}",
                        f"mltrail already has a remote {name!r} ({old.url}); left as it is",
                    )
                continue
            self.report.remotes_added += 1
            if self.dry_run:
                continue
            add_remote(
                self.project.dir,
                name,
                url,
                endpoint_url=endpoint,
                default=name == self.config.default_remote,
            )
            self.changed(self.project.dir / "config.toml")

    # -- the cutover -----------------------------------------------------------------------------

    def cutover_paths(self) -> tuple[list[str], list[str]]:
        """Return the tracked DVC files to remove and the mltrail files to add to Git."""
        tracked = set(_git_lines(self.root, "ls-files", "-z"))
        remove = [f for f in self.dvc_files if f in tracked and f not in self.incomplete]
        remove += [
            f
            for f in (YAML_NAME, LOCK_NAME, ".dvcignore")
            if f in tracked and f not in self.incomplete
        ]
        # .dvc/.gitignore stays: without it .dvc/cache and .dvc/config.local (credentials) are
        # untracked files the next `git add -A` commits.
        keep = f"{DVC_DIR}/.gitignore"
        remove += sorted(f for f in tracked if f.startswith(DVC_DIR + "/") and f != keep)
        add = sorted(set(self.trail_files))
        add += [f for f in ("mltrail.yaml", "mltrail.lock") if (self.root / f).exists()]
        proj = [".mltrail/config.toml", ".mltrail/.gitignore", ".mltrail/imported-pointers.json"]
        add += [f for f in proj if (self.root / f).exists()]
        add += sorted({f for f in self.report.changed if f.endswith(".gitignore")} - set(add))
        return remove, add

    def cutover(self) -> None:
        """Say the git commands of the cutover commit."""
        if not _git_lines(self.root, "rev-parse", "--show-toplevel"):
            return
        remove, add = self.cutover_paths()
        lines = []
        # Added first: a failing add leaves DVC's files in place.
        if add:
            lines.append("git --literal-pathspecs add -f -- " + " ".join(_quote(f) for f in add))
        if remove:
            lines.append(
                "git --literal-pathspecs rm -r --quiet -- " + " ".join(_quote(f) for f in remove)
            )
        lines.append('git commit -m "Move data and pipeline from DVC to mltrail"')
        self.report.cutover = lines

    def remove_dvc(self) -> None:
        """Run the ``git add``/``git rm`` of the cutover (the commit is left to the user).

        Not when anything was left out: DVC's files are then the only record of that data.
        """
        if self.report.skipped:
            self.skip(
                "--remove-dvc",
                f"not run, as {len(self.report.skipped)} item(s) were left out: DVC's files stay "
                "in Git (fix what is listed and import again)",
            )
            return
        remove, add = self.cutover_paths()
        # Paths are names, not patterns (a data file may be called `*.csv`); the mltrail files
        # are added even where a .gitignore would hide them, and before anything is removed.
        if add:
            _git(self.root, "--literal-pathspecs", "add", "-f", "--", *add)
        if remove:
            _git(self.root, "--literal-pathspecs", "rm", "-r", "--quiet", "--", *remove)
        self.report.removed = remove
        self.report.cutover = self.report.cutover[-1:]


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=300)
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        cmd = next((a for a in args if not a.startswith("-")), "")
        raise InvalidInput(f"git {cmd} failed: {err[-1] if err else done.returncode}")
    return done.stdout.decode("utf-8", "surrogateescape")


def _git_lines(root: Path, *args: str) -> list[str]:
    try:
        out = _git(root, *args)
    except (InvalidInput, FileNotFoundError):
        return []
    sep = "\0" if "-z" in args else "\n"
    return [x for x in out.split(sep) if x]


__all__ = ["DvcImportReport", "Skipped", "find_repo", "import_dvc"]
