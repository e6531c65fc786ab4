"""Keyed random numbers: a draw depends on what it is for, never on when it is asked.

Theory of operation
-------------------
Common random numbers make two scenarios comparable: the incident that volunteer ``v`` is
offered in replication ``r`` must get the same "accept after 14 s" in the baseline and in the
scenario with ten new units, even though the scenario asks for it at another moment, in
another order, among other offers. A sequential generator cannot promise that (one extra draw
shifts every later one); a *counter-based* one can: each draw is a pure function of its key.

The key is a tuple of integers (seed, replication, stream, incident ordinal, volunteer key)
folded with SplitMix64's finaliser (Steele, Lea and Flood 2014: a bijection of 64-bit words
whose output passes BigCrush); the ``i``-th uniform of a key is the finaliser of ``key + i x
golden gamma``. :func:`uniforms` is the scalar form (a few microseconds, for one offer);
:func:`uniforms_array` is the numpy form (uint64 arithmetic wraps, as the finaliser wants)
for a draw per volunteer at once. Both give the same numbers for the same key.

A volunteer's key is a 64-bit BLAKE2b digest of their id (:func:`id_key`), never Python's
``hash()``, which is salted per process. Uniforms lie in ``(0, 1)`` (open both ends: the
inverse normal CDF may take any of them).

Random numbers that belong to no pair (the incident stream) come from a numpy
``Generator`` seeded by :func:`generator`, which is keyed the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["Stream", "generator", "id_key", "id_keys", "key_of", "uniforms", "uniforms_array"]

_MASK: Final = (1 << 64) - 1
_GAMMA: Final = 0x9E3779B97F4A7C15
_M1: Final = 0xBF58476D1CE4E5B9
_M2: Final = 0x94D049BB133111EB
_UNIT: Final = 2.0**-53

U64 = npt.NDArray[np.uint64]


class Stream:
    """Stream numbers: one per kind of draw, so that two kinds never share a key."""

    INCIDENTS: Final = 1
    ANSWER: Final = 2
    ACCEPTANCE: Final = 3
    SHIFT: Final = 4
    SERVICE: Final = 5
    UNIT_PROFILE: Final = 6


def _mix(z: int) -> int:
    z = (z + _GAMMA) & _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def key_of(*parts: int) -> int:
    """Fold integers (any sign, any size mod 2**64) into one 64-bit key.

    Args:
        parts: the key's components, e.g. ``(seed, replication, Stream.ANSWER, k, v)``.
    """
    h = 0
    for part in parts:
        h = _mix(h ^ (part & _MASK))
    return h


def uniforms(key: int, n: int) -> list[float]:
    """``n`` uniforms in ``(0, 1)`` that depend only on ``key``.

    Args:
        key: a 64-bit key from :func:`key_of`.
        n: how many.
    """
    return [((_mix((key + i * _GAMMA) & _MASK) >> 11) + 0.5) * _UNIT for i in range(n)]


def _mix_array(z: U64) -> U64:
    z = z + np.uint64(_GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def uniforms_array(keys: U64, *parts: int, n: int = 1) -> npt.NDArray[np.float64]:
    """For each key ``k``: the uniforms of ``key_of(*parts, k)``, shape ``(len(keys), n)``.

    The same numbers as ``uniforms(key_of(*parts, k), n)`` for every ``k``.

    Args:
        keys: one 64-bit key per item (e.g. per volunteer, from :func:`id_key`).
        parts: the common leading components of the key.
        n: uniforms per item.
    """
    prefix = key_of(*parts) if parts else 0
    with np.errstate(over="ignore"):
        h = _mix_array(np.uint64(prefix) ^ np.asarray(keys, dtype=np.uint64))
        steps = (np.arange(n, dtype=np.uint64) * np.uint64(_GAMMA))[None, :]
        bits = _mix_array(h[:, None] + steps) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) * _UNIT


def id_key(text: str) -> int:
    """A stable 64-bit key of a string id (BLAKE2b; not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def id_keys(ids: Sequence[str]) -> U64:
    """:func:`id_key` of each id, as a uint64 array."""
    return np.fromiter((id_key(i) for i in ids), dtype=np.uint64, count=len(ids))


def generator(*parts: int) -> np.random.Generator:
    """A numpy generator seeded by ``parts`` (for draws that belong to no pair)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([p & _MASK for p in parts])))
