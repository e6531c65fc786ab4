"""Ranking: who can reach an incident, and in which ring.

Theory of operation
-------------------
1. The candidates are the volunteers in the cells of the ``grid_disk`` around the incident's
   cell that is wide enough for the fastest mode to arrive within ``max_eta_s``
   (``model.max_reach_m``), as :meth:`LiveIndex.near` visits them, less the cells whose
   centre lies farther than that reach plus a cell's radius (the disk is a hexagon around
   the circle; the cut drops ~40% of its cells, from the second query in a cell on). In a
   crowd (thousands in the disk) and with a model that knows each mode's reach
   (:class:`ReachByMode`), each mode's volunteers come from that mode's own cells instead
   (the index keeps buckets per cell and per cell and mode): at 5 minutes a walker reaches
   530 m, a car 2.9 km, and in a dense town this halves the candidates. A superset, never a
   miss.
2. Eligibility: a fix no older than the freshness limit, status ``available`` (not
   ``off_duty``, not ``busy``), and no open offer or active assignment (the caller's
   ``held`` mask).
3. With many candidates (or a model that knows each mode's reach), a cheap planar bound
   (:func:`_reach_bound`, proved conservative) drops whoever is surely farther than the
   reach before the model pays a haversine for them. Steps 2 and 3 read the index's fix
   records (position and time side by side) for every candidate, then the attribute records
   (status, situation, roles, teams) for those left: candidates are scattered over the
   index, and each record is one cache miss where separate columns were one each.
4. The travel model gives every eligible volunteer an ETA (turnout included) in one call;
   those slower than ``max_eta_s`` drop out.
5. ``ring_min`` is the smallest ring (1, 3, 5 minutes) whose limit the ETA fits in, ``None``
   beyond 5 minutes (only when the search was widened).
6. The order: ring, then whether the volunteer carries a needed role or team, then ETA, then
   membership of the unit nearest the incident, then id. A float key does the first three;
   only runs of equal keys (rare) are then sorted by unit and id (:func:`_order`). The order
   is made on demand: :meth:`Ranking.head` partitions the keys and sorts the first ``k``
   only (the plan and ``?limit=`` need a handful of a dense town's ten thousand), the full
   columns sort everyone once.
7. ``distance_m`` is the haversine to the incident, from the model when it gives distances
   with its times (:class:`DistanceByProduct`), else computed for the entries asked for.

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
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

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
from units.index import (
    ATTR_ROLES,
    ATTR_SITUATION,
    ATTR_STATUS,
    ATTR_TEAMS,
    FIX_LAT,
    FIX_LON,
    FIX_TS,
)
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
#: Cell radii are rounded up to this step before the cut's bounds are looked up (cached).
_RADIUS_STEP_M: Final = 25.0
#: From this many candidates in the disk, each mode's come from its own cells (fewer lookups
#: do not pay below: a county's disks hold hundreds).
_PER_MODE_MIN: Final = 4096
#: Below this many entries, sorting them all costs less than the partition's extra calls.
_PARTITION_MIN: Final = 512
#: From this many candidates in a whole disk, cutting it pays for computing its centres at
#: once (~250 µs against ~25 ns for each of the ~40% it drops).
_CUT_NOW_MIN: Final = 16_384

IntArray = npt.NDArray[np.intp]


class _SecondsAndDistances(Protocol):
    def __call__(
        self,
        lat: FloatArray,
        lon: FloatArray,
        modes: ModeArray,
        dest_lat: float,
        dest_lon: float,
        *,
        situations: SituationArray | None = None,
        limit_s: float | None = None,
    ) -> tuple[FloatArray, FloatArray]: ...


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


class Ranking:
    """Eligible volunteers in reach, best first, as parallel columns.

    ``rank`` builds it unordered; the order is made on demand, and only as far as asked:
    :meth:`head` orders just the first ``k`` (a partition, then a sort of those few: the
    plan and ``?limit=`` look at a handful of the thousands in reach of a dense town), the
    full columns (``slots``, ``eta_s``, ...) order everything once. Both give the order of
    the module doc; ``head(k)`` is always the first ``k`` of the full columns.

    Constructed from columns already in order (tests, callers that rank by other means).
    """

    __slots__ = ("_columns", "_head", "_lazy", "_n")

    def __init__(
        self,
        slots: IntArray,
        eta_s: FloatArray,
        ring: npt.NDArray[np.uint8],
        distance_m: FloatArray,
        skilled: npt.NDArray[np.bool_],
    ) -> None:
        self._n = len(slots)
        self._columns: _Columns | None = _Columns(slots, eta_s, ring, distance_m, skilled)
        self._head: _Columns | None = None  # the longest prefix ordered so far
        self._lazy: _Unordered | None = None

    @classmethod
    def _unordered(cls, lazy: _Unordered) -> Ranking:
        ranking = cls.__new__(cls)
        ranking._n = len(lazy.slots)
        ranking._columns = None
        ranking._head = None
        ranking._lazy = lazy
        return ranking

    def __len__(self) -> int:
        return self._n

    @property
    def slots(self) -> IntArray:
        """Index slots, best first."""
        return self._all().slots

    @property
    def eta_s(self) -> FloatArray:
        """ETA, turnout included, seconds."""
        return self._all().eta_s

    @property
    def ring(self) -> npt.NDArray[np.uint8]:
        """Ring per entry: 1, 3, 5 minutes, ``NO_RING`` beyond."""
        return self._all().ring

    @property
    def distance_m(self) -> FloatArray:
        """Haversine distance to the incident, metres."""
        return self._all().distance_m

    @property
    def skilled(self) -> npt.NDArray[np.bool_]:
        """Carries a role or team the incident needs."""
        return self._all().skilled

    def head(self, k: int) -> Ranking:
        """The first ``k`` entries (all when fewer), in order, as a ranking of their own.

        Exact: equal to the first ``k`` of the full columns, ties included. Costs a partition
        of the sort keys plus a sort of ``k``, not a sort of everyone.
        """
        k = max(0, min(int(k), self._n))
        columns = self._columns
        if columns is None:
            head = self._head
            if head is None or len(head.slots) < k:
                assert self._lazy is not None
                head = self._head = self._lazy.prefix(k)
            columns = head
        if k < len(columns.slots):
            columns = columns.first(k)
        return Ranking(*columns)

    def first_skilled(self) -> int | None:
        """Position of the first entry that carries a needed skill; ``None`` if none does."""
        if self._columns is None:
            assert self._lazy is not None
            return self._lazy.first_skilled()
        found = np.flatnonzero(self._columns.skilled)
        return int(found[0]) if len(found) else None

    def candidates(
        self, index: LiveIndex, unit_ids: tuple[str, ...] = (), limit: int | None = None
    ) -> list[Candidate]:
        """The first ``limit`` entries as :class:`Candidate` objects.

        Args:
            index: the index the ranking came from (for ids, modes, roles, teams, units).
            unit_ids: unit id per unit index, for the ``unit_id`` field.
            limit: how many; all when ``None``.
        """
        top = self.head(self._n if limit is None else limit)
        out = []
        for i in range(len(top)):
            slot = int(top.slots[i])
            ring = int(top.ring[i])
            unit = int(index.unit[slot])
            out.append(
                Candidate(
                    slot=slot,
                    volunteer_id=index.ids[slot],
                    eta_s=float(top.eta_s[i]),
                    ring_min=None if ring == NO_RING else ring,
                    distance_m=float(top.distance_m[i]),
                    mode=Mode(int(index.mode[slot])),
                    roles=tuple(names_of(Role, int(index.roles[slot]))),
                    teams=tuple(names_of(Team, int(index.teams[slot]))),
                    unit_id=unit_ids[unit] if 0 <= unit < len(unit_ids) else None,
                    skilled=bool(top.skilled[i]),
                )
            )
        return out

    def _all(self) -> _Columns:
        if self._columns is None:
            assert self._lazy is not None
            self._columns = self._lazy.prefix(self._n)
            self._head = self._lazy = None
        return self._columns


class _Columns(NamedTuple):
    slots: IntArray
    eta_s: FloatArray
    ring: npt.NDArray[np.uint8]
    distance_m: FloatArray
    skilled: npt.NDArray[np.bool_]

    def first(self, k: int) -> _Columns:
        return _Columns(
            self.slots[:k], self.eta_s[:k], self.ring[:k], self.distance_m[:k], self.skilled[:k]
        )


@dataclass(frozen=True, slots=True)
class _Unordered:
    """A ranking's entries before ordering: the columns in candidate order, and what the
    order needs (module doc, step 6)."""

    index: LiveIndex
    nearest_unit: int
    slots: IntArray
    eta: FloatArray
    position: IntArray  # ring position: 0, 1, 2 for the rings, 3 beyond
    skilled: npt.NDArray[np.bool_]
    distance: FloatArray | None  # None: computed for the entries asked for
    lat: FloatArray
    lon: FloatArray
    incident: tuple[float, float]
    key: FloatArray | None  # _sort_key's; None: no room for it, everything goes by lexsort

    def prefix(self, k: int) -> _Columns:
        """The first ``k`` entries in order."""
        n = len(self.slots)
        key = self.key
        if key is None or 4 * k >= n or n < _PARTITION_MIN:
            order = _order(
                self.position,
                self.skilled,
                self.eta,
                self.slots,
                self.index,
                self.nearest_unit,
                key,
            )[:k]
        elif k == 0:
            order = np.empty(0, dtype=np.intp)
        else:
            # Everyone with a key up to the k-th smallest (ties with it included), in order.
            kth = np.partition(key, k - 1)[k - 1]
            within = (key <= kth).nonzero()[0]
            order = within[
                _order(
                    self.position[within],
                    self.skilled[within],
                    self.eta[within],
                    self.slots[within],
                    self.index,
                    self.nearest_unit,
                    key[within],
                )
            ][:k]
        if self.distance is not None:
            distance = self.distance[order]
        else:
            distance = haversine_m(self.lat[order], self.lon[order], *self.incident)
        return _Columns(
            self.slots[order],
            self.eta[order],
            _RING_CODES[self.position[order]],
            distance,
            self.skilled[order],
        )

    def first_skilled(self) -> int | None:
        """Position in the order of the first skilled entry: everyone before it has a
        smaller key (the skilled of a ring come first in it, and equal keys share a group)."""
        if not self.skilled.any():
            return None
        key = self.key
        if key is None:
            return int(np.flatnonzero(self.prefix(len(self.slots)).skilled)[0])
        best = key[self.skilled].min()
        return int(np.count_nonzero(key < best))


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
    reach = model.max_reach_m(max_eta_s)
    mode_reach = _mode_reach(model, max_eta_s)
    cells, cut = _cells_in_reach(index.res, lat, lon, reach)
    crowd = index.count_in_cells(cells)
    if not cut and crowd >= _CUT_NOW_MIN:  # a crowd: worth cutting the disk right away
        cells, cut = _cells_in_reach(index.res, lat, lon, reach, now=True)
        crowd = index.count_in_cells(cells)
    modes = None
    if mode_reach is not None and crowd >= _PER_MODE_MIN:
        # a crowd: each mode from its own cells (module doc, step 1)
        slots, modes = _candidates_by_mode(index, lat, lon, mode_reach)
    else:
        slots = index.slots_in_cells(cells)
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
    )


def _mode_reach(model: TravelModel, max_eta_s: float) -> tuple[float, ...] | None:
    """Each mode's reach (no longer than the model's), for a model that knows them."""
    by_mode: Callable[[float], FloatArray] | None = getattr(model, "max_reach_by_mode_m", None)
    if by_mode is None:
        return None
    reach = model.max_reach_m(max_eta_s)
    return tuple(min(float(r), reach) for r in by_mode(max_eta_s).tolist())


def _candidates_by_mode(
    index: LiveIndex, lat: float, lon: float, mode_reach: tuple[float, ...]
) -> tuple[IntArray, ModeArray]:
    """Step 1 for a crowd: each mode's volunteers from the cells of that mode's reach, and
    the mode of each."""
    per_mode, _ = _cells_in_reach_by_mode(index.res, lat, lon, mode_reach, now=True)
    slots, counts = index.slots_by_mode(per_mode)
    return slots, np.repeat(_MODE_CODES[: len(counts)], counts)


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
) -> Ranking:
    """Steps 2-7 for valid, distinct ``slots`` (of ``modes``, when known) around a
    validated point.

    Volunteers' rows are scattered over the whole index, so each column read is a cache
    miss per volunteer: the fix (position and time) is read as one record for everyone, the
    bound and the freshness test on it drop most; the attributes (status, situation, roles,
    teams) as another record for the rest, with the held mask.
    """
    rows = _fresh_in_reach(
        index, model, slots, modes, mode_reach, lat, lon, now=now, max_eta_s=max_eta_s
    )
    if rows is not None:
        rows = _available(index, rows, held)
    if rows is None:
        return _empty()
    # Step 4.
    v_lat = np.ascontiguousarray(rows.fixes[:, FIX_LAT])
    v_lon = np.ascontiguousarray(rows.fixes[:, FIX_LON])
    with_distances: _SecondsAndDistances | None = getattr(model, "seconds_and_distances_to", None)
    situations = rows.attrs[:, ATTR_SITUATION]
    codes = index.mode[rows.slots] if rows.modes is None else rows.modes
    distance: FloatArray | None = None
    if with_distances is None:
        eta = model.seconds_to(
            v_lat, v_lon, codes, lat, lon, situations=situations, limit_s=max_eta_s
        )
    else:
        eta, distance = with_distances(
            v_lat, v_lon, codes, lat, lon, situations=situations, limit_s=max_eta_s
        )
    slots, attrs = rows.slots, rows.attrs
    keep = (eta <= max_eta_s).nonzero()[0]
    if len(keep) < len(slots):
        if not len(keep):
            return _empty()
        slots, v_lat, v_lon, eta = slots[keep], v_lat[keep], v_lon[keep], eta[keep]
        attrs = attrs.take(keep, axis=0)
        if distance is not None:
            distance = distance[keep]
    # Steps 5-7 (the order itself on demand: Ranking.head).
    position = np.searchsorted(RING_LIMITS_S, eta, side="left")
    if needs_roles or needs_teams:
        skilled = ((attrs[:, ATTR_ROLES] & needs_roles) | (attrs[:, ATTR_TEAMS] & needs_teams)) != 0
    else:
        skilled = np.zeros(len(slots), dtype=np.bool_)
    return Ranking._unordered(
        _Unordered(
            index=index,
            nearest_unit=nearest_unit,
            slots=slots,
            eta=eta,
            position=position,
            skilled=skilled,
            distance=distance,
            lat=v_lat,
            lon=v_lon,
            incident=(lat, lon),
            key=_sort_key(position, skilled, eta),
        )
    )


class _Rows(NamedTuple):
    """The candidates' columns that the filters carry along, row by row."""

    slots: IntArray
    modes: ModeArray | None  # None: not known yet (read from the index when needed)
    fixes: FloatArray  # (m, 4) fix records
    attrs: npt.NDArray[np.uint8]  # (m, 4) attribute records; (0, 4) until read

    def select(self, keep: IntArray) -> _Rows:
        # np.take along rows: a record-wise copy (fancy indexing of 2-d arrays goes element
        # by element, several times slower)
        return _Rows(
            self.slots[keep],
            None if self.modes is None else self.modes[keep],
            self.fixes.take(keep, axis=0),
            self.attrs.take(keep, axis=0) if len(self.attrs) else self.attrs,
        )


def _fresh_in_reach(
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
) -> _Rows | None:
    """Steps 2 (a fresh fix) and 3 (the reach bound) on the fix records; ``None`` when
    nobody is left."""
    if not len(slots):
        return None
    bound = None
    if mode_reach is not None or len(slots) >= _PREFILTER_MIN:
        bound = _reach_bound(lat, lon, model.max_reach_m(max_eta_s), mode_reach)
    fixes = index.fixes.take(slots, axis=0)
    ok = now - fixes[:, FIX_TS] <= index.freshness_s  # NaN (no fix) compares False
    if bound is not None:
        dy = fixes[:, FIX_LAT] - lat
        dx = fixes[:, FIX_LON] - lon
        dy *= dy
        dx *= dx
        dx *= bound.k
        dy += dx
        if bound.by_mode is None:
            ok &= dy <= bound.limit
        else:
            if modes is None:
                modes = index.mode[slots]
            ok &= dy <= bound.by_mode[modes]
    rows = _Rows(slots, modes, fixes, _NO_ATTRS)
    keep = ok.nonzero()[0]
    if len(keep) == len(slots):
        return rows
    return rows.select(keep) if len(keep) else None


def _available(index: LiveIndex, rows: _Rows, held: npt.NDArray[np.bool_] | None) -> _Rows | None:
    """Step 2, the rest: ``available`` and not ``held``, with the attribute records read on
    the way; ``None`` when nobody is left."""
    attrs = _attributes(index, rows.slots)
    ok = attrs[:, ATTR_STATUS] == _AVAILABLE
    if held is not None:
        ok &= ~held[rows.slots]
    rows = rows._replace(attrs=attrs)
    keep = ok.nonzero()[0]
    if len(keep) == len(rows.slots):
        return rows
    return rows.select(keep) if len(keep) else None


def _attributes(index: LiveIndex, slots: IntArray) -> npt.NDArray[np.uint8]:
    """The attribute records of ``slots``, shape ``(len(slots), 4)``: read as one 4-byte
    word each (one gather instead of a row-wise copy)."""
    words = index.attributes.view(np.uint32).reshape(-1)
    return words.take(slots).view(np.uint8).reshape(-1, 4)


def _cells_in_reach(
    res: int, lat: float, lon: float, reach_m: float, *, now: bool = False
) -> tuple[Cells, bool]:
    """The cells of the index's ``grid_disk`` for ``reach_m`` (what :meth:`LiveIndex.near`
    visits) less those surely out of reach; and whether that cut was made
    (:func:`_cells_in_reach_by_mode` for one reach)."""
    (cells,), cut = _cells_in_reach_by_mode(res, lat, lon, (reach_m,), now=now)
    return cells, cut


def _cells_in_reach_by_mode(
    res: int, lat: float, lon: float, reaches_m: tuple[float, ...], *, now: bool = False
) -> tuple[list[Cells], bool]:
    """For each reach (a mode's), the cells that may hold someone within it: the cells of
    ``grid_disk`` for the longest reach whose centre lies within that reach plus the cells'
    radius; and whether that cut was made.

    The disk is a hexagon around the reach circle plus two cell radii; the cut keeps about
    60% of its cells at 5 minutes for the fastest mode, far fewer for the slower ones. A
    first query in a cell takes, for each reach, the whole ``grid_disk`` sized for it,
    unless ``now`` (the disk's centres cost ~250 µs: worth it for cells that recur or for a
    crowd).
    """
    centre = cell_of(lat, lon, res)
    ks = [disk_k_for_radius(centre, r) for r in reaches_m]
    longest = max(reaches_m)
    k = max(ks)
    disk = disk_with_centres(centre, k) if now else disk_with_centres_on_reuse(centre, k)
    if disk is None:  # a first visit: each reach's whole disk, as near() would take
        return [grid_disk(centre, k_r) for k_r in ks], False
    if not disk.cell_radius_m < _RADIUS_STEP_M * 1e6:  # a pentagon in the disk: no cut
        return [grid_disk(centre, k_r) for k_r in ks], False
    # Rounded up (a larger radius only keeps more cells), so that the bounds' cache serves
    # every cell of a region instead of one entry per cell.
    radius = math.ceil(disk.cell_radius_m / _RADIUS_STEP_M) * _RADIUS_STEP_M
    bound = _reach_bound(lat, lon, longest + radius, tuple(r + radius for r in reaches_m))
    if bound is None or bound.by_mode is None:
        return [grid_disk(centre, k_r) for k_r in ks], False
    dy = disk.lat - lat
    dx = disk.lon - lon
    dy *= dy
    dx *= dx
    dx *= bound.k
    dy += dx
    return [disk.cells[dy <= limit] for limit in bound.by_mode.tolist()], True


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


def _sort_key(
    position: IntArray, skilled: npt.NDArray[np.bool_], eta: FloatArray
) -> FloatArray | None:
    """The float key whose order is ring, skilled first, ETA (see :func:`_order`); ``None``
    when the ETAs leave no room for it (beyond 1e307 s)."""
    if not len(eta):
        return np.empty(0)
    span = max(float(eta.max()), -float(eta.min()))
    if not 4.0 * span < math.inf:
        return None
    scale = 2.0 ** math.frexp(4.0 * span)[1]
    key = position.astype(np.float64)
    key *= 2.0
    key += ~skilled
    key *= scale
    key += eta
    return key


def _order(
    position: IntArray,
    skilled: npt.NDArray[np.bool_],
    eta: FloatArray,
    slots: IntArray,
    index: LiveIndex,
    nearest_unit: int,
    key: FloatArray | None = None,
) -> IntArray:
    """The permutation that sorts by ring, skilled first, ETA, nearest unit first, then id.

    The same order as ``np.lexsort((ids, ~home_unit, eta, ~skilled, ring))`` without its
    costs (the array of id strings alone takes milliseconds for thousands of candidates, and
    lexsort's stable passes over floats several more): one argsort of a float key
    ``(2 * ring position + not skilled) * C + eta``, ``C`` a power of two above four times
    the largest ``|eta|`` (:func:`_sort_key`, or ``key`` when the caller made it with the
    same ``C`` for a superset: the order of a subset does not depend on which ``C``). The
    first term is exact, each group's keys stay within ``C / 4`` of it, and rounding is
    monotone, so the key never inverts two candidates and the groups never mix; equal keys
    (equal ETAs, or ETAs within ~1e-12 s) are then put in (ETA, nearest unit, id) order, run
    by run.
    """
    if key is None:
        key = _sort_key(position, skilled, eta)
    if key is None:  # times beyond 1e307 s: no room for the groups
        home = index.unit[slots] == nearest_unit if nearest_unit >= 0 else skilled & False
        ids = np.array([index.ids[s] for s in slots.tolist()])
        return np.lexsort((ids, ~home, eta, ~skilled, position))
    order = np.argsort(key)
    sorted_key = key[order]
    tie = (sorted_key[1:] == sorted_key[:-1]).nonzero()[0]
    if len(tie):
        _break_ties(order, tie, eta, slots, index, nearest_unit)
    return order


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


_MODE_CODES: Final = np.array([int(m) for m in Mode], dtype=np.uint8)
_NO_ATTRS: Final = np.empty((0, 4), dtype=np.uint8)
