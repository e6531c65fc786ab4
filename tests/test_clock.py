"""The injected clock and the wire format of timestamps."""

from __future__ import annotations

import calendar
import math
import time

import pytest

from dispatch.core.clock import Clock, FakeClock, SystemClock, parse_iso, to_iso
from dispatch.errors import InvalidInput

# 2026-11-29T08:00:00Z, computed independently of the module under test.
T0 = float(calendar.timegm((2026, 11, 29, 8, 0, 0, 0, 0, 0)))


def test_t0_is_what_the_contract_example_says() -> None:
    assert T0 == 1_795_939_200.0


# --- FakeClock ------------------------------------------------------------------------------


def test_fake_clock_starts_where_told_and_stands_still() -> None:
    clock = FakeClock(T0)
    assert clock.now() == T0
    assert clock.now() == T0


def test_advance_moves_forward_and_returns_the_new_time() -> None:
    clock = FakeClock(T0)
    assert clock.advance(450) == T0 + 450
    assert clock.now() == T0 + 450
    clock.advance(0.25)
    assert clock.now() == T0 + 450.25
    clock.advance(0)
    assert clock.now() == T0 + 450.25


@pytest.mark.parametrize("seconds", [-1, -0.001, math.nan, math.inf, -math.inf])
def test_advance_rejects_negative_and_non_finite(seconds: float) -> None:
    clock = FakeClock(T0)
    with pytest.raises(ValueError, match=r"negative|finite"):
        clock.advance(seconds)
    assert clock.now() == T0


def test_set_moves_to_an_instant_and_allows_the_current_one() -> None:
    clock = FakeClock(T0)
    clock.set(T0 + 60)
    assert clock.now() == T0 + 60
    clock.set(T0 + 60)
    assert clock.now() == T0 + 60


def test_set_rejects_going_back() -> None:
    clock = FakeClock(T0)
    clock.advance(10)
    with pytest.raises(ValueError, match="back"):
        clock.set(T0 + 9.999)
    assert clock.now() == T0 + 10


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_set_and_start_reject_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        FakeClock(T0).set(bad)
    with pytest.raises(ValueError, match="finite"):
        FakeClock(bad)


def test_both_clocks_satisfy_the_protocol() -> None:
    clocks: list[Clock] = [FakeClock(T0), SystemClock()]
    assert clocks[0].now() == T0
    before = time.time()
    assert before <= clocks[1].now() <= time.time()


def test_fake_clock_repr_shows_the_time() -> None:
    assert repr(FakeClock(T0)) == f"FakeClock({T0!r})"


# --- ISO 8601 -------------------------------------------------------------------------------


def test_to_iso_is_utc_with_z() -> None:
    assert to_iso(T0) == "2026-11-29T08:00:00Z"


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (T0 + 0.25, "2026-11-29T08:00:00.250Z"),
        (T0 + 0.001, "2026-11-29T08:00:00.001Z"),
        (T0 + 0.0004, "2026-11-29T08:00:00Z"),  # rounded to the millisecond
        (T0 + 0.9996, "2026-11-29T08:00:01Z"),
        (0.0, "1970-01-01T00:00:00Z"),
        (-1.5, "1969-12-31T23:59:58.500Z"),
    ],
)
def test_to_iso_fractions(ts: float, text: str) -> None:
    assert to_iso(ts) == text


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e20])
def test_to_iso_rejects_what_has_no_date(bad: float) -> None:
    with pytest.raises(ValueError, match=r"ts|timestamp"):
        to_iso(bad)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29T08:00:00Z",
        "2026-11-29T08:00:00+00:00",
        "2026-11-29T16:00:00+08:00",
        "2026-11-29T16:00:00.000+08:00",
        "2026-11-29T03:00:00-05:00",
        "2026-11-29T13:45:00+05:45",
        "2026-11-30T00:00:00+16:00",
    ],
)
def test_parse_iso_accepts_any_offset(text: str) -> None:
    assert parse_iso(text) == T0


def test_offset_and_z_forms_are_the_same_instant() -> None:
    assert parse_iso("2026-11-29T16:00:00+08:00") == parse_iso("2026-11-29T08:00:00Z")


@pytest.mark.parametrize(
    "ts", [T0, T0 + 0.5, T0 + 0.123, T0 - 86_400 * 365.25 * 10 + 0.007, 0.0, -1.5]
)
def test_round_trip(ts: float) -> None:
    assert parse_iso(to_iso(ts)) == ts


def test_round_trip_through_an_offset() -> None:
    assert to_iso(parse_iso("2026-11-29T16:00:00.250+08:00")) == "2026-11-29T08:00:00.250Z"


@pytest.mark.parametrize(
    "naive", ["2026-11-29T08:00:00", "2026-11-29T08:00:00.500", "2026-11-29 08:00", "2026-11-29"]
)
def test_a_string_without_a_zone_is_refused_naming_the_field(naive: str) -> None:
    with pytest.raises(InvalidInput, match=r"positions\[3\]\.ts has no zone") as info:
        parse_iso(naive, field="positions[3].ts")
    assert info.value.field == "positions[3].ts"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-11-29T25:00:00Z",
        "2026-11-29T08:00:00+25:00",
        "29/11/2026 08:00",
        "2026-11-29T08:00:00ZZ",
        "x" * 10_000,
    ],
)
def test_garbage_is_refused_naming_the_field(garbage: str) -> None:
    with pytest.raises(InvalidInput, match=r"^at is not an ISO 8601 date-time") as info:
        parse_iso(garbage, field="at")
    assert info.value.field == "at"
    assert len(str(info.value)) < 120  # a huge value is not echoed whole


@pytest.mark.parametrize("value", [None, 1_795_939_200, 1.5, True, b"2026-11-29T08:00:00Z"])
def test_non_strings_are_refused_naming_the_field(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"^ts must be an ISO 8601 string") as info:
        parse_iso(value)
    assert info.value.field == "ts"
