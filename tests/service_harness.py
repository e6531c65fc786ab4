"""A real service for the tests: uvicorn on port 0 in this event loop, or a child process.

In-process servers share the test's event loop, so the test holds the server's FakeClock and
moves time itself (``server.advance(30)``): no test sleeps to wait out a timeout. The crash
test runs the server as a child process (``python -m dispatch serve``) so it can SIGKILL it;
that server runs on a fake clock too, moved through the operator's clock endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from dispatch.app import create_app
from dispatch.core.clock import FakeClock
from dispatch.core.policy import DEFAULT_POLICY_PATH
from dispatch.service import Service
from dispatch.settings import Settings

OPERATOR_TOKEN = "operator-token-for-tests-0123456789"
T0 = 1_795_000_000.0  # 2026-11-19T08:53:20Z

#: Test-only incident types beside the shipped ones: one person within each ring; and one
#: that needs a mediator.
TEST_TYPES = """
[types.drill]
needs = {}
quota = { 1 = 1, 3 = 1, 5 = 1 }
offer_timeout_s = 30
max_open_offers = 5
points = 7
points_per_hour = 60
"""


def policy_file(tmp: Path) -> Path:
    path = tmp / "policy.toml"
    path.write_text(DEFAULT_POLICY_PATH.read_text(encoding="utf-8") + TEST_TYPES, "utf-8")
    return path


@dataclass
class Server:
    """A running in-process server."""

    url: str
    ws_url: str
    service: Service
    clock: FakeClock
    http: httpx.AsyncClient
    operator: dict[str, str] = field(
        default_factory=lambda: {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )

    async def advance(self, seconds: float) -> None:
        """Move the server's clock and let its timer act on it."""
        self.clock.advance(seconds)
        self.service.wake()
        for _ in range(50):  # let the timer task run its round
            await asyncio.sleep(0)

    async def put_volunteer(self, volunteer_id: str, **fields: Any) -> str:
        """Create a volunteer (an e-bike patroller by default) and return a token for them."""
        body = {"name": f"志愿者{volunteer_id}", "roles": ["patrol"], "teams": [], "mode": "ebike"}
        body.update(fields)
        r = await self.http.put(
            f"/api/v1/volunteers/{volunteer_id}", json=body, headers=self.operator
        )
        assert r.status_code in (200, 201), r.text
        r = await self.http.post(f"/api/v1/volunteers/{volunteer_id}/tokens", headers=self.operator)
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @contextlib.asynccontextmanager
    async def volunteer_socket(
        self, token: str, since: int | None = None
    ) -> AsyncIterator[ClientConnection]:
        url = f"{self.ws_url}/ws/volunteer?token={token}"
        if since is not None:
            url += f"&since={since}"
        async with connect(url, open_timeout=10) as ws:
            yield ws


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running_server(
    tmp: Path, *, store: str = "sqlite", start: float = T0, **overrides: Any
) -> AsyncIterator[Server]:
    """uvicorn on port 0 serving a fresh app on a FakeClock, in this event loop."""
    settings = Settings(
        store=store,  # type: ignore[arg-type]
        data_dir=tmp / "var",
        operator_tokens=(OPERATOR_TOKEN,),
        policy=policy_file(tmp),
        position_flush_s=0.05,
        feed_batch_s=0.05,
        **overrides,
    )
    clock = FakeClock(start)
    app = create_app(settings, clock=clock)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws="websockets-sansio",
        lifespan="on",
        log_level="warning",
        ws_max_size=1 << 20,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # surface a start-up failure
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        try:
            yield Server(url, f"ws://127.0.0.1:{port}", app.state.service, clock, http)
        finally:
            server.should_exit = True
            await task


async def receive(ws: ClientConnection, wait: float = 5.0) -> dict[str, Any]:
    """The next message, decoded (a test fails rather than hangs if none comes)."""
    text = await asyncio.wait_for(ws.recv(), wait)
    message: dict[str, Any] = json.loads(text)
    return message


async def receive_type(ws: ClientConnection, kind: str, wait: float = 5.0) -> dict[str, Any]:
    """The next message of ``kind``, skipping position batches."""
    while True:
        message = await receive(ws, wait)
        if message["type"] == kind:
            return message
        if message["type"] != "positions":
            raise AssertionError(f"expected {kind}, got {message}")


class ChildServer:
    """``python -m dispatch serve`` in a child process on a fake clock, for crash tests."""

    def __init__(self, tmp: Path, data_dir: Path, start: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env: Mapping[str, str] = {
            **os.environ,
            "DISPATCH_STORE": "sqlite",
            "DISPATCH_DATA_DIR": str(data_dir),
            "DISPATCH_OPERATOR_TOKENS": OPERATOR_TOKEN,
            "DISPATCH_POLICY": str(policy_file(tmp)),
            "DISPATCH_FAKE_CLOCK_START": repr(start),
            "DISPATCH_POSITION_FLUSH_S": "0.05",
        }
        self.log = (tmp / f"server-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dispatch", "serve", "--port", str(self.port)],
            env=dict(env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {Path(self.log.name).read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start within 60 s")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, nothing."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
