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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("pandas")

# Five stage interpreters importing scikit-learn, several times over: a minute or more.
pytestmark = [pytest.mark.slow, pytest.mark.long]

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


@dataclass
class Step:
    """What one repro printed, and the store and files right after it."""

    stdout: str
    runs: list
    production: Any
    lock: str
    registered: dict


@pytest.fixture(scope="module")
def flow(wine: Path) -> dict[str, Step]:
    """The README's repros in order, each step snapshotted (tests only read them: xdist-safe)."""
    steps = {}
    for name, args in (("first", ()), ("again", ()), ("depth8", ("-S", "train.max_depth=8"))):
        out = mltrail(wine, "repro", *args)
        steps[name] = Step(
            out,
            stage_runs(wine),
            production(wine),
            (wine / "mltrail.lock").read_text(),
            json.loads((wine / "models/registered.json").read_text()),
        )
    return steps


def by_stage(runs: list, stage: str) -> list:
    """Return the runs of one stage, newest first."""
    return [r for r in runs if r.data.tags["mltrail.stage"] == stage]


def test_first_repro_runs_and_records_every_stage(wine: Path, flow: dict[str, Step]) -> None:
    first = flow["first"]
    assert ran(first.stdout) == STAGES
    assert "Done: 4 ran" in first.stdout
    assert sorted(r.data.tags["mltrail.stage"] for r in first.runs) == sorted(STAGES)
    assert all(r.info.status == "FINISHED" for r in first.runs)
    evaluate = by_stage(first.runs, "evaluate")[0]
    assert 0.5 < evaluate.data.metrics["accuracy"] <= 1.0
    for path in ("data/prepared.trail", "models/rf.trail", "metrics.json", "mltrail.lock"):
        assert (wine / path).exists(), path


def test_model_registered_with_the_alias(flow: dict[str, Step]) -> None:
    first = flow["first"]
    assert first.production.version == 1
    # The version is the train stage's output, tied to that stage's run.
    assert first.production.run_id == by_stage(first.runs, "train")[0].info.run_id
    record = first.registered
    assert record == {**record, "name": "wine-rf", "version": 1, "alias": "production"}


def test_second_repro_is_a_no_op(flow: dict[str, Step]) -> None:
    first, again = flow["first"], flow["again"]
    assert ran(again.stdout) == []
    assert "Pipeline is up to date (4 stage(s))." in again.stdout
    assert len(again.runs) == len(first.runs)
    assert again.lock == first.lock
    assert again.production.version == 1


def test_changed_param_reruns_train_evaluate_register(flow: dict[str, Step]) -> None:
    again, depth8 = flow["again"], flow["depth8"]
    assert ran(depth8.stdout) == ["train", "evaluate", "register"]
    assert "Stage 'prepare' is up to date" in depth8.stdout
    assert len(depth8.runs) == len(again.runs) + 3
    assert sorted(r.data.tags["mltrail.stage"] for r in depth8.runs[:3]) == [
        "evaluate",
        "register",
        "train",
    ]
    assert len(by_stage(depth8.runs, "prepare")) == 1
    train = by_stage(depth8.runs, "train")[0]
    assert train.data.params["train.max_depth"] == "8"
    assert depth8.production.version == 2
    assert depth8.production.run_id == train.info.run_id


def test_lineage_reaches_the_raw_data_through_prepare(wine: Path, flow: dict[str, Step]) -> None:
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
