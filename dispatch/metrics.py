"""Prometheus metrics of one service instance (its own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """Counters, histograms and gauges served at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.fixes_ingested = Counter(
            "dispatch_fixes_total",
            "Position fixes received, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.offers = Counter(
            "dispatch_offers_total", "Assignments offered to volunteers", registry=self.registry
        )
        self.answers = Counter(
            "dispatch_answers_total",
            "Assignment events from volunteers and operators",
            ["event"],
            registry=self.registry,
        )
        self.dispatch_latency = Histogram(
            "dispatch_incident_seconds",
            "Incident creation to its offers committed and pushed",
            buckets=_FAST,
            registry=self.registry,
        )
        self.answer_latency = Histogram(
            "dispatch_answer_seconds",
            "Handling of an assignment event",
            buckets=_FAST,
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "dispatch_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_FAST,
            registry=self.registry,
        )
        self.gc_pause = Histogram(
            "dispatch_gc_pause_seconds",
            "Pauses of the cyclic garbage collector, by generation (see dispatch/gcpolicy.py)",
            ["generation"],
            buckets=_FAST,
            registry=self.registry,
        )
        self.volunteers_connected = Gauge(
            "dispatch_volunteers_connected",
            "Volunteers with an open websocket",
            registry=self.registry,
        )
        self.operators_connected = Gauge(
            "dispatch_operators_connected",
            "Operators with an open feed",
            registry=self.registry,
        )

        self._accepted = self.fixes_ingested.labels("accepted")
        self._rejected = self.fixes_ingested.labels("rejected")

    def fixes(self, accepted: int, rejected: int) -> None:
        if accepted:
            self._accepted.inc(accepted)
        if rejected:
            self._rejected.inc(rejected)

    def fix_accepted(self) -> None:
        self._accepted.inc()

    def fix_rejected(self) -> None:
        self._rejected.inc()

    def answer(self, event: str, seconds: float) -> None:
        self.answers.labels(event).inc()
        self.answer_latency.observe(seconds)

    def observe_dispatch(self, seconds: float) -> None:
        self.dispatch_latency.observe(seconds)

    def observe_gc(self, generation: int, seconds: float) -> None:
        self.gc_pause.labels(str(generation)).observe(seconds)

    def set_connected(self, volunteers: int, operators: int) -> None:
        self.volunteers_connected.set(volunteers)
        self.operators_connected.set(operators)

    def render(self) -> bytes:
        return generate_latest(self.registry)
