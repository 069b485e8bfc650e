"""The Fleet-only proxy in front of the SuperLink, without Flower: Fleet calls are forwarded
with their body and SuperNode authentication headers; the Control API and anything else are
not served."""

from __future__ import annotations

import warnings

import httpx

from healthmesh.learning.fleet_proxy import fleet_only_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SEEN: list[httpx.Request] = []


def _upstream(request: httpx.Request) -> httpx.Response:
    SEEN.append(request)
    if request.url.path.endswith("/broken"):
        raise httpx.ConnectError("down")
    return httpx.Response(200, content=b"\x08\x01reply",
                          headers={"content-type": "application/protobuf", "x-flwr": "1"})


def _client() -> TestClient:
    app = fleet_only_app("https://127.0.0.1:9", None, transport=httpx.MockTransport(_upstream))
    return TestClient(app)


def test_fleet_calls_are_forwarded_unchanged() -> None:
    SEEN.clear()
    head = {"content-type": "application/protobuf", "flwr-public-key": "cGs=",
            "flwr-signature": "c2ln", "flwr-timestamp": "2026-11-29T06:00:00+00:00"}
    with _client() as http:
        got = http.post("/v1/fleet/pull-messages", content=b"\x0a\x02hi", headers=head)
    assert got.status_code == 200 and got.content == b"\x08\x01reply"
    assert got.headers["content-type"] == "application/protobuf" and got.headers["x-flwr"] == "1"
    (sent,) = SEEN
    assert str(sent.url) == "https://127.0.0.1:9/v1/fleet/pull-messages"
    assert sent.content == b"\x0a\x02hi"
    assert all(sent.headers[k] == v for k, v in head.items())
    assert sent.headers["host"] == "127.0.0.1:9"  # the client's Host is not passed on


def test_nothing_but_fleet_is_served() -> None:
    SEEN.clear()
    with _client() as http:
        assert http.post("/v1/control/start-run", content=b"x").status_code == 404
        assert http.post("/v1/control/register-node", content=b"x").status_code == 404
        assert http.post("/health", content=b"x").status_code == 404
        assert http.post("/v1/fleet/Pull_Messages", content=b"x").status_code == 404
        assert http.post("/v1/fleet/a/b", content=b"x").status_code == 404
        assert http.get("/v1/fleet/pull-messages").status_code == 405
    assert SEEN == []
    with _client() as http:
        assert http.post("/v1/fleet/broken", content=b"x").status_code == 502
