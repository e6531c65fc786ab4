"""The contract's JSON shapes for the engine's objects (one place, used by REST and websockets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dispatch.core.clock import to_iso
from dispatch.core.engine import Assignment, Incident, rings_of

__all__ = ["assignment_wire", "incident_brief", "incident_summary", "incident_wire"]


def assignment_wire(a: Assignment) -> dict[str, Any]:
    """``{id, incident_id, volunteer_id, state, eta_s, ring_min, offered_at, expires_at,
    updated_at}`` (+ ``reason`` when one was given)."""
    out: dict[str, Any] = {
        "id": a.id,
        "incident_id": a.incident_id,
        "volunteer_id": a.volunteer_id,
        "state": a.state.value,
        "eta_s": None if a.eta_s != a.eta_s or a.eta_s == float("inf") else round(a.eta_s, 1),
        "ring_min": a.ring_min,
        "offered_at": to_iso(a.offered_at),
        "expires_at": to_iso(a.expires_at),
        "updated_at": to_iso(a.updated_at),
    }
    if a.reason is not None:
        out["reason"] = a.reason
    return out


def incident_brief(i: Incident) -> dict[str, Any]:
    """What a volunteer sees of an incident in ``assignment.offered``."""
    return {
        "id": i.id,
        "type": i.type,
        "lat": i.lat,
        "lon": i.lon,
        "severity": i.severity,
        "note": i.note,
    }


def incident_wire(i: Incident, assignments: Sequence[Assignment]) -> dict[str, Any]:
    """The full incident with its assignments: the contract's fields plus ``dispatch``,
    ``unmet``, ``max_eta_s``, ``closed_at`` and ``outcome``."""
    return {
        **incident_summary(i, assignments),
        "assignments": [assignment_wire(a) for a in assignments],
    }


def incident_summary(i: Incident, assignments: Sequence[Assignment]) -> dict[str, Any]:
    """:func:`incident_wire` without the ``assignments`` list (``rings`` still counts them):
    what the operators' feed carries beside the one assignment an ``assignment.*`` event is
    about, so that an offer to 100 volunteers is not 100 copies of all 100 assignments."""
    return {
        **incident_brief(i),
        "state": i.state,
        "dispatch": i.dispatch,
        "created_at": to_iso(i.created_at),
        "closed_at": None if i.closed_at is None else to_iso(i.closed_at),
        "outcome": i.outcome,
        "rings": rings_of(i.quota, assignments),
        "unmet": list(i.unmet),
        "max_eta_s": i.max_eta_s,
    }
