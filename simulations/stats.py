"""Figures of a simulated scenario, per replication, with 95% confidence intervals.

Theory of operation
-------------------
Replications are independent (each has its own keys), so a figure computed once per
replication (a 90th percentile, a compliance share) is one observation of a random variable;
the mean over ``R`` replications and its Student-t interval ``mean +- t(0.975, R-1) s /
sqrt(R)`` are the estimate and its 95% confidence interval. With common random numbers two
scenarios share their incidents and their volunteers' answers, so their *paired* differences
per replication (:func:`compare`) have a much narrower interval than the two intervals
suggest: that is why the day simulation keys every draw.

Percentiles of response times use the inverted CDF (no interpolation), because a response
that never came is ``inf``: the 90th percentile is ``inf`` as soon as more than 10% of the
incidents never got their ring's quota, which is what a planner must see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from dispatch.core.policy import RING_MINUTES
from simulations.day import ReplicationResult

__all__ = [
    "Estimate",
    "as_table",
    "compare",
    "compliance_grid",
    "estimate",
    "metrics",
    "response_quantile",
    "summarise",
]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A figure's mean over replications and its 95% confidence interval.

    Attributes:
        mean: the mean (``nan`` when undefined, ``inf`` when a replication gave ``inf``).
        low, high: the interval's ends (``nan`` with fewer than two finite replications).
        n: replications.
        values: the per-replication values.
    """

    mean: float
    low: float
    high: float
    n: int
    values: tuple[float, ...]

    def to_json(self) -> dict[str, object]:
        """JSON-friendly (``inf`` and ``nan`` as strings, which JSON lacks)."""
        return {
            "mean": _json_float(self.mean),
            "ci95": [_json_float(self.low), _json_float(self.high)],
            "n": self.n,
            "values": [_json_float(v) for v in self.values],
        }


def _json_float(value: float) -> float | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def estimate(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean and Student-t confidence interval of per-replication values.

    Args:
        values: one value per replication.
        confidence: the interval's level.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0 or np.isnan(v).all():
        return Estimate(math.nan, math.nan, math.nan, n, tuple(v.tolist()))
    if np.isinf(v).any():
        mean = float(np.mean(v))
        return Estimate(mean, math.nan, math.nan, n, tuple(v.tolist()))
    mean = float(np.mean(v))
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n, tuple(v.tolist()))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * np.std(v, ddof=1) / math.sqrt(n))
    return Estimate(mean, mean - half, mean + half, n, tuple(v.tolist()))


def response_quantile(response: npt.NDArray[np.float64], q: float) -> float:
    """The ``q`` quantile of response times (``inf`` counts as never), without interpolation.

    Args:
        response: seconds; ``inf`` for never; ``nan`` entries are ignored.
        q: in [0, 1].
    """
    r = response[~np.isnan(response)]
    if not len(r):
        return math.nan
    return float(np.quantile(r, q, method="inverted_cdf"))


def metrics(result: ReplicationResult) -> dict[str, float]:
    """The scalar figures of one replication.

    Keys: ``incidents``; per ring ``r``: ``p50_response_s_r{r}``, ``p90_response_s_r{r}``,
    ``compliance_r{r}`` (share of the incidents that want someone in the ring whose quota
    was on scene within it), ``never_r{r}`` (share whose ring quota never arrived at all);
    ``unserved_share`` (nobody ever came); ``offers_per_incident``; ``acceptance_rate``
    (accepted / offered); fatigue: ``alerts_per_volunteer_day`` (over volunteers on duty at
    least once), ``alerted_share_day`` (share of them alerted at least once a day),
    ``alerts_p99_day`` and ``alerts_max_day`` (offers one volunteer got in one day).
    """
    inc = result.incidents
    out: dict[str, float] = {"incidents": float(len(inc))}
    met = inc.met()
    wanted = inc.wanted()
    for j, ring in enumerate(RING_MINUTES):
        w = wanted[:, j]
        response = inc.response_s[w, j]
        out[f"p50_response_s_r{ring}"] = response_quantile(response, 0.5)
        out[f"p90_response_s_r{ring}"] = response_quantile(response, 0.9)
        out[f"compliance_r{ring}"] = float(met[w, j].mean()) if w.any() else math.nan
        out[f"never_r{ring}"] = float(np.isinf(response).mean()) if w.any() else math.nan
    n = len(inc)
    out["unserved_share"] = float(inc.unserved.mean()) if n else math.nan
    out["offers_per_incident"] = float(inc.offers.mean()) if n else math.nan
    offers = int(inc.offers.sum())
    out["acceptance_rate"] = float(inc.accepted.sum()) / offers if offers else math.nan
    ever = result.duty_hours > 0
    alerts = result.alerts[:, ever]
    out["alerts_per_volunteer_day"] = float(alerts.mean()) if alerts.size else math.nan
    out["alerted_share_day"] = float((alerts > 0).mean()) if alerts.size else math.nan
    per_day = alerts[alerts > 0]
    out["alerts_p99_day"] = (
        float(np.quantile(per_day, 0.99, method="inverted_cdf")) if per_day.size else 0.0
    )
    out["alerts_max_day"] = float(alerts.max()) if alerts.size else 0.0
    return out


def summarise(results: Sequence[ReplicationResult]) -> dict[str, Estimate]:
    """Each figure of :func:`metrics` over the replications."""
    per = [metrics(r) for r in results]
    keys = list(per[0]) if per else []
    return {k: estimate([m[k] for m in per]) for k in keys}


def compare(
    baseline: Sequence[ReplicationResult], scenario: Sequence[ReplicationResult]
) -> dict[str, Estimate]:
    """Paired differences (scenario - baseline) of each figure, replication by replication.

    Raises:
        ValueError: the two runs do not have the same replications.
    """
    if [r.replication for r in baseline] != [r.replication for r in scenario]:
        raise ValueError("compare needs the same replications in both runs")
    a = [metrics(r) for r in baseline]
    b = [metrics(r) for r in scenario]
    keys = list(a[0]) if a else []
    return {k: estimate([y[k] - x[k] for x, y in zip(a, b, strict=True)]) for k in keys}


def compliance_grid(
    results: Sequence[ReplicationResult], n_townships: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Ring compliance by township x hour of the day, pooled over replications and days.

    Returns:
        ``(share, count)``: ``share[ring, township, hour]`` (``nan`` where no incident wanted
        anyone in that ring) and ``count`` the incidents behind each cell.
    """
    rings = len(RING_MINUTES)
    met = np.zeros((rings, n_townships, 24), dtype=np.int64)
    count = np.zeros((rings, n_townships, 24), dtype=np.int64)
    for result in results:
        inc = result.incidents
        ok = inc.met()
        wanted = inc.wanted()
        for j in range(rings):
            w = wanted[:, j]
            np.add.at(count[j], (inc.township[w], inc.hour[w]), 1)
            np.add.at(met[j], (inc.township[w], inc.hour[w]), ok[w, j].astype(np.int64))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(count > 0, met / np.maximum(count, 1), np.nan)
    return share, count


def as_table(estimates: Mapping[str, Estimate]) -> list[dict[str, object]]:
    """Rows ``metric, mean, ci95_low, ci95_high, n`` for a CSV."""
    return [
        {"metric": k, "mean": e.mean, "ci95_low": e.low, "ci95_high": e.high, "n": e.n}
        for k, e in estimates.items()
    ]
