"""A simulated day: incidents, volunteers and the real dispatch core, event by event.

Theory of operation
-------------------
A discrete-event simulation drives the *same* :class:`~dispatch.core.engine.DispatchCore`,
ranking, plan and policy as the server, through their public methods, with a virtual ``now``
that jumps from event to event (no clock is ever read). One priority queue (``heapq``) holds
``(time, kind, sequence, payload)``; the sequence number makes the order total, so a run is a
pure function of its seed.

Events:

* **shift** (every hour boundary): the duty patterns say who comes on and who goes off duty.
  Those coming on go out on patrol (``patrol_share``, a fix around home, situation
  ``patrol``, no turnout) or stay on call at home (``home``, or ``night`` in the night
  window); members of a unit *on post* stand at their unit's village, ready. Their fix goes
  into the :class:`~units.index.LiveIndex` as a gateway's would, and
  :meth:`~dispatch.core.engine.DispatchCore.set_availability` makes them ``available``;
  those going off duty become ``off_duty`` (one holding an assignment stays ``busy`` until
  it ends: the core remembers the choice).
* **incident**: :meth:`~dispatch.core.engine.DispatchCore.create_incident` at its time and
  place; the incident stream is a non-homogeneous Poisson process (rate by hour, villages
  drawn by population, the type and severity mix), generated up front from its own keyed
  generator, so it is the same in every compared scenario.
* **answer**: for each :class:`~dispatch.core.engine.Offer` the core returns, the volunteer's
  answer is drawn from keyed uniforms of (seed, replication, incident ordinal, volunteer):
  accept with the volunteer's probability, else decline or stay silent; an answer after the
  offer's deadline is never delivered (the core's ``tick`` expires it first).
* **arrival** on scene: ``accepted_at`` + the assignment's ETA, with the volunteer's actual
  turnout drawn around the median the travel model ranked with (log-normal).
* **close**: the first arrival starts the service time; at its end the incident is closed
  (:meth:`~dispatch.core.engine.DispatchCore.close_incident`: those on scene complete, the
  others are stood down), and volunteers are free again. An incident nobody has reached after
  ``give_up_s`` is closed as unserved.
* **tick**: after every event the next :meth:`~dispatch.core.engine.DispatchCore.next_deadline`
  is scheduled (a generation number voids superseded ticks); ``tick`` expires silent offers,
  escalates and widens.

Busy volunteers are the core's business: an accepted assignment makes the volunteer ``busy``
in the index until it ends, and ranking skips them. Closed incidents are dropped from the core
(:meth:`DispatchCore.forget`), as the server does once they are in its store.

Common random numbers: every draw is keyed (:mod:`simulations.keyed`) by what it is for, not
by when it is asked: the incident stream by (seed, replication), a volunteer's acceptance by
(seed, volunteer), their patrol by (seed, replication, hour, volunteer), an answer by (seed,
replication, incident, volunteer). Two scenarios that differ by ten new units see the same
incidents, and every volunteer present in both answers the same offer the same way.

Simplifications: positions stay where the shift put them (no movement on patrol, and no
return journey after an incident); phones report often enough that no fix goes stale (the
index is built with a freshness limit longer than any run); nobody withdraws after accepting.
"""

from __future__ import annotations

import heapq
import itertools
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree
from scipy.special import ndtri

from dispatch.core.engine import Command, DispatchCore, Notify, Offer
from dispatch.core.policy import RING_MINUTES, RINGS_S, Policy
from dispatch.core.states import AssignmentEvent, AssignmentState
from dispatch.errors import InvalidInput
from geo.travel import Situation, TravelModel
from simulations.coverage import Demand, project_local
from simulations.keyed import Stream, generator, key_of, uniforms, uniforms_array
from simulations.params import DayParams
from simulations.population import SimVolunteers, acceptance_probabilities
from units.index import LiveIndex
from units.vocab import Status

__all__ = [
    "T0_MONDAY",
    "DaySimulation",
    "IncidentRecords",
    "IncidentStream",
    "ReplicationResult",
    "incident_stream",
    "run_replications",
]

#: 2026-11-30 00:00 in China (UTC+8), a Monday: day 0 of every simulation starts here (shifted
#: by ``start_weekday``).
T0_MONDAY: Final = 1_795_968_000.0
#: Freshness limit of the simulation's index: longer than any run (no fix goes stale).
_NO_STALENESS: Final = 1e9
_METRES_PER_DEGREE: Final = 111_194.93
_INV_CDF: Final = NormalDist().inv_cdf

# Event kinds, in the order they run at the same instant.
_SHIFT, _ANSWER, _ARRIVE, _CLOSE, _GIVE_UP, _INCIDENT, _TICK = range(7)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False, slots=True)
class IncidentStream:
    """The incidents of one replication, in time order.

    Attributes:
        t: seconds since the start of day 0.
        village: demand point row.
        lat, lon: where.
        type: index into ``types``.
        severity: 1-3.
        service_s: time on scene from the first arrival to closure.
        types: the incident types' wire names.
    """

    t: F64
    village: I64
    lat: F64
    lon: F64
    type: I64
    severity: I64
    service_s: F64
    types: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.t)


def incident_stream(
    demand: Demand, params: DayParams, types: Sequence[str], replication: int
) -> IncidentStream:
    """The incidents of replication ``replication``: non-homogeneous Poisson by hour, villages
    by population, the type and severity mix, service times.

    Depends only on the demand, the parameters and the replication (never on the
    volunteers), so compared scenarios share it.

    Args:
        demand: the demand points.
        params: the rates and mixes.
        types: the policy's incident types.
        replication: the replication number.

    Raises:
        InvalidInput: the type mix names a type the policy lacks.
    """
    unknown = sorted(set(params.type_mix) - set(types))
    if unknown:
        raise InvalidInput(f"type_mix names types the policy lacks: {unknown}", field="type_mix")
    names = tuple(t for t in types if params.type_mix.get(t, 0.0) > 0)
    mix = np.array([params.type_mix[t] for t in names], dtype=np.float64)
    rng = generator(params.seed, replication, Stream.INCIDENTS)
    profile = np.asarray(params.hourly_profile, dtype=np.float64)
    hours = params.days * 24
    rate = np.tile(profile / profile.sum() * params.incidents_per_day, params.days)
    counts = rng.poisson(rate)
    n = int(counts.sum())
    start = np.repeat(np.arange(hours, dtype=np.float64) * 3600.0, counts)
    t = start + rng.random(n) * 3600.0
    order = np.argsort(t, kind="stable")
    t = t[order]
    population = demand.population.astype(np.float64)
    village = rng.choice(len(demand), size=n, p=population / population.sum())
    kind = rng.choice(len(names), size=n, p=mix / mix.sum())
    sev_mix = np.asarray(params.severity_mix, dtype=np.float64)
    severity = rng.choice(3, size=n, p=sev_mix / sev_mix.sum()) + 1
    offset = rng.standard_normal((n, 2)) * params.incident_jitter_m
    limit = 2.5 * params.incident_jitter_m
    norm = np.hypot(offset[:, 0], offset[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        shrink = np.where(norm > limit, limit / norm, 1.0)
    offset *= shrink[:, None]
    lat = demand.lat[village] + offset[:, 1] / _METRES_PER_DEGREE
    lon = demand.lon[village] + offset[:, 0] / (
        _METRES_PER_DEGREE * np.cos(np.radians(demand.lat[village]))
    )
    service = params.service_median_s * np.exp(params.service_sigma * rng.standard_normal(n))
    return IncidentStream(
        t=t,
        village=village.astype(np.int64),
        lat=lat,
        lon=lon,
        type=kind.astype(np.int64),
        severity=severity.astype(np.int64),
        service_s=service,
        types=names,
    )


@dataclass(slots=True)
class _Record:
    """What the simulation learns about one incident."""

    ordinal: int
    created: float
    service_s: float
    arrivals: list[float] = field(default_factory=list)
    offers: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0
    closed: float = math.nan
    widen_step: int = 0
    unserved: bool = False


@dataclass(slots=True)
class _Pending:
    """A delivered offer's fate, drawn when it was made."""

    accept: bool
    travel_s: float  # accepted_at -> on scene


@dataclass(frozen=True, eq=False, slots=True)
class IncidentRecords:
    """One row per incident of a replication (columns).

    Attributes:
        ordinal: position in the incident stream.
        created_s: seconds since the start of day 0.
        day, weekday, hour: when it was created.
        township, village: where.
        type: the incident type's wire name; ``severity``: 1-3.
        quota: ``(n, 3)`` people wanted within 1, 3, 5 minutes (cumulative).
        response_s: ``(n, 3)`` seconds until each ring's quota of people were on scene;
            ``nan`` where the ring wants nobody, ``inf`` where it was never reached.
        arrivals: people who reached the scene.
        offers, accepted, declined, expired: the offers and their fate.
        first_arrival_s: seconds to the first arrival (``inf``: nobody came).
        closed_s: seconds from creation to closure.
        widen_steps: how often the search was widened beyond 5 minutes.
        unserved: closed with nobody on scene.
    """

    ordinal: I64
    created_s: F64
    day: I64
    weekday: I64
    hour: I64
    township: I64
    village: I64
    type: tuple[str, ...]
    severity: I64
    quota: I64
    response_s: F64
    arrivals: I64
    offers: I64
    accepted: I64
    declined: I64
    expired: I64
    first_arrival_s: F64
    closed_s: F64
    widen_steps: I64
    unserved: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.ordinal)

    def met(self) -> npt.NDArray[np.bool_]:
        """``(n, 3)``: the ring's quota was on scene within the ring (False where ``nan``)."""
        limits = np.asarray(RINGS_S, dtype=np.float64)[None, :]
        with np.errstate(invalid="ignore"):
            return np.asarray(self.response_s <= limits)

    def wanted(self) -> npt.NDArray[np.bool_]:
        """``(n, 3)``: the ring wants somebody (its quota is above 0)."""
        return np.asarray(self.quota > 0)


@dataclass(frozen=True, eq=False, slots=True)
class ReplicationResult:
    """Everything one replication produced.

    Attributes:
        replication: its number.
        days: simulated days.
        incidents: one row per incident.
        alerts: ``(days, n_volunteers)`` offers received per day (fatigue).
        accepts: offers accepted per volunteer over the run.
        duty_hours: hours on duty per volunteer over the run.
        events: events processed.
        wall_s: real seconds the replication took.
        cpu_s: CPU seconds it took (its process's; a fairer figure on a shared machine).
    """

    replication: int
    days: int
    incidents: IncidentRecords
    alerts: npt.NDArray[np.int32]
    accepts: npt.NDArray[np.int32]
    duty_hours: npt.NDArray[np.int32]
    events: int
    wall_s: float
    cpu_s: float = math.nan


def _counter(prefix: str) -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def _turnout_table(model: TravelModel, params: DayParams) -> F64:
    """The turnout medians the model ranks with, by situation code."""
    turnout = getattr(model, "turnout", None)
    table = getattr(turnout, "table", None)
    if callable(table):
        return np.asarray(table(), dtype=np.float64)
    out = np.zeros(len(Situation), dtype=np.float64)
    for situation, value in params.turnout_by_situation().items():
        out[int(situation)] = value
    return out


class DaySimulation:
    """Simulated days of one scenario (a set of volunteers) against the real core.

    Args:
        demand: the demand points (where incidents happen, and their townships).
        volunteers: the scenario's volunteers.
        policy: the incident policy.
        model: the travel model the core ranks with; its turnout should be the parameters'
            medians (``turnout_median_s``); the actual turnout is drawn around them.
        params: the parameters.
        unit_lat, unit_lon: the units' sites (dataset units, then new ones), for the core's
            "nearest unit" tie-break; ``unit_ids`` their ids.

    Attributes:
        acceptance: each volunteer's probability of accepting an offer.
        turnout_median_s: by situation code, the turnout the model ranks with.
        nearest_unit: the core's "nearest unit" function, ``None`` without unit sites.

    Raises:
        InvalidInput: the type mix names a type the policy lacks.
    """

    def __init__(
        self,
        demand: Demand,
        volunteers: SimVolunteers,
        policy: Policy,
        model: TravelModel,
        params: DayParams,
        *,
        unit_lat: F64 | None = None,
        unit_lon: F64 | None = None,
        unit_ids: tuple[str, ...] = (),
    ) -> None:
        unknown = sorted(set(params.type_mix) - set(policy.types))
        if unknown:
            raise InvalidInput(
                f"type_mix names types the policy lacks: {unknown}", field="type_mix"
            )
        self.demand = demand
        self.volunteers = volunteers
        self.policy = policy
        self.model = model
        self.params = params
        self.unit_ids = unit_ids
        self.turnout_median_s = _turnout_table(model, params)
        self.nearest_unit: Callable[[float, float], int] | None = None
        if unit_lat is not None and unit_lon is not None and len(unit_lat):
            lat0, lon0 = float(np.mean(demand.lat)), float(np.mean(demand.lon))
            tree = cKDTree(project_local(unit_lat, unit_lon, lat0, lon0))
            memo: dict[tuple[float, float], int] = {}

            def nearest(lat: float, lon: float) -> int:
                # The core asks at every (re)plan of an incident: remember its answer.
                found = memo.get((lat, lon))
                if found is None:
                    xy = project_local(np.array([lat]), np.array([lon]), lat0, lon0)
                    found = memo[lat, lon] = int(tree.query(xy[0])[1])
                    if len(memo) > 4096:
                        memo.clear()
                return found

            self.nearest_unit = nearest
        self.acceptance = self._acceptance()

    def _acceptance(self) -> F64:
        """Each volunteer's probability of accepting an offer (keyed by seed and id)."""
        p = self.params
        return acceptance_probabilities(
            self.volunteers.keys, p.acceptance_mean, p.acceptance_concentration, p.seed
        )

    def run(
        self, replication: int, *, progress: Callable[[int], object] | None = None
    ) -> ReplicationResult:
        """Run one replication.

        Args:
            replication: its number (keys every draw).
            progress: called with 1 at the end of each simulated day.
        """
        return _Run(self, replication, progress).run()


class _Run:
    """The state of one replication (module doc: the events)."""

    def __init__(
        self, sim: DaySimulation, replication: int, progress: Callable[[int], object] | None
    ) -> None:
        self.sim = sim
        self.p = sim.params
        self.rep = replication
        self.progress = progress
        vols = sim.volunteers
        n = len(vols)
        self.t0 = T0_MONDAY + 86_400.0 * self.p.start_weekday
        index = LiveIndex(capacity=max(n, 1), freshness_s=_NO_STALENESS)
        slots = index.add_many(
            vols.ids,
            mode=vols.mode,
            roles=vols.roles,
            teams=vols.teams,
            unit=vols.unit,
            status=int(Status.OFF_DUTY),
            situation=int(Situation.HOME),
        )
        if n and not np.array_equal(slots, np.arange(n)):
            raise AssertionError("a fresh index gives slots in roster order")  # pragma: no cover
        if n:
            index.update_batch(
                slots,
                vols.home_lat.copy(),
                vols.home_lon.copy(),
                np.full(n, self.t0),
                self.t0,
            )
        self.index = index
        self.core = DispatchCore(
            index,
            sim.model,
            sim.policy,
            incident_ids=_counter("inc-"),
            assignment_ids=_counter("asg-"),
            nearest_unit=sim.nearest_unit,
            unit_ids=sim.unit_ids,
        )
        self.stream = incident_stream(sim.demand, self.p, sim.policy.types, replication)
        self.on = np.zeros(n, dtype=np.bool_)
        self.situation = np.full(n, int(Situation.HOME), dtype=np.uint8)
        self.alerts = np.zeros((self.p.days, n), dtype=np.int32)
        self.accepts = np.zeros(n, dtype=np.int32)
        self.duty_hours = np.zeros(n, dtype=np.int32)
        self.records: dict[str, _Record] = {}
        self.done: list[_Record] = []
        self.pending: dict[str, _Pending] = {}
        self.heap: list[tuple[float, int, int, object]] = []
        self.seq = itertools.count()
        self.tick_generation = 0
        self.tick_at = math.inf
        self.events = 0
        self.touched = False
        self.answer_key = key_of(self.p.seed, replication, Stream.ANSWER)
        self.shift_key = (self.p.seed, replication, Stream.SHIFT)

    # ------------------------------------------------------------------ the loop

    def push(self, t: float, kind: int, payload: object) -> None:
        heapq.heappush(self.heap, (t, kind, next(self.seq), payload))

    def run(self) -> ReplicationResult:
        start = time.perf_counter()
        cpu = time.process_time()
        for h in range(self.p.days * 24):
            self.push(self.t0 + 3600.0 * h, _SHIFT, h)
        for k, t in enumerate(self.stream.t.tolist()):
            self.push(self.t0 + t, _INCIDENT, k)
        handlers: dict[int, Callable[[float, object], None]] = {
            _SHIFT: self.on_shift,
            _ANSWER: self.on_answer,
            _ARRIVE: self.on_arrive,
            _CLOSE: self.on_close,
            _GIVE_UP: self.on_give_up,
            _INCIDENT: self.on_incident,
            _TICK: self.on_tick,
        }
        heap = self.heap
        while heap:
            now, kind, _, payload = heapq.heappop(heap)
            self.touched = False
            handlers[kind](now, payload)
            self.events += 1
            if self.touched:
                self.schedule_tick(now)
        if self.progress is not None and self.p.days:
            self.progress(1)  # the last day
        return ReplicationResult(
            replication=self.rep,
            days=self.p.days,
            incidents=self.table(),
            alerts=self.alerts,
            accepts=self.accepts,
            duty_hours=self.duty_hours,
            events=self.events,
            wall_s=time.perf_counter() - start,
            cpu_s=time.process_time() - cpu,
        )

    def schedule_tick(self, now: float) -> None:
        due = self.core.next_deadline()
        if due is not None and due < self.tick_at:
            self.tick_generation += 1
            self.tick_at = max(due, now)
            self.push(self.tick_at, _TICK, self.tick_generation)

    # ------------------------------------------------------------------ events

    def on_tick(self, now: float, payload: object) -> None:
        if payload != self.tick_generation:
            return  # superseded by an earlier tick
        self.tick_at = math.inf
        self.touched = True  # whatever comes next, it is not this tick
        self.handle(self.core.tick(now), now)

    def on_shift(self, now: float, payload: object) -> None:
        h = int(payload)  # type: ignore[call-overload]
        if h and h % 24 == 0 and self.progress is not None:
            self.progress(1)
        p = self.p
        hour = h % 24
        weekday = (p.start_weekday + h // 24) % 7
        duty = self.sim.volunteers.on_duty(weekday, hour)
        self.duty_hours += duty
        night = p.is_night(hour)
        coming = np.flatnonzero(duty & ~self.on)
        leaving = np.flatnonzero(self.on & ~duty)
        ids = self.index.ids
        core = self.core
        if len(coming):
            self.place(coming, h, night, now)
            for slot in coming.tolist():
                core.set_availability(ids[slot], Status.AVAILABLE, now)
        for slot in leaving.tolist():
            core.set_availability(ids[slot], Status.OFF_DUTY, now)
        # Those staying on duty at home: home <-> night at the window's edges.
        want = Situation.NIGHT if night else Situation.HOME
        at_home = (self.situation == Situation.HOME) | (self.situation == Situation.NIGHT)
        flip = np.flatnonzero(duty & self.on & at_home & (self.situation != want))
        for slot in flip.tolist():
            self.index.set_situation(slot, want)
        self.situation[flip] = want
        self.on = duty

    def place(self, slots: npt.NDArray[np.intp], h: int, night: bool, now: float) -> None:
        """Where volunteers coming on duty at absolute hour ``h`` are: patrol or home."""
        vols = self.sim.volunteers
        u = uniforms_array(vols.keys[slots], *self.shift_key, h, n=3)
        posted = vols.posted[slots]
        patrol = (u[:, 0] < self.p.patrol_share) | posted
        sigma = self.p.patrol_offset_m * ~posted
        dx = np.clip(ndtri(u[:, 1]), -2.5, 2.5) * sigma * patrol
        dy = np.clip(ndtri(u[:, 2]), -2.5, 2.5) * sigma * patrol
        lat = vols.home_lat[slots] + dy / _METRES_PER_DEGREE
        lon = vols.home_lon[slots] + dx / (
            _METRES_PER_DEGREE * np.cos(np.radians(vols.home_lat[slots]))
        )
        self.index.update_batch(slots, lat, lon, np.full(len(slots), now), now)
        home = Situation.NIGHT if night else Situation.HOME
        situation = np.where(patrol, int(Situation.PATROL), int(home)).astype(np.uint8)
        for slot, s in zip(slots.tolist(), situation.tolist(), strict=True):
            self.index.set_situation(slot, Situation(s))
        self.situation[slots] = situation

    def on_incident(self, now: float, payload: object) -> None:
        k = int(payload)  # type: ignore[call-overload]
        s = self.stream
        incident, commands = self.core.create_incident(
            s.types[int(s.type[k])],
            float(s.lat[k]),
            float(s.lon[k]),
            now,
            severity=int(s.severity[k]),
        )
        self.records[incident.id] = _Record(ordinal=k, created=now, service_s=float(s.service_s[k]))
        self.push(now + self.p.give_up_s, _GIVE_UP, incident.id)
        self.handle(commands, now)

    def on_answer(self, now: float, payload: object) -> None:
        assignment_id = str(payload)
        fate = self.pending.pop(assignment_id, None)
        assignment = self.core.assignments.get(assignment_id)
        if fate is None or assignment is None or assignment.state is not AssignmentState.OFFERED:
            return  # expired, cancelled, or the incident is gone
        record = self.records[assignment.incident_id]
        if fate.accept:
            record.accepted += 1
            self.accepts[self.index.slot(assignment.volunteer_id)] += 1
            _, commands = self.core.apply(assignment_id, AssignmentEvent.ACCEPT, now)
            self.push(now + fate.travel_s, _ARRIVE, assignment_id)
        else:
            record.declined += 1
            _, commands = self.core.apply(assignment_id, AssignmentEvent.DECLINE, now)
        self.handle(commands, now)

    def on_arrive(self, now: float, payload: object) -> None:
        assignment_id = str(payload)
        assignment = self.core.assignments.get(assignment_id)
        if assignment is None or assignment.state is not AssignmentState.ACCEPTED:
            return  # stood down on the way
        _, commands = self.core.apply(assignment_id, AssignmentEvent.ARRIVE, now)
        record = self.records[assignment.incident_id]
        record.arrivals.append(now - record.created)
        if len(record.arrivals) == 1:
            self.push(now + record.service_s, _CLOSE, assignment.incident_id)
        self.handle(commands, now)

    def on_close(self, now: float, payload: object) -> None:
        self.close(str(payload), now, outcome="resolved")

    def on_give_up(self, now: float, payload: object) -> None:
        incident_id = str(payload)
        record = self.records.get(incident_id)
        if record is not None and not record.arrivals:
            record.unserved = True
            self.close(incident_id, now, outcome="unserved")

    def close(self, incident_id: str, now: float, outcome: str) -> None:
        incident = self.core.incidents.get(incident_id)
        if incident is None or incident.state != "open":
            return
        _, commands = self.core.close_incident(incident_id, now, outcome=outcome)
        self.handle(commands, now)
        record = self.records.pop(incident_id)
        record.closed = now
        record.widen_step = incident.widen_step
        self.done.append(record)
        self.core.forget(incident.id)

    # ------------------------------------------------------------------ commands

    def handle(self, commands: list[Command], now: float) -> None:
        """Carry out the core's commands: draw answers to offers, count expiries.

        A deadline can only come *earlier* than the tick already scheduled through a new
        offer (its expiry) or an incident whose rings became unmet (its widening), so only
        those ask :meth:`DispatchCore.next_deadline` again; a deadline that went away (an
        answered offer) costs at most one idle tick.
        """
        for command in commands:
            if isinstance(command, Offer):
                self.touched = True
                self.offered(command, now)
            elif isinstance(command, Notify):
                if command.type == "incident.updated":
                    self.touched = True
                elif command.type == "assignment.expired":
                    incident = command.incident
                    if incident is not None and incident.id in self.records:
                        self.records[incident.id].expired += 1

    def offered(self, offer: Offer, now: float) -> None:
        """Draw the volunteer's answer to an offer and schedule it (or nothing: silence)."""
        assignment = offer.assignment
        record = self.records[assignment.incident_id]
        record.offers += 1
        slot = self.index.slot(assignment.volunteer_id)
        day = min(int((now - self.t0) // 86_400.0), self.p.days - 1)
        self.alerts[day, slot] += 1
        p = self.p
        u = uniforms(
            key_of(self.answer_key, record.ordinal, int(self.sim.volunteers.keys[slot])), 4
        )
        accept = u[0] < self.sim.acceptance[slot]
        if not accept and u[1] < p.silent_share:
            return  # silence: the core's tick expires the offer
        delay = p.answer_delay_median_s * math.exp(p.answer_delay_sigma * _INV_CDF(u[2]))
        if now + delay >= assignment.expires_at:
            return  # too late: the offer expires first
        travel = 0.0
        if accept:
            situation = int(self.index.situation[slot])
            median = float(self._turnout_median(situation))
            actual = median * math.exp(p.turnout_sigma * _INV_CDF(u[3])) if median else 0.0
            travel = max(0.0, assignment.eta_s - median + actual)
        self.pending[assignment.id] = _Pending(accept=accept, travel_s=travel)
        self.push(now + delay, _ANSWER, assignment.id)

    def _turnout_median(self, situation: int) -> float:
        return float(self.sim.turnout_median_s[situation])

    # ------------------------------------------------------------------ results

    def table(self) -> IncidentRecords:
        records = sorted(self.done, key=lambda r: r.ordinal)
        s = self.stream
        n = len(records)
        k = np.array([r.ordinal for r in records], dtype=np.int64)
        quota = np.zeros((n, len(RING_MINUTES)), dtype=np.int64)
        response = np.full((n, len(RING_MINUTES)), np.nan)
        for i, r in enumerate(records):
            rules = self.sim.policy.for_type(s.types[int(s.type[r.ordinal])])
            wanted = rules.quota_for(int(s.severity[r.ordinal]))
            arrivals = sorted(r.arrivals)
            for j, ring in enumerate(RING_MINUTES):
                q = wanted.get(ring, 0)
                quota[i, j] = q
                if q > 0:
                    response[i, j] = arrivals[q - 1] if len(arrivals) >= q else math.inf
        created = s.t[k] if n else np.empty(0)
        abs_hour = (created // 3600.0).astype(np.int64)
        day = abs_hour // 24
        return IncidentRecords(
            ordinal=k,
            created_s=created,
            day=day,
            weekday=(day + self.p.start_weekday) % 7,
            hour=abs_hour % 24,
            township=self.sim.demand.township[s.village[k]] if n else np.empty(0, np.int64),
            village=s.village[k] if n else np.empty(0, np.int64),
            type=tuple(s.types[int(t)] for t in s.type[k]),
            severity=s.severity[k] if n else np.empty(0, np.int64),
            quota=quota,
            response_s=response,
            arrivals=np.array([len(r.arrivals) for r in records], dtype=np.int64),
            offers=np.array([r.offers for r in records], dtype=np.int64),
            accepted=np.array([r.accepted for r in records], dtype=np.int64),
            declined=np.array([r.declined for r in records], dtype=np.int64),
            expired=np.array([r.expired for r in records], dtype=np.int64),
            first_arrival_s=np.array(
                [min(r.arrivals) if r.arrivals else math.inf for r in records], dtype=np.float64
            ),
            closed_s=np.array([r.closed - r.created for r in records], dtype=np.float64),
            widen_steps=np.array([r.widen_step for r in records], dtype=np.int64),
            unserved=np.array([r.unserved for r in records], dtype=np.bool_),
        )


# --- replications, in parallel ------------------------------------------------------------------

_WORKER: DaySimulation | None = None


def _work(replication: int) -> ReplicationResult:
    if _WORKER is None:  # pragma: no cover - set by run_replications before forking
        raise RuntimeError("no simulation in this worker")
    return _WORKER.run(replication)


def run_replications(
    sim: DaySimulation,
    replications: Sequence[int],
    *,
    jobs: int = 1,
    progress: Callable[[int], object] | None = None,
) -> list[ReplicationResult]:
    """Run replications, in ``jobs`` processes (results are identical for any ``jobs``: every
    draw is keyed by the replication, never by the process).

    Worker processes are forked (POSIX), so they share the simulation's arrays copy-on-write
    and nothing but the results is pickled; where fork is unavailable, or with ``jobs`` 1,
    the replications run here, one after the other.

    Args:
        sim: the scenario.
        replications: which replication numbers.
        jobs: worker processes; 0 = one per CPU.
        progress: called with simulated days done (per day sequentially, per replication
            in parallel).

    Returns:
        The results, in the order of ``replications``.
    """
    global _WORKER  # noqa: PLW0603 (handed to forked workers, not shared state)
    jobs = jobs or (os.cpu_count() or 1)
    jobs = min(jobs, len(replications))
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [sim.run(r, progress=progress) for r in replications]
    _WORKER = sim
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = []
            for result in pool.imap(_work, replications):
                results.append(result)
                if progress is not None:
                    progress(result.days)
    finally:
        _WORKER = None
    return results
