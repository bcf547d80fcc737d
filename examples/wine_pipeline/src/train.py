"""Stage train: fit a RandomForest on data/prepared/train.csv; save the model folder models/rf.

The folder is an mltrail model (MLmodel, pickle, signature, requirements), written by
``mltrail.sklearn.save_model``; the register stage registers exactly these bytes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import yaml
from sklearn.ensemble import RandomForestClassifier

import mltrail.sklearn

MODEL = Path("models/rf")


def main() -> None:
    """Fit with the params of params.yaml and save the model folder."""
    params = yaml.safe_load(Path("params.yaml").read_text())["train"]
    frame = pd.read_csv("data/prepared/train.csv")
    x, y = frame.drop(columns="target"), frame["target"]
    model = RandomForestClassifier(
        n_estimators=params["n_estimators"],
        max_depth=params["max_depth"],
        random_state=params["seed"],
        n_jobs=1,  # deterministic and light: the same params give the same bytes
    )
    model.fit(x, y)
    shutil.rmtree(MODEL, ignore_errors=True)  # save_model wants a new folder
    # MLmodel records when it was saved: SOURCE_DATE_EPOCH pins that, so the same data and params
    # give the same bytes (evaluate and register see an unchanged dep, `mltrail reproduce` says
    # "same"). setdefault: a value set outside, e.g. by CI, still wins.
    os.environ.setdefault("SOURCE_DATE_EPOCH", "946684800")  # 2000-01-01 00:00:00 UTC
    mltrail.sklearn.save_model(model, MODEL, input_example=x[:5])
    n, depth = params["n_estimators"], params["max_depth"]
    print(f"train: n_estimators={n} max_depth={depth} -> {MODEL}/")


if __name__ == "__main__":
    main()
