"""The runs' PNG plots (matplotlib, Agg, no pyplot state).

Theory of operation
-------------------
Each function takes plain arrays and writes one PNG; figures are built with
:class:`matplotlib.figure.Figure` directly (the Agg canvas), so importing this module never
touches pyplot's global state or the process's backend. Township names are drawn in pinyin:
no CJK font can be assumed on the machines that run the planners' jobs (the CSV and GeoJSON
keep the Chinese names).

* :func:`response_cdf`: the response-time CDF per ring (time until the ring's quota of people
  were on scene), the ring limits dashed; incidents whose quota never came keep the curve
  below 1, so the gap at the top is the share never served.
* :func:`compliance_heatmap`: share of incidents whose ring quota was met in time, township x
  hour of the day, one panel per ring; grey where no incident wanted anyone in the ring.
* :func:`village_map`: villages coloured by the best ring anyone reaches them in (sized by
  population) over the township borders; new sites and existing units marked.
* :func:`coverage_curve`: the siting objective and each ring's covered population against the
  number of units added (greedy), with the MILP's optimum.
* :func:`coverage_by_hour` and :func:`alerts_histogram`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from dispatch.core.policy import RING_MINUTES, RINGS_S

__all__ = [
    "alerts_histogram",
    "compliance_heatmap",
    "coverage_by_hour",
    "coverage_curve",
    "response_cdf",
    "village_map",
]

F64 = npt.NDArray[np.float64]
RING_COLOURS: Final = ("#1b7837", "#e08214", "#2166ac")
BEST_RING_COLOURS: Final = {1: "#1a9850", 3: "#fdd835", 5: "#fb8c00", 0: "#d73027"}
_DPI: Final = 130


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    return path


def response_cdf(
    path: Path,
    curves: Mapping[str, tuple[F64, npt.NDArray[np.bool_]]],
    *,
    title: str,
    max_s: float = 1200.0,
) -> Path:
    """Response-time CDFs per ring, for one or more scenarios.

    Args:
        path: the PNG.
        curves: scenario name -> ``(response_s, wanted)``, both ``(n, 3)``: seconds until
            each ring's quota was on scene (``inf``: never) and whether the ring wanted anyone.
        title: the figure's title.
        max_s: the x axis' end, seconds.
    """
    fig = Figure(figsize=(9, 5.2))
    ax = fig.subplots()
    styles = ("-", "--", ":", "-.")
    for (name, (response, wanted)), style in zip(curves.items(), styles, strict=False):
        for j, ring in enumerate(RING_MINUTES):
            r = np.sort(response[wanted[:, j], j])
            if not len(r):
                continue
            finite = r[np.isfinite(r)]
            share = np.arange(1, len(finite) + 1) / len(r)
            xs = np.concatenate([[0.0], finite, [max_s]]) / 60.0
            ys = np.concatenate([[0.0], share, [share[-1] if len(share) else 0.0]])
            met = float((r <= RINGS_S[j]).mean())
            p90 = float(np.quantile(r, 0.9, method="inverted_cdf"))
            p90_text = "never" if not np.isfinite(p90) else f"{p90 / 60:.1f} min"
            label = f"{ring}-min quota: {met:.0%} in time, p90 {p90_text}"
            if len(curves) > 1:
                label = f"{name}, {label}"
            ax.step(xs, ys, where="post", color=RING_COLOURS[j], linestyle=style, label=label)
    for j, limit in enumerate(RINGS_S):
        ax.axvline(limit / 60.0, color=RING_COLOURS[j], linewidth=0.8, linestyle=(0, (2, 3)))
    ax.set_xlim(0, max_s / 60.0)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("minutes from the alert until the ring's quota of people is on scene")
    ax.set_ylabel("share of incidents (cumulative)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def compliance_heatmap(
    path: Path,
    share: F64,
    count: npt.NDArray[np.int64],
    township_labels: Sequence[str],
    *,
    title: str,
) -> Path:
    """Ring compliance by township x hour, one panel per ring.

    Args:
        path: the PNG.
        share: ``(rings, townships, 24)``, ``nan`` where no incident wanted the ring.
        count: the incidents behind each cell (shown in the panel titles as totals).
        township_labels: the townships' names (pinyin).
        title: the figure's title.
    """
    rings = share.shape[0]
    fig = Figure(figsize=(12, 1.2 + 2.6 * rings), layout="constrained")
    axes = fig.subplots(rings, 1, squeeze=False)[:, 0]
    cmap = ListedColormap(
        ["#a50026", "#d73027", "#f46d43", "#fdae61", "#fee08b", "#d9ef8b", "#a6d96a",
         "#66bd63", "#1a9850", "#006837"]
    ).with_extremes(bad="#d0d0d0")  # fmt: skip
    image: Any = None
    for j, ax in enumerate(axes):
        rows = share.shape[1]
        image = ax.pcolormesh(
            np.arange(25) - 0.5,
            np.arange(rows + 1) - 0.5,
            np.ma.masked_invalid(share[j]),
            cmap=cmap,
            vmin=0.0,
            vmax=1.0,
        )
        ax.set_ylim(rows - 0.5, -0.5)
        ax.set_yticks(range(len(township_labels)), labels=township_labels, fontsize=7)
        ax.set_xticks(range(24), labels=[f"{h:02d}" for h in range(24)], fontsize=7)
        total = int(count[j].sum())
        met = float(np.nansum(share[j] * count[j]) / total) if total else float("nan")
        ax.set_title(
            f"{RING_MINUTES[j]}-minute ring: quota on scene in time "
            f"({met:.0%} of {total:,} incidents)",
            fontsize=9,
        )
    axes[-1].set_xlabel("hour of the day (incident created)")
    fig.suptitle(title)
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes), fraction=0.025, pad=0.01, aspect=40)
        bar.set_label("share of incidents meeting the ring (grey: none)")
    return _save(fig, path)


def village_map(
    path: Path,
    lat: F64,
    lon: F64,
    population: npt.NDArray[np.int64],
    best_ring: npt.NDArray[np.int64],
    *,
    title: str,
    borders: Sequence[Any] = (),
    sites: tuple[F64, F64] | None = None,
    units: tuple[F64, F64] | None = None,
) -> Path:
    """Villages coloured by the best ring anyone reaches them in.

    Args:
        path: the PNG.
        lat, lon, population: the villages.
        best_ring: 1, 3, 5, or 0 (not within 5 minutes).
        title: the figure's title.
        borders: township polygons (shapely ``Polygon`` / ``MultiPolygon``).
        sites: new units' sites ``(lat, lon)``, drawn as stars.
        units: existing units ``(lat, lon)``, drawn as small triangles.
    """
    fig = Figure(figsize=(8.5, 9))
    ax = fig.subplots()
    for polygon in borders:
        parts = getattr(polygon, "geoms", [polygon])
        for part in parts:
            x, y = part.exterior.xy
            ax.plot(x, y, color="#777777", linewidth=0.6)
    size = 6 + 60 * np.sqrt(population / max(1, int(population.max())))
    handles = []
    for ring, colour in BEST_RING_COLOURS.items():
        mask = best_ring == ring
        ax.scatter(lon[mask], lat[mask], s=size[mask], c=colour, edgecolors="#333333",
                   linewidths=0.3, zorder=3)  # fmt: skip
        label = f"within {ring} min" if ring else "not within 5 min"
        handles.append(
            Line2D([], [], marker="o", linestyle="", markerfacecolor=colour,
                   markeredgecolor="#333333", label=f"{label} ({int(mask.sum())})")
        )  # fmt: skip
    if units is not None and len(units[0]):
        ax.scatter(units[1], units[0], marker="^", s=9, facecolors="none",
                   edgecolors="#222222", linewidths=0.7, zorder=4)  # fmt: skip
        handles.append(
            Line2D([], [], marker="^", linestyle="", markerfacecolor="none",
                   markeredgecolor="#222222", label=f"existing units ({len(units[0])})")
        )  # fmt: skip
    if sites is not None and len(sites[0]):
        ax.scatter(sites[1], sites[0], marker="*", s=160, c="#7b3294", edgecolors="white",
                   linewidths=0.6, zorder=5)  # fmt: skip
        handles.append(
            Line2D([], [], marker="*", linestyle="", markersize=12, color="#7b3294",
                   label=f"new units ({len(sites[0])})")
        )  # fmt: skip
    ax.set_aspect(1.0 / np.cos(np.radians(float(np.mean(lat)))))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(title)
    ax.legend(handles=handles, loc="lower left", fontsize=8)
    return _save(fig, path)


def coverage_curve(
    path: Path,
    objective_share: F64,
    ring_share: F64,
    *,
    title: str,
    exact: Sequence[tuple[int, float]] = (),
    bound: Sequence[tuple[int, float]] = (),
    ring_label: str = "covered",
    exact_label: str = "MILP optimum (HiGHS)",
) -> Path:
    """Siting objective and per-ring coverage against the units added.

    Args:
        path: the PNG.
        objective_share: ``(N + 1,)`` the weighted objective as a share of its maximum,
            after 0, 1, ..., N units (greedy).
        ring_share: ``(N + 1, 3)`` population share covered per ring.
        title: the figure's title.
        exact: ``(n, share)`` MILP optima (or best solutions found).
        bound: ``(n, share)`` upper bounds, when HiGHS stopped before proving optimality.
        ring_label: what the ring shares are (``covered`` or ``expected served``).
        exact_label: the legend of ``exact``.
    """
    fig = Figure(figsize=(9, 5.2))
    ax = fig.subplots()
    n = np.arange(len(objective_share))
    ax.plot(n, 100 * objective_share, color="black", marker="o", markersize=3,
            label="weighted objective (greedy)")  # fmt: skip
    for j, ring in enumerate(RING_MINUTES):
        ax.plot(n, 100 * ring_share[:, j], color=RING_COLOURS[j], linewidth=1.2,
                label=f"population {ring_label} within {ring} min")  # fmt: skip
    if exact:
        xs, ys = zip(*exact, strict=True)
        ax.scatter(xs, 100 * np.asarray(ys), marker="*", s=140, color="#7b3294", zorder=5,
                   label=exact_label)  # fmt: skip
    if bound:
        xs, ys = zip(*bound, strict=True)
        ax.scatter(xs, 100 * np.asarray(ys), marker="_", s=200, color="#7b3294", zorder=5,
                   label="MILP upper bound")  # fmt: skip
    ax.set_xlabel("new minimum emergency units added")
    ax.set_ylabel("% of population")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8)
    return _save(fig, path)


def coverage_by_hour(
    path: Path,
    hours: Sequence[int],
    share: F64,
    *,
    title: str,
    expected: F64 | None = None,
) -> Path:
    """County coverage by hour of the day (volunteers on duty then).

    Args:
        path: the PNG.
        hours: the hours.
        share: ``(len(hours), 3)`` population share with at least one volunteer per ring.
        title: the figure's title.
        expected: ``(len(hours), 3)`` acceptance-aware share (dashed), if any.
    """
    fig = Figure(figsize=(9, 5))
    ax = fig.subplots()
    for j, ring in enumerate(RING_MINUTES):
        ax.plot(hours, 100 * share[:, j], color=RING_COLOURS[j], marker="o", markersize=3,
                label=f"someone within {ring} min")  # fmt: skip
        if expected is not None:
            ax.plot(hours, 100 * expected[:, j], color=RING_COLOURS[j], linestyle="--",
                    label=f"someone accepts within {ring} min (expected)")  # fmt: skip
    ax.set_xticks(list(hours))
    ax.set_xlabel("hour of the day")
    ax.set_ylabel("% of population")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)
    return _save(fig, path)


def alerts_histogram(path: Path, per_day: npt.NDArray[np.int64], *, title: str) -> Path:
    """How many offers a volunteer on duty gets in a day (fatigue).

    Args:
        path: the PNG.
        per_day: offers per (volunteer on duty, day).
        title: the figure's title.
    """
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    top = int(per_day.max()) if per_day.size else 0
    counts = np.bincount(per_day, minlength=top + 1) if per_day.size else np.zeros(1, int)
    ax.bar(np.arange(len(counts)), counts, color="#4a6fa5")
    ax.set_yscale("log")
    ax.set_xlabel("offers received in one day")
    ax.set_ylabel("volunteer-days (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)
