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

import math
from collections.abc import Iterable
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
    "cell_of",
    "cells_of",
    "cells_to_geometry",
    "disk_k_for_radius",
    "grid_disk",
]

LIVE_RES: Final = 8

Cells = npt.NDArray[np.uint64]


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


def grid_disk(cell: int, k: int) -> Cells:
    """All cells within ``k`` grid steps of ``cell`` (``uint64`` array, the centre included)."""
    return np.asarray(h3n.grid_disk(cell, k), dtype=np.uint64)


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
