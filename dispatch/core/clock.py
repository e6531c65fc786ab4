"""Injected time, and the wire format of timestamps.

Theory of operation
-------------------
The core never reads the time itself: whoever drives it (the server's timer loop, the
day simulator, a test) passes a :class:`Clock` and the core asks ``clock.now()``. Offer
timeouts, freshness limits and escalation therefore run in virtual time under a
:class:`FakeClock`: a test jumps 450 seconds with ``clock.advance(450)`` and never sleeps
(trio's ``MockClock`` is the model).

Time is epoch seconds as a ``float``: the unit of every timestamp the engine stores,
compares and ships. :func:`to_iso` and :func:`parse_iso` convert at the edge to the contract's
ISO 8601 strings, which always carry a zone: out, UTC with ``Z`` (``2026-11-29T08:00:00Z``);
in, any offset (``2026-11-29T16:00:00+08:00`` is the same instant). A string without a zone is
refused rather than guessed, because a volunteer's phone in local time (UTC+8) and a gateway in
UTC would otherwise disagree by eight hours.
"""

from __future__ import annotations

import functools
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from dispatch.errors import InvalidInput

__all__ = ["Clock", "FakeClock", "SystemClock", "parse_iso", "to_iso"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_FAST_UNTIL_MS: Final = 253_402_300_800_000  # 10000-01-01T00:00:00Z


class Clock(Protocol):
    """Where the core gets the current time."""

    def now(self) -> float:
        """The current time, epoch seconds (UTC)."""
        ...


class SystemClock:
    """The wall clock: :func:`time.time`.

    Wall-clock time, not :func:`time.monotonic`, on purpose: timestamps such as an offer's
    ``expires_at`` are stored, shared between server processes (one Redis, several instances)
    and shown to people, so they must mean the same instant everywhere; a monotonic clock is
    private to one process. The price is that the wall clock may step when NTP corrects it;
    callers that wait for a deadline should compare against ``now()`` each time they wake
    rather than trust a sleep's length.
    """

    def now(self) -> float:
        """The current time, epoch seconds (UTC)."""
        return time.time()


class FakeClock:
    """A clock that moves only when told to: for tests and the day simulator.

    Time never goes back, as with the real clock between two reads.

    Args:
        start: the initial time, epoch seconds.

    Raises:
        ValueError: ``start`` is NaN or infinite.
    """

    def __init__(self, start: float) -> None:
        self._now = _finite(start, "start")

    def now(self) -> float:
        """The current virtual time, epoch seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (0 is allowed).

        Args:
            seconds: how far to move, in seconds.

        Returns:
            The new time.

        Raises:
            ValueError: ``seconds`` is negative, NaN or infinite.
        """
        step = _finite(seconds, "seconds")
        if step < 0:
            raise ValueError(f"cannot advance a clock by a negative time ({step} s)")
        self._now += step
        return self._now

    def set(self, t: float) -> None:
        """Move the clock to the instant ``t`` (the current time is allowed).

        Args:
            t: the new time, epoch seconds.

        Raises:
            ValueError: ``t`` is earlier than the current time, NaN or infinite.
        """
        target = _finite(t, "t")
        if target < self._now:
            raise ValueError(f"cannot set a clock back from {self._now} to {target}")
        self._now = target

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"


def _finite(value: float, name: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


@functools.lru_cache(maxsize=4096)
def to_iso(ts: float) -> str:
    """The contract's form of an epoch timestamp: ISO 8601 in UTC with ``Z``.

    Whole seconds print without a fraction (``2026-11-29T08:00:00Z``); otherwise the time is
    rounded to the millisecond (``2026-11-29T08:00:00.250Z``), which every client (the
    mini-program's JavaScript ``Date`` included) parses exactly.

    Args:
        ts: epoch seconds.

    Returns:
        The ISO 8601 string.

    Raises:
        ValueError: ``ts`` is NaN, infinite, or outside the years 1-9999.
    """
    seconds = _finite(ts, "ts")
    millis = round(seconds * 1000)
    if 0 <= millis < _FAST_UNTIL_MS:  # 1970-9999: the C library formats it, 2x faster
        whole, fraction = divmod(millis, 1000)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        return f"{text}.{fraction:03d}Z" if fraction else f"{text}Z"
    try:
        moment = _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise ValueError(f"timestamp {seconds} is outside the years 1-9999") from None
    text = moment.replace(tzinfo=None, microsecond=0).isoformat()
    fraction = millis % 1000
    return f"{text}.{fraction:03d}Z" if fraction else f"{text}Z"


def parse_iso(text: object, field: str = "ts") -> float:
    """Epoch seconds of an ISO 8601 timestamp that carries a zone.

    Accepts ``Z`` or a numeric offset (``+08:00``), with or without fractional seconds.

    Args:
        text: the value received; anything but a string is refused.
        field: the name of the field it came from, for the error (e.g. ``positions[3].ts``).

    Returns:
        Epoch seconds (UTC).

    Raises:
        InvalidInput: ``text`` is not a string, not an ISO 8601 date-time, or has no zone;
            ``field`` is set and named in the message.
    """
    if not isinstance(text, str):
        raise InvalidInput(
            f"{field} must be an ISO 8601 string, got {type(text).__name__}", field=field
        )
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{field} is not an ISO 8601 date-time: {text[:40]!r}", field=field
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(
            f"{field} has no zone: {text[:40]!r} (add 'Z' or an offset such as '+08:00')",
            field=field,
        )
    return moment.timestamp()
