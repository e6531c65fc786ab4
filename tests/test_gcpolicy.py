"""The garbage-collector schedule: no automatic full collection, full ones between events."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.gcpolicy import GcPolicy
from dispatch.settings import Settings, SettingsError
from tests.service_harness import running_server


@pytest.fixture
def pauses() -> list[tuple[int, float]]:
    return []


@pytest.fixture
def policy(pauses: list[tuple[int, float]]) -> Iterator[GcPolicy]:
    before = gc.get_threshold()
    installed = GcPolicy(
        full_every_s=600.0,
        full_max_s=3600.0,
        on_pause=lambda generation, seconds: pauses.append((generation, seconds)),
    )
    installed.install(now=1_000.0)
    try:
        yield installed
    finally:
        installed.uninstall()
        assert gc.get_threshold() == before


def full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


def installed(policy: GcPolicy) -> bool:
    return policy.installed


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_install_switches_automatic_full_collections_off_and_uninstall_restores() -> None:
    before = gc.get_threshold()
    policy = GcPolicy()
    policy.install(now=0.0)
    try:
        assert policy.installed
        assert gc.get_threshold()[:2] == before[:2]
        assert gc.get_threshold()[2] > 1_000_000
        with pytest.raises(RuntimeError, match="already installed"):
            policy.install(now=0.0)
    finally:
        policy.uninstall()
    assert gc.get_threshold() == before
    assert not installed(policy)
    policy.uninstall()  # a second time: nothing to undo


@pytest.mark.usefixtures("policy")
def test_long_lived_garbage_never_triggers_a_full_collection() -> None:
    """What made the pauses: many objects surviving the young generations. Under the
    policy they reach the old generation without any automatic full collection."""
    full = full_collections()
    keep = [[Cycle() for _ in range(1_000)] for _ in range(300)]  # 300,000 survivors
    for _ in range(200):
        _ = [Cycle() for _ in range(1_000)]  # and cyclic garbage, young collections only
    assert full_collections() == full
    del keep


def test_a_full_collection_waits_for_a_quiet_moment_and_the_limit(
    policy: GcPolicy, pauses: list[tuple[int, float]]
) -> None:
    full = full_collections()
    assert not policy.maybe_collect(1_000.0 + 599.0, quiet=True)  # not due yet
    assert not policy.maybe_collect(1_000.0 + 601.0, quiet=False)  # due, but offers open
    assert full_collections() == full
    assert policy.maybe_collect(1_000.0 + 601.0, quiet=True)
    assert full_collections() == full + 1
    assert policy.full_collections == 1
    assert pauses[-1][0] == 2
    assert pauses[-1][1] >= 0.0
    # the next is due 600 s after this one; when never quiet, 3,600 s after it
    assert not policy.due(1_601.0 + 599.0, quiet=True)
    assert policy.due(1_601.0 + 600.0, quiet=True)
    assert not policy.due(1_601.0 + 3_599.0, quiet=False)
    assert policy.maybe_collect(1_601.0 + 3_600.0, quiet=False)
    assert full_collections() == full + 2


def test_young_collections_are_observed_too(
    policy: GcPolicy, pauses: list[tuple[int, float]]
) -> None:
    gc.collect(0)
    gc.collect(1)
    assert [g for g, _ in pauses[-2:]] == [0, 1]
    assert policy.full_collections == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"full_every_s": 0.0}, "full_every_s"),
        ({"full_every_s": float("nan")}, "full_every_s"),
        ({"full_every_s": 600.0, "full_max_s": 60.0}, "full_max_s"),
        ({"full_max_s": float("inf")}, "full_max_s"),
    ],
)
def test_bad_periods_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GcPolicy(
            full_every_s=kwargs.get("full_every_s", 600.0),
            full_max_s=kwargs.get("full_max_s", 3600.0),
        )


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"gc_full_every_s": "-1"}, "gc_full_every_s"),
        ({"gc_full_every_s": "inf"}, "gc_full_every_s"),
        ({"gc_full_every_s": "600", "gc_full_max_s": "60"}, "gc_full_max_s"),
        ({"gc_full_max_s": "inf"}, "gc_full_max_s"),
    ],
)
def test_settings_refuse_bad_periods(values: dict[str, str], field: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({f"DISPATCH_{k.upper()}": v for k, v in values.items()})
    assert caught.value.field == field


def test_settings_zero_leaves_pythons_schedule() -> None:
    settings = Settings.from_env({"DISPATCH_GC_FULL_EVERY_S": "0"})
    assert settings.gc_full_every_s == 0.0


@pytest.mark.asyncio
async def test_the_server_collects_between_events_and_reports_the_pauses(tmp_path: Path) -> None:
    before = gc.get_threshold()
    async with running_server(tmp_path, gc_full_every_s=600.0, gc_full_max_s=3600.0) as server:
        policy = server.service.gc_policy
        assert policy is not None
        assert policy.installed
        assert gc.get_threshold()[2] > 1_000_000
        full = full_collections()
        await server.advance(599.0)
        assert full_collections() == full
        await server.advance(2.0)
        assert policy.full_collections == 1
        assert full_collections() == full + 1
        metrics = (await server.http.get("/metrics")).text
        assert 'dispatch_gc_pause_seconds_count{generation="2"} 1.0' in metrics
    assert gc.get_threshold() == before


@pytest.mark.asyncio
async def test_zero_leaves_the_collector_alone(tmp_path: Path) -> None:
    before = gc.get_threshold()
    async with running_server(tmp_path, gc_full_every_s=0.0) as server:
        assert server.service.gc_policy is None
        assert gc.get_threshold() == before
