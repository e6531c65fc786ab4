"""ETA from many origins to one point: crow-fly and road models.

Run: ``.venv/bin/python -m benchmarks.bench_travel [--roads PATH] [--repeats N]``

Figures (medians and p99 over many repeats, milliseconds) for 1,000 and 10,000 origins, in two
layouts: spread over the county like its villages, and normally around the point (sigma 2 km).
Targets: crow-fly <= 1 ms for 10,000 origins; road model, "everything within 5 minutes of the
point" (``limit_s=300``) <= 5 ms, measured cold (Dijkstra cache cleared before every call) and
warm (the same incident asked again, as ranking does while it escalates). The road network is
``data/gucheng/roads.geojson`` when it exists, else a synthetic county-sized network
(:func:`synthetic_county`, printed as such).

This module also holds the helpers the isochrone benchmark shares.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import geopandas as gpd
import numpy as np
import shapely

from geo.cells import cells_of
from geo.modes import ROAD_SPEED_KMH, Mode
from geo.roads import SPEED_COLUMNS, RoadModel, RoadNetwork
from geo.travel import CrowFlyModel, FloatArray, Situation

ROOT: Final = Path(__file__).resolve().parents[1]
DATASET: Final = ROOT / "data" / "gucheng" / "roads.geojson"
VILLAGES: Final = ROOT / "data" / "gucheng" / "villages.geojson"

#: The county seat, Zhengkou (37.3472 N, 115.9651 E): the incident point of the benchmarks.
SEAT: Final = (37.3472, 115.9651)

_M_PER_DEG_LAT: Final = 110_990.0  # at 37.3 N (WGS84 meridional radius), close enough here

# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Median and 99th percentile of a repeated call, milliseconds."""

    median_ms: float
    p99_ms: float
    repeats: int

    def line(self, label: str, target_ms: float | None = None) -> str:
        """One printed row: label, median, p99 and the ratio of the median to the target."""
        text = f"  {label:<58} median {self.median_ms:8.3f} ms   p99 {self.p99_ms:8.3f} ms"
        if target_ms is not None:
            verdict = "ok" if self.median_ms <= target_ms else "OVER"
            text += f"   {self.median_ms / target_ms:5.2f} x target {target_ms:g} ms  {verdict}"
        return text


def measure(
    call: Callable[[], object], repeats: int, before: Callable[[], object] | None = None
) -> Timing:
    """Time ``call`` ``repeats`` times with ``perf_counter_ns`` (``before`` runs untimed)."""
    for _ in range(3):  # warm imports, allocators and CPU caches
        if before is not None:
            before()
        call()
    samples = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter_ns()
        call()
        samples[i] = time.perf_counter_ns() - start
    return Timing(float(np.median(samples)) / 1e6, float(np.percentile(samples, 99)) / 1e6, repeats)


def machine_line() -> str:
    """The core count and interpreter, printed first by every benchmark."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return f"machine: os.cpu_count() = {os.cpu_count()}, usable cores = {affinity}"


# --------------------------------------------------------------------------------------------
# A synthetic county (used until data/gucheng/roads.geojson exists)
# --------------------------------------------------------------------------------------------


def synthetic_county(seed: int = 7, step_m: float = 50.0) -> gpd.GeoDataFrame:
    """A county-sized road network shaped like Gucheng's, for benchmarks.

    31 x 30.4 km (941 km²) around the seat. Township roads every 2 km both ways (county roads
    every 6 km, a provincial cross through the seat), 538 villages of 6 x 6 lanes 100 m apart
    with a connector to the nearest township road. Vertices every ``step_m`` on one lattice, so
    crossings share a vertex. Columns: ``class`` and the four speed columns, like the dataset.
    """
    rng = np.random.default_rng(seed)
    half_x, half_y = 15_500.0, 15_200.0
    lines: list[tuple[str, FloatArray]] = []  # (class, xy metres)

    def straight(x0: float, y0: float, x1: float, y1: float) -> FloatArray:
        n = max(1, round(max(abs(x1 - x0), abs(y1 - y0)) / step_m))
        t = np.linspace(0.0, 1.0, n + 1)
        return np.column_stack([x0 + t * (x1 - x0), y0 + t * (y1 - y0)])

    grid = np.arange(-14_000.0, 14_001.0, 2_000.0)
    for g in grid:
        klass = "provincial" if g == 0 else "county" if g % 6_000 == 0 else "township"
        lines.append((klass, straight(g, -half_y, g, half_y)))
        lines.append((klass, straight(-half_x, g, half_x, g)))
    centres: list[tuple[float, float]] = []
    while len(centres) < 538:
        cx = round(rng.uniform(-half_x + 600, half_x - 600) / step_m) * step_m
        cy = round(rng.uniform(-half_y + 600, half_y - 600) / step_m) * step_m
        if all(math.hypot(cx - a, cy - b) > 900 for a, b in centres):
            centres.append((cx, cy))
    for cx, cy in centres:
        x0, y0 = cx - 250.0, cy - 250.0
        for i in range(6):
            lines.append(("village", straight(x0 + 100 * i, y0, x0 + 100 * i, y0 + 500)))
            lines.append(("village", straight(x0, y0 + 100 * i, x0 + 500, y0 + 100 * i)))
        # connector from the south-west corner to the nearest township road, west or south
        gx = grid[np.abs(grid - x0).argmin()]
        gy = grid[np.abs(grid - y0).argmin()]
        if abs(gx - x0) < abs(gy - y0):
            lines.append(("village", straight(x0, y0, float(gx), y0)))
        else:
            lines.append(("village", straight(x0, y0, x0, float(gy))))
    lat0, lon0 = SEAT
    m_per_deg_lon = _M_PER_DEG_LAT * math.cos(math.radians(lat0))
    geoms = [
        shapely.LineString(
            np.column_stack([lon0 + xy[:, 0] / m_per_deg_lon, lat0 + xy[:, 1] / _M_PER_DEG_LAT])
        )
        for _, xy in lines
        if len(xy) > 1
    ]
    classes = [klass for klass, xy in lines if len(xy) > 1]
    data: dict[str, object] = {"class": classes}
    for mode in Mode:
        data[SPEED_COLUMNS[mode]] = [ROAD_SPEED_KMH[k][mode] for k in classes]
    return gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4326")


def load_networks(which: str) -> list[tuple[str, RoadNetwork]]:
    """The networks to measure: ``dataset`` (data/gucheng/roads.geojson, if it exists),
    ``synthetic`` (:func:`synthetic_county`, ~13x the dataset's nodes: the scale of a dense
    OpenStreetMap extract) or ``both``; each with a printed description."""
    out: list[tuple[str, RoadNetwork]] = []
    if which in ("dataset", "both"):
        if DATASET.exists():
            start = time.perf_counter()
            network = RoadNetwork.from_file(DATASET)
            out.append((f"dataset {DATASET.relative_to(ROOT)}", network))
            _describe(out[-1], time.perf_counter() - start)
        else:
            print("dataset: data/gucheng/roads.geojson does not exist yet; synthetic only")
            which = "synthetic"
    if which in ("synthetic", "both"):
        start = time.perf_counter()
        network = RoadNetwork.from_frame(synthetic_county(), source="synthetic county")
        out.append(("SYNTHETIC county-sized grid", network))
        _describe(out[-1], time.perf_counter() - start)
    return out


def _describe(item: tuple[str, RoadNetwork], built_s: float) -> None:
    name, network = item
    start = time.perf_counter()
    network.prepare_snapping()
    snap_s = time.perf_counter() - start
    print(
        f"network: {name}: {network.n_nodes:,} nodes, {network.n_edges:,} segments; "
        f"graph built in {built_s:.2f} s, snapping grids in {snap_s:.2f} s "
        f"({network.snapping_nbytes / 1e6:.1f} MB)"
    )


# --------------------------------------------------------------------------------------------
# Origins
# --------------------------------------------------------------------------------------------


def origins_villages(
    network: RoadNetwork, n: int, rng: np.random.Generator, villages: bool = True
) -> tuple[FloatArray, FloatArray]:
    """``n`` points spread over the county like its people: around the dataset's villages and
    communities, picked in proportion to their population (150 m jitter: the houses around
    the village point), when ``villages`` and data/gucheng/villages.geojson exists; else
    around random road nodes, so the layout follows the network's density."""
    if villages and VILLAGES.exists():
        frame = gpd.read_file(VILLAGES, engine="pyogrio")
        weight = frame["population"].to_numpy(dtype=np.float64)
        picks = rng.choice(len(frame), size=n, p=weight / weight.sum())
        lat_c = frame.geometry.y.to_numpy()[picks]
        lon_c = frame.geometry.x.to_numpy()[picks]
    else:
        picks = rng.integers(0, network.n_nodes, size=n)
        lat_c, lon_c = network.lat[picks], network.lon[picks]
    lat = lat_c + rng.normal(0.0, 150.0, n) / _M_PER_DEG_LAT
    lon = lon_c + rng.normal(0.0, 150.0, n) / (_M_PER_DEG_LAT * math.cos(math.radians(SEAT[0])))
    return lat, lon


def origins_around(
    lat0: float, lon0: float, n: int, rng: np.random.Generator, sigma_m: float = 2_000.0
) -> tuple[FloatArray, FloatArray]:
    """``n`` points normally distributed around ``(lat0, lon0)``."""
    lat = lat0 + rng.normal(0.0, sigma_m, n) / _M_PER_DEG_LAT
    lon = lon0 + rng.normal(0.0, sigma_m, n) / (_M_PER_DEG_LAT * math.cos(math.radians(lat0)))
    return lat, lon


def mixed_modes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mode codes in a plausible mix: 35% walk, 15% bike, 35% e-bike, 15% car."""
    return rng.choice(np.arange(4, dtype=np.uint8), size=n, p=[0.35, 0.15, 0.35, 0.15])


def mixed_situations(n: int, rng: np.random.Generator) -> np.ndarray:
    """Situation codes: a third on patrol, the rest at home or at work."""
    codes = np.array([Situation.PATROL, Situation.HOME, Situation.WORK], dtype=np.uint8)
    return rng.choice(codes, size=n)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def bench_network(name: str, network: RoadNetwork, repeats: int) -> None:
    """Crow-fly and road ETAs on one network, both layouts, 1,000 and 10,000 origins (the
    village layout uses the dataset's villages on the dataset, the nodes elsewhere)."""
    road = RoadModel(network)
    rng = np.random.default_rng(1)
    print(f"\n=== {name} ===")
    for layout in ("villages", "normal 2 km"):
        for n in (1_000, 10_000):
            if layout == "villages":
                lat, lon = origins_villages(network, n, rng, villages=name.startswith("dataset"))
            else:
                lat, lon = origins_around(*SEAT, n, rng)
            print(f"\n{n:,} origins, layout {layout}")
            bench_case(road, lat, lon, rng, repeats)


def bench_case(
    road: RoadModel, lat: FloatArray, lon: FloatArray, rng: np.random.Generator, repeats: int
) -> None:
    """One set of origins: crow-fly for every time, road model for those within 5 minutes."""
    n = len(lat)
    lat0, lon0 = SEAT
    crow = CrowFlyModel()
    modes = mixed_modes(n, rng)
    situations = mixed_situations(n, rng)
    cars = np.full(n, Mode.CAR, dtype=np.uint8)
    target_crow = 1.0 if n == 10_000 else None
    target_road = 5.0 if n == 10_000 else None
    within = road.seconds_to(lat, lon, modes, lat0, lon0, situations=situations, limit_s=300)
    within_car = road.seconds_to(lat, lon, cars, lat0, lon0, limit_s=300)
    print(
        f"  within 5 min by road: {np.isfinite(within).sum():,} (mixed modes and situations), "
        f"{np.isfinite(within_car).sum():,} (all by car, on patrol)"
    )

    def crow_all() -> None:
        crow.seconds_to(lat, lon, modes, lat0, lon0, situations=situations)

    def road_mixed() -> None:
        road.seconds_to(lat, lon, modes, lat0, lon0, situations=situations, limit_s=300)

    def road_cars() -> None:
        road.seconds_to(lat, lon, cars, lat0, lon0, limit_s=300)

    print(measure(crow_all, repeats).line("crow-fly, every time", target_crow))
    cold = measure(road_mixed, repeats, before=road.clear_cache)
    print(cold.line("road, <= 300 s, mixed modes, cold (4 Dijkstras)", target_road))
    print(measure(road_mixed, repeats).line("road, <= 300 s, mixed modes, warm", target_road))
    cold = measure(road_cars, repeats, before=road.clear_cache)
    print(cold.line("road, <= 300 s, all by car, cold", target_road))
    print(measure(road_cars, repeats).line("road, <= 300 s, all by car, warm", target_road))
    # The alternative design, a precomputed table of times per H3 cell, must first find every
    # origin's cell; that step alone is timed here (geo.cells.cells_of, res 9).
    alt = measure(lambda: cells_of(lat, lon, 9), max(10, repeats // 10))
    print(alt.line("(per-H3-cell table: just the origins' cells)", target_road))


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description="ETA benchmark: crow-fly and road models")
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per figure")
    parser.add_argument("--network", choices=("dataset", "synthetic", "both"), default="both")
    args = parser.parse_args()
    print(machine_line())
    print(
        "targets: crow-fly <= 1 ms and road <= 5 ms for 10,000 origins; "
        f"median and p99 over {args.repeats} calls; cold = Dijkstra cache cleared before each"
    )
    for name, network in load_networks(args.network):
        bench_network(name, network, args.repeats)


if __name__ == "__main__":
    main()
