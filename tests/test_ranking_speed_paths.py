"""The ranking's fast paths give exactly the ranking of its definition.

The reference here is the ranking as first written: a scan of every volunteer, the travel
model on all of them, one ``np.lexsort`` with the id strings. ``rank`` must return the same
slots in the same order with bit-identical ETAs, rings and distances, whatever path it takes:
the cut disk, the planar reach bound (forced on for small populations too), the tie runs, and
a model that offers each mode's reach and its distances.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import h3
import h3.api.basic_int as h3b
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from dispatch.core import ranking
from dispatch.core.ranking import (
    DistanceByProduct,
    Ranking,
    ReachByMode,
    rank,
    rank_slots,
    ring_of,
)
from geo.cells import (
    cell_of,
    disk_k_for_radius,
    disk_with_centres,
    disk_with_centres_on_reuse,
    grid_disk,
)
from geo.modes import Mode
from geo.travel import (
    CrowFlyModel,
    FloatArray,
    ModeArray,
    SituationArray,
    TravelModel,
    earth_radius_m,
    haversine_m,
)
from tests.strategies import GEOD, NOW, SEAT, Person, build_index, people, place
from units.index import LiveIndex
from units.vocab import Status

WGS84 = Geod(ellps="WGS84")


class PlainModel:
    """The crow-fly model's times behind the bare :class:`~geo.travel.TravelModel` protocol:
    without the optional capabilities, ranking takes its general path."""

    def __init__(self) -> None:
        self._inner = CrowFlyModel()

    @property
    def name(self) -> str:
        return "plain"

    def seconds_to(
        self,
        lat: FloatArray,
        lon: FloatArray,
        modes: ModeArray,
        dest_lat: float,
        dest_lon: float,
        *,
        situations: SituationArray | None = None,
        limit_s: float | None = None,
    ) -> FloatArray:
        return self._inner.seconds_to(
            lat, lon, modes, dest_lat, dest_lon, situations=situations, limit_s=limit_s
        )

    def max_reach_m(self, seconds: float) -> float:
        return self._inner.max_reach_m(seconds)


PLAIN = PlainModel()
EXTRAS = CrowFlyModel()
MODELS: dict[str, TravelModel] = {"plain": PLAIN, "extras": EXTRAS}


def test_the_plain_model_offers_neither_capability() -> None:
    assert isinstance(PLAIN, TravelModel)
    assert not hasattr(PLAIN, "max_reach_by_mode_m")
    assert not hasattr(PLAIN, "seconds_and_distances_to")


@pytest.mark.parametrize("seconds", [0.0, 1.0, 60.0, 300.0, 1800.0])
def test_crow_fly_reach_by_mode_is_each_modes_own_reach(seconds: float) -> None:
    extras: ReachByMode = EXTRAS
    reach = extras.max_reach_by_mode_m(seconds)
    assert reach.shape == (len(Mode),)
    assert math.isclose(reach.max(), EXTRAS.max_reach_m(seconds), rel_tol=1e-12)
    assert (reach > 0).all() if seconds else (reach == 0).all()
    if seconds:
        # an origin on patrol exactly at its mode's reach arrives exactly at the horizon
        modes = np.arange(len(Mode), dtype=np.uint8)
        lat_r, lon_r = destinations_north(reach)
        eta = EXTRAS.seconds_to(lat_r, lon_r, modes, *SEAT)
        np.testing.assert_allclose(eta, seconds, rtol=1e-9)


def destinations_north(distance_m: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Points due north of the seat at ``distance_m`` on the haversine's own sphere."""
    radius = earth_radius_m(SEAT[0])
    lat = np.degrees(np.radians(SEAT[0]) + distance_m / radius)
    # the haversine uses the radius at the pair's mean latitude: iterate to agree with it
    for _ in range(5):
        radius = earth_radius_m((lat + SEAT[0]) / 2.0)
        lat = np.degrees(np.radians(SEAT[0]) + distance_m / radius)
    return np.asarray(lat), np.full(len(distance_m), SEAT[1])


def test_crow_fly_gives_the_distances_its_times_came_from() -> None:
    with_distances: DistanceByProduct = EXTRAS
    rng = np.random.default_rng(3)
    n = 500
    lat = SEAT[0] + rng.uniform(-0.05, 0.05, n)
    lon = SEAT[1] + rng.uniform(-0.05, 0.05, n)
    modes = rng.integers(0, len(Mode), n).astype(np.uint8)
    situations = rng.integers(0, 4, n).astype(np.uint8)
    seconds, distance = with_distances.seconds_and_distances_to(
        lat, lon, modes, *SEAT, situations=situations, limit_s=300.0
    )
    np.testing.assert_array_equal(distance, haversine_m(lat, lon, *SEAT))
    np.testing.assert_array_equal(
        seconds, EXTRAS.seconds_to(lat, lon, modes, *SEAT, situations=situations, limit_s=300.0)
    )
    assert np.isinf(seconds).any()
    assert np.isfinite(seconds).any()


def reference(
    index: LiveIndex,
    lat: float,
    lon: float,
    *,
    max_eta_s: float,
    needs_roles: int,
    needs_teams: int,
    held: npt.NDArray[np.bool_],
    nearest_unit: int,
) -> Ranking:
    """The ranking by its definition, over everyone (the first implementation of ``rank``)."""
    n = len(index)
    if n == 0:
        return ranking._empty()
    eta = PLAIN.seconds_to(
        index.lat.copy(),
        index.lon.copy(),
        index.mode.copy(),
        lat,
        lon,
        situations=index.situation.copy(),
        limit_s=max_eta_s,
    )
    ok = index.fresh_available(np.arange(n), NOW) & ~held & (eta <= max_eta_s)
    slots = np.flatnonzero(ok)
    eta = eta[slots]
    ring = ring_of(eta)
    skilled = ((index.roles[slots] & needs_roles) | (index.teams[slots] & needs_teams)) != 0
    home = index.unit[slots] == nearest_unit if nearest_unit >= 0 else skilled & False
    ids = np.array([index.ids[s] for s in slots.tolist()])
    order = np.lexsort((ids, ~home, eta, ~skilled, ring))
    slots = slots[order]
    return Ranking(
        slots=slots,
        eta_s=eta[order],
        ring=ring[order],
        distance_m=haversine_m(index.lat[slots], index.lon[slots], lat, lon),
        skilled=skilled[order],
    )


def assert_same(got: Ranking, expected: Ranking) -> None:
    np.testing.assert_array_equal(got.slots, expected.slots)
    np.testing.assert_array_equal(got.eta_s, expected.eta_s)
    np.testing.assert_array_equal(got.ring, expected.ring)
    np.testing.assert_array_equal(got.distance_m, expected.distance_m)
    np.testing.assert_array_equal(got.skilled, expected.skilled)
    assert got.slots.dtype == np.intp
    assert got.eta_s.dtype == np.float64
    assert got.ring.dtype == np.uint8
    assert got.skilled.dtype == np.bool_


#: The thresholds that choose ranking's paths by the number of candidates.
THRESHOLDS = ("_PREFILTER_MIN", "_CUT_NOW_MIN")


@contextmanager
def prefilter_from(threshold: int | None, cut_now: int | None = None) -> Iterator[None]:
    """Within: the planar pre-filter applies from ``threshold`` candidates, a first visit's
    disk is cut at once from ``cut_now`` (``None``: as tuned; 0: always, so that the small
    populations of the tests take those paths too)."""
    saved = {name: getattr(ranking, name) for name in THRESHOLDS}
    for name, value in zip(THRESHOLDS, (threshold, cut_now), strict=True):
        if value is not None:
            setattr(ranking, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(ranking, name, value)


# groups of people at one spot: equal ETAs, so the unit and id tie-breaks decide
crowds = st.lists(st.tuples(people, st.integers(1, 3)), min_size=0, max_size=25).map(
    lambda groups: [person for person, repeat in groups for _ in range(repeat)]
)


@pytest.mark.parametrize("threshold", [None, 0], ids=["as-tuned", "prefilter-always"])
@pytest.mark.parametrize("model_name", list(MODELS))
@settings(max_examples=150, deadline=None)
@given(
    population=crowds,
    needs_roles=st.integers(0, 63),
    needs_teams=st.integers(0, 63),
    held_bits=st.integers(0, 2**75),
    max_eta_s=st.sampled_from([0.0, 60.0, 180.0, 300.0, 600.0, 1800.0]),
    nearest_unit=st.integers(-1, 3),
)
def test_rank_equals_the_reference(
    threshold: int | None,
    model_name: str,
    population: list[Person],
    needs_roles: int,
    needs_teams: int,
    held_bits: int,
    max_eta_s: float,
    nearest_unit: int,
) -> None:
    index = build_index(population)
    held = np.array([(held_bits >> i) & 1 == 1 for i in range(len(index))], dtype=np.bool_)
    kwargs = {
        "max_eta_s": max_eta_s,
        "needs_roles": needs_roles,
        "needs_teams": needs_teams,
        "held": held,
        "nearest_unit": nearest_unit,
    }
    with prefilter_from(threshold):
        got = rank(index, MODELS[model_name], *SEAT, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert_same(got, reference(index, *SEAT, **kwargs))  # type: ignore[arg-type]


def crowd_index(seed: int, n: int, radius_m: float) -> LiveIndex:
    """``n`` volunteers within ``radius_m`` of the seat (some in groups at one spot, some
    without a fix, stale, busy or off duty)."""
    rng = np.random.default_rng(seed)
    index = LiveIndex(capacity=n)
    ids = [f"c{i:05d}" for i in rng.permutation(n).tolist()]  # ids not in slot order
    slots = index.add_many(
        ids,
        mode=rng.integers(0, len(Mode), n),
        roles=rng.integers(0, 64, n),
        teams=rng.integers(0, 64, n),
        unit=rng.integers(-1, 4, n),
        status=rng.choice([Status.AVAILABLE] * 8 + [Status.BUSY, Status.OFF_DUTY], n),
        situation=rng.integers(0, 4, n),
    )
    lon, lat, _ = GEOD.fwd(
        np.full(n, SEAT[1]),
        np.full(n, SEAT[0]),
        rng.uniform(-180.0, 180.0, n),
        radius_m * np.sqrt(rng.uniform(0.0, 1.0, n)),
    )
    lat, lon = np.asarray(lat), np.asarray(lon)
    spot = rng.integers(0, n, n // 5)  # a fifth stand exactly where someone else stands
    lat[: n // 5] = lat[spot]
    lon[: n // 5] = lon[spot]
    ts = NOW - rng.uniform(0.0, 400.0, n)
    fixed = rng.uniform(0.0, 1.0, n) < 0.97
    index.update_batch(slots[fixed], lat[fixed], lon[fixed], ts[fixed], NOW)
    return index


@pytest.mark.parametrize("cut_now", [None, 0], ids=["as-tuned", "cut-at-once"])
@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rank_equals_the_reference_in_a_crowd(
    model_name: str, seed: int, cut_now: int | None
) -> None:
    """Thousands of candidates: the pre-filter and the cut disk are on by themselves, and (for
    a model that knows each mode's reach) each mode's own cells."""
    index = crowd_index(seed, 6_000, 2_500.0)
    rng = np.random.default_rng(seed + 100)
    held = rng.uniform(0.0, 1.0, len(index)) < 0.05
    for max_eta_s, unit in ((300.0, 2), (180.0, -1), (600.0, 0)):
        for bearing in (seed * 29.0 + (cut_now == 0) * 90.0, seed * 29.0 + 135.0):
            lon, lat, _ = GEOD.fwd(SEAT[1], SEAT[0], bearing, 700.0)
            kwargs = {
                "max_eta_s": max_eta_s,
                "needs_roles": 5,
                "needs_teams": 2,
                "held": held,
                "nearest_unit": unit,
            }
            expected = reference(index, lat, lon, **kwargs)  # type: ignore[arg-type]
            for _ in range(2):  # the whole disk the first time, the cut disk the second
                with prefilter_from(None, cut_now):
                    got = rank(index, MODELS[model_name], lat, lon, now=NOW, **kwargs)  # type: ignore[arg-type]
                assert len(got) > 100
                assert_same(got, expected)


def test_rank_slots_over_any_superset_equals_rank() -> None:
    index = crowd_index(4, 3_000, 4_000.0)
    held = np.zeros(len(index), dtype=np.bool_)
    everyone = np.arange(len(index))
    for model in MODELS.values():
        expected = rank(index, model, *SEAT, now=NOW, held=held, nearest_unit=1)
        got = rank_slots(index, model, everyone, *SEAT, now=NOW, held=held, nearest_unit=1)
        assert_same(got, expected)
        shuffled = np.random.default_rng(0).permutation(everyone)
        assert_same(
            rank_slots(index, model, shuffled, *SEAT, now=NOW, held=held),
            rank(index, model, *SEAT, now=NOW, held=held),
        )
    assert len(rank_slots(index, PLAIN, np.empty(0, dtype=np.intp), *SEAT, now=NOW)) == 0
    with pytest.raises(IndexError):
        rank_slots(index, PLAIN, np.array([len(index)]), *SEAT, now=NOW)
    with pytest.raises(IndexError):
        rank_slots(index, PLAIN, np.array([-1]), *SEAT, now=NOW)


def test_equal_etas_go_to_the_nearest_unit_then_the_id_and_no_unit_is_not_a_unit() -> None:
    index = LiveIndex()
    for volunteer_id, unit in (("d", -1), ("b", 3), ("a", -1), ("c", 3), ("e", 0)):
        place(index, volunteer_id, 100.0, unit=unit)
    by_unit = rank(index, PLAIN, *SEAT, now=NOW, nearest_unit=3)
    assert [index.ids[s] for s in by_unit.slots] == ["b", "c", "a", "d", "e"]
    no_unit = rank(index, PLAIN, *SEAT, now=NOW, nearest_unit=-1)
    assert [index.ids[s] for s in no_unit.slots] == ["a", "b", "c", "d", "e"]


@contextmanager
def packed_from(threshold: int | None) -> Iterator[None]:
    """Within: the order is a sort of packed keys from ``threshold`` candidates (``None``: as
    tuned, so never for the few of these tests; 0: always)."""
    saved = ranking._PACKED_MIN
    if threshold is not None:
        ranking._PACKED_MIN = threshold  # type: ignore[misc]
    try:
        yield
    finally:
        ranking._PACKED_MIN = saved  # type: ignore[misc]


@pytest.mark.parametrize("packed", [None, 0], ids=["float-key", "packed"])
def test_order_sorts_etas_within_a_whisker_exactly(packed: int | None) -> None:
    """ETAs closer than the key's resolution still come out in ETA order."""
    eta = np.array([100.0, np.nextafter(100.0, 200.0), 100.0, np.nextafter(100.0, 0.0)])
    eta = np.concatenate((eta, eta * (1 + 1e-10), [0.0, -0.0]))
    position = np.searchsorted(ranking.RING_LIMITS_S, eta)
    skilled = np.zeros(len(eta), dtype=np.bool_)
    index = LiveIndex()
    for i in range(len(eta)):
        index.add(f"v{len(eta) - 1 - i}", mode=Mode.WALK)
    with packed_from(packed):
        order = ranking._order(position, skilled, eta, np.arange(len(eta)), index, -1)
    # equal ETAs by id: 0.0 and -0.0 (v0, v1), then 100.0 (v7 in slot 2, v9 in slot 0)
    assert order[:2].tolist() == [9, 8]
    assert order[2:6].tolist() == [3, 2, 0, 1]
    assert order[6:].tolist() == [7, 6, 4, 5]


@settings(max_examples=200, deadline=None)
@given(
    etas=st.lists(
        st.sampled_from([0.0, -0.0, 59.5, 60.0, 180.0, 299.999, 300.0, 1e9, -3.0, 1e308])
        | st.floats(-1e6, 1e12),
        min_size=1,
        max_size=30,
    ),
    skilled_bits=st.integers(0, 2**30),
    units=st.lists(st.integers(-1, 2), min_size=30, max_size=30),
    nearest_unit=st.integers(-1, 2),
)
@pytest.mark.parametrize("packed", [None, 0], ids=["float-key", "packed"])
def test_order_equals_lexsort_for_any_etas(
    packed: int | None, etas: list[float], skilled_bits: int, units: list[int], nearest_unit: int
) -> None:
    """Whatever the times (a model's, a widened horizon's, even negative ones)."""
    n = len(etas)
    eta = np.array(etas)
    skilled = np.array([(skilled_bits >> i) & 1 == 1 for i in range(n)])
    index = LiveIndex()
    for i in range(n):
        index.add(f"v{(7 * i) % n:02d}-{i}", mode=Mode.WALK, unit=units[i])
    slots = np.arange(n)
    position = np.searchsorted(ranking.RING_LIMITS_S, eta)
    ids = np.array(index.ids)
    home = index.unit == nearest_unit if nearest_unit >= 0 else np.zeros(n, dtype=np.bool_)
    expected = np.lexsort((ids, ~home, eta, ~skilled, position))
    with packed_from(packed):
        got = ranking._order(position, skilled, eta, slots, index, nearest_unit)
    assert got.tolist() == expected.tolist()


# --------------------------------------------------------------------------- the reach bound


def beyond(lat0: float, lon0: float, lat: float, lon: float, reach: float) -> bool:
    """Farther than ``reach`` by every distance the engine may use."""
    d_haversine = float(haversine_m(lat, lon, lat0, lon0))
    d_h3 = float(h3.great_circle_distance((lat0, lon0), (lat, lon), unit="m"))
    d_geodesic = float(WGS84.inv(lon0, lat0, lon, lat)[2])
    return min(d_haversine, d_h3, d_geodesic) > reach


@settings(max_examples=400, deadline=None)
@given(
    lat0=st.floats(-89.0, 89.0),
    lon0=st.floats(-180.0, 180.0),
    reach=st.floats(0.0, 200_000.0),
    dlat=st.floats(-2.0, 2.0),
    dlon=st.floats(-4.0, 4.0),
    scale=st.sampled_from([1e-4, 1e-2, 1.0]),
)
def test_the_planar_bound_drops_only_points_out_of_reach(
    lat0: float, lon0: float, reach: float, dlat: float, dlon: float, scale: float
) -> None:
    lat = min(90.0, max(-90.0, lat0 + dlat * scale))
    lon = (lon0 + dlon * scale + 180.0) % 360.0 - 180.0
    modes = (reach * 0.1, reach * 0.5, reach)
    bound = ranking._reach_bound(lat0, lon0, reach, modes)
    assume(bound is not None)
    assert bound is not None
    q = (lat - lat0) ** 2 + bound.k * (lon - lon0) ** 2
    if q > bound.limit:
        assert beyond(lat0, lon0, lat, lon, reach)
    assert bound.by_mode is not None
    for limit, r in zip(bound.by_mode.tolist(), modes, strict=True):
        if q > limit:
            assert beyond(lat0, lon0, lat, lon, r)


@settings(max_examples=300, deadline=None)
@given(
    lat0=st.floats(-85.0, 85.0),
    lon0=st.floats(-180.0, 180.0),
    reach=st.floats(1.0, 50_000.0),
    bearing=st.floats(-180.0, 180.0),
    share=st.floats(0.0, 1.0),
)
def test_the_planar_bound_keeps_every_point_in_reach(
    lat0: float, lon0: float, reach: float, bearing: float, share: float
) -> None:
    lon, lat, _ = WGS84.fwd(lon0, lat0, bearing, reach * share)
    bound = ranking._reach_bound(lat0, lon0, reach)
    if bound is None:
        return
    if float(haversine_m(lat, lon, lat0, lon0)) <= reach:
        assert (lat - lat0) ** 2 + bound.k * (lon - lon0) ** 2 <= bound.limit


def test_the_bound_declines_where_it_is_not_proved() -> None:
    assert ranking._reach_bound(37.0, 179.5, 3_000.0) is None  # antimeridian
    assert ranking._reach_bound(88.9, 10.0, 3_000.0) is None  # pole
    assert ranking._reach_bound(37.0, 116.0, 200_000.0) is None  # very long reach
    assert ranking._reach_bound(37.0, 116.0, 3_000.0) is not None


def cells_in_reach(
    lat: float, lon: float, reach: float, *, now: bool = False
) -> tuple[npt.NDArray[np.uint64], bool]:
    """The cells ranking visits for one reach at H3 res 8, and whether it cut the disk."""
    (cells,), cut = ranking._cells_in_reach(8, lat, lon, (reach,), now=now)
    return cells, cut


@settings(max_examples=100, deadline=None)
@given(
    lat0=st.floats(-70.0, 70.0),
    lon0=st.floats(-179.0, 179.0),
    reach=st.floats(0.0, 8_000.0),
    bearing=st.floats(-180.0, 180.0),
    share=st.floats(0.0, 1.0),
)
def test_the_cut_disk_keeps_every_cell_with_a_point_in_reach(
    lat0: float, lon0: float, reach: float, bearing: float, share: float
) -> None:
    lon, lat, _ = WGS84.fwd(lon0, lat0, bearing, reach * share)
    if float(haversine_m(lat, lon, lat0, lon0)) > reach:
        return
    first = set(cells_in_reach(lat0, lon0, reach)[0].tolist())
    cells, cut = cells_in_reach(lat0, lon0, reach)  # cut from now on
    kept = set(cells.tolist())
    assert cut
    assert kept <= first
    assert cell_of(lat, lon, 8) in kept
    centre = cell_of(lat0, lon0, 8)
    assert kept <= set(grid_disk(centre, disk_k_for_radius(centre, reach)).tolist())


@settings(max_examples=100, deadline=None)
@given(
    lat0=st.floats(-70.0, 70.0),
    lon0=st.floats(-179.0, 179.0),
    reaches=st.lists(st.floats(0.0, 6_000.0), min_size=1, max_size=4),
    bearing=st.floats(-180.0, 180.0),
    share=st.floats(0.0, 1.0),
)
def test_each_modes_cells_keep_every_cell_with_a_point_in_its_reach(
    lat0: float, lon0: float, reaches: list[float], bearing: float, share: float
) -> None:
    per_mode, cut = ranking._cells_in_reach(8, lat0, lon0, tuple(reaches), now=True)
    assert cut
    assert len(per_mode) == len(reaches)
    centre = cell_of(lat0, lon0, 8)
    disk = set(grid_disk(centre, disk_k_for_radius(centre, max(reaches))).tolist())
    for reach, cells in zip(reaches, per_mode, strict=True):
        kept = set(cells.tolist())
        assert kept <= disk
        lon, lat, _ = WGS84.fwd(lon0, lat0, bearing, reach * share)
        if float(haversine_m(lat, lon, lat0, lon0)) <= reach:
            assert cell_of(lat, lon, 8) in kept


def test_each_modes_cells_shrink_with_its_reach() -> None:
    (walk, car), cut = ranking._cells_in_reach(8, *SEAT, (530.0, 2_900.0), now=True)
    assert cut
    assert 0 < len(walk) < len(car) / 5
    (first_walk, first_car), cut = ranking._cells_in_reach(8, 38.9, 115.4, (530.0, 2_900.0))
    assert not cut  # a first visit: each reach's whole disk
    for cells, reach in ((first_walk, 530.0), (first_car, 2_900.0)):
        centre = cell_of(38.9, 115.4)
        np.testing.assert_array_equal(cells, grid_disk(centre, disk_k_for_radius(centre, reach)))


def test_the_cut_disk_drops_the_far_cells() -> None:
    reach = PLAIN.max_reach_m(300.0)
    centre = cell_of(*SEAT)
    disk = grid_disk(centre, disk_k_for_radius(centre, reach))
    lon, lat, _ = GEOD.fwd(SEAT[1], SEAT[0], 30.0, 3_333.0)  # a cell not asked about yet
    first, cut = cells_in_reach(lat, lon, reach)
    assert not cut
    here = cell_of(lat, lon)
    np.testing.assert_array_equal(first, grid_disk(here, disk_k_for_radius(here, reach)))
    kept, cut = cells_in_reach(lat, lon, reach)
    assert cut
    assert 0.4 * len(first) < len(kept) < 0.8 * len(first)
    assert 0.4 * len(disk) < len(cells_in_reach(*SEAT, reach)[0]) <= len(disk)
    lon, lat, _ = GEOD.fwd(SEAT[1], SEAT[0], 200.0, 4_444.0)  # another new cell, cut at once
    now, cut = cells_in_reach(lat, lon, reach, now=True)
    assert cut
    assert len(now) < 0.8 * len(disk)


def test_a_disk_gets_its_centres_when_asked_for_again() -> None:
    cell = cell_of(38.5, 117.25)
    assert disk_with_centres_on_reuse(cell, 5) is None
    again = disk_with_centres_on_reuse(cell, 5)
    assert again is not None
    assert again is disk_with_centres(cell, 5)
    assert disk_with_centres_on_reuse(cell, 6) is None  # another k, another disk


# --------------------------------------------------------------------------- cells


@pytest.mark.parametrize(
    ("lat", "lon", "k"),
    [(*SEAT, 7), (60.0, 30.0, 13), (-33.9, 18.4, 4), (0.0, -75.0, 7), (37.3, 115.9, 0)],
)
def test_disk_with_centres_bounds_every_cell(lat: float, lon: float, k: int) -> None:
    centre = cell_of(lat, lon)
    disk = disk_with_centres(centre, k)
    np.testing.assert_array_equal(disk.cells, grid_disk(centre, k))
    assert not disk.cells.flags.writeable
    assert not disk.lat.flags.writeable
    for cell, c_lat, c_lon in zip(
        disk.cells.tolist(), disk.lat.tolist(), disk.lon.tolist(), strict=True
    ):
        assert h3b.cell_to_latlng(cell) == (c_lat, c_lon)
        for vertex in h3b.cell_to_boundary(cell):
            assert h3.great_circle_distance((c_lat, c_lon), vertex, unit="m") <= disk.cell_radius_m


def test_a_disk_with_a_pentagon_is_never_cut() -> None:
    pentagon = next(c for c in h3b.get_pentagons(8))
    disk = disk_with_centres(pentagon, disk_k_for_radius(pentagon, 1_000.0))
    assert disk.cell_radius_m == math.inf
    lat, lon = h3b.cell_to_latlng(pentagon)
    kept, _ = cells_in_reach(lat, lon, 1_000.0, now=True)
    np.testing.assert_array_equal(np.sort(kept), np.sort(disk.cells))
    (walk, car), _ = ranking._cells_in_reach(8, lat, lon, (500.0, 1_000.0), now=True)
    np.testing.assert_array_equal(walk, grid_disk(pentagon, disk_k_for_radius(pentagon, 500.0)))
    np.testing.assert_array_equal(car, grid_disk(pentagon, disk_k_for_radius(pentagon, 1_000.0)))


def test_grid_disk_is_cached_but_each_caller_gets_its_own_copy() -> None:
    centre = cell_of(*SEAT)
    first = grid_disk(centre, 3)
    first[:] = 0
    second = grid_disk(centre, 3)
    assert second.flags.writeable
    assert (second != 0).all()
    assert len(second) == 37
    assert second[0] == centre or centre in second.tolist()


def test_disk_k_for_radius_still_rejects_bad_radii() -> None:
    centre = cell_of(*SEAT)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="radius_m"):
            disk_k_for_radius(centre, bad)
    assert disk_k_for_radius(centre, 2_884.6) == disk_k_for_radius(centre, 2_884.6)


def test_slots_in_cells_skips_unknown_and_emptied_cells() -> None:
    index = LiveIndex()
    slot = place(index, "v", 10.0)
    here = cell_of(*SEAT)
    elsewhere = cell_of(0.0, 0.0)
    assert index.slots_in_cells([elsewhere]).dtype == np.intp
    assert index.slots_in_cells([elsewhere]).size == 0
    assert index.slots_in_cells([here, elsewhere]).tolist() == [slot]
    lon, lat, _ = GEOD.fwd(SEAT[1], SEAT[0], 0.0, 5_000.0)
    index.update(slot, float(lat), float(lon), NOW + 1, NOW + 1)  # its old bucket empties
    assert index.slots_in_cells([here]).size == 0


@settings(max_examples=100, deadline=None)
@given(
    eta=st.lists(
        st.one_of(
            st.floats(0.0, 4_000.0), st.sampled_from([*ranking.RING_LIMITS_S.tolist(), math.inf])
        ),
        min_size=1,
        max_size=50,
    )
)
def test_ring_positions_equal_a_binary_search(eta: list[float]) -> None:
    """Few ETAs or many (by comparisons), the rings are searchsorted's, at the limits too."""
    few = np.array(eta, dtype=np.float64)
    many = np.resize(few, ranking._COMPARE_RINGS_MIN + len(few))
    for values in (few, many):
        expected = np.searchsorted(ranking.RING_LIMITS_S, values, side="left")
        got = ranking._ring_positions(values)
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == expected.dtype
