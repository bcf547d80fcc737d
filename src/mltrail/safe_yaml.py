"""Reading YAML that someone else wrote: pointer files, pipelines, lock files, MLmodel, imports.

YAML anchors and aliases let a few hundred bytes stand for a billion values (the "billion
laughs" document): PyYAML builds them as shared objects, and the first thing that walks them
(a repr in an error message, a hash, a copy) runs out of memory. Every YAML reader in mltrail
goes through :func:`load` or :func:`compose`, which build the node graph, measure what aliases
add to it, and refuse more than :data:`MAX_ALIAS_NODES` extra nodes, and any alias that refers
to its own ancestor (a recursive document), with :class:`~mltrail.errors.InvalidInput` naming
the file. ``aliases=False`` refuses aliases outright (pointer files never need them).

Syntax errors are left to the callers, as ``yaml.YAMLError``: each already says which file and
line in its own words.
"""

from __future__ import annotations

from typing import Any

from mltrail.errors import InvalidInput

__all__ = ["MAX_ALIAS_NODES", "compose", "load"]

#: How many nodes aliases may add to a document once expanded. Sharing a block of settings
#: between a few stages stays far below; a "billion laughs" document is refused at once.
MAX_ALIAS_NODES = 10_000

_HINT = (
    "Write the values out instead of repeating them with YAML anchors (&name) and aliases (*name)."
)


def _loader_class() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose(text: str | bytes, what: str, *, aliases: bool = True) -> Any:
    """The node graph of one YAML document (None when empty), its aliases checked."""
    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is not None:
        check_aliases(node, what, aliases=aliases)
    return node


def load(text: str | bytes, what: str, *, aliases: bool = True) -> Any:
    """``yaml.safe_load`` of ``text`` with the alias checks of :func:`compose`."""
    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_aliases(node, what, aliases=aliases)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def check_aliases(node: Any, what: str, *, aliases: bool = True) -> None:
    """Raise InvalidInput if aliases in ``node`` expand too far, loop, or (``aliases=False``)
    appear at all.

    Sizes are counted once per distinct node (memoized), so the check is linear in the size of
    the text however far the aliases would expand.
    """
    size: dict[int, int] = {}  # expanded size of each distinct node, once known
    on_path: set[int] = set()
    # Iterative post-order walk: (node, children pushed?)
    stack: list[tuple[Any, bool]] = [(node, False)]
    while stack:
        current, expanded = stack.pop()
        key = id(current)
        children = _children(current)
        if expanded:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            continue
        if key in size:
            continue  # reached again through an alias; its size is known
        if key in on_path:
            raise _refuse(what, current, "an alias refers to a value that contains it")
        on_path.add(key)
        stack.append((current, True))
        for child in children:
            if id(child) in on_path:
                raise _refuse(what, child, "an alias refers to a value that contains it")
            if id(child) in size and not aliases:
                raise _refuse(what, child, "it uses a YAML alias; this file takes none")
            stack.append((child, False))
    distinct = len(size)
    total = size[id(node)]
    if not aliases and total != distinct:
        raise _refuse(what, node, "it uses a YAML alias; this file takes none")
    if total - distinct > MAX_ALIAS_NODES:
        raise _refuse(
            what,
            node,
            f"its aliases expand {distinct:,} values to {total:,}, more than the "
            f"{MAX_ALIAS_NODES:,} extra values mltrail allows",
        )


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, str):
        return []
    if value and isinstance(value[0], tuple):
        return [part for pair in value for part in pair]
    return list(value)


def _refuse(what: str, node: Any, why: str) -> InvalidInput:
    mark = getattr(node, "start_mark", None)
    where = f":{mark.line + 1}" if mark is not None else ""
    return InvalidInput(f"{what}{where}: refused YAML: {why}", hint=_HINT)
