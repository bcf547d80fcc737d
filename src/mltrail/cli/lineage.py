"""``mltrail lineage TARGET``: the data, runs and code behind a model, or what a dataset fed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import json_option

if TYPE_CHECKING:
    from mltrail.lineage import Edge, LineageGraph, Node

#: Characters of hashes, run ids and commits shown in the tree (as `runs ls` / `data log`).
SHORT_HASH = 12
SHORT_ID = 8
SHORT_COMMIT = 7
#: Run name characters shown in the tree, so the id and commit after it stay on the line.
MAX_NAME = 24
#: Params shown on a run's second line before "+N".
TREE_PARAMS = 6
FORMATS = ("tree", "mermaid", "dot")

#: How an edge reads from the node printed above it: (going up, going down).
_VERBS = {
    "input": ("read", "read by"),
    "output": ("written by", "wrote"),
    "registered": ("made by", "registered as"),
    "alias": ("points at", ""),
}


@click.command("lineage")
@click.argument("target")
@click.option(
    "--up",
    "direction",
    flag_value="up",
    help="Only upstream: the runs, data and code the target came from.",
)
@click.option(
    "--down",
    "direction",
    flag_value="down",
    help="Only downstream: the runs, datasets and models that used the target.",
)
@click.option(
    "--both",
    "direction",
    flag_value="both",
    default=True,
    help="Upstream and downstream (the default).",
)
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    metavar="N",
    help="Follow at most N runs away from the target (default: no limit).",
)
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    metavar="N",
    help="Stop collecting after N nodes (the output then says so).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    help="tree (default): an indented tree; mermaid or dot: a graph to render elsewhere.",
)
@json_option
def lineage_command(
    target: str,
    direction: str,
    depth: int | None,
    max_nodes: int,
    output_format: str | None,
    as_json: bool,
) -> None:
    """Show the lineage of a model, run or dataset: where it came from and what used it.

    TARGET is a model (models:/NAME@ALIAS, models:/NAME/VERSION, models:/NAME/STAGE,
    models:/NAME/latest), a run (runs:/RUN_ID, or a run id or unique prefix), or a dataset
    path relative to the project root: PATH names every version runs recorded, PATH@HASH one
    version (a hash prefix is enough).

    Upstream goes from a model to the run that made it, the dataset versions that run read,
    the runs (pipeline stages) that wrote those versions, their inputs, and so on. Downstream
    goes from a dataset version to the runs that read it and what they wrote and registered.

    \b
    Examples:
      mltrail lineage models:/wine-rf@production --up
      mltrail lineage data/raw.csv --down
      mltrail lineage data/raw.csv@1e30d220 --depth 1
      mltrail lineage 3f2a9c1e --format mermaid > lineage.mmd
      mltrail lineage models:/wine-rf/3 --format dot | dot -Tsvg > lineage.svg
    """
    from mltrail.lineage import lineage

    if as_json and output_format not in (None, "json"):
        raise click.UsageError(f"--json and --format {output_format} cannot be used together")
    graph = lineage(
        _project_relative(target),
        direction=direction,
        depth=depth,
        max_nodes=max_nodes,
        client=get_client(),
    )
    if as_json:
        fmt.echo_json(graph.to_dict())
    elif output_format == "mermaid":
        fmt.echo(mermaid(graph))
    elif output_format == "dot":
        fmt.echo(dot(graph))
    else:
        _print_tree(graph, max_nodes)


def _project_relative(target: str) -> str:
    """A dataset path given from a subfolder (or as its pointer file) as the runs recorded it."""
    if ":" in target:
        return target
    path, at, version = target.rpartition("@")
    if not at:
        path, version = target, ""
    if path.endswith(".trail") and len(path) > len(".trail"):
        path = path[: -len(".trail")]
    if not (os.path.lexists(path) or os.path.lexists(path + ".trail")):
        return target
    from mltrail.config import find_project

    project = find_project(None)
    if project is None:
        return target
    full = Path(os.path.abspath(path))
    root = project.parent
    if root not in full.parents:
        return target
    rel = full.relative_to(root).as_posix()
    return f"{rel}@{version}" if at else rel


# -- tree ------------------------------------------------------------------------------------


def _node_text(node: Node) -> list[str]:
    """The line (or lines) describing a node in the tree."""
    a = node.attrs
    if node.kind == "dataset":
        files = f"{a['nfiles']} files, " if a.get("nfiles") is not None else ""
        return [f"{a['path']}  {a['hash'][:SHORT_HASH]}  {files}{fmt.size(a['size'])}"]
    if node.kind == "run":
        name = fmt.visible(a["run_name"] or fmt.missing())  # cut as it will be shown
        if len(name) > MAX_NAME:
            name = name[: MAX_NAME - 1] + fmt.glyph("…", "~")
        parts = [f"run {name}", a["run_id"][:SHORT_ID]]
        if a.get("git_commit"):
            dirty = " (dirty)" if a.get("git_dirty") else ""
            parts.append(f"commit {a['git_commit'][:SHORT_COMMIT]}{dirty}")
        if a["status"] != "FINISHED":
            parts.append(a["status"])
        if a.get("lifecycle_stage") == "deleted":
            parts.append("(deleted)")
        parts.append(fmt.when(a["start_time"]))
        lines = ["  ".join(parts)]
        params = list(a["params"].items())
        if params:
            shown = " ".join(f"{k}={v}" for k, v in params[:TREE_PARAMS])
            more = a["params_total"] - min(len(params), TREE_PARAMS)
            lines.append(f"params: {shown}" + (f" (+{more})" if more > 0 else ""))
        return lines
    if node.kind == "model_version":
        parts = [f"model {a['name']} v{a['version']}"]
        if a.get("stage") and a["stage"] != "None":
            parts.append(a["stage"])
        if a.get("lifecycle_stage") == "deleted":
            parts.append("(deleted)")
        return ["  ".join(parts)]
    return [f"alias {a['name']}@{a['alias']}"]


def _label(node: Node, verb: str | None, arrow: str, seen: bool) -> Any:
    from rich.text import Text

    lines = [fmt.visible(line) for line in _node_text(node)]
    head = " ".join(w for w in (arrow, verb) if w)
    head += " " if head else ""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(head, style="dim")
    text.append(lines[0], style="bold" if node.kind in ("model_version", "alias") else None)
    if seen:
        text.append("  (shown above)", style="dim")
    else:
        indent = " " * len(head)
        for line in lines[1:]:
            text.append(f"\n{indent}{line}", style="dim")
    return text


def _grow(
    graph: LineageGraph,
    branch: Any,
    node: Node,
    up: bool,
    shown: set[tuple[str, bool | None]],
    arrows: tuple[str, str],
) -> None:
    """Add the children of ``node`` in one direction under ``branch``, each node expanded once."""
    from rich.text import Text

    edges: list[Edge] = graph.edges_into(node.key) if up else graph.edges_from(node.key)
    for edge in edges:
        child = graph.nodes[edge.src if up else edge.dst]
        verb = _VERBS[edge.kind][0 if up else 1]
        arrow = arrows[0] if up else arrows[1]
        seen = (child.key, up) in shown or child.key == graph.root
        sub = branch.add(_label(child, verb, arrow, seen))
        if not seen:
            shown.add((child.key, up))
            _grow(graph, sub, child, up, shown, arrows)
    # The walk did not follow this node's other neighbours; say so once, where it is expanded.
    if node.key in graph.truncated and (node.key, None) not in shown:
        shown.add((node.key, None))
        branch.add(Text("… more (raise --depth or --max-nodes)", style="dim"))


def _print_tree(graph: LineageGraph, max_nodes: int) -> None:
    from rich.tree import Tree

    from mltrail.cli.render import console, styled

    out = console()
    arrows = (fmt.glyph("←", "<-"), fmt.glyph("→", "->"))
    shown: set[tuple[str, bool | None]] = set()
    for i, key in enumerate(graph.roots):
        if i:
            out.print()
        root = graph.nodes[key]
        tree = Tree(_label(root, None, "", False), guide_style="dim")
        if graph.direction in ("up", "both"):
            _grow(graph, tree, root, True, shown, arrows)
        if graph.direction in ("down", "both"):
            _grow(graph, tree, root, False, shown, arrows)
        out.print(tree)
        if not tree.children:
            where = {"up": "upstream", "down": "downstream", "both": "upstream or downstream"}
            out.print(styled(f"nothing recorded {where[graph.direction]} of it", "dim"))
    if graph.capped:
        out.print(
            styled(
                f"note: stopped at {max_nodes} nodes; … marks where lineage goes on "
                "(raise --max-nodes or use --depth)",
                "dim",
            )
        )
    elif graph.truncated:
        out.print(
            styled(
                f"note: stopped {graph.depth} {'run' if graph.depth == 1 else 'runs'} away; "
                "… marks where lineage goes on (raise --depth)",
                "dim",
            )
        )


# -- graph formats ---------------------------------------------------------------------------


def _short_label(node: Node) -> list[str]:
    a = node.attrs
    if node.kind == "dataset":
        return [a["path"], a["hash"][:SHORT_HASH]]
    if node.kind == "run":
        lines = [f"run {a['run_name'] or a['run_id'][:SHORT_ID]}", a["run_id"][:SHORT_ID]]
        if a.get("git_commit"):
            lines.append(f"commit {a['git_commit'][:SHORT_COMMIT]}")
        return lines
    if node.kind == "model_version":
        return [f"{a['name']} v{a['version']}"]
    return [f"@{a['alias']}"]


def mermaid(graph: LineageGraph) -> str:
    """The graph as a Mermaid flowchart, data flowing left to right."""
    ids = {key: f"n{i}" for i, key in enumerate(graph.nodes)}
    shapes = {"dataset": ('[("', '")]'), "run": ('["', '"]'), "model_version": ('[["', '"]]')}
    lines = ["flowchart LR"]
    lines += [f"  classDef {kind} {style}" for kind, style in _MERMAID_STYLES.items()]
    for key, node in graph.nodes.items():
        text = "<br/>".join(_mermaid_escape(s) for s in _short_label(node))
        left, right = shapes.get(node.kind, ('(["', '"])'))
        lines.append(f"  {ids[key]}{left}{text}{right}")
    for e in graph.edges:
        lines.append(f"  {ids[e.src]} -->|{e.kind}| {ids[e.dst]}")
    for kind in ("dataset", "run", "model_version", "alias"):
        members = [ids[n.key] for n in graph.of_kind(kind)]
        if members:
            lines.append(f"  class {','.join(members)} {kind}")
    lines.append(f"  style {ids[graph.root]} stroke-width:3px")
    return "\n".join(lines)


_MERMAID_STYLES = {
    "dataset": "fill:#e8f1fb,stroke:#4a78b0",
    "run": "fill:#fdf3e1,stroke:#b07a1e",
    "model_version": "fill:#e6f4ea,stroke:#3a8a4f",
    "alias": "fill:#f3e8fb,stroke:#7a4ab0",
}


def _mermaid_escape(text: str) -> str:
    # Mermaid labels take HTML entities; quotes would end the label. Control characters are
    # shown as escapes (the output is printed, and a label is one line).
    return (
        fmt.visible(text)
        .replace("&", "&amp;")
        .replace('"', "#quot;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def dot(graph: LineageGraph) -> str:
    """The graph in Graphviz DOT, data flowing left to right."""
    shapes = {"dataset": "cylinder", "run": "box", "model_version": "component", "alias": "oval"}
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for key, node in graph.nodes.items():
        label = "\\n".join(_dot_escape(s) for s in _short_label(node))
        extra = ", penwidth=2" if key == graph.root else ""
        lines.append(f'  "{_dot_escape(key)}" [label="{label}", shape={shapes[node.kind]}{extra}];')
    for e in graph.edges:
        lines.append(f'  "{_dot_escape(e.src)}" -> "{_dot_escape(e.dst)}" [label="{e.kind}"];')
    lines.append("}")
    return "\n".join(lines)


def _dot_escape(text: str) -> str:
    # Control characters as visible escapes ('\\x1b', '\\n'); then every backslash doubled, so
    # DOT shows those escapes as text instead of reading '\\n' as a line break.
    return fmt.visible(text).replace("\\", "\\\\").replace('"', '\\"')
