"""The model registry's Python API: :class:`RegistryMixin`, part of ``MltrailClient``.

Method names follow MLflow's ``MlflowClient`` where it has them. Each method checks its input,
fills in who is acting (the OS user) and hands over to the store, which records an audit event
with every change. Every change also takes an optional ``comment`` for that trail (at most
:data:`~mltrail.validation.MAX_COMMENT_LENGTH` characters, as the server takes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mltrail import validation as v
from mltrail.entities import FileInfo, ModelVersion, PagedList, RegisteredModel, RegistryEvent
from mltrail.errors import IntegrityError, InvalidInput, InvalidState, NotFound
from mltrail.registry.uri import FORMS, ModelURI, ResolvedModel, parse_model_uri

if TYPE_CHECKING:
    from mltrail.objects import ObjectStore
    from mltrail.store import TrackingStore


def store_model_tree(objects: ObjectStore, files: Sequence[FileInfo], what: str) -> str:
    """Store the tree of a model folder's files (paths relative to it); return its hash.

    ``what`` names the folder in errors, as in "run 3f2a… has a model at 'model'".
    """
    from mltrail.objects.tree import Tree, TreeEntry, tree_bytes

    rows = sorted([f.path, f.hash, f.size, 0o755 if f.mode & 0o111 else 0o644] for f in files)
    Tree(tuple(TreeEntry(*row) for row in rows))  # refuses unsafe paths before storing
    # A tree in the store promises that its files are there too (see store_tree).
    missing = objects.missing(f.hash for f in files)
    if missing:
        raise NotFound(
            f"{what}, but {len(missing)} of its {len(files)} files are not in the object store "
            f"at {objects.location}",
            hint="Pull them from the remote that has them, or log the model again.",
        )
    return objects.put_bytes(tree_bytes(rows)).hash


def read_model_tree(objects: ObjectStore, tree_hash: str, what: str) -> list[list]:
    """The ``[path, hash, size, mode]`` rows of a model tree, verified; ``what`` names it."""
    from mltrail.objects.tree import read_tree

    try:
        tree = read_tree(objects, tree_hash)
    except NotFound:
        raise NotFound(
            f"the file list of {what} (tree {tree_hash}) is not in the object store at "
            f"{objects.location}",
            hint="Pull it from the remote that has it, or register the model again.",
        ) from None
    except IntegrityError as e:
        err = IntegrityError(f"the file list of {what} is damaged: {e.message}", hint=e.hint)
        err.object_hash = e.object_hash
        raise err from None
    return [[e.path, e.hash, e.size, e.mode] for e in tree]


def tree_files(objects: ObjectStore, version: ModelVersion) -> list[FileInfo]:
    """The files of a registered version (paths relative to the model folder), verified."""
    what = f"version {version.version} of {version.name}"
    return [FileInfo(*row) for row in read_model_tree(objects, version.tree_hash, what)]


def version_named(store: TrackingStore, parsed: ModelURI) -> ModelVersion:
    """The version a parsed ``models:/`` URI names: by alias, number, stage (its newest active
    version) or ``latest`` (the newest active one); a deleted one too, for the caller to refuse."""
    name = parsed.name or ""
    if parsed.alias is not None:
        return store.get_model_version_by_alias(name, parsed.alias)
    if parsed.version is not None:
        return store.get_model_version(name, parsed.version)
    if parsed.stage is not None:
        found = store.get_latest_versions(name, [parsed.stage])
        if not found:
            raise NotFound(
                f"registered model {name} has no version in stage {parsed.stage}",
                hint="Move one there with transition_model_version_stage, or use "
                f"models:/{name}@ALIAS or models:/{name}/VERSION.",
            )
        return found[0]
    if parsed.latest:
        latest = store.get_registered_model(name).latest_version
        if latest is None:
            raise NotFound(
                f"registered model {name} has no versions",
                hint="Register one with register_model('runs:/<run_id>/model', name).",
            )
        return store.get_model_version(name, latest)
    # parse_model_uri returns one of the forms above
    raise InvalidInput(f"models:/{name} names no version", hint=f"Use {', '.join(FORMS)}.")


def _actor() -> str:
    from mltrail.tracking.capture import current_user

    return current_user()


class RegistryMixin:
    """Registered models, versions, aliases, stages and their history (``MltrailClient``)."""

    if TYPE_CHECKING:  # provided by MltrailClient
        store: TrackingStore
        objects: ObjectStore

        def resolve_run_id(self, ref: str) -> str: ...
        def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]: ...

    # -- registered models -------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        *,
        comment: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model with no versions yet; the name must be unused."""
        return self.store.create_registered_model(
            v.check_model_name(name),
            v.check_description(description),
            tags,
            _actor(),
            v.check_comment(comment),
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its tags, aliases and latest version number."""
        return self.store.get_registered_model(name)

    def search_registered_models(
        self, name_like: str | None = None, max_results: int = 100, page_token: str | None = None
    ) -> PagedList:
        """Return a page of registered models by name; ``name_like`` is a LIKE pattern.

        ``%`` matches any text and ``_`` one character, case-sensitively: ``"wine%"``.
        """
        return self.store.list_registered_models(name_like, max_results, page_token)

    def update_registered_model(
        self, name: str, description: str | None = None, *, comment: str | None = None
    ) -> RegisteredModel:
        """Replace a registered model's description (None clears it)."""
        return self.store.update_registered_model(
            name, v.check_description(description), _actor(), v.check_comment(comment)
        )

    def rename_registered_model(
        self, name: str, new_name: str, *, comment: str | None = None
    ) -> RegisteredModel:
        """Rename a registered model; its versions, tags and aliases follow it.

        The history stays under the name each change was made under; the rename is recorded
        under both names.
        """
        return self.store.rename_registered_model(
            name, v.check_model_name(new_name), _actor(), v.check_comment(comment)
        )

    def delete_registered_model(
        self, name: str, force: bool = False, *, comment: str | None = None
    ) -> None:
        """Delete a registered model with all its versions; its history stays readable.

        Refused while a version holds an alias or is in Staging or Production, unless ``force``.
        """
        self.store.delete_registered_model(name, _actor(), force, v.check_comment(comment))

    def set_registered_model_tag(
        self, name: str, key: str, value: Any, *, comment: str | None = None
    ) -> None:
        """Set a tag on a registered model (the value is stored as a string)."""
        key = v.check_key(key, "tag")
        self.store.set_registered_model_tag(
            name, key, v.check_tag_value(key, value), _actor(), v.check_comment(comment)
        )

    def delete_registered_model_tag(
        self, name: str, key: str, *, comment: str | None = None
    ) -> None:
        """Remove a tag from a registered model."""
        self.store.delete_registered_model_tag(name, key, _actor(), v.check_comment(comment))

    # -- versions ----------------------------------------------------------------------------
    def register_model(
        self,
        model_uri: str,
        name: str,
        description: str | None = None,
        tags: dict[str, Any] | None = None,
        *,
        comment: str | None = None,
    ) -> ModelVersion:
        """Register the model folder at ``runs:/<run_id>/<path>`` as the next version of ``name``.

        The model (creating it if needed) gets a version whose files are frozen: their list is
        stored as a tree object, so files the run logs later, or a replaced file, never change
        what the version loads. The run id may be a unique prefix.
        """
        name = v.check_model_name(name)
        comment = v.check_comment(comment)  # before any file is stored
        parsed = parse_model_uri(model_uri)
        if parsed.kind != "runs":
            raise InvalidInput(
                f"register_model takes the runs:/ URI of a logged model, got {model_uri!r}",
                hint="Pass runs:/<run_id>/<artifact_path>, such as runs:/3f2a9c1e/model.",
            )
        run_id = self.resolve_run_id(parsed.run_id or "")
        path = parsed.artifact_path or ""
        tree_hash = self._store_model_tree(run_id, path)
        return self.store.create_model_version(
            name,
            f"runs:/{run_id}/{path}",
            run_id,
            path,
            tree_hash,
            v.check_description(description),
            tags,
            _actor(),
            comment,
        )

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        *,
        tree_hash: str | None = None,
        artifact_path: str | None = None,
        comment: str | None = None,
    ) -> ModelVersion:
        """Add a version to ``name`` (created if missing).

        With a ``runs:/`` source this is :meth:`register_model`. Otherwise pass ``tree_hash``:
        a tree object already in the object store, all of whose files are there too.
        """
        if source.startswith("runs:/") and tree_hash is None:
            return self.register_model(source, name, description, tags, comment=comment)
        if tree_hash is None:
            raise InvalidInput(
                f"create_model_version needs a tree_hash for source {source!r}",
                hint="Register a run's model with register_model('runs:/<run_id>/<path>', name), "
                "or store the folder first (mltrail.objects.put_tree) and pass its hash.",
            )
        tree_hash = v.check_tree_hash(tree_hash)
        # The tree must be readable and its files present, or the version could never load.
        missing = self.objects.missing(row[1] for row in self.model_tree_rows(tree_hash))
        if missing:
            raise NotFound(
                f"{len(missing)} files of tree {tree_hash} are not in the object store at "
                f"{self.objects.location}",
                hint="Store the folder with mltrail.objects.put_tree, which stores them first.",
            )
        return self.store.create_model_version(
            v.check_model_name(name),
            v.check_model_source(source),
            self.resolve_run_id(run_id) if run_id else None,
            v.check_artifact_path(artifact_path) if artifact_path else None,
            tree_hash,
            v.check_description(description),
            tags,
            _actor(),
            v.check_comment(comment),
        )

    def _store_model_tree(self, run_id: str, path: str) -> str:
        """Put the tree of a run's model folder in the object store; return its hash."""
        files = self.list_artifacts(run_id, path)
        prefix = path + "/"
        inside = [
            FileInfo(f.path[len(prefix) :], f.hash, f.size, f.mode)
            for f in files
            if f.path.startswith(prefix)
        ]
        if not any(f.path == "MLmodel" for f in inside):
            top = sorted({f.path.split("/")[0] for f in self.list_artifacts(run_id)})
            raise InvalidInput(
                f"run {run_id} has no model at {path!r}: no MLmodel file",
                hint="Log one with mt.log_model, or pass the path it was logged under"
                + (f" (the run's artifacts: {', '.join(top[:10])})." if top else "."),
            )
        return store_model_tree(self.objects, inside, f"run {run_id} has a model at {path!r}")

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """Return one version; a deleted one too (its ``lifecycle_stage`` is ``deleted``)."""
        return self.store.get_model_version(name, v.check_version(version))

    def list_model_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]:
        """Return a model's versions, newest first; deleted ones only if asked for."""
        return self.store.list_model_versions(name, include_deleted)

    def search_model_versions(
        self,
        name: str | None = None,
        *,
        run_id: str | None = None,
        tree_hash: str | None = None,
        include_deleted: bool = False,
    ) -> list[ModelVersion]:
        """Return the versions of a model, or of any model made from a run or naming a tree.

        ``run_id`` may be a unique prefix. Versions of one model come newest first.
        """
        if run_id is None and tree_hash is None:
            if name is None:
                raise InvalidInput(
                    "search_model_versions needs a model name, a run id or a tree hash",
                    hint="Pass name='wine-rf', or run_id=... to find what a run produced.",
                )
            return self.store.list_model_versions(name, include_deleted)
        found = self.store.find_model_versions(
            self.resolve_run_id(run_id) if run_id else None, tree_hash, include_deleted
        )
        return [mv for mv in found if name is None or mv.name == name]

    def update_model_version(
        self,
        name: str,
        version: int | str,
        description: str | None = None,
        *,
        comment: str | None = None,
    ) -> ModelVersion:
        """Replace a version's description (None clears it)."""
        return self.store.update_model_version(
            name,
            v.check_version(version),
            v.check_description(description),
            _actor(),
            v.check_comment(comment),
        )

    def delete_model_version(
        self, name: str, version: int | str, force: bool = False, *, comment: str | None = None
    ) -> None:
        """Delete a version; its number is never given again and its row stays readable.

        Refused while it holds aliases or is in Staging or Production, unless ``force``, which
        first removes its aliases and archives it.
        """
        self.store.delete_model_version(
            name, v.check_version(version), _actor(), force, v.check_comment(comment)
        )

    def set_model_version_tag(
        self, name: str, version: int | str, key: str, value: Any, *, comment: str | None = None
    ) -> None:
        """Set a tag on a version (the value is stored as a string)."""
        key = v.check_key(key, "tag")
        self.store.set_model_version_tag(
            name,
            v.check_version(version),
            key,
            v.check_tag_value(key, value),
            _actor(),
            v.check_comment(comment),
        )

    def delete_model_version_tag(
        self, name: str, version: int | str, key: str, *, comment: str | None = None
    ) -> None:
        """Remove a tag from a version."""
        self.store.delete_model_version_tag(
            name, v.check_version(version), key, _actor(), v.check_comment(comment)
        )

    def model_tree_rows(self, version: ModelVersion | str) -> list[list]:
        """Return the files of a registered version as ``[path, hash, size, mode]`` rows.

        ``version`` is a ModelVersion, a ``models:/`` URI or a tree hash. The tree object is
        read from the object store and verified against its hash; paths are relative to the
        model folder.
        """
        if isinstance(version, ModelVersion):
            tree_hash, what = version.tree_hash, f"version {version.version} of {version.name}"
        elif isinstance(version, str) and version.startswith("models:/"):
            resolved = self.resolve_model_uri(version)
            tree_hash, what = resolved.tree_hash or "", version
        else:
            tree_hash, what = v.check_tree_hash(version), f"model tree {version[:12]}"
        return read_model_tree(self.objects, tree_hash, what)

    # -- aliases and stages ------------------------------------------------------------------
    def set_registered_model_alias(
        self, name: str, alias: str, version: int | str, comment: str | None = None
    ) -> None:
        """Point ``alias`` at a version of ``name``; an alias already set elsewhere moves."""
        self.store.set_model_alias(
            name, v.check_alias(alias), v.check_version(version), _actor(), v.check_comment(comment)
        )

    def delete_registered_model_alias(
        self, name: str, alias: str, comment: str | None = None
    ) -> None:
        """Remove an alias from a registered model."""
        self.store.delete_model_alias(name, alias, _actor(), v.check_comment(comment))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at."""
        return self.store.get_model_version_by_alias(name, alias)

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
        comment: str | None = None,
    ) -> ModelVersion:
        """Move a version to None, Staging, Production or Archived (any case).

        With ``archive_existing_versions``, the other versions in that stage (Staging or
        Production only) move to Archived, each recorded in the history.
        """
        return self.store.transition_model_version_stage(
            name,
            v.check_version(version),
            v.check_stage(stage),
            bool(archive_existing_versions),
            _actor(),
            v.check_comment(comment),
        )

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """Return the newest active version in each stage (every stage when None)."""
        if isinstance(stages, str):
            stages = [stages]
        return self.store.get_latest_versions(name, stages)

    def get_model_history(
        self, name: str, version: int | str | None = None, limit: int | None = None
    ) -> list[RegistryEvent]:
        """Return the audit trail of a model (or one version), newest first.

        Each event says who did what and when, the value before and after, and the comment.
        A deleted model's history stays readable under its name.
        """
        number = v.check_version(version) if version is not None else None
        return self.store.get_registry_events(name, number, limit)

    # -- URIs --------------------------------------------------------------------------------
    def resolve_model_uri(self, uri: str) -> ResolvedModel:
        """Find the run, artifact path and (for registered versions) tree a model URI names.

        ``models:/`` URIs go through the registry; a stage resolves to its newest active
        version. ``runs:/`` URIs resolve the run id prefix and leave ``tree_hash`` None.
        """
        parsed = parse_model_uri(uri)
        if parsed.kind == "runs":
            run_id = self.resolve_run_id(parsed.run_id or "")
            return ResolvedModel(run_id, parsed.artifact_path, None)
        name = parsed.name or ""
        mv = version_named(self.store, parsed)
        if mv.lifecycle_stage != "active":
            raise InvalidState(
                f"version {mv.version} of {name} is deleted",
                hint=f"Use another version (models:/{name}/latest is the newest one).",
            )
        return ResolvedModel(mv.run_id, mv.artifact_path, mv.tree_hash, mv.name, mv.version)
