"""Lineage both ways: model → runs → datasets → producing runs, and dataset → runs → models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mltrail
from mltrail.entities import DatasetRef
from mltrail.errors import InvalidInput, NotFound
from mltrail.lineage import Edge, LineageGraph, graph_from_store, lineage
from mltrail.tracking import capture as cap

RAW = DatasetRef("data/raw", "a" * 64, "dir", 3000, 3)
PREPARED = DatasetRef("data/prepared.csv", "b" * 64, "file", 1200)
MLMODEL = b"flavors:\n  python_function:\n    loader_module: mltrail.sklearn\n"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _run(client, name: str, inputs=(), outputs=(), params=None, tags=None) -> str:
    run_id = client.create_run("0", run_name=name, tags=tags).run_id
    if params:
        client.log_params(run_id, params)
    client.flush()
    if inputs:
        client.store.log_run_datasets(run_id, "input", list(inputs))
    if outputs:
        client.store.log_run_datasets(run_id, "output", list(outputs))
    return run_id


def _register(client, tmp_path: Path, run_id: str, name: str = "m") -> int:
    folder = tmp_path / f"model-{run_id}"
    folder.mkdir()
    (folder / "MLmodel").write_bytes(MLMODEL)
    (folder / "model.pkl").write_bytes(run_id.encode())
    client.log_artifacts(run_id, folder, "model")
    return client.register_model(f"runs:/{run_id}/model", name).version


@pytest.fixture
def chain(client, tmp_path: Path) -> dict[str, str]:
    """raw → prepare → prepared → train → m v1 → m@production (and an unrelated run)."""
    prepare = _run(
        client,
        "prepare",
        [RAW],
        [PREPARED],
        {"split": "0.2"},
        {cap.TAG_GIT_COMMIT: COMMIT, cap.TAG_COMMAND: "mltrail repro prepare"},
    )
    client.set_terminated(prepare)
    train = _run(client, "train", [PREPARED], params={"max_depth": 5, "n_estimators": 100})
    client.log_metrics(train, {"accuracy": 0.93})
    version = _register(client, tmp_path, train)
    client.set_terminated(train)
    client.set_registered_model_alias("m", "production", version)
    other = _run(client, "other", [DatasetRef("data/other.csv", "c" * 64, "file", 5)])
    return {"prepare": prepare, "train": train, "other": other}


def _keys(graph: LineageGraph) -> set[str]:
    return set(graph.nodes)


def test_upstream_from_an_alias_reaches_the_raw_data(client, chain):
    graph = lineage("models:/m@production", direction="up", client=client)
    prepare, train = chain["prepare"], chain["train"]
    assert graph.root == "alias:m@production"
    assert _keys(graph) == {
        "alias:m@production",
        "model:m/1",
        f"run:{train}",
        "dataset:data/prepared.csv@" + "b" * 64,
        f"run:{prepare}",
        "dataset:data/raw@" + "a" * 64,
    }
    assert set(graph.edges) == {
        Edge("model:m/1", "alias:m@production", "alias"),
        Edge(f"run:{train}", "model:m/1", "registered"),
        Edge("dataset:data/prepared.csv@" + "b" * 64, f"run:{train}", "input"),
        Edge(f"run:{prepare}", "dataset:data/prepared.csv@" + "b" * 64, "output"),
        Edge("dataset:data/raw@" + "a" * 64, f"run:{prepare}", "input"),
    }
    run = graph.node(f"run:{prepare}")
    assert run.kind == "run" and run.label == "prepare"
    assert run.attrs["git_commit"] == COMMIT
    assert run.attrs["command"] == "mltrail repro prepare"
    assert run.attrs["params"] == {"split": "0.2"}
    assert run.attrs["experiment_name"] == "Default"
    assert run.attrs["status"] == "FINISHED"
    train_node = graph.node(f"run:{train}")
    assert train_node.attrs["params"] == {"max_depth": "5", "n_estimators": "100"}
    assert train_node.attrs["metrics"] == {"accuracy": 0.93}
    raw = graph.node("dataset:data/raw@" + "a" * 64)
    assert raw.attrs == {"path": "data/raw", "hash": "a" * 64, "kind": "dir", "size": 3000,
                         "nfiles": 3}  # fmt: skip
    mv = graph.node("model:m/1")
    assert (mv.attrs["name"], mv.attrs["version"], mv.attrs["run_id"]) == ("m", 1, train)
    assert [n.key for n in graph.upstream_of("model:m/1")] == [f"run:{train}"]
    assert {n.label for n in graph.datasets()} == {
        "data/raw@" + "a" * 12,
        "data/prepared.csv@" + "b" * 12,
    }
    assert len(graph.runs()) == 2 and graph.notes == [] and graph.truncated == []
    # JSON-ready.
    d = json.loads(json.dumps(graph.to_dict()))
    assert d["root"] == "alias:m@production" and d["direction"] == "up"
    assert {"src", "dst", "kind"} == set(d["edges"][0])


def test_downstream_from_the_raw_version_reaches_the_alias(client, chain):
    graph = lineage("data/raw@aaaa", direction="down", client=client)
    assert graph.root == "dataset:data/raw@" + "a" * 64
    assert _keys(graph) == {
        "dataset:data/raw@" + "a" * 64,
        f"run:{chain['prepare']}",
        "dataset:data/prepared.csv@" + "b" * 64,
        f"run:{chain['train']}",
        "model:m/1",
        "alias:m@production",
    }
    assert Edge("model:m/1", "alias:m@production", "alias") in graph.edges
    assert [n.key for n in graph.downstream_of("model:m/1")] == ["alias:m@production"]


def test_both_directions_from_the_middle(client, chain):
    graph = lineage("data/prepared.csv", client=client)
    assert graph.direction == "both"
    assert _keys(graph) == {
        "dataset:data/raw@" + "a" * 64,
        f"run:{chain['prepare']}",
        "dataset:data/prepared.csv@" + "b" * 64,
        f"run:{chain['train']}",
        "model:m/1",
        "alias:m@production",
    }
    # Down from the run only: the run's outputs, not its inputs' other readers.
    down = lineage(f"runs:/{chain['prepare']}", direction="down", client=client)
    assert f"run:{chain['train']}" in down.nodes
    assert "dataset:data/raw@" + "a" * 64 not in down.nodes


def test_every_target_form(client, chain):
    train = chain["train"]
    for target in (
        "models:/m/1",
        "models:/m/latest",
        f"runs:/{train}",
        f"runs:/{train[:8]}/model",
        train,
        train[:6].upper(),
    ):
        graph = lineage(target, direction="up", client=client)
        assert f"run:{train}" in graph.nodes, target
        assert "dataset:data/raw@" + "a" * 64 in graph.nodes, target
    # Model shorthands, when no dataset was recorded under that path.
    assert lineage("m@production", client=client).root == "alias:m@production"
    assert lineage("m", client=client).root == "model:m/1"
    assert lineage("m/1", client=client).root == "model:m/1"
    client.transition_model_version_stage("m", 1, "Production")
    assert lineage("models:/m/production", client=client).root == "model:m/1"
    # A full hash, and a path with a trailing slash or ./ in front.
    for target in ("data/raw@" + "a" * 64, "./data/raw/"):
        assert lineage(target, direction="up", client=client).root.startswith("dataset:data/raw@")


def test_a_path_names_all_its_versions_newest_first(client, chain):
    newer = DatasetRef("data/raw", "d" * 64, "dir", 4000, 4)
    _run(client, "prepare-again", [newer], [PREPARED])
    graph = lineage("data/raw", direction="down", client=client)
    assert graph.roots == ["dataset:data/raw@" + "d" * 64, "dataset:data/raw@" + "a" * 64]
    assert graph.root == graph.roots[0]
    # Both prepare runs wrote the prepared version, so both lead to the model.
    assert "alias:m@production" in graph.nodes


def test_depth_counts_runs(client, chain):
    one = lineage("models:/m@production", direction="up", depth=1, client=client)
    assert _keys(one) == {
        "alias:m@production",
        "model:m/1",
        f"run:{chain['train']}",
        "dataset:data/prepared.csv@" + "b" * 64,
    }
    assert one.truncated == ["dataset:data/prepared.csv@" + "b" * 64]
    assert one.notes and "stopped 1 run away" in one.notes[0]
    zero = lineage("models:/m/1", direction="up", depth=0, client=client)
    assert _keys(zero) == {"model:m/1"} and zero.truncated == ["model:m/1"]
    # Two runs away reaches everything, with nothing left over.
    assert lineage("models:/m/1", direction="up", depth=2, client=client).truncated == []


def test_node_cap_stops_the_walk_with_a_note(client, chain):
    graph = lineage("models:/m@production", direction="up", max_nodes=3, client=client)
    assert len(graph.nodes) == 3
    assert graph.truncated and "stopped at 3 nodes" in graph.notes[0]
    assert graph.capped and graph.to_dict()["capped"] is True
    one = lineage("models:/m@production", direction="up", depth=1, client=client)
    assert one.truncated and not one.capped and one.to_dict()["capped"] is False


def test_a_run_that_reads_and_writes_the_same_version_terminates(client):
    same = DatasetRef("data/loop.csv", "e" * 64, "file", 1)
    run = _run(client, "in-place", [same], [same])
    for direction in ("up", "down", "both"):
        graph = lineage("data/loop.csv", direction=direction, client=client)
        assert _keys(graph) == {f"run:{run}", "dataset:data/loop.csv@" + "e" * 64}
    graph = lineage(run, client=client)
    assert set(graph.edges) == {
        Edge("dataset:data/loop.csv@" + "e" * 64, f"run:{run}", "input"),
        Edge(f"run:{run}", "dataset:data/loop.csv@" + "e" * 64, "output"),
    }


def test_a_long_pipeline_chain_is_followed_to_its_start(client):
    refs = [DatasetRef(f"data/s{i}.csv", f"{i:064x}", "file", i) for i in range(8)]
    runs = [_run(client, f"stage{i}", [refs[i]], [refs[i + 1]]) for i in range(7)]
    graph = lineage(f"data/s7.csv@{refs[7].hash}", direction="up", client=client)
    assert len(graph.runs()) == 7 and f"run:{runs[0]}" in graph.nodes
    assert len(graph.datasets()) == 8


@pytest.mark.parametrize(
    ("target", "error", "match"),
    [
        ("", InvalidInput, "is not a lineage target: it is empty"),
        ("s3://bucket/x", InvalidInput, "scheme is neither models:/ nor runs:/"),
        ("models:/m", InvalidInput, "names no version"),
        ("models:/m/Bogus", InvalidInput, "not a version number"),
        ("models:/m@nope", NotFound, "nope"),
        ("models:/missing/1", NotFound, "missing"),
        ("models:/m/7", NotFound, "7"),
        ("models:/m/Staging", NotFound, "no version in stage Staging"),
        ("m@staging", NotFound, "staging"),
        ("m/x/y", NotFound, "no run recorded dataset 'm/x/y'"),
        ("runs:/", InvalidInput, "names no run"),
        ("runs:/ffffffff", NotFound, "no run id starts with 'ffffffff'"),
        ("ffffffff", NotFound, "neither a run id"),
        ("data/nothing.csv", NotFound, "no run recorded dataset 'data/nothing.csv'"),
        ("data/raw@ffff", NotFound, "no recorded version of data/raw"),
        ("../outside.csv", InvalidInput, "relative to the project root"),
        ("/abs/path.csv", InvalidInput, "relative to the project root"),
    ],
)
def test_bad_targets(client, chain, target, error, match):
    with pytest.raises(error, match=match) as caught:
        lineage(target, client=client)
    assert caught.value.hint, target


def test_an_ambiguous_hash_prefix_is_refused(client, chain):
    _run(client, "x", [DatasetRef("data/raw", "a" * 63 + "b", "dir", 1, 1)])
    with pytest.raises(InvalidInput, match="ambiguous"):
        lineage("data/raw@aaaa", client=client)


def test_bad_direction_depth_and_cap(client, chain):
    with pytest.raises(InvalidInput, match="direction 'sideways'"):
        lineage("models:/m/1", direction="sideways", client=client)
    with pytest.raises(InvalidInput, match="depth -1"):
        lineage("models:/m/1", depth=-1, client=client)
    with pytest.raises(InvalidInput, match="max_nodes 0"):
        lineage("models:/m/1", max_nodes=0, client=client)


def test_graph_from_store_and_the_lazy_attribute(client, chain):
    graph = graph_from_store(client.store, "models:/m@production", direction="up")
    assert "dataset:data/raw@" + "a" * 64 in graph.nodes
    assert mltrail.lineage.lineage is lineage


def test_the_cap_bounds_store_calls_too(client, monkeypatch):
    popular = DatasetRef("data/popular.csv", "f" * 64, "file", 1)
    for i in range(12):
        _run(client, f"reader-{i}", [popular])
    calls = []
    get_run = client.store.get_run
    monkeypatch.setattr(client.store, "get_run", lambda rid: calls.append(rid) or get_run(rid))
    graph = lineage("data/popular.csv", direction="down", max_nodes=4, client=client)
    assert len(graph.runs()) == 3 and len(calls) == 3
    assert graph.truncated == ["dataset:data/popular.csv@" + "f" * 64]
    calls.clear()
    graph = lineage("data/popular.csv", direction="down", depth=0, client=client)
    assert list(graph.nodes) == ["dataset:data/popular.csv@" + "f" * 64] and calls == []
