"""``mltrail.yaml``: the parsed, validated and expanded model of a pipeline.

::

    pipeline: wine                       # experiment name of the stage runs (default: the folder)
    vars: {data: data/raw.csv}           # values for ${...} (params.yaml values are used too)
    params: [extra.yaml]                 # more params files for `params diff` (optional)
    metrics: [reports/summary.json]      # more metrics files for `metrics diff` (optional)
    stages:
      prepare:
        cmd: python src/prepare.py       # a string, or a list run one after the other
        deps: [src/prepare.py, ${data}]
        outs: [data/prepared]
      train:
        cmd: python src/train.py
        wdir: .                          # folder the command runs in; paths are relative to it
        deps: [src/train.py, data/prepared]
        params: [train.max_depth, {other.yaml: [lr]}, whole.yaml]
        outs: [models/rf.pkl, {logs: {cache: false}}, {state: {persist: true}}]
        metrics: [metrics.json]
        always_changed: false
        frozen: false

``foreach:`` (a list or a mapping, with the stage body under ``do:``) and ``matrix:`` (a mapping of
lists, body beside it) expand one definition into several stages named ``name@item``. Errors name
the file, the line and what was expected; YAML line numbers come from ``yaml.compose`` marks.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrail.errors import InvalidInput

PIPELINE_FILE = "mltrail.yaml"
DEFAULT_PARAMS = "params.yaml"
#: Files that are tracked as a whole when named alone in ``params:``.
PARAMS_SUFFIXES = (".yaml", ".yml", ".json", ".toml")

TOP_KEYS = {
    "stages": "the stage definitions (a mapping of name to stage)",
    "pipeline": "the pipeline's name (a string)",
    "vars": "values for ${...} (a mapping)",
    "params": "extra params files (a list)",
    "metrics": "extra metrics files (a list)",
}
STAGE_KEYS = {
    "cmd": "the command (a string or a list of strings)",
    "deps": "files and folders the stage reads (a list of paths)",
    "params": "params keys (a list of keys, {file: [keys]} or file names)",
    "outs": "files and folders the stage writes (a list of paths or {path: {cache: bool}})",
    "metrics": "JSON/YAML metrics files the stage writes (a list of paths)",
    "wdir": "the folder the command runs in (a path)",
    "always_changed": "run on every repro (true/false)",
    "frozen": "never run; keep the locked outs (true/false)",
    "desc": "a description (a string)",
    "meta": "anything (ignored)",
    "foreach": "values to expand the stage over (a list or a mapping)",
    "do": "the stage body repeated for each foreach value",
    "matrix": "lists whose cross product expands the stage (a mapping)",
}
OUT_KEYS = {
    "cache": "store the out in the object store (true/false)",
    "persist": "keep the previous out in place while the command runs (true/false)",
    "desc": "a description",
}
#: The most stages one ``matrix:`` may expand to; ``MLTRAIL_MATRIX_MAX`` changes it. Seven lists
#: of ten values are ten million stages, from 200 bytes of YAML.
MATRIX_MAX_DEFAULT = 1000
ENV_MATRIX_MAX = "MLTRAIL_MATRIX_MAX"

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_VAR = re.compile(r"\$\{\s*([A-Za-z0-9_.\-]+)\s*\}")


@dataclass(frozen=True)
class ParamRef:
    """A param a stage uses: ``key`` (dotted) in ``file``, or the whole file when key is None."""

    file: str
    key: str | None
    line: int = 0

    @property
    def label(self) -> str:
        """Return ``file:key`` (``key`` alone for params.yaml), or the file for a whole file."""
        if self.key is None:
            return self.file
        return self.key if self.file == DEFAULT_PARAMS else f"{self.file}:{self.key}"


@dataclass(frozen=True)
class Output:
    """An out or metrics file of a stage; ``path`` is relative to the project root (POSIX).

    ``cache``: outs default to True (stored in the object store, git-ignored); metrics files to
    False (small, meant to be committed to Git so `metrics diff` can read old revisions).
    ``persist``: the previous out is left in place while the command runs (it may update it),
    and the stage never restores from the run cache.
    """

    path: str
    cache: bool = True
    line: int = 0
    persist: bool = False


@dataclass(frozen=True)
class Dep:
    """A file or folder a stage reads; ``path`` is relative to the project root (POSIX)."""

    path: str
    line: int = 0


@dataclass(frozen=True)
class Stage:
    """One (expanded) stage of the pipeline."""

    name: str
    cmd: tuple[str, ...]
    wdir: str = "."
    deps: tuple[Dep, ...] = ()
    params: tuple[ParamRef, ...] = ()
    outs: tuple[Output, ...] = ()
    metrics: tuple[Output, ...] = ()
    always_changed: bool = False
    frozen: bool = False
    desc: str = ""
    #: Line of the stage's name in mltrail.yaml.
    line: int = 0

    @property
    def command(self) -> str:
        """Return the command as one shell line (list items joined with ``&&``)."""
        return " && ".join(self.cmd)

    def all_outs(self) -> tuple[Output, ...]:
        """Return outs and metrics files: everything the command writes."""
        return self.outs + self.metrics

    def params_files(self) -> list[str]:
        """Return the params files this stage reads, in order of first use."""
        return list(dict.fromkeys(p.file for p in self.params))


@dataclass
class Pipeline:
    """A parsed ``mltrail.yaml``: stages in file order (expanded), plus top-level settings."""

    file: Path
    root: Path
    name: str
    stages: dict[str, Stage] = field(default_factory=dict)
    extra_params: tuple[str, ...] = ()
    extra_metrics: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages.values())

    def params_files(self) -> list[str]:
        """Return every params file the pipeline reads (stage files, then the extra ones)."""
        files = [f for s in self for f in s.params_files()]
        return list(dict.fromkeys([*files, *self.extra_params]))

    def metrics_files(self) -> list[str]:
        """Return every metrics file (stage metrics, then the extra ones), root-relative."""
        files = [m.path for s in self for m in s.metrics]
        return list(dict.fromkeys([*files, *self.extra_metrics]))

    def where(self, line: int) -> str:
        """Return ``mltrail.yaml:LINE`` for messages."""
        return f"{self.file.name}:{line}" if line else self.file.name


def find_pipeline_file(root: Path) -> Path:
    """Return ``root/mltrail.yaml``, or raise InvalidInput saying there is none."""
    path = root / PIPELINE_FILE
    if not path.is_file():
        raise InvalidInput(
            f"no {PIPELINE_FILE} in {root}",
            hint=f"Write the stages in {PIPELINE_FILE}; see docs/pipelines.md.",
        )
    return path


def load(root: str | os.PathLike[str], file: str | os.PathLike[str] | None = None) -> Pipeline:
    """Parse and validate ``mltrail.yaml`` of project ``root``; raise InvalidInput with lines."""
    root = Path(root)
    path = Path(file) if file is not None else find_pipeline_file(root)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError:
        raise InvalidInput(
            f"{path.name} is not UTF-8 text ({path})",
            hint="Save it as UTF-8 (e.g. with `iconv -f latin1 -t utf-8`).",
        ) from None
    return parse(text, root, path)


def parse(text: str, root: Path, file: Path) -> Pipeline:
    """Parse the text of a pipeline file of project ``root``."""
    return _Parser(text, root, file).run()


class _Parser:
    def __init__(self, text: str, root: Path, file: Path) -> None:
        self.text = text
        self.root = root
        self.file = file
        self.vars: dict[str, Any] = {}
        self._params_yaml: dict[str, Any] | None = None

    # -- errors ----------------------------------------------------------------------------------

    def fail(self, node: Any, message: str, expected: str | None = None) -> InvalidInput:
        line = node.start_mark.line + 1 if node is not None else 0
        where = f"{self.file.name}:{line}" if line else self.file.name
        return InvalidInput(
            f"{where}: {message}",
            hint=f"Expected {expected}." if expected else "See docs/pipelines.md.",
        )

    # -- nodes -----------------------------------------------------------------------------------

    def compose(self) -> Any:
        import yaml

        from mltrail import safe_yaml

        try:
            return safe_yaml.compose(self.text, self.file.name)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            raise InvalidInput(
                f"{self.file.name}{line}: not valid YAML: {e.problem or e}",
                hint="Fix the YAML syntax (indentation, quotes, colons).",
            ) from None
        except yaml.YAMLError as e:
            raise InvalidInput(f"{self.file.name}: not valid YAML: {e}") from None

    def value(self, node: Any) -> Any:
        import yaml

        return yaml.SafeLoader("").construct_object(node, deep=True)

    def mapping(self, node: Any, what: str, expected: str) -> list[tuple[str, Any, Any]]:
        """Return ``[(key, key node, value node)]`` of a mapping node; refuse duplicates."""
        if node is None or node.tag != "tag:yaml.org,2002:map":
            raise self.fail(node, f"{what} must be a mapping", expected)
        out, seen = [], set()
        for k, v in node.value:
            if k.tag != "tag:yaml.org,2002:str":
                raise self.fail(k, f"{what}: key {self.value(k)!r} must be a string", expected)
            if k.value in seen:
                raise self.fail(k, f"{what}: {k.value!r} appears twice")
            seen.add(k.value)
            out.append((k.value, k, v))
        return out

    def check_keys(self, node: Any, pairs: list[tuple[str, Any, Any]], known: dict, what: str):
        for key, knode, _ in pairs:
            if key not in known:
                names = ", ".join(known)
                raise self.fail(knode, f"unknown key {key!r} in {what}", f"one of {names}")

    def string(self, node: Any, what: str, item: dict[str, Any] | None) -> str:
        if node.tag not in (
            "tag:yaml.org,2002:str",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
        ):
            raise self.fail(node, f"{what} must be a string, got {self._kind(node)}", "a string")
        return self.interpolate(node, str(node.value), item)

    def boolean(self, node: Any, what: str) -> bool:
        if node.tag != "tag:yaml.org,2002:bool":
            raise self.fail(node, f"{what} must be true or false, got {node.value!r}", "a boolean")
        return bool(self.value(node))

    def seq(self, node: Any, what: str, expected: str) -> list[Any]:
        if node.tag == "tag:yaml.org,2002:null":
            return []
        if node.tag != "tag:yaml.org,2002:seq":
            raise self.fail(node, f"{what} must be a list, got {self._kind(node)}", expected)
        return list(node.value)

    @staticmethod
    def _kind(node: Any) -> str:
        tag = node.tag.rsplit(":", 1)[-1]
        return {"map": "a mapping", "seq": "a list", "null": "nothing"}.get(tag, f"a {tag}")

    # -- ${...} ----------------------------------------------------------------------------------

    def interpolate(self, node: Any, text: str, item: dict[str, Any] | None) -> str:
        if "${" not in text:
            return text

        def sub(m: re.Match[str]) -> str:
            found, value = self.lookup(m.group(1), item)
            if not found:
                raise self.fail(
                    node,
                    f"${{{m.group(1)}}} names nothing",
                    "${item}/${key} inside foreach or matrix, a vars: name or a params.yaml key",
                )
            if isinstance(value, (dict, list)):
                raise self.fail(node, f"${{{m.group(1)}}} is a {type(value).__name__}, not a value")
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value)

        return _VAR.sub(sub, text)

    def lookup(self, name: str, item: dict[str, Any] | None) -> tuple[bool, Any]:
        first, *rest = name.split(".")
        scopes: list[dict[str, Any]] = [item or {}, self.vars]
        if first not in (item or {}) and first not in self.vars:
            scopes.append(self.params_yaml())
        for scope in scopes:
            if first in scope:
                value = scope[first]
                for part in rest:
                    if not isinstance(value, dict) or part not in value:
                        return False, None
                    value = value[part]
                return True, value
        return False, None

    def params_yaml(self) -> dict[str, Any]:
        if self._params_yaml is None:
            from mltrail.pipeline.params import read_params_file

            path = self.root / DEFAULT_PARAMS
            self._params_yaml = read_params_file(path) if path.exists() else {}
        return self._params_yaml

    # -- paths -----------------------------------------------------------------------------------

    def path(self, node: Any, wdir: str, what: str, item: dict[str, Any] | None) -> str:
        raw = self.string(node, what, item)
        if not raw.strip():
            raise self.fail(node, f"{what} is empty", "a path relative to the stage's wdir")
        if os.path.isabs(raw) or raw.startswith("~"):
            raise self.fail(node, f"{what} {raw!r} is absolute", "a path inside the project")
        full = posixpath.normpath(posixpath.join(wdir, raw.replace("\\", "/")))
        first = full.split("/", 1)[0]
        if full == "." or first == "..":
            raise self.fail(node, f"{what} {raw!r} is outside the project", "a path inside it")
        if first in (".mltrail", ".git"):
            raise self.fail(node, f"{what} {raw!r} is inside {first}/", "a workspace path")
        return full

    # -- the document ----------------------------------------------------------------------------

    def run(self) -> Pipeline:
        doc = self.compose()
        if doc is None:
            raise InvalidInput(
                f"{self.file.name}: the file is empty",
                hint="Write a `stages:` mapping; see docs/pipelines.md.",
            )
        pairs = self.mapping(doc, "the top level", "a mapping with a `stages:` key")
        self.check_keys(doc, pairs, TOP_KEYS, "the top level")
        by_key = {k: (kn, v) for k, kn, v in pairs}
        name = self.root.resolve().name or "pipeline"
        if "pipeline" in by_key:
            name = self.string(by_key["pipeline"][1], "pipeline", None).strip() or name
        if "vars" in by_key:
            for k, _, v in self.mapping(by_key["vars"][1], "vars", "a mapping of names to values"):
                self.vars[k] = self.value(v)
        extra_params = tuple(
            self.path(n, ".", "params file", None)
            for n in self.seq(by_key["params"][1], "params", "a list of files")
        ) if "params" in by_key else ()  # fmt: skip
        extra_metrics = tuple(
            self.path(n, ".", "metrics file", None)
            for n in self.seq(by_key["metrics"][1], "metrics", "a list of files")
        ) if "metrics" in by_key else ()  # fmt: skip
        if "stages" not in by_key:
            raise self.fail(doc, "no `stages:` mapping", "stages: {name: {cmd: ...}, ...}")
        pipeline = Pipeline(self.file, self.root, name, {}, extra_params, extra_metrics)
        stages_node = by_key["stages"][1]
        if stages_node.tag == "tag:yaml.org,2002:null":
            return pipeline
        for sname, knode, body in self.mapping(stages_node, "stages", "name: {cmd: ...}"):
            if not _NAME.match(sname):
                raise self.fail(
                    knode,
                    f"stage name {sname!r} is not allowed",
                    "letters, digits, '_', '-' and '.' (no '@', '/' or spaces)",
                )
            for stage in self.expand(sname, knode, body):
                if stage.name in pipeline.stages:
                    raise self.fail(knode, f"stage {stage.name!r} is defined twice")
                pipeline.stages[stage.name] = stage
        check_outs(pipeline)
        return pipeline

    def expand(self, name: str, knode: Any, body: Any) -> Iterator[Stage]:
        pairs = self.mapping(body, f"stage {name!r}", "a mapping with at least `cmd:`")
        self.check_keys(body, pairs, STAGE_KEYS, f"stage {name!r}")
        keys = {k: v for k, _, v in pairs}
        if "foreach" in keys:
            if "matrix" in keys:
                raise self.fail(body, f"stage {name!r} has both foreach and matrix")
            extra = [k for k in keys if k not in ("foreach", "do")]
            if extra or "do" not in keys:
                raise self.fail(
                    body,
                    f"stage {name!r}: foreach needs `do:` and nothing else beside it"
                    + (f" (found {', '.join(extra)})" if extra else ""),
                    "foreach: [...] and do: {cmd: ...}",
                )
            for suffix, item in self.foreach_items(keys["foreach"], name):
                yield self.stage(f"{name}@{suffix}", knode, keys["do"], item)
        elif "matrix" in keys:
            rest = [(k, kn, v) for k, kn, v in pairs if k != "matrix"]
            for suffix, item in self.matrix_items(keys["matrix"], name):
                yield self.stage_from(f"{name}@{suffix}", knode, body, rest, item)
        else:
            if "do" in keys:
                raise self.fail(body, f"stage {name!r} has `do:` without `foreach:`")
            yield self.stage_from(name, knode, body, pairs, None)

    def foreach_items(self, node: Any, name: str) -> list[tuple[str, dict[str, Any]]]:
        if node.tag == "tag:yaml.org,2002:seq":
            values = self.value(node)
            if not values:
                raise self.fail(node, f"stage {name!r}: foreach list is empty")
            scalars = all(not isinstance(v, (dict, list)) for v in values)
            return [
                (str(v) if scalars else str(i), {"item": v, "key": i}) for i, v in enumerate(values)
            ]
        if node.tag == "tag:yaml.org,2002:map":
            pairs = self.mapping(node, f"stage {name!r} foreach", "a mapping")
            return [(k, {"item": self.value(v), "key": k}) for k, _, v in pairs]
        raise self.fail(
            node, f"stage {name!r}: foreach must be a list or a mapping", "a list or a mapping"
        )

    def matrix_items(self, node: Any, name: str) -> list[tuple[str, dict[str, Any]]]:
        pairs = self.mapping(node, f"stage {name!r} matrix", "a mapping of names to lists")
        axes: list[tuple[str, list[Any]]] = []
        for k, _, v in pairs:
            values = self.value(v) if v.tag == "tag:yaml.org,2002:seq" else None
            if not values:
                raise self.fail(v, f"stage {name!r}: matrix {k!r} must be a non-empty list")
            axes.append((k, values))
        count = 1
        for _, vals in axes:
            count *= len(vals)
        cap = matrix_max()
        if count > cap:
            sizes = " x ".join(str(len(vals)) for _, vals in axes)
            error = self.fail(
                node,
                f"stage {name!r}: matrix expands to {count:,} stages ({sizes}), more than the "
                f"limit of {cap:,}",
            )
            error.hint = (
                f"Give the matrix fewer values, or raise the limit with {ENV_MATRIX_MAX} "
                f"(now {cap:,})."
            )
            raise error
        out = []
        for combo in itertools.product(*(vals for _, vals in axes)):
            item = {k: v for (k, _), v in zip(axes, combo, strict=True)}
            out.append(("-".join(str(v) for v in combo), {"item": item}))
        return out

    def stage(self, name: str, knode: Any, body: Any, item: dict[str, Any] | None) -> Stage:
        pairs = self.mapping(body, f"stage {name!r}", "a mapping with at least `cmd:`")
        self.check_keys(body, pairs, STAGE_KEYS, f"stage {name!r}")
        for bad in ("foreach", "do", "matrix"):
            for k, kn, _ in pairs:
                if k == bad:
                    raise self.fail(kn, f"stage {name!r}: {bad} cannot be nested")
        return self.stage_from(name, knode, body, pairs, item)

    def stage_from(
        self,
        name: str,
        knode: Any,
        body: Any,
        pairs: list[tuple[str, Any, Any]],
        item: dict[str, Any] | None,
    ) -> Stage:
        keys = {k: v for k, _, v in pairs}
        what = f"stage {name!r}"
        if "cmd" not in keys:
            raise self.fail(body, f"{what} has no cmd", "cmd: a command (or a list of commands)")
        cmd_node = keys["cmd"]
        if cmd_node.tag == "tag:yaml.org,2002:seq":
            cmd = tuple(self.string(n, f"{what} cmd item", item) for n in cmd_node.value)
        else:
            cmd = (self.string(cmd_node, f"{what} cmd", item),)
        if not cmd or not all(c.strip() for c in cmd):
            raise self.fail(cmd_node, f"{what} cmd is empty", "a command to run")
        wdir = "."
        if "wdir" in keys:
            raw = self.string(keys["wdir"], f"{what} wdir", item).strip()
            wdir = "." if raw in ("", ".") else self.path(keys["wdir"], ".", f"{what} wdir", item)
        deps = tuple(
            Dep(self.path(n, wdir, f"{what} dep", item), n.start_mark.line + 1)
            for n in self.seq(keys.get("deps") or _null(), f"{what} deps", "a list of paths")
        )
        params = self.params(keys.get("params"), wdir, what, item)
        outs = self.outputs(keys.get("outs"), wdir, f"{what} out", item)
        metrics = self.outputs(
            keys.get("metrics"), wdir, f"{what} metrics file", item, cache_default=False
        )
        flags = {
            flag: self.boolean(keys[flag], f"{what} {flag}") if flag in keys else False
            for flag in ("always_changed", "frozen")
        }
        desc = self.string(keys["desc"], f"{what} desc", item) if "desc" in keys else ""
        for dep in deps:
            for out in (*outs, *metrics):
                if dep.path == out.path:
                    raise InvalidInput(
                        f"{self.file.name}:{dep.line}: {what} lists {dep.path} both as a dep and "
                        "as an out",
                        hint="A stage cannot read what it writes; remove one of them.",
                    )
        return Stage(
            name,
            cmd,
            wdir,
            deps,
            params,
            outs,
            metrics,
            flags["always_changed"],
            flags["frozen"],
            desc,
            knode.start_mark.line + 1,
        )

    def params(
        self, node: Any, wdir: str, what: str, item: dict[str, Any] | None
    ) -> tuple[ParamRef, ...]:
        if node is None:
            return ()
        default = posixpath.normpath(posixpath.join(wdir, DEFAULT_PARAMS))
        out: list[ParamRef] = []
        expected = "a key of params.yaml (train.lr), {file.yaml: [keys]} or a file name"
        for n in self.seq(node, f"{what} params", expected):
            line = n.start_mark.line + 1
            if n.tag == "tag:yaml.org,2002:map":
                for fname, _, keys_node in self.mapping(n, f"{what} params", expected):
                    file = self.path(_Scalar(fname, n), wdir, f"{what} params file", item)
                    keys = self.seq(keys_node, f"{what} params of {fname}", "a list of keys")
                    if not keys:
                        out.append(ParamRef(file, None, line))
                    for k in keys:
                        key = self.string(k, f"{what} params key", item)
                        out.append(ParamRef(file, key, k.start_mark.line + 1))
                continue
            text = self.string(n, f"{what} params item", item)
            if text.endswith(PARAMS_SUFFIXES):
                out.append(ParamRef(self.path(n, wdir, f"{what} params file", item), None, line))
            else:
                out.append(ParamRef(default, text, line))
        seen: set[tuple[str, str | None]] = set()
        for p in out:
            if (p.file, p.key) in seen:
                raise InvalidInput(
                    f"{self.file.name}:{p.line}: {what} lists param {p.label} twice",
                    hint="Remove the duplicate.",
                )
            seen.add((p.file, p.key))
        return tuple(out)

    def outputs(
        self,
        node: Any,
        wdir: str,
        what: str,
        item: dict[str, Any] | None,
        cache_default: bool = True,
    ) -> tuple[Output, ...]:
        if node is None:
            return ()
        out: list[Output] = []
        for n in self.seq(node, what + "s", "a list of paths or {path: {cache: false}}"):
            line = n.start_mark.line + 1
            if n.tag == "tag:yaml.org,2002:map":
                pairs = self.mapping(n, what, "{path: {cache: false}}")
                if len(pairs) != 1:
                    raise self.fail(n, f"{what}: one path per item", "{path: {cache: false}}")
                raw, knode, opts = pairs[0]
                path = self.path(knode, wdir, what, item)
                cache, persist = cache_default, False
                if opts.tag != "tag:yaml.org,2002:null":
                    opairs = self.mapping(opts, f"{what} {raw}", "{cache: true/false}")
                    self.check_keys(opts, opairs, OUT_KEYS, f"{what} {raw}")
                    for k, _, v in opairs:
                        if k == "cache":
                            cache = self.boolean(v, f"{what} {raw} cache")
                        elif k == "persist":
                            persist = self.boolean(v, f"{what} {raw} persist")
                out.append(Output(path, cache, line, persist))
            else:
                out.append(Output(self.path(n, wdir, what, item), cache_default, line))
        return tuple(out)


class _Scalar:
    """A stand-in node for a mapping key used as a path (keeps the key's line for errors)."""

    tag = "tag:yaml.org,2002:str"

    def __init__(self, value: str, near: Any) -> None:
        self.value = value
        self.start_mark = near.start_mark


def matrix_max() -> int:
    """The most stages a ``matrix:`` may expand to (``MLTRAIL_MATRIX_MAX``, else 1000)."""
    raw = os.environ.get(ENV_MATRIX_MAX, "").strip()
    if not raw:
        return MATRIX_MAX_DEFAULT
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise InvalidInput(
            f"{ENV_MATRIX_MAX}={raw!r} is not a positive whole number",
            hint=f"Set it to the most stages one matrix may expand to (default "
            f"{MATRIX_MAX_DEFAULT}), or unset it.",
        )
    return int(raw)


def _null() -> Any:
    import yaml

    return yaml.ScalarNode("tag:yaml.org,2002:null", "")


def overlaps(a: str, b: str) -> bool:
    """Return True if root-relative paths ``a`` and ``b`` are the same or one holds the other."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def check_outs(pipeline: Pipeline) -> None:
    """Refuse two stages writing the same out, and any out inside another out."""
    owners: list[tuple[str, Stage, Output]] = []
    for stage in pipeline:
        for out in stage.all_outs():
            owners.append((out.path, stage, out))
    owners.sort(key=lambda t: t[0])
    # Sorted by path, an out and anything inside it are neighbours (after equal-prefix siblings),
    # so compare each with the few following entries that start with it.
    for i, (path, stage, out) in enumerate(owners):
        for other_path, other, other_out in owners[i + 1 :]:
            if not (other_path == path or other_path.startswith(path + "/")):
                if other_path > path + "/\U0010ffff":
                    break
                continue
            where = pipeline.where(other_out.line)
            if other_path == path:
                who = (
                    f"stages {stage.name!r} and {other.name!r} both write"
                    if other is not stage
                    else f"stage {stage.name!r} lists twice"
                )
                raise InvalidInput(
                    f"{where}: {who} {path}",
                    hint="Each out belongs to exactly one stage; rename one of them.",
                )
            raise InvalidInput(
                f"{where}: out {other_path} of stage {other.name!r} is inside out {path} of "
                f"stage {stage.name!r} ({pipeline.where(out.line)})",
                hint="Outs cannot overlap: list the folder once, or separate files/folders.",
            )


__all__ = [
    "DEFAULT_PARAMS",
    "ENV_MATRIX_MAX",
    "MATRIX_MAX_DEFAULT",
    "PIPELINE_FILE",
    "Dep",
    "Output",
    "ParamRef",
    "Pipeline",
    "Stage",
    "check_outs",
    "find_pipeline_file",
    "load",
    "matrix_max",
    "overlaps",
    "parse",
]
