"""Benchmark of the live position index (units/index.py): ingest, queries, memory.

Prints figures, side by side with a naive baseline measured in the same run: a dict-of-sets
index that validates with ``geo.coords`` and calls H3 for every fix (what one writes first).

Workloads, on a synthetic province (``--volunteers`` spread over Hebei's bounding box,
113.5-119.8 E, 36.0-42.6 N, clustered around towns):

* ``patrol``: the steady state. Every volunteer sends a fix every 15 s; it moved up to its
  mode's speed x 15 s (walk 35 m, e-bike 104 m, car 187 m) plus 5 m of GPS jitter. Most fixes
  stay in their H3 cell; the ones that leave it move buckets.
* ``teleport``: the worst case. Every fix lands somewhere new in the province: every fix calls
  H3 and moves buckets.
* ``first fix``: everyone's first fix after a start (every slot enters a bucket).
* ``warm-up``: the patrol rounds after the first fix until the share of volunteers whose
  cell's safe ellipse is armed stops rising (the index arms them lazily, at most 1,024 + m/8
  new ones per call of m fixes); the ``patrol`` figures are measured after it.

Targets (the issue): >= 500,000 fixes/s through ``update_batch``, >= 200,000/s through
``update``, on one core; <= 300 MB added by the index of 1,000,000 volunteers (measured in a
child process with tracemalloc and RSS).

Run: ``.venv/bin/python benchmarks/bench_index.py [--volunteers N] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h3.api.basic_int as h3b
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo.cells import LIVE_RES, cell_of, disk_k_for_radius, grid_disk
from geo.coords import check_latlon
from geo.modes import CROW_FLY_SPEED_MS, Mode
from geo.travel import haversine_m
from units.index import FixOutcome, LiveIndex
from units.vocab import Status

FloatArray = npt.NDArray[np.float64]
IntpArray = npt.NDArray[np.intp]

BBOX = (36.0, 42.6, 113.5, 119.8)  # lat min, lat max, lon min, lon max: Hebei
M_PER_DEG = 111_195.0
FIX_INTERVAL_S = 15.0
GPS_JITTER_M = 5.0
MODE_SHARE = {Mode.WALK: 0.35, Mode.BIKE: 0.10, Mode.EBIKE: 0.40, Mode.CAR: 0.15}
TARGET_BATCH = 500_000
TARGET_SINGLE = 200_000
TARGET_MEMORY_MB = 300.0
QUERY_RADIUS_M = 2_900.0  # a car's 5-minute crow-fly reach (geo/cells.py)

_T0 = time.perf_counter()


def progress(message: str) -> None:
    print(f"  [{time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the province


@dataclass
class Province:
    ids: list[str]
    mode: npt.NDArray[np.uint8]
    lat: FloatArray
    lon: FloatArray
    town_lat: FloatArray
    town_lon: FloatArray
    town_weight: FloatArray


def province(n: int, seed: int = 2026) -> Province:
    """``n`` volunteers around towns of lognormal sizes scattered over the bounding box."""
    rng = np.random.default_rng(seed)
    lat0, lat1, lon0, lon1 = BBOX
    n_towns = max(20, n // 400)
    town_lat = rng.uniform(lat0 + 0.05, lat1 - 0.05, n_towns)
    town_lon = rng.uniform(lon0 + 0.05, lon1 - 0.05, n_towns)
    weight = rng.lognormal(0.0, 1.2, n_towns)
    weight /= weight.sum()
    town = rng.choice(n_towns, n, p=weight)
    sigma_m = rng.uniform(700.0, 4_000.0, n_towns)[town]
    lat = np.clip(town_lat[town] + rng.normal(0.0, 1.0, n) * sigma_m / M_PER_DEG, lat0, lat1)
    kx = np.cos(np.radians(lat))
    lon = np.clip(town_lon[town] + rng.normal(0.0, 1.0, n) * sigma_m / (M_PER_DEG * kx), lon0, lon1)
    modes = np.array(list(MODE_SHARE), dtype=np.uint8)
    mode = rng.choice(modes, n, p=np.array(list(MODE_SHARE.values())))
    ids = [f"V{i:07d}" for i in range(n)]
    return Province(ids, mode, lat, lon, town_lat, town_lon, weight)


def scatter(p: Province, m: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """``m`` new positions around the province's towns (the teleport workload)."""
    lat0, lat1, lon0, lon1 = BBOX
    town = rng.choice(len(p.town_lat), m, p=p.town_weight)
    sigma_m = rng.uniform(700.0, 4_000.0, m)
    lat = np.clip(p.town_lat[town] + rng.normal(0.0, 1.0, m) * sigma_m / M_PER_DEG, lat0, lat1)
    kx = np.cos(np.radians(lat))
    lon = np.clip(
        p.town_lon[town] + rng.normal(0.0, 1.0, m) * sigma_m / (M_PER_DEG * kx), lon0, lon1
    )
    return lat, lon


def patrol_step(
    lat: FloatArray, lon: FloatArray, mode: npt.NDArray[np.uint8], rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Where everyone is one fix interval later."""
    speed = np.array([CROW_FLY_SPEED_MS[m] for m in Mode])[mode]
    dist = speed * FIX_INTERVAL_S * rng.uniform(0.0, 1.0, len(lat))
    angle = rng.uniform(0.0, 2 * math.pi, len(lat))
    north = dist * np.sin(angle) + rng.normal(0.0, GPS_JITTER_M, len(lat))
    east = dist * np.cos(angle) + rng.normal(0.0, GPS_JITTER_M, len(lat))
    new_lat = np.clip(lat + north / M_PER_DEG, -89.0, 89.0)
    new_lon = lon + east / (M_PER_DEG * np.cos(np.radians(new_lat)))
    return new_lat, new_lon


# --------------------------------------------------------------------------- the baseline


class NaiveIndex:
    """What one writes first: dicts and sets, ``check_latlon`` and H3 on every fix."""

    def __init__(self, res: int = LIVE_RES) -> None:
        self.res = res
        self.where: dict[str, tuple[float, float, float, int]] = {}
        self.buckets: dict[int, set[str]] = {}
        self.modes: dict[str, int] = {}

    def add(self, volunteer_id: str, mode: int) -> None:
        self.modes[volunteer_id] = mode

    def update(self, volunteer_id: str, lat: float, lon: float, ts: float, now: float) -> int:
        lat, lon = check_latlon(lat, lon)
        if volunteer_id not in self.modes:
            return 3
        if ts > now + 30.0:
            return 2
        old = self.where.get(volunteer_id)
        if old is not None and ts < old[2]:
            return 1
        cell = h3b.latlng_to_cell(lat, lon, self.res)
        if old is not None and old[3] != cell:
            self.buckets[old[3]].discard(volunteer_id)
        self.buckets.setdefault(cell, set()).add(volunteer_id)
        self.where[volunteer_id] = (lat, lon, ts, cell)
        return 0

    def near(self, lat: float, lon: float, radius_m: float) -> list[str]:
        centre = cell_of(lat, lon, self.res)
        out: list[str] = []
        for cell in grid_disk(centre, disk_k_for_radius(centre, radius_m)).tolist():
            out.extend(self.buckets.get(cell, ()))
        return out


# --------------------------------------------------------------------------- timing


def median_rate(label: str, run: Callable[[int], int], repeats: int) -> float:
    """Median of ``repeats`` runs of ``run(repeat) -> items``, as items per second."""
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        items = run(r)
        rates.append(items / (time.perf_counter() - start))
        progress(f"{label}: repeat {r + 1}/{repeats}: {rates[-1]:,.0f}/s")
    return statistics.median(rates)


def line(label: str, ours: float, base: float | None = None, target: float | None = None) -> None:
    vs_base = f"{ours / base:6.1f}x baseline" if base else " " * 15
    vs_target = f"{ours / target:5.2f}x target ({target:,.0f}/s)" if target else ""
    print(f"  {label:<40} {ours:>11,.0f}/s  {vs_base}  {vs_target}")


def expect_accepted(outcomes: npt.NDArray[np.uint8] | list[FixOutcome]) -> None:
    if np.any(np.asarray(outcomes) != FixOutcome.ACCEPTED):
        raise AssertionError("the benchmark's fixes must all be accepted")


class Clock:
    """Injected time: every round of fixes gets a later timestamp."""

    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def tick(self, seconds: float = FIX_INTERVAL_S) -> float:
        self.now += seconds
        return self.now


# --------------------------------------------------------------------------- ingest


class Ingest:
    """The index and the baseline fed the same fixes, workload by workload."""

    def __init__(self, p: Province, batch: int, repeats: int, sample: int) -> None:
        self.p = p
        self.n = len(p.ids)
        self.batch = batch
        self.repeats = repeats
        self.clock = Clock()
        self.rng = np.random.default_rng(7)
        progress(f"building the index and the baseline of {self.n:,} volunteers")
        self.index = LiveIndex()
        self.slots = self.index.add_many(p.ids, mode=p.mode, status=Status.AVAILABLE)
        self.naive = NaiveIndex()
        for vid, m in zip(p.ids, p.mode.tolist(), strict=True):
            self.naive.add(vid, m)
        self.sample = self.rng.choice(self.n, min(sample, self.n), replace=False)

    def batches(self, sel: IntpArray, lat: FloatArray, lon: FloatArray, t: float) -> None:
        ts = np.full(min(self.batch, len(sel)), t)
        for k in range(0, len(sel), self.batch):
            part = sel[k : k + self.batch]
            out = self.index.update_batch(
                self.slots[part],
                lat[k : k + self.batch],
                lon[k : k + self.batch],
                ts[: len(part)],
                t,
            )
            expect_accepted(out)

    def singles(self, sel: IntpArray, lat: FloatArray, lon: FloatArray, t: float) -> None:
        update = self.index.update
        slots = self.slots[sel].tolist()
        out = [
            update(s, a, o, t, t) for s, a, o in zip(slots, lat.tolist(), lon.tolist(), strict=True)
        ]
        expect_accepted(out)

    def naive_fixes(self, sel: IntpArray, lat: FloatArray, lon: FloatArray, t: float) -> None:
        update = self.naive.update
        ids = self.p.ids
        for i, a, o in zip(sel.tolist(), lat.tolist(), lon.tolist(), strict=True):
            update(ids[i], a, o, t, t)

    def first_fix(self) -> tuple[float, float]:
        """Everyone's first fix; once (there is only one first fix)."""
        everyone = np.arange(self.n)
        t = self.clock.tick()
        start = time.perf_counter()
        self.batches(everyone, self.p.lat, self.p.lon, t)
        ours = self.n / (time.perf_counter() - start)
        progress(f"first fix, update_batch: {ours:,.0f}/s")
        start = time.perf_counter()
        self.naive_fixes(everyone, self.p.lat, self.p.lon, t)
        base = self.n / (time.perf_counter() - start)
        progress(f"first fix, baseline: {base:,.0f}/s")
        return ours, base

    def warm_up(self) -> tuple[int, float, float]:
        """Patrol rounds through ``update_batch`` after the first fix, until the share of
        slots with their safe ellipse armed (lazily, at most 1,024 + m/8 new ones per call of
        m fixes) stops rising: what a restart costs.

        Returns:
            The rounds, the fixes/s over them, the share of slots armed.
        """
        p, rng, n = self.p, self.rng, self.n
        lat, lon = self.index.lat.copy(), self.index.lon.copy()
        rounds, elapsed, armed, before = 0, 0.0, 0.0, -1.0
        while armed - before > 0.005 and rounds < 30:
            before = armed
            lat, lon = patrol_step(lat, lon, p.mode, rng)
            t = self.clock.tick()
            start = time.perf_counter()
            self.batches(np.arange(n), lat, lon, t)
            elapsed += time.perf_counter() - start
            rounds += 1
            armed = float(np.mean(~np.isnan(self.index._ea[:n])))
            progress(f"warm-up round {rounds}: {armed:.0%} armed")
        self.naive_fixes(np.arange(n), lat, lon, self.clock.now)
        return rounds, rounds * n / elapsed, armed

    def patrol(self) -> tuple[float, float, float, float, float]:
        """Rounds of patrol steps through each path in turn, fixes in random order.

        The index and the baseline each keep their own volunteers' positions, so every fix
        either of them sees is one patrol step from the previous one it saw.
        """
        p, rng, n = self.p, self.rng, self.n
        where = {
            "index": (self.index.lat.copy(), self.index.lon.copy()),
            "naive": (self.index.lat.copy(), self.index.lon.copy()),
        }
        paths = {"update_batch": self.batches, "update": self.singles, "baseline": self.naive_fixes}
        rates: dict[str, list[float]] = {name: [] for name in paths}
        changed = 0
        for r in range(self.repeats):
            for name, feed in paths.items():
                lat, lon = where["naive" if name == "baseline" else "index"]
                sel = rng.permutation(n) if name == "update_batch" else self.sample
                new_lat, new_lon = patrol_step(lat[sel], lon[sel], p.mode[sel], rng)
                lat[sel] = new_lat
                lon[sel] = new_lon
                cells_before = self.index.cell.copy()
                t = self.clock.tick()
                start = time.perf_counter()
                feed(sel, new_lat, new_lon, t)
                rates[name].append(len(sel) / (time.perf_counter() - start))
                progress(f"patrol, {name}: repeat {r + 1}/{self.repeats}: {rates[name][-1]:,.0f}/s")
                if name == "update_batch":
                    changed += int(np.count_nonzero(self.index.cell != cells_before))
        # align the baseline with the index for the queries
        self.naive_fixes(np.arange(n), self.index.lat, self.index.lon, self.clock.tick(0.0))
        return (
            statistics.median(rates["update_batch"]),
            statistics.median(rates["update"]),
            statistics.median(rates["baseline"]),
            changed / (self.repeats * n),
            self.clock.now,
        )

    def teleport(self) -> tuple[float, float, float, float]:
        """Every fix somewhere new in the province (the sample only); and H3 alone on such
        points, the floor of any index that computes a cell per moving fix."""
        sample = self.sample
        m = len(sample)

        def h3_only(_: IntpArray, lat: FloatArray, lon: FloatArray, t: float) -> None:
            to_cell = h3b.latlng_to_cell
            for a, o in zip(lat.tolist(), lon.tolist(), strict=True):
                to_cell(a, o, LIVE_RES)

        paths = {
            "update_batch": self.batches,
            "update": self.singles,
            "baseline": self.naive_fixes,
            "H3 alone": h3_only,
        }
        rates: dict[str, list[float]] = {name: [] for name in paths}
        for r in range(self.repeats):
            for k, (name, feed) in enumerate(paths.items()):
                lat, lon = scatter(self.p, m, np.random.default_rng(1000 * r + k))
                t = self.clock.tick()
                start = time.perf_counter()
                feed(sample, lat, lon, t)
                rates[name].append(m / (time.perf_counter() - start))
                progress(
                    f"teleport, {name}: repeat {r + 1}/{self.repeats}: {rates[name][-1]:,.0f}/s"
                )
        batch, single, base, h3_alone = (statistics.median(rates[name]) for name in paths)
        return batch, single, base, h3_alone


def bench_ingest(p: Province, batch: int, repeats: int, sample: int) -> None:
    bench = Ingest(p, batch, repeats, sample)
    first_ours, first_base = bench.first_fix()
    warm_rounds, warm_rate, warm_armed = bench.warm_up()
    patrol_batch, patrol_single, patrol_base, changed, now = bench.patrol()
    bench_queries(p, bench.index, bench.naive, now, repeats)
    tele_batch, tele_single, tele_base, h3_alone = bench.teleport()
    n, m = bench.n, len(bench.sample)
    print(
        f"\ningest, fixes/s, median of {repeats} ({n:,} volunteers; update_batch in batches of "
        f"{batch:,} over everyone, update and the baseline over {m:,} of them)"
    )
    print(f"  patrol (steady state, after the warm-up): {changed:.1%} of the fixes change cell")
    line("patrol, update_batch", patrol_batch, patrol_base, TARGET_BATCH)
    line("patrol, update (one call per fix)", patrol_single, patrol_base, TARGET_SINGLE)
    line("patrol, baseline (dict of sets, H3/fix)", patrol_base)
    line("teleport (worst case), update_batch", tele_batch, tele_base, TARGET_BATCH)
    line("teleport (worst case), update", tele_single, tele_base, TARGET_SINGLE)
    line("teleport, baseline", tele_base)
    line("  H3 latlng_to_cell alone, same points", h3_alone)
    line("first fix of everyone, update_batch", first_ours, first_base, TARGET_BATCH)
    line("first fix, baseline", first_base)
    line(f"warm-up: {warm_rounds} rounds to arm {warm_armed:.0%}, update_batch", warm_rate)


# --------------------------------------------------------------------------- queries


def bench_queries(
    p: Province, index: LiveIndex, naive: NaiveIndex, now: float, repeats: int
) -> None:
    """Who is available near a point, at the biggest towns: the index's query for it (the
    available in the cells of the disk, then the freshness test), against the baseline's
    ``near`` (everyone in the disk's cells: here everyone is available) and a brute-force
    numpy scan."""
    towns = np.argsort(p.town_weight)[::-1][:20]
    points = list(zip(p.town_lat[towns].tolist(), p.town_lon[towns].tolist(), strict=True))
    disks = [
        grid_disk(centre, disk_k_for_radius(centre, QUERY_RADIUS_M))
        for centre in (cell_of(a, o, index.res) for a, o in points)
    ]
    found = [len(index.available_in_cells(disk)) for disk in disks]
    base_found = [len(naive.near(a, o, QUERY_RADIUS_M)) for a, o in points]
    if not found == base_found == [len(index.near(a, o, QUERY_RADIUS_M)) for a, o in points]:
        raise AssertionError("the index and the baseline disagree")
    lat, lon = index.lat.copy(), index.lon.copy()

    def ours(_: int) -> int:
        for a, o in points:
            centre = cell_of(a, o, index.res)
            disk = grid_disk(centre, disk_k_for_radius(centre, QUERY_RADIUS_M))
            index.fresh_available(index.available_in_cells(disk), now)
        return len(points)

    def baseline(_: int) -> int:
        for a, o in points:
            naive.near(a, o, QUERY_RADIUS_M)
        return len(points)

    def scan(_: int) -> int:
        for a, o in points:
            np.flatnonzero(haversine_m(lat, lon, a, o) <= QUERY_RADIUS_M)
        return len(points)

    q_ours = median_rate("available_in_cells + fresh_available", ours, repeats)
    q_base = median_rate("near, baseline", baseline, repeats)
    q_scan = median_rate("brute-force haversine scan", scan, repeats)
    print(
        f"\nqueries: who is available within {QUERY_RADIUS_M:,.0f} m, at the 20 biggest towns "
        f"(median {statistics.median(found):,.0f} candidates in the disk)"
    )
    print(
        f"  available_in_cells(disk) + fresh_available: {1e6 / q_ours:8.1f} µs/query; "
        f"{q_ours / q_base:.1f}x the dict-of-sets baseline, "
        f"{q_ours / q_scan:.0f}x a numpy haversine scan of everyone"
    )


# --------------------------------------------------------------------------- memory


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build(p: Province, which: str) -> object:
    """The index (``ours``) or the baseline of the province, everyone with a fix (two for
    the index, so that the per-cell ellipse cache is full too)."""
    n = len(p.ids)
    ts = np.full(n, 1_790_000_000.0)
    if which == "ours":
        index = LiveIndex()
        slots = index.add_many(p.ids, mode=p.mode, status=Status.AVAILABLE)
        step = 50_000
        for again in (0.0, FIX_INTERVAL_S):  # the second fix arms everyone's safe ellipse
            for k in range(0, n, step):
                part = slice(k, k + step)
                t = ts[0] + again
                index.update_batch(slots[part], p.lat[part], p.lon[part], ts[part] + again, t)
        return index
    naive = NaiveIndex()
    for vid, m, a, o in zip(p.ids, p.mode.tolist(), p.lat.tolist(), p.lon.tolist(), strict=True):
        naive.add(vid, m)
        naive.update(vid, a, o, ts[0], ts[0])
    return naive


def memory_child(n: int, which: str, how: str) -> dict[str, float]:
    """Memory added by building ``which`` for ``n`` volunteers (their ids exist before).

    ``how``: ``traced`` (tracemalloc: bytes Python and numpy allocated and kept, and the peak)
    or ``rss`` (resident set growth, without tracemalloc's own bookkeeping).
    """
    p = province(n)
    if how == "traced":
        tracemalloc.start()
        kept = build(p, which)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert kept is not None
        return {"retained_mb": current / 2**20, "peak_mb": peak / 2**20}
    before = rss_mb()
    kept = build(p, which)
    assert kept is not None
    return {"rss_mb": rss_mb() - before}


def bench_memory(n: int) -> None:
    results: dict[str, dict[str, float]] = {"ours": {}, "naive": {}}
    for which in results:
        for how in ("traced", "rss"):
            progress(f"memory: {which}, {how}, {n:,} volunteers, in a child process")
            out = subprocess.run(
                [sys.executable, __file__, "--_memory-child", str(n), which, how],
                check=True,
                capture_output=True,
                text=True,
            )
            results[which] |= json.loads(out.stdout)
    ours, naive = results["ours"], results["naive"]
    print(f"\nmemory added for {n:,} volunteers, each with a fix (their id strings exist before)")
    for label, r in (("LiveIndex", ours), ("baseline", naive)):
        print(
            f"  {label:<10} {r['retained_mb']:6.1f} MB retained, {r['peak_mb']:6.1f} MB peak "
            f"(tracemalloc), {r['rss_mb']:6.1f} MB RSS growth"
        )
    print(
        f"  LiveIndex: {ours['retained_mb'] / TARGET_MEMORY_MB:.2f}x the "
        f"{TARGET_MEMORY_MB:.0f} MB target retained ({ours['rss_mb'] / TARGET_MEMORY_MB:.2f}x "
        f"in RSS); {ours['retained_mb'] / naive['retained_mb']:.2f}x the baseline's memory"
    )


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volunteers", type=int, default=1_000_000, help="province size")
    parser.add_argument("--quick", action="store_true", help="100,000 volunteers, 3 repeats")
    parser.add_argument("--batch", type=int, default=10_000, help="fixes per update_batch call")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per figure")
    parser.add_argument("--memory-volunteers", type=int, default=1_000_000)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory figures")
    parser.add_argument("--_memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._memory_child:
        size, which, how = args._memory_child
        print(json.dumps(memory_child(int(size), which, how)))
        return
    n = 100_000 if args.quick and args.volunteers == 1_000_000 else args.volunteers
    repeats = args.repeats or (3 if args.quick else 5)
    print(
        f"bench_index: os.cpu_count() = {os.cpu_count()} (one core used), "
        f"python {sys.version.split()[0]}, numpy {np.__version__}, res {LIVE_RES}"
    )
    print(
        f"  {n:,} volunteers, batch {args.batch:,}, {repeats} repeats; the machine's other load "
        "shows in the spread of the repeats (stderr)"
    )
    p = province(n)
    bench_ingest(p, args.batch, repeats, sample=min(n, 200_000))
    if not args.no_memory:
        bench_memory(args.memory_volunteers)


if __name__ == "__main__":
    main()
