"""Siting: where the next minimum emergency units should go.

Theory of operation
-------------------
*The instance* (:func:`build_instance`). Demand points ``j`` (villages, population ``pop_j``),
rings ``r`` (1, 3, 5 minutes, weights ``w_r``, default 0.5 / 0.3 / 0.2) and candidate sites
``s`` (every village). A new unit is a group of volunteers stationed at ``s`` with the
dataset's mode mix (:func:`simulations.population.unit_modes`); ``m[s, (j, r)]`` counts its
members who reach ``j`` within ``r`` (the travel model, from the site, with the members'
situation's turnout). ``n0[j, r]`` counts the volunteers who already do (the existing units'
members at their unit's village, or the volunteers on duty at home at a given hour). Both
are sparse: a unit reaches a few dozen villages in 5 minutes. A (village, ring) pair is a
*place* ``p``, worth ``c_p = pop_j w_r``.

*Coverage objective* ("cover"). ``F(X) = sum_p c_p [n0_p + sum_{s in X} m_sp >= 1]``: the
population weighted over the rings that someone reaches in time, existing coverage fixed.
Maximum coverage: monotone submodular, so greedy is within ``1 - 1/e`` of the optimum.

*Expected coverage* ("expected", MEXCLP, Daskin 1983). Each volunteer in reach may be busy or
decline, independently, with probability ``q``: a place reached by ``n`` volunteers is
served with probability ``1 - q**n``, and ``E(X) = sum_p c_p (1 - q**(n0_p + sum m_sp))``,
also monotone submodular (concave in ``n``). ``q = 0`` gives back ``F``.

*Lazy greedy* (:func:`greedy`, CELF: Leskovec et al. 2007). The marginal gain of every
candidate is computed once, as one sparse matrix-vector product, and kept in a max-heap;
each round pops the best, re-evaluates it if its gain is stale (submodularity makes a stale
gain an upper bound), and takes it when it is fresh and still on top. Each round's row of the
*marginal-gain table* says what was taken, its gain per ring, the objective after, and how
many re-evaluations laziness needed.

*Exact MILP* (:func:`solve_exact`, ``scipy.optimize.milp``, HiGHS). Coverage: binary
``x_s``, and ``z_p`` in [0, 1] for every place not already covered that some site reaches;
maximise ``sum c_p z_p`` subject to ``z_p <= sum_s a_sp x_s`` and ``sum x_s = N`` (``z`` needs
no integrality: at an integral ``x`` the best ``z`` is ``min(1, .)``, integral). Expected
coverage: the classic MEXCLP linearisation, ``y_pk`` in [0, 1] for the ``k``-th added
volunteer of place ``p``, worth ``c_p q**(n0_p + k - 1) (1 - q)``, decreasing in ``k`` so the
LP fills them in order, subject to ``sum_k y_pk <= sum_s m_sp x_s``. ``k`` stops at what the
``N`` best sites could add or where ``q**k`` falls below ``truncation``; the neglected tail
``c_p q**(n0_p + K_p)`` is added to the upper bound. The *gap* of the greedy is
``(bound - greedy) / bound``, with the MILP's own dual bound when HiGHS stops at its time
limit.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from dispatch.core.policy import RING_MINUTES, RINGS_S
from geo.modes import Mode
from geo.travel import FloatArray, Situation, TravelModel
from simulations.coverage import Demand, Positions, coverage_counts

__all__ = [
    "ExactResult",
    "GreedyResult",
    "GreedyStep",
    "Objective",
    "SitingInstance",
    "brute_force",
    "build_instance",
    "evaluate",
    "greedy",
    "place_counts",
    "solve_exact",
]

Objective = Literal["cover", "expected"]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False, slots=True)
class SitingInstance:
    """A siting problem (module doc).

    Attributes:
        population: ``(J,)`` residents per demand point.
        weights: ``(R,)`` weight per ring.
        sites: ``(S,)`` demand-point row of each candidate site (-1: not a demand point).
        members: ``(S, J*R)`` sparse counts: members of a unit at ``s`` reaching place ``p``
            (place ``p = j * R + r``).
        existing: ``(J*R,)`` volunteers already reaching each place.
        ring_minutes: the rings' names.
    """

    population: FloatArray
    weights: FloatArray
    sites: I64
    members: sp.csr_array
    existing: I64
    ring_minutes: tuple[int, ...] = RING_MINUTES

    @property
    def n_sites(self) -> int:
        return len(self.sites)

    @property
    def n_rings(self) -> int:
        return len(self.weights)

    @property
    def value(self) -> FloatArray:
        """``(J*R,)``: ``c_p = pop_j w_r``."""
        return np.asarray(np.outer(self.population, self.weights).ravel(), dtype=np.float64)

    @property
    def total(self) -> float:
        """The objective if every place were covered with certainty."""
        return float(self.value.sum())


def build_instance(
    demand: Demand,
    model: TravelModel,
    modes: Sequence[Mode],
    *,
    existing: Positions | None,
    weights: Sequence[float] = (0.5, 0.3, 0.2),
    situation: Situation = Situation.PATROL,
    site_lat: FloatArray | None = None,
    site_lon: FloatArray | None = None,
    rings_s: Sequence[float] = RINGS_S,
) -> SitingInstance:
    """The siting instance of a county: candidate sites x places, and existing coverage.

    Args:
        demand: the demand points (villages and communities).
        model: the travel model.
        modes: the modes of a new unit's members (one entry per member).
        existing: who already covers the villages (``None``: nobody).
        weights: weight per ring.
        situation: the members' situation when alerted (their turnout).
        site_lat, site_lon: candidate sites; default: every demand point.
        rings_s: ring limits, seconds.

    Raises:
        ValueError: one weight per ring is needed, or the unit has no members.
    """
    if len(weights) != len(rings_s):
        raise ValueError("one weight per ring")
    if not modes:
        raise ValueError("a unit needs at least one member")
    if site_lat is None or site_lon is None:
        site_lat, site_lon = demand.lat, demand.lon
        sites = np.arange(len(demand), dtype=np.int64)
    else:
        sites = np.full(len(site_lat), -1, dtype=np.int64)
    kinds, per_kind = np.unique(
        np.asarray([int(m) for m in modes], dtype=np.uint8), return_counts=True
    )
    n_sites, n_kinds, n_rings = len(site_lat), len(kinds), len(rings_s)
    origin_lat = np.repeat(site_lat, n_kinds)
    origin_lon = np.repeat(site_lon, n_kinds)
    origin_mode = np.tile(kinds, n_sites).astype(np.uint8)
    origin_situation = np.full(len(origin_lat), int(situation), dtype=np.uint8)
    limits = np.asarray(rings_s, dtype=np.float64)
    rows: list[I64] = []
    cols: list[I64] = []
    data: list[I64] = []
    for j in range(len(demand)):
        seconds = model.seconds_to(
            origin_lat,
            origin_lon,
            origin_mode,
            float(demand.lat[j]),
            float(demand.lon[j]),
            situations=origin_situation,
            limit_s=float(limits[-1]),
        ).reshape(n_sites, n_kinds)
        # members reaching j within each ring: (S, R)
        reach = (seconds[:, :, None] <= limits[None, None, :]) * per_kind[None, :, None]
        counts = reach.sum(axis=1)
        s_idx, r_idx = np.nonzero(counts)
        rows.append(s_idx.astype(np.int64))
        cols.append((j * n_rings + r_idx).astype(np.int64))
        data.append(counts[s_idx, r_idx].astype(np.int64))
    members = sp.csr_array(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_sites, len(demand) * n_rings),
    )
    members.sum_duplicates()
    if existing is None or not len(existing):
        n0 = np.zeros(len(demand) * n_rings, dtype=np.int64)
    else:
        counts0 = coverage_counts(
            demand.lat,
            demand.lon,
            existing.lat,
            existing.lon,
            existing.mode,
            model,
            situations=existing.situation,
            rings_s=rings_s,
        )
        n0 = counts0.counts.astype(np.int64).ravel()
    return SitingInstance(
        population=demand.population.astype(np.float64),
        weights=np.asarray(weights, dtype=np.float64),
        sites=sites,
        members=members,
        existing=n0,
    )


def place_counts(instance: SitingInstance, chosen: Sequence[int]) -> I64:
    """Volunteers reaching each place (``(J*R,)``) once units stand at ``chosen``."""
    n = instance.existing.copy()
    for s in chosen:
        row = instance.members[[s]]
        n[row.indices] += row.data.astype(np.int64)
    return n


def evaluate(
    instance: SitingInstance, chosen: Sequence[int], objective: Objective = "cover", q: float = 0.0
) -> tuple[float, FloatArray]:
    """The objective of a set of sites, and the population share served per ring.

    Args:
        instance: the instance.
        chosen: candidate site indices (a site may appear twice: two units).
        objective: ``cover`` (someone reaches in time) or ``expected`` (MEXCLP).
        q: MEXCLP: probability that a volunteer in reach cannot come.

    Returns:
        ``(value, per_ring)``: the objective, and per ring the population share covered
        (``cover``) or expected to be served (``expected``).
    """
    n = place_counts(instance, chosen).reshape(-1, instance.n_rings)
    served = (n >= 1).astype(np.float64) if objective == "cover" else 1.0 - q ** n.astype(float)
    population = instance.population
    total = float(population.sum())
    per_ring = population @ served / total if total else np.zeros(instance.n_rings)
    value = float(population @ served @ instance.weights)
    return value, np.asarray(per_ring, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class GreedyStep:
    """One round of the lazy greedy (a row of the marginal-gain table).

    Attributes:
        round: 1 for the first unit.
        site: the candidate site taken.
        gain: its marginal gain (objective units).
        gain_per_ring: the gain's share per ring (population newly served, unweighted).
        objective: the objective after this round.
        evaluations: gains re-evaluated this round (laziness saves the others).
        runner_up: the best other candidate's (possibly stale) gain when this one was taken.
    """

    round: int
    site: int
    gain: float
    gain_per_ring: tuple[float, ...]
    objective: float
    evaluations: int
    runner_up: float


@dataclass(frozen=True, slots=True)
class GreedyResult:
    """The greedy's outcome.

    Attributes:
        sites: chosen candidate sites, in order.
        steps: the marginal-gain table.
        initial_gains: ``(S,)`` every candidate's gain before anything was added.
        initial_gains_per_ring: ``(S, R)`` the same, per ring, unweighted population.
        base: the objective of the existing coverage alone.
        objective: the final objective.
        total: the objective with every place served (for shares).
        seconds: wall time.
    """

    sites: tuple[int, ...]
    steps: tuple[GreedyStep, ...]
    initial_gains: FloatArray
    initial_gains_per_ring: FloatArray
    base: float
    objective: float
    total: float
    seconds: float


class _Gains:
    """Marginal gains of adding one unit, against the current state."""

    def __init__(self, instance: SitingInstance, objective: Objective, q: float) -> None:
        self.instance = instance
        self.objective = objective
        self.q = q
        self.value = instance.value
        self.n = instance.existing.copy()
        m = instance.members
        if objective == "cover":
            self.matrix = sp.csr_array(
                (np.ones_like(m.data, dtype=np.float64), m.indices, m.indptr), shape=m.shape
            )
        else:
            self.matrix = sp.csr_array(
                (1.0 - q ** m.data.astype(np.float64), m.indices, m.indptr), shape=m.shape
            )

    def weights(self) -> FloatArray:
        """Per place: the value still to win (cover) or ``c_p q**n_p`` (expected)."""
        if self.objective == "cover":
            return np.where(self.n >= 1, 0.0, self.value)
        return np.asarray(self.value * self.q ** self.n.astype(np.float64))

    def all(self) -> FloatArray:
        return np.asarray(self.matrix @ self.weights(), dtype=np.float64)

    def per_ring(self) -> FloatArray:
        """``(S, R)``: population gain per ring (unweighted)."""
        w = self.weights()
        ring_w = np.tile(self.instance.weights, len(self.instance.population))
        with np.errstate(invalid="ignore", divide="ignore"):
            people = np.where(ring_w > 0, w / ring_w, 0.0)
        out = np.zeros((self.instance.n_sites, self.instance.n_rings))
        coo = self.matrix.tocoo()
        np.add.at(out, (coo.row, coo.col % self.instance.n_rings), coo.data * people[coo.col])
        return out

    def one(self, s: int) -> float:
        lo, hi = self.matrix.indptr[s], self.matrix.indptr[s + 1]
        idx = self.matrix.indices[lo:hi]
        data = self.matrix.data[lo:hi]
        if self.objective == "cover":
            return float(data @ np.where(self.n[idx] >= 1, 0.0, self.value[idx]))
        return float(data @ (self.value[idx] * self.q ** self.n[idx].astype(np.float64)))

    def ring_gain(self, s: int) -> tuple[float, ...]:
        lo, hi = self.matrix.indptr[s], self.matrix.indptr[s + 1]
        idx = self.matrix.indices[lo:hi]
        data = self.matrix.data[lo:hi]
        population = self.instance.population[idx // self.instance.n_rings]
        if self.objective == "cover":
            gained = data * population * (self.n[idx] < 1)
        else:
            gained = data * population * self.q ** self.n[idx].astype(np.float64)
        out = np.zeros(self.instance.n_rings)
        np.add.at(out, idx % self.instance.n_rings, gained)
        return tuple(float(v) for v in out)

    def add(self, s: int) -> None:
        lo, hi = self.instance.members.indptr[s], self.instance.members.indptr[s + 1]
        self.n[self.instance.members.indices[lo:hi]] += self.instance.members.data[lo:hi]


def greedy(
    instance: SitingInstance,
    units: int,
    *,
    objective: Objective = "cover",
    q: float = 0.0,
    reuse_sites: bool = False,
) -> GreedyResult:
    """Lazy greedy (CELF) placement of ``units`` new units.

    Args:
        instance: the instance.
        units: how many to place.
        objective: ``cover`` or ``expected`` (MEXCLP with ``q``).
        q: MEXCLP: probability that a volunteer in reach cannot come.
        reuse_sites: allow a second unit at a site already chosen (useful only for
            ``expected``); otherwise each site takes at most one new unit, as in the MILP.

    Raises:
        ValueError: more units than candidate sites (without ``reuse_sites``), or ``q`` is
            outside [0, 1).
    """
    if not 0.0 <= q < 1.0:
        raise ValueError(f"q must be in [0, 1), got {q}")
    if units > instance.n_sites and not reuse_sites:
        raise ValueError(f"{units} units but only {instance.n_sites} candidate sites")
    start = time.perf_counter()
    gains = _Gains(instance, objective, q)
    initial = gains.all()
    initial_per_ring = gains.per_ring()
    base, _ = evaluate(instance, (), objective, q)
    heap = [(-float(g), s, 0) for s, g in enumerate(initial.tolist())]
    heapq.heapify(heap)
    chosen: list[int] = []
    steps: list[GreedyStep] = []
    value = base
    for k in range(1, units + 1):
        # A gain stamped k - 1 was computed against the current state (k - 1 units added):
        # fresh. Older ones are upper bounds (submodularity): re-evaluate and push back.
        evaluations = 0
        while True:
            neg, s, stamp = heapq.heappop(heap)
            if stamp == k - 1:
                break
            evaluations += 1
            heapq.heappush(heap, (-gains.one(s), s, k - 1))
        gain = -neg
        runner_up = -heap[0][0] if heap else 0.0
        per_ring = gains.ring_gain(s)
        gains.add(s)
        chosen.append(s)
        value += gain
        steps.append(
            GreedyStep(
                round=k,
                site=s,
                gain=gain,
                gain_per_ring=per_ring,
                objective=value,
                evaluations=evaluations,
                runner_up=runner_up,
            )
        )
        if reuse_sites:
            heapq.heappush(heap, (-gains.one(s), s, k))
    final, _ = evaluate(instance, chosen, objective, q)
    return GreedyResult(
        sites=tuple(chosen),
        steps=tuple(steps),
        initial_gains=initial,
        initial_gains_per_ring=initial_per_ring,
        base=base,
        objective=final,
        total=instance.total,
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True, slots=True)
class ExactResult:
    """The MILP's outcome.

    Attributes:
        sites: the chosen candidate sites.
        objective: their true objective (:func:`evaluate`).
        bound: an upper bound on the optimum (HiGHS's dual bound plus, for ``expected``, the
            truncated tail).
        optimal: HiGHS proved optimality (within its tolerances).
        status: HiGHS's message.
        variables, constraints: the model's size.
        seconds: wall time.
    """

    sites: tuple[int, ...]
    objective: float
    bound: float
    optimal: bool
    status: str
    variables: int
    constraints: int
    seconds: float

    def gap(self, value: float) -> float:
        """Relative gap of ``value`` (e.g. the greedy's) to the upper bound."""
        return (self.bound - value) / self.bound if self.bound > 0 else 0.0


def _increments(
    instance: SitingInstance,
    m: sp.csc_array,
    units: int,
    objective: Objective,
    q: float,
    truncation: float,
) -> tuple[I64, I64, list[FloatArray], float]:
    """The MILP's places, increments per place, their values, and the neglected tail."""
    value = instance.value
    n0 = instance.existing
    reached = np.flatnonzero(np.diff(m.indptr) > 0)
    if objective == "cover" or q == 0.0:
        places = reached[(n0[reached] < 1) & (value[reached] > 0)]
        return places, np.ones(len(places), dtype=np.int64), [value[places]], 0.0
    # Places whose whole remaining value is negligible are left out; their value joins the
    # tail, so the bound stays a bound.
    remaining = value * q ** n0.astype(np.float64)
    negligible = remaining < truncation * 1e-6 * float(value.sum()) / max(1, len(value))
    places = reached[(value[reached] > 0) & ~negligible[reached]]
    tail = float(remaining[reached][negligible[reached]].sum())
    cap = max(1, math.ceil(math.log(truncation) / math.log(q)))
    depth = np.zeros(len(places), dtype=np.int64)
    coef: list[FloatArray] = []
    for i, p in enumerate(places.tolist()):
        column = np.sort(m.data[m.indptr[p] : m.indptr[p + 1]])[::-1]
        reachable = int(column[:units].sum())
        k = min(reachable, cap)
        depth[i] = k
        coef.append(remaining[p] * (1.0 - q) * q ** np.arange(k, dtype=np.float64))
        if k < reachable:
            tail += remaining[p] * q**k
    return places, depth, coef, tail


def solve_exact(
    instance: SitingInstance,
    units: int,
    *,
    objective: Objective = "cover",
    q: float = 0.0,
    time_limit_s: float = 120.0,
    truncation: float = 1e-3,
) -> ExactResult:
    """The optimal placement by MILP (HiGHS through ``scipy.optimize.milp``).

    Args:
        instance: the instance.
        units: how many units (each site takes at most one).
        objective: ``cover`` or ``expected`` (MEXCLP with ``q``).
        q: MEXCLP: probability that a volunteer in reach cannot come.
        time_limit_s: HiGHS's time limit; past it the result carries HiGHS's bound.
        truncation: ``expected``: stop the increments of a place where ``q**k`` falls below.

    Raises:
        ValueError: more units than sites, or ``q`` outside [0, 1).
        RuntimeError: HiGHS found no feasible solution.
    """
    if units > instance.n_sites:
        raise ValueError(f"{units} units but only {instance.n_sites} candidate sites")
    if not 0.0 <= q < 1.0:
        raise ValueError(f"q must be in [0, 1), got {q}")
    start = time.perf_counter()
    n_sites = instance.n_sites
    m = instance.members.tocsc()  # columns = places
    base, _ = evaluate(instance, (), objective, q)
    places, depth, coef, tail = _increments(instance, m, units, objective, q, truncation)
    n_y = int(depth.sum())
    n_vars = n_sites + n_y
    c = np.zeros(n_vars)
    c[n_sites:] = -np.concatenate(coef) if coef else np.empty(0)
    # rows: sum_k y_pk - sum_s m_sp x_s <= 0, one per place; then sum_s x_s = N
    y_rows = np.repeat(np.arange(len(places)), depth)
    y_cols = n_sites + np.arange(n_y)
    sub = m[:, places] if len(places) else sp.csc_array((n_sites, 0))
    sub_coo = sp.coo_array(sub)
    x_rows, x_cols, x_data = sub_coo.col, sub_coo.row, -sub_coo.data.astype(np.float64)
    if objective == "cover" or q == 0.0:
        x_data = np.full(len(x_data), -1.0)
    a = sp.csr_array(
        (
            np.concatenate([np.ones(n_y), x_data]),
            (np.concatenate([y_rows, x_rows]), np.concatenate([y_cols, x_cols])),
        ),
        shape=(len(places), n_vars),
    )
    count_row = sp.csr_array(
        (np.ones(n_sites), (np.zeros(n_sites, dtype=np.int64), np.arange(n_sites))),
        shape=(1, n_vars),
    )
    constraints = [LinearConstraint(count_row, units, units)]
    if len(places):
        constraints.append(LinearConstraint(a, -np.inf, 0.0))
    integrality = np.concatenate([np.ones(n_sites), np.zeros(n_y)])
    result = milp(
        c,
        integrality=integrality,
        bounds=Bounds(0.0, 1.0),
        constraints=constraints,
        options={"time_limit": float(time_limit_s), "mip_rel_gap": 0.0},
    )
    if result.x is None:
        raise RuntimeError(f"HiGHS found no solution: {result.message}")
    x = np.asarray(result.x[:n_sites])
    chosen = tuple(int(s) for s in np.flatnonzero(x > 0.5))
    true_value, _ = evaluate(instance, chosen, objective, q)
    dual = getattr(result, "mip_dual_bound", None)
    solver_bound = -float(dual) if dual is not None and math.isfinite(dual) else -float(result.fun)
    bound = base + max(solver_bound, -float(result.fun)) + tail
    return ExactResult(
        sites=chosen,
        objective=true_value,
        bound=max(bound, true_value),
        optimal=result.status == 0,
        status=str(result.message),
        variables=n_vars,
        constraints=len(places) + 1,
        seconds=time.perf_counter() - start,
    )


def brute_force(
    instance: SitingInstance, units: int, *, objective: Objective = "cover", q: float = 0.0
) -> tuple[tuple[int, ...], float]:
    """The optimum by enumeration (small instances only: tests).

    Returns:
        ``(sites, value)``: the first best set in lexicographic order and its objective.
    """
    best: tuple[tuple[int, ...], float] = ((), -math.inf)
    for combo in itertools.combinations(range(instance.n_sites), units):
        value, _ = evaluate(instance, combo, objective, q)
        if value > best[1]:
            best = (combo, value)
    return best
