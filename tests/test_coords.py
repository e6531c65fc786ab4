"""Edge validation of coordinates: every bad value is rejected with a message naming it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dispatch.errors import CoordinateError, InvalidInput
from geo.cells import cell_of, cells_of
from geo.coords import check_latlon, check_latlon_arrays


@pytest.mark.parametrize(
    ("lat", "lon", "field", "problem"),
    [
        (math.nan, 116.0, "lat", "NaN"),
        (37.0, math.nan, "lon", "NaN"),
        (math.inf, 116.0, "lat", "infinite"),
        (37.0, -math.inf, "lon", "infinite"),
        (90.0001, 116.0, "lat", "out of range"),
        (-91, 116.0, "lat", "out of range"),
        (37.0, 180.5, "lon", "out of range"),
        (None, 116.0, "lat", "missing"),
        ("37.0", 116.0, "lat", "must be a number"),
        (37.0, True, "lon", "must be a number"),
    ],
)
def test_bad_scalar_coordinates_name_field_and_problem(
    lat: object, lon: object, field: str, problem: str
) -> None:
    with pytest.raises(CoordinateError) as info:
        check_latlon(lat, lon, prefix="positions[2].")
    assert info.value.field == f"positions[2].{field}"
    assert f"positions[2].{field}" in str(info.value)
    assert problem in str(info.value)
    assert isinstance(info.value, InvalidInput)


def test_good_scalars_pass_through_as_floats() -> None:
    assert check_latlon(37, np.float32(116.5)) == (37.0, 116.5)
    assert check_latlon(-90.0, 180.0) == (-90.0, 180.0)


@pytest.mark.parametrize(
    ("bad_index", "column", "value", "problem"),
    [
        (3, "lat", math.nan, "NaN"),
        (0, "lon", math.inf, "infinite"),
        (7, "lat", -95.0, "out of range"),
        (9, "lon", 200.0, "out of range"),
    ],
)
def test_bad_arrays_name_the_first_bad_index(
    bad_index: int, column: str, value: float, problem: str
) -> None:
    lat = np.full(10, 37.3)
    lon = np.full(10, 116.0)
    (lat if column == "lat" else lon)[bad_index] = value
    with pytest.raises(CoordinateError) as info:
        check_latlon_arrays(lat, lon)
    assert info.value.field == f"{column}[{bad_index}]"
    assert problem in str(info.value)


def test_arrays_of_different_length_are_rejected() -> None:
    with pytest.raises(CoordinateError, match="equal length"):
        check_latlon_arrays([37.0, 37.1], [116.0])


def test_cells_reject_bad_points_and_agree_with_scalar_path() -> None:
    with pytest.raises(CoordinateError, match=r"lat\[1\]"):
        cells_of([37.0, math.nan], [116.0, 116.0])
    lats, lons = np.array([37.35, 37.2, 37.5]), np.array([115.96, 115.9, 116.1])
    cells = cells_of(lats, lons)
    assert cells.dtype == np.uint64
    assert [cell_of(a, o) for a, o in zip(lats, lons, strict=True)] == cells.tolist()
