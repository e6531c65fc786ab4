"""``python -m simulations coverage | day | site``: run folders, manifests, repeatability."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from simulations.__main__ import main

PNG = b"\x89PNG\r\n\x1a\n"


def read_json(path: Path) -> dict[str, object]:
    value = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(value, dict)
    return value


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def check_manifest(folder: Path, command: str) -> dict[str, object]:
    manifest = read_json(folder / "manifest.json")
    assert manifest["command"] == command
    assert isinstance(manifest["git"], dict)
    assert "revision" in manifest["git"]
    dataset = manifest["dataset"]
    assert isinstance(dataset, dict)
    assert "villages.geojson" in dataset["files"]
    outputs = manifest["outputs"]
    assert isinstance(outputs, dict)
    for name in outputs:
        assert (folder / name).is_file()
    for png in folder.glob("*.png"):
        assert png.read_bytes()[:8] == PNG
    travel = manifest["travel_model"]
    assert isinstance(travel, dict)
    assert travel["name"] == "crow-fly"
    return manifest


def test_coverage_run(tmp_path: Path) -> None:
    out = tmp_path / "cov"
    assert main(["coverage", "--hour", "3,20", "--out", str(out), "--quiet"]) == 0
    manifest = check_manifest(out, "coverage")
    assert manifest["parameters"]["hours"] == [3, 20]  # type: ignore[index]
    table = rows(out / "coverage.csv")
    assert len(table) == 2 * 14 * 3 * 3  # hours x (county + 13 townships) x k x rings
    assert {r["hour"] for r in table} == {"3", "20"}
    villages = read_json(out / "villages.geojson")
    assert len(villages["features"]) == 551  # type: ignore[arg-type]
    assert (out / "coverage_by_hour.png").is_file()
    assert (out / "map_best_ring.png").is_file()


def test_site_run(tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert main(["site", "--units", "3", "--out", str(out), "--quiet"]) == 0
    check_manifest(out, "site")
    table = rows(out / "greedy.csv")
    assert [r["round"] for r in table] == ["1", "2", "3"]
    summary = read_json(out / "summary.json")
    exact = summary["exact"]
    assert isinstance(exact, dict)
    assert exact["optimal"] is True
    assert float(exact["gap"]) >= 0.0
    assert len(rows(out / "candidates.csv")) == 551
    assert len(rows(out / "sites.csv")) == 3
    for name in ("coverage_curve.png", "map_best_ring.png", "sites.geojson", "curve.csv"):
        assert (out / name).is_file()


def test_day_run_compares_scenarios_and_repeats_exactly(tmp_path: Path) -> None:
    first = tmp_path / "day1"
    args = ["day", "--days", "1", "--replications", "1", "--incidents-per-day", "15",
            "--jobs", "1", "--add-units", "2", "--unit-duty", "post", "--quiet"]  # fmt: skip
    assert main([*args, "--out", str(first), "--seed", "3"]) == 0
    manifest = check_manifest(first, "day")
    assert manifest["seed"] == 3
    scenario = manifest["scenario"]
    assert isinstance(scenario, dict)
    assert len(scenario["sites"]) == 2
    for name in ("baseline", "plus_2_units"):
        folder = first / name
        for file in ("incidents.csv", "summary.json", "compliance.csv", "alerts.csv",
                     "villages.geojson", "response_cdf.png", "compliance_heatmap.png"):  # fmt: skip
            assert (folder / file).is_file(), file
    comparison = read_json(first / "comparison.json")
    assert "compliance_r1" in comparison
    # the manifest's parameters reproduce the run exactly
    again = tmp_path / "day2"
    rerun = [*args, "--out", str(again), "--no-plots", "--config", str(first / "manifest.json")]
    assert main(rerun) == 0
    for name in ("baseline", "plus_2_units"):
        assert (first / name / "incidents.csv").read_bytes() == (
            again / name / "incidents.csv"
        ).read_bytes()


def test_bad_configuration_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("acceptence_mean = 0.3\n", encoding="utf-8")
    assert main(["day", "--config", str(bad), "--out", str(tmp_path / "x"), "--quiet"]) == 1
    assert "acceptence_mean: unknown parameter" in capsys.readouterr().err
