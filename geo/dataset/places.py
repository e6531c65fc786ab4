"""Villages, communities, workstations and minimum emergency units.

Theory of operation
-------------------
*Villages.* The plain's villages are evenly spread, 1-2 km apart. Each township's villages are
a seeded uniform sample of its polygon shrunk by :data:`BORDER_CLEARANCE_M`, relaxed by
:data:`LLOYD_ITERATIONS` Lloyd steps (each point moves to the centroid of its Voronoi cell
clipped to the region): even spacing without a lattice's regularity. The seat village sits
exactly on the township seat and does not move. 郑口镇's 13 urban communities are placed the
same way inside a disc of :data:`URBAN_RADIUS_M` around the county seat (the canal, the
county's eastern border, keeps them west of it); its 40 villages fill the rest of the township.

*Populations.* Village sizes are lognormal (σ = :data:`VILLAGE_SIGMA`; a seat village is
:data:`SEAT_VILLAGE_FACTOR` times larger), scaled to the township's population with
largest-remainder rounding so that every township sums exactly. The communities hold an
estimated :data:`URBAN_SHARE` of 郑口镇's population (the county's 2020 census counts 207,499
urban residents, county-wide, including the township seats' towns).

*Workstations* (26): one per township at its seat, the rest shared out by population (largest
remainder), so 郑口镇 gets six. The extra ones are placed by population-weighted k-means over
the township's villages with the seat as a fixed centre, each snapped to the nearest village.
A workstation works with the nearest police station of its township.

*Units* (:data:`N_UNITS` = 208 = 8 per workstation on average): one per urban community (13),
and 195 over the villages, shared out to townships by village population and sited by
population-weighted k-means (a unit's catchment is then the villages nearest to it, so a unit
serves about 2,300 people). A unit is tied to its township's nearest workstation and to that
workstation's police station.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPoint, Point, Polygon
from shapely.geometry.base import BaseGeometry

from dispatch.errors import DatasetError
from geo.dataset.frame import FloatArray, to_lonlat, to_xy
from geo.dataset.names import COMMUNITY_NAMES, village_names
from geo.dataset.schema import N_COMMUNITIES, N_WORKSTATIONS, SEAT_TOWNSHIP_CODE
from geo.dataset.sources import StationSource

__all__ = [
    "N_UNITS",
    "Places",
    "Stations",
    "Township",
    "Units",
    "largest_remainder",
    "place_stations",
    "place_units",
    "place_villages",
]

IntArray = npt.NDArray[np.int64]

BORDER_CLEARANCE_M: Final = 320.0  # 300 m promised, 20 m for rounding and relaxation
LLOYD_ITERATIONS: Final = 8
URBAN_RADIUS_M: Final = 2_300.0
RURAL_GAP_M: Final = 500.0  # between the urban disc and the first village
URBAN_SHARE: Final = 0.60
VILLAGE_SIGMA: Final = 0.55
COMMUNITY_SIGMA: Final = 0.30
SEAT_VILLAGE_FACTOR: Final = 2.5
N_UNITS: Final = 208
#: Seat villages named in the sources (others are named after their township).
SEAT_VILLAGE_NAMES: Final = {"131126201": "小马庄村"}  # 里老乡: "seat 小马庄 东大线9号"


@dataclass(frozen=True, slots=True)
class Township:
    """A township as the later stages need it (after the partition)."""

    code: str
    name: str
    population: int
    villages: int
    seat_lon: float
    seat_lat: float
    polygon: Polygon  # lon/lat, as published
    polygon_xy: Polygon  # the same, in the local frame


@dataclass(frozen=True, slots=True)
class Places:
    """Villages and communities, columnar, in file order."""

    id: list[str]
    name: list[str]
    is_community: npt.NDArray[np.bool_]
    township: IntArray
    population: IntArray
    lon: FloatArray
    lat: FloatArray
    x: FloatArray
    y: FloatArray
    seat: IntArray  # per township, index of its seat village / community

    def __len__(self) -> int:
        return len(self.id)


@dataclass(frozen=True, slots=True)
class Stations:
    """Police stations then workstations, columnar, in file order."""

    id: list[str]
    name: list[str]
    kind: list[str]
    township: IntArray
    station: IntArray  # workstations: index of their police station; -1 for police stations
    village: IntArray  # workstations: index of their village; -1 for police stations
    lon: FloatArray
    lat: FloatArray
    basis: list[str]

    def workstations(self) -> IntArray:
        """Indices of the workstations."""
        return np.flatnonzero(np.array(self.kind) == "workstation").astype(np.int64)


@dataclass(frozen=True, slots=True)
class Units:
    """Minimum emergency units, columnar, in file order."""

    id: list[str]
    name: list[str]
    village: IntArray
    workstation: IntArray  # index into Stations
    station: IntArray  # index into Stations
    catchment: IntArray  # per place: index of the unit serving it

    def __len__(self) -> int:
        return len(self.id)


def largest_remainder(total: int, weights: npt.ArrayLike, minimum: int = 0) -> IntArray:
    """Integers proportional to ``weights`` summing to ``total``, each at least ``minimum``.

    Raises:
        ValueError: ``total`` cannot give every entry its minimum, or weights are not positive.
    """
    w = np.asarray(weights, dtype=np.float64)
    if total < minimum * len(w) or not np.all(w > 0):
        raise ValueError("largest_remainder: infeasible minimum or non-positive weights")
    quota = w / w.sum() * total
    base = np.maximum(np.floor(quota).astype(np.int64), minimum)
    rest = quota - base
    left = total - int(base.sum())
    order = np.argsort(-rest, kind="stable")
    if left >= 0:
        base[order[:left]] += 1
    else:
        for i in order[::-1]:
            if left == 0:
                break
            if base[i] > minimum:
                base[i] -= 1
                left += 1
    return np.asarray(base, dtype=np.int64)


# --- point placement -------------------------------------------------------------------------
def _uniform(region: BaseGeometry, count: int, rng: np.random.Generator) -> FloatArray:
    xmin, ymin, xmax, ymax = region.bounds
    out = np.empty((0, 2))
    while len(out) < count:
        cand = rng.uniform((xmin, ymin), (xmax, ymax), size=(4 * count + 16, 2))
        out = np.vstack([out, cand[shapely.contains_xy(region, cand[:, 0], cand[:, 1])]])
    return out[:count]


def _lloyd(
    region: BaseGeometry, count: int, fixed: FloatArray, rng: np.random.Generator
) -> FloatArray:
    """``count`` points relaxed inside ``region`` around the ``fixed`` ones."""
    points = _uniform(region, count, rng)
    frame = shapely.buffer(shapely.envelope(region), 10_000.0)
    for _ in range(LLOYD_ITERATIONS):
        sites = np.vstack([fixed, points])
        cells = shapely.get_parts(
            shapely.voronoi_polygons(MultiPoint(sites), extend_to=frame, ordered=True)
        )[len(fixed) :]
        clipped = shapely.intersection(cells, region)
        centroids = shapely.centroid(clipped)
        bad = shapely.is_empty(clipped) | ~shapely.contains(region, centroids)
        centroids[bad] = shapely.point_on_surface(clipped[bad])
        moved = shapely.get_coordinates(centroids)
        if len(moved) != count:  # an empty cell: keep the previous positions
            break
        points = moved
    return points


def _weights(rng: np.random.Generator, count: int, sigma: float) -> FloatArray:
    return np.exp(rng.normal(0.0, sigma, count))


def _seat_village_name(t: Township) -> str:
    return SEAT_VILLAGE_NAMES.get(t.code, f"{t.name.removesuffix('镇').removesuffix('乡')}村")


@dataclass
class _Rows:
    """Accumulates the columns of :class:`Places`."""

    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    community: list[bool] = field(default_factory=list)
    town: list[int] = field(default_factory=list)
    pops: list[int] = field(default_factory=list)
    xy: list[FloatArray] = field(default_factory=list)

    def add(
        self, pid: str, name: str, community: bool, town: int, pop: int, xy: FloatArray
    ) -> None:
        self.ids.append(pid)
        self.names.append(name)
        self.community.append(community)
        self.town.append(town)
        self.pops.append(pop)
        self.xy.append(xy)


def _communities(
    t: Township,
    ti: int,
    seat: FloatArray,
    inner: BaseGeometry,
    rows: _Rows,
    rng: np.random.Generator,
) -> int:
    """郑口镇's urban communities around the county seat; returns their population."""
    disc = Point(seat[0]).buffer(URBAN_RADIUS_M, quad_segs=32)
    comm = np.vstack(
        [seat, _lloyd(shapely.intersection(inner, disc), N_COMMUNITIES - 1, seat, rng)]
    )
    urban_pop = round(URBAN_SHARE * t.population)
    w = _weights(rng, N_COMMUNITIES, COMMUNITY_SIGMA)
    w[0] *= 1.5  # the county seat's own community
    comm_pop = largest_remainder(urban_pop, w)
    # the seat is 府前社区; the two nearest the canal (east) are 运河 and 滨河
    by_east = [0, *sorted(range(1, N_COMMUNITIES), key=lambda i: -comm[i, 0])]
    labels = ["府前社区", "运河社区", "滨河社区"]
    labels += [n for n in COMMUNITY_NAMES if n not in labels]
    label_of = dict(zip(by_east, labels, strict=True))
    by_id = sorted(range(N_COMMUNITIES), key=lambda i: (i != 0, -comm[i, 1]))  # seat, then N->S
    for k, i in enumerate(by_id, start=1):
        rows.add(f"{t.code}{k:03d}", label_of[i], True, ti, int(comm_pop[i]), comm[i])
    return urban_pop


def place_villages(townships: list[Township], rng: np.random.Generator) -> Places:
    """Villages and communities of every township, with populations and names.

    Raises:
        DatasetError: a township's polygon is too small for its villages.
    """
    rows = _Rows()
    seats: list[int] = []
    taken: set[str] = {_seat_village_name(t) for t in townships} | set(COMMUNITY_NAMES)
    for ti, t in enumerate(townships):
        sx, sy = to_xy([t.seat_lon], [t.seat_lat])
        seat = np.array([[sx[0], sy[0]]])
        inner = shapely.buffer(t.polygon_xy, -BORDER_CLEARANCE_M)
        if inner.is_empty or inner.area < 1e6 * t.villages * 0.5:
            raise DatasetError(f"township {t.code}: too little room for its villages")
        seats.append(len(rows.ids))
        village_pop = t.population
        if t.code == SEAT_TOWNSHIP_CODE:
            village_pop -= _communities(t, ti, seat, inner, rows, rng)
            rural = shapely.difference(inner, Point(seat[0]).buffer(URBAN_RADIUS_M + RURAL_GAP_M))
            vill = _lloyd(rural, t.villages, np.empty((0, 2)), rng)
            seat_village = -1
        else:
            vill = np.vstack([seat, _lloyd(inner, t.villages - 1, seat, rng)])
            seat_village = 0
        w = _weights(rng, t.villages, VILLAGE_SIGMA)
        if seat_village == 0:
            w[0] *= SEAT_VILLAGE_FACTOR
        vill_pop = largest_remainder(village_pop, w)
        fresh = iter(village_names(rng, t.villages - (seat_village == 0), taken))
        # the seat village first, then north to south
        order = sorted(range(t.villages), key=lambda i: (i != seat_village, -vill[i, 1]))
        for k, i in enumerate(order, start=201):
            name = _seat_village_name(t) if i == seat_village else next(fresh)
            taken.add(name)
            rows.add(f"{t.code}{k:03d}", name, False, ti, int(vill_pop[i]), vill[i])

    pts = np.array(rows.xy)
    lon, lat = to_lonlat(pts[:, 0], pts[:, 1])
    # seats are published exactly as the townships' seat coordinates
    for ti, t in enumerate(townships):
        lon[seats[ti]], lat[seats[ti]] = t.seat_lon, t.seat_lat
    x, y = to_xy(lon, lat)
    return Places(
        id=rows.ids,
        name=rows.names,
        is_community=np.array(rows.community),
        township=np.array(rows.town, dtype=np.int64),
        population=np.array(rows.pops, dtype=np.int64),
        lon=lon,
        lat=lat,
        x=x,
        y=y,
        seat=np.array(seats, dtype=np.int64),
    )


# --- workstations and units ------------------------------------------------------------------
def _kmeans(
    pts: FloatArray,
    weights: FloatArray,
    init: FloatArray,
    n_fixed: int,
    iterations: int = 30,
) -> tuple[FloatArray, IntArray]:
    """Population-weighted k-means; the first ``n_fixed`` centres do not move."""
    centres = init.copy()
    labels = np.zeros(len(pts), dtype=np.int64)
    for _ in range(iterations):
        d2 = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = np.argmin(d2, axis=1)
        for k in range(n_fixed, len(centres)):
            mine = labels == k
            if mine.any():
                centres[k] = np.average(pts[mine], axis=0, weights=weights[mine])
            else:  # re-seed an empty cluster on the worst-served heavy point
                centres[k] = pts[int(np.argmax(weights * d2.min(axis=1)))]
    return centres, labels


def _spread_init(pts: FloatArray, weights: FloatArray, fixed: FloatArray, k: int) -> FloatArray:
    """Deterministic farthest-point start: repeatedly the point with most weight x distance²."""
    centres = [*fixed]
    while len(centres) < k:
        d2 = ((pts[:, None, :] - np.array(centres)[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        centres.append(pts[int(np.argmax(weights * d2))])
    return np.array(centres, dtype=np.float64)


def _snap(centres: FloatArray, pts: FloatArray, first_fixed: int | None) -> list[int]:
    """Each centre's nearest point, all distinct (the fixed one keeps its own)."""
    used: set[int] = set()
    out: list[int] = []
    for k, c in enumerate(centres):
        if k == 0 and first_fixed is not None:
            choice = first_fixed
        else:
            order = np.argsort(((pts - c) ** 2).sum(axis=1), kind="stable")
            choice = int(next(i for i in order if int(i) not in used))
        used.add(choice)
        out.append(choice)
    return out


def place_stations(
    townships: list[Township], places: Places, police: tuple[StationSource, ...]
) -> Stations:
    """Police stations (township stations at their seat) and the 26 workstations.

    Raises:
        DatasetError: a police station lies outside every township.
    """
    polys = [t.polygon for t in townships]
    ids, names, kinds, town, basis = [], [], [], [], []
    lon: list[float] = []
    lat: list[float] = []
    for s in police:
        slon, slat = s.lon, s.lat
        if s.kind == "township_station":
            # the source places them "co-located with township seat estimate"
            t = next((t for t in townships if t.code.endswith(s.id.removeprefix("PS-"))), None)
            if t is None:
                raise DatasetError(f"station {s.id}: no township for it", field="id")
            slon, slat = t.seat_lon, t.seat_lat
        inside = [i for i, p in enumerate(polys) if p.covers(Point(slon, slat))]
        if not inside:
            raise DatasetError(f"station {s.id} lies outside every township", field="lat")
        ids.append(s.id)
        names.append(s.name)
        kinds.append(s.kind)
        town.append(inside[0])
        lon.append(slon)
        lat.append(slat)
        basis.append(s.basis)
    n_police = len(ids)
    station_of: list[int] = [-1] * n_police
    village_of: list[int] = [-1] * n_police

    counts = largest_remainder(N_WORKSTATIONS, [t.population for t in townships], minimum=1)
    sx, sy = to_xy(lon, lat)
    for ti, t in enumerate(townships):
        members = np.flatnonzero(places.township == ti)
        pts = np.column_stack([places.x[members], places.y[members]])
        weights = places.population[members].astype(np.float64)
        seat_local = int(np.flatnonzero(members == places.seat[ti])[0])
        init = _spread_init(pts, weights, pts[[seat_local]], int(counts[ti]))
        centres, _ = _kmeans(pts, weights, init, n_fixed=1)
        chosen = _snap(centres, pts, seat_local)
        police_here = [i for i in range(n_police) if town[i] == ti and kinds[i] != "hq"]
        for k, local in enumerate(chosen):
            v = int(members[local])
            d2 = [(sx[i] - places.x[v]) ** 2 + (sy[i] - places.y[v]) ** 2 for i in police_here]
            ids.append(f"WS{len(ids) - n_police + 1:02d}")
            label = t.name if k == 0 else f"{t.name}{places.name[v]}"
            names.append(f"{label}义警工作站")
            kinds.append("workstation")
            town.append(ti)
            lon.append(float(places.lon[v]))
            lat.append(float(places.lat[v]))
            station_of.append(police_here[int(np.argmin(d2))])
            village_of.append(v)
            basis.append(
                "SYNTHETIC position: 26 workstations CONFIRMED, sites unknown; one at the "
                "township seat, the rest by population-weighted k-means"
            )
    return Stations(
        id=ids,
        name=names,
        kind=kinds,
        township=np.array(town, dtype=np.int64),
        station=np.array(station_of, dtype=np.int64),
        village=np.array(village_of, dtype=np.int64),
        lon=np.array(lon),
        lat=np.array(lat),
        basis=basis,
    )


def place_units(
    townships: list[Township], places: Places, stations: Stations, rng: np.random.Generator
) -> Units:
    """The 208 minimum emergency units: one per community, 195 over the villages.

    Raises:
        DatasetError: a township has fewer villages than units.
    """
    villages = ~places.is_community
    n_village_units = N_UNITS - int(places.is_community.sum())
    per_town = largest_remainder(
        n_village_units,
        [
            places.population[villages & (places.township == ti)].sum()
            for ti in range(len(townships))
        ],
        minimum=1,
    )
    unit_village: list[int] = []
    catchment = np.full(len(places), -1, dtype=np.int64)
    for ti, _t in enumerate(townships):
        comms = np.flatnonzero(places.is_community & (places.township == ti))
        for c in comms:
            catchment[c] = len(unit_village)
            unit_village.append(int(c))
        members = np.flatnonzero(villages & (places.township == ti))
        k = int(per_town[ti])
        if k > len(members):
            raise DatasetError(f"township {_t.code}: more units than villages")
        pts = np.column_stack([places.x[members], places.y[members]])
        weights = places.population[members].astype(np.float64)
        start = pts[rng.choice(len(pts), size=1, p=weights / weights.sum())]
        centres, _ = _kmeans(pts, weights, _spread_init(pts, weights, start, k), n_fixed=0)
        chosen = _snap(centres, pts, None)
        first = len(unit_village)
        unit_village.extend(int(members[c]) for c in chosen)
        # catchment: every village goes to its nearest unit village
        sites = pts[chosen]
        d2 = ((pts[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)
        catchment[members] = first + np.argmin(d2, axis=1)

    ws = stations.workstations()
    uv = np.array(unit_village, dtype=np.int64)
    workstation = np.empty(len(uv), dtype=np.int64)
    wx, wy = to_xy(stations.lon[ws], stations.lat[ws])
    for u, v in enumerate(uv):
        same = stations.township[ws] == places.township[v]
        d2 = np.where(same, (wx - places.x[v]) ** 2 + (wy - places.y[v]) ** 2, np.inf)
        workstation[u] = ws[int(np.argmin(d2))]
    return Units(
        id=[f"U{u + 1:03d}" for u in range(len(uv))],
        name=[f"{places.name[v]}最小应急单元" for v in uv],
        village=uv,
        workstation=workstation,
        station=stations.station[workstation],
        catchment=catchment,
    )
