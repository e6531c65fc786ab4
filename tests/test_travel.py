"""The crow-fly travel model and its haversine distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from dispatch.errors import CoordinateError
from geo.modes import Mode
from geo.travel import CrowFlyModel, Situation, TravelModel, Turnout, haversine_m

WGS84 = Geod(ellps="WGS84")


def test_haversine_within_half_a_percent_of_the_wgs84_geodesic() -> None:
    rng = np.random.default_rng(20231001)
    n = 20_000
    lat1 = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))  # uniform on the sphere
    lon1 = rng.uniform(-180, 180, n)
    lat2 = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    lon2 = rng.uniform(-180, 180, n)
    _, _, geodesic = WGS84.inv(lon1, lat1, lon2, lat2)
    ours = np.array(
        [haversine_m(lat1[i], lon1[i], float(lat2[i]), float(lon2[i])) for i in range(n)]
    )
    keep = geodesic > 1.0  # relative error is meaningless for coincident points
    relative = np.abs(ours[keep] - geodesic[keep]) / geodesic[keep]
    assert relative.max() <= 0.005, f"worst relative error {relative.max():.5f}"


def test_haversine_at_county_scale_is_vectorised_and_close() -> None:
    rng = np.random.default_rng(7)
    lat = rng.uniform(37.05, 37.55, 5_000)
    lon = rng.uniform(115.75, 116.28, 5_000)
    _, _, geodesic = WGS84.inv(lon, lat, np.full_like(lon, 115.9651), np.full_like(lat, 37.3472))
    ours = haversine_m(lat, lon, 37.3472, 115.9651)
    assert ours.shape == lat.shape
    assert np.max(np.abs(ours - geodesic) / geodesic) <= 0.005


@settings(max_examples=200, deadline=None)
@given(
    distance=st.floats(min_value=1.0, max_value=30_000.0),
    azimuth=st.floats(min_value=-180.0, max_value=180.0),
    mode=st.sampled_from(list(Mode)),
)
def test_crow_fly_time_is_distance_times_circuity_over_speed(
    distance: float, azimuth: float, mode: Mode
) -> None:
    speeds = {Mode.WALK: 2.0, Mode.BIKE: 4.0, Mode.EBIKE: 6.0, Mode.CAR: 12.0}
    model = CrowFlyModel(speeds_ms=speeds, circuity=dict.fromkeys(Mode, 1.3))
    lon, lat, _ = WGS84.fwd(115.9651, 37.3472, azimuth, distance)
    seconds = model.seconds_to(
        np.array([lat]), np.array([lon]), np.array([mode], dtype=np.uint8), 37.3472, 115.9651
    )
    expected = distance * 1.3 / speeds[mode]
    assert seconds[0] == pytest.approx(expected, rel=0.005)


def test_turnout_depends_on_situation_and_is_zero_on_patrol() -> None:
    turnout = Turnout({Situation.PATROL: 0.0, Situation.HOME: 100.0, Situation.NIGHT: 150.0})
    model = CrowFlyModel(turnout=turnout)
    lat = np.full(4, 37.36)
    lon = np.full(4, 115.97)
    modes = np.full(4, Mode.BIKE, dtype=np.uint8)
    situations = np.array([0, 1, 3, 2], dtype=np.uint8)
    base = model.seconds_to(lat, lon, modes, 37.3472, 115.9651)
    with_turnout = model.seconds_to(lat, lon, modes, 37.3472, 115.9651, situations=situations)
    assert (with_turnout - base).tolist() == pytest.approx([0.0, 100.0, 150.0, 0.0])


def test_limit_turns_slow_origins_into_inf() -> None:
    model = CrowFlyModel(turnout=Turnout.none())
    lat = np.array([37.3472, 37.36, 37.55])
    lon = np.array([115.9651, 115.9651, 115.9651])
    modes = np.full(3, Mode.CAR, dtype=np.uint8)
    seconds = model.seconds_to(lat, lon, modes, 37.3472, 115.9651, limit_s=300.0)
    assert seconds[0] == 0.0
    assert math.isfinite(seconds[1])
    assert seconds[1] <= 300.0
    assert seconds[2] == math.inf


def test_max_reach_bounds_every_mode() -> None:
    model = CrowFlyModel(turnout=Turnout.none())
    reach = model.max_reach_m(300.0)
    lon, lat, _ = WGS84.fwd(115.9651, 37.3472, 45.0, reach * 1.01)
    seconds = model.seconds_to(
        np.full(4, lat), np.full(4, lon), np.arange(4, dtype=np.uint8), 37.3472, 115.9651
    )
    assert (seconds > 300.0).all()


def test_crow_fly_is_a_travel_model_and_rejects_bad_destinations() -> None:
    model = CrowFlyModel()
    assert isinstance(model, TravelModel)
    with pytest.raises(CoordinateError, match=r"destination\.lat"):
        model.seconds_to(np.zeros(1), np.zeros(1), np.zeros(1, np.uint8), math.nan, 116.0)
    with pytest.raises(ValueError, match="speed for car"):
        CrowFlyModel(speeds_ms={Mode.CAR: 0.0})
    with pytest.raises(ValueError, match="circuity for walk"):
        CrowFlyModel(circuity={Mode.WALK: 0.9})
    with pytest.raises(ValueError, match="turnout for home"):
        Turnout({Situation.HOME: -1.0})
