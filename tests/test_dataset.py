"""The county dataset: the committed files validate, the build is reproducible, the validator
catches each kind of breakage, and the loader hands out typed columns."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h3.api.numpy_int as h3n
import numpy as np
import pytest
import shapely
from shapely.geometry import Point

from dispatch.errors import DatasetError
from geo.cells import LIVE_RES
from geo.dataset import schema
from geo.dataset.build import DEFAULT_SEED, build
from geo.dataset.load import DEFAULT_DATASET, load_dataset
from geo.dataset.validate import validate
from geo.modes import Mode
from units.vocab import Role, mask_of

# --- the committed dataset -------------------------------------------------------------------


def test_committed_dataset_validates() -> None:
    report = validate(DEFAULT_DATASET)
    assert report.ok, "\n".join(report.failures)
    assert all(line.startswith(("PASS", "SKIP")) for line in report.checks)
    assert ": OK (" in str(report).splitlines()[-1]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dispatch", "dataset", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    good = _cli("validate", str(DEFAULT_DATASET))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASS roads connected" in good.stdout
    empty = _cli("validate", str(tmp_path))  # an empty folder fails, without a traceback
    assert empty.returncode == 1
    assert "FAIL files" in empty.stdout
    assert "Traceback" not in empty.stderr


def test_validate_raises_only_for_an_unreadable_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        validate(tmp_path / "nowhere")


# --- the generator ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    build(out, seed=DEFAULT_SEED)
    return out


@pytest.mark.slow
def test_build_is_byte_for_byte_deterministic(fresh_build: Path, tmp_path: Path) -> None:
    build(tmp_path)  # the default seed
    names = sorted(p.name for p in fresh_build.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    assert set(schema.DATA_FILES) | {schema.OVERVIEW, schema.BUILD_MANIFEST} <= set(names)
    for name in names:
        assert (fresh_build / name).read_bytes() == (tmp_path / name).read_bytes(), name


@pytest.mark.slow
def test_committed_files_equal_a_fresh_build(fresh_build: Path) -> None:
    # overview.png is left out: its pixels depend on the matplotlib / FreeType build.
    for name in (*schema.DATA_FILES, schema.BUILD_MANIFEST):
        committed = (DEFAULT_DATASET / name).read_bytes()
        assert committed == (fresh_build / name).read_bytes(), (
            f"{name} differs from a fresh build: run `dispatch dataset build` and commit"
        )


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64", reason="OpenBLAS core types are x86 names")
def test_the_build_does_not_depend_on_the_cpus_blas_kernels(tmp_path: Path) -> None:
    """OpenBLAS picks its kernels for the CPU it runs on, and they round differently; forced
    onto the oldest x86-64 kernels (any x86-64 CPU runs them), the build gives the committed
    bytes all the same. Before dot2/norm2 and the rounded weights, it did not."""
    env = {**os.environ, "OPENBLAS_CORETYPE": "Prescott"}
    command = [sys.executable, "-m", "dispatch", "dataset", "build", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    for name in (*schema.DATA_FILES, schema.BUILD_MANIFEST):
        assert (tmp_path / name).read_bytes() == (DEFAULT_DATASET / name).read_bytes(), name


@pytest.mark.slow
def test_another_seed_gives_another_valid_dataset(tmp_path: Path) -> None:
    build(tmp_path, seed=7)
    report = validate(tmp_path)
    assert report.ok, "\n".join(report.failures)
    assert (tmp_path / schema.VILLAGES).read_bytes() != (
        DEFAULT_DATASET / schema.VILLAGES
    ).read_bytes()


# --- the validator catches breakage ----------------------------------------------------------


def _edit(folder: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / name
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


def _edit_csv(folder: Path, change: Callable[[list[list[str]]], None]) -> None:
    path = folder / schema.VOLUNTEERS
    rows = [line.split(",") for line in path.read_text(encoding="utf-8").splitlines()]
    change(rows)
    path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")


def _props(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [f["properties"] for f in document["features"]]


def duplicate_village_id(folder: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        props = _props(doc)
        props[5]["id"] = props[4]["id"]

    _edit(folder, schema.VILLAGES, change)


def village_outside_its_township(folder: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        village = next(
            f for f in doc["features"] if f["properties"]["township_code"] == "131126201"
        )
        village["geometry"]["coordinates"] = [115.93, 37.25]  # deep in the south

    _edit(folder, schema.VILLAGES, change)


def volunteer_in_a_missing_unit(folder: Path) -> None:
    def change(rows: list[list[str]]) -> None:
        column = rows[0].index("unit_id")
        next(r for r in rows[1:] if r[column])[column] = "U999"

    _edit_csv(folder, change)


def roads_cut_around_a_seat(folder: Path) -> None:
    """Drop every road crossing a 3 km circle around 三朗's seat: an island remains."""
    towns = json.loads((folder / schema.TOWNSHIPS).read_text(encoding="utf-8"))
    seat = next(p for p in _props(towns) if p["code"] == "131126110")
    ring = Point(seat["seat_lon"], seat["seat_lat"]).buffer(0.03).exterior

    def change(doc: dict[str, Any]) -> None:
        doc["features"] = [
            f for f in doc["features"] if not ring.intersects(shapely.geometry.shape(f["geometry"]))
        ]

    _edit(folder, schema.ROADS, change)


def wrong_population(folder: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        _props(doc)[0]["population"] += 1

    _edit(folder, schema.VILLAGES, change)


def non_wgs84_crs(folder: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}

    _edit(folder, schema.STATIONS, change)


def unnoded_crossing(folder: Path) -> None:
    """Remove a crossing vertex from one of the two roads that share it."""

    def change(doc: dict[str, Any]) -> None:
        interior: dict[tuple[float, float], list[int]] = {}
        for k, f in enumerate(doc["features"]):
            for x, y in f["geometry"]["coordinates"][1:-1]:
                interior.setdefault((x, y), []).append(k)
        vertex, owners = next((v, o) for v, o in interior.items() if len(set(o)) == 2)
        coords = doc["features"][owners[0]]["geometry"]["coordinates"]
        coords.remove(list(vertex))

    _edit(folder, schema.ROADS, change)


def unknown_role(folder: Path) -> None:
    def change(rows: list[list[str]]) -> None:
        rows[1][rows[0].index("roles")] = "sheriff"

    _edit_csv(folder, change)


def missing_field(folder: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        for props in _props(doc):
            del props["population"]

    _edit(folder, schema.VILLAGES, change)


def missing_file(folder: Path) -> None:
    (folder / schema.UNITS).unlink()


def township_overlap(folder: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        first, second = doc["features"][0], doc["features"][1]
        second["geometry"] = first["geometry"]

    _edit(folder, schema.TOWNSHIPS, change)


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (duplicate_village_id, "unique ids: duplicates: villages.geojson.id not unique"),
        (village_outside_its_township, "inside township: outside their township: villages"),
        (volunteer_in_a_missing_unit, "references: dangling references: volunteers.unit_id"),
        (roads_cut_around_a_seat, "roads connected: "),
        (wrong_population, "population: population: township 131126100: villages sum to"),
        (non_wgs84_crs, "crs stations.geojson"),
        (unnoded_crossing, "roads noded: "),
        (unknown_role, "vocabulary: unknown values: volunteers.roles ['sheriff']"),
        (missing_field, "fields villages.geojson: missing ['population']"),
        (missing_file, "files: missing ['units.geojson']"),
        (township_overlap, "township polygons: township polygons: overlaps"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_validate_reports_the_breakage(
    tmp_path: Path, breakage: Callable[[Path], None], expected: str
) -> None:
    for name in (*schema.DATA_FILES, schema.BUILD_MANIFEST):
        shutil.copy(DEFAULT_DATASET / name, tmp_path / name)
    breakage(tmp_path)
    report = validate(tmp_path)
    assert not report.ok
    assert any(f.startswith(expected) for f in report.failures), "\n".join(report.failures)


# --- the loader ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset() -> Any:
    return load_dataset()


def test_loader_returns_typed_columns(dataset: Any) -> None:
    d = dataset
    assert len(d.townships) == schema.N_TOWNSHIPS
    assert len(d.villages) == schema.N_VILLAGES + schema.N_COMMUNITIES
    assert len(d.workstations) == schema.N_WORKSTATIONS
    assert len(d.units) >= schema.MIN_UNITS
    assert len(d.volunteers) == schema.N_VOLUNTEERS
    expected = {
        (d.townships, "seat_lat"): np.float64,
        (d.townships, "population"): np.int64,
        (d.townships, "seat_cell"): np.uint64,
        (d.villages, "lat"): np.float64,
        (d.villages, "lon"): np.float64,
        (d.villages, "population"): np.int64,
        (d.villages, "kind"): np.uint8,
        (d.villages, "township"): np.int64,
        (d.villages, "cell"): np.uint64,
        (d.stations, "kind"): np.uint8,
        (d.stations, "cell"): np.uint64,
        (d.workstations, "station"): np.int64,
        (d.workstations, "village"): np.int64,
        (d.units, "village"): np.int64,
        (d.units, "workstation"): np.int64,
        (d.units, "station"): np.int64,
        (d.units, "cell"): np.uint64,
        (d.volunteers, "unit"): np.int64,
        (d.volunteers, "roles"): np.uint8,
        (d.volunteers, "teams"): np.uint8,
        (d.volunteers, "mode"): np.uint8,
        (d.volunteers, "home_lat"): np.float64,
        (d.volunteers, "home_lon"): np.float64,
        (d.volunteers, "home_cell"): np.uint64,
        (d.volunteers, "duty_hours"): np.uint32,
        (d.volunteers, "duty_days"): np.uint8,
    }
    for (table, column), dtype in expected.items():
        array = getattr(table, column)
        assert array.dtype == dtype, (type(table).__name__, column, array.dtype)
        assert len(array) == len(table)
        assert not array.flags.writeable
    assert isinstance(d.villages.id, tuple)
    assert all(isinstance(x, str) for x in d.volunteers.name)
    for cells in (d.villages.cell, d.units.cell, d.volunteers.home_cell, d.townships.seat_cell):
        assert {h3n.get_resolution(int(c)) for c in np.unique(cells)} == {LIVE_RES}
    assert set(np.unique(d.villages.kind).tolist()) == {0, 1}
    assert int((d.villages.kind == 1).sum()) == schema.N_COMMUNITIES
    assert d.volunteers.mode.max() <= max(Mode)
    assert (d.volunteers.roles != 0).all()
    assert (d.volunteers.unit >= -1).all()
    assert (d.volunteers.unit < len(d.units)).all()
    assert int(d.villages.population.sum()) == schema.TOTAL_POPULATION
    assert d.roads_path.is_file()
    assert d.boundary.is_valid


def test_loader_lookups_and_duty(dataset: Any) -> None:
    v = dataset.volunteers
    first = v.index(v.id[0])
    assert first == 0
    with pytest.raises(KeyError):
        v.index("V99999")
    unit = dataset.units.index(dataset.units.id[3])
    assert dataset.units.id[unit] == dataset.units.id[3]
    # decode one row back to its wire form
    assert v.roles[0] == mask_of(Role, _csv_row(0)["roles"].split(";"))
    hours = _csv_row(0)["duty_hours"]
    assert [bool(v.duty_hours[0] >> h & 1) for h in range(24)] == [c == "1" for c in hours]
    monday_nine = v.on_duty(0, 9)
    assert monday_nine.dtype == np.bool_
    assert 0 < monday_nine.sum() < len(v)
    with pytest.raises(ValueError, match="weekday"):
        v.on_duty(7, 0)


def _csv_row(index: int) -> dict[str, str]:
    lines = (DEFAULT_DATASET / schema.VOLUNTEERS).read_text(encoding="utf-8").splitlines()
    return dict(zip(lines[0].split(","), lines[index + 1].split(","), strict=True))


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (non_wgs84_crs, "stations.geojson.crs"),
        (missing_field, "villages.geojson.population"),
        (unknown_role, "volunteers.csv.roles"),
        (volunteer_in_a_missing_unit, "volunteers.csv.unit_id"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_loader_names_file_and_field(
    tmp_path: Path, breakage: Callable[[Path], None], field: str
) -> None:
    for name in schema.DATA_FILES:
        shutil.copy(DEFAULT_DATASET / name, tmp_path / name)
    breakage(tmp_path)
    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path)
    assert caught.value.field == field
    assert field.split(".", maxsplit=1)[0] in str(caught.value)


def test_loader_rejects_an_unknown_field(tmp_path: Path) -> None:
    for name in schema.DATA_FILES:
        shutil.copy(DEFAULT_DATASET / name, tmp_path / name)

    def change(doc: dict[str, Any]) -> None:
        _props(doc)[0]["colour"] = "red"

    _edit(tmp_path, schema.UNITS, change)
    with pytest.raises(DatasetError, match="unknown field 'colour'") as caught:
        load_dataset(tmp_path)
    assert caught.value.field == "units.geojson.colour"
