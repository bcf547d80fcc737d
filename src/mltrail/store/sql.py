"""The SQL implementation of the metadata store: SQLite (embedded) and PostgreSQL (team)."""

from __future__ import annotations

import base64
import copy
import functools
import gc
import json
import math
import random
import time
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from mltrail.entities import (
    DatasetRef,
    DatasetSummary,
    DatasetUse,
    Experiment,
    FileInfo,
    LifecycleStage,
    Metric,
    PagedList,
    Run,
    RunBatch,
    RunData,
    RunDataset,
    RunInfo,
    RunStatus,
    ViewType,
    metric_value_from_db,
    metric_value_to_db,
)
from mltrail.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidState,
    MltrailError,
    NotFound,
    ParamChanged,
)
from mltrail.store import schema as t
from mltrail.store.base import MAX_RESULTS_LIMIT, MetricArrays, TrackingStore
from mltrail.store.engine import WRITE, chunks, is_sqlite, make_engine
from mltrail.store.migrate import ensure_schema
from mltrail.store.sql_auth import SqlAuthMixin
from mltrail.store.sql_logged_models import SqlLoggedModels
from mltrail.store.sql_registry import SqlRegistryMixin
from mltrail.validation import (
    check_dataset_direction,
    check_dataset_ref,
    check_run_writable,
)

_ACTIVE = LifecycleStage.ACTIVE.value
_DELETED = LifecycleStage.DELETED.value


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def _experiment_pk(experiment_id: str | int) -> int:
    try:
        pk = int(experiment_id)
    except (TypeError, ValueError):
        pk = -1
    if not 0 <= pk <= _MAX_EXPERIMENT_PK:
        raise NotFound(f"experiment id {experiment_id!r} does not exist")
    return pk


def _maybe_experiment_pk(experiment_id: str | int) -> int:
    """The primary key an experiment id names, or -1 if no experiment can have it."""
    try:
        return _experiment_pk(experiment_id)
    except NotFound:
        return -1


_INSERT_METRICS = 'INSERT INTO metrics (run_pk, key, step, "timestamp", value)'
# Built once, as every write batch asks it.
_WRITABLE_RUN = sa.select(t.runs.c.run_pk, t.runs.c.status, t.runs.c.lifecycle_stage).where(
    t.runs.c.run_id == sa.bindparam("run_id")
)

# experiments.experiment_id is a 32-bit INTEGER; a larger id can only be absent.
_MAX_EXPERIMENT_PK = 2**31 - 1


class SqlStore(SqlAuthMixin, SqlRegistryMixin, SqlLoggedModels, TrackingStore):
    """Metadata in a SQL database through SQLAlchemy Core."""

    def __init__(self, uri: str, where: str | None = None, *, migrate: bool = True) -> None:
        self.uri = uri
        self.engine = make_engine(uri)
        ensure_schema(self.engine, where or uri, upgrade=migrate)
        self._sqlite = is_sqlite(self.engine)
        insert_mod: Any
        if self._sqlite:
            from sqlalchemy.dialects import sqlite as insert_mod
        else:
            from sqlalchemy.dialects import postgresql as insert_mod
        self._upsert = insert_mod.insert

    #: Whether runs that ended still take data (see :meth:`finished_runs_writable`).
    _finished_runs_writable = False

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()

    def finished_runs_writable(self) -> SqlStore:
        """This store (sharing its connections) with MLflow's rule: an ended run takes data.

        mltrail's own API logs to RUNNING runs only; the mlflow client also writes to runs that
        ended (its autologging logs evaluation datasets after ``fit`` closed the run), so the
        MLflow API serves it through this view.
        """
        view = copy.copy(self)
        view._finished_runs_writable = True
        return view

    def _read(self) -> sa.Connection:
        return self.engine.connect()

    def _write(self) -> sa.Connection:
        return self.engine.connect().execution_options(**WRITE)

    # -- experiments -------------------------------------------------------------------------
    def create_experiment(self, name: str, tags: dict[str, str] | None = None) -> str:
        """Create an experiment and return its id."""
        now = now_ms()
        with self._write() as conn, conn.begin():
            existing = conn.execute(
                sa.select(t.experiments.c.lifecycle_stage).where(t.experiments.c.name == name)
            ).first()
            if existing is not None:
                hint = (
                    "It is deleted: restore it with `mltrail exp restore` or pick another name."
                    if existing[0] == _DELETED
                    else None
                )
                raise AlreadyExists(f"experiment {name!r} already exists", hint=hint)
            result = conn.execute(
                t.experiments.insert().values(
                    name=name, lifecycle_stage=_ACTIVE, creation_time=now, last_update_time=now
                )
            )
            experiment_id = result.inserted_primary_key[0]
            if tags:
                conn.execute(
                    t.experiment_tags.insert(),
                    [
                        {"experiment_id": experiment_id, "key": k, "value": v}
                        for k, v in tags.items()
                    ],
                )
        return str(experiment_id)

    def _experiments(self, conn: sa.Connection, where: Any) -> list[Experiment]:
        rows = conn.execute(
            sa.select(t.experiments).where(where).order_by(t.experiments.c.experiment_id)
        ).all()
        if not rows:
            return []
        ids = [r.experiment_id for r in rows]
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        for chunk in chunks(ids):
            for tag in conn.execute(
                sa.select(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(chunk))
            ):
                tags[tag.experiment_id][tag.key] = tag.value
        return [
            Experiment(
                experiment_id=str(r.experiment_id),
                name=r.name,
                lifecycle_stage=r.lifecycle_stage,
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
                tags=tags[r.experiment_id],
            )
            for r in rows
        ]

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return an experiment by id."""
        pk = _experiment_pk(experiment_id)
        with self._read() as conn:
            found = self._experiments(conn, t.experiments.c.experiment_id == pk)
        if not found:
            raise NotFound(f"experiment id {experiment_id!r} does not exist")
        return found[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return an experiment by name, or None."""
        with self._read() as conn:
            found = self._experiments(conn, t.experiments.c.name == name)
        return found[0] if found else None

    def list_experiments(self, view: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        """Return the experiments in a view, ordered by id."""
        with self._read() as conn:
            return self._experiments(conn, t.experiments.c.lifecycle_stage.in_(view.stages))

    def experiment_summaries(self, experiment_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Return (active run count, latest start time) per experiment id."""
        pks = [_experiment_pk(e) for e in experiment_ids]
        out = {str(pk): (0, 0) for pk in pks}
        with self._read() as conn:
            for chunk in chunks(pks):
                rows = conn.execute(
                    sa.select(
                        t.runs.c.experiment_id,
                        sa.func.count(),
                        sa.func.max(t.runs.c.start_time),
                    )
                    .where(t.runs.c.experiment_id.in_(chunk), t.runs.c.lifecycle_stage == _ACTIVE)
                    .group_by(t.runs.c.experiment_id)
                )
                for exp_id, count, latest in rows:
                    out[str(exp_id)] = (count, latest or 0)
        return out

    def set_experiment_lifecycle(self, experiment_id: str, stage: str) -> None:
        """Delete or restore an experiment together with its runs."""
        pk = _experiment_pk(experiment_id)
        now = now_ms()
        with self._write() as conn, conn.begin():
            row = conn.execute(
                sa.select(t.experiments.c.lifecycle_stage, t.experiments.c.last_update_time).where(
                    t.experiments.c.experiment_id == pk
                )
            ).first()
            if row is None:
                raise NotFound(f"experiment id {experiment_id!r} does not exist")
            if row.lifecycle_stage == stage:
                raise InvalidState(f"experiment id {experiment_id!r} is already {stage}")
            if pk == 0 and stage == _DELETED:
                raise InvalidState("the Default experiment (id 0) cannot be deleted")
            conn.execute(
                t.experiments.update()
                .where(t.experiments.c.experiment_id == pk)
                .values(lifecycle_stage=stage, last_update_time=now)
            )
            runs = t.runs.c
            if stage == _DELETED:
                conn.execute(
                    t.runs.update()
                    .where(runs.experiment_id == pk, runs.lifecycle_stage == _ACTIVE)
                    .values(lifecycle_stage=_DELETED, deleted_time=now)
                )
            else:
                # Only the runs the experiment's deletion took down; runs deleted on their own
                # before it stay deleted.
                conn.execute(
                    t.runs.update()
                    .where(
                        runs.experiment_id == pk,
                        runs.lifecycle_stage == _DELETED,
                        runs.deleted_time >= row.last_update_time,
                    )
                    .values(lifecycle_stage=_ACTIVE, deleted_time=None)
                )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        pk = _experiment_pk(experiment_id)
        with self._write() as conn, conn.begin():
            if conn.execute(
                sa.select(t.experiments.c.experiment_id).where(t.experiments.c.name == new_name)
            ).first():
                raise AlreadyExists(f"experiment {new_name!r} already exists")
            result = conn.execute(
                t.experiments.update()
                .where(t.experiments.c.experiment_id == pk)
                .values(name=new_name, last_update_time=now_ms())
            )
            if result.rowcount == 0:
                raise NotFound(f"experiment id {experiment_id!r} does not exist")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set one experiment tag."""
        pk = _experiment_pk(experiment_id)
        self.get_experiment(experiment_id)
        stmt = self._upsert(t.experiment_tags).values(experiment_id=pk, key=key, value=value)
        stmt = stmt.on_conflict_do_update(
            index_elements=["experiment_id", "key"], set_={"value": stmt.excluded.value}
        )
        with self._write() as conn, conn.begin():
            conn.execute(stmt)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove one experiment tag."""
        pk = _experiment_pk(experiment_id)
        self.get_experiment(experiment_id)
        c = t.experiment_tags.c
        with self._write() as conn, conn.begin():
            gone = conn.execute(
                t.experiment_tags.delete().where(c.experiment_id == pk, c.key == key)
            )
        if gone.rowcount == 0:
            raise NotFound(f"experiment id {experiment_id!r} has no tag {key!r}")

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        run_name: str,
        user_id: str,
        start_time: int,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run."""
        pk = _experiment_pk(experiment_id)
        if run_id is not None:
            found = self._same_run(run_id, pk, start_time)
            if found is not None:
                return found
        run_id = run_id or uuid.uuid4().hex
        with self._write() as conn, conn.begin():
            exp = conn.execute(
                sa.select(t.experiments.c.lifecycle_stage).where(
                    t.experiments.c.experiment_id == pk
                )
            ).first()
            if exp is None:
                raise NotFound(f"experiment id {experiment_id!r} does not exist")
            if exp.lifecycle_stage != _ACTIVE:
                raise InvalidState(
                    f"experiment id {experiment_id!r} is deleted; runs cannot be created in it",
                    hint="Restore it with `mltrail exp restore` or use another experiment.",
                )
            if parent_run_id is not None:
                self._run_row(conn, parent_run_id)
            run_pk = conn.execute(
                t.runs.insert().values(
                    run_id=run_id,
                    experiment_id=pk,
                    name=run_name,
                    status=RunStatus.RUNNING.value,
                    user_id=user_id,
                    start_time=start_time,
                    lifecycle_stage=_ACTIVE,
                    parent_run_id=parent_run_id,
                )
            ).inserted_primary_key[0]
            if tags:
                conn.execute(
                    t.tags.insert(),
                    [{"run_pk": run_pk, "key": k, "value": v} for k, v in tags.items()],
                )
        info = RunInfo(
            run_id=run_id,
            experiment_id=str(pk),
            run_name=run_name,
            status=RunStatus.RUNNING.value,
            user_id=user_id,
            start_time=start_time,
            end_time=None,
            lifecycle_stage=_ACTIVE,
            parent_run_id=parent_run_id,
        )
        return Run(info, RunData(tags=dict(tags or {})))

    def _same_run(self, run_id: str, experiment_pk: int, start_time: int) -> Run | None:
        # A client that chose the run id may send its create again after a lost reply: the run
        # it made the first time is the answer; any other run with that id is a conflict.
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.runs.c.experiment_id, t.runs.c.start_time).where(
                    t.runs.c.run_id == run_id
                )
            ).first()
        if row is None:
            return None
        if row.experiment_id != experiment_pk or row.start_time != start_time:
            raise AlreadyExists(
                f"run id {run_id!r} is already taken", hint="Let the store choose the run id."
            )
        return self.get_run(run_id)

    @staticmethod
    def _run_row(conn: sa.Connection, run_id: str) -> Any:
        row = conn.execute(sa.select(t.runs).where(t.runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFound(f"run {run_id!r} does not exist")
        return row

    @staticmethod
    def _info(row: Any) -> RunInfo:
        return RunInfo(
            run_id=row.run_id,
            experiment_id=str(row.experiment_id),
            run_name=row.name,
            status=row.status,
            user_id=row.user_id,
            start_time=row.start_time,
            end_time=row.end_time,
            lifecycle_stage=row.lifecycle_stage,
            parent_run_id=row.parent_run_id,
        )

    def _load_runs(self, conn: sa.Connection, rows: Sequence[Any]) -> list[Run]:
        """Attach params, latest metrics and tags to run rows with three queries per chunk."""
        data: dict[int, RunData] = {r.run_pk: RunData() for r in rows}
        pks = list(data)
        for chunk in chunks(pks):
            for pk, key, value in conn.execute(
                sa.select(t.params.c.run_pk, t.params.c.key, t.params.c.value).where(
                    t.params.c.run_pk.in_(chunk)
                )
            ):
                data[pk].params[key] = value
            for pk, key, value in conn.execute(
                sa.select(t.tags.c.run_pk, t.tags.c.key, t.tags.c.value).where(
                    t.tags.c.run_pk.in_(chunk)
                )
            ):
                data[pk].tags[key] = value
            lm = t.latest_metrics.c
            for pk, key, value, step, timestamp in conn.execute(
                sa.select(lm.run_pk, lm.key, lm.value, lm.step, lm.timestamp).where(
                    lm.run_pk.in_(chunk)
                )
            ):
                data[pk].metrics[key] = metric_value_from_db(value)
                data[pk].metric_steps[key] = (step, timestamp)
        return [Run(self._info(r), data[r.run_pk]) for r in rows]

    def get_run(self, run_id: str) -> Run:
        """Return a run with its data."""
        with self._read() as conn:
            return self._load_runs(conn, [self._run_row(conn, run_id)])[0]

    def match_run_ids(self, prefix: str, limit: int = 2) -> list[str]:
        """Return up to ``limit`` run ids starting with ``prefix``."""
        with self._read() as conn:
            return list(
                conn.execute(
                    sa.select(t.runs.c.run_id)
                    .where(t.runs.c.run_id.startswith(prefix, autoescape=True))
                    .order_by(t.runs.c.run_id)
                    .limit(limit)
                ).scalars()
            )

    def get_run_info(self, run_id: str) -> RunInfo:
        """Return a run's info."""
        with self._read() as conn:
            return self._info(self._run_row(conn, run_id))

    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change a run's status, end time or name."""
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = RunStatus(status).value
        if end_time is not None:
            values["end_time"] = end_time
        if run_name is not None:
            values["name"] = run_name
        with self._write() as conn, conn.begin():
            row = self._run_row(conn, run_id)
            if values:
                conn.execute(t.runs.update().where(t.runs.c.run_pk == row.run_pk).values(values))
                row = self._run_row(conn, run_id)
            return self._info(row)

    def set_run_lifecycle(self, run_id: str, stage: str) -> None:
        """Delete or restore a run."""
        with self._write() as conn, conn.begin():
            row = self._run_row(conn, run_id)
            if row.lifecycle_stage == stage:
                raise InvalidState(f"run {run_id!r} is already {stage}")
            if stage == _ACTIVE:
                exp = conn.execute(
                    sa.select(t.experiments.c.lifecycle_stage).where(
                        t.experiments.c.experiment_id == row.experiment_id
                    )
                ).scalar_one()
                if exp != _ACTIVE:
                    raise InvalidState(
                        f"run {run_id!r} belongs to deleted experiment id {row.experiment_id}",
                        hint="Restore the experiment first (`mltrail exp restore`).",
                    )
            conn.execute(
                t.runs.update()
                .where(t.runs.c.run_pk == row.run_pk)
                .values(lifecycle_stage=stage, deleted_time=now_ms() if stage == _DELETED else None)
            )

    def write_batches(
        self, batches: Sequence[RunBatch], batch_id: str | None = None
    ) -> dict[str, Exception]:
        """Write several runs' metrics, params and tags in one transaction."""
        errors: dict[str, Exception] = {}
        with self._write() as conn, conn.begin():
            if batch_id is not None and not self._claim_batch(conn, batch_id):
                return errors
            for batch in batches:
                try:
                    self._write_batch(conn, batch)
                except MltrailError as exc:
                    errors[batch.run_id] = exc
        return errors

    def _claim_batch(self, conn: sa.Connection, batch_id: str) -> bool:
        """Record ``batch_id`` as applied; False when it already was (a retried batch)."""
        now = now_ms()
        stmt = self._upsert(t.applied_batches).values(batch_id=batch_id, applied_at=now)
        # RETURNING, not rowcount: psycopg reports -1 rows for INSERT ... ON CONFLICT DO NOTHING.
        inserted = (
            conn.execute(
                stmt.on_conflict_do_nothing(index_elements=["batch_id"]).returning(
                    t.applied_batches.c.batch_id
                )
            ).first()
            is not None
        )
        if inserted and random.random() < 0.01:
            # Retries come within minutes; a day of ids is plenty and keeps the table small.
            conn.execute(
                t.applied_batches.delete().where(t.applied_batches.c.applied_at < now - 86_400_000)
            )
        return inserted

    @functools.cached_property
    def _latest_upsert(self) -> Any:
        # Built once: making `excluded` is a fifth of a one-point write's time.
        stmt = self._upsert(t.latest_metrics)
        lm = t.latest_metrics.c
        ex = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=["run_pk", "key"],
            set_={"value": ex.value, "step": ex.step, "timestamp": ex.timestamp},
            where=sa.or_(
                lm.step < ex.step, sa.and_(lm.step == ex.step, lm.timestamp <= ex.timestamp)
            ),
        )

    def _writable_run_pk(self, conn: sa.Connection, run_id: str) -> int:
        row = conn.execute(_WRITABLE_RUN, {"run_id": run_id}).first()
        if row is None:
            raise NotFound(f"run {run_id!r} does not exist")
        check_run_writable(
            run_id, row.lifecycle_stage, row.status, finished_ok=self._finished_runs_writable
        )
        return row.run_pk

    def _write_batch(self, conn: sa.Connection, batch: RunBatch) -> None:
        run_pk = self._writable_run_pk(conn, batch.run_id)
        if batch.params:
            existing = dict(
                conn.execute(
                    sa.select(t.params.c.key, t.params.c.value).where(
                        t.params.c.run_pk == run_pk, t.params.c.key.in_(list(batch.params))
                    )
                ).all()
            )
            for key, value in batch.params.items():
                if key in existing and existing[key] != value:
                    raise ParamChanged(
                        f"param {key!r} of run {batch.run_id} is already {existing[key]!r}; "
                        f"it cannot change to {value!r} (params are immutable)",
                        hint="Log the new value under another key, or start a new run.",
                    )
            new = [
                {"run_pk": run_pk, "key": k, "value": v}
                for k, v in batch.params.items()
                if k not in existing
            ]
            if new:
                conn.execute(t.params.insert(), new)
        if batch.tags:
            stmt = self._upsert(t.tags)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_pk", "key"], set_={"value": stmt.excluded.value}
                ),
                [{"run_pk": run_pk, "key": k, "value": v} for k, v in batch.tags.items()],
            )
        if batch.metrics:
            self._write_metrics(conn, run_pk, batch.metrics)

    def _write_metrics(self, conn: sa.Connection, run_pk: int, points: Sequence[Metric]) -> None:
        # The series goes to the driver directly: SQLAlchemy's per-row parameter handling was
        # half of a server's time per ingested point. PostgreSQL takes the batch as four arrays
        # in one statement instead of one row at a time.
        if self._sqlite:
            conn.exec_driver_sql(
                _INSERT_METRICS + " VALUES (?, ?, ?, ?, ?)",
                [(run_pk, m.key, m.step, m.timestamp, metric_value_to_db(m.value)) for m in points],
            )
        else:
            conn.exec_driver_sql(
                _INSERT_METRICS + " SELECT %s, k, s, t, v FROM unnest("
                "%s::varchar[], %s::bigint[], %s::bigint[], %s::float8[]) AS u(k, s, t, v)",
                (
                    run_pk,
                    [m.key for m in points],
                    [m.step for m in points],
                    [m.timestamp for m in points],
                    [metric_value_to_db(m.value) for m in points],
                ),
            )
        latest: dict[str, Metric] = {}
        for m in points:
            cur = latest.get(m.key)
            if cur is None or (m.step, m.timestamp) >= (cur.step, cur.timestamp):
                latest[m.key] = m
        conn.execute(
            self._latest_upsert,
            [
                {
                    "run_pk": run_pk,
                    "key": m.key,
                    "step": m.step,
                    "timestamp": m.timestamp,
                    "value": metric_value_to_db(m.value),
                }
                for m in latest.values()
            ],
        )

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""
        with self._write() as conn, conn.begin():
            run_pk = self._writable_run_pk(conn, run_id)
            result = conn.execute(
                t.tags.delete().where(t.tags.c.run_pk == run_pk, t.tags.c.key == key)
            )
            if result.rowcount == 0:
                raise NotFound(f"run {run_id!r} has no tag {key!r}")

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every point of one metric, by step then timestamp."""
        return self.metric_history_page(run_id, key, 0, None)

    def metric_history_page(
        self, run_id: str, key: str, offset: int, limit: int | None
    ) -> list[Metric]:
        """Return ``limit`` points of one metric (all with None) from position ``offset``."""
        with self._read() as conn:
            run_pk = self._run_row(conn, run_id).run_pk
            # The DB-API cursor directly: SQLAlchemy's row objects would cost more than the
            # query itself on a long series.
            mark = "?" if self._sqlite else "%s"
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            # Millions of new tuples set off collection passes that find nothing (tuples of
            # numbers hold no cycles) and cost as much as building them.
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
                cursor.execute(
                    "SELECT value, timestamp, step FROM metrics "
                    f"WHERE run_pk = {mark} AND key = {mark} ORDER BY step, timestamp" + page,
                    (run_pk, key),
                )
                new, nan = tuple.__new__, math.nan
                return [
                    new(Metric, (key, nan if v is None else v, ts, step))
                    for v, ts, step in cursor.fetchall()
                ]
            finally:
                if gc_was_enabled:
                    gc.enable()
                cursor.close()

    def metric_arrays(self, run_id: str, key: str, buckets: int | None = None) -> MetricArrays:
        """Return one metric's (steps, timestamps, values); SQLite buckets a long series itself."""
        with self._read() as conn:
            run_pk = self._run_row(conn, run_id).run_pk
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            mark = "?" if self._sqlite else "%s"
            where = f"FROM metrics WHERE run_pk = {mark} AND key = {mark}"
            gc_was_enabled = gc.isenabled()
            gc.disable()  # as in get_metric_history: collections over number tuples find nothing
            try:
                if buckets and self._sqlite:
                    cursor.execute(f"SELECT count(*) {where}", (run_pk, key))
                    total = cursor.fetchone()[0]
                    # Below a few points per bucket, reducing in SQL would save nothing.
                    if total > 4 * buckets:
                        return _sqlite_extremes(cursor, run_pk, key, buckets, total)
                cursor.execute(
                    f"SELECT step, timestamp, value {where} ORDER BY step, timestamp",
                    (run_pk, key),
                )
                rows = cursor.fetchall()
            finally:
                if gc_was_enabled:
                    gc.enable()
                cursor.close()
        # One comprehension per column: zip(*rows) over a million rows is several times slower.
        nan = math.nan
        return MetricArrays(
            [r[0] for r in rows],
            [r[1] for r in rows],
            [nan if r[2] is None else r[2] for r in rows],  # NaN is stored as NULL
            len(rows),
        )

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> PagedList:
        """Return a page of runs matching a filter."""
        from mltrail.search import parse_filter, parse_order_by
        from mltrail.store.sql_search import build_search_query

        if not 1 <= max_results <= MAX_RESULTS_LIMIT:
            raise InvalidInput(
                f"max_results {max_results} is out of range; use 1 to {MAX_RESULTS_LIMIT}"
            )
        expr = parse_filter(filter_string)
        order = parse_order_by(order_by)
        offset = decode_page_token(page_token)
        pks = [_experiment_pk(e) for e in experiment_ids]
        query = build_search_query(pks, expr, order, view.stages, offset, max_results + 1)
        with self._read() as conn:
            found = conn.execute(query).all()
            more = len(found) > max_results
            found = found[:max_results]
            order_of = {r.run_pk: i for i, r in enumerate(found)}
            rows: list[Any] = []
            for chunk in chunks([r.run_pk for r in found]):
                rows.extend(conn.execute(sa.select(t.runs).where(t.runs.c.run_pk.in_(chunk))))
            rows.sort(key=lambda r: order_of[r.run_pk])
            runs = self._load_runs(conn, rows)
        token = encode_page_token(offset + max_results) if more else None
        return PagedList(runs, token)

    # -- artifacts ---------------------------------------------------------------------------
    def add_artifacts(self, run_id: str, files: Sequence[FileInfo]) -> None:
        """Record stored files as a run's artifacts."""
        if not files:
            return
        with self._write() as conn, conn.begin():
            run_pk = self._writable_run_pk(conn, run_id)
            self._put_files(conn, t.artifacts, {"run_pk": run_pk}, files)

    def _put_files(
        self, conn: sa.Connection, table: sa.Table, owner: dict[str, int], files: Sequence[FileInfo]
    ) -> None:
        """Upsert ``files`` into a file table (artifacts, logged model files) for ``owner``."""
        stmt = self._upsert(table)
        ex = stmt.excluded
        (key,) = owner
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[key, "path"],
                set_={"hash": ex.hash, "size": ex.size, "mode": ex.mode},
            ),
            [
                {**owner, "path": f.path, "hash": f.hash, "size": f.size, "mode": f.mode}
                for f in files
            ],
        )

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[FileInfo]:
        """Return a run's artifact files, optionally under a path prefix."""
        a = t.artifacts.c
        with self._read() as conn:
            run_pk = self._run_row(conn, run_id).run_pk
            query = sa.select(a.path, a.hash, a.size, a.mode).where(a.run_pk == run_pk)
            if prefix:
                query = query.where(
                    sa.or_(
                        a.path == prefix,
                        a.path.startswith(prefix.rstrip("/") + "/", autoescape=True),
                    )
                )
            rows = conn.execute(query.order_by(a.path)).all()
        return [FileInfo(path, h, size, mode) for path, h, size, mode in rows]

    def delete_artifacts(self, run_id: str, path: str) -> int:
        """Forget a run's artifact file or folder."""
        a = t.artifacts.c
        clean = path.strip("/")
        with self._write() as conn, conn.begin():
            run_pk = self._run_row(conn, run_id).run_pk
            gone = conn.execute(
                t.artifacts.delete().where(
                    a.run_pk == run_pk,
                    sa.or_(a.path == clean, a.path.startswith(clean + "/", autoescape=True)),
                )
            )
        return gone.rowcount

    def referenced_objects(self) -> tuple[set[str], set[str], set[str]]:
        """Return the hashes of every run's artifact files, file datasets and folder trees."""
        d = t.run_datasets.c
        with self._read() as conn:
            files = set(conn.execute(sa.select(t.artifacts.c.hash).distinct()).scalars())
            # A logged model without a run holds its files itself.
            files.update(conn.execute(sa.select(t.logged_model_files.c.hash).distinct()).scalars())
            rows = conn.execute(sa.select(d.hash, d.kind).distinct()).all()
        return (
            files,
            {h for h, kind in rows if kind != "dir"},
            {h for h, kind in rows if kind == "dir"},
        )

    def object_owners(self, hashes: set[str]) -> dict[str, set[tuple[str, str]]]:
        """Hash → who refers to it directly: (``"experiment"``, id) of a run's artifact or
        dataset version or of a logged model's file, (``"model"``, name) of a version's tree."""
        out: dict[str, set[tuple[str, str]]] = {}
        r, lm = t.runs.c, t.logged_models.c
        vs, rm = t.model_versions.c, t.registered_models.c
        with self._read() as conn:
            for chunk in chunks(sorted(hashes)):
                queries = [
                    sa.select(t.artifacts.c.hash, r.experiment_id)
                    .join(t.runs, r.run_pk == t.artifacts.c.run_pk)
                    .where(t.artifacts.c.hash.in_(chunk)),
                    sa.select(t.run_datasets.c.hash, r.experiment_id)
                    .join(t.runs, r.run_pk == t.run_datasets.c.run_pk)
                    .where(t.run_datasets.c.hash.in_(chunk)),
                    sa.select(t.logged_model_files.c.hash, lm.experiment_id)
                    .join(t.logged_models, lm.model_pk == t.logged_model_files.c.model_pk)
                    .where(t.logged_model_files.c.hash.in_(chunk)),
                ]
                for query in queries:
                    for h, experiment_id in conn.execute(query.distinct()):
                        out.setdefault(h, set()).add(("experiment", str(experiment_id)))
                rows = conn.execute(
                    sa.select(vs.tree_hash, rm.name)
                    .join(t.registered_models, rm.model_pk == vs.model_pk)
                    .where(vs.tree_hash.in_(chunk))
                    .distinct()
                )
                for h, name in rows:
                    out.setdefault(h, set()).add(("model", name))
        return out

    def tree_owners(self) -> dict[str, set[tuple[str, str]]]:
        """Tree hash → who refers to it: runs' folder datasets and model versions (as above)."""
        out: dict[str, set[tuple[str, str]]] = {}
        r, d = t.runs.c, t.run_datasets.c
        vs, rm = t.model_versions.c, t.registered_models.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(d.hash, r.experiment_id)
                .join(t.runs, r.run_pk == d.run_pk)
                .where(d.kind == "dir")
                .distinct()
            )
            for h, experiment_id in rows:
                out.setdefault(h, set()).add(("experiment", str(experiment_id)))
            rows = conn.execute(
                sa.select(vs.tree_hash, rm.name)
                .join(t.registered_models, rm.model_pk == vs.model_pk)
                .distinct()
            )
            for h, name in rows:
                out.setdefault(h, set()).add(("model", name))
        return out

    # -- datasets ----------------------------------------------------------------------------
    def log_run_datasets(self, run_id: str, direction: str, refs: Sequence[DatasetRef]) -> None:
        """Record dataset versions a run read or wrote; the same version again is a no-op."""
        check_dataset_direction(direction)
        # One row per key: PostgreSQL refuses an INSERT that hits the same conflict row twice.
        unique = {(r.path, r.hash): check_dataset_ref(r) for r in refs}
        now = now_ms()
        with self._write() as conn, conn.begin():
            run_pk = self._writable_run_pk(conn, run_id)
            if not unique:
                return
            stmt = self._upsert(t.run_datasets)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_pk", "direction", "path", "hash"],
                    set_={"context": stmt.excluded.context},
                    # Logging again without a context keeps the one given before.
                    where=stmt.excluded.context.is_not(None),
                ),
                [
                    {
                        "run_pk": run_pk,
                        "direction": direction,
                        "path": r.path,
                        "hash": r.hash,
                        "kind": r.kind,
                        "size": r.size,
                        "nfiles": r.nfiles,
                        "context": r.context,
                        "timestamp": now,
                    }
                    for r in unique.values()
                ],
            )

    def get_run_datasets(self, run_id: str) -> list[RunDataset]:
        """Return a run's dataset versions, inputs first."""
        d = t.run_datasets.c
        with self._read() as conn:
            run_pk = self._run_row(conn, run_id).run_pk
            rows = conn.execute(
                sa.select(t.run_datasets)
                .where(d.run_pk == run_pk)
                .order_by(d.direction, d.path, d.timestamp, d.hash)
            ).all()
        return [RunDataset(r.direction, _dataset_ref(r), r.timestamp) for r in rows]

    def find_dataset_uses(
        self,
        path: str | None = None,
        hash: str | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> list[DatasetUse]:
        """Return the runs that read or wrote a dataset path and/or version, newest first."""
        if path is None and hash is None:
            raise InvalidInput(
                "find_dataset_uses needs a dataset path, a version hash or both",
                hint="Pass path='data/train.csv' and/or hash='<64 hex>'.",
            )
        d, r = t.run_datasets.c, t.runs.c
        query = (
            sa.select(
                t.run_datasets,
                r.run_id,
                r.name,
                r.experiment_id,
                r.status,
                r.start_time,
                r.lifecycle_stage,
            )
            .join(t.runs, r.run_pk == d.run_pk)
            .where(r.lifecycle_stage.in_(ViewType(view).stages))
        )
        if path is not None:
            query = query.where(d.path == path)
        if hash is not None:
            query = query.where(d.hash == hash)
        query = query.order_by(
            r.start_time.desc(), r.run_id, d.direction, d.path, d.timestamp, d.hash
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            DatasetUse(
                run_id=row.run_id,
                run_name=row.name,
                experiment_id=str(row.experiment_id),
                status=row.status,
                start_time=row.start_time,
                lifecycle_stage=row.lifecycle_stage,
                direction=row.direction,
                dataset=_dataset_ref(row),
                timestamp=row.timestamp,
            )
            for row in rows
        ]

    def list_datasets(
        self,
        experiment_ids: Sequence[str] | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> list[DatasetSummary]:
        """Return every dataset path runs in ``view`` read or wrote, summarised, by path."""
        d, r = t.run_datasets.c, t.runs.c
        where = [r.lifecycle_stage.in_(ViewType(view).stages)]
        if experiment_ids is not None:
            # An id that cannot exist matches nothing, as in a search; it is no error here.
            pks = sorted({pk for e in experiment_ids if (pk := _maybe_experiment_pk(e)) >= 0})
            if not pks:
                return []
            where.append(r.experiment_id.in_(pks))
        used = (
            sa.select(d.run_pk, d.direction, d.path, d.hash, d.kind, d.size, d.nfiles, d.context)
            .add_columns(d.timestamp)
            .join(t.runs, r.run_pk == d.run_pk)
            .where(*where)
            .subquery()
        )
        u = used.c
        # COUNT(DISTINCT CASE ...) counts each run once per direction (NULLs are not counted).
        per_path = sa.select(
            u.path,
            sa.func.count(sa.distinct(u.hash)),
            sa.func.count(sa.distinct(u.run_pk)),
            sa.func.count(sa.distinct(sa.case((u.direction == "input", u.run_pk)))),
            sa.func.count(sa.distinct(sa.case((u.direction == "output", u.run_pk)))),
            sa.func.min(u.timestamp),
            sa.func.max(u.timestamp),
        ).group_by(u.path)
        ranked = sa.select(
            u.path,
            u.hash,
            u.kind,
            u.size,
            u.nfiles,
            u.context,
            sa.func.row_number()
            .over(partition_by=u.path, order_by=(u.timestamp.desc(), u.hash.desc()))
            .label("rank"),
        ).subquery()
        latest_q = sa.select(ranked).where(ranked.c.rank == 1)
        with self._read() as conn:
            latest = {row.path: _dataset_ref(row) for row in conn.execute(latest_q)}
            rows = conn.execute(per_path.order_by(u.path)).all()
        return [
            DatasetSummary(path, versions, runs, readers, writers, first, last, latest[path])
            for path, versions, runs, readers, writers, first, last in rows
            if path in latest
        ]


# Bucket boundaries by position: from each boundary row, the row ``:size`` rows further on in
# (step, timestamp, rowid) order. Each step seeks in the index and walks one bucket of entries, so
# the walk reads every index entry once in all; no window function (ROW_NUMBER() over a million
# rows is about twice as slow as everything else here). rowid makes the order strict, so many rows
# sharing a step and timestamp cannot stall the walk.
_SQLITE_BOUNDS = """
WITH RECURSIVE b(s, t, r) AS (
  SELECT * FROM (SELECT step, timestamp, rowid FROM metrics WHERE run_pk = :pk AND key = :key
                 ORDER BY step, timestamp, rowid LIMIT 1)
  UNION ALL
  SELECT m.step, m.timestamp, m.rowid FROM b JOIN metrics m ON m.rowid = (
    SELECT rowid FROM metrics WHERE run_pk = :pk AND key = :key
    AND (step, timestamp, rowid) >= (b.s, b.t, b.r)
    ORDER BY step, timestamp, rowid LIMIT 1 OFFSET :size)
) SELECT DISTINCT s, t FROM b
"""
# The row id of a bucket's lowest (or highest) point: with a single min()/max() aggregate, SQLite
# takes the bare column (rowid) from the row holding that extreme. A plain step range when both
# ends are whole steps (the usual case, and faster: no row-value test per row); else the
# (step, timestamp) range, for buckets that split a step holding many rows.
_EXTREME = (
    "SELECT CASE WHEN {f}(value) IS NULL THEN NULL ELSE rowid END"
    " FROM metrics WHERE run_pk = :pk AND key = :key AND "
)
_STEP_RANGE = "step >= :s0 AND step < :s1"
_ROW_RANGE = "(step, timestamp) >= (:s0, :t0) AND (step, timestamp) < (:s1, :t1)"
_SQLITE_EXTREMES = {
    (f, whole): _EXTREME.format(f=f) + (_STEP_RANGE if whole else _ROW_RANGE)
    for f in ("min", "max")
    for whole in (True, False)
}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _sqlite_extremes(cursor: Any, run_pk: int, key: str, buckets: int, total: int) -> MetricArrays:
    """A SQLite series reduced to each bucket's lowest and highest point, plus both ends.

    Buckets hold equal numbers of points in (step, timestamp) order, as in
    :func:`mltrail.ui.downsample.keep_indices`, however unevenly the steps are spaced.
    """
    args: dict[str, Any] = {"pk": run_pk, "key": key, "size": -(-total // buckets)}
    bounds = cursor.execute(_SQLITE_BOUNDS, args).fetchall()
    # A step that holds one boundary starts its bucket whole (timestamp -inf); only a step holding
    # several is split by timestamp. Either way the buckets partition the series.
    seen: dict[int, int] = {}
    for step, _ in bounds:
        seen[step] = seen.get(step, 0) + 1
    starts = [(s, t if seen[s] > 1 else _INT64_MIN) for s, t in bounds]
    rowids: set[int] = set()
    for (s0, t0), (s1, t1) in zip(starts, [*starts[1:], (_INT64_MAX, _INT64_MIN)], strict=True):
        whole = t0 == _INT64_MIN and t1 == _INT64_MIN
        args.update(s0=s0, t0=t0, s1=s1, t1=t1)
        for f in ("min", "max"):
            row = cursor.execute(_SQLITE_EXTREMES[f, whole], args).fetchone()
            if row and row[0] is not None:
                rowids.add(row[0])
    # Both ends of the series, which the buckets' extremes need not include.
    where = "FROM metrics WHERE run_pk = ? AND key = ?"
    for order in ("step, timestamp", "step DESC, timestamp DESC"):
        cursor.execute(f"SELECT rowid {where} ORDER BY {order} LIMIT 1", (run_pk, key))
        rowids.add(cursor.fetchone()[0])
    # The chosen rows whole, by row id (exact values, unlike a text rendering of them).
    cursor.execute(
        "SELECT step, timestamp, value FROM metrics WHERE rowid IN (SELECT value FROM json_each(?))"
        " ORDER BY step, timestamp",
        (json.dumps(sorted(rowids)),),
    )
    rows = cursor.fetchall()
    return MetricArrays(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [math.nan if r[2] is None else r[2] for r in rows],
        total,
    )


def _dataset_ref(row: Any) -> DatasetRef:
    return DatasetRef(row.path, row.hash, row.kind, row.size, row.nfiles, row.context)


def encode_page_token(offset: int) -> str:
    """Opaque page token for an offset."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """Offset from a page token; a malformed token is an :class:`InvalidInput`."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError):
        pass
    raise InvalidInput(f"page token {token!r} is not one mltrail issued")
