"""What a run records about its code and environment: git state, command line, Python, packages."""

from __future__ import annotations

import functools
import getpass
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# System tags all start with this prefix; users should not set them by hand.
PREFIX = "mltrail."
TAG_GIT_COMMIT = "mltrail.git.commit"
TAG_GIT_BRANCH = "mltrail.git.branch"
TAG_GIT_DIRTY = "mltrail.git.dirty"
TAG_GIT_REPO = "mltrail.git.repo"
TAG_COMMAND = "mltrail.source.command"
TAG_ENTRY_POINT = "mltrail.source.entry_point"
TAG_PYTHON = "mltrail.python"
TAG_PLATFORM = "mltrail.platform"
TAG_NOTE = "mltrail.note"

#: Artifact folder of system files (the git diff, the package list).
SYSTEM_ARTIFACT_DIR = "_mltrail"
DIFF_ARTIFACT = f"{SYSTEM_ARTIFACT_DIR}/git.diff"
REQUIREMENTS_ARTIFACT = f"{SYSTEM_ARTIFACT_DIR}/requirements.txt"

_GIT_TIMEOUT_S = 10


@dataclass
class Capture:
    """Tags and small text files describing how a run was started."""

    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def current_user() -> str:
    """The OS user name, or 'unknown' where there is none (some containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def capture(cwd: Path | None = None) -> Capture:
    """Collect git state, command line, Python version and installed packages."""
    result = Capture()
    argv = [sys.executable, *sys.argv] if sys.argv and sys.argv[0] else [sys.executable]
    result.tags[TAG_COMMAND] = shlex.join(argv)
    entry = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else ""
    result.tags[TAG_ENTRY_POINT] = entry
    result.tags[TAG_PYTHON] = platform.python_version()
    result.tags[TAG_PLATFORM] = platform.platform(terse=True)
    result.files[REQUIREMENTS_ARTIFACT] = installed_packages()

    repo_dir = cwd or (
        Path(entry).resolve().parent if entry and Path(entry).exists() else Path.cwd()
    )
    git = git_state(repo_dir)
    if git is not None:
        commit, branch, dirty, remote, diff = git
        result.tags[TAG_GIT_COMMIT] = commit
        result.tags[TAG_GIT_BRANCH] = branch
        result.tags[TAG_GIT_DIRTY] = "true" if dirty else "false"
        if remote:
            result.tags[TAG_GIT_REPO] = remote
        if diff:
            result.files[DIFF_ARTIFACT] = diff
    return result


def _git(repo_dir: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(repo_dir: Path) -> tuple[str, str, bool, str, str] | None:
    """(commit, branch, dirty, remote url, diff of uncommitted changes), or None outside git."""
    commit = _git(repo_dir, "rev-parse", "HEAD")
    if commit is None:
        return None
    branch = (_git(repo_dir, "rev-parse", "--abbrev-ref", "HEAD") or "").strip()
    status = _git(repo_dir, "status", "--porcelain", "--untracked-files=no") or ""
    diff = _git(repo_dir, "diff", "HEAD") or "" if status.strip() else ""
    remote = (_git(repo_dir, "config", "--get", "remote.origin.url") or "").strip()
    return commit.strip(), branch, bool(status.strip()), remote, diff


@functools.cache
def installed_packages() -> str:
    """``name==version`` of every installed distribution, sorted; computed once per process."""
    from importlib import metadata

    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return "".join(line + "\n" for _, line in sorted(seen.items()))
