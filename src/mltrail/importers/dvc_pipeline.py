"""``dvc.yaml`` → ``mltrail.yaml`` and ``dvc.lock`` → ``mltrail.lock``.

A plain stage is written out resolved (no ``${…}`` left). A ``foreach``/``matrix`` group is kept as
a group, with DVC's ``vars`` as mltrail's, when mltrail's own expansion of it gives exactly the
stages DVC's gives (names, commands, paths); otherwise it is named as unsupported. ``plots`` become
outs; DVC's metrics are cached unless they say ``cache: false``, so they are written with the
cache flag they have.

A stage's lock entry is the DVC lock entry with every MD5 replaced by the BLAKE3 hash of the same
bytes: from the converted DVC object when the path is a DVC out, else from the workspace when its
content still has the MD5 DVC recorded. A stage with a dep or out that is in neither (changed since
DVC ran it, and not cached) gets no entry, so ``repro`` runs it, as ``dvc repro`` would.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mltrail.data.pointer import Pointer
from mltrail.errors import InvalidInput, MltrailError
from mltrail.importers.dvc_files import DvcOut, LockStage, dos2unix_md5
from mltrail.importers.dvc_yaml import DvcPipeline, DvcStage, StageOut
from mltrail.pipeline.lock import file_entry, stage_entry

HEADER = "# Converted from dvc.yaml by `mltrail import dvc` (see docs/import.md).\n"


def _rel(path: str, wdir: str) -> str:
    return posixpath.relpath(path, wdir) if wdir != "." else path


def _out_item(o: StageOut, wdir: str) -> Any:
    path = _rel(o.path, wdir)
    # mltrail's metrics default to cache: false, DVC's to true: say it whenever they differ.
    default = o.kind != "metrics"
    opts: dict[str, bool] = {}
    if o.cache != default:
        opts["cache"] = o.cache
    if o.persist:
        opts["persist"] = True
    return {path: opts} if opts else path


def stage_doc(stage: DvcStage) -> dict[str, Any]:
    """Return the mltrail.yaml body of a resolved stage (paths relative to its wdir)."""
    w = stage.wdir
    doc: dict[str, Any] = {"cmd": stage.cmd[0] if len(stage.cmd) == 1 else list(stage.cmd)}
    if w != ".":
        doc["wdir"] = w
    if stage.deps:
        doc["deps"] = [_rel(d, w) for d in stage.deps]
    if stage.params:
        default = posixpath.normpath(posixpath.join(w, "params.yaml"))
        items: list[Any] = []
        by_file: dict[str, list[str]] = {}
        for p in stage.params:
            if (
                p.file == default
                and p.key is not None
                and not p.key.endswith((".yaml", ".yml", ".json", ".toml"))
            ):
                items.append(p.key)
            else:
                by_file.setdefault(_rel(p.file, w), [])
                if p.key is not None:
                    by_file[_rel(p.file, w)].append(p.key)
        items += [{f: keys} for f, keys in by_file.items()]
        doc["params"] = items
    outs = [_out_item(o, w) for o in stage.outs if o.kind != "metrics"]
    metrics = [_out_item(o, w) for o in stage.outs if o.kind == "metrics"]
    if outs:
        doc["outs"] = outs
    if metrics:
        doc["metrics"] = metrics
    if stage.frozen:
        doc["frozen"] = True
    if stage.always_changed:
        doc["always_changed"] = True
    if stage.desc:
        doc["desc"] = stage.desc
    return doc


def _group_body(body: dict[str, Any]) -> dict[str, Any]:
    """Return a templated DVC stage body in mltrail's form (plots as outs, metrics' cache said)."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("plots", "metrics", "outs"):
            continue
        out[key] = value
    outs, metrics = [], []
    for kind in ("outs", "plots", "metrics"):
        for item in body.get(kind) or []:
            if isinstance(item, dict) and len(item) == 1:
                ((path, opts),) = item.items()
                opts = opts or {}
                so = StageOut(str(path), kind, opts.get("cache", True) is not False,
                              opts.get("persist") is True)  # fmt: skip
            else:
                so = StageOut(str(item), kind)
            (metrics if kind == "metrics" else outs).append(_out_item(so, "."))
    if outs:
        out["outs"] = outs
    if metrics:
        out["metrics"] = metrics
    return out


def _signature(s: Any) -> tuple:
    """What must agree between DVC's expansion (DvcStage) and mltrail's (spec.Stage)."""
    if isinstance(s, DvcStage):
        outs = sorted((o.path, o.cache, o.persist) for o in s.outs if o.kind != "metrics")
        metrics = sorted((o.path, o.cache) for o in s.outs if o.kind == "metrics")
        params = sorted((p.file, p.key or "") for p in s.params)
        return (" && ".join(s.cmd), s.wdir, sorted(s.deps), params, outs, metrics)
    return (
        s.command,
        s.wdir,
        sorted(d.path for d in s.deps),
        sorted((p.file, p.key or "") for p in s.params),
        sorted((o.path, o.cache, o.persist) for o in s.outs),
        sorted((m.path, m.cache) for m in s.metrics),
    )


def write_pipeline(
    root: Path,
    raw: dict[str, Any],
    dvc: DvcPipeline,
    vars_values: dict[str, Any],
    resolve: Callable[[Any], Any],
) -> tuple[str, list[tuple[str, str]], set[str]]:
    """Return mltrail.yaml's text for a parsed dvc.yaml, the groups left out and the stages kept.

    ``resolve`` resolves ``${…}`` against DVC's top-level context (a ``foreach: ${list}``).
    """
    import yaml

    from mltrail.pipeline.spec import parse

    by_group: dict[str, list[DvcStage]] = {}
    for st in dvc.stages:
        by_group.setdefault(st.name.split("@", 1)[0], []).append(st)
    unsupported: list[tuple[str, str]] = []
    stages: dict[str, Any] = {}
    templated: list[str] = []
    groups = raw.get("stages") if isinstance(raw, dict) else None
    # Another shape was named as unsupported by parse_pipeline.
    for group, body in (groups if isinstance(groups, dict) else {}).items():
        members = by_group.get(str(group))
        if not members:
            continue  # DVC could not expand it: already named as unsupported
        if isinstance(body, dict) and ("foreach" in body or "matrix" in body):
            if "foreach" in body:
                items = resolve(body["foreach"])
                if isinstance(items, list) and any(isinstance(i, bool) for i in items):
                    # mltrail would name these stages by str(True); DVC says true. As a mapping
                    # keyed by DVC's names, ${item} still is the value.
                    items = {("true" if i else "false") if isinstance(i, bool) else str(i): i
                             for i in items}  # fmt: skip
                stages[group] = {"foreach": items, "do": _group_body(body.get("do") or {})}
            else:
                stages[group] = {**_group_body(body), "matrix": resolve(body["matrix"])}
            templated.append(str(group))
        else:
            stages[group] = stage_doc(members[0])
    doc: dict[str, Any] = {}
    if templated and vars_values:
        doc["vars"] = vars_values
    if dvc.params_files:
        doc["params"] = dvc.params_files
    if dvc.metrics_files:
        doc["metrics"] = dvc.metrics_files
    doc["stages"] = stages

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # the same list twice is written twice, not as &id001/*id001

    def dump(d: dict[str, Any]) -> str:
        return HEADER + yaml.dump(
            d, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1000
        )

    # A kept group must expand in mltrail exactly as in DVC; one that does not is left out.
    for _ in range(len(templated) + 1):
        text = dump(doc)
        try:
            parsed = parse(text, root, root / "mltrail.yaml")
        except InvalidInput as e:
            bad = next((g for g in templated if f"'{g}" in e.message or f"{g}@" in e.message), None)
            if bad is None and templated:
                bad = templated[-1]
            if bad is None:
                raise
            unsupported.append((f"dvc.yaml stage {bad}", f"mltrail cannot expand it: {e.message}"))
            templated.remove(bad)
            del doc["stages"][bad]
            continue
        mismatch = None
        for group in templated:
            want = {s.name: _signature(s) for s in by_group[group]}
            got = {n: _signature(s) for n, s in parsed.stages.items() if n.split("@")[0] == group}
            if want != got:
                mismatch = group
                break
        if mismatch is None:
            return text, unsupported, set(parsed.stages)
        unsupported.append(
            (
                f"dvc.yaml stage {mismatch}",
                "mltrail expands this foreach/matrix differently "
                "(names, paths or commands); write its stages out by hand",
            )
        )
        templated.remove(mismatch)
        del doc["stages"][mismatch]
    text = dump(doc)
    return text, unsupported, set(parse(text, root, root / "mltrail.yaml").stages)


# -- the lock --------------------------------------------------------------------------------------


def workspace_md5(path: Path, legacy: bool) -> str | None:
    """Return the MD5 DVC would record for a workspace file or folder now (None if absent)."""
    if path.is_file():
        data = path.read_bytes()
        raw = hashlib.md5(data).hexdigest()
        return (dos2unix_md5(data) or raw) if legacy else raw
    if not path.is_dir():
        return None
    rows = []
    for dirpath, _, files in os.walk(path):
        for f in files:
            full = os.path.join(dirpath, f)
            rel = Path(os.path.relpath(full, path)).as_posix()
            data = Path(full).read_bytes()
            raw = hashlib.md5(data).hexdigest()
            rows.append({"md5": (dos2unix_md5(data) or raw) if legacy else raw, "relpath": rel})
    rows.sort(key=lambda r: r["relpath"])
    return hashlib.md5(json.dumps(rows, sort_keys=True).encode()).hexdigest() + ".dir"


class LockConverter:
    """Turns dvc.lock entries into mltrail.lock entries (see the module docstring)."""

    def __init__(self, root: Path, scan: Any, known: dict[str, tuple[str, Pointer]]) -> None:
        self.root = root
        #: ``scan(root-relative path)`` → mltrail's Scan of the workspace path, or None.
        self.scan = scan
        #: Root-relative path → (DVC md5, pointer) of every converted DVC out.
        self.known = known

    def item(self, path: str, out: DvcOut) -> dict[str, Any]:
        """Return the lock item of one dep or out; raise InvalidInput when it cannot be mapped."""
        found = self.known.get(path)
        if found is not None and found[0] == out.md5:
            p = found[1]
            return file_entry(path, p.hash, p.size, p.nfiles if p.kind == "dir" else None)
        full = self.root / path
        if out.md5 is not None and workspace_md5(full, out.legacy) == out.md5:
            s = self.scan(path)
            if s is not None:
                return file_entry(path, s.hash, s.size, s.nfiles if s.kind == "dir" else None)
        if not os.path.exists(full):
            raise InvalidInput(f"{path} is not in the workspace or DVC's cache")
        raise InvalidInput(f"{path} changed since DVC ran the stage")

    def entry(self, stage: DvcStage, locked: LockStage) -> dict[str, Any]:
        """Return the mltrail.lock entry of a stage DVC ran; InvalidInput names what differs."""
        from mltrail.pipeline import runcache

        w = stage.wdir
        deps = [self.item(posixpath.normpath(posixpath.join(w, d.path)), d) for d in locked.deps]
        kinds = {o.path: o for o in stage.outs}
        outs, metrics = [], []
        for o in locked.outs:
            path = posixpath.normpath(posixpath.join(w, o.path))
            so = kinds.get(path)
            (metrics if so is not None and so.kind == "metrics" else outs).append(
                self.item(path, o)
            )
        params = {
            posixpath.normpath(posixpath.join(w, f)): dict(v) for f, v in locked.params.items()
        }
        cmd = " && ".join(locked.cmd) if isinstance(locked.cmd, list) else str(locked.cmd)
        restorable = (
            stage.outs
            and all(o.cache and not o.persist for o in stage.outs if o.kind != "metrics")
            and not any(o.persist for o in stage.outs)
            and not stage.always_changed
        )
        key = None
        if restorable:
            paths = [o.path for o in stage.outs]
            key = runcache.run_key(cmd, w, deps, params, paths)
        return stage_entry(cmd, w, deps, params, outs, metrics, key)


def convert_lock(
    stages: list[DvcStage], lock: dict[str, LockStage], converter: LockConverter
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """Return the mltrail.lock entries of the stages DVC ran, and the stages left to run."""
    entries: dict[str, dict[str, Any]] = {}
    stale: list[tuple[str, str]] = []
    for stage in stages:
        locked = lock.get(stage.name)
        if locked is None:
            continue  # DVC never ran it; mltrail will
        try:
            entries[stage.name] = converter.entry(stage, locked)
        except MltrailError as e:
            stale.append((stage.name, e.message))
    return entries, stale


__all__ = ["HEADER", "LockConverter", "convert_lock", "stage_doc", "workspace_md5",
           "write_pipeline"]  # fmt: skip
