"""Ranking: who can reach an incident, and in which ring.

Theory of operation
-------------------
1. The candidates are the available volunteers (the index keeps them in buckets of their
   own: :meth:`LiveIndex.available_in_cells`) in the cells of the ``grid_disk`` around the
   incident's cell that is wide enough for the fastest mode to arrive within ``max_eta_s``
   (``model.max_reach_m``), as :meth:`LiveIndex.near` visits them, less the cells whose
   centre lies farther than that reach plus a cell's radius (the disk is a hexagon around
   the circle; the cut drops ~40% of its cells, from the second query in a cell on). A
   superset, never a miss. With a model that knows each mode's reach (:class:`ReachByMode`),
   each mode's volunteers come from the cells of that mode's own reach only
   (:meth:`LiveIndex.available_by_mode`): in a town at 5 minutes, the walkers of a car's disk
   are most of its people and nearly all out of a walker's reach. A disk wider than the
   buckets of the available are many (a search widened over a whole county) takes every
   available volunteer instead.
2. Eligibility is one vectorised mask: status ``available`` (not ``off_duty``, not ``busy``;
   already so for step 1's candidates, tested for those of :func:`rank_slots`), a fix no
   older than the freshness limit, and no open offer or active assignment (the caller's
   ``held`` mask).
3. With many candidates (or a model that knows each mode's reach, :class:`ReachByMode`), a
   cheap planar bound (:func:`_reach_bound`, proved conservative) drops whoever is surely
   farther than the reach before the model pays a haversine for them. Step 2 is then done
   around it in the order that reads the least memory (:func:`_eligible_in_reach`): for the
   available, each one's fix record in one gather (position and fix time share a cache
   line; :attr:`LiveIndex.fixes`), the held mask for the survivors only.
4. The travel model gives every eligible volunteer an ETA (turnout included) in one call;
   those slower than ``max_eta_s`` drop out.
5. ``ring_min`` is the smallest ring (1, 3, 5 minutes) whose limit the ETA fits in, ``None``
   beyond 5 minutes (only when the search was widened).
6. The order: ring, then whether the volunteer carries a needed role or team, then ETA, then
   membership of the unit nearest the incident, then id. One argsort of a float key does the
   first three; only runs of equal keys (rare) are then sorted by unit and id (:func:`_order`).
7. ``distance_m`` is the haversine to the incident, from the model when it gives distances
   with its times (:class:`DistanceByProduct`), else computed for the ranked ones.

Steps 2-7 give the same ranking whatever superset of the reachable volunteers step 1 hands
over (:func:`rank_slots`: the benchmarks feed it from a full scan and from Redis).

Everything stays columnar (:class:`Ranking`); :class:`Candidate` objects are built only for
the few the caller looks at.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol, cast

import numpy as np
import numpy.typing as npt

from dispatch.core.policy import RING_MINUTES, RINGS_S
from geo.cells import (
    Cells,
    cell_of,
    disk_k_for_radius,
    disk_with_centres,
    disk_with_centres_on_reuse,
    grid_disk,
)
from geo.coords import check_latlon
from geo.modes import Mode
from geo.travel import FloatArray, ModeArray, SituationArray, TravelModel, haversine_m
from units.index import ATTR_ROLES, ATTR_SITUATION, ATTR_TEAMS, FIX_LAT, FIX_LON, FIX_TS
from units.vocab import Role, Status, Team, names_of

if TYPE_CHECKING:
    from units.index import LiveIndex

__all__ = [
    "RINGS",
    "RING_LIMITS_S",
    "Candidate",
    "DistanceByProduct",
    "Ranking",
    "ReachByMode",
    "rank",
    "rank_slots",
    "ring_of",
]

#: The doctrine's reaction rings, minutes, and their limits in seconds (from the policy module,
#: the one place they are defined).
RINGS: Final = RING_MINUTES
RING_LIMITS_S: Final = np.asarray(RINGS_S, dtype=np.float64)
#: ``ring`` column value for "beyond 5 minutes" (a widened search); sorts after every ring.
NO_RING: Final = 255
_RING_CODES: Final = np.array([*RINGS, NO_RING], dtype=np.uint8)
_RING_LIMITS: Final = tuple(float(limit) for limit in RINGS_S)
#: From this many ETAs, rings by comparisons (:func:`_ring_positions`).
_COMPARE_RINGS_MIN: Final = 1024

#: Metres; below every radius the engine measures distances with: the WGS84 ellipsoid's
#: smallest radius of curvature a(1 - e²) = 6,335,439 m, the Gaussian radius of
#: :func:`~geo.travel.haversine_m` (>= 6,356,752 m) and H3's sphere (6,371,008 m).
_R_LOWER: Final = 6_335_000.0
#: The reach pre-filter keeps a little more than the reach: floating-point slack, and the
#: model's own rounding when it compares a time with the horizon.
_REACH_SLACK: Final = 1e-6
_REACH_SLACK_M: Final = 1e-3
_DEG: Final = math.pi / 180.0
_HALF_DEGREE: Final = math.radians(0.5)
_AVAILABLE: Final = int(Status.AVAILABLE)
#: Below this many candidates in the cells the reach pre-filter (step 3) costs more (ten numpy
#: calls) than the travel times it saves (measured on the county).
_PREFILTER_MIN: Final = 2048
#: From this many candidates in a whole disk, cutting it pays for computing its centres at
#: once (~250 µs against ~25 ns for each of the ~40% it drops).
_CUT_NOW_MIN: Final = 16_384
#: From this many candidates, the order is a sort of packed keys (:func:`_packed_order`), for
#: at most _PACKED_INDEX of them: the positions take _PACKED_INDEX_BITS bits of the key, the
#: group 3 and the ETA the rest (its lowest _ETA_DROPPED_BITS bits are dropped).
_PACKED_MIN: Final = 2048
_PACKED_INDEX_BITS: Final = 20
_PACKED_INDEX: Final = 1 << _PACKED_INDEX_BITS
_ETA_DROPPED_BITS: Final = 3 + _PACKED_INDEX_BITS
#: Cell radii are rounded up to this (metres) in the cut of a disk (:func:`_cells_in_reach`).
_RADIUS_STEP_M: Final = 25.0
_MODE_CODES: Final = np.arange(len(Mode), dtype=np.uint8)

IntArray = npt.NDArray[np.intp]


class ReachByMode(Protocol):
    """Optional for a :class:`~geo.travel.TravelModel`: each mode's own reach.

    With it, ranking drops a walker beyond a walker's reach before computing a travel time
    for them (at 5 minutes a walker reaches 530 m, a car 2.9 km: most people in the disk are
    out of their own mode's reach).
    """

    def max_reach_by_mode_m(self, seconds: float) -> FloatArray:
        """Per :class:`~geo.modes.Mode` code (one entry per mode): an upper bound on the
        straight-line distance an origin of that mode covers in ``seconds``."""
        ...


class DistanceByProduct(Protocol):
    """Optional for a :class:`~geo.travel.TravelModel`: the haversine distances it computed
    on the way to the times, so that ranking does not compute them a second time."""

    def seconds_and_distances_to(
        self,
        lat: FloatArray,
        lon: FloatArray,
        modes: ModeArray,
        dest_lat: float,
        dest_lon: float,
        *,
        situations: SituationArray | None = None,
        limit_s: float | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """``seconds_to(...)`` and ``haversine_m(lat, lon, dest_lat, dest_lon)``, equal to
        what those two give."""
        ...


def ring_of(eta_s: FloatArray) -> npt.NDArray[np.uint8]:
    """Ring per ETA: 1, 3 or 5 (the smallest ring whose limit it fits in), else ``NO_RING``."""
    position = np.searchsorted(RING_LIMITS_S, eta_s, side="left")
    return _RING_CODES[position]


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
    mode_reach = _mode_reach(model, max_eta_s)
    slots, modes = _candidates(
        index, lat, lon, (model.max_reach_m(max_eta_s),) if mode_reach is None else mode_reach
    )
    return _rank(
        index,
        model,
        slots,
        modes,
        mode_reach,
        lat,
        lon,
        now=now,
        max_eta_s=max_eta_s,
        needs_roles=needs_roles,
        needs_teams=needs_teams,
        held=held,
        nearest_unit=nearest_unit,
        available=True,
    )


def rank_slots(
    index: LiveIndex,
    model: TravelModel,
    slots: IntArray,
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
    """:func:`rank` over candidates found some other way (steps 2-7 of the module doc).

    ``slots`` must hold every volunteer who may arrive within ``max_eta_s``, each once (the
    index's disk, a full scan, a Redis ``GEOSEARCH``); the result is then the same as
    :func:`rank`'s. Benchmarks use it to time other ways of finding the candidates.

    Raises:
        CoordinateError: the incident's coordinates are invalid.
        IndexError: a slot is out of range.
    """
    lat, lon = check_latlon(lat, lon)
    slots = np.asarray(slots, dtype=np.intp)
    if slots.size and (slots.min() < 0 or slots.max() >= len(index)):
        raise IndexError("slot out of range")
    return _rank(
        index,
        model,
        slots,
        None,
        _mode_reach(model, max_eta_s),
        lat,
        lon,
        now=now,
        max_eta_s=max_eta_s,
        needs_roles=needs_roles,
        needs_teams=needs_teams,
        held=held,
        nearest_unit=nearest_unit,
        available=False,
    )


def _candidates(
    index: LiveIndex, lat: float, lon: float, reaches_m: tuple[float, ...]
) -> tuple[IntArray, ModeArray | None]:
    """Step 1: the available in the cells that may hold someone within reach; with one reach
    per mode, each mode's from the cells of its own reach, and the mode of each.

    When the disk would take more lookups (one per cell and mode) than there are buckets of
    the available (a search widened to 15 or 30 minutes over a county), every available
    volunteer is taken instead: a superset too, and a few hundred buckets joined instead of
    thousands of cells looked up and cut.
    """
    centre = cell_of(lat, lon, index.res)
    k = disk_k_for_radius(centre, max(reaches_m))
    if len(Mode) * (3 * k * (k + 1) + 1) > index.available_buckets:  # 3k(k+1)+1 cells
        return index.available_everywhere(), None
    cells, cut = _cells_in_reach(index.res, lat, lon, reaches_m)
    slots, modes = _gather(index, cells)
    if not cut and len(slots) >= _CUT_NOW_MIN:  # a crowd: worth cutting the disk right away
        cells, _ = _cells_in_reach(index.res, lat, lon, reaches_m, now=True)
        slots, modes = _gather(index, cells)
    return slots, modes


def _gather(index: LiveIndex, cells: list[Cells]) -> tuple[IntArray, ModeArray | None]:
    """The available in ``cells[0]``, or with a list per mode, each mode's in its cells and
    the mode of each."""
    if len(cells) == 1:
        return index.available_in_cells(cells[0]), None
    slots, counts = index.available_by_mode(cells)
    return slots, np.repeat(_MODE_CODES[: len(counts)], counts)


def _mode_reach(model: TravelModel, max_eta_s: float) -> tuple[float, ...] | None:
    """Each mode's reach (no longer than the model's), for a model that knows them."""
    by_mode: Callable[[float], FloatArray] | None = getattr(model, "max_reach_by_mode_m", None)
    if by_mode is None:
        return None
    reach = model.max_reach_m(max_eta_s)
    return tuple(min(float(r), reach) for r in by_mode(max_eta_s).tolist())


def _rank(
    index: LiveIndex,
    model: TravelModel,
    slots: IntArray,
    modes: ModeArray | None,
    mode_reach: tuple[float, ...] | None,
    lat: float,
    lon: float,
    *,
    now: float,
    max_eta_s: float,
    needs_roles: int,
    needs_teams: int,
    held: npt.NDArray[np.bool_] | None,
    nearest_unit: int,
    available: bool,
) -> Ranking:
    """Steps 2-7 for valid, distinct ``slots`` around a validated point; ``modes``: their
    modes when known; ``mode_reach``: the model's reach per mode when it knows it;
    ``available``: they are all known to have that status (the index's table of the
    available)."""
    if not len(slots):
        return _empty()
    bound = None
    if mode_reach is not None or len(slots) >= _PREFILTER_MIN:
        bound = _reach_bound(lat, lon, model.max_reach_m(max_eta_s), mode_reach)
    if bound is None:
        keep = _eligible(index, slots, now, held, available=available)  # step 2
        slots = slots[keep]
        modes = None if modes is None else modes[keep]
        v_lat = index.lat[slots]
        v_lon = index.lon[slots]
    else:
        slots, v_lat, v_lon, modes = _eligible_in_reach(
            index, slots, modes, lat, lon, bound, now, held, available=available
        )
    if not len(slots):
        return _empty()
    # Step 4.
    words = index.attribute_words.take(slots)  # each one's attributes in one gather
    situations = _field(words, ATTR_SITUATION)
    codes = index.mode[slots] if modes is None else modes
    distance: FloatArray | None = None
    if hasattr(model, "seconds_and_distances_to"):
        eta, distance = cast(DistanceByProduct, model).seconds_and_distances_to(
            v_lat, v_lon, codes, lat, lon, situations=situations, limit_s=max_eta_s
        )
    else:
        eta = model.seconds_to(
            v_lat, v_lon, codes, lat, lon, situations=situations, limit_s=max_eta_s
        )
    keep = (eta <= max_eta_s).nonzero()[0]
    if len(keep) < len(slots):
        if not len(keep):
            return _empty()
        slots, v_lat, v_lon, eta = slots[keep], v_lat[keep], v_lon[keep], eta[keep]
        words = words[keep]
        if distance is not None:
            distance = distance[keep]
    # Steps 5-7.
    position = _ring_positions(eta)
    if needs_roles or needs_teams:
        roles, teams = _field(words, ATTR_ROLES), _field(words, ATTR_TEAMS)
        skilled = ((roles & needs_roles) | (teams & needs_teams)) != 0
    else:
        skilled = np.zeros(len(slots), dtype=np.bool_)
    order = _order(position, skilled, eta, slots, index, nearest_unit)
    return Ranking(
        slots=slots[order],
        eta_s=eta[order],
        ring=_RING_CODES[position[order]],
        distance_m=(
            haversine_m(v_lat[order], v_lon[order], lat, lon)
            if distance is None
            else distance[order]
        ),
        skilled=skilled[order],
    )


def _eligible(
    index: LiveIndex,
    slots: IntArray,
    now: float,
    held: npt.NDArray[np.bool_] | None,
    *,
    fresh: bool = True,
    available: bool = False,
) -> IntArray:
    """Step 2: positions in ``slots`` of the eligible, in one fused pass:
    :meth:`LiveIndex.fresh_available`'s rule without its range check (the slots come from
    the index), and the ``held`` mask; without the freshness test when ``fresh`` is false,
    without the status test when the slots are known to be ``available``."""
    if available:
        eligible = np.ones(len(slots), dtype=np.bool_)
    else:
        eligible = index.status[slots] == _AVAILABLE
    if fresh:
        eligible &= now - index.fix_ts[slots] <= index.freshness_s  # NaN (no fix): False
    if held is not None:
        eligible &= ~held[slots]
    keep: IntArray = eligible.nonzero()[0]
    return keep


def _eligible_in_reach(
    index: LiveIndex,
    slots: IntArray,
    modes: ModeArray | None,
    lat: float,
    lon: float,
    bound: _Bound,
    now: float,
    held: npt.NDArray[np.bool_] | None,
    *,
    available: bool,
) -> tuple[IntArray, FloatArray, FloatArray, ModeArray | None]:
    """Steps 2 and 3 for many candidates, in the order that reads the least memory.

    Candidates of any status (:func:`rank_slots`) are first cut to the available and not held
    (one byte each, and they drop everyone off duty or busy). Then each one's fix record in
    one gather (position and fix time share a cache line), the reach bound and the freshness
    on it, and the held mask for the survivors only.
    """
    if not available:
        keep = _eligible(index, slots, now, held, fresh=False)
        slots = slots[keep]
        modes = None if modes is None else modes[keep]
        held = None  # applied
    rows = index.fixes.take(slots, axis=0)
    planar = _planar(rows[:, FIX_LAT], rows[:, FIX_LON], lat, lon, bound.k)
    if bound.by_mode is None:
        ok = planar <= bound.limit  # NaN (no fix) compares False
    else:
        if modes is None:
            modes = index.mode[slots]
        ok = planar <= bound.by_mode[modes]
    ok &= now - rows[:, FIX_TS] <= index.freshness_s
    keep = ok.nonzero()[0]
    if held is not None:
        keep = keep[~held[slots[keep]]]
    return (
        slots[keep],
        rows[:, FIX_LAT].take(keep),  # a 1-d gather: 3x faster than rows[keep] of 2-d rows
        rows[:, FIX_LON].take(keep),
        None if modes is None else modes[keep],
    )


def _field(words: npt.NDArray[np.uint32], field: int) -> npt.NDArray[np.uint8]:
    """One byte of gathered attribute words (:attr:`LiveIndex.attribute_words`): a view."""
    return words.view(np.uint8)[field::4]


def _ring_positions(eta: FloatArray) -> IntArray:
    """How many ring limits each ETA (a number, not NaN) exceeds: ``np.searchsorted(
    RING_LIMITS_S, eta, side="left")``; for many ETAs as three comparisons, four times
    faster than a binary search per element."""
    if len(eta) < _COMPARE_RINGS_MIN:
        return np.searchsorted(RING_LIMITS_S, eta, side="left")
    position = (eta > _RING_LIMITS[0]).astype(np.intp)
    for limit in _RING_LIMITS[1:]:
        position += eta > limit
    return position


def _cells_in_reach(
    res: int, lat: float, lon: float, reaches_m: tuple[float, ...], *, now: bool = False
) -> tuple[list[Cells], bool]:
    """For each reach (one, or each mode's), the cells that may hold someone within it, and
    whether the disk's centres were known.

    The cells of the ``grid_disk`` for the longest reach (what :meth:`LiveIndex.near` visits)
    whose centre lies within that reach plus the cells' radius. The disk is a hexagon around
    the reach circle plus two cell radii; the cut keeps about 60% of its cells at 5 minutes
    for the fastest mode, far fewer for the slower ones (a walker's 530 m against a car's
    2.9 km). The first query in a cell takes, for each reach, the whole ``grid_disk`` sized
    for it, unless ``now`` (the disk's centres cost ~250 µs: worth it for cells that recur
    or for a crowd); so does a disk with a pentagon.
    """
    centre = cell_of(lat, lon, res)
    ks = [disk_k_for_radius(centre, r) for r in reaches_m]
    disk = (
        disk_with_centres(centre, max(ks)) if now else disk_with_centres_on_reuse(centre, max(ks))
    )
    if disk is None:  # a first visit: each reach's whole disk, as near() would take
        return [grid_disk(centre, k) for k in ks], False
    if math.isfinite(disk.cell_radius_m):
        # rounded up (a larger radius only keeps more cells), so that the cached bounds
        # serve every disk of a region instead of one entry each
        radius = math.ceil(disk.cell_radius_m / _RADIUS_STEP_M) * _RADIUS_STEP_M
        longest = max(reaches_m) + radius
        bound = _reach_bound(lat, lon, longest, tuple(r + radius for r in reaches_m))
        if bound is not None and bound.by_mode is not None:
            dy = _planar(disk.lat, disk.lon, lat, lon, bound.k)
            return [disk.cells[dy <= limit] for limit in bound.by_mode.tolist()], True
    return [grid_disk(centre, k) for k in ks], True


def _planar(lat_a: FloatArray, lon_a: FloatArray, lat: float, lon: float, k: float) -> FloatArray:
    """``Δlat² + k·Δlon²`` (degrees²) of each point from ``(lat, lon)``: the planar form
    that :func:`_reach_bound`'s limits apply to (NaN where a point has no fix)."""
    dy = lat_a - lat
    dx = lon_a - lon
    dy *= dy
    dx *= dx
    dx *= k
    dy += dx
    return dy


class _Bound(NamedTuple):
    k: float
    limit: float
    by_mode: FloatArray | None  # limit per mode code


def _reach_bound(
    lat0: float, lon0: float, reach_m: float, mode_reach: tuple[float, ...] | None = None
) -> _Bound | None:
    """``k`` and ``limit`` such that no point with ``dlat² + k·dlon² > limit`` (degrees from
    ``(lat0, lon0)``) lies within ``reach_m``, and with ``mode_reach`` (reaches no longer
    than ``reach_m``) the limit of each; ``None`` where the bound is not worth proving (a reach
    over 127 km, within 1° of a pole's cap or of the antimeridian).

    Why it holds. On the sphere of radius :data:`_R_LOWER` a point is within ``r`` iff
    ``hav = sin²(Δφ/2) + cos φ cos φ0 sin²(Δλ/2) <= h = sin²(r / 2R)``; every distance the
    engine uses is at least that sphere's. A point with ``|Δφ/2| > a = r / 2R`` is out
    (its first term alone exceeds ``h``). Any other lies in the band ``|φ| <= |φ0| + 2a``,
    where ``cos φ cos φ0 >= k``; there a point with ``|Δλ/2| > b``, ``sin² b = h / k``, is out
    (``b`` < 0.5° also settles a ``Δλ`` that wraps the antimeridian). The rest have both
    half-angles within ``c = max(a, b)``, where ``sin² t >= t²(1 - c²/3)``, so
    ``hav >= (1 - c²/3)(Δφ² + k Δλ²) / 4``: above ``h`` whenever the planar form is above
    ``limit``. A shorter reach keeps the band and ``k`` of the longest (both stay valid) and
    gets its own ``h``, ``b``, ``c`` and limit.
    """
    if abs(lon0) > 179.0:
        return None
    # Cached per hundredth of a degree of latitude, rounded away from the equator: a higher
    # latitude only makes the bound more cautious (smaller k, larger limits).
    return _reach_bound_at(math.ceil(abs(lat0) * 100.0) + 1, reach_m, mode_reach)


@functools.lru_cache(maxsize=1024)
def _reach_bound_at(
    centi_lat: int, reach_m: float, mode_reach: tuple[float, ...] | None
) -> _Bound | None:
    lat0 = centi_lat / 100.0
    a = _half_angle(reach_m)
    if not a < 0.01:
        return None
    band = lat0 + math.degrees(2.0 * a)
    if band >= 89.0:
        return None
    k = math.cos(math.radians(band)) * math.cos(math.radians(lat0))
    limit = _planar_limit(a, k)
    if limit is None:
        return None
    if mode_reach is None:
        return _Bound(k, limit, None)
    limits = [_planar_limit(_half_angle(min(r, reach_m)), k) for r in mode_reach]
    by_mode = np.array([limit if m is None else m for m in limits], dtype=np.float64)
    by_mode.flags.writeable = False
    return _Bound(k, limit, by_mode)


def _half_angle(reach_m: float) -> float:
    """Half the central angle of ``reach_m`` (with its slack) on the sphere of radius
    :data:`_R_LOWER`."""
    return (max(0.0, reach_m) * (1.0 + _REACH_SLACK) + _REACH_SLACK_M) / (2.0 * _R_LOWER)


def _planar_limit(a: float, k: float) -> float | None:
    """The ``limit`` of :func:`_reach_bound` for half-angle ``a`` in a band where
    ``cos φ cos φ0 >= k``; ``None`` when ``b`` is not below half a degree."""
    h = math.sin(a) ** 2
    b = math.asin(math.sqrt(h / k)) if h < k else math.inf
    if not b < _HALF_DEGREE:
        return None
    c = max(a, b)
    return 4.0 * h / (1.0 - c * c / 3.0) / (_DEG * _DEG) * (1.0 + _REACH_SLACK)


def _order(
    position: IntArray,
    skilled: npt.NDArray[np.bool_],
    eta: FloatArray,
    slots: IntArray,
    index: LiveIndex,
    nearest_unit: int,
) -> IntArray:
    """The permutation that sorts by ring, skilled first, ETA, nearest unit first, then id.

    The same order as ``np.lexsort((ids, ~home_unit, eta, ~skilled, ring))`` without its
    costs (the array of id strings alone takes milliseconds for thousands of candidates, and
    lexsort's stable passes over floats several more): one argsort of a float key
    ``(2 * ring position + not skilled) * C + eta``, ``C`` a power of two above four times
    the largest ``|eta|``. The first term is exact, each group's keys stay within ``C / 4``
    of it, and rounding is monotone, so the key never inverts two candidates and the groups
    never mix; equal keys (equal ETAs, or ETAs within ~1e-12 s) are then put in (ETA,
    nearest unit, id) order, run by run.

    Many candidates' times, none negative, are ordered by :func:`_packed_order` instead.
    """
    lowest = float(eta.min())
    span = max(float(eta.max()), -lowest)
    if not 4.0 * span < math.inf:  # times beyond 1e307 s: no room for the groups
        home = index.unit[slots] == nearest_unit if nearest_unit >= 0 else skilled & False
        ids = np.array([index.ids[s] for s in slots.tolist()])
        return np.lexsort((ids, ~home, eta, ~skilled, position))
    if len(eta) >= _PACKED_MIN and lowest >= 0.0 and len(eta) <= _PACKED_INDEX:
        order, tie = _packed_order(position, skilled, eta)
    else:
        scale = 2.0 ** math.frexp(4.0 * span)[1]
        key = position.astype(np.float64)
        key *= 2.0
        key += ~skilled
        key *= scale
        key += eta
        order = np.argsort(key)
        sorted_key = key[order]
        tie = (sorted_key[1:] == sorted_key[:-1]).nonzero()[0]
    if len(tie):
        _break_ties(order, tie, eta, slots, index, nearest_unit)
    return order


def _packed_order(
    position: IntArray, skilled: npt.NDArray[np.bool_], eta: FloatArray
) -> tuple[IntArray, IntArray]:
    """:func:`_order`'s permutation by key for many times, none negative, and where equal
    keys sit in it (``tie``: every ``i`` where ``order[i]`` and ``order[i + 1]`` tie).

    A sort of values, not an argsort: numpy sorts 64-bit values three times faster than it
    argsorts them (SIMD). So each candidate's key and its position are packed into one
    ``int64``: 3 bits of group (ring position, not skilled), the top 40 bits of the ETA's
    IEEE pattern (non-negative doubles order as their bit patterns; ``+ 0.0`` turns a
    ``-0.0`` into ``0.0``), then 20 bits of position. The ETA keeps 29 bits of mantissa, so
    times within ~2e-9 of each other share a key, and the caller puts every run of equal
    keys in exact order.
    """
    bits = (eta + 0.0).view(np.int64) >> _ETA_DROPPED_BITS
    key = position.astype(np.int64)
    key <<= 1
    key += ~skilled
    key <<= 63 - _ETA_DROPPED_BITS
    key |= bits
    packed = key << _PACKED_INDEX_BITS
    packed |= np.arange(len(eta), dtype=np.int64)
    packed.sort()
    order: IntArray = (packed & (_PACKED_INDEX - 1)).astype(np.intp)
    packed >>= _PACKED_INDEX_BITS
    tie: IntArray = (packed[1:] == packed[:-1]).nonzero()[0]
    return order, tie


def _break_ties(
    order: IntArray,
    tie: IntArray,
    eta: FloatArray,
    slots: IntArray,
    index: LiveIndex,
    nearest_unit: int,
) -> None:
    """Sort each run of equal keys in ``order`` (in place) by ETA, nearest unit, then id.

    ``tie`` holds every ``i`` where ``order[i]`` and ``order[i + 1]`` have equal keys.
    """
    ids = index.ids
    unit = index.unit
    home = nearest_unit if nearest_unit >= 0 else None  # -1 is "no unit", not a unit
    breaks = (np.diff(tie) != 1).nonzero()[0]
    starts = np.concatenate(([tie[0]], tie[breaks + 1])).tolist()
    stops = (np.concatenate((tie[breaks], [tie[-1]])) + 2).tolist()
    for start, stop in zip(starts, stops, strict=True):
        run = order[start:stop].tolist()
        run.sort(key=lambda i: (float(eta[i]), int(unit[slots[i]]) != home, ids[slots[i]]))
        order[start:stop] = run


def _empty() -> Ranking:
    return Ranking(
        slots=np.empty(0, dtype=np.intp),
        eta_s=np.empty(0),
        ring=np.empty(0, dtype=np.uint8),
        distance_m=np.empty(0),
        skilled=np.empty(0, dtype=np.bool_),
    )
