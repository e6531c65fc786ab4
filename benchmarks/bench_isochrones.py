"""Isochrone of one point, all three rings (1, 3, 5 minutes), for both travel models.

Run: ``.venv/bin/python -m benchmarks.bench_isochrones [--repeats N] [--network ...]``

Target: <= 20 ms per isochrone at the default resolution (res 9), every mode, crow-fly and road
models; the road model is measured cold (its Dijkstra cache cleared before every call). Res 10
is printed too, for information: it is why res 9 is the default (see geo/isochrones.py).
"""

from __future__ import annotations

import argparse
import functools

from benchmarks.bench_travel import SEAT, load_networks, machine_line, measure
from geo.isochrones import DEFAULT_RES, isochrone
from geo.modes import Mode
from geo.roads import RoadModel
from geo.travel import CrowFlyModel, TravelModel

TARGET_MS = 20.0


def bench_model(model: TravelModel, label: str, repeats: int, clear: bool) -> None:
    """Every mode at res 9 (against the target) and res 10 (for information)."""
    lat, lon = SEAT
    before = model.clear_cache if clear and isinstance(model, RoadModel) else None
    for res in (DEFAULT_RES, 10):
        for mode in Mode:
            iso = isochrone(model, lat, lon, mode, res=res)
            sizes = "/".join(f"{len(c)}" for c in iso.cells)
            call = functools.partial(isochrone, model, lat, lon, mode, res=res)
            timing = measure(call, repeats, before)
            target = TARGET_MS if res == DEFAULT_RES else None
            name = f"{label}, {mode.wire}, res {res}, cells {sizes}"
            print(timing.line(name, target))


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description="isochrone benchmark: crow-fly and road models")
    parser.add_argument("--repeats", type=int, default=100, help="timed calls per figure")
    parser.add_argument("--network", choices=("dataset", "synthetic", "both"), default="both")
    args = parser.parse_args()
    print(machine_line())
    print(
        f"target: one isochrone (3 rings) <= {TARGET_MS:g} ms at res {DEFAULT_RES}; "
        f"median and p99 over {args.repeats} calls; point: the county seat {SEAT}"
    )
    print("\n=== crow-fly ===")
    bench_model(CrowFlyModel(), "crow-fly", args.repeats, clear=False)
    for name, network in load_networks(args.network):
        print(f"\n=== road: {name} (cold: Dijkstra cache cleared before each call) ===")
        bench_model(RoadModel(network), "road", args.repeats, clear=True)


if __name__ == "__main__":
    main()
