"""Objects a dataset needs that are missing or damaged, and the one error that names them all.

push, fetch, pull and checkout carry on past such objects: every dataset whose objects are all
there is transferred or checked out, and only at the end one error names every missing or
damaged object (with the datasets and files that hold it) and says what to do, which depends on
where the damage is: on the remote it is repaired from a machine whose copy is intact, in the
local cache from a remote or the workspace. The error carries what was done (``partial``), so a
face can show it before the error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from mltrail.errors import IntegrityError, MltrailError, NotFound
from mltrail.objects.base import ObjectStore

#: Problems listed one by one in an error before "… and N more".
MAX_NAMED = 20
#: Other places holding the same object, named beside it before "…".
MAX_ALSO = 3

Side = Literal["remote", "local"]


@dataclass(frozen=True)
class MissingObject:
    """An object a dataset needs that is missing, or damaged, where it was looked for."""

    dataset: str
    #: The file inside a folder dataset ("" for a file dataset or a folder's tree object).
    file: str
    hash: str
    #: True if the object is there but its bytes no longer hash to its name.
    damaged: bool = False
    #: Where: ``remote`` (the remote of a fetch or pull) or ``local`` (the local cache).
    side: Side = "remote"
    #: The other ``dataset/file`` places that hold the same object.
    also: tuple[str, ...] = ()
    #: True for a folder's listing (its tree object) rather than a file.
    listing: bool = False
    #: Every dataset holding the object (``dataset`` and those of ``also``).
    datasets: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """Return ``dataset/file``, or the dataset alone."""
        return f"{self.dataset}/{self.file}" if self.file else self.dataset

    def describe(self) -> str:
        """Return ``dataset/file (object abc123…)`` for messages, with the other places."""
        what = "folder listing, object" if self.listing else "object"
        text = f"{self.where} ({what} {self.hash[:12]})"
        if self.also:
            more = ", …" if len(self.also) > MAX_ALSO else ""
            text += f", also {', '.join(self.also[:MAX_ALSO])}{more}"
        return text

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict."""
        return {
            "dataset": self.dataset,
            "file": self.file,
            "hash": self.hash,
            "damaged": self.damaged,
            "side": self.side,
            "also": list(self.also),
            "listing": self.listing,
        }


@dataclass
class Places:
    """Which datasets and files hold each object (several may share one)."""

    of: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: The hashes that are folder listings.
    listings: set[str] = field(default_factory=set)

    def add(self, hash: str, dataset: str, file: str = "", *, listing: bool = False) -> None:
        if listing:
            self.listings.add(hash)
        spots = self.of.setdefault(hash, [])
        if (dataset, file) not in spots:
            spots.append((dataset, file))

    def datasets(self, hashes: Iterable[str]) -> set[str]:
        """Return every dataset holding one of ``hashes``."""
        return {name for h in hashes for name, _ in self.of.get(h, ())}

    def problem(self, hash: str, *, damaged: bool = False, side: Side = "remote") -> MissingObject:
        """Return the problem of object ``hash``, naming its first place and the others."""
        spots = self.of.get(hash) or [("?", "")]
        (dataset, file), rest = spots[0], spots[1:]
        also = tuple(f"{d}/{f}" if f else d for d, f in rest)
        names = tuple(dict.fromkeys(d for d, _ in spots))
        listing = hash in self.listings
        return MissingObject(dataset, file, hash, damaged, side, also, listing, names)


def lacking(problems: Iterable[MissingObject]) -> list[str]:
    """Return the datasets (sorted) that the problems leave incomplete."""
    return sorted({d for m in problems for d in (m.datasets or (m.dataset,))})


class Incomplete(MltrailError):
    """Some datasets lack objects (named in ``problems``); everything else was done.

    Raised as :class:`ObjectsMissing` (a ``NotFound``) or, when an object is damaged, as
    :class:`ObjectsDamaged` (an ``IntegrityError``). ``partial`` is what the operation did.
    """

    problems: list[MissingObject]
    partial: Any = None


class ObjectsMissing(Incomplete, NotFound):
    """Objects some datasets need are missing; the other datasets were handled."""


class ObjectsDamaged(Incomplete, IntegrityError):
    """Objects some datasets need are damaged (or missing); the other datasets were handled."""


@dataclass
class Stores:
    """The stores an operation read from and wrote to, for hints that name real paths."""

    local: ObjectStore
    remote: ObjectStore | None = None
    remote_name: str = ""


def incomplete(
    head: str,
    problems: list[MissingObject],
    stores: Stores,
    *,
    partial: Any = None,
) -> Incomplete:
    """Return the error naming every problem after ``head`` (what was done), with fitting hints."""
    problems = sorted(problems, key=lambda m: (m.side, not m.damaged, m.where, m.hash))
    lines = [f"{head}:"]
    for m in problems[:MAX_NAMED]:
        lines.append(f"  {_label(m, stores)}: {m.describe()}")
    if len(problems) > MAX_NAMED:
        lines.append(f"  … and {len(problems) - MAX_NAMED} more")
    hints = _hints(problems, stores)
    cls = ObjectsDamaged if any(m.damaged for m in problems) else ObjectsMissing
    err = cls("\n".join(lines), hint="\n".join(hints))
    err.problems = problems
    err.partial = partial
    if cls is ObjectsDamaged:
        err.object_hash = next(m.hash for m in problems if m.damaged)
    return err


def _label(m: MissingObject, stores: Stores) -> str:
    state = "damaged" if m.damaged else "missing"
    if m.side == "local":
        return f"{state} in the local cache"
    return f"{state} on the remote {stores.remote_name!r}" if stores.remote_name else state


def _hints(problems: list[MissingObject], stores: Stores) -> list[str]:
    hints = []
    remote_damaged = [m for m in problems if m.side == "remote" and m.damaged]
    remote_missing = [m for m in problems if m.side == "remote" and not m.damaged]
    local_damaged = [m for m in problems if m.side == "local" and m.damaged]
    local_missing = [m for m in problems if m.side == "local" and not m.damaged]
    if remote_damaged and stores.remote is not None:
        hints.append(
            f"The remote's copies are damaged (nothing damaged was stored here): "
            f"{_how_to_delete(stores.remote, remote_damaged)}, then run `mltrail data push` on "
            "a machine whose copies are intact, and run this command again."
        )
    if remote_missing:
        hints.append(
            "The remote lacks them: run `mltrail data push` on the machine that added that "
            "data, or pick another remote with -r."
        )
    if local_damaged:
        hints.append(
            f"The local cache's copies are damaged: {_how_to_delete(stores.local, local_damaged)}"
            ", then get them back with `mltrail data fetch` (from a remote whose copies are "
            f"intact) or `mltrail data add {_paths(local_damaged)}` (if the workspace files are "
            "intact)."
        )
    if local_missing:
        hints.append(
            "They are not in the local cache: get them with `mltrail data fetch` from a remote "
            f"that has them, or add the data again (`mltrail data add {_paths(local_missing)}`)."
        )
    return hints


def _paths(problems: list[MissingObject]) -> str:
    """The datasets of ``problems`` as command arguments (``PATH`` when there are many)."""
    names = lacking(problems)
    # Versions only a commit names ("a committed version …") have no path to add.
    plain = len(names) <= 3 and not any(" " in n for n in names)
    return " ".join(names) if plain else "PATH"


def _how_to_delete(store: ObjectStore, damaged: list[MissingObject]) -> str:
    """Say how to remove the damaged copies from ``store``, naming the first one."""
    from mltrail.objects.local import LocalObjectStore

    more = " and those of the others" if len(damaged) > 1 else ""
    h = damaged[0].hash
    if isinstance(store, LocalObjectStore):
        return f"delete the file {store.path_of(h)}{more}"
    key_of = getattr(store, "key_of", None)
    if key_of is not None:  # S3
        bucket = getattr(store, "bucket", "")
        return f"delete the key {key_of(h)} from bucket {bucket!r}{more}"
    return (
        f"have an admin of {store.location} delete object {h}{more} (DELETE /api/v1/objects/HASH)"
    )


__all__ = [
    "MAX_NAMED",
    "Incomplete",
    "MissingObject",
    "ObjectsDamaged",
    "ObjectsMissing",
    "Places",
    "Stores",
    "incomplete",
    "lacking",
]
