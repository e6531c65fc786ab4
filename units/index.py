"""The live position index: who is where, now.

Theory of operation
-------------------
Every volunteer the engine knows gets a *slot*, a small integer that never changes. The index
is two structures over those slots:

* **Columns**: numpy arrays indexed by slot (lat, lon, fix time, accuracy, mode, status,
  situation, roles, teams, unit, cell). Ranking gathers the candidates' rows with one fancy
  index and hands whole arrays to the travel model, so an ETA costs nanoseconds per candidate.
* **Buckets**: a dict ``cell -> array('q') of slots`` on the H3 integer API, plus a column
  ``bucket position`` (where the slot sits in its bucket). A query for the candidates around an
  incident visits the cells of one ``grid_disk`` and concatenates their buckets with one
  ``bytes.join`` over the arrays' buffers: a few hundred dict lookups and one memcpy, whatever
  the number of volunteers in the county or the province.

**Tables of buckets, by status and by mode.** Every slot with a fix sits in exactly one
bucket, of one of five tables: the volunteers whose status is ``available`` in their travel
mode's table (four), everyone else (``off_duty``, ``busy``) in a fifth. Only the available
can ever make a candidate, and at any hour most of the county's 13,556 volunteers are off
duty: a search widened to 15 or 30 minutes covers the whole county, and ranking then gathers
the few thousand on duty instead of everyone (:meth:`LiveIndex.available_in_cells`, four
lookups per cell). And ranking takes each mode's volunteers only from the cells of that
mode's own reach (:meth:`LiveIndex.available_by_mode`; at 5 minutes a walker reaches 530 m,
a car 2.9 km), not every walker in a car's disk. A change of status across that line, or of
mode, moves the slot between the tables by the same swap-remove, O(1). The price: a query
over every status in a disk (:meth:`LiveIndex.near`) looks each cell up five times.

**Records.** Ranking reads, for candidates scattered over the whole index, each one's
position and fix time, then its situation, roles and teams. So those columns are not stored
apart: lat, lon, fix time and accuracy sit side by side in one 32-byte record per slot
(:attr:`LiveIndex.fixes`), status, situation, roles and teams in one 4-byte record
(:attr:`LiveIndex.attributes`), and each column is a strided view into its record. A
candidate then costs one cache line for its fix and one word for its attributes instead of
one cache line per column: with a million volunteers, whose columns do not stay in the
cache between two incidents, that is a fifth of the time of a dense ranking.

**O(1) update.** A fix is checked (coordinates, stale, future) and written into the columns by
slot. If the volunteer left its cell, the slot moves between buckets by *swap-remove* (the last
slot of the old bucket takes its place; its bucket position is patched) and an append: constant
time, no scan, no sort, no rebuild.

**The inscribed-ellipse fast path.** ``latlng_to_cell`` costs 0.5-1.2 µs in H3's C code (a
vectorised H3 such as h3ronpy is no faster per point: the C routine dominates), most of the
batch budget. But most fixes leave the volunteer in its cell. For every slot the index keeps
the centre of its cell and a *safe ellipse* around it, ``A·Δlon² + B·Δlon·Δlat + C·Δlat² <= 1``:
fitted to the cell's hexagon (H3's hexagons are irregular, so a circle would cover only ~74% of
one; the ellipse covers ~87%), scaled to touch the nearest edge line and shrunk by 2%. H3 cell
edges are great-circle arcs, straight to within millimetres in the local plane at these sizes,
so a point inside the ellipse is inside the cell: the cell is unchanged and H3 is not called.
The test is conservative and exact: a point outside only takes the slow path, which calls H3.

A slot's ellipse is armed *lazily*: not when the volunteer enters a cell, but when a fix finds
it still there (one H3 call later), so volunteers who keep moving (and every first fix) never
pay the 5-10 µs of computing one (``cell_to_boundary`` alone is ~4 µs). Ellipses are cached
per cell (at most 65,536, ~15 MB), and an ``update_batch`` call of ``m`` fixes computes at
most ``1,024 + m/8`` new ones (arming at most doubles its cost): after a restart with a million
volunteers, arming spreads over a few rounds of fixes instead of stalling one call. Pentagons
and cells above 80° of latitude get none.

**Fix rules** (CONTRACT.md "Positions"), in this order:

1. coordinates (and ``ts``, ``accuracy_m``) are validated first: a bad one raises
   :class:`~dispatch.errors.CoordinateError` / :class:`~dispatch.errors.InvalidInput` naming the
   field and changes nothing (in a batch: nothing of the whole batch);
2. an unknown slot (negative, e.g. ``-1`` from :meth:`LiveIndex.slots_of`, or beyond the end)
   is ``UNKNOWN`` (wire: ``unknown_volunteer``);
3. ``ts > now + future_tolerance_s`` is ``FUTURE``;
4. ``ts <`` the volunteer's newest accepted fix is ``STALE``. A fix with *the same* ``ts`` as
   the newest is accepted and applied: a re-sent fix is idempotent, and of two different fixes
   stamped with the same second the later one to arrive wins (there is no better order).

A fix older than ``freshness_s`` stays in the index (the operator's map shows where a volunteer
was last seen) but :meth:`LiveIndex.fresh_available` never lets it make a candidate.

**Status.** The ``status`` column is the *effective* status that candidates are filtered on:
``available`` / ``off_duty`` as the volunteer or an operator declared it, or ``busy`` while the
volunteer holds an accepted assignment. The dispatch layer owns that derivation (it knows the
assignments, and remembers an availability declared while busy): it calls :meth:`set_status`
with the result, and the index stores it as given.

**Time is injected**: every method that needs the time takes ``now`` (epoch seconds); nothing in
this module reads a clock. The index is not thread-safe: the engine owns it from one event loop.
"""

from __future__ import annotations

import enum
import math
from array import array
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any, Final, NamedTuple, Protocol, TypeVar, cast

import h3.api.basic_int as h3b
import numpy as np
import numpy.typing as npt

from dispatch.errors import InvalidInput, NotFound
from geo.cells import LIVE_RES, cell_of, disk_k_for_radius, grid_disk
from geo.coords import check_latlon, check_latlon_arrays
from geo.modes import Mode
from geo.travel import Situation
from units.vocab import Role, Status, Team

__all__ = [
    "ATTR_ROLES",
    "ATTR_SITUATION",
    "ATTR_STATUS",
    "ATTR_TEAMS",
    "FIX_LAT",
    "FIX_LON",
    "FIX_TS",
    "FixOutcome",
    "LiveIndex",
    "PositionSnapshot",
]

IntpArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]
U8Array = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]
CellArray = npt.NDArray[np.uint64]
_T = TypeVar("_T", bound=np.generic)


class _FloatView(Protocol):
    """A ``memoryview`` of a float column, as the scalar hot path uses it."""

    def __getitem__(self, index: int, /) -> float: ...
    def __setitem__(self, index: int, value: float, /) -> None: ...


class _IntView(Protocol):
    """A ``memoryview`` of an integer column."""

    def __getitem__(self, index: int, /) -> int: ...
    def __setitem__(self, index: int, value: int, /) -> None: ...


# Buckets are array.array of the platform's intp, so their buffers join straight into an intp
# numpy array.
_TYPECODE: Final = "q" if np.dtype(np.intp).itemsize == 8 else "i"
_INF: Final = math.inf
_MAX_ROLES: Final = 1 << len(Role)
_MAX_TEAMS: Final = 1 << len(Team)
_ELLIPSE_MARGIN: Final = 0.98
_ELLIPSE_CACHE_MAX: Final = 1 << 16  # ~16 MB of tuples at most
#: New ellipses (5-10 µs each) computed per update_batch call of m fixes: this + m // 8.
_ARM_BUDGET: Final = 1024
_NO_ELLIPSE: Final = (math.nan,) * 5
_AVAILABLE: Final = int(Status.AVAILABLE)

_Buckets = dict[int, "array[int]"]


def _unbucket(buckets: _Buckets, cell: int, slot: int, m_bpos: _IntView) -> None:
    """Swap-remove ``slot`` from ``cell``'s bucket (the last slot takes its place); O(1)."""
    leaving = buckets[cell]
    last = leaving.pop()
    if last != slot:
        position = m_bpos[slot]
        leaving[position] = last
        m_bpos[last] = position
    elif not leaving:
        del buckets[cell]


def _bucket(buckets: _Buckets, cell: int, slot: int, m_bpos: _IntView) -> None:
    """Append ``slot`` to ``cell``'s bucket (made if missing); O(1)."""
    joining = buckets.get(cell)
    if joining is None:
        buckets[cell] = array(_TYPECODE, (slot,))
        m_bpos[slot] = 0
    else:
        m_bpos[slot] = len(joining)
        joining.append(slot)


#: Every per-slot column: attribute, dtype, value of a slot without data.
_COLUMNS: Final[tuple[tuple[str, type[np.generic], float], ...]] = (
    ("_cell", np.uint64, 0),  # 0: no fix, in no bucket
    # the cell's safe ellipse (module doc): centre and A, B, C (NaN: none)
    ("_clat", np.float64, math.nan),
    ("_clon", np.float64, math.nan),
    ("_ea", np.float32, math.nan),
    ("_eb", np.float32, math.nan),
    ("_ec", np.float32, math.nan),
    ("_bpos", np.intp, -1),  # position in its bucket
    ("_mode", np.uint8, 0),
    ("_unit", np.int32, -1),
)
#: Columns stored side by side, one record per slot, each column a strided view into its
#: record (module doc, "Records"): record attribute, dtype, then each column's attribute and
#: value of a slot without data.
_RECORDS: Final[tuple[tuple[str, type[np.generic], tuple[tuple[str, float], ...]], ...]] = (
    # the newest accepted fix, 32 bytes
    (
        "_fix",
        np.float64,
        (("_lat", math.nan), ("_lon", math.nan), ("_ts", math.nan), ("_acc", math.nan)),
    ),
    # what decides eligibility, turnout and skills, 4 bytes
    (
        "_attrs",
        np.uint8,
        (
            ("_status", Status.OFF_DUTY),
            ("_situation", Situation.PATROL),
            ("_roles", 0),
            ("_teams", 0),
        ),
    ),
)
#: Where each field sits in a row of :attr:`LiveIndex.fixes` and :attr:`LiveIndex.attributes`.
FIX_LAT: Final = 0
FIX_LON: Final = 1
FIX_TS: Final = 2
ATTR_STATUS: Final = 0
ATTR_SITUATION: Final = 1
ATTR_ROLES: Final = 2
ATTR_TEAMS: Final = 3


class FixOutcome(enum.IntEnum):
    """What became of one fix. The value is the ``uint8`` code of :meth:`LiveIndex.update_batch`."""

    ACCEPTED = 0
    STALE = 1
    FUTURE = 2
    UNKNOWN = 3

    @property
    def wire(self) -> str:
        """The contract's name: ``accepted``, ``stale``, ``future``, ``unknown_volunteer``."""
        return "unknown_volunteer" if self is FixOutcome.UNKNOWN else self.name.lower()


_ACCEPTED: Final = FixOutcome.ACCEPTED
_STALE: Final = FixOutcome.STALE
_FUTURE: Final = FixOutcome.FUTURE
_UNKNOWN: Final = FixOutcome.UNKNOWN


class PositionSnapshot(NamedTuple):
    """Every volunteer that has a fix, for persistence (copies, not views)."""

    ids: list[str]
    lat: FloatArray
    lon: FloatArray
    ts: FloatArray
    accuracy_m: FloatArray


def _check_ts(value: object, field: str = "ts") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise InvalidInput(f"{field} must be a number, got {type(value).__name__}", field=field)
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"{field} = {number} is not a finite time", field=field)
    return number


def _check_accuracy(value: object, field: str = "accuracy_m") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise InvalidInput(f"{field} must be a number, got {type(value).__name__}", field=field)
    number = float(value)
    if math.isnan(number):
        return number  # unknown accuracy
    if not 0.0 <= number < _INF:
        raise InvalidInput(f"{field} = {number} must be finite and >= 0", field=field)
    return number


def _safe_ellipse(cell: int) -> tuple[float, float, float, float, float]:
    """``(centre lat, centre lon, A, B, C)``: the safe ellipse of ``cell`` (module doc).

    A point is inside the cell if ``A·Δlon² + B·Δlon·Δlat + C·Δlat² <= 1`` (degrees from the
    centre). In the local plane ``x = Δlon·cos(lat₀)``, ``y = Δlat`` the hexagon's vertices
    ``p`` give the ellipse's shape, ``xᵀ S⁻¹ x`` with ``S = Σ p pᵀ`` (exact for an affine image
    of a regular hexagon); it is then scaled to touch the nearest edge line, which keeps it
    inside the convex cell, and shrunk by :data:`_ELLIPSE_MARGIN`. NaN coefficients: no
    ellipse (pentagon, cell above 80° of latitude, a boundary that is not a plain hexagon);
    every fix there takes the exact path.
    """
    clat, clon = h3b.cell_to_latlng(cell)
    nan = math.nan
    if abs(clat) > 80.0 or h3b.is_pentagon(cell):
        return (clat, clon, nan, nan, nan)
    boundary = h3b.cell_to_boundary(cell)
    if len(boundary) != 6:
        return (clat, clon, nan, nan, nan)
    kx = math.cos(math.radians(clat))
    points = []
    for vlat, vlon in boundary:
        dlon = vlon - clon
        if not -180.0 <= dlon <= 180.0:  # the cell straddles the antimeridian
            dlon -= math.copysign(360.0, dlon)
        points.append((dlon * kx, vlat - clat))
    sxx = sum(x * x for x, _ in points)
    sxy = sum(x * y for x, y in points)
    syy = sum(y * y for _, y in points)
    # For the edge line through p1, p2 (normal n = (ey, -ex)): the ellipse xᵀS⁻¹x <= u
    # reaches it when u = cross(p1, p2)² / nᵀSn. The smallest u over the edges touches.
    touch = _INF
    x1, y1 = points[-1]
    for x2, y2 in points:
        cross = x1 * y2 - x2 * y1
        ex = x2 - x1
        ey = y2 - y1
        touch = min(touch, cross * cross / (ey * ey * sxx - 2.0 * ex * ey * sxy + ex * ex * syy))
        x1, y1 = x2, y2
    scale = 1.0 / ((sxx * syy - sxy * sxy) * touch * _ELLIPSE_MARGIN**2)
    return (clat, clon, syy * scale * kx * kx, -2.0 * sxy * scale * kx, sxx * scale)


def _readonly(column: npt.NDArray[_T], n: int) -> npt.NDArray[_T]:
    view = column[:n]
    view.flags.writeable = False
    return view


class LiveIndex:
    """Live positions and states of volunteers, by slot, with per-cell buckets.

    Args:
        res: H3 resolution of the buckets (default :data:`geo.cells.LIVE_RES`).
        capacity: initial number of slots; the columns grow by doubling.
        future_tolerance_s: a fix stamped more than this after ``now`` is ``FUTURE``.
        freshness_s: a fix older than this never makes a candidate.

    Raises:
        ValueError: an argument is out of range.

    The column properties (``lat``, ``lon``, ``fix_ts``, ...) are read-only *live* views of
    length ``len(self)``: they follow updates, but not a growth of the index (re-read them after
    :meth:`add`).
    """

    _fix: FloatArray  # (capacity, 4): lat, lon, ts, accuracy; the four columns are views
    _attrs: U8Array  # (capacity, 4): status, situation, roles, teams; views too
    _lat: FloatArray
    _lon: FloatArray
    _ts: FloatArray
    _acc: FloatArray
    _cell: CellArray
    _clat: FloatArray
    _clon: FloatArray
    _ea: npt.NDArray[np.float32]
    _eb: npt.NDArray[np.float32]
    _ec: npt.NDArray[np.float32]
    _bpos: IntpArray
    _mode: U8Array
    _status: U8Array
    _situation: U8Array
    _roles: U8Array
    _teams: U8Array
    _unit: npt.NDArray[np.int32]
    _views: dict[str, npt.NDArray[Any]]  # see _view
    _views_n: int

    def __init__(
        self,
        *,
        res: int = LIVE_RES,
        capacity: int = 1024,
        future_tolerance_s: float = 30.0,
        freshness_s: float = 300.0,
    ) -> None:
        if not 0 <= res <= 15:
            raise ValueError(f"res must be in [0, 15], got {res}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if not (math.isfinite(future_tolerance_s) and future_tolerance_s >= 0):
            raise ValueError(f"future_tolerance_s must be >= 0, got {future_tolerance_s}")
        if not (math.isfinite(freshness_s) and freshness_s >= 0):
            raise ValueError(f"freshness_s must be >= 0, got {freshness_s}")
        self.res: Final = res
        self.future_tolerance_s: Final = float(future_tolerance_s)
        self.freshness_s: Final = float(freshness_s)
        #: slot -> volunteer id. Read-only for callers.
        self.ids: list[str] = []
        self._slot_of: dict[str, int] = {}
        self._n = 0
        self._cap = capacity
        # the buckets of the available of each mode, and of everyone else (module doc)
        self._by_mode: tuple[_Buckets, ...] = tuple({} for _ in Mode)
        self._others: _Buckets = {}
        self._ellipses: dict[int, tuple[float, float, float, float, float]] = {}
        self._allocate(capacity, 0)

    # ------------------------------------------------------------------ storage

    def _view(self, name: str) -> npt.NDArray[Any]:
        """The read-only view of length ``len(self)`` of column ``name``, made once per
        length (a view costs ~0.5 µs; ranking and the engine read columns many times)."""
        if self._views_n != self._n:
            self._views = {}
            self._views_n = self._n
        view = self._views.get(name)
        if view is None:
            view = self._views[name] = _readonly(getattr(self, name), self._n)
        return view

    def _make_views(self) -> None:
        self._views = {}
        self._views_n = -1
        # Scalar access through memoryviews is about twice as fast as numpy's __getitem__.
        self._m_lat = cast(_FloatView, memoryview(self._lat))  # type: ignore[arg-type]
        self._m_lon = cast(_FloatView, memoryview(self._lon))  # type: ignore[arg-type]
        self._m_ts = cast(_FloatView, memoryview(self._ts))  # type: ignore[arg-type]
        self._m_acc = cast(_FloatView, memoryview(self._acc))  # type: ignore[arg-type]
        self._m_cell = cast(_IntView, memoryview(self._cell))  # type: ignore[arg-type]
        self._m_clat = cast(_FloatView, memoryview(self._clat))  # type: ignore[arg-type]
        self._m_clon = cast(_FloatView, memoryview(self._clon))  # type: ignore[arg-type]
        self._m_ea = cast(_FloatView, memoryview(self._ea))  # type: ignore[arg-type]
        self._m_eb = cast(_FloatView, memoryview(self._eb))  # type: ignore[arg-type]
        self._m_ec = cast(_FloatView, memoryview(self._ec))  # type: ignore[arg-type]
        self._m_bpos = cast(_IntView, memoryview(self._bpos))  # type: ignore[arg-type]
        self._m_status = cast(_IntView, memoryview(self._status))  # type: ignore[arg-type]
        self._m_mode = cast(_IntView, memoryview(self._mode))  # type: ignore[arg-type]

    def _allocate(self, capacity: int, keep: int) -> None:
        """(Re)allocate every column and record at ``capacity``, keeping the first ``keep``
        rows."""
        for name, dtype, fill in _COLUMNS:
            new = np.full(capacity, fill, dtype=dtype)
            if keep:
                new[:keep] = getattr(self, name)[:keep]
            setattr(self, name, new)
        for name, dtype, fields in _RECORDS:
            record = np.empty((capacity, len(fields)), dtype=dtype)
            record[:] = [fill for _, fill in fields]
            if keep:
                record[:keep] = getattr(self, name)[:keep]
            setattr(self, name, record)
            for i, (field, _) in enumerate(fields):
                setattr(self, field, record[:, i])
        self._cap = capacity
        self._make_views()

    def _grow(self, capacity: int) -> None:
        """Reallocate everything at ``capacity``, keeping the first ``len(self)`` rows."""
        self._allocate(capacity, self._n)

    def _reserve(self, n: int) -> None:
        if n > self._cap:
            self._grow(max(n, 2 * self._cap))

    # ------------------------------------------------------------------ roster side

    def __len__(self) -> int:
        return self._n

    def __contains__(self, volunteer_id: object) -> bool:
        return volunteer_id in self._slot_of

    def slot(self, volunteer_id: str) -> int:
        """The slot of ``volunteer_id``.

        Raises:
            NotFound: the id was never added.
        """
        try:
            return self._slot_of[volunteer_id]
        except KeyError:
            raise NotFound(f"unknown volunteer {volunteer_id!r}") from None

    def slot_or_unknown(self, volunteer_id: str) -> int:
        """The slot of ``volunteer_id``, ``-1`` if unknown (``update`` says ``UNKNOWN``)."""
        return self._slot_of.get(volunteer_id, -1)

    def slots_of(self, volunteer_ids: Iterable[str]) -> IntpArray:
        """The slot of each id; ``-1`` for an unknown one, which ``update_batch`` reports as
        ``UNKNOWN``."""
        get = self._slot_of.get
        return np.fromiter((get(v, -1) for v in volunteer_ids), dtype=np.intp)

    def add(
        self,
        volunteer_id: str,
        *,
        mode: Mode,
        roles: int = 0,
        teams: int = 0,
        unit: int = -1,
        status: Status | None = None,
        situation: Situation | None = None,
    ) -> int:
        """Add a volunteer, or update the attributes of a known one; returns its slot.

        Re-adding keeps the slot, the position and (unless given) status and situation.

        Args:
            volunteer_id: a non-empty string.
            mode: how the volunteer travels.
            roles: bit set of :class:`~units.vocab.Role` (see :func:`units.vocab.mask_of`).
            teams: bit set of :class:`~units.vocab.Team`.
            unit: index of the volunteer's unit in the roster, ``-1`` for none.
            status: ``None`` keeps the current one (``off_duty`` for a new volunteer).
            situation: ``None`` keeps the current one (``patrol`` for a new volunteer).

        Raises:
            ValueError: an attribute is out of its vocabulary or range.
        """
        slots = self.add_many(
            [volunteer_id],
            mode=np.array([mode]),
            roles=np.array([roles]),
            teams=np.array([teams]),
            unit=np.array([unit]),
            status=None if status is None else np.array([status]),
            situation=None if situation is None else np.array([situation]),
        )
        return int(slots[0])

    def add_many(
        self,
        volunteer_ids: Sequence[str],
        *,
        mode: npt.ArrayLike,
        roles: npt.ArrayLike = 0,
        teams: npt.ArrayLike = 0,
        unit: npt.ArrayLike = -1,
        status: npt.ArrayLike | None = None,
        situation: npt.ArrayLike | None = None,
    ) -> IntpArray:
        """:meth:`add` for many volunteers at once (attributes are arrays or scalars).

        If an id appears twice, the later attributes win. Nothing is added if any attribute
        is invalid.

        Returns:
            The slot of each id.

        Raises:
            ValueError: an id is not a non-empty string, or an attribute is out of range.
        """
        m = len(volunteer_ids)
        mode_a = self._attr(mode, m, "mode", 0, len(Mode))
        roles_a = self._attr(roles, m, "roles", 0, _MAX_ROLES)
        teams_a = self._attr(teams, m, "teams", 0, _MAX_TEAMS)
        unit_a = self._attr(unit, m, "unit", -1, np.iinfo(np.int32).max)
        status_a = None if status is None else self._attr(status, m, "status", 0, len(Status))
        situation_a = (
            None if situation is None else self._attr(situation, m, "situation", 0, len(Situation))
        )
        for vid in volunteer_ids:
            if type(vid) is not str or not vid:
                raise ValueError(f"a volunteer id must be a non-empty string, got {vid!r}")
        slot_of = self._slot_of
        ids = self.ids
        n = self._n
        slots = []
        for vid in volunteer_ids:
            slot = slot_of.get(vid)
            if slot is None:
                slot = slot_of[vid] = n
                ids.append(vid)
                n += 1
            slots.append(slot)
        self._reserve(n)
        self._n = n
        where = np.array(slots, dtype=np.intp)
        was_mode = self._mode[where]
        was_status = self._status[where]
        self._mode[where] = mode_a
        self._roles[where] = roles_a
        self._teams[where] = teams_a
        self._unit[where] = unit_a
        if status_a is not None:
            self._status[where] = status_a
        self._rebucket(where, was_mode, was_status)
        if situation_a is not None:
            self._situation[where] = situation_a
        return where

    @staticmethod
    def _attr(
        value: npt.ArrayLike, m: int, name: str, low: int, high: int
    ) -> npt.NDArray[np.int64]:
        array_ = np.asarray(value)
        if array_.dtype.kind not in "iub":
            raise ValueError(f"{name} must be integers, got dtype {array_.dtype}")
        try:
            out = np.broadcast_to(array_.astype(np.int64), (m,))
        except ValueError:
            raise ValueError(f"{name} has shape {array_.shape}, expected ({m},)") from None
        if m and (out.min() < low or out.max() >= high):
            bad = out[(out < low) | (out >= high)][0]
            raise ValueError(f"{name} = {bad} is out of range [{low}, {high})")
        return out

    # ------------------------------------------------------------------ status

    def set_status(self, slot: int, status: Status) -> None:
        """Set the volunteer's effective status (see the module doc: the dispatch layer
        derives ``busy`` from assignments; the index stores what it is given).

        Raises:
            NotFound: no such slot.
            ValueError: ``status`` is not a :class:`~units.vocab.Status`.
        """
        self._check_slot(slot)
        new = Status(status)
        old = self._m_status[slot]
        self._m_status[slot] = new
        cell = self._m_cell[slot]
        if cell and (old == _AVAILABLE) != (new == _AVAILABLE):
            mode = self._m_mode[slot]
            self._leave(slot, cell, mode, available=old == _AVAILABLE)
            self._enter(slot, cell, mode, available=new == _AVAILABLE)

    def _rebucket(self, slots: IntpArray, was_mode: U8Array, was_status: U8Array) -> None:
        """After ``slots``' mode and status columns were written (a slot listed twice keeps
        its last values), move those with a fix whose tables changed (module doc)."""
        mode = self._mode[slots]
        available = self._status[slots] == _AVAILABLE
        was_available = was_status == _AVAILABLE
        moved = (was_available != available) | (available & (was_mode != mode))
        moved &= self._cell[slots] != 0
        if not moved.any():
            return
        at = moved.nonzero()[0]
        _, first = np.unique(slots[at], return_index=True)  # before-values: the first copy's
        m_cell = self._m_cell
        for i in at[first].tolist():
            slot = int(slots[i])
            cell = m_cell[slot]
            self._leave(slot, cell, int(was_mode[i]), available=bool(was_available[i]))
            self._enter(slot, cell, int(mode[i]), available=bool(available[i]))

    def _enter(self, slot: int, cell: int, mode: int, *, available: bool) -> None:
        """Put ``slot`` into ``cell``'s bucket of its table (its mode's when available). O(1)."""
        _bucket(self._by_mode[mode] if available else self._others, cell, slot, self._m_bpos)

    def _leave(self, slot: int, cell: int, mode: int, *, available: bool) -> None:
        """Take ``slot`` out of ``cell``'s bucket of its table (:meth:`_enter`'s). O(1)."""
        _unbucket(self._by_mode[mode] if available else self._others, cell, slot, self._m_bpos)

    def set_situation(self, slot: int, situation: Situation) -> None:
        """Where the volunteer is (decides the turnout delay).

        Raises:
            NotFound: no such slot.
            ValueError: ``situation`` is not a :class:`~geo.travel.Situation`.
        """
        self._check_slot(slot)
        self._situation[slot] = Situation(situation)

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self._n:
            raise NotFound(f"no volunteer in slot {slot}")

    # ------------------------------------------------------------------ columns

    @property
    def lat(self) -> FloatArray:
        """Latitude of the newest fix, NaN for none."""
        return self._view("_lat")

    @property
    def lon(self) -> FloatArray:
        """Longitude of the newest fix, NaN for none."""
        return self._view("_lon")

    @property
    def fixes(self) -> FloatArray:
        """The newest fix of every slot as one record, shape ``(len(self), 4)``: lat, lon,
        fix time, accuracy side by side (columns :data:`FIX_LAT`, ...). Read-only. One
        ``fixes.take(slots, axis=0)`` reads each volunteer's fix from one cache line."""
        return self._view("_fix")

    @property
    def attributes(self) -> U8Array:
        """``status``, ``situation``, ``roles`` and ``teams`` of every slot as one 4-byte
        record, shape ``(len(self), 4)`` (columns :data:`ATTR_STATUS`, ...). Read-only."""
        return self._view("_attrs")

    @property
    def attribute_words(self) -> npt.NDArray[np.uint32]:
        """:attr:`attributes` with each record as one 4-byte word, shape ``(len(self),)``:
        ``attribute_words.take(slots).view(np.uint8).reshape(-1, 4)`` gathers the records of
        ``slots`` in one pass. Read-only."""
        attributes = self.attributes  # first: it renews the cache when the length changed
        words = self._views.get("_words")
        if words is None:
            words = self._views["_words"] = attributes.view(np.uint32).reshape(-1)
        return words

    @property
    def fix_ts(self) -> FloatArray:
        """Time of the newest fix (epoch seconds), NaN for none."""
        return self._view("_ts")

    @property
    def accuracy_m(self) -> FloatArray:
        """Reported accuracy of the newest fix, metres; NaN for unknown."""
        return self._view("_acc")

    @property
    def cell(self) -> CellArray:
        """H3 cell (at ``res``) of the newest fix; 0 for none."""
        return self._view("_cell")

    @property
    def mode(self) -> U8Array:
        """:class:`~geo.modes.Mode` code."""
        return self._view("_mode")

    @property
    def status(self) -> U8Array:
        """Effective :class:`~units.vocab.Status` code."""
        return self._view("_status")

    @property
    def situation(self) -> U8Array:
        """:class:`~geo.travel.Situation` code."""
        return self._view("_situation")

    @property
    def roles(self) -> U8Array:
        """Bit set of :class:`~units.vocab.Role`."""
        return self._view("_roles")

    @property
    def teams(self) -> U8Array:
        """Bit set of :class:`~units.vocab.Team`."""
        return self._view("_teams")

    @property
    def unit(self) -> npt.NDArray[np.int32]:
        """Index of the volunteer's unit in the roster, -1 for none."""
        return self._view("_unit")

    # ------------------------------------------------------------------ fixes

    def update(
        self,
        slot: int,
        lat: float,
        lon: float,
        ts: float,
        now: float,
        accuracy_m: float = math.nan,
    ) -> FixOutcome:
        """Apply one fix. O(1): a few column writes and, if the cell changed, one bucket move.

        Args:
            slot: the volunteer's slot (``-1`` or out of range: ``UNKNOWN``).
            lat, lon: WGS84 degrees.
            ts: time of the fix, epoch seconds.
            now: the current time, epoch seconds.
            accuracy_m: reported accuracy, metres; NaN if unknown.

        Returns:
            ``ACCEPTED``, ``STALE``, ``FUTURE`` or ``UNKNOWN`` (see the module doc).

        Raises:
            CoordinateError: ``lat`` or ``lon`` is missing, not a number, NaN, infinite or out
                of range (nothing changes).
            InvalidInput: ``ts`` is not a finite number or ``accuracy_m`` is negative or
                infinite (nothing changes).
        """
        # Validation inline for plain floats; anything else goes through the full checks.
        if not (
            type(lat) is float
            and type(lon) is float
            and -90.0 <= lat <= 90.0
            and -180.0 <= lon <= 180.0
        ):
            lat, lon = check_latlon(lat, lon)
        if not (type(ts) is float and ts - ts == 0.0):  # inf - inf and NaN - NaN are NaN
            ts = _check_ts(ts)
        # NaN (unknown accuracy) passes: it is neither < 0 nor infinite
        if not (type(accuracy_m) is float and not accuracy_m < 0.0 and accuracy_m != _INF):
            accuracy_m = _check_accuracy(accuracy_m)
        if not 0 <= slot < self._n:
            return _UNKNOWN
        if ts > now + self.future_tolerance_s:
            return _FUTURE
        m_ts = self._m_ts
        if ts < m_ts[slot]:
            return _STALE
        m_ts[slot] = ts
        self._m_lat[slot] = lat
        self._m_lon[slot] = lon
        self._m_acc[slot] = accuracy_m
        dy = lat - self._m_clat[slot]
        dx = lon - self._m_clon[slot]
        a = self._m_ea[slot]
        # NaN (no fix, no ellipse yet) compares False: the exact path
        if not a * dx * dx + (self._m_eb[slot] * dx + self._m_ec[slot] * dy) * dy <= 1.0:
            cell = h3b.latlng_to_cell(lat, lon, self.res)
            if cell != self._m_cell[slot]:
                self._relocate(int(slot), cell)
            elif a != a:  # noqa: PLR0124 (NaN: seen twice in this cell, now worth an ellipse)
                self._set_ellipse(int(slot), cell)
        return _ACCEPTED

    def update_id(
        self,
        volunteer_id: str,
        lat: float,
        lon: float,
        ts: float,
        now: float,
        accuracy_m: float = math.nan,
    ) -> FixOutcome:
        """:meth:`update` by volunteer id; an unknown id is ``UNKNOWN`` (after validation).

        Raises:
            CoordinateError, InvalidInput: as :meth:`update`.
        """
        return self.update(self._slot_of.get(volunteer_id, -1), lat, lon, ts, now, accuracy_m)

    def update_batch(
        self,
        slots: IntpArray,
        lat: FloatArray,
        lon: FloatArray,
        ts: FloatArray,
        now: float,
        accuracy_m: FloatArray | None = None,
    ) -> U8Array:
        """Apply many fixes; the result equals applying them one at a time, in order.

        Vectorised: validation, the stale / future checks, the column writes and the
        inscribed-disk test run on whole arrays; only fixes that may have left their cell go
        through H3, one by one, and only volunteers that did leave it move between buckets.

        Args:
            slots: slot of each fix (``-1`` or out of range: ``UNKNOWN``); a volunteer may
                appear several times.
            lat, lon: WGS84 degrees.
            ts: time of each fix, epoch seconds.
            now: the current time, epoch seconds.
            accuracy_m: reported accuracy, metres (NaN: unknown); ``None`` for all unknown.

        Returns:
            The :class:`FixOutcome` code of each fix (``uint8``).

        Raises:
            CoordinateError: a coordinate is invalid; the field names the first bad index
                (``lat[3]``). Nothing of the batch is applied.
            InvalidInput: a ``ts`` is not finite or an accuracy is negative or infinite.
                Nothing is applied.
            ValueError: the arrays' lengths differ or ``slots`` is not an integer array.
        """
        slots_a = np.asarray(slots)
        if slots_a.ndim != 1 or (slots_a.dtype.kind not in "iu" and slots_a.size):
            raise ValueError(f"slots must be a 1-d integer array, got {slots_a.dtype}")
        slots_a = slots_a.astype(np.intp, copy=False)
        m = len(slots_a)
        lat_a, lon_a = check_latlon_arrays(lat, lon)
        ts_a = np.ascontiguousarray(ts, dtype=np.float64)
        acc_a = (
            np.full(m, math.nan)
            if accuracy_m is None
            else np.ascontiguousarray(accuracy_m, dtype=np.float64)
        )
        if not lat_a.shape == ts_a.shape == acc_a.shape == (m,):
            raise ValueError(
                f"slots, lat, lon, ts and accuracy_m must have one length, got {m}, "
                f"{lat_a.shape}, {lon_a.shape}, {ts_a.shape}, {acc_a.shape}"
            )
        bad_ts = ~np.isfinite(ts_a)
        if bad_ts.any():
            i = int(np.flatnonzero(bad_ts)[0])
            _check_ts(float(ts_a[i]), f"ts[{i}]")
        bad_acc = ~((acc_a >= 0.0) & (acc_a < _INF)) & ~np.isnan(acc_a)
        if bad_acc.any():
            i = int(np.flatnonzero(bad_acc)[0])
            _check_accuracy(float(acc_a[i]), f"accuracy_m[{i}]")

        out = np.zeros(m, dtype=np.uint8)  # ACCEPTED
        known = (slots_a >= 0) & (slots_a < self._n)
        out[~known] = _UNKNOWN
        future = known & (ts_a > now + self.future_tolerance_s)
        out[future] = _FUTURE
        todo = np.flatnonzero(known & ~future)
        if not todo.size:
            return out
        s = slots_a[todo]
        t = ts_a[todo]
        sorted_s = np.sort(s)
        if (sorted_s[1:] == sorted_s[:-1]).any():
            keep, stale = self._resolve_repeats(s, t)
            out[todo[stale]] = _STALE
            apply = todo[keep]
        else:
            stale_mask = t < self._ts[s]  # NaN (no fix yet) compares False: accepted
            out[todo[stale_mask]] = _STALE
            apply = todo[~stale_mask]
        self._apply(slots_a[apply], lat_a[apply], lon_a[apply], ts_a[apply], acc_a[apply])
        return out

    def _resolve_repeats(self, s: IntpArray, t: FloatArray) -> tuple[IntpArray, IntpArray]:
        """For fixes where some slot repeats: which to apply, which are stale.

        Applied in order, fix ``i`` is accepted iff ``t[i] >=`` the running maximum of the
        slot's stored ``fix_ts`` and of every earlier fix of the same slot in the batch. That
        is a segmented exclusive cumulative max: entries sorted (stably) by slot, the times
        replaced by their ranks, and each group's ranks offset by ``group * n_ranks`` so one
        ``maximum.accumulate`` cannot leak across groups. Of each slot's accepted fixes only
        the last is written (the others are overwritten when applied in order).

        Returns:
            ``(keep, stale)``: positions in ``s`` of the fixes to write (one per slot) and of
            the stale ones.
        """
        order = np.argsort(s, kind="stable")
        so = s[order]
        to = t[order]
        start = np.empty(len(so), dtype=np.bool_)
        start[0] = True
        np.not_equal(so[1:], so[:-1], out=start[1:])
        group = np.cumsum(start) - 1
        values, rank = np.unique(to, return_inverse=True)
        offset = group * len(values)
        running = values[np.maximum.accumulate(offset + rank) - offset]
        before = np.empty(len(so), dtype=np.float64)
        before[1:] = running[:-1]
        before[start] = -_INF
        stored = self._ts[so]
        threshold = np.fmax(before, stored)  # fmax: a NaN stored time (no fix) is ignored
        ok = to >= threshold
        ok_at = np.flatnonzero(ok)
        ok_group = group[ok_at]
        last = np.ones(len(ok_at), dtype=np.bool_)
        np.not_equal(ok_group[1:], ok_group[:-1], out=last[:-1])
        return order[ok_at[last]], order[~ok]

    def _apply(
        self, s: IntpArray, lat: FloatArray, lon: FloatArray, ts: FloatArray, acc: FloatArray
    ) -> None:
        """Write accepted fixes (one per slot) and move the slots that changed cell."""
        self._lat[s] = lat
        self._lon[s] = lon
        self._ts[s] = ts
        self._acc[s] = acc
        dy = lat - self._clat[s]
        dx = lon - self._clon[s]
        # NaN (no cell yet) compares False, so those take the exact path too.
        q = self._ea[s] * dx * dx + (self._eb[s] * dx + self._ec[s] * dy) * dy
        leaving = np.flatnonzero(~(q <= 1.0))
        if not leaving.size:
            return
        to_cell = h3b.latlng_to_cell
        res = self.res
        m_cell, m_bpos, m_status, m_mode = self._m_cell, self._m_bpos, self._m_status, self._m_mode
        by_mode, others = self._by_mode, self._others
        moved: list[int] = []
        stayed: list[int] = []
        stayed_in: list[int] = []
        for slot, a, o, has_ellipse in zip(
            s[leaving].tolist(),
            lat[leaving].tolist(),
            lon[leaving].tolist(),
            (~np.isnan(self._ea[s[leaving]])).tolist(),
            strict=True,
        ):
            cell = to_cell(a, o, res)
            old = m_cell[slot]
            if cell == old:
                if not has_ellipse:  # seen twice in this cell: now worth an ellipse
                    stayed.append(slot)
                    stayed_in.append(cell)
                continue
            # _relocate inlined: this loop is the whole cost of a batch where many move
            buckets = by_mode[m_mode[slot]] if m_status[slot] == _AVAILABLE else others
            if old:
                _unbucket(buckets, old, slot, m_bpos)
            _bucket(buckets, cell, slot, m_bpos)
            m_cell[slot] = cell
            moved.append(slot)
        if moved:
            self._ea[moved] = math.nan  # no ellipse until seen again in the new cell
        if stayed:
            self._set_ellipses(stayed, stayed_in, _ARM_BUDGET + len(s) // 8)

    def _set_ellipses(self, slots: list[int], cells: list[int], budget: int) -> None:
        """Arm the ellipses of many slots; each distinct cell is looked up once, and at most
        ``budget`` ellipses are computed (the other slots stay unarmed, which is only slower,
        and are armed by a later fix), so that arming at most doubles a batch's cost."""
        distinct, which = np.unique(np.array(cells, dtype=np.uint64), return_inverse=True)
        ellipses = self._ellipses
        rows = []
        armed = np.ones(len(distinct), dtype=np.bool_)
        for i, cell in enumerate(distinct.tolist()):
            found = ellipses.get(cell)
            if found is None:
                if budget:
                    budget -= 1
                    found = self._ellipse_of(cell)
                else:
                    armed[i] = False
                    found = _NO_ELLIPSE
            rows.append(found)
        table = np.array(rows, dtype=np.float64)[which]
        keep = armed[which]
        where = np.array(slots, dtype=np.intp)[keep]
        table = table[keep]
        self._clat[where] = table[:, 0]
        self._clon[where] = table[:, 1]
        self._ea[where] = table[:, 2]
        self._eb[where] = table[:, 3]
        self._ec[where] = table[:, 4]

    def _relocate(self, slot: int, cell: int) -> None:
        """Move ``slot`` into ``cell``'s bucket (swap-remove from its old one, which must be
        another cell); its safe ellipse waits until it is seen there again. O(1)."""
        old = self._m_cell[slot]
        available = self._m_status[slot] == _AVAILABLE
        if old:
            self._leave(slot, old, self._m_mode[slot], available=available)
        self._enter(slot, cell, self._m_mode[slot], available=available)
        self._m_cell[slot] = cell
        self._m_ea[slot] = math.nan  # no ellipse until the volunteer is seen here again

    def _ellipse_of(self, cell: int) -> tuple[float, float, float, float, float]:
        ellipses = self._ellipses
        found = ellipses.get(cell)
        if found is None:
            if len(ellipses) >= _ELLIPSE_CACHE_MAX:  # bounded: one costs ~5 µs to recompute
                ellipses.clear()
            found = ellipses[cell] = _safe_ellipse(cell)
        return found

    def _set_ellipse(self, slot: int, cell: int) -> None:
        clat, clon, a, b, c = self._ellipse_of(cell)
        self._m_clat[slot] = clat
        self._m_clon[slot] = clon
        self._m_ea[slot] = a
        self._m_eb[slot] = b
        self._m_ec[slot] = c

    # ------------------------------------------------------------------ queries

    def available_in_cells(self, cells: CellArray | Sequence[int]) -> IntpArray:
        """Every slot with status ``available`` whose newest fix lies in one of ``cells``.

        The hot path of ranking: one dict lookup per cell in each mode's table, then the
        non-empty buckets' buffers are joined into one ``intp`` array. A cell listed twice
        yields its slots twice.
        """
        return _joined(self._by_mode, cells)

    @property
    def available_buckets(self) -> int:
        """How many non-empty buckets the available fill (one per cell and mode)."""
        return sum(map(len, self._by_mode))

    def available_everywhere(self) -> IntpArray:
        """Every slot with status ``available`` and a fix, one bucket after another."""
        return _slots(b"".join(chain.from_iterable(t.values() for t in self._by_mode)))

    def available_by_mode(
        self, cells_per_mode: Sequence[CellArray | Sequence[int]]
    ) -> tuple[IntpArray, list[int]]:
        """The available of mode ``m`` whose newest fix lies in one of ``cells_per_mode[m]``,
        mode after mode, as one array, and how many each mode gave (ranking's query when
        each mode has its own reach)."""
        parts = [
            b"".join(filter(None, map(table.get, _cell_list(cells))))
            for table, cells in zip(self._by_mode, cells_per_mode, strict=False)
        ]
        itemsize = np.dtype(np.intp).itemsize
        counts = [len(part) // itemsize for part in parts]
        return _slots(b"".join(parts)), counts

    def slots_in_cells(self, cells: CellArray | Sequence[int]) -> IntpArray:
        """Every slot whose newest fix lies in one of ``cells``, whatever its status: the
        available first (as :meth:`available_in_cells`), then the others."""
        return _joined((*self._by_mode, self._others), cells)

    def near(self, lat: float, lon: float, radius_m: float) -> IntpArray:
        """Slots in the ``grid_disk`` around ``(lat, lon)`` that covers ``radius_m``.

        A superset of every volunteer whose newest fix is within ``radius_m`` (and no fix
        older than the freshness limit is filtered out: see :meth:`fresh_available`).

        Raises:
            CoordinateError: the point is invalid.
            ValueError: ``radius_m`` is negative or not finite.
        """
        centre = cell_of(lat, lon, self.res)
        return self.slots_in_cells(grid_disk(centre, disk_k_for_radius(centre, radius_m)))

    def fresh_available(self, slots: IntpArray, now: float) -> BoolArray:
        """For each slot: ``available`` and its newest fix no older than ``freshness_s``.

        Raises:
            IndexError: a slot is out of range.
        """
        slots_a = np.asarray(slots, dtype=np.intp)
        if slots_a.size and (slots_a.min() < 0 or slots_a.max() >= self._n):
            raise IndexError("slot out of range")
        fresh = now - self._ts[slots_a] <= self.freshness_s  # NaN (no fix) compares False
        return np.asarray(fresh & (self._status[slots_a] == Status.AVAILABLE))

    def positions(self) -> PositionSnapshot:
        """A snapshot of every fix for persistence (copied arrays, ids in slot order)."""
        have = np.flatnonzero(~np.isnan(self._ts[: self._n]))
        ids = self.ids
        return PositionSnapshot(
            ids=[ids[i] for i in have.tolist()],
            lat=self._lat[have],
            lon=self._lon[have],
            ts=self._ts[have],
            accuracy_m=self._acc[have],
        )

    def bucket_cells(self) -> CellArray:
        """Every cell that holds at least one volunteer (for coverage and diagnostics)."""
        cells = set(self._others).union(*self._by_mode)
        return np.fromiter(cells, dtype=np.uint64, count=len(cells))

    def bucket(self, cell: int, *, available: bool, mode: Mode | None = None) -> IntpArray:
        """The slots of one cell's bucket of the available of one ``mode`` (of every mode,
        one bucket after another, when ``None``) or of the others, in bucket order (a copy;
        empty for an empty cell).

        Raises:
            ValueError: a ``mode`` for the others (only the available have mode tables).
        """
        if mode is not None and not available:
            raise ValueError("only the available are bucketed by mode")
        if not available:
            tables: Sequence[_Buckets] = (self._others,)
        else:
            tables = self._by_mode if mode is None else (self._by_mode[mode],)
        return _joined(tables, [int(cell)]).copy()


def _cell_list(cells: CellArray | Sequence[int]) -> list[int]:
    return cells.tolist() if isinstance(cells, np.ndarray) else [int(c) for c in cells]


def _joined(tables: Sequence[_Buckets], cells: CellArray | Sequence[int]) -> IntpArray:
    """The slots of ``cells``' buckets in each of ``tables``, table after table, joined into
    one ``intp`` array."""
    cell_list = _cell_list(cells)
    # filter(None, ...) drops the cells without a bucket (None) and the empty buckets
    return _slots(
        b"".join(chain.from_iterable(filter(None, map(table.get, cell_list)) for table in tables))
    )


def _slots(joined: bytes) -> IntpArray:
    """Joined bucket buffers as an ``intp`` array (read-only, a view of the bytes)."""
    return np.frombuffer(joined, dtype=np.intp) if joined else np.empty(0, dtype=np.intp)
