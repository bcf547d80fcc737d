"""Lineage: the graph dataset version → run → model version → alias, queryable both ways.

Upstream from a model (``models:/wine-rf@production``) it finds the run that made the model, the
dataset versions that run read, the runs that wrote those same versions (a pipeline's earlier
stages), their inputs, and so on. Downstream from a dataset version it finds every run that read
it, what those runs wrote (datasets, registered model versions and their aliases), the runs that
read those, and so on.

Two dataset versions are the same node when both the path and the content hash match: that is how
a pipeline stage's output (``data/prepared.csv``, hash H) links to the next stage's input. Equal
content under another path is not linked (every empty file has the same hash).

Only :class:`~mltrail.store.base.TrackingStore` methods are used, so lineage works the same on
SQLite, PostgreSQL and the team server. The walk remembers what it visited (a run that reads and
writes the same version cannot loop it), stops ``depth`` runs away from the target, and stops
adding nodes at ``max_nodes``; a cut graph says so in ``notes`` and lists the nodes it did not
follow in ``truncated``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidInput, MltrailError, NotFound

if TYPE_CHECKING:
    from mltrail.entities import DatasetRef, DatasetUse, ModelVersion, Run, RunDataset
    from mltrail.store.base import TrackingStore
    from mltrail.tracking.client import MltrailClient

__all__ = [
    "DIRECTIONS",
    "EDGE_KINDS",
    "FORMS",
    "NODE_KINDS",
    "Edge",
    "LineageGraph",
    "Node",
    "graph_from_store",
    "lineage",
]

#: Node kinds, in data-flow order.
NODE_KINDS = ("dataset", "run", "model_version", "alias")
#: Edge kinds: ``input`` dataset → run, ``output`` run → dataset, ``registered`` run → model
#: version, ``alias`` model version → alias. Edges always point the way data flows.
EDGE_KINDS = ("input", "output", "registered", "alias")
#: ``up`` follows edges backwards (where did it come from), ``down`` forwards (what used it).
DIRECTIONS = ("up", "down", "both")

#: The targets :func:`lineage` accepts, for messages.
FORMS = (
    "models:/NAME@ALIAS",
    "models:/NAME/VERSION",
    "models:/NAME/STAGE",
    "models:/NAME/latest",
    "runs:/RUN_ID",
    "RUN_ID (or a unique prefix of 4+ characters)",
    "PATH (every version of a dataset runs recorded)",
    "PATH@HASH (one version; a hash prefix of 4+ characters is enough)",
    "NAME, NAME@ALIAS, NAME/VERSION (a registered model, when no dataset has that path)",
)

#: Nodes a graph holds at most unless asked otherwise; enough for any readable picture.
DEFAULT_MAX_NODES = 500
#: Params kept per run node (sorted by key); the count of all of them is kept too.
MAX_PARAMS = 20
#: Latest metric values kept per run node (sorted by key).
MAX_METRICS = 10

_TAG_GIT_COMMIT = "mltrail.git.commit"
_TAG_GIT_DIRTY = "mltrail.git.dirty"
_TAG_COMMAND = "mltrail.source.command"

_HEX = re.compile(r"[0-9a-f]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
_SHORT = 12


@dataclass(frozen=True)
class Node:
    """One dataset version, run, model version or alias in a lineage graph."""

    key: str
    kind: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        # attrs is a dict (unhashable); the key identifies the node.
        return hash(self.key)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {"key": self.key, "kind": self.kind, "label": self.label, "attrs": dict(self.attrs)}


@dataclass(frozen=True)
class Edge:
    """A link in the direction data flows: ``src`` fed or made ``dst``."""

    src: str
    dst: str
    kind: str

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-ready dict with stable keys."""
        return {"src": self.src, "dst": self.dst, "kind": self.kind}


@dataclass
class LineageGraph:
    """The nodes and edges reachable from a target, and how the walk was bounded."""

    root: str
    nodes: dict[str, Node]
    edges: list[Edge]
    #: Every node the target named (a dataset path names all its versions), ``root`` first.
    roots: list[str] = field(default_factory=list)
    direction: str = "both"
    depth: int | None = None
    #: Nodes with neighbours the walk did not follow (depth limit or node cap).
    truncated: list[str] = field(default_factory=list)
    #: Why the graph is incomplete, for people (empty when it is complete).
    notes: list[str] = field(default_factory=list)
    #: Whether the walk stopped at ``max_nodes`` (rather than, or as well as, at ``depth``).
    capped: bool = False

    def __post_init__(self) -> None:
        if not self.roots:
            self.roots = [self.root]

    def node(self, key: str) -> Node:
        """Return a node by key (KeyError if the graph does not hold it)."""
        return self.nodes[key]

    def upstream_of(self, key: str) -> list[Node]:
        """Return the nodes with an edge into ``key``: what it came from, one step back."""
        return [self.nodes[e.src] for e in self.edges if e.dst == key]

    def downstream_of(self, key: str) -> list[Node]:
        """Return the nodes ``key`` has an edge to: what it fed or made, one step on."""
        return [self.nodes[e.dst] for e in self.edges if e.src == key]

    def edges_into(self, key: str) -> list[Edge]:
        """Return the edges ending at ``key``."""
        return [e for e in self.edges if e.dst == key]

    def edges_from(self, key: str) -> list[Edge]:
        """Return the edges starting at ``key``."""
        return [e for e in self.edges if e.src == key]

    def of_kind(self, kind: str) -> list[Node]:
        """Return the nodes of one kind, in the order the walk found them."""
        return [n for n in self.nodes.values() if n.kind == kind]

    def datasets(self) -> list[Node]:
        """Return the dataset version nodes."""
        return self.of_kind("dataset")

    def runs(self) -> list[Node]:
        """Return the run nodes."""
        return self.of_kind("run")

    def model_versions(self) -> list[Node]:
        """Return the model version nodes."""
        return self.of_kind("model_version")

    def aliases(self) -> list[Node]:
        """Return the alias nodes."""
        return self.of_kind("alias")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: root(s), bounds, nodes and edges in the order found."""
        return {
            "root": self.root,
            "roots": list(self.roots),
            "direction": self.direction,
            "depth": self.depth,
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "edges": [e.to_dict() for e in self.edges],
            "truncated": list(self.truncated),
            "notes": list(self.notes),
            "capped": self.capped,
        }


# -- keys and nodes --------------------------------------------------------------------------


def dataset_key(path: str, hash: str) -> str:
    """Return the key of a dataset version node."""
    return f"dataset:{path}@{hash}"


def run_key(run_id: str) -> str:
    """Return the key of a run node."""
    return f"run:{run_id}"


def model_key(name: str, version: int) -> str:
    """Return the key of a model version node."""
    return f"model:{name}/{version}"


def alias_key(name: str, alias: str) -> str:
    """Return the key of an alias node."""
    return f"alias:{name}@{alias}"


def _dataset_node(ref: DatasetRef) -> Node:
    return Node(
        dataset_key(ref.path, ref.hash),
        "dataset",
        f"{ref.path}@{ref.hash[:_SHORT]}",
        {
            "path": ref.path,
            "hash": ref.hash,
            "kind": ref.kind,
            "size": ref.size,
            "nfiles": ref.nfiles,
        },
    )


def _model_node(mv: ModelVersion) -> Node:
    return Node(
        model_key(mv.name, mv.version),
        "model_version",
        f"{mv.name} v{mv.version}",
        {
            "name": mv.name,
            "version": mv.version,
            "stage": mv.stage,
            "aliases": sorted(mv.aliases),
            "run_id": mv.run_id,
            "source": mv.source,
            "tree_hash": mv.tree_hash,
            "creation_time": mv.creation_time,
            "lifecycle_stage": mv.lifecycle_stage,
        },
    )


def _alias_node(name: str, alias: str, version: int) -> Node:
    return Node(
        alias_key(name, alias),
        "alias",
        f"{name}@{alias}",
        {"name": name, "alias": alias, "version": version},
    )


# -- the walk --------------------------------------------------------------------------------


_Load = Callable[[], "Node | None"]


class _Walker:
    """Breadth-first over the store, caching every answer so no question is asked twice."""

    def __init__(self, store: TrackingStore, depth: int | None, max_nodes: int) -> None:
        self.store = store
        self.depth = depth
        self.max_nodes = max_nodes
        self.nodes: dict[str, Node] = {}
        self.edges: dict[Edge, None] = {}
        self.truncated: dict[str, None] = {}
        self.capped = False
        self._uses: dict[tuple[str, str], list[DatasetUse]] = {}
        self._run_datasets: dict[str, list[RunDataset]] = {}
        self._run_nodes: dict[str, Node | None] = {}
        self._experiments: dict[str, str | None] = {}

    # store answers, cached
    def uses(self, path: str, hash: str) -> list[DatasetUse]:
        """The (active) runs that read or wrote one dataset version."""
        found = self._uses.get((path, hash))
        if found is None:
            found = self._uses[(path, hash)] = self.store.find_dataset_uses(path=path, hash=hash)
        return found

    def seed_uses(self, uses: Iterable[DatasetUse]) -> None:
        """Remember uses already fetched for a whole path, grouped by version."""
        grouped: dict[tuple[str, str], list[DatasetUse]] = {}
        for u in uses:
            grouped.setdefault((u.dataset.path, u.dataset.hash), []).append(u)
        self._uses.update(grouped)

    def run_datasets(self, run_id: str) -> list[RunDataset]:
        """A run's recorded inputs and outputs."""
        found = self._run_datasets.get(run_id)
        if found is None:
            found = self._run_datasets[run_id] = self.store.get_run_datasets(run_id)
        return found

    def experiment_name(self, experiment_id: str) -> str | None:
        """An experiment's name, or None if it cannot be read."""
        if experiment_id not in self._experiments:
            try:
                name: str | None = self.store.get_experiment(experiment_id).name
            except MltrailError:
                name = None
            self._experiments[experiment_id] = name
        return self._experiments[experiment_id]

    def run_node(self, run_id: str) -> Node | None:
        """The node of a run, or None if the store no longer has it."""
        if run_id not in self._run_nodes:
            try:
                run = self.store.get_run(run_id)
            except NotFound:
                self._run_nodes[run_id] = None
            else:
                self._run_nodes[run_id] = self._make_run_node(run)
        return self._run_nodes[run_id]

    def _make_run_node(self, run: Run) -> Node:
        info, data = run.info, run.data
        params = dict(sorted(data.params.items())[:MAX_PARAMS])
        metrics = dict(sorted(data.metrics.items())[:MAX_METRICS])
        attrs = {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "experiment_id": info.experiment_id,
            "experiment_name": self.experiment_name(info.experiment_id),
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "user_id": info.user_id,
            "lifecycle_stage": info.lifecycle_stage,
            "git_commit": data.tags.get(_TAG_GIT_COMMIT),
            "git_dirty": data.tags.get(_TAG_GIT_DIRTY) == "true",
            "command": data.tags.get(_TAG_COMMAND),
            "params": params,
            "params_total": len(data.params),
            "metrics": metrics,
        }
        return Node(run_key(info.run_id), "run", info.run_name or info.run_id[:8], attrs)

    # neighbours: one step away in a direction, as (key, kind, load, edge). Loading a run costs
    # a store call, so the walk loads a node only once it knows the node fits (depth and cap):
    # a dataset read by 100,000 runs must not fetch them all to keep 500.
    def neighbours(self, node: Node, up: bool) -> list[tuple[str, str, _Load, Edge]]:
        """The nodes one step from ``node``: backwards when ``up``, else forwards."""
        a, kind = node.attrs, node.kind
        found: list[tuple[str, str, _Load, Edge]] = []

        def built(n: Node, edge: Edge) -> None:
            found.append((n.key, n.kind, lambda: n, edge))

        def run(run_id: str, edge: Edge) -> None:
            found.append((run_key(run_id), "run", lambda: self.run_node(run_id), edge))

        if kind == "dataset":
            wanted = "output" if up else "input"
            for use in self.uses(a["path"], a["hash"]):
                if use.direction == wanted:
                    rk = run_key(use.run_id)
                    run(
                        use.run_id,
                        Edge(rk, node.key, "output") if up else Edge(node.key, rk, "input"),
                    )
        elif kind == "run":
            wanted = "input" if up else "output"
            for rd in self.run_datasets(a["run_id"]):
                if rd.direction == wanted:
                    ds = _dataset_node(rd.dataset)
                    built(
                        ds,
                        Edge(ds.key, node.key, "input") if up else Edge(node.key, ds.key, "output"),
                    )
            if not up:
                for mv in self.store.find_model_versions(run_id=a["run_id"]):
                    mvn = _model_node(mv)
                    built(mvn, Edge(node.key, mvn.key, "registered"))
        elif kind == "model_version":
            if up and a["run_id"]:
                run(a["run_id"], Edge(run_key(a["run_id"]), node.key, "registered"))
            elif not up:
                for alias in a["aliases"]:
                    al = _alias_node(a["name"], alias, a["version"])
                    built(al, Edge(node.key, al.key, "alias"))
        elif kind == "alias" and up:
            mvn = _model_node(self.store.get_model_version(a["name"], a["version"]))
            built(mvn, Edge(mvn.key, node.key, "alias"))
        return found

    def add(self, node: Node) -> bool:
        """Add a node unless the cap is reached; True if the graph holds it now."""
        if node.key in self.nodes:
            return True
        if len(self.nodes) >= self.max_nodes:
            self.capped = True
            return False
        self.nodes[node.key] = node
        return True

    def walk(self, roots: list[Node], up: bool) -> None:
        """Follow edges from the roots in one direction, breadth first."""
        queue = deque((r, 0) for r in roots)
        seen = {r.key for r in roots}
        while queue:
            node, dist = queue.popleft()
            for key, kind, load, edge in self.neighbours(node, up):
                # Depth counts runs: a run's datasets and models belong to it.
                nb_dist = dist + (1 if kind == "run" else 0)
                within = self.depth is None or nb_dist <= self.depth
                if key not in self.nodes:
                    if not within or len(self.nodes) >= self.max_nodes:
                        self.capped = self.capped or within
                        self.truncated[node.key] = None
                        continue
                    nb = load()
                    if nb is None:  # a run the store no longer has
                        continue
                    self.add(nb)
                # A node found before (a cycle, or the other direction's walk) gets the edge too.
                self.edges[edge] = None
                if within and key not in seen:
                    seen.add(key)
                    queue.append((self.nodes[key], nb_dist))


# -- targets ---------------------------------------------------------------------------------


def _bad_target(target: object, why: str) -> InvalidInput:
    return InvalidInput(
        f"{target!r} is not a lineage target: {why}",
        hint=f"Use one of: {', '.join(FORMS)}.",
    )


def _not_found(message: str) -> NotFound:
    return NotFound(message, hint=f"A lineage target is one of: {', '.join(FORMS)}.")


def _model_roots(store: TrackingStore, target: str) -> list[Node]:
    from mltrail.registry.uri import parse_model_uri

    try:
        parsed = parse_model_uri(target)
    except InvalidInput as e:
        raise InvalidInput(e.message, hint=f"Use one of: {', '.join(FORMS)}.") from None
    name = parsed.name or ""
    if parsed.alias is not None:
        mv = store.get_model_version_by_alias(name, parsed.alias)
        return [_alias_node(mv.name, parsed.alias, mv.version)]
    if parsed.version is not None:
        return [_model_node(store.get_model_version(name, parsed.version))]
    if parsed.stage is not None:
        in_stage = store.get_latest_versions(name, [parsed.stage])
        if not in_stage:
            raise NotFound(
                f"registered model {name} has no version in stage {parsed.stage}",
                hint=f"Use models:/{name}@ALIAS or models:/{name}/VERSION "
                f"(`mltrail models versions {name}` lists them).",
            )
        return [_model_node(in_stage[0])]
    latest = store.get_registered_model(name).latest_version
    if latest is None:
        raise NotFound(
            f"registered model {name} has no versions",
            hint="Register one with `mltrail models register runs:/RUN_ID/model NAME`.",
        )
    return [_model_node(store.get_model_version(name, latest))]


def _run_id(store: TrackingStore, target: str, ref: str) -> str | None:
    """The full run id ``ref`` names, None if no run id starts with it."""
    ref = ref.strip().lower()
    if not 4 <= len(ref) <= 32 or not _HEX.fullmatch(ref):
        return None
    found = store.match_run_ids(ref, limit=2)
    if len(found) > 1:
        raise InvalidInput(
            f"run id prefix {ref!r} in {target!r} is ambiguous",
            hint="Give more characters of the id (`mltrail runs ls` shows them).",
        )
    return found[0] if found else None


def _check_path(target: str, path: str) -> str:
    path = path.strip()
    while path.startswith("./"):
        path = path[2:]
    path = path.rstrip("/")
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise _bad_target(
            target,
            "a dataset path is relative to the project root, with '/' separators and no "
            "'.', '..' or empty parts",
        )
    return path


def _dataset_roots(walker: _Walker, target: str) -> list[Node]:
    path, at, version = target.rpartition("@")
    # A suffix that is not a hash prefix is part of the path (paths may hold '@').
    if not at or not (4 <= len(version) <= 64 and _HEX.fullmatch(version.lower())):
        path, version = target, ""
    path = _check_path(target, path)
    version = version.lower()
    if len(version) == 64:
        uses = walker.store.find_dataset_uses(path=path, hash=version)
    else:
        uses = walker.store.find_dataset_uses(path=path)
    walker.seed_uses(uses)
    versions: dict[str, DatasetRef] = {}
    for u in uses:  # newest run first, so the newest version comes first
        versions.setdefault(u.dataset.hash, u.dataset)
    if not versions:
        raise _not_found(
            f"no run recorded dataset {path!r}"
            + (f" at a version starting with {version!r}" if version else "")
        )
    if version:
        matching = [ref for h, ref in versions.items() if h.startswith(version)]
        if not matching:
            known = ", ".join(h[:_SHORT] for h in list(versions)[:5])
            raise NotFound(
                f"no recorded version of {path} has a hash starting with {version!r}",
                hint=f"Its versions: {known}{', …' if len(versions) > 5 else ''} "
                f"(`mltrail data log {path}` lists them).",
            )
        if len(matching) > 1:
            raise InvalidInput(
                f"hash prefix {version!r} of {path} is ambiguous ({len(matching)} versions)",
                hint="Give more characters of the hash.",
            )
        return [_dataset_node(matching[0])]
    return [_dataset_node(ref) for ref in versions.values()]


def _resolve(walker: _Walker, target: object) -> list[Node]:
    if not isinstance(target, str):
        raise _bad_target(target, "it is not a string")
    text = target.strip()
    if not text:
        raise _bad_target(target, "it is empty")
    store = walker.store
    if text.startswith("models:/"):
        return _model_roots(store, text)
    if text.startswith("runs:/"):
        ref = text[len("runs:/") :].split("/", 1)[0]
        if not ref:
            raise _bad_target(target, "it names no run")
        run_id = _run_id(store, text, ref)
        if run_id is None:
            raise _not_found(f"no run id starts with {ref!r}")
        return [_required_run(walker, run_id)]
    if _SCHEME.match(text):
        raise _bad_target(target, "its scheme is neither models:/ nor runs:/")
    run_id = _run_id(store, text, text)
    if run_id is not None:
        return [_required_run(walker, run_id)]
    try:
        return _dataset_roots(walker, text)
    except NotFound:
        if "/" not in text and "@" not in text and _HEX.fullmatch(text.lower()):
            raise _not_found(
                f"{text!r} is neither a run id (prefix) nor a dataset path any run recorded"
            ) from None
        # As `mltrail models serve` does: NAME, NAME@ALIAS, NAME/VERSION, NAME/STAGE name a
        # registered model when no dataset was recorded under that path.
        shorthand = _model_shorthand(text)
        if shorthand is not None and _is_model(store, shorthand[0]):
            return _model_roots(store, shorthand[1])
        raise


def _model_shorthand(text: str) -> tuple[str, str] | None:
    """The model name and models:/ URI a shorthand stands for, None if ``text`` is none."""
    name, at, _ = text.partition("@")
    if at:
        return None if "/" in name else (name, f"models:/{text}")
    name, slash, ref = text.partition("/")
    if "/" in ref:
        return None
    return (name, f"models:/{text}") if slash else (name, f"models:/{text}/latest")


def _is_model(store: TrackingStore, name: str) -> bool:
    try:
        store.get_registered_model(name)
    except MltrailError:
        return False
    return True


def _required_run(walker: _Walker, run_id: str) -> Node:
    node = walker.run_node(run_id)
    if node is None:
        raise _not_found(f"run {run_id} does not exist")
    return node


# -- the API ---------------------------------------------------------------------------------


def graph_from_store(
    store: TrackingStore,
    target: str,
    *,
    direction: str = "both",
    depth: int | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> LineageGraph:
    """Return the lineage graph of ``target`` read from ``store`` (for faces that hold a store).

    See :func:`lineage` for the targets, ``direction``, ``depth`` and ``max_nodes``.
    """
    if direction not in DIRECTIONS:
        raise InvalidInput(
            f"lineage direction {direction!r} is not one of {', '.join(DIRECTIONS)}",
            hint="Use 'up' (where it came from), 'down' (what used it) or 'both'.",
        )
    if depth is not None and (type(depth) is not int or depth < 0):
        raise InvalidInput(
            f"lineage depth {depth!r} is not a whole number >= 0",
            hint="Give the number of runs to follow away from the target, or None for no limit.",
        )
    if type(max_nodes) is not int or max_nodes < 1:
        raise InvalidInput(f"max_nodes {max_nodes!r} is not a whole number >= 1")
    walker = _Walker(store, depth, max_nodes)
    roots = _resolve(walker, target)
    for r in roots:
        walker.add(r)
    roots = [r for r in roots if r.key in walker.nodes]
    if direction in ("up", "both"):
        walker.walk(roots, up=True)
    if direction in ("down", "both"):
        walker.walk(roots, up=False)
    notes = []
    if walker.capped:
        notes.append(
            f"stopped at {max_nodes} nodes; nodes in 'truncated' have more lineage "
            "(ask for a smaller depth, one direction, or a larger max_nodes)"
        )
    if depth is not None and walker.truncated and not walker.capped:
        runs = "run" if depth == 1 else "runs"
        notes.append(f"stopped {depth} {runs} away from the target; nodes in 'truncated' lead on")
    return LineageGraph(
        root=roots[0].key,
        nodes=walker.nodes,
        edges=list(walker.edges),
        roots=[r.key for r in roots],
        direction=direction,
        depth=depth,
        truncated=list(walker.truncated),
        notes=notes,
        capped=walker.capped,
    )


def lineage(
    target: str,
    *,
    direction: str = "both",
    depth: int | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    client: MltrailClient | None = None,
) -> LineageGraph:
    """Return the lineage graph of a model version, alias, run or dataset version.

    ``target`` is one of :data:`FORMS`: ``models:/wine-rf@production``, ``models:/wine-rf/3``,
    ``models:/wine-rf/Production``, ``runs:/<id>``, a run id or unique prefix, a dataset path
    relative to the project root (``data/raw.csv``: every version runs recorded, newest first,
    ``root`` being the newest) or one version of it (``data/raw.csv@1a2b3c4d``); when no run
    recorded a dataset at that path, ``wine-rf``, ``wine-rf@production`` and ``wine-rf/3`` name
    a registered model, as in ``mltrail models serve``.

    ``direction`` is ``up`` (what it came from), ``down`` (what used it) or ``both``. ``depth``
    is how many runs away from the target to follow (None: no limit); a run in the graph always
    comes with its datasets and models in that direction. At most ``max_nodes`` nodes are
    collected. ``client`` defaults to the fluent API's client (``mt.set_tracking_uri``).
    """
    if client is None:
        from mltrail.tracking import fluent

        client = fluent.get_client()
    # Queued writes first, so a run logged a moment ago is in its own lineage.
    client.flush()
    return graph_from_store(
        client.store, target, direction=direction, depth=depth, max_nodes=max_nodes
    )
