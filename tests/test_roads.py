"""The road network and its travel model, checked against networkx on the same lines.

The reference graph is built here independently of ``geo.roads``: vertices keyed by
``rint(deg * 1e7)``, WGS84 geodesic segment lengths (pyproj), seconds = length / speed, the
fastest of parallel edges, ``oneway`` for vehicles only. Real files, no mocks.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import h3.api.numpy_int as h3n
import networkx as nx
import numpy as np
import pyproj
import pytest
import scipy.sparse as sp
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from dispatch.errors import CoordinateError, DatasetError
from geo.cells import cell_of, disk_k_for_radius, grid_disk
from geo.modes import ROAD_SPEED_KMH, Mode
from geo.roads import (
    HIGHWAY_CLASS,
    OFFROAD_SPEED_MS,
    SPEED_COLUMNS,
    RoadModel,
    RoadNetwork,
)
from geo.travel import FloatArray, Situation, TravelModel, Turnout

GEOD = pyproj.Geod(ellps="WGS84")
DATASET = Path(__file__).resolve().parents[1] / "data" / "gucheng" / "roads.geojson"
LAT0, LON0 = 37.35, 115.97
M_PER_DEG_LAT = 110_990.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0))

Key = tuple[int, int]


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def at(x_m: float, y_m: float) -> tuple[float, float]:
    """(lon, lat) of a point ``x_m`` east and ``y_m`` north of (LAT0, LON0)."""
    return LON0 + x_m / M_PER_DEG_LON, LAT0 + y_m / M_PER_DEG_LAT


def line(*points_m: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([at(x, y) for x, y in points_m])


def frame(rows: list[dict[str, Any]], geoms: list[Any]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")


def class_row(klass: str, **extra: Any) -> dict[str, Any]:
    return {"class": klass, **extra}


def random_frame(seed: int, n_lines: int = 60, size: int = 20) -> gpd.GeoDataFrame:
    """Random walks on a jittered 120 m lattice (so lines share vertices), with random speeds
    per mode (some 0: mode not allowed), random one-way tags and a few MultiLineStrings."""
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-35.0, 35.0, (size, size, 2))
    steps = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1)]

    def walk() -> list[tuple[float, float]]:
        i, j = (int(v) for v in rng.integers(0, size, 2))
        pts = [(i, j)]
        for _ in range(int(rng.integers(1, 10))):
            di, dj = steps[int(rng.integers(len(steps)))]
            i = min(max(i + di, 0), size - 1)
            j = min(max(j + dj, 0), size - 1)
            pts.append((i, j))
        return [at(120.0 * a + jitter[a, b, 0], 120.0 * b + jitter[a, b, 1]) for a, b in pts]

    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    oneway_tags = [None, None, None, "yes", "-1", "no"]
    for k in range(n_lines):
        first = walk()
        geom: Any = (
            shapely.MultiLineString([first, walk()]) if k % 10 == 0 else shapely.LineString(first)
        )
        speeds = {
            SPEED_COLUMNS[Mode.WALK]: float(rng.choice([0.0, 4.0, 8.28], p=[0.1, 0.2, 0.7])),
            SPEED_COLUMNS[Mode.BIKE]: float(rng.uniform(8, 18)) * (rng.random() > 0.1),
            SPEED_COLUMNS[Mode.EBIKE]: float(rng.uniform(15, 25)) * (rng.random() > 0.1),
            SPEED_COLUMNS[Mode.CAR]: float(rng.uniform(20, 70)) * (rng.random() > 0.2),
        }
        rows.append({**speeds, "oneway": oneway_tags[int(rng.integers(len(oneway_tags)))]})
        geoms.append(geom)
    return frame(rows, geoms)


def grid_frame(half_m: float = 2_000.0, spacing_m: float = 200.0, step_m: float = 50.0) -> Any:
    """A square grid of two-way roads around (LAT0, LON0); a provincial cross through the
    centre, county roads every 1 km, village lanes between."""
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    ticks = np.arange(-half_m, half_m + 1.0, spacing_m)
    along = np.arange(-half_m, half_m + 1.0, step_m)
    for t in ticks:
        klass = "provincial" if t == 0 else "county" if t % 1_000 == 0 else "village"
        rows += [class_row(klass), class_row(klass)]
        geoms += [line(*[(t, a) for a in along]), line(*[(a, t) for a in along])]
    return frame(rows, geoms)


def key(lat: float, lon: float) -> Key:
    return int(np.rint(lat * 1e7)), int(np.rint(lon * 1e7))


def reference_graph(frame_: gpd.GeoDataFrame, mode: Mode) -> nx.DiGraph:
    """The road graph of ``mode`` built from the lines with networkx, independently."""
    graph = nx.DiGraph()
    column = SPEED_COLUMNS[mode]
    for _, row in frame_.iterrows():
        if column in frame_.columns:
            speed = float(row[column])
        else:
            speed = ROAD_SPEED_KMH[str(row["class"])][mode]
        if speed <= 0:
            continue
        tag = row.get("oneway")
        direction = {"yes": 1, "-1": -1}.get(tag, 0) if isinstance(tag, str) else 0
        if mode is Mode.WALK:
            direction = 0
        geom = row.geometry
        parts = list(geom.geoms) if geom.geom_type == "MultiLineString" else [geom]
        for part in parts:
            keys = [key(lat, lon) for lon, lat in part.coords]
            for a, b in itertools.pairwise(keys):
                if a == b:
                    continue
                length = GEOD.inv(a[1] / 1e7, a[0] / 1e7, b[1] / 1e7, b[0] / 1e7)[2]
                seconds = length / (speed / 3.6)
                pairs = {1: [(a, b)], -1: [(b, a)], 0: [(a, b), (b, a)]}[direction]
                for p, q in pairs:
                    if not graph.has_edge(p, q) or graph[p][q]["weight"] > seconds:
                        graph.add_edge(p, q, weight=seconds)
    return graph


def node_keys(network: RoadNetwork) -> list[Key]:
    return [key(a, o) for a, o in zip(network.lat.tolist(), network.lon.tolist(), strict=True)]


def crow_walk_s(
    network: RoadNetwork, lat: FloatArray, lon: FloatArray, dlat: float, dlon: float
) -> FloatArray:
    x, y = network.project(lat, lon)
    xd, yd = network.project(dlat, dlon)
    return np.asarray(np.hypot(x - xd, y - yd) / OFFROAD_SPEED_MS)


def assert_times_equal(actual: FloatArray, expected: FloatArray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isinf(actual), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=1e-9, atol=1e-9)


def same_graph(a: Any, b: Any) -> bool:
    """Same sparsity pattern and weights."""
    a, b = sp.csr_array(a), sp.csr_array(b)
    a.sort_indices()
    b.sort_indices()
    return (
        np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


def exact_model(network: RoadNetwork, **kwargs: Any) -> RoadModel:
    """No turnout, no default cut, every node snappable: pure travel times."""
    return RoadModel(
        network,
        Turnout.none(),
        default_limit_s=math.inf,
        main_component=False,
        **kwargs,
    )


# --------------------------------------------------------------------------------------------
# Shortest paths against networkx
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_network_times_equal_networkx(seed: int) -> None:
    lines = random_frame(seed)
    network = RoadNetwork.from_frame(lines)
    model = exact_model(network)
    keys = node_keys(network)
    index = {k: i for i, k in enumerate(keys)}
    assert len(index) == network.n_nodes  # merged vertices are distinct nodes
    rng = np.random.default_rng(100 + seed)
    for mode in Mode:
        reference = reference_graph(lines, mode)
        assert network.graph(mode).nnz == reference.number_of_edges()
        usable = np.flatnonzero(network.usable(mode))
        for dest in rng.choice(usable, size=min(4, len(usable)), replace=False).tolist():
            expected = np.full(network.n_nodes, np.inf)
            lengths = nx.single_source_dijkstra_path_length(
                reference.reverse(copy=False), keys[dest], weight="weight"
            )
            for k, seconds in lengths.items():
                expected[index[k]] = seconds
            assert_times_equal(model.network_seconds(dest, mode), expected)


@pytest.mark.parametrize("seed", range(4))
def test_model_times_equal_networkx_or_a_straight_walk(seed: int) -> None:
    lines = random_frame(seed)
    network = RoadNetwork.from_frame(lines)
    model = exact_model(network)
    keys = node_keys(network)
    rng = np.random.default_rng(200 + seed)
    for mode in Mode:
        reference = reference_graph(lines, mode).reverse(copy=False)
        usable = np.flatnonzero(network.usable(mode))
        dest = int(rng.choice(usable))
        origins = rng.choice(usable, size=min(40, len(usable)), replace=False)
        lengths = nx.single_source_dijkstra_path_length(reference, keys[dest], weight="weight")
        network_s = np.array([lengths.get(keys[o], np.inf) for o in origins.tolist()])
        lat, lon = network.lat[origins], network.lon[origins]
        dlat, dlon = float(network.lat[dest]), float(network.lon[dest])
        expected = np.minimum(network_s, crow_walk_s(network, lat, lon, dlat, dlon))
        modes = np.full(len(origins), mode, dtype=np.uint8)
        assert_times_equal(model.seconds_to(lat, lon, modes, dlat, dlon), expected)


def test_dataset_times_equal_networkx() -> None:
    lines = gpd.read_file(DATASET, engine="pyogrio")
    network = RoadNetwork.from_file(DATASET)
    model = exact_model(network)
    keys = node_keys(network)
    index = {k: i for i, k in enumerate(keys)}
    rng = np.random.default_rng(3)
    for mode in (Mode.WALK, Mode.CAR):
        reference = reference_graph(lines, mode).reverse(copy=False)
        usable = np.flatnonzero(network.usable(mode))
        for dest in rng.choice(usable, size=3, replace=False).tolist():
            lengths = nx.single_source_dijkstra_path_length(
                reference, keys[dest], cutoff=900.0, weight="weight"
            )
            expected = np.full(network.n_nodes, np.inf)
            for k, seconds in lengths.items():
                expected[index[k]] = seconds
            actual = np.array(model.network_seconds(dest, mode, 900.0))
            actual[actual > 900.0] = np.inf
            assert_times_equal(actual, expected)
            # and through the model: from random nodes, limit 900 s, a straight walk if shorter
            origins = rng.choice(usable, size=200, replace=False)
            lat, lon = network.lat[origins], network.lon[origins]
            dlat, dlon = float(network.lat[dest]), float(network.lon[dest])
            want = np.minimum(expected[origins], crow_walk_s(network, lat, lon, dlat, dlon))
            want[want > 900.0] = np.inf
            modes = np.full(len(origins), mode, dtype=np.uint8)
            got = model.seconds_to(lat, lon, modes, dlat, dlon, limit_s=900.0)
            assert_times_equal(got, want)


# --------------------------------------------------------------------------------------------
# Snapping and off-road legs
# --------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    spread_m=st.sampled_from([30.0, 300.0, 3_000.0]),
    mode=st.sampled_from(list(Mode)),
)
def test_snap_finds_the_nearest_usable_node(seed: int, spread_m: float, mode: Mode) -> None:
    network = RoadNetwork.from_frame(random_frame(seed % 7))
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero(network.usable(mode))
    centre = rng.choice(usable, size=200)
    lat = network.lat[centre] + rng.normal(0, spread_m, 200) / M_PER_DEG_LAT
    lon = network.lon[centre] + rng.normal(0, spread_m, 200) / M_PER_DEG_LON
    nodes, metres = network.snap(lat, lon, mode, main_component=False)
    x, y = network.project(lat, lon)
    nx_, ny_ = network.project(network.lat[usable], network.lon[usable])
    brute = np.hypot(x[:, None] - nx_[None, :], y[:, None] - ny_[None, :])
    np.testing.assert_allclose(metres, brute.min(axis=1), rtol=0, atol=1e-9)
    assert np.isin(nodes, usable).all()
    np.testing.assert_allclose(
        np.hypot(
            x - network.project(network.lat[nodes], network.lon[nodes])[0],
            y - network.project(network.lat[nodes], network.lon[nodes])[1],
        ),
        metres,
        atol=1e-9,
    )


def test_snapping_on_a_dense_network_agrees_with_brute_force() -> None:
    """The county-like grid exercises every level of the snapping grid."""
    network = RoadNetwork.from_frame(grid_frame(half_m=3_000.0, spacing_m=100.0, step_m=25.0))
    rng = np.random.default_rng(5)
    lat = LAT0 + rng.uniform(-4_000, 4_000, 3_000) / M_PER_DEG_LAT
    lon = LON0 + rng.uniform(-4_000, 4_000, 3_000) / M_PER_DEG_LON
    _, metres = network.snap(lat, lon, Mode.CAR)
    x, y = network.project(lat, lon)
    expected, _ = cKDTree(np.column_stack(network.project(network.lat, network.lon))).query(
        np.column_stack([x, y])
    )
    np.testing.assert_allclose(metres, expected, rtol=0, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-3_000, 3_000),
    st.floats(-3_000, 3_000),
    st.floats(0, 2 * math.pi),
    st.floats(1.0, 5_000.0),
)
def test_projection_error_is_within_its_bound(x: float, y: float, angle: float, d: float) -> None:
    network = RoadNetwork.from_frame(grid_frame(half_m=15_000.0, spacing_m=5_000.0, step_m=5_000.0))
    lon1, lat1 = at(x, y)
    lon2, lat2, _ = GEOD.fwd(lon1, lat1, math.degrees(angle), d)
    if not network.lat.min() <= lat2 <= network.lat.max():
        return
    px, py = network.project(np.array([lat1, lat2]), np.array([lon1, lon2]))
    planar = math.hypot(px[1] - px[0], py[1] - py[0])
    assert abs(planar - d) <= network.projection_error * d
    assert network.projection_error < 0.004  # 0.31% over 0.27 degree of latitude + margins


def test_snapping_a_point_that_is_not_finite() -> None:
    network = RoadNetwork.from_frame(grid_frame(half_m=400.0))
    nodes, metres = network.snap(np.array([LAT0, math.nan]), np.array([LON0, LON0]), Mode.WALK)
    assert nodes[0] >= 0
    assert metres[0] == pytest.approx(0.0, abs=1e-6)
    assert nodes[1] == -1
    assert math.isnan(metres[1])


def test_offroad_legs_are_walked() -> None:
    lines = frame([class_row("county")], [line(*[(x, 0.0) for x in range(0, 3_001, 100)])])
    network = RoadNetwork.from_frame(lines)
    model = exact_model(network)
    lon_o, lat_o = at(2_000.0, 40.0)  # 40 m north of the vertex at 2 km
    lon_d, lat_d = at(0.0, -30.0)  # 30 m south of the vertex at 0
    got = model.seconds_to(
        np.array([lat_o]), np.array([lon_o]), np.array([Mode.CAR], dtype=np.uint8), lat_d, lon_d
    )
    node_o, off_o = network.snap(lat_o, lon_o, Mode.CAR)
    node_d, off_d = network.snap(lat_d, lon_d, Mode.CAR)
    assert off_o[0] == pytest.approx(40.0, rel=5e-3)
    assert off_d[0] == pytest.approx(30.0, rel=5e-3)
    on_road = model.network_seconds(int(node_d[0]), Mode.CAR)[int(node_o[0])]
    assert on_road == pytest.approx(2_000.0 / (55.0 / 3.6), rel=5e-3)
    expected = on_road + (off_o[0] + off_d[0]) / OFFROAD_SPEED_MS
    assert got[0] == pytest.approx(expected, rel=1e-12)


def test_a_short_hop_is_walked_straight_when_the_road_goes_round() -> None:
    # a U-shaped lane: its two ends are 60 m apart, 1 km apart by the lane
    lines = frame([class_row("village")], [line((0, 0), (0, 470), (60, 470), (60, 0))])
    network = RoadNetwork.from_frame(lines)
    model = exact_model(network)
    lon_o, lat_o = at(0.0, 0.0)
    lon_d, lat_d = at(60.0, 0.0)
    for mode in Mode:
        got = model.seconds_to(
            np.array([lat_o]), np.array([lon_o]), np.array([mode], dtype=np.uint8), lat_d, lon_d
        )
        assert got[0] == pytest.approx(60.0 / OFFROAD_SPEED_MS, rel=5e-3)


def test_main_component_snapping_avoids_stray_fragments() -> None:
    main = [line(*[(x, 0.0) for x in range(0, 2_001, 100)])]
    island = [line((1_000.0, 400.0), (1_050.0, 400.0))]  # 400 m north of the main road
    network = RoadNetwork.from_frame(frame([class_row("county")] * 2, main + island))
    lon_o, lat_o = at(1_020.0, 380.0)  # next to the fragment
    lon_d, lat_d = at(0.0, 0.0)
    args = (np.array([lat_o]), np.array([lon_o]), np.array([Mode.CAR], dtype=np.uint8))
    snapped = RoadModel(network, Turnout.none()).seconds_to(*args, lat_d, lon_d)
    stranded = exact_model(network).seconds_to(*args, lat_d, lon_d)
    _, metres = network.snap(lat_o, lon_o, Mode.CAR)
    assert metres[0] == pytest.approx(380.0, rel=5e-3)  # to the main road, not the fragment
    assert snapped[0] < stranded[0]  # the fragment leaves only a straight walk
    assert stranded[0] == pytest.approx(
        crow_walk_s(network, args[0], args[1], lat_d, lon_d)[0], rel=1e-12
    )


# --------------------------------------------------------------------------------------------
# One-way streets and modes
# --------------------------------------------------------------------------------------------


def one_way_square(tag: str) -> gpd.GeoDataFrame:
    """A 500 m one-way street from A (0, 0) to B (500, 0), and a two-way detour round a
    500 m square back from B to A."""
    return frame(
        [class_row("village", oneway=tag), class_row("village", oneway=None)],
        [line((0, 0), (500, 0)), line((500, 0), (500, 500), (0, 500), (0, 0))],
    )


def time_between(
    model: RoadModel, a: tuple[float, float], b: tuple[float, float], mode: Mode
) -> float:
    lon_a, lat_a = at(*a)
    lon_b, lat_b = at(*b)
    got = model.seconds_to(
        np.array([lat_a]), np.array([lon_a]), np.array([mode], dtype=np.uint8), lat_b, lon_b
    )
    return float(got[0])


@pytest.mark.parametrize(("tag", "forward"), [("yes", True), ("-1", False), ("no", None)])
def test_one_way_streets(tag: str, forward: bool | None) -> None:
    model = exact_model(RoadNetwork.from_frame(one_way_square(tag)))
    car = 3.6 / 30.0  # seconds per metre on a village lane
    a, b = (0.0, 0.0), (500.0, 0.0)
    direct, detour = 500 * car, 1_500 * car
    a_to_b = time_between(model, a, b, Mode.CAR)
    b_to_a = time_between(model, b, a, Mode.CAR)
    expected = {True: (direct, detour), False: (detour, direct), None: (direct, direct)}[forward]
    assert (a_to_b, b_to_a) == pytest.approx(expected, rel=5e-3)
    # walkers are not bound by one-way signs (OSM semantics)
    walk = 500 / (ROAD_SPEED_KMH["village"][Mode.WALK] / 3.6)
    assert time_between(model, b, a, Mode.WALK) == pytest.approx(walk, rel=5e-3)


def test_oneway_as_numbers_and_booleans() -> None:
    geoms = [line((0, 0), (100, 0)), line((0, 100), (100, 100)), line((0, 200), (100, 200))]
    for values, expected in (([1, 0, -1], 4), ([True, False, True], 4), ([1.0, 0.0, 0.0], 5)):
        rows = [class_row("village", oneway=v) for v in values]
        assert RoadNetwork.from_frame(frame(rows, geoms)).graph(Mode.CAR).nnz == expected


def test_a_roundabout_is_one_way() -> None:
    lines = frame(
        [{"highway": "primary", "junction": "roundabout", "oneway": None}],
        [line((0, 0), (100, 0), (100, 100), (0, 100), (0, 0))],
    )
    network = RoadNetwork.from_frame(lines)
    assert network.graph(Mode.CAR).nnz == 4
    assert network.graph(Mode.WALK).nnz == 8


def osm_frame() -> gpd.GeoDataFrame:
    """OSM-style tags: a 200 m footway shortcut between A (0, 0) and B (200, 0), a residential
    detour round it, and a motorway alongside."""
    return frame(
        [
            {"highway": "footway", "name": "小路", "oneway": None},
            {"highway": "residential", "name": "村路", "oneway": None},
            {"highway": "motorway", "name": "高速", "oneway": "yes"},
            {"highway": "proposed", "name": "规划路", "oneway": None},
        ],
        [
            line((0, 0), (100, 0), (200, 0)),
            line((0, 0), (0, 200), (200, 200), (200, 0)),
            line((0, -300), (2_000, -300)),
            line((0, 0), (0, -300)),
        ],
    )


def test_mode_restrictions_from_osm_highway_tags() -> None:
    network = RoadNetwork.from_frame(osm_frame())
    model = exact_model(network)
    a, b = (0.0, 0.0), (200.0, 0.0)
    walk_kmh = ROAD_SPEED_KMH["village"][Mode.WALK]
    assert time_between(model, a, b, Mode.WALK) == pytest.approx(200 / (walk_kmh / 3.6), rel=5e-3)
    # a car cannot take the footway: the 600 m residential detour at 30 km/h
    assert time_between(model, a, b, Mode.CAR) == pytest.approx(600 / (30 / 3.6), rel=5e-3)
    # the footway's middle vertex is not a car node: a car there snaps to a drivable one
    lon_m, lat_m = at(100.0, 5.0)
    node, _ = network.snap(lat_m, lon_m, Mode.CAR)
    assert network.usable(Mode.CAR)[node[0]]
    assert not network.usable(Mode.CAR)[network.snap(lat_m, lon_m, Mode.WALK)[0][0]]
    # motorways bar walkers and cyclists; "proposed" roads are not roads yet
    assert network.graph(Mode.WALK).nnz == 2 * (2 + 3)  # footway + residential, both ways
    for mode in (Mode.BIKE, Mode.EBIKE):
        assert network.graph(mode).nnz == 2 * 3  # residential only
    assert network.graph(Mode.CAR).nnz == 2 * 3 + 1  # residential + the one-way motorway
    assert network.max_speed_ms(Mode.CAR) == pytest.approx(70 / 3.6)
    assert network.n_nodes == 3 + 2 + 2  # the proposed road adds no vertex


def test_highway_links_take_their_road_class() -> None:
    assert HIGHWAY_CLASS["secondary"] == "county"
    lines = frame(
        [{"highway": "secondary_link"}, {"highway": "cycleway"}],
        [line((0, 0), (1_000, 0)), line((0, 100), (1_000, 100))],
    )
    network = RoadNetwork.from_frame(lines)
    car = network.graph(Mode.CAR)
    assert car.nnz == 2
    length = GEOD.inv(*at(0, 0), *at(1_000, 0))[2]
    assert car.data.max() == pytest.approx(length / (55 / 3.6), rel=1e-6)
    assert network.graph(Mode.BIKE).nnz == 4


# --------------------------------------------------------------------------------------------
# Limits, turnout, cache, reach
# --------------------------------------------------------------------------------------------


def test_limit_cuts_to_inf_and_keeps_the_rest_exact() -> None:
    network = RoadNetwork.from_frame(grid_frame())
    model = RoadModel(network, Turnout.none(), default_limit_s=math.inf)
    rng = np.random.default_rng(11)
    n = 2_000
    lat = LAT0 + rng.uniform(-2_000, 2_000, n) / M_PER_DEG_LAT
    lon = LON0 + rng.uniform(-2_000, 2_000, n) / M_PER_DEG_LON
    modes = rng.integers(0, 4, n).astype(np.uint8)
    full = model.seconds_to(lat, lon, modes, LAT0, LON0)
    assert np.isfinite(full).all()
    for limit in (0.0, 45.0, 120.0, 300.0):
        model.clear_cache()
        cut = model.seconds_to(lat, lon, modes, LAT0, LON0, limit_s=limit)
        within = full <= limit
        assert np.isinf(cut[~within]).all()
        np.testing.assert_allclose(cut[within], full[within], rtol=1e-12)
    # without a limit the default cut applies
    capped = RoadModel(network, Turnout.none(), default_limit_s=120.0)
    np.testing.assert_array_equal(
        capped.seconds_to(lat, lon, modes, LAT0, LON0),
        model.seconds_to(lat, lon, modes, LAT0, LON0, limit_s=120.0),
    )


def test_turnout_is_added_per_origin() -> None:
    network = RoadNetwork.from_frame(grid_frame())
    model = RoadModel(network, default_limit_s=math.inf)
    rng = np.random.default_rng(12)
    lat = LAT0 + rng.uniform(-1_500, 1_500, 100) / M_PER_DEG_LAT
    lon = LON0 + rng.uniform(-1_500, 1_500, 100) / M_PER_DEG_LON
    modes = np.full(100, Mode.EBIKE, dtype=np.uint8)
    situations = rng.integers(0, 4, 100).astype(np.uint8)
    bare = model.seconds_to(lat, lon, modes, LAT0, LON0)
    dressed = model.seconds_to(lat, lon, modes, LAT0, LON0, situations=situations)
    np.testing.assert_allclose(dressed - bare, Turnout().table()[situations])
    assert Turnout().table()[Situation.HOME] == 105.0


def test_dijkstra_results_are_cached_by_node_and_mode() -> None:
    network = RoadNetwork.from_frame(grid_frame())
    model = RoadModel(network, cache_size=2)
    first = model.network_seconds(10, Mode.CAR, 300.0)
    assert model.network_seconds(10, Mode.CAR, 200.0) is first  # a smaller limit reuses it
    assert not first.flags.writeable
    wider = model.network_seconds(10, Mode.CAR, 400.0)
    assert wider is not first
    np.testing.assert_array_equal(wider[first <= 300.0], first[first <= 300.0])
    model.network_seconds(11, Mode.CAR, 300.0)
    model.network_seconds(12, Mode.CAR, 300.0)  # evicts node 10 (LRU of 2)
    assert model.network_seconds(10, Mode.CAR, 300.0) is not wider
    model.clear_cache()
    uncached = RoadModel(network, cache_size=0)
    assert uncached.network_seconds(10, Mode.CAR) is not uncached.network_seconds(10, Mode.CAR)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16), st.floats(10.0, 600.0))
def test_max_reach_is_an_upper_bound(seed: int, seconds: float) -> None:
    network = RoadNetwork.from_frame(random_frame(seed % 5))
    model = RoadModel(network, Turnout.none())
    rng = np.random.default_rng(seed)
    n = 300
    lat = LAT0 + rng.uniform(-500, 3_000, n) / M_PER_DEG_LAT
    lon = LON0 + rng.uniform(-500, 3_000, n) / M_PER_DEG_LON
    dlon, dlat = at(*rng.uniform(0, 2_400, 2))
    modes = rng.integers(0, 4, n).astype(np.uint8)
    got = model.seconds_to(lat, lon, modes, dlat, dlon, limit_s=seconds)
    reached = np.isfinite(got)
    distance = GEOD.inv(
        lon[reached], lat[reached], np.full(reached.sum(), dlon), np.full(reached.sum(), dlat)
    )[2]
    assert (distance <= model.max_reach_m(seconds)).all()
    assert model.max_reach_m(-1.0) == 0.0


def test_the_model_satisfies_the_protocol() -> None:
    model = RoadModel(RoadNetwork.from_frame(grid_frame()))
    assert isinstance(model, TravelModel)
    assert model.name == "road"
    empty = model.seconds_to(np.array([]), np.array([]), np.array([], dtype=np.uint8), LAT0, LON0)
    assert empty.shape == (0,)


# --------------------------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------------------------


def test_components_and_connectivity() -> None:
    two = RoadNetwork.from_frame(
        frame([class_row("village")] * 2, [line((0, 0), (100, 0)), line((0, 500), (100, 500))])
    )
    assert two.components()[0] == 2
    assert not two.is_connected()
    stub = RoadNetwork.from_frame(
        frame(
            [class_row("village", oneway="yes")] * 2,
            [line((0, 0), (100, 0), (100, 100), (0, 0)), line((100, 100), (100, 300))],
        )
    )
    assert stub.is_connected(Mode.WALK)  # walkers ignore one-way
    assert not stub.is_connected(Mode.CAR)  # the stub's end cannot get back
    count, labels = stub.components(Mode.CAR, connection="strong")
    assert count == 2
    assert labels.max() == 1
    assert stub.components(Mode.CAR)[0] == 1  # weakly, it is one piece
    assert stub.main_component(Mode.CAR).sum() == 3
    assert stub.n_nodes == 4
    assert stub.n_edges == 4


def test_vertices_merge_at_1e7_degree() -> None:
    lon, lat = at(100.0, 0.0)
    lines = frame(
        [class_row("village")] * 2,
        [
            shapely.LineString([at(0, 0), (lon, lat)]),
            shapely.LineString([(lon + 3e-9, lat - 3e-9), at(200, 0)]),  # same vertex, rounded
        ],
    )
    network = RoadNetwork.from_frame(lines)
    assert network.n_nodes == 3
    assert network.n_edges == 2
    assert network.is_connected()


def test_parallel_edges_keep_the_fastest() -> None:
    lines = frame(
        [class_row("village"), class_row("provincial")],
        [line((0, 0), (1_000, 0)), line((0, 0), (1_000, 0))],
    )
    network = RoadNetwork.from_frame(lines)
    assert network.n_edges == 1
    length = GEOD.inv(*at(0, 0), *at(1_000, 0))[2]
    np.testing.assert_allclose(network.graph(Mode.CAR).data, length / (70 / 3.6))


def test_graphs_are_prebuilt_for_scipy() -> None:
    network = RoadNetwork.from_frame(random_frame(1))
    for mode in Mode:
        for graph in (network.graph(mode), network.reversed_graph(mode)):
            assert graph.dtype == np.float64
            assert graph.indices.dtype == np.int32
            assert graph.indptr.dtype == np.int32
            assert graph.has_canonical_format
        assert same_graph(network.reversed_graph(mode), network.graph(mode).T)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def test_geopackage_and_geojson_load_the_same_network(tmp_path: Path) -> None:
    lines = random_frame(2)
    lines.to_file(tmp_path / "roads.gpkg", driver="GPKG", layer="roads", engine="pyogrio")
    lines.to_file(tmp_path / "roads.geojson", driver="GeoJSON", engine="pyogrio")
    direct = RoadNetwork.from_frame(lines)
    for network in (
        RoadNetwork.from_file(tmp_path / "roads.gpkg", layer="roads"),
        RoadNetwork.from_file(tmp_path / "roads.geojson"),
    ):
        assert network.n_nodes == direct.n_nodes
        assert network.n_edges == direct.n_edges
        np.testing.assert_array_equal(network.lat, direct.lat)
        for mode in Mode:
            assert same_graph(network.graph(mode), direct.graph(mode))


def test_osm_style_geojson_with_highway_tags(tmp_path: Path) -> None:
    path = tmp_path / "osm.geojson"
    osm_frame().to_file(path, driver="GeoJSON", engine="pyogrio")
    network = RoadNetwork.from_file(path)
    assert network.graph(Mode.CAR).nnz == 7
    assert network.graph(Mode.WALK).nnz == 10


def test_a_projected_geopackage_is_reprojected(tmp_path: Path) -> None:
    lines = grid_frame(half_m=500.0)
    lines.to_crs("EPSG:32650").to_file(tmp_path / "utm.gpkg", driver="GPKG", engine="pyogrio")
    network = RoadNetwork.from_file(tmp_path / "utm.gpkg")
    direct = RoadNetwork.from_frame(lines)
    assert network.n_nodes == direct.n_nodes
    np.testing.assert_allclose(network.lat, direct.lat, atol=2e-7)


def write(tmp_path: Path, rows: list[dict[str, Any]], geoms: list[Any] | None = None) -> Path:
    path = tmp_path / "bad.geojson"
    geoms = geoms or [line((0, 0), (100, 0))] * len(rows)
    features = [
        {"type": "Feature", "properties": r, "geometry": shapely.geometry.mapping(g)}
        for r, g in zip(rows, geoms, strict=True)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@pytest.mark.parametrize(
    ("rows", "field", "words"),
    [
        ([{"name": "无名路"}], "speed_walk_kmh", "class"),
        ([{"class": "village", SPEED_COLUMNS[Mode.CAR]: -5.0}], "speed_car_kmh", "-5"),
        ([{"class": "village", SPEED_COLUMNS[Mode.BIKE]: None}], "speed_bike_kmh", "NaN"),
        ([{"class": "village", SPEED_COLUMNS[Mode.EBIKE]: "fast"}], "speed_ebike_kmh", "fast"),
        ([{"class": "village"}, {"class": "expressway"}], "class", "expressway"),
        ([{"class": None}], "class", "missing"),
        ([{"class": "village", "oneway": "sometimes"}], "oneway", "sometimes"),
    ],
)
def test_bad_attributes_name_the_file_and_field(
    tmp_path: Path, rows: list[dict[str, Any]], field: str, words: str
) -> None:
    path = write(tmp_path, rows)
    with pytest.raises(DatasetError) as caught:
        RoadNetwork.from_file(path)
    assert caught.value.field == field
    message = str(caught.value)
    assert str(path) in message
    assert field in message
    assert words in message


def test_bad_geometries_name_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, [{"class": "village"}], [shapely.Point(at(0, 0))])
    with pytest.raises(DatasetError, match="Point, not a line") as caught:
        RoadNetwork.from_file(path)
    assert caught.value.field == "geometry"
    with pytest.raises(DatasetError, match="no routable road"):
        RoadNetwork.from_frame(frame([{"highway": "proposed"}], [line((0, 0), (100, 0))]))
    with pytest.raises(DatasetError, match="missing"):
        RoadNetwork.from_frame(frame([class_row("village")], [None]))


def test_a_vertex_out_of_range_names_the_row() -> None:
    lines = frame(
        [class_row("village")] * 2,
        [line((0, 0), (100, 0)), shapely.LineString([(116.0, 37.0), (116.0, 95.0)])],
    )
    with pytest.raises(DatasetError, match=r"row 1: vertex \(lon 116.0, lat 95.0\)") as caught:
        RoadNetwork.from_frame(lines, source="roads.geojson")
    assert caught.value.field == "geometry"


def test_unreadable_files_raise_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=re.escape("nope.geojson")):
        RoadNetwork.from_file(tmp_path / "nope.geojson")
    (tmp_path / "junk.geojson").write_text("{not json")
    with pytest.raises(DatasetError, match=re.escape("junk.geojson")):
        RoadNetwork.from_file(tmp_path / "junk.geojson")


@pytest.mark.parametrize(
    ("dlat", "dlon", "field"),
    [
        (math.nan, LON0, "destination.lat"),
        (91.0, LON0, "destination.lat"),
        (LAT0, 181.0, "destination.lon"),
        (LAT0, math.inf, "destination.lon"),
        (None, LON0, "destination.lat"),
    ],
)
def test_a_bad_destination_raises_coordinate_error(dlat: Any, dlon: Any, field: str) -> None:
    model = RoadModel(RoadNetwork.from_frame(grid_frame(half_m=400.0)))
    with pytest.raises(CoordinateError) as caught:
        model.seconds_to(
            np.array([LAT0]), np.array([LON0]), np.array([0], dtype=np.uint8), dlat, dlon
        )
    assert caught.value.field == field


def test_bad_query_arrays_raise_value_error() -> None:
    model = RoadModel(RoadNetwork.from_frame(grid_frame(half_m=400.0)))
    with pytest.raises(ValueError, match="equal lengths"):
        model.seconds_to(np.zeros(2), np.zeros(3), np.zeros(2, dtype=np.uint8), LAT0, LON0)
    with pytest.raises(ValueError, match="mode code 7"):
        model.seconds_to(
            np.array([LAT0]), np.array([LON0]), np.array([7], dtype=np.uint8), LAT0, LON0
        )


# --------------------------------------------------------------------------------------------
# geo.cells.disk_k_for_radius is honest
# --------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-80.0, 80.0),
    lon=st.floats(-180.0, 180.0),
    res=st.integers(6, 11),
    radius_cells=st.floats(0.0, 40.0),
    fraction=st.floats(0.0, 1.0),
    azimuth=st.floats(-180.0, 180.0),
)
def test_disk_k_for_radius_holds_every_point_within_the_radius(
    lat: float, lon: float, res: int, radius_cells: float, fraction: float, azimuth: float
) -> None:
    cell = cell_of(lat, lon, res)
    radius = radius_cells * h3n.average_hexagon_edge_length(res, unit="m")
    k = disk_k_for_radius(cell, radius)
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, fraction * radius)
    assert cell_of(lat2, lon2, res) in set(grid_disk(cell, k).tolist())
