"""The SQL model registry, part one: registered models, and the helpers versions share.

Row lookups that raise helpful errors, event rows, entity loading. Versions, aliases, stages and
the audit trail are in :mod:`mltrail.store.sql_registry`, whose mixin SqlStore inherits.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail import validation as v
from mltrail.entities import ModelStage, ModelVersion, PagedList, RegisteredModel
from mltrail.errors import AlreadyExists, InvalidInput, InvalidState, InvalidValue, NotFound
from mltrail.store import schema as t
from mltrail.store.engine import IN_CHUNK, chunks
from mltrail.store.registry_base import RegistryAction as A
from mltrail.store.registry_base import RegistryStore

ACTIVE = "active"
DELETED = "deleted"
READY = "READY"
# Stages that mean "in use": a version in one is not deleted without force.
LIVE_STAGES = (ModelStage.STAGING.value, ModelStage.PRODUCTION.value)
# Hints list names or numbers only up to this many; beyond that they point at a listing.
HINT_LIMIT = 10
# (model, version) pairs in a tuple IN (...): two bound parameters each.
_PAIR_CHUNK = IN_CHUNK // 2

M, V = t.registered_models.c, t.model_versions.c


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def check_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    """Return tags with checked keys and string values."""
    return {v.check_key(k, "tag"): v.check_tag_value(k, x) for k, x in (tags or {}).items()}


def check_text(value: object, what: str, limit: int | None = None) -> str | None:
    """Return an optional string field, refusing other types and (with ``limit``) long ones."""
    if value is None:
        return None
    if not isinstance(value, str) or (limit is not None and len(value) > limit):
        raise InvalidValue(
            f"{what} must be a string of at most {limit} characters, got {value!r}"
            if limit
            else f"{what} must be a string or None, got {value!r}",
            hint=f"Pass a shorter {what}, or None.",
        )
    return value


def listing(items: Iterable[Any]) -> str:
    """Join items for a message: ``a, b, c``."""
    return ", ".join(str(i) for i in items)


def join_notes(*parts: str | None) -> str | None:
    """Join the non-empty parts with ``; `` (None if there are none)."""
    return "; ".join(p for p in parts if p) or None


class SqlRegisteredModels(RegistryStore):
    """Registered models in the SQL store, and the row helpers of the whole registry."""

    if TYPE_CHECKING:  # provided by SqlStore
        _sqlite: bool
        _upsert: Any

        def _read(self) -> sa.Connection: ...
        def _write(self) -> sa.Connection: ...

    # -- lookups and errors ------------------------------------------------------------------
    def _model_row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        query = sa.select(t.registered_models).where(M.name == name)
        if lock and not self._sqlite:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise self._model_not_found(conn, name)
        return row

    @staticmethod
    def _model_not_found(conn: sa.Connection, name: str) -> NotFound:
        names = list(
            conn.execute(sa.select(M.name).order_by(M.name).limit(HINT_LIMIT + 1)).scalars()
        )
        if not names:
            hint = "There are no registered models yet; register one with register_model."
        elif len(names) <= HINT_LIMIT:
            hint = f"Registered models: {listing(names)}."
        else:
            hint = "Find models with search_registered_models(name_like='...%')."
        return NotFound(f"registered model {name!r} does not exist", hint=hint)

    @staticmethod
    def _version_row(conn: sa.Connection, model: Any, version: int) -> Any:
        row = conn.execute(
            sa.select(t.model_versions).where(V.model_pk == model.model_pk, V.version == version)
        ).first()
        if row is not None:
            return row
        active = list(
            conn.execute(
                sa.select(V.version)
                .where(V.model_pk == model.model_pk, V.lifecycle_stage == ACTIVE)
                .order_by(V.version)
            ).scalars()
        )
        if not active:
            hint = f"{model.name} has no active versions; register one with register_model."
        elif len(active) <= HINT_LIMIT:
            hint = f"Its versions: {listing(active)}."
        else:
            hint = f"Its versions run from {active[0]} to {active[-1]} (list_model_versions)."
        raise NotFound(f"version {version} of {model.name} does not exist", hint=hint)

    def _active_version_row(self, conn: sa.Connection, model: Any, version: int) -> Any:
        row = self._version_row(conn, model, version)
        if row.lifecycle_stage != ACTIVE:
            raise InvalidState(
                f"version {version} of {model.name} is deleted",
                hint="A deleted version cannot change; register the model again for a new one.",
            )
        return row

    @staticmethod
    def _aliases_hint(conn: sa.Connection, model: Any) -> str:
        rows = conn.execute(
            sa.select(t.model_aliases.c.alias, t.model_aliases.c.version)
            .where(t.model_aliases.c.model_pk == model.model_pk)
            .order_by(t.model_aliases.c.alias)
        ).all()
        if not rows:
            return f"{model.name} has no aliases; set one with set_registered_model_alias."
        shown = listing([f"{a} (version {n})" for a, n in rows[:HINT_LIMIT]])
        more = f" and {len(rows) - HINT_LIMIT} more" if len(rows) > HINT_LIMIT else ""
        return f"Its aliases: {shown}{more}."

    # -- writing helpers ---------------------------------------------------------------------
    @staticmethod
    def _event(
        conn: sa.Connection,
        name: str,
        action: str,
        actor: str,
        now: int,
        *,
        version: int | None = None,
        key: str | None = None,
        before: str | None = None,
        after: str | None = None,
        comment: str | None = None,
    ) -> None:
        conn.execute(
            t.registry_events.insert().values(
                model_name=name,
                version=version,
                action=action,
                key=key,
                actor=actor,
                timestamp=now,
                before=before,
                after=after,
                comment=comment,
            )
        )

    @staticmethod
    def _touch(conn: sa.Connection, model: Any, now: int, version: int | None = None) -> None:
        conn.execute(
            t.registered_models.update()
            .where(M.model_pk == model.model_pk)
            .values(last_update_time=now)
        )
        if version is not None:
            conn.execute(
                t.model_versions.update()
                .where(V.model_pk == model.model_pk, V.version == version)
                .values(last_update_time=now)
            )

    # -- loading entities --------------------------------------------------------------------
    @staticmethod
    def _put_tag(
        conn: sa.Connection, table: sa.Table, scope: dict[str, Any], key: str, value: str
    ) -> tuple[bool, str | None]:
        """Set tag ``key`` of the model or version ``scope`` names; return (changed, old value).

        The caller holds the model's row lock, so insert-or-update needs no upsert.
        """
        c = table.c
        where = [*(c[k] == val for k, val in scope.items()), c.key == key]
        old = conn.execute(sa.select(c.value).where(*where)).scalar()
        if old == value:
            return False, old
        if old is None:
            conn.execute(table.insert().values(**scope, key=key, value=value))
        else:
            conn.execute(table.update().where(*where).values(value=value))
        return True, old

    @staticmethod
    def _drop_tag(
        conn: sa.Connection, table: sa.Table, scope: dict[str, Any], key: str, owner: str
    ) -> str:
        """Remove tag ``key`` of ``scope``; return its value, or raise NotFound naming ``owner``."""
        c = table.c
        where = [c[k] == val for k, val in scope.items()]
        old = conn.execute(sa.select(c.value).where(*where, c.key == key)).scalar()
        if old is None:
            shown = listing(conn.execute(sa.select(c.key).where(*where).order_by(c.key)).scalars())
            raise NotFound(
                f"{owner} has no tag {key!r}",
                hint=f"Its tags: {shown}." if shown else "It has no tags.",
            )
        conn.execute(table.delete().where(*where, c.key == key))
        return old

    @staticmethod
    def _load_models(conn: sa.Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
        pks = [r.model_pk for r in rows]
        tags: dict[int, dict[str, str]] = {pk: {} for pk in pks}
        aliases: dict[int, dict[str, int]] = {pk: {} for pk in pks}
        latest: dict[int, int] = {}
        mt, al = t.registered_model_tags.c, t.model_aliases.c
        for chunk in chunks(pks):
            for pk, key, value in conn.execute(
                sa.select(mt.model_pk, mt.key, mt.value).where(mt.model_pk.in_(chunk))
            ):
                tags[pk][key] = value
            for pk, alias, version in conn.execute(
                sa.select(al.model_pk, al.alias, al.version)
                .where(al.model_pk.in_(chunk))
                .order_by(al.alias)
            ):
                aliases[pk][alias] = version
            for pk, top in conn.execute(
                sa.select(V.model_pk, sa.func.max(V.version))
                .where(V.model_pk.in_(chunk), V.lifecycle_stage == ACTIVE)
                .group_by(V.model_pk)
            ):
                latest[pk] = top
        return [
            RegisteredModel(
                name=r.name,
                description=r.description,
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
                tags=tags[r.model_pk],
                aliases=aliases[r.model_pk],
                latest_version=latest.get(r.model_pk),
            )
            for r in rows
        ]

    @staticmethod
    def _load_versions(
        conn: sa.Connection, rows: Sequence[Any], names: dict[int, str]
    ) -> list[ModelVersion]:
        """Build versions from model_versions rows; ``names`` maps model_pk → model name."""
        keys = [(r.model_pk, r.version) for r in rows]
        tags: dict[tuple[int, int], dict[str, str]] = {k: {} for k in keys}
        aliases: dict[tuple[int, int], list[str]] = {k: [] for k in keys}
        vt, al = t.model_version_tags.c, t.model_aliases.c
        for chunk in chunks(keys, _PAIR_CHUNK):
            for pk, version, key, value in conn.execute(
                sa.select(vt.model_pk, vt.version, vt.key, vt.value).where(
                    sa.tuple_(vt.model_pk, vt.version).in_(chunk)
                )
            ):
                tags[(pk, version)][key] = value
            for pk, version, alias in conn.execute(
                sa.select(al.model_pk, al.version, al.alias)
                .where(sa.tuple_(al.model_pk, al.version).in_(chunk))
                .order_by(al.alias)
            ):
                aliases[(pk, version)].append(alias)
        return [
            ModelVersion(
                name=names[r.model_pk],
                version=r.version,
                run_id=r.run_id,
                source=r.source,
                artifact_path=r.artifact_path,
                tree_hash=r.tree_hash,
                description=r.description,
                status=r.status,
                stage=r.stage,
                lifecycle_stage=r.lifecycle_stage,
                user_id=r.user_id,
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
                tags=tags[(r.model_pk, r.version)],
                aliases=aliases[(r.model_pk, r.version)],
            )
            for r in rows
        ]

    def _reload_version(self, conn: sa.Connection, model: Any, version: int) -> ModelVersion:
        row = self._version_row(conn, model, version)
        return self._load_versions(conn, [row], {model.model_pk: model.name})[0]

    def _reload_model(self, conn: sa.Connection, model_pk: int) -> RegisteredModel:
        row = conn.execute(sa.select(t.registered_models).where(M.model_pk == model_pk)).one()
        return self._load_models(conn, [row])[0]

    def _insert_model(
        self, conn: sa.Connection, name: str, description: str | None, now: int
    ) -> bool:
        # ON CONFLICT DO NOTHING: a concurrent creator of the same name makes this one wait for
        # its commit (PostgreSQL) and then insert nothing, instead of failing.
        stmt = (
            self._upsert(t.registered_models)
            .values(name=name, description=description, creation_time=now, last_update_time=now)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(M.model_pk)
        )
        # RETURNING, not rowcount: through SQLAlchemy, psycopg reports -1 rows for this INSERT.
        return conn.execute(stmt).first() is not None

    @staticmethod
    def _in_use(
        conn: sa.Connection, model_pk: int, version: int | None = None
    ) -> list[tuple[int, str]]:
        """Return (version, why) for active versions holding aliases or a live stage."""
        al = t.model_aliases.c
        alias_q = sa.select(al.version, al.alias).where(al.model_pk == model_pk)
        stage_q = sa.select(V.version, V.stage).where(
            V.model_pk == model_pk, V.lifecycle_stage == ACTIVE, V.stage.in_(LIVE_STAGES)
        )
        if version is not None:
            alias_q = alias_q.where(al.version == version)
            stage_q = stage_q.where(V.version == version)
        held: dict[int, list[str]] = {}
        for n, alias in conn.execute(alias_q.order_by(al.version, al.alias)):
            held.setdefault(n, []).append(alias)
        staged = dict(conn.execute(stage_q).all())
        reasons = []
        for n in sorted(set(held) | set(staged)):
            parts = []
            if n in held:
                parts.append(f"holds alias{'es' if len(held[n]) > 1 else ''} {listing(held[n])}")
            if n in staged:
                parts.append(f"is in {staged[n]}")
            reasons.append((n, " and ".join(parts)))
        return reasons

    # -- registered models -------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        description: str | None,
        tags: dict[str, str] | None,
        actor: str,
        comment: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model with no versions; the name must be unused."""
        name = v.check_model_name(name)
        description = v.check_description(description)
        clean = check_tags(tags)
        actor = v.check_actor(actor)
        now = now_ms()
        with self._write() as conn, conn.begin():
            if not self._insert_model(conn, name, description, now):
                raise AlreadyExists(
                    f"registered model {name} already exists",
                    hint="Pick another name, or add a version to it with register_model.",
                )
            model = self._model_row(conn, name)
            if clean:
                conn.execute(
                    t.registered_model_tags.insert(),
                    [{"model_pk": model.model_pk, "key": k, "value": x} for k, x in clean.items()],
                )
            self._event(conn, name, A.CREATE_MODEL, actor, now, after=name, comment=comment)
            return self._load_models(conn, [model])[0]

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its tags, aliases and latest active version."""
        with self._read() as conn:
            return self._load_models(conn, [self._model_row(conn, name)])[0]

    def list_registered_models(
        self, name_like: str | None = None, max_results: int = 100, page_token: str | None = None
    ) -> PagedList:
        """Return a page of registered models ordered by name, filtered by a LIKE pattern."""
        from mltrail.store.base import MAX_RESULTS_LIMIT
        from mltrail.store.sql import decode_page_token, encode_page_token

        if type(max_results) is not int or not 1 <= max_results <= MAX_RESULTS_LIMIT:
            raise InvalidInput(
                f"max_results {max_results!r} is out of range; use 1 to {MAX_RESULTS_LIMIT}"
            )
        offset = decode_page_token(page_token)
        query = sa.select(t.registered_models).order_by(M.name)
        if name_like:
            query = query.where(M.name.like(name_like))
        with self._read() as conn:
            rows = conn.execute(query.offset(offset).limit(max_results + 1)).all()
            models = self._load_models(conn, rows[:max_results])
        more = len(rows) > max_results
        return PagedList(models, encode_page_token(offset + max_results) if more else None)

    def update_registered_model(
        self, name: str, description: str | None, actor: str, comment: str | None = None
    ) -> RegisteredModel:
        """Replace a registered model's description."""
        description = v.check_description(description)
        actor = v.check_actor(actor)
        now = now_ms()
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            if model.description != description:
                conn.execute(
                    t.registered_models.update()
                    .where(M.model_pk == model.model_pk)
                    .values(description=description, last_update_time=now)
                )
                self._event(
                    conn,
                    name,
                    A.UPDATE_MODEL,
                    actor,
                    now,
                    before=model.description,
                    after=description,
                    comment=comment,
                )
            return self._reload_model(conn, model.model_pk)

    def rename_registered_model(
        self, name: str, new_name: str, actor: str, comment: str | None = None
    ) -> RegisteredModel:
        """Rename a registered model; the event is filed under both names."""
        new_name = v.check_model_name(new_name)
        actor = v.check_actor(actor)
        now = now_ms()
        taken = AlreadyExists(
            f"registered model {new_name} already exists",
            hint="Pick another name, or delete or rename that model first.",
        )
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            if new_name == name:
                return self._reload_model(conn, model.model_pk)
            if conn.execute(sa.select(M.model_pk).where(M.name == new_name)).first():
                raise taken
            try:
                conn.execute(
                    t.registered_models.update()
                    .where(M.model_pk == model.model_pk)
                    .values(name=new_name, last_update_time=now)
                )
            except sa.exc.IntegrityError:  # created meanwhile by another PostgreSQL writer
                raise taken from None
            for filed_under in (name, new_name):
                self._event(
                    conn,
                    filed_under,
                    A.RENAME_MODEL,
                    actor,
                    now,
                    before=name,
                    after=new_name,
                    comment=comment,
                )
            return self._reload_model(conn, model.model_pk)

    def delete_registered_model(
        self, name: str, actor: str, force: bool = False, comment: str | None = None
    ) -> None:
        """Delete a registered model with its versions, tags and aliases; events remain."""
        actor = v.check_actor(actor)
        now = now_ms()
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            reasons = [f"version {n} {why}" for n, why in self._in_use(conn, model.model_pk)]
            if reasons and not force:
                raise InvalidState(
                    f"registered model {name} is in use: {'; '.join(reasons)}",
                    hint="Remove those aliases and archive those versions first, or force "
                    "the deletion (`--force`, or force=True in Python).",
                )
            conn.execute(t.registered_models.delete().where(M.model_pk == model.model_pk))
            self._event(
                conn,
                name,
                A.DELETE_MODEL,
                actor,
                now,
                before=name,
                # A forced deletion records what it overrode.
                comment=join_notes(comment, *reasons),
            )

    def set_registered_model_tag(
        self, name: str, key: str, value: str, actor: str, comment: str | None = None
    ) -> None:
        """Set one tag of a registered model."""
        key, value = v.check_key(key, "tag"), v.check_tag_value(key, value)
        actor = v.check_actor(actor)
        now = now_ms()
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            scope = {"model_pk": model.model_pk}
            changed, old = self._put_tag(conn, t.registered_model_tags, scope, key, value)
            if not changed:
                return
            self._touch(conn, model, now)
            self._event(
                conn, name, A.SET_MODEL_TAG, actor, now, key=key, before=old, after=value,
                comment=comment,
            )  # fmt: skip

    def delete_registered_model_tag(
        self, name: str, key: str, actor: str, comment: str | None = None
    ) -> None:
        """Remove one tag of a registered model."""
        actor = v.check_actor(actor)
        now = now_ms()
        with self._write() as conn, conn.begin():
            model = self._model_row(conn, name, lock=True)
            old = self._drop_tag(
                conn, t.registered_model_tags, {"model_pk": model.model_pk}, key,
                f"registered model {name}",
            )  # fmt: skip
            self._touch(conn, model, now)
            self._event(
                conn, name, A.DELETE_MODEL_TAG, actor, now, key=key, before=old, comment=comment
            )
