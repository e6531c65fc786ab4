"""Ranking properties over a real LiveIndex (no sockets, time passed explicitly)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.core.ranking import NO_RING, RING_LIMITS_S, rank
from geo.travel import CrowFlyModel, haversine_m
from tests.strategies import NOW, SEAT, Person, build_index, place, populations
from units.index import LiveIndex
from units.vocab import Role, Status, Team

MODEL = CrowFlyModel()


def brute_force(
    index: LiveIndex, population: list[Person], held: np.ndarray, max_eta_s: float
) -> set[int]:
    """Every slot that is eligible and in reach, by a scan of everyone."""
    n = len(index)
    if n == 0:
        return set()
    all_slots = np.arange(n)
    eta = MODEL.seconds_to(
        index.lat.copy(),
        index.lon.copy(),
        index.mode.copy(),
        *SEAT,
        situations=index.situation.copy(),
    )
    keep = set()
    for slot, person in enumerate(population):
        eligible = (
            person.status is Status.AVAILABLE
            and person.fix_age_s is not None
            and person.fix_age_s <= index.freshness_s
            and not held[slot]
        )
        if eligible and eta[slot] <= max_eta_s:
            keep.add(int(all_slots[slot]))
    return keep


@settings(max_examples=200, deadline=None)
@given(
    population=populations,
    needs_roles=st.integers(0, 63),
    needs_teams=st.integers(0, 63),
    held_bits=st.integers(0, 2**60),
    max_eta_s=st.sampled_from([60.0, 180.0, 300.0, 600.0]),
)
def test_ranking_is_exactly_the_eligible_in_reach_and_ordered(
    population: list[Person], needs_roles: int, needs_teams: int, held_bits: int, max_eta_s: float
) -> None:
    index = build_index(population)
    held = np.array([(held_bits >> i) & 1 == 1 for i in range(len(index))], dtype=np.bool_)
    ranking = rank(
        index,
        MODEL,
        *SEAT,
        now=NOW,
        max_eta_s=max_eta_s,
        needs_roles=needs_roles,
        needs_teams=needs_teams,
        held=held,
        nearest_unit=1,
    )
    slots = ranking.slots.tolist()
    assert len(slots) == len(set(slots)), "a volunteer is ranked twice"
    # Never ineligible, never missing anyone eligible in reach.
    assert set(slots) == brute_force(index, population, held, max_eta_s)
    # ring_min agrees with the ETA.
    for eta, ring in zip(ranking.eta_s.tolist(), ranking.ring.tolist(), strict=True):
        expected = next(
            (r for r, lim in zip((1, 3, 5), RING_LIMITS_S, strict=True) if eta <= lim), NO_RING
        )
        assert ring == expected
    # Order: ring, then skilled, then ETA.
    keys = [
        (int(r), not bool(s), float(e))
        for r, s, e in zip(ranking.ring, ranking.skilled, ranking.eta_s, strict=True)
    ]
    assert keys == sorted(keys)
    # skilled means carrying a needed role or team.
    for slot, skilled in zip(slots, ranking.skilled.tolist(), strict=True):
        has = bool(int(index.roles[slot]) & needs_roles or int(index.teams[slot]) & needs_teams)
        assert skilled == has
    # Distances are the haversine to the incident.
    if slots:
        expected_d = haversine_m(index.lat[ranking.slots], index.lon[ranking.slots], *SEAT)
        assert np.allclose(ranking.distance_m, expected_d)
    # Deterministic.
    again = rank(
        index,
        MODEL,
        *SEAT,
        now=NOW,
        max_eta_s=max_eta_s,
        needs_roles=needs_roles,
        needs_teams=needs_teams,
        held=held,
        nearest_unit=1,
    )
    assert again.slots.tolist() == slots


@settings(max_examples=100, deadline=None)
@given(population=populations)
def test_without_needs_etas_are_sorted_within_each_ring(population: list[Person]) -> None:
    index = build_index(population)
    ranking = rank(index, MODEL, *SEAT, now=NOW)
    for ring in (1, 3, 5):
        etas = ranking.eta_s[ranking.ring == ring]
        assert (np.diff(etas) >= 0).all()


def test_ties_go_to_the_nearest_unit_then_to_the_id() -> None:
    index = LiveIndex()
    # Same place, same mode: the same ETA for all four.
    place(index, "b", 100.0, unit=2)
    place(index, "a", 100.0, unit=2)
    place(index, "z", 100.0, unit=7)
    place(index, "c", 100.0, unit=2)
    ranking = rank(index, MODEL, *SEAT, now=NOW, nearest_unit=7)
    assert [index.ids[s] for s in ranking.slots] == ["z", "a", "b", "c"]


def test_a_needed_skill_outranks_a_faster_volunteer_in_the_same_ring_only() -> None:
    index = LiveIndex()
    place(index, "fast", 50.0)
    place(index, "mediator", 250.0, roles=1 << Role.MEDIATOR)
    place(index, "far_mediator", 1_200.0, roles=1 << Role.MEDIATOR)
    ranking = rank(
        index, MODEL, *SEAT, now=NOW, needs_roles=1 << Role.MEDIATOR, needs_teams=1 << Team.RESCUE
    )
    ids = [index.ids[s] for s in ranking.slots]
    rings = ranking.ring.tolist()
    assert rings[:2] == [1, 1]
    assert ids[:2] == ["mediator", "fast"], "same ring: the skill first"
    assert ids[2] == "far_mediator"
    assert rings[2] > 1, "a wider ring never outranks a narrower one"


def test_stale_fix_busy_and_off_duty_never_make_a_candidate() -> None:
    index = LiveIndex()
    place(index, "ok", 100.0)
    place(index, "old", 100.0, now=NOW - 301.0)
    place(index, "busy", 100.0)
    place(index, "off", 100.0)
    index.set_status(index.slot("busy"), Status.BUSY)
    index.set_status(index.slot("off"), Status.OFF_DUTY)
    ranking = rank(index, MODEL, *SEAT, now=NOW)
    assert [index.ids[s] for s in ranking.slots] == ["ok"]
    later = rank(index, MODEL, *SEAT, now=NOW + 301.0)
    assert len(later) == 0, "the fresh fix has grown old"


def test_candidates_carry_the_contract_fields() -> None:
    index = LiveIndex()
    place(index, "v1", 300.0, roles=(1 << Role.PATROL) | (1 << Role.MEDIATOR), unit=0)
    ranking = rank(index, MODEL, *SEAT, now=NOW)
    (candidate,) = ranking.candidates(index, ("U001",))
    wire = candidate.to_wire()
    assert set(wire) == {
        "volunteer_id",
        "eta_s",
        "ring_min",
        "distance_m",
        "mode",
        "roles",
        "teams",
        "unit_id",
    }
    assert wire["volunteer_id"] == "v1"
    assert wire["roles"] == ["patrol", "mediator"]
    assert wire["unit_id"] == "U001"
    assert wire["mode"] == "ebike"
    assert wire["ring_min"] == 1
    assert abs(float(str(wire["distance_m"])) - 300.0) < 3.0
