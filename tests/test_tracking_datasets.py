"""log_input / log_output: tracked dataset versions recorded on runs, fluent and explicit."""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path

import pytest

import mltrail as mt
import mltrail.data as data
from mltrail.data.pointer import read_pointer
from mltrail.data.version import DatasetVersionWarning
from mltrail.errors import InvalidInput, InvalidState, InvalidValue
from mltrail.tracking import fluent
from mltrail.tracking.client import MltrailClient


@pytest.fixture
def dataset(project: Path) -> Path:
    """``data/customers.csv`` and ``data/images`` added to the project (the working directory)."""
    root = project.parent
    (root / "data" / "images").mkdir(parents=True)
    (root / "data" / "customers.csv").write_text("id,name\n1,ann\n")
    for i in range(3):
        (root / "data" / "images" / f"{i}.png").write_bytes(bytes([i]) * 100)
    then = time.time() - 10
    for f in [root / "data" / "customers.csv", *(root / "data" / "images").iterdir()]:
        os.utime(f, (then, then))
    data.add(["data/customers.csv", "data/images"])
    return root


def _pointer_hash(root: Path, path: str) -> str:
    return read_pointer(root / f"{path}.trail").hash


def test_fluent_log_input_and_output(dataset: Path, store_uri: str):
    mt.set_tracking_uri(store_uri)
    with mt.start_run() as run:
        mt.log_metric("loss", 0.5)
        ref = mt.log_input("data/customers.csv", context="training")
        images = mt.log_input(dataset / "data" / "images")
        out = mt.log_output("data/images", context="augmented")
    assert ref == mt.DatasetRef(
        "data/customers.csv",
        _pointer_hash(dataset, "data/customers.csv"),
        "file",
        14,
        None,
        "training",
    )
    assert (images.kind, images.nfiles, images.size, images.context) == ("dir", 3, 300, None)
    assert out.hash == images.hash
    client = fluent.get_client()
    recorded = client.get_run_datasets(run.run_id)
    assert [(d.direction, d.dataset) for d in recorded] == [
        ("input", ref),
        ("input", images),
        ("output", out),
    ]
    assert client.get_run(run.run_id).info.status == "FINISHED"
    uses = client.find_dataset_uses(hash=images.hash)
    assert [(u.run_id, u.direction) for u in uses] == [
        (run.run_id, "input"),
        (run.run_id, "output"),
    ]


def test_fluent_without_an_active_run_starts_one(dataset: Path):
    ref = mt.log_input("data/customers.csv")
    active = mt.active_run()
    assert active is not None
    client = fluent.get_client()
    assert [d.dataset for d in client.get_run_datasets(active.run_id)] == [ref]
    mt.end_run()


def test_logging_the_same_version_twice_is_a_no_op(dataset: Path, client: MltrailClient):
    run = client.create_run("0").run_id
    first = client.log_input(run, "data/customers.csv", context="training")
    again = client.log_input(run, "data/customers.csv")
    assert again == dataclasses.replace(first, context=None)
    # One row, and the context given first is kept.
    assert [d.dataset for d in client.get_run_datasets(run)] == [first]


def test_an_ended_run_is_refused(dataset: Path, client: MltrailClient):
    run = client.create_run("0").run_id
    client.set_terminated(run)
    with pytest.raises(InvalidState, match=f"run '{run}' is FINISHED; only RUNNING runs") as err:
        client.log_input(run, "data/customers.csv")
    assert "start_run(run_id=" in (err.value.hint or "")
    with pytest.raises(InvalidState, match="FINISHED"):
        client.log_output(run, "data/customers.csv")
    assert client.get_run_datasets(run) == []


def test_a_modified_dataset_logs_the_disk_version_with_a_warning(
    dataset: Path, client: MltrailClient
):
    csv = dataset / "data" / "customers.csv"
    csv.write_text("id,name\n1,ann\n2,bob\n")
    run = client.create_run("0").run_id
    with pytest.warns(DatasetVersionWarning, match="differs from its pointer") as caught:
        ref = client.log_input(run, "data/customers.csv")
    # The warning points at the caller's line, not into mltrail.
    assert caught[0].filename == __file__
    assert "mltrail data add data/customers.csv" in str(caught[0].message)
    assert ref.hash != _pointer_hash(dataset, "data/customers.csv")
    assert ref.size == csv.stat().st_size
    assert [d.dataset for d in client.get_run_datasets(run)] == [ref]


def test_fluent_warning_points_at_the_caller(dataset: Path):
    (dataset / "data" / "images" / "new.png").write_bytes(b"new")
    with mt.start_run(), pytest.warns(DatasetVersionWarning) as caught:
        mt.log_input("data/images")
    assert caught[0].filename == __file__


def test_an_unchanged_dataset_does_not_warn(dataset: Path, client: MltrailClient):
    run = client.create_run("0").run_id
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.log_input(run, "data/customers.csv")


def test_bad_inputs_record_nothing(dataset: Path, client: MltrailClient, tmp_path_factory):
    run = client.create_run("0").run_id
    (dataset / "notes.txt").write_text("x")
    with pytest.raises(InvalidInput, match=r"notes\.txt is not tracked") as err:
        client.log_input(run, "notes.txt")
    assert err.value.hint == "Track it first: mltrail data add notes.txt"
    with pytest.raises(InvalidInput, match="does not exist"):
        client.log_input(run, "data/nope.csv")
    outside = tmp_path_factory.mktemp("elsewhere") / "x.csv"
    outside.write_text("x")
    with pytest.raises(InvalidInput, match="outside the project"):
        client.log_input(run, outside)
    with pytest.raises(InvalidInput, match=r"inside data/images"):
        client.log_input(run, "data/images/0.png")
    with pytest.raises(InvalidValue, match="dataset context"):
        client.log_input(run, "data/customers.csv", context="a\nb")
    assert client.get_run_datasets(run) == []


def test_order_with_queued_writes(dataset: Path, client: MltrailClient):
    run = client.create_run("0").run_id
    for step in range(100):
        client.log_metric(run, "loss", 1 / (step + 1), step=step)
    client.log_input(run, "data/customers.csv")
    client.set_terminated(run)
    assert len(client.get_metric_history(run, "loss")) == 100
    assert len(client.get_run_datasets(run)) == 1
