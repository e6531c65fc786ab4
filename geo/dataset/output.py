"""Byte-for-byte reproducible GeoJSON and CSV writers.

Theory of operation: the same inputs must give the same bytes, so that a rebuild shows up in
``git diff`` only where something really changed. GeoJSON is written by hand with :mod:`json`
(RFC 7946: lon/lat, no ``crs`` member, exterior rings counter-clockwise, coordinates rounded to
6 decimals and printed with Python's shortest round-trip repr), one feature per line; CSV with
``\\n`` line ends. Files are written to a temporary sibling and renamed, so a failed build never
leaves half a file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from geo.dataset.frame import DECIMALS

__all__ = [
    "feature",
    "linestring",
    "point",
    "polygon",
    "write_atomic",
    "write_csv",
    "write_geojson",
]


def _num(value: float) -> float:
    rounded = round(float(value), DECIMALS)
    return rounded + 0.0  # no "-0.0"


def _coords(array: npt.ArrayLike) -> list[list[float]]:
    return [[_num(x), _num(y)] for x, y in np.asarray(array, dtype=np.float64)[:, :2]]


def point(lon: float, lat: float) -> dict[str, Any]:
    """A GeoJSON Point."""
    return {"type": "Point", "coordinates": [_num(lon), _num(lat)]}


def linestring(coords: npt.ArrayLike) -> dict[str, Any]:
    """A GeoJSON LineString from an ``(n, 2)`` lon/lat array."""
    return {"type": "LineString", "coordinates": _coords(coords)}


def polygon(poly: Polygon) -> dict[str, Any]:
    """A GeoJSON Polygon, exterior counter-clockwise and holes clockwise (RFC 7946 §3.1.6)."""
    oriented = orient(poly, sign=1.0)
    rings = [oriented.exterior, *oriented.interiors]
    return {"type": "Polygon", "coordinates": [_coords(ring.coords) for ring in rings]}


def feature(geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Feature."""
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_geojson(path: Path, features: Iterable[dict[str, Any]]) -> None:
    """Write a FeatureCollection, one feature per line, UTF-8."""
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"
    write_atomic(path, text.encode("utf-8"))


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a CSV file (UTF-8, ``\\n`` line ends, minimal quoting)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue().encode("utf-8"))
