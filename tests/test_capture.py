"""Code and environment capture: inside a git repository and outside of one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mltrail as mt
from mltrail.tracking import capture, liveness


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


SCRIPT = """\
import mltrail as mt
with mt.start_run() as run:
    print(run.run_id)
# v{}
"""


def test_capture_in_dirty_git_repo(project, tmp_path, monkeypatch):
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "train.py").write_text(SCRIPT.format(1))
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-q", "-m", "v1")
    (tmp_path / "train.py").write_text(SCRIPT.format(2))
    monkeypatch.setenv("MLTRAIL_CAPTURE", "1")
    out = subprocess.run(
        [sys.executable, "train.py"], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    run_id = out.stdout.strip()
    tags = mt.get_run(run_id).data.tags
    assert len(tags[capture.TAG_GIT_COMMIT]) == 40
    assert tags[capture.TAG_GIT_BRANCH] == "main"
    assert tags[capture.TAG_GIT_DIRTY] == "true"
    assert tags[capture.TAG_PYTHON].count(".") == 2
    assert capture.TAG_COMMAND in tags
    client = mt.MltrailClient()
    assert tags[capture.TAG_ENTRY_POINT] == "train.py"
    diff = client.read_artifact(run_id, capture.DIFF_ARTIFACT).decode()
    assert "-# v1" in diff and "+# v2" in diff
    reqs = client.read_artifact(run_id, capture.REQUIREMENTS_ARTIFACT).decode()
    assert "SQLAlchemy==" in reqs or "sqlalchemy==" in reqs.lower()


def test_capture_outside_git(project, tmp_path, monkeypatch):
    (tmp_path / "train.py").write_text(SCRIPT.format(1))
    monkeypatch.setenv("MLTRAIL_CAPTURE", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    out = subprocess.run(
        [sys.executable, "train.py"], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    run_id = out.stdout.strip()
    tags = mt.get_run(run_id).data.tags
    assert capture.TAG_GIT_COMMIT not in tags
    assert capture.TAG_PYTHON in tags
    paths = [a.path for a in mt.MltrailClient().list_artifacts(run_id)]
    assert paths == [capture.REQUIREMENTS_ARTIFACT]


def test_capture_off(project):
    with mt.start_run() as run:
        pass
    # Only the tags that tell whether the run's process lives: no git, command or platform.
    assert set(mt.get_run(run.run_id).data.tags) == set(liveness.TAGS)
