"""Params files (YAML, JSON or TOML): reading values by dotted key, and ``-S`` overrides."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mltrail.errors import InvalidInput

_MISSING = object()
NOT_UTF8_HINT = "Save it as UTF-8 (e.g. with `iconv -f latin1 -t utf-8`)."


def read_params_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the top-level mapping of a params file (``{}`` for an empty file)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(
            f"params file {path.name} does not exist ({path})",
            hint="Create it, or remove the params that name it from mltrail.yaml.",
        ) from None
    except OSError as e:
        raise InvalidInput(f"cannot read params file {path}: {e.strerror or e}") from e
    return parse_bytes(
        data,
        path.suffix,
        f"params file {path.name}",
        "Fix its syntax; params files are YAML, JSON or TOML mappings.",
    )


def parse_bytes(data: bytes, suffix: str, what: str, hint: str) -> dict[str, Any]:
    """Decode a file's bytes as UTF-8 and parse them with :func:`parse_mapping`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} is not UTF-8 text", hint=NOT_UTF8_HINT) from None
    return parse_mapping(text, suffix, what, hint)


def parse_mapping(text: str, suffix: str, what: str, hint: str) -> dict[str, Any]:
    """Parse YAML (the default), JSON or TOML text, by file suffix, into its top-level mapping.

    ``what`` names the document in errors (``params file params.yaml``); empty text is ``{}``.
    """
    suffix = suffix.lower()
    try:
        if suffix == ".json":
            doc = json.loads(text) if text.strip() else {}
        elif suffix == ".toml":
            import tomllib

            doc = tomllib.loads(text)
        else:
            from mltrail import safe_yaml

            doc = safe_yaml.load(text, what)
    except InvalidInput:
        raise
    except Exception as e:  # json, toml and yaml each raise their own error types
        raise InvalidInput(f"{what} cannot be parsed: {e}", hint=hint) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidInput(f"{what} must hold a mapping, not a {type(doc).__name__}", hint=hint)
    return doc


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Return ``{"train.max_depth": 8, …}`` for a nested mapping; lists stay whole values.

    The one walker behind ``params diff`` keys and run param keys, so the two always match.
    """
    out: dict[str, Any] = {}
    if not isinstance(doc, dict):
        return {prefix: doc} if prefix else {}
    if not doc and prefix:
        out[prefix] = {}
    for k, v in doc.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def get_key(doc: dict[str, Any], key: str) -> Any:
    """Return the value at dotted ``key`` (``train.max_depth``), or raise KeyError."""
    if key in doc:  # a top-level key that contains dots itself
        return doc[key]
    value: Any = doc
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(key)
    return value


def set_key(doc: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted ``key`` in ``doc``, creating mappings on the way."""
    if key in doc:
        doc[key] = value
        return
    parts = key.split(".")
    here = doc
    for part in parts[:-1]:
        nxt = here.get(part)
        if not isinstance(nxt, dict):
            nxt = here[part] = {}
        here = nxt
    here[parts[-1]] = value


def parse_value(text: str) -> Any:
    """Return a ``-S`` value as YAML reads it: ``8`` → 8, ``0.1`` → 0.1, ``true`` → True."""
    import yaml

    from mltrail import safe_yaml

    try:
        value = safe_yaml.load(text, f"value {text!r}")
    except yaml.YAMLError:
        return text
    return text if value is None and text.strip() not in ("null", "~") else value


def parse_override(text: str) -> tuple[str | None, str, Any]:
    """Split ``[file:]key=value`` into (file or None, key, parsed value)."""
    if "=" not in text:
        raise InvalidInput(
            f"override {text!r} has no '='", hint="Write it as key=value, e.g. train.max_depth=8."
        )
    target, raw = text.split("=", 1)
    file: str | None = None
    if ":" in target:
        file, target = target.split(":", 1)
    target = target.strip()
    if not target:
        raise InvalidInput(f"override {text!r} names no key", hint="Write it as key=value.")
    return file or None, target, parse_value(raw)


def write_params_file(path: Path, doc: dict[str, Any]) -> None:
    """Write a params mapping back in the file's format (YAML keeps key order)."""
    from mltrail.atomic import write_text_atomic

    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(doc, indent=2) + "\n"
    elif suffix == ".toml":
        raise InvalidInput(
            f"cannot write overrides into {path.name}: TOML params files are read-only for -S",
            hint="Use params.yaml (or a JSON file) for the params you override.",
        )
    else:
        import yaml

        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    write_text_atomic(path, text)


__all__ = [
    "flatten",
    "get_key",
    "parse_bytes",
    "parse_override",
    "parse_value",
    "read_params_file",
    "set_key",
    "write_params_file",
]
