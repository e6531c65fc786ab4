"""H3 helpers on the integer API.

Cells are ``int`` (scalars) or ``uint64`` numpy arrays (h3's ``numpy_int`` API); string cells
never enter the engine.

Resolution of the live index: :data:`LIVE_RES` = 8. At Gucheng's latitude (37.3° N) a res-8 cell
has 430-490 m edges, 0.45 km², and neighbouring centres 718 m apart. The choice balances the
two costs of a ranking query:

* the buckets visited. The disk must hold everyone who could arrive within the largest ring:
  2.9 km for a car in the crow-fly model (45 km/h / circuity 1.3 x 300 s), 6.7 km on a
  provincial road at 80 km/h. That is ``grid_disk`` k = 7 / 13 (169 / 547 cells) at res 8,
  k = 15 / 31 (721 / 2,977 cells, each a Python dict lookup) at res 9;
* the volunteers scanned needlessly. At res 7 (k = 4 / 6) the cells are 3.2 km², and the disk
  covers about 2.9x the reach circle's area, dragging in many people who can never make it in
  the dense worst case (a town centre with thousands on duty); at res 8 the overshoot is
  about 1.7x.

Measured with :func:`disk_k_for_radius` at the county seat; ``benchmarks/`` time the whole query.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import h3
import h3.api.numpy_int as h3n
import numpy as np
import numpy.typing as npt
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from geo.coords import check_latlon, check_latlon_arrays

__all__ = [
    "LIVE_RES",
    "Disk",
    "cell_of",
    "cells_of",
    "cells_to_geometry",
    "disk_k_for_radius",
    "disk_with_centres",
    "disk_with_centres_on_reuse",
    "grid_disk",
]

LIVE_RES: Final = 8

Cells = npt.NDArray[np.uint64]
FloatArray = npt.NDArray[np.float64]

#: H3 cells of one resolution differ in size by well under 0.1% across a disk of k <= 13
#: (checked at random places on the globe); the margin takes 100 times that.
_CELL_RADIUS_MARGIN: Final = 1.1


def cell_of(lat: float, lon: float, res: int = LIVE_RES) -> int:
    """The cell containing a validated point.

    Raises:
        CoordinateError: the point is invalid.
    """
    lat, lon = check_latlon(lat, lon)
    return int(h3n.latlng_to_cell(lat, lon, res))


def cells_of(lat: npt.ArrayLike, lon: npt.ArrayLike, res: int = LIVE_RES) -> Cells:
    """The cells containing many points, as a ``uint64`` array.

    Raises:
        CoordinateError: any point is invalid (the message names the first bad index).
    """
    lat_a, lon_a = check_latlon_arrays(lat, lon)
    to_cell = h3n.latlng_to_cell
    return np.fromiter(
        (to_cell(a, o, res) for a, o in zip(lat_a.tolist(), lon_a.tolist(), strict=True)),
        dtype=np.uint64,
        count=len(lat_a),
    )


#: Disks kept by :func:`grid_disk` (1.4 KB each at k = 7): an incident's cell recurs, and
#: the county has ~1,300 cells at :data:`LIVE_RES`.
_DISK_CACHE: Final = 4096
#: Disks kept by :func:`disk_with_centres` (4 KB each at k = 7, 13 KB at k = 13).
_CENTRED_DISK_CACHE: Final = 2048
#: Disks :func:`disk_with_centres_on_reuse` remembers having been asked for once.
_ASKED_MAX: Final = 1 << 16
_asked: dict[tuple[int, int], None] = {}
#: Cell centres kept by :func:`disk_with_centres` (~200 B each): a county's populated cells
#: several times over, a province's busiest.
_CENTRE_CACHE: Final = 1 << 16


def grid_disk(cell: int, k: int) -> Cells:
    """All cells within ``k`` grid steps of ``cell`` (``uint64`` array, the centre included).

    Cached per ``(cell, k)``; the caller gets its own copy.
    """
    return _grid_disk(int(cell), int(k)).copy()


@functools.lru_cache(maxsize=_DISK_CACHE)
def _grid_disk(cell: int, k: int) -> Cells:
    disk = np.asarray(h3n.grid_disk(cell, k), dtype=np.uint64)
    disk.flags.writeable = False
    return disk


@dataclass(frozen=True, slots=True)
class Disk:
    """A ``grid_disk`` with its cells' centres, for cutting it to a circle.

    ``cell_radius_m`` bounds the distance from any disk cell's centre to any point of that
    cell (the centre cell's farthest vertex, plus a margin); ``inf`` when the disk holds a
    pentagon. Arrays are read-only.
    """

    cells: Cells
    lat: FloatArray
    lon: FloatArray
    cell_radius_m: float


@functools.lru_cache(maxsize=_CENTRED_DISK_CACHE)
def disk_with_centres(cell: int, k: int) -> Disk:
    """:func:`grid_disk` and its centres, cached per ``(cell, k)``.

    Centres are cached per cell too (neighbouring incidents' disks share most cells): a new
    disk costs ~30 µs when its cells were seen before, ~250 µs at k = 7 when none was (one
    ``cell_to_latlng`` each).
    """
    cells = _grid_disk(int(cell), int(k))
    cell_list = cells.tolist()
    centres = np.array([_centre(c) for c in cell_list], dtype=np.float64).reshape(-1, 2)
    lat = np.ascontiguousarray(centres[:, 0])
    lon = np.ascontiguousarray(centres[:, 1])
    lat.flags.writeable = False
    lon.flags.writeable = False
    if not _pentagons(h3n.get_resolution(cell)).isdisjoint(cell_list):
        radius = math.inf
    else:
        centre = _centre(cell)
        radius = _CELL_RADIUS_MARGIN * max(
            float(h3.great_circle_distance(centre, vertex, unit="m"))
            for vertex in h3n.cell_to_boundary(cell)
        )
    return Disk(cells=cells, lat=lat, lon=lon, cell_radius_m=radius)


def disk_with_centres_on_reuse(cell: int, k: int) -> Disk | None:
    """:func:`disk_with_centres` from the second time ``(cell, k)`` is asked for on; ``None``
    the first time. Centres cost ~1.5 µs per cell to compute: worth it for the disks that
    recur (a county's incidents come back to the same villages), not for every one-off."""
    key = (int(cell), int(k))
    if key in _asked:
        return disk_with_centres(*key)
    if len(_asked) >= _ASKED_MAX:
        _asked.clear()
    _asked[key] = None
    return None


@functools.lru_cache(maxsize=_CENTRE_CACHE)
def _centre(cell: int) -> tuple[float, float]:
    lat, lng = h3n.cell_to_latlng(cell)
    return float(lat), float(lng)


@functools.cache
def _pentagons(res: int) -> frozenset[int]:
    return frozenset(int(c) for c in h3n.get_pentagons(res))


def _center_spacing_m(cell: int) -> float:
    """Smallest distance from ``cell``'s centre to a neighbour's centre, metres."""
    lat, lng = h3n.cell_to_latlng(cell)
    return min(
        float(h3.great_circle_distance((lat, lng), h3n.cell_to_latlng(int(n)), unit="m"))
        for n in h3n.grid_ring(cell, 1)
    )


def disk_k_for_radius(cell: int, radius_m: float) -> int:
    """Smallest ``k`` such that ``grid_disk(cell, k)`` holds every point within ``radius_m``
    of any point inside ``cell``.

    A cell ``m`` grid steps away has its centre at least ``m * s * sqrt(3) / 2`` from the
    origin's centre (``s`` the centre spacing, measured locally); a point within the radius of
    a point of the origin cell lies in a cell whose centre is within ``radius + 2 * s / sqrt(3)``
    (two circumradii). A 2% margin absorbs the grid's distortion across the disk.

    Raises:
        ValueError: ``radius_m`` is negative or not finite.
    """
    if not math.isfinite(radius_m) or radius_m < 0:
        raise ValueError(f"radius_m must be finite and >= 0, got {radius_m}")
    return _disk_k_for_radius(int(cell), float(radius_m))


@functools.lru_cache(maxsize=_DISK_CACHE)
def _disk_k_for_radius(cell: int, radius_m: float) -> int:
    """:func:`disk_k_for_radius` after validation, cached: the same reach (a model's
    ``max_reach_m`` of the 5-minute ring) is asked about the same cells again and again."""
    spacing = _center_spacing_m(cell) * 0.98
    reach = radius_m + 2 * spacing / math.sqrt(3)
    return max(1, math.ceil(reach / (spacing * math.sqrt(3) / 2)))


def cells_to_geometry(cells: Iterable[int]) -> BaseGeometry:
    """The union of ``cells`` as a shapely (Multi)Polygon in lon/lat; empty for no cells."""
    cell_list = [int(c) for c in cells]
    if not cell_list:
        return shapely.geometry.Polygon()
    shape = h3n.cells_to_h3shape(np.asarray(cell_list, dtype=np.uint64))
    return shapely.geometry.shape(shape.__geo_interface__)
