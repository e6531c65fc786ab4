"""The county's road network: one connected, noded graph through every village.

Theory of operation
-------------------
Only two roads are known (邢德线, provincial; 郑清路, county; estimated alignments) and two canal
bridges (estimated positions). The rest is generated, class by class:

* **village** roads: the *relative neighbourhood graph* of all villages and communities
  (county-wide, so links cross township borders), keeping the Delaunay edges that stay inside
  the county, plus the minimum spanning tree of those edges so that the graph is connected even
  where the outline's canal meanders cut an edge. The RNG joins each village to its two or three
  nearest neighbours without crossings, like the plain's field roads;
* **county** roads: a straight road from 郑口 to every township seat, plus the approach roads of
  the two canal bridges (from the nearest seat over the bridge point to the border);
* **township** roads: straight roads between the seats of neighbouring townships (those not
  already joined by a county road);
* the two **known** roads, clipped to the outline (pieces shorter than
  :data:`MIN_KNOWN_PART_M`, where an estimated alignment grazes the border, are dropped). The
  sources say they pass certain seats: a vertex at a source seat estimate moves to that seat
  (wherever the partition put it), any other vertex within :data:`SNAP_M` of a village onto it.

A straight road that would leave the county follows the shortest path over the village graph
instead (and takes those edges over). Every segment is densified to at most
:data:`MAX_SEGMENT_M`, so that any point snaps close to the graph.

*Noding.* Roads meet only where they share a vertex (the graph builder merges identical
coordinates). In rounded lon/lat, every pair of segments that crosses or touches other than at a
shared endpoint (:func:`geo.dataset.network.crossings`) gets the crossing point — rounded, or the
existing endpoint when it touches one — inserted into both lines; that is repeated until no
crossing remains (rounding can move a new vertex by 0.07 m, so a second pass is cheap insurance).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import shapely
from scipy.sparse import coo_array
from scipy.sparse.csgraph import dijkstra, minimum_spanning_tree
from scipy.spatial import Delaunay, KDTree
from shapely.geometry import LineString, Polygon

from dispatch.errors import DatasetError
from geo.dataset.frame import DECIMALS, FloatArray, dot2, geom_to_xy, norm2, to_lonlat, to_xy
from geo.dataset.network import components, crossings, segments
from geo.dataset.places import Places, Township
from geo.dataset.sources import Bridge, KnownRoad
from geo.modes import ROAD_CLASSES

__all__ = ["MAX_SEGMENT_M", "Road", "build_roads"]

MAX_SEGMENT_M: Final = 280.0
SNAP_M: Final = 150.0
MIN_KNOWN_PART_M: Final = 1_000.0
_MAX_NODING_ROUNDS: Final = 8
_TOUCH_DEG: Final = 1e-7  # a crossing this close to an endpoint *is* that endpoint


@dataclass(frozen=True, slots=True)
class Road:
    """One road feature: lon/lat vertices rounded to the published precision."""

    name: str | None
    road_class: str
    status: str
    coords: FloatArray


@dataclass(slots=True)
class _Draft:
    name: str | None
    road_class: str
    status: str
    anchors: list[tuple[float, float]]  # lon/lat vertices that must stay as they are


def _edges_inside(places: Places, boundary: Polygon) -> tuple[np.ndarray, FloatArray]:
    """Delaunay edges (i < j) whose straight line stays inside the county, and their lengths."""
    xy = np.column_stack([places.x, places.y])
    tri = Delaunay(xy)
    pairs = np.concatenate(
        [tri.simplices[:, [0, 1]], tri.simplices[:, [1, 2]], tri.simplices[:, [0, 2]]]
    )
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    ll = np.column_stack([places.lon, places.lat])
    lines = shapely.linestrings(np.stack([ll[pairs[:, 0]], ll[pairs[:, 1]]], axis=1))
    shapely.prepare(boundary)
    pairs = pairs[shapely.within(lines, boundary)]
    lengths = np.linalg.norm(xy[pairs[:, 0]] - xy[pairs[:, 1]], axis=1)
    return pairs, lengths


def _relative_neighbourhood(xy: FloatArray, pairs: np.ndarray, lengths: FloatArray) -> np.ndarray:
    """The pairs with an empty lune: no point closer than their length to both ends."""
    tree = KDTree(xy)
    keep = np.ones(len(pairs), dtype=bool)
    for e, ((i, j), d) in enumerate(zip(pairs, lengths, strict=True)):
        for k in tree.query_ball_point(xy[i], d):
            if k not in (i, j) and norm2(xy[k] - xy[j]) < d:
                keep[e] = False
                break
    return np.asarray(pairs[keep])


def _village_graph(places: Places, boundary: Polygon) -> tuple[set[tuple[int, int]], coo_array]:
    pairs, lengths = _edges_inside(places, boundary)
    n = len(places)
    graph = coo_array((lengths, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    mst = coo_array(minimum_spanning_tree(graph))
    rn_graph = _relative_neighbourhood(np.column_stack([places.x, places.y]), pairs, lengths)
    edges = {(int(i), int(j)) for i, j in rn_graph}
    edges |= {
        (min(int(i), int(j)), max(int(i), int(j))) for i, j in zip(mst.row, mst.col, strict=True)
    }
    full = coo_array(
        (
            np.concatenate([lengths, lengths]),
            (
                np.concatenate([pairs[:, 0], pairs[:, 1]]),
                np.concatenate([pairs[:, 1], pairs[:, 0]]),
            ),
        ),
        shape=(n, n),
    )
    return edges, full


def _route(u: int, v: int, places: Places, boundary: Polygon, graph: coo_array) -> list[int]:
    """``[u, v]`` if the straight line stays inside, else the shortest village path."""
    line = LineString([(places.lon[u], places.lat[u]), (places.lon[v], places.lat[v])])
    if boundary.contains(line):
        return [u, v]
    _, pred = dijkstra(graph.tocsr(), indices=[u], return_predecessors=True)
    path = [v]
    while path[-1] != u:
        step = int(pred[0, path[-1]])
        if step < 0:
            raise DatasetError(f"roads: no path between places {u} and {v}")
        path.append(step)
    return path[::-1]


def _clip(
    coords: Sequence[tuple[float, float]], boundary: Polygon, min_m: float = 0.0
) -> list[list[tuple[float, float]]]:
    """Parts of a polyline inside the county (at least ``min_m`` long), vertices rounded."""
    inside = shapely.intersection(LineString(coords), boundary)
    if inside.geom_type == "MultiLineString":
        inside = shapely.line_merge(inside)
    parts = []
    for part in shapely.get_parts(inside):
        if isinstance(part, LineString) and geom_to_xy(part).length > min_m:
            pts = np.round(np.asarray(part.coords), DECIMALS)
            parts.append([(float(x), float(y)) for x, y in pts])
    return parts


def _snap_to_places(
    coords: Sequence[tuple[float, float]], places: Places, source_seats: FloatArray
) -> list[tuple[float, float]]:
    """Vertices at a source seat estimate follow the seat; others within SNAP_M snap."""
    x, y = to_xy([c[0] for c in coords], [c[1] for c in coords])
    sx, sy = to_xy(source_seats[:, 0], source_seats[:, 1])
    out = []
    for k, c in enumerate(coords):
        to_seat = np.hypot(sx - x[k], sy - y[k])
        if to_seat.min() <= SNAP_M:
            seat = int(places.seat[int(np.argmin(to_seat))])
            out.append((float(places.lon[seat]), float(places.lat[seat])))
            continue
        d = np.hypot(places.x - x[k], places.y - y[k])
        i = int(np.argmin(d))
        out.append((float(places.lon[i]), float(places.lat[i])) if d[i] <= SNAP_M else c)
    return out


def _densify(anchors: list[tuple[float, float]]) -> FloatArray:
    pts = np.array(anchors, dtype=np.float64)
    x, y = to_xy(pts[:, 0], pts[:, 1])
    out = [pts[:1]]
    for k in range(len(pts) - 1):
        steps = max(1, math.ceil(math.hypot(x[k + 1] - x[k], y[k + 1] - y[k]) / MAX_SEGMENT_M))
        if steps > 1:
            t = np.arange(1, steps) / steps
            lon, lat = to_lonlat(x[k] + t * (x[k + 1] - x[k]), y[k] + t * (y[k + 1] - y[k]))
            out.append(np.column_stack([lon, lat]))
        out.append(pts[k + 1 : k + 2])
    return _dedupe(np.concatenate(out))


def _dedupe(coords: FloatArray) -> FloatArray:
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = (coords[1:] != coords[:-1]).any(axis=1)
    return np.asarray(coords[keep])


def node(lines: list[FloatArray]) -> tuple[list[FloatArray], int]:
    """Insert a shared vertex wherever two lines cross or touch; returns lines and rounds.

    Raises:
        DatasetError: two roads overlap, or noding does not settle.
    """
    for rounds in range(1, _MAX_NODING_ROUNDS + 1):
        segs = segments(lines)
        bad = crossings(segs)
        if not len(bad):
            return lines, rounds
        if bad.overlap.any():
            k = int(np.flatnonzero(bad.overlap)[0])
            raise DatasetError(
                f"roads {int(segs.line[bad.a[k]])} and {int(segs.line[bad.b[k]])} overlap"
            )
        inserts: dict[int, list[tuple[int, float, tuple[float, float]]]] = {}
        for a, b, p in zip(bad.a.tolist(), bad.b.tolist(), bad.point, strict=True):
            ends = np.array([segs.start[a], segs.end[a], segs.start[b], segs.end[b]])
            near = np.abs(ends - p).max(axis=1) <= _TOUCH_DEG
            q = ends[int(np.argmax(near))] if near.any() else np.round(p, DECIMALS)
            for s in (a, b):
                start, end = segs.start[s], segs.end[s]
                if (q == start).all() or (q == end).all():
                    continue
                direction = end - start
                t = dot2(q - start, direction) / dot2(direction, direction)
                inserts.setdefault(int(segs.line[s]), []).append(
                    (int(segs.index[s]), t, (float(q[0]), float(q[1])))
                )
        for line_id, items in inserts.items():
            coords = lines[line_id]
            out: list[tuple[float, float]] = []
            items.sort()
            cursor = 0
            for k in range(len(coords) - 1):
                out.append((float(coords[k, 0]), float(coords[k, 1])))
                while cursor < len(items) and items[cursor][0] == k:
                    out.append(items[cursor][2])
                    cursor += 1
            out.append((float(coords[-1, 0]), float(coords[-1, 1])))
            lines[line_id] = _dedupe(np.array(out))
    raise DatasetError(f"roads: noding did not settle in {_MAX_NODING_ROUNDS} rounds")


def build_roads(
    places: Places,
    townships: list[Township],
    boundary: Polygon,
    known: Sequence[KnownRoad],
    bridges: Sequence[Bridge],
    seat_township: int,
    source_seats: FloatArray,
) -> tuple[list[Road], dict[str, int]]:
    """The whole network, noded, ordered by class, and figures for the build log.

    Args:
        places: villages and communities (their points become road vertices).
        townships: for the seats and the neighbourhood of townships.
        boundary: the county outline (lon/lat).
        known: the known roads; bridges: the canal bridges.
        seat_township: index of 郑口镇 (county roads radiate from its seat).
        source_seats: (n, 2) lon/lat of the sources' seat estimates: a known road's vertex
            there follows its seat if the partition moved it (the sources say 郑清路 passes
            the 武官寨 and 西半屯 seats).

    Raises:
        DatasetError: the network cannot be made connected, or noding fails.
    """
    village_edges, graph = _village_graph(places, boundary)
    ll = [(float(a), float(b)) for a, b in zip(places.lon, places.lat, strict=True)]
    drafts: list[_Draft] = []

    def trunk(u: int, v: int, road_class: str, name: str) -> None:
        path = _route(u, v, places, boundary, graph)
        for a, b in itertools.pairwise(path):
            village_edges.discard((min(a, b), max(a, b)))
        drafts.append(_Draft(name, road_class, "synthetic", [ll[i] for i in path]))

    seats = places.seat
    hub = int(seats[seat_township])
    for ti, t in enumerate(townships):
        if ti != seat_township:
            trunk(hub, int(seats[ti]), "county", f"{townships[seat_township].name}—{t.name}")
    polys = [t.polygon_xy for t in townships]
    for i in range(len(townships)):
        for j in range(i + 1, len(townships)):
            if seat_township in (i, j):
                continue
            shared = shapely.intersection(polys[i].boundary, shapely.buffer(polys[j], 1.0))
            if shapely.length(shared) > 1_000.0:
                name = f"{townships[i].name}—{townships[j].name}"
                trunk(int(seats[i]), int(seats[j]), "township", name)
    for road in known:
        # an estimated alignment that grazes the border leaves stubs: keep real stretches
        snapped = _snap_to_places(road.coords, places, source_seats)
        parts = _clip(snapped, boundary, MIN_KNOWN_PART_M)
        drafts.extend(_Draft(road.name, road.road_class, "estimated", p) for p in parts)
    bx, by = places.x[seats], places.y[seats]
    for bridge in bridges:
        px, py = to_xy([bridge.lon], [bridge.lat])
        ti = int(np.argmin(np.hypot(bx - px[0], by - py[0])))
        seat = ll[int(seats[ti])]
        # from the seat over the bridge point, 3 km on, cut at the border
        dx, dy = px[0] - bx[ti], py[0] - by[ti]
        scale = 1.0 + 3_000.0 / math.hypot(dx, dy)
        far = to_lonlat([bx[ti] + dx * scale], [by[ti] + dy * scale])
        line = [seat, (bridge.lon, bridge.lat), (float(far[0][0]), float(far[1][0]))]
        part = next(p if p[0] == seat else p[::-1] for p in _clip(line, boundary) if seat in p)
        drafts.append(_Draft(bridge.road_name, "county", "estimated", part))
    drafts.extend(
        _Draft(None, "village", "synthetic", [ll[i], ll[j]]) for i, j in sorted(village_edges)
    )

    drafts.sort(key=lambda d: ROAD_CLASSES.index(d.road_class))
    lines, rounds = node([_densify(d.anchors) for d in drafts])
    count, _, _ = components(lines)
    if count != 1:
        raise DatasetError(f"roads: the network has {count} components")
    roads = [
        Road(d.name, d.road_class, d.status, line) for d, line in zip(drafts, lines, strict=True)
    ]
    stats = {
        "features": len(roads),
        "noding_rounds": rounds,
        "vertices": sum(len(x) for x in lines),
    }
    return roads, stats
