"""Load-generation helpers for ``bench_service.py``: child servers, cores, memory, clients.

* :class:`ChildServer`: ``python -m dispatch serve`` in a child process (sqlite store in a
  temporary folder on the ordinary disk), pinned to a set of cores with ``taskset``.
* :class:`BareServer` and :func:`bare_main`: the baseline of the ingest figure, a bare
  ``websockets`` server (``websockets.asyncio.server.serve`` under uvloop, as the service runs
  under uvloop) doing the parse-and-index work of a position message and nothing else: JSON,
  the same field checks as ``dispatch/app/ws.py`` (``geo.coords.check_latlon``,
  ``dispatch.core.clock.parse_iso``, the accuracy), ``units.index.LiveIndex.update``; an error
  reply for a rejected fix, like the service. ``GET /count`` answers its accepted fixes.
* :class:`RawFeed`: one volunteer websocket driven by hand for the ingest blast: the handshake
  through websockets' sans-I/O ``ClientProtocol``, then pre-serialised, masked frames written
  as fast as TCP takes them. A ``websockets`` client spends ~10-20 µs of Python per ``send``,
  about what the bare server spends per message, so with it the load generator's core, not
  the server's, would set the pace; pre-built frames cost the generator almost nothing.
* Small things: :func:`rss_mb` (``VmRSS``), :func:`cpu_seconds` (``utime + stime``),
  :func:`raise_nofile`, :func:`counter` (a Prometheus sample), :func:`position_text`.

Run as a script only to start the bare server:
``python -m benchmarks._service_load bare --port P --volunteers N --prefix ID``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import uvloop
from websockets.asyncio.server import ServerConnection, serve
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.uri import parse_uri

from dispatch.core.clock import parse_iso
from geo.coords import check_latlon
from geo.modes import Mode
from units.index import FixOutcome, LiveIndex
from units.vocab import Status

REPO: Final = Path(__file__).resolve().parent.parent
OPERATOR_TOKEN: Final = "bench-operator-token-0123456789abcdef"
HOST: Final = "127.0.0.1"
MAX_MESSAGE: Final = 64 * 1024  # dispatch/app/ws.py MAX_MESSAGE

__all__ = [
    "OPERATOR_TOKEN",
    "BareIndex",
    "BareServer",
    "ChildServer",
    "RawFeed",
    "RawHttp",
    "bare_main",
    "counter",
    "cpu_seconds",
    "free_port",
    "pin_threads",
    "position_text",
    "raise_nofile",
    "rss_mb",
]


# --------------------------------------------------------------------------- the machine


def raise_nofile() -> tuple[int, int]:
    """Raise this process's soft limit of open files to the hard limit (children inherit it).

    Returns:
        The ``(soft, hard)`` limits now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` (``VmRSS`` in ``/proc/<pid>/status``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid`` (all its threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def pin_threads(pid: int, cores: Collection[int]) -> None:
    """Pin every thread of ``pid`` to ``cores`` (no-op when empty)."""
    if not cores:
        return
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(tid), set(cores))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def counter(metrics_text: str, name: str, labels: str = "") -> float:
    """One sample of the Prometheus text format, e.g.
    ``counter(text, "dispatch_fixes_total", 'outcome="accepted"')``; 0 if absent."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "")
    match = re.search(rf"^{pattern} ([0-9.eE+-]+)$", metrics_text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def position_text(lat: float, lon: float, ts: str, accuracy_m: float = 8.0) -> str:
    """A volunteer's position message without ``id`` (so no reply unless it fails)."""
    return (
        f'{{"type":"position","lat":{lat:.6f},"lon":{lon:.6f},'
        f'"ts":"{ts}","accuracy_m":{accuracy_m:g}}}'
    )


# --------------------------------------------------------------------------- child servers


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env.update(extra)
    return env


class _Child:
    """A child process started under ``taskset`` with its log in a temporary folder."""

    process: subprocess.Popen[bytes]

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cores: Sequence[int]
    ):
        self.name = name
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.ws_url = f"ws://{HOST}:{self.port}"
        self.cores = tuple(cores)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.log_path = self.tmp / "server.log"
        prefix: list[str] = []
        if self.cores and shutil.which("taskset"):
            prefix = ["taskset", "-c", ",".join(map(str, self.cores))]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*prefix, *[a.replace("{port}", str(self.port)) for a in argv]],
            env=dict(env),
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        pin_threads(self.process.pid, self.cores)  # when taskset is missing

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, path: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(self.url + path, timeout=2, trust_env=False).status_code == 200:
                    pin_threads(self.pid, self.cores)  # threads started since (and verified)
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s")

    def affinity(self) -> set[int]:
        return os.sched_getaffinity(self.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class ChildServer(_Child):
    """``python -m dispatch serve`` on a free port: sqlite store in a fresh temporary folder
    (on the ordinary disk, so every commit pays its fsync), the system clock, one operator
    token, the shipped policy and dataset, uvicorn as ``dispatch/serve.py`` configures it."""

    def __init__(self, cores: Sequence[int] = (), extra_env: Mapping[str, str] | None = None):
        data = Path(tempfile.mkdtemp(prefix="bench-dispatch-data-"))
        env = _clean_env(
            {
                "DISPATCH_STORE": "sqlite",
                "DISPATCH_DATA_DIR": str(data),
                "DISPATCH_OPERATOR_TOKENS": OPERATOR_TOKEN,
                **(extra_env or {}),
            }
        )
        super().__init__(
            "dispatch",
            [sys.executable, "-m", "dispatch", "serve", "--port", "{port}"],
            env,
            cores,
        )
        self.data = data
        self.wait_ready("/healthz")

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.data, ignore_errors=True)


class BareServer(_Child):
    """The baseline: :func:`bare_main` in a child process (see the module doc)."""

    def __init__(self, n_volunteers: int, prefix: str, cores: Sequence[int] = ()):
        super().__init__(
            "bare",
            [
                sys.executable,
                "-m",
                "benchmarks._service_load",
                "bare",
                "--port",
                "{port}",
                "--volunteers",
                str(n_volunteers),
                "--prefix",
                prefix,
            ],
            _clean_env({}),
            cores,
        )
        self.wait_ready("/count")

    def accepted(self) -> int:
        r = httpx.get(self.url + "/count", timeout=10, trust_env=False)
        return int(json.loads(r.text)["accepted"])


# --------------------------------------------------------------------------- the bare server


class BareIndex:
    """The baseline's state: a live index of ``n`` volunteers (id = token) and counters."""

    def __init__(self, n_volunteers: int, prefix: str) -> None:
        ids = [f"{prefix}{i:06d}" for i in range(n_volunteers)]
        self.index = LiveIndex(freshness_s=300.0)
        slots = self.index.add_many(
            ids, mode=np.full(n_volunteers, int(Mode.EBIKE)), status=Status.AVAILABLE
        )
        self.slot_of = dict(zip(ids, slots.tolist(), strict=True))
        self.counts = {"accepted": 0, "rejected": 0, "errors": 0}

    def handle(self, slot: int, text: str) -> str | None:
        """The work ``dispatch/app/ws.py`` does for a position message, inline: the reply,
        if one is due (an error, or a result for a message with an ``id``)."""
        message_id: object = None
        try:
            if len(text) > MAX_MESSAGE:
                raise ValueError("too_large")
            message = json.loads(text)
            if not isinstance(message, dict):
                raise ValueError("malformed")
            message_id = message.get("id")
            if message.get("type") != "position":
                raise ValueError("unknown_type")
            lat, lon = check_latlon(message.get("lat"), message.get("lon"))
            ts = parse_iso(message.get("ts"), "ts")
            accuracy = message.get("accuracy_m")
            if accuracy is None:
                accuracy_m = math.nan
            else:
                if isinstance(accuracy, bool) or not isinstance(accuracy, int | float):
                    raise ValueError("invalid")
                accuracy_m = float(accuracy)
                if not (math.isfinite(accuracy_m) and accuracy_m >= 0):
                    raise ValueError("invalid")
            outcome = self.index.update(slot, lat, lon, ts, time.time(), accuracy_m)
            if outcome is not FixOutcome.ACCEPTED:
                self.counts["rejected"] += 1
                raise ValueError(outcome.wire)
            self.counts["accepted"] += 1
        except ValueError as exc:  # CoordinateError and InvalidInput are ValueErrors
            self.counts["errors"] += 1
            return json.dumps({"type": "error", "re": message_id, "code": str(exc)[:40]})
        if message_id is None:
            return None
        return json.dumps({"type": "result", "re": message_id, "ok": True})


def bare_main(port: int, n_volunteers: int, prefix: str) -> None:
    """Serve ``/ws/volunteer?token=<volunteer id>`` doing only the parse-and-index work;
    ``GET /count`` answers the counters."""
    state = BareIndex(n_volunteers, prefix)

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/count":
            return connection.respond(HTTPStatus.OK, json.dumps(state.counts))
        return None

    async def volunteer(ws: ServerConnection) -> None:
        assert ws.request is not None
        token = parse_qs(urlsplit(ws.request.path).query).get("token", [""])[0]
        slot = state.slot_of.get(token)
        if slot is None:
            await ws.close(4401, "a valid volunteer token is required")
            return
        await ws.send(json.dumps({"type": "hello", "volunteer_id": token, "seq": 0}))
        async for text in ws:
            reply = state.handle(slot, text if isinstance(text, str) else text.decode())
            if reply is not None:
                await ws.send(reply)

    async def run() -> None:
        async with serve(
            volunteer,
            HOST,
            port,
            process_request=process_request,
            compression=None,
            max_size=1 << 20,
        ) as server:
            print(f"bare: serving on ws://{HOST}:{port} ({n_volunteers} volunteers)", flush=True)
            await server.serve_forever()

    uvloop.run(run())


# --------------------------------------------------------------------------- raw client


class RawFeed:
    """One volunteer websocket: handshake via ``ClientProtocol``, then raw frame writes.

    Incoming frames go through the same protocol object (pings are answered); text frames
    are counted and ``error`` replies kept (the first few) so a rejected fix is noticed.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: ClientProtocol,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self.texts = 0
        self.errors: list[str] = []
        self.error_count = 0
        self._reading: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, sndbuf: int = 64 * 1024) -> RawFeed:
        """Connect and complete the handshake (the ``hello`` is read with the rest).

        Raises:
            ConnectionError: the server refused the handshake or closed.
        """
        uri = parse_uri(url)
        reader, writer = await asyncio.open_connection(uri.host, uri.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # A small send buffer keeps the backlog left in flight after a blast short.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        protocol = ClientProtocol(uri)
        protocol.send_request(protocol.connect())
        writer.write(b"".join(protocol.data_to_send()))
        feed = cls(reader, writer, protocol)
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError(f"{url}: closed during the handshake")
            protocol.receive_data(data)
            if protocol.handshake_exc is not None:
                raise ConnectionError(f"{url}: {protocol.handshake_exc}")
            handshake_done = feed._consume()
            if handshake_done:
                break
        feed._reading = asyncio.create_task(feed._read())
        return feed

    def _consume(self) -> bool:
        done = False
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                done = True
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.texts += 1
                data = bytes(event.data)
                if b'"type":"error"' in data or b'"type": "error"' in data:
                    self.error_count += 1
                    if len(self.errors) < 5:
                        self.errors.append(data.decode(errors="replace")[:200])
        pending = self.protocol.data_to_send()  # pongs, a close reply
        if pending:
            self.writer.write(b"".join(pending))
        return done

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await self.reader.read(65536):
                self.protocol.receive_data(data)
                self._consume()

    @staticmethod
    def frames(texts: Sequence[str]) -> bytes:
        """Masked client text frames for ``texts``, concatenated."""
        return b"".join(
            Frame(Opcode.TEXT, t.encode()).serialize(mask=True, extensions=[]) for t in texts
        )

    async def blast(self, chunk: bytes, times: int) -> None:
        """Write ``chunk`` ``times`` times, as fast as TCP takes it."""
        for _ in range(times):
            self.writer.write(chunk)
            await self.writer.drain()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.protocol.send_close(1000, "bye")
            self.writer.write(b"".join(self.protocol.data_to_send()))
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading


class RawHttp:
    """A minimal keep-alive HTTP/1.1 client on one connection, for the timed requests.

    httpx spends 1-2 ms of Python per request on the development VM (building the request,
    h11, its connection pool), which would be charged to the server's latency budget; this
    writes a fixed request head and reads ``Content-Length`` bytes back.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host = host
        self.port = port
        self._head = (
            f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: object = None, *, decode: bool = True
    ) -> tuple[int, Any]:
        """``(status, the JSON body decoded)`` (the text if not ``decode``); one at a time.

        A connection the server closed while idle (uvicorn's keep-alive timeout is 5 s) is
        replaced, and a request it closed before answering anything is sent again.
        """
        try:
            return await self._request(method, path, body, decode)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            self._reader = self._writer = None
            return await self._request(method, path, body, decode)

    async def _request(self, method: str, path: str, body: object, decode: bool) -> tuple[int, Any]:
        stale = self._reader is not None and self._reader.at_eof()
        if self._writer is None or self._writer.is_closing() or stale:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self._reader is not None
        payload = b"" if body is None else json.dumps(body).encode()
        self._writer.write(
            f"{method} {path} HTTP/1.1\r\n".encode()
            + self._head
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        data = await self._reader.readexactly(length) if length else b""
        if close:  # the next request opens a new connection
            self._writer.close()
        if not decode:
            return status, data.decode()
        return status, json.loads(data) if data else None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="helpers of bench_service.py")
    sub = parser.add_subparsers(dest="command", required=True)
    bare = sub.add_parser("bare", help="run the bare websockets baseline server")
    bare.add_argument("--port", type=int, required=True)
    bare.add_argument("--volunteers", type=int, required=True)
    bare.add_argument("--prefix", default="B")
    args = parser.parse_args(argv)
    raise_nofile()
    bare_main(args.port, args.volunteers, args.prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
