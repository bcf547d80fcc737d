"""Save, log and load models: ``mt.log_model``, ``mt.load_model``, ``mt.save_model``.

A model is a folder: the ``MLmodel`` file, the model in its library's own format, requirements and
an input example. Logged, it becomes a run's artifacts in the object store; registered, its
tree hash names that exact folder version, and loading checks every file against it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail._version import __version__
from mltrail.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from mltrail.models import flavors as _flavors
from mltrail.models.mlmodel import (
    INPUT_EXAMPLE_FILE,
    PYFUNC_FLAVOR,
    REQUIREMENTS_FILE,
    SERVING_EXAMPLE_FILE,
    ModelMeta,
    read_meta,
    utc_now,
)
from mltrail.models.signature import Signature, infer_schema, to_model_input

if TYPE_CHECKING:
    from mltrail.tracking.client import MltrailClient

URI_SCHEMES = ("models:/", "runs:/")
#: NAME, NAME@ALIAS, NAME/VERSION or NAME/STAGE: registry shorthands.
_SHORTHAND = re.compile(r"[^/@\s]+(?:@[^/@\s]+|/[^/@\s]+)?")


@dataclass(frozen=True)
class ModelInfo:
    """What ``log_model`` stored: where, in which flavors, and the registered version if any."""

    run_id: str
    artifact_path: str
    model_uri: str
    flavors: dict[str, dict[str, Any]]
    signature: Signature | None
    registered_model_name: str | None = None
    registered_model_version: int | None = None


class PyFuncModel:
    """A loaded model: ``predict`` checks input against the signature, then runs the model."""

    def __init__(self, meta: ModelMeta, native: Any, predict: Any, source: str) -> None:
        self.metadata = meta
        self._native = native
        self._predict = predict
        self.source = source

    @property
    def signature(self) -> Signature | None:
        """The model's signature, when it was saved with one."""
        return self.metadata.signature

    def prepare(self, data: Any) -> Any:
        """Convert and check ``data`` as ``predict`` would; raise InvalidInput naming the column."""
        return to_model_input(data, self.signature.inputs if self.signature else None)

    def predict(self, data: Any) -> Any:
        """Predict on a DataFrame, array, dict of columns or list of records."""
        return self._predict(self.prepare(data))

    def predict_prepared(self, prepared: Any) -> Any:
        """Predict on input that ``prepare`` (or an equivalent check) already produced."""
        return self._predict(prepared)

    def unwrap(self) -> Any:
        """The library's own model object (e.g. the scikit-learn estimator)."""
        return self._native

    def __repr__(self) -> str:
        return f"PyFuncModel(source={self.source!r}, flavors={list(self.metadata.flavors)})"


def model_uri(ref: str, *, folders: bool = True) -> str:
    """A MODEL argument as given to the CLI → a ``models:/``/``runs:/`` URI or a folder path.

    With ``folders``, an existing path is a folder; ``NAME@ALIAS``, ``NAME/VERSION`` and
    ``NAME/STAGE`` get the ``models:/`` prefix, and a bare ``NAME`` means its latest version.
    """
    if ref.startswith(URI_SCHEMES) or (folders and Path(ref).exists()):
        return ref
    if ref.startswith((".", "/", "~")) or not _SHORTHAND.fullmatch(ref):
        raise NotFound(
            f"no model folder at {ref}",
            hint="Pass a saved model folder, NAME@ALIAS, NAME/VERSION, NAME/STAGE, "
            "or a models:/… or runs:/… URI.",
        )
    return f"models:/{ref}" if ("@" in ref or "/" in ref) else f"models:/{ref}/latest"


# -- save ------------------------------------------------------------------------------------
def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | bool | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    serialization_format: str | None = None,
    predict_fn: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
) -> ModelMeta:
    """Write ``model`` as a model folder at ``path`` (which must not exist or be empty).

    The signature is inferred from ``input_example`` unless one is given; ``signature=False``
    saves none. ``utc_time_created`` is ``SOURCE_DATE_EPOCH`` when that is set, so the same model
    saved twice gives the same bytes.
    """
    folder = Path(path)
    created = utc_now()  # first: a malformed SOURCE_DATE_EPOCH must fail before anything is written
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise AlreadyExists(
            f"cannot save a model to {folder}: it already exists and is not an empty folder",
            hint="Pick a new path, or remove the old one first.",
        )
    module = _flavors.flavor(flavor) if flavor else _flavors.flavor_for(model)
    if not module.accepts(model):
        raise InvalidInput(f"the {module.NAME} flavor cannot save a {type(model).__name__}")
    options: dict[str, Any] = {"serialization_format": serialization_format}
    if predict_fn is not None:
        if module.NAME != "sklearn":
            raise InvalidInput("predict_fn is only supported by the sklearn flavor")
        options["predict_fn"] = predict_fn
    folder.mkdir(parents=True, exist_ok=True)
    conf, pyfunc = module.save(model, folder, **options)
    pyfunc = {**pyfunc, "python_version": platform.python_version()}
    pyfunc["env"] = {"virtualenv": REQUIREMENTS_FILE}
    flavors = (
        {PYFUNC_FLAVOR: pyfunc}
        if module.NAME == PYFUNC_FLAVOR
        else {
            PYFUNC_FLAVOR: pyfunc,
            module.NAME: conf,
        }
    )
    example_info = None
    if signature is True:
        signature = None  # "infer one", as when none is given
    if input_example is not None:
        if signature is None:
            signature = infer_model_signature(input_example, module.predictor(model, pyfunc))
        example_info = _save_example(input_example, folder)
    if signature is False:
        signature = None
    requirements = pip_requirements or _pinned(["mltrail", *module.packages()])
    requirements = [*requirements, *(extra_pip_requirements or [])]
    (folder / REQUIREMENTS_FILE).write_text("\n".join(requirements) + "\n", encoding="utf-8")
    meta = ModelMeta(
        flavors=flavors,
        signature=signature,
        run_id=run_id,
        artifact_path=artifact_path,
        utc_time_created=created,
        mltrail_version=__version__,
        saved_input_example_info=example_info,
        metadata=metadata,
    )
    meta.model_size_bytes = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    meta.save(folder)
    return meta


def infer_model_signature(example: Any, predict: Any) -> Signature:
    """The signature of a model: inputs from ``example``, outputs from ``predict(example)``."""
    inputs = infer_schema(example)
    try:
        # The output schema comes from predicting on the example; a model that cannot is still
        # saved, with inputs only.
        outputs = infer_schema(predict(to_model_input(example, inputs)))
    except Exception:
        outputs = None
    return Signature(inputs, outputs)


def _save_example(example: Any, folder: Path) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from mltrail.models.signature import as_data

    data = as_data(example)
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        split = json.loads(data.to_json(orient="split", index=False, date_format="iso"))
        body, serving, kind = split, {"dataframe_split": split}, "dataframe"
    else:
        values = np.asarray(data).tolist()
        body, serving, kind = {"inputs": values}, {"inputs": values}, "ndarray"
    (folder / INPUT_EXAMPLE_FILE).write_text(json.dumps(body), encoding="utf-8")
    (folder / SERVING_EXAMPLE_FILE).write_text(json.dumps(serving, indent=2), encoding="utf-8")
    return {
        "artifact_path": INPUT_EXAMPLE_FILE,
        "serving_input_path": SERVING_EXAMPLE_FILE,
        "type": kind,
        "pandas_orient": "split" if kind == "dataframe" else None,
    }


def _pinned(distributions: list[str]) -> list[str]:
    # Versions of what is installed now: no scanning of imports, so logging stays fast.
    pins = []
    for name in dict.fromkeys(distributions):
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


# -- log -------------------------------------------------------------------------------------
def log_model(
    model: Any,
    name: str = "model",
    *,
    registered_name: str | None = None,
    run_id: str | None = None,
    client: MltrailClient | None = None,
    **save_options: Any,
) -> ModelInfo:
    """Save ``model`` as artifacts of the active run under ``name``; register it if asked."""
    from mltrail import validation as v
    from mltrail.tracking import fluent

    name = v.check_artifact_path(name)
    client = client or fluent.get_client()
    run_id = run_id or fluent._run_id()
    with tempfile.TemporaryDirectory(prefix="mltrail-model-") as tmp:
        folder = Path(tmp) / "model"
        meta = save_model(model, folder, run_id=run_id, artifact_path=name, **save_options)
        client.log_artifacts(run_id, folder, name)
    info = ModelInfo(run_id, name, f"runs:/{run_id}/{name}", meta.flavors, meta.signature)
    if registered_name is None:
        return info
    version = client.register_model(info.model_uri, registered_name)
    return ModelInfo(
        run_id, name, info.model_uri, meta.flavors, meta.signature, registered_name,
        version.version,
    )  # fmt: skip


# -- load ------------------------------------------------------------------------------------
def load_model(
    model_uri: str | os.PathLike[str], *, client: MltrailClient | None = None
) -> PyFuncModel:
    """Load a model for ``predict`` from ``models:/name@alias``, ``models:/name/3``,
    ``models:/name/Production``, ``runs:/<run>/<path>`` or a local folder."""
    return _with_folder(model_uri, client, _load_pyfunc)


def load_native(
    model_uri: str | os.PathLike[str], flavor: str, *, client: MltrailClient | None = None
) -> Any:
    """Load the library's own object (e.g. the scikit-learn estimator) of a ``flavor`` model."""

    def native(folder: Path, source: str) -> Any:
        meta = read_meta(folder)
        if flavor not in meta.flavors:
            raise InvalidInput(
                f"{source} has no {flavor} flavor",
                hint=f"Its flavors: {', '.join(meta.flavors)}. Load it with mt.load_model.",
            )
        return _flavors.flavor(flavor).load(folder, meta.flavors[flavor])

    return _with_folder(model_uri, client, native)


def get_model_info(
    model_uri: str | os.PathLike[str], *, client: MltrailClient | None = None
) -> ModelMeta:
    """Read a model's MLmodel file (flavors, signature) without loading the model."""
    return _with_folder(model_uri, client, lambda folder, _source: read_meta(folder))


def _load_pyfunc(folder: Path, source: str) -> PyFuncModel:
    meta = read_meta(folder)
    module = _flavors.loader_for(meta.pyfunc, meta.flavors)
    conf = meta.flavors.get(module.NAME, meta.pyfunc)
    native = module.load(folder, conf)
    return PyFuncModel(meta, native, module.predictor(native, meta.pyfunc), source)


def _with_folder(model_uri: str | os.PathLike[str], client: MltrailClient | None, fn: Any) -> Any:
    uri = os.fspath(model_uri)
    if not uri.startswith(URI_SCHEMES):
        folder = Path(uri)
        if not folder.is_dir():
            raise NotFound(
                f"no model folder at {uri}",
                hint="Pass models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH "
                "or the path of a saved model folder.",
            )
        return fn(folder, uri)
    if client is None:
        from mltrail.tracking import fluent

        client = fluent.get_client()
    with tempfile.TemporaryDirectory(prefix="mltrail-model-") as tmp:
        folder = Path(tmp) / "model"
        fetch_model(uri, folder, client=client)
        return fn(folder, uri)


def fetch_model(model_uri: str, dst: str | os.PathLike[str], *, client: MltrailClient) -> Path:
    """Copy a logged or registered model's files to ``dst``, each verified against its hash."""
    from mltrail.objects.tree import checkout_tree

    resolved = client.resolve_model_uri(model_uri)
    dst = Path(dst)
    files = []
    if not resolved.tree_hash:
        files = client.list_artifacts(resolved.run_id, resolved.artifact_path)
        if not any(f.path == f"{resolved.artifact_path}/MLmodel" for f in files):
            raise NotFound(
                f"run {resolved.run_id} has no model at {resolved.artifact_path!r} "
                "(no MLmodel file)",
                hint="Check the path with `mltrail runs show RUN_ID`.",
            )
    try:
        if resolved.tree_hash:
            # The registered folder version: files added to the run later do not leak in, and
            # a replaced or damaged file cannot pass as the model.
            checkout_tree(client.objects, resolved.tree_hash, dst)
        else:
            prefix = len(resolved.artifact_path) + 1
            for f in files:
                target = dst / f.path[prefix:]
                target.parent.mkdir(parents=True, exist_ok=True)
                client.objects.get_file(f.hash, target)
    except IntegrityError as e:
        err = IntegrityError(
            f"refusing to load {model_uri}: {e.message}",
            hint="The stored model no longer matches the hash recorded when it was logged; "
            "log and register it again.",
        )
        err.object_hash = e.object_hash
        raise err from None
    except NotFound as e:
        raise NotFound(
            f"cannot load {model_uri}: {e.message}",
            hint="Its files are not in this object store (run artifacts do not travel with "
            "`mltrail data push/pull`): use the store it was logged to, or log it again.",
        ) from None
    return dst


def register_model(
    model_uri: str, name: str, *, description: str | None = None, tags: dict[str, Any] | None = None
) -> Any:
    """Register the model at ``runs:/<run>/<path>`` as a new version of ``name``."""
    from mltrail.tracking import fluent

    return fluent.get_client().register_model(model_uri, name, description=description, tags=tags)
