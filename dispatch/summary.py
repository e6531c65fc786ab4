"""``dispatch summary``: the county dataset at a glance and a first 1-3-5 coverage table.

The coverage table answers the planners' first question with the engine's own code
(:func:`simulations.coverage.coverage_counts` and the crow-fly travel model): if the
volunteers on duty at a given hour were on patrol around their homes, what share of the
population could someone reach within 1, 3 and 5 minutes?
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path
from typing import TextIO

import numpy as np

from dispatch.core.policy import RING_MINUTES
from geo.dataset.load import CountyDataset, load_dataset
from geo.modes import Mode
from geo.travel import CrowFlyModel, Turnout
from simulations.coverage import CoverageCounts, coverage_counts
from units.vocab import Role, Team

__all__ = ["print_summary"]

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _pad(text: str, width: int) -> str:
    """Left-align ``text`` in ``width`` terminal columns (CJK characters take two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - used)


def _bits(mask: np.ndarray, bit: int) -> int:
    return int(((mask >> bit) & 1).sum())


def _dataset_section(ds: CountyDataset, out: TextIO) -> None:
    vols = ds.volunteers
    villages = ds.villages
    print(f"Gucheng county dataset: {ds.path}", file=out)
    print(
        f"  {len(ds.townships)} townships, {int((villages.kind == 0).sum())} villages, "
        f"{int((villages.kind == 1).sum())} communities, "
        f"population {int(villages.population.sum()):,}",
        file=out,
    )
    print(
        f"  {len(ds.stations)} police stations (hypothetical), {len(ds.workstations)} "
        f"workstations, {len(ds.units)} minimum emergency units, {len(vols):,} volunteers "
        f"({int((vols.unit >= 0).sum()):,} in units)",
        file=out,
    )
    modes = ", ".join(f"{m.wire} {int((vols.mode == m).sum()):,}" for m in Mode)
    roles = ", ".join(f"{r.wire} {_bits(vols.roles, r.value):,}" for r in Role)
    teams = ", ".join(f"{t.wire} {_bits(vols.teams, t.value):,}" for t in Team)
    print(f"  modes: {modes}\n  roles: {roles}\n  teams: {teams}", file=out)
    print(file=out)
    header = (
        f"  {'township':<14}{'pinyin':<13}{'pop':>9}{'villages':>9}{'units':>7}{'volunteers':>11}"
    )
    print(header, file=out)
    for t in range(len(ds.townships)):
        in_township = villages.township == t
        print(
            f"  {_pad(ds.townships.name[t], 14)}{ds.townships.pinyin[t]:<13}"
            f"{int(villages.population[in_township].sum()):>9,}"
            f"{int(in_township.sum()):>9}"
            f"{int((ds.units.township == t).sum()):>7}"
            f"{int(in_township[vols.village].sum()):>11,}",
            file=out,
        )


def _coverage_rows(
    ds: CountyDataset, counts: CoverageCounts, k: int
) -> list[tuple[str, list[float]]]:
    villages = ds.villages
    rows = [("county", [share for share, _, _ in counts.shares(villages.population, k)])]
    covered = counts.covered(k)
    for t in range(len(ds.townships)):
        mask = villages.township == t
        population = villages.population[mask]
        total = float(population.sum())
        rows.append(
            (
                ds.townships.name[t],
                [float(population[covered[mask, j]].sum()) / total for j in range(3)],
            )
        )
    return rows


def print_summary(
    dataset: Path, *, weekday: int = 0, hour: int = 20, out: TextIO = sys.stdout
) -> None:
    """Print the dataset summary and the coverage table for volunteers on duty.

    Args:
        dataset: the dataset folder.
        weekday, hour: when (0 = Monday); duty patterns decide who is on duty.
        out: where to print.

    Raises:
        DatasetError: the dataset cannot be loaded.
    """
    ds = load_dataset(dataset)
    _dataset_section(ds, out)
    vols = ds.volunteers
    on_duty = vols.on_duty(weekday, hour)
    model = CrowFlyModel(turnout=Turnout.none())
    counts = coverage_counts(
        ds.villages.lat,
        ds.villages.lon,
        vols.home_lat[on_duty],
        vols.home_lon[on_duty],
        vols.mode[on_duty],
        model,
    )
    print(file=out)
    print(
        f"Coverage, {_WEEKDAYS[weekday]} {hour:02d}:00: {int(on_duty.sum()):,} volunteers on "
        f"duty, on patrol near home, {model.name} travel model",
        file=out,
    )
    print("  share of population reachable by at least k volunteers within each ring", file=out)
    rings = "".join(f"{f'{r} min':>9}" for r in RING_MINUTES)
    for k in (1, 3):
        print(f"\n  k = {k:<11}{rings}", file=out)
        for name, shares in _coverage_rows(ds, counts, k):
            cells = "".join(f"{share:>9.1%}" for share in shares)
            print(f"  {_pad(name, 12)}{cells}", file=out)
    villages_line = ", ".join(
        f"{r} min {covered}/{total}"
        for r, (_, covered, total) in zip(
            RING_MINUTES, counts.shares(ds.villages.population, 1), strict=True
        )
    )
    print(f"\n  villages and communities with someone (k = 1): {villages_line}", file=out)
