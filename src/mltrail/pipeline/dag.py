"""The stage graph: which stage feeds which, execution order, cycles, and drawings of it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mltrail.errors import InvalidInput
from mltrail.pipeline.spec import Pipeline, Stage


@dataclass
class Dag:
    """Edges between stages: ``upstream[b]`` are the stages whose outs ``b`` reads."""

    pipeline: Pipeline
    upstream: dict[str, list[str]] = field(default_factory=dict)
    downstream: dict[str, list[str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Return the stage names in file order."""
        return list(self.pipeline.stages)

    def order(self, targets: Iterable[str] | None = None) -> list[str]:
        """Return the stages to consider (``targets`` and their upstream) in execution order."""
        wanted = self.with_upstream(targets) if targets else set(self.names)
        # Kahn's algorithm; ties go to file order, so the order is stable and predictable.
        pending = {n: len(self.upstream[n]) for n in self.names}
        ready = [n for n in self.names if pending[n] == 0]
        out: list[str] = []
        position = {n: i for i, n in enumerate(self.names)}
        while ready:
            ready.sort(key=position.__getitem__)
            name = ready.pop(0)
            out.append(name)
            for nxt in self.downstream[name]:
                pending[nxt] -= 1
                if pending[nxt] == 0:
                    ready.append(nxt)
        return [n for n in out if n in wanted]

    def with_upstream(self, targets: Iterable[str]) -> set[str]:
        """Return ``targets`` and every stage they depend on, directly or not."""
        seen: set[str] = set()
        todo = [self.resolve(t) for t in targets]
        todo = [n for group in todo for n in group]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.upstream[name])
        return seen

    def with_downstream(self, names: Iterable[str]) -> set[str]:
        """Return ``names`` and every stage that depends on them."""
        seen: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.downstream[name])
        return seen

    def resolve(self, target: str) -> list[str]:
        """Return the stages a target names: a stage, or every ``target@…`` of a foreach."""
        if target in self.pipeline.stages:
            return [target]
        group = [n for n in self.names if n.startswith(target + "@")]
        if group:
            return group
        known = ", ".join(self.names) or "none"
        raise InvalidInput(
            f"no stage named {target!r} in {self.pipeline.file.name}",
            hint=f"Stages: {known}.",
        )

    # -- drawings --------------------------------------------------------------------------------

    def ascii(self, names: set[str] | None = None) -> str:
        """Return an indented tree from each source stage down (repeats marked ``(above)``)."""
        keep = names or set(self.names)
        lines: list[str] = []
        shown: set[str] = set()

        def walk(name: str, prefix: str, last: bool, top: bool) -> None:
            branch = "" if top else ("└── " if last else "├── ")
            repeat = name in shown
            lines.append(f"{prefix}{branch}{name}{'  (above)' if repeat else ''}")
            if repeat:
                return
            shown.add(name)
            children = [c for c in self.downstream[name] if c in keep]
            inner = prefix if top else prefix + ("    " if last else "│   ")
            for i, child in enumerate(children):
                walk(child, inner, i == len(children) - 1, False)

        for name in self.order():
            if name in keep and not [u for u in self.upstream[name] if u in keep]:
                walk(name, "", True, True)
        return "\n".join(lines)

    def mermaid(self, names: set[str] | None = None) -> str:
        """Return a Mermaid ``flowchart TD`` of the stages."""
        keep = names or set(self.names)
        ids = {n: f"s{i}" for i, n in enumerate(self.names)}
        lines = ["flowchart TD"]
        for n in self.order():
            if n in keep:
                lines.append(f'    {ids[n]}["{n}"]')
        for n in self.order():
            for d in self.downstream[n]:
                if n in keep and d in keep:
                    lines.append(f"    {ids[n]} --> {ids[d]}")
        return "\n".join(lines)

    def dot(self, names: set[str] | None = None) -> str:
        """Return a Graphviz DOT digraph of the stages."""
        keep = names or set(self.names)
        lines = ["digraph pipeline {", "    rankdir=TB;", "    node [shape=box];"]
        for n in self.order():
            if n in keep:
                lines.append(f'    "{n}";')
        for n in self.order():
            for d in self.downstream[n]:
                if n in keep and d in keep:
                    lines.append(f'    "{n}" -> "{d}";')
        lines.append("}")
        return "\n".join(lines)


def build(pipeline: Pipeline) -> Dag:
    """Return the graph of a pipeline; raise InvalidInput naming a cycle if there is one."""
    dag = Dag(pipeline, {n: [] for n in pipeline.stages}, {n: [] for n in pipeline.stages})
    outs: list[tuple[str, Stage]] = sorted(
        ((o.path, s) for s in pipeline for o in s.all_outs()), key=lambda t: t[0]
    )
    # Where each out is, by its path and by every folder above it, so each dep finds the outs
    # that overlap it (the same path, a folder holding it, a path inside it) by lookups.
    exact: dict[str, list[int]] = {}
    within: dict[str, list[int]] = {}
    for i, (path, _) in enumerate(outs):
        exact.setdefault(path, []).append(i)
        for k, ch in enumerate(path):
            if ch == "/":
                within.setdefault(path[:k], []).append(i)
    for stage in pipeline:
        for dep in stage.deps:
            found = exact.get(dep.path, []) + within.get(dep.path, [])
            for k, ch in enumerate(dep.path):
                if ch == "/":
                    found += exact.get(dep.path[:k], [])
            for i in sorted(found):  # in path order, as a scan of the sorted outs finds them
                producer = outs[i][1]
                if producer is not stage and producer.name not in dag.upstream[stage.name]:
                    dag.upstream[stage.name].append(producer.name)
                    dag.downstream[producer.name].append(stage.name)
    cycle = find_cycle(dag)
    if cycle:
        first = pipeline.stages[cycle[0]]
        raise InvalidInput(
            f"{pipeline.where(first.line)}: the stages form a cycle: {' -> '.join(cycle)}",
            hint="A stage cannot depend, directly or not, on its own outs; break the loop.",
        )
    return dag


def find_cycle(dag: Dag) -> list[str] | None:
    """Return one cycle as ``[a, b, …, a]`` (following data flow), or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(dag.names, white)
    stack: list[str] = []
    for start in dag.names:
        if color[start] != white:
            continue
        # Iterative DFS: a long chain of stages must not hit Python's recursion limit.
        iters = [(start, iter(dag.downstream[start]))]
        color[start] = grey
        stack.append(start)
        while iters:
            node, it = iters[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = black
                stack.pop()
                iters.pop()
            elif color[nxt] == grey:
                return [*stack[stack.index(nxt) :], nxt]
            elif color[nxt] == white:
                color[nxt] = grey
                stack.append(nxt)
                iters.append((nxt, iter(dag.downstream[nxt])))
    return None


__all__ = ["Dag", "build", "find_cycle"]
