"""Load a county dataset folder into frozen, columnar, numpy-typed tables.

Theory of operation
-------------------
GeoDataFrames stay inside this module (STYLE: vectors behind the edge). Each layer is read with
geopandas on the pyogrio engine, its CRS checked (WGS84: EPSG:4326 or OGC:CRS84) and its field
set compared with :mod:`geo.dataset.schema` (a missing *or unknown* field is an error: a typo
must not be silently ignored), then turned into a frozen dataclass of columns:

* ids and names: tuples of ``str``; coordinates: ``float64``; counts: ``int64``;
* references: ``int64`` indices into the referenced table (``-1`` for none), resolved once here;
* enumerations: ``uint8`` codes (``kind`` = index in the schema's vocabulary; ``mode`` =
  :class:`~geo.modes.Mode`); roles and teams: ``uint8`` bit sets (:func:`units.vocab.mask_of`);
* duty pattern: ``duty_hours`` ``uint32`` (bit ``h`` = the hour from ``h``:00) and
  ``duty_days`` ``uint8`` (bit 0 = Monday);
* H3 cells: ``uint64`` at :data:`geo.cells.LIVE_RES`; polygons: shapely.

Every array is read-only. Any problem is a :class:`~dispatch.errors.DatasetError` whose message
names the file and the field. The loader does not re-run the validator's geometric checks
(run ``dispatch dataset validate`` for those).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar

import geopandas
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon

from dispatch.errors import CoordinateError, DatasetError
from geo.cells import cells_of
from geo.dataset import schema
from geo.dataset.frame import WGS84
from geo.modes import Mode
from units.vocab import Role, Team, mask_of

__all__ = [
    "DEFAULT_DATASET",
    "CountyDataset",
    "Stations",
    "Townships",
    "Units",
    "Villages",
    "Volunteers",
    "Workstations",
    "load_dataset",
    "on_duty",
]

#: The committed Gucheng dataset of this repository.
DEFAULT_DATASET: Final = Path(__file__).resolve().parents[2] / "data" / "gucheng"

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]

_T = TypeVar("_T")


class _Table:
    """Columnar table: ``len()`` and an id -> row index lookup."""

    __slots__ = ()
    id: tuple[str, ...]
    _rows: Mapping[str, int]

    def __len__(self) -> int:
        return len(self.id)

    def index(self, key: str) -> int:
        """Row of ``key``.

        Raises:
            KeyError: no such id.
        """
        return self._rows[key]

    def _freeze(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name, None)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        object.__setattr__(self, "_rows", MappingProxyType({k: i for i, k in enumerate(self.id)}))


@dataclass(frozen=True, slots=True, eq=False)
class Townships(_Table):
    """The 13 townships; ``id`` is the 9-digit code."""

    id: tuple[str, ...]
    name: tuple[str, ...]
    pinyin: tuple[str, ...]
    seat_lat: F64
    seat_lon: F64
    seat_cell: U64
    area_km2: F64  # the known (source) area
    polygon_area_km2: F64
    population: I64
    villages: I64
    communities: I64
    polygon: tuple[Polygon, ...]
    source_status: tuple[Mapping[str, str], ...]
    _rows: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._freeze()


@dataclass(frozen=True, slots=True, eq=False)
class Villages(_Table):
    """Villages and communities (``kind`` 0 = village, 1 = community)."""

    id: tuple[str, ...]
    name: tuple[str, ...]
    kind: U8
    township: I64
    population: I64
    lat: F64
    lon: F64
    cell: U64
    _rows: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._freeze()


@dataclass(frozen=True, slots=True, eq=False)
class Stations(_Table):
    """Police stations (``kind`` = index in :data:`~geo.dataset.schema.POLICE_KINDS`)."""

    id: tuple[str, ...]
    name: tuple[str, ...]
    kind: U8
    township: I64
    lat: F64
    lon: F64
    cell: U64
    _rows: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._freeze()


@dataclass(frozen=True, slots=True, eq=False)
class Workstations(_Table):
    """The 26 workstations (义警工作站); ``station`` and ``village`` are row indices."""

    id: tuple[str, ...]
    name: tuple[str, ...]
    township: I64
    station: I64
    village: I64
    lat: F64
    lon: F64
    cell: U64
    _rows: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._freeze()


@dataclass(frozen=True, slots=True, eq=False)
class Units(_Table):
    """Minimum emergency units; ``village``, ``workstation``, ``station`` are row indices."""

    id: tuple[str, ...]
    name: tuple[str, ...]
    village: I64
    township: I64
    workstation: I64
    station: I64
    members: I64
    lat: F64
    lon: F64
    cell: U64
    _rows: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._freeze()


@dataclass(frozen=True, slots=True, eq=False)
class Volunteers(_Table):
    """The registered volunteers.

    ``unit`` is a row of :class:`Units` or -1; ``roles`` / ``teams`` are bit sets of
    :class:`~units.vocab.Role` / :class:`~units.vocab.Team`; ``mode`` a
    :class:`~geo.modes.Mode` code; ``duty`` an index in
    :data:`~geo.dataset.schema.DUTY_ARCHETYPES`; ``duty_hours`` bit ``h`` = on duty from
    ``h``:00 to ``h+1``:00; ``duty_days`` bit 0 = Monday.
    """

    id: tuple[str, ...]
    name: tuple[str, ...]
    unit: I64
    village: I64
    roles: U8
    teams: U8
    mode: U8
    home_lat: F64
    home_lon: F64
    home_cell: U64
    duty: U8
    duty_hours: U32
    duty_days: U8
    _rows: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._freeze()

    def on_duty(self, weekday: int, hour: int) -> Bools:
        """Who is on duty at ``hour`` (0-23) of ``weekday`` (0 = Monday).

        Raises:
            ValueError: ``weekday`` or ``hour`` is out of range.
        """
        return on_duty(self.duty_hours, self.duty_days, weekday, hour)


def on_duty(duty_hours: U32, duty_days: U8, weekday: int, hour: int) -> Bools:
    """Who is on duty at ``hour`` (0-23) of ``weekday`` (0 = Monday), from the dataset's
    duty bit sets (bit ``h`` of ``duty_hours``, bit ``d`` of ``duty_days``).

    Raises:
        ValueError: ``weekday`` or ``hour`` is out of range.
    """
    if not (0 <= weekday < 7 and 0 <= hour < 24):
        raise ValueError(f"weekday must be 0-6 and hour 0-23, got {weekday}, {hour}")
    hours = (duty_hours >> np.uint32(hour)) & np.uint32(1)
    days = (duty_days >> np.uint8(weekday)) & np.uint8(1)
    return np.asarray((hours == 1) & (days == 1))


@dataclass(frozen=True, slots=True, eq=False)
class CountyDataset:
    """A whole county dataset, loaded."""

    boundary: Polygon | MultiPolygon
    townships: Townships
    villages: Villages
    stations: Stations
    workstations: Workstations
    units: Units
    volunteers: Volunteers
    #: The road lines, for :mod:`geo.roads` to build its graph from.
    roads_path: Path
    #: The folder it was loaded from.
    path: Path


# --- reading ---------------------------------------------------------------------------------
def _read_geojson(folder: Path, name: str, expected: Sequence[str] | None, geom: str) -> Any:
    path = folder / name
    if not path.is_file():
        raise DatasetError(f"{path}: missing", field=name)
    try:
        crs = pyogrio.read_info(path).get("crs")
        frame = geopandas.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio/GDAL raise their own types
        raise DatasetError(f"{path}: unreadable: {exc}", field=name) from exc
    if crs is None or not CRS.from_user_input(crs).equals(WGS84, ignore_axis_order=True):
        raise DatasetError(f"{path}: CRS {crs!r} is not WGS84", field=f"{name}.crs")
    _check_fields(path, [c for c in frame.columns if c != "geometry"], expected)
    kinds = set(frame.geometry.geom_type.fillna("none"))
    allowed = {geom, f"Multi{geom}"} if geom == "Polygon" else {geom}
    if not kinds <= allowed:
        raise DatasetError(
            f"{path}: geometries must be {geom}, found {kinds}", field=f"{name}.geometry"
        )
    return frame


def _check_fields(path: Path, columns: Sequence[str], expected: Sequence[str] | None) -> None:
    if expected is None:
        return
    for name in expected:
        if name not in columns:
            raise DatasetError(f"{path}: missing field {name!r}", field=f"{path.name}.{name}")
    for name in columns:
        if name not in expected:
            raise DatasetError(f"{path}: unknown field {name!r}", field=f"{path.name}.{name}")


def _strings(frame: Any, path: str, column: str) -> tuple[str, ...]:
    values = frame[column]
    if values.isna().any():
        raise DatasetError(
            f"{path}: empty {column} in row {int(values.isna().argmax())}", field=f"{path}.{column}"
        )
    return tuple(str(v) for v in values)


def _numbers(frame: Any, path: str, column: str, dtype: type[np.generic]) -> Any:
    values = pd.to_numeric(frame[column], errors="coerce")
    if values.isna().any():
        row = int(values.isna().to_numpy().argmax())
        raise DatasetError(
            f"{path}: {column} of row {row} is not a number", field=f"{path}.{column}"
        )
    if np.issubdtype(dtype, np.integer) and not (values == values.round()).all():
        raise DatasetError(f"{path}: {column} must be whole numbers", field=f"{path}.{column}")
    return values.to_numpy(dtype)


def _codes(values: Sequence[str], vocabulary: Sequence[str], path: str, column: str) -> U8:
    lookup = {name: code for code, name in enumerate(vocabulary)}
    try:
        return np.array([lookup[v] for v in values], dtype=np.uint8)
    except KeyError as exc:
        raise DatasetError(
            f"{path}: {column} {exc.args[0]!r} not in {list(vocabulary)}", field=f"{path}.{column}"
        ) from None


def _refs(
    values: Sequence[object],
    rows: Mapping[str, int],
    path: str,
    column: str,
    *,
    optional: bool = False,
) -> I64:
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
            if not optional:
                raise DatasetError(f"{path}: row {i} has no {column}", field=f"{path}.{column}")
            out[i] = -1
        elif isinstance(value, str) and value in rows:
            out[i] = rows[value]
        else:
            raise DatasetError(
                f"{path}: row {i}: unknown {column} {value!r}", field=f"{path}.{column}"
            )
    return out


def _points(frame: Any, path: str) -> tuple[F64, F64, U64]:
    lon = frame.geometry.x.to_numpy(np.float64)
    lat = frame.geometry.y.to_numpy(np.float64)
    return lat, lon, _cells(lat, lon, path)


def _cells(lat: F64, lon: F64, path: str) -> U64:
    try:
        return cells_of(lat, lon)
    except CoordinateError as exc:
        raise DatasetError(f"{path}: {exc}", field=f"{path}.{exc.field}") from exc


def _memo(parse: Callable[[str], _T], path: str, column: str) -> Callable[[str], _T]:
    cache: dict[str, _T] = {}

    def run(cell: str) -> _T:
        if cell not in cache:
            try:
                cache[cell] = parse(cell)
            except ValueError as exc:
                raise DatasetError(f"{path}: {column}: {exc}", field=f"{path}.{column}") from None
        return cache[cell]

    return run


def _bits(width: int) -> Callable[[str], int]:
    def parse(cell: str) -> int:
        if len(cell) != width or set(cell) - {"0", "1"}:
            raise ValueError(f"{cell!r} is not {width} characters of 0/1")
        return int(cell[::-1], 2)

    return parse


def _split(cell: str) -> list[str]:
    return [part for part in cell.split(schema.LIST_SEP) if part]


def _townships(folder: Path) -> Townships:
    name = schema.TOWNSHIPS
    f = _read_geojson(folder, name, schema.TOWNSHIP_FIELDS, "Polygon")
    lat = _numbers(f, name, "seat_lat", np.float64)
    lon = _numbers(f, name, "seat_lon", np.float64)
    status = []
    for raw in f["source_status"]:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(parsed, dict):
            raise DatasetError(
                f"{name}: source_status must be an object", field=f"{name}.source_status"
            )
        status.append(MappingProxyType({str(k): str(v) for k, v in parsed.items()}))
    return Townships(
        id=_strings(f, name, "code"),
        name=_strings(f, name, "name"),
        pinyin=_strings(f, name, "pinyin"),
        seat_lat=lat,
        seat_lon=lon,
        seat_cell=_cells(lat, lon, name),
        area_km2=_numbers(f, name, "area_km2", np.float64),
        polygon_area_km2=_numbers(f, name, "polygon_area_km2", np.float64),
        population=_numbers(f, name, "population", np.int64),
        villages=_numbers(f, name, "villages", np.int64),
        communities=_numbers(f, name, "communities", np.int64),
        polygon=tuple(f.geometry),
        source_status=tuple(status),
    )


def _villages(folder: Path, townships: Townships) -> Villages:
    name = schema.VILLAGES
    f = _read_geojson(folder, name, schema.VILLAGE_FIELDS, "Point")
    lat, lon, cell = _points(f, name)
    return Villages(
        id=_strings(f, name, "id"),
        name=_strings(f, name, "name"),
        kind=_codes(_strings(f, name, "kind"), schema.VILLAGE_KINDS, name, "kind"),
        township=_refs(_strings(f, name, "township_code"), townships._rows, name, "township_code"),
        population=_numbers(f, name, "population", np.int64),
        lat=lat,
        lon=lon,
        cell=cell,
    )


def _stations(
    folder: Path, townships: Townships, villages: Villages
) -> tuple[Stations, Workstations]:
    name = schema.STATIONS
    f = _read_geojson(folder, name, schema.STATION_FIELDS, "Point")
    kinds = _codes(_strings(f, name, "kind"), schema.STATION_KINDS, name, "kind")
    workstation = kinds == schema.STATION_KINDS.index("workstation")
    police, ws = f[~workstation], f[workstation]
    p_lat, p_lon, p_cell = _points(police, name)
    stations = Stations(
        id=_strings(police, name, "id"),
        name=_strings(police, name, "name"),
        kind=kinds[~workstation],
        township=_refs(
            _strings(police, name, "township_code"), townships._rows, name, "township_code"
        ),
        lat=p_lat,
        lon=p_lon,
        cell=p_cell,
    )
    w_lat, w_lon, w_cell = _points(ws, name)
    workstations = Workstations(
        id=_strings(ws, name, "id"),
        name=_strings(ws, name, "name"),
        township=_refs(_strings(ws, name, "township_code"), townships._rows, name, "township_code"),
        station=_refs(list(ws["station_id"]), stations._rows, name, "station_id"),
        village=_refs(list(ws["village_id"]), villages._rows, name, "village_id"),
        lat=w_lat,
        lon=w_lon,
        cell=w_cell,
    )
    return stations, workstations


def _units(
    folder: Path,
    townships: Townships,
    villages: Villages,
    stations: Stations,
    workstations: Workstations,
) -> Units:
    name = schema.UNITS
    f = _read_geojson(folder, name, schema.UNIT_FIELDS, "Point")
    lat, lon, cell = _points(f, name)
    return Units(
        id=_strings(f, name, "id"),
        name=_strings(f, name, "name"),
        village=_refs(_strings(f, name, "village_id"), villages._rows, name, "village_id"),
        township=_refs(_strings(f, name, "township_code"), townships._rows, name, "township_code"),
        workstation=_refs(
            _strings(f, name, "workstation_id"), workstations._rows, name, "workstation_id"
        ),
        station=_refs(_strings(f, name, "station_id"), stations._rows, name, "station_id"),
        members=_numbers(f, name, "members", np.int64),
        lat=lat,
        lon=lon,
        cell=cell,
    )


def _volunteers(folder: Path, villages: Villages, units: Units) -> Volunteers:
    name = schema.VOLUNTEERS
    path = folder / name
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"{path}: missing", field=name) from exc
    except Exception as exc:
        raise DatasetError(f"{path}: unreadable: {exc}", field=name) from exc
    _check_fields(path, list(table.columns), schema.VOLUNTEER_FIELDS)
    lat = _numbers(table, name, "home_lat", np.float64)
    lon = _numbers(table, name, "home_lon", np.float64)
    roles = _memo(lambda c: mask_of(Role, _split(c)), name, "roles")
    teams = _memo(lambda c: mask_of(Team, _split(c)), name, "teams")
    mode = _memo(lambda c: int(Mode.parse(c)), name, "mode")
    hours, days = _memo(_bits(24), name, "duty_hours"), _memo(_bits(7), name, "duty_days")
    role_masks = np.array([roles(c) for c in table["roles"]], dtype=np.uint8)
    if (role_masks == 0).any():
        row = int(np.argmax(role_masks == 0))
        raise DatasetError(f"{path}: row {row} has no role", field=f"{name}.roles")
    return Volunteers(
        id=_strings(table, name, "id"),
        name=_strings(table, name, "name"),
        unit=_refs(list(table["unit_id"]), units._rows, name, "unit_id", optional=True),
        village=_refs(list(table["village_id"]), villages._rows, name, "village_id"),
        roles=role_masks,
        teams=np.array([teams(c) for c in table["teams"]], dtype=np.uint8),
        mode=np.array([mode(c) for c in table["mode"]], dtype=np.uint8),
        home_lat=lat,
        home_lon=lon,
        home_cell=_cells(lat, lon, name),
        duty=_codes(list(table["duty"]), schema.DUTY_ARCHETYPES, name, "duty"),
        duty_hours=np.array([hours(c) for c in table["duty_hours"]], dtype=np.uint32),
        duty_days=np.array([days(c) for c in table["duty_days"]], dtype=np.uint8),
    )


def load_dataset(path: Path = DEFAULT_DATASET) -> CountyDataset:
    """Load the county dataset folder ``path``.

    Args:
        path: a folder with the files of :data:`geo.dataset.schema.DATA_FILES`
            (default: the committed Gucheng dataset).

    Raises:
        DatasetError: a file is missing or unreadable, its CRS is not WGS84, a field is missing
            or unknown, a value is outside its vocabulary, or a reference does not resolve (the
            message names the file and the field).
    """
    if not path.is_dir():
        raise DatasetError(f"{path}: not a dataset folder", field="path")
    b = _read_geojson(path, schema.BOUNDARY, None, "Polygon")
    boundary = shapely.union_all(np.asarray(b.geometry.values))
    if not isinstance(boundary, Polygon | MultiPolygon):
        raise DatasetError(
            f"{path / schema.BOUNDARY}: no polygon", field=f"{schema.BOUNDARY}.geometry"
        )
    roads = _read_geojson(path, schema.ROADS, schema.ROAD_FIELDS, "LineString")
    del roads  # checked here (CRS, fields); geo.roads builds the graph from the file
    townships = _townships(path)
    villages = _villages(path, townships)
    stations, workstations = _stations(path, townships, villages)
    units = _units(path, townships, villages, stations, workstations)
    return CountyDataset(
        boundary=boundary,
        townships=townships,
        villages=villages,
        stations=stations,
        workstations=workstations,
        units=units,
        volunteers=_volunteers(path, villages, units),
        roads_path=path / schema.ROADS,
        path=path,
    )
