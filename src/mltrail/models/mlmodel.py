"""The ``MLmodel`` file: the small YAML document that says what a model folder holds.

Its keys are MLflow's (``flavors``, ``signature``, ``run_id``, ``utc_time_created``...), so a model
saved by MLflow's scikit-learn flavor loads in mltrail and the other way round. mltrail adds
``mltrail_version`` and ``requirements`` (the file listing pinned packages).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrail.errors import InvalidInput
from mltrail.models.signature import Signature

MLMODEL_FILE = "MLmodel"
REQUIREMENTS_FILE = "requirements.txt"
INPUT_EXAMPLE_FILE = "input_example.json"
SERVING_EXAMPLE_FILE = "serving_input_example.json"
PYFUNC_FLAVOR = "python_function"


class ModelFormatError(InvalidInput):
    """A model folder whose MLmodel file is missing, unreadable or incomplete."""

    code = "INVALID_MODEL"


@dataclass
class ModelMeta:
    """The parsed MLmodel file."""

    flavors: dict[str, dict[str, Any]]
    signature: Signature | None = None
    run_id: str | None = None
    artifact_path: str | None = None
    utc_time_created: str = ""
    mltrail_version: str | None = None
    model_size_bytes: int | None = None
    saved_input_example_info: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pyfunc(self) -> dict[str, Any]:
        """The python_function flavor's settings (how to load the model for ``predict``)."""
        return self.flavors.get(PYFUNC_FLAVOR, {})

    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping, MLflow's keys first."""
        d: dict[str, Any] = {
            "artifact_path": self.artifact_path,
            "flavors": self.flavors,
            "mltrail_version": self.mltrail_version,
            "model_size_bytes": self.model_size_bytes,
            "run_id": self.run_id,
            "utc_time_created": self.utc_time_created,
        }
        if self.signature is not None:
            d["signature"] = self.signature.to_dict()
        if self.saved_input_example_info:
            d["saved_input_example_info"] = self.saved_input_example_info
        if self.metadata:
            d["metadata"] = self.metadata
        d.update(self.extra)
        return {k: v for k, v in d.items() if v is not None}

    def to_yaml(self) -> str:
        """The MLmodel file's text."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    def save(self, folder: Path) -> None:
        """Write the MLmodel file into ``folder``."""
        (folder / MLMODEL_FILE).write_text(self.to_yaml(), encoding="utf-8")


_KNOWN = {
    "artifact_path", "flavors", "mltrail_version", "model_size_bytes", "run_id",
    "utc_time_created", "signature", "saved_input_example_info", "metadata",
}  # fmt: skip


def parse_meta(text: str, where: str) -> ModelMeta:
    """Parse MLmodel text; ``where`` names the file in errors."""
    import yaml

    from mltrail import safe_yaml

    try:
        d = safe_yaml.load(text, where)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ModelFormatError(
            f"{where} is not valid YAML{line}",
            hint="The model folder is damaged: log or save the model again.",
        ) from None
    if not isinstance(d, dict):
        raise ModelFormatError(f"{where} does not hold a mapping of model settings")
    flavors = d.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise ModelFormatError(
            f"{where} lists no flavors",
            hint="A model folder needs at least one flavor (e.g. sklearn, python_function).",
        )
    if not all(isinstance(k, str) and isinstance(v, dict) for k, v in flavors.items()):
        raise ModelFormatError(f"{where}: every flavor must be a name with a mapping of settings")
    signature = None
    if d.get("signature"):
        try:
            signature = Signature.from_dict(d["signature"])
        except InvalidInput as e:
            raise ModelFormatError(f"{where}: {e.message}") from None
    return ModelMeta(
        flavors=flavors,
        signature=signature,
        run_id=d.get("run_id"),
        artifact_path=d.get("artifact_path"),
        utc_time_created=str(d.get("utc_time_created", "")),
        mltrail_version=d.get("mltrail_version"),
        model_size_bytes=d.get("model_size_bytes"),
        saved_input_example_info=d.get("saved_input_example_info"),
        metadata=d.get("metadata"),
        extra={k: v for k, v in d.items() if k not in _KNOWN},
    )


def read_meta(folder: str | Path) -> ModelMeta:
    """Read ``folder/MLmodel``; a missing or damaged file raises ModelFormatError."""
    path = Path(folder) / MLMODEL_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFormatError(
            f"{folder} is not a model folder: it has no {MLMODEL_FILE} file",
            hint="Point at the folder mt.save_model or mt.log_model wrote.",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"cannot read {path}: {e}") from None
    return parse_meta(text, str(path))


#: The reproducible-builds variable: when set, a build writes this time instead of the clock's.
ENV_SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def utc_now() -> str:
    """The creation time as MLflow writes it: ``SOURCE_DATE_EPOCH`` if set, else the clock."""
    raw = os.environ.get(ENV_SOURCE_DATE_EPOCH, "").strip()
    if not raw:
        return datetime.datetime.now(datetime.UTC).strftime(_TIME_FORMAT)
    try:
        if not (raw.isascii() and raw.isdigit()):  # the spec's format: `date +%s`, digits only
            raise ValueError(raw)
        when = datetime.datetime.fromtimestamp(int(raw), datetime.UTC)
    except (ValueError, OverflowError, OSError):
        # reproducible-builds.org: a malformed value is an error, not a silent fallback.
        raise InvalidInput(
            f"{ENV_SOURCE_DATE_EPOCH}={raw!r} is not a time",
            hint="Set it to whole seconds since 1970-01-01 UTC (e.g. `date +%s`), or unset it.",
        ) from None
    return when.strftime(_TIME_FORMAT)
