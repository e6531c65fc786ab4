"""Ranking: who can reach an incident, and in which ring.

Theory of operation
-------------------
1. The index hands over every volunteer in the ``grid_disk`` around the incident's cell that
   is wide enough for the fastest mode to arrive within ``max_eta_s``
   (``model.max_reach_m``): a superset, never a miss.
2. Eligibility is one vectorised mask: status ``available`` (not ``off_duty``, not ``busy``),
   a fix no older than the freshness limit, and no open offer or active assignment (the
   caller's ``held`` mask).
3. The travel model gives every eligible volunteer an ETA (turnout included) in one call;
   those slower than ``max_eta_s`` drop out.
4. ``ring_min`` is the smallest ring (1, 3, 5 minutes) whose limit the ETA fits in, ``None``
   beyond 5 minutes (only when the search was widened).
5. The order is one ``np.lexsort``: ring, then whether the volunteer carries a needed role or
   team, then ETA, then membership of the unit nearest the incident, then id.

Everything stays columnar (:class:`Ranking`); :class:`Candidate` objects are built only for
the few the caller looks at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from dispatch.core.policy import RING_MINUTES, RINGS_S
from geo.coords import check_latlon
from geo.modes import Mode
from geo.travel import FloatArray, TravelModel, haversine_m
from units.vocab import Role, Team, names_of

if TYPE_CHECKING:
    from units.index import LiveIndex

__all__ = ["RINGS", "RING_LIMITS_S", "Candidate", "Ranking", "rank", "ring_of"]

#: The doctrine's reaction rings, minutes, and their limits in seconds (from the policy module,
#: the one place they are defined).
RINGS: Final = RING_MINUTES
RING_LIMITS_S: Final = np.asarray(RINGS_S, dtype=np.float64)
#: ``ring`` column value for "beyond 5 minutes" (a widened search); sorts after every ring.
NO_RING: Final = 255

IntArray = npt.NDArray[np.intp]


def ring_of(eta_s: FloatArray) -> npt.NDArray[np.uint8]:
    """Ring per ETA: 1, 3 or 5 (the smallest ring whose limit it fits in), else ``NO_RING``."""
    position = np.searchsorted(RING_LIMITS_S, eta_s, side="left")
    return np.array([1, 3, 5, NO_RING], dtype=np.uint8)[position]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ranked volunteer, with the contract's candidate fields."""

    slot: int
    volunteer_id: str
    eta_s: float
    ring_min: int | None
    distance_m: float
    mode: Mode
    roles: tuple[str, ...]
    teams: tuple[str, ...]
    unit_id: str | None
    skilled: bool

    def to_wire(self) -> dict[str, object]:
        """The contract's JSON object for this candidate."""
        return {
            "volunteer_id": self.volunteer_id,
            "eta_s": round(self.eta_s, 1),
            "ring_min": self.ring_min,
            "distance_m": round(self.distance_m, 1),
            "mode": self.mode.wire,
            "roles": list(self.roles),
            "teams": list(self.teams),
            "unit_id": self.unit_id,
        }


@dataclass(frozen=True, slots=True)
class Ranking:
    """Eligible volunteers in reach, best first, as parallel columns."""

    slots: IntArray
    eta_s: FloatArray
    ring: npt.NDArray[np.uint8]
    distance_m: FloatArray
    skilled: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.slots)

    def candidates(
        self, index: LiveIndex, unit_ids: tuple[str, ...] = (), limit: int | None = None
    ) -> list[Candidate]:
        """The first ``limit`` entries as :class:`Candidate` objects.

        Args:
            index: the index the ranking came from (for ids, modes, roles, teams, units).
            unit_ids: unit id per unit index, for the ``unit_id`` field.
            limit: how many; all when ``None``.
        """
        stop = len(self.slots) if limit is None else min(limit, len(self.slots))
        out = []
        for i in range(stop):
            slot = int(self.slots[i])
            ring = int(self.ring[i])
            unit = int(index.unit[slot])
            out.append(
                Candidate(
                    slot=slot,
                    volunteer_id=index.ids[slot],
                    eta_s=float(self.eta_s[i]),
                    ring_min=None if ring == NO_RING else ring,
                    distance_m=float(self.distance_m[i]),
                    mode=Mode(int(index.mode[slot])),
                    roles=tuple(names_of(Role, int(index.roles[slot]))),
                    teams=tuple(names_of(Team, int(index.teams[slot]))),
                    unit_id=unit_ids[unit] if 0 <= unit < len(unit_ids) else None,
                    skilled=bool(self.skilled[i]),
                )
            )
        return out


def rank(
    index: LiveIndex,
    model: TravelModel,
    lat: float,
    lon: float,
    *,
    now: float,
    max_eta_s: float = 300.0,
    needs_roles: int = 0,
    needs_teams: int = 0,
    held: npt.NDArray[np.bool_] | None = None,
    nearest_unit: int = -1,
) -> Ranking:
    """Rank the eligible volunteers who can reach ``(lat, lon)`` within ``max_eta_s``.

    Args:
        index: the live position index.
        model: the travel model that gives ETAs (turnout included).
        lat, lon: the incident.
        now: the current time, epoch seconds (freshness is judged against it).
        max_eta_s: the search horizon; 300 s is the 5-minute ring, more when widened.
        needs_roles, needs_teams: bit masks of the roles / teams the incident needs (any-of);
            both 0 means nobody is preferred for skills.
        held: per-slot mask of volunteers holding an open offer or active assignment.
        nearest_unit: index of the unit nearest the incident (its members win ties).

    Raises:
        CoordinateError: the incident's coordinates are invalid.
    """
    lat, lon = check_latlon(lat, lon)
    slots = index.near(lat, lon, model.max_reach_m(max_eta_s))
    if len(slots):
        eligible = index.fresh_available(slots, now)
        if held is not None:
            eligible &= ~held[slots]
        slots = slots[eligible]
    if not len(slots):
        return _empty()
    eta = model.seconds_to(
        index.lat[slots],
        index.lon[slots],
        index.mode[slots],
        lat,
        lon,
        situations=index.situation[slots],
        limit_s=max_eta_s,
    )
    in_reach = eta <= max_eta_s
    slots, eta = slots[in_reach], eta[in_reach]
    if not len(slots):
        return _empty()
    ring = ring_of(eta)
    if needs_roles or needs_teams:
        skilled = ((index.roles[slots] & needs_roles) | (index.teams[slots] & needs_teams)) != 0
    else:
        skilled = np.zeros(len(slots), dtype=np.bool_)
    home_unit = index.unit[slots] == nearest_unit if nearest_unit >= 0 else skilled & False
    ids = np.array([index.ids[s] for s in slots.tolist()])
    # np.lexsort sorts by the LAST key first.
    order = np.lexsort((ids, ~home_unit, eta, ~skilled, ring))
    slots, eta, ring, skilled = slots[order], eta[order], ring[order], skilled[order]
    distance = haversine_m(index.lat[slots], index.lon[slots], lat, lon)
    return Ranking(slots=slots, eta_s=eta, ring=ring, distance_m=distance, skilled=skilled)


def _empty() -> Ranking:
    return Ranking(
        slots=np.empty(0, dtype=np.intp),
        eta_s=np.empty(0),
        ring=np.empty(0, dtype=np.uint8),
        distance_m=np.empty(0),
        skilled=np.empty(0, dtype=np.bool_),
    )
