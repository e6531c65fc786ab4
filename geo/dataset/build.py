"""``dispatch dataset build``: regenerate ``data/gucheng/`` from its sources.

Theory of operation
-------------------
A pipeline of pure stages, each fed by its own random stream derived from the seed
(``numpy.random.default_rng([seed, stage])``), so that changing how one stage draws does not
reshuffle the others:

1. read the sources (:mod:`geo.dataset.sources`);
2. township polygons (:mod:`geo.dataset.partition`);
3. villages and communities, then police stations and workstations, then units
   (:mod:`geo.dataset.places`);
4. roads (:mod:`geo.dataset.roadnet`);
5. volunteers (:mod:`geo.dataset.people`);
6. write the files (:mod:`geo.dataset.output`), the manifest and ``overview.png``.

The same seed gives byte-identical files with the same library versions (numpy's generators,
GEOS and PROJ are deterministic; a new major version may legitimately move a vertex, after
which the committed dataset is rebuilt and re-validated). One line per stage goes to stderr.

:data:`DEFAULT_SEED` is 20231015: the Gucheng volunteer police association was founded in
October 2023.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import Polygon

from dispatch.errors import DatasetError
from geo.dataset import schema
from geo.dataset.frame import geom_to_lonlat, geom_to_xy, to_lonlat, to_xy
from geo.dataset.output import (
    feature,
    linestring,
    point,
    polygon,
    write_atomic,
    write_csv,
    write_geojson,
)
from geo.dataset.partition import fit_partition
from geo.dataset.people import Volunteers, make_volunteers
from geo.dataset.places import (
    Places,
    Stations,
    Township,
    Units,
    place_stations,
    place_units,
    place_villages,
)
from geo.dataset.plot import plot_overview
from geo.dataset.roadnet import Road, build_roads
from geo.dataset.sources import Sources, TownshipSource, read_sources
from geo.modes import ROAD_SPEED_KMH, Mode

__all__ = ["DEFAULT_SEED", "DEFAULT_SOURCES", "build"]

#: The documented seed of the committed dataset.
DEFAULT_SEED: Final = 20231015
DEFAULT_SOURCES: Final = Path(__file__).resolve().parents[2] / "data" / "gucheng" / "sources"

_STAGES: Final = ("partition", "villages", "stations", "units", "roads", "volunteers")


class _Log:
    """One line per stage on stderr, with its duration."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def __call__(self, stage: str, detail: str) -> None:
        now = time.perf_counter()
        print(f"[dataset] {stage:<11} {now - self.last:5.1f}s  {detail}", file=sys.stderr)
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.start


def _townships(src: Sources, log: _Log) -> tuple[list[Township], list[dict[str, Any]]]:
    region = geom_to_xy(src.boundary)
    ts = src.townships
    sx, sy = to_xy([t.seat_lon for t in ts], [t.seat_lat for t in ts])
    known = np.array([t.area_km2 for t in ts])
    targets = known / known.sum() * region.area
    fit = fit_partition(
        np.column_stack([sx, sy]),
        targets,
        region,
        np.array([t.seat_uncertainty_m for t in ts]),
    )
    polys = [shapely.remove_repeated_points(geom_to_lonlat(p)) for p in fit.polygons]
    if not all(isinstance(p, Polygon) and p.is_valid for p in polys):
        raise DatasetError("township polygons became invalid when rounded to lon/lat")
    if not bool(shapely.coverage_is_valid(polys)):
        raise DatasetError("township polygons do not form a clean coverage")
    seat_lon, seat_lat = to_lonlat(fit.seats[:, 0], fit.seats[:, 1])
    out, facts = [], []
    for i, t in enumerate(ts):
        moved = fit.shifts_m[i] >= 0.5
        lon = float(seat_lon[i]) if moved else t.seat_lon
        lat = float(seat_lat[i]) if moved else t.seat_lat
        poly = polys[i]
        out.append(
            Township(
                code=t.code,
                name=t.name,
                population=t.population,
                villages=t.villages,
                seat_lon=lon,
                seat_lat=lat,
                polygon=poly,
                polygon_xy=geom_to_xy(poly),
            )
        )
        facts.append(_township_properties(t, lat, lon, float(fit.shifts_m[i]), out[-1]))
    log(
        "townships",
        f"power diagram: {fit.newton_iterations} Newton steps, {fit.seat_rounds} seat rounds, "
        f"max area error {fit.max_area_error:.2e}; seats moved (m): "
        + ", ".join(
            f"{t.pinyin} {s:.0f}" for t, s in zip(ts, fit.shifts_m, strict=True) if s > 0.5
        ),
    )
    return out, facts


def _township_properties(
    t: TownshipSource, lat: float, lon: float, shift: float, township: Township
) -> dict[str, Any]:
    notes = t.notes
    if shift >= 0.5:
        notes = (
            f"seat estimate moved {shift:.0f} m (source {t.seat_lat}, {t.seat_lon}; stated "
            f"uncertainty {t.seat_uncertainty_m / 1000:.0f} km) so that it lies inside the "
            f"township's area-matched power cell; {notes}"
        ).rstrip("; ")
    return {
        "code": t.code,
        "name": t.name,
        "pinyin": t.pinyin,
        "seat_lat": lat,
        "seat_lon": lon,
        "seat_shift_m": round(shift),
        "area_km2": t.area_km2,
        "polygon_area_km2": round(township.polygon_xy.area / 1e6, 3),
        "population": t.population,
        "villages": t.villages,
        "communities": schema.N_COMMUNITIES if t.code == schema.SEAT_TOWNSHIP_CODE else 0,
        "source_status": t.status,
        "notes": notes,
    }


def _write(
    out: Path,
    src: Sources,
    townships: list[Township],
    facts: list[dict[str, Any]],
    places: Places,
    stations: Stations,
    units: Units,
    roads: list[Road],
    people: Volunteers,
) -> None:
    codes = [t.code for t in townships]
    write_geojson(
        out / schema.BOUNDARY,
        [
            feature(
                polygon(src.boundary),
                {
                    "adcode": 131126,
                    "name": "故城县",
                    "source_status": "derived",
                    "note": "DataV GCJ-02 outline converted to WGS84 (sources/SOURCES.md)",
                },
            )
        ],
    )
    write_geojson(
        out / schema.TOWNSHIPS,
        [feature(polygon(t.polygon), f) for t, f in zip(townships, facts, strict=True)],
    )
    write_geojson(
        out / schema.VILLAGES,
        [
            feature(
                point(places.lon[i], places.lat[i]),
                {
                    "id": places.id[i],
                    "name": places.name[i],
                    "kind": schema.VILLAGE_KINDS[int(places.is_community[i])],
                    "township_code": codes[int(places.township[i])],
                    "population": int(places.population[i]),
                    "position_status": "estimated",
                },
            )
            for i in range(len(places))
        ],
    )
    station_features = []
    for i, sid in enumerate(stations.id):
        s, v = int(stations.station[i]), int(stations.village[i])
        station_features.append(
            feature(
                point(stations.lon[i], stations.lat[i]),
                {
                    "id": sid,
                    "name": stations.name[i],
                    "kind": stations.kind[i],
                    "township_code": codes[int(stations.township[i])],
                    "station_id": stations.id[s] if s >= 0 else None,
                    "village_id": places.id[v] if v >= 0 else None,
                    "status": "synthetic" if v >= 0 else "hypothetical",
                    "basis": stations.basis[i],
                },
            )
        )
    write_geojson(out / schema.STATIONS, station_features)
    members = Counter(people.unit[people.unit >= 0].tolist())
    write_geojson(
        out / schema.UNITS,
        [
            feature(
                point(places.lon[v], places.lat[v]),
                {
                    "id": units.id[u],
                    "name": units.name[u],
                    "village_id": places.id[v],
                    "township_code": codes[int(places.township[v])],
                    "workstation_id": stations.id[int(units.workstation[u])],
                    "station_id": stations.id[int(units.station[u])],
                    "members": members[u],
                    "status": "synthetic",
                },
            )
            for u, v in enumerate(units.village.tolist())
        ],
    )
    write_geojson(
        out / schema.ROADS,
        [
            feature(
                linestring(r.coords),
                {
                    "id": f"R{k + 1:04d}",
                    "name": r.name,
                    "class": r.road_class,
                    **{
                        f"speed_{m.wire}_kmh": round(ROAD_SPEED_KMH[r.road_class][m], 2)
                        for m in Mode
                    },
                    "source_status": r.status,
                },
            )
            for k, r in enumerate(roads)
        ],
    )
    write_csv(
        out / schema.VOLUNTEERS,
        schema.VOLUNTEER_FIELDS,
        (
            (
                people.id[i],
                people.name[i],
                units.id[int(people.unit[i])] if people.unit[i] >= 0 else "",
                places.id[int(people.village[i])],
                people.roles[i],
                people.teams[i],
                people.mode[i],
                repr(round(float(people.lat[i]), 6)),
                repr(round(float(people.lon[i]), 6)),
                people.duty[i],
                people.duty_hours[i],
                people.duty_days[i],
            )
            for i in range(len(people))
        ),
    )


def _manifest(out: Path, seed: int, src: Sources, counts: dict[str, int]) -> None:
    body = {
        "generator": "geo.dataset.build",
        "seed": seed,
        "counts": counts,
        "sources": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(src.files)},
    }
    text = json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    write_atomic(out / schema.BUILD_MANIFEST, text.encode("utf-8"))


def build(out_dir: Path, *, seed: int = DEFAULT_SEED, sources_dir: Path | None = None) -> None:
    """Generate the county dataset into ``out_dir`` (created if needed).

    Args:
        out_dir: the folder to write (existing dataset files are replaced; ``sources/`` is
            never touched).
        seed: the random seed; the same seed gives byte-identical files.
        sources_dir: the source facts (default: ``data/gucheng/sources`` of the repository).

    Raises:
        DatasetError: a source file is missing or malformed, or an invariant cannot be met
            (the message says which).
    """
    log = _Log()
    src = read_sources(sources_dir or DEFAULT_SOURCES)
    rngs = {name: np.random.default_rng([seed, k]) for k, name in enumerate(_STAGES)}
    log("sources", f"{len(src.townships)} townships, {len(src.stations)} police stations")

    townships, facts = _townships(src, log)
    seat_township = next(i for i, t in enumerate(townships) if t.code == schema.SEAT_TOWNSHIP_CODE)
    places = place_villages(townships, rngs["villages"])
    n_comm = int(places.is_community.sum())
    log("villages", f"{len(places) - n_comm} villages + {n_comm} communities")
    stations = place_stations(townships, places, src.stations)
    n_ws = len(stations.workstations())
    log("stations", f"{len(stations.id) - n_ws} police stations, {n_ws} workstations")
    units = place_units(townships, places, stations, rngs["units"])
    log("units", f"{len(units)} minimum emergency units")
    source_seats = np.array([(t.seat_lon, t.seat_lat) for t in src.townships])
    roads, stats = build_roads(
        places, townships, src.boundary, src.roads, src.bridges, seat_township, source_seats
    )
    by_class = Counter(r.road_class for r in roads)
    log(
        "roads",
        f"{stats['features']} roads ({dict(by_class)}), {stats['vertices']} vertices, "
        f"noded in {stats['noding_rounds']} rounds, connected",
    )
    people = make_volunteers(places, townships, units, rngs["volunteers"])
    in_units = int((people.unit >= 0).sum())
    log("volunteers", f"{len(people)} volunteers, {in_units} in units")

    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir, src, townships, facts, places, stations, units, roads, people)
    counts = {
        "townships": len(townships),
        "villages": len(places) - n_comm,
        "communities": n_comm,
        "police_stations": len(stations.id) - n_ws,
        "workstations": n_ws,
        "units": len(units),
        "roads": len(roads),
        "volunteers": len(people),
        "volunteers_in_units": in_units,
    }
    _manifest(out_dir, seed, src, counts)
    ws = stations.workstations()
    police = np.setdiff1d(np.arange(len(stations.id)), ws)
    plot_overview(
        out_dir / schema.OVERVIEW,
        boundary=src.boundary,
        townships=[
            (s.pinyin, t.polygon, t.seat_lon, t.seat_lat)
            for s, t in zip(src.townships, townships, strict=True)
        ],
        roads=[(r.road_class, r.coords) for r in roads],
        villages=(places.lon, places.lat, places.is_community),
        police=(stations.lon[police], stations.lat[police]),
        workstations=(stations.lon[ws], stations.lat[ws]),
        units=(places.lon[units.village], places.lat[units.village]),
        title=(
            f"Gucheng county dataset (seed {seed}): {counts['villages']} villages, "
            f"{n_comm} communities, {n_ws} workstations, {len(units)} units, "
            f"{len(roads)} roads"
        ),
    )
    log("written", f"{out_dir} (total {log.total():.1f}s)")
