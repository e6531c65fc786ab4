"""The dispatch engine, sans I/O: events in, commands out.

Theory of operation
-------------------
:class:`DispatchCore` owns the open incidents and their assignments in memory and decides
everything about them; it never awaits, never opens a socket and never reads the clock: each
call takes ``now`` and returns the :data:`Command` list the caller must carry out, in order:

* :class:`Persist`: write these records and append this event to the log (before anything
  is sent, so nothing announced is ever lost);
* :class:`Offer`: push ``assignment.offered`` to the volunteer;
* :class:`Cancel`: push ``assignment.cancelled`` to the volunteer;
* :class:`Notify`: tell the operators (and, for ``assignment.expired`` /
  ``assignment.updated``, the volunteer);
* :class:`Credit`: add points and service time to a volunteer's account.

Events: an incident is created (:meth:`create_incident`), an operator offers by hand
(:meth:`offer`), a volunteer answers or moves an assignment on (:meth:`apply`), an incident
is closed (:meth:`close_incident`), and time passes (:meth:`tick`, which expires offers whose
deadline has passed, escalates, and widens searches that stay unmet). Position fixes go
straight to the :class:`~units.index.LiveIndex` the core ranks from.

Invariant: a volunteer holds at most one open offer or active assignment, anywhere
(``_holder``). Escalation: whenever an incident's commitments change, :meth:`_replan` ranks
again (excluding holders) and offers to the fewest next-best people that close each ring's
shortfall; rings that cannot be closed are reported ``unmet`` on the incident, and after the
policy's ``widen_after_s`` the search horizon grows by the policy's widening steps.
Several incidents planned at the same moment (one :meth:`tick`) are planned jointly
(:func:`~dispatch.core.plan.plan_jointly`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from dispatch.core.plan import Need, Plan, plan_incident, plan_jointly
from dispatch.core.policy import IncidentPolicy, Policy
from dispatch.core.ranking import NO_RING, RING_LIMITS_S, RINGS, Candidate, Ranking, rank
from dispatch.core.states import (
    FEED_EVENTS,
    AssignmentEvent,
    AssignmentState,
    is_active,
    is_open,
    is_terminal,
    next_state,
)
from dispatch.errors import Conflict, InvalidInput, NotFound
from geo.coords import check_latlon
from geo.travel import TravelModel
from units.index import LiveIndex
from units.vocab import Status

__all__ = [
    "Assignment",
    "Cancel",
    "Command",
    "Credit",
    "DispatchCore",
    "Incident",
    "Notify",
    "Offer",
    "Persist",
    "rings_of",
]

IncidentState = Literal["open", "closed"]
#: States that count towards an incident's rings: offered, accepted, on scene, completed.
_COMMITTED = frozenset(
    s for s in AssignmentState if is_open(s) or is_active(s) or s is AssignmentState.COMPLETED
)
DispatchMode = Literal["auto", "manual"]


@dataclass(slots=True)
class Assignment:
    """One volunteer's part in one incident (the contract's assignment object)."""

    id: str
    incident_id: str
    volunteer_id: str
    state: AssignmentState
    eta_s: float
    ring_min: int | None
    offered_at: float
    expires_at: float
    updated_at: float
    accepted_at: float | None = None
    reason: str | None = None


@dataclass(slots=True)
class Incident:
    """An incident and its dispatch bookkeeping."""

    id: str
    type: str
    lat: float
    lon: float
    severity: int
    note: str | None
    dispatch: DispatchMode
    created_at: float
    quota: dict[int, int]
    state: IncidentState = "open"
    closed_at: float | None = None
    outcome: str | None = None
    max_eta_s: float = 300.0
    widen_step: int = 0
    unmet: tuple[int, ...] = ()
    unmet_since: float | None = None
    assignment_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Persist:
    """Write ``records`` and append ``event`` to the event log, atomically."""

    event: str
    at: float
    records: tuple[Incident | Assignment, ...]
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """Push ``assignment.offered`` to the assignment's volunteer."""

    assignment: Assignment
    incident: Incident


@dataclass(frozen=True, slots=True)
class Cancel:
    """Push ``assignment.cancelled`` to the assignment's volunteer."""

    assignment: Assignment


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the operators; ``to_volunteer`` also tells the assignment's volunteer, with
    :attr:`volunteer_type` (``assignment.expired``, or ``assignment.updated`` for a change the
    volunteer did not make themselves, such as completion when the incident closes)."""

    type: str
    at: float
    incident: Incident | None = None
    assignment: Assignment | None = None
    to_volunteer: bool = False

    @property
    def volunteer_type(self) -> str:
        """The ``type`` of the volunteer's message (the contract names two)."""
        return self.type if self.type == "assignment.expired" else "assignment.updated"


@dataclass(frozen=True, slots=True)
class Credit:
    """Add points and service time to a volunteer's account for a completed assignment."""

    volunteer_id: str
    assignment_id: str
    points: int
    service_seconds: float


Command = Persist | Offer | Cancel | Notify | Credit


def rings_of(
    quota: Mapping[int, int], assignments: Iterable[Assignment]
) -> dict[str, dict[str, int]]:
    """The contract's ``rings`` object: per ring, people ``needed`` and ``accepted``
    (cumulative: everyone accepted, on scene or done whose ETA fits the ring)."""
    committed = [
        a.ring_min
        for a in assignments
        if is_active(a.state) or a.state is AssignmentState.COMPLETED
    ]
    return {
        str(ring): {
            "needed": quota.get(ring, 0),
            "accepted": sum(1 for r in committed if r is not None and r <= ring),
        }
        for ring in RINGS
    }


def _uuid_ids(prefix: str) -> Callable[[], str]:
    return lambda: f"{prefix}{uuid.uuid4().hex[:20]}"


class DispatchCore:
    """Incidents, assignments and the decisions about them.

    Args:
        index: the live position index (statuses are kept in step by the core).
        model: the travel model for ETAs.
        policy: the incident policy.
        incident_ids, assignment_ids: id factories (deterministic ones in tests).
        nearest_unit: maps an incident's (lat, lon) to the index of the nearest unit, or -1.
        unit_ids: unit id per unit index, for candidates' ``unit_id``.
    """

    def __init__(
        self,
        index: LiveIndex,
        model: TravelModel,
        policy: Policy,
        *,
        incident_ids: Callable[[], str] | None = None,
        assignment_ids: Callable[[], str] | None = None,
        nearest_unit: Callable[[float, float], int] | None = None,
        unit_ids: tuple[str, ...] = (),
    ) -> None:
        self.index = index
        self.model = model
        self.policy = policy
        self._new_incident_id = incident_ids or _uuid_ids("inc_")
        self._new_assignment_id = assignment_ids or _uuid_ids("asg_")
        self._nearest_unit = nearest_unit or (lambda _lat, _lon: -1)
        self.unit_ids = unit_ids
        self.incidents: dict[str, Incident] = {}
        self.assignments: dict[str, Assignment] = {}
        self._holder: dict[str, str] = {}  # volunteer id -> open or active assignment id
        self._offers: dict[str, Assignment] = {}  # assignment id -> the open offers
        # Per incident id, derived from its assignment_ids and brought up to date on use
        # (the list only grows): the slots of everyone it was offered to (never asked again),
        # covering its first len(...) assignments; and, with how many assignments they cover,
        # the ids of those that still count towards its rings (pruned as they end: an
        # incident that escalates for an hour has hundreds of finished offers).
        self._asked: dict[str, list[int]] = {}
        self._counting: dict[str, tuple[int, list[str]]] = {}
        self._availability: dict[str, Status] = {}  # the volunteer's own choice
        # ``_holder`` as a mask over index slots, kept in step with it (see held_mask)
        self._held = np.zeros(0, dtype=np.bool_)
        self._held_n = -1  # len(index) when _held was last rebuilt in full

    # ----------------------------------------------------------------- queries

    def incident(self, incident_id: str) -> Incident:
        """The incident; raises :class:`NotFound`."""
        try:
            return self.incidents[incident_id]
        except KeyError:
            raise NotFound(f"no incident {incident_id!r}") from None

    def assignment(self, assignment_id: str) -> Assignment:
        """The assignment; raises :class:`NotFound`."""
        try:
            return self.assignments[assignment_id]
        except KeyError:
            raise NotFound(f"no assignment {assignment_id!r}") from None

    def incident_assignments(self, incident: Incident) -> list[Assignment]:
        return [self.assignments[a] for a in incident.assignment_ids]

    def holding(self, volunteer_id: str) -> Assignment | None:
        """The open offer or active assignment the volunteer holds, if any."""
        held = self._holder.get(volunteer_id)
        return None if held is None else self.assignments[held]

    def rings(self, incident: Incident) -> dict[str, dict[str, int]]:
        """The contract's ``rings`` object for ``incident`` (see :func:`rings_of`)."""
        return rings_of(incident.quota, self.incident_assignments(incident))

    def held_mask(self) -> npt.NDArray[np.bool_]:
        """Per index slot: holds an open offer or an active assignment (a fresh copy).

        Kept in step with ``_holder`` as offers open and close; rebuilt in full only when
        the index has grown (a volunteer added to the roster may already hold one)."""
        return self._held_mask().copy()

    def _held_mask(self) -> npt.NDArray[np.bool_]:
        n = len(self.index)
        if n != self._held_n:
            mask = np.zeros(n, dtype=np.bool_)
            slot_of = self.index.slot_or_unknown
            for volunteer_id in self._holder:
                slot = slot_of(volunteer_id)
                if slot >= 0:
                    mask[slot] = True
            self._held, self._held_n = mask, n
        return self._held

    def _asked_slots(self, incident: Incident) -> list[int]:
        """Slots of everyone the incident was offered to. The cached prefix holds only
        volunteers found in the index; one not (yet) there is looked up again next time."""
        asked = self._asked.setdefault(incident.id, [])
        ids = incident.assignment_ids
        slot_of = self.index.slot_or_unknown
        for i in range(len(asked), len(ids)):
            slot = slot_of(self.assignments[ids[i]].volunteer_id)
            if slot < 0:
                rest = (slot_of(self.assignments[a].volunteer_id) for a in ids[i + 1 :])
                return asked + [s for s in rest if s >= 0]
            asked.append(slot)
        return asked

    def _counting_ids(self, incident: Incident) -> list[str]:
        """Ids of the incident's assignments in a state that counts."""
        ids = incident.assignment_ids
        covered, kept = self._counting.get(incident.id, (0, []))
        assignments = self.assignments
        kept = [a for a in (*kept, *ids[covered:]) if assignments[a].state in _COMMITTED]
        self._counting[incident.id] = (len(ids), kept)
        return kept

    def _hold(self, volunteer_id: str, assignment: Assignment) -> None:
        self._holder[volunteer_id] = assignment.id
        if assignment.state is AssignmentState.OFFERED:
            self._offers[assignment.id] = assignment
        self._mark_held(volunteer_id, held=True)

    def _release(self, volunteer_id: str) -> None:
        self._holder.pop(volunteer_id, None)
        self._mark_held(volunteer_id, held=False)

    def _mark_held(self, volunteer_id: str, *, held: bool) -> None:
        slot = self.index.slot_or_unknown(volunteer_id)
        if 0 <= slot < self._held_n:
            self._held[slot] = held

    def ranking(self, incident: Incident, now: float, max_eta_s: float | None = None) -> Ranking:
        """Eligible candidates for ``incident``, best first (never anyone it was offered to)."""
        rules = self._rules(incident)
        held = self.held_mask()
        # Whoever already had this incident (declined, let it expire, withdrew) is not asked
        # again: escalation moves on to the next best.
        asked = self._asked_slots(incident)
        if asked:
            held[asked] = True
        return rank(
            self.index,
            self.model,
            incident.lat,
            incident.lon,
            now=now,
            max_eta_s=incident.max_eta_s if max_eta_s is None else max_eta_s,
            needs_roles=rules.needs_roles,
            needs_teams=rules.needs_teams,
            held=held,
            nearest_unit=self._nearest_unit(incident.lat, incident.lon),
        )

    def candidates(
        self, incident_id: str, now: float, *, limit: int = 20, max_eta_s: float = 300.0
    ) -> list[Candidate]:
        """The contract's ``GET /incidents/{id}/candidates``."""
        incident = self.incident(incident_id)
        ranking = self.ranking(incident, now, max_eta_s)
        return ranking.candidates(self.index, self.unit_ids, limit)

    @property
    def open_offers(self) -> int:
        """How many offers await an answer."""
        return len(self._offers)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has work: the earliest offer expiry or widening."""
        deadlines = [a.expires_at for a in self._open_offers()]
        for incident in self.incidents.values():
            due = self._widen_due(incident)
            if due is not None:
                deadlines.append(due)
        return min(deadlines, default=None)

    # ------------------------------------------------------------------ events

    def set_availability(self, volunteer_id: str, status: Status, now: float) -> None:
        """The volunteer's (or an operator's) choice: ``available`` or ``off_duty``.

        A volunteer holding an active assignment stays ``busy`` in the index until it ends.

        Raises:
            InvalidInput: ``status`` is ``busy`` (it is derived, not chosen).
            NotFound: the volunteer is not in the index.
        """
        if status is Status.BUSY:
            raise InvalidInput(
                "status 'busy' is derived from an accepted assignment", field="status"
            )
        slot = self.index.slot(volunteer_id)
        self._availability[volunteer_id] = status
        held = self.holding(volunteer_id)
        if held is None or not is_active(held.state):
            self.index.set_status(slot, status)

    def create_incident(
        self,
        type: str,
        lat: float,
        lon: float,
        now: float,
        *,
        severity: int = 2,
        note: str | None = None,
        dispatch: DispatchMode = "auto",
    ) -> tuple[Incident, list[Command]]:
        """A new incident; with ``dispatch="auto"`` the first offers go out at once.

        Raises:
            NotFound: the policy has no such incident type.
            InvalidInput: bad coordinates or severity.
        """
        rules = self.policy.for_type(type)
        lat, lon = check_latlon(lat, lon)
        if dispatch not in ("auto", "manual"):
            raise InvalidInput(
                f"dispatch must be 'auto' or 'manual', got {dispatch!r}", field="dispatch"
            )
        quota = rules.quota_for(severity)
        incident = Incident(
            id=self._new_incident_id(),
            type=type,
            lat=lat,
            lon=lon,
            severity=severity,
            note=note,
            dispatch=dispatch,
            created_at=now,
            quota=dict(quota),
        )
        self.incidents[incident.id] = incident
        commands: list[Command] = [
            Persist("incident.created", now, (incident,)),
            Notify("incident.created", now, incident=incident),
        ]
        if dispatch == "auto":
            commands += self._replan([incident], now)
        return incident, commands

    def offer(
        self, incident_id: str, volunteer_ids: Sequence[str], now: float
    ) -> tuple[list[Assignment], list[Command]]:
        """Offer an incident to chosen volunteers (an operator's manual dispatch).

        All or nothing: if any volunteer cannot take it, nothing is offered.

        Raises:
            NotFound: unknown incident or volunteer.
            Conflict: the incident is closed, or a volunteer is busy, off duty or already
                holds an offer.
        """
        incident = self.incident(incident_id)
        if incident.state != "open":
            raise Conflict(f"incident {incident_id} is closed")
        if len(set(volunteer_ids)) != len(volunteer_ids):
            raise InvalidInput("volunteer_ids has duplicates", field="volunteer_ids")
        slots = [self.index.slot(v) for v in volunteer_ids]  # NotFound for unknown ids
        for volunteer_id, slot in zip(volunteer_ids, slots, strict=True):
            held = self.holding(volunteer_id)
            if held is not None:
                raise Conflict(f"volunteer {volunteer_id} already holds assignment {held.id}")
            if Status(int(self.index.status[slot])) is not Status.AVAILABLE:
                raise Conflict(
                    f"volunteer {volunteer_id} is {Status(int(self.index.status[slot])).wire}"
                )
        etas = (
            self.model.seconds_to(
                self.index.lat[slots],
                self.index.lon[slots],
                self.index.mode[slots],
                incident.lat,
                incident.lon,
                situations=self.index.situation[slots],
            )
            if slots
            else np.empty(0)
        )
        created: list[Assignment] = []
        commands: list[Command] = []
        for volunteer_id, eta in zip(volunteer_ids, etas.tolist(), strict=True):
            assignment, cmds = self._open_offer(incident, volunteer_id, eta, now)
            created.append(assignment)
            commands += cmds
        return created, commands

    def apply(
        self,
        assignment_id: str,
        event: AssignmentEvent,
        now: float,
        *,
        reason: str | None = None,
        actor: str | None = None,
    ) -> tuple[Assignment, list[Command]]:
        """A volunteer's (or operator's) answer or progress on an assignment.

        Raises:
            NotFound: unknown assignment.
            IllegalTransition: the assignment's state does not allow ``event``.
        """
        assignment = self.assignment(assignment_id)
        incident = self.incident(assignment.incident_id)
        commands = self._move(assignment, event, now, reason=reason, actor=actor)
        if (
            event in (AssignmentEvent.DECLINE, AssignmentEvent.WITHDRAW)
            and incident.state == "open"
        ):
            commands += self._replan([incident], now)
        elif event is AssignmentEvent.ACCEPT:
            commands += self._stand_down_surplus(incident, now)
        return assignment, commands

    def close_incident(
        self, incident_id: str, now: float, *, outcome: str | None = None
    ) -> tuple[Incident, list[Command]]:
        """Close an incident: volunteers on scene complete, other open or active ones are
        cancelled.

        Raises:
            NotFound: unknown incident.
            Conflict: already closed.
        """
        incident = self.incident(incident_id)
        if incident.state != "open":
            raise Conflict(f"incident {incident_id} is already closed")
        commands: list[Command] = []
        for assignment in self.incident_assignments(incident):
            if assignment.state is AssignmentState.ON_SCENE:
                # They were there: closing the incident completes their part (and credits it).
                commands += self._move(assignment, AssignmentEvent.COMPLETE, now, tell=True)
            elif is_open(assignment.state) or is_active(assignment.state):
                commands += self._move(
                    assignment, AssignmentEvent.CANCEL, now, reason="incident closed"
                )
        incident.state = "closed"
        incident.closed_at = now
        incident.outcome = outcome
        commands += [
            Persist("incident.closed", now, (incident,)),
            Notify("incident.closed", now, incident=incident),
        ]
        return incident, commands

    def tick(self, now: float) -> list[Command]:
        """Time passed: expire overdue offers, escalate, widen unmet searches.

        Incidents that need new offers at this moment are planned jointly.
        """
        commands: list[Command] = []
        touched: dict[str, Incident] = {}
        for assignment in sorted(self._open_offers(), key=lambda a: (a.expires_at, a.id)):
            if assignment.expires_at <= now:
                commands += self._move(assignment, AssignmentEvent.EXPIRE, now)
                incident = self.incidents[assignment.incident_id]
                if incident.state == "open":
                    touched[incident.id] = incident
        for incident in self.incidents.values():
            due = self._widen_due(incident)
            if due is not None and due <= now:
                self._widen(incident, now)
                touched[incident.id] = incident
        if touched:
            commands += self._replan(sorted(touched.values(), key=lambda i: i.created_at), now)
        return commands

    # --------------------------------------------------------------- internals

    def _rules(self, incident: Incident) -> IncidentPolicy:
        return self.policy.for_type(incident.type)

    def _open_offers(self) -> Iterable[Assignment]:
        return self._offers.values()

    def _widen_due(self, incident: Incident) -> float | None:
        if (
            incident.state != "open"
            or RINGS[-1] not in incident.unmet
            or incident.unmet_since is None
        ):
            return None
        steps = self._rules(incident).widen_steps_s
        if incident.widen_step >= len(steps):
            return None
        return incident.unmet_since + self._rules(incident).widen_after_s

    def _widen(self, incident: Incident, now: float) -> None:
        steps = self._rules(incident).widen_steps_s
        incident.max_eta_s = float(steps[incident.widen_step])
        incident.widen_step += 1
        # The next step waits widen_after_s again, counted from this one; if the wider search
        # meets ring 5 after all, _set_unmet clears it.
        incident.unmet_since = now

    def _need(self, incident: Incident) -> Need:
        rules = self._rules(incident)
        needs_roles, needs_teams = rules.needs_roles, rules.needs_teams
        committed_rings: list[int] = []
        open_now = 0
        skilled = False
        roles, teams = self.index.roles, self.index.teams
        slot_of = self.index.slot_or_unknown
        for assignment_id in self._counting_ids(incident):
            a = self.assignments[assignment_id]
            state = a.state
            committed_rings.append(NO_RING if a.ring_min is None else a.ring_min)
            if state is AssignmentState.OFFERED:
                open_now += 1
            if skilled or not (needs_roles or needs_teams):
                continue
            slot = slot_of(a.volunteer_id)
            if slot >= 0:
                skilled = bool((int(roles[slot]) & needs_roles) or (int(teams[slot]) & needs_teams))
        return Need(
            quota=incident.quota,
            committed_rings=committed_rings,
            committed_skilled=skilled,
            skill_required=bool(rules.needs_roles or rules.needs_teams),
            max_new=rules.max_open_offers - open_now,
        )

    def _replan(self, incidents: Sequence[Incident], now: float) -> list[Command]:
        incidents = [i for i in incidents if i.state == "open" and i.dispatch == "auto"]
        if not incidents:
            return []
        needs = [self._need(i) for i in incidents]
        if len(incidents) == 1:
            ranking = self.ranking(incidents[0], now)
            rankings, plans = [ranking], [plan_incident(ranking, needs[0])]
        else:
            rankings = [self.ranking(i, now) for i in incidents]
            plans = plan_jointly(rankings, needs)
        commands: list[Command] = []
        for incident, ranking, plan in zip(incidents, rankings, plans, strict=True):
            for position in plan.picks:
                slot = int(ranking.slots[position])
                _, cmds = self._open_offer(
                    incident, self.index.ids[slot], float(ranking.eta_s[position]), now
                )
                commands += cmds
            commands += self._set_unmet(incident, plan, now)
        return commands

    def _set_unmet(self, incident: Incident, plan: Plan, now: float) -> list[Command]:
        unmet = plan.unmet
        if unmet == incident.unmet:
            return []
        if RINGS[-1] in unmet and RINGS[-1] not in incident.unmet:
            incident.unmet_since = now
        elif RINGS[-1] not in unmet:
            incident.unmet_since = None
        incident.unmet = unmet
        return [
            Persist("incident.updated", now, (incident,)),
            Notify("incident.updated", now, incident=incident),
        ]

    def _open_offer(
        self, incident: Incident, volunteer_id: str, eta: float, now: float
    ) -> tuple[Assignment, list[Command]]:
        rules = self._rules(incident)
        ring = int(np.searchsorted(RING_LIMITS_S, eta, side="left"))
        assignment = Assignment(
            id=self._new_assignment_id(),
            incident_id=incident.id,
            volunteer_id=volunteer_id,
            state=AssignmentState.OFFERED,
            eta_s=eta,
            ring_min=RINGS[ring] if ring < len(RINGS) and math.isfinite(eta) else None,
            offered_at=now,
            expires_at=now + rules.offer_timeout_s,
            updated_at=now,
        )
        self.assignments[assignment.id] = assignment
        incident.assignment_ids.append(assignment.id)
        self._hold(volunteer_id, assignment)
        return assignment, [
            Persist("assignment.offered", now, (assignment,)),
            Offer(assignment, incident),
            Notify("assignment.offered", now, incident=incident, assignment=assignment),
        ]

    def _move(
        self,
        assignment: Assignment,
        event: AssignmentEvent,
        now: float,
        *,
        reason: str | None = None,
        actor: str | None = None,
        tell: bool = False,
    ) -> list[Command]:
        """Move ``assignment`` by ``event``; ``tell`` sends the volunteer an
        ``assignment.updated`` (a change they did not make; expiry always tells them)."""
        before = assignment.state
        assignment.state = next_state(before, event)  # raises IllegalTransition
        assignment.updated_at = now
        if before is AssignmentState.OFFERED:
            self._offers.pop(assignment.id, None)
        if reason is not None:
            assignment.reason = reason
        volunteer_id = assignment.volunteer_id
        slot = self.index.slot(volunteer_id) if volunteer_id in self.index else None
        commands: list[Command] = []
        if assignment.state is AssignmentState.ACCEPTED:
            assignment.accepted_at = now
            if slot is not None:
                self.index.set_status(slot, Status.BUSY)
        if is_terminal(assignment.state):
            self._release(volunteer_id)
            if slot is not None and is_active(before):
                self.index.set_status(slot, self._availability.get(volunteer_id, Status.AVAILABLE))
        feed = FEED_EVENTS[assignment.state]
        incident = self.incidents[assignment.incident_id]
        commands.append(Persist(feed, now, (assignment,), actor=actor))
        if assignment.state is AssignmentState.CANCELLED:
            commands.append(Cancel(assignment))
        if assignment.state is AssignmentState.COMPLETED:
            rules = self._rules(incident)
            service = now - (assignment.accepted_at or assignment.offered_at)
            points = rules.points + int(rules.points_per_hour * service / 3600.0)
            commands.append(Credit(volunteer_id, assignment.id, points, service))
        commands.append(
            Notify(
                feed,
                now,
                incident=incident,
                assignment=assignment,
                to_volunteer=tell or assignment.state is AssignmentState.EXPIRED,
            )
        )
        return commands

    def _stand_down_surplus(self, incident: Incident, now: float) -> list[Command]:
        """Cancel open offers that are no longer needed once enough people accepted."""
        need = self._need(incident)
        counting = [self.assignments[a] for a in self._counting_ids(incident)]
        accepted_rings = [
            NO_RING if a.ring_min is None else a.ring_min
            for a in counting
            if a.state is not AssignmentState.OFFERED
        ]
        met = Need(
            quota=incident.quota,
            committed_rings=accepted_rings,
            committed_skilled=need.committed_skilled,
            skill_required=need.skill_required,
        )
        if any(met.shortfall().values()) or met.wants_skill():
            return []
        commands: list[Command] = []
        for assignment in counting:
            if is_open(assignment.state):
                commands += self._move(assignment, AssignmentEvent.CANCEL, now, reason="quota met")
        return commands

    def forget(self, incident_id: str) -> None:
        """Drop a closed incident and its assignments from memory (they are final and in
        the store). Without it, :meth:`tick` and :meth:`next_deadline`, which look at every
        incident held, would slow down day after day.

        Raises:
            NotFound: unknown incident.
            Conflict: the incident is still open.
        """
        incident = self.incident(incident_id)
        if incident.state != "closed":
            raise Conflict(f"incident {incident_id} is still open")
        del self.incidents[incident_id]
        self._asked.pop(incident_id, None)
        self._counting.pop(incident_id, None)
        for assignment_id in incident.assignment_ids:
            self.assignments.pop(assignment_id, None)

    # ------------------------------------------------------------ restoration

    def restore(self, incidents: Iterable[Incident], assignments: Iterable[Assignment]) -> None:
        """Rebuild the in-memory state from a store after a restart.

        Offers that expired during the downtime are expired by the next :meth:`tick`.
        """
        self._asked.clear()
        self._counting.clear()
        for incident in incidents:
            self.incidents[incident.id] = incident
        for assignment in sorted(assignments, key=lambda a: (a.offered_at, a.id)):
            self.assignments[assignment.id] = assignment
            owner = self.incidents.get(assignment.incident_id)
            if owner is not None and assignment.id not in owner.assignment_ids:
                owner.assignment_ids.append(assignment.id)
            if is_open(assignment.state) or is_active(assignment.state):
                self._hold(assignment.volunteer_id, assignment)
                if is_active(assignment.state) and assignment.volunteer_id in self.index:
                    self.index.set_status(self.index.slot(assignment.volunteer_id), Status.BUSY)
