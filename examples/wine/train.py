"""Train RandomForest on scikit-learn's wine data over a small grid, tracking every fit.

The data is written to data/wine.csv and versioned with mltrail (data/wine.csv.trail); every run
records that version as its input, so `mltrail runs show RUN` answers "trained on which data?".

Run from the project root:  python examples/wine/train.py
Then look at the runs:       mltrail runs ls --experiment wine --sort -metrics.accuracy
"""

from __future__ import annotations

import csv
import itertools
import tempfile
from pathlib import Path

from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.model_selection import train_test_split

import mltrail as mt
import mltrail.data

GRID = {"n_estimators": [5, 20, 60], "max_depth": [1, 3]}


DATA = Path("data/wine.csv")


def version_data() -> tuple[list[list[float]], list[int], list[str]]:
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
    with DATA.open(newline="") as f:
        rows = list(csv.reader(f))
    features = rows[0][:-1]
    return [[float(v) for v in r[:-1]] for r in rows[1:]], [int(r[-1]) for r in rows[1:]], features


def train_one(params: dict, data: tuple) -> float:
    """Fit one model in its own run; return its test accuracy."""
    x_train, x_test, y_train, y_test, feature_names = data
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
                    zip(feature_names, model.feature_importances_, strict=True), key=lambda p: -p[1]
                )
                writer.writerows((name, f"{value:.6f}") for name, value in ranked)
            mt.log_artifact(path)
        return accuracy


def main() -> None:
    """Run the grid and print where to look next."""
    mt.set_experiment("wine")  # creates ./.mltrail on first use
    x, y, feature_names = version_data()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    data = (x_train, x_test, y_train, y_test, feature_names)
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
    print(f"store:    {mt.get_tracking_uri()}")
    print("next:     mltrail runs ls --experiment wine --sort -metrics.accuracy")
    print(f"          mltrail runs show {best['run_id'][:8]}")


if __name__ == "__main__":
    main()
