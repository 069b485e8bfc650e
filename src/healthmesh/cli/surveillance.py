"""``healthmesh surveillance run|alerts|plot``: outbreak detection from pooled counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import click
import numpy as np

from healthmesh.db import make_engine
from healthmesh.errors import HealthmeshError
from healthmesh.surveillance.pipeline import detect, read_counts_csv
from healthmesh.surveillance.plots import plot_series
from healthmesh.surveillance.store import AlertStore


@click.group(name="surveillance")
def group() -> None:
    """Outbreak detection: run detectors, manage alerts, plot series."""


@group.command()
@click.option("--counts", type=click.Path(exists=True, path_type=Path), required=True,
              help="CSV: institution,date,district,signal,count")
@click.option("--db", required=True, help="SQLite path or postgresql:// URL for alerts")
@click.option("--weekly/--daily", default=False, help="aggregate to ISO weeks")
@click.option("--last", default=7, show_default=True, help="periods to monitor")
def run(counts: Path, db: str, weekly: bool, last: int) -> None:
    """Pool counts, run the default detectors on the last periods, store new alerts."""
    try:
        _s, _r, alerts = detect(read_counts_csv(counts), weekly=weekly, last=last)
        ids = AlertStore(make_engine(db)).add(alerts)
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{len(alerts)} alarms, {len(ids)} new alerts")


@group.command()
@click.option("--db", required=True)
@click.option("--status", default=None)
@click.option("--act", "alert_id", type=int, default=None, help="alert id to act on")
@click.option("--action", type=click.Choice(["acknowledge", "dismiss", "escalate"]))
@click.option("--actor", default=None)
@click.option("--note", default="")
def alerts(db: str, status: str | None, alert_id: int | None, action: str | None,
           actor: str | None, note: str) -> None:
    """List alerts (JSON lines), or apply a lifecycle action with --act/--action/--actor."""
    store = AlertStore(make_engine(db))
    try:
        if alert_id is not None:
            if not action or not actor:
                raise click.UsageError("--act needs --action and --actor")
            click.echo(json.dumps(store.act(alert_id, action, actor, note).as_dict()))
            return
        for a in store.find(status=status):
            row = a.as_dict()
            row.pop("context")
            click.echo(json.dumps(row, ensure_ascii=False))
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from exc


@group.command()
@click.option("--counts", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--district", required=True)
@click.option("--signal", required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help=".png or .svg")
@click.option("--weekly/--daily", default=False)
@click.option("--last", default=60, show_default=True)
def plot(counts: Path, district: str, signal: str, out: Path, weekly: bool, last: int) -> None:
    """Plot observed counts against the first detector's threshold, alarms marked."""
    fmt: Literal["png", "svg"] = "svg" if out.suffix.lower() == ".svg" else "png"
    try:
        series, results, _alerts = detect(read_counts_csv(counts), weekly=weekly, last=last)
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from exc
    if (district, signal) not in series.keys or not results:
        raise click.ClickException("no such series or too little history")
    i = series.keys.index((district, signal))
    name, res = next(iter(results.items()))
    idx = res.t - 1
    labels = [series.periods[j].isoformat() for j in idx]
    thr = [None if np.isnan(v) else float(v) for v in res.upperbound[i]]
    out.write_bytes(plot_series(labels, series.observed[i, idx].tolist(), thr,
                                res.alarm[i].tolist(), title=f"{signal} {district} ({name})",
                                fmt=fmt))
    click.echo(str(out))
