"""End to end: examples/wine_pipeline through the CLI, as its README runs it.

A copy of the example in a fresh Git repository: ``mltrail repro`` runs and records every stage and
registers ``wine-rf@production``; a second repro executes nothing; ``-S train.max_depth=8`` re-runs
train, evaluate and register only; ``mltrail lineage`` walks from the alias to the raw data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("pandas")

pytestmark = pytest.mark.slow  # five stage interpreters importing scikit-learn: ~15-30 s

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "wine_pipeline"
STAGES = ["prepare", "train", "evaluate", "register"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    # The stages' `python` must be this interpreter (the one mltrail is installed in).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        GIT_AUTHOR_NAME="ann",
        GIT_AUTHOR_EMAIL="ann@example.invalid",
        GIT_COMMITTER_NAME="ann",
        GIT_COMMITTER_EMAIL="ann@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def run(cwd: Path, *args: str) -> str:
    """Run a command in the project; return its stdout, failing the test on a non-zero exit."""
    done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def mltrail(cwd: Path, *args: str) -> str:
    """Run the mltrail CLI as a subprocess."""
    return run(cwd, sys.executable, "-m", "mltrail", *args)


def stage_runs(root: Path) -> list:
    """Return the pipeline's runs, newest first."""
    from mltrail import MltrailClient

    client = MltrailClient(str(root), create=False)
    try:
        exp = client.get_experiment_by_name("wine-pipeline")
        return [] if exp is None else list(client.search_runs([exp.experiment_id]))
    finally:
        client.close()


def production(root: Path):
    """Return the model version the production alias points at."""
    from mltrail import MltrailClient

    client = MltrailClient(str(root), create=False)
    try:
        return client.get_model_version_by_alias("wine-rf", "production")
    finally:
        client.close()


def ran(stdout: str) -> list[str]:
    """Return the stages a repro says it executed."""
    return [s for s in STAGES if f"Running stage '{s}'" in stdout]


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example copied into a fresh Git repository, mltrail initialized, raw data versioned."""
    root = tmp_path_factory.mktemp("wine") / "wine"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__"))
    run(root, "git", "init", "-q")
    mltrail(root, "init")
    run(root, sys.executable, "src/get_data.py")
    mltrail(root, "data", "add", "data/raw.csv")
    run(root, "git", "add", ".")
    run(root, "git", "commit", "-qm", "wine pipeline")
    yield root


@pytest.fixture(scope="module")
def first(wine: Path) -> str:
    """The output of the first repro."""
    return mltrail(wine, "repro")


def test_first_repro_runs_and_records_every_stage(wine: Path, first: str) -> None:
    assert ran(first) == STAGES
    assert "Done: 4 ran" in first
    runs = stage_runs(wine)
    assert sorted(r.data.tags["mltrail.stage"] for r in runs) == sorted(STAGES)
    assert all(r.info.status == "FINISHED" for r in runs)
    evaluate = next(r for r in runs if r.data.tags["mltrail.stage"] == "evaluate")
    assert 0.5 < evaluate.data.metrics["accuracy"] <= 1.0
    for path in ("data/prepared.trail", "models/rf.trail", "metrics.json", "mltrail.lock"):
        assert (wine / path).exists(), path


def test_model_registered_with_the_alias(wine: Path, first: str) -> None:
    version = production(wine)
    train = next(r for r in stage_runs(wine) if r.data.tags["mltrail.stage"] == "train")
    assert version.version == 1
    assert version.run_id == train.info.run_id  # the version is the train stage's output
    record = json.loads((wine / "models/registered.json").read_text())
    assert record == {**record, "name": "wine-rf", "version": 1, "alias": "production"}


def test_second_repro_is_a_no_op(wine: Path, first: str) -> None:
    before = len(stage_runs(wine))
    lock = (wine / "mltrail.lock").read_text()
    out = mltrail(wine, "repro")
    assert ran(out) == []
    assert "Pipeline is up to date (4 stage(s))." in out
    assert len(stage_runs(wine)) == before
    assert (wine / "mltrail.lock").read_text() == lock


def test_changed_param_reruns_train_evaluate_register(wine: Path, first: str) -> None:
    before = len(stage_runs(wine))
    out = mltrail(wine, "repro", "-S", "train.max_depth=8")
    assert ran(out) == ["train", "evaluate", "register"]
    assert "Stage 'prepare' is up to date" in out
    runs = stage_runs(wine)
    assert len(runs) == before + 3
    newest = sorted(r.data.tags["mltrail.stage"] for r in runs[:3])
    assert newest == ["evaluate", "register", "train"]
    train = next(r for r in runs if r.data.tags["mltrail.stage"] == "train")
    assert train.data.params["train.max_depth"] == "8"
    assert production(wine).version == 2


def test_lineage_reaches_the_raw_data_through_prepare(wine: Path, first: str) -> None:
    raw_hash = (wine / "data/raw.csv.trail").read_text().split("hash:")[1].split()[0]
    graph = json.loads(mltrail(wine, "lineage", "models:/wine-rf@production", "--json", "--up"))
    nodes = {n["key"]: n for n in graph["nodes"]}
    raw = f"dataset:data/raw.csv@{raw_hash}"
    assert raw in nodes
    # Follow the edges backwards from the alias: alias <- model <- train <- data/prepared <-
    # prepare <- data/raw.csv.
    into: dict[str, list[str]] = {}
    for e in graph["edges"]:
        into.setdefault(e["dst"], []).append(e["src"])
    path, seen, todo = {}, {graph["root"]}, [graph["root"]]
    while todo:
        key = todo.pop()
        for src in into.get(key, []):
            if src not in seen:
                seen.add(src)
                path[src] = key
                todo.append(src)
    assert raw in seen
    chain = [raw]
    while chain[-1] != graph["root"]:
        chain.append(path[chain[-1]])
    # A dataset's label is PATH@HASH12; keep the path.
    labels = [nodes[k]["kind"] + ":" + nodes[k]["label"].split("@")[0] for k in chain]
    assert labels[:4] == [
        "dataset:data/raw.csv",
        "run:prepare",
        "dataset:data/prepared",
        "run:train",
    ]
    assert labels[-2:] == ["model_version:wine-rf v2", "alias:wine-rf"]
