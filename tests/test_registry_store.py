"""The model registry in the SQL store (SQLite and PostgreSQL): rules, errors, audit trail."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from mltrail.entities import ModelStage, ModelVersion, RegisteredModel, RegistryEvent
from mltrail.errors import AlreadyExists, InvalidInput, InvalidState, InvalidValue, NotFound
from mltrail.store import migrate, open_store
from mltrail.store.engine import make_engine
from mltrail.store.sql import SqlStore

H1, H2, H3 = "1" * 64, "a" * 64, "b" * 64
RUN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def store(store_uri: str):
    s = open_store(store_uri)
    yield s
    s.close()


def _version(store: SqlStore, name: str = "wine-rf", tree: str = H1, **kw) -> ModelVersion:
    args = {
        "source": f"runs:/{RUN}/model",
        "run_id": RUN,
        "artifact_path": "model",
        "tree_hash": tree,
        "description": None,
        "tags": None,
        "actor": "alice",
    }
    args.update(kw)
    return store.create_model_version(name, **args)


def _actions(store: SqlStore, name: str = "wine-rf", **kw) -> list[tuple]:
    return [
        (e.action, e.version, e.key, e.before, e.after)
        for e in reversed(store.get_registry_events(name, **kw))
    ]


# -- registered models ---------------------------------------------------------------------------


def test_create_and_get_registered_model(store):
    m = store.create_registered_model("wine-rf", "red wines", {"team": "risk"}, "alice")
    assert (m.name, m.description, m.tags, m.aliases, m.latest_version) == (
        "wine-rf",
        "red wines",
        {"team": "risk"},
        {},
        None,
    )
    assert m.creation_time == m.last_update_time > 0
    assert store.get_registered_model("wine-rf") == m
    assert RegisteredModel.from_dict(m.to_dict()) == m
    [event] = store.get_registry_events("wine-rf")
    assert (event.action, event.actor, event.after, event.version) == (
        "create_model",
        "alice",
        "wine-rf",
        None,
    )
    assert RegistryEvent.from_dict(event.to_dict()) == event


def test_a_taken_name_is_refused(store):
    store.create_registered_model("wine-rf", None, None, "alice")
    with pytest.raises(AlreadyExists, match="registered model wine-rf already exists") as err:
        store.create_registered_model("wine-rf", "again", None, "bob")
    assert "register_model" in err.value.hint
    assert len(store.get_registry_events("wine-rf")) == 1


@pytest.mark.parametrize(
    "name", ["", ".hidden", "-flag", "has space", "a/b", "x" * 256, "vin-rosé", "a:b", None]
)
def test_invalid_model_names_are_refused(store, name):
    with pytest.raises(InvalidInput, match="model name") as err:
        store.create_registered_model(name, None, None, "alice")
    assert isinstance(err.value, InvalidValue)
    with pytest.raises(InvalidInput):
        _version(store, name)
    assert store.list_registered_models() == []


@pytest.mark.parametrize("name", ["wine-rf", "a.b_c-1", "_x", "1model", "X" * 255])
def test_valid_model_names(store, name):
    assert store.create_registered_model(name, None, None, "alice").name == name


def test_unknown_model_names_the_model_and_lists_some(store):
    with pytest.raises(NotFound, match="'nope' does not exist") as err:
        store.get_registered_model("nope")
    assert "no registered models yet" in err.value.hint
    for name in ("b-model", "a-model"):
        store.create_registered_model(name, None, None, "alice")
    with pytest.raises(NotFound) as err:
        store.get_model_version("nope", 1)
    assert err.value.hint == "Registered models: a-model, b-model."
    for i in range(12):
        store.create_registered_model(f"m{i:02}", None, None, "alice")
    with pytest.raises(NotFound) as err:
        store.list_model_versions("nope")
    assert "search_registered_models" in err.value.hint


def test_list_registered_models_filters_orders_and_pages(store):
    for name in ("wine-rf", "beer-gbm", "wine-lr", "Wine-big"):
        store.create_registered_model(name, None, None, "alice")
    _version(store, "wine-lr")
    names = [m.name for m in store.list_registered_models()]
    assert names == ["Wine-big", "beer-gbm", "wine-lr", "wine-rf"]
    # LIKE is case-sensitive on both databases.
    assert [m.name for m in store.list_registered_models("wine%")] == ["wine-lr", "wine-rf"]
    page = store.list_registered_models(max_results=3)
    assert [m.name for m in page] == names[:3] and page.next_page_token
    rest = store.list_registered_models(max_results=3, page_token=page.next_page_token)
    assert [m.name for m in rest] == ["wine-rf"] and rest.next_page_token is None
    assert [m.latest_version for m in page] == [None, None, 1]
    with pytest.raises(InvalidInput, match="max_results 0"):
        store.list_registered_models(max_results=0)
    with pytest.raises(InvalidInput, match="page token"):
        store.list_registered_models(page_token="garbage")


def test_update_description_records_old_and_new(store):
    store.create_registered_model("wine-rf", "old", None, "alice")
    m = store.update_registered_model("wine-rf", "new", "bob", comment="clearer")
    assert m.description == "new" and m.last_update_time >= m.creation_time
    store.update_registered_model("wine-rf", "new", "bob")  # unchanged: no event
    event = store.get_registry_events("wine-rf")[0]
    assert (event.action, event.before, event.after, event.actor, event.comment) == (
        "update_model",
        "old",
        "new",
        "bob",
        "clearer",
    )
    assert len(store.get_registry_events("wine-rf")) == 2


def test_rename_moves_versions_and_files_the_event_under_both_names(store):
    _version(store)
    store.set_model_alias("wine-rf", "champion", 1, "alice")
    store.create_registered_model("beer", None, None, "alice")
    with pytest.raises(AlreadyExists, match="beer already exists"):
        store.rename_registered_model("wine-rf", "beer", "bob")
    with pytest.raises(InvalidValue, match="'bad name'"):
        store.rename_registered_model("wine-rf", "bad name", "bob")
    m = store.rename_registered_model("wine-rf", "red-wine", "bob")
    assert (m.name, m.aliases, m.latest_version) == ("red-wine", {"champion": 1}, 1)
    assert store.get_model_version("red-wine", 1).name == "red-wine"
    with pytest.raises(NotFound):
        store.get_registered_model("wine-rf")
    for name in ("wine-rf", "red-wine"):
        event = store.get_registry_events(name)[0]
        assert (event.model_name, event.action, event.before, event.after) == (
            name,
            "rename_model",
            "wine-rf",
            "red-wine",
        )
    # The old name is free again, and its history is not mixed with the renamed model's.
    _version(store, "wine-rf")
    assert store.get_registered_model("wine-rf").latest_version == 1


def test_model_tags_set_change_delete(store):
    store.create_registered_model("wine-rf", None, None, "alice")
    store.set_registered_model_tag("wine-rf", "team", "risk", "alice")
    store.set_registered_model_tag("wine-rf", "team", "risk", "alice")  # unchanged: no event
    store.set_registered_model_tag("wine-rf", "team", "fraud", "bob")
    assert store.get_registered_model("wine-rf").tags == {"team": "fraud"}
    with pytest.raises(NotFound, match="has no tag 'nope'") as err:
        store.delete_registered_model_tag("wine-rf", "nope", "bob")
    assert err.value.hint == "Its tags: team."
    store.delete_registered_model_tag("wine-rf", "team", "bob")
    assert store.get_registered_model("wine-rf").tags == {}
    assert _actions(store)[1:] == [
        ("set_model_tag", None, "team", None, "risk"),
        ("set_model_tag", None, "team", "risk", "fraud"),
        ("delete_model_tag", None, "team", "fraud", None),
    ]
    with pytest.raises(InvalidInput):
        store.set_registered_model_tag("wine-rf", "", "x", "bob")
    with pytest.raises(InvalidValue):
        store.set_registered_model_tag("wine-rf", "k", "x" * 8001, "bob")


def test_actor_is_required(store):
    with pytest.raises(InvalidValue, match="actor"):
        store.create_registered_model("wine-rf", None, None, "")


# -- versions ------------------------------------------------------------------------------------


def test_create_model_version_creates_the_model_and_numbers_versions(store):
    v1 = _version(store, description="first", tags={"algo": "rf"})
    assert (v1.name, v1.version, v1.run_id, v1.source, v1.artifact_path, v1.tree_hash) == (
        "wine-rf",
        1,
        RUN,
        f"runs:/{RUN}/model",
        "model",
        H1,
    )
    assert (v1.status, v1.stage, v1.lifecycle_stage, v1.user_id) == (
        "READY",
        "None",
        "active",
        "alice",
    )
    assert (v1.description, v1.tags, v1.aliases) == ("first", {"algo": "rf"}, [])
    assert ModelVersion.from_dict(v1.to_dict()) == v1
    assert store.get_model_version("wine-rf", 1) == v1
    assert [_version(store, tree=h).version for h in (H2, H3)] == [2, 3]
    assert store.get_registered_model("wine-rf").latest_version == 3
    assert [v.version for v in store.list_model_versions("wine-rf")] == [3, 2, 1]
    assert _actions(store)[:2] == [
        ("create_model", None, None, None, "wine-rf"),
        ("create_version", 1, None, None, f"runs:/{RUN}/model"),
    ]


@pytest.mark.parametrize("tree", ["A" * 64, "a" * 63, "g" * 64, "", None, "a" * 65])
def test_a_bad_tree_hash_is_refused(store, tree):
    with pytest.raises(InvalidInput, match="tree hash") as err:
        _version(store, tree=tree)
    assert "tree object" in err.value.hint
    assert store.list_registered_models() == []


def test_a_bad_source_or_run_id_is_refused(store):
    with pytest.raises(InvalidInput, match="source"):
        _version(store, source="")
    with pytest.raises(InvalidInput, match="run id"):
        _version(store, run_id="x" * 33)


def test_deleted_versions_keep_their_number(store):
    for h in (H1, H2, H3):
        _version(store, tree=h)
    store.delete_model_version("wine-rf", 3, "bob", comment="bad data")
    assert _version(store).version == 4
    assert [v.version for v in store.list_model_versions("wine-rf")] == [4, 2, 1]
    every = store.list_model_versions("wine-rf", include_deleted=True)
    assert [(v.version, v.lifecycle_stage) for v in every] == [
        (4, "active"),
        (3, "deleted"),
        (2, "active"),
        (1, "active"),
    ]
    assert store.get_model_version("wine-rf", 3).lifecycle_stage == "deleted"
    store.delete_model_version("wine-rf", 4, "bob")
    assert store.get_registered_model("wine-rf").latest_version == 2
    assert _version(store).version == 5
    event = store.get_registry_events("wine-rf", version=3)[0]
    assert (event.action, event.before, event.after, event.comment) == (
        "delete_version",
        "active",
        "deleted",
        "bad data",
    )


def test_a_version_number_above_the_highest_may_be_asked_for(store):
    from mltrail.errors import AlreadyExists

    assert _version(store).version == 1
    assert _version(store, tree=H2, version=5).version == 5  # an import keeping a gap
    assert _version(store, tree=H3).version == 6
    for taken in (5, 3):
        with pytest.raises(AlreadyExists, match=f"versions up to 6: version {taken} cannot"):
            _version(store, version=taken)
    assert [v.version for v in store.list_model_versions("wine-rf")] == [6, 5, 1]


def test_a_deleted_version_cannot_change(store):
    _version(store)
    _version(store)
    store.delete_model_version("wine-rf", 2, "bob")
    changes = [
        lambda: store.set_model_alias("wine-rf", "champion", 2, "bob"),
        lambda: store.transition_model_version_stage("wine-rf", 2, "Staging", False, "bob"),
        lambda: store.update_model_version("wine-rf", 2, "x", "bob"),
        lambda: store.set_model_version_tag("wine-rf", 2, "k", "v", "bob"),
        lambda: store.delete_model_version_tag("wine-rf", 2, "k", "bob"),
    ]
    for change in changes:
        with pytest.raises(InvalidState) as err:
            change()
        assert err.value.message == "version 2 of wine-rf is deleted"
    with pytest.raises(InvalidState, match="already deleted"):
        store.delete_model_version("wine-rf", 2, "bob")
    assert len(store.get_registry_events("wine-rf")) == 4  # nothing refused was recorded


def test_unknown_version_lists_the_existing_ones(store):
    for _ in range(3):
        _version(store)
    store.delete_model_version("wine-rf", 2, "bob")
    with pytest.raises(NotFound, match="version 7 of wine-rf does not exist") as err:
        store.get_model_version("wine-rf", 7)
    assert err.value.hint == "Its versions: 1, 3."
    with pytest.raises(InvalidValue, match="whole number"):
        store.get_model_version("wine-rf", 0)
    store.create_registered_model("empty", None, None, "alice")
    with pytest.raises(NotFound) as err:
        store.get_model_version("empty", 1)
    assert "no active versions" in err.value.hint


def test_version_description_and_tags(store):
    _version(store)
    mv = store.update_model_version("wine-rf", 1, "tuned", "bob")
    assert mv.description == "tuned"
    store.set_model_version_tag("wine-rf", 1, "validated", "yes", "bob")
    store.set_model_version_tag("wine-rf", 1, "validated", "no", "carol", comment="recheck")
    assert store.get_model_version("wine-rf", 1).tags == {"validated": "no"}
    with pytest.raises(NotFound, match="version 1 of wine-rf has no tag 'x'") as err:
        store.delete_model_version_tag("wine-rf", 1, "x", "bob")
    assert err.value.hint == "Its tags: validated."
    store.delete_model_version_tag("wine-rf", 1, "validated", "bob")
    assert store.get_model_version("wine-rf", 1).tags == {}
    assert _actions(store, version=1)[1:] == [
        ("update_version", 1, None, None, "tuned"),
        ("set_version_tag", 1, "validated", None, "yes"),
        ("set_version_tag", 1, "validated", "yes", "no"),
        ("delete_version_tag", 1, "validated", "no", None),
    ]


def test_find_model_versions_by_run_or_tree(store):
    _version(store, "a-model", tree=H1)
    _version(store, "b-model", tree=H2)
    _version(store, "b-model", tree=H1, run_id=None)
    found = store.find_model_versions(tree_hash=H1)
    assert [(v.name, v.version) for v in found] == [("a-model", 1), ("b-model", 2)]
    found = store.find_model_versions(run_id=RUN)
    assert [(v.name, v.version) for v in found] == [("a-model", 1), ("b-model", 1)]
    assert store.find_model_versions(run_id=RUN, tree_hash=H2)[0].name == "b-model"
    store.delete_model_version("a-model", 1, "bob")
    assert len(store.find_model_versions(tree_hash=H1)) == 1
    assert len(store.find_model_versions(tree_hash=H1, include_deleted=True)) == 2
    with pytest.raises(InvalidInput, match="run id, a tree hash"):
        store.find_model_versions()


# -- aliases -------------------------------------------------------------------------------------


def test_aliases_set_move_resolve_delete(store):
    for _ in range(3):
        _version(store)
    store.set_model_alias("wine-rf", "champion", 1, "alice")
    store.set_model_alias("wine-rf", "Champion", 3, "alice")  # case is kept: another alias
    store.set_model_alias("wine-rf", "champion", 1, "alice")  # unchanged: no event
    store.set_model_alias("wine-rf", "champion", 2, "bob", comment="better AUC")
    assert store.get_model_version_by_alias("wine-rf", "champion").version == 2
    assert store.get_model_version_by_alias("wine-rf", "Champion").version == 3
    assert store.get_registered_model("wine-rf").aliases == {"Champion": 3, "champion": 2}
    assert store.get_model_version("wine-rf", 2).aliases == ["champion"]
    assert store.get_model_version("wine-rf", 1).aliases == []
    store.delete_model_alias("wine-rf", "Champion", "bob")
    assert _actions(store)[4:] == [
        ("set_alias", 1, "champion", None, "1"),
        ("set_alias", 3, "Champion", None, "3"),
        ("set_alias", 2, "champion", "1", "2"),
        ("delete_alias", 3, "Champion", "3", None),
    ]
    assert store.get_registry_events("wine-rf", limit=2)[1].comment == "better AUC"


def test_unknown_alias_lists_the_existing_ones(store):
    _version(store)
    with pytest.raises(NotFound, match="wine-rf has no alias 'prod'") as err:
        store.get_model_version_by_alias("wine-rf", "prod")
    assert "has no aliases" in err.value.hint
    store.set_model_alias("wine-rf", "champion", 1, "alice")
    with pytest.raises(NotFound) as err:
        store.delete_model_alias("wine-rf", "prod", "bob")
    assert err.value.hint == "Its aliases: champion (version 1)."
    with pytest.raises(NotFound, match="version 5 of wine-rf"):
        store.set_model_alias("wine-rf", "prod", 5, "bob")


@pytest.mark.parametrize(
    "alias", ["latest", "LATEST", "v3", "V12", "", "has space", "a/b", "a.b", "x" * 256, 3]
)
def test_invalid_aliases_are_refused(store, alias):
    _version(store)
    with pytest.raises(InvalidValue, match="alias") as err:
        store.set_model_alias("wine-rf", alias, 1, "bob")
    assert err.value.hint
    assert store.get_registered_model("wine-rf").aliases == {}


@pytest.mark.parametrize("alias", ["champion", "prod-2024", "A_b", "version3", "v", "x" * 255])
def test_valid_aliases(store, alias):
    _version(store)
    store.set_model_alias("wine-rf", alias, 1, "bob")
    assert store.get_model_version_by_alias("wine-rf", alias).version == 1


# -- stages --------------------------------------------------------------------------------------


def test_stages_accept_any_case_and_store_the_canonical_form(store):
    _version(store)
    mv = store.transition_model_version_stage("wine-rf", 1, "production", False, "bob")
    assert mv.stage == "Production" == ModelStage.PRODUCTION
    mv = store.transition_model_version_stage("wine-rf", 1, "STAGING", False, "bob", "rollback")
    assert mv.stage == "Staging"
    store.transition_model_version_stage("wine-rf", 1, "Staging", False, "bob")  # no event
    with pytest.raises(InvalidInput, match="unknown model stage 'prod'") as err:
        store.transition_model_version_stage("wine-rf", 1, "prod", False, "bob")
    assert err.value.hint == "Use one of: None, Staging, Production, Archived (any case)."
    assert _actions(store)[2:] == [
        ("transition_stage", 1, None, "None", "Production"),
        ("transition_stage", 1, None, "Production", "Staging"),
    ]


def test_archive_existing_archives_the_others_in_the_target_stage(store):
    for _ in range(4):
        _version(store)
    for n in (1, 2):
        store.transition_model_version_stage("wine-rf", n, "Production", False, "alice")
    store.transition_model_version_stage("wine-rf", 3, "Staging", False, "alice")
    mv = store.transition_model_version_stage("wine-rf", 4, "Production", True, "bob", "v4 wins")
    assert mv.stage == "Production"
    stages = {v.version: v.stage for v in store.list_model_versions("wine-rf")}
    assert stages == {4: "Production", 3: "Staging", 2: "Archived", 1: "Archived"}
    events = store.get_registry_events("wine-rf", limit=3)
    assert [(e.version, e.before, e.after, e.comment) for e in reversed(events)] == [
        (4, "None", "Production", "v4 wins"),
        (1, "Production", "Archived", "archived by the transition of version 4"),
        (2, "Production", "Archived", "archived by the transition of version 4"),
    ]
    with pytest.raises(InvalidInput, match="only applies to Staging and Production"):
        store.transition_model_version_stage("wine-rf", 3, "Archived", True, "bob")


def test_get_latest_versions(store):
    for _ in range(5):
        _version(store)
    store.transition_model_version_stage("wine-rf", 1, "Production", False, "bob")
    store.transition_model_version_stage("wine-rf", 2, "Production", False, "bob")
    store.transition_model_version_stage("wine-rf", 3, "Staging", False, "bob")
    store.delete_model_version("wine-rf", 5, "bob")
    latest = store.get_latest_versions("wine-rf")
    assert [(v.version, v.stage) for v in latest] == [
        (4, "None"),
        (3, "Staging"),
        (2, "Production"),
    ]
    latest = store.get_latest_versions("wine-rf", ["production", "archived", "staging"])
    assert [v.version for v in latest] == [2, 3]
    with pytest.raises(InvalidInput, match="unknown model stage"):
        store.get_latest_versions("wine-rf", ["live"])


# -- deletion ------------------------------------------------------------------------------------


def test_deleting_a_version_in_use_needs_force(store):
    _version(store)
    _version(store)
    store.set_model_alias("wine-rf", "champion", 1, "alice")
    store.set_model_alias("wine-rf", "backup", 1, "alice")
    store.transition_model_version_stage("wine-rf", 1, "Production", False, "alice")
    store.transition_model_version_stage("wine-rf", 2, "Staging", False, "alice")
    before = len(store.get_registry_events("wine-rf"))
    with pytest.raises(InvalidState) as err:
        store.delete_model_version("wine-rf", 1, "bob")
    assert err.value.message == (
        "version 1 of wine-rf holds aliases backup, champion and is in Production; "
        "it cannot be deleted"
    )
    assert "force=True" in err.value.hint
    with pytest.raises(InvalidState, match="version 2 of wine-rf is in Staging"):
        store.delete_model_version("wine-rf", 2, "bob")
    assert len(store.get_registry_events("wine-rf")) == before
    store.delete_model_version("wine-rf", 1, "bob", force=True, comment="leaked labels")
    mv = store.get_model_version("wine-rf", 1)
    assert (mv.lifecycle_stage, mv.stage, mv.aliases) == ("deleted", "Archived", [])
    assert store.get_registered_model("wine-rf").aliases == {}
    events = store.get_registry_events("wine-rf", version=1, limit=4)
    assert [(e.action, e.key, e.before, e.after, e.comment) for e in reversed(events)] == [
        ("delete_alias", "backup", "1", None, "removed by the deletion of version 1"),
        ("delete_alias", "champion", "1", None, "removed by the deletion of version 1"),
        (
            "transition_stage",
            None,
            "Production",
            "Archived",
            "archived by the deletion of version 1",
        ),
        ("delete_version", None, "active", "deleted", "leaked labels"),
    ]


@pytest.mark.sql_only
def test_deleting_a_model_in_use_needs_force_and_keeps_its_events(store):
    _version(store)
    _version(store)
    store.set_model_alias("wine-rf", "champion", 2, "alice")
    with pytest.raises(InvalidState, match="wine-rf is in use: version 2 holds alias champion"):
        store.delete_registered_model("wine-rf", "bob")
    store.delete_model_alias("wine-rf", "champion", "alice")
    store.transition_model_version_stage("wine-rf", 1, "staging", False, "alice")
    with pytest.raises(InvalidState, match="version 1 is in Staging") as err:
        store.delete_registered_model("wine-rf", "bob")
    assert "force=True" in err.value.hint
    store.delete_registered_model("wine-rf", "bob", force=True, comment="retired")
    with pytest.raises(NotFound):
        store.get_registered_model("wine-rf")
    with pytest.raises(NotFound):
        store.get_model_version("wine-rf", 1)
    events = store.get_registry_events("wine-rf")
    assert (events[0].action, events[0].before, events[0].comment) == (
        "delete_model",
        "wine-rf",
        "retired; version 1 is in Staging",
    )
    assert len(events) == 7
    # Every row under the model went with it (cascades work on both databases).
    with store.engine.connect() as conn:
        for table in ("model_versions", "model_version_tags", "model_aliases"):
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 0
    # A new model under the same name starts again at 1; the old history stays readable.
    assert _version(store).version == 1
    assert [e.action for e in store.get_registry_events("wine-rf", limit=3)] == [
        "create_version",
        "create_model",
        "delete_model",
    ]


def test_an_unused_model_deletes_without_force(store):
    _version(store, tags={"a": "b"})
    store.delete_model_version("wine-rf", 1, "bob")
    store.delete_registered_model("wine-rf", "bob")
    assert store.list_registered_models() == []


# -- events and gc -------------------------------------------------------------------------------


def test_registry_events_filters_and_errors(store):
    for _ in range(3):
        _version(store)
    assert [e.version for e in store.get_registry_events("wine-rf")] == [3, 2, 1, None]
    assert [e.action for e in store.get_registry_events("wine-rf", version=2)] == ["create_version"]
    assert len(store.get_registry_events("wine-rf", limit=2)) == 2
    with pytest.raises(NotFound, match="'nope' does not exist"):
        store.get_registry_events("nope")
    with pytest.raises(NotFound, match="version 9 of wine-rf"):
        store.get_registry_events("wine-rf", version=9)
    with pytest.raises(InvalidInput, match="limit"):
        store.get_registry_events("wine-rf", limit=0)


def test_model_trees_are_referenced_for_gc(store):
    _version(store, tree=H2)
    _version(store, tree=H3)
    store.delete_model_version("wine-rf", 2, "bob")
    # Deleted versions too: gc keeps every one of them, whatever its scope.
    assert store.registry_tree_hashes() == {H2, H3}


# -- concurrency and migration -------------------------------------------------------------------


@pytest.mark.sql_only
def test_concurrent_writers_never_share_a_version_number(store_uri):
    # Separate stores: separate engines and connections, as separate processes would have.
    SqlStore(store_uri).close()
    stores = [SqlStore(store_uri) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    made: list[int] = []
    errors: list[BaseException] = []

    def work(s: SqlStore) -> None:
        try:
            barrier.wait()
            for _ in range(8):  # the first ones race to create the model itself too
                made.append(_version(s, "raced").version)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for s in stores:
        s.close()
    assert errors == []
    assert sorted(made) == list(range(1, 33))
    store = SqlStore(store_uri)
    events = store.get_registry_events("raced")
    assert [e.action for e in events].count("create_model") == 1
    assert len(events) == 33
    store.close()


@pytest.mark.sql_only
def test_a_0002_store_upgrades_to_the_registry(store_uri):
    engine = make_engine(store_uri)
    with engine.connect() as conn, conn.begin():
        migrate._upgrade(conn, "0002")
    with engine.begin() as conn:
        assert not sa.inspect(conn).has_table("registered_models")
        conn.exec_driver_sql(
            "INSERT INTO runs (run_pk, run_id, experiment_id, name, status, user_id, start_time, "
            f"lifecycle_stage) VALUES (7, '{RUN}', 0, 'old-run', 'FINISHED', 'alice', 1000, "
            "'active')"
        )
    engine.dispose()
    store = SqlStore(store_uri)
    try:
        with store.engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.HEAD
        assert store.get_run(RUN).info.run_name == "old-run"
        assert _version(store).run_id == RUN
    finally:
        store.close()
