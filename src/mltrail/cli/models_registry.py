"""``mltrail models ls|show|versions|register|alias|stage|history|check|…``: the registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import json_option
from mltrail.models.api import model_uri

if TYPE_CHECKING:
    from mltrail.entities import ModelVersion, RegistryEvent

_RUN_ID_WIDTH = 8


def _version(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a version number") from None
    if number < 1:
        raise click.BadParameter(f"{value!r} is not a version number (they start at 1)")
    return number


def _print_versions(versions: list[ModelVersion]) -> None:
    from mltrail.cli import render

    table = render.table(
        [
            # The short columns keep their width; aliases and description give way.
            render.Column("VERSION", justify="right", min_width=7),
            render.Column("STAGE", min_width=5),
            render.Column("ALIASES", max_width=24),
            render.Column("RUN", min_width=_RUN_ID_WIDTH),
            render.Column("CREATED", min_width=7),
            render.Column("DESCRIPTION", max_width=30),
        ]
    )
    for mv in versions:
        deleted = " (deleted)" if mv.lifecycle_stage == "deleted" else ""
        table.add_row(
            f"{mv.version}{deleted}",
            mv.stage,
            ", ".join(mv.aliases) or fmt.missing(),
            (mv.run_id or fmt.missing())[:_RUN_ID_WIDTH],
            fmt.when(mv.creation_time),
            # The first line: split at newlines only, so a '\r' in it is shown, not a cut.
            mv.description.split("\n", 1)[0] if mv.description else "",
        )
    render.console().print(table)


@click.command("ls")
@click.option("--name", "name_like", metavar="PATTERN", help="Only names matching (SQL LIKE).")
@json_option
def ls_command(name_like: str | None, as_json: bool) -> None:
    """List registered models with their latest version and aliases."""
    from mltrail.cli import render

    models = get_client().search_registered_models(name_like=name_like)
    if as_json:
        fmt.echo_json([m.to_dict() for m in models])
        return
    if not models and name_like:
        fmt.echo(f"No registered model matches {name_like!r}.")
        return
    if not models:
        fmt.echo(
            "No registered models; log one with "
            'mt.log_model(model, "model", registered_name="NAME")'
        )
        return
    table = render.table(
        [
            render.Column("NAME", max_width=30),
            render.Column("LATEST", justify="right"),
            render.Column("ALIASES", max_width=30),
            render.Column("UPDATED"),
        ]
    )
    for m in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items()))
        latest = str(m.latest_version) if m.latest_version else fmt.missing()
        table.add_row(m.name, latest, aliases or fmt.missing(), fmt.when(m.last_update_time))
    render.console().print(table)


@click.command("show")
@click.argument("name")
@json_option
def show_command(name: str, as_json: bool) -> None:
    """Show a registered model: description, tags, aliases and its versions."""
    from mltrail.cli import render

    client = get_client()
    model = client.get_registered_model(name)
    versions = client.search_model_versions(name)
    if as_json:
        fmt.echo_json({**model.to_dict(), "versions": [v.to_dict() for v in versions]})
        return
    out = render.console()
    rows: list[tuple[str, Any]] = [
        ("name", model.name),
        ("description", model.description or fmt.missing()),
        ("created", fmt.timestamp(model.creation_time)),
        ("updated", fmt.timestamp(model.last_update_time)),
    ]
    out.print(render.key_values(rows))
    aliases = [(a, f"version {v}") for a, v in sorted(model.aliases.items())]
    render.section(out, "Aliases", render.key_values(aliases) if aliases else None)
    tags = sorted(model.tags.items())
    render.section(out, "Tags", render.key_values(tags) if tags else None)
    out.print(render.styled("Versions", "bold"))
    if versions:
        _print_versions(versions)
    else:
        out.print(render.styled("  none", "dim"))


@click.command("versions")
@click.argument("name")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted versions.")
@json_option
def versions_command(name: str, include_deleted: bool, as_json: bool) -> None:
    """List the versions of model NAME, newest first."""
    client = get_client()
    client.get_registered_model(name)  # an unknown model is an error, not an empty list
    versions = client.search_model_versions(name, include_deleted=include_deleted)
    if as_json:
        fmt.echo_json([v.to_dict() for v in versions])
        return
    if not versions:
        fmt.echo(f"Model {fmt.visible(name)} has no versions.")
        return
    _print_versions(versions)


@click.command("register")
@click.argument("source", metavar="RUNS_URI")
@click.argument("name")
@click.option("-d", "--description", help="Description of the new version.")
def register_command(source: str, name: str, description: str | None) -> None:
    """Register the model logged at RUNS_URI (runs:/RUN_ID/PATH) as a new version of NAME."""
    mv = get_client().register_model(source, name, description=description)
    fmt.echo(f"Registered {fmt.visible(name)} version {mv.version} from {fmt.visible(mv.source)}")


@click.command("alias")
@click.argument("name")
@click.argument("version", type=_version)
@click.argument("alias")
@click.option("-m", "--comment", help="Why: kept in the audit trail.")
def alias_command(name: str, version: int, alias: str, comment: str | None) -> None:
    """Point ALIAS of model NAME at VERSION (moving it if it pointed elsewhere)."""
    client = get_client()
    before = client.get_registered_model(name).aliases.get(alias)
    client.set_registered_model_alias(name, alias, version, comment=comment)
    moved = f" (was version {before})" if before not in (None, version) else ""
    fmt.echo(f"{fmt.visible(name)}@{fmt.visible(alias)} -> version {version}{moved}")


@click.command("unalias")
@click.argument("name")
@click.argument("alias")
@click.option("-m", "--comment", help="Why: kept in the audit trail.")
def unalias_command(name: str, alias: str, comment: str | None) -> None:
    """Remove ALIAS from model NAME."""
    get_client().delete_registered_model_alias(name, alias, comment=comment)
    fmt.echo(f"Removed {fmt.visible(name)}@{fmt.visible(alias)}")


@click.command("stage")
@click.argument("name")
@click.argument("version", type=_version)
@click.argument("stage", metavar="STAGE")
@click.option(
    "--archive-existing",
    is_flag=True,
    help="Move the other versions in STAGE to Archived.",
)
@click.option("-m", "--comment", help="Why: kept in the audit trail.")
def stage_command(
    name: str, version: int, stage: str, archive_existing: bool, comment: str | None
) -> None:
    """Move VERSION of NAME to STAGE: None, Staging, Production or Archived (legacy stages)."""
    mv = get_client().transition_model_version_stage(
        name, version, stage, archive_existing_versions=archive_existing, comment=comment
    )
    fmt.echo(f"{fmt.visible(name)} version {mv.version} is now in {mv.stage}")


def _change(e: RegistryEvent) -> str:
    arrow = fmt.glyph("→", "->")
    if e.before is None and e.after is None:
        return e.key or ""
    key = f"{e.key}: " if e.key else ""
    if e.before is None and not e.key:
        return str(e.after)  # a creation: only the new value says anything
    before = e.before if e.before is not None else fmt.missing()
    after = e.after if e.after is not None else fmt.missing()
    return f"{key}{before} {arrow} {after}"


def _minute(ms: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


@click.command("history")
@click.argument("name")
@click.option(
    "--version", "version", type=_version, metavar="N", help="Only events of this version."
)
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most N events.")
@json_option
def history_command(name: str, version: int | None, limit: int | None, as_json: bool) -> None:
    """The audit trail of model NAME: who changed what, when, from what to what, and why."""
    from mltrail.cli import render

    events = get_client().get_model_history(name, version=version, limit=limit)
    if as_json:
        fmt.echo_json([e.to_dict() for e in events])
        return
    if not events:
        fmt.echo(f"No events for {fmt.visible(name)}.")
        return
    table = render.table(
        [
            render.Column("WHEN"),
            render.Column("ACTOR", max_width=10),
            render.Column("ACTION"),
            render.Column("VER", justify="right"),
            render.Column("CHANGE, COMMENT"),
        ]
    )
    # The last column takes what is left and wraps: comments are the point of an audit trail.
    table.columns[-1].no_wrap = False
    table.columns[-1].overflow = "fold"
    for e in events:
        # The change on one line (control characters in it shown), the comment's lines below.
        change = render.styled(_change(e))
        if e.comment:
            change.append("\n" + fmt.visible(e.comment, multiline=True))
        table.add_row(
            _minute(e.timestamp),
            e.actor,
            e.action,
            str(e.version) if e.version is not None else "",
            change,
        )
    render.console().print(table)


@click.command("check")
@click.argument("model")
@click.option(
    "--metric",
    "conditions",
    metavar="COND",
    multiple=True,
    required=True,
    help="A condition on the source run's metric, e.g. 'accuracy>=0.9' (repeatable).",
)
@json_option
def check_command(model: str, conditions: tuple[str, ...], as_json: bool) -> None:
    """Exit 0 when MODEL's source run meets every condition, 1 otherwise (a CI/CD gate)."""
    from mltrail.models.gate import check_model

    result = check_model(get_client(), model_uri(model, folders=False), conditions)
    if as_json:
        fmt.echo_json(result.to_dict())
    else:
        label = f"{result.name} version {result.version}" if result.name else result.model_uri
        fmt.echo(f"{fmt.visible(label)} (run {(result.run_id or fmt.missing())[:_RUN_ID_WIDTH]})")
        for r in result.results:
            value = fmt.number(r.value) if r.value is not None else "not logged"
            mark = click.style("PASS", fg="green") if r.passed else click.style("FAIL", fg="red")
            click.echo(f"  {mark}  {fmt.visible(r.condition)}  (value: {value})")
    if not result.passed:
        raise SystemExit(1)


@click.command("describe")
@click.argument("name")
@click.argument("version", type=_version, required=False)
@click.option("-d", "--description", required=True, help="The new description ('' clears it).")
def describe_command(name: str, version: int | None, description: str) -> None:
    """Set the description of model NAME, or of one of its versions."""
    client = get_client()
    if version is None:
        client.update_registered_model(name, description=description)
        fmt.echo(f"Updated the description of {fmt.visible(name)}")
    else:
        client.update_model_version(name, version, description=description)
        fmt.echo(f"Updated the description of {fmt.visible(name)} version {version}")


@click.command("tag")
@click.argument("name")
@click.argument("version", type=_version, required=False)
@click.option("-s", "--set", "pairs", metavar="KEY=VALUE", multiple=True, help="Set a tag.")
@click.option("-u", "--unset", "keys", metavar="KEY", multiple=True, help="Remove a tag.")
def tag_command(
    name: str, version: int | None, pairs: tuple[str, ...], keys: tuple[str, ...]
) -> None:
    """Set or remove tags of model NAME, or of one of its versions."""
    if not pairs and not keys:
        raise click.UsageError("nothing to do: pass --set KEY=VALUE or --unset KEY")
    parsed = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--set")
        parsed.append((key, value))
    client = get_client()
    # Check everything before the first write, so a typo does not leave half the change done.
    current = (
        client.get_registered_model(name).tags
        if version is None
        else client.get_model_version(name, version).tags
    )
    unknown = [k for k in keys if k not in current]
    if unknown:
        target = name if version is None else f"{name} version {version}"
        raise click.BadParameter(
            f"{target} has no tag {', '.join(map(repr, unknown))}; nothing was changed",
            param_hint="--unset",
        )
    for key, value in parsed:
        if version is None:
            client.set_registered_model_tag(name, key, value)
        else:
            client.set_model_version_tag(name, version, key, value)
    for key in keys:
        if version is None:
            client.delete_registered_model_tag(name, key)
        else:
            client.delete_model_version_tag(name, version, key)
    target = name if version is None else f"{name} version {version}"
    fmt.echo(f"Tagged {fmt.visible(target)}: {len(pairs)} set, {len(keys)} removed")


@click.command("rename")
@click.argument("name")
@click.argument("new_name")
def rename_command(name: str, new_name: str) -> None:
    """Rename registered model NAME to NEW_NAME (versions and aliases follow)."""
    get_client().rename_registered_model(name, new_name)
    fmt.echo(f"Renamed {fmt.visible(name)} to {fmt.visible(new_name)}")


@click.command("delete")
@click.argument("name")
@click.argument("version", type=_version, required=False)
@click.option(
    "--force",
    is_flag=True,
    help="Also when it holds aliases or is in Staging/Production (they are removed first).",
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_command(name: str, version: int | None, force: bool, yes: bool) -> None:
    """Delete VERSION of model NAME, or the whole model with all its versions.

    A deleted version keeps its number (numbers are never reused). The audit trail is kept in
    both cases. The run artifacts behind the versions are not touched.
    """
    target = name if version is None else f"{name} version {version}"
    if not yes and not click.confirm(f"Delete {target}?", default=False):
        raise SystemExit(1)
    client = get_client()
    if version is None:
        client.delete_registered_model(name, force=force)
    else:
        client.delete_model_version(name, version, force=force)
    fmt.echo(f"Deleted {fmt.visible(target)}")


@click.command("download")
@click.argument("model")
@click.argument("dst", type=click.Path(file_okay=False))
def download_command(model: str, dst: str) -> None:
    """Copy the files of MODEL into folder DST, each checked against its recorded hash."""
    import shutil
    import tempfile
    from pathlib import Path

    from mltrail.models.api import fetch_model

    target = Path(dst)
    if target.exists() and any(target.iterdir()):
        raise click.BadParameter(f"{dst} is not empty", param_hint="DST")
    uri = model_uri(model, folders=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Into a temp folder beside DST first: a failed check leaves nothing half-written behind.
    with tempfile.TemporaryDirectory(prefix=".mltrail-download-", dir=target.parent) as tmp:
        fetch_model(uri, Path(tmp) / "model", client=get_client())
        if target.exists():
            target.rmdir()
        shutil.move(Path(tmp) / "model", target)
    fmt.echo(f"Downloaded {fmt.visible(uri)} to {fmt.visible(target)}")
