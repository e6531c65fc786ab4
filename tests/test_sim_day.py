"""The day simulation drives the real dispatch core: response times, CRN, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dispatch.core.policy import DEFAULT_POLICY_PATH, RINGS_S, Policy, load_policy
from dispatch.core.ranking import rank
from geo.dataset.load import DEFAULT_DATASET, load_dataset
from geo.modes import Mode
from geo.travel import CrowFlyModel, Situation, Turnout
from simulations.coverage import Demand
from simulations.day import (
    T0_MONDAY,
    DaySimulation,
    ReplicationResult,
    incident_stream,
    run_replications,
)
from simulations.keyed import id_keys
from simulations.params import DayParams
from simulations.population import ALL_DAYS, ALL_HOURS, SimVolunteers, new_units
from simulations.stats import compare, estimate, metrics, summarise
from tests.strategies import SEAT
from units.index import LiveIndex
from units.vocab import Status

_M = 111_194.93
_COS = math.cos(math.radians(SEAT[0]))


def offset(dx_m: np.ndarray, dy_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return SEAT[0] + dy_m / _M, SEAT[1] + dx_m / (_M * _COS)


def small_demand() -> Demand:
    lat, lon = offset(np.array([0.0, 800.0, -700.0, 300.0]), np.array([0.0, 400.0, 500.0, -800.0]))
    return Demand(
        ids=("d0", "d1", "d2", "d3"),
        names=("甲村", "乙村", "丙村", "丁村"),
        lat=lat,
        lon=lon,
        population=np.array([1000, 600, 400, 800]),
        township=np.array([0, 0, 1, 1]),
        township_names=("甲镇", "乙镇"),
        township_labels=("Jia", "Yi"),
    )


def roster(
    n: int,
    *,
    seed: int = 1,
    spread_m: float = 1_500.0,
    duty_hours: int = ALL_HOURS,
    prefix: str = "v",
    north_m: float = 0.0,
) -> SimVolunteers:
    rng = np.random.default_rng(seed)
    dx, dy = rng.uniform(-spread_m, spread_m, (2, n))
    lat, lon = offset(dx, dy + north_m)
    ids = tuple(f"{prefix}{i:03d}" for i in range(n))
    return SimVolunteers(
        ids=ids,
        home_lat=lat,
        home_lon=lon,
        mode=rng.choice([Mode.EBIKE, Mode.CAR], n).astype(np.uint8),
        roles=np.ones(n, np.uint8),
        teams=np.zeros(n, np.uint8),
        unit=np.full(n, -1, np.int64),
        village=np.full(n, -1, np.int64),
        duty_hours=np.full(n, duty_hours, np.uint32),
        duty_days=np.full(n, ALL_DAYS, np.uint8),
        keys=id_keys(ids),
        new_unit=np.full(n, -1, np.int64),
        posted=np.zeros(n, np.bool_),
    )


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(DEFAULT_POLICY_PATH)


def simulate(
    vols: SimVolunteers, params: DayParams, policy: Policy, replication: int = 0
) -> ReplicationResult:
    model = CrowFlyModel(turnout=Turnout(params.turnout_by_situation()))
    return DaySimulation(small_demand(), vols, policy, model, params).run(replication)


def deterministic(**changes: object) -> DayParams:
    """Acceptance 1, instant answers, exact turnout, everyone at home on duty."""
    base = {
        "days": 2,
        "replications": 1,
        "incidents_per_day": 12.0,
        "acceptance_mean": 1.0,
        "answer_delay_median_s": 0.0,
        "answer_delay_sigma": 0.0,
        "turnout_sigma": 0.0,
        "patrol_share": 1.0,
        "patrol_offset_m": 0.0,
        "incident_jitter_m": 0.0,
        "type_mix": {"medical": 1.0},  # anyone will do: the ranking is by ETA
        "severity_mix": [0.0, 0.5, 0.5],
        "service_median_s": 900.0,  # longer than any arrival: nobody is stood down
        "service_sigma": 0.0,
    }
    base.update(changes)
    return DayParams.from_mapping(base)


@pytest.mark.parametrize("patrol_share", [1.0, 0.0])
def test_with_acceptance_one_and_nobody_busy_response_times_are_the_rankings_etas(
    policy: Policy, patrol_share: float
) -> None:
    params = deterministic(patrol_share=patrol_share)
    vols = roster(40)
    result = simulate(vols, params, policy)
    inc = result.incidents
    assert len(inc) > 10
    model = CrowFlyModel(turnout=Turnout(params.turnout_by_situation()))
    demand = small_demand()
    checked = 0
    busy_until = -math.inf
    for i in range(len(inc)):
        created = float(inc.created_s[i])
        overlaps = created < busy_until
        busy_until = max(busy_until, created + float(inc.closed_s[i]))
        if overlaps:
            continue  # someone may still be busy with the previous incident
        # the index as the core saw it: everyone available at home, in the shift's situation
        hour = int(inc.hour[i])
        if patrol_share == 1.0:
            situation = Situation.PATROL
        else:
            situation = Situation.NIGHT if params.is_night(hour) else Situation.HOME
        index = LiveIndex()
        now = T0_MONDAY + created
        for v in range(len(vols)):
            slot = index.add(
                vols.ids[v], mode=Mode(int(vols.mode[v])), status=Status.AVAILABLE,
                situation=situation,
            )  # fmt: skip
            index.update(slot, float(vols.home_lat[v]), float(vols.home_lon[v]), now, now)
        village = int(inc.village[i])
        ranking = rank(
            index, model, float(demand.lat[village]), float(demand.lon[village]), now=now
        )
        etas = np.sort(ranking.eta_s)
        for j in range(3):
            q = int(inc.quota[i, j])
            if q == 0:
                assert math.isnan(inc.response_s[i, j])
            else:
                assert inc.response_s[i, j] == pytest.approx(etas[q - 1], abs=1e-6)
        checked += 1
    assert checked >= 10
    if patrol_share == 0.0:
        # at home, the turnout (1:45 by day) comes first: nobody within a minute
        assert (inc.response_s[:, 0] >= params.turnout_median_s["home"]).all()


def test_the_same_seed_gives_the_same_result(policy: Policy) -> None:
    params = DayParams.from_mapping({"days": 1, "incidents_per_day": 40.0, "seed": 5})
    vols = roster(60)
    a = simulate(vols, params, policy)
    b = simulate(vols, params, policy)
    for name in ("ordinal", "created_s", "response_s", "offers", "accepted", "declined"):
        np.testing.assert_array_equal(getattr(a.incidents, name), getattr(b.incidents, name))
    np.testing.assert_array_equal(a.alerts, b.alerts)
    assert metrics(a) == metrics(b) or all(
        (x == y) or (math.isnan(x) and math.isnan(y))
        for x, y in zip(metrics(a).values(), metrics(b).values(), strict=True)
    )
    c = simulate(vols, params.replace(seed=6), policy)
    assert not np.array_equal(a.incidents.created_s, c.incidents.created_s)
    d = simulate(vols, params, policy, replication=1)
    assert not np.array_equal(a.incidents.created_s, d.incidents.created_s)


def test_common_random_numbers_volunteers_out_of_the_picture_change_nothing(
    policy: Policy,
) -> None:
    params = DayParams.from_mapping({"days": 1, "incidents_per_day": 40.0})
    vols = roster(60)
    base = simulate(vols, params, policy)
    never = roster(20, seed=9, duty_hours=0, prefix="off")  # never on duty
    far = roster(20, seed=10, north_m=60_000.0, prefix="far")  # 60 km away, on duty
    other = simulate(vols.concat(never).concat(far), params, policy)
    for name in ("created_s", "response_s", "offers", "accepted", "declined", "expired"):
        np.testing.assert_array_equal(getattr(base.incidents, name), getattr(other.incidents, name))
    np.testing.assert_array_equal(base.alerts, other.alerts[:, : len(vols)])
    assert other.alerts[:, len(vols) :].sum() == 0
    assert (other.duty_hours[len(vols) : len(vols) + 20] == 0).all()
    # paired differences are exactly zero, with a zero-width interval
    diff = compare([base], [other])
    assert diff["compliance_r3"].mean == 0.0


def test_more_volunteers_nearby_do_not_change_the_incidents(policy: Policy) -> None:
    params = DayParams.from_mapping({"days": 1, "incidents_per_day": 40.0})
    vols = roster(30)
    extra = roster(30, seed=4, prefix="x")
    a = simulate(vols, params, policy)
    b = simulate(vols.concat(extra), params, policy)
    np.testing.assert_array_equal(a.incidents.created_s, b.incidents.created_s)
    np.testing.assert_array_equal(a.incidents.quota, b.incidents.quota)
    # the newcomers take part: the same incidents, answered by a larger crowd
    assert b.alerts[:, len(vols) :].sum() > 0
    np.testing.assert_array_equal(b.alerts.sum(), b.incidents.offers.sum())


def test_silence_expires_offers_and_the_core_escalates_and_widens(policy: Policy) -> None:
    params = DayParams.from_mapping(
        {"days": 1, "incidents_per_day": 10.0, "acceptance_mean": 0.0, "silent_share": 1.0,
         "type_mix": {"fire": 1.0}}
    )  # fmt: skip
    result = simulate(roster(25), params, policy)
    inc = result.incidents
    assert len(inc)
    assert (inc.accepted == 0).all()
    assert (inc.declined == 0).all()
    np.testing.assert_array_equal(inc.expired, inc.offers)
    assert inc.unserved.all()
    assert (inc.widen_steps > 0).all()
    assert np.isinf(inc.response_s[inc.quota > 0]).all()
    # every volunteer near the incidents was asked, once per incident at most
    assert (inc.offers <= 25).all()
    assert inc.offers.min() > 5


def test_off_duty_volunteers_are_never_offered(policy: Policy) -> None:
    params = DayParams.from_mapping({"days": 1, "incidents_per_day": 40.0})
    day_only = (1 << 8) | (1 << 9) | (1 << 10)
    vols = roster(40).concat(roster(40, seed=3, duty_hours=day_only, prefix="d"))
    result = simulate(vols, params, policy)
    assert result.duty_hours[:40].tolist() == [24] * 40
    assert result.duty_hours[40:].tolist() == [3] * 40
    # the day-only volunteers were only offered incidents created 08-11 (or just before)
    day_offers = result.alerts[0, 40:].sum()
    hours = result.incidents.hour
    assert day_offers <= result.incidents.offers[(hours >= 7) & (hours <= 10)].sum()


def test_parallel_replications_equal_sequential_ones(policy: Policy) -> None:
    params = DayParams.from_mapping({"days": 1, "incidents_per_day": 30.0, "replications": 2})
    model = CrowFlyModel(turnout=Turnout(params.turnout_by_situation()))
    sim = DaySimulation(small_demand(), roster(40), policy, model, params)
    one = run_replications(sim, [0, 1], jobs=1)
    two = run_replications(sim, [0, 1], jobs=2)
    for a, b in zip(one, two, strict=True):
        assert a.replication == b.replication
        np.testing.assert_array_equal(a.incidents.response_s, b.incidents.response_s)
        np.testing.assert_array_equal(a.alerts, b.alerts)
    est = summarise(one)
    assert est["incidents"].n == 2


def test_incident_stream_is_poisson_by_hour_and_population() -> None:
    demand = small_demand()
    profile = [0.0] * 6 + [1.0] * 18
    params = DayParams.from_mapping(
        {"days": 20, "incidents_per_day": 50.0, "hourly_profile": profile,
         "type_mix": {"fire": 1.0, "dispute": 3.0}}
    )  # fmt: skip
    stream = incident_stream(demand, params, load_policy().types, replication=0)
    assert abs(len(stream) - 1000) < 4 * math.sqrt(1000)
    hours = (stream.t // 3600 % 24).astype(int)
    assert (hours >= 6).all(), "no incident in hours of zero rate"
    assert np.all(np.diff(stream.t) >= 0)
    share = np.bincount(stream.village, minlength=4) / len(stream)
    np.testing.assert_allclose(share, demand.population / demand.population.sum(), atol=0.05)
    fire = stream.types.index("fire")
    assert abs(float(np.mean(stream.type == fire)) - 0.25) < 0.05
    again = incident_stream(demand, params, load_policy().types, replication=0)
    np.testing.assert_array_equal(stream.t, again.t)
    with pytest.raises(ValueError, match="lacks"):
        incident_stream(demand, params.replace(type_mix={"ufo": 1.0}), ("fire",), 0)


def test_confidence_interval() -> None:
    e = estimate([1.0, 2.0, 3.0])
    assert e.mean == 2.0
    assert e.low == pytest.approx(2.0 - 4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert math.isnan(estimate([1.0]).low)
    inf = estimate([1.0, math.inf])
    assert math.isinf(inf.mean)
    assert math.isnan(inf.low)


def test_a_day_on_the_county_with_new_units(policy: Policy) -> None:
    ds = load_dataset(DEFAULT_DATASET)
    demand = Demand.from_dataset(ds)
    params = DayParams.from_mapping({"days": 1, "incidents_per_day": 40.0, "seed": 11})
    model = CrowFlyModel(turnout=Turnout(params.turnout_by_situation()))
    vols = SimVolunteers.from_dataset(ds)
    base = DaySimulation(demand, vols, policy, model, params).run(0)
    units = new_units(ds, [0, 5], duty="post", seed=params.seed)
    assert len(units) == 2 * int(np.median(ds.units.members))
    assert units.posted.all()
    more = DaySimulation(demand, vols.concat(units), policy, model, params).run(0)
    m = metrics(base)
    assert 0 < m["incidents"] < 100
    for ring in (1, 3, 5):
        assert 0.0 <= m[f"compliance_r{ring}"] <= 1.0
    np.testing.assert_array_equal(base.incidents.created_s, more.incidents.created_s)
    assert base.incidents.offers.sum() > 0
    limits = np.broadcast_to(np.array(RINGS_S), base.incidents.response_s.shape)
    met = base.incidents.met()
    assert (base.incidents.response_s[met] <= limits[met]).all()
