"""``healthmesh ingest``: files into a node's FHIR store; or watch an inbox folder; or listen
for HL7 v2 over MLLP. Only parses arguments and calls ``healthmesh.ingest``."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from healthmesh.errors import HealthmeshError
from healthmesh.ingest.registry import FORMATS

_MSH = re.compile(rb"(?:^|[\r\n])(?:\xef\xbb\xbf)?MSH")

if TYPE_CHECKING:
    from healthmesh.ingest.adapter import Adapter
    from healthmesh.ingest.pipeline import Pipeline, Summary


def _files(sources: tuple[Path, ...]) -> list[tuple[Path, bool]]:
    """(file, named explicitly) for every file given or found under a given folder."""
    out: list[tuple[Path, bool]] = []
    for src in sources:
        if src.is_dir():
            found = sorted(src.rglob("*"))
            out.extend((p, False) for p in found if p.is_file() and not p.name.startswith("."))
        else:
            out.append((src, True))
    return out


def _database(db: str | None, data_dir: Path | None) -> str:
    from healthmesh.node.settings import NodeSettings

    values: dict[str, object] = {}
    if db:
        values["db"] = db
    if data_dir:
        values["data_dir"] = data_dir
    return NodeSettings(**values).database()  # type: ignore[arg-type]


def _estimate(path: Path, fmt: str) -> int:
    """Records expected in a file, for the progress bar: MSH segments of HL7 v2, lines of
    CSV/NDJSON, else one."""
    if fmt == "hl7v2":
        data = path.read_bytes()
        return max(1, len(_MSH.findall(data)))
    if fmt in ("csv", "ndjson") and path.suffix.lower() in (".csv", ".ndjson", ".jsonl"):
        with path.open("rb") as fh:
            return max(1, sum(1 for _ in fh) - (fmt == "csv"))
    return 1


def _report(summary: Summary) -> None:
    click.echo(summary.line())
    for reason, n in summary.reasons.most_common(5):
        click.echo(f"  {n:6d}  {reason}")


@click.command()
@click.argument("sources", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--institution", required=True, help="Institution id (scopes ids and quarantine).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Source format (default: from each file's suffix).",
)
@click.option(
    "--mapping",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Mapping file for the csv format.",
)
@click.option("--db", default=None, help="SQLite path or postgresql:// URL of the node store.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Node data directory (default store <data-dir>/node.sqlite).",
)
@click.option(
    "--watch",
    "watch_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Watch this inbox folder instead of reading SOURCES.",
)
@click.option("--once", is_flag=True, help="With --watch: process what is there, then exit.")
@click.option(
    "--mllp",
    "mllp_port",
    type=int,
    default=None,
    help="Listen for HL7 v2 over MLLP on this port instead of reading SOURCES.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="MLLP listen address.")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Processes converting HL7 v2 (default: 1 below 4 MB per file, else cores).",
)
def group(
    sources: tuple[Path, ...],
    institution: str,
    fmt: str | None,
    mapping: Path | None,
    db: str | None,
    data_dir: Path | None,
    watch_dir: Path | None,
    once: bool,
    mllp_port: int | None,
    host: str,
    workers: int | None,
) -> None:
    """Convert SOURCES (files or folders) to FHIR R4 in the node; quarantine what fails.

    Prints received, converted (created, updated, unchanged) and quarantined at the end.
    """
    from healthmesh.fhir.store import FhirStore
    from healthmesh.ingest.parallel import default_workers
    from healthmesh.ingest.pipeline import Pipeline, Summary
    from healthmesh.ingest.quarantine import QuarantineStore
    from healthmesh.ingest.registry import adapter_for, guess_format

    if not sources and watch_dir is None and mllp_port is None:
        raise click.UsageError("give SOURCE files, --watch DIR or --mllp PORT")
    database = _database(db, data_dir)
    pipeline = Pipeline(FhirStore(database), QuarantineStore(database), institution)

    def pick(path: Path) -> Adapter:
        return adapter_for(fmt or guess_format(path), institution=institution, mapping=mapping)

    try:
        if mllp_port is not None:
            _serve_mllp(pipeline, institution, host, mllp_port)
            return
        if watch_dir is not None:
            from healthmesh.ingest.inbox import Inbox

            inbox = Inbox(watch_dir, pipeline, pick, settle_seconds=0 if once else 1.0)
            if once:
                _report(inbox.scan_once())
                return
            click.echo(f"watching {watch_dir} (Ctrl-C to stop)")
            stop = threading.Event()
            try:
                inbox.watch(stop)
            except KeyboardInterrupt:
                stop.set()
            return
        adapters: dict[Path, Adapter] = {}
        skipped = 0
        for f, explicit in _files(sources):
            if fmt is None and not explicit:
                try:
                    guess_format(f)
                except HealthmeshError:
                    skipped += 1  # a README or other stray file in a folder
                    continue
            adapters[f] = pick(f)
        if skipped:
            click.echo(f"skipped {skipped} file(s) of unknown format in the folders given")
        files = list(adapters)
        total = Summary()
        expected = sum(_estimate(f, adapters[f].format) for f in files)
        with click.progressbar(
            length=expected, label="ingesting", file=sys.stderr, show_pos=True
        ) as bar:
            for f in files:
                data = f.read_bytes()
                n = workers if workers is not None else default_workers(len(data))
                s = pipeline.ingest(
                    adapters[f], data, f.name, workers=n, on_record=lambda *_: bar.update(1)
                )
                total.add(s)
        _report(total)
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        pipeline.store.close()
        pipeline.quarantine.close()


def _serve_mllp(pipeline: Pipeline, institution: str, host: str, port: int) -> None:
    from healthmesh.ingest.hl7v2 import Hl7v2Adapter
    from healthmesh.ingest.mllp import MllpListener

    listener = MllpListener(pipeline, Hl7v2Adapter(institution))

    async def main() -> None:
        server = await listener.start(host, port)
        click.echo(f"MLLP listening on {host}:{port} (Ctrl-C to stop)")
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
        _report(listener.summary)
