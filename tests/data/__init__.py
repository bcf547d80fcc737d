"""Tests of data versioning (mltrail.data); shared helpers and the ``project`` fixture."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from mltrail.config import init_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project in the test's folder, which is also the working directory."""
    monkeypatch.delenv("MLTRAIL_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLTRAIL_OBJECTS", raising=False)
    init_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settle(*paths: Path) -> None:
    """Date files (and every file under folders) 10 s back, outside the racy-timestamp window."""
    then = time.time() - 10
    for path in paths:
        files = [Path(d, f) for d, _, fs in os.walk(path) for f in fs] if path.is_dir() else [path]
        for f in files:
            os.utime(f, (then, then))


def write(path: Path, data: bytes | str) -> Path:
    """Create ``path`` (and its folders) with ``data``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def git(root: Path, *args: str, date: str | None = None) -> str:
    """Run git in ``root`` with a repo-local identity (never the user's config); return stdout."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    if date is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    done = subprocess.run(
        ["git", "-c", "user.name=Tess Ter", "-c", "user.email=tess@example.com",
         "-c", "commit.gpgsign=false", *args],
        cwd=root, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def git_clone(src: Path, dest: Path) -> Path:
    """``git clone`` the project at ``src`` into ``dest``; return ``dest``."""
    subprocess.run(["git", "clone", "-q", str(src), str(dest)], check=True, capture_output=True)
    return dest


def commit_with_remote(root: Path, remote_url: str, **kw: Any) -> None:
    """Add the remote ``origin`` at ``remote_url``, then commit the project as ``v1``."""
    from mltrail.data import remotes

    remotes.add_remote(root / ".mltrail", "origin", remote_url, **kw)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "v1")
