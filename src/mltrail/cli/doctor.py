"""``mltrail doctor``: versions, store location and schema, object store, as ✓/✗ lines."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import click

from mltrail._version import __version__
from mltrail.cli import format as fmt
from mltrail.cli.context import get_client, state
from mltrail.cli.options import json_option

if TYPE_CHECKING:
    from mltrail.tracking.client import MltrailClient

#: Libraries mltrail needs, by distribution name.
REQUIRED = ("click", "rich", "SQLAlchemy", "alembic", "blake3", "PyYAML")
#: Libraries only some stores need, with what they are for.
OPTIONAL = {"psycopg": "PostgreSQL stores"}
#: Objects counted before doctor stops counting (it reports "N+" past this).
MAX_COUNT = 100_000


@dataclass
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    hint: str | None = None


def _version(dist: str) -> str | None:
    # importlib.metadata costs ~15 ms to import; only doctor needs it, not `mltrail --help`.
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _library_checks() -> list[Check]:
    found = {dist: _version(dist) for dist in (*REQUIRED, *OPTIONAL)}
    missing = [d for d in REQUIRED if found[d] is None]
    listed = ", ".join(f"{d} {found[d]}" for d in REQUIRED if found[d])
    checks = [
        Check(
            "mltrail",
            True,
            f"{__version__} (Python {platform.python_version()}, {platform.platform(terse=True)})",
        ),
        Check(
            "libraries",
            not missing,
            listed + (f"; missing: {', '.join(missing)}" if missing else ""),
            "Reinstall mltrail: pip install --force-reinstall mltrail" if missing else None,
        ),
    ]
    for dist, purpose in OPTIONAL.items():
        if found[dist]:
            checks.append(Check(dist, True, f"{found[dist]} (for {purpose})"))
    return checks


def _store_checks() -> list[Check]:
    from mltrail.config import resolve
    from mltrail.errors import MltrailError

    st = state()
    checks: list[Check] = []
    try:
        location = resolve(st.store, st.objects, create=False)
    except MltrailError as exc:
        return [Check("store", False, exc.message, exc.hint)]
    project = str(location.project_dir) if location.project_dir else "none (store given by URI)"
    checks.append(Check("project folder", True, project))
    try:
        client = get_client()
    except MltrailError as exc:
        checks.append(Check("tracking store", False, exc.message, exc.hint))
        return checks
    from mltrail.store.migrate import HEAD

    checks.append(Check("tracking store", True, f"{client.tracking_uri} (opens)"))
    # Opening the store brought its schema to HEAD or failed, so an open store is at HEAD.
    checks.append(Check("schema", True, f"revision {HEAD} (up to date)"))
    checks.append(_objects_check(client))
    checks.append(_temp_check(client))
    return checks


def _objects_check(client: MltrailClient) -> Check:
    from mltrail.errors import MltrailError

    try:
        objects = client.objects
        count = 0
        for _ in objects.iter_hashes():
            count += 1
            if count >= MAX_COUNT:
                break
    except MltrailError as exc:
        return Check("object store", False, exc.message, exc.hint)
    except Exception as exc:  # doctor reports every failure as a line instead of stopping
        return Check("object store", False, f"{type(exc).__name__}: {exc}")
    counted = f"{count}+" if count >= MAX_COUNT else str(count)
    plural = "" if count == 1 else "s"
    return Check("object store", True, f"{objects.location} ({counted} object{plural})")


def _temp_check(client: MltrailClient) -> Check:
    from mltrail.errors import MltrailError

    try:
        found = client.objects.temp_files()
    except MltrailError as exc:
        return Check("temp files", False, exc.message, exc.hint)
    except Exception as exc:  # doctor reports every failure as a line instead of stopping
        return Check("temp files", False, f"{type(exc).__name__}: {exc}")
    if not found.stale:
        return Check("temp files", True, "none left by killed commands")
    # Not a failure: the next write to the store removes them, so doctor only reports them.
    return Check(
        "temp files",
        True,
        f"{found.stale} left by killed commands ({fmt.size(found.stale_bytes)})",
        "The next command that writes to the store removes them, or now: mltrail data gc",
    )


@click.command("doctor")
@json_option
def doctor_command(as_json: bool) -> None:
    """Check the installation and the store.

    Shows versions, the store's location and schema, and the object store; exits 1 when any
    check fails.
    """
    checks = _library_checks() + _store_checks()
    if as_json:
        fmt.echo_json([asdict(c) for c in checks])
    else:
        ok, bad = fmt.glyph("✓", "ok"), fmt.glyph("✗", "FAIL")
        for c in checks:
            mark = click.style(ok, fg="green") if c.ok else click.style(bad, fg="red")
            click.echo(f"{mark} {fmt.visible(str(c.name))}: {fmt.visible(str(c.detail))}")
            if c.hint:
                fmt.echo(f"    {c.hint}")
    if not all(c.ok for c in checks):
        raise SystemExit(1)
