"""GTO's model registry, kept in Git tags, as mltrail registry versions and aliases.

GTO (DVC's registry tool) writes ``NAME@vX.Y.Z`` tags to register a version of artifact NAME at a
commit, and ``NAME#STAGE#N`` tags to assign a stage (the highest N of a stage is current);
``…!`` tags deregister or unassign. The artifact's path is in the ``artifacts:`` section of
``dvc.yaml`` (or GTO's older ``artifacts.yaml``) at the tagged commit.

Each registered version whose files exist (the revision's pointer for the path, read through the
imported pointers, or a file Git holds) becomes an mltrail version, numbered in semantic-version
order and tagged ``gto.version``; each stage becomes an alias on the version of its current
assignment. A rerun adds only versions it has not made (found by ``gto.version``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrail.data.git import GitRepo
from mltrail.entities import FileInfo
from mltrail.errors import MltrailError
from mltrail.importers.dvc_files import YAML_NAME, load_yaml

if TYPE_CHECKING:
    from mltrail.importers.dvc import _Import

TAG_VERSION = "gto.version"
_NAME = r"(?P<name>[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)"
_REGISTER = re.compile(rf"^{_NAME}@(?P<ver>v\d+\.\d+\.\d+[0-9A-Za-z.+-]*)(?P<bang>!?)$")
_ASSIGN = re.compile(
    rf"^{_NAME}#(?P<stage>[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)(?P<bang>!?)(#(?P<n>\d+))?$"
)
_ALIAS_OK = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class _Tag:
    name: str
    commit: str
    time: int


def _tags(git: GitRepo) -> list[_Tag]:
    out = git._git(
        "for-each-ref",
        "--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)%00%(creatordate:unix)",
        "refs/tags",
        what="list the tags",
    )
    tags = []
    for line in out.splitlines():
        name, obj, peeled, when = line.split("\0")
        tags.append(_Tag(name, peeled or obj, int(when or 0)))
    return tags


def _semver_key(ver: str) -> tuple:
    core = re.match(r"v(\d+)\.(\d+)\.(\d+)", ver)
    assert core is not None
    return (*(int(x) for x in core.groups()), ver)


def artifact_paths(git: GitRepo, commit: str) -> dict[str, str]:
    """Return GTO's ``{artifact: path}`` at ``commit`` (dvc.yaml ``artifacts:``, artifacts.yaml)."""
    found: dict[str, str] = {}
    for file in ("artifacts.yaml", YAML_NAME):
        raw = git.file_at(commit, file)
        if raw is None:
            continue
        try:
            doc = load_yaml(raw, f"{file} at {commit[:7]}") or {}
        except MltrailError:
            continue
        if not isinstance(doc, dict):
            continue  # not the mapping GTO reads either
        section = doc.get("artifacts") if file == YAML_NAME else doc
        for name, body in (section or {}).items() if isinstance(section, dict) else ():
            if isinstance(body, dict) and isinstance(body.get("path"), str):
                found[str(name)] = posixpath.normpath(body["path"])
    return found


def import_registry(job: _Import) -> None:
    """Create the registry versions and aliases of GTO's tags."""
    git = job.git()
    if git is None:
        return
    registered: dict[str, dict[str, _Tag]] = {}
    assigned: dict[tuple[str, str], list[tuple[int, int, bool, str]]] = {}
    for t in _tags(git):
        m = _REGISTER.match(t.name)
        if m:
            if m.group("bang"):
                registered.setdefault(m.group("name"), {}).pop(m.group("ver"), None)
            else:
                registered.setdefault(m.group("name"), {})[m.group("ver")] = t
            continue
        m = _ASSIGN.match(t.name)
        if m:
            n = int(m.group("n") or 0)
            key = (m.group("name"), m.group("stage"))
            assigned.setdefault(key, []).append((n, t.time, bool(m.group("bang")), t.commit))
    if not registered:
        return
    if job.dry_run:
        job.report.model_versions = sum(len(v) for v in registered.values())
        return
    client = job.client()
    for name, versions in sorted(registered.items()):
        numbers = _versions(job, git, client, name, versions)
        for (model, stage), events in sorted(assigned.items()):
            if model != name:
                continue
            n, _, removed, commit = max(events)
            ver = next((v for v, t in versions.items() if t.commit == commit), None)
            if removed or ver is None or ver not in numbers:
                continue
            if not _ALIAS_OK.match(stage):
                job.skip(f"GTO stage {name}#{stage}", "not a name mltrail takes for an alias")
                continue
            try:
                if stage not in client.get_model_version(name, numbers[ver]).aliases:
                    client.set_registered_model_alias(
                        name, stage, numbers[ver], comment="GTO stage, imported from Git tags"
                    )
            except MltrailError as e:
                job.skip(f"GTO stage {name}#{stage}", e.message)


def _versions(
    job: _Import, git: GitRepo, client: Any, name: str, versions: dict[str, _Tag]
) -> dict[str, int]:
    """Create the versions of one artifact not yet imported; return GTO version → number."""
    try:
        existing = client.search_model_versions(name)
    except MltrailError:
        existing = []
    numbers = {mv.tags.get(TAG_VERSION): mv.version for mv in existing if mv.tags.get(TAG_VERSION)}
    for ver in sorted(versions, key=_semver_key):
        if ver in numbers:
            continue
        tag = versions[ver]
        what = f"GTO version {name}@{ver}"
        # The annotation may have come after the tag: the latest one then says where it is.
        path = artifact_paths(git, tag.commit).get(name) or artifact_paths(git, "HEAD").get(name)
        if path is None:
            job.skip(what, f"dvc.yaml names no path for artifact {name!r} (artifacts: section)")
            continue
        try:
            tree = _tree_of(job, git, client.objects, tag.commit, path, what)
            mv = client.create_model_version(
                name,
                f"git:{tag.commit}:{path}",
                tags={TAG_VERSION: ver, "mltrail.git.commit": tag.commit},
                tree_hash=tree,
                comment=f"imported from GTO tag {name}@{ver}",
            )
        except MltrailError as e:
            job.skip(what, e.message)
            continue
        numbers[ver] = mv.version
        job.report.model_versions += 1
    return numbers


def _tree_of(job: _Import, git: GitRepo, dest: Any, commit: str, path: str, what: str) -> str:
    """Return the tree hash of the artifact at ``path`` in ``commit`` (a file: a 1-file tree).

    Its objects are copied from the project's store into ``dest`` (the client's object store)
    when that is another store.
    """
    from mltrail.objects.tree import read_tree
    from mltrail.registry.client import store_model_tree

    local = job.objects.store
    pointer = job.pointers_at(commit).get(path)
    name = posixpath.basename(path)
    if pointer is None:
        data = git.file_at(commit, path)
        if data is None:
            raise MltrailError(f"{path} is neither tracked by DVC nor in Git at {commit[:7]}")
        stored = dest.put_bytes(data)
        return store_model_tree(dest, [FileInfo(name, stored.hash, stored.size)], what)
    if not local.exists(pointer.hash):
        raise MltrailError(f"{path} at {commit[:7]} is not in the object store (found nowhere)")
    if pointer.kind == "file":
        files = [FileInfo(name, pointer.hash, pointer.size)]
    else:
        files = [FileInfo(e.path, e.hash, e.size, e.mode) for e in read_tree(local, pointer.hash)]
    if dest.location != local.location:
        for h in dest.missing({f.hash for f in files}):
            dest.put_bytes(local.read_bytes(h))
    return store_model_tree(dest, files, what)


__all__ = ["TAG_VERSION", "artifact_paths", "import_registry"]
