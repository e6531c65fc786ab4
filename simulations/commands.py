"""The planners' three runs: ``coverage``, ``day`` and ``site``, from options to a run folder.

Theory of operation
-------------------
Each run loads the dataset (and the policy), builds the travel model the options name,
computes with :mod:`simulations.coverage`, :mod:`simulations.day` or
:mod:`simulations.siting`, and writes its folder through :mod:`simulations.report` and
:mod:`simulations.plots`: tables (CSV), the same as JSON, points (GeoJSON), plots (PNG) and
the manifest. The command line (:mod:`simulations.__main__`) only parses arguments into the
option objects below; tests and notebooks call these functions directly.

Travel model: ``crow-fly`` (:class:`~geo.travel.CrowFlyModel`, default) or ``road``
(:class:`~geo.roads.RoadModel` on the dataset's ``roads.geojson``), with the turnout medians of
the parameters.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Never, TextIO

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from dispatch.core.policy import DEFAULT_POLICY_PATH, RING_MINUTES, RINGS_S, load_policy
from dispatch.errors import InvalidInput
from geo.dataset.load import CountyDataset, load_dataset
from geo.modes import CROW_FLY_SPEED_MS, DEFAULT_CIRCUITY, Mode
from geo.travel import CrowFlyModel, Situation, TravelModel, Turnout
from simulations import plots, report
from simulations.coverage import CoverageReport, Demand, Positions, coverage_report
from simulations.day import DaySimulation, ReplicationResult, run_replications
from simulations.params import DayParams, SiteParams, to_jsonable
from simulations.population import (
    SimVolunteers,
    acceptance_probabilities,
    mode_mix,
    new_units,
    unit_modes,
)
from simulations.siting import (
    ExactResult,
    GreedyResult,
    SitingInstance,
    build_instance,
    evaluate,
    greedy,
    place_counts,
    solve_exact,
)
from simulations.stats import as_table, compare, compliance_grid, summarise

__all__ = [
    "Common",
    "CoverageOptions",
    "DayOptions",
    "SiteOptions",
    "dataset",
    "run_coverage",
    "run_day",
    "run_site",
    "travel_model",
]

TravelKind = Literal["crow-fly", "road"]
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class Common:
    """Options every run takes.

    Attributes:
        dataset: the county dataset folder.
        travel: ``crow-fly`` or ``road``.
        out: the run folder (default ``out/<command>-<timestamp>``).
        quiet: no progress bars, no console summary.
        plots: draw the PNG plots (off: tables only, for batch runs).
        argv: the command line's arguments (for the manifest's ``rerun``).
    """

    dataset: Path
    travel: TravelKind = "crow-fly"
    out: Path | None = None
    quiet: bool = False
    plots: bool = True
    argv: tuple[str, ...] = ()


_DATASETS: dict[tuple[object, ...], CountyDataset] = {}


def dataset(path: Path) -> CountyDataset:
    """:func:`~geo.dataset.load.load_dataset`, remembered while the folder's files are
    unchanged (same names, sizes and modification times): runs in one process (a notebook,
    the tests) load the county once.

    Raises:
        DatasetError: the dataset cannot be loaded.
    """
    folder = path.resolve()
    try:
        stamp = tuple(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())
            if p.is_file()
        )
    except OSError:
        return load_dataset(path)  # let the loader say what is wrong
    key = (str(folder), stamp)
    if key not in _DATASETS:
        _DATASETS.clear()
        _DATASETS[key] = load_dataset(path)
    return _DATASETS[key]


def travel_model(
    kind: TravelKind, ds: CountyDataset, turnout: Turnout
) -> tuple[TravelModel, dict[str, object]]:
    """The travel model a run uses, and its description for the manifest.

    Raises:
        InvalidInput: an unknown kind.
        DatasetError: the road network cannot be read.
    """
    turnout_desc = {s.name.lower(): v for s, v in turnout.seconds.items()}
    if kind == "crow-fly":
        return CrowFlyModel(turnout=turnout), {
            "name": "crow-fly",
            "speeds_ms": {m.wire: CROW_FLY_SPEED_MS[m] for m in Mode},
            "circuity": {m.wire: DEFAULT_CIRCUITY[m] for m in Mode},
            "turnout_s": turnout_desc,
        }
    if kind == "road":
        from geo.roads import RoadModel, RoadNetwork  # noqa: PLC0415 (geopandas-heavy)

        network = RoadNetwork.from_file(ds.roads_path)
        return RoadModel(network, turnout=turnout), {
            "name": "road",
            "roads": str(ds.roads_path),
            "roads_sha256": report.file_sha256(ds.roads_path),
            "nodes": network.n_nodes,
            "edges": network.n_edges,
            "turnout_s": turnout_desc,
        }
    raise InvalidInput(f"unknown travel model {kind!r}; crow-fly or road", field="travel")


def _bar(total: int, desc: str, unit: str, quiet: bool) -> tqdm[Never]:
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr, leave=False)


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:6.1%}"


# ================================================================================ coverage


@dataclass(frozen=True, slots=True)
class CoverageOptions:
    """Options of ``coverage``.

    Attributes:
        common: the common options.
        positions: ``homes`` (volunteers on duty, at home) or a scenario CSV.
        weekdays: which weekdays (0 = Monday), for ``homes``.
        hours: which hours, for ``homes``.
        situation: where the volunteers are (turnout): ``patrol`` (default) or ``home``.
        acceptance: mean acceptance probability (a scenario file's own ``acceptance``
            column wins).
        concentration: spread of the acceptance between volunteers: Beta concentration, as
            in the day simulation (0: everyone accepts with ``acceptance``).
        seed: keys each volunteer's acceptance (the day simulation's seed gives the day
            simulation's volunteers).
    """

    common: Common
    positions: str = "homes"
    weekdays: tuple[int, ...] = (0,)
    hours: tuple[int, ...] = (20,)
    situation: Situation = Situation.PATROL
    acceptance: float = 0.287
    concentration: float = 10.0
    seed: int = 20_231_015


def _village(demand: Demand, j: int) -> dict[str, object]:
    """The columns that name village ``j`` in every per-village table."""
    t = int(demand.township[j])
    return {
        "id": demand.ids[j],
        "name": demand.names[j],
        "township": demand.township_names[t],
        "township_pinyin": demand.township_labels[t],
        "population": int(demand.population[j]),
    }


def _village_rows(
    demand: Demand, rep: CoverageReport, extra: Mapping[str, Sequence[object]] | None = None
) -> list[dict[str, object]]:
    best = rep.best_ring()
    rows = []
    for j in range(len(demand)):
        row = _village(demand, j)
        row["best_ring_min"] = int(best[j]) if best[j] else None
        for r, ring in enumerate(rep.ring_minutes):
            row[f"volunteers_{ring}min"] = int(rep.counts[j, r])
        if rep.p_any is not None:
            for r, ring in enumerate(rep.ring_minutes):
                row[f"p_accept_{ring}min"] = round(float(rep.p_any[j, r]), 4)
        for key, values in (extra or {}).items():
            row[key] = values[j]
        rows.append(row)
    return rows


Sweep = list[tuple[int | None, int | None, CoverageReport]]


def _sweep(
    options: CoverageOptions, ds: CountyDataset, demand: Demand, model: TravelModel
) -> Sweep:
    """One report per (weekday, hour) of the options, or one for the scenario file."""
    reports: Sweep = []
    if options.positions != "homes":
        positions = Positions.from_file(Path(options.positions))
        mean = None if positions.acceptance is not None else options.acceptance
        return [(None, None, coverage_report(demand, positions, model, acceptance=mean))]
    vols = SimVolunteers.from_dataset(ds)
    accept = acceptance_probabilities(
        vols.keys, options.acceptance, options.concentration, options.seed
    )
    slots = [(d, h) for d in options.weekdays for h in options.hours]
    with _bar(len(slots), "coverage", "hour", options.common.quiet) as bar:
        for d, h in slots:
            positions = Positions.from_homes(
                vols, vols.on_duty(d, h), situation=options.situation, acceptance=accept
            )
            reports.append((d, h, coverage_report(demand, positions, model)))
            bar.update(1)
    return reports


def _hour_plot(folder: Path, options: CoverageOptions, reports: Sweep) -> None:
    """County coverage by hour, averaged over the weekdays swept."""
    hours = sorted(set(options.hours))
    share = np.zeros((len(hours), len(RING_MINUTES)))
    expected = np.zeros((len(hours), len(RING_MINUTES)))
    for _d, h, rep in reports:
        i = hours.index(int(h or 0))
        share[i] += [r.population_share for r in rep.rows(ks=(1,))[: len(RING_MINUTES)]]
        accept = rep.acceptance_rows()[: len(RING_MINUTES)]
        expected[i] += [r.expected_share for r in accept] if accept else 0.0
    share /= len(options.weekdays)
    expected /= len(options.weekdays)
    days = ", ".join(_WEEKDAYS[d] for d in options.weekdays)
    mean = "; mean over the days" if len(options.weekdays) > 1 else ""
    plots.coverage_by_hour(
        folder / "coverage_by_hour.png",
        hours,
        share,
        expected=expected,
        title=f"County coverage by the volunteers on duty ({days}{mean}), "
        f"acceptance {options.acceptance:g}",
    )


def _coverage_plots(
    folder: Path,
    options: CoverageOptions,
    reports: Sweep,
    rep: CoverageReport,
    when_text: str,
    model_name: str,
    ds: CountyDataset,
) -> None:
    demand = rep.demand
    plots.village_map(
        folder / "map_best_ring.png",
        demand.lat,
        demand.lon,
        demand.population,
        rep.best_ring(),
        title=f"Best ring per village, {when_text}: {rep.volunteers:,} volunteers "
        f"({options.situation.name.lower()}, {model_name})",
        borders=ds.townships.polygon,
        units=(np.asarray(ds.units.lat), np.asarray(ds.units.lon)),
    )
    if len(reports) > 1:
        _hour_plot(folder, options, reports)


def run_coverage(options: CoverageOptions, *, out: TextIO = sys.stdout) -> Path:
    """Static coverage by the volunteers on duty (or a scenario file), with maps and tables.

    Raises:
        DatasetError: the dataset cannot be loaded.
        InvalidInput: a bad option or scenario file.
    """
    started = dt.datetime.now(dt.UTC)
    c = options.common
    ds = dataset(c.dataset)
    demand = Demand.from_dataset(ds)
    model, travel = travel_model(c.travel, ds, Turnout())
    reports = _sweep(options, ds, demand, model)
    folder = report.run_folder("coverage", c.out)

    rows: list[dict[str, object]] = []
    accept_rows: list[dict[str, object]] = []
    for d, h, rep in reports:
        when = {"weekday": "" if d is None else _WEEKDAYS[d], "hour": "" if h is None else h}
        rows += [{**when, "volunteers": rep.volunteers, **vars_of(r)} for r in rep.rows()]
        accept_rows += [{**when, **vars_of(r)} for r in rep.acceptance_rows()]
    report.write_csv(folder / "coverage.csv", rows)
    report.write_csv(folder / "acceptance.csv", accept_rows)

    # The map and the village table: the single report, or the worst hour of the sweep.
    def one_minute(item: tuple[int | None, int | None, CoverageReport]) -> float:
        return item[2].rows(ks=(1,))[0].population_share

    worst = min(reports, key=one_minute)
    d, h, rep = worst
    when_text = "scenario file" if d is None else f"{_WEEKDAYS[d]} {h:02d}:00"
    village_rows = _village_rows(demand, rep)
    report.write_csv(folder / "villages.csv", village_rows)
    report.write_geojson(folder / "villages.geojson", demand.lat, demand.lon, village_rows)
    if c.plots:
        _coverage_plots(folder, options, reports, rep, when_text, model.name, ds)
    summary = {
        "worst": {"weekday": None if d is None else _WEEKDAYS[d], "hour": h},
        "county": [
            {**({"weekday": _WEEKDAYS[d_], "hour": h_} if d_ is not None else {}), **vars_of(r)}
            for d_, h_, rep_ in reports
            for r in rep_.rows()
            if r.area == "county"
        ],
    }
    report.write_json(folder / "coverage.json", summary)
    report.write_manifest(
        folder,
        command="coverage",
        argv=c.argv,
        parameters={
            "positions": options.positions,
            "weekdays": list(options.weekdays),
            "hours": list(options.hours),
            "situation": options.situation.name.lower(),
            "acceptance": options.acceptance,
            "acceptance_concentration": options.concentration,
            "rings_s": list(RINGS_S),
            "ks": [1, 2, 3],
        },
        seed=options.seed,
        travel=travel,
        dataset=c.dataset,
        policy=None,
        started=started,
    )
    if not c.quiet:
        if len(reports) > 1:
            _print_hours(reports, out)
            print(f"\nworst (fewest within 1 minute): {when_text}", file=out)
        _print_coverage(rep, when_text, out)
        print(f"\nwritten to {folder}", file=out)
    return folder


def vars_of(row: object) -> dict[str, object]:
    """A slotted dataclass row as a dict."""
    return {name: getattr(row, name) for name in getattr(row, "__slots__", ())}


def _print_hours(reports: Sweep, out: TextIO) -> None:
    print("County share of population with someone within 1 / 3 / 5 min (k = 1), and the", file=out)
    print("expected share where someone accepts in time, by the volunteers on duty:", file=out)
    for d, h, rep in reports:
        when = "" if d is None else f"{_WEEKDAYS[d]} {h:02d}:00"
        shares = " ".join(_pct(r.population_share) for r in rep.rows(ks=(1,))[:3])
        accept = " ".join(_pct(r.expected_share) for r in rep.acceptance_rows()[:3])
        print(f"  {when:<10}{rep.volunteers:>7,} on duty  {shares}   accepts {accept}", file=out)


def _print_coverage(rep: CoverageReport, when: str, out: TextIO) -> None:
    print(f"Coverage, {when}: {rep.volunteers:,} volunteers", file=out)
    header = "".join(f"{f'{r} min':>9}" for r in rep.ring_minutes)
    print(f"  county, share of population     {header}", file=out)
    for k in (1, 2, 3):
        cells = "".join(f"{_pct(r.population_share):>9}" for r in rep.rows(ks=(k,))[:3])
        print(f"  at least {k} volunteer(s)         {cells}", file=out)
    accept = rep.acceptance_rows()[:3]
    if accept:
        cells = "".join(f"{_pct(r.expected_share):>9}" for r in accept)
        print(f"  someone accepts (expected)      {cells}", file=out)


# ===================================================================================== day


@dataclass(frozen=True, slots=True)
class DayOptions:
    """Options of ``day``.

    Attributes:
        common: the common options.
        params: the simulation's parameters.
        policy: the incident policy file.
        add_units: also simulate a scenario with this many new units, sited by the greedy.
        sites: also simulate a scenario with new units at these villages (a CSV with a
            ``village_id`` column, such as a ``site`` run's ``sites.csv``).
        unit_size: members per new unit (0: the dataset's median).
        unit_duty: ``roster`` (duty patterns of existing unit members), ``always``, or
            ``post`` (always on duty, at the unit's village, ready: what siting assumes).
        jobs: worker processes (0: one per CPU).
    """

    common: Common
    params: DayParams
    policy: Path = DEFAULT_POLICY_PATH
    add_units: int = 0
    sites: Path | None = None
    unit_size: int = 0
    unit_duty: Literal["roster", "always", "post"] = "roster"
    jobs: int = 0


def read_sites(path: Path, demand: Demand) -> list[int]:
    """Village rows from a CSV with a ``village_id`` column.

    Raises:
        InvalidInput: unreadable, no such column, or an unknown village.
    """
    rows_of = {vid: j for j, vid in enumerate(demand.ids)}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror or exc}", field="sites") from exc
    out = []
    for i, row in enumerate(rows, start=2):
        vid = row.get("village_id")
        if vid is None:
            raise InvalidInput(f"{path}: no village_id column", field="sites")
        if vid not in rows_of:
            raise InvalidInput(f"{path}:{i}: unknown village {vid!r}", field="sites")
        out.append(rows_of[vid])
    return out


def _incident_rows(
    name: str, results: Sequence[ReplicationResult], demand: Demand
) -> list[dict[str, object]]:
    rows = []
    for res in results:
        inc = res.incidents
        met = inc.met()
        for i in range(len(inc)):
            t = int(inc.township[i])
            row: dict[str, object] = {
                "scenario": name,
                "replication": res.replication,
                "ordinal": int(inc.ordinal[i]),
                "day": int(inc.day[i]),
                "weekday": _WEEKDAYS[int(inc.weekday[i])],
                "hour": int(inc.hour[i]),
                "created_s": float(inc.created_s[i]),
                "township": demand.township_names[t],
                "township_pinyin": demand.township_labels[t],
                "village_id": demand.ids[int(inc.village[i])],
                "type": inc.type[i],
                "severity": int(inc.severity[i]),
            }
            for j, ring in enumerate(RING_MINUTES):
                row[f"quota_{ring}min"] = int(inc.quota[i, j])
            for j, ring in enumerate(RING_MINUTES):
                row[f"response_{ring}min_s"] = float(inc.response_s[i, j])
            for j, ring in enumerate(RING_MINUTES):
                row[f"met_{ring}min"] = int(met[i, j]) if inc.quota[i, j] > 0 else ""
            row.update(
                arrivals=int(inc.arrivals[i]),
                offers=int(inc.offers[i]),
                accepted=int(inc.accepted[i]),
                declined=int(inc.declined[i]),
                expired=int(inc.expired[i]),
                first_arrival_s=float(inc.first_arrival_s[i]),
                closed_after_s=float(inc.closed_s[i]),
                widen_steps=int(inc.widen_steps[i]),
                unserved=int(inc.unserved[i]),
            )
            rows.append(row)
    return rows


def _write_scenario(
    folder: Path,
    name: str,
    results: Sequence[ReplicationResult],
    demand: Demand,
    vols: SimVolunteers,
    draw: bool = True,
) -> dict[str, object]:
    """One scenario's tables and plots; returns its summary."""
    folder.mkdir(parents=True, exist_ok=True)
    report.write_csv(folder / "incidents.csv", _incident_rows(name, results, demand))
    estimates = summarise(results)
    report.write_csv(folder / "summary.csv", as_table(estimates))
    share, count = compliance_grid(results, len(demand.township_names))
    grid_rows = [
        {
            "ring_min": ring,
            "township": demand.township_names[t],
            "township_pinyin": demand.township_labels[t],
            "hour": h,
            "incidents": int(count[j, t, h]),
            "met_share": float(share[j, t, h]),
        }
        for j, ring in enumerate(RING_MINUTES)
        for t in range(len(demand.township_names))
        for h in range(24)
    ]
    report.write_csv(folder / "compliance.csv", grid_rows)
    # fatigue: offers per volunteer, over all replications
    alerts = np.sum([r.alerts.sum(axis=0) for r in results], axis=0)
    accepts = np.sum([r.accepts for r in results], axis=0)
    duty = np.sum([r.duty_hours for r in results], axis=0)
    max_day = np.max([r.alerts.max(axis=0) for r in results], axis=0)
    days = sum(r.days for r in results)
    alerted = np.flatnonzero(alerts > 0)
    order = alerted[np.argsort(-alerts[alerted], kind="stable")]
    report.write_csv(
        folder / "alerts.csv",
        (
            {
                "volunteer_id": vols.ids[v],
                "new_unit": int(vols.new_unit[v]) if vols.new_unit[v] >= 0 else "",
                "mode": Mode(int(vols.mode[v])).wire,
                "duty_hours": int(duty[v]),
                "offers": int(alerts[v]),
                "offers_per_day": float(alerts[v]) / days,
                "max_offers_one_day": int(max_day[v]),
                "accepted": int(accepts[v]),
            }
            for v in order.tolist()
        ),
        fields=[
            "volunteer_id", "new_unit", "mode", "duty_hours", "offers", "offers_per_day",
            "max_offers_one_day", "accepted",
        ],
    )  # fmt: skip
    # per village: incidents and ring compliance, pooled
    village_rows = _village_day_rows(results, demand)
    report.write_csv(folder / "villages.csv", village_rows)
    report.write_geojson(folder / "villages.geojson", demand.lat, demand.lon, village_rows)
    reps = len(results)
    total_days = results[0].days if results else 0
    if draw:
        _day_plots(folder, name, results, share, count, demand)
    summary = {
        "scenario": name,
        "replications": reps,
        "days": total_days,
        "volunteers": len(vols),
        "metrics": {k: e.to_json() for k, e in estimates.items()},
        "wall_s": [r.wall_s for r in results],
        "cpu_s": [r.cpu_s for r in results],
        "events": [r.events for r in results],
    }
    report.write_json(folder / "summary.json", summary)
    return summary


def _day_plots(
    folder: Path,
    name: str,
    results: Sequence[ReplicationResult],
    share: npt.NDArray[np.float64],
    count: npt.NDArray[np.int64],
    demand: Demand,
) -> None:
    pooled_response = np.concatenate([r.incidents.response_s for r in results])
    pooled_wanted = np.concatenate([r.incidents.wanted() for r in results])
    reps = len(results)
    total_days = results[0].days if results else 0
    plots.response_cdf(
        folder / "response_cdf.png",
        {name: (pooled_response, pooled_wanted)},
        title=f"Response time per ring, {name}: {len(pooled_response):,} incidents "
        f"({reps} replications x {total_days} days)",
    )
    plots.compliance_heatmap(
        folder / "compliance_heatmap.png",
        share,
        count,
        demand.township_labels,
        title=f"Ring quota met in time, by township and hour ({name})",
    )
    on_duty_days = np.concatenate([r.alerts[:, r.duty_hours > 0].ravel() for r in results])
    plots.alerts_histogram(
        folder / "alerts.png",
        on_duty_days.astype(np.int64),
        title=f"Offers per volunteer per day (volunteers on duty at least once; {name})",
    )


def _village_day_rows(
    results: Sequence[ReplicationResult], demand: Demand
) -> list[dict[str, object]]:
    n = len(demand)
    rings = len(RING_MINUTES)
    incidents = np.zeros(n, dtype=np.int64)
    wanted = np.zeros((n, rings), dtype=np.int64)
    met = np.zeros((n, rings), dtype=np.int64)
    unserved = np.zeros(n, dtype=np.int64)
    for r in results:
        inc = r.incidents
        np.add.at(incidents, inc.village, 1)
        np.add.at(unserved, inc.village, inc.unserved.astype(np.int64))
        for j in range(rings):
            np.add.at(wanted[:, j], inc.village, inc.wanted()[:, j].astype(np.int64))
            np.add.at(met[:, j], inc.village, (inc.met()[:, j]).astype(np.int64))
    rows = []
    for j in range(n):
        row = _village(demand, j)
        row["incidents"] = int(incidents[j])
        row["unserved"] = int(unserved[j])
        for r_, ring in enumerate(RING_MINUTES):
            row[f"met_{ring}min_share"] = (
                float(met[j, r_]) / float(wanted[j, r_]) if wanted[j, r_] else math.nan
            )
        rows.append(row)
    return rows


def run_day(options: DayOptions, *, out: TextIO = sys.stdout) -> Path:
    """Simulated days against the real dispatch core; with new units, a paired comparison.

    Raises:
        DatasetError, PolicyError: the dataset or the policy cannot be loaded.
        InvalidInput: a bad option or sites file.
    """
    started = dt.datetime.now(dt.UTC)
    c = options.common
    p = options.params
    ds = dataset(c.dataset)
    policy = load_policy(options.policy)
    demand = Demand.from_dataset(ds)
    vols = SimVolunteers.from_dataset(ds)
    model, travel = travel_model(c.travel, ds, Turnout(p.turnout_by_situation()))
    scenarios: list[tuple[str, SimVolunteers, list[int]]] = [("baseline", vols, [])]
    chosen: list[int] = []
    if options.sites is not None:
        chosen = read_sites(options.sites, demand)
    elif options.add_units:
        size = options.unit_size or int(np.median(ds.units.members))
        instance = build_instance(
            demand,
            model,
            unit_modes(size, mode_mix(ds)),
            existing=Positions.from_units(ds),
        )
        chosen = list(greedy(instance, options.add_units).sites)
    if chosen:
        extra = new_units(ds, chosen, size=options.unit_size, duty=options.unit_duty, seed=p.seed)
        scenarios.append((f"plus_{len(chosen)}_units", vols.concat(extra), chosen))
    folder = report.run_folder("day", c.out)
    all_results: dict[str, list[ReplicationResult]] = {}
    summaries = []
    total = len(scenarios) * p.replications * p.days
    with _bar(total, "day", "sim-day", c.quiet) as bar:
        for name, roster, sites in scenarios:
            unit_lat = np.concatenate([ds.units.lat, demand.lat[sites]])
            unit_lon = np.concatenate([ds.units.lon, demand.lon[sites]])
            unit_ids = ds.units.id + tuple(f"new-unit-{k}" for k in range(len(sites)))
            sim = DaySimulation(
                demand, roster, policy, model, p,
                unit_lat=unit_lat, unit_lon=unit_lon, unit_ids=unit_ids,
            )  # fmt: skip
            results = run_replications(
                sim, list(range(p.replications)), jobs=options.jobs, progress=bar.update
            )
            all_results[name] = results
            target = folder / name if len(scenarios) > 1 else folder
            summaries.append(_write_scenario(target, name, results, demand, roster, c.plots))
    comparison = None
    if len(scenarios) > 1:
        base_name, other_name = scenarios[0][0], scenarios[1][0]
        diff = compare(all_results[base_name], all_results[other_name])
        report.write_csv(folder / "comparison.csv", as_table(diff))
        comparison = {k: e.to_json() for k, e in diff.items()}
        report.write_json(folder / "comparison.json", comparison)
    if comparison is not None and c.plots:
        plots.response_cdf(
            folder / "response_cdf_compare.png",
            {
                name: (
                    np.concatenate([r.incidents.response_s for r in res]),
                    np.concatenate([r.incidents.wanted() for r in res]),
                )
                for name, res in all_results.items()
            },
            title="Response time per ring: baseline (solid) vs new units (dashed), same incidents",
        )
    report.write_manifest(
        folder,
        command="day",
        argv=c.argv,
        parameters=to_jsonable(p),
        seed=p.seed,
        travel=travel,
        dataset=c.dataset,
        policy=options.policy,
        started=started,
        extra={
            "scenario": {
                "add_units": options.add_units,
                "sites_file": None if options.sites is None else str(options.sites),
                "sites": [demand.ids[j] for j in chosen],
                "unit_size": options.unit_size or int(np.median(ds.units.members)),
                "unit_duty": options.unit_duty,
            },
            "jobs": options.jobs,
        },
    )
    if not c.quiet:
        for name, results in all_results.items():
            _print_day(name, results, out)
        if comparison is not None:
            _print_comparison(compare(*all_results.values()), out)
        print(f"\nwritten to {folder}", file=out)
    return folder


def _print_day(name: str, results: Sequence[ReplicationResult], out: TextIO) -> None:
    est = summarise(results)
    n = len(results)
    days = results[0].days if results else 0
    print(f"\n{name}: {n} replication(s) x {days} day(s), mean [95% CI]", file=out)

    def line(label: str, key: str, fmt: Callable[[float], str]) -> None:
        e = est[key]
        ci = "" if math.isnan(e.low) else f"  [{fmt(e.low)}, {fmt(e.high)}]"
        print(f"  {label:<44}{fmt(e.mean)}{ci}", file=out)

    def secs(x: float) -> str:
        return "never" if math.isinf(x) else ("n/a" if math.isnan(x) else f"{x:6.0f} s")

    line("incidents per replication", "incidents", lambda x: f"{x:6.0f}")
    for ring in RING_MINUTES:
        line(f"{ring}-min quota on scene in time", f"compliance_r{ring}", _pct)
        line(f"  p90 time to the {ring}-min quota", f"p90_response_s_r{ring}", secs)
    line("unserved (nobody came)", "unserved_share", _pct)
    line("offers per incident", "offers_per_incident", lambda x: f"{x:6.1f}")
    line("acceptance of offers", "acceptance_rate", _pct)
    line("offers per volunteer on duty per day", "alerts_per_volunteer_day", lambda x: f"{x:6.2f}")
    line("most offers to one volunteer in a day", "alerts_max_day", lambda x: f"{x:6.0f}")


def _print_comparison(diff: Mapping[str, object], out: TextIO) -> None:
    print("\nnew units - baseline (paired, common random numbers), mean [95% CI]", file=out)
    for ring in RING_MINUTES:
        e = diff[f"compliance_r{ring}"]
        mean, low, high = (getattr(e, a) for a in ("mean", "low", "high"))
        ci = "" if math.isnan(low) else f"  [{low:+.1%}, {high:+.1%}]"
        print(f"  {ring}-min quota on scene in time          {mean:+.1%}{ci}", file=out)


# ==================================================================================== site


@dataclass(frozen=True, slots=True)
class SiteOptions:
    """Options of ``site``.

    Attributes:
        common: the common options.
        params: the siting parameters.
    """

    common: Common
    params: SiteParams


def _existing(ds: CountyDataset, params: SiteParams, situation: Situation) -> Positions | None:
    if params.existing == "units":
        return Positions.from_units(ds, situation=situation)
    if params.existing == "volunteers":
        vols = SimVolunteers.from_dataset(ds)
        return Positions.from_homes(
            vols, vols.on_duty(params.weekday, params.hour), situation=situation
        )
    return None


def _best_ring(counts: npt.NDArray[np.int64], rings: int) -> npt.NDArray[np.int64]:
    n = counts.reshape(-1, rings) >= 1
    minutes = np.asarray(RING_MINUTES, dtype=np.int64)[np.argmax(n, axis=1)]
    return np.where(n.any(axis=1), minutes, 0)


def run_site(options: SiteOptions, *, out: TextIO = sys.stdout) -> Path:
    """Place new units: lazy greedy with its marginal-gain table, and the MILP's gap.

    Raises:
        DatasetError: the dataset cannot be loaded.
        InvalidInput: a bad option.
    """
    started = dt.datetime.now(dt.UTC)
    c = options.common
    p = options.params
    ds = dataset(c.dataset)
    demand = Demand.from_dataset(ds)
    situation = Situation[p.situation.upper()]
    model, travel = travel_model(c.travel, ds, Turnout())
    size = p.unit_size or int(np.median(ds.units.members))
    modes = unit_modes(size, mode_mix(ds))
    objective: Literal["cover", "expected"] = "expected" if p.objective == "expected" else "cover"
    q = p.q if objective == "expected" else 0.0
    instance = build_instance(
        demand, model, modes, existing=_existing(ds, p, situation), weights=p.weights,
        situation=situation,
    )  # fmt: skip
    result = greedy(instance, p.units, objective=objective, q=q)
    exact = None
    if p.exact and p.units:
        exact = solve_exact(
            instance, p.units, objective=objective, q=q,
            time_limit_s=p.time_limit_s, truncation=p.truncation,
        )  # fmt: skip
    folder = report.run_folder("site", c.out)
    _write_site(folder, instance, result, exact, demand, ds, objective, q, size, modes, c.plots)
    report.write_manifest(
        folder,
        command="site",
        argv=c.argv,
        parameters=to_jsonable(p),
        seed=None,
        travel=travel,
        dataset=c.dataset,
        policy=None,
        started=started,
        extra={"unit": {"size": size, "modes": [m.wire for m in modes]}},
    )
    if not c.quiet:
        _print_site(result, exact, demand, instance, out)
        print(f"\nwritten to {folder}", file=out)
    return folder


def _site_row(demand: Demand, j: int) -> dict[str, object]:
    """Village ``j`` as a candidate site: its columns, ``id`` named ``village_id``."""
    village = _village(demand, j)
    return {
        "village_id": village.pop("id"),
        **village,
        "lat": float(demand.lat[j]),
        "lon": float(demand.lon[j]),
    }


def _write_site(
    folder: Path,
    instance: SitingInstance,
    result: GreedyResult,
    exact: ExactResult | None,
    demand: Demand,
    ds: CountyDataset,
    objective: Literal["cover", "expected"],
    q: float,
    size: int,
    modes: Sequence[Mode],
    draw: bool = True,
) -> None:
    total = instance.total
    site_village = instance.sites
    # the marginal-gain table, one row per round
    steps = []
    for s in result.steps:
        row = {"round": s.round, **_site_row(demand, int(site_village[s.site]))}
        row.update(
            gain=s.gain,
            gain_share=s.gain / total,
            **{
                f"gain_people_{r}min": g for r, g in zip(RING_MINUTES, s.gain_per_ring, strict=True)
            },
            objective=s.objective,
            objective_share=s.objective / total,
            evaluations=s.evaluations,
            runner_up_gain=s.runner_up,
        )
        steps.append(row)
    report.write_csv(folder / "greedy.csv", steps)
    candidates = [
        {
            **_site_row(demand, int(site_village[s])),
            "initial_gain": float(result.initial_gains[s]),
            "initial_gain_share": float(result.initial_gains[s]) / total,
            **{
                f"gain_people_{r}min": float(result.initial_gains_per_ring[s, k])
                for k, r in enumerate(RING_MINUTES)
            },
        }
        for s in np.argsort(-result.initial_gains, kind="stable").tolist()
    ]
    report.write_csv(folder / "candidates.csv", candidates)
    site_rows = [
        {"rank": i + 1, **_site_row(demand, int(site_village[s]))}
        for i, s in enumerate(result.sites)
    ]
    report.write_csv(folder / "sites.csv", site_rows)
    exact_rows = []
    if exact is not None:
        exact_rows = [
            {"rank": i + 1, **_site_row(demand, int(site_village[s]))}
            for i, s in enumerate(exact.sites)
        ]
        report.write_csv(folder / "sites_exact.csv", exact_rows)
    geo_rows = [{"method": "greedy", **r} for r in site_rows] + [
        {"method": "exact", **r} for r in exact_rows
    ]
    report.write_geojson(
        folder / "sites.geojson",
        [r["lat"] for r in geo_rows],  # type: ignore[misc]
        [r["lon"] for r in geo_rows],  # type: ignore[misc]
        geo_rows,
    )
    # the curve: after 0, 1, ..., N units
    curve = []
    shares = np.zeros((len(result.sites) + 1, len(RING_MINUTES)))
    values = np.zeros(len(result.sites) + 1)
    for n in range(len(result.sites) + 1):
        value, per_ring = evaluate(instance, result.sites[:n], objective, q)
        values[n], shares[n] = value / total, per_ring
        curve.append(
            {
                "units": n,
                "objective_share": value / total,
                **{f"population_{r}min": float(per_ring[k]) for k, r in enumerate(RING_MINUTES)},
            }
        )
    report.write_csv(folder / "curve.csv", curve)
    # villages before and after
    before = _best_ring(place_counts(instance, ()), instance.n_rings)
    after = _best_ring(place_counts(instance, result.sites), instance.n_rings)
    village_rows = []
    for j in range(len(demand)):
        row = _village(demand, j)
        row["best_ring_before"] = int(before[j]) or None
        row["best_ring_after"] = int(after[j]) or None
        village_rows.append(row)
    report.write_csv(folder / "villages.csv", village_rows)
    report.write_geojson(folder / "villages.geojson", demand.lat, demand.lon, village_rows)
    n_units = len(result.sites)
    if draw:
        _site_plots(folder, instance, result, exact, demand, ds, objective, size, values,
                    shares, after)  # fmt: skip
    summary: dict[str, object] = {
        "objective": objective,
        "q": q,
        "units": n_units,
        "unit_size": size,
        "unit_modes": [m.wire for m in modes],
        "weights": instance.weights.tolist(),
        "total": total,
        "existing": {"value": result.base, "share": result.base / total},
        "greedy": {
            "value": result.objective,
            "share": result.objective / total,
            "sites": [demand.ids[int(site_village[s])] for s in result.sites],
            "evaluations": sum(s.evaluations for s in result.steps),
            "seconds": result.seconds,
        },
    }
    if exact is not None:
        summary["exact"] = {
            "value": exact.objective,
            "share": exact.objective / total,
            "bound": exact.bound,
            "bound_share": exact.bound / total,
            "optimal": exact.optimal,
            "status": exact.status,
            "gap": exact.gap(result.objective),
            "sites": [demand.ids[int(site_village[s])] for s in exact.sites],
            "variables": exact.variables,
            "constraints": exact.constraints,
            "seconds": exact.seconds,
        }
    report.write_json(folder / "summary.json", summary)


def _site_plots(
    folder: Path,
    instance: SitingInstance,
    result: GreedyResult,
    exact: ExactResult | None,
    demand: Demand,
    ds: CountyDataset,
    objective: str,
    size: int,
    values: npt.NDArray[np.float64],
    shares: npt.NDArray[np.float64],
    after: npt.NDArray[np.int64],
) -> None:
    total = instance.total
    n_units = len(result.sites)
    label = "expected served" if objective == "expected" else "covered"
    exact_points = [] if exact is None else [(n_units, exact.objective / total)]
    bound_points = [] if exact is None or exact.optimal else [(n_units, exact.bound / total)]
    plots.coverage_curve(
        folder / "coverage_curve.png",
        values,
        shares,
        exact=exact_points,
        bound=bound_points,
        ring_label=label,
        exact_label="MILP optimum (HiGHS)"
        if exact is None or exact.optimal
        else "MILP best found (HiGHS stopped at its time limit)",
        title=f"Coverage vs new units ({objective}; weights "
        f"{', '.join(f'{w:g}' for w in instance.weights)}; units of {size})",
    )
    chosen = np.asarray([instance.sites[s] for s in result.sites], dtype=np.int64)
    plots.village_map(
        folder / "map_best_ring.png",
        demand.lat,
        demand.lon,
        demand.population,
        after,
        title=f"Best ring per village with {n_units} new units (greedy)",
        borders=ds.townships.polygon,
        sites=(demand.lat[chosen], demand.lon[chosen]),
        units=(np.asarray(ds.units.lat), np.asarray(ds.units.lon)),
    )


def _print_site(
    result: GreedyResult,
    exact: ExactResult | None,
    demand: Demand,
    instance: SitingInstance,
    out: TextIO,
) -> None:
    total = result.total
    print(
        f"Siting {len(result.sites)} new units: objective {result.base / total:.2%} -> "
        f"{result.objective / total:.2%} (greedy, {result.seconds * 1000:.0f} ms)",
        file=out,
    )
    if exact is not None:
        state = "optimal" if exact.optimal else "stopped (time limit)"
        print(
            f"  MILP (HiGHS, {exact.seconds:.1f} s, {state}): {exact.objective / total:.2%}, "
            f"bound {exact.bound / total:.2%}, greedy gap {exact.gap(result.objective):.3%}",
            file=out,
        )
    for s in result.steps[:10]:
        print(
            f"  {s.round:>3}. {demand.ids[int(instance.sites[s.site])]}  "
            f"+{s.gain / total:.3%}  "
            f"({s.evaluations} re-evaluations)",
            file=out,
        )
