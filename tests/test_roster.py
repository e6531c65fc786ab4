"""The roster: tables from columns or a dataset-shaped object, lookups, validation, populate."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from dispatch.errors import DatasetError, NotFound
from geo.dataset import schema
from geo.dataset.load import CountyDataset, load_dataset
from geo.modes import Mode
from geo.travel import Situation
from units.index import LiveIndex
from units.roster import Roster, SiteTable, UnitTable, VolunteerTable
from units.vocab import Role, Status, Team, mask_of

NOW = 1_790_000_000.0


def volunteer_columns(**overrides: Any) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "id": ["V001", "V002", "V003", "V004"],
        "name": ["王芳", "李强", "张伟", "刘洋"],
        "unit": np.array([0, 0, 1, -1], dtype=np.int32),
        "roles": np.array(
            [mask_of(Role, ["patrol", "mediator"]), 1, 0, mask_of(Role, ["school_guard"])],
            dtype=np.uint8,
        ),
        "teams": np.array([mask_of(Team, ["rescue", "women"]), 0, 0, 0], dtype=np.uint8),
        "mode": np.array([Mode.WALK, Mode.EBIKE, Mode.CAR, Mode.BIKE], dtype=np.uint8),
        "home_lat": np.array([37.347, 37.35, 37.30, 37.41]),
        "home_lon": np.array([115.965, 115.97, 116.05, 115.90]),
    }
    return columns | overrides


def unit_columns(**overrides: Any) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "id": ["U01", "U02"],
        "name": ["郑口一单元", "郭庄单元"],
        "village": ["郑口社区", "郭庄村"],
        "lat": np.array([37.347, 37.30]),
        "lon": np.array([115.965, 116.05]),
        "workstation": np.array([0, -1]),
        "station": np.array([0, 1]),
    }
    return columns | overrides


def site_columns(kind: str, **overrides: Any) -> dict[str, Any]:
    if kind == "stations":
        columns: dict[str, Any] = {
            "id": ["S1", "S2"],
            "name": ["郑口派出所", "郭庄派出所"],
            "lat": np.array([37.34, 37.29]),
            "lon": np.array([115.96, 116.04]),
        }
    else:
        columns = {
            "id": ["W01"],
            "name": ["郑口工作站"],
            "lat": np.array([37.345]),
            "lon": np.array([115.962]),
            "station": np.array([0]),
        }
    return columns | {"kind": kind} | overrides


def make_roster() -> Roster:
    return Roster(
        VolunteerTable.from_columns(**volunteer_columns()),
        UnitTable.from_columns(**unit_columns()),
        SiteTable.from_columns(**site_columns("workstations")),
        SiteTable.from_columns(**site_columns("stations")),
    )


# --------------------------------------------------------------------------- lookups


def test_volunteer_lookup() -> None:
    roster = make_roster()
    first = roster.volunteer("V001")
    assert (first.id, first.name, first.unit_id, first.mode) == ("V001", "王芳", "U01", Mode.WALK)
    assert first.role_names == ["patrol", "mediator"]
    assert first.team_names == ["rescue", "women"]
    assert (first.home_lat, first.home_lon) == (37.347, 115.965)
    assert roster.volunteer("V004").unit_id is None
    assert roster.volunteer_row("V003") == 2
    assert "V002" in roster
    assert "V999" not in roster
    assert len(roster.volunteers) == 4


def test_unit_site_lookups_and_members() -> None:
    roster = make_roster()
    unit = roster.unit("U01")
    assert (unit.name, unit.village, unit.workstation_id, unit.station_id) == (
        "郑口一单元",
        "郑口社区",
        "W01",
        "S1",
    )
    assert roster.unit("U02").workstation_id is None
    assert roster.unit_row("U02") == 1
    assert roster.members("U01").tolist() == [0, 1]
    assert roster.members("U02").tolist() == [2]
    workstation = roster.workstation("W01")
    assert (workstation.name, workstation.station_id) == ("郑口工作站", "S1")
    station = roster.station("S2")
    assert (station.name, station.lat, station.station_id) == ("郭庄派出所", 37.29, None)


@pytest.mark.parametrize(
    ("lookup", "key"),
    [
        ("volunteer", "V999"),
        ("volunteer_row", ""),
        ("unit", "U99"),
        ("unit_row", "V001"),
        ("members", "nope"),
        ("workstation", "S1"),
        ("station", "W01"),
    ],
)
def test_unknown_ids_raise_not_found(lookup: str, key: str) -> None:
    roster = make_roster()
    with pytest.raises(NotFound, match=repr(key)):
        getattr(roster, lookup)(key)


def test_columns_are_read_only() -> None:
    roster = make_roster()
    with pytest.raises(ValueError, match="read-only"):
        roster.volunteers.unit[0] = 1
    with pytest.raises(ValueError, match="read-only"):
        roster.units.lat[0] = 1.0


def test_sites_default_to_empty() -> None:
    roster = Roster(
        VolunteerTable.from_columns(**volunteer_columns()),
        UnitTable.from_columns(
            **unit_columns(workstation=[-1, -1], station=[-1, -1], village=None)
        ),
    )
    assert len(roster.workstations) == len(roster.stations) == 0
    assert roster.unit("U01").village == ""


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("table", "overrides", "field"),
    [
        ("volunteers", {"id": ["V001", "V002", "V001", "V004"]}, "volunteers.id[2]"),
        ("volunteers", {"id": ["V001", "", "V003", "V004"]}, "volunteers.id[1]"),
        ("volunteers", {"unit": np.array([0, 0, 2, -1])}, "volunteers.unit[2]"),
        ("volunteers", {"unit": np.array([0, 0, -2, -1])}, "volunteers.unit[2]"),
        ("volunteers", {"mode": np.array([0, 1, 4, 0])}, "volunteers.mode[2]"),
        ("volunteers", {"roles": np.array([0, 64, 0, 0])}, "volunteers.roles[1]"),
        ("volunteers", {"teams": np.array([0, 0, 0])}, "volunteers.teams"),
        ("volunteers", {"mode": np.array([0.0, 1.0, 2.0, 3.0])}, "volunteers.mode"),
        ("volunteers", {"name": ["a", "b"]}, "volunteers.name"),
        ("volunteers", {"home_lat": np.array([37.0, 95.0, 37.0, 37.0])}, "volunteers.home_lat[1]"),
        (
            "volunteers",
            {"home_lon": np.array([116.0, 116.0, math.nan, 116.0])},
            "volunteers.home_lon[2]",
        ),
        ("units", {"workstation": np.array([0, 1])}, "units.workstation[1]"),
        ("units", {"station": np.array([2, 0])}, "units.station[0]"),
        ("units", {"id": ["U01", "U01"]}, "units.id[1]"),
        ("units", {"village": ["a"]}, "units.village"),
        ("workstations", {"station": np.array([5])}, "workstations.station[0]"),
        ("stations", {"lat": np.array([37.0, -91.0])}, "stations.lat[1]"),
    ],
)
def test_broken_tables_raise_dataset_error(
    table: str, overrides: dict[str, Any], field: str
) -> None:
    columns = {
        "volunteers": volunteer_columns(),
        "units": unit_columns(),
        "workstations": site_columns("workstations"),
        "stations": site_columns("stations"),
    }
    columns[table] = columns[table] | overrides
    with pytest.raises(DatasetError) as caught:
        Roster(
            VolunteerTable.from_columns(**columns["volunteers"]),
            UnitTable.from_columns(**columns["units"]),
            SiteTable.from_columns(**columns["workstations"]),
            SiteTable.from_columns(**columns["stations"]),
        )
    assert caught.value.field == field


# --------------------------------------------------------------------------- from a dataset


@dataclass(frozen=True)
class FakeVolunteers:
    id: list[str]
    name: list[str]
    unit: npt.NDArray[np.int64]
    roles: npt.NDArray[np.uint8]
    teams: npt.NDArray[np.uint8]
    mode: npt.NDArray[np.uint8]
    home_lat: npt.NDArray[np.float64]
    home_lon: npt.NDArray[np.float64]


@dataclass(frozen=True)
class FakeUnits:
    id: list[str]
    name: list[str]
    village: list[str] | npt.NDArray[np.int64]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    workstation: npt.NDArray[np.int64]
    station: npt.NDArray[np.int64]


@dataclass(frozen=True)
class FakeSites:
    id: list[str]
    name: list[str]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]


@dataclass(frozen=True)
class FakeDataset:
    volunteers: FakeVolunteers
    units: FakeUnits
    workstations: FakeSites | None = None
    stations: FakeSites | None = None
    villages: FakeSites | None = None


def fake_dataset() -> FakeDataset:
    sites = site_columns("stations")
    return FakeDataset(
        volunteers=FakeVolunteers(**volunteer_columns(unit=np.array([0, 0, 1, -1]))),
        units=FakeUnits(**unit_columns(workstation=np.array([-1, -1]))),
        stations=FakeSites(sites["id"], sites["name"], sites["lat"], sites["lon"]),
    )


def test_from_dataset() -> None:
    roster = Roster.from_dataset(fake_dataset())
    assert roster.volunteers.id == ("V001", "V002", "V003", "V004")
    assert roster.volunteers.unit.dtype == np.int32
    assert roster.unit("U02").station_id == "S2"
    assert len(roster.workstations) == 0
    assert roster.station("S1").name == "郑口派出所"


def test_from_dataset_rejects_a_malformed_site_table() -> None:
    broken = replace(fake_dataset(), workstations=object())  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="workstations"):
        Roster.from_dataset(broken)


@pytest.fixture(scope="module")
def county() -> CountyDataset:
    return load_dataset()


def test_from_the_county_dataset(county: CountyDataset) -> None:
    roster = Roster.from_dataset(county)
    assert len(roster.volunteers) == schema.N_VOLUNTEERS
    assert len(roster.workstations) == schema.N_WORKSTATIONS
    assert len(roster.units) >= schema.MIN_UNITS
    assert len(roster.stations) == len(county.stations)
    row = len(county.volunteers) // 2
    volunteer = roster.volunteer(county.volunteers.id[row])
    assert volunteer.name == county.volunteers.name[row]
    assert volunteer.mode == county.volunteers.mode[row]
    assert volunteer.roles == county.volunteers.roles[row]
    unit_row = int(county.volunteers.unit[row])
    assert volunteer.unit_id == (county.units.id[unit_row] if unit_row >= 0 else None)
    for u in range(len(county.units)):
        unit = roster.unit(county.units.id[u])
        assert unit.village == county.villages.name[county.units.village[u]]
        assert unit.workstation_id == county.workstations.id[county.units.workstation[u]]
        assert unit.station_id == county.stations.id[county.units.station[u]]
        members = roster.members(unit.id)
        np.testing.assert_array_equal(members, np.flatnonzero(county.volunteers.unit == u))
    first = roster.workstation(county.workstations.id[0])
    assert first.station_id == county.stations.id[county.workstations.station[0]]


def test_county_dataset_populates_an_index(county: CountyDataset) -> None:
    roster = Roster.from_dataset(county)
    index = LiveIndex()
    slots = roster.populate(index, status=Status.AVAILABLE)
    np.testing.assert_array_equal(slots, np.arange(schema.N_VOLUNTEERS))
    np.testing.assert_array_equal(index.mode, county.volunteers.mode)
    np.testing.assert_array_equal(index.unit, county.volunteers.unit)
    # everyone reports from home: the whole county is in the buckets
    homes = roster.volunteers.home_lat, roster.volunteers.home_lon
    out = index.update_batch(slots, *homes, np.full(len(slots), NOW), NOW)
    assert not out.any()
    np.testing.assert_array_equal(index.cell, county.volunteers.home_cell)
    seat = schema.COUNTY_SEAT_LATLON
    assert len(index.near(*seat, 1_000.0)) > 100


def test_village_indices_need_a_villages_table() -> None:
    dataset = fake_dataset()
    villages = FakeSites(["a", "b"], ["甲村", "乙村"], np.zeros(2), np.zeros(2))
    by_row = replace(dataset, units=replace(dataset.units, village=np.array([0, 1])))
    with pytest.raises(DatasetError, match="villages"):
        Roster.from_dataset(by_row)
    assert Roster.from_dataset(replace(by_row, villages=villages)).unit("U02").village == "乙村"
    broken = replace(by_row, units=replace(dataset.units, village=np.array([0, 2])))
    with pytest.raises(DatasetError) as caught:
        Roster.from_dataset(replace(broken, villages=villages))
    assert caught.value.field == "units.village[1]"


# --------------------------------------------------------------------------- populate


def test_populate_fills_the_index() -> None:
    roster = make_roster()
    index = LiveIndex(capacity=2)
    slots = roster.populate(index)
    assert slots.tolist() == [0, 1, 2, 3]
    assert index.ids == list(roster.volunteers.id)
    np.testing.assert_array_equal(index.mode, roster.volunteers.mode)
    np.testing.assert_array_equal(index.roles, roster.volunteers.roles)
    np.testing.assert_array_equal(index.teams, roster.volunteers.teams)
    np.testing.assert_array_equal(index.unit, roster.volunteers.unit)
    assert (index.status == Status.OFF_DUTY).all()
    assert np.isnan(index.lat).all()  # a home is not a live fix


def test_populate_again_keeps_live_state() -> None:
    roster = make_roster()
    index = LiveIndex()
    index.add("X", mode=Mode.CAR)  # someone added through the API first
    roster.populate(index, status=Status.AVAILABLE, situation=Situation.HOME)
    slot = index.slot("V002")
    index.update(slot, 37.35, 115.97, NOW, NOW)
    index.set_status(slot, Status.BUSY)
    again = roster.populate(index)
    assert again.tolist() == [1, 2, 3, 4]
    assert index.status[slot] == Status.BUSY
    assert index.situation[slot] == Situation.HOME
    assert index.lat[slot] == 37.35
    assert len(index) == 5
