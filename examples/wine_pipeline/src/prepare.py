"""Stage prepare: keep the chosen features of data/raw.csv, split it into data/prepared/."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from sklearn.model_selection import train_test_split

OUT = Path("data/prepared")


def main() -> None:
    """Read the params, split the raw data, write the two CSV files."""
    params = yaml.safe_load(Path("params.yaml").read_text())["prepare"]
    frame = pd.read_csv("data/raw.csv")[[*params["features"], "target"]]
    train, test = train_test_split(
        frame,
        test_size=params["test_size"],
        random_state=params["seed"],
        stratify=frame["target"],
    )
    OUT.mkdir(parents=True, exist_ok=True)
    train.to_csv(OUT / "train.csv", index=False)
    test.to_csv(OUT / "test.csv", index=False)
    print(f"prepare: {len(train)} train rows, {len(test)} test rows -> {OUT}/")


if __name__ == "__main__":
    main()
