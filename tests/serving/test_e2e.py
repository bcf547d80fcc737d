"""``mltrail models serve`` as a real process: a registered model by alias, on 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sklearn.ensemble import RandomForestClassifier

import mltrail as mt
from mltrail.config import init_project
from tests.serving import models

SRC = Path(mt.__file__).resolve().parent.parent


@pytest.mark.slow  # about 2 s of start-up, more on a busy machine
def test_serve_a_registered_model_answers_and_stops_cleanly(tmp_path: Path):
    init_project(tmp_path)
    X, y = models.wine()
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    with mt.start_run():
        info = mt.log_model(forest, "model", registered_name="wine", input_example=X[:3])
    mt.flush()
    mt.MltrailClient(str(tmp_path)).set_registered_model_alias(
        "wine", "production", info.registered_model_version
    )

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(SRC), "MLTRAIL_CAPTURE": "0", "TMPDIR": str(scratch)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mltrail", "models", "serve", "wine@production", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        match = re.match(r"Serving models:/wine@production \(sklearn, 13 inputs\) on (\S+)$", first)
        assert match, (first, proc.stderr.read() if proc.poll() is not None else "")
        url = match.group(1)
        assert url.startswith("http://127.0.0.1:")
        assert proc.stdout.readline().startswith(f"Try: curl -X POST {url}/invocations")
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "no /ping within 30 s"
            time.sleep(0.02)
        rows = X.iloc[:2]
        body = {"dataframe_split": {"columns": list(X.columns), "data": rows.values.tolist()}}
        response = httpx.post(f"{url}/invocations", json=body, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": forest.predict(rows).tolist()}
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    # The verified copy of the registered model is gone with the server.
    assert list(scratch.iterdir()) == []
