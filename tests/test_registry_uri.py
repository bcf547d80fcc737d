"""Parsing model URIs: every accepted form, and errors that show the accepted forms."""

from __future__ import annotations

import pytest

from mltrail.errors import InvalidInput
from mltrail.registry import ModelURI, parse_model_uri

RUN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/wine-rf/3", ModelURI("models", name="wine-rf", version=3)),
        ("models:/wine-rf/12", ModelURI("models", name="wine-rf", version=12)),
        ("models:/wine-rf@champion", ModelURI("models", name="wine-rf", alias="champion")),
        ("models:/a.b_c@Prod-2", ModelURI("models", name="a.b_c", alias="Prod-2")),
        ("models:/wine-rf/Production", ModelURI("models", name="wine-rf", stage="Production")),
        ("models:/wine-rf/production", ModelURI("models", name="wine-rf", stage="Production")),
        ("models:/wine-rf/STAGING", ModelURI("models", name="wine-rf", stage="Staging")),
        ("models:/wine-rf/archived", ModelURI("models", name="wine-rf", stage="Archived")),
        ("models:/wine-rf/None", ModelURI("models", name="wine-rf", stage="None")),
        ("models:/wine-rf/latest", ModelURI("models", name="wine-rf", latest=True)),
        ("models:/wine-rf/Latest", ModelURI("models", name="wine-rf", latest=True)),
        (f"runs:/{RUN}/model", ModelURI("runs", run_id=RUN, artifact_path="model")),
        ("runs:/0123/models/rf/", ModelURI("runs", run_id="0123", artifact_path="models/rf")),
    ],
)
def test_accepted_forms(uri, expected):
    assert parse_model_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("wine-rf", "starts with neither"),
        ("models:wine-rf/3", "starts with neither"),
        ("s3://bucket/model", "starts with neither"),
        ("models:/wine-rf", "names no version, stage, alias"),
        ("models:/wine-rf/", "names no version, stage, alias"),
        ("models:/wine-rf/0", "versions start at 1"),
        ("models:/wine-rf/3/extra", "is not a version number"),
        ("models:/wine-rf/prod", "'prod' is not a version number, 'latest' or a stage"),
        ("models:/wine-rf/v3", "is not a version number"),
        ("models:/wine-rf/-1", "is not a version number"),
        ("models:/wine-rf@", "alias must be a non-empty string"),
        ("models:/wine-rf@latest", "reserved"),
        ("models:/wine-rf@a/b", "not allowed"),
        ("models:/@champion", "model name"),
        ("models://3", "model name"),
        ("models:/bad name/3", "model name 'bad name'"),
        ("runs:/", "names no run"),
        (f"runs:/{RUN}", "names no artifact path"),
        (f"runs:/{RUN}/", "names no artifact path"),
        (f"runs:/{RUN}/../secrets", "'.' or '..'"),
        (None, "not a string"),
    ],
)
def test_everything_else_is_refused_with_the_accepted_forms(uri, why):
    with pytest.raises(InvalidInput) as err:
        parse_model_uri(uri)
    assert why in err.value.message
    assert f"{uri!r} is not a model URI" in err.value.message
    for form in ("models:/NAME/VERSION", "models:/NAME@ALIAS", "models:/NAME/STAGE"):
        assert form in err.value.hint
    assert "models:/NAME/latest" in err.value.hint and "runs:/RUN_ID/PATH" in err.value.hint
