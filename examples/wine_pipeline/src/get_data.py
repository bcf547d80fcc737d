"""Write scikit-learn's bundled wine data to data/raw.csv (no network): the raw data version."""

from __future__ import annotations

import csv
from pathlib import Path

from sklearn.datasets import load_wine

RAW = Path("data/raw.csv")


def main() -> None:
    """Write data/raw.csv: 178 wines, 13 measurements and the cultivar (target)."""
    wine = load_wine()
    RAW.parent.mkdir(parents=True, exist_ok=True)
    with RAW.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*wine.feature_names, "target"])
        writer.writerows([*row, target] for row, target in zip(wine.data, wine.target, strict=True))
    print(f"wrote {RAW} ({len(wine.target)} rows)")


if __name__ == "__main__":
    main()
