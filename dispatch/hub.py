"""The websocket hub: who is connected, and getting messages to them.

Theory of operation
-------------------
Volunteers: every message for a volunteer is first made durable in the store's outbox (with
the volunteer's ``seq``), then handed to the hub. If the volunteer is connected, the message
goes into that connection's bounded queue, and the connection's own writer task sends it.
A volunteer that reads too slowly fills its queue; the hub then closes that connection
(code 1013, "try again later") instead of waiting or dropping: the phone reconnects with
``since=`` and the outbox replays everything unacknowledged. A newer connection of the same
volunteer replaces the older one, which is closed with 4409.

Operators: the feed is every state change as it happens plus ``positions`` batches. Each
operator connection has a bounded queue. When it is full, position batches are dropped
(the next batch carries newer positions anyway); a state-change message is never dropped:
an operator that cannot keep up with those is disconnected (1013) and resynchronises
through the REST API on reconnect.

Nothing here blocks: ``deliver`` and ``publish`` only ``put_nowait`` into queues, so one slow
or dead client never stalls the engine or anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

__all__ = ["CLOSE_REPLACED", "CLOSE_SLOW", "Connection", "Hub", "Sender"]

log = logging.getLogger(__name__)

CLOSE_REPLACED: Final = 4409
CLOSE_SLOW: Final = 1013
VOLUNTEER_QUEUE: Final = 256
OPERATOR_QUEUE: Final = 1024


class Sender(Protocol):
    """What the hub needs of a websocket: send text, close with a code."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


@dataclass(eq=False)
class Connection:
    socket: Sender
    queue: asyncio.Queue[tuple[bool, str]]
    writer: asyncio.Task[None] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def _write(self) -> None:
        try:
            while True:
                _, text = await self.queue.get()
                await self.socket.send_text(text)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("websocket send failed; dropping the connection", exc_info=True)
            self.closed.set()

    def start(self) -> None:
        self.writer = asyncio.create_task(self._write())

    def push(self, message: dict[str, Any]) -> bool:
        """Queue a reply on this connection only; False (and the connection is dropped by
        its owner) if the queue is full."""
        try:
            self.queue.put_nowait((True, _dumps(message)))
        except asyncio.QueueFull:
            self.closed.set()
            return False
        return True

    async def close(self, code: int, reason: str) -> None:
        self.closed.set()
        if self.writer is not None:
            self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.writer
        with contextlib.suppress(Exception):
            await self.socket.close(code, reason)


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class Hub:
    """Connected volunteers and operators, and non-blocking delivery to them.

    Args:
        on_change: called with (volunteers connected, operators connected) after each change,
            e.g. to update a gauge.
    """

    def __init__(self, on_change: Callable[[int, int], None] | None = None) -> None:
        self._volunteers: dict[str, Connection] = {}
        self._operators: set[Connection] = set()
        self._on_change = on_change or (lambda _v, _o: None)
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ volunteers

    @property
    def volunteers_connected(self) -> int:
        return len(self._volunteers)

    @property
    def operators_connected(self) -> int:
        return len(self._operators)

    def is_connected(self, volunteer_id: str) -> bool:
        return volunteer_id in self._volunteers

    def attach_volunteer(
        self,
        volunteer_id: str,
        socket: Sender,
        first: list[dict[str, Any]],
    ) -> Connection:
        """Register ``socket`` as the volunteer's connection and queue ``first`` (hello and
        replay) ahead of anything live. The previous connection, if any, is closed (4409) in
        the background. Synchronous, so a caller holding the service lock can read the outbox
        and attach with no message slipping between the two.

        Returns:
            The connection: ``closed`` is set when the hub drops it (replaced, too slow,
            broken); ``push`` queues a reply in order with everything else.
        """
        connection = Connection(socket, asyncio.Queue(VOLUNTEER_QUEUE + len(first)))
        for message in first:
            connection.queue.put_nowait((True, _dumps(message)))
        previous = self._volunteers.get(volunteer_id)
        self._volunteers[volunteer_id] = connection
        connection.start()
        self._on_change(len(self._volunteers), len(self._operators))
        if previous is not None:
            self._spawn(previous.close(CLOSE_REPLACED, "replaced by a newer connection"))
        return connection

    async def detach_volunteer(self, volunteer_id: str, connection: Connection) -> None:
        """Forget ``connection`` (if it is still the volunteer's current one) and close it."""
        if self._volunteers.get(volunteer_id) is connection:
            del self._volunteers[volunteer_id]
            self._on_change(len(self._volunteers), len(self._operators))
        await connection.close(1000, "bye")

    def deliver(self, volunteer_id: str, message: dict[str, Any]) -> bool:
        """Queue a durable message (it carries its ``seq``) for a connected volunteer.

        Returns:
            False if the volunteer is not connected (the outbox replays it later).
        """
        connection = self._volunteers.get(volunteer_id)
        if connection is None:
            return False
        try:
            connection.queue.put_nowait((True, _dumps(message)))
        except asyncio.QueueFull:
            log.info("volunteer %s reads too slowly; closing its connection", volunteer_id)
            del self._volunteers[volunteer_id]
            self._spawn(connection.close(CLOSE_SLOW, "too slow; reconnect with since="))
            self._on_change(len(self._volunteers), len(self._operators))
            return False
        return True

    # ------------------------------------------------------------- operators

    def attach_operator(self, socket: Sender) -> Connection:
        """Register an operator feed connection."""
        connection = Connection(socket, asyncio.Queue(OPERATOR_QUEUE))
        self._operators.add(connection)
        connection.start()
        self._on_change(len(self._volunteers), len(self._operators))
        return connection

    async def detach_operator(self, connection: Connection) -> None:
        self._operators.discard(connection)
        self._on_change(len(self._volunteers), len(self._operators))
        await connection.close(1000, "bye")

    def publish(self, message: dict[str, Any] | str, *, droppable: bool = False) -> None:
        """Send a feed message (a dict, or its JSON text) to every operator; ``droppable``
        ones (position batches) are dropped for an operator whose queue is full, others
        disconnect that operator."""
        if not self._operators:
            return
        text = message if isinstance(message, str) else _dumps(message)
        for connection in list(self._operators):
            if connection.queue.full() and not droppable:
                self._drop_positions(connection)
            try:
                connection.queue.put_nowait((not droppable, text))
            except asyncio.QueueFull:
                if droppable:
                    continue
                log.info("an operator reads too slowly; closing its feed")
                self._operators.discard(connection)
                self._spawn(connection.close(CLOSE_SLOW, "too slow; resynchronise"))
                self._on_change(len(self._volunteers), len(self._operators))

    @staticmethod
    def _drop_positions(connection: Connection) -> None:
        """Make room by discarding queued position batches, keeping state changes in order."""
        kept = []
        while not connection.queue.empty():
            item = connection.queue.get_nowait()
            if item[0]:
                kept.append(item)
        for item in kept:
            connection.queue.put_nowait(item)

    # ---------------------------------------------------------------- common

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Close every connection (server shutdown: 1001 going away)."""
        for connection in [*self._volunteers.values(), *self._operators]:
            await connection.close(1001, "server shutting down")
        self._volunteers.clear()
        self._operators.clear()
        for task in list(self._background):
            with contextlib.suppress(BaseException):
                await task
