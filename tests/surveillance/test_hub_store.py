"""Hub pooling, detection to alerts, alert lifecycle (SQLite and PostgreSQL), API, CLI, plots."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from healthmesh.cli import main
from healthmesh.db import make_engine
from healthmesh.errors import Conflict, InvalidInput, NotFound
from healthmesh.surveillance.api import make_router
from healthmesh.surveillance.hub import CountRow, combine, severity
from healthmesh.surveillance.pipeline import detect
from healthmesh.surveillance.plots import plot_series
from healthmesh.surveillance.store import AlertStore

START = dt.date(2025, 1, 1)


def rows(days: int = 60, outbreak_day: int = 55) -> list[CountRow]:
    rng = np.random.default_rng(3)
    out = []
    for d in range(days):
        day = START + dt.timedelta(days=d)
        for inst, district in (("h1", "D1"), ("h2", "D1"), ("h3", "D2")):
            n = int(rng.poisson(6))
            if district == "D1" and d == outbreak_day and inst == "h1":
                n += 40
            out.append(CountRow(inst, day, district, "ili", n if n >= 3 else None))
    return out


def test_combine_pools_institutions_and_region() -> None:
    s = combine(rows(10))
    assert s.keys == [("ALL", "ili"), ("D1", "ili"), ("D2", "ili")]
    np.testing.assert_array_equal(s.observed[0], s.observed[1] + s.observed[2])
    weekly = combine(rows(21), weekly=True)
    assert all(p.weekday() == 0 for p in weekly.periods)
    assert weekly.observed.sum() == s.observed.sum() + combine(rows(21)).observed[:, 10:].sum()


def test_detect_raises_alert_on_outbreak() -> None:
    _s, _r, alerts = detect(rows(), weekly=False, last=10)
    hit = [a for a in alerts if a.district == "D1" and a.period == START + dt.timedelta(55)]
    assert hit and all(a.strength > 1 for a in hit)
    assert {a.severity for a in hit} <= {"low", "medium", "high"}
    assert severity(3.0, 1) == "high"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return AlertStore(make_engine(tmp_path / "alerts.db"))
    url = request.getfixturevalue("pg_url")
    return AlertStore(make_engine(url))


def test_alert_lifecycle(store) -> None:
    _s, _r, alerts = detect(rows(), weekly=False, last=10)
    ids = store.add(alerts)
    assert len(ids) == len(alerts) > 0
    assert store.add(alerts) == []  # idempotent
    a = store.act(ids[0], "acknowledge", "dr.wang")
    assert a.status == "acknowledged"
    with pytest.raises(Conflict):
        store.act(ids[0], "acknowledge", "dr.wang")
    assert store.act(ids[0], "escalate", "dr.li", "to CDC").status == "escalated"
    assert store.act(ids[0], "dismiss", "dr.li").status == "dismissed"
    hist = store.history(ids[0])
    assert [h["action"] for h in hist] == ["create", "acknowledge", "escalate", "dismiss"]
    assert hist[2]["actor"] == "dr.li" and hist[2]["note"] == "to CDC"
    assert len(store.find(status="new")) == len(ids) - 1
    with pytest.raises(NotFound):
        store.act(10**6, "dismiss", "x")
    with pytest.raises(InvalidInput):
        store.act(ids[1], "close", "x")


def test_api(tmp_path) -> None:
    store = AlertStore(make_engine(tmp_path / "a.db"))
    store.add(detect(rows(), weekly=False, last=10)[2])
    app = FastAPI()
    app.include_router(make_router(store), prefix="/surveillance")
    client = TestClient(app)
    listed = client.get("/surveillance/alerts", params={"status": "new"}).json()
    assert listed
    aid = listed[0]["id"]
    r = client.post(f"/surveillance/alerts/{aid}/actions",
                    json={"action": "escalate", "actor": "cdc-duty"})
    assert r.status_code == 200 and r.json()["status"] == "escalated"
    r = client.post(f"/surveillance/alerts/{aid}/actions",
                    json={"action": "acknowledge", "actor": "cdc-duty"})
    assert r.status_code == 409
    assert client.get("/surveillance/alerts/999999").status_code == 404
    png = client.get(f"/surveillance/alerts/{aid}/plot")
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    svg = client.get(f"/surveillance/alerts/{aid}/plot", params={"fmt": "svg"})
    assert b"<svg" in svg.content
    assert [h["action"] for h in client.get(f"/surveillance/alerts/{aid}/history").json()] == [
        "create", "escalate"]


def test_plot_formats() -> None:
    png = plot_series(["a", "b", "c"], [1, 2, 9], [4, 4, None], [False, False, True])
    assert png.startswith(b"\x89PNG")
    svg = plot_series(["a"], [1], [2], [False], fmt="svg")
    assert b"<svg" in svg


def test_cli_run_alerts_plot(tmp_path) -> None:
    counts = tmp_path / "counts.csv"
    with open(counts, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["institution", "date", "district", "signal", "count"])
        for r in rows():
            w.writerow([r.institution, r.date.isoformat(), r.district, r.signal,
                        "" if r.count is None else r.count])
    db = str(tmp_path / "alerts.db")
    runner = CliRunner()
    res = runner.invoke(main, ["surveillance", "run", "--counts", str(counts), "--db", db,
                               "--last", "10"])
    assert res.exit_code == 0, res.output
    assert "new alerts" in res.output
    res = runner.invoke(main, ["surveillance", "alerts", "--db", db, "--status", "new"])
    assert res.exit_code == 0 and '"district"' in res.output
    res = runner.invoke(main, ["surveillance", "alerts", "--db", db, "--act", "1",
                               "--action", "acknowledge", "--actor", "me"])
    assert res.exit_code == 0 and '"acknowledged"' in res.output
    out = tmp_path / "ili.svg"
    res = runner.invoke(main, ["surveillance", "plot", "--counts", str(counts), "--district",
                               "D1", "--signal", "ili", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes().lstrip().startswith(b"<?xml")
