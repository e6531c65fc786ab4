"""The assignment state machine.

Theory of operation
-------------------
Everything that affects an assignment's state lives here. An assignment is one volunteer's
part in one incident; it is created ``offered`` and then moves only by the events of
:class:`AssignmentEvent`, through the one table :data:`TRANSITIONS` (a dict of dicts, as in
h11's ``_state.py``): ``TRANSITIONS[state][event]`` is the next state, and a pair missing from
the table is illegal: :func:`next_state` raises :class:`~dispatch.errors.IllegalTransition`,
which the API layer turns into 409. Nothing else in the engine decides whether an event is
allowed; a store persists the state :func:`next_state` returns (compare-and-set on the old one),
and :data:`FEED_EVENTS` names what the operators' feed announces when an assignment enters a
state.

.. code-block:: text

    offered --accept--> accepted --arrive--> on_scene --complete--> completed
    offered --decline--> declined
    offered --expire--> expired
    offered, accepted, on_scene --cancel--> cancelled
    accepted, on_scene --withdraw--> withdrawn

Who sends which event (the table does not check actors; the API layer does):

* ``accept``, ``decline``, ``arrive``, ``complete``: the assigned volunteer, or an operator
  acting for them;
* ``expire``: the timer, when the offer's ``offer_timeout_s`` has passed unanswered;
* ``cancel``: an operator, or the engine when the incident closes or its quota is met
  (surplus offers are stood down);
* ``withdraw``: the volunteer pulls out after accepting (the car broke down, a family
  emergency); the engine then looks for a replacement.

Decisions:

* ``accepted -complete-> completed`` is **not** allowed: completion needs ``on_scene``. A
  completed assignment earns points (积分, redeemable for rewards) and its arrival time is the
  only measure of whether the 1-3-5 rings were met, so "completed" must mean "was there". A
  volunteer who forgot to tap "arrived" sends ``arrive`` then ``complete``.
* Repeating an event (``accept`` on ``accepted``) is illegal like any other pair; an edge that
  wants idempotent retries compares the assignment's state before calling.
* Terminal states (``completed``, ``declined``, ``expired``, ``cancelled``, ``withdrawn``)
  accept nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, TypeVar

from dispatch.errors import IllegalTransition, InvalidInput

__all__ = [
    "FEED_EVENTS",
    "TRANSITIONS",
    "VOLUNTEER_MESSAGES",
    "AssignmentEvent",
    "AssignmentState",
    "allowed_events",
    "is_active",
    "is_open",
    "is_terminal",
    "next_state",
]


class AssignmentState(enum.StrEnum):
    """The contract's assignment states; the value is the wire name."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    ON_SCENE = "on_scene"
    COMPLETED = "completed"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"

    @classmethod
    def parse(cls, name: object, field: str = "state") -> AssignmentState:
        """The state with wire name ``name``.

        Args:
            name: the value received.
            field: the field it came from, for the error.

        Raises:
            InvalidInput: ``name`` is not one of the contract's states.
        """
        return _parse(cls, name, field)


class AssignmentEvent(enum.StrEnum):
    """What can happen to an assignment; the value is the wire name (the websocket ``type``
    and the last segment of ``POST /assignments/{id}/<event>``)."""

    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"
    ARRIVE = "arrive"
    COMPLETE = "complete"
    CANCEL = "cancel"
    WITHDRAW = "withdraw"

    @classmethod
    def parse(cls, name: object, field: str = "type") -> AssignmentEvent:
        """The event with wire name ``name``.

        Args:
            name: the value received.
            field: the field it came from, for the error.

        Raises:
            InvalidInput: ``name`` is not one of the events.
        """
        return _parse(cls, name, field)


_Member = TypeVar("_Member", AssignmentState, AssignmentEvent)


def _parse(kind: type[_Member], name: object, field: str) -> _Member:
    for member in kind:
        if isinstance(name, str) and member.value == name:
            return member
    valid = ", ".join(member.value for member in kind)
    raise InvalidInput(
        f"{field}: unknown {kind.__name__} {name!r}; expected one of {valid}", field=field
    )


_S = AssignmentState
_E = AssignmentEvent

#: The whole machine: ``TRANSITIONS[state][event]`` is the state after ``event``. A pair that
#: is not here is illegal. Read-only.
TRANSITIONS: Final[Mapping[AssignmentState, Mapping[AssignmentEvent, AssignmentState]]] = (
    MappingProxyType(
        {
            _S.OFFERED: MappingProxyType(
                {
                    _E.ACCEPT: _S.ACCEPTED,
                    _E.DECLINE: _S.DECLINED,
                    _E.EXPIRE: _S.EXPIRED,
                    _E.CANCEL: _S.CANCELLED,
                }
            ),
            _S.ACCEPTED: MappingProxyType(
                {
                    _E.ARRIVE: _S.ON_SCENE,
                    _E.CANCEL: _S.CANCELLED,
                    _E.WITHDRAW: _S.WITHDRAWN,
                }
            ),
            _S.ON_SCENE: MappingProxyType(
                {
                    _E.COMPLETE: _S.COMPLETED,
                    _E.CANCEL: _S.CANCELLED,
                    _E.WITHDRAW: _S.WITHDRAWN,
                }
            ),
            _S.COMPLETED: MappingProxyType({}),
            _S.DECLINED: MappingProxyType({}),
            _S.EXPIRED: MappingProxyType({}),
            _S.CANCELLED: MappingProxyType({}),
            _S.WITHDRAWN: MappingProxyType({}),
        }
    )
)

#: The operator-feed event (``/ws/operator``) announcing that an assignment entered a state.
#: Every transition into ``X`` is announced as ``assignment.X``; ``assignment.offered`` is sent
#: when an assignment is created.
FEED_EVENTS: Final[Mapping[AssignmentState, str]] = MappingProxyType(
    {
        _S.OFFERED: "assignment.offered",
        _S.ACCEPTED: "assignment.accepted",
        _S.ON_SCENE: "assignment.on_scene",
        _S.COMPLETED: "assignment.completed",
        _S.DECLINED: "assignment.declined",
        _S.EXPIRED: "assignment.expired",
        _S.CANCELLED: "assignment.cancelled",
        _S.WITHDRAWN: "assignment.withdrawn",
    }
)

#: The message the volunteer's own websocket (``/ws/volunteer``) gets when their assignment
#: enters a state: the contract has ``assignment.offered``, ``assignment.cancelled``,
#: ``assignment.expired`` and, for every other change, ``assignment.updated``.
VOLUNTEER_MESSAGES: Final[Mapping[AssignmentState, str]] = MappingProxyType(
    {
        _S.OFFERED: "assignment.offered",
        _S.ACCEPTED: "assignment.updated",
        _S.ON_SCENE: "assignment.updated",
        _S.COMPLETED: "assignment.updated",
        _S.DECLINED: "assignment.updated",
        _S.EXPIRED: "assignment.expired",
        _S.CANCELLED: "assignment.cancelled",
        _S.WITHDRAWN: "assignment.updated",
    }
)

_OPEN: Final = frozenset({_S.OFFERED})
_ACTIVE: Final = frozenset({_S.ACCEPTED, _S.ON_SCENE})


def next_state(state: AssignmentState, event: AssignmentEvent) -> AssignmentState:
    """The state an assignment in ``state`` moves to on ``event``.

    Args:
        state: the assignment's current state.
        event: what happened.

    Returns:
        The new state, from :data:`TRANSITIONS`.

    Raises:
        IllegalTransition: ``state`` does not allow ``event`` (this includes every event in a
            terminal state); its ``state`` and ``event`` attributes hold the wire names.
    """
    try:
        return TRANSITIONS[state][event]
    except (KeyError, TypeError):
        raise IllegalTransition(str(state), str(event)) from None


def allowed_events(state: AssignmentState) -> frozenset[AssignmentEvent]:
    """The events ``state`` accepts (empty for a terminal state); e.g. for the console's buttons.

    Args:
        state: an assignment state.
    """
    return frozenset(TRANSITIONS[state])


def is_open(state: AssignmentState) -> bool:
    """True for an offer awaiting its answer (``offered``): the volunteer may not be offered
    another incident meanwhile."""
    return state in _OPEN


def is_active(state: AssignmentState) -> bool:
    """True while the volunteer is committed (``accepted``, ``on_scene``): they are ``busy``."""
    return state in _ACTIVE


def is_terminal(state: AssignmentState) -> bool:
    """True for a final state: no event moves it any more."""
    return not TRANSITIONS[state]
