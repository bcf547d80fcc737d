"""repro end to end in a real project: staleness, run cache, failures, runs and their datasets."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from mltrail.errors import InvalidInput
from mltrail.pipeline.lock import read_lock
from mltrail.pipeline.runcache import TAG_RUN_KEY
from mltrail.pipeline.runner import (
    TAG_RESTORED,
    TAG_STAGE,
    TAG_STDERR,
    StageFailed,
    repro,
)
from mltrail.pipeline.sweep import sweep
from mltrail.tracking.client import MltrailClient
from tests.data import settle, write
from tests.pipeline.conftest import runs


def _actions(result) -> dict[str, str]:
    return {s.name: s.action for s in result.stages}


def _runs(project: Path) -> list:
    client = MltrailClient(str(project), create=False)
    try:
        exp = client.get_experiment_by_name("demo")
        if exp is None:
            return []
        found = list(client.search_runs([exp.experiment_id], order_by=["attributes.start_time"]))
        return [(r, client.get_run_datasets(r.info.run_id)) for r in found]
    finally:
        client.close()


def test_first_run_then_no_op(pipeline: Path):
    first = repro()
    assert _actions(first) == {"prepare": "ran", "train": "ran"}
    assert runs(pipeline) == ["prepare", "train"]
    assert (pipeline / "model.txt").read_text() == "depth=5"
    assert (pipeline / "model.txt.trail").exists() and (pipeline / "data/prepared.trail").exists()
    assert "/model.txt" in (pipeline / ".gitignore").read_text().split()
    lock = read_lock(pipeline)
    assert lock["train"]["params"] == {"params.yaml": {"train.fail": 0, "train.max_depth": 5}}
    assert lock["prepare"]["outs"][0]["nfiles"] == 2
    text = (pipeline / "mltrail.lock").read_text()
    second = repro()
    assert _actions(second) == {"prepare": "unchanged", "train": "unchanged"}
    assert runs(pipeline) == ["prepare", "train"]
    assert (pipeline / "mltrail.lock").read_text() == text


def test_first_repro_leaves_the_committed_mltrail_gitignore_alone(pipeline: Path):
    git = ["git", "-c", "user.name=ann", "-c", "user.email=ann@example.invalid"]
    subprocess.run([*git, "add", ".mltrail"], cwd=pipeline, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=pipeline, check=True)
    repro()  # writes the run cache, the stat cache and the data lock under .mltrail/
    status = ["git", "status", "--porcelain", "--untracked-files=all", ".mltrail"]
    assert subprocess.run(status, cwd=pipeline, capture_output=True, text=True).stdout == ""
    # A project initialised before init listed /runs/: repro adds it, once.
    ignore = pipeline / ".mltrail" / ".gitignore"
    ignore.write_text("/mltrail.db*\n/objects/\n/tmp/\n")
    repro(force=True)
    assert ignore.read_text().splitlines()[-1] == "/runs"
    text = ignore.read_text()
    repro(force=True)
    assert ignore.read_text() == text


def test_no_op_does_not_open_the_metadata_store(pipeline: Path, monkeypatch: pytest.MonkeyPatch):
    repro()
    import mltrail.tracking.client as client_module

    def boom(*a, **k):
        raise AssertionError("the metadata store was opened")

    monkeypatch.setattr(client_module.MltrailClient, "__init__", boom)
    assert _actions(repro()) == {"prepare": "unchanged", "train": "unchanged"}


def test_touching_a_dep_reruns_downstream_only(pipeline: Path):
    repro()
    write(pipeline / "train.py", (pipeline / "train.py").read_text() + "\n# tweak\n")
    result = repro()
    assert _actions(result) == {"prepare": "unchanged", "train": "ran"}
    assert "deps changed: train.py" in result.stages[1].reasons
    write(pipeline / "data/raw.csv", "a,b\n3,4\n")
    assert _actions(repro()) == {"prepare": "ran", "train": "ran"}
    assert runs(pipeline) == ["prepare", "train", "train", "prepare", "train"]


def test_same_upstream_output_does_not_rerun_downstream(pipeline: Path):
    repro()
    write(pipeline / "prepare.py", (pipeline / "prepare.py").read_text() + "\n# same output\n")
    assert _actions(repro()) == {"prepare": "ran", "train": "unchanged"}


def test_param_change_reruns_and_run_cache_restores(pipeline: Path):
    repro()
    write(pipeline / "params.yaml", "train:\n  max_depth: 8\n  fail: 0\n")
    result = repro()
    assert _actions(result) == {"prepare": "unchanged", "train": "ran"}
    assert result.stages[1].reasons == ["params changed: train.max_depth"]
    assert (pipeline / "model.txt").read_text() == "depth=8"
    write(pipeline / "params.yaml", "train:\n  max_depth: 5\n  fail: 0\n")
    back = repro()
    assert _actions(back) == {"prepare": "unchanged", "train": "restored"}
    assert runs(pipeline) == ["prepare", "train", "train"]  # not executed again
    assert (pipeline / "model.txt").read_text() == "depth=5"
    assert json.loads((pipeline / "metrics.json").read_text())["acc"] == 0.5
    assert _actions(repro()) == {"prepare": "unchanged", "train": "unchanged"}
    restored = [r for r, _ in _runs(pipeline) if r.data.tags.get(TAG_RESTORED) == "true"]
    assert [r.info.run_name for r in restored] == ["train"]
    assert restored[0].data.metrics["acc"] == 0.5


def test_deleted_outs_come_back_from_the_run_cache(pipeline: Path):
    repro()
    import shutil

    shutil.rmtree(pipeline / "data/prepared")
    (pipeline / "model.txt").unlink()
    assert _actions(repro()) == {"prepare": "restored", "train": "restored"}
    assert runs(pipeline) == ["prepare", "train"]
    assert sorted(os.listdir(pipeline / "data/prepared")) == ["a.csv", "b.csv"]


def test_runs_record_params_metrics_tags_and_datasets(pipeline: Path):
    repro()
    (prep, prep_ds), (train, train_ds) = _runs(pipeline)
    assert (prep.info.run_name, train.info.run_name) == ("prepare", "train")
    assert train.info.status == "FINISHED"
    assert train.data.params == {"train.max_depth": "5", "train.fail": "0"}
    assert train.data.metrics == {"acc": 0.5, "nested.loss": 0.25}
    assert train.data.tags[TAG_STAGE] == "train"
    assert train.data.tags[TAG_RUN_KEY] == read_lock(pipeline)["train"]["run_key"]
    assert train.data.tags[TAG_RESTORED] == "false"
    assert train.data.tags["mltrail.source.command"] == "python train.py"
    inputs = {d.dataset.path: d.dataset.hash for d in train_ds if d.direction == "input"}
    outputs = {d.dataset.path for d in train_ds if d.direction == "output"}
    prep_out = {d.dataset.path: d.dataset.hash for d in prep_ds if d.direction == "output"}
    # Lineage: prepare's output version is train's input version.
    assert inputs["data/prepared"] == prep_out["data/prepared"]
    assert outputs == {"model.txt", "metrics.json"}


def test_failure_keeps_previous_outs_and_marks_the_run(pipeline: Path, capsys):
    repro()
    before = (pipeline / "model.txt").read_text()
    with pytest.raises(StageFailed) as info:
        repro(overrides=["train.fail=1"])
    e = info.value
    assert "stage 'train' failed: its command exited with code 3" in e.message
    assert "boom: training diverged" in e.hint
    assert (pipeline / "model.txt").read_text() == before
    assert (pipeline / "model.txt.trail").exists()
    failed = [r for r, _ in _runs(pipeline) if r.info.status == "FAILED"]
    assert len(failed) == 1 and failed[0].info.run_id == e.run_id
    assert "boom: training diverged" in failed[0].data.tags[TAG_STDERR]
    assert read_lock(pipeline)["train"]["params"]["params.yaml"]["train.fail"] == 0
    assert "boom" in capsys.readouterr().err  # stderr is shown as it happens, too


def test_failure_stops_the_pipeline(pipeline: Path):
    write(pipeline / "prepare.py", "import sys; sys.exit(2)\n")
    with pytest.raises(StageFailed, match="stage 'prepare' failed: its command exited with code 2"):
        repro()
    assert runs(pipeline) == []
    assert not (pipeline / "mltrail.lock").exists()


def test_missing_out_is_a_failure(pipeline: Path):
    write(pipeline / "train.py", "print('forgot to write the model')\n")
    with pytest.raises(StageFailed, match=r"did not write model\.txt, metrics\.json"):
        repro()


def test_set_param_writes_params_file_and_records_it(pipeline: Path):
    result = repro(overrides=["train.max_depth=9"])
    assert result.overrides == {"train.max_depth": 9}
    assert "max_depth: 9" in (pipeline / "params.yaml").read_text()
    train = next(r for r, _ in _runs(pipeline) if r.info.run_name == "train")
    assert train.data.params["train.max_depth"] == "9"
    assert train.data.tags["mltrail.pipeline.overrides"] == "train.max_depth=9"
    with pytest.raises(InvalidInput, match=r"cannot override train\.depth: it is missing"):
        repro(overrides=["train.depth=3"])


def test_grid_makes_one_run_per_point_and_puts_the_workspace_back(pipeline: Path):
    repro()
    params = (pipeline / "params.yaml").read_text()
    lock = (pipeline / "mltrail.lock").read_text()
    points = sweep(["train.max_depth=2,5,7"], jobs=1)  # one after another, in the workspace
    assert [p.overrides for p in points] == [
        ["train.max_depth=2"], ["train.max_depth=5"], ["train.max_depth=7"]
    ]  # fmt: skip
    assert [p.metrics["acc"] for p in points] == [0.2, 0.5, 0.7]
    assert [_actions(p.result)["train"] for p in points] == ["ran", "restored", "ran"]
    assert (pipeline / "params.yaml").read_text() == params
    assert (pipeline / "mltrail.lock").read_text() == lock
    assert (pipeline / "model.txt").read_text() == "depth=5"
    trains = [r for r, _ in _runs(pipeline) if r.info.run_name == "train"]
    # The first repro, then a run per point (5 is restored from the run cache, still a run).
    assert sorted(r.data.params["train.max_depth"] for r in trains) == ["2", "5", "5", "7"]
    assert _actions(repro()) == {"prepare": "unchanged", "train": "unchanged"}


def test_parallel_independent_stages(project: Path):
    write(
        project / "mltrail.yaml",
        textwrap.dedent(
            """
            pipeline: demo
            stages:
              part:
                foreach: [a, b, c]
                do:
                  cmd: python -c "open('${item}.txt', 'w').write('${item}')"
                  outs:
                    - ${item}.txt
              join:
                cmd: cat a.txt b.txt c.txt > all.txt
                deps: [a.txt, b.txt, c.txt]
                outs: [all.txt]
            """
        ),
    )
    result = repro(jobs=3)
    assert set(_actions(result).values()) == {"ran"}
    assert (project / "all.txt").read_text() == "abc"


def test_frozen_and_always_changed(pipeline: Path):
    repro()
    text = (pipeline / "mltrail.yaml").read_text()
    text = text.replace(
        "    outs: [data/prepared]\n", "    outs: [data/prepared]\n    frozen: true\n"
    )
    text = text.replace(
        "    metrics: [metrics.json]\n", "    metrics: [metrics.json]\n    always_changed: true\n"
    )
    write(pipeline / "mltrail.yaml", text)
    write(pipeline / "data/raw.csv", "changed\n")
    result = repro()
    assert _actions(result) == {"prepare": "frozen", "train": "ran"}
    assert result.stages[1].reasons == ["always changed"]
    assert runs(pipeline) == ["prepare", "train", "train"]


def test_dry_run_changes_nothing(pipeline: Path):
    result = repro(dry=True)
    assert _actions(result) == {"prepare": "would run", "train": "would run"}
    assert result.stages[1].reasons == ["upstream stage runs"]
    assert runs(pipeline) == [] and not (pipeline / "mltrail.lock").exists()


def test_missing_dep_and_missing_param(pipeline: Path):
    (pipeline / "data/raw.csv").unlink()
    with pytest.raises(InvalidInput) as info:
        repro()
    assert info.value.message == (
        "mltrail.yaml:6: dep data/raw.csv of stage 'prepare' does not exist, and no stage writes it"
    )
    write(pipeline / "data/raw.csv", "x\n")
    write(pipeline / "params.yaml", "train:\n  max_depth: 5\n")
    with pytest.raises(InvalidInput) as info:
        repro()
    assert "stage 'train' uses param 'train.fail', which is missing from params.yaml" in str(
        info.value
    )
    assert info.value.message.startswith("mltrail.yaml:11:")


def test_targets_limit_to_upstream(pipeline: Path):
    assert _actions(repro(["prepare"])) == {"prepare": "ran"}
    assert _actions(repro(["train"], force=True)) == {"prepare": "ran", "train": "ran"}


def test_no_op_hashes_nothing(pipeline: Path, monkeypatch: pytest.MonkeyPatch):
    repro()
    settle(pipeline / "data", pipeline / "model.txt", pipeline / "metrics.json")
    repro()  # outs written a moment ago were hashed again once (racy timestamps); now cached
    from mltrail.objects import hashing

    calls = []
    real = hashing.hash_fd
    monkeypatch.setattr(hashing, "hash_fd", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert _actions(repro()) == {"prepare": "unchanged", "train": "unchanged"}
    assert calls == []


def test_run_cache_found_through_the_metadata_store(pipeline: Path):
    import shutil

    repro()
    # A fresh clone: no local run-cache entries, no lock; the store still knows the runs.
    shutil.rmtree(pipeline / ".mltrail" / "runs")
    (pipeline / "mltrail.lock").unlink()
    (pipeline / "model.txt").unlink()
    result = repro()
    assert _actions(result) == {"prepare": "restored", "train": "restored"}
    assert runs(pipeline) == ["prepare", "train"]
    assert (pipeline / "model.txt").read_text() == "depth=5"
    restored = [r for r, _ in _runs(pipeline) if r.data.tags.get(TAG_RESTORED) == "true"]
    assert {r.data.tags.get("mltrail.stage.restored_from") for r in restored} == {
        r.info.run_id for r, _ in _runs(pipeline) if r.data.tags.get(TAG_RESTORED) == "false"
    }


def test_dry_with_set_param_reads_the_new_value_without_writing_it(pipeline: Path):
    repro()
    params = (pipeline / "params.yaml").read_text()
    result = repro(dry=True, overrides=["train.max_depth=2"])
    assert _actions(result) == {"prepare": "unchanged", "train": "would run"}
    assert (pipeline / "params.yaml").read_text() == params


def test_grid_puts_back_cache_false_folders_and_removes_outs_that_were_absent(project: Path):
    script = (
        "import os, yaml\n"
        "x = yaml.safe_load(open('params.yaml'))['x']\n"
        "os.makedirs('report/sub', exist_ok=True)\n"
        "open('report/sub/x.txt', 'w').write(str(x))\n"
        "open('extra.txt', 'w').write(str(x))\n"
    )
    write(project / "make.py", script)
    write(project / "params.yaml", "x: 1\n")
    spec = """
        pipeline: demo
        stages:
          s:
            cmd: python make.py
            deps: [make.py]
            params: [x]
            outs:
              - report: {cache: false}
              - extra.txt: {cache: false}
        """
    write(project / "mltrail.yaml", textwrap.dedent(spec))
    settle(project / "make.py", project / "params.yaml")
    repro()
    os.unlink(project / "extra.txt")
    sweep(["x=2,3"])
    assert (project / "report/sub/x.txt").read_text() == "1"
    assert not (project / "extra.txt").exists()  # absent before the sweep: absent after it
    assert not (project / ".mltrail" / "tmp" / "sweep" / str(os.getpid())).exists()


def test_runcache_does_not_import_the_runner():
    import ast
    import inspect

    from mltrail.pipeline import runcache

    # runcache sits below runner (which imports it); the run key tag lives with the cache.
    imported = {
        node.module
        for node in ast.walk(ast.parse(inspect.getsource(runcache)))
        if isinstance(node, ast.ImportFrom)
    }
    assert "mltrail.pipeline.runner" not in imported
    assert runcache.TAG_RUN_KEY == "mltrail.stage.run_key"
