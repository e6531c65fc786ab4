"""Road lines as a network: segments, crossings and connected components.

Theory of operation: the road graph is built by merging *identical* vertex coordinates, nothing
else (no snapping tolerance, so that a real OpenStreetMap extract behaves the same). Two roads
are therefore connected only where both carry the same vertex. :func:`crossings` finds every
place where that promise is broken: two segments that touch or cross anywhere but at an endpoint
they share, or that overlap. It indexes all segments in an STRtree and tests the candidate pairs
with shapely's vectorised predicates. :func:`components` labels the graph's connected
components with :func:`scipy.sparse.csgraph.connected_components`. The generator uses both to
node its roads, the validator to judge any dataset's roads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
import shapely
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from geo.dataset.frame import FloatArray

__all__ = ["Crossings", "Segments", "components", "crossings", "segments"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Segments:
    """Every segment of a list of polylines."""

    start: FloatArray  # (m, 2)
    end: FloatArray  # (m, 2)
    line: IntArray  # which polyline
    index: IntArray  # which segment of it


@dataclass(frozen=True, slots=True)
class Crossings:
    """Pairs of segments ``a`` and ``b`` (indices into :class:`Segments`) that meet badly."""

    a: IntArray
    b: IntArray
    #: Where they meet, when it is a single point (NaN for an overlap).
    point: FloatArray
    overlap: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.a)


def segments(lines: Sequence[FloatArray]) -> Segments:
    """The segments of ``lines`` (each an ``(n, 2)`` array of at least two vertices)."""
    starts = [line[:-1] for line in lines]
    counts = np.array([len(s) for s in starts], dtype=np.int64)
    line_of = np.repeat(np.arange(len(lines), dtype=np.int64), counts)
    index = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    return Segments(
        start=np.concatenate(starts) if starts else np.empty((0, 2)),
        end=np.concatenate([line[1:] for line in lines]) if starts else np.empty((0, 2)),
        line=line_of,
        index=index,
    )


def crossings(segs: Segments) -> Crossings:
    """Segment pairs that touch or cross other than at a shared endpoint, or overlap."""
    geoms = cast(
        "npt.NDArray[np.object_]", shapely.linestrings(np.stack([segs.start, segs.end], axis=1))
    )
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep].astype(np.int64), b[keep].astype(np.int64)
    s0, e0, s1, e1 = segs.start[a], segs.end[a], segs.start[b], segs.end[b]

    def same(p: FloatArray, q: FloatArray) -> npt.NDArray[np.bool_]:
        return np.asarray((p == q).all(axis=1))

    shared = same(s0, s1) | same(s0, e1) | same(e0, s1) | same(e0, e1)
    where = cast("npt.NDArray[np.object_]", shapely.intersection(geoms[a], geoms[b]))
    is_point = shapely.get_type_id(where) == 0
    bad = ~(shared & is_point)
    a, b, where, is_point = a[bad], b[bad], where[bad], is_point[bad]
    point = np.full((len(a), 2), np.nan)
    if is_point.any():
        point[is_point] = shapely.get_coordinates(where[is_point])
    return Crossings(a=a, b=b, point=point, overlap=~is_point)


def components(lines: Sequence[FloatArray]) -> tuple[int, FloatArray, IntArray]:
    """Connected components of the graph whose nodes are the distinct vertices of ``lines``.

    Returns:
        ``(count, vertices, labels)``: the number of components, the distinct vertices
        (``(k, 2)``) and each vertex's component label.
    """
    if not lines:
        return 0, np.empty((0, 2)), np.empty(0, dtype=np.int64)
    coords = np.concatenate(lines)
    vertices, inverse = np.unique(coords, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    ends = np.cumsum([len(line) for line in lines])
    not_last = np.ones(len(coords), dtype=bool)
    not_last[ends - 1] = False
    u = inverse[:-1][not_last[:-1]]
    v = inverse[1:][not_last[:-1]]
    n = len(vertices)
    graph = coo_array((np.ones(len(u)), (u, v)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    return int(count), vertices, labels.astype(np.int64)
