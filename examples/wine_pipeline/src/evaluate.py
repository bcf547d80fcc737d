"""Stage evaluate: score models/rf on data/prepared/test.csv; write metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

import mltrail.sklearn


def main() -> None:
    """Load the model folder, predict the test rows, write accuracy and macro F1."""
    model = mltrail.sklearn.load_model("models/rf")
    frame = pd.read_csv("data/prepared/test.csv")
    x, y = frame.drop(columns="target"), frame["target"]
    pred = model.predict(x)
    metrics = {
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "f1": round(float(f1_score(y, pred, average="macro")), 4),
    }
    Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"evaluate: accuracy={metrics['accuracy']} f1={metrics['f1']}")


if __name__ == "__main__":
    main()
