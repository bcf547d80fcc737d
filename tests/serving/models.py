"""Small real models for the serving tests, saved with mltrail's own save_model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier

from mltrail.models import save_model


def wine() -> tuple[pd.DataFrame, pd.Series]:
    """The wine data: 178 rows, 13 float columns, 3 classes."""
    X, y = load_wine(return_X_y=True, as_frame=True)
    return X, y


def save_wine_model(folder: Path) -> RandomForestClassifier:
    """A small random forest on the wine data, saved with an input example; return it."""
    X, y = wine()
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    save_model(forest, folder, input_example=X[:5])
    return forest


class Exploding:
    """A model whose predict fails with a message that must not reach clients."""

    def predict(self, model_input):
        raise RuntimeError("secret detail from inside the model")


class Scorecard:
    """A model over mixed columns that answers with a DataFrame (one record per row)."""

    def predict(self, model_input):
        return pd.DataFrame(
            {"name": model_input["name"], "score": model_input["x"] * model_input["n"]}
        )


class RowSum:
    """A tensor model: the sum of each row, NaN where the row's first value is negative."""

    def predict(self, model_input):
        sums = np.asarray(model_input, dtype=float).sum(axis=1)
        return np.where(np.asarray(model_input)[:, 0] < 0, np.nan, sums)


MIXED_EXAMPLE = pd.DataFrame({"name": ["a", "b"], "x": [1.5, 2.0], "n": [1, 2]})
TENSOR_EXAMPLE = np.array([[1.0, 2.0], [3.0, 4.0]])


def save_mixed_model(folder: Path) -> None:
    """A python_function model taking name: string, x: double, n: long."""
    save_model(Scorecard(), folder, input_example=MIXED_EXAMPLE)


def save_exploding_model(folder: Path) -> None:
    """A model with the wine signature whose predict always raises."""
    X, _ = wine()
    from mltrail.models import infer_signature

    save_model(Exploding(), folder, signature=infer_signature(X[:5]))


def save_tensor_model(folder: Path) -> None:
    """A model taking a float64 array of shape (-1, 2)."""
    save_model(RowSum(), folder, input_example=TENSOR_EXAMPLE)
