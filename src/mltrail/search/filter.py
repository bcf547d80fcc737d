"""The runs search language: a tokenizer and recursive-descent parser for filters and order-by.

A filter such as ``metrics.accuracy > 0.9 AND (params.optimizer = 'adam' OR tags.team LIKE 'ml%')``
becomes a small tree of frozen dataclasses (``Comparison``, ``And``, ``Or``, ``Not``) that each
store compiles to its own query language. This module is pure Python and must stay free of
SQLAlchemy: the CLI and the HTTP client validate filters before anything heavy is imported.

Grammar (keywords are case-insensitive)::

    expr       := or
    or         := and ("OR" and)*
    and        := unary ("AND" unary)*
    unary      := "NOT" unary | "(" expr ")" | comparison
    comparison := ident op literal
                | ident ["NOT"] "IN" "(" literal ("," literal)* ")"
                | ident "IS" ["NOT"] "NULL"
                | ident ["NOT"] ("LIKE" | "ILIKE") literal
    ident      := entity "." (key | `quoted key` | "quoted key")
    op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="

Every mistake raises ``FilterSyntaxError`` with the position of the offending token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from mltrail.errors import FilterSyntaxError

__all__ = [
    "ATTRIBUTE_KEYS",
    "MAX_ORDER_KEYS",
    "ORDER_DEFAULT",
    "RUN_STATUSES",
    "And",
    "Comparison",
    "Expr",
    "Not",
    "Or",
    "OrderKey",
    "format_filter",
    "format_order_key",
    "holds",
    "parse_conjunction",
    "parse_filter",
    "parse_order_by",
]


# --------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True)
class Comparison:
    """One ``<entity>.<key> <op> <value>`` test.

    ``entity`` is "metric", "param", "tag" or "attribute"; attribute keys are canonical
    (``name`` → ``run_name``, ``created`` → ``start_time``). ``value`` is an int or float for
    numeric comparisons, a str for string ones, a tuple for IN / NOT IN and None for IS [NOT] NULL.
    """

    entity: str
    key: str
    op: str
    value: object


@dataclass(frozen=True)
class And:
    """All of ``items`` hold."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """At least one of ``items`` holds."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    """``item`` does not hold."""

    item: Expr


#: Any node of a parsed filter.
Expr: TypeAlias = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    """One order-by key; NULLs (missing keys, NaN metrics) always sort last."""

    entity: str
    key: str
    ascending: bool


#: The order used when none is given: newest runs first.
ORDER_DEFAULT: tuple[OrderKey, ...] = (OrderKey("attribute", "start_time", False),)

#: Values the ``attributes.status`` filter accepts (input is case-insensitive).
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")

_STRING_ATTRIBUTES = (
    "run_id",
    "run_name",
    "status",
    "user_id",
    "experiment_id",
    "parent_run_id",
    "lifecycle_stage",
)
_NUMERIC_ATTRIBUTES = ("start_time", "end_time")

#: Canonical attribute keys, in the order error messages list them.
ATTRIBUTE_KEYS = _STRING_ATTRIBUTES + _NUMERIC_ATTRIBUTES

_ATTRIBUTE_ALIASES = {"name": "run_name", "created": "start_time"}

_ENTITY_ALIASES = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameter": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

_ENTITY_HINT = "use metrics., params., tags. or attributes."

_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "ASC", "DESC"})

_COMPARE_OPS = ("=", "!=", "<", "<=", ">", ">=")
_LIKE_OPS = ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE")
_NULL_OPS = ("IS NULL", "IS NOT NULL")
_STRING_OPS = ("=", "!=", *_LIKE_OPS, "IN", "NOT IN", *_NULL_OPS)

# Deep nesting would exhaust Python's recursion limit here or in the SQL compiler; no real filter
# comes close.
_MAX_DEPTH = 50
# SQLite refuses expression trees deeper than 1000 nodes; a left-deep OR chain reaches that near
# a thousand terms, so cap well below.
_MAX_COMPARISONS = 300
#: The most keys one order-by may have. Each key costs a lookup per matching run (10 keys sort
#: 5,000 runs in about 60 ms on SQLite, 30 in about 400 ms), and a sort past the first few keys
#: rarely changes the order; MLflow's UI sorts by one.
MAX_ORDER_KEYS = 10
# Larger integers do not fit a 64-bit database integer; they are compared as floats instead.
_MAX_INT_DIGITS = 18


# --------------------------------------------------------------------------------------------
# Tokenizer

# Token kinds
_IDENT = "ident"  # entity.key; text as written, value the unquoted key
_WORD = "word"  # a bare word: keyword or mistake
_NUMBER = "number"  # text as written, value int | float
_STRING = "string"  # a single- or double-quoted string; value is the unescaped text
_BACKTICK = "backtick"  # a backticked name outside an identifier
_OP = "op"  # comparison operator, normalized ("<>" → "!=")
_SIGN = "sign"  # a lone + or -, meaningful only at the start of an order-by item
_PUNCT = "punct"  # ( ) ,
_EOF = "eof"


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int
    value: object = None
    # For identifiers: where the key starts, so errors about the key point at it.
    key_pos: int = 0

    def upper(self) -> str:
        return self.text.upper() if self.kind == _WORD else ""

    def describe(self) -> str:
        if self.kind == _EOF:
            return "the end of the filter"
        return repr(self.text)


def _is_word_start(ch: str) -> bool:
    return ch.isalpha() or ch == "_"


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _is_key_char(ch: str) -> bool:
    return ch != "" and (ch.isalnum() or ch in "_.-/:")


def _is_digit(ch: str) -> bool:
    # str.isdigit() accepts superscripts and other scripts' digits, which float() rejects.
    return "0" <= ch <= "9"


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, pos: int) -> NoReturn:
        raise FilterSyntaxError(message, self.text, pos)

    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def tokens(self) -> list[_Token]:
        out = []
        while True:
            tok = self.next_token()
            out.append(tok)
            if tok.kind == _EOF:
                return out

    def next_token(self) -> _Token:
        text = self.text
        while self.pos < len(text) and text[self.pos].isspace():
            self.pos += 1
        start = self.pos
        ch = self.peek()
        if not ch:
            return _Token(_EOF, "", start)
        if ch in "(),":
            self.pos += 1
            return _Token(_PUNCT, ch, start)
        if ch in "=!<>":
            return self.operator()
        if ch == "'" or ch == '"':
            value = self.quoted(ch)
            return _Token(_STRING, text[start : self.pos], start, value)
        if ch == "`":
            value = self.quoted(ch)
            return _Token(_BACKTICK, text[start : self.pos], start, value)
        if _is_digit(ch) or (ch == "." and _is_digit(self.peek(1))):
            return self.number()
        if ch in "+-":
            nxt = self.peek(1)
            if _is_digit(nxt) or (nxt == "." and _is_digit(self.peek(2))):
                return self.number()
            self.pos += 1
            return _Token(_SIGN, ch, start)
        if _is_word_start(ch):
            return self.word()
        self.error(f"unexpected character {ch!r}", start)

    def operator(self) -> _Token:
        start = self.pos
        two = self.text[start : start + 2]
        if two == "==":
            self.error("use '=' to test equality, not '=='", start)
        if two in ("!=", "<=", ">=", "<>"):
            self.pos += 2
            return _Token(_OP, two, start, "!=" if two == "<>" else two)
        ch = two[0]
        if ch == "!":
            self.error("unexpected character '!'; use '!=' for 'not equal'", start)
        self.pos += 1
        return _Token(_OP, ch, start, ch)

    def quoted(self, quote: str) -> str:
        """Read a string delimited by ``quote``; a doubled quote stands for one."""
        start = self.pos
        self.pos += 1
        parts = []
        while True:
            end = self.text.find(quote, self.pos)
            if end < 0:
                kind = "name" if quote == "`" else "string"
                self.error(f"unterminated {kind}: missing closing {quote}", start)
            parts.append(self.text[self.pos : end])
            self.pos = end + 1
            if self.peek() == quote:
                parts.append(quote)
                self.pos += 1
            else:
                return "".join(parts)

    def number(self) -> _Token:
        start = self.pos
        if self.peek() in ("+", "-"):
            self.pos += 1
        digits = self.digits()
        is_float = False
        if self.peek() == ".":
            self.pos += 1
            digits += self.digits()
            is_float = True
        if self.peek() in ("e", "E"):
            save = self.pos
            self.pos += 1
            if self.peek() in ("+", "-"):
                self.pos += 1
            if self.digits():
                is_float = True
            else:
                self.pos = save  # not an exponent; reported below as a malformed number
        if _is_word_char(self.peek()) or self.peek() == ".":
            while _is_word_char(self.peek()) or self.peek() == ".":
                self.pos += 1
            bad = self.text[start : self.pos]
            self.error(f"invalid number {bad!r}; quote text values, as in '{bad}'", start)
        text = self.text[start : self.pos]
        value = float(text) if is_float or len(digits) > _MAX_INT_DIGITS else int(text)
        return _Token(_NUMBER, text, start, value)

    def digits(self) -> str:
        start = self.pos
        while _is_digit(self.peek()):
            self.pos += 1
        return self.text[start : self.pos]

    def word(self) -> _Token:
        start = self.pos
        while _is_word_char(self.peek()):
            self.pos += 1
        word = self.text[start : self.pos]
        if self.peek() != ".":
            return _Token(_WORD, word, start)
        # entity.key: the key is read here, with its wider character set, so that
        # "metrics.val/loss" or "params.optimizer.lr" are one token.
        self.pos += 1
        key_pos = self.pos
        ch = self.peek()
        if ch in ("`", '"'):
            key = self.quoted(ch)
            if not key:
                self.error("empty key", key_pos)
        else:
            while _is_key_char(self.peek()):
                self.pos += 1
            key = self.text[key_pos : self.pos]
            if not key:
                self.error(f"missing key after '{word}.'", key_pos)
        return _Token(_IDENT, self.text[start : self.pos], start, key, key_pos)


# --------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _Lexer(text).tokens()
        self.i = 0
        self.depth = 0
        self.comparisons = 0

    # -- helpers

    def error(self, message: str, tok: _Token | int) -> NoReturn:
        pos = tok if isinstance(tok, int) else tok.pos
        raise FilterSyntaxError(message, self.text, pos)

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != _EOF:
            self.i += 1
        return tok

    def at_keyword(self, *words: str) -> bool:
        return self.tok.kind == _WORD and self.tok.upper() in words

    def at_punct(self, ch: str) -> bool:
        return self.tok.kind == _PUNCT and self.tok.text == ch

    # -- filter grammar

    def parse(self) -> Expr:
        expr = self.parse_or()
        if self.tok.kind != _EOF:
            tok = self.tok
            if self.at_punct(")"):
                self.error("unexpected ')' with no matching '('", tok)
            self.error(f"unexpected {tok.describe()}; join conditions with AND or OR", tok)
        return expr

    def parse_or(self) -> Expr:
        items = [self.parse_and()]
        while self.at_keyword("OR"):
            self.advance()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self) -> Expr:
        items = [self.parse_unary()]
        while self.at_keyword("AND"):
            self.advance()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_unary(self) -> Expr:
        if self.at_keyword("NOT") or self.at_punct("("):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                self.error(f"filter nested deeper than {_MAX_DEPTH} levels", self.tok)
            try:
                if self.at_keyword("NOT"):
                    self.advance()
                    return Not(self.parse_unary())
                opening = self.advance()
                expr = self.parse_or()
                if not self.at_punct(")"):
                    self.error(
                        f"missing ')' to close the '(' at position {opening.pos}, "
                        f"found {self.tok.describe()}",
                        self.tok,
                    )
                self.advance()
                return expr
            finally:
                self.depth -= 1
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        tok = self.tok
        if tok.kind != _IDENT:
            self.not_an_identifier(tok, "a condition such as metrics.accuracy > 0.9")
        self.advance()
        entity, key = self.resolve_ident(tok)
        self.comparisons += 1
        if self.comparisons > _MAX_COMPARISONS:
            self.error(f"filter has more than {_MAX_COMPARISONS} conditions", tok)

        op_tok = self.tok
        op, values = self.operator(tok)
        return self.check(tok, entity, key, op, op_tok, values)

    def operator(self, ident: _Token) -> tuple[str, list[_Token]]:
        """Read the operator after ``ident`` and its value tokens (none for IS [NOT] NULL)."""
        op_tok = self.tok
        if op_tok.kind == _OP:
            self.advance()
            return str(op_tok.value), [self.literal(f"after '{op_tok.text}'")]
        if self.at_keyword("IS"):
            self.advance()
            negated = self.at_keyword("NOT")
            if negated:
                self.advance()
            if not self.at_keyword("NULL"):
                expected = "NULL" if negated else "NULL or NOT NULL"
                self.error(f"expected {expected} after IS, found {self.tok.describe()}", self.tok)
            self.advance()
            return ("IS NOT NULL" if negated else "IS NULL"), []
        negated = self.at_keyword("NOT")
        if negated:
            self.advance()
            if not self.at_keyword("IN", "LIKE", "ILIKE"):
                self.error(
                    f"expected IN, LIKE or ILIKE after NOT, found {self.tok.describe()}", self.tok
                )
        prefix = "NOT " if negated else ""
        if self.at_keyword("IN"):
            self.advance()
            return prefix + "IN", self.literal_list()
        if self.at_keyword("LIKE", "ILIKE"):
            word = self.advance().upper()
            return prefix + word, [self.literal(f"after {word}")]
        if op_tok.kind == _EOF:
            self.error(f"missing operator after {ident.text}", op_tok)
        self.error(
            f"expected an operator after {ident.text} (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, IS), "
            f"found {op_tok.describe()}",
            op_tok,
        )

    def not_an_identifier(self, tok: _Token, expected: str) -> NoReturn:
        if tok.kind == _WORD and tok.upper() not in _KEYWORDS:
            self.error(f"unknown entity {tok.text!r}; {_ENTITY_HINT}", tok)
        if tok.kind == _EOF:
            self.error(f"expected {expected}, found the end of the filter", tok)
        if tok.kind == _BACKTICK:
            self.error(f"a quoted key needs an entity in front, as in metrics.{tok.text}", tok)
        self.error(f"expected {expected}, found {tok.describe()}", tok)

    def resolve_ident(self, tok: _Token) -> tuple[str, str]:
        entity_text = tok.text[: tok.key_pos - tok.pos - 1]
        entity = _ENTITY_ALIASES.get(entity_text.lower())
        if entity is None:
            self.error(f"unknown entity {entity_text!r}; {_ENTITY_HINT}", tok)
        key = str(tok.value)
        if entity == "attribute":
            canonical = _ATTRIBUTE_ALIASES.get(key.lower(), key.lower())
            if canonical not in ATTRIBUTE_KEYS:
                self.error(
                    f"unknown attribute {key!r}; valid attributes are {', '.join(ATTRIBUTE_KEYS)}",
                    tok.key_pos,
                )
            key = canonical
        return entity, key

    def literal(self, where: str) -> _Token:
        tok = self.tok
        if tok.kind in (_NUMBER, _STRING):
            self.advance()
            return tok
        if tok.kind == _EOF:
            self.error(f"missing value {where}", tok)
        if tok.kind == _BACKTICK:
            self.error(
                f"backticks quote keys, not values; write the value {tok.value!r} in single quotes",
                tok,
            )
        if tok.kind == _WORD and tok.upper() == "NULL":
            self.error("compare with NULL using IS NULL or IS NOT NULL", tok)
        if tok.kind == _WORD and tok.upper() not in _KEYWORDS:
            self.error(
                f"unquoted value {tok.text!r}; put text values in single quotes: '{tok.text}'", tok
            )
        self.error(f"missing value {where}, found {tok.describe()}", tok)

    def literal_list(self) -> list[_Token]:
        if not self.at_punct("("):
            self.error(
                f"IN takes a list in parentheses, as in IN ('a', 'b'); found {self.tok.describe()}",
                self.tok,
            )
        self.advance()
        if self.at_punct(")"):
            self.error("empty IN list; give at least one value", self.tok)
        values = [self.literal("in the IN list")]
        while self.at_punct(","):
            self.advance()
            values.append(self.literal("after ','"))
        if not self.at_punct(")"):
            self.error(f"missing ')' to close the IN list, found {self.tok.describe()}", self.tok)
        self.advance()
        return values

    # -- semantics

    def check(
        self,
        ident: _Token,
        entity: str,
        key: str,
        op: str,
        op_tok: _Token,
        value_toks: list[_Token],
    ) -> Comparison:
        """Validate ``op`` and the values for this entity/key and build the comparison."""
        name = f"{_display_entity(entity)}.{key}"
        if entity == "metric":
            allowed: tuple[str, ...] = (*_COMPARE_OPS, "IN", "NOT IN", *_NULL_OPS)
            why = "metric values are numbers"
        elif entity in ("param", "tag"):
            allowed = _STRING_OPS
            why = "params and tags are strings"
        elif key in _NUMERIC_ATTRIBUTES:
            allowed = (*_COMPARE_OPS, "IN", "NOT IN", *_NULL_OPS)
            why = f"{name} is a time in milliseconds since the epoch"
        elif key == "experiment_id":
            allowed = ("=", "!=", "IN", "NOT IN")
            why = f"{name} is an experiment id"
        else:
            allowed = _STRING_OPS
            why = f"{name} is a string"
        if op not in allowed:
            self.error(f"{why}: {op} does not apply to {name}; use {', '.join(allowed)}", op_tok)

        values = [self.convert(entity, key, name, op, tok) for tok in value_toks]
        value: object
        if op in _NULL_OPS:
            value = None
        elif op in ("IN", "NOT IN"):
            value = tuple(values)
        else:
            value = values[0]
        return Comparison(entity, key, op, value)

    def convert(self, entity: str, key: str, name: str, op: str, tok: _Token) -> object:
        """Turn one literal token into the value stored in the AST, or explain why it is wrong."""
        if entity == "metric" or (entity == "attribute" and key in _NUMERIC_ATTRIBUTES):
            if tok.kind != _NUMBER:
                what = (
                    "metric values are numbers"
                    if entity == "metric"
                    else (f"{name} is a time in milliseconds since the epoch")
                )
                self.error(
                    f"{name} is compared with the string {tok.text}; {what}, write it unquoted",
                    tok,
                )
            return tok.value
        # A number stands for its text exactly as written: 5 matches "5", and 5.0 does not.
        text = str(tok.value) if tok.kind == _STRING else tok.text
        if entity != "attribute":
            if op in _LIKE_OPS:
                self.check_pattern(text, tok)
            return text
        if key == "experiment_id":
            digits = text.strip()
            if not (digits.isascii() and digits.isdigit()) or len(digits) > _MAX_INT_DIGITS:
                self.error(f"experiment ids are integers; {tok.text} is not one", tok)
            return int(digits)
        if op in _LIKE_OPS:
            self.check_pattern(text, tok)
            return text
        if key == "status":
            status = text.upper()
            if status not in RUN_STATUSES:
                self.error(
                    f"unknown run status {tok.text}; use one of {', '.join(RUN_STATUSES)}", tok
                )
            return status
        return text

    def check_pattern(self, pattern: str, tok: _Token) -> None:
        # Backslash escapes % and _ in LIKE patterns; PostgreSQL rejects a pattern that ends in a
        # lone escape character, so refuse it here on every backend.
        trailing = len(pattern) - len(pattern.rstrip("\\"))
        if trailing % 2:
            self.error(
                f"LIKE pattern {tok.text} ends with a lone backslash; write \\\\ for a backslash",
                tok,
            )

    # -- order-by grammar

    def parse_order_items(self) -> list[OrderKey]:
        keys = [self.parse_order_item()]
        while self.at_punct(","):
            self.advance()
            keys.append(self.parse_order_item())
        if self.tok.kind != _EOF:
            self.error(
                f"unexpected {self.tok.describe()}; an order-by item is '<entity>.<key> "
                "[ASC|DESC]', items separated by commas",
                self.tok,
            )
        return keys

    def parse_order_item(self) -> OrderKey:
        ascending = True
        sign = None
        if self.tok.kind == _SIGN:
            sign = self.advance()
            ascending = sign.text == "+"
        tok = self.tok
        if tok.kind != _IDENT:
            self.not_an_identifier(tok, "a key such as metrics.accuracy")
        self.advance()
        entity, key = self.resolve_ident(tok)
        if self.at_keyword("ASC", "DESC"):
            word = self.advance()
            if sign is not None:
                self.error(f"give either '{sign.text}' or {word.upper()}, not both", word)
            ascending = word.upper() == "ASC"
        return OrderKey(entity, key, ascending)


def _display_entity(entity: str) -> str:
    return {"metric": "metrics", "param": "params", "tag": "tags"}.get(entity, "attributes")


# --------------------------------------------------------------------------------------------
# Public entry points


def parse_filter(text: str | None) -> Expr | None:
    """Parse a runs filter into an expression tree; None or blank text gives None."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise FilterSyntaxError(f"a filter is a string, not {type(text).__name__}")
    if not text.strip():
        return None
    return _Parser(text).parse()


def parse_order_by(items: Sequence[str] | str | None) -> list[OrderKey]:
    """Parse order-by items ("metrics.acc DESC", "-metrics.acc", "params.x, tags.y asc").

    Every face (Python API, CLI, REST, UI, MLflow routes) sorts through here, so this is where
    the number of keys is capped at :data:`MAX_ORDER_KEYS`.
    """
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    keys: list[OrderKey] = []
    for item in items:
        if not isinstance(item, str):
            raise FilterSyntaxError(f"order-by items are strings, not {type(item).__name__}")
        if not item.strip():
            if len(items) == 1:
                continue
            raise FilterSyntaxError("empty order-by item", item, 0)
        keys.extend(_Parser(item).parse_order_items())
        if len(keys) > MAX_ORDER_KEYS:
            raise FilterSyntaxError(
                f"order-by has more than {MAX_ORDER_KEYS} keys; the limit is {MAX_ORDER_KEYS}",
                hint=f"Sort by at most {MAX_ORDER_KEYS} keys; to sort by more, sort the "
                "result in pandas (mltrail.search_runs(..., output_format='pandas')).",
            )
    return keys


# --------------------------------------------------------------------------------------------
# Back to text: a tree (perhaps rewritten) as a filter string that parses to the same tree


def _quote_key(key: str) -> str:
    return "`" + key.replace("`", "``") + "`"


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "1e999" if value > 0 else "-1e999"  # the lexer reads these as infinities
    return repr(value)


def format_filter(expr: Expr) -> str:
    """The filter text of ``expr``: ``parse_filter(format_filter(e)) == e``."""
    if isinstance(expr, Comparison):
        ident = f"{_display_entity(expr.entity)}.{_quote_key(expr.key)}"
        if expr.value is None:
            return f"{ident} {expr.op}"
        if isinstance(expr.value, tuple):
            return f"{ident} {expr.op} ({', '.join(_literal(x) for x in expr.value)})"
        return f"{ident} {expr.op} {_literal(expr.value)}"
    if isinstance(expr, Not):
        return f"NOT ({format_filter(expr.item)})"
    joiner = " AND " if isinstance(expr, And) else " OR "
    return joiner.join(f"({format_filter(item)})" for item in expr.items)


def format_order_key(key: OrderKey) -> str:
    """The order-by item of ``key``: ``parse_order_by([format_order_key(k)]) == [k]``."""
    direction = "ASC" if key.ascending else "DESC"
    return f"{_display_entity(key.entity)}.{_quote_key(key.key)} {direction}"


# --------------------------------------------------------------------------------------------
# Conjunctions: the smaller language MLflow searches experiments, registered models, model
# versions and logged models with: comparisons joined by AND, on attributes or prefixed keys.

#: What a term may name: (entity, key) → (canonical entity, canonical key, numeric?). The
#: entity is None for a bare attribute name; raise ValueError with a message to refuse it.
Resolver: TypeAlias = Callable[[str | None, str], tuple[str, str, bool]]


def parse_conjunction(text: str | None, resolve: Resolver) -> list[Comparison]:
    """Parse ``name LIKE 'wine%' AND tags.team = 'risk'`` into its comparisons."""
    if text is None or not text.strip():
        return []
    parser = _Parser(text)
    found: list[Comparison] = []
    while True:
        found.append(_conjunction_term(parser, resolve))
        if parser.tok.kind == _EOF:
            return found
        if not parser.at_keyword("AND"):
            parser.error(
                f"unexpected {parser.tok.describe()}; join conditions with AND "
                "(OR and parentheses are not supported here)",
                parser.tok,
            )
        parser.advance()


def _conjunction_term(p: _Parser, resolve: Resolver) -> Comparison:
    tok = p.tok
    if tok.kind == _IDENT:
        entity: str | None = tok.text[: tok.key_pos - tok.pos - 1].lower()
        key = str(tok.value)
    elif tok.kind == _WORD and tok.upper() not in _KEYWORDS:
        entity, key = None, tok.text
    elif tok.kind == _BACKTICK:
        entity, key = None, str(tok.value)
    else:
        p.error(f"expected a condition such as name = 'x', found {tok.describe()}", tok)
    try:
        entity, key, numeric = resolve(entity, key)
    except ValueError as e:
        p.error(str(e), tok)
    p.advance()
    op_tok = p.tok
    op, values = p.operator(tok)
    allowed = (*_COMPARE_OPS, "IN", "NOT IN", *_NULL_OPS) if numeric else _STRING_OPS
    if op not in allowed:
        p.error(f"{op} does not apply to {tok.text}; use {', '.join(allowed)}", op_tok)
    converted: list[object] = []
    for value in values:
        if numeric and value.kind != _NUMBER:
            p.error(f"{tok.text} is a number; write {value.text} unquoted", value)
        if numeric:
            converted.append(value.value)
        else:
            converted.append(str(value.value) if value.kind == _STRING else value.text)
    if op in _NULL_OPS:
        return Comparison(entity, key, op, None)
    if op in ("IN", "NOT IN"):
        return Comparison(entity, key, op, tuple(converted))
    return Comparison(entity, key, op, converted[0])


def _like(pattern: str, text: str, ignore_case: bool) -> bool:
    import re

    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch("".join(out), text, flags) is not None


def holds(c: Comparison, value: object) -> bool:
    """Whether ``value`` (None: absent) satisfies ``c``, with the runs search's semantics."""
    if c.op == "IS NULL":
        return value is None
    if c.op == "IS NOT NULL":
        return value is not None
    if value is None:
        return False
    if c.op in ("IN", "NOT IN"):
        inside = value in (c.value or ())
        return inside if c.op == "IN" else not inside
    if c.op.endswith("LIKE"):
        matched = _like(str(c.value), str(value), c.op.endswith("ILIKE"))
        return not matched if c.op.startswith("NOT") else matched
    if isinstance(c.value, int | float) and not isinstance(value, int | float):
        return False
    ops = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    try:
        return bool(ops[c.op](value, c.value))
    except TypeError:
        return False
