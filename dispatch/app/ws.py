"""The volunteer and operator websockets of the contract.

Volunteer: ``/ws/volunteer?token=T[&since=SEQ]``. A bad token closes with 4401 before
``hello``. Then ``hello`` (the newest seq), every unacknowledged message with seq > since, in
order, then live ones. A newer connection of the same volunteer replaces this one (4409).
Incoming messages: ``ack``, ``position``, ``accept`` / ``decline`` / ``arrive`` / ``complete``
(and ``withdraw``, an addition). A message with an ``id`` gets exactly one reply (``result``
or ``error`` with ``re``); one without gets a reply only if it fails. A malformed or unknown
message gets an ``error``, and the connection stays open.

Operator: ``/ws/operator?token=T``: the feed of every state change and ``positions`` batches.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from dispatch.core.clock import parse_iso
from dispatch.core.states import AssignmentEvent
from dispatch.errors import Conflict, DispatchError, InvalidInput, NotFound
from dispatch.service import Principal, Service
from dispatch.wire import assignment_wire
from geo.coords import check_latlon
from units.index import FixOutcome

__all__ = ["ws_router"]

ws_router = APIRouter()

CLOSE_UNAUTHORIZED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_BAD_REQUEST: Final = 4400
MAX_MESSAGE: Final = 64 * 1024
_ANSWERS: Final = {
    "accept": AssignmentEvent.ACCEPT,
    "decline": AssignmentEvent.DECLINE,
    "arrive": AssignmentEvent.ARRIVE,
    "complete": AssignmentEvent.COMPLETE,
    "withdraw": AssignmentEvent.WITHDRAW,
}


class _Reject(Exception):
    """A message the volunteer sent cannot be served; ``code`` goes into the error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _service(socket: WebSocket) -> Service:
    service: Service = socket.app.state.service
    return service


async def _principal(socket: WebSocket) -> Principal | None:
    return await _service(socket).authenticate(socket.query_params.get("token"))


@ws_router.websocket("/ws/volunteer")
async def volunteer_socket(socket: WebSocket) -> None:
    service = _service(socket)
    await socket.accept()
    principal = await _principal(socket)
    if principal is None or principal.volunteer_id is None:
        await socket.close(CLOSE_UNAUTHORIZED, "a valid volunteer token is required")
        return
    volunteer_id = principal.volunteer_id
    raw_since = socket.query_params.get("since", "0")
    if not raw_since.isdigit() or len(raw_since) > 18:
        await socket.close(CLOSE_BAD_REQUEST, "since must be a non-negative integer")
        return
    since = int(raw_since)
    async with service.lock:
        # Under the lock no commit can slip between reading the outbox and attaching.
        last = await service.store.last_seq(volunteer_id)
        replay = await service.store.pending(volunteer_id, since)
        first = [{"type": "hello", "volunteer_id": volunteer_id, "seq": last}]
        first += [{**message, "seq": seq} for seq, message in replay]
        connection = service.hub.attach_volunteer(volunteer_id, socket, first)
    try:
        while not connection.closed.is_set():
            text = await socket.receive_text()
            reply = await _handle(service, volunteer_id, principal, text)
            if reply is not None:
                connection.push(reply)  # in order with the hub's messages, one writer
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await service.hub.detach_volunteer(volunteer_id, connection)


async def _handle(
    service: Service, volunteer_id: str, principal: Principal, text: str
) -> dict[str, Any] | None:
    message_id: object = None
    try:
        if len(text) > MAX_MESSAGE:
            raise _Reject("too_large", f"messages are limited to {MAX_MESSAGE} bytes")
        try:
            message = json.loads(text)
        except ValueError as exc:
            raise _Reject("malformed", "the message is not valid JSON") from exc
        if not isinstance(message, dict):
            raise _Reject("malformed", "a message is a JSON object")
        message_id = message.get("id")
        if message_id is not None and not isinstance(message_id, str | int):
            message_id = None
            raise _Reject("bad_field", "id must be a string or an integer")
        result = await _serve(service, volunteer_id, principal, message)
    except (_Reject, DispatchError, PermissionError) as exc:
        return {"type": "error", "re": message_id, "code": _code(exc), "message": str(exc)}
    if message_id is None:
        return None
    return {"type": "result", "re": message_id, "ok": True, **result}


def _code(exc: Exception) -> str:
    """The ``error`` reply's ``code`` for an exception (HTTP would say 422/404/409/403/503)."""
    if isinstance(exc, _Reject):
        return exc.code
    for kind, code in (
        (InvalidInput, "invalid"),
        (NotFound, "not_found"),
        (Conflict, "conflict"),
        (PermissionError, "forbidden"),
    ):
        if isinstance(exc, kind):
            return code
    return "unavailable"


def _number(message: dict[str, Any], field: str) -> float:
    value = message.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{field} must be a number", field=field)
    return float(value)


async def _serve(
    service: Service, volunteer_id: str, principal: Principal, message: dict[str, Any]
) -> dict[str, Any]:
    kind = message.get("type")
    if kind == "ack":
        seq = message.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise InvalidInput("seq must be a non-negative integer", field="seq")
        await service.store.ack(volunteer_id, seq)
        return {}
    if kind == "position":
        lat, lon = check_latlon(message.get("lat"), message.get("lon"))
        ts = parse_iso(message.get("ts"), "ts")
        accuracy = message.get("accuracy_m")
        if accuracy is None:
            accuracy_m = math.nan
        else:
            accuracy_m = _number(message, "accuracy_m")
            if not (math.isfinite(accuracy_m) and accuracy_m >= 0):
                raise InvalidInput("accuracy_m must be a finite number >= 0", field="accuracy_m")
        outcome = service.ingest_one(volunteer_id, lat, lon, ts, accuracy_m)
        if outcome is not FixOutcome.ACCEPTED:
            raise _Reject(outcome.wire, f"the fix was rejected: {outcome.wire}")
        if message.get("id") is not None:
            await service.durable()  # the reply says "stored"
        return {}
    if isinstance(kind, str) and kind in _ANSWERS:
        assignment_id = message.get("assignment_id")
        if not isinstance(assignment_id, str) or not assignment_id:
            raise InvalidInput("assignment_id must be a non-empty string", field="assignment_id")
        reason = message.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
            raise InvalidInput("reason must be a string of at most 2000 characters", field="reason")
        assignment = await service.apply(assignment_id, _ANSWERS[kind], principal, reason)
        return {"assignment": assignment_wire(assignment)}
    raise _Reject("unknown_type", f"unknown message type {kind!r}")


@ws_router.websocket("/ws/operator")
async def operator_socket(socket: WebSocket) -> None:
    service = _service(socket)
    await socket.accept()
    principal = await _principal(socket)
    if principal is None:
        await socket.close(CLOSE_UNAUTHORIZED, "a valid operator token is required")
        return
    if not principal.is_operator:
        await socket.close(CLOSE_FORBIDDEN, "operators only")
        return
    connection = service.hub.attach_operator(socket)
    try:
        while not connection.closed.is_set():
            await socket.receive_text()
            connection.push(
                {
                    "type": "error",
                    "re": None,
                    "code": "read_only",
                    "message": "the operator feed takes no messages",
                }
            )
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await service.hub.detach_operator(connection)
