"""`mltrail data` commands, in-process and (once) as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from mltrail.config import init_project
from tests.cli.conftest import Invoke, run_cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLTRAIL_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLTRAIL_OBJECTS", raising=False)
    init_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "customers.csv").write_text("id,name\n1,ann\n")
    for i in range(3):
        (data / "images" / f"{i}.png").write_bytes(bytes([i]) * 100)
    then = time.time() - 10
    for f in [data / "customers.csv", *(data / "images").iterdir()]:
        os.utime(f, (then, then))
    return tmp_path


def test_add_status_checkout(project: Path, invoke: Invoke):
    out = invoke("data", "add", "data/customers.csv", "data/images").stdout
    assert "Added data/customers.csv (14 B, " in out
    assert "Added data/images (3 files, 300 B, " in out
    assert "git add data/customers.csv.trail data/images.trail data/.gitignore" in out
    assert "Unchanged data/images" in invoke("data", "add", "data/images").stdout
    assert invoke("data", "status").stdout == "Data is up to date (2 datasets).\n"

    (project / "data" / "images" / "0.png").write_bytes(b"changed")
    (project / "data" / "customers.csv").unlink()
    out = invoke("data", "status").stdout
    assert "  deleted:       data/customers.csv\n" in out
    assert "  modified:      data/images (1 modified)\n" in out
    assert "      modified: data/images/0.png\n" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    rows = json.loads(invoke("data", "status", "--json").stdout)
    assert [(r["path"], r["state"]) for r in rows] == [
        ("data/customers.csv", "deleted"),
        ("data/images", "modified"),
    ]
    assert rows[1]["modified"] == ["0.png"]

    result = invoke("data", "checkout", code=1)
    assert "error: checkout would overwrite changes" in result.stderr
    assert "data/images/0.png" in result.stderr and "--force" in result.stderr
    out = invoke("data", "checkout", "--force", "--link", "copy").stdout
    assert "Checked out data/customers.csv: 1 file (1 copy)" in out
    assert "Checked out data/images: 1 file (1 copy)" in out
    assert (project / "data" / "images" / "0.png").read_bytes() == bytes([0]) * 100
    assert "Up to date data/images" in invoke("data", "checkout", "data/images").stdout
    assert "Nothing to unprotect." in invoke("data", "unprotect", "data/images").stdout


def test_errors_go_through_the_cli_error_path(project: Path, invoke: Invoke, tmp_path_factory):
    outside = tmp_path_factory.mktemp("out") / "x.csv"
    outside.write_text("x")
    result = invoke("data", "add", str(outside), code=1)
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and "outside the project" in result.stderr
    assert "hint: " in result.stderr
    result = invoke("data", "status", "data/customers.csv", code=1)
    assert "not tracked" in result.stderr
    (project / "data" / "x.trail").write_text("version: 1\nkind: file\nhash: abc\nsize: 1\n")
    result = invoke("data", "status", code=1)
    assert "x.trail" in result.stderr and "not 64 lowercase hex" in result.stderr
    invoke("data", "add", code=2)  # PATH is required


def test_empty_project(project: Path, invoke: Invoke):
    assert "No tracked data" in invoke("data", "status").stdout
    assert invoke("data", "status", "--json").stdout.strip() == "[]"


def test_status_lists_at_most_ten_files(project: Path, invoke: Invoke):
    invoke("data", "add", "data/images")
    for i in range(15):
        (project / "data" / "images" / f"new{i:02}.png").write_text("n")
    out = invoke("data", "status").stdout
    assert "(15 added)" in out and "… and 5 more (see --json)" in out


@pytest.mark.slow
def test_end_to_end_in_a_subprocess(project: Path):
    result = run_cli("data", "add", "data/images", cwd=project)
    assert result.returncode == 0, result.stderr
    shutil.rmtree(project / "data" / "images")
    result = run_cli("data", "status", "--json", cwd=project)
    assert json.loads(result.stdout)[0]["state"] == "deleted"
    result = run_cli("data", "checkout", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "Checked out data/images: 3 files" in result.stdout
    for i in range(3):
        assert (project / "data" / "images" / f"{i}.png").read_bytes() == bytes([i]) * 100
    result = run_cli("data", "status", cwd=project)
    assert result.stdout == "Data is up to date (1 dataset).\n"


def test_remote_push_pull_commands(project: Path, invoke: Invoke, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    assert "No remotes" in invoke("remote", "list").stdout
    invoke("data", "push", code=1)
    assert invoke("remote", "add", "origin", str(remote)).stdout == (
        f"Added remote origin -> {remote} (default)\n"
    )
    invoke("remote", "add", "backup", "s3://bucket/x", "--endpoint-url", "http://127.0.0.1:1")
    assert invoke("remote", "list").stdout.splitlines() == [
        "  backup       s3://bucket/x  (endpoint http://127.0.0.1:1)",
        f"* origin       {remote}",
    ]
    assert [r["name"] for r in json.loads(invoke("remote", "list", "--json").stdout)] == [
        "backup",
        "origin",
    ]
    err = invoke("remote", "add", "origin", "/x", code=1).stderr
    assert "error: remote 'origin' already exists" in err and "--force" in err
    invoke("data", "add", "data/customers.csv", "data/images")
    out = invoke("data", "push").stdout
    assert out == f"Pushed 5 objects (599 B) for 2 datasets (origin: {remote}); 0 already there\n"
    assert json.loads(invoke("data", "push", "--json").stdout)["present"] == 5
    shutil.rmtree(project / ".mltrail" / "objects")
    shutil.rmtree(project / "data" / "images")
    out = invoke("data", "pull", "data/images").stdout
    # Counted as push counts: the 3 files and the folder's listing.
    assert "Fetched 4 objects (585 B) for 1 dataset" in out
    assert "Checked out data/images: 3 files" in out
    out = invoke("data", "fetch", "--json").stdout
    assert json.loads(out)["copied"] == 1
    invoke("remote", "default", "backup")
    assert invoke("remote", "list").stdout.startswith("* backup")
    invoke("remote", "remove", "backup")
    err = invoke("data", "push", "-r", "backup", code=1).stderr
    assert "no remote named 'backup' (configured: origin)" in err


def test_checkout_copies_by_default_and_warns_root_about_hardlinks(project: Path, invoke: Invoke):
    invoke("data", "add", "data/images")
    shutil.rmtree(project / "data" / "images")
    result = invoke("data", "checkout")
    assert "hardlink" not in result.stdout and "warning:" not in result.stderr
    shutil.rmtree(project / "data" / "images")
    result = invoke("data", "checkout", "--link", "hardlink")
    assert "Checked out data/images: 3 files (3 hardlink)" in result.stdout
    if os.geteuid() == 0:
        assert "warning: data/images: 3 file(s) are hardlinks into the cache" in result.stderr
        assert "mltrail data unprotect PATH" in result.stderr
    else:
        assert "warning:" not in result.stderr
