"""Who the simulations move: the dataset's volunteers, plus the members of new units.

Theory of operation
-------------------
:class:`SimVolunteers` is the columnar roster a simulation runs on: the dataset's 13,556
volunteers (their homes, modes, roles, teams, unit and duty pattern) and, in a "new units"
scenario, the members of the units placed by the planner. Every volunteer carries a stable
64-bit key (BLAKE2b of the id, :func:`simulations.keyed.id_key`): the keyed random numbers of
:mod:`simulations.keyed` use it, so a volunteer present in two compared scenarios draws the same
acceptance, the same patrol and the same answers in both.

A new minimum emergency unit (:func:`new_units`) is a group of volunteers stationed at a
village: ``size`` members (default: the dataset's median unit size) whose modes follow the
dataset's mode mix exactly (largest remainder: 12 members -> 6 e-bikes, 2 cars, 2 walking,
2 bikes), whose roles and teams are those of existing unit members drawn with keyed numbers
(so a new unit looks like the existing ones). Their duty: the drawn members' duty patterns
(``duty="roster"``: a unit of volunteers like the others), around the clock
(``"always"``), or around the clock *on post* (``"post"``: at the unit's village, ready, no
turnout: the doctrine's staffed unit, which is what :mod:`simulations.siting` assumes). They
live at the village's point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from scipy.special import betaincinv

from geo.dataset.load import CountyDataset, on_duty
from geo.modes import Mode
from simulations.keyed import Stream, id_keys, key_of, uniforms, uniforms_array

__all__ = [
    "ALL_DAYS",
    "ALL_HOURS",
    "SimVolunteers",
    "acceptance_probabilities",
    "mode_mix",
    "new_units",
    "unit_modes",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]

#: Duty bit sets of someone always on duty.
ALL_HOURS: Final = (1 << 24) - 1
ALL_DAYS: Final = (1 << 7) - 1

UnitDuty = Literal["roster", "always", "post"]
#: The array columns of :class:`SimVolunteers` (all but ``ids``).
_ARRAY_COLUMNS: Final = (
    "home_lat", "home_lon", "mode", "roles", "teams", "unit", "village", "duty_hours",
    "duty_days", "keys", "new_unit", "posted",
)  # fmt: skip


@dataclass(frozen=True, eq=False, slots=True)
class SimVolunteers:
    """The volunteers of one simulated scenario, as columns.

    Attributes:
        ids: volunteer ids.
        home_lat, home_lon: where they live (or where their unit is stationed).
        mode, roles, teams: :class:`~geo.modes.Mode` code and role / team bit sets.
        unit: unit index (dataset units first, then new units), -1 for none.
        village: home village row, -1 for none.
        duty_hours, duty_days: duty pattern (bit ``h`` = on duty from ``h``:00; bit 0 = Monday).
        keys: stable 64-bit key per volunteer.
        new_unit: index of the new unit the volunteer belongs to, -1 for dataset volunteers.
        posted: on duty, the volunteer is on their post (the unit's village), ready: on
            patrol, no turnout (new units with ``duty="post"``); others patrol or stay home
            as the simulation's ``patrol_share`` says.
    """

    ids: tuple[str, ...]
    home_lat: F64
    home_lon: F64
    mode: U8
    roles: U8
    teams: U8
    unit: I64
    village: I64
    duty_hours: U32
    duty_days: U8
    keys: U64
    new_unit: I64
    posted: Bools

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_dataset(cls, ds: CountyDataset) -> SimVolunteers:
        """The dataset's volunteers."""
        v = ds.volunteers
        n = len(v)
        return cls(
            ids=tuple(v.id),
            home_lat=np.array(v.home_lat, dtype=np.float64),
            home_lon=np.array(v.home_lon, dtype=np.float64),
            mode=np.array(v.mode, dtype=np.uint8),
            roles=np.array(v.roles, dtype=np.uint8),
            teams=np.array(v.teams, dtype=np.uint8),
            unit=np.array(v.unit, dtype=np.int64),
            village=np.array(v.village, dtype=np.int64),
            duty_hours=np.array(v.duty_hours, dtype=np.uint32),
            duty_days=np.array(v.duty_days, dtype=np.uint8),
            keys=id_keys(v.id),
            new_unit=np.full(n, -1, dtype=np.int64),
            posted=np.zeros(n, dtype=np.bool_),
        )

    def on_duty(self, weekday: int, hour: int) -> Bools:
        """Who is on duty at ``hour`` (0-23) of ``weekday`` (0 = Monday).

        Raises:
            ValueError: ``weekday`` or ``hour`` is out of range.
        """
        return on_duty(self.duty_hours, self.duty_days, weekday, hour)

    def concat(self, other: SimVolunteers) -> SimVolunteers:
        """This roster followed by ``other``'s volunteers.

        Raises:
            ValueError: an id appears in both.
        """
        clash = set(self.ids) & set(other.ids)
        if clash:
            raise ValueError(f"volunteer ids in both rosters: {sorted(clash)[:3]}")
        return SimVolunteers(
            ids=self.ids + other.ids,
            **{
                name: np.concatenate([getattr(self, name), getattr(other, name)])
                for name in _ARRAY_COLUMNS
            },
        )


def acceptance_probabilities(keys: U64, mean: float, concentration: float, seed: int) -> F64:
    """Each volunteer's probability of accepting an offer: Beta(m c, (1 - m) c), drawn with
    the volunteer's key, so that every run with the same seed gives a volunteer the same one.

    Args:
        keys: the volunteers' keys.
        mean: the mean acceptance ``m``.
        concentration: ``c``; 0 gives everyone exactly ``mean``.
        seed: the run's seed.

    Raises:
        ValueError: ``mean`` outside [0, 1] or ``concentration`` negative.
    """
    if not 0.0 <= mean <= 1.0 or concentration < 0:
        raise ValueError(f"need 0 <= mean <= 1 and concentration >= 0, got {mean}, {concentration}")
    if concentration == 0 or mean in (0.0, 1.0):
        return np.full(len(keys), mean, dtype=np.float64)
    u = uniforms_array(keys, seed, Stream.ACCEPTANCE)[:, 0]
    a, b = mean * concentration, (1.0 - mean) * concentration
    return np.asarray(betaincinv(a, b, u), dtype=np.float64)


def mode_mix(ds: CountyDataset) -> dict[Mode, float]:
    """Share of each mode among the dataset's volunteers."""
    counts = np.bincount(ds.volunteers.mode, minlength=len(Mode)).astype(np.float64)
    total = counts.sum()
    return {m: float(counts[m] / total) if total else 0.0 for m in Mode}


def unit_modes(size: int, mix: Mapping[Mode, float]) -> list[Mode]:
    """The modes of a unit of ``size`` members, following ``mix`` by largest remainder.

    Ties between remainders go to the more common mode, then to the lower mode code.

    Raises:
        ValueError: ``size`` is negative or the mix is empty or all zero.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    total = sum(mix.values())
    if not total > 0:
        raise ValueError("the mode mix is empty")
    quotas = {m: size * mix.get(m, 0.0) / total for m in Mode}
    counts = {m: math.floor(q) for m, q in quotas.items()}
    left = size - sum(counts.values())
    order = sorted(Mode, key=lambda m: (-(quotas[m] - counts[m]), -quotas[m], int(m)))
    for m in order[:left]:
        counts[m] += 1
    return [m for m in Mode for _ in range(counts[m])]


def new_units(
    ds: CountyDataset,
    villages: Sequence[int],
    *,
    size: int = 0,
    duty: UnitDuty = "roster",
    seed: int = 0,
) -> SimVolunteers:
    """The members of new units stationed at ``villages`` (rows of ``ds.villages``).

    Args:
        ds: the dataset (mode mix, profiles of existing unit members, village points).
        villages: one village row per new unit; a village may appear twice (two units).
        size: members per unit; 0 = the dataset's median unit size.
        duty: ``roster`` (duty patterns of existing unit members), ``always``, or ``post``
            (always, and on post).
        seed: keys the choice of profiles.

    Raises:
        ValueError: a village row is out of range, or ``duty`` is unknown.
    """
    if duty not in ("roster", "always", "post"):
        raise ValueError(f"duty must be 'roster', 'always' or 'post', got {duty!r}")
    if size == 0:
        size = int(np.median(ds.units.members)) if len(ds.units) else 10
    vols = ds.volunteers
    pool = np.flatnonzero(vols.unit >= 0)
    if not len(pool):
        pool = np.arange(len(vols))
    modes = unit_modes(size, mode_mix(ds))
    columns: dict[str, list[object]] = {name: [] for name in _NEW_COLUMNS}
    ids: list[str] = []
    seen: dict[int, int] = {}
    for u, row in enumerate(villages):
        if not 0 <= row < len(ds.villages):
            raise ValueError(f"village row {row} out of range 0..{len(ds.villages) - 1}")
        copy = seen.get(row, 0)
        seen[row] = copy + 1
        vid = ds.villages.id[row]
        for j, mode in enumerate(modes):
            (u0,) = uniforms(key_of(seed, Stream.UNIT_PROFILE, int(row), copy, j), 1)
            profile = int(pool[min(int(u0 * len(pool)), len(pool) - 1)])
            ids.append(f"new-{vid}-{copy}-{j:02d}")
            always = duty in ("always", "post")
            values: dict[str, object] = {
                "home_lat": float(ds.villages.lat[row]),
                "home_lon": float(ds.villages.lon[row]),
                "mode": int(mode),
                "roles": int(vols.roles[profile]),
                "teams": int(vols.teams[profile]),
                "unit": len(ds.units) + u,
                "village": int(row),
                "duty_hours": ALL_HOURS if always else int(vols.duty_hours[profile]),
                "duty_days": ALL_DAYS if always else int(vols.duty_days[profile]),
                "new_unit": u,
                "posted": duty == "post",
            }
            for name, value in values.items():
                columns[name].append(value)
    return SimVolunteers(
        ids=tuple(ids),
        keys=id_keys(ids),
        **{name: np.array(columns[name], dtype=dtype) for name, dtype in _NEW_COLUMNS.items()},
    )


_NEW_COLUMNS: Final[dict[str, type[np.generic]]] = {
    "home_lat": np.float64,
    "home_lon": np.float64,
    "mode": np.uint8,
    "roles": np.uint8,
    "teams": np.uint8,
    "unit": np.int64,
    "village": np.int64,
    "duty_hours": np.uint32,
    "duty_days": np.uint8,
    "new_unit": np.int64,
    "posted": np.bool_,
}
