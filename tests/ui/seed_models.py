"""A small registry and data history for the UI's model, dataset and lineage tests.

``data/raw.csv`` → *prepare* → ``data/prepared.csv`` → *train-1*, *train-2* → ``wine-rf`` v1, v2;
``production`` → v1, ``champion`` → v2, v2 in Staging.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrail.entities import DatasetRef

RAW = DatasetRef("data/raw.csv", "1" * 64, "file", 2048)
PREPARED = DatasetRef("data/prepared.csv", "2" * 64, "file", 1500, None, "training")
IMAGES = DatasetRef("data/images", "3" * 64, "dir", 3 * 1024 * 1024, 120)


@dataclass
class Seeded:
    """Ids of what :func:`seed` made."""

    experiment: str
    prepare: str
    train1: str
    train2: str


def model_folder(tmp_path: Path, name: str) -> Path:
    """A model folder with a file in a subfolder."""
    folder = tmp_path / name
    (folder / "extra").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "model.pkl").write_bytes(b"\x80\x04 fake " + name.encode())
    (folder / "extra" / "notes.txt").write_text("hi\n")
    return folder


def seed(
    client: Any, tmp_path: Path, description: str = "Random forest on the wine data"
) -> Seeded:
    """Log the runs, datasets and model versions described in the module docstring."""
    exp = client.create_experiment("wine")
    client.create_registered_model("wine-rf", description=description)
    prepare = client.create_run(exp, run_name="prepare").info.run_id
    client.store.log_run_datasets(prepare, "input", [RAW])
    client.store.log_run_datasets(prepare, "output", [PREPARED])
    client.set_terminated(prepare)
    trains = []
    for i, (acc, f1) in enumerate([(0.91, 0.88), (0.95, 0.93)], start=1):
        run = client.create_run(exp, run_name=f"train-{i}").info.run_id
        client.log_param(run, "n_estimators", 100 * i)
        client.log_metric(run, "accuracy", acc - 0.1)
        client.log_metric(run, "accuracy", acc)
        client.log_metric(run, "f1", f1)
        client.store.log_run_datasets(run, "input", [PREPARED, IMAGES])
        client.log_artifacts(run, model_folder(tmp_path, f"m{i}"), "model")
        client.set_terminated(run)
        client.flush()
        tags = {"algo": "rf"} if i == 1 else None
        client.register_model(f"runs:/{run}/model", "wine-rf", f"trained {i}", tags)
        trains.append(run)
    client.set_registered_model_tag("wine-rf", "team", "ml")
    client.set_registered_model_alias("wine-rf", "production", 1)
    client.set_registered_model_alias("wine-rf", "champion", 2)
    client.transition_model_version_stage("wine-rf", 2, "Staging")
    client.flush()
    return Seeded(exp, prepare, *trains)
