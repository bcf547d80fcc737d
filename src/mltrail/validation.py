"""Checks on keys and values, shared by every API entry point and every store."""

from __future__ import annotations

import numbers
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from mltrail.errors import InvalidKey, InvalidState, InvalidValue

if TYPE_CHECKING:
    from mltrail.entities import DatasetRef

MAX_KEY_LENGTH = 250
#: The range of the BIGINT columns (steps, timestamps, sizes).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_RUN_NAME_LENGTH = 250
#: Paths (artifacts, datasets, model files): characters in the whole path, UTF-8 bytes in one
#: name (the limit of common file systems).
MAX_PATH_LENGTH = 1024
MAX_PATH_SEGMENT_BYTES = 255
MAX_DATASET_PATH_LENGTH = MAX_PATH_LENGTH
MAX_DATASET_CONTEXT_LENGTH = 250
DATASET_DIRECTIONS = ("input", "output")
DATASET_KINDS = ("file", "dir")

# The same character set MLflow accepts, so keys move between the two unchanged.
_KEY_RE = re.compile(r"^[/\w.\- :]*$")

# Characters no path may hold: NUL cuts a path short in C APIs, and the other C0/C1 controls and
# DEL can disguise a path in terminals and logs; so do the bidirectional controls (U+202E shows
# 'exe.txt' for 'txt.exe'), the isolates, the direction marks and the line separators.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_INVISIBLE_RE = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")
# A Windows drive ('C:', 'c:x'): absolute, or relative to that drive, never inside a folder.
_DRIVE_RE = re.compile(r"^[A-Za-z]:")

# A content hash, checked here without importing the hashing module (and blake3).
_HASH_RE = re.compile(r"[0-9a-f]{64}")

# Validated keys, so the logging hot path pays for a key's regex and path checks once.
_valid_keys: set[str] = set()


def check_key(key: object, kind: str = "metric") -> str:
    """Return ``key`` if it is a valid metric/param/tag key, else raise :class:`InvalidKey`."""
    if key in _valid_keys:
        return key  # type: ignore[return-value]
    if not isinstance(key, str):
        raise InvalidKey(f"{kind} key must be a string, got {type(key).__name__} {key!r}")
    if not key or not key.strip():
        raise InvalidKey(f"{kind} key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(
            f"{kind} key {key[:40]!r}... is {len(key)} characters long; the limit is "
            f"{MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.match(key):
        raise InvalidKey(
            f"{kind} key {key!r} has characters outside letters, digits, '_', '-', '.', ' ', "
            "':' and '/'"
        )
    parts = key.split("/")
    if key.startswith("/") or ".." in parts or "." in parts or "" in parts:
        raise InvalidKey(
            f"{kind} key {key!r} is not a normalized relative path: no leading '/', no '.' or "
            "'..' segments, no empty segments"
        )
    _valid_keys.add(key)
    return key


def check_metric_value(key: str, value: object) -> float:
    """Return ``value`` as a float (NaN and ±inf included) or raise :class:`InvalidValue`."""
    if isinstance(value, float):
        return value
    # bool is an int subclass, but True as a metric is almost always a bug in the caller.
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise InvalidValue(
        f"metric {key!r} got {type(value).__name__} value {value!r}; metric values must be "
        "numbers (int or float, NaN and inf allowed)"
    )


def check_step(key: str, step: object) -> int:
    """Return ``step`` as an int or raise :class:`InvalidValue`."""
    if type(step) is int and INT64_MIN <= step <= INT64_MAX:
        return step  # the common case, checked per point: no ABC lookup
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        if INT64_MIN <= step <= INT64_MAX:
            return int(step)
        raise InvalidValue(f"metric {key!r} got step {step}; steps must fit in 64 bits")
    raise InvalidValue(f"metric {key!r} got step {step!r}; steps must be integers")


def check_timestamp(key: str, timestamp: object) -> int:
    """Return a millisecond ``timestamp`` as an int or raise :class:`InvalidValue`."""
    if type(timestamp) is int and 0 <= timestamp <= INT64_MAX:
        return timestamp
    if (
        isinstance(timestamp, numbers.Integral)
        and not isinstance(timestamp, bool)
        and 0 <= timestamp <= INT64_MAX
    ):
        return int(timestamp)
    raise InvalidValue(
        f"metric {key!r} got timestamp {timestamp!r}; timestamps are integer milliseconds "
        "since the epoch, >= 0"
    )


def stringify(value: object) -> str:
    """How params and tags store values: ``str(value)``, as MLflow does."""
    return value if isinstance(value, str) else str(value)


def check_param_value(key: str, value: object) -> str:
    """Return the param value as a string or raise :class:`InvalidValue` if too long."""
    text = stringify(value)
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidValue(
            f"param {key!r} value is {len(text)} characters long; the limit is "
            f"{MAX_PARAM_VALUE_LENGTH}",
            hint="Log long values as an artifact (mt.log_text or mt.log_dict) instead.",
        )
    return text


def check_tag_value(key: str, value: object) -> str:
    """Return the tag value as a string or raise :class:`InvalidValue` if too long."""
    text = stringify(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidValue(
            f"tag {key!r} value is {len(text)} characters long; the limit is {MAX_TAG_VALUE_LENGTH}"
        )
    return text


def check_experiment_name(name: object) -> str:
    """Return a valid experiment name or raise :class:`InvalidValue`."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidValue(f"experiment name must be a non-empty string, got {name!r}")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidValue(
            f"experiment name is {len(name)} characters long; the limit is "
            f"{MAX_EXPERIMENT_NAME_LENGTH}"
        )
    return name


def check_run_name(name: object) -> str:
    """Return a valid run name or raise :class:`InvalidValue`."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidValue(f"run name must be a non-empty string, got {name!r}")
    if len(name) > MAX_RUN_NAME_LENGTH:
        raise InvalidValue(
            f"run name is {len(name)} characters long; the limit is {MAX_RUN_NAME_LENGTH}"
        )
    return name


def check_path(path: object, what: str = "artifact path", *, hint: str | None = None) -> str:
    """Return ``path`` as a normalized relative path, or raise :class:`InvalidKey` saying why.

    The one rule for every path a user or a client names: run artifacts, logged files, model
    files, dataset paths. Refused: non-strings, empty paths, absolute ones (``/x``, ``C:/x``,
    ``\\\\server\\share``), ``.``/``..``/empty segments in any spelling (Windows drops trailing
    dots and spaces, so ``.. /x`` is ``../x`` there; ``%2e%2e/x`` is ``../x`` once URL-decoded),
    control characters, bidirectional and other invisible controls, more than
    :data:`MAX_PATH_LENGTH` characters or a name over :data:`MAX_PATH_SEGMENT_BYTES` bytes.
    Backslashes are folder separators (paths logged on Windows) and a trailing '/' is dropped.
    """
    hint = hint or "Give a relative path such as 'model/weights.bin'."
    if not isinstance(path, str):
        raise InvalidKey(f"{what} must be a string, got {path!r}", hint=hint)
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidKey(
            f"{what} {path[:40]!r}... is {len(path):,} characters long; the limit is "
            f"{MAX_PATH_LENGTH:,}",
            hint=hint,
        )
    norm = path.replace("\\", "/")
    problem = _path_problem(norm)
    # A name that a later URL decoding would turn into traversal ('%2e%2e/') is refused too.
    decoded = norm
    for _ in range(3):
        if problem or "%" not in decoded:
            break
        decoded = unquote(decoded).replace("\\", "/")
        problem = _path_problem(decoded)
        if problem:
            problem = f"reads {decoded!r} once URL-decoded, which {problem}"
    if problem:
        raise InvalidKey(f"{what} {path!r} {problem}", hint=hint)
    return norm.rstrip("/")


def check_artifact_path(path: str) -> str:
    """Return a normalized relative artifact path or raise :class:`InvalidKey`."""
    return check_path(
        path,
        "artifact path",
        hint="Give a path relative to the run's artifacts, such as 'model/weights.bin'.",
    )


def _path_problem(norm: str) -> str | None:
    """What makes ``norm`` (backslashes already turned into '/') unsafe, or None."""
    if not norm.strip("/"):
        return "is empty"
    bad = _CONTROL_RE.search(norm)
    if bad:
        return f"contains the control character {bad.group()!r}"
    bad = _INVISIBLE_RE.search(norm)
    if bad:
        return f"contains the invisible control character U+{ord(bad.group()):04X}"
    if norm.startswith("/") or _DRIVE_RE.match(norm):
        return "is absolute; it must be relative"
    segments = norm.rstrip("/").split("/")
    # Windows drops trailing dots and spaces from names, so '.. ' would be '..' there.
    if any(not p.rstrip(". ") for p in segments):
        return "must not have '.' or '..' segments, nor empty ones"
    for p in segments:
        size = len(p.encode("utf-8", "surrogatepass"))
        if size > MAX_PATH_SEGMENT_BYTES:
            return (
                f"has a name of {size} bytes ({p[:20]!r}...); the limit is "
                f"{MAX_PATH_SEGMENT_BYTES} bytes per name"
            )
    return None


def check_run_writable(
    run_id: str, lifecycle_stage: str, status: str, *, finished_ok: bool = False
) -> None:
    """Raise :class:`InvalidState` unless a run is active and RUNNING, so it can take data.

    With ``finished_ok`` (MLflow's rule, for its clients) an active run takes data in any status.
    """
    if lifecycle_stage != "active":
        raise InvalidState(
            f"run {run_id!r} is deleted; nothing can be logged to it",
            hint=f"Restore it first: mltrail runs restore {run_id}",
        )
    if status != "RUNNING" and not finished_ok:
        raise InvalidState(
            f"run {run_id!r} is {status}; only RUNNING runs take new data",
            hint="Start a new run, or resume this one with mt.start_run(run_id=...).",
        )


def check_dataset_direction(direction: object) -> str:
    """Return ``direction`` if it is ``input`` or ``output``, else raise :class:`InvalidValue`."""
    if direction not in DATASET_DIRECTIONS:
        raise InvalidValue(f"dataset direction must be 'input' or 'output', got {direction!r}")
    return direction  # type: ignore[return-value]


def check_dataset_context(context: object) -> str | None:
    """Return a dataset context (short one-line text, or None) or raise :class:`InvalidValue`."""
    if context is None:
        return None
    if not isinstance(context, str) or not context.strip():
        raise InvalidValue(f"dataset context must be a non-empty string or None, got {context!r}")
    if len(context) > MAX_DATASET_CONTEXT_LENGTH or "\n" in context or "\r" in context:
        raise InvalidValue(
            f"dataset context {context[:40]!r} must be one line of at most "
            f"{MAX_DATASET_CONTEXT_LENGTH} characters",
            hint="Use a short label such as 'training' or 'evaluation'.",
        )
    return context


def check_dataset_path(path: object) -> str:
    """Return a dataset path (relative to the project root, '/'-separated, as :func:`check_path`
    allows) or raise :class:`InvalidValue`."""
    hint = "A dataset path is relative to the project root, such as 'data/train.csv'."
    try:
        clean = check_path(path, "dataset path", hint=hint)
    except InvalidKey as e:
        raise InvalidValue(e.message, hint=e.hint) from None
    if clean != path:
        raise InvalidValue(
            f"dataset path {path!r} must be written with '/' separators and no trailing '/' "
            f"(as {clean!r})",
            hint=hint,
        )
    return clean


def check_dataset_ref(ref: DatasetRef) -> DatasetRef:
    """Return ``ref`` if every field is well formed, else raise :class:`InvalidValue`."""
    path = check_dataset_path(ref.path)
    if not isinstance(ref.hash, str) or not _HASH_RE.fullmatch(ref.hash):
        raise InvalidValue(
            f"dataset {path!r}: hash {ref.hash!r} is not 64 lowercase hex characters"
        )
    if ref.kind not in DATASET_KINDS:
        raise InvalidValue(f"dataset {path!r}: kind must be 'file' or 'dir', got {ref.kind!r}")
    if type(ref.size) is not int or not 0 <= ref.size <= INT64_MAX:
        raise InvalidValue(
            f"dataset {path!r}: size must be a whole number of bytes, got {ref.size!r}"
        )
    if ref.kind == "dir" and (type(ref.nfiles) is not int or not 0 <= ref.nfiles <= INT64_MAX):
        raise InvalidValue(f"dataset {path!r}: a dir needs nfiles >= 0, got {ref.nfiles!r}")
    if ref.kind == "file" and ref.nfiles is not None:
        raise InvalidValue(f"dataset {path!r}: a file has no nfiles, got {ref.nfiles!r}")
    check_dataset_context(ref.context)
    return ref


# -- model registry ------------------------------------------------------------------------------

MAX_MODEL_NAME_LENGTH = 255
MAX_ALIAS_LENGTH = 255
MAX_MODEL_SOURCE_LENGTH = 1024
#: Longest comment a registry change may carry into the audit trail.
MAX_COMMENT_LENGTH = 5000
MODEL_STAGES = ("None", "Staging", "Production", "Archived")

# ASCII only: names travel in models:/ URIs, file names and shell commands unquoted.
_MODEL_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-]*")
_ALIAS_RE = re.compile(r"[A-Za-z0-9_\-]+")
# models:/name/latest and models:/name/v3 read as a version; an alias spelled so would be ambiguous.
_RESERVED_ALIAS_RE = re.compile(r"latest|v\d+", re.IGNORECASE)


def check_model_name(name: object) -> str:
    """Return a valid registered model name or raise :class:`InvalidValue`."""
    if not isinstance(name, str) or not name:
        raise InvalidValue(
            f"model name must be a non-empty string, got {name!r}",
            hint="Use letters, digits, '.', '_' and '-', such as 'wine-rf'.",
        )
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise InvalidValue(
            f"model name {name[:40]!r}... is {len(name)} characters long; the limit is "
            f"{MAX_MODEL_NAME_LENGTH}",
            hint="Use a shorter name; put details in the description or tags.",
        )
    if not _MODEL_NAME_RE.fullmatch(name):
        raise InvalidValue(
            f"model name {name!r} is not allowed",
            hint="Use ASCII letters, digits, '.', '_' and '-', not starting with '.' or '-' "
            "(such as 'wine-rf').",
        )
    return name


def check_actor(actor: object) -> str:
    """Return the name of who makes a registry change (1 to 256 characters) or raise."""
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 256:
        raise InvalidValue(
            f"actor must be a user name of 1 to 256 characters, got {actor!r}",
            hint="Pass who makes the change (the API fills in the OS user).",
        )
    return actor


def check_alias(alias: object) -> str:
    """Return a valid model alias (case kept as given) or raise :class:`InvalidValue`."""
    if not isinstance(alias, str) or not alias:
        raise InvalidValue(
            f"alias must be a non-empty string, got {alias!r}",
            hint="Use letters, digits, '_' and '-', such as 'champion'.",
        )
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidValue(
            f"alias {alias[:40]!r}... is {len(alias)} characters long; the limit is "
            f"{MAX_ALIAS_LENGTH}",
            hint="Use a short alias, such as 'champion'.",
        )
    if not _ALIAS_RE.fullmatch(alias):
        raise InvalidValue(
            f"alias {alias!r} is not allowed",
            hint="Use letters, digits, '_' and '-' only, such as 'champion'.",
        )
    if _RESERVED_ALIAS_RE.fullmatch(alias):
        raise InvalidValue(
            f"alias {alias!r} is reserved: 'latest' and 'v<number>' would read as versions",
            hint="Pick another name, such as 'champion' or 'prod'.",
        )
    return alias


def check_stage(stage: object) -> str:
    """Return the canonical spelling of a model stage (any case accepted) or raise."""
    if isinstance(stage, str):
        for canonical in MODEL_STAGES:
            if stage.lower() == canonical.lower():
                return canonical
    raise InvalidValue(
        f"unknown model stage {stage!r}",
        hint=f"Use one of: {', '.join(MODEL_STAGES)} (any case).",
    )


def check_version(version: object) -> int:
    """Return a model version number (an int >= 1, or its decimal string) or raise."""
    if isinstance(version, str):
        text = version.strip()
        # ASCII only: str.isdigit() also says yes to "²" and "٣", which int() refuses or reads.
        if text.isascii() and text.isdigit():
            version = int(text)
    if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
        return version
    raise InvalidValue(
        f"model version must be a whole number >= 1, got {version!r}",
        hint="Versions are numbered 1, 2, 3, ... per model.",
    )


def check_tree_hash(tree_hash: object) -> str:
    """Return ``tree_hash`` if it is 64 lowercase hex characters, else raise InvalidValue."""
    if not isinstance(tree_hash, str) or not _HASH_RE.fullmatch(tree_hash):
        raise InvalidValue(
            f"tree hash {tree_hash!r} is not 64 lowercase hex characters",
            hint="Pass the hash of the model folder's tree object (register_model computes it).",
        )
    return tree_hash


def check_model_source(source: object) -> str:
    """Return a model version source (non-empty, at most 1024 characters) or raise."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidValue(
            f"model source must be a non-empty string, got {source!r}",
            hint="Use runs:/<run_id>/<artifact_path>.",
        )
    if len(source) > MAX_MODEL_SOURCE_LENGTH:
        raise InvalidValue(
            f"model source {source[:40]!r}... is {len(source)} characters long; the limit is "
            f"{MAX_MODEL_SOURCE_LENGTH}",
            hint="Use runs:/<run_id>/<artifact_path> with a shorter artifact path.",
        )
    return source


def check_description(description: object) -> str | None:
    """Return a description (a string, or None to have none) or raise :class:`InvalidValue`."""
    if description is None or isinstance(description, str):
        return description
    raise InvalidValue(
        f"description must be a string or None, got {type(description).__name__} {description!r}",
        hint="Pass text, or None for no description.",
    )


def check_comment(comment: object) -> str | None:
    """Return a registry change's comment (text up to 5000 characters, or None) or raise."""
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise InvalidValue(
            f"comment must be a string or None, got {type(comment).__name__}",
            hint="Pass text, or None for no comment.",
        )
    if len(comment) > MAX_COMMENT_LENGTH:
        raise InvalidValue(
            f"the comment is {len(comment)} characters long; at most {MAX_COMMENT_LENGTH} are kept",
            hint="Shorten it; link to a longer note instead.",
        )
    return comment
