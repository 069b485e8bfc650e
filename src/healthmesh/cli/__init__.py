"""The one ``healthmesh`` command line. Each sub-command group lives in its own module and
only parses arguments and calls the domain."""

from __future__ import annotations

import importlib

import click

from healthmesh import __version__


@click.group()
@click.version_option(__version__, prog_name="healthmesh")
def main() -> None:
    """healthmesh: open health-data sharing platform."""


# Sub-command modules; each exposes ``group`` (a click command or group).
_SUBCOMMANDS = (
    "demo",
    "node",
    "hub",
    "ingest",
    "quarantine",
    "quality",
    "synth",
    "ledger",
    "surveillance",
    "linkage",
    "learning",
)

for _name in _SUBCOMMANDS:
    try:
        _mod = importlib.import_module(f"healthmesh.cli.{_name}")
    except ModuleNotFoundError as exc:  # a sub-command module not written yet
        if exc.name != f"healthmesh.cli.{_name}":
            raise
        continue
    main.add_command(_mod.group, name=_name)
