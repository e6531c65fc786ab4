"""The contract's edges through a real server: the authorisation matrix and bad input.

Every endpoint is called with no token, a wrong token and another volunteer's token; every
endpoint and body gets malformed JSON, wrong types, bad coordinates, unknown enums, oversized
bodies and unknown ids. The answer is always problem details (never a 500), and the state
read back afterwards is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from dispatch.core.clock import to_iso
from tests.service_harness import T0, Server, running_server


@dataclass
class World:
    server: Server
    alice: str  # token of volunteer "alice"
    bob: str  # token of volunteer "bob"
    incident_id: str
    assignment_id: str  # offered to alice


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_server(tmp_path) as server:
        alice = await server.put_volunteer("alice")
        bob = await server.put_volunteer("bob")
        for vid, token in (("alice", alice), ("bob", bob)):
            r = await server.http.put(
                f"/api/v1/volunteers/{vid}/availability",
                json={"status": "available"},
                headers=server.bearer(token),
            )
            assert r.status_code == 200
        r = await server.http.post(
            "/api/v1/positions",
            json={
                "positions": [
                    {"volunteer_id": "alice", "lat": 37.3472, "lon": 115.9660, "ts": to_iso(T0)},
                    {"volunteer_id": "bob", "lat": 37.3472, "lon": 115.9700, "ts": to_iso(T0)},
                ]
            },
            headers=server.operator,
        )
        assert r.json()["accepted"] == 2
        r = await server.http.post(
            "/api/v1/incidents",
            json={"type": "drill", "lat": 37.3472, "lon": 115.9651},
            headers=server.operator,
        )
        incident = r.json()
        (assignment,) = incident["assignments"]
        assert assignment["volunteer_id"] == "alice"
        yield World(server, alice, bob, incident["id"], assignment["id"])


async def snapshot(w: World) -> dict[str, Any]:
    """Everything a bad request could have touched, read back through the API."""
    s = w.server
    out: dict[str, Any] = {}
    for vid in ("alice", "bob"):
        out[vid] = (await s.http.get(f"/api/v1/volunteers/{vid}", headers=s.operator)).json()
        out[f"{vid}-points"] = (
            await s.http.get(f"/api/v1/volunteers/{vid}/points", headers=s.operator)
        ).json()
    out["incidents"] = (await s.http.get("/api/v1/incidents", headers=s.operator)).json()
    return out


# (method, path, body, who may call it: "operator" or "alice")
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    (
        "PUT",
        "/api/v1/volunteers/carol",
        {"name": "c", "roles": ["patrol"], "mode": "car"},
        "operator",
    ),
    ("GET", "/api/v1/volunteers/alice", None, "alice"),
    ("POST", "/api/v1/volunteers/alice/tokens", None, "operator"),
    ("PUT", "/api/v1/volunteers/alice/availability", {"status": "off_duty"}, "alice"),
    ("GET", "/api/v1/volunteers/alice/points", None, "alice"),
    (
        "POST",
        "/api/v1/positions",
        {"positions": [{"volunteer_id": "alice", "lat": 37.3, "lon": 116.0, "ts": to_iso(T0)}]},
        "alice",
    ),
    ("POST", "/api/v1/incidents", {"type": "fire", "lat": 37.3, "lon": 116.0}, "operator"),
    ("GET", "/api/v1/incidents?state=open", None, "operator"),
    ("GET", "/api/v1/incidents/{incident}", None, "operator"),
    ("GET", "/api/v1/incidents/{incident}/candidates", None, "operator"),
    ("POST", "/api/v1/incidents/{incident}/offers", {"volunteer_ids": ["bob"]}, "operator"),
    ("POST", "/api/v1/incidents/{incident}/close", {}, "operator"),
    ("POST", "/api/v1/assignments/{assignment}/accept", None, "alice"),
    ("POST", "/api/v1/assignments/{assignment}/decline", {"reason": "x"}, "alice"),
    ("POST", "/api/v1/assignments/{assignment}/arrive", None, "alice"),
    ("POST", "/api/v1/assignments/{assignment}/complete", None, "alice"),
    ("GET", "/api/v1/coverage?k=1", None, "operator"),
]


def fill(path: str, w: World) -> str:
    return path.format(incident=w.incident_id, assignment=w.assignment_id)


def assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)


@pytest.mark.asyncio
async def test_authorisation_matrix(world: World) -> None:
    s = world.server
    before = await snapshot(world)
    callers = {
        "no token": ({}, 401),
        "wrong token": ({"Authorization": "Bearer not-a-token-at-all"}, 401),
        "not bearer": ({"Authorization": f"Basic {world.alice}"}, 401),
        "another volunteer": (s.bearer(world.bob), 403),
    }
    for method, path, body, _who in ENDPOINTS:
        for name, (headers, status) in callers.items():
            r = await s.http.request(method, fill(path, world), json=body, headers=headers)
            assert_problem(r, status)
            if status == 401:
                assert r.headers.get("www-authenticate") == "Bearer", (method, path, name)
    # A volunteer on operator-only endpoints: 403 even for their own things.
    for method, path, body, who in ENDPOINTS:
        if who == "operator":
            r = await s.http.request(
                method, fill(path, world), json=body, headers=s.bearer(world.alice)
            )
            assert_problem(r, 403)
    assert await snapshot(world) == before, "a refused request changed something"
    # And the rightful callers succeed.
    r = await s.http.get("/api/v1/volunteers/alice", headers=s.bearer(world.alice))
    assert r.status_code == 200
    r = await s.http.post(
        f"/api/v1/assignments/{world.assignment_id}/accept", headers=s.bearer(world.alice)
    )
    assert r.status_code == 200
    assert r.json()["state"] == "accepted"


def raw_fix(lat: str = "37.3", lon: str = "116.0") -> str:
    """A positions body written by hand: JSON's non-standard NaN / Infinity tokens included."""
    fix = f'{{"volunteer_id": "alice", "lat": {lat}, "lon": {lon}, "ts": "{to_iso(T0)}"}}'
    return f'{{"positions": [{fix}]}}'


BAD_BODIES: list[tuple[str, str, Any, int]] = [
    # (method, path, raw body (str = sent verbatim), expected status)
    ("PUT", "/api/v1/volunteers/carol", "{bad json", 400),
    ("PUT", "/api/v1/volunteers/carol", {"name": "c", "roles": ["pilot"], "mode": "car"}, 422),
    ("PUT", "/api/v1/volunteers/carol", {"name": "c", "roles": ["patrol"], "mode": "horse"}, 422),
    ("PUT", "/api/v1/volunteers/carol", {"name": 5, "roles": ["patrol"], "mode": "car"}, 422),
    (
        "PUT",
        "/api/v1/volunteers/carol",
        {"name": "c", "roles": ["patrol"], "mode": "car", "extra": 1},
        422,
    ),
    ("PUT", "/api/v1/volunteers/bad%20id", {"name": "c", "roles": ["patrol"], "mode": "car"}, 422),
    ("PUT", "/api/v1/volunteers/alice/availability", {"status": "busy"}, 422),
    ("PUT", "/api/v1/volunteers/alice/availability", "[]", 422),
    ("PUT", "/api/v1/volunteers/nobody/availability", {"status": "available"}, 404),
    ("GET", "/api/v1/volunteers/nobody", None, 404),
    ("POST", "/api/v1/volunteers/nobody/tokens", None, 404),
    ("POST", "/api/v1/positions", "{", 400),
    ("POST", "/api/v1/positions", {"positions": "many"}, 422),
    (
        "POST",
        "/api/v1/positions",
        {"positions": [{"volunteer_id": "alice", "lat": 91, "lon": 116, "ts": to_iso(T0)}]},
        422,
    ),
    (
        "POST",
        "/api/v1/positions",
        {"positions": [{"volunteer_id": "alice", "lat": 37, "lon": -181, "ts": to_iso(T0)}]},
        422,
    ),
    ("POST", "/api/v1/positions", raw_fix(lat="NaN", lon="116"), 422),
    ("POST", "/api/v1/positions", raw_fix(lat="37", lon="Infinity"), 422),
    (
        "POST",
        "/api/v1/positions",
        {"positions": [{"volunteer_id": "alice", "lon": 116, "ts": to_iso(T0)}]},
        422,
    ),
    (
        "POST",
        "/api/v1/positions",
        {"positions": [{"volunteer_id": "alice", "lat": 37, "lon": 116, "ts": "2026-11-19 08:00"}]},
        422,
    ),
    (
        "POST",
        "/api/v1/positions",
        {
            "positions": [
                {"volunteer_id": "alice", "lat": 37.2, "lon": 116, "ts": to_iso(T0 + 1)},
                {"volunteer_id": "bob", "lat": "37", "lon": 116, "ts": to_iso(T0 + 1)},
            ]
        },
        422,
    ),
    ("POST", "/api/v1/incidents", {"type": "meteor", "lat": 37.3, "lon": 116.0}, 422),
    ("POST", "/api/v1/incidents", {"type": "fire", "lat": 37.3, "lon": 116.0, "severity": 4}, 422),
    (
        "POST",
        "/api/v1/incidents",
        {"type": "fire", "lat": 37.3, "lon": 116.0, "severity": "2"},
        422,
    ),
    ("POST", "/api/v1/incidents", {"type": "fire", "lat": 137.3, "lon": 116.0}, 422),
    (
        "POST",
        "/api/v1/incidents",
        {"type": "fire", "lat": 37.3, "lon": 116.0, "dispatch": "sometimes"},
        422,
    ),
    ("POST", "/api/v1/incidents", "null", 422),
    ("GET", "/api/v1/incidents?state=maybe", None, 422),
    ("GET", "/api/v1/incidents/nope", None, 404),
    ("GET", "/api/v1/incidents/{incident}/candidates?limit=0", None, 422),
    ("GET", "/api/v1/incidents/{incident}/candidates?max_eta_s=nan", None, 422),
    ("GET", "/api/v1/incidents/nope/candidates", None, 404),
    ("POST", "/api/v1/incidents/{incident}/offers", {"volunteer_ids": []}, 422),
    ("POST", "/api/v1/incidents/{incident}/offers", {"volunteer_ids": ["nobody"]}, 404),
    ("POST", "/api/v1/incidents/{incident}/offers", {"volunteer_ids": ["alice"]}, 409),
    ("POST", "/api/v1/incidents/{incident}/offers", {"volunteer_ids": ["bob", "bob"]}, 422),
    ("POST", "/api/v1/incidents/nope/offers", {"volunteer_ids": ["bob"]}, 404),
    ("POST", "/api/v1/incidents/nope/close", {}, 404),
    ("POST", "/api/v1/incidents/{incident}/close", {"outcome": 7}, 422),
    ("POST", "/api/v1/assignments/nope/accept", None, 404),
    ("POST", "/api/v1/assignments/{assignment}/arrive", None, 409),
    ("POST", "/api/v1/assignments/{assignment}/complete", None, 409),
    ("POST", "/api/v1/assignments/{assignment}/decline", {"reason": ["x"]}, 422),
    ("GET", "/api/v1/coverage?k=0", None, 422),
    ("GET", "/api/v1/coverage?k=many", None, 422),
    ("GET", "/api/v1/no-such-thing", None, 404),
    ("DELETE", "/api/v1/incidents", None, 405),
]


@pytest.mark.asyncio
async def test_bad_input_gets_problem_details_and_changes_nothing(world: World) -> None:
    s = world.server
    before = await snapshot(world)
    for method, path, body, status in BAD_BODIES:
        kwargs: dict[str, Any] = {"headers": {**s.operator, "content-type": "application/json"}}
        if isinstance(body, str):
            kwargs["content"] = body.encode()
        elif body is not None:
            kwargs["content"] = json.dumps(body).encode()
        r = await s.http.request(method, fill(path, world), **kwargs)
        assert_problem(r, status)
        if status == 422:
            errors = r.json().get("errors")
            assert errors, (method, path, r.text)
            assert all(e["field"] and e["message"] for e in errors)
    assert await snapshot(world) == before


@pytest.mark.asyncio
async def test_a_closed_incident_refuses_offers_and_a_second_close(world: World) -> None:
    s = world.server
    url = f"/api/v1/incidents/{world.incident_id}"
    r = await s.http.post(f"{url}/close", json={"outcome": "false alarm"}, headers=s.operator)
    assert r.status_code == 200
    closed = r.json()
    assert closed["state"] == "closed"
    assert closed["outcome"] == "false alarm"
    assert [a["state"] for a in closed["assignments"]] == ["cancelled"]
    assert_problem(await s.http.post(f"{url}/close", json={}, headers=s.operator), 409)
    r = await s.http.post(f"{url}/offers", json={"volunteer_ids": ["bob"]}, headers=s.operator)
    assert_problem(r, 409)
    r = await s.http.post(
        f"/api/v1/assignments/{world.assignment_id}/accept", headers=s.bearer(world.alice)
    )
    assert_problem(r, 409)
    assert (await s.http.get(url, headers=s.operator)).json() == closed
    r = await s.http.get("/api/v1/incidents?state=closed", headers=s.operator)
    assert [i["id"] for i in r.json()["incidents"]] == [world.incident_id]
    assert (await s.http.get("/api/v1/incidents?state=open", headers=s.operator)).json() == {
        "incidents": []
    }


@pytest.mark.asyncio
async def test_oversized_bodies_get_413_and_change_nothing(world: World) -> None:
    s = world.server
    before = await snapshot(world)
    big = {
        "positions": [{"volunteer_id": "alice", "lat": 37.3, "lon": 116.0, "ts": to_iso(T0 + 5)}]
        * 20_000
    }
    payload = json.dumps(big).encode()
    assert len(payload) > 1 << 20
    r = await s.http.post(
        "/api/v1/positions",
        content=payload,
        headers={**s.operator, "content-type": "application/json"},
    )
    assert_problem(r, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted as it streams
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    r = await s.http.post(
        "/api/v1/incidents",
        content=chunks(),
        headers={**s.operator, "content-type": "application/json"},
    )
    assert_problem(r, 413)
    assert await snapshot(world) == before


@pytest.mark.asyncio
async def test_health_metrics_and_openapi(world: World) -> None:
    s = world.server
    r = await s.http.get("/healthz")
    assert r.json() == {"status": "ok", "store": "sqlite"}
    metrics = (await s.http.get("/metrics")).text
    assert "dispatch_offers_total 1.0" in metrics
    assert 'dispatch_fixes_total{outcome="accepted"} 2.0' in metrics
    assert "dispatch_incident_seconds_count 1.0" in metrics
    assert (await s.http.get("/docs")).status_code == 200
    spec = (await s.http.get("/openapi.json")).json()
    for path in ("/api/v1/incidents", "/api/v1/positions", "/api/v1/coverage"):
        assert path in spec["paths"]
    r = await s.http.get("/api/v1/coverage?k=1", headers=s.operator)
    rings = r.json()["rings"]
    assert set(rings) == {"1", "3", "5"}
    assert rings["1"]["villages_total"] == 551
    assert 0 < rings["5"]["population_share"] <= 1


@pytest.mark.asyncio
async def test_healthz_says_503_with_a_reason_when_the_store_is_gone(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        await server.service.store.close()  # as if the disk went away under the server
        r = await server.http.get("/healthz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["store"] == "sqlite"
        assert body["reason"]
        r = await server.http.get("/api/v1/incidents?state=closed", headers=server.operator)
        assert_problem(r, 503)
