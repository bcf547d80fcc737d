"""`mltrail reproduce`: a run re-run on its commit and input data in a temp worktree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import mltrail
from mltrail.cli import cli
from mltrail.config import init_project
from mltrail.tracking import capture as cap
from mltrail.tracking.client import MltrailClient
from tests.data import git, settle, write

SRC = Path(mltrail.__file__).resolve().parent.parent

# Reads an input dataset, writes an output folder, records both on a run (capture on).
SCRIPT = """\
import os, sys
from pathlib import Path
import mltrail as mt
import mltrail.data

rows = Path("data/raw.csv").read_text().splitlines()
out = Path("out")
out.mkdir(exist_ok=True)
salt = os.urandom(8).hex() if "--random" in sys.argv else ""
(out / "model.txt").write_text(f"{len(rows)} rows {salt}\\n")
mltrail.data.add(["out"])
with mt.start_run():
    mt.log_input("data/raw.csv")
    mt.log_output("out")
    print("trained on", len(rows), "rows")
"""


def _run_script(root: Path, *args: str) -> str:
    """Run train.py as a user would (capture on); return the id of the run it logged."""
    env = {**os.environ, "MLTRAIL_CAPTURE": "1", "PYTHONPATH": str(SRC)}
    env.pop("MLTRAIL_TRACKING_URI", None)
    subprocess.run(
        [sys.executable, "train.py", *args], cwd=root, env=env, check=True, capture_output=True
    )
    client = MltrailClient(str(root / ".mltrail"), create=False)
    try:
        runs = client.search_runs(["0"], order_by="attributes.start_time DESC")
        return runs[0].info.run_id
    finally:
        client.close()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Git repo holding a project with one tracked input and a committed training script."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    init_project(root)
    monkeypatch.chdir(root)
    settle(write(root / "data" / "raw.csv", "a,b\n1,2\n3,4\n"))
    mltrail.data.add(["data/raw.csv"])
    write(root / "train.py", SCRIPT)
    write(root / ".gitignore", "/out\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "train")
    return root


def invoke(*args: str, code: int | None = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), prog_name="mltrail")
    if code is not None:
        assert result.exit_code == code, f"{result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


def _worktrees(root: Path) -> list[str]:
    return [
        line for line in git(root, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]  # fmt: skip


def test_a_deterministic_run_reproduces(repo: Path, monkeypatch: pytest.MonkeyPatch):
    run_id = _run_script(repo)
    monkeypatch.setenv("MLTRAIL_CAPTURE", "1")  # the re-run captures its code state too
    result = invoke("reproduce", run_id[:8])
    assert "trained on 3 rows" in result.stderr  # the command's output, on stderr
    out = result.stdout
    assert f"Run {run_id} at commit " in out
    assert "  input    data/raw.csv (" in out
    assert "  same      out (" in out
    assert "All 1 outputs hash the same." in out
    assert len(_worktrees(repo)) == 1  # the temp worktree is gone
    client = MltrailClient(str(repo / ".mltrail"), create=False)
    try:
        [again] = [line for line in out.splitlines() if line.startswith("Re-run recorded as run")]
        new_id = again.split()[-1].rstrip(".")
        tags = client.get_run(new_id).data.tags
        assert tags["mltrail.reproduce.of"] == run_id
        # The worktree is clean at the run's commit: restored data and .mltrail/ are ignored.
        assert tags[cap.TAG_GIT_DIRTY] == "false"
        assert tags[cap.TAG_GIT_COMMIT] == client.get_run(run_id).data.tags[cap.TAG_GIT_COMMIT]
    finally:
        client.close()


def test_a_nondeterministic_run_is_reported_different(repo: Path):
    run_id = _run_script(repo, "--random")
    result = invoke("reproduce", run_id, "--json", "--no-record", code=1)
    data = json.loads(result.stdout)
    [o] = data["outputs"]
    assert o["path"] == "out" and o["result"] == "different"
    assert o["reproduced"] != o["recorded"] and len(o["reproduced"]) == 64
    assert data["all_match"] is False and data["recorded_runs"] == []
    text = invoke("reproduce", run_id, "--no-record", code=1).stdout
    assert f"  different out ({o['recorded'][:12]} -> " in text
    assert "1 of 1 outputs differ." in text


def test_keep_leaves_the_worktree(repo: Path):
    run_id = _run_script(repo)
    data = json.loads(invoke("reproduce", run_id, "--keep", "--json").stdout)
    wt = Path(data["worktree"])
    assert (wt / "train.py").exists() and (wt / "data" / "raw.csv").read_text().startswith("a,b")
    assert len(_worktrees(repo)) == 2
    git(repo, "worktree", "remove", "--force", str(wt))
    assert not wt.exists()  # nothing else was left in the temp folder


def test_inputs_come_from_the_remote_when_not_cached(repo: Path, tmp_path: Path):
    run_id = _run_script(repo)
    invoke("remote", "add", "store", str(tmp_path / "remote"))
    invoke("data", "push")
    raw = mltrail.data.read_pointer(repo / "data" / "raw.csv.trail").hash
    obj = repo / ".mltrail" / "objects" / raw[:2] / raw[2:]
    obj.chmod(0o644)
    obj.unlink()
    out = invoke("reproduce", run_id).stdout
    assert "fetched  1 object(s)" in out and "  same      out (" in out


def test_a_missing_input_object_is_named(repo: Path):
    run_id = _run_script(repo)
    raw = mltrail.data.read_pointer(repo / "data" / "raw.csv.trail").hash
    obj = repo / ".mltrail" / "objects" / raw[:2] / raw[2:]
    obj.chmod(0o644)
    obj.unlink()
    err = invoke("reproduce", run_id, code=1).stderr
    assert f"input data/raw.csv (object {raw[:12]}) is not in the local cache" in err
    assert "no default remote" in err and "hint: " in err
    (repo.parent / "empty").mkdir()
    invoke("remote", "add", "store", str(repo.parent / "empty"))
    err = invoke("reproduce", run_id, code=1).stderr
    assert f"fetched 0 objects from store ({repo.parent / 'empty'})" in err
    assert f"missing on the remote 'store': data/raw.csv (object {raw[:12]})" in err
    assert "hint: The remote lacks them: run `mltrail data push`" in err
    assert len(_worktrees(repo)) == 1


def _fake_run(repo: Path, tags: dict[str, str]) -> str:
    client = MltrailClient(str(repo / ".mltrail"), create=False)
    try:
        return client.create_run("0", tags=tags).info.run_id
    finally:
        client.close()


def test_refusals_say_what_is_missing(repo: Path):
    head = git(repo, "rev-parse", "HEAD")
    cmd = f"{sys.executable} train.py"
    no_commit = _fake_run(repo, {cap.TAG_COMMAND: cmd})
    err = invoke("reproduce", no_commit, code=1).stderr
    assert f"run {no_commit} has no recorded Git commit" in err and "hint:" in err

    gone = "0123456789abcdef0123456789abcdef01234567"
    lost = _fake_run(repo, {cap.TAG_GIT_COMMIT: gone, cap.TAG_COMMAND: cmd})
    err = invoke("reproduce", lost, code=1).stderr
    assert f"commit {gone} of run {lost} is not in this repository" in err

    no_cmd = _fake_run(repo, {cap.TAG_GIT_COMMIT: head, cap.TAG_GIT_DIRTY: "false"})
    err = invoke("reproduce", no_cmd, code=1).stderr
    assert f"run {no_cmd} recorded no command" in err

    dirty = _fake_run(repo, {cap.TAG_GIT_COMMIT: head, cap.TAG_GIT_DIRTY: "true"})
    err = invoke("reproduce", dirty, code=1).stderr
    assert "uncommitted changes" in err and "--allow-dirty" in err
    assert "Traceback" not in err
    assert len(_worktrees(repo)) == 1


def test_allow_dirty_applies_the_recorded_diff(repo: Path):
    (repo / "train.py").write_text(SCRIPT.replace('f"{len(rows)} rows', 'f"{len(rows)} lines'))
    run_id = _run_script(repo)
    client = MltrailClient(str(repo / ".mltrail"), create=False)
    try:
        assert client.get_run(run_id).data.tags[cap.TAG_GIT_DIRTY] == "true"
    finally:
        client.close()
    invoke("reproduce", run_id, code=1)
    out = invoke("reproduce", run_id, "--allow-dirty").stdout
    assert "applied  the run's recorded uncommitted changes" in out
    assert "All 1 outputs hash the same." in out


def test_a_failing_command_is_an_error_and_cleans_up(repo: Path):
    write(repo / "train.py", "print('loading'); raise SystemExit('boom')\n")
    git(repo, "commit", "-qam", "break")
    tags = {
        cap.TAG_GIT_COMMIT: git(repo, "rev-parse", "HEAD"),
        cap.TAG_COMMAND: f"{sys.executable} train.py",
        cap.TAG_ENTRY_POINT: "train.py",
    }
    run_id = _fake_run(repo, tags)
    result = invoke("reproduce", run_id, code=1)
    assert "boom" in result.stderr
    assert "exited with status 1" in result.stderr and "--keep" in result.stderr
    assert len(_worktrees(repo)) == 1


def test_run_tags_from_the_environment(repo: Path, monkeypatch: pytest.MonkeyPatch):
    import mltrail as mt
    from mltrail.errors import InvalidInput

    monkeypatch.setenv("MLTRAIL_RUN_TAGS", '{"mltrail.reproduce.of": "abc"}')
    with mt.start_run(tags={"team": "ml"}) as run:
        pass
    tags = mt.get_run(run.run_id).data.tags
    assert tags["mltrail.reproduce.of"] == "abc" and tags["team"] == "ml"
    monkeypatch.setenv("MLTRAIL_RUN_TAGS", "[1]")
    with pytest.raises(InvalidInput, match="MLTRAIL_RUN_TAGS is not a JSON object"):
        mt.start_run()


PREPARE = """\
import json
from pathlib import Path
import yaml

factor = yaml.safe_load(Path("params.yaml").read_text())["prep"]["factor"]
rows = Path("data/raw.csv").read_text().splitlines()
Path("data/prepared.txt").write_text("\\n".join(rows * factor) + "\\n")
Path("metrics.json").write_text(json.dumps({"rows": len(rows) * factor}))
"""


def _pipeline(repo: Path) -> None:
    write(repo / "prepare.py", PREPARE)
    write(repo / "params.yaml", "prep:\n  factor: 2\n")
    write(
        repo / "mltrail.yaml",
        "stages:\n  prepare:\n"
        f"    cmd: {sys.executable} prepare.py\n"
        "    deps: [prepare.py, data/raw.csv]\n"
        "    params: [prep.factor]\n"
        "    outs: [data/prepared.txt]\n"
        "    metrics: [metrics.json]\n",
    )
    write(repo / "data" / ".gitignore", "/raw.csv\n/prepared.txt\n")
    write(repo / ".gitignore", "/out\n/metrics.json\n/mltrail.lock\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pipeline")


def _stage_run(repo: Path) -> str:
    client = MltrailClient(str(repo / ".mltrail"), create=False)
    try:
        exp = client.get_experiment_by_name(repo.name)
        assert exp is not None
        runs = client.search_runs([exp.experiment_id], order_by="attributes.start_time DESC")
        assert runs[0].data.tags["mltrail.stage"] == "prepare"
        return runs[0].info.run_id
    finally:
        client.close()


def test_a_pipeline_stage_run_is_rerun_with_its_stage_command(
    repo: Path, monkeypatch: pytest.MonkeyPatch
):
    from mltrail.pipeline.runner import repro

    monkeypatch.setenv("MLTRAIL_CAPTURE", "1")
    _pipeline(repo)
    repro(start=repo)
    run_id = _stage_run(repo)
    data = json.loads(invoke("reproduce", run_id, "--json").stdout)
    assert data["shell"] is True and data["command"] == [f"{sys.executable} prepare.py"]
    assert {o["path"]: o["result"] for o in data["outputs"]} == {
        "data/prepared.txt": "same",
        "metrics.json": "same",
    }
    assert data["all_match"] is True

    # An experiment with -S leaves params.yaml changed: reproduced with its recorded diff.
    repro(start=repo, overrides=["prep.factor=3"])
    run_id = _stage_run(repo)
    invoke("reproduce", run_id, code=1)  # refused: uncommitted changes
    data = json.loads(invoke("reproduce", run_id, "--allow-dirty", "--json").stdout)
    assert data["dirty_applied"] is True and data["all_match"] is True
