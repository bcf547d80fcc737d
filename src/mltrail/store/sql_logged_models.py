"""The SQL implementation of :class:`~mltrail.store.logged_models_base.LoggedModelStore`."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail import validation as v
from mltrail.entities import (
    FileInfo,
    LoggedModel,
    LoggedModelStatus,
    NamedDataset,
    RunModel,
    ViewType,
)
from mltrail.errors import AlreadyExists, InvalidInput, NotFound, ParamChanged
from mltrail.store import schema as t
from mltrail.store.engine import chunks
from mltrail.store.logged_models_base import LoggedModelStore

if TYPE_CHECKING:
    from mltrail.entities import RunInfo

L = t.logged_models.c
_ACTIVE, _DELETED = "active", "deleted"
MODEL_ID_PREFIX = "m-"


def _now() -> int:
    return int(time.time() * 1000)


_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")


def new_model_id() -> str:
    """A fresh logged-model id, shaped as MLflow's: ``m-`` and 32 hex digits."""
    return MODEL_ID_PREFIX + secrets.token_hex(16)


class SqlLoggedModels(LoggedModelStore):
    """Logged models, run-model links and named datasets in the store's SQL database."""

    if TYPE_CHECKING:  # provided by SqlStore
        _upsert: Any

        def _read(self) -> sa.Connection: ...
        def _write(self) -> sa.Connection: ...
        def _run_row(self, conn: sa.Connection, run_id: str) -> Any: ...
        def _writable_run_pk(self, conn: sa.Connection, run_id: str) -> int: ...
        def get_run_info(self, run_id: str) -> RunInfo: ...
        def add_artifacts(self, run_id: str, files: Sequence[FileInfo]) -> None: ...
        def _put_files(
            self,
            conn: sa.Connection,
            table: sa.Table,
            owner: dict[str, int],
            files: Sequence[FileInfo],
        ) -> None: ...
        def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[FileInfo]: ...

    # -- lookups -----------------------------------------------------------------------------
    @staticmethod
    def _logged_row(conn: sa.Connection, model_id: str) -> Any:
        row = conn.execute(
            sa.select(t.logged_models, t.runs.c.run_id)
            .select_from(t.logged_models.outerjoin(t.runs, t.runs.c.run_pk == L.run_pk))
            .where(L.model_id == model_id)
        ).first()
        if row is None:
            raise NotFound(
                f"logged model {model_id!r} does not exist",
                hint="Logged model ids look like m-<32 hex digits>; search_logged_models lists "
                "them.",
            )
        return row

    @staticmethod
    def _load_logged(conn: sa.Connection, rows: Sequence[Any]) -> list[LoggedModel]:
        params: dict[int, dict[str, str]] = {r.model_pk: {} for r in rows}
        tags: dict[int, dict[str, str]] = {r.model_pk: {} for r in rows}
        for chunk in chunks(list(params)):
            for table, into in ((t.logged_model_params, params), (t.logged_model_tags, tags)):
                c = table.c
                query = sa.select(c.model_pk, c.key, c.value).where(c.model_pk.in_(chunk))
                for pk, key, value in conn.execute(query):
                    into[pk][key] = value
        return [
            LoggedModel(
                model_id=r.model_id,
                experiment_id=str(r.experiment_id),
                name=r.name,
                run_id=r.run_id,
                artifact_path=r.artifact_path,
                model_type=r.model_type,
                status=r.status,
                lifecycle_stage=r.lifecycle_stage,
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
                params=params[r.model_pk],
                tags=tags[r.model_pk],
            )
            for r in rows
        ]

    def _touch_logged(self, conn: sa.Connection, model_pk: int) -> None:
        conn.execute(
            t.logged_models.update().where(L.model_pk == model_pk).values(last_update_time=_now())
        )

    # -- models ------------------------------------------------------------------------------
    def create_logged_model(
        self,
        experiment_id: str,
        name: str,
        run_id: str | None = None,
        model_type: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        model_id: str | None = None,
    ) -> LoggedModel:
        """Create a PENDING logged model."""
        from mltrail.store.sql import _experiment_pk

        if model_id is None:
            model_id = new_model_id()
        elif not _MODEL_ID.fullmatch(model_id):
            raise InvalidInput(
                f"not a logged model id: {model_id!r}",
                hint="A logged model id is m- and 32 hex digits, as MLflow makes them.",
            )
        else:
            try:
                self.get_logged_model(model_id)
            except NotFound:
                pass
            else:
                raise AlreadyExists(f"logged model {model_id} already exists")
        now = _now()
        exp_pk = _experiment_pk(experiment_id)
        with self._write() as conn, conn.begin():
            stage = conn.execute(
                sa.select(t.experiments.c.lifecycle_stage).where(
                    t.experiments.c.experiment_id == exp_pk
                )
            ).scalar()
            if stage is None:
                raise NotFound(f"experiment id {experiment_id!r} does not exist")
            run_pk, path = None, None
            if run_id is not None:
                run_pk = self._run_row(conn, run_id).run_pk
                path = self._free_path(conn, run_pk, name, model_id)
            model_pk = conn.execute(
                t.logged_models.insert().values(
                    model_id=model_id,
                    experiment_id=exp_pk,
                    run_pk=run_pk,
                    name=name,
                    artifact_path=path,
                    model_type=model_type,
                    status=LoggedModelStatus.PENDING.value,
                    lifecycle_stage=_ACTIVE,
                    creation_time=now,
                    last_update_time=now,
                )
            ).inserted_primary_key[0]
            for table, values in ((t.logged_model_params, params), (t.logged_model_tags, tags)):
                if values:
                    conn.execute(
                        table.insert(),
                        [{"model_pk": model_pk, "key": k, "value": x} for k, x in values.items()],
                    )
        return self.get_logged_model(model_id)

    @staticmethod
    def _free_path(conn: sa.Connection, run_pk: int, name: str, model_id: str) -> str:
        """The folder among the run's artifacts for a new model: its name, unless taken."""
        try:
            wanted = v.check_artifact_path(name)
        except InvalidInput:
            wanted = f"models/{model_id}"
        a = t.artifacts.c
        for candidate in (wanted, f"{wanted}-{model_id[2:10]}", f"models/{model_id}"):
            taken_by_model = conn.execute(
                sa.select(L.model_pk).where(L.run_pk == run_pk, L.artifact_path == candidate)
            ).first()
            taken_by_files = conn.execute(
                sa.select(a.path).where(
                    a.run_pk == run_pk,
                    sa.or_(
                        a.path == candidate,
                        a.path.startswith(candidate + "/", autoescape=True),
                    ),
                )
            ).first()
            if taken_by_model is None and taken_by_files is None:
                return candidate
        return f"models/{model_id}"

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """Return a logged model."""
        with self._read() as conn:
            return self._load_logged(conn, [self._logged_row(conn, model_id)])[0]

    def list_logged_models(
        self,
        experiment_ids: Sequence[str],
        *,
        name: str | None = None,
        run_id: str | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> list[LoggedModel]:
        """Return logged models, newest first."""
        from mltrail.store.sql import _maybe_experiment_pk

        pks = [_maybe_experiment_pk(e) for e in experiment_ids]
        query = (
            sa.select(t.logged_models, t.runs.c.run_id)
            .select_from(t.logged_models.outerjoin(t.runs, t.runs.c.run_pk == L.run_pk))
            .where(L.experiment_id.in_(pks), L.lifecycle_stage.in_(ViewType(view).stages))
        )
        if name is not None:
            query = query.where(L.name == name)
        with self._read() as conn:
            if run_id is not None:
                query = query.where(L.run_pk == self._run_row(conn, run_id).run_pk)
            rows = conn.execute(query.order_by(L.creation_time.desc(), L.model_pk.desc())).all()
            return self._load_logged(conn, rows)

    def set_logged_model_status(self, model_id: str, status: str) -> LoggedModel:
        """Mark a logged model READY or FAILED."""
        status = LoggedModelStatus(status).value
        with self._write() as conn, conn.begin():
            row = self._logged_row(conn, model_id)
            conn.execute(
                t.logged_models.update()
                .where(L.model_pk == row.model_pk)
                .values(status=status, last_update_time=_now())
            )
        return self.get_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        """Set tags of a logged model."""
        with self._write() as conn, conn.begin():
            row = self._logged_row(conn, model_id)
            if not tags:
                return
            stmt = self._upsert(t.logged_model_tags)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_pk", "key"], set_={"value": stmt.excluded.value}
                ),
                [{"model_pk": row.model_pk, "key": k, "value": x} for k, x in tags.items()],
            )
            self._touch_logged(conn, row.model_pk)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag of a logged model."""
        c = t.logged_model_tags.c
        with self._write() as conn, conn.begin():
            row = self._logged_row(conn, model_id)
            gone = conn.execute(
                t.logged_model_tags.delete().where(c.model_pk == row.model_pk, c.key == key)
            )
            if gone.rowcount == 0:
                raise NotFound(f"logged model {model_id} has no tag {key!r}")
            self._touch_logged(conn, row.model_pk)

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        """Add params to a logged model."""
        c = t.logged_model_params.c
        with self._write() as conn, conn.begin():
            row = self._logged_row(conn, model_id)
            existing = dict(
                conn.execute(sa.select(c.key, c.value).where(c.model_pk == row.model_pk)).all()
            )
            for key, value in params.items():
                if key in existing and existing[key] != value:
                    raise ParamChanged(
                        f"param {key!r} of logged model {model_id} is already "
                        f"{existing[key]!r}; it cannot change to {value!r}"
                    )
            new = [
                {"model_pk": row.model_pk, "key": k, "value": x}
                for k, x in params.items()
                if k not in existing
            ]
            if new:
                conn.execute(t.logged_model_params.insert(), new)
                self._touch_logged(conn, row.model_pk)

    def delete_logged_model(self, model_id: str) -> None:
        """Move a logged model to the bin."""
        with self._write() as conn, conn.begin():
            row = self._logged_row(conn, model_id)
            conn.execute(
                t.logged_models.update()
                .where(L.model_pk == row.model_pk)
                .values(lifecycle_stage=_DELETED, last_update_time=_now())
            )

    # -- files -------------------------------------------------------------------------------
    def add_logged_model_files(self, model_id: str, files: Sequence[FileInfo]) -> None:
        """Record a logged model's files: as its run's artifacts, or its own when it has no run."""
        model = self.get_logged_model(model_id)
        if model.run_id is not None:
            prefix = f"{model.artifact_path}/"
            self.add_artifacts(
                model.run_id, [FileInfo(prefix + f.path, f.hash, f.size, f.mode) for f in files]
            )
            return
        if not files:
            return
        with self._write() as conn, conn.begin():
            row = self._logged_row(conn, model_id)
            self._put_files(conn, t.logged_model_files, {"model_pk": row.model_pk}, files)

    def list_logged_model_files(self, model_id: str, prefix: str | None = None) -> list[FileInfo]:
        """Return a logged model's files, paths relative to its folder."""
        model = self.get_logged_model(model_id)
        if model.run_id is not None:
            base = f"{model.artifact_path}/"
            under = base + prefix.strip("/") if prefix else model.artifact_path
            return [
                FileInfo(f.path[len(base) :], f.hash, f.size, f.mode)
                for f in self.list_artifacts(model.run_id, under)
                if f.path.startswith(base)
            ]
        c = t.logged_model_files.c
        with self._read() as conn:
            row = self._logged_row(conn, model_id)
            query = sa.select(c.path, c.hash, c.size, c.mode).where(c.model_pk == row.model_pk)
            if prefix:
                clean = prefix.strip("/")
                query = query.where(
                    sa.or_(c.path == clean, c.path.startswith(clean + "/", autoescape=True))
                )
            rows = conn.execute(query.order_by(c.path)).all()
        return [FileInfo(*r) for r in rows]

    # -- run links ---------------------------------------------------------------------------
    def log_run_models(
        self, run_id: str, direction: str, models: Sequence[tuple[str, int]]
    ) -> None:
        """Record logged models a run used or produced."""
        direction = v.check_dataset_direction(direction)
        with self._write() as conn, conn.begin():
            run_pk = self._run_row(conn, run_id).run_pk
            rows = {}
            for model_id, step in models:
                rows[model_id] = {
                    "run_pk": run_pk,
                    "direction": direction,
                    "model_pk": self._logged_row(conn, model_id).model_pk,
                    "step": int(step),
                }
            if not rows:
                return
            stmt = self._upsert(t.run_models)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_pk", "direction", "model_pk"],
                    set_={"step": stmt.excluded.step},
                ),
                list(rows.values()),
            )

    # -- named datasets ----------------------------------------------------------------------
    def log_named_datasets(self, run_id: str, datasets: Sequence[NamedDataset]) -> None:
        """Record datasets a run read, by name and digest."""
        unique = {(d.name, d.digest): d for d in datasets}
        now = _now()
        with self._write() as conn, conn.begin():
            run_pk = self._writable_run_pk(conn, run_id)
            if not unique:
                return
            stmt = self._upsert(t.named_datasets)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_pk", "name", "digest"],
                    set_={"tags": stmt.excluded.tags},
                ),
                [
                    {
                        "run_pk": run_pk,
                        "name": d.name,
                        "digest": d.digest,
                        "source_type": d.source_type,
                        "source": d.source,
                        "schema": d.schema,
                        "profile": d.profile,
                        "tags": json.dumps(d.tags, sort_keys=True),
                        "timestamp": now,
                    }
                    for d in unique.values()
                ],
            )

    def get_run_links(self, run_id: str) -> tuple[list[NamedDataset], list[RunModel]]:
        """Return a run's named datasets and the logged models it used or produced."""
        c, m = t.named_datasets.c, t.run_models.c
        with self._read() as conn:
            run_pk = self._run_row(conn, run_id).run_pk
            datasets = conn.execute(
                sa.select(t.named_datasets)
                .where(c.run_pk == run_pk)
                .order_by(c.timestamp, c.name, c.digest)
            ).all()
            models = conn.execute(
                sa.select(m.direction, L.model_id, m.step)
                .select_from(t.run_models.join(t.logged_models, L.model_pk == m.model_pk))
                .where(m.run_pk == run_pk)
                .order_by(m.direction, m.step, L.model_pk)
            ).all()
        return (
            [
                NamedDataset(
                    r.name, r.digest, r.source_type, r.source, r.schema, r.profile,
                    json.loads(r.tags),
                )
                for r in datasets
            ],
            [RunModel(*r) for r in models],
        )  # fmt: skip
