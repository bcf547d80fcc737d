"""Helpers of the fault tests: mltrail in subprocesses (so they can be killed), small disks.

Every test here is marked ``faults`` and left out of the default run (see tests/conftest.py);
``python -m pytest -n 2 -m faults`` runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mltrail

SRC = Path(mltrail.__file__).resolve().parent.parent

# These would point a subprocess at the user's store or change how it logs.
_CLEARED = (
    "MLTRAIL_TRACKING_URI",
    "MLTRAIL_OBJECTS",
    "MLTRAIL_EXPERIMENT_NAME",
    "MLTRAIL_DEBUG",
    "MLTRAIL_MODE",
    "MLTRAIL_SPOOL_DIR",
    "MLTRAIL_FLUSH_TIMEOUT",
    "MLTRAIL_TOKEN",
)


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an mltrail subprocess: this checkout, no outside mltrail settings."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(PYTHONPATH=str(SRC), MLTRAIL_CAPTURE="0", HOME=str(home), **extra)
    for name in ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR"):
        env.pop(name, None)
    return env


def mltrail_cmd(*args: str) -> list[str]:
    """``python -m mltrail ARGS``."""
    return [sys.executable, "-m", "mltrail", *args]


def python_cmd(script: str, *args: str) -> list[str]:
    """``python -c SCRIPT ARGS`` (the script dedented)."""
    return [sys.executable, "-c", textwrap.dedent(script), *args]


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to its end; its output as text."""
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def temp_files(folder: Path) -> list[Path]:
    """The files in a temp folder (none when it does not exist)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def tmpfs() -> Iterator[Callable[[Path], Path]]:
    """``tmpfs(folder)`` mounts a fresh 20 MB tmpfs on ``folder`` (made if need be) and returns
    it; the test is skipped where mounting is not permitted. Unmounted when the test ends."""
    mounted: list[Path] = []

    def mount(where: Path) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        if shutil.which("mount") is None:
            pytest.skip("no mount command")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    try:
        yield mount
    finally:
        for where in reversed(mounted):
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` with one file until at most ``leave`` bytes are free; return the file."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free - leave
    with filler.open("ab") as f:
        chunk = b"\0" * (1 << 20)
        while free > 0:
            try:
                f.write(chunk[: min(len(chunk), free)])
                f.flush()
            except OSError:
                break
            free -= len(chunk)
    return filler
