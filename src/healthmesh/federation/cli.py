"""``healthmesh node init``: create (or show) the node's federation identity.

Mounted under ``healthmesh node`` by :mod:`healthmesh.cli.node`. The command only parses
arguments and calls :func:`healthmesh.federation.identity.load_or_create`.
"""

from __future__ import annotations

from pathlib import Path

import click

from healthmesh.errors import HealthmeshError
from healthmesh.federation.identity import PUBLIC_FILE, identity_dir, load_or_create


@click.command("init")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The node's data directory; keys go to <data-dir>/federation (mode 0600).",
)
@click.option("--institution", required=True, help="Institution id, e.g. hosp-a.")
def init(data_dir: Path, institution: str) -> None:
    """Create the institution's federation keys (Ed25519 signing + X25519 encryption).

    Idempotent: an existing identity of the same institution is kept and shown. Prints the
    key id an operator compares before approving the registration at the hub.
    """
    directory = identity_dir(data_dir)
    existed = (directory / PUBLIC_FILE).exists()
    try:
        ident = load_or_create(directory, institution)
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{'existing' if existed else 'created'} federation identity of {institution}")
    click.echo(f"key id: {ident.key_id}")
    click.echo(f"public record: {directory / PUBLIC_FILE}")
