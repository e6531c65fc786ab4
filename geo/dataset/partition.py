"""Township polygons: a power diagram of the seats, fitted to the townships' known areas.

Theory of operation
-------------------
No public township boundaries exist, only seats (2 confirmed, 11 estimated) and areas. The
polygons are therefore a *power diagram* (weighted Voronoi diagram) of the seats, computed in
the local equal-area frame (:mod:`geo.dataset.frame`):

    cell_i = { x : |x - p_i|² - w_i  <=  |x - p_j|² - w_j  for every j }

Each inequality is a half-plane ``2 x·(p_j - p_i) <= |p_j|² - |p_i|² + w_i - w_j``; a cell is
a large square clipped by its twelve half-planes (exact, convex), then clipped by the county
outline. Where the concave outline cuts a convex cell into several pieces, the seat's piece
stays and every orphan piece goes to the township sharing its longest border.

Weights: raising ``w_i`` pushes every border of cell ``i`` outwards by ``Δw / (2 d_ij)``, so
``∂A_i/∂w_j = -L_ij / (2 d_ij)`` (``L_ij`` the shared border's length): the Jacobian is a graph
Laplacian. Newton steps ``J Δw = A* - A`` (least squares, weights being defined up to a
constant) converge in a handful of iterations to areas ``A*`` = known area x (outline area /
sum of known areas).

Seats: for given sites and areas the weights are unique (up to a constant), and with the
sources' seats some cells do not contain their own seat (饶阳店's and 武官寨's estimates sit
where the area budget hands the land to a neighbour). A seat must lie inside its township, at
least ``margin_m`` from every other township, so an *estimated* seat that violates this is moved
to the nearest point that satisfies it, and the weights are fitted again, until no seat moves.
Each move must stay within the seat's stated uncertainty (e.g. ``EST LOW (+-8km)``); a
confirmed seat never moves. The moves are published (``seat_shift_m``).

Tiling: the fitted cells are turned into an exact coverage by noding all their borders and the
outline on a 1 mm grid, polygonising the arrangement, and giving each face to the cell that holds
it. Neighbours then share identical vertices, which stay identical after the (deterministic)
conversion to rounded lon/lat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, cast

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from dispatch.errors import DatasetError
from geo.dataset.frame import FloatArray, dot2, norm2

__all__ = ["Partition", "fit_partition"]

#: Snapping grid of the final coverage, metres.
GRID_M: Final = 0.001
#: Relative area tolerance of the weight fit (the dataset promises 1%).
FIT_TOLERANCE: Final = 1e-4
_MAX_NEWTON: Final = 60
_MAX_SEAT_ROUNDS: Final = 30
_HALF_SIDE: Final = 1.0e6  # metres: the "infinite" square a cell starts from


@dataclass(frozen=True, slots=True)
class Partition:
    """The fitted diagram, in the local frame."""

    seats: FloatArray  # (n, 2) final seats
    shifts_m: FloatArray  # distance each seat moved from its source estimate
    weights: FloatArray
    polygons: tuple[Polygon, ...]
    newton_iterations: int
    seat_rounds: int
    max_area_error: float  # relative, of the exact coverage


def _half_plane(pi: FloatArray, pj: FloatArray, wi: float, wj: float) -> Polygon:
    normal = pj - pi
    offset = (dot2(pj, pj) - dot2(pi, pi) + wi - wj) / 2.0
    unit = normal / norm2(normal)
    on_line = normal * offset / dot2(normal, normal)
    along = np.array([-unit[1], unit[0]])
    far = 4 * _HALF_SIDE
    corners = [
        on_line - far * along,
        on_line + far * along,
        on_line + far * along - far * unit,
        on_line - far * along - far * unit,
    ]
    return Polygon(corners)


def _convex_cells(sites: FloatArray, weights: FloatArray) -> list[BaseGeometry]:
    n = len(sites)
    cells: list[BaseGeometry] = []
    for i in range(n):
        cell: BaseGeometry = shapely.box(-_HALF_SIDE, -_HALF_SIDE, _HALF_SIDE, _HALF_SIDE)
        for j in range(n):
            if j != i:
                half = _half_plane(sites[i], sites[j], float(weights[i]), float(weights[j]))
                cell = shapely.intersection(cell, half)
        cells.append(cell)
    return cells


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    return [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]


def _shared_length(a: BaseGeometry, b: BaseGeometry) -> float:
    return float(shapely.length(shapely.intersection(a.boundary, shapely.buffer(b, 0.01))))


def _settle_orphans(
    pieces: list[list[Polygon]], sites: FloatArray, grid: float | None
) -> list[BaseGeometry]:
    """Keep each site's piece; give every other piece to the longest-border neighbour."""
    mains: list[BaseGeometry] = []
    orphans: list[Polygon] = []
    for i, parts in enumerate(pieces):
        if not parts:
            mains.append(Polygon())
            continue
        seat = Point(sites[i])
        own = [p for p in parts if p.covers(seat)]
        main = own[0] if own else max(parts, key=lambda p: p.area)
        mains.append(main)
        orphans.extend(p for p in parts if p is not main)
    # largest first, so that a small orphan touching only a larger one follows it
    for orphan in sorted(orphans, key=lambda p: -p.area):
        shared = [_shared_length(orphan, m) if not m.is_empty else 0.0 for m in mains]
        if max(shared) > 0:
            j = int(np.argmax(shared))
        else:
            j = int(np.argmin([orphan.distance(m) if not m.is_empty else np.inf for m in mains]))
        mains[j] = shapely.union(mains[j], orphan, grid_size=grid)
    return mains


def _cells(sites: FloatArray, weights: FloatArray, region: Polygon) -> list[BaseGeometry]:
    clipped = [shapely.intersection(c, region) for c in _convex_cells(sites, weights)]
    return _settle_orphans([_polygons(c) for c in clipped], sites, None)


def _jacobian(cells: list[BaseGeometry], sites: FloatArray) -> FloatArray:
    n = len(cells)
    jac = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            if cells[i].is_empty or cells[j].is_empty:
                continue
            length = _shared_length(cells[i], cells[j])
            if length > 1.0:
                k = length / (2.0 * norm2(sites[i] - sites[j]))
                jac[i, i] += k
                jac[j, j] += k
                jac[i, j] -= k
                jac[j, i] -= k
    return jac


def _fit_weights(
    sites: FloatArray, weights: FloatArray, targets: FloatArray, region: Polygon
) -> tuple[FloatArray, list[BaseGeometry], int]:
    for iteration in range(1, _MAX_NEWTON + 1):
        cells = _cells(sites, weights, region)
        areas = np.array([c.area for c in cells])
        if np.max(np.abs(areas - targets) / targets) < FIT_TOLERANCE:
            return weights, cells, iteration
        step = np.linalg.lstsq(_jacobian(cells, sites), targets - areas, rcond=None)[0]
        # LAPACK's answer differs in the last bits from one CPU to another (geo.dataset.frame);
        # rounded to whole m² (a border moves by < 0.1 mm) the weights are the same everywhere.
        weights = np.round(weights + step)
    raise DatasetError("township areas: the power diagram's weights did not converge")


def _seat_core(cells: list[BaseGeometry], i: int, margin: float) -> BaseGeometry:
    others = shapely.union_all([c for j, c in enumerate(cells) if j != i])
    return shapely.difference(cells[i], shapely.buffer(others, margin))


def _coverage(cells: list[BaseGeometry], sites: FloatArray, region: Polygon) -> list[Polygon]:
    lines = [shapely.boundary(c) for c in cells if not c.is_empty]
    noded = shapely.union_all([*lines, region.exterior], grid_size=GRID_M)
    faces = _polygons(cast(BaseGeometry, shapely.polygonize(shapely.get_parts(noded))))
    owners: list[list[Polygon]] = [[] for _ in cells]
    for face in faces:
        probe = shapely.point_on_surface(face)
        owners[int(np.argmin([c.distance(probe) for c in cells]))].append(face)
    merged = [shapely.union_all(parts, grid_size=GRID_M) for parts in owners]
    settled = _settle_orphans([_polygons(m) for m in merged], sites, GRID_M)
    out = []
    for i, geom in enumerate(settled):
        if not isinstance(geom, Polygon):
            raise DatasetError(f"township {i}: polygon came out as {geom.geom_type}")
        out.append(geom)
    return out


def fit_partition(
    seats: FloatArray,
    targets_m2: FloatArray,
    region: Polygon,
    uncertainty_m: FloatArray,
    *,
    margin_m: float = 500.0,
) -> Partition:
    """Fit a power diagram of ``seats`` whose clipped cells have the ``targets_m2`` areas.

    Args:
        seats: (n, 2) seat positions in the local frame; they must lie inside ``region``.
        targets_m2: wanted areas; they must sum to ``region``'s area.
        region: the county outline in the local frame.
        uncertainty_m: how far each seat may move (0: never).
        margin_m: least distance from a seat to the other townships.

    Raises:
        DatasetError: the weights do not converge, a seat would have to move farther than its
            uncertainty, or a township does not come out as one polygon.
    """
    sites = np.array(seats, dtype=np.float64)
    weights = np.zeros(len(sites))
    total_newton = 0
    seat_rounds = 0
    for seat_round in range(1, _MAX_SEAT_ROUNDS + 1):
        seat_rounds = seat_round
        weights, cells, iterations = _fit_weights(sites, weights, targets_m2, region)
        total_newton += iterations
        moved = False
        for i in range(len(sites)):
            seat = Point(sites[i])
            if _seat_core(cells, i, margin_m).covers(seat):
                continue
            # step a quarter of the margin deeper than needed, so the next fit keeps it inside
            deeper = _seat_core(cells, i, 1.25 * margin_m)
            sites[i] = np.asarray(shapely.shortest_line(seat, deeper).coords[1])
            moved = True
        if not moved:
            break
    else:
        raise DatasetError("township seats: moving estimated seats into their cells diverged")
    shifts = np.linalg.norm(sites - seats, axis=1)
    too_far = np.flatnonzero(shifts > uncertainty_m + 1e-6)
    if too_far.size:
        i = int(too_far[0])
        raise DatasetError(
            f"township {i}: its seat would move {shifts[i]:.0f} m, beyond its stated "
            f"uncertainty of {uncertainty_m[i]:.0f} m"
        )
    polygons = _coverage(cells, sites, region)
    areas = np.array([p.area for p in polygons])
    return Partition(
        seats=sites,
        shifts_m=shifts,
        weights=weights,
        polygons=tuple(polygons),
        newton_iterations=total_newton,
        seat_rounds=seat_rounds,
        max_area_error=float(np.max(np.abs(areas - targets_m2) / targets_m2)),
    )
