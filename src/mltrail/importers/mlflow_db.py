"""An MLflow tracking database, read read-only: what ``mltrail import mlflow`` imports from.

MLflow keeps its tracking and registry data in one SQL database (``sqlite:///mlflow.db`` or
PostgreSQL) whose schema its Alembic migrations define; the tables read here have kept their
columns from MLflow 1.x to 3.x. The connection is opened read-only (SQLite ``mode=ro``,
PostgreSQL read-only transactions): an import never migrates or writes the source.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from mltrail.entities import Metric
from mltrail.errors import InvalidInput, StoreError

#: The Alembic revisions of every MLflow release this importer knows (1.x through 3.17):
#: the source's must be one of them, or its tables may mean something else.
KNOWN_REVISIONS = frozenset(
    [
        "0584bdc529eb",
        "0a8213491aaa",
        "0c779009ac13",
        "17e22815139b",
        "181f10493468",
        "1971f2d9a75b",
        "1a0cddfcaa16",
        "1b5f0d9ad7c1",
        "1bd49d398cd23",
        "27a6a02d2cf1",
        "2b4d017a5e9b",
        "2c33131f4dae",
        "2d6e25af4d3e",
        "3500859a5d39",
        "39d1c3be5f05",
        "3da73c924c2f",
        "400f98739977",
        "4465047574b1",
        "451aebb31d03",
        "534353b11cbc",
        "5b0e9adcef9c",
        "5d2d30f0abce",
        "6953534de441",
        "6f8d9c3b2a1e",
        "71994744cf8e",
        "728d730b5ebd",
        "75868b020152",
        "76601a5f987d",
        "770bee3ae1dd",
        "7ac759974ad8",
        "7d34483879f0",
        "7f2a7d5fae7d",
        "84291f40a231",
        "867495a8f9d4",
        "89d3d66ed43f",
        "89d4b8295536",
        "90e64c465722",
        "97727af70f4d",
        "a1b2c3d4e5f6",
        "a5b4c3d2e1f0",
        "a8b9c0d1e2f3",
        "a8c4a736bde6",
        "acf3f17fdcc7",
        "ae8bbe7743c9",
        "b7c8d9e0f1a2",
        "b7e2c1a4d9f3",
        "b7e4c1a90f23",
        "bd07f7e963c5",
        "bda7b8c39065",
        "bf29a5ff90ea",
        "c1d2e3f4a5b6",
        "c3d6457b6d8a",
        "c3d9e7f1a2b4",
        "c48cb773bb87",
        "c8d9e0f1a2b3",
        "c9d4e5f6a7b8",
        "cbc13b556ace",
        "cc1f77228345",
        "cfd24bdc0731",
        "d0e1f2a3b4c5",
        "d3e4f5a6b7c8",
        "da6fb0208061",
        "dc11669786a5",
        "de4033877273",
        "df50e92ffc5e",
        "e1f2a3b4c5d6",
        "f5a4f2784254",
    ]
)
_REQUIRED = {
    "experiments": {"experiment_id", "name", "lifecycle_stage"},
    "runs": {"run_uuid", "user_id", "status", "start_time", "end_time", "lifecycle_stage"},
    "params": {"key", "value", "run_uuid"},
    "tags": {"key", "value", "run_uuid"},
    "metrics": {"key", "value", "timestamp", "step", "run_uuid"},
}
#: The stage MLflow gives a deleted model version (it keeps the row, so the number stays taken).
DELETED_STAGE = "Deleted_Internal"
#: Metric points read and written per batch: memory stays flat on long histories.
METRIC_BATCH = 20_000
#: Runs whose params, tags and short series are read together (MlflowDb.prefetch).
PREFETCH_RUNS = 500


@dataclass
class SourceExperiment:
    """An experiment of the source."""

    experiment_id: str
    name: str
    lifecycle_stage: str
    artifact_location: str | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceRun:
    """A run of the source, without its params, tags and metrics (read on demand)."""

    run_id: str
    experiment_id: str
    name: str | None
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str | None


@dataclass
class SourceModel:
    """A registered model of the source, with its versions (oldest first) and aliases."""

    name: str
    description: str | None
    tags: dict[str, str] = field(default_factory=dict)
    versions: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass
class SourceLoggedModel:
    """An MLflow 3 logged model of the source (its files are at ``artifact_location``)."""

    model_id: str
    experiment_id: str
    name: str
    run_id: str | None
    model_type: str | None
    status: str
    lifecycle_stage: str
    artifact_location: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


#: MLflow's LoggedModelStatus as numbers (databases, file store) and as names (REST).
LOGGED_MODEL_STATUS = {
    1: "PENDING", 2: "READY", 3: "FAILED",
    "LOGGED_MODEL_PENDING": "PENDING", "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
}  # fmt: skip


def _value(value: float | None, is_nan: object) -> float:
    # MLflow stores NaN as is_nan=1 (and 0 or NULL in value, which SQLite cannot hold as NaN).
    return math.nan if is_nan or value is None else float(value)


def _read_only(uri: str) -> sa.Engine:
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        import os

        if not os.path.exists(path):
            raise InvalidInput(
                f"no MLflow database at {path}",
                hint="Pass the file MLflow's --backend-store-uri names, e.g. sqlite:///mlflow.db.",
            )
        # SQLite's URI form opens the file read-only, whatever the process may write.
        return sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    if uri.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from mltrail.store.engine import normalize_uri

        return sa.create_engine(
            normalize_uri(uri),
            connect_args={"options": "-c default_transaction_read_only=on"},
        )
    raise InvalidInput(
        f"{uri!r} is not an MLflow database URI",
        hint="Pass sqlite:///path/to/mlflow.db or postgresql://user@host/db.",
    )


class MlflowDb:
    """The tables of one MLflow database, read-only."""

    kind = "database"

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.engine = _read_only(uri)
        self._cache: dict[str, dict[str, Any]] = {}
        try:
            with self.engine.connect() as conn:
                inspector = sa.inspect(conn)
                names = set(inspector.get_table_names())
                self.revision = self._revision(conn, names)
                self.columns = {
                    name: {c["name"] for c in inspector.get_columns(name)} for name in names
                }
        except sa.exc.OperationalError as e:
            raise StoreError(f"cannot read the MLflow database {uri}: {e.orig}") from None
        for table, needed in _REQUIRED.items():
            missing = needed - self.columns.get(table, set())
            if missing:
                raise InvalidInput(
                    f"{uri} is not an MLflow tracking database: table {table!r} lacks "
                    f"{', '.join(sorted(missing))}"
                )
        meta = sa.MetaData()
        meta.reflect(self.engine, only=[n for n in self.columns if not n.startswith("_")])
        self.tables = meta.tables

    def _revision(self, conn: sa.Connection, names: set[str]) -> str:
        if "alembic_version" not in names or "experiments" not in names:
            raise InvalidInput(
                f"{self.uri} is not an MLflow tracking database (it has no MLflow tables)",
                hint="Pass the database MLflow's server or client used (--backend-store-uri).",
            )
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if revision not in KNOWN_REVISIONS:
            raise InvalidInput(
                f"{self.uri} has MLflow schema revision {revision!r}, which this mltrail does "
                "not know",
                hint="It comes from an MLflow newer than 3.17; upgrade mltrail, or import "
                "through that MLflow's server (mltrail import mlflow http://host:5000).",
            )
        return str(revision)

    def has(self, table: str, column: str | None = None) -> bool:
        """Whether the source has a table (and a column of it)."""
        return table in self.tables and (column is None or column in self.columns[table])

    def close(self) -> None:
        """Release the connection."""
        self.engine.dispose()

    # -- reading -----------------------------------------------------------------------------
    def experiments(self) -> list[SourceExperiment]:
        """Every experiment, with its tags, ordered by id."""
        e = self.tables["experiments"].c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.tables["experiments"]).order_by(e.experiment_id))
            found = {
                str(r.experiment_id): SourceExperiment(
                    str(r.experiment_id),
                    r.name,
                    r.lifecycle_stage,
                    getattr(r, "artifact_location", None),
                )
                for r in rows
            }
            if self.has("experiment_tags"):
                t = self.tables["experiment_tags"].c
                for key, value, exp in conn.execute(sa.select(t.key, t.value, t.experiment_id)):
                    if str(exp) in found:
                        found[str(exp)].tags[key] = value or ""
        return list(found.values())

    def runs(self, experiment_ids: list[str]) -> list[SourceRun]:
        """The runs of the experiments, oldest first (parents before their children)."""
        r = self.tables["runs"].c
        query = (
            sa.select(self.tables["runs"])
            .where(r.experiment_id.in_([int(x) for x in experiment_ids]))
            .order_by(r.start_time, r.run_uuid)
        )
        with self.engine.connect() as conn:
            return [
                SourceRun(
                    row.run_uuid,
                    str(row.experiment_id),
                    getattr(row, "name", None),
                    row.user_id or "unknown",
                    row.status,
                    row.start_time or 0,
                    row.end_time,
                    row.lifecycle_stage,
                    getattr(row, "artifact_uri", None),
                )
                for row in conn.execute(query)
            ]

    def prefetch(self, run_ids: list[str]) -> None:
        """Read the params, tags, metric counts, short series and dataset inputs of many runs
        in a few queries: the import then asks for them run by run from memory."""
        cache: dict[str, dict[str, Any]] = {
            "params": {r: {} for r in run_ids}, "tags": {r: {} for r in run_ids},
            "counts": {r: {} for r in run_ids}, "points": {}, "inputs": {},
        }  # fmt: skip
        with self.engine.connect() as conn:
            for table in ("params", "tags"):
                c = self.tables[table].c
                for run, k, x in conn.execute(
                    sa.select(c.run_uuid, c.key, c.value).where(c.run_uuid.in_(run_ids))
                ):
                    cache[table][run][k] = "" if x is None else x
            c = self.tables["metrics"].c
            for run, k, n in conn.execute(
                sa.select(c.run_uuid, c.key, sa.func.count())
                .where(c.run_uuid.in_(run_ids))
                .group_by(c.run_uuid, c.key)
            ):
                cache["counts"][run][k] = n
            # Runs with a long series read theirs in batches (metrics()); the rest in one go.
            short = [r for r in run_ids if sum(cache["counts"][r].values()) <= METRIC_BATCH]
            if short:
                cache["points"] = {r: [] for r in short}
                for row in conn.execute(self._points_query(short, None)):
                    cache["points"][row[0]].append(self._point(row))
        cache["inputs"] = self._dataset_inputs(run_ids)
        self._cache = cache

    def _points_query(self, run_ids: list[str], keys: list[str] | None) -> sa.Select[Any]:
        c = self.tables["metrics"].c
        nan = [c.is_nan] if "is_nan" in self.columns["metrics"] else []
        query = sa.select(c.run_uuid, c.key, c.value, c.timestamp, c.step, *nan).where(
            c.run_uuid.in_(run_ids)
        )
        if keys is not None:
            query = query.where(c.key.in_(keys))
        return query.order_by(c.run_uuid, c.key, c.step, c.timestamp, c.value)

    @staticmethod
    def _point(row: Any) -> Metric:
        return Metric(row[1], _value(row[2], len(row) > 5 and row[5]), int(row[3]), int(row[4]))

    def _cached(self, part: str, run_id: str) -> Any:
        return self._cache.get(part, {}).get(run_id)

    def key_values(self, table: str, run_id: str) -> dict[str, str]:
        """A run's params or tags."""
        cached = self._cached(table, run_id)
        if cached is not None:
            return dict(cached)
        c = self.tables[table].c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.key, c.value).where(c.run_uuid == run_id))
            return {k: "" if v is None else v for k, v in rows}

    def metric_counts(self, run_id: str) -> dict[str, int]:
        """How many points each metric of a run has."""
        cached = self._cached("counts", run_id)
        if cached is not None:
            return dict(cached)
        c = self.tables["metrics"].c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.key, sa.func.count()).where(c.run_uuid == run_id).group_by(c.key)
            )
            return dict(rows.all())  # type: ignore[arg-type]

    def metric_points(self, run_id: str, keys: list[str]) -> list[Metric]:
        """Every point of the run's metrics ``keys``, in one query (for short series)."""
        cached = self._cached("points", run_id)
        if cached is not None:
            wanted = set(keys)
            return [m for m in cached if m.key in wanted]
        with self.engine.connect() as conn:
            return [self._point(r) for r in conn.execute(self._points_query([run_id], keys))]

    def metrics(self, run_id: str, key: str, skip: int = 0) -> Iterator[list[Metric]]:
        """One metric's points in batches, by step, then time, then value, after the first
        ``skip`` (those a previous import wrote)."""
        query = self._points_query([run_id], [key]).offset(skip)
        with self.engine.connect().execution_options(stream_results=True) as conn:
            result = conn.execute(query)
            while chunk := result.fetchmany(METRIC_BATCH):
                yield [self._point(row) for row in chunk]

    def dataset_inputs(self, run_id: str) -> list[dict[str, Any]]:
        """The datasets a run logged as inputs (MLflow 2.4+), with their input tags."""
        cached = self._cached("inputs", run_id)
        if cached is not None:
            return list(cached)
        return self._dataset_inputs([run_id]).get(run_id, [])

    def _dataset_inputs(self, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {r: [] for r in run_ids}
        if not (self.has("inputs") and self.has("datasets")):
            return found
        i, d = self.tables["inputs"].c, self.tables["datasets"].c
        query = (
            sa.select(i.destination_id, i.input_uuid, d.name, d.digest, d.dataset_source_type,
                      d.dataset_source, d.dataset_schema, d.dataset_profile)
            .select_from(self.tables["inputs"].join(self.tables["datasets"],
                                                      i.source_id == d.dataset_uuid))
            .where(i.destination_id.in_(run_ids), i.source_type == "DATASET",
                   i.destination_type == "RUN")
        )  # fmt: skip
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            tags: dict[str, dict[str, str]] = {row.input_uuid: {} for row in rows}
            if rows and self.has("input_tags"):
                t = self.tables["input_tags"].c
                for uuid, name, value in conn.execute(
                    sa.select(t.input_uuid, t.name, t.value).where(t.input_uuid.in_(list(tags)))
                ):
                    tags[uuid][name] = value
        for row in rows:
            found[row.destination_id].append(
                {
                    "name": row.name,
                    "digest": row.digest,
                    "source_type": row.dataset_source_type or "",
                    "source": row.dataset_source or "",
                    "schema": row.dataset_schema,
                    "profile": row.dataset_profile,
                    "tags": tags[row.input_uuid],
                }
            )
        return found

    def registered_models(self, names: list[str] | None = None) -> list[SourceModel]:
        """The registered models (only ``names`` if given), with versions, tags and aliases."""
        if not self.has("registered_models"):
            return []
        m = self.tables["registered_models"].c
        found: dict[str, SourceModel] = {}
        with self.engine.connect() as conn:
            query = sa.select(self.tables["registered_models"]).order_by(m.name)
            if names:
                query = query.where(m.name.in_(names))
            for row in conn.execute(query):
                found[row.name] = SourceModel(row.name, row.description)
            if not found:
                return []
            wanted = list(found)
            if self.has("registered_model_tags"):
                t = self.tables["registered_model_tags"].c
                for row in conn.execute(
                    sa.select(t.name, t.key, t.value).where(t.name.in_(wanted))
                ):
                    found[row.name].tags[row.key] = row.value or ""
            v = self.tables["model_versions"].c
            version_tags: dict[tuple[str, int], dict[str, str]] = {}
            if self.has("model_version_tags"):
                t = self.tables["model_version_tags"].c
                for row in conn.execute(
                    sa.select(t.name, t.version, t.key, t.value).where(t.name.in_(wanted))
                ):
                    version_tags.setdefault((row.name, int(row.version)), {})[row.key] = (
                        row.value or ""
                    )
            for row in conn.execute(
                sa.select(self.tables["model_versions"])
                .where(v.name.in_(wanted), v.current_stage != DELETED_STAGE)
                .order_by(v.name, v.version)
            ):
                found[row.name].versions.append(
                    {
                        "version": int(row.version),
                        "description": row.description,
                        "user_id": row.user_id,
                        "stage": row.current_stage or "None",
                        "source": row.source or "",
                        "storage_location": getattr(row, "storage_location", None),
                        "run_id": row.run_id or None,
                        "status": row.status,
                        "tags": version_tags.get((row.name, int(row.version)), {}),
                    }
                )
            if self.has("registered_model_aliases"):
                a = self.tables["registered_model_aliases"].c
                for row in conn.execute(
                    sa.select(a.name, a.alias, a.version).where(a.name.in_(wanted))
                ):
                    found[row.name].aliases[row.alias] = int(row.version)
        return list(found.values())

    def logged_models(self, experiment_ids: list[str]) -> list[SourceLoggedModel]:
        """The logged models of the experiments (MLflow 3), with their params and tags."""
        if not self.has("logged_models"):
            return []
        c = self.tables["logged_models"].c
        query = (
            sa.select(self.tables["logged_models"])
            .where(c.experiment_id.in_([int(x) for x in experiment_ids]))
            .order_by(c.creation_timestamp_ms, c.model_id)
        )
        with self.engine.connect() as conn:
            found = {
                r.model_id: SourceLoggedModel(
                    r.model_id, str(r.experiment_id), r.name, r.source_run_id or None,
                    r.model_type, LOGGED_MODEL_STATUS.get(r.status, "READY"),
                    r.lifecycle_stage or "active", r.artifact_location,
                )
                for r in conn.execute(query)
            }  # fmt: skip
            for table, field_name in (("logged_model_params", "params"),
                                      ("logged_model_tags", "tags")):  # fmt: skip
                if not found or not self.has(table):
                    continue
                t = self.tables[table].c
                kind = "param" if field_name == "params" else "tag"
                key, value = t[f"{kind}_key"], t[f"{kind}_value"]
                for model_id, k, x in conn.execute(
                    sa.select(t.model_id, key, value).where(t.model_id.in_(list(found)))
                ):
                    getattr(found[model_id], field_name)[k] = x or ""
        return list(found.values())

    def logged_model_location(self, model_id: str) -> str | None:
        """Where an MLflow 3 logged model's files are (its artifact location), or None."""
        if not self.has("logged_models"):
            return None
        c = self.tables["logged_models"].c
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(c.artifact_location).where(c.model_id == model_id)
            ).scalar()
