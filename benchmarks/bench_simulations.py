"""Benchmark of the planners' simulations on the Gucheng county dataset.

Figures and targets (the issue):

* static coverage of the county: 551 demand points, 13,556 volunteers (all, at home, on
  patrol), 3 rings, k = 1..3, acceptance-aware, the whole table: <= 1 s;
* 30 simulated days with all 13,556 volunteers and about 300 incidents a day against the
  real dispatch core: <= 60 s. Replications are independent, so the 30 days run as
  ``--replications`` x ``--days`` in ``--jobs`` processes (default 2 x 15 in 2 processes:
  results are identical for any ``--jobs``); the sequential cost per simulated day is printed
  too, from the replications' own wall time;
* siting 20 new units with every village a candidate site, lazy greedy: <= 10 s (the
  instance's construction, i.e. 551 x 551 x 4 modes travel times, included); the MILP's time
  and the greedy's gap are printed beside it.

Run: ``.venv/bin/python -m benchmarks.bench_simulations [--quick] [--jobs N] [--days N]
[--replications N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from dispatch.core.policy import load_policy
from geo.dataset.load import DEFAULT_DATASET, load_dataset
from geo.travel import CrowFlyModel, Situation, Turnout
from simulations.coverage import Demand, Positions, coverage_report
from simulations.day import DaySimulation, run_replications
from simulations.params import DayParams
from simulations.population import SimVolunteers, mode_mix, unit_modes
from simulations.siting import build_instance, greedy, solve_exact
from simulations.stats import summarise


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and worst wall time of ``repeats`` calls (one warm-up first), seconds."""
    call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), max(samples)


def verdict(seconds: float, target: float) -> str:
    return f"{seconds / target:5.2f} x target {target:g} s  {'ok' if seconds <= target else 'OVER'}"


def bench_coverage(repeats: int) -> None:
    ds = load_dataset(DEFAULT_DATASET)
    demand = Demand.from_dataset(ds)
    vols = SimVolunteers.from_dataset(ds)
    model = CrowFlyModel()

    def run() -> object:
        positions = Positions.from_homes(vols, situation=Situation.PATROL, acceptance=0.287)
        report = coverage_report(demand, positions, model)
        return report.rows(), report.acceptance_rows()

    median, worst = timed(run, repeats)
    print(
        f"  static coverage, {len(demand)} points x {len(vols):,} volunteers, 3 rings, k 1-3, "
        f"acceptance-aware: median {median:.3f} s, worst {worst:.3f} s   {verdict(median, 1.0)}"
    )


def bench_day(replications: int, days: int, jobs: int, quiet: bool) -> None:
    ds = load_dataset(DEFAULT_DATASET)
    demand = Demand.from_dataset(ds)
    params = DayParams(replications=replications, days=days)
    model = CrowFlyModel(turnout=Turnout(params.turnout_by_situation()))
    sim = DaySimulation(
        demand,
        SimVolunteers.from_dataset(ds),
        load_policy(),
        model,
        params,
        unit_lat=np.asarray(ds.units.lat),
        unit_lon=np.asarray(ds.units.lon),
        unit_ids=ds.units.id,
    )
    progress = None
    if not quiet:
        from tqdm import tqdm  # noqa: PLC0415

        bar = tqdm(total=replications * days, unit="sim-day", file=sys.stderr, leave=False)
        progress = bar.update
    start = time.perf_counter()
    results = run_replications(sim, list(range(replications)), jobs=jobs, progress=progress)
    wall = time.perf_counter() - start
    if not quiet:
        bar.close()
    total_days = replications * days
    incidents = sum(len(r.incidents) for r in results)
    events = sum(r.events for r in results)
    per_day = sum(r.wall_s for r in results) / total_days
    cpu = sum(r.cpu_s for r in results)
    est = summarise(results)
    print(
        f"  day simulation, {total_days} simulated days ({replications} x {days}, {jobs} "
        f"process(es)), {len(sim.volunteers):,} volunteers, {incidents:,} incidents "
        f"({incidents / total_days:.0f}/day), {events:,} events: {wall:.1f} s   "
        f"{verdict(wall, 60.0)}"
    )
    print(
        f"    per simulated day: {per_day:.2f} s wall, {cpu / total_days:.2f} s CPU "
        f"({1000 * cpu / max(1, incidents):.1f} ms CPU per incident); on {jobs} idle core(s) "
        f"the 30 days would take about {cpu / jobs:.0f} s   {verdict(cpu / jobs, 60.0)}"
    )
    print(
        "    compliance 1/3/5 min "
        + " / ".join(f"{est[f'compliance_r{r}'].mean:.1%}" for r in (1, 3, 5))
        + f"; unserved {est['unserved_share'].mean:.1%}; most offers to one volunteer in a "
        f"day {est['alerts_max_day'].mean:.0f}"
    )


def bench_site(units: int, repeats: int) -> None:
    ds = load_dataset(DEFAULT_DATASET)
    demand = Demand.from_dataset(ds)
    modes = unit_modes(int(np.median(ds.units.members)), mode_mix(ds))
    existing = Positions.from_units(ds)
    model = CrowFlyModel()

    def run() -> object:
        instance = build_instance(demand, model, modes, existing=existing)
        return greedy(instance, units)

    median, worst = timed(run, repeats)
    instance = build_instance(demand, model, modes, existing=existing)
    build, _ = timed(lambda: build_instance(demand, model, modes, existing=existing), 1)
    result = greedy(instance, units)
    print(
        f"  siting {units} units, {instance.n_sites} candidate sites, lazy greedy (instance "
        f"{build:.2f} s + greedy {result.seconds * 1000:.1f} ms): median {median:.2f} s, "
        f"worst {worst:.2f} s   {verdict(median, 10.0)}"
    )
    exact = solve_exact(instance, units)
    print(
        f"    MILP (HiGHS): {exact.seconds:.2f} s, {exact.variables:,} variables, "
        f"{'optimal' if exact.optimal else 'stopped'}; objective greedy "
        f"{result.objective / instance.total:.3%} vs exact {exact.objective / instance.total:.3%}"
        f", greedy gap {exact.gap(result.objective):.4%}"
    )
    expected = greedy(instance, units, objective="expected", q=0.713)
    print(
        f"    MEXCLP greedy (q 0.713): {expected.seconds * 1000:.1f} ms, expected coverage "
        f"{expected.base / instance.total:.2%} -> {expected.objective / instance.total:.2%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 simulated days, 1 repeat")
    parser.add_argument("--replications", type=int, default=2)
    parser.add_argument("--days", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=2, help="processes for the day simulation")
    parser.add_argument("--units", type=int, default=20)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    replications, days = (1, 2) if args.quick else (args.replications, args.days)
    print(
        f"bench_simulations: os.cpu_count() = {os.cpu_count()}, python "
        f"{sys.version.split()[0]}, numpy {np.__version__}; the machine's other load shows "
        "in the spread (median vs worst)"
    )
    bench_coverage(repeats)
    bench_site(args.units, repeats)
    bench_day(replications, days, args.jobs, args.quiet)


if __name__ == "__main__":
    main()
