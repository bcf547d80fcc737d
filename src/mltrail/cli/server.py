"""``mltrail server``: run the team server, migrate its database, manage tokens and permissions.

``mltrail server`` alone serves a store (the project's, or ``--store``). Its subcommands work on a
store directly (``sqlite:///…``, ``postgresql://…``, a project folder) or, given a server's
``http(s)://`` URL, through that server's admin API with an admin's ``MLTRAIL_TOKEN``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mltrail.cli import format as fmt
from mltrail.cli.options import json_option, listen_options, port_option

if TYPE_CHECKING:
    from mltrail.entities import Permission, TokenInfo
    from mltrail.server.app import ServerSettings, ServerState
    from mltrail.store.base import TrackingStore

F = TypeVar("F", bound=Callable[..., object])

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: ctx.meta key under which ``mltrail server --store`` reaches the subcommands.
_META_STORE = "mltrail.server.store"
#: Options that only mean something when the server starts.
_SERVE_ONLY = (
    *("host", "port", "workers", "auth", "insecure_no_auth"),
    *("max_body_mb", "presign", "access_log", "allowed_host"),
)
_STORE_HELP = (
    "Store: sqlite:///path.db, postgresql://…, a project folder, or a server's http(s):// URL "
    "(then an admin's MLTRAIL_TOKEN is used). Default: `mltrail server --store`, "
    "MLTRAIL_TRACKING_URI, or the nearest .mltrail folder."
)



#: ``--allowed-host``, shared by ``mltrail server`` and ``mltrail ui``.
_allowed_host_option = click.option(
    "--allowed-host",
    "allowed_host",
    multiple=True,
    metavar="NAME",
    help="Without auth, answer requests naming this host too (repeatable; also "
    "MLTRAIL_ALLOWED_HOSTS, comma separated). Without auth only localhost, 127.0.0.1 and "
    "[::1] are answered, so a web page cannot reach the server by DNS rebinding.",
)

@click.group(
    "server",
    invoke_without_command=True,
    subcommand_metavar="[COMMAND [ARGS]...]",
)
@click.option(
    "--store",
    metavar="URI",
    help="Store to serve: postgresql://…, sqlite:///path.db or a project folder. "
    "Default: mltrail's --store, MLTRAIL_TRACKING_URI, or the nearest .mltrail folder.",
)
@click.option(
    "--objects",
    metavar="LOCATION",
    help="Object store for artifacts, datasets and models: s3://bucket/prefix or a folder. "
    "Default: the project's (or the one beside a SQLite file).",
)
@listen_options(
    5000, "Server processes sharing the port; they keep no state, so any number may run."
)
@click.option(
    "--auth/--no-auth",
    default=None,
    help="Require tokens. Default: off on 127.0.0.1/::1/localhost, on for any other host. "
    "--no-auth is refused on other hosts (see --insecure-no-auth).",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve without tokens even on a non-loopback host (only behind a proxy that "
    "authenticates users itself).",
)
@_allowed_host_option
@click.option(
    "--max-body-mb",
    default=32,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Largest JSON request body, in MB; bigger ones get 413 (object uploads are exempt).",
)
@click.option(
    "--presign",
    is_flag=True,
    help="Let clients move object bytes straight to and from S3 with presigned URLs "
    "(S3 objects only).",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One JSON line per request on stderr.",
)
@click.pass_context
def server_group(ctx: click.Context, store: str | None, objects: str | None, **serve: Any) -> None:
    """Run the team server: the REST API over a store, for remote clients and the CLI.

    With no subcommand, serves until Ctrl-C or SIGTERM. Clients then use
    MLTRAIL_TRACKING_URI=http://HOST:PORT (and MLTRAIL_TOKEN when auth is on); the mlflow
    client works too, with MLFLOW_TRACKING_URI=http://HOST:PORT (and MLFLOW_TRACKING_TOKEN).
    The store is opened (and its schema migrated) before the server listens, so a bad --store
    fails here.
    """
    if ctx.invoked_subcommand is not None:
        for name in _SERVE_ONLY:
            if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
                flag = "--" + name.replace("_", "-")
                raise click.UsageError(
                    f"{flag} starts the server; it does not apply to `{ctx.invoked_subcommand}`"
                )
        if store:
            ctx.meta[_META_STORE] = store
        return
    _serve(ctx, store, objects, **serve)


# -- serving -------------------------------------------------------------------------------------


def _serve(
    ctx: click.Context,
    store: str | None,
    objects: str | None,
    *,
    host: str,
    port: int,
    workers: int,
    auth: bool | None,
    insecure_no_auth: bool,
    max_body_mb: float,
    presign: bool,
    access_log: bool,
    allowed_host: tuple[str, ...] = (),
    open_browser: bool = False,
) -> None:
    from mltrail.cli.context import state
    from mltrail.cli.errors import print_warning
    from mltrail.config import resolve
    from mltrail.errors import InvalidInput

    _need_server_extra()
    root = state(ctx)
    from mltrail.errors import StoreNotFound

    asked = store or root.store
    try:
        location = resolve(asked, objects or root.objects, create=False)
    except StoreNotFound as exc:
        if not (asked or "").startswith("sqlite:///"):
            raise
        raise StoreNotFound(
            exc.message,
            hint=f"Create it with `mltrail server migrate --store {asked}`, or check the path.",
        ) from None
    uri = location.tracking_uri
    if uri.startswith(("http://", "https://")):
        raise InvalidInput(
            f"--store {uri} is a server; `mltrail server` serves a database",
            hint="Pass --store postgresql://…, sqlite:///path.db or a project folder.",
        )
    if presign and not (location.objects or "").startswith("s3://"):
        raise InvalidInput(
            f"--presign needs S3 objects; the objects are at {location.objects or 'nowhere'}",
            hint="Pass --objects s3://bucket/prefix, or leave out --presign.",
        )
    if insecure_no_auth:
        auth = False
    elif auth is False and host not in _LOOPBACK:
        raise InvalidInput(
            f"--no-auth on {host} would let anyone who reaches the port read and change everything",
            hint="Keep auth on and give users tokens (`mltrail server tokens create`); behind "
            "a proxy that authenticates users, pass --insecure-no-auth instead.",
        )
    from mltrail.server.app import ServerSettings, ServerState
    from mltrail.server.hosts import allowed_from_env

    settings = ServerSettings(
        store_uri=uri,
        objects=location.objects,
        host=host,
        port=port,
        auth=auth,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        presign=presign,
        access_log=access_log,
        allowed_hosts=tuple(h.strip().lower() for h in allowed_host) + allowed_from_env(),
    )
    # Open everything before listening: a bad URI, a schema to migrate or an unreachable
    # database fails here, with no server half up.
    served = ServerState(settings, migrate=False)
    try:
        if settings.objects:
            served.objects  # noqa: B018  (opening it is the check)
        else:
            print_warning(
                "no --objects: artifacts, datasets and models cannot go through this server"
            )
        if settings.auth_enabled and not served.store.list_tokens():
            print_warning(
                "auth is on and there are no tokens yet; create one for yourself: "
                f"mltrail server tokens create --user NAME --role admin --store {_shown(uri)}"
            )
        from mltrail.netutil import bind, url_of

        sock = bind(host, port)
    except BaseException:
        served.close()
        raise
    try:
        url = url_of(host, sock.getsockname()[1])
        notes = [
            "auth on" if settings.auth_enabled else "auth off",
            *([f"{workers} workers"] if workers > 1 else []),
            "Ctrl+C to stop",
        ]
        shown = str(location.project_dir) if location.project_dir else _shown(uri)
        fmt.echo(f"Serving {shown} on {url} ({', '.join(notes)})")
        if not settings.auth_enabled:
            fmt.echo(_auth_off_note(settings, url))
        sys.stdout.flush()
        if open_browser:
            _open_browser(url)
        if workers > 1:
            # Each worker opens its own connections; the parent only supervises.
            served.close()
        _run(settings, None if workers > 1 else served, sock, workers)
    finally:
        sock.close()
        served.close()


def _auth_off_note(settings: ServerSettings, url: str) -> str:
    """What a server without auth exposes, said at start-up."""
    where = url.split("://", 1)[-1]
    names = ["localhost", "127.0.0.1", "[::1]", *settings.allowed_hosts]
    return (
        f"auth is off: anyone who can reach {where} can read and write everything; "
        f"admin API (tokens, permissions) disabled; answering only to Host "
        f"{', '.join(names)}"
    )


@click.command("ui")
@port_option(5000, "Port to listen on, on 127.0.0.1 (0: any free port).")
@click.option(
    "--browser/--no-browser",
    default=True,
    show_default=True,
    help="Open the UI in the default web browser once it is up.",
)
@_allowed_host_option
@click.pass_context
def ui_command(ctx: click.Context, port: int, browser: bool, allowed_host: tuple[str, ...]) -> None:
    """Open the web UI on this project's store (or --store), on 127.0.0.1 only.

    Runs, metrics charts, compare views, models, datasets and lineage, with nothing to install
    beyond `pip install 'mltrail[ui]'` and no internet needed. Serves until Ctrl-C. For a team,
    `mltrail server` serves the same UI beside its API.
    """
    # Named here, not imported from mltrail.server.app, so a missing extra is still reported.
    _need_server_extra(("jinja2", "plotly", "numpy"), "ui")
    _serve(
        ctx,
        None,
        None,
        host="127.0.0.1",
        port=port,
        workers=1,
        auth=False,
        insecure_no_auth=False,
        max_body_mb=32,
        presign=False,
        access_log=False,
        allowed_host=allowed_host,
        open_browser=browser,
    )


def _open_browser(url: str) -> None:
    """Open ``url`` in a browser from a thread (the server starts meanwhile; the socket listens)."""
    import threading
    import webbrowser

    threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()


def _need_server_extra(modules: tuple[str, ...] = (), extra: str = "server") -> None:
    from mltrail.errors import InvalidInput

    wanted = ("fastapi", "uvicorn", *modules)
    missing = [m for m in wanted if importlib.util.find_spec(m) is None]
    if missing:
        raise InvalidInput(
            f"the {extra} needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed",
            hint=f"pip install 'mltrail[{extra}]'",
        )


def _shown(uri: str) -> str:
    """A store URI fit to print: no password."""
    if "@" not in uri or "://" not in uri:
        return uri
    from sqlalchemy.engine import make_url

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except Exception:  # a URI SQLAlchemy cannot parse never got this far; stay safe anyway
        return uri.split("://", 1)[0] + "://…@" + uri.rsplit("@", 1)[-1]


def _run(settings: ServerSettings, served: ServerState | None, sock: Any, workers: int) -> None:
    """Serve until Ctrl-C or SIGTERM, either of which is a normal stop (this returns)."""
    import os

    from mltrail.netutil import log_to_stderr, serve

    log_to_stderr("mltrail.server")
    app = None
    if served is not None:
        from mltrail.server.app import create_app

        app = create_app(settings, served)
    else:
        from mltrail.server.app import ENV_SETTINGS

        os.environ[ENV_SETTINGS] = settings.to_env()
    serve(app, sock, workers=workers, factory="mltrail.server.app:app_from_env")


# -- the store the subcommands work on -----------------------------------------------------------


def _store_option(f: F) -> F:
    return click.option("--store", metavar="URI", help=_STORE_HELP)(f)


def _open(store: str | None) -> TrackingStore:
    """The store a subcommand works on; closed when the command ends."""
    from mltrail.cli.context import state
    from mltrail.config import resolve
    from mltrail.store import open_store

    ctx = click.get_current_context()
    uri = store or ctx.meta.get(_META_STORE) or state(ctx).store
    location = resolve(uri, create=False)
    where = str(location.project_dir or "") or location.tracking_uri
    opened = open_store(location.tracking_uri, where=where)
    ctx.call_on_close(opened.close)
    return opened


# -- migrate -------------------------------------------------------------------------------------


@server_group.command("migrate")
@_store_option
def migrate_command(store: str | None) -> None:
    """Bring a PostgreSQL or SQLite store's schema up to this mltrail's version.

    Prints the revision before and after. Every mltrail command also migrates a store it opens;
    run this on purpose before rolling out a new version to a team's servers.
    """
    import sqlalchemy as sa

    from mltrail.cli.context import state
    from mltrail.config import resolve
    from mltrail.errors import InvalidInput, StoreError
    from mltrail.store.engine import make_engine
    from mltrail.store.migrate import HEAD, check_revision, current_revision, ensure_schema

    ctx = click.get_current_context()
    uri = store or ctx.meta.get(_META_STORE) or state(ctx).store
    # An explicit new SQLite file is created here: that is what migrating "nothing" means.
    explicit_sqlite = bool(uri and uri.startswith("sqlite:///"))
    location = resolve(uri, create=explicit_sqlite)
    target = location.tracking_uri
    if target.startswith(("http://", "https://")):
        raise InvalidInput(
            f"{target} is a server; migrations run on its database",
            hint="Run `mltrail server migrate --store postgresql://…` where the database is "
            "reachable.",
        )
    where = str(location.project_dir or "") or _shown(target)
    engine = make_engine(target)
    try:
        try:
            with engine.connect() as conn:
                before = current_revision(conn)
        except sa.exc.DatabaseError as exc:
            orig = getattr(exc, "orig", None) or exc
            raise StoreError(
                f"cannot read the schema of {where}: {str(orig).splitlines()[0]}",
                hint="Check the URI, that the database server runs, and the user's rights.",
            ) from None
        check_revision(before, where)
        ensure_schema(engine, where)
    finally:
        engine.dispose()
    if before == HEAD:
        fmt.echo(f"{where} is up to date (schema {HEAD}).")
    elif before is None:
        fmt.echo(f"Created the schema of {where} (schema {HEAD}).")
    else:
        fmt.echo(f"Migrated {where} from schema {before} to {HEAD}.")


# -- tokens --------------------------------------------------------------------------------------


@server_group.group("tokens")
def tokens_group() -> None:
    """Create, list and revoke API tokens (read, write or admin).

    Tokens are stored hashed: the token string is shown once, when it is created.
    """


_DURATION = re.compile(r"(\d+)\s*(m|min|h|d|w|y)")
_UNIT_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_expiry(text: str, now_ms: int) -> int | None:
    """``--expires``: a duration (90m, 12h, 30d, 8w, 1y), a date or date-time (UTC), or never."""
    from datetime import UTC, datetime

    from mltrail.errors import InvalidInput

    clean = text.strip().lower()
    if clean in ("never", "none", ""):
        return None
    found = _DURATION.fullmatch(clean)
    if found and int(found[1]) > 0:
        return now_ms + int(found[1]) * _UNIT_SECONDS[found[2]] * 1000
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is not None:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        at = int(moment.timestamp() * 1000)
        if at > now_ms:
            return at
        raise InvalidInput(
            f"--expires {text!r} is in the past", hint="Give a future date, or a duration."
        )
    raise InvalidInput(
        f"--expires {text!r} is not a duration or a date",
        hint="Use a duration such as 90m, 12h, 30d, 8w or 1y, a date such as 2030-01-31 (UTC), "
        "or never.",
    )


@tokens_group.command("create")
@click.option("--user", required=True, help="Who the token is for (recorded in runs and events).")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["read", "write", "admin"]),
    help="read: see everything; write: also log runs and change models; admin: also manage "
    "tokens and permissions.",
)
@click.option(
    "--expires",
    metavar="WHEN",
    default="never",
    show_default=True,
    help="A duration (90m, 12h, 30d, 8w, 1y), a date or date-time in UTC, or never.",
)
@click.option("--description", help="What the token is for, shown by `tokens ls`.")
@_store_option
@json_option
def tokens_create_command(
    user: str,
    role: str,
    expires: str,
    description: str | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Create a token for a user and print it (the only time it is shown)."""
    expires_at = parse_expiry(expires, fmt.now_ms())
    info, token = _open(store).create_token(user, role, description, expires_at)
    if as_json:
        fmt.echo_json({"token": token, **info.to_dict()})
        return
    until = f", expires {_utc(info.expires_at)}" if info.expires_at else ""
    fmt.echo(f"Created token {info.token_id} for {info.user} (role {info.role}{until}):")
    fmt.echo("")
    fmt.echo(f"  {token}")
    fmt.echo("")
    fmt.echo("It is not shown again. The user sets it before using the server:")
    fmt.echo(f"  export MLTRAIL_TOKEN={token}")


@tokens_group.command("ls")
@click.option("--user", help="Only this user's tokens.")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked tokens.")
@_store_option
@json_option
def tokens_ls_command(
    user: str | None, include_revoked: bool, store: str | None, as_json: bool
) -> None:
    """List tokens, newest first: id, user, role, dates and state (never the secret)."""
    tokens = _open(store).list_tokens(user, include_revoked)
    if as_json:
        fmt.echo_json([t.to_dict() for t in tokens])
        return
    if not tokens:
        fmt.echo(
            "No tokens; create one: mltrail server tokens create --user NAME --role ROLE"
            if not user
            else f"No tokens for {user}."
        )
        return
    _print_tokens(tokens)


def _utc(ms: int | None) -> str:
    from mltrail.store.auth_base import format_ms

    return format_ms(ms) if ms else "never"


def _day(ms: int | None) -> str:
    return _utc(ms)[:10] if ms else "never"


def _token_state(t: TokenInfo, now: int) -> str:
    if t.revoked_at is not None:
        return "revoked"
    if t.expires_at is not None and t.expires_at <= now:
        return "expired"
    return "active"


def _print_tokens(tokens: list[TokenInfo]) -> None:
    from mltrail.cli.render import Column, console, table

    now = fmt.now_ms()
    out = table(
        [
            # Fixed widths for the short columns, so only the user and description shrink.
            Column("id", min_width=12),
            Column("user", min_width=4, max_width=16),
            Column("role", min_width=5),
            Column("state", min_width=7),
            Column("created", min_width=10),
            Column("expires", min_width=10),
            Column("description", max_width=40),
        ]
    )
    for t in tokens:
        out.add_row(
            t.token_id,
            t.user,
            t.role,
            _token_state(t, now),
            _day(t.created_at),
            _day(t.expires_at),
            t.description or "",
        )
    console().print(out)


@tokens_group.command("revoke")
@click.argument("token_id")
@_store_option
def tokens_revoke_command(token_id: str, store: str | None) -> None:
    """Revoke a token by its id (from `tokens ls`); servers refuse it within 30 seconds."""
    from mltrail.server.auth import CACHE_SECONDS

    before = fmt.now_ms()
    info = _open(store).revoke_token(token_id.strip())
    if info.revoked_at is not None and info.revoked_at < before:
        fmt.echo(
            f"Token {info.token_id} ({info.user}) was already revoked on {_utc(info.revoked_at)}."
        )
        return
    fmt.echo(
        f"Revoked token {info.token_id} ({info.user}, role {info.role}); servers refuse it "
        f"within {CACHE_SECONDS:.0f} seconds."
    )


# -- permissions ---------------------------------------------------------------------------------


@server_group.group("permissions")
def permissions_group() -> None:
    """Per-experiment and per-model permissions: they override a user's role there.

    Level none hides an experiment or model from the user; read and write give exactly that
    (a read user may, say, move one model's aliases). Admins are not affected.
    """


def _target_options(f: F) -> F:
    f = click.option("--model", metavar="NAME", help="A registered model's name.")(f)
    return click.option("--experiment", metavar="NAME_OR_ID", help="An experiment's name or id.")(f)


def _target(opened: TrackingStore, experiment: str | None, model: str | None) -> tuple[str, str]:
    """``(kind, target)`` from --experiment / --model (an experiment name becomes its id)."""
    if (experiment is None) == (model is None):
        raise click.UsageError("give exactly one of --experiment and --model")
    if model is not None:
        return "model", model
    from mltrail.errors import NotFound

    assert experiment is not None
    found = opened.get_experiment_by_name(experiment)
    if found is not None:
        return "experiment", found.experiment_id
    if experiment.isdigit():
        return "experiment", opened.get_experiment(experiment).experiment_id
    raise NotFound(
        f"experiment {experiment!r} does not exist", hint="`mltrail exp ls` lists the experiments."
    )


def _describe_target(opened: TrackingStore, kind: str, target: str) -> str:
    if kind == "model":
        return f"model {target!r}"
    try:
        return f"experiment {target} ({opened.get_experiment(target).name})"
    except Exception:  # deleted since, or not visible: the id is still the truth
        return f"experiment {target}"


@permissions_group.command("set")
@click.option("--user", required=True, help="Whose permission it is.")
@_target_options
@click.option(
    "--level",
    required=True,
    type=click.Choice(["none", "read", "write"]),
    help="none hides it from the user; read and write replace the user's role there.",
)
@_store_option
def permissions_set_command(
    user: str, experiment: str | None, model: str | None, level: str, store: str | None
) -> None:
    """Give a user a level on one experiment or one registered model."""
    from mltrail.server.auth import CACHE_SECONDS

    opened = _open(store)
    kind, target = _target(opened, experiment, model)
    opened.set_permission(user, kind, target, level)
    fmt.echo(
        f"{user}: {level} on {_describe_target(opened, kind, target)}; "
        f"servers apply it within {CACHE_SECONDS:.0f} seconds."
    )


@permissions_group.command("rm")
@click.option("--user", required=True, help="Whose permission to remove.")
@_target_options
@_store_option
def permissions_rm_command(
    user: str, experiment: str | None, model: str | None, store: str | None
) -> None:
    """Remove a user's permission on an experiment or model; their role applies there again."""
    opened = _open(store)
    kind, target = _target(opened, experiment, model)
    opened.delete_permission(user, kind, target)
    fmt.echo(f"{user}: no permission on {_describe_target(opened, kind, target)} any more.")


@permissions_group.command("ls")
@click.option("--user", help="Only this user's permissions.")
@_store_option
@json_option
def permissions_ls_command(user: str | None, store: str | None, as_json: bool) -> None:
    """List permissions by user: experiment (id and name) or model, and level."""
    opened = _open(store)
    found = opened.list_permissions(user)
    if as_json:
        fmt.echo_json([p.to_dict() for p in found])
        return
    if not found:
        fmt.echo("No permissions: every user has their token's role everywhere.")
        return
    _print_permissions(opened, found)


def _print_permissions(opened: TrackingStore, found: list[Permission]) -> None:
    from mltrail.cli.render import Column, console, table
    from mltrail.entities import ViewType

    names: dict[str, str] = {}
    if any(p.kind == "experiment" for p in found):
        names = {e.experiment_id: e.name for e in opened.list_experiments(ViewType.ALL)}
    out = table(
        [
            Column("user", max_width=24),
            Column("kind"),
            Column("target", max_width=40),
            Column("level"),
        ]
    )
    for p in found:
        shown = p.target
        if p.kind == "experiment" and p.target in names:
            shown = f"{p.target} ({names[p.target]})"
        out.add_row(p.user, p.kind, shown, p.level)
    console().print(out)
