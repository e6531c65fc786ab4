"""Static coverage against a brute-force computation on small synthetic cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from dispatch.core.policy import RINGS_S
from dispatch.errors import InvalidInput
from geo.modes import Mode
from geo.travel import CrowFlyModel, Situation, Turnout
from simulations.coverage import (
    Demand,
    Positions,
    coverage_by_hour,
    coverage_counts,
    coverage_from_index,
    coverage_report,
)
from simulations.keyed import id_keys
from simulations.population import ALL_DAYS, SimVolunteers
from tests.strategies import NOW, SEAT
from units.index import LiveIndex
from units.vocab import Status

_M = 111_194.93


def scatter(rng: np.random.Generator, n: int, spread_m: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points around the county seat, uniform in a square of side ``2 spread_m``."""
    dx, dy = rng.uniform(-spread_m, spread_m, (2, n))
    lat = SEAT[0] + dy / _M
    lon = SEAT[1] + dx / (_M * math.cos(math.radians(SEAT[0])))
    return lat, lon


def demand_of(rng: np.random.Generator, n: int, townships: int = 2) -> Demand:
    lat, lon = scatter(rng, n, 3_000)
    return Demand(
        ids=tuple(f"d{i}" for i in range(n)),
        names=tuple(f"village {i}" for i in range(n)),
        lat=lat,
        lon=lon,
        population=rng.integers(100, 2000, n),
        township=rng.integers(0, townships, n),
        township_names=tuple(f"镇{t}" for t in range(townships)),
        township_labels=tuple(f"town{t}" for t in range(townships)),
    )


def positions_of(rng: np.random.Generator, n: int) -> Positions:
    lat, lon = scatter(rng, n, 4_000)
    return Positions(
        lat=lat,
        lon=lon,
        mode=rng.integers(0, len(Mode), n).astype(np.uint8),
        situation=rng.choice([0, 1, 3], n).astype(np.uint8),
        acceptance=rng.uniform(0.0, 1.0, n),
    )


def brute(
    demand: Demand, pos: Positions, model: CrowFlyModel
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Counts and P(someone accepts) per (point, ring), one volunteer at a time."""
    counts = np.zeros((len(demand), 3), dtype=np.int64)
    p_any = np.zeros((len(demand), 3))
    for j in range(len(demand)):
        for r, limit in enumerate(RINGS_S):
            none_accepts = 1.0
            for i in range(len(pos)):
                situations = None if pos.situation is None else pos.situation[i : i + 1]
                t = model.seconds_to(
                    pos.lat[i : i + 1],
                    pos.lon[i : i + 1],
                    pos.mode[i : i + 1],
                    float(demand.lat[j]),
                    float(demand.lon[j]),
                    situations=situations,
                )[0]
                if t <= limit:
                    counts[j, r] += 1
                    assert pos.acceptance is not None
                    none_accepts *= 1.0 - pos.acceptance[i]
            p_any[j, r] = 1.0 - none_accepts
    return counts, p_any


@pytest.mark.parametrize("seed", range(6))
def test_coverage_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    demand = demand_of(rng, 12)
    pos = positions_of(rng, 40)
    model = CrowFlyModel()
    rep = coverage_report(demand, pos, model)
    counts, p_any = brute(demand, pos, model)
    np.testing.assert_array_equal(rep.counts, counts)
    assert rep.p_any is not None
    np.testing.assert_allclose(rep.p_any, p_any, atol=1e-9)
    # the old entry point (used by ``dispatch summary``) gives the same counts
    old = coverage_counts(
        demand.lat, demand.lon, pos.lat, pos.lon, pos.mode, model, situations=pos.situation
    )
    np.testing.assert_array_equal(old.counts, counts)


@pytest.mark.parametrize("seed", range(3))
def test_coverage_table_equals_brute_force_shares(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    demand = demand_of(rng, 15, townships=3)
    pos = positions_of(rng, 30)
    rep = coverage_report(demand, pos, CrowFlyModel(turnout=Turnout.none()))
    rows = {(r.area, r.k, r.ring_min): r for r in rep.rows()}
    for k in (1, 2, 3):
        for j, ring in enumerate((1, 3, 5)):
            covered = rep.counts[:, j] >= k
            for t in range(3):
                mask = demand.township == t
                row = rows[(f"镇{t}", k, ring)]
                assert row.population == int(demand.population[mask & covered].sum())
                assert row.villages == int((mask & covered).sum())
                assert row.villages_total == int(mask.sum())
            county = rows[("county", k, ring)]
            assert county.population_share == pytest.approx(
                demand.population[covered].sum() / demand.population.sum()
            )
    # wider rings and lower k never cover less
    for area in ["county", "镇0"]:
        for k in (1, 2, 3):
            shares = [rows[(area, k, ring)].population_share for ring in (1, 3, 5)]
            assert shares == sorted(shares)
        for ring in (1, 3, 5):
            shares = [rows[(area, k, ring)].population_share for k in (1, 2, 3)]
            assert shares == sorted(shares, reverse=True)
    accept = {(a.area, a.ring_min): a for a in rep.acceptance_rows()}
    assert rep.p_any is not None
    p = rep.p_any[:, 0]
    expected = float(p @ demand.population) / float(demand.population.sum())
    assert accept[("county", 1)].expected_share == pytest.approx(expected)


def test_best_ring_and_edge_cases() -> None:
    rng = np.random.default_rng(7)
    demand = demand_of(rng, 5)
    nobody = Positions(lat=np.empty(0), lon=np.empty(0), mode=np.empty(0, np.uint8))
    rep = coverage_report(demand, nobody, CrowFlyModel())
    assert (rep.best_ring() == 0).all()
    assert rep.p_any is None
    assert rep.acceptance_rows() == []
    # someone standing on the first village: ring 1 there
    here = Positions(
        lat=demand.lat[:1].copy(), lon=demand.lon[:1].copy(), mode=np.array([Mode.WALK], np.uint8)
    )
    rep = coverage_report(demand, here, CrowFlyModel(), acceptance=1.0)
    assert rep.best_ring()[0] == 1
    assert rep.p_any is not None
    assert rep.p_any[0, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="acceptance"):
        coverage_report(demand, here, CrowFlyModel(), acceptance=1.5)
    with pytest.raises(ValueError, match="increasing"):
        coverage_report(demand, here, CrowFlyModel(), rings_s=(60, 30, 300))


def test_live_index_positions_are_the_available_fresh_ones() -> None:
    rng = np.random.default_rng(11)
    demand = demand_of(rng, 8)
    lat, lon = scatter(rng, 6, 2_000)
    index = LiveIndex()
    statuses = [Status.AVAILABLE, Status.AVAILABLE, Status.BUSY, Status.OFF_DUTY, 0, 0]
    for i in range(6):
        slot = index.add(
            f"v{i}", mode=Mode.EBIKE, status=Status(statuses[i]), situation=Situation.HOME
        )
        age = 1000.0 if i == 5 else 10.0  # v5's fix is stale
        index.update(slot, float(lat[i]), float(lon[i]), NOW - age, NOW)
    pos = Positions.from_index(index, NOW, acceptance=0.5)
    assert len(pos) == 3  # v0, v1, v4
    assert pos.situation is not None
    assert (pos.situation == Situation.HOME).all()
    rep = coverage_from_index(index, demand, CrowFlyModel(), NOW, acceptance=0.5)
    keep = [0, 1, 4]
    manual = coverage_report(
        demand,
        Positions(
            lat=lat[keep],
            lon=lon[keep],
            mode=np.full(3, Mode.EBIKE, np.uint8),
            situation=np.full(3, Situation.HOME, np.uint8),
        ),
        CrowFlyModel(),
        acceptance=0.5,
    )
    np.testing.assert_array_equal(rep.counts, manual.counts)
    wire = json.loads(json.dumps(rep.to_json()))
    assert wire["volunteers"] == 3
    assert wire["rings_min"] == [1, 3, 5]
    assert len(wire["coverage"]) == 3 * 3 * 3  # (county + 2 townships) x k x rings
    assert wire["acceptance"][0]["area"] == "county"


def test_availability_by_hour_follows_the_duty_patterns() -> None:
    rng = np.random.default_rng(3)
    demand = demand_of(rng, 6)
    lat, lon = scatter(rng, 4, 500)
    ids = tuple(f"v{i}" for i in range(4))
    # v0 on duty 08-09 only, v1 on duty 20-21 only, v2 never, v3 all day
    hours = np.array([1 << 8, 1 << 20, 0, (1 << 24) - 1], dtype=np.uint32)
    vols = SimVolunteers(
        ids=ids,
        home_lat=lat,
        home_lon=lon,
        mode=np.full(4, Mode.CAR, np.uint8),
        roles=np.ones(4, np.uint8),
        teams=np.zeros(4, np.uint8),
        unit=np.full(4, -1, np.int64),
        village=np.full(4, -1, np.int64),
        duty_hours=hours,
        duty_days=np.full(4, ALL_DAYS, np.uint8),
        keys=id_keys(ids),
        new_unit=np.full(4, -1, np.int64),
        posted=np.zeros(4, np.bool_),
    )
    by_hour = dict(coverage_by_hour(demand, vols, CrowFlyModel(), weekday=2, hours=(3, 8, 20)))
    assert [by_hour[h].volunteers for h in (3, 8, 20)] == [1, 2, 2]
    only_v3 = coverage_report(demand, Positions.from_homes(vols, np.array([0, 0, 0, 1], bool)),
                              CrowFlyModel())  # fmt: skip
    np.testing.assert_array_equal(by_hour[3].counts, only_v3.counts)


def test_scenario_file(tmp_path: Path) -> None:
    good = tmp_path / "scenario.csv"
    good.write_text(
        "id,lat,lon,mode,situation,acceptance\n"
        "a,37.3472,115.9651,walk,patrol,0.5\n"
        "b,37.3500,115.9700,car,home,0.2\n",
        encoding="utf-8",
    )
    pos = Positions.from_file(good)
    assert len(pos) == 2
    assert pos.mode.tolist() == [Mode.WALK, Mode.CAR]
    assert pos.situation is not None
    assert pos.situation.tolist() == [0, 1]
    assert pos.acceptance is not None
    assert pos.acceptance.tolist() == [0.5, 0.2]
    bad = tmp_path / "bad.csv"
    bad.write_text("lat,lon,mode\n37.3,115.9,rocket\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"bad.csv:2:"):
        Positions.from_file(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("lat,lon\n37.3,115.9\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="missing column 'mode'"):
        Positions.from_file(missing)
