"""An experiment's runs table: chosen columns, sort, filter, grouping, selection and paging.

Everything the table shows is in the URL (``filter``, ``sort``, ``cols``, ``group``, ``size``,
``page_token``, ``back``), so a link shares the view. Only one page of runs is ever fetched,
with the store's ``search_runs`` as ``/api/v1/runs/search`` and ``mltrail runs ls`` call it;
columns are chosen by :mod:`mltrail.tracking.table`, as ``runs ls`` chooses them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mltrail.access import allow
from mltrail.entities import ViewType
from mltrail.errors import InvalidInput
from mltrail.tracking import table
from mltrail.tracking.liveness import shown
from mltrail.ui.app import State, Who, render

if TYPE_CHECKING:
    from mltrail.entities import Run
    from mltrail.search import OrderKey

router = APIRouter(include_in_schema=False)

#: Runs per page the size menu offers; the first is the default.
PAGE_SIZES = (50, 100, 250, 1000)
#: Default metric and param columns (more are a click away in the column picker).
DEFAULT_METRICS = DEFAULT_PARAMS = 8
#: Most runs the compare page takes at once.
MAX_COMPARE = 100

_KINDS = {"metrics.": "metric", "params.": "param", "tags.": "tag"}
_FILTER_HINT = (
    "Filters use the language of mltrail runs ls --filter, e.g. metrics.rmse < 0.5 and "
    "params.alpha = '0.1', tags.team LIKE 'ml%', attributes.status = 'FINISHED'."
)
_SORT_HINT = "Sort by a column, e.g. metrics.rmse DESC, params.alpha or attributes.start_time."


@dataclass(frozen=True)
class Column:
    """A column of the table: a fixed one (name, status...) or a metric, param or tag."""

    key: str
    label: str
    kind: str  # "attribute", "metric", "param" or "tag"
    #: What ``order_by`` calls this column (None: the store cannot sort on it).
    order: str | None


@dataclass(frozen=True)
class Problem:
    """A mistake in the URL's filter, sort or page token, shown above the table."""

    what: str
    message: str
    detail: str
    hint: str | None


@dataclass
class View:
    """The table's state as the URL gives it; :meth:`url` writes it back with changes."""

    experiment_id: str
    filter: str
    sort: str
    cols: list[str] | None  # None: the default columns
    group: str
    size: int
    page_token: str
    back: list[str]

    def url(self, **changes: Any) -> str:
        """This view's URL with some fields changed (paging starts over unless it is given)."""
        fields = {
            "filter": self.filter,
            "sort": self.sort,
            "cols": self.cols,
            "group": self.group,
            "size": self.size,
            "page_token": self.page_token,
            "back": self.back,
        }
        if changes.keys() & {"filter", "sort", "size"} and "page_token" not in changes:
            changes.update(page_token="", back=[])
        fields.update(changes)
        query: list[tuple[str, str]] = []
        for name, value in fields.items():
            if name == "cols":
                if value is not None:
                    query.append((name, ",".join(value)))  # empty: no extra columns
            elif name == "back":
                if value:
                    query.append((name, ",".join(value)))
            elif name == "size":
                if value != PAGE_SIZES[0]:
                    query.append((name, str(value)))
            elif value:
                query.append((name, str(value)))
        path = f"/experiments/{quote(self.experiment_id, safe='')}"
        return f"{path}?{urlencode(query, quote_via=quote)}" if query else path

    @property
    def page_index(self) -> int:
        """0 for the first page; ``back`` holds the tokens of the pages between."""
        return len(self.back) + 1 if self.page_token else 0

    def previous_url(self) -> str | None:
        """The previous page's URL (None on the first page)."""
        if not self.page_token:
            return None
        if not self.back:
            return self.url(page_token="", back=[])
        return self.url(page_token=self.back[-1], back=self.back[:-1])

    def next_url(self, token: str | None) -> str | None:
        """The next page's URL, from the store's next page token (None on the last page)."""
        if not token:
            return None
        back = [*self.back, self.page_token] if self.page_token else []
        return self.url(page_token=token, back=back)


def view_of(experiment_id: str, request: Request) -> View:
    """Read the table's state from the query string (lenient: odd values fall back)."""
    q = request.query_params
    cols: list[str] | None = None
    if "cols" in q:
        # Both `cols=a,b` (links) and `cols=a&cols=b` (the picker without JavaScript) work.
        cols = list(
            dict.fromkeys(
                c.strip() for raw in q.getlist("cols") for c in raw.split(",") if c.strip()
            )
        )
    size = q.get("size", "")
    # ASCII only: "²" passes str.isdigit() but not int().
    page_size = int(size) if size.isascii() and size.isdigit() else 0
    return View(
        experiment_id=experiment_id,
        filter=q.get("filter", "").strip(),
        sort=q.get("sort", "").strip(),
        cols=cols,
        group=q.get("group", "").strip(),
        size=page_size if page_size in PAGE_SIZES else PAGE_SIZES[0],
        page_token=q.get("page_token", "").strip(),
        back=[t for t in q.get("back", "").split(",") if t],
    )


@router.get("/experiments/{experiment_id}")
def runs_page(experiment_id: str, request: Request, who: Who, state: State) -> Response:
    """The runs of one experiment, a page at a time."""
    allow(who, "read", experiment_id=experiment_id)
    store = state.store
    experiment = store.get_experiment(experiment_id)  # NotFound: the 404 page
    view = view_of(experiment.experiment_id, request)
    deleted = experiment.lifecycle_stage == "deleted"
    # A deleted experiment's runs went to the bin with it; show them rather than nothing.
    run_view = ViewType.ALL if deleted else ViewType.ACTIVE_ONLY
    # The store counts active runs only, which a deleted experiment has none of: no total then.
    total = (
        None
        if deleted
        else store.experiment_summaries([experiment.experiment_id]).get(
            experiment.experiment_id, (0, 0)
        )[0]
    )

    problem = _check(view)
    runs: list[Run] = []
    next_token: str | None = None
    if problem is None:
        try:
            page = store.search_runs(
                [experiment.experiment_id],
                view.filter or None,
                [view.sort] if view.sort else None,
                view.size,
                view.page_token or None,
                run_view,
            )
        except InvalidInput as exc:  # a page token that is not one the store issued
            problem = _problem("page", exc, None)
        else:
            runs, next_token = list(page), page.next_page_token

    keys = table.keys_of(runs)
    notes: list[str] = []
    if problem is None:
        from mltrail.search.keys import check_search_keys

        try:
            # A typo'd key (metrics.acuracy) is named, with the nearest key, beside the table.
            sort = [view.sort] if view.sort else None
            check_search_keys(store, [experiment.experiment_id], view.filter, sort, run_view, runs)
        except InvalidInput as exc:
            notes.append(f"{exc.message}. {exc.hint}" if exc.hint else exc.message)
    extra = _extra_columns(view, runs, notes)
    columns = _base_columns() + [_column(k) for k in extra]
    sorted_by = _sorted_by(view.sort) if problem is None else None
    # Links keep the columns on screen, so sorting or paging does not reshuffle them (with no
    # runs shown there is nothing to keep: the defaults are chosen again).
    linked = replace(view, cols=extra) if runs else view
    group_key = view.group if view.group.startswith(("params.", "tags.")) else ""
    if view.group and not group_key:
        notes.append(f"cannot group by {view.group!r}: group by a param or a tag")
    groups = (
        table.group_runs(runs, group_key, [k for k in extra if k.startswith("metrics.")])
        if group_key and runs
        else None
    )
    first = view.page_index * view.size
    return render(
        request,
        "runs.html",
        400 if problem else 200,
        area="experiments",
        experiment=experiment,
        deleted=deleted,
        view=view,
        total=total,
        runs=runs,
        groups=groups,
        group_key=group_key,
        columns=columns,
        extra=extra,
        keys=keys,
        sorted_by=sorted_by,
        problem=problem,
        notes=notes,
        first=first + 1,
        last=first + len(runs),
        linked=linked,
        picker=_picker(keys, extra),
        previous_url=linked.previous_url(),
        next_url=linked.next_url(next_token),
        page_sizes=PAGE_SIZES,
        max_compare=MAX_COMPARE,
        cell=_cell,
        header_url=lambda c: _header_url(linked, c, sorted_by),
        sort_state=lambda c: sort_state(c, sorted_by),
        now=int(time.time() * 1000),
    )


def _check(view: View) -> Problem | None:
    """The filter's or sort's mistake, if any, before the store is asked."""
    from mltrail.search import parse_filter, parse_order_by

    try:
        parse_filter(view.filter or None)
    except InvalidInput as exc:
        return _problem("filter", exc, _FILTER_HINT)
    try:
        parse_order_by([view.sort] if view.sort else None)
    except InvalidInput as exc:
        return _problem("sort", exc, _SORT_HINT)
    return None


def _problem(what: str, exc: InvalidInput, hint: str | None) -> Problem:
    # A syntax error's message carries the text and a caret under the mistake on further lines.
    message, _, detail = exc.message.partition("\n")
    return Problem(what, message, detail, exc.hint or hint)


def _extra_columns(view: View, runs: list[Run], notes: list[str]) -> list[str]:
    """The metric, param and tag columns: the URL's, else the defaults for these runs."""
    if view.cols is None:
        try:
            wanted = table.referenced(view.filter or None, [view.sort] if view.sort else [])
        except InvalidInput:
            wanted = []
        return table.default_columns(runs, wanted, DEFAULT_METRICS, DEFAULT_PARAMS)
    out = []
    for key in view.cols:
        try:
            qualified = table.qualify(key, runs)
        except InvalidInput as exc:
            notes.append(exc.message)
            continue
        if qualified.startswith(tuple(_KINDS)):
            out.append(qualified)
        else:
            notes.append(f"column {key!r} is always shown or not a metric, param or tag")
    return list(dict.fromkeys(out))


def _base_columns() -> list[Column]:
    return [
        Column("run_name", "Run", "attribute", "attributes.run_name"),
        Column("status", "Status", "attribute", "attributes.status"),
        Column("start_time", "Started", "attribute", "attributes.start_time"),
        Column("duration", "Duration", "attribute", None),
    ]


def _column(key: str) -> Column:
    prefix, name = key.split(".", 1)
    return Column(key, name, _KINDS[prefix + "."], f"{prefix}.{_quote_key(name)}")


def _quote_key(key: str) -> str:
    """A key as the filter language reads it: bare when it can be, else in backticks."""
    if key and all(ch.isalnum() or ch in "_.-/:" for ch in key):
        return key
    return "`" + key.replace("`", "``") + "`"


def _sorted_by(sort: str) -> OrderKey | None:
    """The first sort key; the table shows its direction in that column's header."""
    from mltrail.search import ORDER_DEFAULT, parse_order_by

    keys = parse_order_by([sort] if sort else None)
    return keys[0] if keys else ORDER_DEFAULT[0]


def _order_key_of(column: Column) -> tuple[str, str]:
    entity = "attribute" if column.kind == "attribute" else column.kind
    return entity, column.label if entity != "attribute" else column.key


def sort_state(column: Column, sorted_by: OrderKey | None) -> str | None:
    """``ascending``/``descending`` when the table is sorted by ``column``, else None."""
    if sorted_by is None or column.order is None:
        return None
    if (sorted_by.entity, sorted_by.key) != _order_key_of(column):
        return None
    return "ascending" if sorted_by.ascending else "descending"


def _header_url(view: View, column: Column, sorted_by: OrderKey | None) -> str | None:
    """Clicking a header sorts by it ascending, or flips the direction if it is the sort."""
    if column.order is None:
        return None
    state = sort_state(column, sorted_by)
    descending = state == "ascending"
    return view.url(sort=column.order + (" DESC" if descending else ""))


def _picker(keys: table.Keys, extra: list[str]) -> list[tuple[str, list[tuple[str, bool]]]]:
    """The column picker's choices: (heading, [(column key, shown)]) for metrics, params, tags."""
    out = []
    for heading, prefix, found in (
        ("Metrics", "metrics.", keys.metrics),
        ("Params", "params.", keys.params),
        ("Tags", "tags.", keys.tags),
    ):
        # Shown columns no run on this page has stay listed, so they can be unticked.
        names = sorted({*found, *(table.bare(k) for k in extra if k.startswith(prefix))})
        out.append((heading, [(prefix + n, prefix + n in extra) for n in names]))
    return out


def _cell(run: Run, column: Column, now: int) -> Any:
    """The run's raw value in ``column`` (the template formats it)."""
    info = run.info
    if column.key == "status":
        return "DELETED" if info.lifecycle_stage == "deleted" else shown(run, now).status
    if column.key == "duration":
        if not info.start_time:
            return None
        seen = shown(run, now)
        end = seen.end_time or (now if seen.running else None)
        return max(end - info.start_time, 0) if end else None
    return table.value(run, column.key)
