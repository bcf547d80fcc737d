"""``mltrail remote``: the named object stores that ``mltrail data push/pull`` use."""

from __future__ import annotations

from pathlib import Path

import click

from mltrail.cli import format as fmt
from mltrail.cli.options import json_option


def _project_dir() -> Path:
    from mltrail.data.project import Project

    return Project.find().dir


@click.group("remote")
def remote_group() -> None:
    """Configure remotes: folders or S3 buckets that datasets are pushed to and pulled from.

    Remotes are kept in .mltrail/config.toml; commit it so that clones know them.
    """


@remote_group.command("add")
@click.argument("name")
@click.argument("url")
@click.option("-d", "--default", "make_default", is_flag=True, help="Make it the default remote.")
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="For s3:// remotes on an S3-compatible server (MinIO, Ceph…): its http(s) URL.",
)
@click.option("-f", "--force", is_flag=True, help="Replace a remote of the same name.")
def add_command(
    name: str, url: str, make_default: bool, endpoint_url: str | None, force: bool
) -> None:
    """Add remote NAME at URL: a folder (relative to the project root) or s3://bucket/prefix.

    The first remote added becomes the default. S3 credentials come from the usual AWS chain
    (AWS_PROFILE, AWS_ACCESS_KEY_ID…, ~/.aws), never from the config file.
    """
    from mltrail.data.remotes import add_remote

    r = add_remote(
        _project_dir(), name, url, endpoint_url=endpoint_url, default=make_default, force=force
    )
    fmt.echo(
        f"Added remote {fmt.visible(r.name)} -> {fmt.visible(r.url)}"
        + (" (default)" if r.default else "")
    )


@remote_group.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """List the remotes; the default one is marked with *."""
    from mltrail.data.remotes import list_remotes

    remotes = list_remotes(_project_dir())
    if as_json:
        fmt.echo_json([r.to_dict() for r in remotes])
        return
    if not remotes:
        fmt.echo("No remotes; add one with: mltrail remote add NAME URL")
        return
    for r in remotes:
        endpoint = f"  (endpoint {r.endpoint_url})" if r.endpoint_url else ""
        fmt.echo(
            f"{'*' if r.default else ' '} {fmt.visible(r.name):<12} {fmt.visible(r.url)}{endpoint}"
        )


@remote_group.command("remove")
@click.argument("name")
def remove_command(name: str) -> None:
    """Forget remote NAME (the data stored there is not touched)."""
    from mltrail.data.remotes import remove_remote

    remove_remote(_project_dir(), name)
    fmt.echo(f"Removed remote {fmt.visible(name)}")


@remote_group.command("default")
@click.argument("name")
def default_command(name: str) -> None:
    """Make NAME the remote that push, fetch and pull use without -r."""
    from mltrail.data.remotes import set_default_remote

    set_default_remote(_project_dir(), name)
    fmt.echo(f"Default remote: {fmt.visible(name)}")
