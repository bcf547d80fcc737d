"""The whole flow on scikit-learn's wine data: version the data, train a grid, register the best
model, promote it to production, load it back by alias, serve it and send one request.

The data is written to data/wine.csv and versioned with mltrail (data/wine.csv.trail); every run
records that version as its input and logs its model, so `mltrail runs show RUN` answers "trained
on which data?" and `mltrail models versions wine-rf` answers "which run produced this model?".

Run from the project root:  python examples/wine/train.py
Then look at the runs:       mltrail runs ls --experiment wine --sort -metrics.accuracy
"""

from __future__ import annotations

import csv
import itertools
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.model_selection import train_test_split

import mltrail as mt
import mltrail.data

GRID = {"n_estimators": [5, 20, 60], "max_depth": [1, 3]}


DATA = Path("data/wine.csv")


def version_data() -> tuple[pd.DataFrame, pd.Series]:
    """Write the wine data to data/wine.csv once, track it with mltrail, and read it back."""
    if not DATA.exists():
        wine = load_wine()
        DATA.parent.mkdir(exist_ok=True)
        with DATA.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([*wine.feature_names, "target"])
            writer.writerows(
                [*row, target] for row, target in zip(wine.data, wine.target, strict=True)
            )
    mltrail.data.add([DATA])  # a no-op when this version is already recorded
    frame = pd.read_csv(DATA)
    return frame.drop(columns="target"), frame["target"]


def train_one(params: dict, data: tuple) -> float:
    """Fit one model in its own run; return its test accuracy."""
    x_train, x_test, y_train, y_test = data
    with mt.start_run(run_name=f"rf-{params['n_estimators']}-d{params['max_depth']}"):
        mt.log_input(DATA, context="training")  # which version of the data this run used
        mt.log_params({**params, "random_state": 0, "test_size": 0.25})
        # Grow the forest a few trees at a time (warm start) to log accuracy against forest size.
        model = RandomForestClassifier(
            max_depth=params["max_depth"], random_state=0, warm_start=True
        )
        for step, n in enumerate(range(5, params["n_estimators"] + 1, 5)):
            model.set_params(n_estimators=n)
            model.fit(x_train, y_train)
            mt.log_metric(
                "accuracy_by_trees", accuracy_score(y_test, model.predict(x_test)), step=step
            )
        pred = model.predict(x_test)
        accuracy = accuracy_score(y_test, pred)
        mt.log_metrics(
            {
                "accuracy": accuracy,
                "f1": f1_score(y_test, pred, average="macro"),
                "precision": precision_score(y_test, pred, average="macro"),
                "recall": recall_score(y_test, pred, average="macro"),
            }
        )
        mt.set_tag("model", "RandomForestClassifier")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "feature_importance.csv"
            with path.open("w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["feature", "importance"])
                ranked = sorted(
                    zip(x_train.columns, model.feature_importances_, strict=True),
                    key=lambda p: -p[1],
                )
                writer.writerows((name, f"{value:.6f}") for name, value in ranked)
            mt.log_artifact(path)
        # The model folder (pickle, signature from the example, requirements) as run artifacts.
        mt.log_model(model, "model", input_example=x_train[:5])
        return accuracy


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_score(model_uri: str, rows: pd.DataFrame) -> list:
    """Start `mltrail models serve`, send one scoring request, stop the server."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mltrail", "models", "serve", model_uri, "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the model server did not start") from None
                time.sleep(0.1)
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    """Run the grid, register and promote the best model, load it, serve it."""
    mt.set_experiment("wine")  # creates ./.mltrail on first use
    x, y = version_data()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    data = (x_train, x_test, y_train, y_test)
    keys = list(GRID)
    for values in itertools.product(*GRID.values()):
        params = dict(zip(keys, values, strict=True))
        accuracy = train_one(params, data)
        n, depth = params["n_estimators"], params["max_depth"]
        print(f"n_estimators={n:<4} max_depth={depth}  accuracy={accuracy:.3f}")
    best = mt.search_runs(order_by=["-metrics.accuracy", "metrics.f1 DESC"], max_results=1)[0]
    print(
        f"\nbest run: {best['run_id']} ({best['run_name']}) accuracy={best['metrics.accuracy']:.3f}"
    )

    # Register the best run's model and promote it: the alias is what deployments ask for.
    version = mt.register_model(f"runs:/{best['run_id']}/model", "wine-rf")
    mt.MltrailClient().set_registered_model_alias(
        "wine-rf", "production", version.version, comment="best accuracy of the grid"
    )
    print(f"registered: wine-rf version {version.version} -> alias production")

    model = mt.load_model("models:/wine-rf@production")  # every file checked against its hash
    predicted = model.predict(x_test[:5]).tolist()
    print(f"loaded:     predictions {predicted} (truth {y_test[:5].tolist()})")
    served = serve_and_score("models:/wine-rf@production", x_test[:3])
    print(f"served:     POST /invocations -> {served}")

    print(f"store:      {mt.get_tracking_uri()}")
    print("next:       mltrail runs ls --experiment wine --sort -metrics.accuracy")
    print(f"            mltrail runs show {best['run_id'][:8]}")
    print("            mltrail models versions wine-rf")
    print("            mltrail models serve wine-rf@production --port 8080")


if __name__ == "__main__":
    main()
