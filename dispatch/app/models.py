"""Request bodies of the contract, validated strictly at the edge (unknown fields rejected)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dispatch.core.clock import parse_iso
from geo.modes import MODE_NAMES
from units.vocab import ROLE_NAMES, TEAM_NAMES

__all__ = [
    "AvailabilityIn",
    "CloseIn",
    "IncidentIn",
    "OffersIn",
    "PositionIn",
    "PositionsIn",
    "ReasonIn",
    "VolunteerIn",
]

Lat = Annotated[float, Field(strict=True, ge=-90.0, le=90.0, allow_inf_nan=False)]
Lon = Annotated[float, Field(strict=True, ge=-180.0, le=180.0, allow_inf_nan=False)]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Text = Annotated[str, Field(max_length=2000)]
RoleName = Literal[ROLE_NAMES]  # type: ignore[valid-type]
TeamName = Literal[TEAM_NAMES]  # type: ignore[valid-type]
ModeName = Literal[MODE_NAMES]  # type: ignore[valid-type]


def _iso(value: str) -> str:
    parse_iso(value, "ts")  # raises InvalidInput naming the field; re-raised as ValueError
    return value


Timestamp = Annotated[str, Field(max_length=64), AfterValidator(_iso)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VolunteerIn(_Body):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    unit_id: Ident | None = None
    roles: Annotated[list[RoleName], Field(max_length=6)]
    teams: Annotated[list[TeamName], Field(max_length=6)] = []
    mode: ModeName
    phone: Annotated[str, Field(max_length=32)] | None = None


class AvailabilityIn(_Body):
    status: Literal["available", "off_duty"]


class PositionIn(_Body):
    volunteer_id: Ident
    lat: Lat
    lon: Lon
    ts: Timestamp
    accuracy_m: Annotated[float, Field(strict=True, ge=0.0, allow_inf_nan=False)] | None = None


class PositionsIn(_Body):
    positions: Annotated[list[PositionIn], Field(max_length=10_000)]


class IncidentIn(_Body):
    type: Annotated[str, Field(min_length=1, max_length=64)]
    lat: Lat
    lon: Lon
    severity: Annotated[int, Field(strict=True, ge=1, le=3)] = 2
    note: Text | None = None
    dispatch: Literal["auto", "manual"] = "auto"


class OffersIn(_Body):
    volunteer_ids: Annotated[list[Ident], Field(min_length=1, max_length=100)]


class CloseIn(_Body):
    outcome: Text | None = None


class ReasonIn(_Body):
    reason: Text | None = None
