"""Isochrones: the H3 cells and polygons reachable from a point in 1, 3 and 5 minutes.

Theory of operation
-------------------
:func:`isochrone` works with any :class:`~geo.travel.TravelModel`. It lays the ``grid_disk``
that can hold everything reachable in the largest ring (``k`` from
:func:`geo.cells.disk_k_for_radius` on ``model.max_reach_m``, an honest bound, so no reachable
cell is missed), asks the model once for the time from every cell centre to the point, and keeps
per ring the cells whose centre makes it. A ring's polygon is the union of its cells; the
point's own cell is always in every ring.

*Direction.* The model answers "from the cell to the point": the isochrone is the catchment of
volunteers who can reach an incident at the point, which is what the 1-3-5 rings mean. On
two-way roads (and for the crow-fly model) travel is symmetric, so it is also the area reachable
from the point; on one-way streets the two differ and this is the inbound one. Times are pure
travel: no turnout (everyone as if on patrol). With the road model a cell's time includes the
walk from its centre to the nearest road, as a volunteer standing there would need.

*Resolution.* :data:`DEFAULT_RES` = 9: cells of 0.105 km², centres 300 m apart, so a ring's
edge is uncertain by about half that. Res 10 would draw 2.6x finer edges (114 m) but misses the
20 ms budget: 22-37 ms per road-model isochrone against 4-8 ms at res 9 (measured by
``benchmarks/bench_isochrones.py`` on 2 cores). The disk is sized by the fastest mode
(``max_reach_m`` takes no mode), so even a walking isochrone lays the car's 5-minute disk,
~11,700 cells at res 10 against ~1,800 at res 9, and h3-py computes cell centres one Python
call at a time (~0.8 us each) before any snapping or union. Res 9 is also the scale of the
inputs: the county's road alignments are estimates and its villages points, and the crow-fly
model is only as good as its circuity factor. The price: a walking minute (138 m) is less than
a res-9 cell, so the 1-minute ring on foot is the point's own cell.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import h3
import h3.api.basic_int as h3i
import h3.api.numpy_int as h3n
import numpy as np
import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from geo.cells import Cells, cell_of, cells_to_geometry, disk_k_for_radius, grid_disk
from geo.coords import check_latlon
from geo.modes import Mode
from geo.travel import FloatArray, TravelModel

__all__ = ["DEFAULT_RES", "DEFAULT_RINGS_S", "Isochrone", "isochrone"]

DEFAULT_RES: Final = 9
#: The 1-3-5 minute reaction rings, seconds.
DEFAULT_RINGS_S: Final = (60.0, 180.0, 300.0)


@dataclass(frozen=True, slots=True, eq=False)
class Isochrone:
    """The rings of one point and mode.

    Attributes:
        lat, lon: the point.
        mode: the travel mode.
        res: H3 resolution of the cells.
        rings_s: ring limits, seconds, increasing.
        cells: per ring, the sorted ``uint64`` cells whose centre reaches the point in time.
        polygons: per ring, the union of its cells, lon/lat (Polygon or MultiPolygon).
        model: the travel model's name.
    """

    lat: float
    lon: float
    mode: Mode
    res: int
    rings_s: tuple[float, ...]
    cells: tuple[Cells, ...]
    polygons: tuple[BaseGeometry, ...]
    model: str

    def area_km2(self, ring: int) -> float:
        """Area of ring number ``ring`` (0-based), km²: the sum of its cells' exact areas."""
        return float(sum(h3n.cell_area(int(c), unit="km^2") for c in self.cells[ring]))

    def to_geojson(self) -> dict[str, Any]:
        """An RFC 7946 FeatureCollection: one feature per ring, smallest first.

        Properties: ``ring_min`` (the limit in minutes), ``ring_s``, ``mode``, ``model``,
        ``res``, ``cells`` (H3 cells as hexadecimal strings: JSON numbers lose integers above
        2**53) and ``area_km2``.
        """
        features = []
        for i, (limit, cells, polygon) in enumerate(
            zip(self.rings_s, self.cells, self.polygons, strict=True)
        ):
            minutes = limit / 60.0
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        "ring_min": int(minutes) if minutes.is_integer() else minutes,
                        "ring_s": limit,
                        "mode": self.mode.wire,
                        "model": self.model,
                        "res": self.res,
                        "cells": [h3.int_to_str(int(c)) for c in cells],
                        "area_km2": round(self.area_km2(i), 6),
                    },
                    # RFC 7946 wants exterior rings counter-clockwise, holes clockwise
                    "geometry": shapely.geometry.mapping(shapely.orient_polygons(polygon)),
                }
            )
        return {"type": "FeatureCollection", "features": features}

    def write_geojson(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_geojson` to ``path`` (UTF-8).

        Raises:
            OSError: the file cannot be written.
        """
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_geojson(), handle, ensure_ascii=False)


def _centres(cells: Cells) -> tuple[FloatArray, FloatArray]:
    to_latlng = h3i.cell_to_latlng
    latlng = np.array([to_latlng(c) for c in cells.tolist()], dtype=np.float64)
    return np.ascontiguousarray(latlng[:, 0]), np.ascontiguousarray(latlng[:, 1])


def isochrone(
    model: TravelModel,
    lat: float,
    lon: float,
    mode: Mode,
    rings_s: Sequence[float] = DEFAULT_RINGS_S,
    res: int = DEFAULT_RES,
) -> Isochrone:
    """The cells and polygons from which ``mode`` reaches the point within each ring.

    Args:
        model: any travel model (crow-fly, road, ...).
        lat, lon: the point.
        mode: the travel mode of every cell centre.
        rings_s: ring limits in seconds, increasing and > 0 (default 1, 3, 5 minutes).
        res: H3 resolution (default :data:`DEFAULT_RES`; see the module's notes).

    Raises:
        CoordinateError: the point is invalid.
        ValueError: ``rings_s`` is empty, not increasing, or has a limit that is not > 0
            and finite; or ``res`` is outside 0..15.
    """
    lat, lon = check_latlon(lat, lon)
    rings = tuple(float(r) for r in rings_s)
    if not rings:
        raise ValueError("rings_s must not be empty")
    if any(not (math.isfinite(r) and r > 0) for r in rings) or any(
        b <= a for a, b in itertools.pairwise(rings)
    ):
        raise ValueError(f"rings_s must be finite, > 0 and increasing, got {rings}")
    if not 0 <= res <= 15:
        raise ValueError(f"res must be in 0..15, got {res}")
    mode = Mode(mode)
    own = cell_of(lat, lon, res)
    k = disk_k_for_radius(own, model.max_reach_m(rings[-1]))
    disk = grid_disk(own, k)
    clat, clon = _centres(disk)
    seconds = model.seconds_to(
        clat,
        clon,
        np.full(len(disk), int(mode), dtype=np.uint8),
        lat,
        lon,
        limit_s=rings[-1],
    )
    seconds[disk == own] = 0.0
    cells: list[Cells] = []
    polygons: list[BaseGeometry] = []
    for limit in rings:
        ring = np.sort(disk[seconds <= limit])
        cells.append(ring)
        polygons.append(cells_to_geometry(ring))
    return Isochrone(
        lat=lat,
        lon=lon,
        mode=mode,
        res=res,
        rings_s=rings,
        cells=tuple(cells),
        polygons=tuple(polygons),
        model=model.name,
    )
