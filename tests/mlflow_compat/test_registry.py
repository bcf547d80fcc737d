"""The model registry through the real mlflow client: models, versions, stages, aliases, tags.

Every call of ``MlflowClient``'s registry API against a live server, what mltrail's own registry
and audit trail see of it afterwards, and the error codes the client gets for mistakes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.mlflow_compat.conftest import Served, error_code, raises_code

# mlflow warns about pickle formats and deprecated stages; the calls are the point here.
pytestmark = pytest.mark.filterwarnings("ignore")


def _client():
    from mlflow import MlflowClient

    return MlflowClient()



def _log_model(experiment: str, wine) -> tuple[str, Any, Any]:
    """A small model logged in a new run of ``experiment``: (run id, ModelInfo, the model)."""
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    X, y = wine
    mlflow.set_experiment(experiment)
    model = LogisticRegression(max_iter=200).fit(X, y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    return run.info.run_id, info, model


def _actions(served: Served, model: str) -> list[str]:
    mt_client = served.mltrail()
    try:
        return [e.action for e in mt_client.get_model_history(model)]
    finally:
        mt_client.close()


# -- registered models ---------------------------------------------------------------------------


def test_registered_model_create_get_update_tags_rename_delete(tracking: Served, name):
    c = _client()
    created = c.create_registered_model(name, tags={"team": "risk"}, description="first")
    assert (created.name, created.description, created.tags) == (name, "first", {"team": "risk"})
    got = c.get_registered_model(name)
    assert (got.name, got.description, got.tags) == (name, "first", {"team": "risk"})
    assert got.creation_timestamp > 0 and got.latest_versions == []

    updated = c.update_registered_model(name, description="second")
    assert updated.description == "second"
    c.set_registered_model_tag(name, "stage", "dev")
    c.delete_registered_model_tag(name, "team")
    got = c.get_registered_model(name)
    assert (got.description, got.tags) == ("second", {"stage": "dev"})

    c.rename_registered_model(name, name + "-b")  # MlflowClient returns nothing here
    assert c.get_registered_model(name + "-b").tags == {"stage": "dev"}
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_registered_model, name)

    c.delete_registered_model(name + "-b")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_registered_model, name + "-b")
    assert [m.name for m in c.search_registered_models(f"name LIKE '{name}%'")] == []

    # Each change is an event of mltrail's audit trail, newest first, filed under its name.
    before = _actions(tracking, name)
    assert before == [
        "rename_model",
        "delete_model_tag",
        "set_model_tag",
        "update_model",
        "create_model",
    ]
    assert _actions(tracking, name + "-b") == ["delete_model", "rename_model"]


def test_registered_model_errors(tracking: Served, name):
    c = _client()
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_registered_model, name)
    raises_code("RESOURCE_DOES_NOT_EXIST", c.update_registered_model, name, description="x")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.delete_registered_model, name)
    c.create_registered_model(name)
    message = raises_code("RESOURCE_ALREADY_EXISTS", c.create_registered_model, name)
    assert name in message
    c.create_registered_model(name + "-other")
    raises_code("RESOURCE_ALREADY_EXISTS", c.rename_registered_model, name, name + "-other")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_model_version, name, "1")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_latest_versions, name + "-missing")
    # MLflow's codes for aliases: a missing model is RESOURCE_DOES_NOT_EXIST, a missing alias
    # INVALID_PARAMETER_VALUE, and 'latest' of a model without versions RESOURCE_DOES_NOT_EXIST.
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_model_version_by_alias, name + "-missing", "a")
    message = raises_code("INVALID_PARAMETER_VALUE", c.get_model_version_by_alias, name, "champion")
    assert "champion" in message
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_model_version_by_alias, name, "latest")
    # Deleting a tag or alias the model does not have is no error, as in MLflow, and no event.
    c.delete_registered_model_tag(name, "no-such-tag")
    c.delete_registered_model_alias(name, "no-such-alias")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.delete_registered_model_tag, name + "-missing", "k")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.delete_registered_model_alias, name + "-missing", "a")
    assert _actions(tracking, name) == ["create_model"]


def test_registered_model_search_filters_orders_and_pages(tracking: Served, name):
    from mlflow.entities.model_registry import RegisteredModelTag

    c = _client()
    names = [f"{name}-{i}" for i in range(5)]
    for i, model in enumerate(names):
        c.create_registered_model(model, tags={"k": "v" if i % 2 else "w"})
    c.create_registered_model(f"other-{name}", tags={"k": "v"})

    found = c.search_registered_models(f"name LIKE '{name}-%'")
    assert [m.name for m in found] == names  # by name, ascending
    assert [m.tags for m in found][:2] == [{"k": "w"}, {"k": "v"}]
    tagged = c.search_registered_models(f"name LIKE '{name}-%' AND tags.k = 'v'")
    assert [m.name for m in tagged] == [names[1], names[3]]
    exact = c.search_registered_models(f"name = '{names[2]}'")
    assert [m.name for m in exact] == [names[2]]
    assert c.search_registered_models(f"name LIKE '{name}-%' AND tags.k = 'none'") == []

    seen, token, pages = [], None, 0
    while True:
        page = c.search_registered_models(
            f"name LIKE '{name}-%'", max_results=2, order_by=["name DESC"], page_token=token
        )
        assert len(page) <= 2
        seen.extend(m.name for m in page)
        pages += 1
        token = page.token
        if not token:
            break
    assert seen == list(reversed(names)) and pages == 3

    import mlflow

    fluent = mlflow.search_registered_models(filter_string=f"tags.k = 'v' AND name LIKE '%{name}%'")
    assert {m.name for m in fluent} == {names[1], names[3], f"other-{name}"}

    # MLflow's prompts are registered models with a tag; model searches leave them out (the
    # client adds tag.`mlflow.prompt.is_prompt` != 'true' to every filter) unless asked for.
    prompt = f"{name}-prompt"
    store = c._get_registry_client().store  # the REST store, past the client's own checks
    store.create_registered_model(prompt, [RegisteredModelTag("mlflow.prompt.is_prompt", "true")])
    assert prompt not in [m.name for m in c.search_registered_models(f"name LIKE '{name}-%'")]
    assert prompt not in [m.name for m in store.search_registered_models(None, max_results=100)]
    asked = store.search_registered_models(
        f"name LIKE '{name}%' AND tags.`mlflow.prompt.is_prompt` = 'true'", max_results=100
    )
    assert [m.name for m in asked] == [prompt]


# -- versions, stages, aliases, loading ----------------------------------------------------------


def test_the_whole_version_lifecycle_on_sqlite_and_postgres(server: Served, wine, name):
    import mlflow
    import mlflow.pyfunc

    X, _ = wine
    mlflow.set_tracking_uri(server.url)
    c = _client()
    run_id, info, model = _log_model(name, wine)
    expected = list(model.predict(X))

    # Two versions of one model: by the run's artifact path and by the logged model's id. (The
    # client finds the run's "model" folder to be a logged model's, and registers that.)
    v1 = mlflow.register_model(f"runs:/{run_id}/model", name, tags={"from": "run"})
    assert (v1.name, v1.version, v1.run_id, v1.status) == (name, "1", run_id, "READY")
    assert v1.tags == {"from": "run"}
    v2 = mlflow.register_model(f"models:/{info.model_id}", name)
    assert (v2.version, v2.run_id, v2.status) == ("2", run_id, "READY")
    assert v1.source == v2.source == f"models:/{info.model_id}"

    got = c.get_model_version(name, "1")
    assert (got.version, got.run_id, got.current_stage) == ("1", run_id, "None")
    assert got.source == f"models:/{info.model_id}" and got.aliases == []
    updated = c.update_model_version(name, "1", description="from the run")
    assert updated.description == "from the run"
    assert c.get_model_version(name, "1").description == "from the run"

    # mltrail's registry holds the same versions, with their source run.
    mt_client = server.mltrail()
    ours = mt_client.list_model_versions(name)
    assert [(mv.version, mv.run_id) for mv in ours] == [(2, run_id), (1, run_id)]
    assert all(mv.tree_hash for mv in ours)
    mt_client.close()

    # Stages: a second version moved to Staging with archive_existing_versions archives the first.
    staged = c.transition_model_version_stage(name, "1", "Staging")
    assert staged.current_stage == "Staging"
    assert [mv.version for mv in c.get_latest_versions(name, stages=["Staging"])] == ["1"]
    moved = c.transition_model_version_stage(name, "2", "Staging", archive_existing_versions=True)
    assert moved.current_stage == "Staging"
    assert c.get_model_version(name, "1").current_stage == "Archived"
    assert [mv.version for mv in c.get_latest_versions(name, stages=["Staging"])] == ["2"]
    assert [mv.version for mv in c.get_latest_versions(name, stages=["Archived"])] == ["1"]
    assert [mv.version for mv in c.get_latest_versions(name, stages=["Production"])] == []
    latest = {mv.current_stage: mv.version for mv in c.get_latest_versions(name)}
    assert latest == {"Staging": "2", "Archived": "1"}
    listed = c.get_registered_model(name).latest_versions
    assert {mv.current_stage: mv.version for mv in listed} == latest

    # Aliases.
    c.set_registered_model_alias(name, "champion", "1")
    c.set_registered_model_alias(name, "challenger", "2")
    assert c.get_model_version_by_alias(name, "champion").version == "1"
    assert c.get_registered_model(name).aliases == {"champion": "1", "challenger": "2"}
    assert c.get_model_version(name, "2").aliases == ["challenger"]
    c.set_registered_model_alias(name, "champion", "2")  # moves
    assert sorted(c.get_model_version(name, "2").aliases) == ["challenger", "champion"]
    assert c.get_model_version(name, "1").aliases == []
    c.delete_registered_model_alias(name, "challenger")
    assert c.get_registered_model(name).aliases == {"champion": "2"}
    raises_code("INVALID_PARAMETER_VALUE", c.get_model_version_by_alias, name, "challenger")
    assert c.get_model_version_by_alias(name, "latest").version == "2"  # MLflow's reserved alias

    # Loading by version, alias and stage gives the model that was logged.
    for uri in (f"models:/{name}/1", f"models:/{name}@champion", f"models:/{name}/Staging"):
        assert list(mlflow.pyfunc.load_model(uri).predict(X)) == expected, uri

    # Version tags.
    c.set_model_version_tag(name, "2", "validated", "yes")
    c.set_model_version_tag(name, "2", "drop", "me")
    c.delete_model_version_tag(name, "2", "drop")
    assert c.get_model_version(name, "2").tags == {"validated": "yes"}

    # Search.
    by_name = c.search_model_versions(f"name = '{name}'")
    assert sorted(mv.version for mv in by_name) == ["1", "2"]
    by_run = c.search_model_versions(f"run_id = '{run_id}'")
    assert {(mv.name, mv.version) for mv in by_run} == {(name, "1"), (name, "2")}
    tagged = c.search_model_versions(f"name = '{name}' AND tags.validated = 'yes'")
    assert [mv.version for mv in tagged] == ["2"]
    assert c.search_model_versions(f"name = '{name}-missing'") == []
    fluent = mlflow.search_model_versions(filter_string=f"name = '{name}'")
    assert sorted(mv.version for mv in fluent) == ["1", "2"]

    # The download URI names the version's files; the client fetches the model from it.
    uri = c.get_model_version_download_uri(name, "2")
    assert uri == f"mlflow-artifacts:/model-versions/{name}/2"
    assert list(mlflow.pyfunc.load_model(uri).predict(X)) == expected

    # Deleting a version.
    c.delete_model_version(name, "1")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_model_version, name, "1")
    assert [mv.version for mv in c.search_model_versions(f"name = '{name}'")] == ["2"]
    assert [mv.version for mv in c.get_latest_versions(name)] == ["2"]

    # Every change above is an event of mltrail's audit trail, by the one (unnamed) caller.
    mt_client = server.mltrail()
    events = mt_client.get_model_history(name)
    mt_client.close()
    assert {e.actor for e in events} == {v1.user_id} and v1.user_id
    actions = {e.action for e in events}
    assert {
        "create_model",
        "create_version",
        "update_version",
        "transition_stage",
        "set_alias",
        "delete_alias",
        "set_version_tag",
        "delete_version_tag",
        "delete_version",
    } <= actions
    c.delete_registered_model(name)
    assert _actions(server, name)[0] == "delete_model"
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_model_version, name, "2")


def test_versions_created_by_the_client_directly_and_in_log_model(tracking: Served, wine, name):
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    X, y = wine
    c = _client()
    run_id, info, model = _log_model(name, wine)
    c.create_registered_model(name)
    mv = c.create_model_version(
        name, f"runs:/{run_id}/model", run_id=run_id, description="direct", tags={"a": "b"}
    )
    assert (mv.version, mv.run_id, mv.description, mv.tags) == ("1", run_id, "direct", {"a": "b"})
    by_id = c.create_model_version(name, info.model_uri, model_id=info.model_id)
    assert (by_id.version, by_id.run_id) == ("2", run_id)
    # As MLflow's server does, the logged model lists the versions made from it.
    listed = json.loads(c.get_logged_model(info.model_id).tags["mlflow.modelVersions"])
    assert listed == [{"name": name, "version": "2"}]

    # log_model(registered_model_name=...) registers a version of its own.
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            LogisticRegression(max_iter=200).fit(X, y),
            name="model",
            registered_model_name=name,
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    got = c.get_model_version(name, "3")
    assert got.run_id == run.info.run_id
    assert [mv.run_id for mv in c.search_model_versions(f"run_id = '{run.info.run_id}'")] == [
        run.info.run_id
    ]
    mt_client = tracking.mltrail()
    assert [mv.version for mv in mt_client.list_model_versions(name)] == [3, 2, 1]
    mt_client.close()
    expected = list(model.predict(X))
    assert list(mlflow.pyfunc.load_model(f"models:/{name}/2").predict(X)) == expected

    # Promoting a version into another model: copy_model_version and register_model send the
    # source as models:/NAME/VERSION; an alias or stage works as a source too.
    prod = f"{name}-prod"
    copied = c.copy_model_version(f"models:/{name}/2", prod)
    assert (copied.name, copied.version, copied.run_id) == (prod, "1", run_id)
    listed = json.loads(c.get_logged_model(info.model_id).tags["mlflow.modelVersions"])
    assert listed == [{"name": name, "version": "2"}, {"name": prod, "version": "1"}]
    copied = c.copy_model_version(f"models:/{name}/1", prod)  # with its tags and description
    assert (copied.version, copied.tags, copied.description) == ("2", {"a": "b"}, "direct")
    promoted = mlflow.register_model(f"models:/{name}/3", prod)
    assert (promoted.version, promoted.run_id) == ("3", run.info.run_id)
    c.set_registered_model_alias(name, "champion", "2")
    assert c.create_model_version(prod, f"models:/{name}@champion").run_id == run_id
    c.transition_model_version_stage(name, "3", "Production")
    assert c.create_model_version(prod, f"models:/{name}/Production").version == "5"
    assert list(mlflow.pyfunc.load_model(f"models:/{prod}/1").predict(X)) == expected
    c.delete_model_version(name, "1")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.create_model_version, prod, f"models:/{name}/1")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.create_model_version, prod, f"models:/{name}/Staging")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.create_model_version, prod, f"models:/{name}-no/1")
    assert [mv.version for mv in c.search_model_versions(f"name = '{prod}'")] == [
        "5", "4", "3", "2", "1"
    ]  # fmt: skip


def test_version_errors(tracking: Served, wine, name):
    import mlflow
    from mlflow.exceptions import MlflowException

    c = _client()
    run_id, info, _ = _log_model(name, wine)
    mlflow.register_model(f"runs:/{run_id}/model", name)

    # An alias the client itself refuses, and names only the server refuses ('latest', 'v<n>').
    raises_code("INVALID_PARAMETER_VALUE", c.set_registered_model_alias, name, "bad alias!", "1")
    for reserved in ("latest", "v1", "V12"):
        raises_code("INVALID_PARAMETER_VALUE", c.set_registered_model_alias, name, reserved, "1")
    store = c._get_registry_client().store  # past the client's own checks: the server's answer
    bad = "bad alias!"
    raises_code("INVALID_PARAMETER_VALUE", store.set_registered_model_alias, name, bad, "1")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.set_registered_model_alias, name, "champion", "9")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_model_version, name, "9")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.transition_model_version_stage, name, "9", "Staging")
    raises_code("INVALID_PARAMETER_VALUE", c.transition_model_version_stage, name, "1", "Nowhere")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.delete_model_version_tag, name, "9", "k")
    c.delete_model_version_tag(name, "1", "no-such-tag")  # no error, as in MLflow

    # A source that holds no model. mlflow.register_model looks at the run's artifacts first
    # and, finding no MLmodel there and no logged model of that name, refuses by itself, with
    # INTERNAL_ERROR: mlflow 3.17 raises MlflowException(error_code="NOT_FOUND"), a name where
    # the class takes a number, and so falls back to INTERNAL_ERROR.
    with pytest.raises(MlflowException) as err:
        mlflow.register_model(f"runs:/{run_id}/nothing-here", name)
    assert error_code(err.value) == "INTERNAL_ERROR"
    assert "Unable to find a logged_model with artifact_path nothing-here" in str(err.value)
    # Asked directly, the server refuses to make a version of it.
    raises_code(
        "INVALID_PARAMETER_VALUE",
        c.create_model_version,
        name,
        f"runs:/{run_id}/nothing-here",
        run_id=run_id,
    )
    raises_code("RESOURCE_DOES_NOT_EXIST", c.create_model_version, name, "runs:/" + "0" * 32 + "/m")
    # A version of a model that does not exist (mlflow.register_model creates it first).
    raises_code("RESOURCE_DOES_NOT_EXIST", c.create_model_version, f"{name}-new", info.model_uri)
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_registered_model, f"{name}-new")
    assert [mv.version for mv in c.search_model_versions(f"name = '{name}'")] == ["1"]
