"""``overview.png``: a quick map of the dataset, to see at a glance that it is plausible.

Theory of operation: drawn with matplotlib's object API (no pyplot, no global state, the Agg
canvas) from the published lon/lat, with the aspect set to 1/cos(latitude) so the county is
not stretched. Labels are in pinyin, because the machines that rebuild the dataset may have no
CJK font. The PNG carries no software/version metadata, so the same data gives the same bytes
with the same matplotlib.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from shapely.geometry import Polygon

from geo.dataset.frame import FloatArray
from geo.dataset.output import write_atomic

__all__ = ["plot_overview"]

_ROAD_STYLE = {
    "provincial": ("#c0392b", 2.2),
    "county": ("#e67e22", 1.5),
    "township": ("#7f8c8d", 1.0),
    "village": ("#bdc3c7", 0.4),
}


def plot_overview(
    path: Path,
    *,
    boundary: Polygon,
    townships: Sequence[tuple[str, Polygon, float, float]],
    roads: Sequence[tuple[str, FloatArray]],
    villages: tuple[FloatArray, FloatArray, np.ndarray],
    police: tuple[FloatArray, FloatArray],
    workstations: tuple[FloatArray, FloatArray],
    units: tuple[FloatArray, FloatArray],
    title: str,
) -> None:
    """Draw the map to ``path``.

    Args:
        boundary: the county outline.
        townships: (pinyin, polygon, seat lon, seat lat) per township.
        roads: (class, lon/lat vertices) per road.
        villages: lon, lat, and a boolean "is a community" array.
        police, workstations, units: lon and lat arrays.
        title: the map's title.
    """
    fig = Figure(figsize=(9, 10), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    palette = [
        "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69",
        "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f", "#a6cee3",
    ]  # fmt: skip
    for k, (_, poly, _, _) in enumerate(townships):
        x, y = poly.exterior.xy
        ax.fill(x, y, color=palette[k % len(palette)], alpha=0.55, linewidth=0)
        ax.plot(x, y, color="#555555", linewidth=0.6)
    for road_class in reversed(list(_ROAD_STYLE)):
        color, width = _ROAD_STYLE[road_class]
        lines = [coords for c, coords in roads if c == road_class]
        ax.add_collection(LineCollection(lines, colors=color, linewidths=width, zorder=2))
    bx, by = boundary.exterior.xy
    ax.plot(bx, by, color="black", linewidth=1.2, zorder=3)
    lon, lat, community = villages
    ax.scatter(lon[~community], lat[~community], s=3, color="#2c3e50", zorder=4, label="village")
    ax.scatter(
        lon[community], lat[community], s=10, marker="s", color="#8e44ad", zorder=4,
        label="community",
    )  # fmt: skip
    ax.scatter(
        units[0], units[1], s=22, facecolors="none", edgecolors="#16a085", linewidths=0.8,
        zorder=5, label="emergency unit",
    )  # fmt: skip
    ax.scatter(
        workstations[0], workstations[1], s=40, marker="D", color="#27ae60",
        edgecolors="black", linewidths=0.5, zorder=6, label="workstation",
    )  # fmt: skip
    ax.scatter(
        police[0], police[1], s=60, marker="^", color="#2980b9", edgecolors="black",
        linewidths=0.5, zorder=7, label="police station",
    )  # fmt: skip
    for name, _, slon, slat in townships:
        ax.annotate(
            name, (slon, slat), xytext=(4, 4), textcoords="offset points", fontsize=8,
            zorder=8, fontweight="bold",
        )  # fmt: skip
    for road_class, (color, width) in _ROAD_STYLE.items():
        ax.plot([], [], color=color, linewidth=max(width, 1.0), label=f"{road_class} road")
    ax.set_aspect(1.0 / math.cos(math.radians(float(np.mean(by)))))
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.legend(loc="lower right", fontsize=7, framealpha=0.9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    write_atomic(path, buffer.getvalue())
