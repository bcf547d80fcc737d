"""The SQL implementation of the model registry: a mixin of :class:`~mltrail.store.sql.SqlStore`.

Concurrency: every change first reads its registered model's row; on PostgreSQL that read takes
the row lock (SELECT … FOR UPDATE), so changes to one model are serialized there as SQLite's
write transactions (BEGIN IMMEDIATE) already are everywhere. That is what makes version numbers
unique under concurrent writers, and what keeps an alias move's ``before`` value true.

A change that would change nothing (an alias set to the version it already names, a tag set to
its value, a version moved to its own stage) writes no event.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from mltrail import validation as v
from mltrail.entities import ModelStage, ModelVersion, RegistryEvent
from mltrail.errors import AlreadyExists, InvalidInput, InvalidState, NotFound
from mltrail.store import schema as t
from mltrail.store.registry_base import RegistryAction as A
from mltrail.store.sql_registry_models import (
    ACTIVE,
    DELETED,
    LIVE_STAGES,
    READY,
    M,
    SqlRegisteredModels,
    V,
    check_tags,
    check_text,
    now_ms,
)


class SqlRegistryMixin(SqlRegisteredModels):
    """Registered models, versions, tags, aliases, stages and events in the SQL store."""

    # -- versions ----------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        artifact_path: str | None,
        tree_hash: str,
        description: str | None,
        tags: dict[str, str] | None,
        actor: str,
        comment: str | None = None,
        *,
        version: int | None = None,
    ) -> ModelVersion:
        """Add the next version to a model (created if missing, as MLflow's register_model)."""
        name = v.check_model_name(name)
        source = v.check_model_source(source)
        run_id = check_text(run_id, "run id", 32)
        artifact_path = check_text(artifact_path, "artifact path", v.MAX_MODEL_SOURCE_LENGTH)
        tree_hash = v.check_tree_hash(tree_hash)
        description = v.check_description(description)
        clean = check_tags(tags)
        actor = v.check_actor(actor)
        wanted = None if version is None else v.check_version(version)
        now = now_ms()
        with self._write() as conn, conn.begin():
            created = self._insert_model(conn, name, None, now)
            # The lock makes a concurrent writer wait here until this version is committed, so
            # it reads the new maximum: numbers are never handed out twice.
            model = self._model_row(conn, name, lock=True)
            if created:
                self._event(conn, name, A.CREATE_MODEL, actor, now, after=name, comment=comment)
            top = conn.execute(
                sa.select(sa.func.max(V.version)).where(V.model_pk == model.model_pk)
            ).scalar()
            if wanted is not None and wanted <= (top or 0):
                raise AlreadyExists(
                    f"model {name} has versions up to {top}: version {wanted} cannot be added",
                    hint="Numbers are never given twice; leave the version out to get the next.",
                )
            version = wanted or (top or 0) + 1
            conn.execute(
                t.model_versions.insert().values(
                    model_pk=model.model_pk,
                    version=version,
                    run_id=run_id,
                    source=source,
                    artifact_path=artifact_path,
                    tree_hash=tree_hash,
                    description=description,
                    status=READY,
                    stage=ModelStage.NONE.value,
                    lifecycle_stage=ACTIVE,
                    user_id=actor,
                    creation_time=now,
                    last_update_time=now,
                )
            )
            if clean:
                conn.execute(
                    t.model_version_tags.insert(),
                    [
                        {"model_pk": model.model_pk, "version": version, "key": k, "value": x}
                        for k, x in clean.items()
                    ],
                )
            self._touch(conn, model, now)
            self._event(
                conn, name, A.CREATE_VERSION, actor, now, version=version, after=source,
                comment=comment,
            )  # fmt: skip
            return self._reload_version(conn, model, version)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """Return one version, deleted or not."""
        version = v.check_version(version)
        with self._read() as conn:
            return self._reload_version(conn, self._model_row(conn, name), version)

    def list_model_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]:
        """Return a model's versions, newest first."""
        with self._read() as conn:
            model = self._model_row(conn, name)
            query = sa.select(t.model_versions).where(V.model_pk == model.model_pk)
            if not include_deleted:
                query = query.where(V.lifecycle_stage == ACTIVE)
            rows = conn.execute(query.order_by(V.version.desc())).all()
            return self._load_versions(conn, rows, {model.model_pk: model.name})

    def find_model_versions(
        self,
        run_id: str | None = None,
        tree_hash: str | None = None,
        include_deleted: bool = False,
    ) -> list[ModelVersion]:
        """Return the versions of any model made from a run and/or naming a tree."""
        if run_id is None and tree_hash is None:
            raise InvalidInput(
                "find_model_versions needs a run id, a tree hash or both",
                hint="Pass run_id='<32 hex>' and/or tree_hash='<64 hex>'.",
            )
        query = sa.select(t.model_versions, M.name).join(
            t.registered_models, M.model_pk == V.model_pk
        )
        if run_id is not None:
            query = query.where(V.run_id == run_id)
        if tree_hash is not None:
            query = query.where(V.tree_hash == tree_hash)
        if not include_deleted:
            query = query.where(V.lifecycle_stage == ACTIVE)
        with self._read() as conn:
            rows = conn.execute(query.order_by(M.name, V.version.desc())).all()
            return self._load_versions(conn, rows, {r.model_pk: r.name for r in rows})

    def update_model_version(
        self,
        name: str,
        version: int,
        description: str | None,
        actor: str,
        comment: str | None = None,
    ) -> ModelVersion:
        """Replace an active version's description."""
        version = v.check_version(version)
        description = v.check_description(description)
        actor = v.check_actor(actor)
        now = now_ms()
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            row = self._active_version_row(conn, model, version)
            if row.description != description:
                conn.execute(
                    t.model_versions.update()
                    .where(V.model_pk == model.model_pk, V.version == version)
                    .values(description=description)
                )
                self._touch(conn, model, now, version)
                self._event(
                    conn, name, A.UPDATE_VERSION, actor, now, version=version,
                    before=row.description, after=description, comment=comment,
                )  # fmt: skip
            return self._reload_version(conn, model, version)

    def set_model_version_tag(
        self,
        name: str,
        version: int,
        key: str,
        value: str,
        actor: str,
        comment: str | None = None,
    ) -> None:
        """Set one tag of an active version."""
        version = v.check_version(version)
        key, value = v.check_key(key, "tag"), v.check_tag_value(key, value)
        actor = v.check_actor(actor)
        now = now_ms()
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            self._active_version_row(conn, model, version)
            scope = {"model_pk": model.model_pk, "version": version}
            changed, old = self._put_tag(conn, t.model_version_tags, scope, key, value)
            if not changed:
                return
            self._touch(conn, model, now, version)
            self._event(
                conn, name, A.SET_VERSION_TAG, actor, now, version=version, key=key,
                before=old, after=value, comment=comment,
            )  # fmt: skip

    def delete_model_version_tag(
        self, name: str, version: int, key: str, actor: str, comment: str | None = None
    ) -> None:
        """Remove one tag of an active version."""
        version = v.check_version(version)
        actor = v.check_actor(actor)
        now = now_ms()
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            self._active_version_row(conn, model, version)
            scope = {"model_pk": model.model_pk, "version": version}
            old = self._drop_tag(
                conn, t.model_version_tags, scope, key, f"version {version} of {name}"
            )
            self._touch(conn, model, now, version)
            self._event(
                conn, name, A.DELETE_VERSION_TAG, actor, now, version=version, key=key,
                before=old, comment=comment,
            )  # fmt: skip

    def delete_model_version(
        self,
        name: str,
        version: int,
        actor: str,
        force: bool = False,
        comment: str | None = None,
    ) -> None:
        """Mark a version deleted; with ``force``, first remove its aliases and archive it."""
        version = v.check_version(version)
        actor = v.check_actor(actor)
        now = now_ms()
        al = t.model_aliases.c
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            row = self._version_row(conn, model, version)
            if row.lifecycle_stage != ACTIVE:
                raise InvalidState(f"version {version} of {name} is already deleted")
            reasons = self._in_use(conn, model.model_pk, version)
            if reasons and not force:
                raise InvalidState(
                    f"version {version} of {name} {reasons[0][1]}; it cannot be deleted",
                    hint="Move its aliases and archive it first, or force the deletion, "
                    "which does both (`--force`, or force=True in Python).",
                )
            aliases = conn.execute(
                sa.select(al.alias)
                .where(al.model_pk == model.model_pk, al.version == version)
                .order_by(al.alias)
            ).scalars()
            note = f"by the deletion of version {version}"
            for alias in list(aliases):
                conn.execute(
                    t.model_aliases.delete().where(al.model_pk == model.model_pk, al.alias == alias)
                )
                self._event(
                    conn, name, A.DELETE_ALIAS, actor, now, version=version, key=alias,
                    before=str(version), comment=f"removed {note}",
                )  # fmt: skip
            values = {"lifecycle_stage": DELETED, "last_update_time": now}
            if row.stage in LIVE_STAGES:
                values["stage"] = ModelStage.ARCHIVED.value
                self._event(
                    conn, name, A.TRANSITION_STAGE, actor, now, version=version,
                    before=row.stage, after=ModelStage.ARCHIVED.value, comment=f"archived {note}",
                )  # fmt: skip
            conn.execute(
                t.model_versions.update()
                .where(V.model_pk == model.model_pk, V.version == version)
                .values(**values)
            )
            self._touch(conn, model, now)
            self._event(
                conn, name, A.DELETE_VERSION, actor, now, version=version, before=ACTIVE,
                after=DELETED, comment=comment,
            )  # fmt: skip

    # -- aliases and stages ------------------------------------------------------------------
    def set_model_alias(
        self, name: str, alias: str, version: int, actor: str, comment: str | None = None
    ) -> None:
        """Point an alias at an active version; an alias that exists moves (one event)."""
        alias = v.check_alias(alias)
        version = v.check_version(version)
        actor = v.check_actor(actor)
        now = now_ms()
        al = t.model_aliases.c
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            self._active_version_row(conn, model, version)
            where = (al.model_pk == model.model_pk, al.alias == alias)
            old = conn.execute(sa.select(al.version).where(*where)).scalar()
            if old == version:
                return
            if old is None:
                conn.execute(
                    t.model_aliases.insert().values(
                        model_pk=model.model_pk, alias=alias, version=version
                    )
                )
            else:
                conn.execute(t.model_aliases.update().where(*where).values(version=version))
            self._touch(conn, model, now)
            self._event(
                conn, name, A.SET_ALIAS, actor, now, version=version, key=alias,
                before=None if old is None else str(old), after=str(version), comment=comment,
            )  # fmt: skip

    def delete_model_alias(
        self, name: str, alias: str, actor: str, comment: str | None = None
    ) -> None:
        """Remove an alias."""
        actor = v.check_actor(actor)
        now = now_ms()
        al = t.model_aliases.c
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            where = (al.model_pk == model.model_pk, al.alias == alias)
            old = conn.execute(sa.select(al.version).where(*where)).scalar()
            if old is None:
                raise NotFound(
                    f"registered model {name} has no alias {alias!r}",
                    hint=self._aliases_hint(conn, model),
                )
            conn.execute(t.model_aliases.delete().where(*where))
            self._touch(conn, model, now)
            self._event(
                conn, name, A.DELETE_ALIAS, actor, now, version=old, key=alias, before=str(old),
                comment=comment,
            )  # fmt: skip

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at."""
        al = t.model_aliases.c
        with self._read() as conn:
            model = self._model_row(conn, name)
            version = conn.execute(
                sa.select(al.version).where(al.model_pk == model.model_pk, al.alias == alias)
            ).scalar()
            if version is None:
                raise NotFound(
                    f"registered model {name} has no alias {alias!r}",
                    hint=self._aliases_hint(conn, model),
                )
            return self._reload_version(conn, model, version)

    def transition_model_version_stage(
        self,
        name: str,
        version: int,
        stage: str,
        archive_existing: bool,
        actor: str,
        comment: str | None = None,
    ) -> ModelVersion:
        """Move an active version to a stage; optionally archive the others in that stage."""
        version = v.check_version(version)
        stage = v.check_stage(stage)
        if archive_existing and stage not in LIVE_STAGES:
            raise InvalidInput(
                f"archive_existing_versions only applies to Staging and Production, not {stage}",
                hint="Archiving the others only applies when promoting: drop "
                "--archive-existing (archive_existing_versions in Python) for this stage.",
            )
        actor = v.check_actor(actor)
        now = now_ms()
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            row = self._active_version_row(conn, model, version)
            moves = [(version, row.stage, stage, comment)] if row.stage != stage else []
            if archive_existing:
                others = conn.execute(
                    sa.select(V.version)
                    .where(
                        V.model_pk == model.model_pk,
                        V.stage == stage,
                        V.lifecycle_stage == ACTIVE,
                        V.version != version,
                    )
                    .order_by(V.version)
                ).scalars()
                archived = ModelStage.ARCHIVED.value
                note = f"archived by the transition of version {version}"
                moves += [(n, stage, archived, note) for n in others]
            for n, before, after, why in moves:
                conn.execute(
                    t.model_versions.update()
                    .where(V.model_pk == model.model_pk, V.version == n)
                    .values(stage=after, last_update_time=now)
                )
                self._event(
                    conn, name, A.TRANSITION_STAGE, actor, now, version=n, before=before,
                    after=after, comment=why,
                )  # fmt: skip
            if moves:
                self._touch(conn, model, now)
            return self._reload_version(conn, model, version)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """Return the newest active version in each stage asked for, in that order."""
        wanted = [v.check_stage(s) for s in stages] if stages else list(v.MODEL_STAGES)
        with self._read() as conn:
            model = self._model_row(conn, name)
            latest = dict(
                conn.execute(
                    sa.select(V.stage, sa.func.max(V.version))
                    .where(
                        V.model_pk == model.model_pk,
                        V.lifecycle_stage == ACTIVE,
                        V.stage.in_(wanted),
                    )
                    .group_by(V.stage)
                ).all()
            )
            numbers = list(dict.fromkeys(latest[s] for s in wanted if s in latest))
            return [self._reload_version(conn, model, n) for n in numbers]

    # -- audit and gc ------------------------------------------------------------------------
    def get_registry_events(
        self, name: str, version: int | None = None, limit: int | None = None
    ) -> list[RegistryEvent]:
        """Return the events filed under a model name, newest first (deleted models too)."""
        if version is not None:
            version = v.check_version(version)
        if limit is not None and (type(limit) is not int or limit < 1):
            raise InvalidInput(f"limit must be a whole number >= 1, got {limit!r}")
        e = t.registry_events.c
        # Insertion order, not timestamps: clients of a team server do not share one clock.
        query = sa.select(t.registry_events).where(e.model_name == name)
        if version is not None:
            query = query.where(e.version == version)
        query = query.order_by(e.event_pk.desc()).limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
            if not rows:
                model = self._model_row(conn, name)  # an unknown name is NotFound, not []
                if version is not None:
                    self._version_row(conn, model, version)
        return [
            RegistryEvent(
                model_name=r.model_name,
                version=r.version,
                action=r.action,
                actor=r.actor,
                timestamp=r.timestamp,
                before=r.before,
                after=r.after,
                comment=r.comment,
                key=r.key,
            )
            for r in rows
        ]

    def registry_tree_hashes(self) -> set[str]:
        """Return the tree hash of every model version, deleted ones included."""
        with self._read() as conn:
            return set(conn.execute(sa.select(V.tree_hash).distinct()).scalars())
