"""``dvc.yaml`` read as DVC reads it: ``vars``, ``${…}``, ``foreach``/``do``, ``matrix`` expanded.

The result is the list of concrete stages ``dvc.lock`` names (``train``, ``per@a``,
``grid@cnn-0.1``), each with its wdir and paths relative to the repository root. Facts of DVC's
templating kept here: ``params.yaml`` (when present) and the ``vars`` entries (mappings, or files
``f.yaml`` / ``f.yaml:key,…``) are the context, a stage's own ``vars`` on top; a string that is
exactly ``${x}`` takes x's value (a list, a number…), otherwise values are written into it
(booleans as ``true``/``false``); ``\\${`` is a literal. A foreach over a list of plain values
names stages by the value, over composite values by index, over a mapping by key; a matrix
joins one fragment per axis with ``-`` (the value, or ``name<index>`` for composite values).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from mltrail.errors import InvalidInput

_VAR = re.compile(r"(?<!\\)\$\{(?P<inner>.*?)\}")
_PART = re.compile(r"\.?([^.\[\]]+)|\[([^\]]+)\]")
DEFAULT_PARAMS = "params.yaml"
#: Stage keys mltrail has a place for; anything else is named as unsupported.
KNOWN_STAGE_KEYS = {
    "cmd",
    "wdir",
    "deps",
    "params",
    "outs",
    "metrics",
    "plots",
    "frozen",
    "always_changed",
    "desc",
    "meta",
    "vars",
}
#: Out options that change nothing for mltrail (where DVC pushes it, how it is plotted).
IGNORED_OUT_KEYS = {"desc", "push", "remote", "type", "labels", "meta", "x", "y", "template",
                    "title", "x_label", "y_label", "header"}  # fmt: skip


@dataclass(frozen=True)
class StageOut:
    """An out, metric or plot of a stage; ``path`` relative to the repository root."""

    path: str
    kind: str  # "outs", "metrics" or "plots"
    cache: bool = True
    persist: bool = False


@dataclass(frozen=True)
class StageParam:
    """A param a stage reads: ``key`` in ``file`` (root-relative), or the whole file (None)."""

    file: str
    key: str | None


@dataclass
class DvcStage:
    """One concrete stage; ``wdir`` and every path relative to the repository root."""

    name: str
    cmd: list[str]
    wdir: str = "."
    deps: list[str] = field(default_factory=list)
    params: list[StageParam] = field(default_factory=list)
    outs: list[StageOut] = field(default_factory=list)
    frozen: bool = False
    always_changed: bool = False
    desc: str = ""


@dataclass
class DvcPipeline:
    """The stages of one ``dvc.yaml``, what of it mltrail cannot express, and its other parts."""

    stages: list[DvcStage] = field(default_factory=list)
    #: ``(where, why)`` for each part that was left out.
    unsupported: list[tuple[str, str]] = field(default_factory=list)
    #: Top-level ``params:`` and ``metrics:`` files, root-relative.
    params_files: list[str] = field(default_factory=list)
    metrics_files: list[str] = field(default_factory=list)
    #: Top-level ``artifacts:`` (GTO's model paths), name → root-relative path.
    artifacts: dict[str, str] = field(default_factory=dict)


class _Context:
    """The values ``${…}`` can name."""

    def __init__(self, read_file: Callable[[str], dict[str, Any] | None]) -> None:
        self.read_file = read_file
        self.values: dict[str, Any] = {}

    def load_vars(self, entries: Any, wdir: str, where: str) -> None:
        if entries is None:
            return
        if not isinstance(entries, list):
            entries = [entries]
        for entry in entries:
            if isinstance(entry, dict):
                self.values.update(entry)
                continue
            if not isinstance(entry, str):
                raise InvalidInput(f"{where}: vars entry {entry!r} is neither a mapping nor a file")
            file, _, keys = entry.partition(":")
            doc = self.read_file(posixpath.normpath(posixpath.join(wdir, file)))
            if doc is None:
                raise InvalidInput(f"{where}: vars file {file} does not exist")
            if keys:
                for k in keys.split(","):
                    if k.strip() in doc:
                        self.values[k.strip()] = doc[k.strip()]
            else:
                self.values.update(doc)

    def select(self, expr: str, where: str) -> Any:
        value: Any = self.values
        pos = 0
        expr = expr.strip()
        for m in _PART.finditer(expr):
            if m.start() != pos:
                break
            pos = m.end()
            key = m.group(1) if m.group(1) is not None else m.group(2)
            if isinstance(value, list):
                try:
                    value = value[int(key)]
                    continue
                except (ValueError, IndexError):
                    raise InvalidInput(f"{where}: ${{{expr}}} names nothing") from None
            if not isinstance(value, dict) or key not in value:
                raise InvalidInput(f"{where}: ${{{expr}}} names nothing")
            value = value[key]
        if pos != len(expr) or not expr:
            raise InvalidInput(f"{where}: ${{{expr}}} is not an expression mltrail can read")
        return value

    def resolve(self, value: Any, where: str, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {self.resolve(k, where): self.resolve(v, where, key) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, where, key) for v in value]
        if not isinstance(value, str):
            return value
        matches = list(_VAR.finditer(value))
        if not matches:
            return value.replace("\\${", "${")
        if len(matches) == 1 and matches[0].group(0) == value:
            return self.select(matches[0].group("inner"), where)
        out, index = "", 0
        for m in matches:
            v = self.select(m.group("inner"), where)
            if isinstance(v, (dict, list)):
                raise InvalidInput(
                    f"{where}: ${{{m.group('inner')}}} is a {type(v).__name__}, written into a "
                    "string (DVC's dict-to-arguments in cmd is not supported)"
                )
            out += value[index : m.start()] + _to_str(v)
            index = m.end()
        return (out + value[index:]).replace("\\${", "${")


def _to_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def vars_of(
    doc: Any, folder: str, read_file: Callable[[str], dict[str, Any] | None]
) -> dict[str, Any]:
    """Return the values of a dvc.yaml's top-level ``vars`` (without params.yaml's)."""
    ctx = _Context(read_file)
    try:
        ctx.load_vars(doc.get("vars") if isinstance(doc, dict) else None, folder, "vars")
    except InvalidInput:
        return {}
    return ctx.values


def resolve_top(
    doc: Any, folder: str, read_file: Callable[[str], dict[str, Any] | None], value: Any
) -> Any:
    """Return ``value`` with ``${…}`` resolved against params.yaml and the top-level vars."""
    ctx = _Context(read_file)
    found = read_file(posixpath.normpath(posixpath.join(folder, DEFAULT_PARAMS)))
    if found is not None:
        ctx.values.update(found)
    ctx.load_vars(doc.get("vars") if isinstance(doc, dict) else None, folder, "vars")
    return ctx.resolve(value, "dvc.yaml", "foreach")


def _shape(v: Any) -> str:
    """Say what a YAML value is, for a message."""
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return next((n for t, n in names.items() if isinstance(v, t)), f"a {type(v).__name__}")


def _composite(v: Any) -> bool:
    return isinstance(v, (dict, list))


def parse_pipeline(
    doc: Any, folder: str, read_file: Callable[[str], dict[str, Any] | None]
) -> DvcPipeline:
    """Expand a parsed ``dvc.yaml`` found in ``folder`` (root-relative, ``.`` for the root).

    ``read_file(root-relative path)`` returns a params/vars file's mapping, or None if absent.
    A stage that cannot be converted is left out and named in ``unsupported``.
    """
    where = posixpath.join(folder, "dvc.yaml") if folder != "." else "dvc.yaml"
    result = DvcPipeline()
    if not isinstance(doc, dict):
        result.unsupported.append(
            (where, f"{_shape(doc)}, not a mapping (DVC's has `stages:`, `vars:`… at its top)")
        )
        return result
    sections = {
        "params": list, "metrics": list, "artifacts": dict, "stages": dict,
    }  # fmt: skip
    for key, kind in sections.items():
        if doc.get(key) is not None and not isinstance(doc[key], kind):
            want = "a list of files" if kind is list else "a mapping of names"
            result.unsupported.append(
                (f"{where} {key}", f"`{key}:` is {_shape(doc[key])}, not {want}; left out")
            )
            doc = {k: v for k, v in doc.items() if k != key}
    ctx = _Context(read_file)
    default = posixpath.normpath(posixpath.join(folder, DEFAULT_PARAMS))
    found = read_file(default)
    if found is not None:
        ctx.values.update(found)
    try:
        ctx.load_vars(doc.get("vars"), folder, f"{where} vars")
    except InvalidInput as e:
        result.unsupported.append((f"{where} vars", e.message))
    for key in sorted(set(doc) - {"stages", "vars", "params", "metrics", "plots", "artifacts"}):
        result.unsupported.append((f"{where} {key}", f"mltrail has no top-level `{key}:`"))
    for item in doc.get("params") or []:
        if isinstance(item, str):
            result.params_files.append(posixpath.normpath(posixpath.join(folder, item)))
    for item in doc.get("metrics") or []:
        if isinstance(item, str):
            result.metrics_files.append(posixpath.normpath(posixpath.join(folder, item)))
    if doc.get("plots"):
        result.unsupported.append(
            (f"{where} plots", "mltrail has no plot definitions; the files stay as stage outs")
        )
    for name, body in (doc.get("artifacts") or {}).items():
        if isinstance(body, dict) and isinstance(body.get("path"), str):
            result.artifacts[str(name)] = posixpath.normpath(posixpath.join(folder, body["path"]))
    for name, body in (doc.get("stages") or {}).items():
        label = f"{where} stage {name}"
        try:
            for sname, sbody, item in _expand(str(name), body, ctx, label):
                saved = dict(ctx.values)
                ctx.values.update(item)
                try:
                    result.stages.append(
                        _stage(sname, sbody, ctx, folder, f"{where} stage {sname}")
                    )
                finally:
                    ctx.values = saved
        except InvalidInput as e:
            result.unsupported.append((label, e.message))
    return result


def _expand(name: str, body: Any, ctx: _Context, where: str) -> list[tuple[str, Any, dict]]:
    if not isinstance(body, dict):
        raise InvalidInput(f"{where}: not a mapping")
    if "foreach" in body:
        data = ctx.resolve(body["foreach"], where, "foreach")
        if isinstance(data, dict):
            items = {_to_str(k): (v, k) for k, v in data.items()}
            with_key = True
        elif isinstance(data, list):
            if any(map(_composite, data)):
                items = {str(i): (v, i) for i, v in enumerate(data)}
            else:
                items = {_to_str(v): (v, None) for v in data}
            with_key = any(map(_composite, data))
        else:
            raise InvalidInput(f"{where}: foreach is neither a list nor a mapping")
        do = body.get("do")
        out = []
        for key, (value, k) in items.items():
            item = {"item": value}
            if with_key:
                item["key"] = k
            out.append((f"{name}@{key}", do, item))
        return out
    if "matrix" in body:
        matrix = ctx.resolve(body["matrix"], where, "foreach")
        if not isinstance(matrix, dict) or not all(isinstance(v, list) for v in matrix.values()):
            raise InvalidInput(f"{where}: matrix is not a mapping of lists")
        rest = {k: v for k, v in body.items() if k != "matrix"}
        out = []
        axes = {k: list(enumerate(v)) for k, v in matrix.items()}
        for combo in product(*axes.values()):
            values = {k: v for k, (_, v) in zip(axes, combo, strict=True)}
            frags = [
                f"{k}{i}" if _composite(v) else _to_str(v)
                for k, (i, v) in zip(axes, combo, strict=True)
            ]
            key = "-".join(frags)
            out.append((f"{name}@{key}", rest, {"item": values, "key": key}))
        return out
    return [(name, body, {})]


def _stage(name: str, body: Any, ctx: _Context, folder: str, where: str) -> DvcStage:
    if not isinstance(body, dict):
        raise InvalidInput(f"{where}: not a mapping")
    unknown = sorted(set(body) - KNOWN_STAGE_KEYS)
    if unknown:
        raise InvalidInput(f"{where}: mltrail has no stage key {unknown[0]!r}")
    if "vars" in body:
        ctx.load_vars(body["vars"], folder, f"{where} vars")
    wdir = folder
    if body.get("wdir"):
        wdir = posixpath.normpath(posixpath.join(folder, _to_str(ctx.resolve(body["wdir"], where))))
    cmd = ctx.resolve(body.get("cmd"), where, "cmd")
    cmds = cmd if isinstance(cmd, list) else [cmd]
    if not cmds or not all(isinstance(c, str) and c.strip() for c in cmds):
        raise InvalidInput(f"{where}: no command (cmd)")
    stage = DvcStage(name, [str(c) for c in cmds], wdir)

    def rel(p: Any) -> str:
        if not isinstance(p, str) or not p.strip():
            raise InvalidInput(f"{where}: {p!r} is not a path")
        if "://" in p:
            raise InvalidInput(f"{where}: {p} is outside the repository (external deps/outs)")
        full = posixpath.normpath(posixpath.join(wdir, p))
        if full == ".." or full.startswith("../") or posixpath.isabs(full):
            raise InvalidInput(f"{where}: {p} is outside the repository")
        return full

    stage.deps = [rel(d) for d in ctx.resolve(body.get("deps") or [], where)]
    default = posixpath.normpath(posixpath.join(wdir, DEFAULT_PARAMS))
    for p in ctx.resolve(body.get("params") or [], where):
        if isinstance(p, str):
            stage.params.append(StageParam(default, p))
        elif isinstance(p, dict):
            for file, keys in p.items():
                if not isinstance(file, str) or file.endswith(".py"):
                    raise InvalidInput(f"{where}: params file {file} (Python params files)")
                if not keys:
                    stage.params.append(StageParam(rel(file), None))
                else:
                    stage.params.extend(StageParam(rel(file), str(k)) for k in keys)
    for kind in ("outs", "metrics", "plots"):
        for o in ctx.resolve(body.get(kind) or [], where):
            if isinstance(o, str):
                stage.outs.append(StageOut(rel(o), kind))
                continue
            if not isinstance(o, dict) or len(o) != 1:
                raise InvalidInput(f"{where}: a {kind} entry {o!r} is not a path")
            (path, opts), = o.items()  # fmt: skip
            opts = opts or {}
            if not isinstance(opts, dict):
                raise InvalidInput(f"{where}: the options of {path} are not a mapping")
            bad = sorted(set(opts) - IGNORED_OUT_KEYS - {"cache", "persist"})
            if bad:
                raise InvalidInput(f"{where}: {kind} option {bad[0]!r} of {path}")
            stage.outs.append(
                StageOut(
                    rel(path),
                    kind,
                    opts.get("cache", True) is not False,
                    opts.get("persist") is True,
                )
            )
    stage.frozen = body.get("frozen") is True
    stage.always_changed = body.get("always_changed") is True
    if isinstance(body.get("desc"), str):
        stage.desc = body["desc"]
    return stage


__all__ = [
    "DvcPipeline",
    "DvcStage",
    "StageOut",
    "StageParam",
    "parse_pipeline",
    "resolve_top",
    "vars_of",
]
