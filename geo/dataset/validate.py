"""``dispatch dataset validate``: check every invariant of a county dataset folder.

Theory of operation
-------------------
The validator trusts nothing but the files: it reads them the way the loader does (geopandas
with the pyogrio engine; pandas for the CSV) and runs a list of named checks, each of which
either passes with a one-line summary or fails with the first offenders. A check that needs a
layer that could not be read is skipped (the read itself has already failed), so one broken
file gives one clear failure instead of an exception. Only an unreadable *folder* raises.

What is checked (check names in brackets; tests match on them):

* ``read``, ``crs``, ``fields``, ``coordinates``: every file parses, is WGS84 (EPSG:4326 or
  OGC:CRS84, read with pyogrio), has exactly the fields of :mod:`geo.dataset.schema` and the
  right geometry type, and its coordinates are finite, in range, and rounded to 6 decimals;
* ``counts``, ``unique ids``, ``id format``, ``population``: the county's figures (13
  townships, 538 villages + 13 communities with per-township counts, 26 workstations, at least
  200 units, 13,556 volunteers, 513,400 residents summed per township);
* ``township polygons``: valid, tiling the outline (gaps and overlaps below
  :data:`TILING_TOLERANCE_KM2`), each seat inside its own polygon, each area within 1% of its
  known area scaled to the outline's area;
* ``inside boundary``, ``inside township``, ``village clearance``: points where they belong,
  villages at least :data:`CLEARANCE_M` from their township's border (seats excepted);
* ``references``, ``unit members``, ``vocabulary``, ``volunteer homes``: every id resolves,
  units have 8-15 members, every enumerated value is known, homes lie near their village;
* ``roads``: classes, speeds and segment lengths; ``roads inside boundary``; ``roads noded`` (no
  crossing without a shared vertex); ``roads connected`` (one component of the graph built from
  identical vertex coordinates with scipy's ``connected_components``, see
  :mod:`geo.dataset.network`: the strict definition, whatever a builder's merge tolerance);
  ``road graph per mode`` (the engine's own builder, :class:`geo.roads.RoadNetwork`, finds its
  graph strongly connected for every mode; skipped where that module is absent);
  ``villages on roads`` (every village is a road vertex).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import geopandas
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from shapely.geometry import Point

from dispatch.errors import DatasetError
from geo.dataset import schema
from geo.dataset.frame import WGS84, FloatArray, geom_to_xy, to_xy
from geo.dataset.network import components, crossings, segments
from geo.modes import Mode
from units.vocab import ROLE_NAMES, TEAM_NAMES

__all__ = ["CLEARANCE_M", "TILING_TOLERANCE_KM2", "ValidationReport", "validate"]

#: Gaps or overlaps between township polygons below this are float noise (rounding the
#: vertices where township borders meet the outline moves them by up to 0.07 m).
TILING_TOLERANCE_KM2: Final = 0.001
AREA_TOLERANCE: Final = 0.01
CLEARANCE_M: Final = 290.0  # 300 m promised, 10 m of slack
MAX_SEGMENT_M: Final = 300.0
MAX_HOME_DISTANCE_M: Final = 1_000.0
_ROUNDING: Final = 1e-9
_SHOW: Final = 3  # offenders quoted per failure

_GEOMETRY: Final = {
    schema.BOUNDARY: "Polygon",
    schema.TOWNSHIPS: "Polygon",
    schema.VILLAGES: "Point",
    schema.STATIONS: "Point",
    schema.UNITS: "Point",
    schema.ROADS: "LineString",
}
_FIELDS: Final[dict[str, tuple[str, ...] | None]] = {
    schema.BOUNDARY: None,  # free-form properties
    schema.TOWNSHIPS: schema.TOWNSHIP_FIELDS,
    schema.VILLAGES: schema.VILLAGE_FIELDS,
    schema.STATIONS: schema.STATION_FIELDS,
    schema.UNITS: schema.UNIT_FIELDS,
    schema.ROADS: schema.ROAD_FIELDS,
    schema.VOLUNTEERS: schema.VOLUNTEER_FIELDS,
}


@dataclass
class ValidationReport:
    """The outcome of :func:`validate`: one line per check, and the failures among them."""

    path: Path
    checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.failures

    def __str__(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.failures)} FAILED"
        passed = sum(line.startswith("PASS") for line in self.checks)
        tail = f"{self.path}: {verdict} ({passed} of {len(self.checks)} checks passed)"
        return "\n".join([*self.checks, tail])


class _Fail(Exception):
    """A check's verdict (not an error of the validator)."""


def _expect(problems: Sequence[str], what: str) -> None:
    if problems:
        shown = "; ".join(problems[:_SHOW])
        more = f" (+{len(problems) - _SHOW} more)" if len(problems) > _SHOW else ""
        raise _Fail(f"{what}: {shown}{more}")


def _dupes(values: Iterable[object]) -> list[str]:
    return [f"{v!r} x{n}" for v, n in Counter(values).items() if n > 1]


class _Checker:
    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        self.layers: dict[str, Any] = {}

    def fail(self, name: str, detail: str) -> None:
        line = f"FAIL {name}: {detail}"
        self.report.checks.append(line)
        self.report.failures.append(line.removeprefix("FAIL "))

    def run(self, name: str, needs: Sequence[str], check: Callable[[], str]) -> None:
        missing = [n for n in needs if n not in self.layers]
        if missing:
            self.report.checks.append(f"SKIP {name}: needs {', '.join(missing)}")
            return
        try:
            detail = check()
        except _Fail as verdict:
            self.fail(name, str(verdict))
        except Exception as exc:  # a broken file must give a failure, never a crash
            self.fail(name, f"could not check ({type(exc).__name__}: {exc})")
        else:
            self.report.checks.append(f"PASS {name}: {detail}")


# --- reading ---------------------------------------------------------------------------------
def _is_wgs84(crs: object) -> bool:
    if crs is None:
        return False
    return bool(CRS.from_user_input(crs).equals(WGS84, ignore_axis_order=True))


def _read(c: _Checker, folder: Path) -> None:
    for name in schema.GEOJSON_FILES:
        path = folder / name
        try:
            info = pyogrio.read_info(path)
            frame = geopandas.read_file(path, engine="pyogrio")
        except Exception as exc:
            c.fail(f"read {name}", f"{type(exc).__name__}: {exc}")
            continue
        c.report.checks.append(f"PASS read {name}: {len(frame)} features")
        if _is_wgs84(info.get("crs")):
            c.report.checks.append(f"PASS crs {name}: {info.get('crs')}")
        else:
            c.fail(f"crs {name}", f"{info.get('crs')!r} is not WGS84 (EPSG:4326 / OGC:CRS84)")
        if _fields_ok(c, name, [col for col in frame.columns if col != "geometry"], frame):
            c.layers[name] = frame
    path = folder / schema.VOLUNTEERS
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        c.fail(f"read {schema.VOLUNTEERS}", f"{type(exc).__name__}: {exc}")
        return
    c.report.checks.append(f"PASS read {schema.VOLUNTEERS}: {len(table)} rows")
    if _fields_ok(c, schema.VOLUNTEERS, list(table.columns), None):
        c.layers[schema.VOLUNTEERS] = table


def _fields_ok(c: _Checker, name: str, columns: list[str], frame: Any) -> bool:
    """Report the ``fields`` check; the layer is usable unless a field is missing."""
    expected = _FIELDS[name]
    missing = [f for f in expected or () if f not in columns]
    unknown = [f for f in columns if expected is not None and f not in expected]
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if unknown:
        problems.append(f"unknown {unknown}")
    if frame is not None:
        kinds = Counter(frame.geometry.geom_type.fillna("none"))
        wrong = {k: n for k, n in kinds.items() if k != _GEOMETRY[name]}
        if wrong:
            problems.append(f"geometries must be {_GEOMETRY[name]}, found {wrong}")
            missing.append("geometry")
    if problems:
        c.fail(f"fields {name}", "; ".join(problems))
    else:
        c.report.checks.append(f"PASS fields {name}: {len(columns)} fields")
    return not missing


# --- helpers ---------------------------------------------------------------------------------
def _xy_points(frame: Any) -> FloatArray:
    coords = shapely.get_coordinates(np.asarray(frame.geometry.values))
    return np.asarray(coords, dtype=np.float64)


def _status_object(value: object) -> dict[str, Any]:
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict):
        raise _Fail(f"source_status must be an object, got {value!r}")
    return parsed


def _split(cell: str) -> list[str]:
    return [part for part in cell.split(schema.LIST_SEP) if part] if cell else []


# --- the checks ------------------------------------------------------------------------------
def _check_coordinates(c: _Checker) -> None:
    def check(name: str) -> Callable[[], str]:
        def run() -> str:
            if name == schema.VOLUNTEERS:
                table = c.layers[name]
                lat = pd.to_numeric(table["home_lat"], errors="coerce").to_numpy(np.float64)
                lon = pd.to_numeric(table["home_lon"], errors="coerce").to_numpy(np.float64)
                coords = np.column_stack([lon, lat])
            else:
                coords = shapely.get_coordinates(np.asarray(c.layers[name].geometry.values))
            problems = []
            finite = np.isfinite(coords).all(axis=1)
            if not finite.all():
                problems.append(f"{int((~finite).sum())} missing or non-finite")
            lon, lat = coords[finite, 0], coords[finite, 1]
            out = (np.abs(lon) > 180) | (np.abs(lat) > 90)
            if out.any():
                problems.append(f"{int(out.sum())} out of range, e.g. {coords[finite][out][0]}")
            unrounded = np.abs(np.round(coords[finite], 6) - coords[finite]) > _ROUNDING
            if unrounded.any():
                problems.append(f"{int(unrounded.any(axis=1).sum())} not rounded to 6 decimals")
            _expect(problems, name)
            return f"{len(coords)} coordinates in range, 6 decimals"

        return run

    for name in (*schema.GEOJSON_FILES, schema.VOLUNTEERS):
        c.run(f"coordinates {name}", [name], check(name))


def _check_counts(c: _Checker) -> str:
    t, v, s, u = (
        c.layers[n] for n in (schema.TOWNSHIPS, schema.VILLAGES, schema.STATIONS, schema.UNITS)
    )
    vol = c.layers[schema.VOLUNTEERS]
    problems = []
    if len(t) != schema.N_TOWNSHIPS:
        problems.append(f"{len(t)} townships, expected {schema.N_TOWNSHIPS}")
    kinds = Counter(v["kind"])
    if kinds["village"] != schema.N_VILLAGES or kinds["community"] != schema.N_COMMUNITIES:
        problems.append(
            f"{kinds['village']} villages + {kinds['community']} communities, expected "
            f"{schema.N_VILLAGES} + {schema.N_COMMUNITIES}"
        )
    per_town = Counter(zip(v["township_code"], v["kind"], strict=True))
    for code, villages, communities in zip(t["code"], t["villages"], t["communities"], strict=True):
        got_v, got_c = per_town[(code, "village")], per_town[(code, "community")]
        if got_v != villages or got_c != communities:
            problems.append(
                f"township {code}: {got_v} villages + {got_c} communities, its record says "
                f"{villages} + {communities}"
            )
    n_ws = int((s["kind"] == "workstation").sum())
    if n_ws != schema.N_WORKSTATIONS:
        problems.append(f"{n_ws} workstations, expected {schema.N_WORKSTATIONS}")
    if len(u) < schema.MIN_UNITS:
        problems.append(f"{len(u)} units, expected at least {schema.MIN_UNITS}")
    if len(vol) != schema.N_VOLUNTEERS:
        problems.append(f"{len(vol)} volunteers, expected {schema.N_VOLUNTEERS}")
    _expect(problems, "wrong counts")
    return (
        f"{len(t)} townships, {kinds['village']} villages + {kinds['community']} communities "
        f"(per township as recorded), {len(s) - n_ws} police stations, {n_ws} workstations, "
        f"{len(u)} units, {len(vol)} volunteers"
    )


def _check_unique(c: _Checker) -> str:
    problems = []
    columns = {
        schema.TOWNSHIPS: ("code", "name"),
        schema.VILLAGES: ("id", "name"),
        schema.STATIONS: ("id",),
        schema.UNITS: ("id", "village_id"),
        schema.ROADS: ("id",),
        schema.VOLUNTEERS: ("id",),
    }
    for name, cols in columns.items():
        for col in cols:
            dup = _dupes(c.layers[name][col])
            if dup:
                problems.append(f"{name}.{col} not unique: {', '.join(dup[:_SHOW])}")
    _expect(problems, "duplicates")
    return "township codes and names, village ids and names, station, unit, road, volunteer ids"


def _check_id_format(c: _Checker) -> str:
    v = c.layers[schema.VILLAGES]
    problems = []
    for vid, code, kind in zip(v["id"], v["township_code"], v["kind"], strict=True):
        ok = bool(re.fullmatch(r"\d{12}", str(vid))) and str(vid).startswith(str(code))
        serial = int(str(vid)[9:]) if ok else -1
        if (
            not ok
            or (kind == "community" and not 1 <= serial <= 199)
            or (kind == "village" and not 200 <= serial <= 399)
        ):
            problems.append(f"{vid} ({kind} of {code})")
    if not all(re.fullmatch(r"\d{9}", str(code)) for code in c.layers[schema.TOWNSHIPS]["code"]):
        problems.append("township codes must have 9 digits")
    _expect(problems, "village ids must be township code + 001-199 (社区) or 200-399 (村)")
    return "12-digit village codes: township + 001-199 communities, 200-399 villages"


def _check_population(c: _Checker) -> str:
    t, v = c.layers[schema.TOWNSHIPS], c.layers[schema.VILLAGES]
    problems = []
    total = int(t["population"].sum())
    if total != schema.TOTAL_POPULATION:
        problems.append(f"townships sum to {total:,}, expected {schema.TOTAL_POPULATION:,}")
    if (v["population"] <= 0).any():
        problems.append(f"{int((v['population'] <= 0).sum())} villages without residents")
    sums = v.groupby("township_code")["population"].sum()
    for code, pop in zip(t["code"], t["population"], strict=True):
        got = int(sums.get(code, 0))
        if got != int(pop):
            problems.append(f"township {code}: villages sum to {got:,}, township says {pop:,}")
    _expect(problems, "population")
    return f"county {total:,}; every township's villages and communities sum to its population"


def _check_townships(c: _Checker) -> str:
    t, b = c.layers[schema.TOWNSHIPS], c.layers[schema.BOUNDARY]
    boundary = geom_to_xy(shapely.union_all(np.asarray(b.geometry.values)))
    polys = [geom_to_xy(g) for g in t.geometry]
    problems = [
        f"{code}: {shapely.is_valid_reason(p)}"
        for code, p in zip(t["code"], polys, strict=True)
        if not p.is_valid
    ]
    _expect(problems, "invalid polygons")
    union = shapely.union_all(polys)
    gap = shapely.difference(boundary, union).area / 1e6
    outside = shapely.difference(union, boundary).area / 1e6
    overlap = max(0.0, (sum(p.area for p in polys) - union.area) / 1e6)
    for label, value in (("overlaps", overlap), ("gaps", gap), ("outside the boundary", outside)):
        if value > TILING_TOLERANCE_KM2:
            problems.append(f"{label} {value:.4f} km² (tolerance {TILING_TOLERANCE_KM2} km²)")
    sx, sy = to_xy(t["seat_lon"].to_numpy(np.float64), t["seat_lat"].to_numpy(np.float64))
    for code, p, x, y in zip(t["code"], polys, sx, sy, strict=True):
        if not p.covers(Point(x, y)):
            problems.append(f"{code}: seat outside its own polygon")
    known = t["area_km2"].to_numpy(np.float64)
    target = known / known.sum() * boundary.area / 1e6
    got = np.array([p.area for p in polys]) / 1e6
    error = np.abs(got - target) / target
    for code, e in zip(t["code"], error, strict=True):
        if e > AREA_TOLERANCE:
            problems.append(f"{code}: area off by {e:.1%} from its scaled known area")
    _expect(problems, "township polygons")
    return (
        f"{len(polys)} valid polygons tile the boundary (gaps {gap * 1e6:.0f} m², overlaps "
        f"{overlap * 1e6:.0f} m²), seats inside, areas within {error.max():.3%} of target"
    )


def _points_in(
    polys: dict[str, Any], codes: Sequence[str], lon: FloatArray, lat: FloatArray
) -> npt.NDArray[np.bool_]:
    """Boolean per point: inside (covered by) the polygon of its code."""
    inside = np.zeros(len(codes), dtype=bool)
    codes_a = np.asarray(codes, dtype=object)
    for code, poly in polys.items():
        mine = codes_a == code
        if mine.any():
            inside[mine] = shapely.intersects_xy(poly, lon[mine], lat[mine])
    return inside


def _check_inside(c: _Checker) -> tuple[Callable[[], str], Callable[[], str]]:
    def boundary() -> str:
        outline = shapely.union_all(np.asarray(c.layers[schema.BOUNDARY].geometry.values))
        problems = []
        for name in (schema.VILLAGES, schema.STATIONS, schema.UNITS):
            xy = _xy_points(c.layers[name])
            out = ~shapely.intersects_xy(outline, xy[:, 0], xy[:, 1])
            ids = c.layers[name]["id"].to_numpy()[out]
            problems += [f"{name} {i}" for i in ids]
        vol = c.layers[schema.VOLUNTEERS]
        lon = pd.to_numeric(vol["home_lon"], errors="coerce").to_numpy(np.float64)
        lat = pd.to_numeric(vol["home_lat"], errors="coerce").to_numpy(np.float64)
        out = ~shapely.intersects_xy(outline, lon, lat)
        problems += [f"volunteer {i}" for i in vol["id"].to_numpy()[out]]
        _expect(problems, "outside the county")
        return "villages, stations, units and volunteer homes"

    def township() -> str:
        t = c.layers[schema.TOWNSHIPS]
        polys = dict(zip(t["code"], t.geometry, strict=True))
        problems = []
        for name in (schema.VILLAGES, schema.STATIONS, schema.UNITS):
            frame = c.layers[name]
            xy = _xy_points(frame)
            inside = _points_in(polys, list(frame["township_code"]), xy[:, 0], xy[:, 1])
            problems += [
                f"{name} {i} not in {code}"
                for i, code in zip(
                    frame["id"][~inside], frame["township_code"][~inside], strict=True
                )
            ]
        v = c.layers[schema.VILLAGES]
        vol = c.layers[schema.VOLUNTEERS]
        code_of = dict(zip(v["id"], v["township_code"], strict=True))
        codes = [code_of.get(i, "") for i in vol["village_id"]]
        lon = pd.to_numeric(vol["home_lon"], errors="coerce").to_numpy(np.float64)
        lat = pd.to_numeric(vol["home_lat"], errors="coerce").to_numpy(np.float64)
        # a home whose village is unknown is the "references" check's business
        inside = _points_in(polys, codes, lon, lat) | (np.array(codes) == "")
        problems += [
            f"volunteer {i} home not in {code_of.get(w)}"
            for i, w in zip(vol["id"][~inside], vol["village_id"][~inside], strict=True)
        ]
        _expect(problems, "outside their township")
        return "villages, stations, units and volunteer homes each inside their township"

    return boundary, township


def _check_clearance(c: _Checker) -> str:
    t, v = c.layers[schema.TOWNSHIPS], c.layers[schema.VILLAGES]
    borders = {code: geom_to_xy(g).boundary for code, g in zip(t["code"], t.geometry, strict=True)}
    seats = {(round(a, 6), round(o, 6)) for a, o in zip(t["seat_lat"], t["seat_lon"], strict=True)}
    xy = _xy_points(v)
    x, y = to_xy(xy[:, 0], xy[:, 1])
    problems = []
    least = np.inf
    for k, (vid, code) in enumerate(zip(v["id"], v["township_code"], strict=True)):
        if (round(xy[k, 1], 6), round(xy[k, 0], 6)) in seats or code not in borders:
            continue
        d = borders[code].distance(Point(x[k], y[k]))
        least = min(least, d)
        if d < CLEARANCE_M:
            problems.append(f"{vid} {d:.0f} m")
    _expect(problems, f"villages closer than {CLEARANCE_M:.0f} m to their township border")
    return f"villages (seats excepted) at least {least:.0f} m from their township's border"


def _check_references(c: _Checker) -> str:
    t, v, s, u = (
        c.layers[n] for n in (schema.TOWNSHIPS, schema.VILLAGES, schema.STATIONS, schema.UNITS)
    )
    vol = c.layers[schema.VOLUNTEERS]
    codes = set(t["code"])
    village_ids = set(v["id"])
    police = set(s["id"][s["kind"] != "workstation"])
    workstations = set(s["id"][s["kind"] == "workstation"])
    unit_ids = set(u["id"])
    problems: list[str] = []

    def unknown(
        label: str, values: Iterable[object], valid: set[Any], owners: Iterable[object]
    ) -> None:
        bad = [f"{o}->{x!r}" for x, o in zip(values, owners, strict=True) if x not in valid]
        if bad:
            problems.append(f"{label}: {len(bad)} unknown ({', '.join(bad[:_SHOW])})")

    unknown("villages.township_code", v["township_code"], codes, v["id"])
    unknown("stations.township_code", s["township_code"], codes, s["id"])
    unknown("units.township_code", u["township_code"], codes, u["id"])
    ws = s[s["kind"] == "workstation"]
    unknown("workstations.station_id", ws["station_id"], police, ws["id"])
    unknown("workstations.village_id", ws["village_id"], village_ids, ws["id"])
    ps = s[s["kind"] != "workstation"]
    if ps["station_id"].notna().any() or ps["village_id"].notna().any():
        problems.append("police stations must have no station_id / village_id")
    unknown("units.village_id", u["village_id"], village_ids, u["id"])
    unknown("units.workstation_id", u["workstation_id"], workstations, u["id"])
    unknown("units.station_id", u["station_id"], police, u["id"])
    unknown(
        "volunteers.unit_id",
        [x for x in vol["unit_id"] if x],
        unit_ids,
        vol["id"][vol["unit_id"] != ""],
    )
    unknown("volunteers.village_id", vol["village_id"], village_ids, vol["id"])
    # positions and townships that must agree
    point_of = dict(zip(v["id"], [(g.x, g.y) for g in v.geometry], strict=True))
    town_of = dict(zip(v["id"], v["township_code"], strict=True))
    for frame, label in ((u, "units"), (ws, "workstations")):
        for i, vid, code, g in zip(
            frame["id"], frame["village_id"], frame["township_code"], frame.geometry, strict=True
        ):
            if vid in point_of and (point_of[vid] != (g.x, g.y) or town_of[vid] != code):
                problems.append(f"{label} {i}: not at its village {vid} or in another township")
    _expect(problems, "dangling references")
    return (
        "township codes, workstation->station/village, unit->village/workstation/station, "
        "volunteer->unit/village all resolve; units and workstations sit on their village"
    )


def _check_members(c: _Checker) -> str:
    u, vol = c.layers[schema.UNITS], c.layers[schema.VOLUNTEERS]
    counts = Counter(x for x in vol["unit_id"] if x)
    lo, hi = schema.UNIT_MEMBERS
    problems = []
    for uid, recorded in zip(u["id"], u["members"], strict=True):
        got = counts[uid]
        if got != recorded or not lo <= got <= hi:
            problems.append(f"{uid}: {got} members (recorded {recorded}, allowed {lo}-{hi})")
    _expect(problems, "unit membership")
    return f"every unit has {lo}-{hi} members; {sum(counts.values())} volunteers in units"


def _check_vocabulary(c: _Checker) -> str:
    v, s, u, r, t = (
        c.layers[n]
        for n in (schema.VILLAGES, schema.STATIONS, schema.UNITS, schema.ROADS, schema.TOWNSHIPS)
    )
    vol = c.layers[schema.VOLUNTEERS]
    problems: list[str] = []

    def within(label: str, values: Iterable[Any], allowed: Sequence[str]) -> None:
        bad = sorted({str(x) for x in values if x not in allowed})
        if bad:
            problems.append(f"{label} {bad[:_SHOW]} not in {list(allowed)}")

    within("villages.kind", v["kind"], schema.VILLAGE_KINDS)
    within("villages.position_status", v["position_status"], schema.STATUS_VALUES)
    within("stations.kind", s["kind"], schema.STATION_KINDS)
    within("stations.status", s["status"], schema.STATUS_VALUES)
    within("units.status", u["status"], schema.STATUS_VALUES)
    within("roads.class", r["class"], schema.ROAD_CLASSES)
    within("roads.source_status", r["source_status"], schema.STATUS_VALUES)
    for code, raw in zip(t["code"], t["source_status"], strict=True):
        status = _status_object(raw)
        within(f"townships.source_status keys of {code}", status, schema.SOURCE_STATUS_KEYS)
        within(f"townships.source_status values of {code}", status.values(), schema.STATUS_VALUES)
    within(
        "volunteers.roles", (x for cell in vol["roles"] for x in _split(cell)), schema.ROLE_NAMES
    )
    within(
        "volunteers.teams", (x for cell in vol["teams"] for x in _split(cell)), schema.TEAM_NAMES
    )
    within("volunteers.mode", vol["mode"], schema.MODE_NAMES)
    within("volunteers.duty", vol["duty"], schema.DUTY_ARCHETYPES)
    if (vol["roles"] == "").any():
        problems.append(f"volunteers.roles: {int((vol['roles'] == '').sum())} without a role")
    for col, width in (("duty_hours", 24), ("duty_days", 7)):
        bad = [x for x in vol[col] if not re.fullmatch(f"[01]{{{width}}}", x)]
        if bad:
            problems.append(f"volunteers.{col}: {len(bad)} not {width} 0/1 chars, e.g. {bad[0]!r}")
    _expect(problems, "unknown values")
    return (
        f"kinds, statuses, road classes, {len(ROLE_NAMES)} roles, {len(TEAM_NAMES)} teams, "
        "modes, duty archetypes and duty strings"
    )


def _check_homes(c: _Checker) -> str:
    v, vol = c.layers[schema.VILLAGES], c.layers[schema.VOLUNTEERS]
    point_of = dict(zip(v["id"], [(g.x, g.y) for g in v.geometry], strict=True))
    known = vol["village_id"].isin(list(point_of))
    home = np.array([point_of[i] for i in vol["village_id"][known]]).reshape(-1, 2)
    hx, hy = to_xy(home[:, 0], home[:, 1])
    lon = pd.to_numeric(vol["home_lon"][known], errors="coerce").to_numpy(np.float64)
    lat = pd.to_numeric(vol["home_lat"][known], errors="coerce").to_numpy(np.float64)
    x, y = to_xy(lon, lat)
    d = np.hypot(x - hx, y - hy)
    far = np.logical_not(d <= MAX_HOME_DISTANCE_M)
    _expect(
        [f"{i} {dd:.0f} m" for i, dd in zip(vol["id"][known][far], d[far], strict=True)],
        f"homes farther than {MAX_HOME_DISTANCE_M:.0f} m from their village",
    )
    return (
        f"homes within {MAX_HOME_DISTANCE_M:.0f} m of their village (median {np.median(d):.0f} m)"
    )


def _road_lines(c: _Checker) -> list[FloatArray]:
    return [np.asarray(g.coords, dtype=np.float64)[:, :2] for g in c.layers[schema.ROADS].geometry]


def _check_roads(c: _Checker) -> dict[str, Callable[[], str]]:
    def attributes() -> str:
        r = c.layers[schema.ROADS]
        problems = []
        for col in ("speed_walk_kmh", "speed_bike_kmh", "speed_ebike_kmh", "speed_car_kmh"):
            speeds = pd.to_numeric(r[col], errors="coerce").to_numpy(np.float64)
            if not (np.isfinite(speeds) & (speeds > 0)).all():
                problems.append(f"{col} must be > 0")
        lines = _road_lines(c)
        if any(len(line) < 2 for line in lines):
            problems.append("a road has fewer than two vertices")
        segs = segments(lines)
        x0, y0 = to_xy(segs.start[:, 0], segs.start[:, 1])
        x1, y1 = to_xy(segs.end[:, 0], segs.end[:, 1])
        length = np.hypot(x1 - x0, y1 - y0)
        if (length == 0).any():
            problems.append(f"{int((length == 0).sum())} zero-length segments")
        if length.max() > MAX_SEGMENT_M:
            problems.append(
                f"segments up to {length.max():.0f} m (densify to {MAX_SEGMENT_M:.0f} m)"
            )
        _expect(problems, "roads")
        return (
            f"{len(r)} roads {dict(Counter(r['class']))}, {length.sum() / 1000:.0f} km, "
            f"positive speeds, segments <= {length.max():.0f} m"
        )

    def inside() -> str:
        outline = shapely.union_all(np.asarray(c.layers[schema.BOUNDARY].geometry.values))
        tolerant = shapely.buffer(outline, 1e-5)  # about 1 m: a road may end on the border
        coords = np.concatenate(_road_lines(c))
        out = ~shapely.intersects_xy(tolerant, coords[:, 0], coords[:, 1])
        _expect([str(p) for p in coords[out]], "road vertices outside the county")
        return "every road vertex inside the county (1 m tolerance at the border)"

    def noded() -> str:
        lines = _road_lines(c)
        segs = segments(lines)
        bad = crossings(segs)
        ids = c.layers[schema.ROADS]["id"].to_numpy()
        problems = [
            f"{ids[segs.line[a]]} x {ids[segs.line[b]]} "
            + ("overlap" if o else f"at {p[0]:.6f},{p[1]:.6f} without a shared vertex")
            for a, b, p, o in zip(bad.a, bad.b, bad.point, bad.overlap, strict=True)
        ]
        _expect(problems, f"{len(problems)} unnoded crossings")
        return f"{len(segs.line)} segments: roads meet only at shared vertices"

    def connected() -> str:
        count, vertices, labels = components(_road_lines(c))
        if count != 1:
            sizes = sorted(np.bincount(labels).tolist(), reverse=True)
            raise _Fail(f"{count} components (vertices per component: {sizes[:5]}...)")
        return f"one component over {len(vertices)} distinct vertices"

    def per_mode() -> str:
        # imported here: a missing or broken geo.roads fails this one check, not validate()
        from geo.roads import RoadNetwork  # noqa: PLC0415

        network = RoadNetwork.from_frame(c.layers[schema.ROADS], source=schema.ROADS)
        broken = [m.wire for m in Mode if not network.is_connected(m)]
        _expect(broken, "the engine's road graph is not connected for")
        return (
            f"geo.roads.RoadNetwork: {network.n_nodes} nodes, {network.n_edges} edges, "
            f"connected for {', '.join(m.wire for m in Mode)}"
        )

    def villages_on() -> str:
        vertices = {(float(x), float(y)) for x, y in np.concatenate(_road_lines(c))}
        v = c.layers[schema.VILLAGES]
        off = [i for i, g in zip(v["id"], v.geometry, strict=True) if (g.x, g.y) not in vertices]
        _expect(off, f"{len(off)} villages/communities are not a road vertex")
        return f"all {len(v)} villages and communities are road vertices"

    return {
        "roads": attributes,
        "roads inside boundary": inside,
        "roads noded": noded,
        "roads connected": connected,
        "road graph per mode": per_mode,
        "villages on roads": villages_on,
    }


def validate(path: Path) -> ValidationReport:
    """Check every invariant of the dataset folder ``path``; never raises on a broken dataset.

    Args:
        path: a folder holding the files of :data:`geo.dataset.schema.DATA_FILES`.

    Raises:
        DatasetError: ``path`` is not a readable folder.
    """
    try:
        listing = {p.name for p in path.iterdir()}
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable folder ({exc})", field="path") from exc
    report = ValidationReport(path=path)
    c = _Checker(report)
    missing = [name for name in schema.DATA_FILES if name not in listing]
    if missing:
        c.fail("files", f"missing {missing}")
    else:
        report.checks.append(f"PASS files: all {len(schema.DATA_FILES)} present")
    _read(c, path)
    _check_coordinates(c)
    every = [*schema.GEOJSON_FILES, schema.VOLUNTEERS]
    c.run("counts", every, lambda: _check_counts(c))
    c.run("unique ids", every, lambda: _check_unique(c))
    c.run("id format", [schema.TOWNSHIPS, schema.VILLAGES], lambda: _check_id_format(c))
    c.run("population", [schema.TOWNSHIPS, schema.VILLAGES], lambda: _check_population(c))
    c.run("township polygons", [schema.TOWNSHIPS, schema.BOUNDARY], lambda: _check_townships(c))
    in_boundary, in_township = _check_inside(c)
    c.run("inside boundary", every, in_boundary)
    c.run("inside township", every, in_township)
    c.run("village clearance", [schema.TOWNSHIPS, schema.VILLAGES], lambda: _check_clearance(c))
    c.run("references", every, lambda: _check_references(c))
    c.run("unit members", [schema.UNITS, schema.VOLUNTEERS], lambda: _check_members(c))
    c.run("vocabulary", every, lambda: _check_vocabulary(c))
    c.run("volunteer homes", [schema.VILLAGES, schema.VOLUNTEERS], lambda: _check_homes(c))
    for name, check in _check_roads(c).items():
        if name == "road graph per mode" and importlib.util.find_spec("geo.roads") is None:
            report.checks.append(f"SKIP {name}: geo.roads is not installed")
            continue
        c.run(name, [schema.ROADS, schema.BOUNDARY, schema.VILLAGES], check)
    return report
