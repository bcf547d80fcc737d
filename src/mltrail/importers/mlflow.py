"""``mltrail import mlflow``: an MLflow store's history into mltrail's store.

The source is a tracking database (:mod:`.mlflow_db`), a file store folder (:mod:`.mlflow_files`)
or a running server (:mod:`.mlflow_rest`); each reader has the same methods.

Experiments (by name), runs with their MLflow ids, names, users, parents, statuses and times,
params, tags (MLflow's system tags as mltrail's own fields and tags, as the MLflow API maps them),
every metric point, dataset inputs, and artifacts from the run's artifact location (local,
S3, or an MLflow server's proxy: :mod:`.mlflow_artifacts`). The target is
whatever store the client has: an embedded project, PostgreSQL, or a server over HTTP.

Idempotent and resumable: each run is marked when its import completes with the source's
status and end time; a rerun skips marked runs that did not change, completes runs a killed
import left half done (metric points already written are not written again), and brings in what
a run logged since (a run imported while RUNNING that finished later).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail import validation as v
from mltrail.entities import FileInfo, Metric, NamedDataset, RunBatch, RunStatus
from mltrail.errors import InvalidInput, MltrailError, NotFound
from mltrail.importers import mlflow_db
from mltrail.importers.mlflow_artifacts import ArtifactFile, ArtifactReader, Unreadable
from mltrail.importers.mlflow_db import MlflowDb, SourceLoggedModel, SourceModel, SourceRun
from mltrail.importers.mlflow_files import MlflowFiles, folder_of
from mltrail.importers.mlflow_rest import MlflowRest
from mltrail.importers.report import Report, Skipped
from mltrail.mlflow_api import tags as system
from mltrail.registry.client import store_model_tree

if TYPE_CHECKING:
    from mltrail.objects.base import ObjectStore
    from mltrail.store.base import TrackingStore
    from mltrail.tracking.client import MltrailClient

#: The tag an imported run carries once its import is complete: the source's state then.
MARKER = "mltrail.import.mlflow"
#: Who registry changes of an import are recorded under (versions keep their MLflow user),
#: and the comment on each.
IMPORT_ACTOR = "mlflow-import"
IMPORT_COMMENT = "imported from MLflow"


@dataclass
class ImportReport(Report):
    """What an import brought in (or, in a dry run, would), and what it left out."""

    source: str
    #: "database", "file store" or "REST API"
    source_format: str
    #: The database's Alembic revision, or the MLflow version of a server ("" for a file store).
    schema_revision: str
    dry_run: bool = False
    experiments_created: int = 0
    experiments_existing: int = 0
    runs_imported: int = 0
    runs_updated: int = 0
    runs_unchanged: int = 0
    models_created: int = 0
    versions_imported: int = 0
    versions_existing: int = 0
    logged_models_imported: int = 0
    logged_models_existing: int = 0
    metric_points: int = 0
    params: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    skipped: list[Skipped] = field(default_factory=list)


Progress = Callable[[int, int, str], None]
#: What an import reads from; each has the same reading methods.
MlflowSource = MlflowDb | MlflowFiles | MlflowRest


def import_mlflow(
    source: str,
    client: MltrailClient,
    *,
    experiments: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    artifacts_root: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import an MLflow store (a database URI, a file store folder or a server's http:// URL)
    into ``client``'s store.

    ``experiments`` limits the import to those names, ``models`` the registered models to those;
    a version keeps its number, stage, aliases and source run (when that run is imported too).
    ``artifacts_root`` is where
    ``mlflow-artifacts:`` URIs point (the MLflow server's ``--artifacts-destination``).
    ``progress(done, total, run_name)`` is called after each run.
    """
    db = open_source(source)
    try:
        report = ImportReport(source, db.kind, db.revision, dry_run)
        wanted = set(experiments or ())
        found = [e for e in db.experiments() if not wanted or e.name in wanted]
        for name in sorted(wanted - {e.name for e in found}):
            report.skipped.append(Skipped(f"experiment {name!r}", "not in the source"))
        reader = ArtifactReader(artifacts_root, db if isinstance(db, MlflowRest) else None)
        job = _Import(db, client.store, client.objects, report, reader)
        ids = {e.experiment_id: job.experiment(e) for e in found}
        runs = db.runs(list(ids))
        for model in db.logged_models(list(ids)):
            job.logged[model.run_id].append(model)
        for done, run in enumerate(runs, 1):
            if (done - 1) % mlflow_db.PREFETCH_RUNS == 0:
                db.prefetch([r.run_id for r in runs[done - 1 : done - 1 + mlflow_db.PREFETCH_RUNS]])
            try:
                job.run(run, ids[run.experiment_id])
            except MltrailError as e:
                report.skipped.append(Skipped(f"run {run.run_id}", e.message))
            if progress is not None:
                progress(done, len(runs), run.name or run.run_id)
        # Those of no run, or of a run left out: the model holds its files itself.
        for model in [m for models in job.logged.values() for m in models]:
            job.logged_model(model, ids[model.experiment_id])
        for model in db.registered_models(list(models) if models else None):
            try:
                job.model(model)
            except MltrailError as e:
                report.skipped.append(Skipped(f"registered model {model.name}", e.message))
        for exp in found:
            target = ids[exp.experiment_id]
            if (
                exp.lifecycle_stage == "deleted"
                and target is not None
                and not dry_run
                and client.store.get_experiment(target).lifecycle_stage != "deleted"
            ):
                client.store.set_experiment_lifecycle(target, "deleted")
        return report
    finally:
        db.close()


def open_source(source: str) -> MlflowSource:
    """The reader of an MLflow store: a database URI, a file store folder or a server URL."""
    if source.startswith(("http://", "https://")):
        return MlflowRest(source)
    if "://" in source and not source.startswith("file:"):
        return MlflowDb(source)
    folder = folder_of(source)
    if folder is not None:
        return MlflowFiles(folder)
    path = Path(source)
    if path.is_file():
        raise InvalidInput(
            f"{source} is a file, not an MLflow file store folder",
            hint=f"For an MLflow SQLite database write sqlite:///{path.resolve()}.",
        )
    raise InvalidInput(
        f"{source} is not an MLflow store"
        + ("" if path.exists() else " (there is no such folder)"),
        hint="Pass a database (sqlite:///mlflow.db, postgresql://user@host/db), a file store "
        "folder (./mlruns) or a server (http://host:5000).",
    )


class _Import:
    """One import's writes into the target store."""

    def __init__(
        self,
        db: MlflowSource,
        store: TrackingStore,
        objects: ObjectStore,
        report: ImportReport,
        reader: ArtifactReader,
    ) -> None:
        self.db, self.store, self.objects, self.report = db, store, objects, report
        self.reader = reader
        self.dry_run = report.dry_run
        #: The source's logged models by their run (None: of none), until imported.
        self.logged: defaultdict[str | None, list[SourceLoggedModel]] = defaultdict(list)

    def experiment(self, exp: Any) -> str | None:
        """The target experiment of a source one: found by name, else created."""
        found = self.store.get_experiment_by_name(exp.name)
        if found is not None:
            self.report.experiments_existing += 1
            if not self.dry_run and found.lifecycle_stage == "deleted":
                # Restored so runs can be added; deleted again at the end if the source's is.
                self.store.set_experiment_lifecycle(found.experiment_id, "active")
            return found.experiment_id
        self.report.experiments_created += 1
        if self.dry_run:
            return None
        tags = {}
        for key, value in exp.tags.items():
            try:
                tags[v.check_key(key, "tag")] = v.check_tag_value(key, value)
            except InvalidInput as e:
                self.report.skipped.append(
                    Skipped(f"tag {key!r} of experiment {exp.name}", e.message)
                )
        return self.store.create_experiment(v.check_experiment_name(exp.name), tags)

    # -- runs --------------------------------------------------------------------------------
    def run(self, run: SourceRun, experiment_id: str | None) -> None:
        """Import one run, or bring an earlier import of it up to date."""
        signature = f"{run.status}:{run.end_time}:{run.lifecycle_stage}"
        try:
            existing = self.store.get_run(run.run_id)
        except NotFound:
            existing = None
        if existing is not None and existing.data.tags.get(MARKER) == signature:
            self.report.runs_unchanged += 1
            return
        if existing is None:
            self.report.runs_imported += 1
        else:
            self.report.runs_updated += 1
        if self.dry_run:
            return
        assert experiment_id is not None
        source_tags = self.db.key_values("tags", run.run_id)
        tags = self._tags(run, source_tags)
        if existing is None:
            self._create(run, experiment_id, source_tags, tags)
        else:
            self._reopen(run, tags)
        params = self._params(run)
        pending = self._metrics(run, fresh=existing is None)
        self._datasets(run)
        # Unmarked, a run whose artifacts could not be read is tried again next time.
        complete = self._artifacts(run)
        for model in self.logged.pop(run.run_id, []):
            complete = self.logged_model(model, experiment_id) and complete
        mark = {MARKER: signature} if complete else {}
        # One transaction: the params, the short series and the mark go in together or not.
        self._write(run, RunBatch(run.run_id, pending, params, mark))
        self.report.params += len(params)
        self.report.metric_points += len(pending)
        status = run.status if run.status in RunStatus.__members__ else "FAILED"
        self.store.update_run(run.run_id, status=status, end_time=run.end_time)
        if run.lifecycle_stage == "deleted":
            self.store.set_run_lifecycle(run.run_id, "deleted")

    def _tags(self, run: SourceRun, source: dict[str, str]) -> dict[str, str]:
        tags = {}
        for key, value in source.items():
            if key in system.FIELDS:
                continue
            try:
                mapped = v.check_key(system.to_mltrail(key), "tag")
                tags[mapped] = v.check_tag_value(key, value)
            except InvalidInput as e:
                self.report.skipped.append(Skipped(f"tag {key!r} of run {run.run_id}", e.message))
        return tags

    def _create(
        self, run: SourceRun, experiment_id: str, source: dict[str, str], tags: dict[str, str]
    ) -> None:
        from mltrail.tracking.client import generate_run_name

        name = (run.name or source.get(system.RUN_NAME) or generate_run_name())[
            : v.MAX_RUN_NAME_LENGTH
        ]
        parent = source.get(system.PARENT_RUN_ID) or None
        if parent is not None:
            try:
                self.store.get_run_info(parent)
            except NotFound:
                self.report.skipped.append(
                    Skipped(f"parent of run {run.run_id}", f"run {parent} is not imported")
                )
                parent = None
        self.store.create_run(
            experiment_id,
            v.check_run_name(name),
            run.user_id[:256],
            run.start_time,
            parent,
            tags,
            run_id=run.run_id,
        )

    def _reopen(self, run: SourceRun, tags: dict[str, str]) -> None:
        """Make an earlier import of the run writable again, and update its tags."""
        info = self.store.get_run_info(run.run_id)
        if info.lifecycle_stage == "deleted":
            self.store.set_run_lifecycle(run.run_id, "active")
        if info.status != RunStatus.RUNNING.value:
            self.store.update_run(run.run_id, status=RunStatus.RUNNING.value)
        if tags:
            self._write(run, RunBatch(run.run_id, tags=tags))

    def _write(self, run: SourceRun, batch: RunBatch) -> None:
        errors = self.store.write_batches([batch])
        if run.run_id in errors:
            raise errors[run.run_id]

    def _params(self, run: SourceRun) -> dict[str, str]:
        params = {}
        for key, value in self.db.key_values("params", run.run_id).items():
            try:
                params[v.check_key(key, "param")] = v.check_param_value(key, value)
            except InvalidInput as e:
                self.report.skipped.append(Skipped(f"param {key!r} of run {run.run_id}", e.message))
        return params

    def _metrics(self, run: SourceRun, *, fresh: bool) -> list[Metric]:
        """Write the run's long series; return the points of the short ones (read in one query),
        for the run's last transaction."""
        counts = {}
        for key, count in self.db.metric_counts(run.run_id).items():
            try:
                counts[v.check_key(key)] = count
            except InvalidInput as e:
                self.report.skipped.append(
                    Skipped(f"metric {key!r} of run {run.run_id}", e.message)
                )
        short = [k for k, n in counts.items() if fresh and n <= mlflow_db.METRIC_BATCH]
        for key in sorted(set(counts) - set(short)):
            # Points a killed or earlier import wrote are the first ones in the same order.
            done = 0 if fresh else len(self.store.get_metric_history(run.run_id, key))
            for points in self.db.metrics(run.run_id, key, skip=done):
                self._write(run, RunBatch(run.run_id, points))
                self.report.metric_points += len(points)
        return self.db.metric_points(run.run_id, short) if short else []

    def _datasets(self, run: SourceRun) -> None:
        inputs = self.db.dataset_inputs(run.run_id)
        log = getattr(self.store, "log_named_datasets", None)
        if not inputs:
            return
        if log is None:
            self.report.skipped.append(
                Skipped(f"dataset inputs of run {run.run_id}", "the target store keeps none")
            )
            return
        log(
            run.run_id,
            [
                NamedDataset(
                    d["name"][:500], d["digest"][:36], d["source_type"][:36], d["source"],
                    d["schema"], d["profile"], d["tags"],
                )
                for d in inputs
            ],
        )  # fmt: skip

    def _artifacts(self, run: SourceRun) -> bool:
        """Store the run's artifact files; False when some could not be read."""
        what = f"artifacts of run {run.run_id}"
        try:
            files, complete = self._store(self.reader.files(run.artifact_uri or ""), what)
        except (Unreadable, MltrailError) as e:
            self.report.skipped.append(Skipped(what, _why(e)))
            return False
        if files:
            self.store.add_artifacts(run.run_id, files)
        return complete

    def _store(self, found: list[ArtifactFile], what: str) -> tuple[list[FileInfo], bool]:
        """Store a location's files as objects: their entries, and False if some were left out."""
        files = []
        complete = True
        for item in found:
            try:
                rel = v.check_artifact_path(item.path)
            except InvalidInput as e:
                self.report.skipped.append(Skipped(f"file {item.path!r} of the {what}", e.message))
                complete = False
                continue
            info = item.put(self.objects)
            files.append(FileInfo(rel, info.hash, info.size, 0o755 if item.executable else 0o644))
            self.report.artifacts += 1
            self.report.artifact_bytes += info.size
        return files, complete

    def logged_model(self, model: SourceLoggedModel, experiment_id: str | None) -> bool:
        """Import an MLflow 3 logged model with its id, params, tags and files (among its run's
        artifacts when it has one); False when it could not be (a skip says why)."""
        what = f"logged model {model.model_id}"
        if not hasattr(self.store, "create_logged_model"):
            self.report.skipped.append(Skipped(what, "the target store keeps no logged models"))
            return False
        status = model.status if model.status in ("READY", "FAILED") else "FAILED"
        try:
            existing = self.store.get_logged_model(model.model_id)
        except NotFound:
            existing = None
        if existing is not None and existing.status == status:
            self.report.logged_models_existing += 1
            return True
        self.report.logged_models_imported += 1
        if self.dry_run:
            return True
        assert experiment_id is not None
        try:
            found = self.reader.files(model.artifact_location)
            if existing is None:
                run_id = model.run_id if model.run_id and self._has_run(model.run_id) else None
                params = self._checked(model.params, what)
                tags = self._checked(model.tags, what)
                existing = self.store.create_logged_model(
                    experiment_id, model.name[:500] or "model", run_id,
                    model.model_type, params, tags, model_id=model.model_id,
                )  # fmt: skip
            files, complete = self._store(found, what)
            # Until its files are all in, the model stays PENDING: a rerun completes it.
            self.store.add_logged_model_files(model.model_id, files)
            if existing.run_id is not None:
                self.store.log_run_models(existing.run_id, "output", [(model.model_id, 0)])
            if complete:
                self.store.set_logged_model_status(model.model_id, status)
                if model.lifecycle_stage == "deleted":
                    self.store.delete_logged_model(model.model_id)
            return complete
        except (Unreadable, MltrailError) as e:
            self.report.logged_models_imported -= 1
            self.report.skipped.append(Skipped(what, _why(e)))
            return False

    def _logged_ready(self, model_id: str) -> bool:
        if not hasattr(self.store, "get_logged_model"):
            return False
        try:
            return self.store.get_logged_model(model_id).status == "READY"
        except NotFound:
            return False

    def _has_run(self, run_id: str) -> bool:
        try:
            self.store.get_run_info(run_id)
        except NotFound:
            return False
        return True

    # -- the registry ------------------------------------------------------------------------
    def model(self, model: SourceModel) -> None:
        """Import a registered model: its versions (with their numbers), stages and aliases."""
        try:
            self.store.get_registered_model(model.name)
            existing = True
        except NotFound:
            existing = False
        if not existing:
            self.report.models_created += 1
            if not self.dry_run:
                tags = self._checked(model.tags, f"registered model {model.name}")
                self.store.create_registered_model(
                    v.check_model_name(model.name), model.description, tags, IMPORT_ACTOR,
                    IMPORT_COMMENT,
                )  # fmt: skip
        have = (
            {mv.version for mv in self.store.list_model_versions(model.name, include_deleted=True)}
            if existing
            else set()
        )
        for version in model.versions:
            if version["version"] in have:
                self.report.versions_existing += 1
                continue
            self.report.versions_imported += 1
            if self.dry_run:
                continue
            try:
                self._version(model.name, version)
            except MltrailError as e:
                self.report.versions_imported -= 1
                what = f"version {version['version']} of {model.name}"
                self.report.skipped.append(Skipped(what, e.message))
        if self.dry_run:
            return
        present = {mv.version: mv for mv in self.store.list_model_versions(model.name)}
        for alias, number in model.aliases.items():
            if number in present and alias not in present[number].aliases:
                self.store.set_model_alias(model.name, alias, number, IMPORT_ACTOR, IMPORT_COMMENT)

    def _version(self, name: str, version: dict[str, Any]) -> None:
        source = version["source"]
        run_id = version["run_id"]
        recorded, artifact_path, files = self._version_files(name, version)
        if not any(f.path == "MLmodel" for f in files):
            raise InvalidInput(f"its files ({source}) hold no MLmodel file")
        what = f"version {version['version']} of {name} has a model at {source}"
        tree = store_model_tree(self.objects, files, what)
        if run_id and not self._has_run(run_id):
            run_id = None  # its run is not imported (another experiment, or purged)
        self.store.create_model_version(
            name,
            recorded,
            run_id,
            artifact_path,
            tree,
            version["description"],
            self._checked(version["tags"], f"version {version['version']} of {name}"),
            (version["user_id"] or IMPORT_ACTOR)[:256],
            IMPORT_COMMENT,
            version=version["version"],
        )
        if version["stage"] in v.MODEL_STAGES and version["stage"] != "None":
            self.store.transition_model_version_stage(
                name, version["version"], version["stage"], False, IMPORT_ACTOR, IMPORT_COMMENT
            )

    def _version_files(
        self, name: str, version: dict[str, Any]
    ) -> tuple[str, str | None, list[FileInfo]]:
        """(source to record, artifact path in its run, files) of a version's model folder.

        Files come from the run's imported artifacts when the source is inside them (``runs:/``,
        or the run's artifact folder), else from the folder the source names (a logged model's
        location, or any local folder).
        """
        from mltrail.mlflow_api.uris import logged_model_id

        source = version["source"]
        run_id = version["run_id"]
        inside = _path_in_run(source, run_id)
        if run_id and inside is not None:
            try:
                listed = self.store.list_artifacts(run_id, inside)
            except NotFound:
                listed = []
            prefix = inside + "/"
            files = [
                FileInfo(f.path[len(prefix) :], f.hash, f.size, f.mode)
                for f in listed
                if f.path.startswith(prefix)
            ]
            if files:
                return f"runs:/{run_id}/{inside}", inside, files
        model_id = logged_model_id(source)
        if model_id and self._logged_ready(model_id):
            # The logged model came across already: its stored files, not a second read.
            stored = self.store.list_logged_model_files(model_id)
            if any(f.path == "MLmodel" for f in stored):
                return source[: v.MAX_MODEL_SOURCE_LENGTH], None, stored
        # MLflow 3 records where a logged model's files are; older versions name the folder.
        location = version["storage_location"] or ""
        if not location and model_id:
            location = self.db.logged_model_location(model_id) or ""
        location = location or source
        try:
            found = self.reader.files(location)
        except Unreadable as e:
            raise InvalidInput(f"its files cannot be read: {e.why}") from None
        if not found:
            raise InvalidInput(f"its files ({location}) cannot be read")
        files, _ = self._store(found, f"version {version['version']} of {name}")
        return source[: v.MAX_MODEL_SOURCE_LENGTH], None, files

    def _checked(self, tags: dict[str, str], owner: str) -> dict[str, str]:
        found = {}
        for key, value in tags.items():
            try:
                found[v.check_key(key, "tag")] = v.check_tag_value(key, value)
            except InvalidInput as e:
                self.report.skipped.append(Skipped(f"tag {key!r} of {owner}", e.message))
        return found


def _why(e: Unreadable | MltrailError) -> str:
    return e.why if isinstance(e, Unreadable) else e.message


def _path_in_run(source: str, run_id: str | None) -> str | None:
    """The artifact path a version's source names inside its run's artifacts, if it does."""
    if not run_id:
        return None
    if source.startswith("runs:/"):
        rest = source[len("runs:/") :]
        head, _, path = rest.partition("/")
        return path.strip("/") or None if head == run_id else None
    marker = f"/{run_id}/artifacts/"
    if marker in source:
        return source.split(marker, 1)[1].strip("/") or None
    return None
