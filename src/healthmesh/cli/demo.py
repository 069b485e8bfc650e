"""``healthmesh demo``: one node on an embedded SQLite file with sample patients."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the demo keeps its files (default: a new temporary folder).",
)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--patients", type=int, default=25, show_default=True)
@click.option("--check", is_flag=True, help="Start, load, print, and exit without serving.")
def group(data_dir: Path | None, port: int, patients: int, check: bool) -> None:
    """Start a node, load sample patients, print the FHIR base URL and a token, serve."""
    import uvicorn

    from healthmesh.fhir.bundles import BundleProcessor
    from healthmesh.node.app import build_node
    from healthmesh.node.settings import NodeSettings
    from healthmesh.synth.sample import sample_bundle

    folder = data_dir or Path(tempfile.mkdtemp(prefix="healthmesh-demo-"))
    settings = NodeSettings(
        data_dir=folder, port=port, institution="demo-hospital", token_lifetime=3600
    )
    node = build_node(settings)
    if node.store.count("Patient") == 0:
        processor = BundleProcessor(node.store, lambda _t, _i: None, lambda _u: {})
        _, written = processor.process(sample_bundle(patients))
        click.echo(f"loaded {len(written)} sample resources ({patients} patients)")
    creds = node.clients.add("demo", "system/*.cruds")
    token = node.issue_token(creds.client_id)
    click.echo(f"data directory: {folder}")
    click.echo(f"FHIR base URL:  {node.fhir_base}")
    click.echo(f"token endpoint: {node.token_url}")
    click.echo(f"client_id:      {creds.client_id}")
    click.echo(f"client_secret:  {creds.client_secret}")
    click.echo(f"access token (valid {settings.token_lifetime} s):\n{token}")
    click.echo(f'try: curl -H "Authorization: Bearer $TOKEN" {node.fhir_base}/Patient?_count=2')
    if check:
        node.close()
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        node.app, host=settings.host, port=settings.port, log_level="info", access_log=False
    )
