"""The REST API of the contract (prefix ``/api/v1``): thin views over :class:`Service`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response

from dispatch.app.deps import AnyCaller, OperatorOnly, ServiceDep
from dispatch.app.models import (
    AvailabilityIn,
    CloseIn,
    IncidentIn,
    OffersIn,
    PositionsIn,
    ReasonIn,
    VolunteerIn,
)
from dispatch.core.clock import parse_iso
from dispatch.core.states import AssignmentEvent
from dispatch.service import Principal, Service
from dispatch.store.base import VolunteerRecord
from dispatch.wire import assignment_wire

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
VolunteerId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ObjectId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _own(caller: Principal, volunteer_id: str) -> None:
    if not caller.may_act_for(volunteer_id):
        raise HTTPException(403, "a volunteer may only act for themselves")


async def _volunteer_json(service: Service, volunteer_id: str) -> dict[str, Any]:
    record = await service.volunteer(volunteer_id)
    return {
        "id": record.id,
        "name": record.name,
        "unit_id": record.unit_id,
        "roles": list(record.roles),
        "teams": list(record.teams),
        "mode": record.mode,
        "phone": record.phone,
        "status": service.volunteer_status(volunteer_id),
        "position": service.volunteer_position(volunteer_id),
    }


@router.put("/volunteers/{volunteer_id}", status_code=200)
async def put_volunteer(
    volunteer_id: VolunteerId,
    body: VolunteerIn,
    service: ServiceDep,
    _: OperatorOnly,
    response: Response,
) -> dict[str, Any]:
    """Create (201) or replace (200) a volunteer of the roster."""
    record = VolunteerRecord(
        id=volunteer_id,
        name=body.name,
        unit_id=body.unit_id,
        roles=tuple(dict.fromkeys(body.roles)),
        teams=tuple(dict.fromkeys(body.teams)),
        mode=body.mode,
        phone=body.phone,
    )
    _stored, created = await service.put_volunteer(record)
    response.status_code = 201 if created else 200
    return await _volunteer_json(service, volunteer_id)


@router.get("/volunteers/{volunteer_id}")
async def get_volunteer(
    volunteer_id: VolunteerId, service: ServiceDep, caller: AnyCaller
) -> dict[str, Any]:
    _own(caller, volunteer_id)
    return await _volunteer_json(service, volunteer_id)


@router.post("/volunteers/{volunteer_id}/tokens", status_code=201)
async def issue_token(
    volunteer_id: VolunteerId, service: ServiceDep, _: OperatorOnly
) -> dict[str, str]:
    """A new token for the volunteer's phone; it is shown once and stored only as a hash."""
    return {"token": await service.issue_token(volunteer_id)}


@router.put("/volunteers/{volunteer_id}/availability")
async def set_availability(
    volunteer_id: VolunteerId, body: AvailabilityIn, service: ServiceDep, caller: AnyCaller
) -> dict[str, Any]:
    _own(caller, volunteer_id)
    await service.set_availability(volunteer_id, body.status, caller.actor)
    return await _volunteer_json(service, volunteer_id)


@router.get("/volunteers/{volunteer_id}/points")
async def get_points(
    volunteer_id: VolunteerId, service: ServiceDep, caller: AnyCaller
) -> dict[str, Any]:
    _own(caller, volunteer_id)
    account = await service.points(volunteer_id)
    return {
        "volunteer_id": volunteer_id,
        "points": account.points,
        "service_seconds": round(account.service_seconds, 1),
        "completed": account.completed,
    }


@router.post("/positions")
async def post_positions(
    body: PositionsIn, service: ServiceDep, caller: AnyCaller
) -> dict[str, Any]:
    """Fixes from the gateway (operator token, any volunteer) or a phone (its own id)."""
    for position in body.positions:
        _own(caller, position.volunteer_id)
    accepted, rejected = service.ingest(
        [
            (
                p.volunteer_id,
                p.lat,
                p.lon,
                parse_iso(p.ts),
                float("nan") if p.accuracy_m is None else p.accuracy_m,
            )
            for p in body.positions
        ]
    )
    if accepted:
        await service.durable()  # answer only once the accepted fixes are in the store
    return {
        "accepted": accepted,
        "rejected": [{"index": i, "reason": reason} for i, reason in rejected],
    }


@router.post("/incidents", status_code=201)
async def create_incident(body: IncidentIn, service: ServiceDep, _: OperatorOnly) -> dict[str, Any]:
    incident = await service.create_incident(
        body.type,
        body.lat,
        body.lon,
        severity=body.severity,
        note=body.note,
        dispatch=body.dispatch,
    )
    return await service.incident_json(incident.id)


@router.get("/incidents")
async def list_incidents(
    service: ServiceDep,
    _: OperatorOnly,
    state: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
) -> dict[str, Any]:
    return {"incidents": await service.list_incidents(state)}


@router.get("/incidents/{incident_id}")
async def get_incident(
    incident_id: ObjectId, service: ServiceDep, _: OperatorOnly
) -> dict[str, Any]:
    return await service.incident_json(incident_id)


@router.get("/incidents/{incident_id}/candidates")
async def get_candidates(
    incident_id: ObjectId,
    service: ServiceDep,
    _: OperatorOnly,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    max_eta_s: Annotated[float, Query(gt=0, le=3600, allow_inf_nan=False)] = 300.0,
) -> dict[str, Any]:
    await service.stored_incident(incident_id)
    if incident_id not in service.core.incidents:
        return {"incident_id": incident_id, "candidates": []}
    candidates = service.candidates(incident_id, limit, max_eta_s)
    return {"incident_id": incident_id, "candidates": [c.to_wire() for c in candidates]}


@router.post("/incidents/{incident_id}/offers", status_code=201)
async def post_offers(
    incident_id: ObjectId, body: OffersIn, service: ServiceDep, _: OperatorOnly
) -> dict[str, Any]:
    assignments = await service.offer(incident_id, body.volunteer_ids)
    return {"assignments": [assignment_wire(a) for a in assignments]}


@router.post("/incidents/{incident_id}/close")
async def close_incident(
    incident_id: ObjectId, service: ServiceDep, _: OperatorOnly, body: CloseIn | None = None
) -> dict[str, Any]:
    await service.close_incident(incident_id, None if body is None else body.outcome)
    return await service.incident_json(incident_id)


async def _answer(
    service: Service,
    caller: Principal,
    assignment_id: str,
    event: AssignmentEvent,
    reason: str | None = None,
) -> dict[str, Any]:
    assignment = await service.apply(assignment_id, event, caller, reason)
    return assignment_wire(assignment)


@router.post("/assignments/{assignment_id}/accept")
async def accept(assignment_id: ObjectId, service: ServiceDep, caller: AnyCaller) -> dict[str, Any]:
    return await _answer(service, caller, assignment_id, AssignmentEvent.ACCEPT)


@router.post("/assignments/{assignment_id}/decline")
async def decline(
    assignment_id: ObjectId, service: ServiceDep, caller: AnyCaller, body: ReasonIn | None = None
) -> dict[str, Any]:
    reason = None if body is None else body.reason
    return await _answer(service, caller, assignment_id, AssignmentEvent.DECLINE, reason)


@router.post("/assignments/{assignment_id}/arrive")
async def arrive(assignment_id: ObjectId, service: ServiceDep, caller: AnyCaller) -> dict[str, Any]:
    return await _answer(service, caller, assignment_id, AssignmentEvent.ARRIVE)


@router.post("/assignments/{assignment_id}/complete")
async def complete(
    assignment_id: ObjectId, service: ServiceDep, caller: AnyCaller
) -> dict[str, Any]:
    return await _answer(service, caller, assignment_id, AssignmentEvent.COMPLETE)


@router.post("/assignments/{assignment_id}/withdraw")
async def withdraw(
    assignment_id: ObjectId, service: ServiceDep, caller: AnyCaller, body: ReasonIn | None = None
) -> dict[str, Any]:
    """An addition to the contract: an accepted volunteer pulls out; the engine replaces them."""
    reason = None if body is None else body.reason
    return await _answer(service, caller, assignment_id, AssignmentEvent.WITHDRAW, reason)


@router.get("/coverage")
async def coverage(
    service: ServiceDep,
    _: OperatorOnly,
    k: Annotated[int, Query(ge=1, le=10)] = 1,
) -> dict[str, Any]:
    return await service.coverage(k)
