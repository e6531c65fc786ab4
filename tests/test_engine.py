"""The sans-I/O engine: offers, escalation on decline and silence, widening, points.

No sockets and no sleeps: time is a FakeClock advanced by the test, and every effect is a
command the engine returns.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest

from dispatch.core.clock import FakeClock
from dispatch.core.engine import (
    Cancel,
    Command,
    Credit,
    DispatchCore,
    Notify,
    Offer,
    Persist,
)
from dispatch.core.policy import DEFAULT_POLICY_PATH, Policy, parse_policy
from dispatch.core.states import AssignmentEvent, AssignmentState, allowed_events, is_terminal
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from geo.modes import Mode
from geo.travel import CrowFlyModel
from tests.strategies import GEOD, NOW, SEAT, place
from units.index import LiveIndex
from units.vocab import Role, Status

# Two test-only types beside the shipped ones: one person within each ring, no skill needed;
# and one that needs a mediator.
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

[types.mediation_drill]
needs = { roles = ["mediator"] }
quota = { 1 = 0, 3 = 1, 5 = 1 }
"""


@pytest.fixture
def policy() -> Policy:
    return parse_policy(DEFAULT_POLICY_PATH.read_text(encoding="utf-8") + DRILL, "test-policy")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def counter(prefix: str) -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def make_core(index: LiveIndex, policy: Policy) -> DispatchCore:
    return DispatchCore(
        index,
        CrowFlyModel(),
        policy,
        incident_ids=counter("i"),
        assignment_ids=counter("a"),
    )


def offered_to(commands: list[Command]) -> list[str]:
    return [c.assignment.volunteer_id for c in commands if isinstance(c, Offer)]


def feed(commands: list[Command]) -> list[str]:
    return [c.type for c in commands if isinstance(c, Notify)]


def test_auto_dispatch_offers_to_the_best_and_escalates_on_decline_and_silence(
    policy: Policy, clock: FakeClock
) -> None:
    index = LiveIndex()
    for i, distance in enumerate([100.0, 150.0, 200.0, 250.0]):
        place(index, f"v{i}", distance, now=clock.now())
    core = make_core(index, policy)

    incident, commands = core.create_incident("drill", *SEAT, clock.now())
    assert offered_to(commands) == ["v0"], "one person closes every ring: the nearest"
    assert feed(commands) == ["incident.created", "assignment.offered"]
    # Persist comes before the offer is pushed: nothing announced is lost.
    kinds = [type(c) for c in commands]
    assert kinds.index(Persist) < kinds.index(Offer)
    first = core.holding("v0")
    assert first is not None
    assert first.state is AssignmentState.OFFERED
    assert first.ring_min == 1
    assert first.expires_at == clock.now() + 30

    # v0 declines: the next best is offered at once.
    clock.advance(5)
    _, commands = core.apply(first.id, AssignmentEvent.DECLINE, clock.now(), reason="ill")
    declined = core.assignment(first.id)
    assert declined.state is AssignmentState.DECLINED
    assert declined.reason == "ill"
    assert offered_to(commands) == ["v1"]
    assert core.holding("v0") is None

    # v1 stays silent: nothing happens before the deadline...
    clock.advance(29.9)
    assert core.tick(clock.now()) == []
    assert core.next_deadline() == pytest.approx(NOW + 5 + 30)
    # ...and at the deadline the offer expires, the volunteer is told, v2 is offered.
    clock.advance(0.1)
    commands = core.tick(clock.now())
    expired = [c for c in commands if isinstance(c, Notify) and c.type == "assignment.expired"]
    assert len(expired) == 1
    assert expired[0].to_volunteer
    assert offered_to(commands) == ["v2"]

    # v2 accepts, arrives, completes: busy while assigned, then points.
    second = core.holding("v2")
    assert second is not None
    clock.advance(10)
    core.apply(second.id, AssignmentEvent.ACCEPT, clock.now())
    assert index.status[index.slot("v2")] == Status.BUSY
    assert core.rings(incident)["1"] == {"needed": 1, "accepted": 1}
    clock.advance(50)
    core.apply(second.id, AssignmentEvent.ARRIVE, clock.now())
    clock.advance(3600)
    _, commands = core.apply(second.id, AssignmentEvent.COMPLETE, clock.now())
    (credit,) = [c for c in commands if isinstance(c, Credit)]
    assert credit.volunteer_id == "v2"
    assert credit.service_seconds == pytest.approx(3650)
    assert credit.points == 7 + 60  # per completion + per hour of service
    assert index.status[index.slot("v2")] == Status.AVAILABLE
    assert core.holding("v2") is None


def test_a_volunteer_never_holds_two_offers_and_manual_offers_conflict(
    policy: Policy, clock: FakeClock
) -> None:
    index = LiveIndex()
    place(index, "only", 100.0, now=clock.now())
    place(index, "off", 120.0, now=clock.now())
    core = make_core(index, policy)
    core.set_availability("off", Status.OFF_DUTY, clock.now())
    _, commands = core.create_incident("drill", *SEAT, clock.now())
    assert offered_to(commands) == ["only"]
    second, commands = core.create_incident("drill", *SEAT, clock.now())
    assert offered_to(commands) == [], "'only' already holds an offer"
    assert second.unmet == (1, 3, 5)
    assert "incident.updated" in feed(commands)

    manual, _ = core.create_incident("drill", *SEAT, clock.now(), dispatch="manual")
    with pytest.raises(Conflict, match="already holds"):
        core.offer(manual.id, ["only"], clock.now())
    with pytest.raises(Conflict, match="off_duty"):
        core.offer(manual.id, ["off"], clock.now())
    with pytest.raises(NotFound):
        core.offer(manual.id, ["nobody"], clock.now())
    assert core.incident_assignments(manual) == [], "a refused offer changes nothing"
    with pytest.raises(InvalidInput):
        core.set_availability("only", Status.BUSY, clock.now())


def test_accepting_enough_stands_down_the_surplus(policy: Policy, clock: FakeClock) -> None:
    index = LiveIndex()
    for i in range(3):
        place(index, f"v{i}", 100.0 + i, now=clock.now())
    core = make_core(index, policy)
    manual, _ = core.create_incident("drill", *SEAT, clock.now(), dispatch="manual")
    assignments, commands = core.offer(manual.id, ["v0", "v1", "v2"], clock.now())
    assert offered_to(commands) == ["v0", "v1", "v2"]
    _, commands = core.apply(assignments[1].id, AssignmentEvent.ACCEPT, clock.now())
    cancelled = sorted(c.assignment.volunteer_id for c in commands if isinstance(c, Cancel))
    assert cancelled == ["v0", "v2"], "the quota is met: the other offers are stood down"
    assert assignments[0].state is AssignmentState.CANCELLED


def test_illegal_events_raise_and_change_nothing(policy: Policy, clock: FakeClock) -> None:
    index = LiveIndex()
    place(index, "v0", 100.0, now=clock.now())
    core = make_core(index, policy)
    _, commands = core.create_incident("drill", *SEAT, clock.now())
    (offer,) = [c for c in commands if isinstance(c, Offer)]
    with pytest.raises(IllegalTransition):
        core.apply(offer.assignment.id, AssignmentEvent.COMPLETE, clock.now())
    assert offer.assignment.state is AssignmentState.OFFERED
    with pytest.raises(NotFound):
        core.apply("nope", AssignmentEvent.ACCEPT, clock.now())
    with pytest.raises(InvalidInput):
        core.create_incident("meteor", *SEAT, clock.now())


def test_an_exhausted_search_is_unmet_then_widened(policy: Policy, clock: FakeClock) -> None:
    index = LiveIndex()
    place(index, "far", 2_500.0, mode=Mode.EBIKE, now=clock.now())  # ~470 s: beyond 5 min
    core = make_core(index, policy)
    incident, commands = core.create_incident("drill", *SEAT, clock.now())
    assert offered_to(commands) == []
    assert incident.unmet == (1, 3, 5)
    assert core.next_deadline() == pytest.approx(NOW + 30), "widen after widen_after_s"
    clock.advance(29)
    assert core.tick(clock.now()) == []
    clock.advance(1)
    commands = core.tick(clock.now())
    assert incident.max_eta_s == 600
    assert offered_to(commands) == ["far"], "reinforcements from beyond 5 minutes"
    held = core.holding("far")
    assert held is not None
    assert held.ring_min is None
    assert incident.unmet == (1, 3, 5), "a reinforcement does not meet the 5-minute ring"


def test_a_needed_skill_is_offered_even_if_someone_is_nearer(
    policy: Policy, clock: FakeClock
) -> None:
    index = LiveIndex()
    place(index, "near", 50.0, now=clock.now())
    place(index, "mediator", 400.0, roles=1 << Role.MEDIATOR, now=clock.now())
    core = make_core(index, policy)
    _, commands = core.create_incident("mediation_drill", *SEAT, clock.now())
    assert offered_to(commands) == ["mediator"]


def test_incidents_planned_at_the_same_moment_are_assigned_jointly(
    policy: Policy, clock: FakeClock
) -> None:
    # A at the seat, B 900 m east. x (a car, midway) reaches both within a minute; y (a car,
    # 500 m west of A) reaches only A within a minute. Greedy, A first, would send x to A and
    # leave B's 1-minute ring empty; jointly, y goes to A and x to B.
    index = LiveIndex()
    core = make_core(index, policy)
    lon_b, lat_b, _ = GEOD.fwd(SEAT[1], SEAT[0], 90.0, 900.0)
    a, _ = core.create_incident("drill", *SEAT, clock.now())
    b, _ = core.create_incident("drill", float(lat_b), float(lon_b), clock.now())
    assert a.unmet == (1, 3, 5)
    assert b.unmet == (1, 3, 5)
    clock.advance(30)  # both searches widen at the same moment, after volunteers show up
    place(index, "x", 450.0, azimuth=90.0, mode=Mode.CAR, now=clock.now())
    place(index, "y", 500.0, azimuth=-90.0, mode=Mode.CAR, now=clock.now())
    commands = core.tick(clock.now())
    offers = {c.incident.id: c.assignment.volunteer_id for c in commands if isinstance(c, Offer)}
    assert offers == {a.id: "y", b.id: "x"}
    assert core.incident(a.id).unmet == ()
    assert core.incident(b.id).unmet == ()


def test_closing_cancels_offers_and_completes_those_on_scene(
    policy: Policy, clock: FakeClock
) -> None:
    index = LiveIndex()
    place(index, "v0", 100.0, now=clock.now())
    place(index, "v1", 110.0, now=clock.now())
    core = make_core(index, policy)
    incident, _ = core.create_incident("drill", *SEAT, clock.now(), dispatch="manual")
    (on_scene, pending), _ = core.offer(incident.id, ["v0", "v1"], clock.now())
    core.apply(on_scene.id, AssignmentEvent.ACCEPT, clock.now())
    core.apply(on_scene.id, AssignmentEvent.ARRIVE, clock.now())
    _, commands = core.close_incident(incident.id, clock.now(), outcome="resolved")
    assert on_scene.state is AssignmentState.COMPLETED
    assert pending.state is AssignmentState.CANCELLED
    assert any(isinstance(c, Credit) for c in commands)
    told = [c for c in commands if isinstance(c, Notify) and c.to_volunteer]
    assert [(c.volunteer_type, c.assignment and c.assignment.id) for c in told] == [
        ("assignment.updated", on_scene.id)
    ], "the volunteer on scene hears that the incident closed"
    assert not [c for c in commands if isinstance(c, Cancel)], "stood down when v0 accepted"
    assert feed(commands)[-1] == "incident.closed"
    assert incident.state == "closed"
    assert incident.outcome == "resolved"
    with pytest.raises(Conflict):
        core.close_incident(incident.id, clock.now())


def test_restore_resumes_holders_and_expires_what_expired_while_down(
    policy: Policy, clock: FakeClock
) -> None:
    index = LiveIndex()
    place(index, "v0", 100.0, now=clock.now())
    place(index, "v1", 150.0, now=clock.now())
    core = make_core(index, policy)
    _, commands = core.create_incident("drill", *SEAT, clock.now())
    assert offered_to(commands) == ["v0"]

    # A new process: same index contents, state restored from what was persisted.
    restarted = make_core(index, policy)
    restarted.restore(core.incidents.values(), core.assignments.values())
    assert restarted.holding("v0") is not None
    clock.advance(120)  # the server was down past the deadline
    commands = restarted.tick(clock.now())
    assert "assignment.expired" in feed(commands)
    assert offered_to(commands) == ["v1"]


def test_widening_walks_every_step_and_closed_incidents_can_be_forgotten(
    policy: Policy, clock: FakeClock
) -> None:
    index = LiveIndex()
    place(index, "very_far", 7_000.0, mode=Mode.CAR, now=clock.now())  # ~730 s by car
    core = make_core(index, policy)
    incident, _ = core.create_incident("drill", *SEAT, clock.now())
    clock.advance(30)
    assert offered_to(core.tick(clock.now())) == [], "600 s is not enough"
    assert core.incident(incident.id).max_eta_s == 600
    assert core.next_deadline() == pytest.approx(clock.now() + 30), "the next step is due"
    clock.advance(30)
    assert offered_to(core.tick(clock.now())) == ["very_far"]
    assert core.incident(incident.id).max_eta_s == 900
    assert core.next_deadline() == pytest.approx(clock.now() + 30), "the offer's expiry"

    with pytest.raises(Conflict, match="still open"):
        core.forget(incident.id)
    core.close_incident(incident.id, clock.now())
    core.forget(incident.id)
    assert incident.id not in core.incidents
    assert core.holding("very_far") is None
    assert core.next_deadline() is None
    with pytest.raises(NotFound):
        core.forget(incident.id)


def expected_held(core: DispatchCore) -> list[bool]:
    """The held mask by its definition: a scan of every assignment the core knows."""
    holders = {
        a.volunteer_id
        for a in core.assignments.values()
        if a.state in (AssignmentState.OFFERED, AssignmentState.ACCEPTED, AssignmentState.ON_SCENE)
    }
    return [volunteer_id in holders for volunteer_id in core.index.ids]


@pytest.mark.parametrize("seed", range(6))
def test_the_held_mask_and_open_offers_follow_every_event(
    policy: Policy, clock: FakeClock, seed: int
) -> None:
    """The mask, the open-offer table and each incident's asked and counting assignments are
    kept in step incrementally; after any event (offers, answers, expiries, closing,
    forgetting, volunteers joining the roster while others hold offers, a restore into a
    fresh core) they equal a scan from scratch."""
    rng = random.Random(seed)
    index = LiveIndex()
    for i in range(12):
        place(index, f"v{i:02d}", rng.uniform(50.0, 2_000.0), azimuth=rng.uniform(0, 360))
    core = make_core(index, policy)
    joined = 12

    def check(core: DispatchCore) -> None:
        assert core.held_mask().tolist() == expected_held(core)
        offered = {a.id for a in core.assignments.values() if a.state is AssignmentState.OFFERED}
        assert {a.id for a in core._open_offers()} == offered
        for incident in core.incidents.values():
            mine = [core.assignments[a] for a in incident.assignment_ids]
            assert core._asked_slots(incident) == [index.slot(a.volunteer_id) for a in mine]
            assert core._counting_ids(incident) == [
                a.id
                for a in mine
                if a.state
                not in (
                    AssignmentState.DECLINED,
                    AssignmentState.EXPIRED,
                    AssignmentState.CANCELLED,
                    AssignmentState.WITHDRAWN,
                )
            ]
        deadlines = [core.assignments[a].expires_at for a in offered]
        due = core.next_deadline()
        if deadlines:
            assert due is not None
            assert due <= min(deadlines)

    for _ in range(60):
        step = rng.random()
        if step < 0.2:
            core.create_incident(rng.choice(["drill", "fire", "dispute"]), *SEAT, clock.now())
        elif step < 0.55:
            live = [a for a in core.assignments.values() if not is_terminal(a.state)]
            if live:
                assignment = rng.choice(live)
                event = rng.choice(list(AssignmentEvent))
                if event in allowed_events(assignment.state):
                    core.apply(assignment.id, event, clock.now())
        elif step < 0.7:
            clock.advance(rng.choice([5.0, 31.0, 200.0]))
            core.tick(clock.now())
        elif step < 0.8:
            open_ = [i for i in core.incidents.values() if i.state == "open"]
            if open_:
                incident = rng.choice(open_)
                core.close_incident(incident.id, clock.now())
                if rng.random() < 0.5:
                    core.forget(incident.id)
        elif step < 0.9:
            place(index, f"v{joined:02d}", rng.uniform(50.0, 2_000.0), now=clock.now())
            joined += 1
        else:
            restored = make_core(index, policy)
            restored.restore(core.incidents.values(), core.assignments.values())
            check(restored)
        check(core)
