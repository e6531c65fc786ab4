"""The ``Store`` protocol: what the service keeps, and the rules every backend enforces.

Theory of operation
-------------------
The core (``dispatch.core``) decides; the store remembers. Everything the service must not
lose across a restart goes through one :class:`Store`: the roster (volunteers as ``PUT
/volunteers/{id}`` wrote them, plus their availability), token hashes, incidents and
assignments, the event log, points, each volunteer's outbox with its ``seq`` counter, and the
last position fix of each volunteer. Backends (``memory``, ``sqlite``; ``redis`` in a later
issue) implement the same protocol and pass the same contract suite
(``tests/test_store_contract.py``); nothing outside ``dispatch.store`` knows which one it has.

**One write, one transaction.** :meth:`Store.commit` is the only way incidents and
assignments change (:meth:`Store.commit_many` runs several commits in one transaction). In
one atomic step it upserts the records, applies an optional
:class:`~dispatch.core.engine.Credit`, enqueues outbox messages (returning their ``seq``) and
appends *one* entry to the event log. Either all of that happens or none of it does; a
failure raises and leaves the store as it was. This maps one engine
:class:`~dispatch.core.engine.Persist` (plus the ``Offer`` / ``Cancel`` / ``Notify`` /
``Credit`` commands that follow it) onto one write, so an announced offer is always a stored
one and a stored one is always announced (the message stays in the outbox until acked).

**Rules checked inside the transaction** (never read-then-write from outside; STYLE 6), in
record order, each record seeing the ones before it in the same commit
(:func:`check_assignment_write` is the one statement of them for the Python backends):

1. an assignment's incident must exist (stored, or earlier in the same commit):
   :class:`~dispatch.errors.NotFound`;
2. an assignment that exists may only stay in its stored state or move to a state that
   :data:`~dispatch.core.states.TRANSITIONS` can reach from it (:data:`REACHABLE`): never
   backwards, never out of a terminal state: :class:`~dispatch.errors.IllegalTransition`.
   Reachable rather than one step, because a record is written as it is *when committed*: if
   the service commits ``accepted`` after the engine already moved the same object on to
   ``on_scene``, the store receives ``offered -> on_scene``, which is late but not wrong;
3. a volunteer holds at most one assignment in ``offered``, ``accepted`` or ``on_scene``
   (DESIGN: "offer only if this volunteer holds no other open offer or assignment"):
   :class:`~dispatch.errors.Conflict`.

The engine already keeps these invariants in memory; the store keeps them again so that a
bug, a replayed request or (with Redis) a second server process can never persist a volunteer
holding two offers. Redis implements ``commit`` as one Lua script over keys that share one
hash tag (``{county}:...``): the checks above are a few ``HGET`` calls before the writes, the
outbox is a sorted set per volunteer scored by an ``INCR``-ed seq, the log is a stream
(``XADD``).

**Outbox.** ``seq`` is per volunteer, starts at 1, only grows and survives restarts
(the counter is stored, never derived from the messages). A message stays pending until the
volunteer acks it or a later seq; :meth:`Store.ack` deletes what it covers and is harmless for
a seq that is older than the last ack or beyond the newest one (it can never swallow a message
enqueued later). Messages are JSON objects: stored as JSON text and returned equal (so they
must be JSON-native: dicts, lists, strings, finite numbers, booleans, ``None``).

**Serialisation.** Incidents and assignments are the engine's dataclasses, encoded by
:mod:`dispatch.store.codec` (every field; enum as value; quota keys as ints; non-finite floats
kept exactly) and decoded to fresh objects: the engine mutates its objects in place, so a
store never hands back, nor keeps, a caller's object. A value that cannot be encoded raises
:class:`~dispatch.errors.StoreError` before anything is written.

**Errors.** Lower-layer errors (``sqlite3.Error``, ``OSError``, redis errors) become
:class:`~dispatch.errors.StoreError` at the backend's boundary with ``raise ... from exc``;
rule violations raise the engine's own ``NotFound`` / ``Conflict`` / ``IllegalTransition``;
bad arguments raise :class:`~dispatch.errors.InvalidInput`. Every method raises
``StoreError`` if the store is not open.

**Time.** Every write takes its time from the caller (``at``), never from a clock of its
own; the single exception is :meth:`Store.put_volunteer` called without ``at``, which stamps
its log entry with the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol, runtime_checkable

import numpy as np

from dispatch.core.engine import Assignment, Credit, Incident
from dispatch.core.states import TRANSITIONS, AssignmentState, is_active, is_open
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from units.index import PositionSnapshot

__all__ = [
    "AVAILABILITY",
    "REACHABLE",
    "Commit",
    "EventRecord",
    "PointsRecord",
    "RecordKind",
    "Store",
    "VolunteerRecord",
    "check_ack_seq",
    "check_assignment_write",
    "check_availability",
    "check_limit",
    "check_snapshot",
    "holds",
    "log_time",
]

#: The availability a volunteer (or an operator) may choose; ``busy`` is derived, never stored.
AVAILABILITY: Final = ("available", "off_duty")


def _reachable(state: AssignmentState) -> frozenset[AssignmentState]:
    seen = {state}
    todo = [state]
    while todo:
        for after in TRANSITIONS[todo.pop()].values():
            if after not in seen:
                seen.add(after)
                todo.append(after)
    return frozenset(seen)


#: For each state, the states an assignment in it may be stored in next: itself and every
#: state :data:`~dispatch.core.states.TRANSITIONS` reaches from it in one or more steps.
REACHABLE: Final[Mapping[AssignmentState, frozenset[AssignmentState]]] = MappingProxyType(
    {state: _reachable(state) for state in AssignmentState}
)

#: What an event-log entry is about.
RecordKind = Literal["incident", "assignment", "volunteer"]


@dataclass(frozen=True, slots=True)
class VolunteerRecord:
    """A volunteer of the roster, as ``PUT /volunteers/{id}`` wrote them, plus availability.

    ``availability`` is what the volunteer or an operator chose (``available`` / ``off_duty``);
    :meth:`Store.put_volunteer` uses it only when it creates the volunteer (a replace keeps the
    stored one), and :meth:`Store.set_availability` changes it. New volunteers start off duty,
    as in the live index.
    """

    id: str
    name: str
    unit_id: str | None
    roles: tuple[str, ...]
    teams: tuple[str, ...]
    mode: str
    phone: str | None = None
    availability: str = "off_duty"


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One entry of the event log.

    Attributes:
        id: position in the log; starts at 1 and only grows (ids are never reused).
        event: what happened: the engine's ``Persist.event`` (``assignment.offered``,
            ``assignment.declined``, ``incident.closed``, ...) or a roster event
            (``volunteer.created``, ``volunteer.replaced``, ``volunteer.availability``,
            ``volunteer.token_added``).
        at: when (epoch seconds), as the caller said.
        actor: who caused it, if known (a volunteer id, ``operator``, ...).
        kind: what the entry is about: the kind of the first record, or ``None``.
        record_id: the id of that record, or ``None``.
        payload: the details, JSON. For :meth:`Store.commit`: ``{"records": [{"kind",
            "data"}], "credit": {volunteer_id, assignment_id, points, service_seconds,
            applied} | None, "messages": [{"volunteer_id", "seq", "type"}]}`` where ``data``
            is the record as :mod:`dispatch.store.codec` encodes it (so the log says who was
            offered what, when, and how they answered). For roster events: ``{"volunteer":
            {...}}``, ``{"status": ...}`` or ``{}``. Token hashes are never logged.
    """

    id: int
    event: str
    at: float
    actor: str | None
    kind: RecordKind | None
    record_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Commit:
    """One entry of :meth:`Store.commit_many`: the arguments of :meth:`Store.commit`."""

    event: str
    at: float
    records: Sequence[Incident | Assignment] = ()
    actor: str | None = None
    outbox: Sequence[tuple[str, dict[str, Any]]] = ()
    credit: Credit | None = None


@dataclass(frozen=True, slots=True)
class PointsRecord:
    """A volunteer's account: points (积分), service time and completed assignments."""

    volunteer_id: str
    points: int = 0
    service_seconds: float = 0.0
    completed: int = 0


@runtime_checkable
class Store(Protocol):
    """Everything the service keeps; see the module docstring for the rules.

    All methods are coroutines and raise :class:`~dispatch.errors.StoreError` when the backend
    fails or the store is not open.
    """

    @property
    def name(self) -> str:
        """The backend: ``sqlite``, ``memory`` (later ``redis``); ``/healthz`` reports it."""
        ...

    # --------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Connect, create or migrate the schema. Idempotent.

        Raises:
            StoreError: the backend is unreachable, unwritable or corrupt, or its schema is
                newer than this code knows.
        """
        ...

    async def close(self) -> None:
        """Release the backend. Idempotent; a closed store may be opened again."""
        ...

    async def ping(self) -> None:
        """Check the backend answers.

        Raises:
            StoreError: it does not (or the store is not open).
        """
        ...

    # ------------------------------------------------------------------ roster

    async def put_volunteer(
        self, record: VolunteerRecord, *, at: float | None = None, actor: str | None = None
    ) -> bool:
        """Create or replace a volunteer; logs ``volunteer.created`` / ``volunteer.replaced``.

        A replace changes name, unit, roles, teams, mode and phone, and keeps the stored
        availability, tokens, points, outbox and seq.

        Args:
            record: the volunteer; ``availability`` is used only on creation.
            at: time of the log entry (default: the wall clock).
            actor: who did it, for the log.

        Returns:
            True if the volunteer was created, False if replaced.

        Raises:
            InvalidInput: ``record.availability`` is not ``available`` or ``off_duty``.
        """
        ...

    async def get_volunteer(self, volunteer_id: str) -> VolunteerRecord | None:
        """The volunteer, or None."""
        ...

    async def list_volunteers(self) -> list[VolunteerRecord]:
        """Every volunteer, by id."""
        ...

    async def set_availability(
        self, volunteer_id: str, status: str, at: float, *, actor: str | None = None
    ) -> None:
        """Record the volunteer's chosen availability; logs ``volunteer.availability``.

        Args:
            volunteer_id: the volunteer.
            status: ``available`` or ``off_duty``.
            at: when.
            actor: who did it, for the log.

        Raises:
            InvalidInput: ``status`` is not ``available`` or ``off_duty``.
            NotFound: unknown volunteer.
        """
        ...

    # ------------------------------------------------------------------ tokens

    async def add_token(self, volunteer_id: str, token_hash: str, at: float) -> None:
        """Remember a token hash for the volunteer (the app hashes; only hashes are stored).

        Adding the same hash for the same volunteer again is harmless; logs
        ``volunteer.token_added`` (without the hash).

        Raises:
            NotFound: unknown volunteer.
            Conflict: the hash belongs to another volunteer.
        """
        ...

    async def volunteer_for_token(self, token_hash: str) -> str | None:
        """The volunteer id the hash was issued to, or None."""
        ...

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
        """Atomically: upsert ``records`` in order, apply ``credit`` (once per assignment id),
        enqueue ``outbox`` messages, append one event-log entry.

        Args:
            event: the log's event name (the engine's ``Persist.event``).
            at: when (epoch seconds).
            records: incidents and assignments, written in order (an assignment's incident
                must be stored already or come earlier in the same list).
            actor: who caused it, for the log.
            outbox: ``(volunteer_id, message)`` pairs to enqueue, in order.
            credit: points and service time for a completed assignment; a second credit for
                the same assignment id is ignored (and logged as ``applied: false``).

        Returns:
            The seq of each outbox message, in order.

        Raises:
            NotFound: an assignment's incident does not exist.
            IllegalTransition: an assignment's stored state does not allow its new state.
            Conflict: a volunteer would hold two open or active assignments.
            StoreError: a record or message cannot be encoded, or the backend failed.
            In every case nothing of the commit is applied.
        """
        ...

    async def commit_many(self, entries: Sequence[Commit]) -> list[list[int]]:
        """Several commits as one transaction: each entry is applied as :meth:`commit` would
        (its own log entry, its records seeing those of the entries before it), and either
        all of them are or none is.

        The service may pass every ``Persist`` group of one engine call here: one durable
        write (one ``fsync`` with sqlite's ``synchronous=FULL``) instead of one per group.

        Args:
            entries: the commits, in order.

        Returns:
            The outbox seqs of each entry, in order.

        Raises:
            NotFound, IllegalTransition, Conflict, StoreError: as :meth:`commit`; nothing of
            any entry is applied.
        """
        ...

    async def get_incident(self, incident_id: str) -> Incident | None:
        """The incident (a fresh object), or None."""
        ...

    async def list_incidents(self, state: str | None = None) -> list[Incident]:
        """Incidents by creation time (then id), optionally only those in ``state``."""
        ...

    async def get_assignment(self, assignment_id: str) -> Assignment | None:
        """The assignment (a fresh object), or None."""
        ...

    async def assignments_of(self, incident_id: str) -> list[Assignment]:
        """The incident's assignments by offer time (then id); empty for an unknown incident."""
        ...

    async def load_live(self) -> tuple[list[Incident], list[Assignment]]:
        """Open incidents and all their assignments (every state), for
        :meth:`~dispatch.core.engine.DispatchCore.restore`, read as one snapshot."""
        ...

    async def events(self, *, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        """Log entries with ``id > after``, oldest first, at most ``limit``.

        Raises:
            InvalidInput: ``limit`` is not positive.
        """
        ...

    # ------------------------------------------------------------------ points

    async def points(self, volunteer_id: str) -> PointsRecord:
        """The volunteer's account (zeros for one never credited)."""
        ...

    # ------------------------------------------------------------------ outbox

    async def enqueue(self, volunteer_id: str, message: dict[str, Any]) -> int:
        """Append a message to the volunteer's outbox.

        Returns:
            Its seq: one more than the volunteer's previous one (1 for the first).

        Raises:
            StoreError: the message is not JSON-encodable, or the backend failed.
        """
        ...

    async def pending(self, volunteer_id: str, since: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """Unacknowledged messages with seq > ``since``, in seq order."""
        ...

    async def ack(self, volunteer_id: str, seq: int) -> None:
        """Everything up to ``seq`` is delivered: it is deleted and never pending again.

        Raises:
            InvalidInput: ``seq`` is not an int.
        """
        ...

    async def last_seq(self, volunteer_id: str) -> int:
        """The volunteer's newest seq (0 if none was ever given)."""
        ...

    # --------------------------------------------------------------- positions

    async def save_positions(self, snapshot: PositionSnapshot) -> None:
        """Upsert the last fix of each volunteer in ``snapshot``; a stored fix with a newer
        ``ts`` is kept (equal ``ts``: the new one wins, as in the live index).

        Raises:
            InvalidInput: the snapshot's columns differ in length.
        """
        ...

    async def load_positions(self) -> PositionSnapshot:
        """Every stored fix, by volunteer id (NaN accuracy: unknown)."""
        ...


# ------------------------------------------------------------ shared rule checks


def holds(state: AssignmentState) -> bool:
    """True if a volunteer in an assignment in ``state`` may not be offered another one."""
    return is_open(state) or is_active(state)


def check_assignment_write(
    event: str,
    new: Assignment,
    *,
    incident_exists: bool,
    stored_state: AssignmentState | None,
    held_by: str | None,
) -> None:
    """The commit rules for one assignment (module docstring), given what the store holds.

    Args:
        event: the commit's event name, for the error.
        new: the assignment about to be written.
        incident_exists: its incident is stored or written earlier in the same commit.
        stored_state: its current stored state, None if it is new.
        held_by: the id of the assignment its volunteer holds now (open or active), if any.

    Raises:
        NotFound: the incident does not exist.
        IllegalTransition: ``new.state`` is not reachable from ``stored_state``.
        Conflict: the volunteer already holds another open or active assignment.
    """
    if not incident_exists:
        raise NotFound(f"assignment {new.id}: no incident {new.incident_id!r}")
    if stored_state is not None and new.state not in REACHABLE[stored_state]:
        raise IllegalTransition(stored_state.value, event)
    if holds(new.state) and held_by is not None and held_by != new.id:
        raise Conflict(
            f"volunteer {new.volunteer_id} already holds assignment {held_by}; "
            f"cannot store {new.id} as {new.state.value}"
        )


def log_time(at: float | None) -> float:
    """``at``, or the wall clock when the caller gave no time (only :meth:`Store.put_volunteer`
    allows that: the roster's ``PUT`` is not an engine event with a ``now``)."""
    return time.time() if at is None else float(at)


def check_availability(status: object) -> str:
    """``status`` if it is a choosable availability.

    Raises:
        InvalidInput: it is not ``available`` or ``off_duty``.
    """
    if status not in AVAILABILITY:
        raise InvalidInput(
            f"availability must be 'available' or 'off_duty', got {status!r}", field="status"
        )
    return str(status)


def check_ack_seq(seq: object) -> int:
    """``seq`` as an int.

    Raises:
        InvalidInput: it is not an int (booleans are not).
    """
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidInput(f"seq must be an integer, got {seq!r}", field="seq")
    return seq


def check_limit(limit: object) -> int:
    """``limit`` of :meth:`Store.events` as a positive int.

    Raises:
        InvalidInput: it is not a positive int.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(f"limit must be a positive integer, got {limit!r}", field="limit")
    return limit


def check_snapshot(snapshot: PositionSnapshot) -> int:
    """The number of fixes in ``snapshot``.

    Raises:
        InvalidInput: its columns differ in length, or a lat, lon or ts is not finite (an
            accuracy may be NaN: unknown).
    """
    n = len(snapshot.ids)
    lengths = {len(snapshot.lat), len(snapshot.lon), len(snapshot.ts), len(snapshot.accuracy_m)}
    if lengths != {n}:
        raise InvalidInput(f"position snapshot columns differ in length: {n} ids, {lengths}")
    for name in ("lat", "lon", "ts"):
        if not np.isfinite(np.asarray(getattr(snapshot, name), dtype=np.float64)).all():
            raise InvalidInput(f"position snapshot: a {name} is not finite", field=name)
    return n
