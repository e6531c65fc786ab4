"""The 13,556 volunteers: homes, names, roles, teams, travel modes, duty hours, units.

Theory of operation
-------------------
Only the total is known (13,556 registered volunteers), so every attribute is drawn from a
documented distribution with the build's seeded generator:

* **home**: a village or community drawn with probability proportional to its population (about
  2.6% of residents volunteer), then a Gaussian offset (σ 150 m in a village, 300 m in a
  community, cut at 2.5 σ), redrawn until it falls inside the township's polygon;
* **person**: 32% women; an age band (28% under 35, 52% 35-59, 20% 60+) that only steers
  teams; a synthetic name (:mod:`geo.dataset.names`);
* **roles** (六员): a primary role (:data:`ROLE_SHARES`) and, for 35%, a second one;
* **teams** (zero or more): watch 30%, rescue 9% of the under-60s, women's team 45% of the
  women, youth team 50% of the under-35s, veterans 30% of the men over 35, mediation room 50% of
  the mediators (1% of the others);
* **mode**: :data:`MODE_SHARES` by residence (e-bikes dominate the villages, walking the town);
* **duty**: an archetype (:data:`DUTY_HOURS`, :data:`DUTY_DAYS`); school guards keep the school
  gates (85%), the others are shared by :data:`DUTY_SHARES`. Day rotations are staggered by a
  random offset so that every weekday is covered. A volunteer is on duty at hour ``h`` of day
  ``d`` when both bits are set (a night watch's 00:00-02:00 belongs to its own day);
* **unit**: each unit takes 8-15 members (uniform) among the volunteers living in its
  catchment, nearest to the unit's village first; the others belong to no unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely

from geo.dataset.frame import FloatArray, to_lonlat
from geo.dataset.names import person_names
from geo.dataset.places import Places, Township, Units
from geo.dataset.schema import LIST_SEP, N_VOLUNTEERS, UNIT_MEMBERS
from geo.modes import MODE_NAMES
from units.vocab import ROLE_NAMES

__all__ = [
    "DUTY_DAYS",
    "DUTY_HOURS",
    "DUTY_SHARES",
    "MODE_SHARES",
    "ROLE_SHARES",
    "Volunteers",
    "make_volunteers",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

FEMALE_SHARE: Final = 0.32
AGE_SHARES: Final = (0.28, 0.52, 0.20)  # under 35, 35-59, 60+
HOME_SIGMA_M: Final = {False: 150.0, True: 300.0}  # village, community
SECOND_ROLE: Final = 0.35
ROLE_SHARES: Final = {
    "patrol": 0.40,
    "hazard_inspector": 0.12,
    "mediator": 0.10,
    "legal_outreach": 0.08,
    "school_guard": 0.14,
    "community_liaison": 0.16,
}
#: Mode shares (walk, bike, ebike, car) for community and village residents.
MODE_SHARES: Final = {True: (0.35, 0.20, 0.35, 0.10), False: (0.12, 0.13, 0.55, 0.20)}
SCHOOL_GATE_SHARE: Final = 0.85
DUTY_SHARES: Final = {
    "day_patrol": 0.25,
    "evening_patrol": 0.30,
    "night_watch": 0.10,
    "weekend": 0.20,
    "daytime_on_call": 0.15,
}
#: Hours on duty (h = the hour starting at h:00).
DUTY_HOURS: Final = {
    "day_patrol": (8, 9, 10, 11, 14, 15, 16, 17),
    "evening_patrol": (18, 19, 20, 21),
    "night_watch": (20, 21, 22, 23, 0, 1),
    "weekend": tuple(range(8, 20)),
    "daytime_on_call": tuple(range(7, 19)),
    "school_gate": (7, 16, 17),
}
#: Days on duty before the rotation (0 = Monday); rotating archetypes shift by 0-6 days.
DUTY_DAYS: Final = {
    "day_patrol": ((0, 2, 4), True),
    "evening_patrol": ((0, 2, 4, 6), True),
    "night_watch": ((0, 3), True),
    "weekend": ((5, 6), False),
    "daytime_on_call": ((0, 1, 2, 3, 4, 5, 6), False),
    "school_gate": ((0, 1, 2, 3, 4), False),
}


@dataclass(frozen=True, slots=True)
class Volunteers:
    """The volunteers, columnar, in file order (by village)."""

    id: list[str]
    name: list[str]
    unit: IntArray  # -1: in no unit
    village: IntArray
    roles: list[str]
    teams: list[str]
    mode: list[str]
    lon: FloatArray
    lat: FloatArray
    duty: list[str]
    duty_hours: list[str]
    duty_days: list[str]

    def __len__(self) -> int:
        return len(self.id)


def _homes(
    village: IntArray, places: Places, townships: list[Township], rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    n = len(village)
    sigma = np.where(places.is_community[village], HOME_SIGMA_M[True], HOME_SIGMA_M[False])
    lon = places.lon[village].copy()
    lat = places.lat[village].copy()
    todo = np.arange(n)
    for _ in range(50):
        if not len(todo):
            break
        offset = rng.normal(0.0, 1.0, (len(todo), 2))
        x = places.x[village[todo]] + offset[:, 0] * sigma[todo]
        y = places.y[village[todo]] + offset[:, 1] * sigma[todo]
        cand_lon, cand_lat = to_lonlat(x, y)
        ok = np.linalg.norm(offset, axis=1) <= 2.5  # the tails are drawn again
        for ti, t in enumerate(townships):
            mine = places.township[village[todo]] == ti
            ok[mine] &= shapely.contains_xy(t.polygon, cand_lon[mine], cand_lat[mine])
        lon[todo[ok]] = cand_lon[ok]
        lat[todo[ok]] = cand_lat[ok]
        todo = todo[~ok]
    # anyone left lives at the village point itself (inside by construction)
    return lon, lat


def _pick(rng: np.random.Generator, shares: dict[str, float], size: int) -> list[str]:
    names = list(shares)
    p = np.array([shares[k] for k in names])
    return [names[i] for i in rng.choice(len(names), size=size, p=p / p.sum())]


def _duty(rng: np.random.Generator, archetypes: list[str]) -> tuple[list[str], list[str]]:
    hours_out, days_out = [], []
    shifts = rng.integers(0, 7, len(archetypes))
    for a, shift in zip(archetypes, shifts.tolist(), strict=True):
        hours = ["0"] * 24
        for h in DUTY_HOURS[a]:
            hours[h] = "1"
        base, rotates = DUTY_DAYS[a]
        days = ["0"] * 7
        for d in base:
            days[(d + shift) % 7 if rotates else d] = "1"
        hours_out.append("".join(hours))
        days_out.append("".join(days))
    return hours_out, days_out


def _teams(
    rng: np.random.Generator, female: BoolArray, age: IntArray, roles: list[list[str]]
) -> list[str]:
    n = len(female)
    draws = rng.random((n, 6))
    mediator = np.array(["mediator" in r for r in roles])
    member = {
        "rescue": (age < 2) & (draws[:, 0] < 0.09),
        "women": female & (draws[:, 1] < 0.45),
        "youth": (age == 0) & (draws[:, 2] < 0.50),
        "mediation_room": np.where(mediator, draws[:, 3] < 0.50, draws[:, 3] < 0.01),
        "veterans": ~female & (age > 0) & (draws[:, 4] < 0.30),
        "watch": draws[:, 5] < 0.30,
    }
    order = ("rescue", "women", "youth", "mediation_room", "veterans", "watch")
    return [LIST_SEP.join(t for t in order if member[t][i]) for i in range(n)]


def _roles(rng: np.random.Generator, n: int) -> tuple[list[str], list[list[str]]]:
    """A primary role per volunteer and, for :data:`SECOND_ROLE` of them, a different second."""
    names = list(ROLE_SHARES)
    shares = np.array([ROLE_SHARES[r] for r in names])
    first = rng.choice(len(names), size=n, p=shares / shares.sum())
    others = np.tile(shares, (n, 1))
    others[np.arange(n), first] = 0.0  # the second role differs from the first
    cumulative = np.cumsum(others, axis=1) / others.sum(axis=1, keepdims=True)
    second = np.argmax(cumulative > rng.random((n, 1)), axis=1)
    extra = rng.random(n) < SECOND_ROLE
    out = []
    for f, s, e in zip(first.tolist(), second.tolist(), extra.tolist(), strict=True):
        chosen = {names[f], names[s]} if e else {names[f]}
        out.append([r for r in ROLE_NAMES if r in chosen])
    return [names[f] for f in first.tolist()], out


def _modes(rng: np.random.Generator, community: BoolArray) -> list[str]:
    draw = rng.random(len(community))
    out = []
    for c, u in zip(community.tolist(), draw.tolist(), strict=True):
        cumulative = np.cumsum(MODE_SHARES[c])
        out.append(MODE_NAMES[min(int(np.searchsorted(cumulative, u, side="right")), 3)])
    return out


def _members(
    units: Units, places: Places, lon: FloatArray, lat: FloatArray, village: IntArray,
    rng: np.random.Generator,
) -> IntArray:  # fmt: skip
    unit_of = np.full(len(village), -1, dtype=np.int64)
    home_unit = units.catchment[village]
    sizes = rng.integers(UNIT_MEMBERS[0], UNIT_MEMBERS[1] + 1, len(units))
    tiebreak = rng.random(len(village))
    coslat = np.cos(np.radians(places.lat.mean()))
    for u in range(len(units)):
        v = units.village[u]
        candidates = np.flatnonzero((home_unit == u) & (unit_of < 0))
        if len(candidates) < sizes[u]:  # a thin catchment: neighbours of the township help
            same = places.township[village] == places.township[v]
            candidates = np.flatnonzero(same & (unit_of < 0))
        d = np.hypot((lon[candidates] - places.lon[v]) * coslat, lat[candidates] - places.lat[v])
        order = np.lexsort((tiebreak[candidates], np.round(d, 4)))
        unit_of[candidates[order[: sizes[u]]]] = u
    return unit_of


def make_volunteers(
    places: Places, townships: list[Township], units: Units, rng: np.random.Generator
) -> Volunteers:
    """Draw the county's volunteers (see the module docstring for the distributions)."""
    n = N_VOLUNTEERS
    p = places.population / places.population.sum()
    village = np.sort(rng.choice(len(places), size=n, p=p)).astype(np.int64)
    lon, lat = _homes(village, places, townships, rng)
    female = rng.random(n) < FEMALE_SHARE
    age = rng.choice(3, size=n, p=AGE_SHARES).astype(np.int64)
    names = person_names(rng, female)
    primary, roles = _roles(rng, n)
    teams = _teams(rng, female, age, roles)
    modes = _modes(rng, places.is_community[village])
    schooled = rng.random(n) < SCHOOL_GATE_SHARE
    others = _pick(rng, DUTY_SHARES, n)
    archetypes = [
        "school_gate" if r == "school_guard" and s else o
        for r, s, o in zip(primary, schooled.tolist(), others, strict=True)
    ]
    hours, days = _duty(rng, archetypes)
    return Volunteers(
        id=[f"V{i + 1:05d}" for i in range(n)],
        name=names,
        unit=_members(units, places, lon, lat, village, rng),
        village=village,
        roles=[LIST_SEP.join(r) for r in roles],
        teams=teams,
        mode=modes,
        lon=lon,
        lat=lat,
        duty=archetypes,
        duty_hours=hours,
        duty_days=days,
    )
