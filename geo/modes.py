"""Travel modes and their default speeds.

Modes are small integers on the hot path (a ``uint8`` column in the live index); their names
are the contract's vocabulary (``walk``, ``bike``, ``ebike``, ``car``).
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "CROW_FLY_SPEED_MS",
    "DEFAULT_CIRCUITY",
    "MODE_NAMES",
    "ROAD_CLASSES",
    "ROAD_SPEED_KMH",
    "Mode",
]


class Mode(enum.IntEnum):
    """How a volunteer travels. The value is the column code in numpy arrays."""

    WALK = 0
    BIKE = 1
    EBIKE = 2
    CAR = 3

    @property
    def wire(self) -> str:
        """The contract's name for this mode."""
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Mode:
        """The mode named ``name`` in the contract's vocabulary.

        Raises:
            ValueError: ``name`` is not one of ``walk``, ``bike``, ``ebike``, ``car``.
        """
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(
                f"unknown mode {name!r}; expected one of {', '.join(MODE_NAMES)}"
            ) from None


MODE_NAMES: Final = tuple(m.wire for m in Mode)

#: Door-to-door effective speeds for the crow-fly model, m/s, before circuity.
#: walk: 2.3 m/s is the median speed of smartphone-alerted responders on foot (they hurry);
#: bike 15 km/h; ebike 25 km/h (the national e-bike limit, GB 17761-2018); car 45 km/h, a
#: rural mix of county and village roads.
CROW_FLY_SPEED_MS: Final[dict[Mode, float]] = {
    Mode.WALK: 2.3,
    Mode.BIKE: 15 / 3.6,
    Mode.EBIKE: 25 / 3.6,
    Mode.CAR: 45 / 3.6,
}

#: Road distance / straight-line distance. 1.3 is a fair rural default (1.2 in cities, 1.34
#: averaged over 300 European cities). Tune per mode in the travel model.
DEFAULT_CIRCUITY: Final[dict[Mode, float]] = {
    Mode.WALK: 1.3,
    Mode.BIKE: 1.3,
    Mode.EBIKE: 1.3,
    Mode.CAR: 1.3,
}


#: Road classes of the county dataset, fastest first.
ROAD_CLASSES: Final = ("provincial", "county", "township", "village")

_WALK_KMH: Final = 2.3 * 3.6  # hurrying responders on foot, whatever the road

#: Default speed per road class and mode, km/h (0 would mean "not allowed"). Cars: design
#: speeds of China's highway classes, reduced for mixed rural traffic (provincial class-II
#: road 70, county 55, township 45, village lanes 30). Two-wheelers keep their own pace but
#: slow down on narrow village lanes.
ROAD_SPEED_KMH: Final[dict[str, dict[Mode, float]]] = {
    "provincial": {Mode.WALK: _WALK_KMH, Mode.BIKE: 16.0, Mode.EBIKE: 25.0, Mode.CAR: 70.0},
    "county": {Mode.WALK: _WALK_KMH, Mode.BIKE: 16.0, Mode.EBIKE: 25.0, Mode.CAR: 55.0},
    "township": {Mode.WALK: _WALK_KMH, Mode.BIKE: 15.0, Mode.EBIKE: 24.0, Mode.CAR: 45.0},
    "village": {Mode.WALK: _WALK_KMH, Mode.BIKE: 13.0, Mode.EBIKE: 20.0, Mode.CAR: 30.0},
}
