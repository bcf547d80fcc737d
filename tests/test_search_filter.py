"""The runs filter and order-by parser: accepted forms, error messages and positions, fuzzing."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrail.errors import FilterSyntaxError, InvalidInput
from mltrail.search import (
    ORDER_DEFAULT,
    And,
    Comparison,
    Not,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)


def C(entity: str, key: str, op: str, value: object) -> Comparison:
    return Comparison(entity, key, op, value)


GOOD = [
    # metrics: every operator, number forms
    ("metrics.accuracy > 0.9", C("metric", "accuracy", ">", 0.9)),
    ("metrics.acc >= 1", C("metric", "acc", ">=", 1)),
    ("metrics.acc < -0.5", C("metric", "acc", "<", -0.5)),
    ("metrics.acc <= +2", C("metric", "acc", "<=", 2)),
    ("metrics.acc = 1e-3", C("metric", "acc", "=", 0.001)),
    ("metrics.acc = 1E+3", C("metric", "acc", "=", 1000.0)),
    ("metrics.acc = .5", C("metric", "acc", "=", 0.5)),
    ("metrics.acc = 5.", C("metric", "acc", "=", 5.0)),
    ("metrics.acc = -.25", C("metric", "acc", "=", -0.25)),
    ("metrics.acc != 3", C("metric", "acc", "!=", 3)),
    ("metrics.acc <> 3", C("metric", "acc", "!=", 3)),
    ("metrics.big = 1e999", C("metric", "big", "=", float("inf"))),
    ("metrics.big = 12345678901234567890", C("metric", "big", "=", 12345678901234567890.0)),
    ("metrics.acc IN (1, 2.5, -3)", C("metric", "acc", "IN", (1, 2.5, -3))),
    ("metrics.acc not in (1)", C("metric", "acc", "NOT IN", (1,))),
    ("metrics.acc IS NULL", C("metric", "acc", "IS NULL", None)),
    ("metrics.acc is not null", C("metric", "acc", "IS NOT NULL", None)),
    ("metric.acc>1", C("metric", "acc", ">", 1)),
    ("METRICS.acc>=-1", C("metric", "acc", ">=", -1)),
    # keys: punctuation, quoting
    ("metrics.val/loss < 1", C("metric", "val/loss", "<", 1)),
    ("metrics.a-b:c < 1", C("metric", "a-b:c", "<", 1)),
    ("params.optimizer.lr = '0.1'", C("param", "optimizer.lr", "=", "0.1")),
    ("metrics.`f1 score` > 0.5", C("metric", "f1 score", ">", 0.5)),
    ("tags.\"my tag\" = 'x'", C("tag", "my tag", "=", "x")),
    ("tags.`a``b` = 'x'", C("tag", "a`b", "=", "x")),
    ("metrics.Acc > 1", C("metric", "Acc", ">", 1)),
    ("metrics.précision > 1", C("metric", "précision", ">", 1)),
    # params and tags
    ("params.optimizer = 'adam'", C("param", "optimizer", "=", "adam")),
    ("param.x != 'a'", C("param", "x", "!=", "a")),
    ("parameter.x = ''", C("param", "x", "=", "")),
    ("parameters.x = 'it''s'", C("param", "x", "=", "it's")),
    ('params.x = "double"', C("param", "x", "=", "double")),
    ('params.x = "say ""hi"""', C("param", "x", "=", 'say "hi"')),
    ("params.max_depth = 5", C("param", "max_depth", "=", "5")),
    ("params.lr = 0.010", C("param", "lr", "=", "0.010")),
    ("params.lr = 1e-3", C("param", "lr", "=", "1e-3")),
    ("params.n = -5", C("param", "n", "=", "-5")),
    ("params.x LIKE 'a%'", C("param", "x", "LIKE", "a%")),
    ("params.x ilike '%A_'", C("param", "x", "ILIKE", "%A_")),
    ("params.x NOT LIKE 'a%'", C("param", "x", "NOT LIKE", "a%")),
    ("params.x not ilike 'a%'", C("param", "x", "NOT ILIKE", "a%")),
    ("params.x LIKE 'a\\_b\\\\'", C("param", "x", "LIKE", "a\\_b\\\\")),
    ("params.x IN ('a', 'b', 3)", C("param", "x", "IN", ("a", "b", "3"))),
    ("params.x NOT IN ('a')", C("param", "x", "NOT IN", ("a",))),
    ("params.x IS NULL", C("param", "x", "IS NULL", None)),
    ("tags.x IS NOT NULL", C("tag", "x", "IS NOT NULL", None)),
    ("tag.team = 'ml'", C("tag", "team", "=", "ml")),
    ("tags.mltrail.source = 'cli'", C("tag", "mltrail.source", "=", "cli")),
    # attributes and aliases
    ("attributes.run_id = 'abc'", C("attribute", "run_id", "=", "abc")),
    ("attribute.run_name LIKE 'x%'", C("attribute", "run_name", "LIKE", "x%")),
    ("attr.name = 'x'", C("attribute", "run_name", "=", "x")),
    ("run.status = 'finished'", C("attribute", "status", "=", "FINISHED")),
    (
        "attributes.status IN ('running', 'Failed')",
        C("attribute", "status", "IN", ("RUNNING", "FAILED")),
    ),
    ("attributes.status LIKE 'FIN%'", C("attribute", "status", "LIKE", "FIN%")),
    ("attributes.user_id != 'bob'", C("attribute", "user_id", "!=", "bob")),
    ("attributes.experiment_id = '3'", C("attribute", "experiment_id", "=", 3)),
    ("attributes.experiment_id IN (1, '2')", C("attribute", "experiment_id", "IN", (1, 2))),
    ("attributes.parent_run_id IS NULL", C("attribute", "parent_run_id", "IS NULL", None)),
    ("attributes.lifecycle_stage = 'deleted'", C("attribute", "lifecycle_stage", "=", "deleted")),
    ("attributes.start_time >= 1700000000000", C("attribute", "start_time", ">=", 1700000000000)),
    ("attributes.created < 5", C("attribute", "start_time", "<", 5)),
    ("attributes.end_time IS NOT NULL", C("attribute", "end_time", "IS NOT NULL", None)),
    ("attributes.end_time IN (1, 2)", C("attribute", "end_time", "IN", (1, 2))),
    ("attributes.Status = 'KILLED'", C("attribute", "status", "=", "KILLED")),
    # whitespace
    ("\n\tmetrics.a\t>\n1  ", C("metric", "a", ">", 1)),
]

A1 = C("metric", "a", ">", 1)
B2 = C("metric", "b", "<", 2)
C3 = C("param", "c", "=", "3")

LOGIC = [
    ("metrics.a > 1 AND metrics.b < 2", And((A1, B2))),
    ("metrics.a > 1 and metrics.b < 2 AnD params.c = 3", And((A1, B2, C3))),
    ("metrics.a > 1 OR metrics.b < 2", Or((A1, B2))),
    ("metrics.a > 1 OR metrics.b < 2 AND params.c = 3", Or((A1, And((B2, C3))))),
    ("metrics.a > 1 AND metrics.b < 2 OR params.c = 3", Or((And((A1, B2)), C3))),
    ("(metrics.a > 1 OR metrics.b < 2) AND params.c = 3", And((Or((A1, B2)), C3))),
    ("NOT metrics.a > 1", Not(A1)),
    ("not not metrics.a > 1", Not(Not(A1))),
    ("NOT metrics.a > 1 AND metrics.b < 2", And((Not(A1), B2))),
    ("NOT (metrics.a > 1 AND metrics.b < 2)", Not(And((A1, B2)))),
    ("((metrics.a > 1))", A1),
    ("(metrics.a>1)AND(metrics.b<2)", And((A1, B2))),
]


@pytest.mark.parametrize(("text", "expected"), GOOD + LOGIC)
def test_parses(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_blank_filter_is_none(text: str | None) -> None:
    assert parse_filter(text) is None


def test_numbers_keep_their_python_type() -> None:
    assert type(parse_filter("metrics.a = 1").value) is int  # type: ignore[union-attr]
    assert type(parse_filter("metrics.a = 1.0").value) is float  # type: ignore[union-attr]


def test_ast_is_frozen_and_hashable() -> None:
    expr = parse_filter("metrics.a IN (1, 2) OR NOT params.b = 'x'")
    assert hash(expr) == hash(parse_filter("metrics.a IN (1, 2) OR NOT params.b = 'x'"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.items = ()  # type: ignore[union-attr,misc]


# (text, fragment of the message, position of the caret)
BAD = [
    # entities and keys
    ("metric_accuracy > 1", "unknown entity 'metric_accuracy'; use metrics., params.", 0),
    ("foo.x = 1", "unknown entity 'foo'; use metrics., params., tags. or attributes.", 0),
    ("metrics.a > 1 AND datasets.name = 'x'", "unknown entity 'datasets'", 18),
    ("attributes.foo = 'x'", "unknown attribute 'foo'; valid attributes are run_id, run_name", 11),
    ("attributes.artifact_uri = 'x'", "unknown attribute 'artifact_uri'", 11),
    ("metrics. > 1", "missing key after 'metrics.'", 8),
    ("metrics.`` > 1", "empty key", 8),
    ("metrics.`f1 > 1", "unterminated name", 8),
    ("`f1` > 1", "a quoted key needs an entity in front", 0),
    ("'x' = 1", "expected a condition such as metrics.accuracy > 0.9, found \"'x'\"", 0),
    ("5 > metrics.a", "expected a condition", 0),
    # operators
    ("metrics.a ~ 1", "unexpected character '~'", 10),
    ("metrics.a == 1", "use '=' to test equality, not '=='", 10),
    ("metrics.a ! 1", "use '!=' for 'not equal'", 10),
    ("metrics.a", "missing operator after metrics.a", 9),
    ("metrics.a 1", "expected an operator after metrics.a", 10),
    ("metrics.a LIKE '1'", "metric values are numbers: LIKE does not apply to metrics.a", 10),
    ("metrics.a NOT ILIKE '1'", "metric values are numbers: NOT ILIKE does not apply", 10),
    (
        "params.x < 1",
        "params and tags are strings: < does not apply to params.x; use =, !=, LIKE",
        9,
    ),
    ("tags.x >= 'a'", "params and tags are strings: >= does not apply to tags.x", 7),
    ("attributes.run_id > 'a'", "attributes.run_id is a string: > does not apply", 18),
    ("attributes.start_time LIKE '1%'", "milliseconds since the epoch: LIKE does not apply", 22),
    ("attributes.experiment_id LIKE '1%'", "experiment id: LIKE does not apply", 25),
    ("attributes.experiment_id IS NULL", "experiment id: IS NULL does not apply", 25),
    ("metrics.a IS 1", "expected NULL or NOT NULL after IS, found '1'", 13),
    ("metrics.a IS NOT 1", "expected NULL after IS, found '1'", 17),
    ("metrics.a NOT = 1", "expected IN, LIKE or ILIKE after NOT, found '='", 14),
    # values
    ("metrics.a >", "missing value after '>'", 11),
    ("metrics.a > AND metrics.b < 1", "missing value after '>', found 'AND'", 12),
    (
        "metrics.a = '0.9'",
        "metrics.a is compared with the string '0.9'; metric values are numbers",
        12,
    ),
    ("metrics.a IN (1, 'x')", "metric values are numbers", 17),
    ("attributes.start_time > 'yesterday'", "milliseconds since the epoch", 24),
    ("params.x = abc", "unquoted value 'abc'; put text values in single quotes: 'abc'", 11),
    ("params.x = `abc`", "backticks quote keys, not values", 11),
    ("params.x = NULL", "compare with NULL using IS NULL or IS NOT NULL", 11),
    ("params.x = 'abc", "unterminated string: missing closing '", 11),
    ('params.x = "abc', 'unterminated string: missing closing "', 11),
    ("params.x = 'it''s", "unterminated string", 11),
    ("metrics.a = 5abc", "invalid number '5abc'", 12),
    ("metrics.a = 1.2.3", "invalid number '1.2.3'", 12),
    ("metrics.a = 1e", "invalid number '1e'", 12),
    ("metrics.a = 1_000", "invalid number '1_000'", 12),
    ("metrics.a = -", "missing value after '=', found '-'", 12),
    (
        "run.status = 'DONE'",
        "unknown run status 'DONE'; use one of RUNNING, SCHEDULED, FINISHED",
        13,
    ),
    ("run.status IN ('RUNNING', 'x')", "unknown run status 'x'", 26),
    ("attributes.experiment_id = 'abc'", "experiment ids are integers; 'abc' is not one", 27),
    ("attributes.experiment_id = 1.5", "experiment ids are integers", 27),
    ("attributes.experiment_id = 1234567890123456789012", "experiment ids are integers", 27),
    ("params.x LIKE 'a\\'", "ends with a lone backslash", 14),
    # IN lists
    ("metrics.a IN 1", "IN takes a list in parentheses", 13),
    ("metrics.a IN ()", "empty IN list", 14),
    ("metrics.a IN (1,)", "missing value after ',', found ')'", 16),
    ("metrics.a IN (1 2)", "missing ')' to close the IN list, found '2'", 16),
    ("metrics.a IN (1", "missing ')' to close the IN list, found the end of the filter", 15),
    # structure
    ("(metrics.a > 1", "missing ')' to close the '(' at position 0", 14),
    ("((metrics.a > 1) AND metrics.b > 1", "missing ')' to close the '(' at position 0", 34),
    ("metrics.a > 1)", "unexpected ')' with no matching '('", 13),
    ("metrics.a > 1 metrics.b > 2", "unexpected 'metrics.b'; join conditions with AND or OR", 14),
    ("metrics.a > 1 2", "unexpected '2'", 14),
    ("metrics.a > 1 AND", "expected a condition such as metrics.accuracy > 0.9, found the end", 17),
    ("metrics.a > 1 OR OR metrics.b > 1", "found 'OR'", 17),
    ("AND metrics.a > 1", "found 'AND'", 0),
    ("()", "found ')'", 1),
    ("NOT", "found the end of the filter", 3),
    ("-metrics.a", "found '-'", 0),
    ("metrics.a > 1;", "unexpected character ';'", 13),
    ("NOT " * 60 + "metrics.a > 1", "nested deeper than 50 levels", 200),
    ("(" * 60 + "metrics.a > 1" + ")" * 60, "nested deeper than 50 levels", 50),
    (" OR ".join(["metrics.a > 1"] * 301), "more than 300 conditions", 300 * 17),
]


@pytest.mark.parametrize(("text", "message", "position"), BAD)
def test_rejects(text: str, message: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    err = info.value
    assert message in err.message
    assert err.position == position
    assert err.text == text
    assert isinstance(err, InvalidInput)


def test_error_draws_a_caret_under_the_bad_token() -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter("metrics.acc > 0.5 AND params.lr < 1")
    lines = str(info.value).splitlines()
    assert lines[1] == "  metrics.acc > 0.5 AND params.lr < 1"
    assert lines[2] == "  " + " " * 32 + "^"
    assert lines[1][lines[2].index("^")] == "<"


def test_non_string_filter_is_a_filter_error() -> None:
    with pytest.raises(FilterSyntaxError, match="a filter is a string"):
        parse_filter(42)  # type: ignore[arg-type]


# -- fuzzing: whatever the text, the parser answers with a tree, None or FilterSyntaxError

_PIECES = [
    "metrics.a", "params.b", "tags.`c d`", 'tags."e"', "attributes.status", "attr.created",
    "attributes.experiment_id", "run.end_time", "foo.x", "metrics.", "AND", "OR", "NOT", "IN",
    "IS", "NULL", "LIKE", "ILIKE", "not", "(", ")", ",", "=", "!=", "<>", "<", "<=", ">", ">=",
    "==", "!", "1", "-2.5", "1e5", ".5", "1e", "'x'", "'FINISHED'", "'a''b'", "'", '"', "`",
    "'%\\'", "\\", "-", "+", "abc", "", " ", "\n",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_fuzz_any_text(text: str) -> None:
    _parse_or_reject(text)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=16), st.sampled_from([" ", ""]))
def test_fuzz_token_soup(pieces: list[str], sep: str) -> None:
    _parse_or_reject(sep.join(pieces))


def _parse_or_reject(text: str) -> None:
    try:
        result = parse_filter(text)
    except FilterSyntaxError as err:
        assert err.position is not None
        assert 0 <= err.position <= len(text)
        return
    assert result is None or isinstance(result, Comparison | And | Or | Not)


# -- order by


ORDER_GOOD = [
    ("metrics.accuracy DESC", [OrderKey("metric", "accuracy", False)]),
    ("params.x asc", [OrderKey("param", "x", True)]),
    ("-metrics.accuracy", [OrderKey("metric", "accuracy", False)]),
    ("+attributes.start_time", [OrderKey("attribute", "start_time", True)]),
    ("metrics.acc", [OrderKey("metric", "acc", True)]),
    ("  tags.`my tag`   Desc ", [OrderKey("tag", "my tag", False)]),
    ("attr.created", [OrderKey("attribute", "start_time", True)]),
    ("run.name DESC", [OrderKey("attribute", "run_name", False)]),
    (
        "metrics.a DESC, params.b,-tags.c",
        [OrderKey("metric", "a", False), OrderKey("param", "b", True), OrderKey("tag", "c", False)],
    ),
    (["metrics.a", "-params.b"], [OrderKey("metric", "a", True), OrderKey("param", "b", False)]),
    (("metrics.a desc",), [OrderKey("metric", "a", False)]),
    (None, []),
    ([], []),
    ("", []),
]


@pytest.mark.parametrize(("items", "expected"), ORDER_GOOD)
def test_order_by(items: object, expected: list[OrderKey]) -> None:
    assert parse_order_by(items) == expected  # type: ignore[arg-type]


ORDER_BAD = [
    ("foo.a", "unknown entity 'foo'", 0),
    ("accuracy DESC", "unknown entity 'accuracy'", 0),
    ("attributes.nope", "unknown attribute 'nope'", 11),
    ("-metrics.a DESC", "give either '-' or DESC, not both", 11),
    ("metrics.a DESC DESC", "unexpected 'DESC'", 15),
    ("metrics.a up", "unexpected 'up'", 10),
    ("metrics.a,", "expected a key such as metrics.accuracy, found the end", 10),
    ("metrics.a > 1", "unexpected '>'", 10),
    ("--metrics.a", "found '-'", 1),
    ("metrics.a 'x'", "unexpected", 10),
]


@pytest.mark.parametrize(("item", "message", "position"), ORDER_BAD)
def test_order_by_rejects(item: str, message: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by([item])
    assert message in info.value.message
    assert info.value.position == position
    assert info.value.text == item


def test_order_by_rejects_blank_item_in_a_list() -> None:
    with pytest.raises(FilterSyntaxError, match="empty order-by item"):
        parse_order_by(["metrics.a", " "])


def test_order_by_rejects_non_strings() -> None:
    with pytest.raises(FilterSyntaxError, match="order-by items are strings"):
        parse_order_by([3])  # type: ignore[list-item]


def test_order_default_is_newest_first() -> None:
    assert tuple(ORDER_DEFAULT) == (OrderKey("attribute", "start_time", False),)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fuzz_order_by(text: str) -> None:
    try:
        keys = parse_order_by(text)
    except FilterSyntaxError as err:
        assert err.position is None or 0 <= err.position <= len(text)
        return
    assert all(isinstance(key, OrderKey) for key in keys)


def test_parser_does_not_import_sqlalchemy() -> None:
    # Measured against plain "import mltrail", so the test is about this package only.
    code = (
        "import sys, mltrail; before = 'sqlalchemy' in sys.modules; import mltrail.search; "
        "assert before or 'sqlalchemy' not in sys.modules, 'mltrail.search imported sqlalchemy'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
