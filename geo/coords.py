"""Coordinate validation at the edge.

Every coordinate that enters the engine passes through here once. A bad one raises
:class:`~dispatch.errors.CoordinateError` naming the field and the problem (missing, not a
number, NaN, infinite, out of range), so an API layer can turn it into a problem-details
``errors`` entry without guessing.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from dispatch.errors import CoordinateError

__all__ = ["check_lat", "check_latlon", "check_latlon_arrays", "check_lon"]


def _check(value: object, field: str, limit: float) -> float:
    if value is None:
        raise CoordinateError(f"{field} is missing", field=field)
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise CoordinateError(f"{field} must be a number, got {type(value).__name__}", field=field)
    number = float(value)
    if math.isnan(number):
        raise CoordinateError(f"{field} is NaN", field=field)
    if math.isinf(number):
        raise CoordinateError(f"{field} is infinite", field=field)
    if not -limit <= number <= limit:
        raise CoordinateError(
            f"{field} = {number} is out of range [-{limit:g}, {limit:g}]", field=field
        )
    return number


def check_lat(value: object, field: str = "lat") -> float:
    """Return ``value`` as a float latitude.

    Raises:
        CoordinateError: missing, not a number, NaN, infinite or outside [-90, 90].
    """
    return _check(value, field, 90.0)


def check_lon(value: object, field: str = "lon") -> float:
    """Return ``value`` as a float longitude.

    Raises:
        CoordinateError: missing, not a number, NaN, infinite or outside [-180, 180].
    """
    return _check(value, field, 180.0)


def check_latlon(lat: object, lon: object, prefix: str = "") -> tuple[float, float]:
    """Validate one point; ``prefix`` (e.g. ``"positions[3]."``) is prepended to field names."""
    return check_lat(lat, f"{prefix}lat"), check_lon(lon, f"{prefix}lon")


def check_latlon_arrays(
    lat: npt.ArrayLike, lon: npt.ArrayLike, prefix: str = ""
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Validate many points at once (vectorised); the error names the first bad index.

    Returns:
        ``(lat, lon)`` as contiguous float64 arrays of equal length.

    Raises:
        CoordinateError: shapes differ, or any value is NaN, infinite or out of range.
    """
    lat_a = np.ascontiguousarray(lat, dtype=np.float64)
    lon_a = np.ascontiguousarray(lon, dtype=np.float64)
    if lat_a.ndim != 1 or lat_a.shape != lon_a.shape:
        raise CoordinateError(
            f"{prefix}lat and {prefix}lon must be 1-d arrays of equal length, "
            f"got shapes {lat_a.shape} and {lon_a.shape}",
            field=f"{prefix}lat",
        )
    for name, values, limit in (("lat", lat_a, 90.0), ("lon", lon_a, 180.0)):
        bad = ~(np.abs(values) <= limit)  # NaN compares False, so it is caught here too
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            # Reuse the scalar check for the precise message (NaN / infinite / range).
            _check(float(values[index]), f"{prefix}{name}[{index}]", limit)
    return lat_a, lon_a
