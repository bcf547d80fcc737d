"""The lineage page: the graph dataset version → run → model version → alias, as SVG.

The graph comes from :func:`mltrail.lineage.graph_from_store` (the API the CLI uses too); this
module only lays it out, left to right in layers that follow the data (longest path from the
sources, each source pulled next to what reads it), ordered within a layer by a few barycenter
sweeps so edges cross less. The template draws it as SVG with a link on every node, so the
picture needs no JavaScript and every text in it is escaped by Jinja.

Nodes the user may not see (runs in hidden experiments, hidden models and their aliases) are
dropped with their edges, and so is whatever the walk reached only through them, so the page
never shows more than the REST API would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mltrail.access import Principal, allow, visible_experiment, visible_model
from mltrail.errors import InvalidInput, NotFound, PermissionDenied
from mltrail.lineage import DIRECTIONS, FORMS, Edge, LineageGraph, Node, graph_from_store
from mltrail.ui.app import State, Who, render
from mltrail.ui.pages.datasets import human_size

router = APIRouter(include_in_schema=False)

#: Nodes one page draws at most; past this the graph says where it stopped.
MAX_NODES = 150
#: Box size and gaps of the drawing, in px.
NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 200, 46, 90, 14, 16
#: Characters of a label that fit in a box.
LABEL_CHARS = 27


@dataclass
class Placed:
    """A node with its place in the drawing and what to show in its box."""

    node: Node
    x: int
    y: int
    href: str
    title: str
    line1: str
    line2: str
    root: bool


@dataclass
class Drawn:
    """An edge as an SVG path between two placed nodes."""

    edge: Edge
    d: str
    back: bool


@router.get("/lineage")
def lineage_page(
    request: Request,
    who: Who,
    state: State,
    target: str = "",
    direction: str = "both",
    depth: str = "",
) -> Response:
    """The lineage graph of a model version, alias, run or dataset (version), and its form."""
    allow(who, "read")
    values: dict[str, Any] = {
        "area": "lineage",
        "target": target,
        "direction": direction if direction in DIRECTIONS else "both",
        "depth": depth,
        "directions": DIRECTIONS,
        "forms": FORMS,
        "error": None,
        "graph": None,
    }
    if not target.strip():
        return render(request, "lineage.html", **values)
    try:
        limit = _depth(depth)
        graph = graph_from_store(
            state.store,
            target.strip(),
            direction=values["direction"],
            depth=limit,
            max_nodes=MAX_NODES,
        )
    except (InvalidInput, NotFound) as exc:
        values["error"] = exc
        return render(request, "lineage.html", 404 if isinstance(exc, NotFound) else 400, **values)
    hidden = _drop_hidden(graph, who)
    placed, drawn, width, height = layout(graph)
    values.update(
        graph=graph,
        hidden=hidden,
        placed=placed,
        drawn=drawn,
        width=width,
        height=height,
        node_w=NODE_W,
        node_h=NODE_H,
        truncated=set(graph.truncated),
        counts={k: len(graph.of_kind(k)) for k in ("dataset", "run", "model_version", "alias")},
    )
    return render(request, "lineage.html", **values)


def _depth(text: str) -> int | None:
    """The depth field: empty for no limit, else a whole number >= 0."""
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):  # "²" is a digit int() refuses
        raise InvalidInput(
            f"depth {text!r} is not a whole number >= 0",
            hint="Leave it empty for the whole graph, or give how many runs away to follow.",
        )
    return int(text)


def _drop_hidden(graph: LineageGraph, who: Principal) -> int:
    """Remove the nodes ``who`` may not see (and their edges); return how many were removed."""

    def shown(node: Node) -> bool:
        if node.kind == "run":
            return visible_experiment(who, str(node.attrs.get("experiment_id")))
        if node.kind in ("model_version", "alias"):
            return visible_model(who, str(node.attrs.get("name")))
        return True

    hidden = [k for k, n in graph.nodes.items() if not shown(n)]
    root = graph.nodes.get(graph.root)
    if root is not None and graph.root in hidden:
        # The target itself: refuse it as its own page would (403 with the reason).
        if root.kind == "run":
            allow(who, "read", experiment_id=str(root.attrs.get("experiment_id")))
        else:
            allow(who, "read", model=str(root.attrs.get("name")))
        raise PermissionDenied(f"you may not see {root.label}")  # unreachable: allow() refused
    gone = set(hidden)
    edges = [e for e in graph.edges if e.src not in gone and e.dst not in gone]
    roots = [r for r in graph.roots if r not in gone]
    # What the walk reached only through a hidden node (a dataset a hidden run wrote, and all
    # beyond it) must go too: keep what still connects to the target through shown edges.
    near: dict[str, list[str]] = {}
    for e in edges:
        near.setdefault(e.src, []).append(e.dst)
        near.setdefault(e.dst, []).append(e.src)
    kept, todo = set(roots), list(roots)
    while todo:
        for other in near.get(todo.pop(), []):
            if other not in kept:
                kept.add(other)
                todo.append(other)
    dropped = [k for k in graph.nodes if k not in kept]
    for key in dropped:
        del graph.nodes[key]
    graph.edges = [e for e in edges if e.src in kept and e.dst in kept]
    graph.roots = roots
    graph.truncated = [t for t in graph.truncated if t in kept]
    return len(dropped)


# -- layout --------------------------------------------------------------------------------------


def layers(keys: list[str], edges: list[Edge]) -> dict[str, int]:
    """A layer (column) per node: longest path from the sources, cycles broken where found."""
    succ: dict[str, list[str]] = {k: [] for k in keys}
    for e in edges:
        if e.src != e.dst and e.src in succ and e.dst in succ:
            succ[e.src].append(e.dst)
    # Depth-first search marks back edges; the rest is a DAG to layer.
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}
    for start in keys:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(succ[start]))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    dag = {k: [d for d in succ[k] if (k, d) not in back] for k in keys}
    indeg = {k: 0 for k in keys}
    for k in keys:
        for d in dag[k]:
            indeg[d] += 1
    layer = {k: 0 for k in keys}
    ready = [k for k in keys if indeg[k] == 0]
    order: list[str] = []
    while ready:
        k = ready.pop()
        order.append(k)
        for d in dag[k]:
            layer[d] = max(layer[d], layer[k] + 1)
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    # A source (a raw dataset) sits just left of the first node that reads it, not at column 0.
    has_in = {d for k in keys for d in dag[k]}
    for k in reversed(order):
        if k not in has_in and dag[k]:
            layer[k] = min(layer[d] for d in dag[k]) - 1
    low = min(layer.values(), default=0)
    return {k: v - low for k, v in layer.items()}


_KIND_ORDER = {"dataset": 0, "run": 1, "model_version": 2, "alias": 3}


def layout(graph: LineageGraph) -> tuple[list[Placed], list[Drawn], int, int]:
    """Place every node of ``graph`` and route its edges; also the drawing's width and height."""
    keys = list(graph.nodes)
    layer = layers(keys, graph.edges)
    columns: dict[int, list[str]] = {}
    for k in sorted(keys, key=lambda k: (_KIND_ORDER.get(graph.nodes[k].kind, 9), k)):
        columns.setdefault(layer[k], []).append(k)
    neighbours: dict[str, list[str]] = {k: [] for k in keys}
    for e in graph.edges:
        if e.src in neighbours and e.dst in neighbours and e.src != e.dst:
            neighbours[e.src].append(e.dst)
            neighbours[e.dst].append(e.src)
    # Barycenter sweeps: each node moves toward the mean row of its neighbours.
    pos = {k: i for col in columns.values() for i, k in enumerate(col)}
    for sweep in range(6):
        cols = sorted(columns) if sweep % 2 == 0 else sorted(columns, reverse=True)
        for c in cols:
            col = columns[c]

            def centre(k: str, col: list[str] = col) -> float:
                near = neighbours[k]
                return sum(pos[n] for n in near) / len(near) if near else pos[k]

            col.sort(key=lambda k: (centre(k), pos[k]))
            for i, k in enumerate(col):
                pos[k] = i
    tallest = max((len(c) for c in columns.values()), default=0)
    step = NODE_H + ROW_GAP
    roots = set(graph.roots)
    placed: dict[str, Placed] = {}
    for c, col in columns.items():
        top = PAD + (tallest - len(col)) * step // 2
        for i, k in enumerate(col):
            x, y = PAD + c * (NODE_W + COL_GAP), top + i * step
            placed[k] = _place(graph.nodes[k], x, y, k in roots)
    drawn = [_route(e, placed[e.src], placed[e.dst]) for e in graph.edges if _both(e, placed)]
    width = PAD * 2 + (max(columns, default=0) + 1) * (NODE_W + COL_GAP) - COL_GAP
    height = PAD * 2 + tallest * step - ROW_GAP + 40  # room for loops under the lowest row
    order = sorted(placed.values(), key=lambda p: (p.x, p.y))
    return order, drawn, width, height


def _both(e: Edge, placed: dict[str, Placed]) -> bool:
    return e.src in placed and e.dst in placed


def _route(e: Edge, a: Placed, b: Placed) -> Drawn:
    """A curve from ``a``'s right side to ``b``'s left; backwards edges loop below."""
    y1, y2 = a.y + NODE_H // 2, b.y + NODE_H // 2
    if b.x > a.x:
        x1, x2 = a.x + NODE_W, b.x
        c = (x2 - x1) // 2
        return Drawn(e, f"M{x1},{y1} C{x1 + c},{y1} {x2 - c},{y2} {x2},{y2}", False)
    # A run that wrote what it read, or any edge against the layering: under both boxes.
    x1, x2 = a.x + NODE_W // 2, b.x + NODE_W // 2
    low = max(a.y, b.y) + NODE_H + 30
    return Drawn(e, f"M{x1},{a.y + NODE_H} C{x1},{low} {x2},{low} {x2},{b.y + NODE_H}", True)


def _cut(text: str, n: int = LABEL_CHARS) -> str:
    """``text`` shortened in the middle to ``n`` characters (ends of paths say the most)."""
    if len(text) <= n:
        return text
    half = (n - 1) // 2
    return text[:half] + "…" + text[-(n - 1 - half) :]


def _place(node: Node, x: int, y: int, root: bool) -> Placed:
    a = node.attrs
    if node.kind == "dataset":
        path, h = str(a.get("path", "")), str(a.get("hash", ""))
        files = a.get("nfiles")
        what = f"{files} files" if files is not None else "file"
        href = f"/datasets/{quote(path)}?hash={h}#v-{h[:12]}"
        title = f"dataset {path}\nversion {h}\n{what}, {human_size(a.get('size'))}"
        line2 = f"{h[:10]} · {human_size(a.get('size'))}"
        return Placed(node, x, y, href, title, _cut(path), line2, root)
    if node.kind == "run":
        run_id = str(a.get("run_id", ""))
        name = str(a.get("run_name") or run_id[:8])
        exp = a.get("experiment_name") or a.get("experiment_id")
        title = f"run {name} ({run_id})\n{a.get('status')} in experiment {exp}"
        line2 = f"run {run_id[:8]} · {a.get('status', '')}"
        return Placed(node, x, y, f"/runs/{quote(run_id)}", title, _cut(name), line2, root)
    if node.kind == "model_version":
        name, version = str(a.get("name", "")), a.get("version")
        stage = a.get("stage") or "None"
        href = f"/models/{quote(name)}/versions/{version}"
        title = f"model {name} version {version}\nstage {stage}"
        line2 = f"model version · {stage}" if stage != "None" else "model version"
        return Placed(node, x, y, href, title, _cut(f"{name} v{version}"), line2, root)
    name, alias, version = str(a.get("name", "")), str(a.get("alias", "")), a.get("version")
    href = f"/models/{quote(name)}/versions/{version}"
    title = f"alias {alias} of {name}\npoints at version {version}"
    return Placed(node, x, y, href, title, _cut(f"@{alias}"), _cut(f"alias · {name}"), root)
