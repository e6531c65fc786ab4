"""The organisation: volunteers, minimum emergency units, workstations, police stations.

Theory of operation
-------------------
The roster is the county dataset's static picture of the organisation, kept *columnar*: one
table per kind, each a frozen set of equal-length columns (numpy arrays for numbers, tuples for
strings), a row per member in dataset order. References between tables are row indices
(``-1`` for none), as in the dataset, so a join is one numpy gather. Each table has an
``id -> row`` dict for lookups by id; :class:`Volunteer`, :class:`Unit` and :class:`Site`
records are built on demand for the API layer, never stored.

What changes during the day (positions, availability, busy, situation) lives in the
:class:`~units.index.LiveIndex`, not here: :meth:`Roster.populate` adds every volunteer to an
index with its mode, roles, teams and unit, and returns the slot of each roster row.

A roster is validated once, when built: equal column lengths, unique non-empty ids, references
in range, coordinates valid, modes / roles / teams inside the vocabulary. A broken dataset
raises :class:`~dispatch.errors.DatasetError` naming the table, column and row
(``volunteers.unit[17]``).

Building one: ``Roster.from_dataset(geo.dataset.load.load_dataset(path))`` for the county
dataset (the method reads anything shaped like :class:`DatasetLike`, so another loader only has
to match the protocols); :meth:`VolunteerTable.from_columns` and friends build tables from
plain sequences (tests, an import).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from dispatch.errors import CoordinateError, DatasetError, NotFound
from geo.coords import check_latlon_arrays
from geo.modes import Mode
from geo.travel import Situation
from units.index import LiveIndex
from units.vocab import Role, Status, Team, names_of

__all__ = [
    "DatasetLike",
    "Roster",
    "Site",
    "SiteColumns",
    "SiteTable",
    "Unit",
    "UnitColumns",
    "UnitTable",
    "Volunteer",
    "VolunteerColumns",
    "VolunteerTable",
]

FloatArray = npt.NDArray[np.float64]
IntpArray = npt.NDArray[np.intp]
I32Array = npt.NDArray[np.int32]
U8Array = npt.NDArray[np.uint8]
Strings = Sequence[str] | npt.NDArray[Any]


# --------------------------------------------------------------------------- input shapes


@runtime_checkable
class VolunteerColumns(Protocol):
    """What the dataset loader's volunteers look like (``geo.dataset.load``)."""

    @property
    def id(self) -> Strings: ...
    @property
    def name(self) -> Strings: ...
    @property
    def unit(self) -> npt.ArrayLike: ...
    @property
    def roles(self) -> npt.ArrayLike: ...
    @property
    def teams(self) -> npt.ArrayLike: ...
    @property
    def mode(self) -> npt.ArrayLike: ...
    @property
    def home_lat(self) -> npt.ArrayLike: ...
    @property
    def home_lon(self) -> npt.ArrayLike: ...


@runtime_checkable
class UnitColumns(Protocol):
    """What the dataset loader's units look like. An optional ``village`` column is read too:
    names, or row indices into the dataset's ``villages`` (which then needs a ``name``)."""

    @property
    def id(self) -> Strings: ...
    @property
    def name(self) -> Strings: ...
    @property
    def lat(self) -> npt.ArrayLike: ...
    @property
    def lon(self) -> npt.ArrayLike: ...
    @property
    def workstation(self) -> npt.ArrayLike: ...
    @property
    def station(self) -> npt.ArrayLike: ...


@runtime_checkable
class SiteColumns(Protocol):
    """Workstations and police stations (an optional ``station`` column links a workstation
    to its police station)."""

    @property
    def id(self) -> Strings: ...
    @property
    def name(self) -> Strings: ...
    @property
    def lat(self) -> npt.ArrayLike: ...
    @property
    def lon(self) -> npt.ArrayLike: ...


class DatasetLike(Protocol):
    """The part of a loaded county dataset the roster reads. ``workstations`` and
    ``stations`` (:class:`SiteColumns`) are read too when the dataset has them."""

    @property
    def volunteers(self) -> VolunteerColumns: ...
    @property
    def units(self) -> UnitColumns: ...


# --------------------------------------------------------------------------- helpers


def _strings(values: Strings, where: str, *, ids: bool) -> tuple[str, ...]:
    out = tuple(str(v) for v in values)
    if ids:
        for row, value in enumerate(out):
            if not value:
                raise DatasetError(f"{where}[{row}] is empty", field=f"{where}[{row}]")
    return out


def _ints(
    values: npt.ArrayLike, n: int, where: str, low: int, high: int, dtype: type[np.integer[Any]]
) -> npt.NDArray[Any]:
    array_ = np.asarray(values)
    if array_.shape != (n,):
        raise DatasetError(f"{where} has shape {array_.shape}, expected ({n},)", field=where)
    if n and array_.dtype.kind not in "iu":
        raise DatasetError(f"{where} must be integers, got {array_.dtype}", field=where)
    as_int = array_.astype(np.int64)
    bad = np.flatnonzero((as_int < low) | (as_int >= high))
    if bad.size:
        row = int(bad[0])
        raise DatasetError(
            f"{where}[{row}] = {as_int[row]} is out of range [{low}, {high})",
            field=f"{where}[{row}]",
        )
    return as_int.astype(dtype)


def _coords(
    lat: npt.ArrayLike, lon: npt.ArrayLike, n: int, prefix: str
) -> tuple[FloatArray, FloatArray]:
    try:
        lat_a, lon_a = check_latlon_arrays(lat, lon, prefix=prefix)
    except CoordinateError as exc:
        raise DatasetError(str(exc), field=exc.field) from exc
    if lat_a.shape != (n,):
        raise DatasetError(
            f"{prefix}lat has shape {lat_a.shape}, expected ({n},)", field=f"{prefix}lat"
        )
    return lat_a, lon_a


def _id_rows(ids: tuple[str, ...], table: str) -> dict[str, int]:
    rows: dict[str, int] = {}
    for row, key in enumerate(ids):
        if rows.setdefault(key, row) != row:
            raise DatasetError(
                f"{table}.id[{row}] = {key!r} repeats row {rows[key]}", field=f"{table}.id[{row}]"
            )
    return rows


def _village_names(dataset: object, units: UnitColumns) -> Strings | None:
    """The units' village names: ``units.village`` as strings, or as row indices into
    ``dataset.villages`` (the loader's form), or ``None`` when the dataset has neither."""
    column = getattr(units, "village", None)
    if column is None:
        return None
    rows = np.asarray(column)
    if rows.dtype.kind not in "iu":
        return cast(Strings, column)
    names = getattr(getattr(dataset, "villages", None), "name", None)
    if names is None:
        raise DatasetError(
            "units.village refers to rows of a missing villages table", field="units.village"
        )
    bad = np.flatnonzero((rows < -1) | (rows >= len(names)))
    if bad.size:
        row = int(bad[0])
        raise DatasetError(
            f"units.village[{row}] = {rows[row]} refers to no village (there are {len(names)})",
            field=f"units.village[{row}]",
        )
    return tuple("" if r < 0 else str(names[r]) for r in rows.tolist())


def _frozen(*arrays: npt.NDArray[Any]) -> None:
    for array_ in arrays:
        array_.flags.writeable = False


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True, eq=False, slots=True)
class VolunteerTable:
    """Volunteers, a row each. ``unit`` is a row of the roster's :class:`UnitTable` or -1;
    ``roles`` / ``teams`` are bit sets of :class:`~units.vocab.Role` /
    :class:`~units.vocab.Team`; ``mode`` a :class:`~geo.modes.Mode` code."""

    id: tuple[str, ...]
    name: tuple[str, ...]
    unit: I32Array
    roles: U8Array
    teams: U8Array
    mode: U8Array
    home_lat: FloatArray
    home_lon: FloatArray

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def from_columns(
        cls,
        *,
        id: Strings,
        name: Strings,
        unit: npt.ArrayLike,
        roles: npt.ArrayLike,
        teams: npt.ArrayLike,
        mode: npt.ArrayLike,
        home_lat: npt.ArrayLike,
        home_lon: npt.ArrayLike,
    ) -> VolunteerTable:
        """Validate and copy plain columns into a table (unit references are checked by
        :class:`Roster`).

        Raises:
            DatasetError: a column has the wrong length or type, an id is empty, a code is
                outside the vocabulary or a home coordinate is invalid.
        """
        ids = _strings(id, "volunteers.id", ids=True)
        n = len(ids)
        names = _strings(name, "volunteers.name", ids=False)
        if len(names) != n:
            raise DatasetError(
                f"volunteers.name has {len(names)} rows, expected {n}", field="volunteers.name"
            )
        lat, lon = _coords(home_lat, home_lon, n, "volunteers.home_")
        table = cls(
            id=ids,
            name=names,
            unit=_ints(unit, n, "volunteers.unit", -1, np.iinfo(np.int32).max, np.int32),
            roles=_ints(roles, n, "volunteers.roles", 0, 1 << len(Role), np.uint8),
            teams=_ints(teams, n, "volunteers.teams", 0, 1 << len(Team), np.uint8),
            mode=_ints(mode, n, "volunteers.mode", 0, len(Mode), np.uint8),
            home_lat=lat,
            home_lon=lon,
        )
        _frozen(table.unit, table.roles, table.teams, table.mode, table.home_lat, table.home_lon)
        return table

    @classmethod
    def empty(cls) -> VolunteerTable:
        """No volunteers."""
        none = np.empty(0)
        return cls.from_columns(
            id=(), name=(), unit=none.astype(np.int32), roles=none.astype(np.uint8),
            teams=none.astype(np.uint8), mode=none.astype(np.uint8), home_lat=none, home_lon=none,
        )  # fmt: skip


@dataclass(frozen=True, eq=False, slots=True)
class UnitTable:
    """Minimum emergency units (最小应急单元): where each is based (its village or
    community), and the rows of its workstation and police station (-1: none)."""

    id: tuple[str, ...]
    name: tuple[str, ...]
    village: tuple[str, ...]
    lat: FloatArray
    lon: FloatArray
    workstation: I32Array
    station: I32Array

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def from_columns(
        cls,
        *,
        id: Strings,
        name: Strings,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        workstation: npt.ArrayLike,
        station: npt.ArrayLike,
        village: Strings | None = None,
    ) -> UnitTable:
        """Validate and copy plain columns into a table (``village`` defaults to ``""``).

        Raises:
            DatasetError: a column has the wrong length or type, an id is empty or a
                coordinate is invalid.
        """
        ids = _strings(id, "units.id", ids=True)
        n = len(ids)
        names = _strings(name, "units.name", ids=False)
        villages = ("",) * n if village is None else _strings(village, "units.village", ids=False)
        for column, values in (("name", names), ("village", villages)):
            if len(values) != n:
                raise DatasetError(
                    f"units.{column} has {len(values)} rows, expected {n}", field=f"units.{column}"
                )
        lat_a, lon_a = _coords(lat, lon, n, "units.")
        big = np.iinfo(np.int32).max
        table = cls(
            id=ids,
            name=names,
            village=villages,
            lat=lat_a,
            lon=lon_a,
            workstation=_ints(workstation, n, "units.workstation", -1, big, np.int32),
            station=_ints(station, n, "units.station", -1, big, np.int32),
        )
        _frozen(table.lat, table.lon, table.workstation, table.station)
        return table


@dataclass(frozen=True, eq=False, slots=True)
class SiteTable:
    """Workstations (义警工作站) or police stations: fixed sites. ``station`` links a
    workstation to its police station's row (-1: none, and always for stations)."""

    id: tuple[str, ...]
    name: tuple[str, ...]
    lat: FloatArray
    lon: FloatArray
    station: I32Array

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def from_columns(
        cls,
        *,
        id: Strings,
        name: Strings,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        station: npt.ArrayLike | None = None,
        kind: str = "sites",
    ) -> SiteTable:
        """Validate and copy plain columns into a table; ``kind`` names it in errors.

        Raises:
            DatasetError: a column has the wrong length or type, an id is empty or a
                coordinate is invalid.
        """
        ids = _strings(id, f"{kind}.id", ids=True)
        n = len(ids)
        names = _strings(name, f"{kind}.name", ids=False)
        if len(names) != n:
            raise DatasetError(
                f"{kind}.name has {len(names)} rows, expected {n}", field=f"{kind}.name"
            )
        lat_a, lon_a = _coords(lat, lon, n, f"{kind}.")
        links = np.full(n, -1, dtype=np.int32) if station is None else station
        table = cls(
            id=ids,
            name=names,
            lat=lat_a,
            lon=lon_a,
            station=_ints(links, n, f"{kind}.station", -1, np.iinfo(np.int32).max, np.int32),
        )
        _frozen(table.lat, table.lon, table.station)
        return table

    @classmethod
    def empty(cls, kind: str = "sites") -> SiteTable:
        """No sites."""
        return cls.from_columns(id=(), name=(), lat=np.empty(0), lon=np.empty(0), kind=kind)

    @classmethod
    def from_dataset(cls, columns: SiteColumns, kind: str) -> SiteTable:
        """A table from the loader's columns (``station`` is read if present).

        Raises:
            DatasetError: as :meth:`from_columns`.
        """
        station: npt.ArrayLike | None = getattr(columns, "station", None)
        return cls.from_columns(
            id=columns.id, name=columns.name, lat=columns.lat, lon=columns.lon,
            station=station, kind=kind,
        )  # fmt: skip


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Volunteer:
    """One volunteer, as the API shows it."""

    id: str
    name: str
    unit_id: str | None
    roles: int
    teams: int
    mode: Mode
    home_lat: float
    home_lon: float

    @property
    def role_names(self) -> list[str]:
        """The contract's names of the volunteer's roles."""
        return names_of(Role, self.roles)

    @property
    def team_names(self) -> list[str]:
        """The contract's names of the volunteer's teams."""
        return names_of(Team, self.teams)


@dataclass(frozen=True, slots=True)
class Unit:
    """One minimum emergency unit."""

    id: str
    name: str
    village: str
    lat: float
    lon: float
    workstation_id: str | None
    station_id: str | None


@dataclass(frozen=True, slots=True)
class Site:
    """One workstation or police station."""

    id: str
    name: str
    lat: float
    lon: float
    station_id: str | None


# --------------------------------------------------------------------------- the roster


@dataclass(frozen=True, eq=False)
class Roster:
    """The organisation, validated and indexed by id.

    Args:
        volunteers, units, workstations, stations: the tables; references between them are
            checked here.

    Raises:
        DatasetError: an id repeats within its table, or a reference (``volunteers.unit``,
            ``units.workstation``, ``units.station``, ``workstations.station``) is out of range.
    """

    volunteers: VolunteerTable
    units: UnitTable
    workstations: SiteTable = field(default_factory=lambda: SiteTable.empty("workstations"))
    stations: SiteTable = field(default_factory=lambda: SiteTable.empty("stations"))
    _volunteer_rows: dict[str, int] = field(init=False, repr=False)
    _unit_rows: dict[str, int] = field(init=False, repr=False)
    _workstation_rows: dict[str, int] = field(init=False, repr=False)
    _station_rows: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for where, refs, target in (
            ("volunteers.unit", self.volunteers.unit, len(self.units)),
            ("units.workstation", self.units.workstation, len(self.workstations)),
            ("units.station", self.units.station, len(self.stations)),
            ("workstations.station", self.workstations.station, len(self.stations)),
        ):
            bad = np.flatnonzero(refs >= target)
            if bad.size:
                row = int(bad[0])
                raise DatasetError(
                    f"{where}[{row}] = {refs[row]} refers to no row (the table has {target})",
                    field=f"{where}[{row}]",
                )
        set_ = object.__setattr__
        set_(self, "_volunteer_rows", _id_rows(self.volunteers.id, "volunteers"))
        set_(self, "_unit_rows", _id_rows(self.units.id, "units"))
        set_(self, "_workstation_rows", _id_rows(self.workstations.id, "workstations"))
        set_(self, "_station_rows", _id_rows(self.stations.id, "stations"))

    @classmethod
    def from_dataset(cls, dataset: DatasetLike) -> Roster:
        """The roster of a loaded county dataset.

        Reads ``dataset.volunteers`` and ``dataset.units`` and, when present,
        ``dataset.workstations`` and ``dataset.stations`` (see the ``*Columns`` protocols).

        Raises:
            DatasetError: the dataset breaks one of the roster's invariants.
        """
        v = dataset.volunteers
        u = dataset.units
        volunteers = VolunteerTable.from_columns(
            id=v.id, name=v.name, unit=v.unit, roles=v.roles, teams=v.teams, mode=v.mode,
            home_lat=v.home_lat, home_lon=v.home_lon,
        )  # fmt: skip
        units = UnitTable.from_columns(
            id=u.id, name=u.name, lat=u.lat, lon=u.lon, workstation=u.workstation,
            station=u.station, village=_village_names(dataset, u),
        )  # fmt: skip
        sites = {}
        for kind in ("workstations", "stations"):
            columns = getattr(dataset, kind, None)
            if columns is None:
                sites[kind] = SiteTable.empty(kind)
            elif isinstance(columns, SiteColumns):
                sites[kind] = SiteTable.from_dataset(columns, kind)
            else:
                raise DatasetError(f"dataset.{kind} lacks id, name, lat or lon", field=kind)
        return cls(volunteers, units, sites["workstations"], sites["stations"])

    # ------------------------------------------------------------------ lookups

    def volunteer_row(self, volunteer_id: str) -> int:
        """The row of a volunteer.

        Raises:
            NotFound: no such volunteer.
        """
        return self._row(self._volunteer_rows, volunteer_id, "volunteer")

    def unit_row(self, unit_id: str) -> int:
        """The row of a unit.

        Raises:
            NotFound: no such unit.
        """
        return self._row(self._unit_rows, unit_id, "unit")

    def volunteer(self, volunteer_id: str) -> Volunteer:
        """One volunteer's record.

        Raises:
            NotFound: no such volunteer.
        """
        row = self.volunteer_row(volunteer_id)
        v = self.volunteers
        unit = int(v.unit[row])
        return Volunteer(
            id=v.id[row],
            name=v.name[row],
            unit_id=self.units.id[unit] if unit >= 0 else None,
            roles=int(v.roles[row]),
            teams=int(v.teams[row]),
            mode=Mode(int(v.mode[row])),
            home_lat=float(v.home_lat[row]),
            home_lon=float(v.home_lon[row]),
        )

    def unit(self, unit_id: str) -> Unit:
        """One unit's record.

        Raises:
            NotFound: no such unit.
        """
        row = self.unit_row(unit_id)
        u = self.units
        workstation = int(u.workstation[row])
        station = int(u.station[row])
        return Unit(
            id=u.id[row],
            name=u.name[row],
            village=u.village[row],
            lat=float(u.lat[row]),
            lon=float(u.lon[row]),
            workstation_id=self.workstations.id[workstation] if workstation >= 0 else None,
            station_id=self.stations.id[station] if station >= 0 else None,
        )

    def workstation(self, workstation_id: str) -> Site:
        """One workstation.

        Raises:
            NotFound: no such workstation.
        """
        return self._site(self.workstations, self._workstation_rows, workstation_id, "workstation")

    def station(self, station_id: str) -> Site:
        """One police station.

        Raises:
            NotFound: no such station.
        """
        return self._site(self.stations, self._station_rows, station_id, "station")

    def members(self, unit_id: str) -> IntpArray:
        """Rows of the volunteers of a unit.

        Raises:
            NotFound: no such unit.
        """
        return np.flatnonzero(self.volunteers.unit == self.unit_row(unit_id))

    def __contains__(self, volunteer_id: object) -> bool:
        return volunteer_id in self._volunteer_rows

    # ------------------------------------------------------------------ live state

    def populate(
        self,
        index: LiveIndex,
        *,
        status: Status | None = None,
        situation: Situation | None = None,
    ) -> IntpArray:
        """Add every volunteer to ``index`` (mode, roles, teams, unit row); known ids are
        updated in place and keep their slot, position and, unless given, status.

        Args:
            index: the live index.
            status: everyone's availability; ``None`` keeps it (new ones start off duty).
            situation: everyone's situation; ``None`` keeps it (new ones start on patrol).

        Returns:
            The slot of each roster row.
        """
        v = self.volunteers
        return index.add_many(
            v.id,
            mode=v.mode,
            roles=v.roles,
            teams=v.teams,
            unit=v.unit,
            status=None if status is None else int(status),
            situation=None if situation is None else int(situation),
        )

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _row(rows: dict[str, int], key: str, kind: str) -> int:
        try:
            return rows[key]
        except KeyError:
            raise NotFound(f"unknown {kind} {key!r}") from None

    def _site(self, table: SiteTable, rows: dict[str, int], key: str, kind: str) -> Site:
        row = self._row(rows, key, kind)
        station = int(table.station[row])
        return Site(
            id=table.id[row],
            name=table.name[row],
            lat=float(table.lat[row]),
            lon=float(table.lon[row]),
            station_id=self.stations.id[station] if station >= 0 else None,
        )
