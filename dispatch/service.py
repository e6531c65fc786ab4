"""The service: the sans-I/O core wired to a store, a hub and the clock.

Theory of operation
-------------------
:class:`Service` is the one object the API layer talks to. Every operation that changes
dispatch state runs under one ``asyncio.Lock``: ask the :class:`DispatchCore` (pure, fast),
then :meth:`Service.execute` the commands it returned, in order. Each ``Persist`` opens a
group with the commands that follow it (``Offer``, ``Cancel``, ``Notify``, ``Credit``); the
group is committed to the store in ONE transaction (records, event-log entry, the volunteer's
outbox messages, the points), and only then pushed to the hub. So a message a volunteer or
operator saw is always durable, and a crash between the two loses nothing: the outbox replays
it on reconnect.

Time comes from an injected :class:`~dispatch.core.clock.Clock`. The timer task sleeps until
the core's next deadline (at most a second, so widening and a FakeClock advanced through the
admin endpoint are noticed), then ticks the core. On start, the core is restored from the
store and ticked at once: offers that expired while the server was down are expired and
escalated immediately, and the remaining timers resume.

Positions go straight into the live index (no lock: the index is only touched from this event
loop); dirty volunteers are flushed to the store every ``position_flush_s`` and batched to the
operators' feed every ``feed_batch_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from dispatch.core.clock import Clock, FakeClock, SystemClock, to_iso
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
from dispatch.core.policy import Policy
from dispatch.core.ranking import Candidate
from dispatch.core.states import AssignmentEvent, next_state
from dispatch.errors import Conflict, InvalidInput, NotFound
from dispatch.gcpolicy import GcPolicy
from dispatch.hub import Hub, _dumps
from dispatch.metrics import Metrics
from dispatch.store.base import Commit, PointsRecord, Store, VolunteerRecord
from dispatch.wire import assignment_wire, incident_brief, incident_summary, incident_wire
from geo.coords import check_latlon
from geo.modes import Mode
from geo.travel import TravelModel
from simulations.coverage import Demand, Positions, coverage_report
from units.index import FixOutcome, LiveIndex, PositionSnapshot
from units.vocab import STATUS_NAMES, Role, Status, Team, mask_of

__all__ = ["Principal", "Service", "hash_token"]

log = logging.getLogger(__name__)

OPERATOR: Final = "operator"


def hash_token(token: str) -> str:
    """The stored form of a volunteer token (sha256 hex; tokens are 256-bit random)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an operator, or one volunteer."""

    volunteer_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.volunteer_id is None

    @property
    def actor(self) -> str:
        return OPERATOR if self.volunteer_id is None else self.volunteer_id

    def may_act_for(self, volunteer_id: str) -> bool:
        return self.volunteer_id is None or self.volunteer_id == volunteer_id


class Service:
    """The running engine: core, store, hub, clock, timers.

    Args:
        store: the durable store (opened by :meth:`start`).
        policy: the incident policy.
        model: the travel model.
        clock: the time source (a FakeClock in tests).
        operator_tokens: bearer tokens that act as operators.
        unit_ids: unit id per unit index (for candidates), and ``unit_points`` their
            positions (for "the unit nearest the incident").
        demand: villages for ``GET /coverage``.
    """

    def __init__(
        self,
        store: Store,
        policy: Policy,
        model: TravelModel,
        *,
        clock: Clock | None = None,
        operator_tokens: Sequence[str] = (),
        unit_ids: tuple[str, ...] = (),
        unit_lat: np.ndarray | None = None,
        unit_lon: np.ndarray | None = None,
        demand: Demand | None = None,
        position_flush_s: float = 1.0,
        feed_batch_s: float = 1.0,
        gc_full_every_s: float | None = None,
        gc_full_max_s: float = 3600.0,
    ) -> None:
        self.store = store
        self.policy = policy
        self.model = model
        self.clock: Clock = clock or SystemClock()
        self._operator_tokens = tuple(t.encode() for t in operator_tokens)
        self.unit_ids = unit_ids
        self._unit_of = {u: i for i, u in enumerate(unit_ids)}
        self._unit_lat = unit_lat
        self._unit_lon = unit_lon
        self.demand = demand
        self.index = LiveIndex(freshness_s=policy.freshness_s)
        self.core = DispatchCore(
            self.index,
            model,
            policy,
            nearest_unit=self._nearest_unit,
            unit_ids=unit_ids,
        )
        self.metrics = Metrics()
        #: The process's garbage-collector schedule (dispatch/gcpolicy.py); None leaves the
        #: collector as Python set it.
        self.gc_policy = (
            None
            if gc_full_every_s is None
            else GcPolicy(
                full_every_s=gc_full_every_s,
                full_max_s=gc_full_max_s,
                on_pause=self.metrics.observe_gc,
            )
        )
        self.hub = Hub(on_change=self.metrics.set_connected)
        self.lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._dirty: set[int] = set()
        self._flush_wanted = asyncio.Event()
        self._batch_done: asyncio.Future[None] | None = None  # created in the running loop
        self._feed_dirty: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._position_flush_s = position_flush_s
        self._feed_batch_s = feed_batch_s
        self.started = False

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Open the store, rebuild the in-memory state, expire what expired, start timers."""
        await self.store.open()
        for record in await self.store.list_volunteers():
            self._index_volunteer(record)
        snapshot = await self.store.load_positions()
        now = self.clock.now()
        for i, volunteer_id in enumerate(snapshot.ids):
            if volunteer_id in self.index:
                self.index.update(
                    self.index.slot(volunteer_id),
                    float(snapshot.lat[i]),
                    float(snapshot.lon[i]),
                    float(snapshot.ts[i]),
                    max(now, float(snapshot.ts[i])),
                    float(snapshot.accuracy_m[i]),
                )
        incidents, assignments = await self.store.load_live()
        self.core.restore(incidents, assignments)
        async with self.lock:
            await self.execute(self.core.tick(self.clock.now()))
        if self.gc_policy is not None:
            self.gc_policy.install(self.clock.now())
        self._tasks = [
            asyncio.create_task(self._timer(), name="dispatch-timer"),
            asyncio.create_task(self._flush_positions(), name="position-flush"),
            asyncio.create_task(self._feed_positions(), name="position-feed"),
        ]
        self.started = True

    async def stop(self) -> None:
        """Stop timers, flush positions, close connections and the store."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            await self._flush_dirty()
        await self.hub.close()
        await self.store.close()
        if self.gc_policy is not None:
            self.gc_policy.uninstall()
        self.started = False

    def wake(self) -> None:
        """Make the timer task look at the clock now (after a FakeClock moved)."""
        self._wake.set()

    # ------------------------------------------------------------------ auth

    async def authenticate(self, token: str | None) -> Principal | None:
        """The principal for a bearer token, or None. Operator tokens compare in constant
        time; volunteer tokens are looked up by their hash."""
        if not token:
            return None
        candidate = token.encode()
        operator = False
        for known in self._operator_tokens:
            operator |= secrets.compare_digest(candidate, known)
        if operator:
            return Principal()
        volunteer_id = await self.store.volunteer_for_token(hash_token(token))
        return None if volunteer_id is None else Principal(volunteer_id)

    async def issue_token(self, volunteer_id: str) -> str:
        """A new volunteer token; only its hash is stored.

        Raises:
            NotFound: unknown volunteer.
        """
        token = secrets.token_urlsafe(32)
        await self.store.add_token(volunteer_id, hash_token(token), self.clock.now())
        return token

    # ---------------------------------------------------------------- roster

    def _index_volunteer(self, record: VolunteerRecord) -> None:
        self.index.add(
            record.id,
            mode=Mode.parse(record.mode),
            roles=mask_of(Role, record.roles),
            teams=mask_of(Team, record.teams),
            unit=self._unit_of.get(record.unit_id or "", -1),
        )
        status = Status.AVAILABLE if record.availability == "available" else Status.OFF_DUTY
        self.core.set_availability(record.id, status, self.clock.now())

    async def put_volunteer(self, record: VolunteerRecord) -> tuple[VolunteerRecord, bool]:
        """Create or replace a volunteer (``PUT /volunteers/{id}``).

        Raises:
            InvalidInput: a role, team or mode outside the vocabulary.
        """
        try:
            mask_of(Role, record.roles)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="roles") from exc
        try:
            mask_of(Team, record.teams)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="teams") from exc
        try:
            Mode.parse(record.mode)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="mode") from exc
        async with self.lock:
            created = await self.store.put_volunteer(record, at=self.clock.now(), actor=OPERATOR)
            stored = await self.store.get_volunteer(record.id)
            assert stored is not None
            self._index_volunteer(stored)
        return stored, created

    async def volunteer(self, volunteer_id: str) -> VolunteerRecord:
        record = await self.store.get_volunteer(volunteer_id)
        if record is None:
            raise NotFound(f"no volunteer {volunteer_id!r}")
        return record

    def volunteer_status(self, volunteer_id: str) -> str:
        slot = self.index.slot(volunteer_id)
        return Status(int(self.index.status[slot])).wire

    def volunteer_position(self, volunteer_id: str) -> dict[str, Any] | None:
        slot = self.index.slot(volunteer_id)
        ts = float(self.index.fix_ts[slot])
        if math.isnan(ts):
            return None
        accuracy = float(self.index.accuracy_m[slot])
        return {
            "lat": float(self.index.lat[slot]),
            "lon": float(self.index.lon[slot]),
            "ts": to_iso(ts),
            "accuracy_m": None if math.isnan(accuracy) else accuracy,
        }

    async def set_availability(self, volunteer_id: str, status: str, actor: str) -> None:
        """The volunteer's or an operator's choice: ``available`` or ``off_duty``.

        Raises:
            NotFound: unknown volunteer.
            InvalidInput: any other status.
        """
        if status not in ("available", "off_duty"):
            raise InvalidInput("status must be 'available' or 'off_duty'", field="status")
        async with self.lock:
            await self.store.set_availability(volunteer_id, status, self.clock.now(), actor=actor)
            self.core.set_availability(
                volunteer_id,
                Status.AVAILABLE if status == "available" else Status.OFF_DUTY,
                self.clock.now(),
            )
            self._feed_dirty.add(self.index.slot(volunteer_id))

    async def points(self, volunteer_id: str) -> PointsRecord:
        await self.volunteer(volunteer_id)
        return await self.store.points(volunteer_id)

    # ------------------------------------------------------------- positions

    def ingest(
        self, fixes: Sequence[tuple[str, float, float, float, float]]
    ) -> tuple[int, list[tuple[int, str]]]:
        """Apply validated fixes ``(volunteer_id, lat, lon, ts, accuracy_m)`` in order.

        Returns:
            ``(accepted, [(index, reason), ...])`` with the contract's reasons.
        """
        now = self.clock.now()
        accepted = 0
        rejected: list[tuple[int, str]] = []
        slots = self.index.slots_of(f[0] for f in fixes)
        for i, ((_, lat, lon, ts, accuracy), slot) in enumerate(
            zip(fixes, slots.tolist(), strict=True)
        ):
            outcome = self.index.update(slot, lat, lon, ts, now, accuracy)
            if outcome is FixOutcome.ACCEPTED:
                accepted += 1
                self._dirty.add(slot)
                self._feed_dirty.add(slot)
            else:
                rejected.append((i, outcome.wire))
        self.metrics.fixes(accepted, len(rejected))
        return accepted, rejected

    def ingest_one(
        self, volunteer_id: str, lat: float, lon: float, ts: float, accuracy_m: float
    ) -> FixOutcome:
        """:meth:`ingest` for one validated fix (a websocket position message), without the
        batch machinery: one dict lookup, one index update, plain counters."""
        slot = self.index.slot_or_unknown(volunteer_id)
        outcome = self.index.update(slot, lat, lon, ts, self.clock.now(), accuracy_m)
        if outcome is FixOutcome.ACCEPTED:
            self._dirty.add(slot)
            self._feed_dirty.add(slot)
            self.metrics.fix_accepted()
        else:
            self.metrics.fix_rejected()
        return outcome

    def durable(self) -> asyncio.Future[None]:
        """A future resolved once every fix ingested so far is in the store.

        Group commit: fixes accumulate in the current batch; the flush task writes the whole
        batch in one transaction, then resolves the batch's future. ``POST /positions``
        answers only after its batch is durable, so an accepted fix survives a crash, and
        2,000 fixes/s cost a few transactions a second, not 2,000.
        """
        self._flush_wanted.set()
        if self._batch_done is None:
            self._batch_done = asyncio.get_running_loop().create_future()
        return self._batch_done

    async def _flush_dirty(self) -> None:
        done = self._batch_done
        self._batch_done = None
        if not self._dirty:
            if done is not None and not done.done():
                done.set_result(None)
            return
        slots = np.fromiter(sorted(self._dirty), dtype=np.intp)
        self._dirty.clear()
        snapshot = PositionSnapshot(
            ids=[self.index.ids[s] for s in slots.tolist()],
            lat=self.index.lat[slots].copy(),
            lon=self.index.lon[slots].copy(),
            ts=self.index.fix_ts[slots].copy(),
            accuracy_m=self.index.accuracy_m[slots].copy(),
        )
        try:
            await self.store.save_positions(snapshot)
        except Exception as exc:
            self._dirty.update(slots.tolist())  # retried with the next batch
            if done is not None and not done.done():
                done.set_exception(exc)
            raise
        if done is not None and not done.done():
            done.set_result(None)

    async def _flush_positions(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_wanted.wait(), self._position_flush_s)
            self._flush_wanted.clear()
            await asyncio.sleep(0.005)  # gather the fixes arriving together into one commit
            try:
                await self._flush_dirty()
            except Exception:  # keep flushing; the next round retries
                log.exception("saving positions failed")

    async def _feed_positions(self) -> None:
        while True:
            await asyncio.sleep(self._feed_batch_s)
            if not self._feed_dirty or not self.hub.operators_connected:
                continue
            # Columns gathered once (an attribute read per slot costs a numpy view), and the
            # items built in slices with a yield between them: a whole county's batch would
            # otherwise hold the event loop for tens of milliseconds every second.
            slots = np.fromiter(sorted(self._feed_dirty), dtype=np.intp)
            self._feed_dirty.clear()
            ids = self.index.ids
            lat = self.index.lat[slots].tolist()
            lon = self.index.lon[slots].tolist()
            fix_ts = self.index.fix_ts[slots].tolist()
            status = self.index.status[slots].tolist()
            items: list[dict[str, Any]] = []
            for k, slot in enumerate(slots.tolist()):
                ts = fix_ts[k]
                fixed = not math.isnan(ts)
                items.append(
                    {
                        "volunteer_id": ids[slot],
                        "lat": lat[k] if fixed else None,
                        "lon": lon[k] if fixed else None,
                        "ts": to_iso(ts) if fixed else None,
                        "status": STATUS_NAMES[status[k]],
                    }
                )
                if k % 256 == 255:
                    await asyncio.sleep(0)
            self.hub.publish({"type": "positions", "items": items}, droppable=True)

    # ------------------------------------------------------------- incidents

    async def create_incident(
        self,
        type_: str,
        lat: float,
        lon: float,
        *,
        severity: int,
        note: str | None,
        dispatch: str,
    ) -> Incident:
        started = time.perf_counter()
        async with self.lock:
            incident, commands = self.core.create_incident(
                type_,
                lat,
                lon,
                self.clock.now(),
                severity=severity,
                note=note,
                dispatch="manual" if dispatch == "manual" else "auto",
            )
            await self.execute(commands)
        self.metrics.observe_dispatch(time.perf_counter() - started)
        return incident

    def incident(self, incident_id: str) -> Incident:
        return self.core.incident(incident_id)

    async def stored_incident(self, incident_id: str) -> Incident:
        """An incident from memory if live, else from the store (closed ones)."""
        if incident_id in self.core.incidents:
            return self.core.incidents[incident_id]
        found = await self.store.get_incident(incident_id)
        if found is None:
            raise NotFound(f"no incident {incident_id!r}")
        return found

    async def incident_json(self, incident_id: str) -> dict[str, Any]:
        incident = await self.stored_incident(incident_id)
        if incident.id in self.core.incidents:
            return incident_wire(incident, self.core.incident_assignments(incident))
        return incident_wire(incident, await self.store.assignments_of(incident.id))

    async def list_incidents(self, state: str | None) -> list[dict[str, Any]]:
        if state == "open":
            return [
                incident_wire(i, self.core.incident_assignments(i))
                for i in sorted(self.core.incidents.values(), key=lambda i: i.created_at)
                if i.state == "open"
            ]
        return [
            await self.incident_json(incident.id)
            for incident in await self.store.list_incidents(state)
        ]

    def candidates(self, incident_id: str, limit: int, max_eta_s: float) -> list[Candidate]:
        return self.core.candidates(incident_id, self.clock.now(), limit=limit, max_eta_s=max_eta_s)

    async def _require_open(self, incident_id: str) -> None:
        """NotFound for an unknown incident, Conflict for one closed (and archived)."""
        if incident_id not in self.core.incidents:
            await self.stored_incident(incident_id)
            raise Conflict(f"incident {incident_id} is closed")

    async def offer(self, incident_id: str, volunteer_ids: Sequence[str]) -> list[Assignment]:
        async with self.lock:
            await self._require_open(incident_id)
            assignments, commands = self.core.offer(incident_id, volunteer_ids, self.clock.now())
            await self.execute(commands, actor=OPERATOR)
        return assignments

    async def close_incident(self, incident_id: str, outcome: str | None) -> Incident:
        async with self.lock:
            await self._require_open(incident_id)
            incident, commands = self.core.close_incident(
                incident_id, self.clock.now(), outcome=outcome
            )
            await self.execute(commands, actor=OPERATOR)
            self.core.forget(incident_id)  # final and stored: served from the store from now on
        return incident

    async def assignment(self, assignment_id: str) -> Assignment:
        if assignment_id in self.core.assignments:
            return self.core.assignments[assignment_id]
        found = await self.store.get_assignment(assignment_id)
        if found is None:
            raise NotFound(f"no assignment {assignment_id!r}")
        return found

    async def apply(
        self,
        assignment_id: str,
        event: AssignmentEvent,
        principal: Principal,
        reason: str | None = None,
    ) -> Assignment:
        """A volunteer's (or operator's) answer to an assignment.

        Raises:
            NotFound: unknown assignment.
            PermissionError: another volunteer's assignment.
            IllegalTransition: the state does not allow it (409).
        """
        async with self.lock:
            assignment = await self.assignment(assignment_id)
            if not principal.may_act_for(assignment.volunteer_id):
                raise PermissionError("this assignment belongs to another volunteer")
            if assignment_id not in self.core.assignments:
                # Part of an incident closed before a restart: its state is final, so the
                # state machine refuses (IllegalTransition, 409) like for any finished one.
                next_state(assignment.state, event)
                raise Conflict("the incident is closed")
            started = time.perf_counter()
            assignment, commands = self.core.apply(
                assignment_id, event, self.clock.now(), reason=reason, actor=principal.actor
            )
            await self.execute(commands, actor=principal.actor)
            self.metrics.answer(event.value, time.perf_counter() - started)
        return assignment

    # -------------------------------------------------------------- coverage

    async def coverage(self, k: int) -> dict[str, Any]:
        """``GET /coverage``: per ring, the population share and the villages reached by at
        least ``k`` available volunteers with a fresh fix, from live positions; plus the same
        per township. The planners' code (:func:`simulations.coverage.coverage_report`) runs
        in a worker thread on a snapshot, so the event loop keeps serving meanwhile.

        Raises:
            NotFound: the service has no demand points.
        """
        if self.demand is None:
            raise NotFound("no demand points (villages) are loaded")
        now = self.clock.now()
        positions = Positions.from_index(self.index, now)  # a copy: the index may move on
        report = await asyncio.to_thread(coverage_report, self.demand, positions, self.model)
        rings: dict[str, dict[str, Any]] = {}
        townships: dict[str, dict[str, Any]] = {}
        for row in report.rows((k,)):
            entry = {
                "population_share": round(row.population_share, 4),
                "villages_covered": row.villages,
                "villages_total": row.villages_total,
            }
            if row.area == "county":
                rings[str(row.ring_min)] = entry
            else:
                townships.setdefault(row.area, {})[str(row.ring_min)] = entry
        return {
            "rings": rings,
            "k": k,
            "volunteers": report.volunteers,
            "townships": townships,
            "computed_at": to_iso(now),
        }

    # ------------------------------------------------------------- commands

    async def execute(self, commands: Iterable[Command], actor: str | None = None) -> None:
        """Carry out the core's commands: every ``Persist`` group of this call goes to the
        store in ONE transaction (one fsync), and only then is anything pushed."""
        groups: list[list[Command]] = []
        for command in commands:
            if isinstance(command, Persist) or not groups:
                groups.append([])
            groups[-1].append(command)
        if not groups:
            return
        entries = []
        feeds = []
        # The feed is for connected operators only; one snapshot of each incident per call
        # (the core has applied every command already, so every Notify would show the same).
        snapshots: dict[str, str] | None = {} if self.hub.operators_connected else None
        for group in groups:
            entry, feed = self._commit_of(group, actor, snapshots)
            entries.append(entry)
            feeds.append(feed)
        seqs = await self.store.commit_many(entries)
        for entry, entry_seqs, feed in zip(entries, seqs, feeds, strict=True):
            for (volunteer_id, message), seq in zip(entry.outbox, entry_seqs, strict=True):
                self.hub.deliver(volunteer_id, {**message, "seq": seq})
            for text in feed:
                self.hub.publish(text)

    def _commit_of(
        self,
        group: list[Command],
        actor: str | None,
        snapshots: dict[str, str] | None,
    ) -> tuple[Commit, list[str]]:
        """One ``Persist`` and what follows it: the store entry and the operators' feed."""
        head = group[0]
        if not isinstance(head, Persist):  # pragma: no cover - the core always persists first
            raise RuntimeError(f"{type(head).__name__} before any Persist")
        outbox: list[tuple[str, dict[str, Any]]] = []
        feed: list[str] = []
        credit: Credit | None = None
        for command in group[1:]:
            if isinstance(command, Offer):
                self.metrics.offers.inc()
                outbox.append(
                    (
                        command.assignment.volunteer_id,
                        {
                            "type": "assignment.offered",
                            "assignment": assignment_wire(command.assignment),
                            "incident": incident_brief(command.incident),
                        },
                    )
                )
            elif isinstance(command, Cancel):
                wire = {
                    "type": "assignment.cancelled",
                    "assignment": assignment_wire(command.assignment),
                }
                outbox.append((command.assignment.volunteer_id, wire))
            elif isinstance(command, Notify):
                if snapshots is not None:
                    feed.append(self._feed_message(command, snapshots))
                if command.to_volunteer and command.assignment is not None:
                    wire = {
                        "type": command.volunteer_type,
                        "assignment": assignment_wire(command.assignment),
                    }
                    outbox.append((command.assignment.volunteer_id, wire))
            elif isinstance(command, Credit):
                credit = command
        entry = Commit(head.event, head.at, head.records, head.actor or actor, outbox, credit)
        return entry, feed

    def _feed_message(self, command: Notify, snapshots: dict[str, str]) -> str:
        """The feed message's JSON text. ``incident.*`` events carry the whole incident with
        its assignments; ``assignment.*`` events carry the assignment and the incident's
        summary (its ``rings`` as they are now, no assignments list): an offer to 100
        volunteers is 100 messages, not 100 copies of all 100 assignments. Each incident is
        encoded once per :meth:`execute` and spliced into every message that carries it."""
        message: dict[str, Any] = {"type": command.type, "at": to_iso(command.at)}
        if command.assignment is not None:
            message["assignment"] = assignment_wire(command.assignment)
        text = _dumps(message)
        incident = command.incident
        if incident is None:
            return text
        whole = command.assignment is None
        key = f"{incident.id}{'' if whole else '~'}"
        if key not in snapshots:
            assignments = self.core.incident_assignments(incident)
            snapshots[key] = _dumps(
                incident_wire(incident, assignments)
                if whole
                else incident_summary(incident, assignments)
            )
        return f'{text[:-1]},"incident":{snapshots[key]}}}'

    # ---------------------------------------------------------------- timers

    async def _timer(self) -> None:
        while True:
            deadline = self.core.next_deadline()
            now = self.clock.now()
            delay = 1.0 if deadline is None else min(1.0, max(0.0, deadline - now))
            if isinstance(self.clock, FakeClock):
                delay = 1.0  # fake time moves only when told; wake() says so
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            if self.gc_policy is not None:
                # between events, never inside one: a full collection is the longest pause
                self.gc_policy.maybe_collect(self.clock.now(), quiet=not self.core.open_offers)
            deadline = self.core.next_deadline()
            if deadline is None or deadline > self.clock.now():
                continue
            try:
                async with self.lock:
                    await self.execute(self.core.tick(self.clock.now()))
            except Exception:
                log.exception("timer round failed")

    # --------------------------------------------------------------- helpers

    def _nearest_unit(self, lat: float, lon: float) -> int:
        if self._unit_lat is None or self._unit_lon is None or not len(self._unit_lat):
            return -1
        lat, lon = check_latlon(lat, lon)
        d2 = (self._unit_lat - lat) ** 2 + (
            (self._unit_lon - lon) * math.cos(math.radians(lat))
        ) ** 2
        return int(np.argmin(d2))
