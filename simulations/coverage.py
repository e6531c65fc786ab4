"""Static coverage: who can reach each demand point within the 1-, 3- and 5-minute rings.

Theory of operation
-------------------
For every demand point (a village or community) the question is "how many volunteers arrive
within each ring?". A KD-tree over the volunteers' positions (a local equirectangular
projection, metres) hands each point the volunteers within the travel model's
``max_reach_m`` of the largest ring, a superset; the travel model then gives their exact
times in one vectorised call, and the counts per ring follow. A point is covered at level
``k`` in a ring when at least ``k`` volunteers arrive within it.

*Acceptance-aware coverage.* Counting people is not counting help: an alerted volunteer
accepts with probability ``p_i`` (28.7% median in the responder studies). Assuming volunteers
answer independently, the probability that at least one of those within a ring accepts is
``1 - prod(1 - p_i)``; the same scan sums ``log(1 - p_i)`` per ring, so it costs one matrix
product more. Availability by hour comes from the duty patterns: the positions of a given
hour are those of the volunteers on duty then (:func:`coverage_by_hour`).

*Where positions come from* (:class:`Positions`): the live index (available volunteers with
a fresh fix, with their situation: what the server has), the volunteers' homes (those on
duty at an hour, as ``dispatch summary`` does), or a scenario file (CSV).

*The server's entry point* is :func:`coverage_from_index`: ``GET /api/v1/coverage`` calls it
with its own :class:`~units.index.LiveIndex`, the demand points (:meth:`Demand.from_dataset`,
built once at start-up), its travel model and ``now``, and returns
:meth:`CoverageReport.to_json` (about 0.15 s for the county: run it off the event loop, e.g.
``asyncio.to_thread``, on a snapshot or under the lock that guards the index). The planners'
``python -m simulations coverage`` runs the same functions; nothing here re-implements travel
times.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from dispatch.core.policy import RING_MINUTES, RINGS_S
from dispatch.errors import InvalidInput
from geo.coords import check_latlon_arrays
from geo.dataset.load import CountyDataset
from geo.modes import Mode
from geo.travel import FloatArray, ModeArray, Situation, SituationArray, TravelModel
from simulations.population import SimVolunteers
from units.index import LiveIndex

__all__ = [
    "DEFAULT_KS",
    "AcceptanceRow",
    "CoverageCounts",
    "CoverageReport",
    "CoverageRow",
    "Demand",
    "Positions",
    "coverage_by_hour",
    "coverage_counts",
    "coverage_from_index",
    "coverage_report",
    "project_local",
]

_METRES_PER_DEGREE: Final = 111_194.93  # on the mean sphere; the margin below absorbs it
#: Coverage levels reported: at least 1, 2 and 3 volunteers.
DEFAULT_KS: Final = (1, 2, 3)
#: Acceptance probabilities are clipped below 1 so that ``log(1 - p)`` stays finite.
_P_MAX: Final = 1.0 - 1e-12


def project_local(
    lat: FloatArray, lon: FloatArray, lat0: float, lon0: float
) -> npt.NDArray[np.float64]:
    """Equirectangular projection around ``(lat0, lon0)``, metres, shape ``(n, 2)``.

    At county scale (50 km) the distortion against the geodesic is below 0.5%; callers that
    need a superset inflate their radius by 1%.
    """
    x = (lon - lon0) * _METRES_PER_DEGREE * math.cos(math.radians(lat0))
    y = (lat - lat0) * _METRES_PER_DEGREE
    return np.column_stack([x, y])


@dataclass(frozen=True, slots=True)
class CoverageCounts:
    """Volunteers arriving within each ring, per demand point.

    Attributes:
        rings_s: the ring limits, seconds.
        counts: ``(n_points, n_rings)`` int32, cumulative (ring 3 includes ring 1).
    """

    rings_s: tuple[float, ...]
    counts: npt.NDArray[np.int32]

    def covered(self, k: int = 1) -> npt.NDArray[np.bool_]:
        """``(n_points, n_rings)``: at least ``k`` volunteers within the ring."""
        return self.counts >= k

    def shares(self, population: npt.NDArray[np.int64], k: int = 1) -> list[tuple[float, int, int]]:
        """Per ring: (population share, points covered, points total) at level ``k``."""
        covered = self.covered(k)
        total = float(population.sum())
        return [
            (
                float(population[covered[:, j]].sum()) / total if total else 0.0,
                int(covered[:, j].sum()),
                len(population),
            )
            for j in range(len(self.rings_s))
        ]


def _check_rings(rings_s: Sequence[float]) -> tuple[float, ...]:
    rings = tuple(float(r) for r in rings_s)
    if not rings or any(b <= a for a, b in itertools.pairwise(rings)):
        raise ValueError(f"rings_s must be non-empty and increasing, got {rings}")
    return rings


def _scan(
    demand_lat: FloatArray,
    demand_lon: FloatArray,
    lat: FloatArray,
    lon: FloatArray,
    modes: ModeArray,
    model: TravelModel,
    situations: SituationArray | None,
    rings: tuple[float, ...],
    log_q: FloatArray | None,
) -> tuple[npt.NDArray[np.int32], FloatArray | None]:
    """Counts per (point, ring) and, with ``log_q`` = ``log(1 - p_i)``, their sums."""
    counts = np.zeros((len(demand_lat), len(rings)), dtype=np.int32)
    sums = None if log_q is None else np.zeros((len(demand_lat), len(rings)), dtype=np.float64)
    if len(lat) == 0 or len(demand_lat) == 0:
        return counts, sums
    lat0, lon0 = float(np.mean(demand_lat)), float(np.mean(demand_lon))
    tree = cKDTree(project_local(lat, lon, lat0, lon0))
    radius = model.max_reach_m(rings[-1]) * 1.01 + 10.0
    points = project_local(demand_lat, demand_lon, lat0, lon0)
    limits = np.asarray(rings)
    for i, near in enumerate(tree.query_ball_point(points, radius)):
        if not near:
            continue
        idx = np.asarray(near, dtype=np.intp)
        seconds = model.seconds_to(
            lat[idx],
            lon[idx],
            modes[idx],
            float(demand_lat[i]),
            float(demand_lon[i]),
            situations=None if situations is None else situations[idx],
            limit_s=rings[-1],
        )
        within = seconds[:, None] <= limits[None, :]
        counts[i] = within.sum(axis=0)
        if sums is not None and log_q is not None:
            sums[i] = log_q[idx] @ within
    return counts, sums


def coverage_counts(
    demand_lat: FloatArray,
    demand_lon: FloatArray,
    lat: FloatArray,
    lon: FloatArray,
    modes: ModeArray,
    model: TravelModel,
    *,
    situations: SituationArray | None = None,
    rings_s: Sequence[float] = RINGS_S,
) -> CoverageCounts:
    """Count, for each demand point, the volunteers who reach it within each ring.

    Args:
        demand_lat, demand_lon: the demand points (villages, communities).
        lat, lon, modes: the volunteers' positions and modes.
        model: the travel model (turnout included through ``situations``).
        situations: each volunteer's situation code; ``None`` = all on patrol.
        rings_s: ring limits in seconds, increasing.

    Raises:
        ValueError: ``rings_s`` is empty or not increasing.
    """
    rings = _check_rings(rings_s)
    counts, _ = _scan(demand_lat, demand_lon, lat, lon, modes, model, situations, rings, log_q=None)
    return CoverageCounts(rings, counts)


# --- demand, positions, reports ---------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class Demand:
    """The demand points: villages and communities, their population and township.

    Attributes:
        ids, names: per point.
        lat, lon: the points.
        population: residents per point.
        township: township row per point.
        township_names: per township row (Chinese), and ``township_labels`` (pinyin, for
            plots without a CJK font).
    """

    ids: tuple[str, ...]
    names: tuple[str, ...]
    lat: FloatArray
    lon: FloatArray
    population: npt.NDArray[np.int64]
    township: npt.NDArray[np.int64]
    township_names: tuple[str, ...]
    township_labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_dataset(cls, ds: CountyDataset) -> Demand:
        """The dataset's villages and communities."""
        v = ds.villages
        return cls(
            ids=v.id,
            names=v.name,
            lat=np.asarray(v.lat),
            lon=np.asarray(v.lon),
            population=np.asarray(v.population),
            township=np.asarray(v.township),
            township_names=ds.townships.name,
            township_labels=ds.townships.pinyin,
        )


@dataclass(frozen=True, eq=False, slots=True)
class Positions:
    """Where the volunteers who count are, with their mode, situation and acceptance.

    Attributes:
        lat, lon, mode: per volunteer.
        situation: :class:`~geo.travel.Situation` codes (turnout); ``None`` = all on patrol.
        acceptance: probability that each accepts an offer; ``None`` = unknown (the report
            then has no acceptance-aware part unless one is given to :func:`coverage_report`).
    """

    lat: FloatArray
    lon: FloatArray
    mode: ModeArray
    situation: SituationArray | None = None
    acceptance: FloatArray | None = None

    def __len__(self) -> int:
        return len(self.lat)

    @classmethod
    def from_index(
        cls, index: LiveIndex, now: float, *, acceptance: FloatArray | float | None = None
    ) -> Positions:
        """The volunteers the live index would rank now: available, with a fresh fix.

        Args:
            index: the live index.
            now: the current time (freshness is judged against it).
            acceptance: one probability for all, or one per index slot.
        """
        slots = np.flatnonzero(index.fresh_available(np.arange(len(index)), now))
        accept = None
        if acceptance is not None:
            accept = np.broadcast_to(np.asarray(acceptance, dtype=np.float64), (len(index),))[slots]
        return cls(
            lat=np.array(index.lat[slots]),
            lon=np.array(index.lon[slots]),
            mode=np.array(index.mode[slots]),
            situation=np.array(index.situation[slots]),
            acceptance=None if accept is None else np.array(accept),
        )

    @classmethod
    def from_homes(
        cls,
        volunteers: SimVolunteers,
        mask: npt.NDArray[np.bool_] | None = None,
        *,
        situation: Situation = Situation.PATROL,
        acceptance: FloatArray | float | None = None,
    ) -> Positions:
        """The volunteers at home (or around it, on patrol).

        Args:
            volunteers: the roster.
            mask: who counts (e.g. ``volunteers.on_duty(weekday, hour)``); ``None`` = all.
            situation: everyone's situation (``PATROL``: no turnout, as ``dispatch summary``).
            acceptance: one probability for all, or one per volunteer of the roster.
        """
        rows = np.arange(len(volunteers)) if mask is None else np.flatnonzero(mask)
        accept = None
        if acceptance is not None:
            accept = np.broadcast_to(np.asarray(acceptance, dtype=np.float64), (len(volunteers),))[
                rows
            ]
        return cls(
            lat=volunteers.home_lat[rows],
            lon=volunteers.home_lon[rows],
            mode=volunteers.mode[rows],
            situation=np.full(len(rows), int(situation), dtype=np.uint8),
            acceptance=None if accept is None else np.array(accept),
        )

    @classmethod
    def from_units(cls, ds: CountyDataset, *, situation: Situation = Situation.PATROL) -> Positions:
        """The existing units' members, each stationed at their unit's village (the
        doctrine's staffed units, as :mod:`simulations.siting` takes them)."""
        v = ds.volunteers
        member = np.flatnonzero(v.unit >= 0)
        unit = v.unit[member]
        return cls(
            lat=np.asarray(ds.units.lat)[unit],
            lon=np.asarray(ds.units.lon)[unit],
            mode=np.asarray(v.mode)[member],
            situation=np.full(len(member), int(situation), dtype=np.uint8),
        )

    @classmethod
    def from_file(cls, path: Path) -> Positions:
        """A scenario file: CSV with ``lat``, ``lon`` (or ``home_lat``, ``home_lon``) and
        ``mode`` (wire name), optionally ``situation`` (``patrol``, ``home``, ``work``,
        ``night``) and ``acceptance`` (0-1). Other columns are ignored (a dataset's
        ``volunteers.csv`` is a valid scenario: everyone at home, on patrol).

        Raises:
            InvalidInput: the file cannot be read, a column is missing, or a value is invalid
                (the message names the row).
        """
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.DictReader(handle))
        except OSError as exc:
            raise InvalidInput(
                f"{path}: cannot read: {exc.strerror or exc}", field="positions"
            ) from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InvalidInput(f"{path}: not a UTF-8 CSV file: {exc}", field="positions") from exc
        header = set(rows[0]) if rows else set()
        lat_key = "lat" if "lat" in header else "home_lat"
        lon_key = "lon" if "lon" in header else "home_lon"
        for need in (lat_key, lon_key, "mode"):
            if rows and need not in header:
                raise InvalidInput(f"{path}: missing column {need!r}", field=need)
        lat, lon, mode, situation, acceptance = [], [], [], [], []
        for i, row in enumerate(rows, start=2):
            try:
                lat.append(float(row[lat_key]))
                lon.append(float(row[lon_key]))
                mode.append(int(Mode.parse(row["mode"])))
                situation.append(int(Situation[(row.get("situation") or "patrol").strip().upper()]))
                p = float(row["acceptance"]) if row.get("acceptance") else math.nan
            except (ValueError, KeyError) as exc:
                raise InvalidInput(f"{path}:{i}: {exc}", field="positions") from None
            if not (math.isnan(p) or 0.0 <= p <= 1.0):
                raise InvalidInput(f"{path}:{i}: acceptance {p} not in [0, 1]", field="acceptance")
            acceptance.append(p)
        lat_a, lon_a = check_latlon_arrays(np.array(lat, dtype=np.float64), np.array(lon))
        accept = np.array(acceptance, dtype=np.float64)
        return cls(
            lat=lat_a,
            lon=lon_a,
            mode=np.array(mode, dtype=np.uint8),
            situation=np.array(situation, dtype=np.uint8),
            acceptance=None if np.isnan(accept).any() else accept,
        )


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """One line of the coverage table: an area, a level ``k`` and a ring.

    Attributes:
        area: ``county`` or the township's name; ``label`` its pinyin.
        k: at least this many volunteers.
        ring_min: 1, 3 or 5.
        population_share: share of the area's population covered.
        population, population_total: covered and total residents.
        villages, villages_total: demand points covered, and in all.
    """

    area: str
    label: str
    k: int
    ring_min: int
    population_share: float
    population: int
    population_total: int
    villages: int
    villages_total: int


@dataclass(frozen=True, slots=True)
class AcceptanceRow:
    """Acceptance-aware coverage of an area in a ring.

    Attributes:
        area, label: as :class:`CoverageRow`.
        ring_min: 1, 3 or 5.
        expected_share: population-weighted mean probability that someone accepts in time.
        share_90: share of the population for whom that probability is at least 90%.
    """

    area: str
    label: str
    ring_min: int
    expected_share: float
    share_90: float


@dataclass(frozen=True, eq=False, slots=True)
class CoverageReport:
    """Coverage of the demand points by a set of positions.

    Attributes:
        demand: the demand points.
        rings_s: ring limits, seconds.
        ring_minutes: the rings' names (1, 3, 5).
        counts: ``(n_points, n_rings)`` volunteers within each ring (cumulative).
        p_any: ``(n_points, n_rings)`` probability that at least one accepts, or ``None``.
        volunteers: how many positions were scanned.
    """

    demand: Demand
    rings_s: tuple[float, ...]
    ring_minutes: tuple[int, ...]
    counts: npt.NDArray[np.int32]
    p_any: FloatArray | None
    volunteers: int

    def covered(self, k: int = 1) -> npt.NDArray[np.bool_]:
        """``(n_points, n_rings)``: at least ``k`` volunteers within the ring."""
        return self.counts >= k

    def best_ring(self) -> npt.NDArray[np.int64]:
        """Per point: the smallest ring (minutes) anyone reaches it in, 0 if none."""
        covered = self.covered(1)
        first = np.argmax(covered, axis=1)
        minutes = np.asarray(self.ring_minutes, dtype=np.int64)[first]
        return np.where(covered.any(axis=1), minutes, 0)

    def _areas(self) -> Iterable[tuple[str, str, npt.NDArray[np.bool_]]]:
        d = self.demand
        yield "county", "county", np.ones(len(d), dtype=np.bool_)
        for t, (name, label) in enumerate(zip(d.township_names, d.township_labels, strict=True)):
            yield name, label, d.township == t

    def rows(self, ks: Sequence[int] = DEFAULT_KS) -> list[CoverageRow]:
        """The coverage table: county first, then each township; per ``k`` and ring."""
        out = []
        population = self.demand.population
        for area, label, mask in self._areas():
            total = int(population[mask].sum())
            for k in ks:
                covered = self.covered(k)
                for j, ring in enumerate(self.ring_minutes):
                    hit = mask & covered[:, j]
                    people = int(population[hit].sum())
                    out.append(
                        CoverageRow(
                            area=area,
                            label=label,
                            k=k,
                            ring_min=ring,
                            population_share=people / total if total else 0.0,
                            population=people,
                            population_total=total,
                            villages=int(hit.sum()),
                            villages_total=int(mask.sum()),
                        )
                    )
        return out

    def to_json(self, ks: Sequence[int] = DEFAULT_KS) -> dict[str, object]:
        """The report as plain JSON types (what ``GET /api/v1/coverage`` can return as is):
        the volunteers counted, the rings, the coverage table and the acceptance-aware one."""
        return {
            "volunteers": self.volunteers,
            "rings_s": list(self.rings_s),
            "rings_min": list(self.ring_minutes),
            "coverage": [
                {name: getattr(row, name) for name in CoverageRow.__slots__}
                for row in self.rows(ks)
            ],
            "acceptance": [
                {name: getattr(row, name) for name in AcceptanceRow.__slots__}
                for row in self.acceptance_rows()
            ],
        }

    def acceptance_rows(self) -> list[AcceptanceRow]:
        """The acceptance-aware table (empty when no acceptance was given)."""
        if self.p_any is None:
            return []
        out = []
        population = self.demand.population.astype(np.float64)
        for area, label, mask in self._areas():
            total = float(population[mask].sum())
            for j, ring in enumerate(self.ring_minutes):
                p = self.p_any[mask, j]
                pop = population[mask]
                out.append(
                    AcceptanceRow(
                        area=area,
                        label=label,
                        ring_min=ring,
                        expected_share=float(p @ pop) / total if total else 0.0,
                        share_90=float(pop[p >= 0.9].sum()) / total if total else 0.0,
                    )
                )
        return out


def coverage_report(
    demand: Demand,
    positions: Positions,
    model: TravelModel,
    *,
    acceptance: FloatArray | float | None = None,
    rings_s: Sequence[float] = RINGS_S,
    ring_minutes: Sequence[int] = RING_MINUTES,
) -> CoverageReport:
    """Coverage of ``demand`` by ``positions``: counts per ring and, when acceptance
    probabilities are known, the probability that someone accepts in time.

    Args:
        demand: the demand points.
        positions: the volunteers who count.
        model: the travel model (turnout from ``positions.situation``).
        acceptance: overrides ``positions.acceptance``: one probability or one per position.
        rings_s: ring limits in seconds, increasing.
        ring_minutes: the rings' names, one per limit.

    Raises:
        ValueError: the rings are empty, not increasing, or not one name per limit, or an
            acceptance probability is outside [0, 1].
    """
    rings = _check_rings(rings_s)
    if len(ring_minutes) != len(rings):
        raise ValueError("one ring name per ring limit")
    p = positions.acceptance if acceptance is None else acceptance
    log_q = None
    if p is not None:
        p_a = np.broadcast_to(np.asarray(p, dtype=np.float64), (len(positions),))
        if len(p_a) and not (np.all(p_a >= 0) and np.all(p_a <= 1)):
            raise ValueError("acceptance probabilities must lie in [0, 1]")
        log_q = np.log1p(-np.minimum(p_a, _P_MAX))
    counts, sums = _scan(
        demand.lat,
        demand.lon,
        positions.lat,
        positions.lon,
        positions.mode,
        model,
        positions.situation,
        rings,
        log_q,
    )
    return CoverageReport(
        demand=demand,
        rings_s=rings,
        ring_minutes=tuple(int(r) for r in ring_minutes),
        counts=counts,
        p_any=None if sums is None else -np.expm1(sums),
        volunteers=len(positions),
    )


def coverage_from_index(
    index: LiveIndex,
    demand: Demand,
    model: TravelModel,
    now: float,
    *,
    acceptance: FloatArray | float | None = None,
) -> CoverageReport:
    """Live coverage: the server's ``GET /api/v1/coverage``.

    Args:
        index: the live index (available volunteers with a fresh fix count, where they are,
            with their situation's turnout).
        demand: the demand points (build once with :meth:`Demand.from_dataset`).
        model: the server's travel model.
        now: the current time.
        acceptance: one probability for all, or one per index slot; ``None`` = counts only.
    """
    return coverage_report(demand, Positions.from_index(index, now, acceptance=acceptance), model)


def coverage_by_hour(
    demand: Demand,
    volunteers: SimVolunteers,
    model: TravelModel,
    *,
    weekday: int,
    hours: Sequence[int] = tuple(range(24)),
    situation: Situation = Situation.PATROL,
    acceptance: FloatArray | float | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[tuple[int, CoverageReport]]:
    """Coverage at each hour of a weekday, by the volunteers on duty then (at home, or on
    patrol around it).

    Args:
        demand: the demand points.
        volunteers: the roster (duty patterns and homes).
        model: the travel model.
        weekday: 0 = Monday.
        hours: which hours.
        situation: where the volunteers on duty are (turnout).
        acceptance: one probability, or one per volunteer of the roster.
        progress: called with 1 after each hour (a progress bar's ``update``).

    Raises:
        ValueError: ``weekday`` or an hour is out of range.
    """
    out = []
    for hour in hours:
        mask = volunteers.on_duty(weekday, hour)
        positions = Positions.from_homes(
            volunteers, mask, situation=situation, acceptance=acceptance
        )
        out.append((hour, coverage_report(demand, positions, model)))
        if progress is not None:
            progress(1)
    return out
