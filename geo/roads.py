"""Road-network travel model: the county's road lines as a graph, shortest paths by mode.

Theory of operation
-------------------
*Graph.* :class:`RoadNetwork` turns road lines (LineString / MultiLineString, WGS84) into a
directed graph. Nodes are the lines' vertices, merged where their coordinates agree to 1e-7
degree (about 1 cm; the key is ``rint(deg * 1e7)``); an edge joins consecutive vertices of a
line. Its length is the WGS84 geodesic (pyproj); its weight, per mode, is length / speed in
seconds. A speed of 0 removes the edge for that mode. Speeds come from the columns
``speed_{walk,bike,ebike,car}_kmh``, else from ``class`` via :data:`geo.modes.ROAD_SPEED_KMH`,
else from an OpenStreetMap ``highway`` tag mapped to a class (:data:`HIGHWAY_CLASS`). Roads are
two-way unless ``oneway`` says otherwise (OSM ``yes``/``-1``/``no``; a roundabout is one-way);
as in OSM, ``oneway`` binds vehicles, not pedestrians, so walking ignores it. Parallel edges
between the same two nodes keep the fastest. Each mode gets one ``csr_array`` of seconds
(float64 data, int32 indices) and its transpose, built once.

*Snapping.* A point reaches the network on foot (:data:`OFFROAD_SPEED_MS`, the responders'
2.3 m/s), straight to the nearest node that its mode may use. Distances are planar in a local
equirectangular projection around the network's centre with the WGS84 radii of curvature at
that latitude. Its relative error is bounded by :attr:`RoadNetwork.projection_error`: the
east-west scale drifts as ``cos(lat0) / cos(lat)``, so the bound is that drift at the edges of
the network's latitude band widened by 0.1 degree (11 km, beyond any 5-minute reach), plus
1e-4 for the north-south radius and the curvature: 0.45% for the county dataset. Nearest
nodes come from a precomputed adaptive grid (:class:`_Snapper`: exact, vectorised, ~5x faster
than ``cKDTree.query`` for 10,000 points); points outside it or in its rare crowded leaves go to
the ``cKDTree``. By default a mode snaps only to its largest strongly connected component, so
a stray fragment of road does not trap a volunteer.

*Times.* :class:`RoadModel` answers "seconds from these origins to this point": one bounded
Dijkstra per mode present, FROM the destination's node on the reversed graph (so one-way streets
are taken the right way), cut at the limit minus the destination's off-road leg. An origin's
time is its off-road leg + the network time from its node + the destination's off-road leg +
its turnout, or, when shorter, a straight walk to the destination (short distances). Origins
that could not make the limit even at the network's top speed are dropped before snapping; a
query without ``limit_s`` is cut at :data:`DEFAULT_LIMIT_S` (600 s). The last Dijkstra results
are kept in a small LRU keyed by (node, mode), reused for any smaller limit. ``max_reach_m`` is
the top speed (or walking, if faster) x seconds x (1 + the projection's error bound).

*Why not a table per H3 cell.* A precomputed cell-to-cell table would replace Dijkstra by a
lookup, but the origins arrive as coordinates, and finding their cells alone
(``geo.cells.cells_of``, one h3-py call a point) takes 10-14 ms for 10,000 origins, 2-3x the
budget of the whole query (measured in ``benchmarks/bench_travel.py``); the table would also
weigh tens of MB for 4 modes and lose the exact node-to-node times. The bounded Dijkstra costs
0.05 ms on the county dataset and 0.15-0.5 ms on a 69,000-node network (car, 300 s, on a
prebuilt float64/int32 CSR, so scipy's validation copies nothing); snapping 10,000 origins
(~1.7 ms) is the larger part of a query. So: Dijkstra, no table.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyogrio.errors
import pyproj
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from dispatch.errors import DatasetError
from geo.coords import check_latlon
from geo.modes import CROW_FLY_SPEED_MS, ROAD_CLASSES, ROAD_SPEED_KMH, Mode
from geo.travel import FloatArray, ModeArray, SituationArray, Turnout

__all__ = [
    "DEFAULT_LIMIT_S",
    "HIGHWAY_CLASS",
    "OFFROAD_SPEED_MS",
    "SPEED_COLUMNS",
    "LocalProjection",
    "RoadModel",
    "RoadNetwork",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Graph = sp.csr_array

#: Off-road legs are walked at the responders' median pace (geo.modes), m/s.
OFFROAD_SPEED_MS: Final = CROW_FLY_SPEED_MS[Mode.WALK]

#: A query without ``limit_s`` is still cut here: the 5-minute ring plus as much again as
#: slack for turnout (at most 142 s) and off-road legs, so the search stays bounded.
DEFAULT_LIMIT_S: Final = 600.0

#: The speed column of each mode, km/h.
SPEED_COLUMNS: Final[dict[Mode, str]] = {m: f"speed_{m.wire}_kmh" for m in Mode}

#: OpenStreetMap ``highway`` values mapped to the county's road classes. ``*_link`` values take
#: their road's class. Values absent here (``proposed``, ``construction``, ``platform``, ...)
#: are not routable; the walk-only and cycle values are handled by :data:`_HIGHWAY_SPECIAL`.
HIGHWAY_CLASS: Final[dict[str, str]] = {
    "motorway": "provincial",
    "trunk": "provincial",
    "primary": "provincial",
    "secondary": "county",
    "tertiary": "township",
    "unclassified": "township",
    "road": "village",
    "residential": "village",
    "living_street": "village",
    "service": "village",
    "track": "village",
}

_WALK_KMH: Final = ROAD_SPEED_KMH["village"][Mode.WALK]
_VILLAGE: Final = ROAD_SPEED_KMH["village"]
#: Highway values whose modes differ from their class: speeds in mode order (walk, bike,
#: ebike, car), km/h. Motorways bar walkers and two-wheelers; paths are for walkers; cycleways
#: take two-wheelers at village-lane pace.
_HIGHWAY_SPECIAL: Final[dict[str, tuple[float, float, float, float]]] = {
    "motorway": (0.0, 0.0, 0.0, ROAD_SPEED_KMH["provincial"][Mode.CAR]),
    "footway": (_WALK_KMH, 0.0, 0.0, 0.0),
    "path": (_WALK_KMH, 0.0, 0.0, 0.0),
    "pedestrian": (_WALK_KMH, 0.0, 0.0, 0.0),
    "steps": (_WALK_KMH, 0.0, 0.0, 0.0),
    "bridleway": (_WALK_KMH, 0.0, 0.0, 0.0),
    "cycleway": (_WALK_KMH, _VILLAGE[Mode.BIKE], _VILLAGE[Mode.EBIKE], 0.0),
}

_ONEWAY_VALUES: Final[dict[str, int]] = {
    "yes": 1,
    "true": 1,
    "1": 1,
    "-1": -1,
    "reverse": -1,
    "no": 0,
    "false": 0,
    "0": 0,
    # direction changes during the day: both directions are possible, so both are kept
    "reversible": 0,
    "alternating": 0,
}

_N_MODES: Final = len(Mode)
_KEY_SCALE: Final = 1e7  # node key: coordinates rounded to 1e-7 degree
_LINE_TYPES: Final = (1, 2, 5)  # shapely type ids: LineString, LinearRing, MultiLineString

# WGS84
_A: Final = 6_378_137.0
_E2: Final = 6.694379990141317e-3
_GEOD: Final = pyproj.Geod(ellps="WGS84")


# --------------------------------------------------------------------------------------------
# Local projection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """Equirectangular projection around ``(lat0, lon0)``, metres, WGS84 radii at ``lat0``.

    Attributes:
        lat0, lon0: the centre, degrees.
        error: bound on the relative distance error for points inside the latitude band
            ``[lat_min, lat_max]`` it was built for.
    """

    lat0: float
    lon0: float
    kx: float  # metres per degree of longitude at lat0
    ky: float  # metres per degree of latitude at lat0
    error: float

    @classmethod
    def around(
        cls,
        lat_min: float,
        lat_max: float,
        lon_min: float,
        lon_max: float,
        margin_deg: float = 0.1,
    ) -> LocalProjection:
        """The projection centred on a bounding box, with its error bound over the box's
        latitude band widened by ``margin_deg`` on each side.

        The east-west scale is exact at ``lat0`` and off by the ratio of ``cos(lat0)`` and
        ``cos(lat)`` elsewhere (either way round: the larger deviation is taken); the
        north-south radius and the curvature add under 1e-4 at county scale.
        """
        lat0 = 0.5 * (lat_min + lat_max)
        lon0 = 0.5 * (lon_min + lon_max)
        phi0 = math.radians(lat0)
        w = 1.0 - _E2 * math.sin(phi0) ** 2
        m_radius = _A * (1.0 - _E2) / w**1.5  # meridional radius of curvature
        n_radius = _A / math.sqrt(w)  # prime-vertical radius of curvature
        cos0 = math.cos(phi0)
        drift = 0.0
        for lat in (lat_min - margin_deg, lat_max + margin_deg):
            ratio = math.cos(math.radians(max(-89.0, min(89.0, lat)))) / cos0
            drift = max(drift, abs(ratio - 1.0), abs(1.0 / ratio - 1.0))
        error = 1e-4 + drift
        return cls(
            lat0=lat0,
            lon0=lon0,
            kx=math.radians(1.0) * n_radius * cos0,
            ky=math.radians(1.0) * m_radius,
            error=error,
        )

    def xy(self, lat: FloatArray | float, lon: FloatArray | float) -> tuple[FloatArray, FloatArray]:
        """Project degrees to local metres (east, north)."""
        x = (np.asarray(lon, dtype=np.float64) - self.lon0) * self.kx
        y = (np.asarray(lat, dtype=np.float64) - self.lat0) * self.ky
        return x, y


# --------------------------------------------------------------------------------------------
# Exact nearest node: a bucket grid in front of a k-d tree
# --------------------------------------------------------------------------------------------


class _Snapper:
    """Exact nearest node among a fixed set, vectorised over many query points.

    A k-d tree answers one query in 0.7-1.5 us on the 2-core benchmark machine: 7-15 ms for
    10,000 volunteers, over the 5 ms budget of a whole ranking query. So the nodes' bounding box
    is cut into square coarse buckets (about one per two nodes), each split into 1, 4, 16 or 64
    leaves: as coarse as keeps every leaf's candidate list within ``K``. A leaf's list holds
    every node that is the nearest for some point of the leaf, found in two steps:

    * radius: let ``R`` be the smallest, over nodes ``m``, of the distance from ``m`` to the
      leaf's farthest corner. Every point of the leaf has a node within ``R``, so only nodes
      within ``R`` of the leaf can win. They are among the ``SEARCH`` nodes nearest the leaf's
      centre unless the next one is itself within ``R`` + the half-diagonal (then the leaf
      overflows);
    * half-planes: a node that one of the few nodes nearest the centre beats at all four
      corners is beaten in the whole (convex) leaf, so it never wins there.

    Lists are padded with a sentinel node far away; a query gathers its leaf's row and takes
    the argmin of the squared distances (``np.take`` throughout: ~150 ns a point). Points in an
    overflowing finest leaf (well under 1% of the leaves) or outside the box go to the k-d tree.
    Memory follows the nodes, not the area: 1.2 MB for the county dataset, 9 MB for 69,000
    nodes; building takes 0.3 s and 2.3 s.
    """

    K: Final = 8  # candidates stored per leaf: a query's cost is proportional to it
    SEARCH: Final = 24  # nodes examined per leaf while building
    DOMINATORS: Final = 4  # of which the nearest to the centre are tested against the others
    MAX_LEVEL: Final = 3
    _CHUNK: Final = 1 << 16  # leaves per k-d tree batch while building

    def __init__(self, nodes: IntArray, x: FloatArray, y: FloatArray) -> None:
        self.nodes = nodes  # global node ids, indexed by local id
        n = len(nodes)
        self._x = np.append(x[nodes], 1e30)  # local id n is the sentinel
        self._y = np.append(y[nodes], 1e30)
        self._tree: cKDTree | None = None
        self._nx = self._ny = 0
        self._side = 1.0
        self._x0 = self._y0 = 0.0
        self._level = np.zeros(0, dtype=np.int8)
        self._split = np.ones(0, dtype=np.int64)  # 2**level: leaves per side of each bucket
        self._base = np.zeros(0, dtype=np.int64)
        self._table = np.zeros((0, self.K), dtype=np.int32)
        self._slow = np.zeros(0, dtype=np.bool_)
        if n == 0:
            return
        self._tree = cKDTree(np.column_stack([self._x[:n], self._y[:n]]))
        xmin, xmax = float(self._x[:n].min()), float(self._x[:n].max())
        ymin, ymax = float(self._y[:n].min()), float(self._y[:n].max())
        area = max((xmax - xmin) * (ymax - ymin), 1.0)
        # about one coarse bucket per 2 nodes; leaves go down to 1/16 of that
        self._side = max(16.0, math.sqrt(2.0 * area / n))
        self._x0 = xmin - 0.5 * self._side
        self._y0 = ymin - 0.5 * self._side
        self._nx = math.floor((xmax - self._x0) / self._side) + 1
        self._ny = math.floor((ymax - self._y0) / self._side) + 1
        self._build()

    def _build(self) -> None:
        n_coarse = self._nx * self._ny
        self._level = np.zeros(n_coarse, dtype=np.int8)
        self._base = np.zeros(n_coarse, dtype=np.int64)
        tables: list[npt.NDArray[np.int32]] = []
        slows: list[BoolArray] = []
        offset = 0
        pending = np.arange(n_coarse, dtype=np.int64)
        for level in range(self.MAX_LEVEL + 1):
            per = 4**level
            step = max(1, self._CHUNK // per)
            undone: list[IntArray] = []
            for start in range(0, len(pending), step):
                coarse = pending[start : start + step]
                rows, slow = self._leaves(coarse, level)  # slow: the leaf overflows
                over = slow.reshape(len(coarse), per).any(axis=1)
                done = ~over if level < self.MAX_LEVEL else np.ones(len(coarse), dtype=np.bool_)
                kept = coarse[done]
                self._level[kept] = level
                self._base[kept] = offset + per * np.arange(len(kept))
                offset += per * len(kept)
                leaf_done = np.repeat(done, per)
                tables.append(rows[leaf_done])
                slows.append(slow[leaf_done])
                undone.append(coarse[~done])
            pending = np.concatenate(undone) if undone else pending[:0]
            if not len(pending):
                break
        self._table = np.concatenate(tables)
        self._slow = np.concatenate(slows)
        self._split = np.left_shift(1, self._level.astype(np.int64))

    def _leaves(self, coarse: IntArray, level: int) -> tuple[npt.NDArray[np.int32], BoolArray]:
        """Candidate rows and overflow flags of every leaf of ``coarse`` buckets at ``level``,
        leaf-major within each bucket (row ``j * m + i`` of an ``m x m`` split)."""
        assert self._tree is not None
        m = 1 << level
        side = self._side / m
        half = 0.5 * side
        sub = np.arange(m * m)
        cx = (self._x0 + (coarse % self._nx) * self._side)[:, None] + (sub % m + 0.5) * side
        cy = (self._y0 + (coarse // self._nx) * self._side)[:, None] + (sub // m + 0.5) * side
        cx, cy = cx.ravel(), cy.ravel()
        n = len(self.nodes)
        k = min(self.SEARCH + 1, n)
        dist_raw, idx_raw = self._tree.query(np.column_stack([cx, cy]), k=k)
        dist = np.asarray(dist_raw, dtype=np.float64).reshape(len(cx), k)
        idx = np.asarray(idx_raw, dtype=np.int64).reshape(len(cx), k)
        nx, ny = self._x[idx], self._y[idx]
        ax = np.abs(nx - cx[:, None])
        ay = np.abs(ny - cy[:, None])
        # R: every point of the leaf has a node within R, so farther nodes never win
        radius = np.hypot(ax + half, ay + half).min(axis=1)
        keep = np.hypot(np.maximum(ax - half, 0.0), np.maximum(ay - half, 0.0)) <= radius[:, None]
        over = np.zeros(len(cx), dtype=np.bool_)
        if k == self.SEARCH + 1:
            # nodes beyond the last one fetched are at least its distance minus the
            # half-diagonal from the leaf: they may qualify only if that is <= R
            over = dist[:, -1] - math.sqrt(2.0) * half <= radius
        # Half-plane tests: node n is beaten by node f everywhere in the (convex) leaf when it
        # is at its four corners, i.e. (relative to the centre, a = half side) when
        # a * (|nx - fx| + |ny - fy|) < (|n|^2 - |f|^2) / 2. A few nodes nearest the centre
        # serve as f; a beaten node never wins in the leaf.
        rx = nx - cx[:, None]
        ry = ny - cy[:, None]
        half_sq = 0.5 * (rx * rx + ry * ry)
        beaten = np.zeros(keep.shape, dtype=np.bool_)
        for f in range(min(self.DOMINATORS, k)):
            margin = np.abs(rx - rx[:, f : f + 1]) + np.abs(ry - ry[:, f : f + 1])
            beaten |= half * margin < half_sq - half_sq[:, f : f + 1]
        keep &= ~beaten
        # the kept candidates to the left, in order of distance from the centre
        order = np.argsort(~keep, axis=1, kind="stable")
        counts = keep.sum(axis=1)
        over |= counts > self.K
        take = min(self.K, k)
        cols = np.take_along_axis(idx, order[:, :take], axis=1)
        rows = np.full((len(cx), self.K), n, dtype=np.int32)
        rows[:, :take] = np.where(np.arange(take) < counts[:, None], cols, n)
        return rows, over

    @property
    def nbytes(self) -> int:
        """Memory held by the lookup structure (the k-d tree excluded)."""
        parts = (self._table, self._slow, self._level, self._split, self._base, self._x, self._y)
        return sum(int(a.nbytes) for a in parts)

    def nearest(self, x: FloatArray, y: FloatArray) -> tuple[IntArray, FloatArray]:
        """Global id of the nearest node to each point and the distance, metres.

        Returns ``(-1, inf)`` for every point when the node set is empty, ``(-1, nan)`` for a
        point that is not finite.
        """
        count = len(x)
        if self._tree is None:
            return np.full(count, -1, dtype=np.int64), np.full(count, np.inf)
        # Every point goes through the table (np.take: no copies of index arrays); the few
        # outside the box or in an overflowing leaf are then redone by the k-d tree.
        fx = (x - self._x0) * (1.0 / self._side)
        fy = (y - self._y0) * (1.0 / self._side)
        inside = (fx >= 0.0) & (fx < self._nx) & (fy >= 0.0) & (fy < self._ny)
        if not inside.all():  # NaN and far-away points: any bucket will do, they are redone
            fx = np.where(inside, fx, 0.0)
            fy = np.where(inside, fy, 0.0)
        ix = np.clip(fx, 0, self._nx - 1).astype(np.int64)
        iy = np.clip(fy, 0, self._ny - 1).astype(np.int64)
        coarse = iy * self._nx + ix
        m = self._split.take(coarse)
        # the leaf's column and row inside its coarse bucket
        i = np.clip(((fx - ix) * m).astype(np.int64), 0, m - 1)
        j = np.clip(((fy - iy) * m).astype(np.int64), 0, m - 1)
        leaf = self._base.take(coarse) + j * m + i
        cand = self._table.take(leaf, axis=0)
        d2 = self._x.take(cand)
        d2 -= x[:, None]
        d2 *= d2
        dy = self._y.take(cand)
        dy -= y[:, None]
        dy *= dy
        d2 += dy
        flat = np.arange(0, count * self.K, self.K) + d2.argmin(axis=1)
        local = cand.ravel().take(flat).astype(np.int64)
        d = np.sqrt(d2.ravel().take(flat))
        redo = ~inside | self._slow.take(leaf)
        if not redo.any():
            return self.nodes.take(local), d
        finite = np.isfinite(x) & np.isfinite(y)
        slow = np.flatnonzero(redo & finite)
        d_slow, i_slow = self._tree.query(np.column_stack([x[slow], y[slow]]))
        local[slow] = i_slow
        d[slow] = d_slow
        nodes = self.nodes.take(local)
        nodes[~finite] = -1
        d[~finite] = np.nan
        return nodes, d


# --------------------------------------------------------------------------------------------
# Reading the attributes
# --------------------------------------------------------------------------------------------


def _fail(source: str, field: str, row: object, problem: str) -> DatasetError:
    return DatasetError(f"{source}: field {field!r}, row {row}: {problem}", field=field)


def _speed_column(series: pd.Series, source: str, field: str) -> FloatArray:
    try:
        values = np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
    except (TypeError, ValueError):
        for row, value in series.items():
            try:
                float(value)
            except (TypeError, ValueError):
                raise _fail(source, field, row, f"speed {value!r} is not a number") from None
        raise  # pragma: no cover - to_numpy failed although every value converts
    bad = ~(values >= 0.0) | ~np.isfinite(values)  # NaN fails ">= 0"
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = float(values[i])
        problem = "missing (NaN)" if math.isnan(value) else f"invalid speed {value} km/h"
        raise _fail(source, field, series.index[i], problem + "; speeds must be finite and >= 0")
    return values


def _speeds_by_label(
    series: pd.Series, table: Mapping[str, tuple[float, ...]], source: str, field: str, strict: bool
) -> FloatArray:
    """Speeds (rows x modes) looked up from a categorical column; unknown -> error or 0."""
    labels = series.to_numpy(dtype=object)
    out = np.zeros((len(labels), _N_MODES), dtype=np.float64)
    uniques: dict[object, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        uniques.setdefault(label if isinstance(label, str) else None, []).append(i)
    for label, rows in uniques.items():
        speeds = table.get(label) if isinstance(label, str) else None
        if speeds is None:
            if strict:
                got = labels[rows[0]]
                what = f"unknown road class {got!r}" if isinstance(got, str) else "missing"
                raise _fail(
                    source,
                    field,
                    series.index[rows[0]],
                    f"{what}; expected one of {', '.join(ROAD_CLASSES)}",
                )
            continue  # not a routable highway value
        out[rows] = speeds
    return out


def _class_table() -> dict[str, tuple[float, ...]]:
    return {c: tuple(ROAD_SPEED_KMH[c][m] for m in Mode) for c in ROAD_CLASSES}


def _highway_table() -> dict[str, tuple[float, ...]]:
    table: dict[str, tuple[float, ...]] = {}
    classes = _class_table()
    for tag, klass in HIGHWAY_CLASS.items():
        table[tag] = table[f"{tag}_link"] = classes[klass]
    for tag, speeds in _HIGHWAY_SPECIAL.items():
        table[tag] = table[f"{tag}_link"] = speeds
    return table


def _row_speeds(frame: pd.DataFrame, source: str) -> FloatArray:
    """Speed per row and mode (km/h): speed columns, else ``class``, else ``highway``."""
    missing = [SPEED_COLUMNS[m] for m in Mode if SPEED_COLUMNS[m] not in frame.columns]
    fallback = None
    if missing:
        if "class" in frame.columns:
            fallback = _speeds_by_label(frame["class"], _class_table(), source, "class", True)
        elif "highway" in frame.columns:
            fallback = _speeds_by_label(
                frame["highway"], _highway_table(), source, "highway", False
            )
        else:
            raise DatasetError(
                f"{source}: no speed for {', '.join(missing)}: the file needs these columns, "
                "or a 'class' column (one of " + ", ".join(ROAD_CLASSES) + "), or an "
                "OpenStreetMap 'highway' column",
                field=missing[0],
            )
    speeds = np.empty((len(frame), _N_MODES), dtype=np.float64)
    for mode in Mode:
        column = SPEED_COLUMNS[mode]
        if column in frame.columns:
            speeds[:, mode] = _speed_column(frame[column], source, column)
        else:
            assert fallback is not None
            speeds[:, mode] = fallback[:, mode]
    return speeds


def _oneway_value(value: object, source: str, row: object) -> int | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    if isinstance(value, bool | np.bool_):
        return 1 if value else 0
    if isinstance(value, int | float | np.integer | np.floating) and float(value) in (-1, 0, 1):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in _ONEWAY_VALUES:
        return _ONEWAY_VALUES[value.strip().lower()]
    raise _fail(source, "oneway", row, f"unknown value {value!r}; expected yes, -1 or no")


def _row_oneway(frame: pd.DataFrame, source: str) -> npt.NDArray[np.int8]:
    """Per row: 0 two-way, 1 one-way along the line, -1 against it."""
    out = np.zeros(len(frame), dtype=np.int8)
    if "oneway" not in frame.columns:
        return out
    junction = (
        frame["junction"].to_numpy(dtype=object)
        if "junction" in frame.columns
        else np.full(len(frame), None, dtype=object)
    )
    memo: dict[Hashable, int | None] = {}
    for i, (row, value) in enumerate(frame["oneway"].items()):
        key: Hashable = (type(value), value) if isinstance(value, Hashable) else repr(value)
        if key not in memo:
            memo[key] = _oneway_value(value, source, row)
        code = memo[key]
        if code is None:  # OSM: a roundabout is one-way unless tagged otherwise
            code = 1 if junction[i] in ("roundabout", "circular") else 0
        out[i] = code
    return out


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


def _segments(
    frame: gpd.GeoDataFrame, routable: BoolArray, source: str
) -> tuple[FloatArray, FloatArray, IntArray, IntArray, IntArray]:
    """Nodes and segments of the routable rows' lines.

    Returns:
        ``(lat, lon, u, v, row)``: node coordinates (rounded to 1e-7 degree), and per segment
        its two nodes and the frame row (position) it comes from.
    """
    geoms = np.asarray(frame.geometry.array, dtype=object)
    types = shapely.get_type_id(geoms)
    bad = ~np.isin(types, _LINE_TYPES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        kind = "missing" if geoms[i] is None else f"a {geoms[i].geom_type}, not a line"
        raise _fail(source, "geometry", frame.index[i], kind)
    parts, part_row = shapely.get_parts(geoms[routable], return_index=True)
    part_row = np.flatnonzero(routable)[part_row]
    coords, part_of = shapely.get_coordinates(parts, return_index=True)
    bad = ~((np.abs(coords[:, 1]) <= 90.0) & (np.abs(coords[:, 0]) <= 180.0))  # NaN too
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        lon_bad, lat_bad = coords[i]
        problem = f"vertex (lon {lon_bad}, lat {lat_bad}) is not a WGS84 coordinate"
        raise _fail(source, "geometry", frame.index[part_row[part_of[i]]], problem)
    lat_i = np.rint(coords[:, 1] * _KEY_SCALE).astype(np.int64)
    lon_i = np.rint(coords[:, 0] * _KEY_SCALE).astype(np.int64)
    keys = (lat_i + 900_000_000) * 3_600_000_001 + (lon_i + 1_800_000_000)
    unique_keys, node_of = np.unique(keys, return_inverse=True)
    if len(unique_keys) == 0:
        raise DatasetError(f"{source}: no routable road", field="geometry")
    lat = (unique_keys // 3_600_000_001 - 900_000_000) / _KEY_SCALE
    lon = (unique_keys % 3_600_000_001 - 1_800_000_000) / _KEY_SCALE
    same_part = part_of[1:] == part_of[:-1]
    u = node_of[:-1][same_part].astype(np.int64)
    v = node_of[1:][same_part].astype(np.int64)
    row = part_row[part_of[:-1][same_part]].astype(np.int64)
    real = u != v  # vertices repeated after rounding
    return lat, lon, u[real], v[real], row[real]


def _csr(src: IntArray, dst: IntArray, w: FloatArray, n: int) -> Graph:
    """CSR of ``src -> dst`` with weight ``w``; parallel edges keep the smallest weight."""
    key = src * n + dst
    order = np.lexsort((w, key))
    key = key[order]
    first = np.ones(len(key), dtype=np.bool_)
    first[1:] = key[1:] != key[:-1]
    order = order[first]
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(src[order], minlength=n), out=indptr[1:])
    graph = sp.csr_array(
        (w[order].astype(np.float64), dst[order].astype(np.int32), indptr), shape=(n, n)
    )
    graph.has_sorted_indices = True
    return graph


class RoadNetwork:
    """The road lines as a directed graph of travel seconds, one per mode.

    Build it with :meth:`from_file` or :meth:`from_frame`. Node coordinates are
    :attr:`lat` / :attr:`lon` (float64); :meth:`graph` gives a mode's ``csr_array`` of seconds.
    """

    def __init__(
        self,
        lat: FloatArray,
        lon: FloatArray,
        graphs: Mapping[Mode, Graph],
        n_edges: int,
        max_speed_ms: Mapping[Mode, float],
        source: str = "<frame>",
    ) -> None:
        self.lat = lat
        self.lon = lon
        self.source = source
        self._graphs = dict(graphs)
        self._reversed = {m: sp.csr_array(g.T) for m, g in self._graphs.items()}
        for g in self._reversed.values():
            g.indices = g.indices.astype(np.int32, copy=False)
            g.indptr = g.indptr.astype(np.int32, copy=False)
        self._n_edges = n_edges
        self._max_speed = dict(max_speed_ms)
        self.projection = (
            LocalProjection.around(
                float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max())
            )
            if len(lat)
            else LocalProjection.around(0.0, 0.0, 0.0, 0.0)
        )
        self._x, self._y = self.projection.xy(lat, lon)
        self._snappers: dict[tuple[Mode, bool], _Snapper] = {}
        self._snapper_lock = threading.Lock()

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], layer: str | int | None = None) -> RoadNetwork:
        """Read road lines from a GeoJSON or GeoPackage file (pyogrio).

        Args:
            path: the file.
            layer: the layer of a multi-layer source (GeoPackage); ``None`` for the first.

        Raises:
            DatasetError: the file is missing or unreadable, or breaks an invariant of
                :meth:`from_frame` (the message names the file and the field).
        """
        source = os.fspath(path)
        try:
            frame = gpd.read_file(source, layer=layer, engine="pyogrio")
        except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise DatasetError(f"{source}: cannot read road lines: {exc}", field=None) from exc
        return cls.from_frame(frame, source=source)

    @classmethod
    def from_frame(cls, frame: gpd.GeoDataFrame, *, source: str = "<frame>") -> RoadNetwork:
        """Build the network from a GeoDataFrame of LineStrings / MultiLineStrings.

        Args:
            frame: one row per road; speeds from ``speed_*_kmh``, ``class`` or ``highway``;
                optional ``oneway`` (and ``junction``). A CRS other than WGS84 is reprojected;
                none is taken as WGS84 (GeoJSON).
            source: the name used in error messages (the file path).

        Raises:
            DatasetError: no speed source, a speed that is negative, NaN or not a number, an
                unknown class or oneway value, a geometry that is missing or not a line, or
                coordinates out of range.
        """
        if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
            frame = frame.to_crs("EPSG:4326")
        if len(frame) == 0:
            raise DatasetError(f"{source}: no road lines", field="geometry")
        speeds = _row_speeds(frame, source)
        oneway = _row_oneway(frame, source)
        lat, lon, u, v, row = _segments(frame, np.asarray((speeds > 0).any(axis=1)), source)
        n = len(lat)
        length = np.asarray(_GEOD.inv(lon[u], lat[u], lon[v], lat[v])[2], dtype=np.float64)
        pairs = np.unique(np.minimum(u, v) * n + np.maximum(u, v))

        graphs: dict[Mode, Graph] = {}
        max_speed: dict[Mode, float] = {}
        for mode in Mode:
            kmh = speeds[row, mode]
            ok = kmh > 0
            seconds = length[ok] / (kmh[ok] / 3.6)
            uu, vv, direction = u[ok], v[ok], oneway[row[ok]]
            if mode is Mode.WALK:
                direction = np.zeros_like(direction)
            fwd = direction >= 0
            back = direction <= 0
            graphs[mode] = _csr(
                np.concatenate([uu[fwd], vv[back]]),
                np.concatenate([vv[fwd], uu[back]]),
                np.concatenate([seconds[fwd], seconds[back]]),
                n,
            )
            max_speed[mode] = float(kmh[ok].max()) / 3.6 if ok.any() else 0.0
        return cls(lat, lon, graphs, len(pairs), max_speed, source=source)

    # -- structure -----------------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        """Number of nodes (distinct vertices)."""
        return len(self.lat)

    @property
    def n_edges(self) -> int:
        """Number of road segments: distinct unordered pairs of consecutive vertices."""
        return self._n_edges

    def graph(self, mode: Mode) -> Graph:
        """Travel seconds by ``mode``: entry ``[i, j]`` is the edge from node i to node j."""
        return self._graphs[mode]

    def reversed_graph(self, mode: Mode) -> Graph:
        """The transpose of :meth:`graph`: searching it from j gives times *to* j."""
        return self._reversed[mode]

    def max_speed_ms(self, mode: Mode | None = None) -> float:
        """The fastest edge speed of ``mode`` (of any mode for ``None``), m/s."""
        if mode is None:
            return max(self._max_speed.values())
        return self._max_speed[mode]

    def usable(self, mode: Mode) -> BoolArray:
        """Nodes with at least one edge ``mode`` may use."""
        g = self._graphs[mode]
        return (np.diff(g.indptr) > 0) | (np.diff(self._reversed[mode].indptr) > 0)

    def components(
        self, mode: Mode | None = None, *, connection: Literal["weak", "strong"] = "weak"
    ) -> tuple[int, npt.NDArray[np.int32]]:
        """Connected components, by ``mode`` or (``None``) over every mode's edges.

        Args:
            mode: a mode, whose unusable nodes are labelled -1 and not counted; ``None`` for
                all roads.
            connection: ``"weak"`` ignores edge direction; ``"strong"`` needs paths both ways.

        Returns:
            ``(count, labels)``: labels 0..count-1 per node.
        """
        if mode is None:
            graph = self._graphs[Mode.WALK]
            for m in Mode:
                if m is not Mode.WALK:
                    graph = graph + self._graphs[m]
            used = np.ones(self.n_nodes, dtype=np.bool_)
        else:
            graph = self._graphs[mode]
            used = self.usable(mode)
        _, labels = connected_components(graph, directed=True, connection=connection)
        out = np.full(self.n_nodes, -1, dtype=np.int32)
        kept, compact = np.unique(labels[used], return_inverse=True)
        out[used] = compact.astype(np.int32)
        return len(kept), out

    def is_connected(self, mode: Mode | None = None) -> bool:
        """Whether every node ``mode`` may use reaches every other (strongly connected)."""
        count, _ = self.components(mode, connection="strong")
        return count == 1

    def main_component(self, mode: Mode) -> BoolArray:
        """Nodes of the largest strongly connected component of ``mode``'s graph."""
        count, labels = self.components(mode, connection="strong")
        if count == 0:
            return np.zeros(self.n_nodes, dtype=np.bool_)
        sizes = np.bincount(labels[labels >= 0], minlength=count)
        return np.asarray(labels == int(sizes.argmax()))

    # -- snapping ------------------------------------------------------------------------

    @property
    def projection_error(self) -> float:
        """Bound on the relative error of projected (off-road) distances in the network's
        latitude band."""
        return self.projection.error

    def project(
        self, lat: FloatArray | float, lon: FloatArray | float
    ) -> tuple[FloatArray, FloatArray]:
        """Local metres (east, north) of points, in the network's projection."""
        return self.projection.xy(lat, lon)

    def _snapper(self, mode: Mode, main_component: bool) -> _Snapper:
        key = (mode, main_component)
        snapper = self._snappers.get(key)
        if snapper is None:
            with self._snapper_lock:
                snapper = self._snappers.get(key)
                if snapper is None:
                    mask = self.main_component(mode) if main_component else self.usable(mode)
                    nodes = np.flatnonzero(mask).astype(np.int64)
                    # modes with the same node set (often all of them) share one grid
                    for (_, other_main), other in self._snappers.items():
                        if other_main == main_component and np.array_equal(other.nodes, nodes):
                            snapper = other
                            break
                    else:
                        snapper = _Snapper(nodes, self._x, self._y)
                    self._snappers[key] = snapper
        return snapper

    def prepare_snapping(self, *, main_component: bool = True) -> None:
        """Build every mode's snapping grid now rather than on the first query."""
        for mode in Mode:
            self._snapper(mode, main_component)

    @property
    def snapping_nbytes(self) -> int:
        """Memory held by the snapping grids built so far (shared grids counted once)."""
        unique = {id(s): s for s in self._snappers.values()}
        return sum(s.nbytes for s in unique.values())

    def snap_xy(
        self, x: FloatArray, y: FloatArray, mode: Mode, *, main_component: bool = True
    ) -> tuple[IntArray, FloatArray]:
        """:meth:`snap` for points already projected with :meth:`project`."""
        return self._snapper(mode, main_component).nearest(x, y)

    def snap(
        self,
        lat: FloatArray | float,
        lon: FloatArray | float,
        mode: Mode,
        *,
        main_component: bool = True,
    ) -> tuple[IntArray, FloatArray]:
        """The nearest node ``mode`` may use for each point, and the off-road distance.

        Args:
            lat, lon: the points (not validated: validate at the edge).
            mode: only nodes with an edge of this mode are candidates.
            main_component: only nodes of the mode's largest strongly connected component.

        Returns:
            ``(nodes, metres)``; ``(-1, inf)`` where the mode has no node at all, ``(-1, nan)``
            for a point that is not finite.
        """
        x, y = self.project(np.atleast_1d(lat), np.atleast_1d(lon))
        return self.snap_xy(x, y, mode, main_component=main_component)


# --------------------------------------------------------------------------------------------
# The travel model
# --------------------------------------------------------------------------------------------


class RoadModel:
    """Shortest paths on a :class:`RoadNetwork`, plus off-road legs and turnout.

    Implements :class:`geo.travel.TravelModel`.

    Args:
        network: the road graph.
        turnout: delay by situation (default: the responder studies' medians).
        offroad_speed_ms: walking speed of the off-road legs, m/s.
        default_limit_s: cut applied when a query gives no ``limit_s`` (``inf``: none).
        cache_size: Dijkstra results kept (LRU by destination node and mode); 0 disables.
        main_component: snap each mode only to its largest strongly connected component.
    """

    def __init__(
        self,
        network: RoadNetwork,
        turnout: Turnout | None = None,
        offroad_speed_ms: float = OFFROAD_SPEED_MS,
        *,
        default_limit_s: float = DEFAULT_LIMIT_S,
        cache_size: int = 16,
        main_component: bool = True,
    ) -> None:
        if not (math.isfinite(offroad_speed_ms) and offroad_speed_ms > 0):
            raise ValueError(f"offroad_speed_ms must be > 0, got {offroad_speed_ms}")
        if not default_limit_s >= 0:
            raise ValueError(f"default_limit_s must be >= 0, got {default_limit_s}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.network = network
        self.turnout = turnout if turnout is not None else Turnout()
        self.offroad_speed_ms = float(offroad_speed_ms)
        self.default_limit_s = float(default_limit_s)
        self.main_component = main_component
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[int, int], tuple[float, FloatArray]] = OrderedDict()
        self._lock = threading.Lock()
        self._turnout_table = self.turnout.table()
        slack = 1.0 + network.projection_error
        # per mode: a speed no part of a trip exceeds (for pruning), with the projection's slack
        self._bound_speed = np.array(
            [max(network.max_speed_ms(m), self.offroad_speed_ms) * slack for m in Mode]
        )
        network.prepare_snapping(main_component=main_component)

    @property
    def name(self) -> str:
        return "road"

    def max_reach_m(self, seconds: float) -> float:
        """Fastest edge (or walking, if faster) x seconds, widened by the projection's error
        bound: no origin farther than this can arrive in ``seconds``."""
        return max(0.0, seconds) * float(self._bound_speed.max())

    def clear_cache(self) -> None:
        """Forget the cached Dijkstra results."""
        with self._lock:
            self._cache.clear()

    def network_seconds(self, node: int, mode: Mode, limit_s: float = math.inf) -> FloatArray:
        """Seconds by ``mode`` from every node to ``node`` on the network (``inf`` beyond
        ``limit_s``); read-only, possibly shared with the cache.

        Args:
            node: the destination node.
            mode: the travel mode.
            limit_s: the search stops here; entries above it may be ``inf``.

        Raises:
            ValueError: ``node`` is out of range or ``limit_s`` is negative.
        """
        if not 0 <= node < self.network.n_nodes:
            raise ValueError(f"node {node} out of range 0..{self.network.n_nodes - 1}")
        if not limit_s >= 0:
            raise ValueError(f"limit_s must be >= 0, got {limit_s}")
        key = (int(node), int(mode))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] >= limit_s:
                self._cache.move_to_end(key)
                return hit[1]
        # The reversed csr is prebuilt float64 / int32 / canonical: scipy's validation is a
        # no-op on it, leaving one O(n) initialisation and the search itself.
        dist = np.asarray(
            dijkstra(
                self.network.reversed_graph(mode),
                directed=True,
                indices=np.array([node], dtype=np.int32),
                limit=limit_s,
                min_only=True,
            ),
            dtype=np.float64,
        )
        dist.flags.writeable = False
        if self._cache_size:
            with self._lock:
                self._cache[key] = (limit_s, dist)
                self._cache.move_to_end(key)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return dist

    def seconds_to(
        self,
        lat: FloatArray,
        lon: FloatArray,
        modes: ModeArray,
        dest_lat: float,
        dest_lon: float,
        *,
        situations: SituationArray | None = None,
        limit_s: float | None = None,
    ) -> FloatArray:
        """Seconds from each origin to the destination (see :class:`geo.travel.TravelModel`).

        Args:
            lat, lon: origins, validated float64 arrays of equal length.
            modes: each origin's :class:`~geo.modes.Mode` code.
            dest_lat, dest_lon: the destination.
            situations: each origin's situation code; ``None`` = all on patrol.
            limit_s: times above this are ``inf``; ``None`` uses ``default_limit_s``.

        Raises:
            CoordinateError: the destination is invalid.
            ValueError: the arrays differ in length, or a mode code is unknown.
        """
        dest_lat, dest_lon = check_latlon(dest_lat, dest_lon, "destination.")
        limit = self.default_limit_s if limit_s is None else float(limit_s)
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        modes = np.asarray(modes)
        n = len(lat)
        if lon.shape != lat.shape or modes.shape != lat.shape:
            raise ValueError(
                f"lat, lon and modes must have equal lengths, got "
                f"{lat.shape}, {lon.shape}, {modes.shape}"
            )
        out = np.full(n, np.inf)
        if n == 0 or not limit >= 0:
            return out
        counts = np.bincount(modes, minlength=_N_MODES)
        if len(counts) > _N_MODES:
            raise ValueError(f"unknown mode code {len(counts) - 1}")
        net = self.network
        walk = 1.0 / self.offroad_speed_ms
        x, y = net.project(lat, lon)
        xd, yd = net.project(dest_lat, dest_lon)
        crow = np.hypot(x - xd, y - yd)
        turn = np.zeros(n) if situations is None else self._turnout_table[np.asarray(situations)]
        # a straight walk: the answer for short distances, and for modes with no road nearby
        np.add(crow * walk, turn, out=out)
        single = int(np.count_nonzero(counts)) == 1
        for mode in Mode:
            if not counts[mode]:
                continue
            dest_node, dest_off = net.snap_xy(
                np.atleast_1d(xd), np.atleast_1d(yd), mode, main_component=self.main_component
            )
            budget = limit - float(dest_off[0]) * walk
            if dest_node[0] < 0 or budget < 0:
                continue
            sel = np.arange(n) if single else np.flatnonzero(modes == mode)
            # nobody beats the bound speed: drop origins that cannot arrive before snapping
            lower = crow[sel] * (1.0 / self._bound_speed[mode]) + turn[sel]
            sel = sel[lower <= limit]
            if not len(sel):
                continue
            dist = self.network_seconds(int(dest_node[0]), mode, budget)
            nodes, off = net.snap_xy(x[sel], y[sel], mode, main_component=self.main_component)
            t = dist[nodes] + off * walk + (float(dest_off[0]) * walk) + turn[sel]
            np.minimum(out[sel], t, out=t)
            out[sel] = t
        out[out > limit] = np.inf
        return out
