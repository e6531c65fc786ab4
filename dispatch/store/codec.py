"""How the stores turn records and messages into JSON and back: one codec for every backend.

Theory of operation
-------------------
Incidents and assignments are the engine's mutable dataclasses. Every backend stores them as
the JSON text this module makes (sqlite in a ``data`` column beside a few indexed ones, memory
in a dict, Redis in a hash), so the round trip is the same everywhere and exact:

* every field of the dataclass, by name; a test checks that the encoders cover
  :func:`dataclasses.fields` of each class, so a field added to the engine cannot be dropped
  silently;
* ``AssignmentState`` as its wire value; ``Incident.quota`` as a JSON object whose keys are
  the ring's minutes, decoded back to ``int``; ``unmet`` to a tuple, ``assignment_ids`` to a
  list;
* floats that JSON cannot hold (``inf``, ``-inf``, ``nan``: an ETA without a route is
  infinite) as the strings ``"inf"``, ``"-inf"``, ``"nan"``, so the text stays strict JSON
  (RFC 8259, which Redis' Lua ``cjson`` also reads) and the value comes back identical;
* values are checked, not coerced: a field of the wrong type (a ``str`` severity, a ``bool``
  ETA, a non-int quota key) makes :func:`encode_incident` / :func:`encode_assignment` raise
  :class:`~dispatch.errors.StoreError` naming the record and field, before any write.

Messages (the volunteers' outbox) are JSON objects stored as text (:func:`encode_message`)
and decoded equal, so they must be JSON-native; ``nan``/``inf``, tuples, or non-string keys
raise :class:`~dispatch.errors.StoreError` rather than come back different.

A whole commit is encoded first (:func:`encode_commit`, which also checks ids and times), so
a backend that starts writing has nothing left that could fail to encode.

Decoding trusts what the store wrote but still fails cleanly: a corrupt stored value raises
:class:`~dispatch.errors.StoreError`, never ``KeyError``.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar, cast

from dispatch.core.engine import Assignment, Credit, Incident
from dispatch.core.states import AssignmentState
from dispatch.errors import StoreError
from dispatch.store.base import Commit, VolunteerRecord

__all__ = [
    "ASSIGNMENT_FIELDS",
    "INCIDENT_FIELDS",
    "EncodedCommit",
    "EncodedMessage",
    "EncodedRecord",
    "decode_assignment",
    "decode_incident",
    "decode_message",
    "decode_volunteer",
    "dumps",
    "encode_assignment",
    "encode_commit",
    "encode_credit",
    "encode_incident",
    "encode_message",
    "encode_volunteer",
    "loads",
    "record_kind",
]

_T = TypeVar("_T")
_NON_FINITE: Final = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_INCIDENT_STATES: Final = ("open", "closed")
_DISPATCH_MODES: Final = ("auto", "manual")

#: The fields each encoder writes: exactly the dataclass's fields (tests hold them equal).
INCIDENT_FIELDS: Final = (
    "id",
    "type",
    "lat",
    "lon",
    "severity",
    "note",
    "dispatch",
    "created_at",
    "quota",
    "state",
    "closed_at",
    "outcome",
    "max_eta_s",
    "widen_step",
    "unmet",
    "unmet_since",
    "assignment_ids",
)
ASSIGNMENT_FIELDS: Final = (
    "id",
    "incident_id",
    "volunteer_id",
    "state",
    "eta_s",
    "ring_min",
    "offered_at",
    "expires_at",
    "updated_at",
    "accepted_at",
    "reason",
)


# ------------------------------------------------------------------- JSON text


def dumps(value: object, what: str = "value") -> str:
    """Strict, compact JSON text (UTF-8 characters kept as they are).

    Args:
        value: a JSON-native value.
        what: names the value in the error.

    Raises:
        StoreError: ``value`` is not JSON-native (or holds NaN / infinity).
    """
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(f"cannot encode {what} as JSON: {exc}") from exc


def loads(text: str | bytes, what: str = "value") -> Any:
    """The value of JSON text.

    Raises:
        StoreError: the text is not JSON (a corrupt stored value).
    """
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(f"stored {what} is not valid JSON: {exc}") from exc


def encode_message(message: Mapping[str, Any]) -> str:
    """An outbox message as JSON text, checked to decode back equal.

    Raises:
        StoreError: the message is not a dict with string keys of JSON-native values.
    """
    if not isinstance(message, dict):
        raise StoreError(f"an outbox message must be a dict, got {type(message).__name__}")
    text = dumps(message, "outbox message")
    # json.dumps quietly turns tuples into lists and int keys into strings: refuse those, so
    # that what the hub replays after a restart is what it enqueued.
    if loads(text) != message:
        raise StoreError("outbox message does not survive JSON (tuples or non-string keys?)")
    return text


def decode_message(text: str) -> dict[str, Any]:
    """The message stored as ``text``.

    Raises:
        StoreError: the stored text is not a JSON object.
    """
    value = loads(text, "outbox message")
    if not isinstance(value, dict):
        raise StoreError("stored outbox message is not a JSON object")
    return cast(dict[str, Any], value)


# ---------------------------------------------------------------- field checks


def _float(value: object) -> float | str:
    """A float field, JSON-safe: finite floats as numbers, others as strings."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    number = float(value)
    if math.isfinite(number):
        return number
    return "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")


def _opt_float(value: object) -> float | str | None:
    return None if value is None else _float(value)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return int(value)


def _opt_int(value: object) -> int | None:
    return None if value is None else _int(value)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _opt_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _choice(choices: tuple[str, ...]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def _state(value: object) -> str:
    return AssignmentState(_str(value)).value


def _quota(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    return {str(_int(ring)): _int(count) for ring, count in value.items()}


def _int_tuple(value: object) -> list[int]:
    if not isinstance(value, tuple | list):
        raise TypeError(f"expected a tuple, got {type(value).__name__}")
    return [_int(v) for v in value]


def _str_list(value: object) -> list[str]:
    if not isinstance(value, tuple | list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return [_str(v) for v in value]


_INCIDENT_ENCODERS: Final[dict[str, Callable[[object], object]]] = {
    "id": _str,
    "type": _str,
    "lat": _float,
    "lon": _float,
    "severity": _int,
    "note": _opt_str,
    "dispatch": _choice(_DISPATCH_MODES),
    "created_at": _float,
    "quota": _quota,
    "state": _choice(_INCIDENT_STATES),
    "closed_at": _opt_float,
    "outcome": _opt_str,
    "max_eta_s": _float,
    "widen_step": _int,
    "unmet": _int_tuple,
    "unmet_since": _opt_float,
    "assignment_ids": _str_list,
}
_ASSIGNMENT_ENCODERS: Final[dict[str, Callable[[object], object]]] = {
    "id": _str,
    "incident_id": _str,
    "volunteer_id": _str,
    "state": _state,
    "eta_s": _float,
    "ring_min": _opt_int,
    "offered_at": _float,
    "expires_at": _float,
    "updated_at": _float,
    "accepted_at": _opt_float,
    "reason": _opt_str,
}


def _encode(record: object, kind: str, encoders: Mapping[str, Callable[[object], object]]) -> Any:
    out: dict[str, object] = {}
    for name, encode in encoders.items():
        try:
            out[name] = encode(getattr(record, name))
        except (TypeError, ValueError) as exc:
            record_id = getattr(record, "id", "?")
            raise StoreError(f"cannot encode {kind} {record_id!r}: {name}: {exc}") from exc
    return out


def encode_incident(incident: Incident) -> dict[str, Any]:
    """The incident as a JSON-safe dict (every field; see the module docstring).

    Raises:
        StoreError: a field has the wrong type or value.
    """
    if not isinstance(incident, Incident):
        raise StoreError(f"expected an Incident, got {type(incident).__name__}")
    return cast(dict[str, Any], _encode(incident, "incident", _INCIDENT_ENCODERS))


def encode_assignment(assignment: Assignment) -> dict[str, Any]:
    """The assignment as a JSON-safe dict (every field; see the module docstring).

    Raises:
        StoreError: a field has the wrong type or value.
    """
    if not isinstance(assignment, Assignment):
        raise StoreError(f"expected an Assignment, got {type(assignment).__name__}")
    return cast(dict[str, Any], _encode(assignment, "assignment", _ASSIGNMENT_ENCODERS))


# -------------------------------------------------------------------- decoding


def _num(value: Any) -> float:
    if isinstance(value, str):
        return _NON_FINITE[value]
    return float(value)


def _opt_num(value: Any) -> float | None:
    return None if value is None else _num(value)


def _decoding(kind: str, build: Callable[[], _T]) -> _T:
    try:
        return build()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(f"stored {kind} is corrupt: {exc!r}") from exc


def decode_incident(data: Mapping[str, Any]) -> Incident:
    """A fresh :class:`Incident` from :func:`encode_incident`'s dict.

    Fields added to the engine after a record was written take their defaults.

    Raises:
        StoreError: the stored value is corrupt.
    """
    return _decoding(
        "incident",
        lambda: Incident(
            id=data["id"],
            type=data["type"],
            lat=_num(data["lat"]),
            lon=_num(data["lon"]),
            severity=int(data["severity"]),
            note=data.get("note"),
            dispatch=data["dispatch"],
            created_at=_num(data["created_at"]),
            quota={int(ring): int(count) for ring, count in data["quota"].items()},
            state=data.get("state", "open"),
            closed_at=_opt_num(data.get("closed_at")),
            outcome=data.get("outcome"),
            max_eta_s=_num(data.get("max_eta_s", 300.0)),
            widen_step=int(data.get("widen_step", 0)),
            unmet=tuple(int(r) for r in data.get("unmet", ())),
            unmet_since=_opt_num(data.get("unmet_since")),
            assignment_ids=[str(a) for a in data.get("assignment_ids", ())],
        ),
    )


def decode_assignment(data: Mapping[str, Any]) -> Assignment:
    """A fresh :class:`Assignment` from :func:`encode_assignment`'s dict.

    Raises:
        StoreError: the stored value is corrupt.
    """
    return _decoding(
        "assignment",
        lambda: Assignment(
            id=data["id"],
            incident_id=data["incident_id"],
            volunteer_id=data["volunteer_id"],
            state=AssignmentState(data["state"]),
            eta_s=_num(data["eta_s"]),
            ring_min=None if data.get("ring_min") is None else int(data["ring_min"]),
            offered_at=_num(data["offered_at"]),
            expires_at=_num(data["expires_at"]),
            updated_at=_num(data["updated_at"]),
            accepted_at=_opt_num(data.get("accepted_at")),
            reason=data.get("reason"),
        ),
    )


# ------------------------------------------------------------- other records


def encode_volunteer(record: VolunteerRecord) -> dict[str, Any]:
    """The volunteer as a JSON-safe dict (for the event log and key-value backends).

    Raises:
        StoreError: a field has the wrong type.
    """
    if not isinstance(record, VolunteerRecord):
        raise StoreError(f"expected a VolunteerRecord, got {type(record).__name__}")
    try:
        return {
            "id": _str(record.id),
            "name": _str(record.name),
            "unit_id": _opt_str(record.unit_id),
            "roles": _str_list(record.roles),
            "teams": _str_list(record.teams),
            "mode": _str(record.mode),
            "phone": _opt_str(record.phone),
            "availability": _str(record.availability),
        }
    except TypeError as exc:
        raise StoreError(f"cannot encode volunteer {record.id!r}: {exc}") from exc


def decode_volunteer(data: Mapping[str, Any]) -> VolunteerRecord:
    """A :class:`VolunteerRecord` from :func:`encode_volunteer`'s dict.

    Raises:
        StoreError: the stored value is corrupt.
    """
    return _decoding(
        "volunteer",
        lambda: VolunteerRecord(
            id=data["id"],
            name=data["name"],
            unit_id=data.get("unit_id"),
            roles=tuple(data.get("roles", ())),
            teams=tuple(data.get("teams", ())),
            mode=data["mode"],
            phone=data.get("phone"),
            availability=data.get("availability", "off_duty"),
        ),
    )


def encode_credit(credit: Credit) -> dict[str, Any]:
    """The credit as a JSON-safe dict.

    Raises:
        StoreError: a field has the wrong type.
    """
    if not isinstance(credit, Credit):
        raise StoreError(f"expected a Credit, got {type(credit).__name__}")
    try:
        return {
            "volunteer_id": _str(credit.volunteer_id),
            "assignment_id": _str(credit.assignment_id),
            "points": _int(credit.points),
            "service_seconds": _float(credit.service_seconds),
        }
    except TypeError as exc:
        raise StoreError(f"cannot encode credit for {credit.assignment_id!r}: {exc}") from exc


def record_kind(record: object) -> Literal["incident", "assignment"]:
    """``incident`` or ``assignment``.

    Raises:
        StoreError: ``record`` is neither.
    """
    if isinstance(record, Incident):
        return "incident"
    if isinstance(record, Assignment):
        return "assignment"
    raise StoreError(f"cannot store a {type(record).__name__}: expected Incident or Assignment")


# --------------------------------------------------------------------- commits


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """A record of a commit, encoded: the record, its kind, its JSON dict and text."""

    record: Incident | Assignment
    kind: Literal["incident", "assignment"]
    data: dict[str, Any]
    text: str


@dataclass(frozen=True, slots=True)
class EncodedMessage:
    """An outbox message of a commit, encoded."""

    volunteer_id: str
    text: str
    type: Any  # the message's "type", for the log (None if it has none)


@dataclass(frozen=True, slots=True)
class EncodedCommit:
    """A :class:`~dispatch.store.base.Commit` with everything encoded, ready to write."""

    event: str
    at: float
    actor: str | None
    records: tuple[EncodedRecord, ...]
    messages: tuple[EncodedMessage, ...]
    credit: Credit | None
    credit_data: dict[str, Any] | None

    def log_payload(self, seqs: Sequence[int], credit_applied: bool) -> str:
        """The event-log payload (:class:`~dispatch.store.base.EventRecord`) as JSON text."""
        credit = None if self.credit_data is None else {**self.credit_data}
        if credit is not None:
            credit["applied"] = credit_applied
        rest = dumps(
            {
                "credit": credit,
                "messages": [
                    {"volunteer_id": m.volunteer_id, "seq": seq, "type": m.type}
                    for m, seq in zip(self.messages, seqs, strict=True)
                ],
            },
            "event payload",
        )
        # the records' text is already encoded: spliced, not encoded a second time (the
        # same text as encoding {"records": [{"kind", "data"}], ...} in one go)
        records = ",".join(f'{{"kind":"{r.kind}","data":{r.text}}}' for r in self.records)
        return f'{{"records":[{records}],{rest[1:]}'

    @property
    def subject(self) -> tuple[Literal["incident", "assignment"] | None, str | None]:
        """The log entry's ``kind`` and ``record_id``: the first record's, if any."""
        if not self.records:
            return None, None
        return self.records[0].kind, self.records[0].record.id


def encode_commit(entry: Commit) -> EncodedCommit:
    """Encode every part of a commit, so that nothing can fail to encode once writing began.

    Raises:
        StoreError: a record, message or the credit cannot be encoded.
    """
    records = []
    for record in entry.records:
        kind = record_kind(record)
        if isinstance(record, Incident):
            data = encode_incident(record)
        else:
            data = encode_assignment(record)
        records.append(EncodedRecord(record, kind, data, dumps(data, kind)))
    messages = tuple(
        EncodedMessage(_str_or_fail(volunteer_id), encode_message(message), message.get("type"))
        for volunteer_id, message in entry.outbox
    )
    return EncodedCommit(
        event=_str_or_fail(entry.event),
        at=_time_or_fail(entry.at),
        actor=entry.actor,
        records=tuple(records),
        messages=messages,
        credit=entry.credit,
        credit_data=None if entry.credit is None else encode_credit(entry.credit),
    )


def _str_or_fail(value: object) -> str:
    if not isinstance(value, str):
        raise StoreError(f"expected a string id or event name, got {type(value).__name__}")
    return value


def _time_or_fail(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StoreError(f"expected a time in epoch seconds, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise StoreError(f"expected a finite time, got {value!r}")
    return float(value)
