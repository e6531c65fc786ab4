"""The dispatch plan: whom to offer an incident to.

Theory of operation
-------------------
Quotas are cumulative per ring: ``{1: a, 3: b, 5: c}`` wants ``a`` people arriving within
1 minute, ``b`` within 3 (those ``a`` included) and ``c`` within 5. People already committed
to the incident (accepted, on scene, or holding an open offer) count toward every ring their
ETA fits in; the plan adds the fewest new people that close every ring's shortfall, and makes
sure someone with a needed role or team is among them.

One incident (:func:`plan_incident`): walk the ranking once. It is sorted by ring, so for
ring 1, then 3, then 5, the next unchosen candidates are exactly those whose ring fits. If the
incident needs a skill nobody committed has, the best skilled candidate is taken first: it
counts toward every ring it fits, so no other choice needs fewer people. A ring whose
candidates run out is *unmet*; a widened search (beyond 5 minutes) may still add
reinforcements to ring 5, which stays unmet.

Several incidents at the same moment (:func:`plan_jointly`): greedy, incident by incident,
can give the one volunteer who could serve two incidents to the first and leave the second
unserved. Instead every shortfall becomes *places* (one per missing person, each belonging to
a ring, plus one "skilled" place where a skill is missing), every candidate volunteer a
column, and ``scipy.optimize.linear_sum_assignment`` leaves the fewest rings short, then
spends the least total ETA, with each volunteer used once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.optimize import linear_sum_assignment

from dispatch.core.ranking import NO_RING, RINGS, Ranking

__all__ = ["INFEASIBLE", "MISSED_RING", "Need", "Plan", "plan_incident", "plan_jointly"]

#: Cost of a (place, volunteer) pair that cannot work: the volunteer is too slow for the
#: place's ring, lacks the place's skill, or is not a candidate of that incident at all.
INFEASIBLE: Final = 1e9


@dataclass(frozen=True, slots=True)
class Need:
    """What one incident still asks of the plan.

    Attributes:
        quota: cumulative people wanted per ring, ``{1: a, 3: b, 5: c}``.
        committed_rings: ring of each person already committed (``NO_RING`` beyond 5 min).
        committed_skilled: someone committed carries a needed role or team.
        skill_required: the incident's type needs a role or team.
        max_new: how many new offers may be opened now (the policy's open-offer cap minus
            the offers already open).
    """

    quota: Mapping[int, int]
    committed_rings: Sequence[int] = ()
    committed_skilled: bool = False
    skill_required: bool = False
    max_new: int = 1_000_000

    def shortfall(self) -> dict[int, int]:
        """People still missing within each ring, cumulative and non-decreasing."""
        short: dict[int, int] = {}
        floor = 0
        for ring in RINGS:
            have = sum(1 for r in self.committed_rings if r <= ring)
            floor = max(floor, self.quota.get(ring, 0) - have)
            short[ring] = floor
        return short

    def wants_skill(self) -> bool:
        return self.skill_required and not self.committed_skilled


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome for one incident.

    Attributes:
        picks: positions in the incident's :class:`Ranking` to offer to, in offer order.
        unmet: rings whose shortfall the candidates cannot close.
        skill_unmet: a skill is needed and no eligible candidate carries it.
    """

    picks: tuple[int, ...] = ()
    unmet: tuple[int, ...] = ()
    skill_unmet: bool = False

    def slots(self, ranking: Ranking) -> list[int]:
        """The volunteers' index slots, in offer order."""
        return [int(ranking.slots[p]) for p in self.picks]


def plan_incident(ranking: Ranking, need: Need) -> Plan:
    """The fewest new offers that close every ring's shortfall for one incident.

    Args:
        ranking: the incident's eligible candidates, best first.
        need: the quota and what is already committed.
    """
    short = need.shortfall()
    rings = ranking.ring
    chosen: list[int] = []
    taken = np.zeros(len(ranking), dtype=np.bool_)
    counts = dict.fromkeys(RINGS, 0)

    def take(position: int) -> None:
        chosen.append(position)
        taken[position] = True
        for ring in RINGS:
            if rings[position] <= ring:
                counts[ring] += 1

    skill_unmet = False
    if need.wants_skill() and short[RINGS[-1]] > 0:
        skilled = np.flatnonzero(ranking.skilled)
        if len(skilled):
            take(int(skilled[0]))  # ranking order: the skilled one in the smallest ring
        else:
            skill_unmet = True

    unmet: list[int] = []
    cursor = 0
    for ring in RINGS:
        while counts[ring] < short[ring]:
            while cursor < len(ranking) and taken[cursor]:
                cursor += 1
            if cursor >= len(ranking) or rings[cursor] > ring:
                unmet.append(ring)
                break
            take(cursor)
    if unmet and unmet[-1] == RINGS[-1]:
        # Reinforcements from a widened search: they do not meet the ring, but they help.
        missing = short[RINGS[-1]] - counts[RINGS[-1]]
        beyond = [int(p) for p in np.flatnonzero((rings == NO_RING) & ~taken)[: max(0, missing)]]
        chosen.extend(beyond)
    return Plan(
        picks=tuple(chosen[: max(0, need.max_new)]),
        unmet=tuple(unmet),
        skill_unmet=skill_unmet,
    )


#: Cost of one ring left short by one person. ETAs (seconds, at most hours) only break ties
#: between assignments that leave the same shortfall.
MISSED_RING: Final = 1e6


def _unmet(need: Need, rings: Sequence[int]) -> tuple[int, ...]:
    committed = [*need.committed_rings, *rings]
    return tuple(
        ring for ring in RINGS if sum(1 for r in committed if r <= ring) < need.quota.get(ring, 0)
    )


def plan_jointly(rankings: Sequence[Ranking], needs: Sequence[Need]) -> list[Plan]:
    """Plan several incidents at once, optimally, each volunteer used once.

    The objective is the one a dispatcher would state: leave the fewest (incident, ring)
    places short, then spend the least total ETA. A place of ring ``r`` counts toward rings
    ``r`` and wider; filled by a volunteer of ring ``q`` it leaves the rings in ``[r, q)``
    short, left empty it leaves every ring from ``r`` on short (plus half a ring, so a
    reinforcement beyond 5 minutes is still worth sending). That makes the cost of a
    (place, volunteer) pair independent of the other pairs, so a linear assignment
    (``scipy.optimize.linear_sum_assignment``, with one "nobody" column per place) finds the
    optimum; an exchange argument shows that no sorted-by-ring optimum is lost by counting
    per place instead of per ring.

    Args:
        rankings: one ranking per incident.
        needs: one need per incident, in the same order.

    Returns:
        One :class:`Plan` per incident; picks are ordered by ETA.

    Raises:
        ValueError: ``rankings`` and ``needs`` differ in length.
    """
    if len(rankings) != len(needs):
        raise ValueError("one need per ranking")
    n_rings = len(RINGS)
    # Places: (incident, ring index the place belongs to, skilled only).
    places: list[tuple[int, int, bool]] = []
    for i, need in enumerate(needs):
        short = need.shortfall()
        incident_places: list[tuple[int, int, bool]] = []
        if need.wants_skill() and short[RINGS[-1]] > 0:
            incident_places.append((i, 0, True))
        below = 0
        for k, ring in enumerate(RINGS):
            incident_places.extend((i, k, False) for _ in range(short[ring] - below))
            below = short[ring]
        places.extend(incident_places[: max(0, need.max_new)])
    if not places:
        return [Plan(unmet=_unmet(need, ())) for need in needs]

    columns = np.unique(np.concatenate([r.slots for r in rankings]))
    column_of = {s: c for c, s in enumerate(columns.tolist())}
    cost = np.full((len(places), len(columns) + len(places)), INFEASIBLE)
    ring_index = {ring: k for k, ring in enumerate(RINGS)} | {NO_RING: n_rings}
    for row, (i, k, skilled_only) in enumerate(places):
        ranking = rankings[i]
        cols = np.fromiter((column_of[s] for s in ranking.slots.tolist()), dtype=np.intp)
        q = np.fromiter((ring_index[int(r)] for r in ranking.ring), dtype=np.intp)
        if skilled_only:
            # The skill place: anyone skilled will do; empty, the whole incident lacks it.
            pair = np.where(ranking.skilled, ranking.eta_s, INFEASIBLE)
            empty = MISSED_RING * (n_rings + 0.5)
        else:
            pair = MISSED_RING * np.maximum(0, q - k) + ranking.eta_s
            empty = MISSED_RING * (n_rings - k + 0.5)
        cost[row, cols] = pair
        cost[row, len(columns) :] = empty
    rows, cols = linear_sum_assignment(cost)

    picked: dict[int, list[tuple[int, bool]]] = {}
    for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
        if col >= len(columns):
            continue  # the place stays empty
        i, _, skilled_only = places[row]
        position = int(np.flatnonzero(rankings[i].slots == columns[col])[0])
        picked.setdefault(i, []).append((position, skilled_only))

    plans: list[Plan] = []
    for i, (ranking, need) in enumerate(zip(rankings, needs, strict=True)):
        chosen = picked.get(i, [])
        picks = [p for p, skilled_only in chosen if not skilled_only]
        extra = [p for p, skilled_only in chosen if skilled_only]
        if extra and not any(ranking.skilled[p] for p in picks):
            picks.extend(extra)  # the skill is not otherwise present: keep the extra person
        picks.sort(key=lambda p: (float(ranking.eta_s[p]), p))
        skill_unmet = need.wants_skill() and not any(ranking.skilled[p] for p in picks)
        plans.append(
            Plan(
                picks=tuple(picks),
                unmet=_unmet(need, [int(ranking.ring[p]) for p in picks]),
                skill_unmet=skill_unmet and need.shortfall()[RINGS[-1]] > 0,
            )
        )
    return plans
