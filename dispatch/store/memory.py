"""The ephemeral store: plain dicts in this process (tests, demos, ``DISPATCH_STORE=memory``).

Theory of operation
-------------------
Same protocol, same rules, same contract suite as the durable backends; only durability
differs: everything lives in this object and is gone with it. A new :class:`MemoryStore` is
empty, and nothing copies one store into another; closing and re-opening the *same* object
keeps its data (it only flips the open flag, so the lifecycle rules, "every method raises
``StoreError`` unless open", are the same as sqlite's).

To behave exactly like a database, the store keeps what a database would: incidents,
assignments, outbox messages and log payloads as the JSON text of :mod:`dispatch.store.codec`,
decoded into fresh objects on every read. The engine mutates its records in place; a store
holding the caller's objects would "see" changes nobody committed.

**Atomicity.** :meth:`MemoryStore.commit_many` (and so :meth:`MemoryStore.commit`) works in
two phases: first it encodes everything and checks the rules against a *staged* overlay of
the changes (a ``_Stage``: each record sees the ones before it, across entries); only when
all of that passed does it apply the stage with plain dict assignments that cannot fail.
An exception in the first phase leaves the store untouched. There is no concurrency to
guard: the methods never await, so on one event loop each runs to completion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from dispatch.core.engine import Assignment, Credit, Incident
from dispatch.core.states import AssignmentState
from dispatch.errors import Conflict, NotFound, StoreError
from dispatch.store.base import (
    Commit,
    EventRecord,
    PointsRecord,
    RecordKind,
    VolunteerRecord,
    check_ack_seq,
    check_assignment_write,
    check_availability,
    check_limit,
    check_snapshot,
    holds,
    log_time,
)
from dispatch.store.codec import (
    EncodedCommit,
    decode_assignment,
    decode_incident,
    decode_message,
    dumps,
    encode_commit,
    encode_message,
    encode_volunteer,
    loads,
)
from units.index import PositionSnapshot

__all__ = ["MemoryStore"]


@dataclass(frozen=True, slots=True)
class _IncidentRow:
    text: str
    state: str
    created_at: float


@dataclass(frozen=True, slots=True)
class _AssignmentRow:
    text: str
    incident_id: str
    volunteer_id: str
    state: AssignmentState
    offered_at: float


@dataclass(frozen=True, slots=True)
class _EventRow:
    id: int
    event: str
    at: float
    actor: str | None
    kind: RecordKind | None
    record_id: str | None
    payload: str


@dataclass(slots=True)
class _Stage:
    """What a :meth:`MemoryStore.commit_many` will change, checked but not yet applied."""

    incidents: dict[str, _IncidentRow] = field(default_factory=dict)
    assignments: dict[str, _AssignmentRow] = field(default_factory=dict)
    held: dict[str, str | None] = field(default_factory=dict)  # None: holds nothing now
    credits: dict[str, Credit] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    messages: list[tuple[str, int, str]] = field(default_factory=list)
    events: list[_EventRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Fix:
    lat: float
    lon: float
    ts: float
    accuracy_m: float


class MemoryStore:
    """The :class:`~dispatch.store.base.Store` in plain dicts; not durable."""

    name: Final = "memory"

    def __init__(self) -> None:
        self._open = False
        self._volunteers: dict[str, VolunteerRecord] = {}
        self._tokens: dict[str, str] = {}  # hash -> volunteer id
        self._incidents: dict[str, _IncidentRow] = {}
        self._assignments: dict[str, _AssignmentRow] = {}
        self._held: dict[str, str] = {}  # volunteer id -> open or active assignment id
        self._events: list[_EventRow] = []
        self._credits: dict[str, Credit] = {}  # assignment id -> credit
        self._seqs: dict[str, int] = {}  # volunteer id -> last seq
        self._outbox: dict[str, dict[int, str]] = {}  # volunteer id -> seq -> message text
        self._positions: dict[str, _Fix] = {}

    def __repr__(self) -> str:
        return f"MemoryStore({'open' if self._open else 'closed'})"

    # --------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Mark the store open (there is nothing to connect to). Idempotent."""
        self._open = True

    async def close(self) -> None:
        """Mark the store closed; the data stays in this object. Idempotent."""
        self._open = False

    async def ping(self) -> None:
        """Raises:
        StoreError: the store is not open.
        """
        self._check_open()

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("memory store is not open")

    def _log(
        self,
        event: str,
        at: float,
        actor: str | None,
        kind: RecordKind | None,
        record_id: str | None,
        payload_text: str,
    ) -> None:
        event_id = len(self._events) + 1
        self._events.append(
            _EventRow(event_id, event, float(at), actor, kind, record_id, payload_text)
        )

    # ------------------------------------------------------------------ roster

    async def put_volunteer(
        self, record: VolunteerRecord, *, at: float | None = None, actor: str | None = None
    ) -> bool:
        """Create or replace a volunteer (see :class:`~dispatch.store.base.Store`).

        Raises:
            InvalidInput: ``record.availability`` is not a choosable one.
            StoreError: the store is not open, or the record cannot be encoded.
        """
        self._check_open()
        check_availability(record.availability)
        data = encode_volunteer(record)
        stored = self._volunteers.get(record.id)
        if stored is not None:
            data["availability"] = stored.availability
        payload = dumps({"volunteer": data}, "event payload")
        self._volunteers[record.id] = VolunteerRecord(
            id=record.id,
            name=record.name,
            unit_id=record.unit_id,
            roles=tuple(data["roles"]),
            teams=tuple(data["teams"]),
            mode=record.mode,
            phone=record.phone,
            availability=data["availability"],
        )
        event = "volunteer.created" if stored is None else "volunteer.replaced"
        self._log(event, log_time(at), actor, "volunteer", record.id, payload)
        return stored is None

    async def get_volunteer(self, volunteer_id: str) -> VolunteerRecord | None:
        """The volunteer, or None.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        return self._volunteers.get(volunteer_id)

    async def list_volunteers(self) -> list[VolunteerRecord]:
        """Every volunteer, by id.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        return [self._volunteers[v] for v in sorted(self._volunteers)]

    async def set_availability(
        self, volunteer_id: str, status: str, at: float, *, actor: str | None = None
    ) -> None:
        """Record a chosen availability.

        Raises:
            InvalidInput: ``status`` is not ``available`` or ``off_duty``.
            NotFound: unknown volunteer.
            StoreError: the store is not open.
        """
        self._check_open()
        status = check_availability(status)
        stored = self._volunteers.get(volunteer_id)
        if stored is None:
            raise NotFound(f"no volunteer {volunteer_id!r}")
        payload = dumps({"status": status}, "event payload")
        self._volunteers[volunteer_id] = VolunteerRecord(
            id=stored.id,
            name=stored.name,
            unit_id=stored.unit_id,
            roles=stored.roles,
            teams=stored.teams,
            mode=stored.mode,
            phone=stored.phone,
            availability=status,
        )
        self._log("volunteer.availability", at, actor, "volunteer", volunteer_id, payload)

    # ------------------------------------------------------------------ tokens

    async def add_token(self, volunteer_id: str, token_hash: str, at: float) -> None:
        """Remember a token hash for the volunteer.

        Raises:
            NotFound: unknown volunteer.
            Conflict: the hash belongs to another volunteer.
            StoreError: the store is not open.
        """
        self._check_open()
        if volunteer_id not in self._volunteers:
            raise NotFound(f"no volunteer {volunteer_id!r}")
        owner = self._tokens.get(token_hash)
        if owner is not None:
            if owner != volunteer_id:
                raise Conflict("this token hash is already issued to another volunteer")
            return
        self._tokens[token_hash] = volunteer_id
        self._log("volunteer.token_added", at, None, "volunteer", volunteer_id, "{}")

    async def volunteer_for_token(self, token_hash: str) -> str | None:
        """The volunteer the hash was issued to, or None.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        return self._tokens.get(token_hash)

    # ------------------------------------------------------ incidents, assignments

    async def commit(
        self,
        event: str,
        at: float,
        records: Sequence[Incident | Assignment],
        *,
        actor: str | None = None,
        outbox: Sequence[tuple[str, dict[str, Any]]] = (),
        credit: Credit | None = None,
    ) -> list[int]:
        """One atomic write (see :meth:`dispatch.store.base.Store.commit`).

        Raises:
            NotFound: an assignment's incident does not exist.
            IllegalTransition: an assignment's stored state does not allow its new state.
            Conflict: a volunteer would hold two open or active assignments.
            StoreError: the store is not open, or a record or message cannot be encoded.
        """
        entry = Commit(event, at, records, actor=actor, outbox=outbox, credit=credit)
        return (await self.commit_many([entry]))[0]

    async def commit_many(self, entries: Sequence[Commit]) -> list[list[int]]:
        """Several commits, all or none (see :meth:`dispatch.store.base.Store.commit_many`).

        Raises:
            NotFound, IllegalTransition, Conflict: a rule is broken (nothing is applied).
            StoreError: the store is not open, or a record or message cannot be encoded.
        """
        self._check_open()
        # Phase 1: encode, check and stage; nothing of the store changes.
        stage = _Stage()
        seqs = [self._stage_commit(stage, encode_commit(entry)) for entry in entries]
        # Phase 2: apply; plain dict assignments, nothing here can fail.
        self._incidents.update(stage.incidents)
        self._assignments.update(stage.assignments)
        for volunteer_id, holder in stage.held.items():
            if holder is None:
                self._held.pop(volunteer_id, None)
            else:
                self._held[volunteer_id] = holder
        self._credits.update(stage.credits)
        for volunteer_id, seq, text in stage.messages:
            self._seqs[volunteer_id] = seq
            self._outbox.setdefault(volunteer_id, {})[seq] = text
        self._events.extend(stage.events)
        return seqs

    def _stage_commit(self, stage: _Stage, entry: EncodedCommit) -> list[int]:
        for encoded in entry.records:
            record = encoded.record
            if isinstance(record, Incident):
                stage.incidents[record.id] = _IncidentRow(
                    encoded.text, record.state, float(record.created_at)
                )
            else:
                self._stage_assignment(stage, entry.event, record, encoded.text)
        applied = False
        credit = entry.credit
        if credit is not None and not (
            credit.assignment_id in self._credits or credit.assignment_id in stage.credits
        ):
            stage.credits[credit.assignment_id] = credit
            applied = True
        seqs = []
        for message in entry.messages:
            seq = stage.seqs.get(message.volunteer_id, self._seqs.get(message.volunteer_id, 0))
            stage.seqs[message.volunteer_id] = seq + 1
            stage.messages.append((message.volunteer_id, seq + 1, message.text))
            seqs.append(seq + 1)
        kind, record_id = entry.subject
        stage.events.append(
            _EventRow(
                len(self._events) + len(stage.events) + 1,
                entry.event,
                entry.at,
                entry.actor,
                kind,
                record_id,
                entry.log_payload(seqs, applied),
            )
        )
        return seqs

    def _stage_assignment(
        self, stage: _Stage, event: str, assignment: Assignment, text: str
    ) -> None:
        """Check one assignment against the store plus what is staged, and stage it."""

        def holder(volunteer_id: str) -> str | None:
            if volunteer_id in stage.held:
                return stage.held[volunteer_id]
            return self._held.get(volunteer_id)

        previous = stage.assignments.get(assignment.id) or self._assignments.get(assignment.id)
        check_assignment_write(
            event,
            assignment,
            incident_exists=assignment.incident_id in stage.incidents
            or assignment.incident_id in self._incidents,
            stored_state=None if previous is None else previous.state,
            held_by=holder(assignment.volunteer_id),
        )
        if previous is not None and holder(previous.volunteer_id) == assignment.id:
            stage.held[previous.volunteer_id] = None
        if holds(assignment.state):
            stage.held[assignment.volunteer_id] = assignment.id
        stage.assignments[assignment.id] = _AssignmentRow(
            text,
            assignment.incident_id,
            assignment.volunteer_id,
            assignment.state,
            float(assignment.offered_at),
        )

    async def get_incident(self, incident_id: str) -> Incident | None:
        """The incident (a fresh object), or None.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        row = self._incidents.get(incident_id)
        return None if row is None else decode_incident(loads(row.text, "incident"))

    async def list_incidents(self, state: str | None = None) -> list[Incident]:
        """Incidents by creation time, optionally only those in ``state``.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        return [
            decode_incident(loads(row.text, "incident"))
            for _, row in sorted(
                (
                    ((row.created_at, incident_id), row)
                    for incident_id, row in self._incidents.items()
                    if state is None or row.state == state
                ),
                key=lambda item: item[0],
            )
        ]

    async def get_assignment(self, assignment_id: str) -> Assignment | None:
        """The assignment (a fresh object), or None.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        row = self._assignments.get(assignment_id)
        return None if row is None else decode_assignment(loads(row.text, "assignment"))

    def _assignments_where(self, incident_ids: set[str]) -> list[Assignment]:
        rows = sorted(
            (
                (row.offered_at, assignment_id, row)
                for assignment_id, row in self._assignments.items()
                if row.incident_id in incident_ids
            ),
            key=lambda item: (item[0], item[1]),
        )
        return [decode_assignment(loads(row.text, "assignment")) for _, _, row in rows]

    async def assignments_of(self, incident_id: str) -> list[Assignment]:
        """The incident's assignments by offer time.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        return self._assignments_where({incident_id})

    async def load_live(self) -> tuple[list[Incident], list[Assignment]]:
        """Open incidents and all their assignments.

        Raises:
            StoreError: the store is not open.
        """
        incidents = await self.list_incidents("open")
        return incidents, self._assignments_where({i.id for i in incidents})

    async def events(self, *, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        """Log entries after ``after``, oldest first.

        Raises:
            InvalidInput: ``limit`` is not positive.
            StoreError: the store is not open.
        """
        self._check_open()
        limit = check_limit(limit)
        start = max(0, int(after))  # ids are 1, 2, ...: entry ``id`` is at index id - 1
        return [
            EventRecord(
                row.id,
                row.event,
                row.at,
                row.actor,
                row.kind,
                row.record_id,
                loads(row.payload, "event payload"),
            )
            for row in self._events[start : start + limit]
        ]

    # ------------------------------------------------------------------ points

    async def points(self, volunteer_id: str) -> PointsRecord:
        """The volunteer's account.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        mine = [c for c in self._credits.values() if c.volunteer_id == volunteer_id]
        return PointsRecord(
            volunteer_id,
            sum(int(c.points) for c in mine),
            float(sum(float(c.service_seconds) for c in mine)),
            len(mine),
        )

    # ------------------------------------------------------------------ outbox

    async def enqueue(self, volunteer_id: str, message: dict[str, Any]) -> int:
        """Append a message to the volunteer's outbox; returns its seq.

        Raises:
            StoreError: the store is not open, or the message is not JSON-encodable.
        """
        self._check_open()
        text = encode_message(message)
        seq = self._seqs.get(volunteer_id, 0) + 1
        self._seqs[volunteer_id] = seq
        self._outbox.setdefault(volunteer_id, {})[seq] = text
        return seq

    async def pending(self, volunteer_id: str, since: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """Unacknowledged messages with seq > ``since``, in order.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        box = self._outbox.get(volunteer_id, {})
        return [(seq, decode_message(text)) for seq, text in box.items() if seq > since]

    async def ack(self, volunteer_id: str, seq: int) -> None:
        """Delete the volunteer's messages up to ``seq``.

        Raises:
            InvalidInput: ``seq`` is not an int.
            StoreError: the store is not open.
        """
        self._check_open()
        seq = check_ack_seq(seq)
        box = self._outbox.get(volunteer_id)
        if box:
            for delivered in [s for s in box if s <= seq]:
                del box[delivered]

    async def last_seq(self, volunteer_id: str) -> int:
        """The volunteer's newest seq, 0 if none.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        return self._seqs.get(volunteer_id, 0)

    # --------------------------------------------------------------- positions

    async def save_positions(self, snapshot: PositionSnapshot) -> None:
        """Upsert the last fixes, keeping a stored fix with a newer ``ts``.

        Raises:
            InvalidInput: the snapshot's columns differ in length or hold non-finite values.
            StoreError: the store is not open.
        """
        self._check_open()
        check_snapshot(snapshot)
        for volunteer_id, lat, lon, ts, acc in zip(
            snapshot.ids,
            np.asarray(snapshot.lat, dtype=np.float64).tolist(),
            np.asarray(snapshot.lon, dtype=np.float64).tolist(),
            np.asarray(snapshot.ts, dtype=np.float64).tolist(),
            np.asarray(snapshot.accuracy_m, dtype=np.float64).tolist(),
            strict=True,
        ):
            stored = self._positions.get(volunteer_id)
            if stored is None or ts >= stored.ts:
                self._positions[str(volunteer_id)] = _Fix(lat, lon, ts, acc)

    async def load_positions(self) -> PositionSnapshot:
        """Every stored fix, by volunteer id.

        Raises:
            StoreError: the store is not open.
        """
        self._check_open()
        ids = sorted(self._positions)
        fixes = [self._positions[v] for v in ids]
        return PositionSnapshot(
            ids=ids,
            lat=np.array([f.lat for f in fixes], dtype=np.float64),
            lon=np.array([f.lon for f in fixes], dtype=np.float64),
            ts=np.array([f.ts for f in fixes], dtype=np.float64),
            accuracy_m=np.array([f.accuracy_m for f in fixes], dtype=np.float64),
        )
