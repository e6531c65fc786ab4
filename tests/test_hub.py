"""The hub never lets a slow or dead client stall anyone else.

A dead TCP peer cannot be produced on loopback on demand (the kernel buffers absorb megabytes
first), so the stalled client here is a sender whose ``send_text`` never returns: exactly what
the hub sees of a dead phone once the buffers are full.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from dispatch.hub import CLOSE_REPLACED, CLOSE_SLOW, OPERATOR_QUEUE, VOLUNTEER_QUEUE, Hub


class Recorder:
    """A client that reads everything at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []
        self.closed: int | None = None

    async def send_text(self, data: str) -> None:
        self.sent.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = code


class Stalled(Recorder):
    """A client that never reads again after the first message."""

    def __init__(self) -> None:
        super().__init__()
        self.forever = asyncio.Event()

    async def send_text(self, data: str) -> None:
        await self.forever.wait()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_a_stalled_volunteer_is_disconnected_and_others_are_served() -> None:
    hub = Hub()
    dead, alive = Stalled(), Recorder()
    hub.attach_volunteer("dead", dead, [])
    hub.attach_volunteer("alive", alive, [{"type": "hello", "seq": 0}])
    for seq in range(1, VOLUNTEER_QUEUE + 10):
        hub.deliver("dead", {"type": "assignment.offered", "seq": seq})
        assert hub.deliver("alive", {"type": "assignment.offered", "seq": seq})
        await asyncio.sleep(0)  # the event loop turns; the live client keeps reading
    await settle()
    assert not hub.is_connected("dead"), "a full queue ends the connection; nothing waits"
    assert dead.closed == CLOSE_SLOW
    assert [m["seq"] for m in alive.sent] == list(range(VOLUNTEER_QUEUE + 10))
    assert hub.deliver("dead", {"type": "x", "seq": 999}) is False  # the outbox replays later
    await hub.close()


@pytest.mark.asyncio
async def test_a_newer_connection_replaces_the_older() -> None:
    hub = Hub()
    first, second = Recorder(), Recorder()
    hub.attach_volunteer("v", first, [])
    hub.attach_volunteer("v", second, [{"type": "hello", "seq": 3}])
    await settle()
    assert first.closed == CLOSE_REPLACED
    hub.deliver("v", {"type": "assignment.offered", "seq": 4})
    await settle()
    assert [m["seq"] for m in second.sent] == [3, 4]
    await hub.close()


@pytest.mark.asyncio
async def test_slow_operators_lose_position_batches_never_state_changes() -> None:
    hub = Hub()
    slow, fast = Stalled(), Recorder()
    hub.attach_operator(slow)
    hub.attach_operator(fast)
    await settle()
    for i in range(OPERATOR_QUEUE * 2):
        hub.publish({"type": "positions", "items": [i]}, droppable=True)
        await asyncio.sleep(0)
    hub.publish({"type": "assignment.offered", "n": 1})
    await settle()
    assert hub.operators_connected == 2, "position batches are dropped, the feed stays"
    assert fast.sent[-1] == {"type": "assignment.offered", "n": 1}
    assert len(fast.sent) == OPERATOR_QUEUE * 2 + 1
    # State changes are never dropped: when they alone fill the queue, the operator goes.
    for n in range(OPERATOR_QUEUE + 5):
        hub.publish({"type": "assignment.accepted", "n": n})
        await asyncio.sleep(0)
    await settle()
    assert hub.operators_connected == 1
    assert slow.closed == CLOSE_SLOW
    assert [m["n"] for m in fast.sent if m["type"] == "assignment.accepted"] == list(
        range(OPERATOR_QUEUE + 5)
    )
    await hub.close()
