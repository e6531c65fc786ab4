"""``python -m simulations drill`` against a real in-process server (FakeClock, port 0).

Small drills near the county seat: 20 volunteers, a few incidents in a few seconds, travel and
service compressed with ``time_scale``. What the drill wrote is checked against what the
server reports through the contract's REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dispatch.core.engine import Assignment
from dispatch.core.states import AssignmentEvent
from dispatch.errors import InvalidInput
from dispatch.service import Principal
from geo.dataset.load import DEFAULT_DATASET
from simulations.__main__ import main
from simulations.commands import Common, dataset
from simulations.drill import (
    DrillError,
    DrillOptions,
    DrillResult,
    drill,
    parse_range,
    plan_incidents,
    sample_volunteers,
)
from tests.service_harness import OPERATOR_TOKEN, Server, running_server

SEAT = (37.3472, 115.9651)


def options(tmp_path: Path, server_url: str, **changes: Any) -> DrillOptions:
    """A small, fast drill near the county seat (override what a test needs)."""
    base = DrillOptions(
        common=Common(dataset=DEFAULT_DATASET, out=tmp_path / "drill", quiet=True),
        url=server_url,
        token=OPERATOR_TOKEN,
        volunteers=20,
        incidents_per_minute=45.0,
        duration_s=4.0,
        seed=3,
        acceptance=1.0,
        silent_share=0.0,
        answer_delay_s=(0.05, 0.2),
        fix_interval_s=0.5,
        service_s=(10.0, 30.0),
        close_after_s=(2000.0, 2000.0),
        time_scale=0.01,  # an ETA of 300 s takes 3 s; service 0.1-0.3 s; closing after 20 s
        drain_s=15.0,
        clock="server",
        near=SEAT,
        radius_m=2500.0,
        concurrency=8,
    )
    return dataclasses.replace(base, **changes)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


async def server_incidents(server: Server, ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The drill's incidents by state, as ``GET /incidents?state=...`` lists them."""
    out = {}
    for state in ("open", "closed"):
        r = await server.http.get(f"/api/v1/incidents?state={state}", headers=server.operator)
        assert r.status_code == 200, r.text
        out[state] = [i for i in r.json()["incidents"] if i["id"] in ids]
    return out


def check_outputs(result: DrillResult) -> None:
    """The files say what the result says; the manifest lists them."""
    folder = result.folder
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["incidents"]["created"] == len(result.incidents)
    rows = read_csv(folder / "incidents.csv")
    assert [r["id"] for r in rows] == [r["id"] for r in result.incidents]
    assert len(read_csv(folder / "volunteers.csv")) == summary["volunteers"]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["command"] == "drill"
    assert OPERATOR_TOKEN not in json.dumps(manifest)
    assert set(manifest["outputs"]) == {
        "incidents.csv", "volunteers.csv", "incidents.geojson", "summary.json",
    }  # fmt: skip


@pytest.mark.asyncio
async def test_everyone_accepts_arrives_and_completes_and_sockets_reconnect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_server(tmp_path) as server:
        # The first accept is applied, then its socket drops before the reply goes out: the
        # drill sends it again after reconnecting, is refused (already accepted), and asks
        # GET /incidents/{id} what happened.
        service = server.service
        apply = service.apply
        dropped: list[str] = []

        async def apply_then_drop(
            assignment_id: str,
            event: AssignmentEvent,
            principal: Principal,
            reason: str | None = None,
        ) -> Assignment:
            assignment = await apply(assignment_id, event, principal, reason)
            if event is AssignmentEvent.ACCEPT and not dropped and principal.volunteer_id:
                dropped.append(assignment_id)
                await service.hub._volunteers[principal.volunteer_id].close(1013, "too slow")
            return assignment

        monkeypatch.setattr(service, "apply", apply_then_drop)
        opts = options(tmp_path, server.url)
        task = asyncio.create_task(drill(opts))
        # Once the first incident is out, drop every volunteer's socket as the hub does for
        # a phone that reads too slowly (1013): the drill reconnects with since= and misses
        # nothing.
        for _ in range(500):
            if server.service.core.incidents or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.service.core.incidents, "no incident within 5 s"
        for connection in list(server.service.hub._volunteers.values()):
            await connection.close(1013, "too slow; reconnect with since=")
        result = await task

        s = result.summary
        ids = {str(r["id"]) for r in result.incidents}
        assert s["incidents"]["created"] == s["incidents"]["planned"] == len(ids) >= 2
        assert s["reconnects"] >= opts.volunteers
        assert dropped
        assert s["answers_resent"] >= 1
        assert s["answers_reconciled"] >= 1
        assert s["volunteers_gone"] == 0
        assert not s["errors"], s["errors"]
        listed = await server_incidents(server, ids)
        assert listed["open"] == []
        assert {i["id"] for i in listed["closed"]} == ids

        served = [r for r in result.incidents if r["offers"]]
        assert served, "no incident had candidates"
        for row in served:
            assert row["accepted"] >= 1
            assert row["completed"] == row["accepted"] == row["server_completed"]
            assert row["arrived"] == row["completed"]
            assert row["declined"] == row["expired"] == row["server_expired"] == 0
            assert row["closed_by"] == "resolved"
            if row["offers_at_creation"]:  # all volunteers are played: the first offers
                assert row["first_offer_ms"] >= 0
        # Every offer the server made was read by a played volunteer, and answered.
        assert s["offers"]["seen"] == s["offers"]["server"] > 0
        assert s["offers"]["server_to_others"] == 0
        assigned = Counter(a["state"] for i in listed["closed"] for a in i["assignments"])
        assert assigned["completed"] == s["completed"] == s["answers"]["accepted"]
        assert assigned["cancelled"] == s["stood_down"]  # offers no longer needed
        assert set(assigned) <= {"completed", "cancelled"}

        # Points were credited to those who completed, as the drill counted them.
        points_total = 0
        for row in result.volunteers:
            r = await server.http.get(
                f"/api/v1/volunteers/{row['id']}/points", headers=server.operator
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["completed"] == row["completed"] == row["completed_server"]
            assert body["points"] == row["points"] == row["points_total"]  # a new server
            assert (body["points"] > 0) == (row["completed"] > 0)
            points_total += body["points"]
            assert row["alerts"] >= row["completed"]
            assert row["fixes"] > 0
        assert points_total == s["points"] > 0
        # Off duty at the end.
        r = await server.http.get(
            f"/api/v1/volunteers/{result.volunteers[0]['id']}", headers=server.operator
        )
        assert r.json()["status"] == "off_duty"
        assert r.json()["position"] is not None
        check_outputs(result)


@pytest.mark.asyncio
async def test_nobody_accepts_declines_escalate_and_silent_offers_expire(tmp_path: Path) -> None:
    """Through the command line (in a thread, with its own event loop): acceptance 0, half
    of the refusals silent; the test moves the server's clock past the offer timeout."""
    async with running_server(tmp_path) as server:
        out = tmp_path / "cli"
        argv = [
            "drill", "--url", server.url, "--token", OPERATOR_TOKEN, "--volunteers", "20",
            "--incidents-per-minute", "45", "--duration", "5", "--seed", "5",
            "--acceptance", "0", "--silent-share", "0.5", "--answer-delay", "0.05..0.2",
            "--fix-interval", "0.5", "--time-scale", "0.01", "--close-after", "2000",
            "--drain", "0", "--clock", "server", "--near", f"{SEAT[0]},{SEAT[1]}",
            "--radius-m", "2500", "--out", str(out), "--quiet",
        ]  # fmt: skip
        cli = asyncio.create_task(asyncio.to_thread(main, argv))

        def open_offers() -> int:
            core = server.service.core
            return sum(1 for a in core.assignments.values() if a.state.value == "offered")

        for _ in range(500):
            if open_offers() >= 2 or cli.done():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # every answer that is coming has come
        await server.advance(31)  # past every offer timeout (20-45 s): silent offers expire
        await server.advance(15)
        assert await cli == 0

        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        rows = read_csv(out / "incidents.csv")
        ids = {r["id"] for r in rows}
        assert len(ids) == summary["incidents"]["created"] >= 2
        listed = await server_incidents(server, ids)
        assert listed["open"] == []
        assert {i["id"] for i in listed["closed"]} == ids
        assigned = Counter(a["state"] for i in listed["closed"] for a in i["assignments"])

        assert summary["answers"]["accepted"] == summary["completed"] == 0
        assert summary["points"] == 0
        assert summary["answers"]["declined"] == assigned["declined"] > 0
        assert summary["expired"] == assigned["expired"] > 0
        assert summary["offers"]["seen"] == summary["offers"]["server"] == assigned.total()
        assert assigned["accepted"] == assigned["completed"] == 0
        # Escalation: after a refusal the next candidate was offered.
        escalated = [
            i
            for i in listed["closed"]
            if any(
                a["state"] in ("declined", "expired") and k + 1 < len(i["assignments"])
                for k, a in enumerate(i["assignments"])
            )
        ]
        assert escalated
        for row in rows:
            server_row = next(i for i in listed["closed"] if i["id"] == row["id"])
            states = Counter(a["state"] for a in server_row["assignments"])
            assert int(row["declined"]) == states["declined"] == int(row["server_declined"])
            assert int(row["expired"]) == states["expired"] == int(row["server_expired"])
            assert int(row["offers"]) == len(server_row["assignments"]) == int(row["offers_seen"])
            assert row["closed_by"] == "end"
            assert row["rings_met"] == ""
        volunteers = read_csv(out / "volunteers.csv")
        assert sum(int(v["alerts"]) for v in volunteers) == assigned.total()
        assert sum(int(v["points"]) for v in volunteers) == 0


@pytest.mark.asyncio
async def test_closing_an_incident_completes_those_on_scene(tmp_path: Path) -> None:
    """Service outlasts the drain: the drill closes incidents with volunteers on scene; the
    server completes and credits them without telling their sockets, and the drill counts
    them from the close's answer."""
    async with running_server(tmp_path) as server:
        opts = options(
            tmp_path, server.url, duration_s=1.5, incidents_per_minute=120.0,
            service_s=(1000.0, 1000.0), drain_s=5.0,
        )  # fmt: skip
        result = await drill(opts)
        s = result.summary
        listed = await server_incidents(server, {str(r["id"]) for r in result.incidents})
        assigned = Counter(a["state"] for i in listed["closed"] for a in i["assignments"])
        assert s["arrived"] == s["completed"] == assigned["completed"] > 0
        assert s["answers"]["accepted"] == s["arrived"]
        assert {r["closed_by"] for r in result.incidents} == {"end"}
        assert sum(r["points"] for r in result.volunteers) == s["points"] > 0
        assert all(r["completed"] == r["completed_server"] for r in result.volunteers)
        assert not s["errors"], s["errors"]


@pytest.mark.asyncio
async def test_a_wrong_token_or_a_dead_server_is_a_clear_error(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        with pytest.raises(DrillError, match="401"):
            await drill(options(tmp_path, server.url, token="not-an-operator-token"))
        url = server.url
    with pytest.raises(DrillError, match="unreachable"):
        await drill(options(tmp_path, url))
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = await asyncio.to_thread(
            main, ["drill", "--url", url, "--token", OPERATOR_TOKEN, "--quiet"]
        )
    assert code == 1
    assert "unreachable" in stderr.getvalue()


def test_the_plan_is_deterministic_by_seed_and_keeps_to_the_area() -> None:
    ds = dataset(DEFAULT_DATASET)
    opts = options(Path("unused"), "http://127.0.0.1:1", volunteers=50, duration_s=600.0)
    first, again = sample_volunteers(ds, opts), sample_volunteers(ds, opts)
    assert first == again
    assert len({v.id for v in first}) == 50
    assert all(v.id == f"drill-{v.dataset_id}" for v in first)
    other = sample_volunteers(ds, dataclasses.replace(opts, seed=4))
    assert {v.id for v in other} != {v.id for v in first}
    incidents = plan_incidents(ds, opts)
    assert incidents == plan_incidents(ds, opts)
    assert 300 < len(incidents) < 600  # 45 a minute for 10 minutes
    assert all(0 <= p.at_s < 600 for p in incidents)
    assert [p.at_s for p in incidents] == sorted(p.at_s for p in incidents)
    assert set(Counter(p.type for p in incidents)) <= set(opts.type_mix)
    for p in incidents:  # within the radius, give or take the jitter
        assert abs(p.lat - SEAT[0]) < 0.04
        assert abs(p.lon - SEAT[1]) < 0.05
    dataset_ids = sample_volunteers(ds, dataclasses.replace(opts, ids="dataset"))
    assert [v.id for v in dataset_ids] == [v.dataset_id for v in first]
    # County-wide, the draw follows the population: a big town gets more than a hamlet.
    county = sample_volunteers(ds, dataclasses.replace(opts, near=None, volunteers=2000))
    villages = Counter(v.village_id for v in county)
    population = dict(zip(ds.villages.id, ds.villages.population.tolist(), strict=True))
    big = sorted(population, key=population.__getitem__)[-20:]
    small = sorted(population, key=population.__getitem__)[:20]
    assert sum(villages[v] for v in big) > 3 * sum(villages[v] for v in small)


def test_options_and_ranges_are_checked() -> None:
    assert parse_range("5..40") == (5.0, 40.0)
    assert parse_range("7") == (7.0, 7.0)
    for bad in ("40..5", "a..b", "-1", "1..2..3", "nan"):
        with pytest.raises(InvalidInput):
            parse_range(bad)
    good = options(Path("unused"), "http://127.0.0.1:1")
    for change in (
        {"volunteers": 0},
        {"acceptance": 1.5},
        {"fix_interval_s": 0.0},
        {"url": "127.0.0.1:8000"},
        {"token": ""},
        {"clock": "sundial"},
        {"severity_mix": (1.0, 1.0)},
    ):
        with pytest.raises(InvalidInput):
            dataclasses.replace(good, **change)
    ds = dataset(DEFAULT_DATASET)
    with pytest.raises(InvalidInput, match="volunteers"):
        sample_volunteers(ds, dataclasses.replace(good, radius_m=50.0))
    assert "token" not in good.parameters()
