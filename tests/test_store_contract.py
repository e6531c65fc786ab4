"""The Store contract: one suite, every backend (the ``store`` fixture of ``conftest.py``).

The first part runs on each backend and pins down the protocol of ``dispatch.store.base``:
round trips of every record, the commit rules and their atomicity, the event log, credits,
the outbox's seq, positions, and a real engine day persisted and restored. The second part
is sqlite only: durability across close/reopen and across SIGKILL, the pragmas, migrations,
and the translation of lower-layer failures into ``StoreError``.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import signal
import sqlite3
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dispatch.core.engine import (
    Assignment,
    Cancel,
    Command,
    Credit,
    DispatchCore,
    Incident,
    Notify,
    Offer,
    Persist,
)
from dispatch.core.policy import DEFAULT_POLICY_PATH, parse_policy
from dispatch.core.states import AssignmentEvent, AssignmentState
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound, StoreError
from dispatch.store import (
    DEFAULT_FILENAME,
    MemoryStore,
    SqliteStore,
    Store,
    VolunteerRecord,
    create_store,
)
from dispatch.store.base import Commit, EventRecord, PointsRecord
from dispatch.store.codec import (
    ASSIGNMENT_FIELDS,
    INCIDENT_FIELDS,
    decode_assignment,
    decode_incident,
    dumps,
    encode_assignment,
    encode_commit,
    encode_incident,
)
from dispatch.store.migrations import MIGRATIONS, Migration, latest_version
from geo.modes import Mode
from geo.travel import CrowFlyModel
from tests.conftest import STORE_BACKENDS
from tests.strategies import SEAT, place
from units.index import LiveIndex, PositionSnapshot

NOW = 1_795_000_000.0
S = AssignmentState
REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ builders


def incident(incident_id: str = "i1", **changes: Any) -> Incident:
    """An open incident with defaults in every optional field."""
    base = Incident(
        id=incident_id,
        type="fire",
        lat=37.3472,
        lon=115.9651,
        severity=2,
        note=None,
        dispatch="auto",
        created_at=NOW,
        quota={1: 1, 3: 2, 5: 3},
    )
    return replace(base, **changes)


def full_incident(incident_id: str = "i9") -> Incident:
    """An incident with every field set away from its default."""
    return Incident(
        id=incident_id,
        type="water_rescue",
        lat=37.123456789012,
        lon=115.987654321098,
        severity=3,
        note='南关村 河边, "two" people\nsecond line',
        dispatch="manual",
        created_at=NOW + 0.125,
        quota={1: 2, 3: 4, 5: 7},
        state="closed",
        closed_at=NOW + 3600.5,
        outcome="rescued",
        max_eta_s=900.0,
        widen_step=2,
        unmet=(3, 5),
        unmet_since=NOW + 60.0,
        assignment_ids=["a1", "a2", "a10"],
    )


def assignment(
    assignment_id: str = "a1",
    incident_id: str = "i1",
    volunteer_id: str = "v1",
    state: AssignmentState = S.OFFERED,
    **changes: Any,
) -> Assignment:
    """An assignment with defaults in every optional field."""
    base = Assignment(
        id=assignment_id,
        incident_id=incident_id,
        volunteer_id=volunteer_id,
        state=state,
        eta_s=42.5,
        ring_min=1,
        offered_at=NOW,
        expires_at=NOW + 30.0,
        updated_at=NOW,
    )
    return replace(base, **changes)


def volunteer(volunteer_id: str = "v1", **changes: Any) -> VolunteerRecord:
    base = VolunteerRecord(
        id=volunteer_id,
        name="张伟",
        unit_id="u07",
        roles=("patrol", "mediator"),
        teams=("rescue",),
        mode="ebike",
        phone="+86 138 0000 0000",
    )
    return replace(base, **changes)


def snapshot(rows: Sequence[tuple[str, float, float, float, float]]) -> PositionSnapshot:
    return PositionSnapshot(
        ids=[r[0] for r in rows],
        lat=np.array([r[1] for r in rows], dtype=np.float64),
        lon=np.array([r[2] for r in rows], dtype=np.float64),
        ts=np.array([r[3] for r in rows], dtype=np.float64),
        accuracy_m=np.array([r[4] for r in rows], dtype=np.float64),
    )


def positions_as_rows(snap: PositionSnapshot) -> list[tuple[str, float, float, float, float]]:
    return list(
        zip(
            snap.ids,
            snap.lat.tolist(),
            snap.lon.tolist(),
            snap.ts.tolist(),
            snap.accuracy_m.tolist(),
            strict=True,
        )
    )


async def nothing_changed(store: Store, events_before: int = 0) -> None:
    """Assert that the failed commits of the atomicity tests left no trace."""
    assert await store.get_incident("i1") is None
    assert await store.get_assignment("a1") is None
    assert len(await store.events()) == events_before
    assert await store.last_seq("v1") == 0
    assert await store.pending("v1") == []
    assert await store.points("v1") == PointsRecord("v1")


# ---------------------------------------------------------------- lifecycle


@pytest.mark.asyncio
async def test_the_store_names_its_backend_and_follows_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)
    assert store.name in STORE_BACKENDS
    await store.open()  # idempotent
    await store.ping()


@pytest.mark.asyncio
async def test_a_closed_store_raises_store_error_and_reopens_with_its_data(store: Store) -> None:
    await store.commit("incident.created", NOW, [incident()])
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError):
        await store.ping()
    with pytest.raises(StoreError):
        await store.get_incident("i1")
    with pytest.raises(StoreError):
        await store.commit("incident.created", NOW, [incident("i2")])
    with pytest.raises(StoreError):
        await store.commit_many([])
    with pytest.raises(StoreError):
        await store.enqueue("v1", {"type": "x"})
    await store.open()
    assert await store.get_incident("i1") == incident()
    assert await store.get_incident("i2") is None


# ------------------------------------------------------------------- roster


@pytest.mark.asyncio
async def test_put_volunteer_creates_then_replaces(store: Store) -> None:
    record = volunteer(availability="available")
    assert await store.put_volunteer(record, at=NOW, actor="operator") is True
    assert await store.get_volunteer("v1") == record
    assert await store.get_volunteer("nobody") is None

    bare = VolunteerRecord("v0", "李娜", None, (), (), "walk")
    assert await store.put_volunteer(bare, at=NOW) is True
    assert await store.get_volunteer("v0") == bare
    assert bare.availability == "off_duty", "new volunteers start off duty, as in the index"
    assert await store.list_volunteers() == [bare, record], "by id"

    changed = volunteer(
        name="张伟伟", unit_id=None, roles=(), teams=("women", "watch"), mode="car", phone=None
    )
    assert await store.put_volunteer(changed, at=NOW + 1) is False
    stored = await store.get_volunteer("v1")
    assert stored == replace(changed, availability="available"), "a replace keeps availability"


@pytest.mark.asyncio
async def test_replacing_a_volunteer_keeps_tokens_points_seq_and_pending(store: Store) -> None:
    await store.put_volunteer(volunteer(), at=NOW)
    await store.add_token("v1", "hash-1", NOW)
    await store.commit("incident.created", NOW, [incident()])
    await store.commit(
        "assignment.completed",
        NOW,
        [assignment(state=S.COMPLETED)],
        outbox=[("v1", {"type": "assignment.updated"})],
        credit=Credit("v1", "a1", 12, 1800.0),
    )
    await store.set_availability("v1", "available", NOW)
    assert await store.put_volunteer(volunteer(name="new name"), at=NOW + 1) is False
    assert await store.volunteer_for_token("hash-1") == "v1"
    assert await store.points("v1") == PointsRecord("v1", 12, 1800.0, 1)
    assert await store.last_seq("v1") == 1
    assert await store.pending("v1") == [(1, {"type": "assignment.updated"})]
    stored = await store.get_volunteer("v1")
    assert stored is not None
    assert stored.availability == "available"
    assert stored.name == "new name"


@pytest.mark.asyncio
async def test_set_availability(store: Store) -> None:
    await store.put_volunteer(volunteer(), at=NOW)
    await store.set_availability("v1", "available", NOW + 5, actor="v1")
    stored = await store.get_volunteer("v1")
    assert stored is not None
    assert stored.availability == "available"
    await store.set_availability("v1", "off_duty", NOW + 6)
    stored = await store.get_volunteer("v1")
    assert stored is not None
    assert stored.availability == "off_duty"
    with pytest.raises(NotFound):
        await store.set_availability("nobody", "available", NOW)
    with pytest.raises(InvalidInput):
        await store.set_availability("v1", "busy", NOW)  # derived, never chosen
    with pytest.raises(InvalidInput):
        await store.put_volunteer(volunteer("v2", availability="busy"), at=NOW)
    assert await store.get_volunteer("v2") is None
    log = await store.events()
    assert [e.event for e in log] == [
        "volunteer.created",
        "volunteer.availability",
        "volunteer.availability",
    ]
    assert log[1] == EventRecord(
        2, "volunteer.availability", NOW + 5, "v1", "volunteer", "v1", {"status": "available"}
    )


# ------------------------------------------------------------------- tokens


@pytest.mark.asyncio
async def test_tokens_are_stored_as_hashes_and_looked_up(store: Store) -> None:
    await store.put_volunteer(volunteer("v1"), at=NOW)
    await store.put_volunteer(volunteer("v2"), at=NOW)
    await store.add_token("v1", "h1", NOW)
    await store.add_token("v1", "h1b", NOW + 1)  # a volunteer may hold several
    await store.add_token("v1", "h1", NOW + 2)  # the same again: harmless
    await store.add_token("v2", "h2", NOW)
    assert await store.volunteer_for_token("h1") == "v1"
    assert await store.volunteer_for_token("h1b") == "v1"
    assert await store.volunteer_for_token("h2") == "v2"
    assert await store.volunteer_for_token("unknown") is None
    with pytest.raises(Conflict):
        await store.add_token("v2", "h1", NOW)
    assert await store.volunteer_for_token("h1") == "v1"
    with pytest.raises(NotFound):
        await store.add_token("nobody", "h3", NOW)
    assert await store.volunteer_for_token("h3") is None
    tokens = [e for e in await store.events() if e.event == "volunteer.token_added"]
    assert [(e.record_id, e.payload) for e in tokens] == [("v1", {}), ("v1", {}), ("v2", {})]
    assert "h1" not in repr(await store.events()), "hashes are never logged"


# ------------------------------------------------------- records round trip


def test_the_codec_covers_every_field_of_the_engine_records() -> None:
    assert tuple(f.name for f in fields(Incident)) == INCIDENT_FIELDS
    assert tuple(f.name for f in fields(Assignment)) == ASSIGNMENT_FIELDS
    assert tuple(encode_incident(full_incident())) == INCIDENT_FIELDS
    assert tuple(encode_assignment(assignment())) == ASSIGNMENT_FIELDS


@pytest.mark.parametrize("credit", [None, Credit("v1", "a1", 12, 1800.0)])
@pytest.mark.parametrize("applied", [False, True])
def test_the_log_payload_is_the_one_go_encoding(credit: Credit | None, applied: bool) -> None:
    """The payload splices the records' text encoded once; it must be the very text that
    encoding the whole payload in one go gives (strange characters included)."""
    entry = encode_commit(
        Commit(
            "assignment.offered",
            NOW,
            (full_incident(), assignment(reason='说"明"\\n\u2028')),
            outbox=[("v1", {"type": "assignment.offered", "x": "é"}), ("v2", {"type": None})],
            credit=credit,
        )
    )
    one_go = {
        "records": [{"kind": r.kind, "data": r.data} for r in entry.records],
        "credit": None if entry.credit_data is None else {**entry.credit_data, "applied": applied},
        "messages": [
            {"volunteer_id": "v1", "seq": 7, "type": "assignment.offered"},
            {"volunteer_id": "v2", "seq": 3, "type": None},
        ],
    }
    assert entry.log_payload([7, 3], applied) == dumps(one_go)
    empty = encode_commit(Commit("incident.updated", NOW, ()))
    assert empty.log_payload([], applied) == dumps({"records": [], "credit": None, "messages": []})


@pytest.mark.parametrize(
    "value", [math.inf, -math.inf, 0.0, -0.0, 1e-300, 123456.789012345678, 2.0**60]
)
def test_the_codec_keeps_floats_exactly(value: float) -> None:
    record = assignment(eta_s=value)
    back = decode_assignment(encode_assignment(record))
    assert back == record
    assert math.copysign(1.0, back.eta_s) == math.copysign(1.0, value)
    nan = decode_assignment(encode_assignment(assignment(eta_s=math.nan)))
    assert math.isnan(nan.eta_s)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (incident(severity="2"), "severity"),
        (incident(severity=True), "severity"),
        (incident(lat="37"), "lat"),
        (incident(quota={"one": 1}), "quota"),
        (incident(state="paused"), "state"),
        (incident(dispatch="later"), "dispatch"),
        (incident(note=object()), "note"),
        (assignment(state="maybe"), "state"),  # type: ignore[arg-type]
        (assignment(ring_min=1.5), "ring_min"),
        (assignment(eta_s=None), "eta_s"),
    ],
)
def test_the_codec_refuses_wrong_types_naming_the_field(
    record: Incident | Assignment, field: str
) -> None:
    encode: Callable[[Any], object] = (
        encode_incident if isinstance(record, Incident) else encode_assignment
    )
    with pytest.raises(StoreError, match=field):
        encode(record)


def test_the_codec_fills_defaults_for_fields_written_before_they_existed() -> None:
    data = encode_incident(incident())
    for name in ("state", "closed_at", "outcome", "max_eta_s", "widen_step", "unmet"):
        del data[name]
    assert decode_incident(data) == incident()
    with pytest.raises(StoreError, match="corrupt"):
        decode_incident({"id": "i1"})


@pytest.mark.asyncio
async def test_incidents_and_assignments_round_trip_exactly(store: Store) -> None:
    full = full_incident("i9")
    bare = incident("i1", quota={}, unmet=(), assignment_ids=[])
    accepted = assignment(
        "a9",
        "i9",
        "v9",
        S.ACCEPTED,
        eta_s=math.inf,
        ring_min=None,
        accepted_at=NOW + 12.5,
        reason="我在路上",
        updated_at=NOW + 12.5,
    )
    offered = assignment("a1", "i1", "v1")
    await store.commit("incident.created", NOW, [full, bare, accepted, offered])
    for original in (full, bare):
        back = await store.get_incident(original.id)
        assert back == original
        assert back is not None
        assert all(type(k) is int for k in back.quota), "quota keys come back as ints"
        assert type(back.unmet) is tuple
        assert type(back.assignment_ids) is list
    for original_assignment in (accepted, offered):
        back_assignment = await store.get_assignment(original_assignment.id)
        assert back_assignment == original_assignment
        assert back_assignment is not None
        assert back_assignment.state is original_assignment.state
    assert await store.get_incident("nope") is None
    assert await store.get_assignment("nope") is None


@pytest.mark.asyncio
async def test_the_store_never_shares_objects_with_its_callers(store: Store) -> None:
    original = incident()
    await store.commit("incident.created", NOW, [original])
    original.assignment_ids.append("a1")  # the engine mutates its objects in place
    original.unmet = (5,)
    assert await store.get_incident("i1") == incident()
    first = await store.get_incident("i1")
    assert first is not None
    first.quota[1] = 99
    assert await store.get_incident("i1") == incident()
    assert await store.get_incident("i1") is not await store.get_incident("i1")


@pytest.mark.asyncio
async def test_listing_incidents_and_assignments(store: Store) -> None:
    await store.commit(
        "incident.created",
        NOW,
        [
            incident("i3", created_at=NOW + 2),
            incident("i1", created_at=NOW + 1),
            incident("i2", created_at=NOW + 1, state="closed", closed_at=NOW + 5),
            assignment("a3", "i1", "v3", offered_at=NOW + 2),
            assignment("a2", "i1", "v2", offered_at=NOW + 1),
            assignment("a1", "i1", "v1", offered_at=NOW + 2),
            assignment("a4", "i3", "v4"),
        ],
    )
    assert [i.id for i in await store.list_incidents()] == ["i1", "i2", "i3"]
    assert [i.id for i in await store.list_incidents("open")] == ["i1", "i3"]
    assert [i.id for i in await store.list_incidents("closed")] == ["i2"]
    assert [a.id for a in await store.assignments_of("i1")] == ["a2", "a1", "a3"]
    assert await store.assignments_of("i2") == []
    assert await store.assignments_of("unknown") == []


@pytest.mark.asyncio
async def test_load_live_returns_open_incidents_and_all_their_assignments(store: Store) -> None:
    await store.commit("incident.created", NOW, [incident("i1"), incident("i2")])
    await store.commit("assignment.offered", NOW, [assignment("a1", "i1", "v1")])
    await store.commit("assignment.offered", NOW + 1, [assignment("a2", "i1", "v2")])
    await store.commit("assignment.offered", NOW + 2, [assignment("a3", "i2", "v3")])
    await store.commit(
        "assignment.declined", NOW + 3, [assignment("a1", "i1", "v1", S.DECLINED, reason="ill")]
    )
    await store.commit("assignment.cancelled", NOW + 4, [assignment("a3", "i2", "v3", S.CANCELLED)])
    await store.commit(
        "incident.closed", NOW + 4, [incident("i2", state="closed", closed_at=NOW + 4)]
    )
    incidents, assignments = await store.load_live()
    assert incidents == [incident("i1")]
    assert assignments == [
        assignment("a1", "i1", "v1", S.DECLINED, reason="ill"),
        assignment("a2", "i1", "v2"),
    ], "every state, declined included: the engine must not ask them again"
    await store.commit("incident.closed", NOW + 5, [incident("i1", state="closed")])
    assert await store.load_live() == ([], [])


# ------------------------------------------------------------- commit rules


@pytest.mark.asyncio
async def test_an_assignment_needs_its_incident(store: Store) -> None:
    with pytest.raises(NotFound, match="i1"):
        await store.commit("assignment.offered", NOW, [assignment()])
    await nothing_changed(store)
    # The incident may come first in the same commit.
    await store.commit("incident.created", NOW, [incident(), assignment()])
    assert await store.get_assignment("a1") == assignment()


@pytest.mark.parametrize(
    ("stored", "new", "allowed"),
    [
        (S.OFFERED, S.ACCEPTED, True),
        (S.OFFERED, S.OFFERED, True),  # the same state again: a retried commit
        (S.OFFERED, S.ON_SCENE, True),  # reachable: a late commit of a moved object
        (S.OFFERED, S.COMPLETED, True),
        (S.ACCEPTED, S.WITHDRAWN, True),
        (S.ACCEPTED, S.OFFERED, False),  # never backwards
        (S.ON_SCENE, S.ACCEPTED, False),
        (S.DECLINED, S.ACCEPTED, False),  # terminal states stay
        (S.COMPLETED, S.CANCELLED, False),
        (S.EXPIRED, S.OFFERED, False),
        (S.CANCELLED, S.CANCELLED, True),
    ],
)
@pytest.mark.asyncio
async def test_a_stored_state_only_moves_forwards(
    store: Store, stored: AssignmentState, new: AssignmentState, allowed: bool
) -> None:
    await store.commit("incident.created", NOW, [incident(), assignment(state=stored)])
    if allowed:
        await store.commit(f"assignment.{new.value}", NOW + 1, [assignment(state=new)])
        stored_now = await store.get_assignment("a1")
        assert stored_now is not None
        assert stored_now.state is new
        return
    with pytest.raises(IllegalTransition) as caught:
        await store.commit(
            f"assignment.{new.value}",
            NOW + 1,
            [assignment(state=new)],
            outbox=[("v1", {"type": "assignment.updated"})],
        )
    assert caught.value.state == stored.value
    stored_now = await store.get_assignment("a1")
    assert stored_now is not None
    assert stored_now.state is stored
    assert await store.last_seq("v1") == 0
    assert len(await store.events()) == 1


@pytest.mark.asyncio
async def test_a_volunteer_holds_at_most_one_open_or_active_assignment(store: Store) -> None:
    await store.commit("incident.created", NOW, [incident("i1"), incident("i2")])
    await store.commit("assignment.offered", NOW, [assignment("a1", "i1", "v1")])
    with pytest.raises(Conflict, match="a1"):
        await store.commit("assignment.offered", NOW, [assignment("a2", "i2", "v1")])
    assert await store.get_assignment("a2") is None
    # Accepted still holds; another volunteer is free.
    await store.commit("assignment.accepted", NOW, [assignment("a1", "i1", "v1", S.ACCEPTED)])
    with pytest.raises(Conflict):
        await store.commit("assignment.offered", NOW, [assignment("a2", "i2", "v1")])
    await store.commit("assignment.offered", NOW, [assignment("a3", "i2", "v2")])
    # Order inside one commit matters: first free, then offer.
    with pytest.raises(Conflict):
        await store.commit(
            "assignment.offered",
            NOW,
            [assignment("a2", "i2", "v1"), assignment("a1", "i1", "v1", S.WITHDRAWN)],
        )
    assert (await store.get_assignment("a1")) == assignment("a1", "i1", "v1", S.ACCEPTED)
    await store.commit(
        "assignment.withdrawn",
        NOW,
        [assignment("a1", "i1", "v1", S.WITHDRAWN), assignment("a2", "i2", "v1")],
    )
    assert (await store.get_assignment("a2")) == assignment("a2", "i2", "v1")
    # Two offers for one volunteer in a single commit are refused too.
    with pytest.raises(Conflict):
        await store.commit(
            "assignment.offered",
            NOW,
            [assignment("a4", "i1", "v5"), assignment("a5", "i2", "v5")],
        )
    assert await store.get_assignment("a4") is None


# ---------------------------------------------------------------- atomicity


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "breaking",
    [
        "unknown incident",
        "unencodable record",
        "unencodable message",
        "tuple in message",
        "not a record",
        "conflict",
    ],
)
async def test_a_failed_commit_applies_nothing(store: Store, breaking: str) -> None:
    records: list[Any] = [incident(), assignment()]
    outbox: list[tuple[str, dict[str, Any]]] = [("v1", {"type": "assignment.offered"})]
    if breaking == "unknown incident":
        records.append(assignment("a2", "i-unknown", "v2"))
    elif breaking == "unencodable record":
        records.append(incident("i2", note=object()))
    elif breaking == "unencodable message":
        outbox.append(("v2", {"type": "x", "when": object()}))
    elif breaking == "tuple in message":
        outbox.append(("v2", {"type": "x", "pair": (1, 2)}))  # would come back as a list
    elif breaking == "not a record":
        records.append(Credit("v1", "a1", 1, 1.0))
    else:
        records.append(assignment("a2", "i1", "v1"))  # v1 holds a1 from this very commit
    error = (
        NotFound
        if breaking == "unknown incident"
        else Conflict
        if breaking == "conflict"
        else StoreError
    )
    with pytest.raises(error):
        await store.commit(
            "incident.created",
            NOW,
            records,
            outbox=outbox,
            credit=Credit("v1", "a1", 5, 60.0),
        )
    await nothing_changed(store)
    await store.commit("incident.created", NOW, [incident(), assignment()], outbox=outbox[:1])
    assert await store.last_seq("v1") == 1, "no seq was spent by the failed commit"
    assert [e.id for e in await store.events()] == [1]


@pytest.mark.asyncio
async def test_commit_many_is_one_transaction(store: Store) -> None:
    entries = [
        Commit("incident.created", NOW, [incident()]),
        Commit(
            "assignment.offered",
            NOW,
            [assignment()],
            outbox=[("v1", {"type": "assignment.offered", "n": 1})],
        ),
        Commit(
            "assignment.offered",
            NOW,
            [assignment("a2", "i1", "v2")],
            outbox=[("v2", {"type": "assignment.offered"}), ("v1", {"type": "note", "n": 2})],
        ),
    ]
    broken = [*entries, Commit("assignment.offered", NOW, [assignment("a3", "i1", "v1")])]
    with pytest.raises(Conflict):
        await store.commit_many(broken)
    await nothing_changed(store)
    assert await store.commit_many(entries) == [[], [1], [1, 2]]
    assert [(e.id, e.event, e.record_id) for e in await store.events()] == [
        (1, "incident.created", "i1"),
        (2, "assignment.offered", "a1"),
        (3, "assignment.offered", "a2"),
    ]
    assert await store.pending("v1") == [
        (1, {"type": "assignment.offered", "n": 1}),
        (2, {"type": "note", "n": 2}),
    ]
    assert await store.commit_many([]) == []


# ---------------------------------------------------------------- event log


@pytest.mark.asyncio
async def test_the_event_log_says_who_was_offered_what_when_and_how_they_answered(
    store: Store,
) -> None:
    await store.commit("incident.created", NOW, [incident()], actor="operator")
    seqs = await store.commit(
        "assignment.offered",
        NOW + 1,
        [assignment()],
        outbox=[("v1", {"type": "assignment.offered", "assignment": {"id": "a1"}})],
    )
    assert seqs == [1]
    declined = assignment(state=S.DECLINED, reason="在上班", updated_at=NOW + 9)
    await store.commit("assignment.declined", NOW + 9, [declined], actor="v1")
    await store.commit("tick", NOW + 10, [])

    log = await store.events()
    assert [e.id for e in log] == [1, 2, 3, 4]
    assert [(e.event, e.at, e.actor, e.kind, e.record_id) for e in log] == [
        ("incident.created", NOW, "operator", "incident", "i1"),
        ("assignment.offered", NOW + 1, None, "assignment", "a1"),
        ("assignment.declined", NOW + 9, "v1", "assignment", "a1"),
        ("tick", NOW + 10, None, None, None),
    ]
    offered, answered = log[1].payload, log[2].payload
    assert offered["records"] == [{"kind": "assignment", "data": encode_assignment(assignment())}]
    assert offered["messages"] == [{"volunteer_id": "v1", "seq": 1, "type": "assignment.offered"}]
    assert offered["credit"] is None
    (record,) = answered["records"]
    assert decode_assignment(record["data"]) == declined
    assert record["data"]["volunteer_id"] == "v1"
    assert record["data"]["state"] == "declined"
    assert record["data"]["reason"] == "在上班"
    assert log[3].payload == {"records": [], "credit": None, "messages": []}

    assert [e.id for e in await store.events(after=2)] == [3, 4]
    assert [e.id for e in await store.events(after=1, limit=2)] == [2, 3]
    assert await store.events(after=4) == []
    with pytest.raises(InvalidInput):
        await store.events(limit=0)


# ------------------------------------------------------------------ credits


@pytest.mark.asyncio
async def test_credit_is_applied_once_per_assignment(store: Store) -> None:
    assert await store.points("v1") == PointsRecord("v1", 0, 0.0, 0)
    await store.commit("incident.created", NOW, [incident()])
    done = assignment(state=S.COMPLETED)
    credit = Credit("v1", "a1", 67, 3650.0)
    await store.commit("assignment.completed", NOW, [done], credit=credit)
    await store.commit("assignment.completed", NOW, [done], credit=credit)  # a retry
    await store.commit("assignment.completed", NOW, [], credit=replace(credit, points=1000))
    assert await store.points("v1") == PointsRecord("v1", 67, 3650.0, 1)
    await store.commit("incident.created", NOW, [incident("i2")])
    await store.commit(
        "assignment.completed",
        NOW,
        [assignment("a2", "i2", state=S.COMPLETED)],
        credit=Credit("v1", "a2", 7, 0.5),
    )
    points = await store.points("v1")
    assert (points.points, points.completed) == (74, 2)
    assert points.service_seconds == pytest.approx(3650.5)
    assert await store.points("v2") == PointsRecord("v2")
    credits = [e.payload["credit"] for e in await store.events() if e.payload["credit"]]
    assert [c["applied"] for c in credits] == [True, False, False, True]
    assert credits[0] == {
        "volunteer_id": "v1",
        "assignment_id": "a1",
        "points": 67,
        "service_seconds": 3650.0,
        "applied": True,
    }


# ------------------------------------------------------------------- outbox


@pytest.mark.asyncio
async def test_seq_is_per_volunteer_and_only_grows(store: Store) -> None:
    assert await store.last_seq("v1") == 0
    assert [await store.enqueue("v1", {"type": "m", "n": n}) for n in range(3)] == [1, 2, 3]
    assert await store.enqueue("v2", {"type": "m"}) == 1, "independent across volunteers"
    await store.commit("incident.created", NOW, [incident()])
    seqs = await store.commit(
        "assignment.offered",
        NOW,
        [assignment()],
        outbox=[("v1", {"type": "a"}), ("v2", {"type": "b"}), ("v1", {"type": "c"})],
    )
    assert seqs == [4, 2, 5], "commit and enqueue share one counter per volunteer"
    await store.ack("v1", 5)
    assert await store.pending("v1") == []
    assert await store.last_seq("v1") == 5
    assert await store.enqueue("v1", {"type": "d"}) == 6, "a seq is never reused after an ack"
    assert await store.last_seq("v2") == 2


@pytest.mark.asyncio
async def test_pending_since_and_ack(store: Store) -> None:
    for n in range(1, 6):
        await store.enqueue("v1", {"type": "m", "n": n})
    assert [s for s, _ in await store.pending("v1")] == [1, 2, 3, 4, 5]
    assert await store.pending("v1", since=3) == [
        (4, {"type": "m", "n": 4}),
        (5, {"type": "m", "n": 5}),
    ]
    assert await store.pending("v1", since=5) == []
    assert await store.pending("v2") == []

    await store.ack("v1", 2)
    assert [s for s, _ in await store.pending("v1")] == [3, 4, 5]
    await store.ack("v1", 1)  # older than the last ack: harmless
    await store.ack("v1", 0)
    await store.ack("v1", -7)
    assert [s for s, _ in await store.pending("v1")] == [3, 4, 5]
    await store.ack("v2", 3)  # another volunteer's ack touches nothing of v1
    assert [s for s, _ in await store.pending("v1")] == [3, 4, 5]

    await store.ack("v1", 99)  # beyond the newest: everything is delivered...
    assert await store.pending("v1") == []
    assert await store.last_seq("v1") == 5
    assert await store.enqueue("v1", {"type": "m", "n": 6}) == 6
    # ...but it cannot swallow a message enqueued later.
    assert await store.pending("v1") == [(6, {"type": "m", "n": 6})]
    assert await store.pending("v1", since=99) == []
    with pytest.raises(InvalidInput):
        await store.ack("v1", True)
    with pytest.raises(InvalidInput):
        await store.ack("v1", "6")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_messages_come_back_equal(store: Store) -> None:
    message: dict[str, Any] = {
        "type": "assignment.offered",
        "assignment": {"id": "a1", "eta_s": 42.5, "ring_min": None, "flags": [True, False]},
        "incident": {"note": '东街 \u2028 "quoted" \\ 😀', "severity": 3, "lat": 37.12345678901},
        "empty": {},
        "list": [],
        "big": 2**53 + 1,
    }
    seq = await store.enqueue("v1", message)
    assert await store.pending("v1") == [(seq, message)]
    (stored,) = await store.pending("v1")
    stored[1]["type"] = "changed"
    assert (await store.pending("v1"))[0][1] == message
    bad_messages: list[Any] = [
        {"type": "x", "v": math.nan},
        {"type": "x", "v": math.inf},
        {"type": "x", "v": (1, 2)},
        {"type": "x", 1: "int key"},
        {"type": "x", "v": {1, 2}},
    ]
    for bad in bad_messages:
        with pytest.raises(StoreError):
            await store.enqueue("v1", bad)
    with pytest.raises(StoreError):
        await store.enqueue("v1", ["not", "a", "dict"])  # type: ignore[arg-type]
    assert await store.last_seq("v1") == seq, "a refused message spends no seq"


# ---------------------------------------------------------------- positions


@pytest.mark.asyncio
async def test_positions_newest_fix_wins(store: Store) -> None:
    empty = await store.load_positions()
    assert empty.ids == []
    assert all(len(getattr(empty, name)) == 0 for name in ("lat", "lon", "ts", "accuracy_m"))

    await store.save_positions(
        snapshot(
            [
                ("v2", 37.1, 115.1, NOW, 5.0),
                ("v1", 37.2, 115.2, NOW, math.nan),  # unknown accuracy
            ]
        )
    )
    await store.save_positions(
        snapshot(
            [
                ("v1", 37.3, 115.3, NOW + 10, 8.0),  # newer: replaces
                ("v2", 37.9, 115.9, NOW - 10, 1.0),  # older: ignored
                ("v3", 37.5, 115.5, NOW, 3.0),
            ]
        )
    )
    await store.save_positions(snapshot([("v3", 37.6, 115.6, NOW, 4.0)]))  # same ts: new wins
    await store.save_positions(snapshot([]))
    loaded = await store.load_positions()
    assert positions_as_rows(loaded) == [
        ("v1", 37.3, 115.3, NOW + 10, 8.0),
        ("v2", 37.1, 115.1, NOW, 5.0),
        ("v3", 37.6, 115.6, NOW, 4.0),
    ]
    assert loaded.lat.dtype == np.float64

    await store.save_positions(snapshot([("v4", 37.0, 115.0, NOW, math.nan)]))
    nan_back = await store.load_positions()
    assert nan_back.ids[-1] == "v4"
    assert math.isnan(float(nan_back.accuracy_m[-1]))


@pytest.mark.asyncio
async def test_bad_position_snapshots_are_refused_whole(store: Store) -> None:
    uneven = PositionSnapshot(
        ids=["v1", "v2"],
        lat=np.array([37.0, 37.1]),
        lon=np.array([115.0]),
        ts=np.array([NOW, NOW]),
        accuracy_m=np.array([1.0, 1.0]),
    )
    with pytest.raises(InvalidInput):
        await store.save_positions(uneven)
    with pytest.raises(InvalidInput):
        await store.save_positions(
            snapshot([("v1", 37.0, 115.0, NOW, 1.0), ("v2", math.nan, 115.0, NOW, 1.0)])
        )
    assert (await store.load_positions()).ids == []


@pytest.mark.asyncio
async def test_positions_round_trip_with_the_live_index(store: Store) -> None:
    index = LiveIndex()
    for i in range(5):
        place(index, f"v{i}", 100.0 * (i + 1), now=NOW - i)
    index.add("never", mode=Mode.WALK)  # no fix: not in the snapshot
    await store.save_positions(index.positions())
    loaded = await store.load_positions()
    expected = index.positions()
    order = np.argsort(expected.ids)
    assert loaded.ids == sorted(expected.ids)
    for name in ("lat", "lon", "ts"):
        assert np.array_equal(getattr(loaded, name), getattr(expected, name)[order])


# ---------------------------------------------------------- the real engine

DRILL = """
[types.drill]
needs = {}
quota = { 1 = 1, 3 = 1, 5 = 1 }
offer_timeout_s = 30
max_open_offers = 5
widen_after_s = 30
widen_steps_s = [600, 900]
points = 7
points_per_hour = 60
"""


def counter(prefix: str) -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def to_commits(commands: Sequence[Command]) -> list[Commit]:
    """The service's mapping of engine commands onto commits: each Persist opens a group."""
    entries: list[Commit] = []
    outbox: list[tuple[str, dict[str, Any]]] = []
    credit: Credit | None = None
    head: Persist | None = None

    def close_group() -> None:
        if head is not None:
            entries.append(
                Commit(head.event, head.at, head.records, head.actor, list(outbox), credit)
            )

    for command in commands:
        if isinstance(command, Persist):
            close_group()
            head, outbox, credit = command, [], None
        elif isinstance(command, Offer):
            outbox.append(
                (
                    command.assignment.volunteer_id,
                    {"type": "assignment.offered", "assignment": command.assignment.id},
                )
            )
        elif isinstance(command, Cancel):
            outbox.append(
                (
                    command.assignment.volunteer_id,
                    {"type": "assignment.cancelled", "assignment": command.assignment.id},
                )
            )
        elif isinstance(command, Notify):
            if command.to_volunteer and command.assignment is not None:
                outbox.append(
                    (
                        command.assignment.volunteer_id,
                        {"type": command.type, "assignment": command.assignment.id},
                    )
                )
        else:
            credit = command
    close_group()
    return entries


@pytest.mark.asyncio
@pytest.mark.parametrize("batched", [True, False], ids=["commit_many", "commit"])
async def test_an_engine_day_is_persisted_and_restored(store: Store, batched: bool) -> None:
    policy = parse_policy(DEFAULT_POLICY_PATH.read_text(encoding="utf-8") + DRILL, "test")

    def new_core() -> DispatchCore:
        index = LiveIndex()
        for i in range(6):
            place(index, f"v{i}", 100.0 + 50.0 * i, now=NOW)
        return DispatchCore(
            index,
            CrowFlyModel(),
            policy,
            incident_ids=counter("i"),
            assignment_ids=counter("a"),
        )

    core = new_core()

    async def run(commands: list[Command]) -> None:
        entries = to_commits(commands)
        if batched:
            await store.commit_many(entries)
        else:
            for e in entries:
                await store.commit(
                    e.event, e.at, e.records, actor=e.actor, outbox=e.outbox, credit=e.credit
                )

    first, commands = core.create_incident("drill", *SEAT, NOW)
    await run(commands)
    offer = core.holding("v0")
    assert offer is not None
    _, commands = core.apply(offer.id, AssignmentEvent.DECLINE, NOW + 5, reason="ill", actor="v0")
    await run(commands)
    await run(core.tick(NOW + 40))  # v1 stays silent: expired, v2 offered
    second = core.holding("v2")
    assert second is not None
    for event, at in ((AssignmentEvent.ACCEPT, 50), (AssignmentEvent.ARRIVE, 100)):
        _, commands = core.apply(second.id, event, NOW + at, actor="v2")
        await run(commands)
    _, commands = core.apply(second.id, AssignmentEvent.COMPLETE, NOW + 3700, actor="v2")
    await run(commands)
    manual, commands = core.create_incident("drill", *SEAT, NOW + 10, dispatch="manual")
    await run(commands)
    offers, commands = core.offer(manual.id, ["v3", "v4", "v5"], NOW + 20)
    await run(commands)
    _, commands = core.apply(offers[1].id, AssignmentEvent.ACCEPT, NOW + 25)  # stands down 3, 5
    await run(commands)
    third, commands = core.create_incident("drill", *SEAT, NOW + 30)
    await run(commands)
    _, commands = core.close_incident(first.id, NOW + 4000, outcome="done")
    await run(commands)

    # Every assignment is stored as the engine holds it.
    for assignment_id, held in core.assignments.items():
        assert await store.get_assignment(assignment_id) == held
    assert await store.points("v2") == PointsRecord("v2", 7 + 60, 3650.0, 1)
    assert [s for s, _ in await store.pending("v1")] == [1, 2], "offered, then expired"
    assert [m["type"] for _, m in await store.pending("v3")] == [
        "assignment.offered",
        "assignment.cancelled",
    ]

    # A restarted engine rebuilt from the store holds what the first one held.
    incidents, assignments = await store.load_live()
    assert sorted(i.id for i in incidents) == sorted([manual.id, third.id])
    restored = new_core()
    restored.restore(incidents, assignments)
    for incident_id in (manual.id, third.id):
        assert restored.incident(incident_id) == core.incident(incident_id)
    for volunteer_id in (f"v{i}" for i in range(6)):
        assert restored.holding(volunteer_id) == core.holding(volunteer_id)
    log = await store.events(limit=1000)
    assert log[0].event == "incident.created"
    assert ("assignment.declined", "v0") in [(e.event, e.actor) for e in log]


# ============================================================== sqlite only


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / DEFAULT_FILENAME


async def fill(store: Store) -> None:
    """Something of everything a restart must not lose."""
    await store.put_volunteer(volunteer("v1"), at=NOW)
    await store.put_volunteer(volunteer("v2", name="王芳"), at=NOW)
    await store.set_availability("v1", "available", NOW)
    await store.add_token("v1", "hash-v1", NOW)
    await store.commit(
        "incident.created", NOW, [full_incident("i9"), incident(), assignment()], actor="op"
    )
    await store.commit(
        "assignment.completed",
        NOW,
        [assignment("a9", "i9", "v2", S.COMPLETED, accepted_at=NOW + 1)],
        outbox=[("v2", {"type": "assignment.updated", "n": 1})],
        credit=Credit("v2", "a9", 8, 120.0),
    )
    for n in range(3):
        await store.enqueue("v1", {"type": "m", "n": n})
    await store.ack("v1", 1)
    await store.save_positions(
        snapshot([("v1", 37.3, 115.9, NOW, 6.0), ("v2", 37.4, 115.8, NOW, math.nan)])
    )


async def dump(store: Store) -> dict[str, Any]:
    positions = await store.load_positions()
    return {
        "volunteers": await store.list_volunteers(),
        "token": await store.volunteer_for_token("hash-v1"),
        "incidents": await store.list_incidents(),
        "assignments": [await store.get_assignment(a) for a in ("a1", "a9")],
        "live": await store.load_live(),
        "events": await store.events(),
        "points": [await store.points(v) for v in ("v1", "v2")],
        "seq": [await store.last_seq(v) for v in ("v1", "v2")],
        "pending": [await store.pending(v) for v in ("v1", "v2")],
        "positions": (
            positions.ids,
            positions.lat.tolist(),
            positions.lon.tolist(),
            positions.ts.tolist(),
            [None if math.isnan(a) else a for a in positions.accuracy_m.tolist()],
        ),
    }


@pytest.mark.asyncio
async def test_sqlite_a_restart_loses_nothing(db_path: Path) -> None:
    first = SqliteStore(db_path)
    await first.open()
    await fill(first)
    before = await dump(first)
    await first.close()

    second = SqliteStore(db_path)
    await second.open()
    after = await dump(second)
    await second.close()
    assert after == before
    assert after["seq"] == [3, 1]
    assert [s for s, _ in after["pending"][0]] == [2, 3]
    assert after["points"][1] == PointsRecord("v2", 8, 120.0, 1)


@pytest.mark.asyncio
async def test_sqlite_survives_sigkill_with_synchronous_normal(db_path: Path) -> None:
    child = textwrap.dedent(
        f"""
        import asyncio, os, signal, sys
        from dispatch.core.engine import Incident
        from dispatch.store.sqlite import SqliteStore

        async def main():
            store = SqliteStore(sys.argv[1], synchronous="NORMAL")
            await store.open()
            incident = Incident("i1", "fire", 37.3, 115.9, 2, None, "auto", {NOW!r}, {{1: 1}})
            seqs = await store.commit(
                "incident.created", {NOW!r}, [incident], outbox=[("v1", {{"type": "x"}})]
            )
            print(seqs, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint

        asyncio.run(main())
        """
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        child,
        str(db_path),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert out.decode().strip() == "[1]"
    assert db_path.with_name(db_path.name + "-wal").exists(), "the commit was only in the WAL"

    store = SqliteStore(db_path)
    await store.open()
    try:
        assert await store.get_incident("i1") == Incident(
            "i1", "fire", 37.3, 115.9, 2, None, "auto", NOW, {1: 1}
        )
        assert await store.pending("v1") == [(1, {"type": "x"})]
        assert [e.event for e in await store.events()] == ["incident.created"]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_sqlite_pragmas(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await store.open()
    try:
        db = store._db()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL, the default
        assert db.execute("PRAGMA user_version").fetchone()[0] == latest_version()
    finally:
        await store.close()
    with sqlite3.connect(db_path) as other:  # WAL is a property of the file
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    normal = SqliteStore(db_path, synchronous="NORMAL")
    await normal.open()
    try:
        assert normal._db().execute("PRAGMA synchronous").fetchone()[0] == 1
    finally:
        await normal.close()
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(db_path, synchronous="SOMETIMES")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_sqlite_a_lower_layer_failure_mid_commit_is_a_store_error_and_rolls_back(
    db_path: Path,
) -> None:
    store = SqliteStore(db_path)
    await store.open()
    try:
        # Another connection plants a trigger that fails the outbox insert: the records and
        # the seq counter were already written inside the transaction when it fires.
        with sqlite3.connect(db_path) as other:
            other.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON outbox"
                " BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END"
            )
        other.close()
        with pytest.raises(StoreError, match="simulated disk failure") as caught:
            await store.commit(
                "incident.created",
                NOW,
                [incident(), assignment()],
                outbox=[("v1", {"type": "assignment.offered"})],
                credit=Credit("v1", "a1", 5, 60.0),
            )
        assert isinstance(caught.value.__cause__, sqlite3.Error)
        await nothing_changed(store)
        with sqlite3.connect(db_path) as other:
            other.execute("DROP TRIGGER boom")
        other.close()
        assert await store.commit("x", NOW, [incident()], outbox=[("v1", {"type": "y"})]) == [1]
    finally:
        await store.close()


def step(version: int, *statements: str) -> Migration:
    return Migration(version, f"test step {version}", statements)


@pytest.mark.asyncio
async def test_sqlite_migrates_an_older_file_step_by_step(db_path: Path) -> None:
    # A file written by "the previous release" (the shipped history)...
    old = SqliteStore(db_path)
    await old.open()
    await fill(old)
    before = await dump(old)
    await old.close()
    # ...opened by "the next one", which appends two steps.
    history = (
        *MIGRATIONS,
        step(len(MIGRATIONS) + 1, "ALTER TABLE incidents ADD COLUMN township TEXT"),
        step(len(MIGRATIONS) + 2, "CREATE INDEX incidents_by_township ON incidents (township)"),
    )
    new = SqliteStore(db_path, migrations=history)
    await new.open()
    try:
        assert await dump(new) == before
        assert new._db().execute("PRAGMA user_version").fetchone()[0] == len(history)
        columns = [row[1] for row in new._db().execute("PRAGMA table_info(incidents)")]
        assert "township" in columns
        await new.ping()
    finally:
        await new.close()
    # Opening again applies nothing twice.
    again = SqliteStore(db_path, migrations=history)
    await again.open()
    await again.close()


@pytest.mark.asyncio
async def test_sqlite_a_failing_step_is_rolled_back_whole(db_path: Path) -> None:
    old = SqliteStore(db_path)
    await old.open()
    await old.commit("incident.created", NOW, [incident()])
    await old.close()
    version = latest_version()
    broken = (
        *MIGRATIONS,
        step(version + 1, "CREATE TABLE half (x)", "THIS IS NOT SQL"),
    )
    with pytest.raises(StoreError) as caught:
        await SqliteStore(db_path, migrations=broken).open()
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA user_version").fetchone()[0] == version
        tables = {row[0] for row in other.execute("SELECT name FROM sqlite_master")}
    other.close()
    assert "half" not in tables, "the step's first statement was rolled back with it"
    store = SqliteStore(db_path)
    await store.open()
    try:
        assert await store.get_incident("i1") == incident()
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_sqlite_refuses_a_newer_schema(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await store.open()
    await store.close()
    with sqlite3.connect(db_path) as other:
        other.execute(f"PRAGMA user_version = {latest_version() + 1}")
    other.close()
    with pytest.raises(StoreError, match="newer"):
        await SqliteStore(db_path).open()
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA user_version").fetchone()[0] == latest_version() + 1
    other.close()


@pytest.mark.asyncio
async def test_sqlite_a_new_file_gets_the_whole_schema(db_path: Path) -> None:
    assert not db_path.parent.exists()
    store = SqliteStore(db_path)
    await store.open()
    await store.open()
    await store.close()
    with sqlite3.connect(db_path) as other:
        tables = {row[0] for row in other.execute("SELECT name FROM sqlite_master")}
    other.close()
    assert {
        "volunteers",
        "tokens",
        "incidents",
        "assignments",
        "events",
        "credits",
        "outbox_seqs",
        "outbox",
        "positions",
    } <= tables


@pytest.mark.asyncio
@pytest.mark.parametrize("broken", ["corrupt file", "path under a file", "path is a directory"])
async def test_sqlite_an_unusable_path_is_a_store_error(tmp_path: Path, broken: str) -> None:
    if broken == "corrupt file":
        path = tmp_path / DEFAULT_FILENAME
        path.write_bytes(b"this is not an sqlite database, just bytes " * 100)
    elif broken == "path under a file":
        (tmp_path / "plain").write_text("a file, not a folder")
        path = tmp_path / "plain" / DEFAULT_FILENAME
    else:
        path = tmp_path / "folder"
        path.mkdir()
    store = SqliteStore(path)
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert isinstance(caught.value.__cause__, sqlite3.Error | OSError)
    with pytest.raises(StoreError, match="not open"):
        await store.ping()


def test_create_store_builds_the_named_backend(tmp_path: Path) -> None:
    sqlite_store = create_store("sqlite", data_dir=tmp_path / "var")
    assert isinstance(sqlite_store, SqliteStore)
    assert sqlite_store.path == tmp_path / "var" / "dispatch.sqlite3"
    assert sqlite_store.synchronous == "FULL"
    normal = create_store("sqlite", data_dir=tmp_path, synchronous="NORMAL")
    assert isinstance(normal, SqliteStore)
    assert normal.synchronous == "NORMAL"
    assert isinstance(create_store("memory"), MemoryStore)
    with pytest.raises(InvalidInput, match="store"):
        create_store("postgres")
