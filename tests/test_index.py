"""The live position index: fix rules, status, bucket consistency, queries."""

from __future__ import annotations

import math

import h3.api.basic_int as h3b
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from dispatch.errors import CoordinateError, InvalidInput, NotFound
from geo.cells import LIVE_RES
from geo.modes import Mode
from geo.travel import Situation, haversine_m
from units.index import (
    ATTR_ROLES,
    ATTR_SITUATION,
    ATTR_STATUS,
    ATTR_TEAMS,
    FIX_LAT,
    FIX_LON,
    FIX_TS,
    FixOutcome,
    LiveIndex,
    _safe_ellipse,
)
from units.vocab import Role, Status, Team, mask_of

NOW = 1_790_000_000.0  # 2026-09-21, an arbitrary injected "now"
GUCHENG = (37.35, 116.0)  # near the county seat


def brute_cells(index: LiveIndex) -> npt.NDArray[np.uint64]:
    """The cell of every slot recomputed from the lat/lon columns (0 without a fix)."""
    return np.array(
        [
            0 if math.isnan(a) else h3b.latlng_to_cell(a, o, index.res)
            for a, o in zip(index.lat.tolist(), index.lon.tolist(), strict=True)
        ],
        dtype=np.uint64,
    )


def assert_consistent(index: LiveIndex) -> None:
    """Buckets, cell column and positions agree with a brute-force recomputation."""
    expected = brute_cells(index)
    np.testing.assert_array_equal(index.cell, expected)
    have_fix = np.flatnonzero(expected != 0)
    cells = np.unique(expected[have_fix])
    np.testing.assert_array_equal(np.sort(index.bucket_cells()), cells)
    np.testing.assert_array_equal(np.sort(index.slots_in_cells(cells)), have_fix)
    available = index.status == Status.AVAILABLE
    on_duty = np.flatnonzero((expected != 0) & available)
    np.testing.assert_array_equal(np.sort(index.available_in_cells(cells)), on_duty)
    np.testing.assert_array_equal(np.sort(index.available_everywhere()), on_duty)
    assert index.available_buckets == len(
        np.unique(np.column_stack((expected[on_duty], index.mode[on_duty])), axis=0)
    )
    for cell in cells.tolist():
        for mode in (*Mode, None):
            members = index.bucket(cell, available=mode is not None, mode=mode)
            wanted = (expected == cell) & (available if mode is not None else ~available)
            if mode is not None:
                wanted &= index.mode == mode
            np.testing.assert_array_equal(np.sort(members), np.flatnonzero(wanted))
            # the swap-remove bookkeeping: every slot knows its place in its bucket
            np.testing.assert_array_equal(index._bpos[members], np.arange(len(members)))
        np.testing.assert_array_equal(
            np.sort(index.bucket(cell, available=True)),
            np.flatnonzero((expected == cell) & available),
        )
    by_mode, counts = index.available_by_mode([cells] * len(Mode))
    assert counts == [int(((expected != 0) & available & (index.mode == m)).sum()) for m in Mode]
    np.testing.assert_array_equal(
        index.mode[by_mode], np.repeat(np.arange(len(Mode), dtype=np.uint8), counts)
    )
    assert index.slots_in_cells(np.array([h3b.latlng_to_cell(0.0, 0.0, index.res)])).size == 0


def make_index(n: int = 3, **kwargs: float) -> LiveIndex:
    index = LiveIndex(capacity=2, **kwargs)  # type: ignore[arg-type]
    for i in range(n):
        index.add(f"v{i}", mode=Mode.WALK, status=Status.AVAILABLE)
    return index


def state(index: LiveIndex) -> list[npt.NDArray[np.generic]]:
    return [
        index.lat.copy(),
        index.lon.copy(),
        index.fix_ts.copy(),
        index.accuracy_m.copy(),
        index.cell.copy(),
        np.sort(index.bucket_cells()),
    ]


def assert_same_state(a: list[npt.NDArray[np.generic]], b: list[npt.NDArray[np.generic]]) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- fix rules


def test_accepts_a_first_fix_and_buckets_it() -> None:
    index = make_index()
    lat, lon = GUCHENG
    assert index.update(1, lat, lon, NOW - 5, NOW, 8.0) is FixOutcome.ACCEPTED
    assert index.lat[1] == lat
    assert index.lon[1] == lon
    assert index.fix_ts[1] == NOW - 5
    assert index.accuracy_m[1] == 8.0
    assert int(index.cell[1]) == h3b.latlng_to_cell(lat, lon, LIVE_RES)
    assert math.isnan(index.lat[0])
    assert index.cell[0] == 0
    assert_consistent(index)


def test_stale_fix_is_rejected_and_changes_nothing() -> None:
    index = make_index()
    index.update(0, *GUCHENG, NOW - 10, NOW)
    before = state(index)
    assert index.update(0, 37.0, 116.3, NOW - 11, NOW) is FixOutcome.STALE
    assert_same_state(before, state(index))


def test_equal_timestamp_is_accepted_and_the_later_one_wins() -> None:
    index = make_index()
    index.update(0, *GUCHENG, NOW - 10, NOW)
    assert index.update(0, *GUCHENG, NOW - 10, NOW) is FixOutcome.ACCEPTED  # a re-send
    assert index.update(0, 37.0, 116.3, NOW - 10, NOW) is FixOutcome.ACCEPTED
    assert (index.lat[0], index.lon[0]) == (37.0, 116.3)
    assert_consistent(index)


def test_future_fix_beyond_the_tolerance_is_rejected() -> None:
    index = make_index()
    assert index.update(0, *GUCHENG, NOW + 30, NOW) is FixOutcome.ACCEPTED  # at the limit
    assert index.update(1, *GUCHENG, NOW + 30.5, NOW) is FixOutcome.FUTURE
    assert math.isnan(index.fix_ts[1])
    strict = make_index(future_tolerance_s=0.0)
    assert strict.update(0, *GUCHENG, NOW + 0.001, NOW) is FixOutcome.FUTURE


@pytest.mark.parametrize("slot", [-1, 3, 1000])
def test_unknown_slot(slot: int) -> None:
    index = make_index()
    assert index.update(slot, *GUCHENG, NOW, NOW) is FixOutcome.UNKNOWN
    assert index.update_id("nobody", *GUCHENG, NOW, NOW) is FixOutcome.UNKNOWN
    assert index.update_id("v2", *GUCHENG, NOW, NOW) is FixOutcome.ACCEPTED


def test_wire_names() -> None:
    assert [o.wire for o in FixOutcome] == ["accepted", "stale", "future", "unknown_volunteer"]


@pytest.mark.parametrize(
    ("lat", "lon", "field", "words"),
    [
        (math.nan, 116.0, "lat", "NaN"),
        (37.0, math.nan, "lon", "NaN"),
        (math.inf, 116.0, "lat", "infinite"),
        (37.0, -math.inf, "lon", "infinite"),
        (90.5, 116.0, "lat", "out of range"),
        (37.0, 180.01, "lon", "out of range"),
        (None, 116.0, "lat", "missing"),
        ("37", 116.0, "lat", "number"),
        (True, 116.0, "lat", "number"),
    ],
)
def test_invalid_coordinates_raise_and_change_nothing(
    lat: object, lon: object, field: str, words: str
) -> None:
    index = make_index()
    index.update(0, *GUCHENG, NOW - 10, NOW)
    before = state(index)
    with pytest.raises(CoordinateError, match=words) as caught:
        index.update(0, lat, lon, NOW, NOW)  # type: ignore[arg-type]
    assert caught.value.field == field
    # an unknown volunteer with bad coordinates is still a validation error
    with pytest.raises(CoordinateError):
        index.update(-1, lat, lon, NOW, NOW)  # type: ignore[arg-type]
    assert_same_state(before, state(index))


def test_integer_and_numpy_coordinates_are_accepted() -> None:
    index = make_index()
    assert index.update(0, 37, 116, 1_790_000_000, NOW, 5) is FixOutcome.ACCEPTED
    fix = (np.float64(37.1), np.float32(116.1), np.int64(NOW))  # numpy scalars are accepted
    assert index.update(1, *fix, NOW) == 0  # type: ignore[arg-type]
    assert index.lat[0] == 37.0
    assert_consistent(index)


@pytest.mark.parametrize(
    ("ts", "accuracy", "field"),
    [
        (math.nan, 5.0, "ts"),
        (math.inf, 5.0, "ts"),
        ("now", 5.0, "ts"),
        (NOW, -1.0, "accuracy_m"),
        (NOW, math.inf, "accuracy_m"),
        (NOW, "5", "accuracy_m"),
    ],
)
def test_invalid_time_or_accuracy(ts: object, accuracy: object, field: str) -> None:
    index = make_index()
    before = state(index)
    with pytest.raises(InvalidInput) as caught:
        index.update(0, *GUCHENG, ts, NOW, accuracy)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert_same_state(before, state(index))


def test_unknown_accuracy_is_nan() -> None:
    index = make_index()
    index.update(0, *GUCHENG, NOW, NOW, math.nan)
    index.update_batch(np.array([1]), np.array([37.3]), np.array([116.0]), np.array([NOW]), NOW)
    assert np.isnan(index.accuracy_m).all()


# --------------------------------------------------------------------------- batch


def test_batch_outcomes() -> None:
    index = make_index(4)
    index.update(0, *GUCHENG, NOW - 10, NOW)
    out = index.update_batch(
        np.array([0, 1, -1, 2, 9, 3, 3]),
        np.array([37.3, 37.31, 37.32, 37.33, 37.0, 37.5, 37.4]),
        np.array([116.0, 116.01, 116.02, 116.03, 116.0, 116.1, 116.2]),
        np.array([NOW - 20, NOW - 1, NOW, NOW + 31, NOW, NOW - 2, NOW - 3]),
        NOW,
        np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
    )
    assert out.dtype == np.uint8
    assert [FixOutcome(o) for o in out] == [
        FixOutcome.STALE,
        FixOutcome.ACCEPTED,
        FixOutcome.UNKNOWN,
        FixOutcome.FUTURE,
        FixOutcome.UNKNOWN,
        FixOutcome.ACCEPTED,
        FixOutcome.STALE,  # older than slot 3's fix earlier in the same batch
    ]
    assert index.lat[3] == 37.5
    assert index.accuracy_m[1] == 2.0
    assert_consistent(index)


@pytest.mark.parametrize("bad", ["lat", "lon", "ts", "accuracy_m"])
def test_batch_validates_everything_before_applying_anything(bad: str) -> None:
    index = make_index()
    before = state(index)
    arrays = {
        "lat": np.array([37.3, 37.4, 37.5]),
        "lon": np.array([116.0, 116.1, 116.2]),
        "ts": np.array([NOW, NOW, NOW]),
        "accuracy_m": np.array([1.0, 1.0, 1.0]),
    }
    arrays[bad][2] = {"lat": 91.0, "lon": math.nan, "ts": math.inf, "accuracy_m": -3.0}[bad]
    error = CoordinateError if bad in {"lat", "lon"} else InvalidInput
    with pytest.raises(error) as caught:
        index.update_batch(np.array([0, 1, 2]), now=NOW, **arrays)
    assert caught.value.field == f"{bad}[2]"
    assert_same_state(before, state(index))


def test_batch_shape_errors() -> None:
    index = make_index()
    with pytest.raises(ValueError, match="one length"):
        index.update_batch(
            np.array([0, 1]), np.array([37.0]), np.array([116.0]), np.array([NOW]), NOW
        )
    with pytest.raises(ValueError, match="integer"):
        index.update_batch(
            np.array([0.0]), np.array([37.0]), np.array([116.0]), np.array([NOW]), NOW
        )
    empty = np.empty(0)
    assert index.update_batch(np.empty(0, np.intp), empty, empty, empty, NOW).size == 0


# --------------------------------------------------------------------------- freshness, status


def test_old_fix_is_kept_but_not_fresh() -> None:
    index = make_index(3)
    index.update(0, *GUCHENG, NOW - 300, NOW)  # exactly at the limit: fresh
    index.update(1, *GUCHENG, NOW - 300.5, NOW)  # just past it
    slots = index.near(*GUCHENG, 100.0)
    assert sorted(slots.tolist()) == [0, 1]  # both kept in the buckets
    assert index.fresh_available(np.array([0, 1, 2]), NOW).tolist() == [True, False, False]
    snapshot = index.positions()
    assert snapshot.ids == ["v0", "v1"]
    np.testing.assert_array_equal(snapshot.ts, [NOW - 300, NOW - 300.5])
    short = make_index(1, freshness_s=60.0)
    short.update(0, *GUCHENG, NOW - 61, NOW)
    assert not short.fresh_available(np.array([0]), NOW)[0]
    assert short.fresh_available(np.array([0]), NOW - 2)[0]


def test_status_available_off_duty_busy() -> None:
    index = LiveIndex()
    slot = index.add("a", mode=Mode.BIKE)
    assert index.status[slot] == Status.OFF_DUTY  # new volunteers start off duty
    index.update(slot, *GUCHENG, NOW, NOW)
    assert not index.fresh_available(np.array([slot]), NOW)[0]
    index.set_status(slot, Status.AVAILABLE)
    assert index.fresh_available(np.array([slot]), NOW)[0]
    index.set_status(slot, Status.BUSY)  # the dispatch layer: an accepted assignment
    assert index.status[slot] == Status.BUSY
    assert not index.fresh_available(np.array([slot]), NOW)[0]
    index.set_status(slot, Status.AVAILABLE)  # ... and its end: stored as given
    assert index.status[slot] == Status.AVAILABLE
    with pytest.raises(NotFound):
        index.set_status(5, Status.AVAILABLE)
    with pytest.raises(NotFound):
        index.set_status(-1, Status.AVAILABLE)
    with pytest.raises(ValueError, match="Status"):
        index.set_status(slot, 7)  # type: ignore[arg-type]


def test_situation() -> None:
    index = make_index(1)
    assert index.situation[0] == Situation.PATROL
    index.set_situation(0, Situation.NIGHT)
    assert index.situation[0] == Situation.NIGHT
    with pytest.raises(NotFound):
        index.set_situation(1, Situation.HOME)


# --------------------------------------------------------------------------- roster side


def test_add_readd_lookup_and_growth() -> None:
    index = LiveIndex(capacity=1)
    roles = mask_of(Role, ["patrol", "mediator"])
    teams = mask_of(Team, ["rescue"])
    a = index.add("a", mode=Mode.CAR, roles=roles, teams=teams, unit=4, status=Status.AVAILABLE)
    assert (a, len(index), "a" in index, "b" in index, 3 in index) == (0, 1, True, False, False)
    index.update(a, *GUCHENG, NOW, NOW, 3.0)
    index.set_status(a, Status.BUSY)
    for i in range(100):  # grows several times
        index.add(f"x{i}", mode=Mode.WALK)
    assert index.slot("x99") == 100
    again = index.add("a", mode=Mode.EBIKE, roles=0, teams=teams, unit=-1)
    assert again == a
    assert (index.mode[a], index.roles[a], index.teams[a], index.unit[a]) == (Mode.EBIKE, 0, 1, -1)
    assert index.status[a] == Status.BUSY  # re-adding keeps status and position
    assert (index.lat[a], index.lon[a], index.accuracy_m[a]) == (*GUCHENG, 3.0)
    assert index.ids[a] == "a"
    assert len(index.lat) == len(index) == 101
    assert index.slots_of(["x5", "zz", "a"]).tolist() == [6, -1, 0]
    assert_consistent(index)
    with pytest.raises(NotFound, match="zz"):
        index.slot("zz")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": 4}, "mode"),
        ({"mode": Mode.WALK, "roles": 64}, "roles"),
        ({"mode": Mode.WALK, "teams": -1}, "teams"),
        ({"mode": Mode.WALK, "unit": -2}, "unit"),
        ({"mode": Mode.WALK, "status": 3}, "status"),
        ({"mode": Mode.WALK, "situation": 9}, "situation"),
        ({"mode": 1.5}, "integers"),
    ],
)
def test_add_rejects_bad_attributes(kwargs: dict[str, object], match: str) -> None:
    index = make_index(1)
    with pytest.raises(ValueError, match=match):
        index.add("new", **kwargs)  # type: ignore[arg-type]
    assert len(index) == 1
    assert "new" not in index


@pytest.mark.parametrize("bad_id", ["", 7, None])
def test_add_rejects_bad_ids(bad_id: object) -> None:
    index = LiveIndex()
    with pytest.raises(ValueError, match="non-empty string"):
        index.add_many(["ok", bad_id], mode=0)  # type: ignore[list-item]
    assert len(index) == 0


def test_add_many_vectorised() -> None:
    index = LiveIndex(capacity=1)
    slots = index.add_many(
        ["a", "b", "c", "a"],
        mode=np.array([0, 1, 2, 3]),
        roles=1,
        unit=np.array([0, 1, 2, 5]),
        status=np.array([Status.AVAILABLE] * 4),
    )
    assert slots.tolist() == [0, 1, 2, 0]
    assert len(index) == 3
    assert index.mode.tolist() == [3, 1, 2]  # the later entry for "a" wins
    assert index.unit.tolist() == [5, 1, 2]
    assert (index.status == Status.AVAILABLE).all()


def test_column_views_are_read_only() -> None:
    index = make_index(2)
    with pytest.raises(ValueError, match="read-only"):
        index.lat[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        index.status[0] = 0


def test_records_are_the_columns_side_by_side_and_survive_growth() -> None:
    index = LiveIndex(capacity=1)
    for i in range(3):  # grows twice
        index.add(f"v{i}", mode=Mode.BIKE, roles=i + 1, teams=2 * i, status=Status.AVAILABLE)
        index.set_situation(i, Situation.HOME)
        index.update(i, 37.3 + i / 100, 116.0, NOW - i, NOW, accuracy_m=5.0 + i)
    index.set_status(1, Status.BUSY)
    fixes, attributes = index.fixes, index.attributes
    assert fixes.shape == (3, 4)
    assert attributes.shape == (3, 4)
    np.testing.assert_array_equal(fixes[:, FIX_LAT], index.lat)
    np.testing.assert_array_equal(fixes[:, FIX_LON], index.lon)
    np.testing.assert_array_equal(fixes[:, FIX_TS], index.fix_ts)
    np.testing.assert_array_equal(fixes[:, 3], index.accuracy_m)
    np.testing.assert_array_equal(attributes[:, ATTR_STATUS], [0, Status.BUSY, 0])
    np.testing.assert_array_equal(attributes[:, ATTR_SITUATION], [Situation.HOME] * 3)
    np.testing.assert_array_equal(attributes[:, ATTR_ROLES], [1, 2, 3])
    np.testing.assert_array_equal(attributes[:, ATTR_TEAMS], [0, 2, 4])
    words = index.attribute_words
    np.testing.assert_array_equal(words.view(np.uint8).reshape(-1, 4), attributes)
    index.add("v3", mode=Mode.WALK, roles=9)  # a fourth: the word view follows the length
    assert len(index.attribute_words) == 4
    assert index.attribute_words.view(np.uint8).reshape(-1, 4)[3, ATTR_ROLES] == 9
    for record in (index.fixes, index.attributes, index.attribute_words):
        with pytest.raises(ValueError, match="read-only"):
            record[0] = 0


def test_constructor_arguments() -> None:
    for kwargs in (
        {"res": 16},
        {"capacity": 0},
        {"freshness_s": -1.0},
        {"future_tolerance_s": math.nan},
    ):
        with pytest.raises(ValueError):  # noqa: PT011 (the message names the argument)
            LiveIndex(**kwargs)


# --------------------------------------------------------------------------- the safe ellipse


def test_safe_ellipse_is_inside_its_cell_worldwide() -> None:
    """Points on the rim of the safe ellipse (the worst case) stay in the cell."""
    rng = np.random.default_rng(20261129)
    checked = 0
    for res in (7, 8, 9):
        z = rng.uniform(-1.0, 1.0, 700)
        lats = np.degrees(np.arcsin(z))
        lons = rng.uniform(-180.0, 180.0, 700)
        for lat, lon in zip(lats.tolist(), lons.tolist(), strict=True):
            cell = h3b.latlng_to_cell(lat, lon, res)
            clat, clon, a, b, c = _safe_ellipse(cell)
            if math.isnan(a):
                continue
            for angle in rng.uniform(0, 2 * math.pi, 12).tolist():
                dx, dy = math.cos(angle), math.sin(angle)
                r = 0.99999 / math.sqrt(a * dx * dx + b * dx * dy + c * dy * dy)
                plon = (clon + r * dx + 540.0) % 360.0 - 180.0
                assert h3b.latlng_to_cell(clat + r * dy, plon, res) == cell
                checked += 1
    assert checked > 20_000


def test_safe_ellipse_covers_most_of_the_cell() -> None:
    """The fast path's reach: ~87% of a cell (0.98² of the inscribed ellipse's 90.7%)."""
    rng = np.random.default_rng(3)
    cell = h3b.latlng_to_cell(*GUCHENG, LIVE_RES)
    clat, clon, a, b, c = _safe_ellipse(cell)
    vertices = np.array(h3b.cell_to_boundary(cell))
    lat = rng.uniform(vertices[:, 0].min(), vertices[:, 0].max(), 4000)
    lon = rng.uniform(vertices[:, 1].min(), vertices[:, 1].max(), 4000)
    cells = [h3b.latlng_to_cell(y, x, LIVE_RES) for y, x in zip(lat, lon, strict=True)]
    inside = np.array(cells) == cell
    dy, dx = lat - clat, lon - clon
    in_ellipse = a * dx * dx + b * dx * dy + c * dy * dy <= 1.0
    assert not (in_ellipse & ~inside).any()
    assert 0.84 < in_ellipse[inside].mean() < 0.90


def test_ellipse_is_set_once_a_volunteer_stays_and_cleared_when_it_moves() -> None:
    index = make_index(1)
    lat, lon = h3b.cell_to_latlng(h3b.latlng_to_cell(*GUCHENG, LIVE_RES))
    index.update(0, lat, lon, NOW, NOW)
    assert math.isnan(index._ea[0])  # first fix in the cell: no ellipse yet
    index.update(0, lat + 1e-4, lon, NOW, NOW)
    assert not math.isnan(index._ea[0])  # seen again: the fast path is armed
    index.update(0, lat + 0.05, lon, NOW, NOW)
    assert math.isnan(index._ea[0])  # moved on
    batch = make_index(2)
    for _ in range(2):
        batch.update_batch(
            np.array([0, 1]), np.array([lat, 37.0]), np.array([lon, 116.2]), np.full(2, NOW), NOW
        )
    assert not np.isnan(batch._ea[:2]).any()
    assert_consistent(batch)


@pytest.mark.parametrize("path", ["update", "update_batch"])
def test_coming_back_to_the_old_cell_is_seen(path: str) -> None:
    """After a move, the old cell's ellipse must not vouch for the new cell."""
    index = make_index(1)
    home = h3b.cell_to_latlng(h3b.latlng_to_cell(*GUCHENG, LIVE_RES))
    away = (home[0] + 0.03, home[1])
    clock = iter(range(10))

    def fix(point: tuple[float, float]) -> None:
        t = NOW + next(clock)
        if path == "update":
            index.update(0, *point, t, t)
        else:
            index.update_batch(
                np.array([0]), np.array([point[0]]), np.array([point[1]]), np.array([t]), t
            )

    fix(home)
    fix(home)  # the ellipse of the home cell is armed
    fix(away)
    fix(home)
    assert int(index.cell[0]) == h3b.latlng_to_cell(*home, LIVE_RES)
    assert_consistent(index)


def test_arming_is_budgeted_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most _ARM_BUDGET new ellipses per batch call; the others are armed later."""
    monkeypatch.setattr("units.index._ARM_BUDGET", 2)
    n = 6
    index = make_index(n)
    lat = np.linspace(GUCHENG[0], GUCHENG[0] + 0.05, n)  # six volunteers in six cells
    lon = np.full(n, GUCHENG[1])
    for round_ in range(5):
        t = NOW + round_
        assert not index.update_batch(np.arange(n), lat, lon, np.full(n, t), t).any()
        armed = int((~np.isnan(index._ea[:n])).sum())
        assert armed == min(n, 2 * round_)  # the first fix arms nothing
        assert_consistent(index)


def test_pentagons_have_no_ellipse() -> None:
    pentagon = next(iter(h3b.get_pentagons(8)))
    assert math.isnan(_safe_ellipse(pentagon)[2])
    index = make_index(1)
    lat, lon = h3b.cell_to_latlng(pentagon)
    for step in range(3):
        index.update(0, lat + 1e-5 * step, lon, NOW, NOW)
        index.update_batch(
            np.array([0]), np.array([lat]), np.array([lon + 1e-5 * step]), np.full(1, NOW), NOW
        )
    assert_consistent(index)


# --------------------------------------------------------------------------- properties

# Points in a 4 x 4 km patch, so that volunteers share and cross cells often.
lats = st.floats(GUCHENG[0] - 0.02, GUCHENG[0] + 0.02)
lons = st.floats(GUCHENG[1] - 0.025, GUCHENG[1] + 0.025)
times = st.floats(NOW - 400, NOW + 40)


@st.composite
def fix_batches(draw: st.DrawFn, n: int) -> tuple[list[int], list[float], list[float], list[float]]:
    size = draw(st.integers(0, 12))
    slots = draw(st.lists(st.integers(-1, n), min_size=size, max_size=size))
    return (
        slots,
        draw(st.lists(lats, min_size=size, max_size=size)),
        draw(st.lists(lons, min_size=size, max_size=size)),
        draw(st.lists(times, min_size=size, max_size=size)),
    )


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_batch_equals_one_at_a_time(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 5))
    batched, single = make_index(n), make_index(n)
    for _ in range(data.draw(st.integers(1, 4))):
        slots, la, lo, ts = data.draw(fix_batches(n))
        acc = [float(i) for i in range(len(slots))]
        got = batched.update_batch(
            np.array(slots, dtype=np.intp),
            np.array(la),
            np.array(lo),
            np.array(ts),
            NOW,
            np.array(acc),
        )
        expected = [
            single.update(s, a, o, t, NOW, c)
            for s, a, o, t, c in zip(slots, la, lo, ts, acc, strict=True)
        ]
        assert got.tolist() == [int(e) for e in expected]
        assert_same_state(state(batched), state(single))
    assert_consistent(batched)
    assert_consistent(single)


@settings(max_examples=150, deadline=None)
@given(
    points=st.lists(st.tuples(lats, lons), min_size=1, max_size=30),
    centre=st.tuples(lats, lons),
    radius=st.floats(0.0, 3000.0),
)
def test_near_is_a_superset_of_the_haversine_filter(
    points: list[tuple[float, float]], centre: tuple[float, float], radius: float
) -> None:
    index = make_index(len(points))
    la, lo = np.array(points).T
    index.update_batch(np.arange(len(points)), la, lo, np.full(len(points), NOW), NOW)
    within = np.flatnonzero(haversine_m(la, lo, *centre) <= radius)
    found = index.near(*centre, radius)
    assert len(np.unique(found)) == len(found)
    assert set(within.tolist()) <= set(found.tolist())


class IndexMachine(RuleBasedStateMachine):
    """Random adds, moves (small steps and jumps), batches and status changes; after every
    step the buckets equal a brute-force recomputation from the columns."""

    def __init__(self) -> None:
        super().__init__()
        self.index = LiveIndex(capacity=1)
        self.clock = NOW

    @initialize()
    def start(self) -> None:
        self.index.add("first", mode=Mode.WALK)

    @rule(mode=st.sampled_from(Mode), status=st.sampled_from(Status))
    def add(self, mode: Mode, status: Status) -> None:
        self.index.add(f"v{len(self.index)}", mode=mode, status=status)

    @rule(data=st.data())
    def readd(self, data: st.DataObject) -> None:
        slot = data.draw(st.integers(0, len(self.index) - 1))
        before = state(self.index)
        self.index.add(self.index.ids[slot], mode=Mode.CAR, roles=3)
        assert_same_state(before, state(self.index))

    @rule(data=st.data(), lat=lats, lon=lons)
    def jump(self, data: st.DataObject, lat: float, lon: float) -> None:
        slot = data.draw(st.integers(0, len(self.index) - 1))
        self.clock += 1
        assert self.index.update(slot, lat, lon, self.clock, self.clock) is FixOutcome.ACCEPTED

    @precondition(lambda self: not np.isnan(self.index.lat).all())
    @rule(data=st.data(), step=st.tuples(st.floats(-0.004, 0.004), st.floats(-0.004, 0.004)))
    def step(self, data: st.DataObject, step: tuple[float, float]) -> None:
        placed = np.flatnonzero(~np.isnan(self.index.lat))
        slot = int(data.draw(st.sampled_from(placed.tolist())))
        self.clock += 1
        lat = float(self.index.lat[slot]) + step[0]
        lon = float(self.index.lon[slot]) + step[1]
        self.index.update(slot, lat, lon, self.clock, self.clock)

    @rule(data=st.data())
    def batch(self, data: st.DataObject) -> None:
        slots, la, lo, ts = data.draw(fix_batches(len(self.index)))
        self.clock += 1
        offsets = np.array(ts) - NOW + self.clock - 300
        self.index.update_batch(
            np.array(slots, dtype=np.intp), np.array(la), np.array(lo), offsets, self.clock
        )

    @rule(data=st.data(), status=st.sampled_from(Status))
    def status(self, data: st.DataObject, status: Status) -> None:
        self.index.set_status(data.draw(st.integers(0, len(self.index) - 1)), status)

    @rule(data=st.data())
    def readd_many(self, data: st.DataObject) -> None:
        """Several volunteers re-added in one call with new modes and statuses, some listed
        twice: the last ones win, and the buckets follow them."""
        n = len(self.index)
        slots = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=6))
        m = len(slots)
        codes = data.draw(st.lists(st.sampled_from(Status), min_size=m, max_size=m))
        modes = data.draw(st.lists(st.sampled_from(Mode), min_size=m, max_size=m))
        self.index.add_many(
            [self.index.ids[s] for s in slots], mode=np.array(modes), status=np.array(codes)
        )
        last = {slot: (code, mode) for slot, code, mode in zip(slots, codes, modes, strict=True)}
        for slot, (code, mode) in last.items():
            assert (self.index.status[slot], self.index.mode[slot]) == (code, mode)

    @invariant()
    def buckets_match_brute_force(self) -> None:
        assert_consistent(self.index)


TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
