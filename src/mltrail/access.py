"""Who may read and change what: the access rules every face calls (REST API, MLflow API, UI).

A caller is a :class:`Principal`: a user, a role (``read``, ``write``, ``admin``) and grants that
replace the role on one experiment or one registered model (``none``, ``read``, ``write``). The
faces find out who is calling (the server reads a Bearer token or the UI's cookie); this module
decides what that caller may do, so the three faces cannot disagree.

Objects are reached by reference, never by knowing a hash: an object (a file or a tree) is
readable by a caller who may read a run that lists it as an artifact or a dataset version, a
logged model that lists it as a file, or a model version whose tree it is, or a file inside one
of those trees. An object nothing refers to yet (data just pushed with ``mltrail data push``,
artifacts uploaded before they are recorded) is readable with the ``read`` role, whatever the
grants: refusing it would stop a writer fetching what they pushed, and nothing recorded says
whose it is. Writing a reference is reading: recording an artifact, a dataset version or a model
version that names an object needs read access to that object, so nobody can gain a hidden
object by naming its hash in a run of their own.

Only a grant of ``none`` hides anything; a caller without one (and any admin) may read every
object, and the checks here cost them no query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import NotFound, PermissionDenied, StoreError

if TYPE_CHECKING:
    from mltrail.entities import ModelVersion, TokenInfo
    from mltrail.objects.base import ObjectStore

#: Role levels, weakest first.
LEVELS = {"none": 0, "read": 1, "write": 2, "admin": 3}

_ASK_HINT = (
    "Ask an admin for a token with a higher role, or for a permission on it "
    "(`mltrail server permissions set`)."
)

_VERB = {
    "read": "read",
    "write": "write",
    "admin": "administer the server (tokens, permissions, garbage collection)",
}


@dataclass(frozen=True)
class Principal:
    """The caller: a user, their role, and any per-experiment or per-model grants."""

    user: str
    role: str
    authenticated: bool = False
    #: (``"experiment"``, id) or (``"model"``, name) → level, overriding the role there.
    grants: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: The token the caller presented (auth on only).
    token: TokenInfo | None = None


# -- levels ----------------------------------------------------------------------------------------


def level_of(who: Principal, *, experiment_id: str | None = None, model: str | None = None) -> int:
    """The caller's level (a value of :data:`LEVELS`) on an experiment, a model, or in general.

    A grant on the experiment or model replaces the role there; admins keep theirs everywhere.
    """
    have = LEVELS[who.role]
    if who.role == "admin":
        return have
    if experiment_id is not None and ("experiment", experiment_id) in who.grants:
        return LEVELS[who.grants[("experiment", experiment_id)]]
    if model is not None and ("model", model) in who.grants:
        return LEVELS[who.grants[("model", model)]]
    return have


def allow(
    who: Principal,
    level: str,
    *,
    experiment_id: str | None = None,
    model: str | None = None,
) -> None:
    """Raise PermissionDenied unless ``who`` holds ``level`` (on the experiment or model)."""
    if level_of(who, experiment_id=experiment_id, model=model) >= LEVELS[level]:
        return
    where, granted = "", None
    if level != "admin" and experiment_id is not None:
        where, granted = (
            f" on experiment {experiment_id}",
            who.grants.get(("experiment", experiment_id)),
        )
    elif level != "admin" and model is not None:
        where, granted = f" on model {model!r}", who.grants.get(("model", model))
    because = f"permission {granted} there" if granted is not None else f"role {who.role}"
    raise PermissionDenied(
        f"user {who.user!r} ({because}) may not {_VERB[level]}{where}", hint=_ASK_HINT
    )


def _has_experiment_grants(who: Principal) -> bool:
    return any(kind == "experiment" for kind, _ in who.grants)


def allow_run(who: Principal, store: Any, run_id: str, level: str) -> None:
    """:func:`allow` on the experiment a run belongs to (looked up only when it matters)."""
    if _has_experiment_grants(who) and who.role != "admin":
        allow(who, level, experiment_id=store.get_run_info(run_id).experiment_id)
    else:
        allow(who, level)


def restricted(who: Principal) -> bool:
    """Whether a grant hides something from ``who`` (only a ``none`` grant does)."""
    return who.role != "admin" and any(level == "none" for level in who.grants.values())


def visible_experiment(who: Principal, experiment_id: str) -> bool:
    """Whether listings show the experiment to ``who`` (not when their permission is none)."""
    return level_of(who, experiment_id=experiment_id) >= LEVELS["read"]


def visible_experiment_ids(who: Principal, store: Any) -> list[str] | None:
    """The experiments ``who`` may see when grants hide some, else None (every experiment)."""
    from mltrail.entities import ViewType

    # Only a per-experiment grant can hide one; without any, spare the store a listing.
    if who.role == "admin" or not _has_experiment_grants(who):
        return None
    return [
        e.experiment_id
        for e in store.list_experiments(ViewType.ALL)
        if visible_experiment(who, e.experiment_id)
    ]


def visible_model(who: Principal, name: str) -> bool:
    """Whether listings show the registered model to ``who`` (not when their permission is none)."""
    return level_of(who, model=name) >= LEVELS["read"]


def visible_versions(who: Principal, versions: Iterable[ModelVersion]) -> list[ModelVersion]:
    """The model versions of ``versions`` whose model listings show to ``who``."""
    return [mv for mv in versions if visible_model(who, mv.name)]


def visible_owner(who: Principal, owner: tuple[str, str]) -> bool:
    """Whether ``who`` may read an owner: (``"experiment"``, id) or (``"model"``, name)."""
    kind, key = owner
    if kind == "experiment":
        return visible_experiment(who, key)
    return visible_model(who, key)


def visible_run_ids(who: Principal, store: Any, run_ids: Iterable[str]) -> list[str]:
    """The runs of ``run_ids`` whose experiments ``who`` may read (in the same order)."""
    run_ids = list(run_ids)
    if who.role == "admin" or not _has_experiment_grants(who):
        return run_ids if level_of(who) >= LEVELS["read"] else []
    out = []
    for run_id in run_ids:
        try:
            experiment_id = store.get_run_info(run_id).experiment_id
        except NotFound:
            continue
        if visible_experiment(who, experiment_id):
            out.append(run_id)
    return out


def actor(who: Principal, claimed: str | None) -> str:
    """The name recorded as the author of a change: the token's user when auth is on."""
    if who.authenticated or not claimed:
        return who.user
    return claimed


# -- objects ---------------------------------------------------------------------------------------


class _TreeFiles:
    """Tree hash → the hashes it lists, for trees already read (trees never change)."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, frozenset[str]] = {}

    def of(self, objects: ObjectStore, tree_hash: str) -> frozenset[str]:
        with self._lock:
            found = self._known.get(tree_hash)
        if found is not None:
            return found
        from mltrail.errors import MltrailError
        from mltrail.objects.tree import read_tree

        try:
            found = frozenset(e.hash for e in read_tree(objects, tree_hash))
        except MltrailError:
            # Not (yet) stored, or not a tree (a file dataset): it lists nothing.
            return frozenset()
        with self._lock:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[tree_hash] = found
        return found


_TREES = _TreeFiles()


def readable_objects(
    who: Principal,
    store: Any,
    objects: ObjectStore | Callable[[], ObjectStore] | None,
    hashes: Iterable[str],
) -> set[str]:
    """The hashes of ``hashes`` that ``who`` may read (see the module's rule)."""
    wanted = set(hashes)
    if level_of(who) < LEVELS["read"] and who.role != "admin":
        return set()
    if not restricted(who):
        return wanted
    owners = store.object_owners(wanted)
    out = {h for h, found in owners.items() if any(visible_owner(who, o) for o in found)}
    if out == wanted:
        return out  # each is referenced by something the caller may read: no tree to look into
    # Files inside trees: each tree someone refers to lends its owners to the files it lists.
    trees = store.tree_owners()
    if trees:
        try:
            store_of = objects() if callable(objects) else objects
        except StoreError:
            store_of = None  # no object store: no tree can be read, so none lists anything
        if store_of is not None:
            for tree_hash, tree_owners in trees.items():
                inside = _TREES.of(store_of, tree_hash) & wanted
                for h in inside:
                    owners.setdefault(h, set()).update(tree_owners)
    for h in wanted - out:
        found = owners.get(h)
        if not found or any(visible_owner(who, o) for o in found):
            out.add(h)
    return out


def allow_objects(
    who: Principal,
    store: Any,
    objects: ObjectStore | Callable[[], ObjectStore] | None,
    hashes: Iterable[str],
) -> None:
    """Raise PermissionDenied unless ``who`` may read every object of ``hashes``."""
    wanted = set(hashes)
    allowed = readable_objects(who, store, objects, wanted)
    refused = sorted(wanted - allowed)
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise PermissionDenied(
            f"user {who.user!r} may not read object {refused[0]}{more}: only runs, models or "
            "datasets they may not read refer to it",
            hint="Objects are read through a run, model version or dataset you may read; "
            + _ASK_HINT[0].lower()
            + _ASK_HINT[1:],
        )


# -- the caller's access as one object ------------------------------------------------------


class Access:
    """The rules above bound to one caller and store (what the MLflow API handlers ask)."""

    def __init__(
        self,
        who: Principal,
        store: Any,
        objects: ObjectStore | Callable[[], ObjectStore] | None = None,
    ) -> None:
        self.who = who
        self.store = store
        self.objects = objects

    def allow(
        self, level: str, *, experiment_id: str | None = None, model: str | None = None
    ) -> None:
        """:func:`allow` for this caller."""
        allow(self.who, level, experiment_id=experiment_id, model=model)

    def allow_run(self, run_id: str, level: str) -> None:
        """:func:`allow_run` for this caller."""
        allow_run(self.who, self.store, run_id, level)

    def allow_objects(self, hashes: Iterable[str]) -> None:
        """:func:`allow_objects` for this caller."""
        allow_objects(self.who, self.store, self.objects, hashes)

    def visible_experiment(self, experiment_id: str) -> bool:
        """:func:`visible_experiment` for this caller."""
        return visible_experiment(self.who, experiment_id)

    def visible_model(self, name: str) -> bool:
        """:func:`visible_model` for this caller."""
        return visible_model(self.who, name)

    def actor(self, claimed: str | None) -> str:
        """:func:`actor` for this caller."""
        return actor(self.who, claimed)
