"""The dispatch plan: fewest people per ring quota, skills present, joint beats greedy."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.core.plan import Need, plan_incident, plan_jointly
from dispatch.core.ranking import NO_RING, RINGS, Ranking, ring_of


def make_ranking(etas: list[float], skilled: list[bool], first_slot: int = 0) -> Ranking:
    """A ranking in the order the ranker produces (ring, skilled first, ETA)."""
    eta = np.asarray(etas, dtype=np.float64)
    skill = np.asarray(skilled, dtype=np.bool_)
    ring = ring_of(eta)
    order = np.lexsort((eta, ~skill, ring))
    slots = np.arange(first_slot, first_slot + len(etas), dtype=np.intp)[order]
    return Ranking(
        slots=slots,
        eta_s=eta[order],
        ring=ring[order],
        distance_m=eta[order] * 5.0,
        skilled=skill[order],
    )


quotas = st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)).map(
    lambda t: {1: t[0], 3: t[0] + t[1], 5: t[0] + t[1] + t[2]}
)
candidates = st.lists(st.tuples(st.floats(1.0, 299.0), st.booleans()), min_size=0, max_size=12)


def counts_within(rings: list[int]) -> dict[int, int]:
    return {ring: sum(1 for r in rings if r <= ring) for ring in RINGS}


def feasible(quota: dict[int, int], rings: list[int], skilled: bool, need_skill: bool) -> bool:
    have = counts_within(rings)
    return all(have[r] >= quota[r] for r in RINGS) and (skilled or not need_skill)


@settings(max_examples=300, deadline=None)
@given(quota=quotas, people=candidates, need_skill=st.booleans())
def test_single_plan_meets_quota_with_the_fewest_people(
    quota: dict[int, int], people: list[tuple[float, bool]], need_skill: bool
) -> None:
    ranking = make_ranking([e for e, _ in people], [s for _, s in people])
    need = Need(quota=quota, skill_required=need_skill)
    plan = plan_incident(ranking, need)

    picks = list(plan.picks)
    assert len(set(picks)) == len(picks), "a volunteer is offered twice"
    rings = [int(ranking.ring[p]) for p in picks]
    has_skill = any(bool(ranking.skilled[p]) for p in picks)

    # Brute force over every subset: the smallest feasible one, if any.
    everyone = range(len(ranking))
    best: int | None = None
    for size in range(len(ranking) + 1):
        for subset in itertools.combinations(everyone, size):
            if feasible(
                quota,
                [int(ranking.ring[p]) for p in subset],
                any(bool(ranking.skilled[p]) for p in subset),
                need_skill and quota[5] > 0,
            ):
                best = size
                break
        if best is not None:
            break

    if best is not None:
        assert not plan.unmet
        assert feasible(quota, rings, has_skill, need_skill and quota[5] > 0)
        assert len(picks) == best
    else:
        have = counts_within(rings)
        assert plan.unmet or (need_skill and plan.skill_unmet)
        for ring in plan.unmet:
            assert have[ring] < quota[ring]
    # Deterministic: the same input gives the same plan.
    assert plan_incident(ranking, need) == plan


def test_committed_people_count_and_the_cap_holds() -> None:
    ranking = make_ranking([30, 40, 100, 200, 250], [False] * 5)
    need = Need(quota={1: 1, 3: 3, 5: 5}, committed_rings=[1, 3])
    plan = plan_incident(ranking, need)
    # Ring 1 has one committed; ring 3 has two and needs one more; ring 5 needs three more.
    # Three people is the fewest, and the fastest three are the ones offered.
    assert [float(ranking.eta_s[p]) for p in plan.picks] == [30.0, 40.0, 100.0]
    capped = plan_incident(ranking, Need(quota={1: 1, 3: 3, 5: 5}, max_new=2))
    assert len(capped.picks) == 2
    assert not capped.unmet, "a cap postpones offers; it does not make a ring unmet"


def test_skill_is_brought_in_even_from_a_wider_ring() -> None:
    ranking = make_ranking([20, 150], [False, True])
    plan = plan_incident(ranking, Need(quota={1: 1, 3: 1, 5: 1}, skill_required=True))
    assert sorted(float(ranking.eta_s[p]) for p in plan.picks) == [20.0, 150.0]
    assert not plan.unmet
    nobody = make_ranking([20, 150], [False, False])
    plan = plan_incident(nobody, Need(quota={1: 1, 3: 1, 5: 1}, skill_required=True))
    assert plan.skill_unmet
    assert len(plan.picks) == 1


def test_exhausted_ring_is_unmet_and_widened_search_adds_reinforcements() -> None:
    ranking = make_ranking([100, 400, 500], [False] * 3)
    plan = plan_incident(ranking, Need(quota={1: 1, 3: 1, 5: 3}))
    assert plan.unmet == (1, 5)
    assert int(ranking.ring[plan.picks[0]]) == 3
    assert [int(ranking.ring[p]) for p in plan.picks[1:]] == [NO_RING, NO_RING]


def test_joint_plan_beats_greedy_on_competing_incidents() -> None:
    # Volunteer 0 reaches A in 50 s and B in 55 s; volunteer 1 reaches A in 58 s, B in 200 s.
    # Greedy (A first) gives A the nearest (0) and leaves B without anyone in its 1-minute
    # ring; the joint plan sends 1 to A and 0 to B: both rings met.
    a = Ranking(
        slots=np.array([0, 1]),
        eta_s=np.array([50.0, 58.0]),
        ring=np.array([1, 1], dtype=np.uint8),
        distance_m=np.zeros(2),
        skilled=np.zeros(2, dtype=np.bool_),
    )
    b = Ranking(
        slots=np.array([0, 1]),
        eta_s=np.array([55.0, 200.0]),
        ring=np.array([1, 5], dtype=np.uint8),
        distance_m=np.zeros(2),
        skilled=np.zeros(2, dtype=np.bool_),
    )
    need = Need(quota={1: 1, 3: 1, 5: 1})

    greedy_a = plan_incident(a, need)
    taken = {int(a.slots[p]) for p in greedy_a.picks}
    b_left = np.array([s not in taken for s in b.slots.tolist()])
    b_rest = Ranking(
        b.slots[b_left], b.eta_s[b_left], b.ring[b_left], b.distance_m[b_left], b.skilled[b_left]
    )
    greedy_b = plan_incident(b_rest, need)
    assert greedy_b.unmet == (1, 3), "the case must actually defeat greedy"

    joint_a, joint_b = plan_jointly([a, b], [need, need])
    assert [int(a.slots[p]) for p in joint_a.picks] == [1]
    assert [int(b.slots[p]) for p in joint_b.picks] == [0]
    assert joint_a.unmet == ()
    assert joint_b.unmet == ()


@settings(max_examples=150, deadline=None)
@given(
    etas=st.lists(st.tuples(st.floats(5.0, 290.0), st.floats(5.0, 290.0)), min_size=1, max_size=6),
    quota_a=quotas,
    quota_b=quotas,
)
def test_joint_plan_is_optimal_and_uses_each_volunteer_once(
    etas: list[tuple[float, float]], quota_a: dict[int, int], quota_b: dict[int, int]
) -> None:
    n = len(etas)
    rankings = [
        make_ranking([e[0] for e in etas], [False] * n),
        make_ranking([e[1] for e in etas], [False] * n),
    ]
    needs = [Need(quota=quota_a), Need(quota=quota_b)]
    plans = plan_jointly(rankings, needs)
    chosen = [
        [int(r.slots[p]) for p in plan.picks] for r, plan in zip(rankings, plans, strict=True)
    ]
    flat = chosen[0] + chosen[1]
    assert len(flat) == len(set(flat)), "a volunteer is used twice"

    # Brute force: every way to give each volunteer to A, B or nobody; the best is the one
    # that leaves the fewest ring places unmet, then the least total ETA of those counted.
    def score(assign: tuple[int, ...]) -> tuple[int, int]:
        missing = 0
        used = 0
        for which, quota in enumerate((quota_a, quota_b)):
            rings = [
                int(ring_of(np.array([etas[v][which]]))[0]) for v in range(n) if assign[v] == which
            ]
            have = counts_within(rings)
            missing += sum(max(0, quota[r] - have[r]) for r in RINGS)
            used += len(rings)
        return missing, used

    best = min(score(assign) for assign in itertools.product((0, 1, 2), repeat=n))
    ours = score(tuple(0 if v in chosen[0] else 1 if v in chosen[1] else 2 for v in range(n)))
    assert ours[0] == best[0], f"joint plan leaves {ours[0]} places unmet, best is {best[0]}"
    assert plan_jointly(rankings, needs) == plans
