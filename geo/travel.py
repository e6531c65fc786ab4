"""Travel time: "seconds from these origins to this point, by mode".

A :class:`TravelModel` answers for many origins at once (numpy arrays in, a float64 array out)
because ranking asks it once per incident for every volunteer in reach. Two implementations:

* :class:`CrowFlyModel` (here): haversine distance x circuity / speed, per mode;
* :class:`geo.roads.RoadModel`: shortest paths on a road graph.

Both add the volunteer's *turnout*: the time from the alert to leaving, which depends on where
the volunteer is (:class:`Situation`): nothing for a volunteer already on patrol, 1:45 at home
(the median of smartphone-alerted responder studies). Times above ``limit_s`` come back as
``inf``, so a bounded search never has to pretend it knows a time it did not compute.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from geo.coords import check_latlon
from geo.modes import CROW_FLY_SPEED_MS, DEFAULT_CIRCUITY, Mode

__all__ = [
    "CrowFlyModel",
    "FloatArray",
    "ModeArray",
    "Situation",
    "TravelModel",
    "Turnout",
    "earth_radius_m",
    "haversine_m",
]

FloatArray = npt.NDArray[np.float64]
#: Mode codes (:class:`~geo.modes.Mode` values) as ``uint8``.
ModeArray = npt.NDArray[np.uint8]
#: Situation codes (:class:`Situation` values) as ``uint8``.
SituationArray = npt.NDArray[np.uint8]

_WGS84_A: Final = 6_378_137.0
_WGS84_E2: Final = 6.694_379_990_14e-3
_GAUSS_POLAR: Final = _WGS84_A * math.sqrt(1.0 - _WGS84_E2)  # sqrt(MN) = this / (1 - e2 sin2)


class Situation(enum.IntEnum):
    """Where a volunteer is when the alert arrives; decides the turnout delay."""

    PATROL = 0  # on patrol or on a post: already moving, dressed, equipped
    HOME = 1
    WORK = 2
    NIGHT = 3  # at home at night (median alert-to-leaving 2:22 in the studies)


#: Median alert-to-leaving, seconds (reference/README.md: 1:45, 2:22 at night).
DEFAULT_TURNOUT_S: Final[dict[Situation, float]] = {
    Situation.PATROL: 0.0,
    Situation.HOME: 105.0,
    Situation.WORK: 120.0,
    Situation.NIGHT: 142.0,
}


@dataclass(frozen=True, slots=True)
class Turnout:
    """Turnout delay by situation, seconds. ``Turnout.none()`` for pure travel times."""

    seconds: Mapping[Situation, float] = field(default_factory=lambda: dict(DEFAULT_TURNOUT_S))

    def __post_init__(self) -> None:
        for situation, value in self.seconds.items():
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"turnout for {situation.name.lower()} must be >= 0, got {value}")

    @classmethod
    def none(cls) -> Turnout:
        """No turnout at all: everyone is treated as already on the move."""
        return cls(dict.fromkeys(Situation, 0.0))

    def table(self) -> FloatArray:
        """Seconds indexed by situation code (missing situations count as 0)."""
        out = np.zeros(len(Situation), dtype=np.float64)
        for situation, value in self.seconds.items():
            out[int(situation)] = value
        return out

    def delays(self, situations: SituationArray | None, n: int) -> FloatArray:
        """Turnout per origin; ``None`` means every origin is on patrol (no delay)."""
        if situations is None:
            return np.zeros(n, dtype=np.float64)
        return self.table()[situations]


@runtime_checkable
class TravelModel(Protocol):
    """Seconds from many origins to one destination, by mode, turnout included."""

    @property
    def name(self) -> str:
        """Short name for manifests and logs (``crow-fly``, ``road``)."""
        ...

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
        """Seconds from each origin to the destination.

        Args:
            lat, lon: origins, validated float64 arrays of equal length.
            modes: each origin's :class:`~geo.modes.Mode` code.
            dest_lat, dest_lon: the destination.
            situations: each origin's :class:`Situation` code; ``None`` = all on patrol.
            limit_s: times above this are returned as ``inf`` (the model may stop searching);
                ``None`` means the model's own horizon (unbounded for crow-fly, 600 s for
                the road model).

        Raises:
            CoordinateError: the destination is invalid.
        """
        ...

    def max_reach_m(self, seconds: float) -> float:
        """An upper bound on the straight-line distance any origin covers in ``seconds``.

        Ranking sizes its ``grid_disk`` with it: nobody farther away can arrive in time.
        """
        ...


def earth_radius_m(lat: FloatArray | float) -> FloatArray:
    """Gaussian radius of curvature of the WGS84 ellipsoid at latitude ``lat``, metres.

    The geometric mean of the meridional (M) and prime-vertical (N) radii: the sphere that
    osculates the ellipsoid at ``lat`` on average over all directions.
    """
    s2 = np.sin(np.radians(lat)) ** 2
    return np.asarray(_GAUSS_POLAR / (1.0 - _WGS84_E2 * s2))


def haversine_m(
    lat: FloatArray | float, lon: FloatArray | float, lat0: float, lon0: float
) -> FloatArray:
    """Distance in metres from each ``(lat, lon)`` to ``(lat0, lon0)``.

    Haversine on the sphere of :func:`earth_radius_m` at each pair's mean latitude. A single
    global radius cannot get within 0.5% of the WGS84 geodesic everywhere (M is 6,335 km at
    the equator and 6,400 km at the poles: +-0.56% with the mean radius); this one stays within
    0.34% for any pair (checked against ``pyproj.Geod`` in the tests).

    Ranking computes it for every volunteer in reach, so it costs three transcendental calls
    an element, not five: from ``s = sin(Δφ/2)`` and ``c = cos(Δφ/2) = sqrt(1 - s²)`` (the
    half-difference lies within ±90°), ``cos φ = cos φ0 (1 - 2s²) - sin φ0 · 2sc`` and the
    mean latitude's ``sin((φ + φ0)/2) = sin φ0 c + cos φ0 s``; then ``sin(Δλ/2)`` and the
    ``arcsin``; in place wherever an array can be reused.
    """
    if (  # ranking's case, without the few microseconds of the general one
        isinstance(lat, np.ndarray)
        and isinstance(lon, np.ndarray)
        and lat.dtype == lon.dtype == np.float64
        and lat.ndim == 1
        and lat.shape == lon.shape
    ):
        lat_a, lon_a, shape = lat, lon, lat.shape
    else:
        lat_a, lon_a = np.broadcast_arrays(
            np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        )
        shape = lat_a.shape
        lat_a, lon_a = np.atleast_1d(lat_a), np.atleast_1d(lon_a)
    phi0 = math.radians(lat0)
    sin0, cos0 = math.sin(phi0), math.cos(phi0)
    s = lat_a - lat0
    s *= math.pi / 360.0
    np.sin(s, out=s)
    s2 = s * s
    c = 1.0 - s2
    np.sqrt(c, out=c)
    mean = c * sin0
    c *= s  # s·c from here on
    c *= 2.0 * sin0
    cos_phi = s2 * (-2.0 * cos0)
    cos_phi += cos0
    cos_phi -= c
    s *= cos0
    mean += s
    mean *= mean  # sin² of the mean latitude
    h = lon_a - lon0
    h *= math.pi / 360.0
    np.sin(h, out=h)
    h *= h
    h *= cos_phi
    h *= cos0
    h += s2
    np.minimum(h, 1.0, out=h)
    np.sqrt(h, out=h)
    np.arcsin(h, out=h)
    mean *= -_WGS84_E2
    mean += 1.0
    np.divide(2.0 * _GAUSS_POLAR, mean, out=mean)  # twice the radius
    h *= mean
    return h.reshape(shape)


class CrowFlyModel:
    """Haversine x circuity / speed, per mode, plus turnout.

    Besides the :class:`TravelModel` protocol it offers the two optional capabilities that
    ranking uses when a model has them (``dispatch.core.ranking.ReachByMode`` and
    ``DistanceByProduct``): each mode's own reach, so a walker beyond a walker's reach is
    dropped before any trigonometry, and the distances it computed on the way to the times.

    Args:
        speeds_ms: speed per mode, m/s (defaults: :data:`geo.modes.CROW_FLY_SPEED_MS`).
        circuity: road distance / straight-line distance per mode (default 1.3).
        turnout: delay by situation (default: the responder studies' medians).
    """

    def __init__(
        self,
        speeds_ms: Mapping[Mode, float] | None = None,
        circuity: Mapping[Mode, float] | None = None,
        turnout: Turnout | None = None,
    ) -> None:
        speeds = {**CROW_FLY_SPEED_MS, **(speeds_ms or {})}
        circ = {**DEFAULT_CIRCUITY, **(circuity or {})}
        for mode in Mode:
            if not (np.isfinite(speeds[mode]) and speeds[mode] > 0):
                raise ValueError(f"speed for {mode.wire} must be > 0, got {speeds[mode]}")
            if not (np.isfinite(circ[mode]) and circ[mode] >= 1):
                raise ValueError(f"circuity for {mode.wire} must be >= 1, got {circ[mode]}")
        # seconds per straight-line metre, indexed by mode code: one gather per query
        self._pace = np.array([circ[m] / speeds[m] for m in Mode], dtype=np.float64)
        self._pace.flags.writeable = False
        self._max_speed = max(speeds[m] / circ[m] for m in Mode)
        self._turnout = turnout or Turnout()
        self._turnout_table = self._turnout.table()

    @property
    def name(self) -> str:
        return "crow-fly"

    @property
    def turnout(self) -> Turnout:
        """The turnout delays this model adds (fixed at construction)."""
        return self._turnout

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
        return self.seconds_and_distances_to(
            lat, lon, modes, dest_lat, dest_lon, situations=situations, limit_s=limit_s
        )[0]

    def seconds_and_distances_to(
        self,
        lat: FloatArray,
        lon: FloatArray,
        modes: ModeArray,
        dest_lat: float,
        dest_lon: float,
        *,
        situations: SituationArray | None = None,
        limit_s: float | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """:meth:`seconds_to` and the haversine distances (metres) it was computed from."""
        dest_lat, dest_lon = check_latlon(dest_lat, dest_lon, "destination.")
        distance = haversine_m(lat, lon, dest_lat, dest_lon)
        seconds = distance * self._pace[modes]
        if situations is not None:
            seconds += self._turnout_table[situations]
        if limit_s is not None:
            seconds[seconds > limit_s] = np.inf
        return seconds, distance

    def max_reach_m(self, seconds: float) -> float:
        return max(0.0, seconds) * self._max_speed

    def max_reach_by_mode_m(self, seconds: float) -> FloatArray:
        """Straight-line metres each mode covers in ``seconds`` (turnout only shortens it),
        indexed by :class:`~geo.modes.Mode` code."""
        return np.asarray(max(0.0, seconds) / self._pace)
