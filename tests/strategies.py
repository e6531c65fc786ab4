"""Hypothesis strategies and builders shared by the core's tests (one place, as in attrs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from pyproj import Geod

from geo.modes import Mode
from geo.travel import Situation
from units.index import LiveIndex
from units.vocab import Status

GEOD = Geod(ellps="WGS84")
#: The county seat of Gucheng, the default incident point of the tests.
SEAT = (37.3472, 115.9651)
NOW = 1_795_000_000.0  # 2026-11-19: an ordinary epoch second, far from edge cases


@dataclass(frozen=True)
class Person:
    """One volunteer of a synthetic population around a point."""

    distance_m: float
    azimuth: float
    mode: Mode
    status: Status
    situation: Situation
    fix_age_s: float | None  # None: never sent a fix
    roles: int
    teams: int
    unit: int


people = st.builds(
    Person,
    distance_m=st.floats(0.0, 9_000.0),
    azimuth=st.floats(-180.0, 180.0),
    mode=st.sampled_from(list(Mode)),
    status=st.sampled_from([Status.AVAILABLE] * 4 + [Status.OFF_DUTY, Status.BUSY]),
    situation=st.sampled_from([Situation.PATROL] * 3 + [Situation.HOME]),
    fix_age_s=st.one_of(st.none(), st.floats(0.0, 600.0)),
    roles=st.integers(0, 63),
    teams=st.integers(0, 63),
    unit=st.integers(-1, 3),
)
populations = st.lists(people, min_size=0, max_size=60)


def build_index(
    population: list[Person], *, centre: tuple[float, float] = SEAT, now: float = NOW
) -> LiveIndex:
    """A real LiveIndex holding ``population`` around ``centre``; ids are ``v000``..."""
    index = LiveIndex()
    for i, person in enumerate(population):
        slot = index.add(
            f"v{i:03d}",
            mode=person.mode,
            roles=person.roles,
            teams=person.teams,
            unit=person.unit,
            status=person.status,
            situation=person.situation,
        )
        if person.fix_age_s is not None:
            lon, lat, _ = GEOD.fwd(centre[1], centre[0], person.azimuth, person.distance_m)
            index.update(slot, float(lat), float(lon), now - person.fix_age_s, now)
    return index


def place(
    index: LiveIndex,
    volunteer_id: str,
    distance_m: float,
    *,
    azimuth: float = 90.0,
    mode: Mode = Mode.EBIKE,
    centre: tuple[float, float] = SEAT,
    now: float = NOW,
    roles: int = 0,
    teams: int = 0,
    unit: int = -1,
) -> int:
    """Add an available volunteer ``distance_m`` from ``centre`` with a fresh fix."""
    slot = index.add(
        volunteer_id,
        mode=mode,
        roles=roles,
        teams=teams,
        unit=unit,
        status=Status.AVAILABLE,
        situation=Situation.PATROL,
    )
    lon, lat, _ = GEOD.fwd(centre[1], centre[0], azimuth, distance_m)
    index.update(slot, float(lat), float(lon), now, now)
    return slot


def as_array(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.intp)
