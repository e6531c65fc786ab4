"""The assignment state machine, pair by pair.

The expectations are written out here by hand from CONTRACT.md and the module's documented
decisions; nothing is derived from ``dispatch.core.states.TRANSITIONS``.
"""

from __future__ import annotations

import itertools

import pytest

from dispatch.core.states import (
    FEED_EVENTS,
    TRANSITIONS,
    VOLUNTEER_MESSAGES,
    AssignmentEvent,
    AssignmentState,
    allowed_events,
    is_active,
    is_open,
    is_terminal,
    next_state,
)
from dispatch.errors import Conflict, IllegalTransition, InvalidInput

STATES = (
    "offered",
    "accepted",
    "on_scene",
    "completed",
    "declined",
    "expired",
    "cancelled",
    "withdrawn",
)
EVENTS = ("accept", "decline", "expire", "arrive", "complete", "cancel", "withdraw")

#: (state, event) -> next state, for the legal pairs only; every other pair is illegal.
EXPECTED = {
    ("offered", "accept"): "accepted",
    ("offered", "decline"): "declined",
    ("offered", "expire"): "expired",
    ("offered", "cancel"): "cancelled",
    ("accepted", "arrive"): "on_scene",
    ("accepted", "cancel"): "cancelled",
    ("accepted", "withdraw"): "withdrawn",
    ("on_scene", "complete"): "completed",
    ("on_scene", "cancel"): "cancelled",
    ("on_scene", "withdraw"): "withdrawn",
}

#: The contract's operator feed names, per state entered.
EXPECTED_FEED = {
    "offered": "assignment.offered",
    "accepted": "assignment.accepted",
    "declined": "assignment.declined",
    "expired": "assignment.expired",
    "cancelled": "assignment.cancelled",
    "on_scene": "assignment.on_scene",
    "completed": "assignment.completed",
    "withdrawn": "assignment.withdrawn",
}

PAIRS = list(itertools.product(STATES, EVENTS))


def test_the_enums_carry_exactly_the_contract_names() -> None:
    assert sorted(s.value for s in AssignmentState) == sorted(STATES)
    assert sorted(e.value for e in AssignmentEvent) == sorted(EVENTS)


def test_the_product_is_complete() -> None:
    assert len(PAIRS) == 56
    assert set(EXPECTED) <= set(PAIRS)


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_every_pair(state: str, event: str) -> None:
    s, e = AssignmentState(state), AssignmentEvent(event)
    if (state, event) in EXPECTED:
        target = next_state(s, e)
        assert target is AssignmentState(EXPECTED[state, event])
        assert TRANSITIONS[s][e] is target
        assert e in allowed_events(s)
    else:
        with pytest.raises(IllegalTransition) as info:
            next_state(s, e)
        assert info.value.state == state
        assert info.value.event == event
        assert repr(state) in str(info.value)
        assert repr(event) in str(info.value)
        assert isinstance(info.value, Conflict)
        assert e not in TRANSITIONS[s]
        assert e not in allowed_events(s)


@pytest.mark.parametrize(("state", "event"), list(EXPECTED), ids=[f"{s}-{e}" for s, e in EXPECTED])
def test_every_legal_transition_is_announced_by_the_contract_name(state: str, event: str) -> None:
    target = next_state(AssignmentState(state), AssignmentEvent(event))
    assert FEED_EVENTS[target] == EXPECTED_FEED[EXPECTED[state, event]]


def test_feed_names_cover_every_state() -> None:
    assert {s.value: name for s, name in FEED_EVENTS.items()} == EXPECTED_FEED


def test_volunteer_messages_are_the_contract_types() -> None:
    assert {s.value: name for s, name in VOLUNTEER_MESSAGES.items()} == {
        "offered": "assignment.offered",
        "accepted": "assignment.updated",
        "on_scene": "assignment.updated",
        "completed": "assignment.updated",
        "declined": "assignment.updated",
        "expired": "assignment.expired",
        "cancelled": "assignment.cancelled",
        "withdrawn": "assignment.updated",
    }


def test_accepted_cannot_complete_without_arriving() -> None:
    with pytest.raises(IllegalTransition):
        next_state(AssignmentState.ACCEPTED, AssignmentEvent.COMPLETE)
    on_scene = next_state(AssignmentState.ACCEPTED, AssignmentEvent.ARRIVE)
    assert next_state(on_scene, AssignmentEvent.COMPLETE) is AssignmentState.COMPLETED


@pytest.mark.parametrize(
    ("state", "open_", "active", "terminal"),
    [
        ("offered", True, False, False),
        ("accepted", False, True, False),
        ("on_scene", False, True, False),
        ("completed", False, False, True),
        ("declined", False, False, True),
        ("expired", False, False, True),
        ("cancelled", False, False, True),
        ("withdrawn", False, False, True),
    ],
)
def test_classification(state: str, open_: bool, active: bool, terminal: bool) -> None:
    s = AssignmentState(state)
    assert is_open(s) is open_
    assert is_active(s) is active
    assert is_terminal(s) is terminal
    assert (allowed_events(s) == frozenset()) is terminal


def test_a_full_life() -> None:
    state = AssignmentState.OFFERED
    for event in ("accept", "arrive", "complete"):
        state = next_state(state, AssignmentEvent(event))
    assert state is AssignmentState.COMPLETED


def test_the_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[AssignmentState.COMPLETED][AssignmentEvent.ACCEPT] = (  # type: ignore[index]
            AssignmentState.ACCEPTED
        )
    with pytest.raises(TypeError):
        TRANSITIONS[AssignmentState.OFFERED] = {}  # type: ignore[index]


def test_wire_names_parse() -> None:
    assert AssignmentEvent.parse("accept") is AssignmentEvent.ACCEPT
    assert AssignmentState.parse("on_scene") is AssignmentState.ON_SCENE
    assert AssignmentEvent.ACCEPT.value == "accept"
    assert isinstance(AssignmentEvent.ACCEPT, str)  # StrEnum: usable as the wire name
    assert str(AssignmentState.ON_SCENE) == "on_scene"


@pytest.mark.parametrize("bad", ["ACCEPT", "accepted", "", None, 3, "accept "])
def test_unknown_event_names_are_invalid_input_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidInput, match=r"^type: unknown AssignmentEvent") as info:
        AssignmentEvent.parse(bad)
    assert info.value.field == "type"


def test_unknown_state_names_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="expected one of offered, accepted") as info:
        AssignmentState.parse("done", field="state")
    assert info.value.field == "state"


def test_an_unknown_state_value_is_an_illegal_transition_not_a_key_error() -> None:
    with pytest.raises(IllegalTransition):
        next_state("bogus", AssignmentEvent.ACCEPT)  # type: ignore[arg-type]
