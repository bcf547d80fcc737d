"""Artifacts through ``/api/2.0/mlflow-artifacts``: stored once by hash, alike in both tools."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.mlflow_compat.conftest import Served, StartServer, error_code

pytestmark = pytest.mark.filterwarnings("ignore")


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_empty_file_one_file_and_a_folder(tracking: Served, name, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    one = tmp_path / "report.json"
    one.write_text('{"accuracy": 0.9}')
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(b"\x89PNG fake")
    (folder / "sub" / "b.txt").write_text("deeper")
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(empty))
        mlflow.log_artifact(str(one), artifact_path="eval")
        mlflow.log_artifacts(str(folder), artifact_path="plots")
        mlflow.log_text("hello", "notes/hello.txt")
    run_id = run.info.run_id
    c = MlflowClient()
    top = {(f.path, f.is_dir, f.file_size) for f in c.list_artifacts(run_id)}
    assert top == {
        ("empty.txt", False, 0),
        ("eval", True, None),
        ("plots", True, None),
        ("notes", True, None),
    }
    assert [f.path for f in c.list_artifacts(run_id, "plots")] == ["plots/a.png", "plots/sub"]
    assert [
        f.path for f in mlflow.artifacts.list_artifacts(run_id=run_id, artifact_path="plots/sub")
    ] == ["plots/sub/b.txt"]
    out = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "dl")))
    assert (out / "empty.txt").read_bytes() == b""
    assert (out / "eval" / "report.json").read_text() == '{"accuracy": 0.9}'
    assert (out / "plots" / "sub" / "b.txt").read_text() == "deeper"
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/hello.txt") == "hello"

    # mltrail lists the same files, each an object of the content-addressed store.
    mt_client = tracking.mltrail()
    ours = {f.path: f.size for f in mt_client.list_artifacts(run_id)}
    assert ours == {
        "empty.txt": 0,
        "eval/report.json": 17,
        "plots/a.png": 9,
        "plots/sub/b.txt": 6,
        "notes/hello.txt": 5,
    }
    shown = mt_client.download_artifacts(run_id, "plots", tmp_path / "ours")
    assert (shown / "sub" / "b.txt").read_text() == "deeper"
    mt_client.close()


def test_deleting_an_artifact_forgets_it(tracking: Served, name, tmp_path):
    import mlflow
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    (tmp_path / "keep.txt").write_text("k")
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "x.txt").write_text("x")
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "keep.txt"))
        mlflow.log_artifacts(str(tmp_path / "drop"), "drop")
    repo = get_artifact_repository(run.info.artifact_uri)
    repo.delete_artifacts("drop")
    assert [f.path for f in repo.list_artifacts()] == ["keep.txt"]
    assert [f.path for f in tracking.mltrail().list_artifacts(run.info.run_id)] == ["keep.txt"]


def test_a_200_mb_file_goes_up_in_parts_and_comes_back_whole(
    tracking: Served, name, tmp_path, monkeypatch
):
    import mlflow
    import requests

    # MLflow uploads in parts above this size when the server offers it (server-info).
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(100 * 1024**2))
    big = tmp_path / "weights.bin"
    with open(big, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1024**2))
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big), "ckpt")
    metrics = requests.get(f"{tracking.url}/metrics", timeout=30).text
    assert "mpu/part" in metrics  # the parts went through the multipart routes
    mt_client = tracking.mltrail()
    [stored] = mt_client.list_artifacts(run.info.run_id)
    assert (stored.path, stored.size) == ("ckpt/weights.bin", 200 * 1024**2)
    got = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="ckpt/weights.bin", dst_path=str(tmp_path / "dl")
    )
    assert _sha(Path(got)) == _sha(big)
    mt_client.close()


def test_artifacts_in_s3_through_the_server(
    start_server: StartServer, s3_endpoint, bucket, monkeypatch, name, tmp_path
):
    import mlflow

    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    served = start_server(objects=f"s3://{bucket}/objects")
    mlflow.set_tracking_uri(served.url)
    data = tmp_path / "table.csv"
    data.write_text("a,b\n1,2\n")
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(data))
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/table.csv") == "a,b\n1,2\n"


def test_bad_artifact_requests(tracking: Served, name):
    import mlflow
    import requests
    from mlflow.exceptions import MlflowException

    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        pass
    base = f"{tracking.url}/api/2.0/mlflow-artifacts/artifacts"
    exp = run.info.experiment_id
    missing = requests.get(f"{base}/{exp}/{run.info.run_id}/artifacts/nope.txt", timeout=30)
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    outside = requests.put(
        f"{base}/{exp}/{run.info.run_id}/artifacts/../../x", data=b"x", timeout=30
    )
    assert outside.status_code in (400, 404)
    nowhere = requests.get(base, params={"path": "not/a/run"}, timeout=30)
    assert nowhere.status_code == 400 and "names no run" in nowhere.json()["message"]
    other = requests.get(f"{base}/999/{run.info.run_id}/artifacts/x", timeout=30)
    assert other.status_code == 404
    with pytest.raises(MlflowException) as err:
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="absent")
    assert "absent" in str(err.value) or error_code(err.value)


def test_a_damaged_object_is_never_handed_to_the_client(tracking: Served, name, tmp_path):
    import mlflow

    from mltrail.objects import open_object_store

    data = tmp_path / "model.bin"
    data.write_bytes(b"w" * 3_000_000)
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(data))
    [stored] = tracking.mltrail().list_artifacts(run.info.run_id)
    path = open_object_store(tracking.objects).path_of(stored.hash)
    path.chmod(0o644)
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0xFF  # the very last byte: caught before it leaves
    path.write_bytes(bytes(damaged))
    with pytest.raises(Exception):  # noqa: B017  (requests' or mlflow's, by version)
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="model.bin", dst_path=str(tmp_path / "dl")
        )
    got = tmp_path / "dl" / "model.bin"
    assert not got.exists() or got.read_bytes() != bytes(damaged)
