"""The contract's vocabulary: roles (六员), teams, modes, volunteer status.

Names are the wire names of ``CONTRACT.md``; the enum values are the small integer codes used
in numpy columns and bitmasks (a volunteer's roles and teams are ``uint8`` bit sets).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final, TypeVar

from geo.modes import MODE_NAMES, Mode

__all__ = [
    "MODE_NAMES",
    "ROLE_NAMES",
    "STATUS_NAMES",
    "TEAM_NAMES",
    "Mode",
    "Role",
    "Status",
    "Team",
    "mask_of",
    "names_of",
]


class Role(enum.IntEnum):
    """The six duties (六员)."""

    PATROL = 0  # 治安防范员: patrol and prevention
    HAZARD_INSPECTOR = 1  # 隐患排查员
    MEDIATOR = 2  # 矛盾调解员
    LEGAL_OUTREACH = 3  # 法制宣传员
    SCHOOL_GUARD = 4  # 护校岗
    COMMUNITY_LIAISON = 5  # 关爱弱势群体、收集社情民意

    @property
    def wire(self) -> str:
        return self.name.lower()


class Team(enum.IntEnum):
    """The specialised teams (义警队)."""

    RESCUE = 0  # 救援义警队
    WOMEN = 1  # 巾帼义警队
    YOUTH = 2  # 青年义警队
    MEDIATION_ROOM = 3  # 义警调解室
    VETERANS = 4  # 老兵义警队
    WATCH = 5  # 守望员义警队

    @property
    def wire(self) -> str:
        return self.name.lower()


class Status(enum.IntEnum):
    """A volunteer's availability; ``busy`` is derived from an accepted assignment."""

    AVAILABLE = 0
    OFF_DUTY = 1
    BUSY = 2

    @property
    def wire(self) -> str:
        return self.name.lower()


ROLE_NAMES: Final = tuple(r.wire for r in Role)
TEAM_NAMES: Final = tuple(t.wire for t in Team)
STATUS_NAMES: Final = tuple(s.wire for s in Status)

_E = TypeVar("_E", Role, Team)


def mask_of(kind: type[_E], names: Iterable[str]) -> int:
    """Bit set of the named members of ``kind``.

    Raises:
        ValueError: a name is not in the vocabulary (the message lists the valid ones).
    """
    mask = 0
    for name in names:
        try:
            mask |= 1 << kind[name.upper()].value
        except KeyError:
            valid = ", ".join(m.name.lower() for m in kind)
            raise ValueError(
                f"unknown {kind.__name__.lower()} {name!r}; expected one of {valid}"
            ) from None
    return mask


def names_of(kind: type[_E], mask: int) -> list[str]:
    """The wire names in a bit set, in vocabulary order."""
    return [m.name.lower() for m in kind if mask >> m.value & 1]
