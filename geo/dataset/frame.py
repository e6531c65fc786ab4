"""The local metric frame in which the dataset is measured and built.

Theory of operation: every distance, area and buffer of the build and of the validation is
computed in one Lambert azimuthal equal-area projection centred on the county (37.3° N,
116.0° E). It is equal-area, so township areas are exact, and over the county's 55 km its
distances are within 0.01% of the ellipsoid's. Files stay in WGS84 lon/lat, rounded to
:data:`DECIMALS` places (about 0.1 m); :func:`to_lonlat` applies that rounding so that a point
computed twice lands on the same published coordinates.

The build must give the same bytes on every machine, and BLAS does not: OpenBLAS picks its
kernels for the CPU it runs on (an AVX-512 Intel core and an AMD Zen core round a dot product
differently in the last bit), and a power-diagram fit amplifies a last bit into a moved
vertex. So plane vectors are measured with :func:`dot2` and :func:`norm2` (plain IEEE
arithmetic, the same everywhere), never with ``@`` or ``np.linalg.norm`` of a vector, and the
one linear solve of the build rounds what it returns (:mod:`geo.dataset.partition`).
"""

from __future__ import annotations

import math
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

__all__ = [
    "DECIMALS",
    "LOCAL_CRS",
    "WGS84",
    "FloatArray",
    "dot2",
    "geom_to_lonlat",
    "geom_to_xy",
    "norm2",
    "round_coords",
    "to_lonlat",
    "to_xy",
]

FloatArray = npt.NDArray[np.float64]

#: Decimal places of published coordinates (RFC 7946 recommends 6: about 0.1 m).
DECIMALS: Final = 6
WGS84: Final = CRS.from_epsg(4326)
#: The county's local equal-area frame, metres.
LOCAL_CRS: Final = CRS.from_proj4(
    "+proj=laea +lat_0=37.3 +lon_0=116.0 +datum=WGS84 +units=m +no_defs +type=crs"
)

_FORWARD: Final = Transformer.from_crs(WGS84, LOCAL_CRS, always_xy=True)
_INVERSE: Final = Transformer.from_crs(LOCAL_CRS, WGS84, always_xy=True)

_G = TypeVar("_G", bound=BaseGeometry)


def dot2(a: FloatArray, b: FloatArray) -> float:
    """``a · b`` of two plane vectors, without BLAS (module doc)."""
    return float(a[0]) * float(b[0]) + float(a[1]) * float(b[1])


def norm2(v: FloatArray) -> float:
    """``|v|`` of a plane vector, without BLAS (module doc); the same bits as numpy's
    ``np.linalg.norm(vectors, axis=1)`` (a square root of the sum of the squares)."""
    return math.sqrt(dot2(v, v))


def to_xy(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Project WGS84 lon/lat to the local frame (metres)."""
    x, y = _FORWARD.transform(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    return np.asarray(x, np.float64), np.asarray(y, np.float64)


def to_lonlat(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Local frame back to WGS84 lon/lat, rounded to :data:`DECIMALS` places."""
    lon, lat = _INVERSE.transform(np.asarray(x, np.float64), np.asarray(y, np.float64))
    return (
        np.asarray(np.round(np.asarray(lon, np.float64), DECIMALS), dtype=np.float64),
        np.asarray(np.round(np.asarray(lat, np.float64), DECIMALS), dtype=np.float64),
    )


def _xy_of(coords: FloatArray) -> FloatArray:
    x, y = to_xy(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def _lonlat_of(coords: FloatArray) -> FloatArray:
    lon, lat = to_lonlat(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def geom_to_xy(geom: _G) -> _G:
    """A lon/lat geometry in the local frame."""
    return shapely.transform(geom, _xy_of)


def geom_to_lonlat(geom: _G) -> _G:
    """A local-frame geometry in lon/lat, coordinates rounded to :data:`DECIMALS` places."""
    return shapely.transform(geom, _lonlat_of)


def round_coords(geom: _G) -> _G:
    """``geom`` with every coordinate rounded to :data:`DECIMALS` places."""
    return shapely.transform(geom, lambda c: np.round(c, DECIMALS))
