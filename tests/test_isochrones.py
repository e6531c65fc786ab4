"""Isochrones for both travel models: nesting rings, growth with speed, GeoJSON round trip."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry.base import BaseGeometry

from dispatch.errors import CoordinateError
from geo.cells import cell_of
from geo.isochrones import DEFAULT_RES, Isochrone, isochrone
from geo.modes import Mode
from geo.roads import RoadModel, RoadNetwork
from geo.travel import CrowFlyModel, TravelModel
from tests.test_roads import DATASET, LAT0, LON0, M_PER_DEG_LAT, M_PER_DEG_LON, grid_frame

SLOWEST_FIRST = (Mode.WALK, Mode.BIKE, Mode.EBIKE, Mode.CAR)


@pytest.fixture(scope="module")
def road() -> RoadModel:
    """A 10 x 10 km grid of roads every 250 m around (LAT0, LON0)."""
    return RoadModel(RoadNetwork.from_frame(grid_frame(half_m=5_000.0, spacing_m=250.0)))


@pytest.fixture(scope="module")
def crow() -> CrowFlyModel:
    return CrowFlyModel()


def covers(big: BaseGeometry, small: BaseGeometry) -> bool:
    """``big`` contains ``small``, to a millimetre (shared H3 edges are rounded alike, but the
    union may split or merge rings differently)."""
    return bool(big.buffer(1e-8).covers(small))


def assert_nested(iso: Isochrone) -> None:
    for inner, outer in zip(iso.cells, iso.cells[1:], strict=False):
        assert set(inner.tolist()) <= set(outer.tolist())
    for inner_p, outer_p in zip(iso.polygons, iso.polygons[1:], strict=False):
        assert covers(outer_p, inner_p)
    own = cell_of(iso.lat, iso.lon, iso.res)
    assert own in set(iso.cells[0].tolist())
    for cells, polygon in zip(iso.cells, iso.polygons, strict=True):
        assert polygon.geom_type in ("Polygon", "MultiPolygon")
        assert polygon.is_valid
        assert np.all(np.diff(cells.astype(np.int64)) != 0)  # sorted, distinct
        assert cells.dtype == np.uint64


@pytest.mark.parametrize("model_name", ["crow", "road"])
@pytest.mark.parametrize("mode", list(Mode))
def test_rings_nest(request: pytest.FixtureRequest, model_name: str, mode: Mode) -> None:
    model: TravelModel = request.getfixturevalue(model_name)
    iso = isochrone(model, LAT0 + 0.001, LON0 - 0.002, mode)
    assert_nested(iso)
    assert iso.rings_s == (60.0, 180.0, 300.0)
    assert iso.res == DEFAULT_RES
    assert iso.model == model.name
    assert len(iso.cells[-1]) > len(iso.cells[0])  # five minutes reach beyond one cell


def test_crow_fly_rings_grow_with_speed(crow: CrowFlyModel) -> None:
    isos = [isochrone(crow, LAT0, LON0, mode) for mode in SLOWEST_FIRST]
    for slow, fast in itertools.pairwise(isos):
        for ring in range(3):
            assert set(slow.cells[ring].tolist()) <= set(fast.cells[ring].tolist())
            assert covers(fast.polygons[ring], slow.polygons[ring])
    assert len(isos[-1].cells[-1]) > len(isos[0].cells[-1])


def test_road_car_rings_cover_walking_rings(road: RoadModel) -> None:
    walk = isochrone(road, LAT0, LON0, Mode.WALK)
    car = isochrone(road, LAT0, LON0, Mode.CAR)
    for ring in range(3):
        assert set(walk.cells[ring].tolist()) <= set(car.cells[ring].tolist())
        assert covers(car.polygons[ring], walk.polygons[ring])
    assert car.area_km2(2) > 5 * walk.area_km2(2)


def test_the_ring_cells_are_exactly_those_the_model_admits(road: RoadModel) -> None:
    iso = isochrone(road, LAT0, LON0, Mode.EBIKE)
    five = iso.cells[2]
    centres = np.array([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in five])
    seconds = road.seconds_to(
        centres[:, 0], centres[:, 1], np.full(len(five), Mode.EBIKE, dtype=np.uint8), LAT0, LON0
    )
    own = five == cell_of(LAT0, LON0, DEFAULT_RES)
    assert (seconds[~own] <= 300.0).all()
    # and no cell just outside the disk's reach was missed: the ring fits in the disk
    reach = road.max_reach_m(300.0)
    lat_span = (centres[:, 0].max() - centres[:, 0].min()) * M_PER_DEG_LAT
    assert lat_span < 2 * reach


def test_own_cell_is_in_ring_one_even_off_road(road: RoadModel) -> None:
    # 4 km outside the grid: minutes from any road, yet the rings hold the point's own cell
    lat, lon = LAT0 + 9_000 / M_PER_DEG_LAT, LON0 + 9_000 / M_PER_DEG_LON
    iso = isochrone(road, lat, lon, Mode.CAR)
    own = cell_of(lat, lon, DEFAULT_RES)
    for cells in iso.cells:
        assert own in set(cells.tolist())
    assert_nested(iso)


@settings(max_examples=25, deadline=None)
@given(
    lat=st.floats(-60.0, 60.0),
    lon=st.floats(-179.0, 179.0),
    mode=st.sampled_from(list(Mode)),
    res=st.sampled_from([8, 9, 10]),
)
def test_own_cell_is_always_in_ring_one(lat: float, lon: float, mode: Mode, res: int) -> None:
    iso = isochrone(CrowFlyModel(), lat, lon, mode, res=res)
    assert cell_of(lat, lon, res) in set(iso.cells[0].tolist())
    assert_nested(iso)


def test_geojson_round_trips_through_geopandas(tmp_path: Path, road: RoadModel) -> None:
    iso = isochrone(road, LAT0, LON0, Mode.BIKE)
    path = tmp_path / "iso.geojson"
    iso.write_geojson(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["type"] == "FeatureCollection"
    assert "crs" not in document  # RFC 7946: WGS84 lon/lat, no crs member
    frame = gpd.read_file(path, engine="pyogrio")
    assert frame["ring_min"].tolist() == [1, 3, 5]
    assert set(frame["mode"]) == {"bike"}
    for ring, row in enumerate(frame.itertuples()):
        assert row.geometry.equals(iso.polygons[ring])
        cells = np.array([h3.str_to_int(c) for c in row.cells], dtype=np.uint64)
        np.testing.assert_array_equal(cells, iso.cells[ring])
        assert row.area_km2 == pytest.approx(iso.area_km2(ring), abs=1e-6)
    for feature, polygon in zip(document["features"], iso.polygons, strict=True):
        shape = shapely.geometry.shape(feature["geometry"])
        assert shape.equals(polygon)
        for part in getattr(shape, "geoms", [shape]):
            assert part.exterior.is_ccw  # RFC 7946 winding
            assert not any(hole.is_ccw for hole in part.interiors)


def test_area_matches_the_polygon(road: RoadModel) -> None:
    iso = isochrone(road, LAT0, LON0, Mode.CAR)
    geod = pyproj.Geod(ellps="WGS84")
    for ring in range(3):
        area_m2, _ = geod.geometry_area_perimeter(iso.polygons[ring])
        assert abs(area_m2) / 1e6 == pytest.approx(iso.area_km2(ring), rel=1e-3)


def test_custom_rings_and_fractional_minutes(crow: CrowFlyModel) -> None:
    iso = isochrone(crow, LAT0, LON0, Mode.EBIKE, rings_s=(30, 90))
    features = iso.to_geojson()["features"]
    assert [f["properties"]["ring_min"] for f in features] == [0.5, 1.5]
    assert_nested(iso)


@pytest.mark.parametrize(
    "rings", [(), (60.0, 60.0), (180.0, 60.0), (0.0, 60.0), (60.0, math.inf), (math.nan,)]
)
def test_bad_rings_raise_value_error(crow: CrowFlyModel, rings: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="rings_s"):
        isochrone(crow, LAT0, LON0, Mode.WALK, rings_s=rings)


def test_bad_point_raises_coordinate_error(crow: CrowFlyModel) -> None:
    with pytest.raises(CoordinateError) as caught:
        isochrone(crow, 95.0, LON0, Mode.WALK)
    assert caught.value.field == "lat"
    with pytest.raises(ValueError, match="res"):
        isochrone(crow, LAT0, LON0, Mode.WALK, res=16)


@pytest.mark.parametrize("mode", [Mode.WALK, Mode.CAR])
def test_rings_nest_on_the_county_dataset(mode: Mode) -> None:
    road = RoadModel(RoadNetwork.from_file(DATASET))
    seat = (37.3472, 115.9651)  # Zhengkou, the county seat
    iso = isochrone(road, *seat, mode)
    assert_nested(iso)
    crow = isochrone(CrowFlyModel(), *seat, mode)
    assert_nested(crow)
