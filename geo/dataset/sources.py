"""Reading the read-only source facts of ``data/gucheng/sources/``.

Theory of operation: the sources are small hand-curated files whose status columns say how
much each fact is known (``CONFIRMED`` / ``DERIVED`` / ``EST``, with a stated uncertainty for
estimated seats). This module turns them into plain records and maps those labels onto the
dataset's status vocabulary (:data:`geo.dataset.schema.STATUS_VALUES`); it decides nothing
else. Any surprise (a missing column, an unknown road) is a :class:`DatasetError` naming the
file, because a silently wrong source would poison every derived figure.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from shapely.geometry import Point, Polygon, shape

from dispatch.errors import DatasetError
from geo.dataset.schema import SEAT_TOWNSHIP_CODE, TOTAL_POPULATION

__all__ = [
    "BOUNDARY_SOURCE",
    "CANAL_SOURCE",
    "STATIONS_SOURCE",
    "TOWNSHIPS_SOURCE",
    "Bridge",
    "KnownRoad",
    "Sources",
    "StationSource",
    "TownshipSource",
    "read_sources",
]

TOWNSHIPS_SOURCE: Final = "townships.csv"
BOUNDARY_SOURCE: Final = "boundary_wgs84.geojson"
CANAL_SOURCE: Final = "canal_roads_bridges.geojson"
STATIONS_SOURCE: Final = "police_stations_synthetic.csv"
SOURCE_FILES: Final = (TOWNSHIPS_SOURCE, BOUNDARY_SOURCE, CANAL_SOURCE, STATIONS_SOURCE)

#: The known roads of the canal file: name prefix -> (published name, road class).
KNOWN_ROADS: Final = {"邢德线": ("邢德线", "provincial"), "郑清路": ("郑清路", "county")}
#: The canal bridges: name prefix -> name of the approach road that ends at the border.
KNOWN_BRIDGES: Final = {"郑口运河大桥": "郑昔线", "武城运河大桥": "武城运河大桥引道"}

_UNCERTAINTY = re.compile(r"\+-\s*(\d+(?:\.\d+)?)\s*km")


@dataclass(frozen=True, slots=True)
class TownshipSource:
    """One row of ``townships.csv`` with its facts' statuses."""

    code: str
    name: str
    pinyin: str
    seat_lat: float
    seat_lon: float
    #: How far the seat estimate may be off, metres (0 for a confirmed seat).
    seat_uncertainty_m: float
    area_km2: float
    population: int
    villages: int
    status: dict[str, str]
    notes: str


@dataclass(frozen=True, slots=True)
class StationSource:
    """One hypothetical police station."""

    id: str
    name: str
    kind: str
    lat: float
    lon: float
    basis: str


@dataclass(frozen=True, slots=True)
class KnownRoad:
    """A road whose existence is confirmed and whose alignment is estimated."""

    name: str
    road_class: str
    coords: tuple[tuple[float, float], ...]  # lon, lat


@dataclass(frozen=True, slots=True)
class Bridge:
    """A canal bridge (estimated position) and the road that leads to it."""

    name: str
    road_name: str
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class Sources:
    """Everything the build reads."""

    boundary: Polygon
    townships: tuple[TownshipSource, ...]
    stations: tuple[StationSource, ...]
    roads: tuple[KnownRoad, ...]
    bridges: tuple[Bridge, ...]
    #: Paths of the files read, for the build manifest.
    files: tuple[Path, ...]


def _status(text: str) -> str:
    label = text.strip().upper()
    if label.startswith("CONFIRMED"):
        return "confirmed"
    if label.startswith("DERIVED"):
        return "derived"
    if label.startswith("EST"):
        return "estimated"
    # a citation (a web page, "same", "wiki list") is a confirmed figure
    return "confirmed"


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc}", field=path.name) from exc
    if not rows:
        raise DatasetError(f"{path}: no rows", field=path.name)
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise DatasetError(f"{path}: missing columns {missing}", field=f"{path.name}.{missing[0]}")
    return rows


def _township(row: dict[str, str], path: Path) -> TownshipSource:
    try:
        coord_status = row["coord_status"]
        seat_status = _status(coord_status)
        match = _UNCERTAINTY.search(coord_status)
        if seat_status == "confirmed":
            uncertainty = 0.0
        elif match:
            uncertainty = float(match.group(1)) * 1000.0
        else:
            raise ValueError(f"estimated seat without '+-N km': {coord_status!r}")
        status = {
            "code": "confirmed",
            "name": "confirmed",
            "pinyin": "derived",
            "seat": seat_status,
            "area_km2": _status(row["area_src"]),
            "population": _status(row["population_note"]),
            "villages": _status(row["villages_src"]),
            "polygon": "synthetic",
        }
        return TownshipSource(
            code=row["code"].strip(),
            name=row["name"].strip(),
            pinyin=row["pinyin"].strip(),
            seat_lat=float(row["seat_lat"]),
            seat_lon=float(row["seat_lon"]),
            seat_uncertainty_m=uncertainty,
            area_km2=float(row["area_km2"]),
            population=int(row["population"]),
            villages=int(row["villages"]),
            status=status,
            notes=row["notes"].strip(),
        )
    except (KeyError, ValueError) as exc:
        raise DatasetError(
            f"{path}: bad row {row.get('code', '?')}: {exc}", field=TOWNSHIPS_SOURCE
        ) from exc


def read_townships(path: Path) -> tuple[TownshipSource, ...]:
    """The 13 townships; 郑口镇's population is derived so that the county sums to 513,400.

    Raises:
        DatasetError: the file is unreadable or a row is malformed.
    """
    columns = (
        "code", "name", "pinyin", "seat_lat", "seat_lon", "coord_status", "area_km2",
        "area_src", "population", "population_note", "villages", "villages_src", "notes",
    )  # fmt: skip
    rows = [_township(row, path) for row in _read_csv(path, columns)]
    others = sum(t.population for t in rows if t.code != SEAT_TOWNSHIP_CODE)
    out = [
        replace(
            t,
            population=TOTAL_POPULATION - others,
            status={**t.status, "population": "derived"},
        )
        if t.code == SEAT_TOWNSHIP_CODE
        else t
        for t in sorted(rows, key=lambda t: t.code)
    ]
    if not any(t.code == SEAT_TOWNSHIP_CODE for t in out):
        raise DatasetError(f"{path}: no row for {SEAT_TOWNSHIP_CODE}", field="code")
    return tuple(out)


def _clean_name(text: str) -> str:
    # "郑口派出所 (assumed one per township)" -> "郑口派出所"
    return re.sub(r"\s*\(.*\)\s*$", "", text).strip()


def read_stations(path: Path) -> tuple[StationSource, ...]:
    """The hypothetical police stations.

    Raises:
        DatasetError: the file is unreadable or a row is malformed.
    """
    out = []
    for row in _read_csv(path, ("id", "name", "kind", "lat", "lon", "status", "basis")):
        try:
            out.append(
                StationSource(
                    id=row["id"].strip(),
                    name=_clean_name(row["name"]),
                    kind=row["kind"].strip(),
                    lat=float(row["lat"]),
                    lon=float(row["lon"]),
                    basis=f"{row['status'].strip()}; {row['basis'].strip()}",
                )
            )
        except ValueError as exc:
            raise DatasetError(f"{path}: bad row {row.get('id')}: {exc}", field="lat") from exc
    return tuple(out)


def _features(path: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        features: list[dict[str, Any]] = document["features"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not a GeoJSON FeatureCollection: {exc}") from exc
    return features


def read_boundary(path: Path) -> Polygon:
    """The county polygon (WGS84).

    Raises:
        DatasetError: the file holds no single valid polygon.
    """
    features = _features(path)
    geoms = [shape(f["geometry"]) for f in features]
    if len(geoms) != 1 or not isinstance(geoms[0], Polygon) or not geoms[0].is_valid:
        raise DatasetError(f"{path}: expected one valid Polygon", field="geometry")
    return geoms[0]


def read_roads_and_bridges(path: Path) -> tuple[tuple[KnownRoad, ...], tuple[Bridge, ...]]:
    """The two known roads and the two canal bridges (estimated positions).

    Raises:
        DatasetError: one of them is missing.
    """
    roads: dict[str, KnownRoad] = {}
    bridges: dict[str, Bridge] = {}
    for feature in _features(path):
        name = str(feature["properties"].get("name", ""))
        geom = shape(feature["geometry"])
        for prefix, (published, road_class) in KNOWN_ROADS.items():
            if name.startswith(prefix):
                coords = tuple((float(x), float(y)) for x, y, *_ in geom.coords)
                roads[prefix] = KnownRoad(published, road_class, coords)
        for prefix, road_name in KNOWN_BRIDGES.items():
            if name.startswith(prefix) and isinstance(geom, Point):
                bridges[prefix] = Bridge(prefix, road_name, geom.x, geom.y)
    missing = [p for p in (*KNOWN_ROADS, *KNOWN_BRIDGES) if p not in roads and p not in bridges]
    if missing:
        raise DatasetError(f"{path}: missing {missing}", field="name")
    return (
        tuple(roads[p] for p in KNOWN_ROADS),
        tuple(bridges[p] for p in KNOWN_BRIDGES),
    )


def read_sources(sources_dir: Path) -> Sources:
    """Read every source file of ``sources_dir``.

    Raises:
        DatasetError: a file is missing, unreadable or malformed.
    """
    missing = [name for name in SOURCE_FILES if not (sources_dir / name).is_file()]
    if missing:
        raise DatasetError(f"{sources_dir}: missing source files {missing}", field=missing[0])
    roads, bridges = read_roads_and_bridges(sources_dir / CANAL_SOURCE)
    return Sources(
        boundary=read_boundary(sources_dir / BOUNDARY_SOURCE),
        townships=read_townships(sources_dir / TOWNSHIPS_SOURCE),
        stations=read_stations(sources_dir / STATIONS_SOURCE),
        roads=roads,
        bridges=bridges,
        files=tuple(sources_dir / name for name in SOURCE_FILES),
    )
