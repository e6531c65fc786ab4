"""Siting: lazy greedy, the exact MILP and brute force on small instances; the county's gap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from dispatch.core.policy import RINGS_S
from geo.dataset.load import DEFAULT_DATASET, load_dataset
from geo.modes import Mode
from geo.travel import CrowFlyModel, Situation
from simulations.coverage import Demand, Positions
from simulations.population import mode_mix, unit_modes
from simulations.siting import (
    SitingInstance,
    brute_force,
    build_instance,
    evaluate,
    greedy,
    solve_exact,
)
from tests.strategies import SEAT


def random_instance(
    seed: int, *, sites: int = 7, villages: int = 9, disjoint: bool = False
) -> SitingInstance:
    """Sites reach villages from some ring on (so reach never shrinks with the ring)."""
    rng = np.random.default_rng(seed)
    rings = 3
    dense = np.zeros((sites, villages * rings), dtype=np.int64)
    owner = rng.integers(0, sites, villages)
    for s in range(sites):
        for j in range(villages):
            if disjoint and owner[j] != s:
                continue
            first = rng.integers(0, rings + 2)  # >= rings: out of reach
            if first >= rings:
                continue
            counts = np.sort(rng.integers(1, 4, rings - first))
            dense[s, j * rings + first : (j + 1) * rings] = counts
    existing = np.zeros(villages * rings, dtype=np.int64)
    lucky = rng.random(villages) < 0.3
    existing.reshape(villages, rings)[lucky, 2] = 1  # some villages already have someone at 5
    return SitingInstance(
        population=rng.integers(100, 1000, villages).astype(np.float64),
        weights=np.array([0.5, 0.3, 0.2]),
        sites=np.arange(sites, dtype=np.int64),
        members=sp.csr_array(dense),
        existing=existing,
    )


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("objective", ["cover", "expected"])
def test_milp_equals_brute_force(seed: int, objective: str) -> None:
    instance = random_instance(seed)
    q = 0.6 if objective == "expected" else 0.0
    for units in (1, 2, 3):
        _best_sites, best = brute_force(instance, units, objective=objective, q=q)  # type: ignore[arg-type]
        exact = solve_exact(instance, units, objective=objective, q=q, truncation=1e-9)  # type: ignore[arg-type]
        assert exact.optimal
        assert exact.objective == pytest.approx(best, rel=1e-9)
        assert exact.bound >= best - 1e-6
        assert exact.gap(exact.objective) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("objective", ["cover", "expected"])
def test_greedy_is_optimal_for_one_unit_and_within_1_minus_1_over_e(
    seed: int, objective: str
) -> None:
    instance = random_instance(100 + seed)
    q = 0.6 if objective == "expected" else 0.0
    _, best1 = brute_force(instance, 1, objective=objective, q=q)  # type: ignore[arg-type]
    assert greedy(instance, 1, objective=objective, q=q).objective == pytest.approx(best1)  # type: ignore[arg-type]
    for units in (2, 3):
        result = greedy(instance, units, objective=objective, q=q)  # type: ignore[arg-type]
        _, best = brute_force(instance, units, objective=objective, q=q)  # type: ignore[arg-type]
        gain, best_gain = result.objective - result.base, best - result.base
        assert gain >= (1 - 1 / math.e) * best_gain - 1e-9
        assert result.objective <= best + 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_greedy_equals_the_optimum_when_sites_do_not_overlap(seed: int) -> None:
    instance = random_instance(200 + seed, disjoint=True)
    for units in (1, 2, 3, 4):
        _, best = brute_force(instance, units)
        assert greedy(instance, units).objective == pytest.approx(best)
        assert solve_exact(instance, units).objective == pytest.approx(best)


def test_the_gap_is_reported_where_greedy_falls_short() -> None:
    # One ring; S0 covers {x1, x2} (22 people), S1 {x0, x1} (21), S2 {x2, x3} (21).
    # Greedy takes S0, then one of the others: 32. The optimum is S1 + S2: 42.
    members = sp.csr_array(np.array([[0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]]))
    instance = SitingInstance(
        population=np.array([10.0, 11.0, 11.0, 10.0]),
        weights=np.array([1.0]),
        sites=np.arange(3, dtype=np.int64),
        members=members,
        existing=np.zeros(4, dtype=np.int64),
        ring_minutes=(1,),
    )
    result = greedy(instance, 2)
    assert result.sites[0] == 0
    assert result.objective == 32.0
    exact = solve_exact(instance, 2)
    assert exact.sites == (1, 2)
    assert exact.objective == 42.0
    assert exact.gap(result.objective) == pytest.approx(10 / 42)


def naive_greedy(instance: SitingInstance, units: int, objective: str, q: float) -> list[float]:
    chosen: list[int] = []
    values = []
    for _ in range(units):
        best = max(
            (s for s in range(instance.n_sites) if s not in chosen),
            key=lambda s: (evaluate(instance, [*chosen, s], objective, q)[0], -s),  # type: ignore[arg-type]
        )
        chosen.append(best)
        values.append(evaluate(instance, chosen, objective, q)[0])  # type: ignore[arg-type]
    return values


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("objective", ["cover", "expected"])
def test_lazy_greedy_equals_plain_greedy(seed: int, objective: str) -> None:
    instance = random_instance(300 + seed, sites=12, villages=15)
    q = 0.5 if objective == "expected" else 0.0
    lazy = greedy(instance, 5, objective=objective, q=q)  # type: ignore[arg-type]
    assert [s.objective for s in lazy.steps] == pytest.approx(
        naive_greedy(instance, 5, objective, q)
    )
    # the table's gains add up, and laziness skipped some evaluations
    assert lazy.base + sum(s.gain for s in lazy.steps) == pytest.approx(lazy.objective)
    assert sum(s.evaluations for s in lazy.steps) < 5 * instance.n_sites
    assert len(set(lazy.sites)) == 5


def test_the_instance_counts_the_members_who_reach_each_village() -> None:
    rng = np.random.default_rng(5)
    m = 111_194.93
    dx, dy = rng.uniform(-2500, 2500, (2, 10))
    lat = SEAT[0] + dy / m
    lon = SEAT[1] + dx / (m * math.cos(math.radians(SEAT[0])))
    demand = Demand(
        ids=tuple(f"d{i}" for i in range(10)),
        names=tuple(f"n{i}" for i in range(10)),
        lat=lat,
        lon=lon,
        population=np.full(10, 100),
        township=np.zeros(10, dtype=np.int64),
        township_names=("t",),
        township_labels=("t",),
    )
    modes = [Mode.WALK, Mode.EBIKE, Mode.EBIKE, Mode.CAR]
    model = CrowFlyModel()
    instance = build_instance(demand, model, modes, existing=None, situation=Situation.HOME)
    dense = instance.members.toarray().reshape(10, 10, 3)
    for s in range(10):
        for j in range(10):
            t = model.seconds_to(
                np.full(4, lat[s]), np.full(4, lon[s]), np.array(modes, dtype=np.uint8),
                float(lat[j]), float(lon[j]), situations=np.full(4, Situation.HOME, np.uint8),
            )  # fmt: skip
            for r, limit in enumerate(RINGS_S):
                assert dense[s, j, r] == int((t <= limit).sum())
    assert (instance.existing == 0).all()


def test_county_twenty_units_greedy_and_its_gap() -> None:
    ds = load_dataset(DEFAULT_DATASET)
    demand = Demand.from_dataset(ds)
    modes = unit_modes(int(np.median(ds.units.members)), mode_mix(ds))
    instance = build_instance(demand, CrowFlyModel(), modes, existing=Positions.from_units(ds))
    assert instance.n_sites == 551
    result = greedy(instance, 20)
    assert result.seconds < 10.0
    objectives = [s.objective for s in result.steps]
    assert objectives == sorted(objectives)
    gains = [s.gain for s in result.steps]
    assert gains == sorted(gains, reverse=True), "submodular: gains never grow"
    exact = solve_exact(instance, 20)
    gap = exact.gap(result.objective)
    assert 0.0 <= gap < 0.05
    assert exact.objective >= result.objective - 1e-6
    expected = greedy(instance, 20, objective="expected", q=0.713)
    assert expected.base <= result.base  # expected coverage never beats certain coverage
    assert expected.objective > expected.base
