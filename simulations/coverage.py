"""Static coverage: who can reach each demand point within the 1-, 3- and 5-minute rings.

Theory of operation
-------------------
For every demand point (a village or community) the question is "how many volunteers arrive
within each ring?". A KD-tree over the volunteers' positions (a local equirectangular
projection, metres) hands each point the volunteers within the travel model's
``max_reach_m`` of the largest ring, a superset; the travel model then gives their exact
times in one vectorised call, and the counts per ring follow. A point is covered at level
``k`` in a ring when at least ``k`` volunteers arrive within it.

The same code answers the planners' coverage runs and the server's ``GET /coverage``; it
never re-implements travel times.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from dispatch.core.policy import RINGS_S
from geo.travel import FloatArray, ModeArray, SituationArray, TravelModel

__all__ = ["CoverageCounts", "coverage_counts", "project_local"]

_METRES_PER_DEGREE: Final = 111_194.93  # on the mean sphere; the margin below absorbs it


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
    rings = tuple(float(r) for r in rings_s)
    if not rings or any(b <= a for a, b in itertools.pairwise(rings)):
        raise ValueError(f"rings_s must be non-empty and increasing, got {rings}")
    counts = np.zeros((len(demand_lat), len(rings)), dtype=np.int32)
    if len(lat) == 0 or len(demand_lat) == 0:
        return CoverageCounts(rings, counts)
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
        counts[i] = (seconds[:, None] <= limits[None, :]).sum(axis=0)
    return CoverageCounts(rings, counts)
