"""Run artifacts kept in S3 (a local moto server) through the ordinary tracking API."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrail import MltrailClient
from mltrail.errors import StoreError

pytest_plugins = ["tests.s3server"]


def test_artifacts_in_s3(tmp_path: Path, monkeypatch, s3_endpoint, bucket, s3_client):
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    client = MltrailClient(f"sqlite:///{tmp_path / 'm.db'}", objects=f"s3://{bucket}/mltrail")
    run = client.create_run()
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "b.txt").write_text("b")
    client.log_artifact(run.run_id, folder)
    client.log_text(run.run_id, "b", "same-as-b.txt")
    client.set_terminated(run.run_id)

    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert all(k.startswith("mltrail/") for k in keys)
    # Two files with the bytes "b" are one object; plus a.csv and the folder's tree object.
    assert len(keys) == 3
    out = client.download_artifacts(run.run_id, "plots", tmp_path / "out")
    assert (out / "a.csv").read_text() == "x,y\n1,2\n"
    assert client.read_artifact(run.run_id, "same-as-b.txt") == b"b"


def test_missing_bucket_is_a_clear_error(tmp_path: Path, monkeypatch, s3_endpoint, aws_env):
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    client = MltrailClient(f"sqlite:///{tmp_path / 'm.db'}", objects="s3://no-such-bucket/x")
    run = client.create_run()
    with pytest.raises(StoreError, match="no-such-bucket"):
        client.log_text(run.run_id, "hello", "a.txt")
    assert client.list_artifacts(run.run_id) == []
