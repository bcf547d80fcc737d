"""``mltrail runs show``: the dataset versions a run read and wrote."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import mltrail.data as data
from mltrail.config import init_project
from mltrail.tracking.client import MltrailClient
from tests.cli.conftest import Invoke
from tests.cli.test_run_show import _section

LONG = "data/raw/exports/2026/customers_with_a_rather_long_file_name.parquet"


@pytest.fixture
def run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A finished run with three inputs and one output, in a project in the working directory."""
    monkeypatch.delenv("MLTRAIL_TRACKING_URI", raising=False)
    init_project(tmp_path)
    files = {"data/customers.csv": b"id,name\n1,ann\n", LONG: b"x" * 2048}
    files.update({f"data/images/{i}.png": bytes([i]) * 100 for i in range(3)})
    then = time.time() - 10
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, (then, then))
    data.add(["data/customers.csv", "data/images", LONG])
    client = MltrailClient()
    run = client.create_run("0", run_name="train").run_id
    client.log_input(run, "data/customers.csv", context="training")
    client.log_input(run, "data/images", context="a context label long enough to be cut short")
    client.log_input(run, LONG)
    client.log_output(run, "data/images", context="augmented")
    client.set_terminated(run)
    client.close()
    return run


def test_show_lists_inputs_and_outputs(invoke: Invoke, run_id: str):
    out = invoke("runs", "show", run_id[:8]).stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    inputs = _section(out, "Inputs (3)")
    assert len(inputs) == 3
    path, short, size, unit, context = inputs[0].split()
    assert (path, size, unit, context) == ("data/customers.csv", "14", "B", "training")
    assert len(short) == 12
    assert inputs[1].startswith("data/images ")
    assert " 3 files, 300 B a context label" in inputs[1] and inputs[1].endswith("…")
    # A long path is cut, its hash and size are not.
    assert inputs[2].startswith("data/raw/") and "… " in inputs[2]
    assert inputs[2].endswith(" 2.0 KiB")
    assert _section(out, "Outputs (1)") == [
        f"data/images {inputs[1].split()[1]} 3 files, 300 B augmented"
    ]


def test_show_json_has_inputs_and_outputs(invoke: Invoke, run_id: str):
    got = json.loads(invoke("runs", "show", run_id, "--json").stdout)
    assert [d["path"] for d in got["inputs"]] == ["data/customers.csv", "data/images", LONG]
    first = got["inputs"][0]
    assert set(first) == {"path", "hash", "kind", "size", "nfiles", "context", "timestamp"}
    assert (first["kind"], first["size"], first["nfiles"], first["context"]) == (
        "file",
        14,
        None,
        "training",
    )
    assert len(first["hash"]) == 64
    assert [(d["path"], d["nfiles"], d["context"]) for d in got["outputs"]] == [
        ("data/images", 3, "augmented")
    ]


def test_a_run_without_datasets(invoke: Invoke, seeded):
    out = invoke("runs", "show", seeded["depth-1"]).stdout
    assert _section(out, "Inputs (0)") == ["none"]
    assert "Outputs" not in out
    got = json.loads(invoke("runs", "show", seeded["depth-1"], "--json").stdout)
    assert (got["inputs"], got["outputs"]) == ([], [])
