"""The service end to end: real uvicorn on port 0, websockets clients, a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pyproj import Geod
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from dispatch.core.clock import to_iso
from geo.dataset.load import load_dataset
from geo.travel import CrowFlyModel
from simulations.coverage import Demand, Positions, coverage_report
from tests.service_harness import (
    OPERATOR_TOKEN,
    T0,
    ChildServer,
    Server,
    receive,
    receive_type,
    running_server,
)

GEOD = Geod(ellps="WGS84")
SEAT = (37.3472, 115.9651)


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


def fix(message_id: int, **fields: Any) -> str:
    """A volunteer's position message (valid unless ``fields`` say otherwise)."""
    body = {"type": "position", "id": message_id, "lat": 37.3, "lon": 116.0, "ts": to_iso(T0)}
    body.update(fields)
    return json.dumps(body)  # NaN is written as the bare NaN token, as a buggy client would


def east_of_seat(metres: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(SEAT[1], SEAT[0], 90.0, metres)
    return float(lat), float(lon)


async def go_on_duty(server: Server, volunteer_id: str, token: str, metres: float) -> None:
    """The volunteer says they are available and sends a fix ``metres`` east of the seat."""
    r = await server.http.put(
        f"/api/v1/volunteers/{volunteer_id}/availability",
        json={"status": "available"},
        headers=server.bearer(token),
    )
    assert r.status_code == 200, r.text
    lat, lon = east_of_seat(metres)
    r = await server.http.post(
        "/api/v1/positions",
        json={
            "positions": [
                {
                    "volunteer_id": volunteer_id,
                    "lat": lat,
                    "lon": lon,
                    "ts": to_iso(server.clock.now()),
                    "accuracy_m": 8,
                }
            ]
        },
        headers=server.bearer(token),
    )
    assert r.json() == {"accepted": 1, "rejected": []}


def feed_types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages if m["type"] != "positions"]


@pytest.mark.asyncio
async def test_the_whole_story(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        tokens = {}
        for i, metres in enumerate([100.0, 160.0, 220.0, 280.0]):
            tokens[f"v{i}"] = await server.put_volunteer(f"v{i}")
            await go_on_duty(server, f"v{i}", tokens[f"v{i}"], metres)

        feed_url = f"{server.ws_url}/ws/operator?token={OPERATOR_TOKEN}"
        async with (
            connect(feed_url) as feed,
            server.volunteer_socket(tokens["v0"]) as ws0,
            server.volunteer_socket(tokens["v1"]) as ws1,
            server.volunteer_socket(tokens["v2"]) as ws2,
            server.volunteer_socket(tokens["v3"]) as ws3,
        ):
            for ws, vid in ((ws0, "v0"), (ws1, "v1"), (ws2, "v2"), (ws3, "v3")):
                hello = await receive(ws)
                assert hello == {"type": "hello", "volunteer_id": vid, "seq": 0}

            r = await server.http.post(
                "/api/v1/incidents",
                json={"type": "drill", "lat": SEAT[0], "lon": SEAT[1], "note": "烟雾"},
                headers=server.operator,
            )
            assert r.status_code == 201, r.text
            incident = r.json()
            assert incident["rings"]["1"] == {"needed": 1, "accepted": 0}
            # The ranking chose v0 (nearest); exactly v0 is offered.
            assert [a["volunteer_id"] for a in incident["assignments"]] == ["v0"]
            offered = await receive_type(ws0, "assignment.offered")
            assert offered["seq"] == 1
            assert offered["incident"]["note"] == "烟雾"
            assert offered["assignment"]["ring_min"] == 1

            # v0 declines over the websocket; the next best (v1) is offered.
            await ws0.send(
                dumps(
                    {
                        "type": "decline",
                        "id": "d1",
                        "reason": "busy",
                        "assignment_id": offered["assignment"]["id"],
                    }
                )
            )
            reply = await receive_type(ws0, "result")
            assert reply["re"] == "d1"
            assert reply["assignment"]["state"] == "declined"
            second = await receive_type(ws1, "assignment.offered")

            # v1 stays silent: after 30 s of (fake) time the offer expires and v2 is offered.
            await server.advance(29)
            await server.advance(1)
            expired = await receive_type(ws1, "assignment.expired")
            assert expired["assignment"]["id"] == second["assignment"]["id"]
            third = await receive_type(ws2, "assignment.offered")
            assignment_id = third["assignment"]["id"]

            # v2 accepts, arrives, completes; points are credited.
            for step, state in (("accept", "accepted"), ("arrive", "on_scene")):
                await ws2.send(dumps({"type": step, "id": step, "assignment_id": assignment_id}))
                reply = await receive_type(ws2, "result")
                assert reply["assignment"]["state"] == state
                await server.advance(60)
            r = await server.http.post(
                f"/api/v1/assignments/{assignment_id}/complete", headers=server.bearer(tokens["v2"])
            )
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "completed"
            r = await server.http.get(
                "/api/v1/volunteers/v2/points", headers=server.bearer(tokens["v2"])
            )
            assert r.json() == {
                "volunteer_id": "v2",
                "points": 7 + 2,
                "service_seconds": 120.0,
                "completed": 1,
            }
            # v3 was never asked.
            r = await server.http.get(
                f"/api/v1/incidents/{incident['id']}", headers=server.operator
            )
            assert sorted(a["volunteer_id"] for a in r.json()["assignments"]) == ["v0", "v1", "v2"]

            # The operator feed saw every step, in order.
            seen: list[dict[str, Any]] = []
            while len(feed_types(seen)) < 9:
                seen.append(await receive(feed))
            assert feed_types(seen) == [
                "incident.created",
                "assignment.offered",
                "assignment.declined",
                "assignment.offered",
                "assignment.expired",
                "assignment.offered",
                "assignment.accepted",
                "assignment.on_scene",
                "assignment.completed",
            ]
            offered_to = [
                m["assignment"]["volunteer_id"] for m in seen if m["type"] == "assignment.offered"
            ]
            assert offered_to == ["v0", "v1", "v2"]
            # incident.* events carry the whole incident; assignment.* events the one
            # assignment and the incident's summary, its rings counted as they were then
            # (as they stand once the engine call is done: the first offer is in it)
            events = [m for m in seen if m["type"] != "positions"]
            created = events[0]["incident"]
            assert [a["volunteer_id"] for a in created["assignments"]] == ["v0"]
            for m in events[1:]:
                assert "assignments" not in m["incident"]
                assert m["incident"]["id"] == incident["id"]
            accepted = [m["incident"]["rings"]["5"]["accepted"] for m in events]
            assert accepted == [0, 0, 0, 0, 0, 0, 1, 1, 1]


@pytest.mark.asyncio
async def test_resume_with_since_replays_once(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        token = await server.put_volunteer("v0")
        await go_on_duty(server, "v0", token, 100.0)
        async with server.volunteer_socket(token) as ws:
            assert (await receive(ws))["seq"] == 0
        # Disconnected: an incident is offered to v0 meanwhile.
        r = await server.http.post(
            "/api/v1/incidents",
            json={"type": "drill", "lat": SEAT[0], "lon": SEAT[1]},
            headers=server.operator,
        )
        assert [a["volunteer_id"] for a in r.json()["assignments"]] == ["v0"]
        async with server.volunteer_socket(token, since=0) as ws:
            hello = await receive(ws)
            assert hello == {"type": "hello", "volunteer_id": "v0", "seq": 1}
            offered = await receive(ws)
            assert offered["type"] == "assignment.offered"
            assert offered["seq"] == 1
            await ws.send('{"type": "ack", "seq": 1, "id": 5}')
            assert await receive(ws) == {"type": "result", "re": 5, "ok": True}
        async with server.volunteer_socket(token, since=0) as ws:
            assert (await receive(ws))["seq"] == 1
            await ws.send('{"type": "ack", "seq": 1, "id": "again"}')
            # Nothing is replayed: the next message is the reply to this ack.
            assert await receive(ws) == {"type": "result", "re": "again", "ok": True}


@pytest.mark.asyncio
async def test_a_newer_connection_replaces_the_older_and_bad_tokens_are_refused(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path) as server:
        token = await server.put_volunteer("v0")
        async with server.volunteer_socket(token) as old:
            await receive(old)
            async with server.volunteer_socket(token) as new:
                await receive(new)
                with pytest.raises(ConnectionClosed) as closed:
                    await receive(old)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 4409
        for url in (
            f"{server.ws_url}/ws/volunteer?token=nope",
            f"{server.ws_url}/ws/volunteer",
            f"{server.ws_url}/ws/volunteer?token={OPERATOR_TOKEN}",
            f"{server.ws_url}/ws/operator?token=nope",
        ):
            async with connect(url) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await receive(ws)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 4401, url


@pytest.mark.asyncio
async def test_bad_websocket_messages_get_errors_and_the_connection_stays(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        token = await server.put_volunteer("v0")
        async with server.volunteer_socket(token) as ws:
            await receive(ws)
            cases = [
                ("{not json", None, "malformed"),
                ("[1, 2]", None, "malformed"),
                ('{"type": "teleport", "id": 1}', 1, "unknown_type"),
                (fix(2, lat=91), 2, "invalid"),
                (fix(3, lat="37"), 3, "invalid"),
                (fix(9, lon=float("nan")), 9, "invalid"),
                (
                    '{"type": "position", "id": 4, "lat": 37, "lon": 116, "ts": "yesterday"}',
                    4,
                    "invalid",
                ),
                (fix(5, ts=to_iso(T0 + 3600)), 5, "future"),
                ('{"type": "accept", "id": 6, "assignment_id": "nope"}', 6, "not_found"),
                ('{"type": "accept", "id": 7}', 7, "invalid"),
                ('{"type": "ack", "id": 8, "seq": -1}', 8, "invalid"),
            ]
            for text, re_, code in cases:
                await ws.send(text)
                reply = await receive(ws)
                assert reply["type"] == "error", text
                assert reply["re"] == re_, text
                assert reply["code"] == code, (text, reply)
            # Still open, and nothing was applied: v0 has no position.
            await ws.send('{"type": "ack", "seq": 0, "id": "still-here"}')
            assert (await receive(ws))["re"] == "still-here"
        r = await server.http.get("/api/v1/volunteers/v0", headers=server.operator)
        assert r.json()["position"] is None


def test_sigkill_mid_dispatch_loses_nothing_and_timers_resume(tmp_path: Path) -> None:
    data = tmp_path / "var"
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    server = ChildServer(tmp_path, data, start=T0)
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            for i, metres in enumerate([100.0, 200.0]):
                vid = f"v{i}"
                r = http.put(
                    f"/api/v1/volunteers/{vid}",
                    json={"name": vid, "roles": ["patrol"], "mode": "ebike"},
                )
                assert r.status_code == 201
                assert (
                    http.put(
                        f"/api/v1/volunteers/{vid}/availability", json={"status": "available"}
                    ).status_code
                    == 200
                )
                lat, lon = east_of_seat(metres)
                r = http.post(
                    "/api/v1/positions",
                    json={
                        "positions": [
                            {"volunteer_id": vid, "lat": lat, "lon": lon, "ts": to_iso(T0)}
                        ]
                    },
                )
                assert r.json()["accepted"] == 1
            token = http.post("/api/v1/volunteers/v0/tokens").json()["token"]
            first = http.post(
                "/api/v1/incidents", json={"type": "drill", "lat": SEAT[0], "lon": SEAT[1]}
            ).json()
            second = http.post(
                "/api/v1/incidents", json={"type": "drill", "lat": SEAT[0], "lon": SEAT[1]}
            ).json()
            assert [a["volunteer_id"] for a in first["assignments"]] == ["v0"]
            assert [a["volunteer_id"] for a in second["assignments"]] == ["v1"]
            accepted = http.post(f"/api/v1/assignments/{first['assignments'][0]['id']}/accept")
            assert accepted.status_code == 200
        server.kill()  # in the middle: v0 accepted, v1's offer is open

        # Back 45 s later: v1's offer expired during the downtime.
        server = ChildServer(tmp_path, data, start=T0 + 45)
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            again = http.get(f"/api/v1/incidents/{first['id']}").json()
            assert [a["state"] for a in again["assignments"]] == ["accepted"]
            assert again["rings"]["1"]["accepted"] == 1
            other = http.get(f"/api/v1/incidents/{second['id']}").json()
            assert [a["state"] for a in other["assignments"]] == ["expired"]
            assert other["unmet"] == [1, 3, 5], "v0 is busy: nobody is left for it"
            v0 = http.get("/api/v1/volunteers/v0").json()
            assert v0["status"] == "busy"
            assert v0["position"] is not None
            # The volunteer token survived, and so did the outbox.
            assert (
                http.get(
                    "/api/v1/volunteers/v0", headers={"Authorization": f"Bearer {token}"}
                ).status_code
                == 200
            )
            # A pending timer resumes: a new offer to v1 expires on the restarted clock.
            third = http.post(
                "/api/v1/incidents", json={"type": "drill", "lat": SEAT[0], "lon": SEAT[1]}
            ).json()
            assert [a["volunteer_id"] for a in third["assignments"]] == ["v1"]
        server.kill()
        server = ChildServer(tmp_path, data, start=T0 + 45 + 10)
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            pending = http.get(f"/api/v1/incidents/{third['id']}").json()
            assert [a["state"] for a in pending["assignments"]] == ["offered"]
            r = http.post("/api/v1/admin/clock/advance", json={"seconds": 25})
            assert r.status_code == 200
            for _ in range(100):
                state = http.get(f"/api/v1/incidents/{third['id']}").json()
                if state["assignments"][0]["state"] == "expired":
                    break
            assert state["assignments"][0]["state"] == "expired"
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_coverage_endpoint_is_the_planners_computation_on_live_positions(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path) as server:
        spots = {"v0": 100.0, "v1": 900.0, "v2": 2_500.0}
        for vid, metres in spots.items():
            await go_on_duty(server, vid, await server.put_volunteer(vid), metres)
        stale = await server.put_volunteer("stale")
        await go_on_duty(server, "stale", stale, 50.0)
        await server.advance(301)  # everyone's fix is now too old...
        for vid, metres in spots.items():  # ...except these three, who send a new one
            lat, lon = east_of_seat(metres)
            r = await server.http.post(
                "/api/v1/positions",
                json={
                    "positions": [
                        {
                            "volunteer_id": vid,
                            "lat": lat,
                            "lon": lon,
                            "ts": to_iso(server.clock.now()),
                        }
                    ]
                },
                headers=server.operator,
            )
            assert r.json()["accepted"] == 1
        r = await server.http.get("/api/v1/coverage?k=1", headers=server.operator)
        assert r.status_code == 200
        body = r.json()
        assert body["volunteers"] == 3

    demand = Demand.from_dataset(load_dataset())
    points = [east_of_seat(m) for m in spots.values()]
    positions = Positions(
        lat=np.array([p[0] for p in points]),
        lon=np.array([p[1] for p in points]),
        mode=np.full(3, 2, dtype=np.uint8),
        situation=np.zeros(3, dtype=np.uint8),
    )
    expected = coverage_report(demand, positions, CrowFlyModel())
    county = {r.ring_min: r for r in expected.rows((1,)) if r.area == "county"}
    for ring in (1, 3, 5):
        got = body["rings"][str(ring)]
        assert got["villages_covered"] == county[ring].villages
        assert got["villages_total"] == 551
        assert got["population_share"] == round(county[ring].population_share, 4)
    assert body["rings"]["5"]["villages_covered"] > 0
    assert body["townships"]["郑口镇"]["5"]["villages_covered"] > 0
