"""``mltrail lineage``: the tree, --json, mermaid and dot output, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltrail.entities import DatasetRef
from mltrail.tracking import capture as cap
from tests.cli.conftest import Invoke, run_cli

RAW = DatasetRef("data/raw", "a1" * 32, "dir", 3000, 3)
PREPARED = DatasetRef("data/prepared.csv", "b2" * 32, "file", 1200)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def project(tmp_path: Path) -> dict[str, str]:
    """raw → prepare → prepared → train (long name, many params) → wine-rf v1 → @production."""
    from mltrail.config import init_project
    from mltrail.tracking.client import MltrailClient

    client = MltrailClient(str(init_project(tmp_path)))
    exp = client.create_experiment("wine")
    prepare = client.create_run(
        exp, run_name="prepare", tags={cap.TAG_GIT_COMMIT: COMMIT, cap.TAG_GIT_DIRTY: "true"}
    ).run_id
    client.log_params(prepare, {"split": 0.2, "seed": 42})
    client.flush()
    client.store.log_run_datasets(prepare, "input", [RAW])
    client.store.log_run_datasets(prepare, "output", [PREPARED])
    client.set_terminated(prepare)
    train = client.create_run(exp, run_name="train-a-random-forest-with-a-long-name").run_id
    client.log_params(train, {f"hyperparameter_{i}": "x" * 30 for i in range(9)})
    client.flush()
    client.store.log_run_datasets(train, "input", [PREPARED])
    folder = tmp_path / "model-folder"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "model.pkl").write_bytes(b"model")
    client.log_artifacts(train, folder, "model")
    version = client.register_model(f"runs:/{train}/model", "wine-rf").version
    client.set_terminated(train)
    client.set_registered_model_alias("wine-rf", "production", version)
    client.close()
    return {"prepare": prepare, "train": train}


def _fits(text: str, width: int = 80) -> None:
    too_long = [line for line in text.splitlines() if len(line) > width]
    assert not too_long, too_long


def test_tree_upstream_from_an_alias(invoke: Invoke, project):
    out = invoke("lineage", "models:/wine-rf@production").stdout
    _fits(out)
    lines = out.splitlines()
    assert lines[0] == "alias wine-rf@production"
    assert "← points at model wine-rf v1" in lines[1]
    assert "← made by run train-a-random-forest-w…" in lines[2]
    assert project["train"][:8] in lines[2]
    assert "params: hyperparameter_0=" in lines[3]
    assert "← read data/prepared.csv  b2b2b2b2b2b2  1.2 KiB" in out
    assert f"← written by run prepare  {project['prepare'][:8]}  commit 0123456 (dirty)" in out
    assert "params: seed=42 split=0.2" in out
    assert "← read data/raw  a1a1a1a1a1a1  3 files, 2.9 KiB" in out
    assert "note:" not in out


def test_tree_downstream_from_a_dataset_path(invoke: Invoke, project):
    out = invoke("lineage", "data/raw", "--down").stdout
    _fits(out)
    assert out.splitlines()[0] == "data/raw  a1a1a1a1a1a1  3 files, 2.9 KiB"
    for expected in (
        "→ read by run prepare",
        "→ wrote data/prepared.csv",
        "→ read by run train-a-random",
        "→ registered as model wine-rf v1",
        "→ alias wine-rf@production",
    ):
        assert expected in out
    assert "←" not in out


def test_a_model_name_alone_is_a_model(invoke: Invoke, project):
    for target in ("wine-rf", "wine-rf@production", "wine-rf/1"):
        out = invoke("lineage", target, "--up").stdout
        assert "← read data/raw" in out, target


def test_depth_limit_is_marked(invoke: Invoke, project):
    out = invoke("lineage", "models:/wine-rf/1", "--up", "--depth", "1").stdout
    assert "data/prepared.csv" in out and "prepare " not in out
    assert "… more" in out
    assert "note: stopped 1 run away" in out


def test_node_cap_is_marked_from_the_graph_not_its_note_text(
    invoke: Invoke, project, monkeypatch: pytest.MonkeyPatch
):
    import mltrail.lineage

    real = mltrail.lineage.lineage
    calls = []

    def spy(target: str, **kwargs):
        calls.append(target)
        graph = real(target, **kwargs)
        graph.notes = [n.upper() for n in graph.notes]  # the CLI must not parse these
        return graph

    # The CLI goes through the API function (flush, then the walk), not a copy of it.
    monkeypatch.setattr(mltrail.lineage, "lineage", spy)
    out = invoke("lineage", "models:/wine-rf/1", "--up", "--max-nodes", "2").stdout
    assert calls == ["models:/wine-rf/1"]
    assert "note: stopped at 2 nodes" in out


def test_a_subfolder_path_is_taken_relative_to_the_project(
    invoke: Invoke, project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "data" / "raw").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "data")
    out = invoke("lineage", "raw@a1a1", "--down", "--depth", "1").stdout
    assert out.startswith("data/raw  a1a1a1a1a1a1")


def test_json_shape(invoke: Invoke, project):
    graph = json.loads(invoke("lineage", "models:/wine-rf@production", "--up", "--json").stdout)
    assert set(graph) == {
        "root",
        "roots",
        "direction",
        "depth",
        "nodes",
        "edges",
        "truncated",
        "notes",
        "capped",
    }
    assert graph["root"] == "alias:wine-rf@production" and graph["direction"] == "up"
    kinds = sorted(n["kind"] for n in graph["nodes"])
    assert kinds == ["alias", "dataset", "dataset", "model_version", "run", "run"]
    run = next(n for n in graph["nodes"] if n["label"] == "prepare")
    assert run["key"] == f"run:{project['prepare']}"
    assert run["attrs"]["git_commit"] == COMMIT
    assert {"src", "dst", "kind"} == set(graph["edges"][0])
    assert {e["kind"] for e in graph["edges"]} == {"alias", "registered", "input", "output"}


def test_mermaid_and_dot(invoke: Invoke, project):
    mermaid = invoke("lineage", "data/raw", "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart LR\n")
    assert '[("data/raw<br/>a1a1a1a1a1a1")]' in mermaid
    assert mermaid.count("-->|") == 5
    assert "-->|registered|" in mermaid
    dot = invoke("lineage", "models:/wine-rf/1", "--up", "--format", "dot").stdout
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert f'"run:{project["train"]}" -> "model:wine-rf/1" [label="registered"];' in dot
    assert "shape=cylinder" in dot


@pytest.mark.parametrize(
    ("target", "message", "hint"),
    [
        ("s3://bucket/x", "'s3://bucket/x' is not a lineage target", "models:/NAME@ALIAS"),
        ("models:/wine-rf/9", "wine-rf", None),
        ("models:/wine-rf@staging", "staging", None),
        ("data/none.csv", "no run recorded dataset 'data/none.csv'", "PATH@HASH"),
        ("nothing@production", "no run recorded dataset 'nothing@production'", "NAME@ALIAS"),
        ("data/raw@ffff", "no recorded version of data/raw", "a1a1a1a1a1a1"),
    ],
)
def test_bad_targets_exit_1_with_error_and_hint(invoke: Invoke, project, target, message, hint):
    result = invoke("lineage", target, code=1)
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "hint: " in result.stderr
    if hint:
        assert hint in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(invoke: Invoke, project):
    assert invoke("lineage", "data/raw", "--depth", "-1", code=2)
    result = invoke("lineage", "data/raw", "--json", "--format", "dot", code=2)
    assert "--json and --format dot" in result.stderr


def test_as_a_user_runs_it(project, tmp_path: Path):
    done = run_cli("lineage", "models:/wine-rf@production", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _fits(done.stdout)
    assert "data/raw" in done.stdout
    done = run_cli("lineage", "nope/x.csv", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("error: no run recorded dataset")
