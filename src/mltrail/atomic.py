"""Replacing small files atomically: a temp file beside the target, then a rename."""

from __future__ import annotations

import os
from pathlib import Path


def temp_name(target: Path) -> Path:
    """Return a fresh hidden temp path beside ``target``, for an atomic replace later."""
    return target.with_name(f".{target.name}.{os.urandom(6).hex()}.mltrail-tmp")


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8): readers see the old file or the new, never half."""
    tmp = temp_name(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = ["temp_name", "write_text_atomic"]
