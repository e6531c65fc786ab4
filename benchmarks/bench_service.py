"""Benchmark of the dispatch service through the real server (§7 of the issue).

The server is ``python -m dispatch serve`` in a child process (sqlite store in a temporary
folder on the ordinary disk, so commits pay their fsync; the system clock; uvicorn with
uvloop, httptools and ``websockets-sansio`` as ``dispatch/serve.py`` sets it up), pinned to
one core; the load generator is this process (uvloop, ``websockets`` clients, httpx), pinned
to the other. Every phase starts a fresh server. Volunteers are created through the REST API
with the gateway's operator token, made available, given tokens and placed around the county
seat (37.3472 N, 115.9651 E) with bulk ``POST /positions``.

Phases and targets (the issue):

* ``latency``: 2,000 volunteer websockets open, 2,000 position messages/s spread over them in
  the background (no ``id``, so no reply; ``ts`` = the clock at sending, so never ``stale`` or
  ``future``); then, one at a time, ``POST /incidents`` (``medical``: a few offers) next to a
  random volunteer, timed from just before the POST to the first ``assignment.offered`` of
  that incident on any volunteer socket; each incident is closed afterwards so its volunteers
  are free again. p50 <= 5 ms, p99 <= 20 ms. The timed POSTs go through a minimal keep-alive
  HTTP client (``_service_load.RawHttp``); the same run with httpx is printed beside it.
* ``ingest``: N raw websockets blast pre-built position frames as fast as the server takes
  them; the accepted fixes (the ``dispatch_fixes_total{outcome="accepted"}`` delta) over the
  time from the first write until the counter has them all; then the same load against a bare
  ``websockets`` server doing the same parse-and-index work (``_service_load.bare_main``),
  pinned to the same core; alternating, median of the repeats. Ratio >= 0.5.
* ``10k``: 10,000 volunteers connected to one process: RSS added by the connections
  (``VmRSS`` once the roster is loaded, then with 10,000 websockets open and after the load)
  <= 1.5 GiB; push latency with 2,000 fixes/s in the background, as incident -> first offer,
  and as one manual ``POST /incidents/{id}/offers`` to 100 volunteers -> each of the 100
  receipts: p99 <= 50 ms.

One operator feed (``/ws/operator``, the command center's console) is connected in the
latency and 10k phases, as in production (``--operators``): it receives every state change.

The machine's other processes share its cores: each phase prints how busy the server's core
was in all and how much of that was the server, and the ingest figures are also given per
CPU-second of the server (insensitive to time stolen by other processes).

Run: ``.venv/bin/python benchmarks/bench_service.py [--quick] [--volunteers N]
[--incidents N] [--skip-10k]`` (about 10 minutes; ``--quick`` about 2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx
import numpy as np
import uvloop
from tqdm import tqdm
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._service_load import (
    HOST,
    OPERATOR_TOKEN,
    BareServer,
    ChildServer,
    RawFeed,
    RawHttp,
    counter,
    cpu_seconds,
    pin_threads,
    position_text,
    raise_nofile,
    rss_mb,
)
from dispatch.core.clock import to_iso

T = TypeVar("T")
Post = Callable[[str, object], Awaitable[tuple[int, Any]]]

SEAT: Final = (37.3472, 115.9651)
M_PER_DEG: Final = 111_195.0
MODES: Final = ("walk", "bike", "ebike", "car")
MODE_SHARE: Final = (0.35, 0.10, 0.40, 0.15)
INCIDENT_TYPE: Final = "medical"  # quota {1: 1, 3: 2, 5: 2}: a few offers, anyone will do

TARGET_P50_MS: Final = 5.0
TARGET_P99_MS: Final = 20.0
TARGET_RATIO: Final = 0.5
TARGET_RSS_MB: Final = 1.5 * 1024
TARGET_PUSH_P99_MS: Final = 50.0

POLL_S: Final = 0.05  # ingest: how often the accepted counter is read
PER_CHUNK: Final = 64  # ingest: frames per write

_T0 = time.perf_counter()


def progress(message: str) -> None:
    print(f"  [{time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def bar(total: int, desc: str) -> tqdm[Any]:
    return tqdm(
        total=total, desc=f"  {desc}", unit="", leave=False, file=sys.stderr, mininterval=1.0
    )


def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation); NaN for no values."""
    return float(np.percentile(values, q)) if values else math.nan


def summary(label: str, values: Sequence[float]) -> str:
    return (
        f"{label}: n={len(values)}, p50 {pct(values, 50):.2f} ms, p90 {pct(values, 90):.2f} ms, "
        f"p99 {pct(values, 99):.2f} ms, max {max(values, default=math.nan):.2f} ms"
    )


# --------------------------------------------------------------------------- the machine


def core_jiffies() -> dict[int, tuple[int, int]]:
    """Per core, ``(busy, total)`` jiffies since boot (``/proc/stat``)."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            v = [int(x) for x in values]
            idle = v[3] + v[4]  # idle, iowait
            out[int(name[3:])] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


@dataclass
class Usage:
    """How busy the server's cores were over a stretch, and how much of that the server."""

    pid: int
    cores: tuple[int, ...]
    _start: tuple[float, float, dict[int, tuple[int, int]]] = (0.0, 0.0, {})

    def __post_init__(self) -> None:
        self._start = (time.perf_counter(), cpu_seconds(self.pid), core_jiffies())

    def report(self) -> tuple[float, float]:
        """``(server CPU share of one core, the cores' busy share in all)``."""
        wall0, cpu0, jiffies0 = self._start
        wall, cpu, jiffies = time.perf_counter(), cpu_seconds(self.pid), core_jiffies()
        busy = total = 0
        for c in self.cores or tuple(jiffies):
            busy += jiffies[c][0] - jiffies0[c][0]
            total += jiffies[c][1] - jiffies0[c][1]
        return (cpu - cpu0) / (wall - wall0), busy / total if total else math.nan

    def line(self, items: int = 0, what: str = "") -> str:
        """A sentence on the usage; with ``items``, the server's CPU time per item too."""
        server, cores = self.report()
        per = ""
        if items:
            cpu = server * (time.perf_counter() - self._start[0])
            per = f" ({cpu / items * 1e3:.1f} ms of server CPU per {what}, all load included)"
        return (
            f"the server used {server:.0%} of a core{per}; its core(s) "
            f"{list(self.cores) or 'all'} were {cores:.0%} busy in all (the rest: other "
            "processes)"
        )


def hist(metrics_text: str, name: str, labels: str = "") -> tuple[float, float]:
    """``(sum, count)`` of a Prometheus histogram."""
    return (
        counter(metrics_text, f"{name}_sum", labels),
        counter(metrics_text, f"{name}_count", labels),
    )


def mean_ms(before: str, after: str, name: str, labels: str = "") -> float:
    """Mean of a histogram's observations between two scrapes, ms."""
    s0, n0 = hist(before, name, labels)
    s1, n1 = hist(after, name, labels)
    return (s1 - s0) / (n1 - n0) * 1e3 if n1 > n0 else math.nan


# --------------------------------------------------------------------------- the roster


@dataclass
class Roster:
    """Volunteers placed around the county seat; ``tokens`` once issued."""

    ids: list[str]
    lat: list[float]
    lon: list[float]
    mode: list[str]
    tokens: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def place(n: int, prefix: str, radius_m: float, seed: int) -> Roster:
    """``n`` volunteers uniformly over a disk of ``radius_m`` around the seat."""
    rng = np.random.default_rng(seed)
    r = radius_m * np.sqrt(rng.uniform(0.0, 1.0, n))
    a = rng.uniform(0.0, 2 * math.pi, n)
    lat = SEAT[0] + r * np.sin(a) / M_PER_DEG
    lon = SEAT[1] + r * np.cos(a) / (M_PER_DEG * math.cos(math.radians(SEAT[0])))
    mode = rng.choice(len(MODES), n, p=np.array(MODE_SHARE))
    return Roster(
        [f"{prefix}{i:06d}" for i in range(n)],
        lat.tolist(),
        lon.tolist(),
        [MODES[m] for m in mode.tolist()],
    )


def near(lat: float, lon: float, metres: float, rng: random.Random) -> tuple[float, float]:
    """A point within ``metres`` of ``(lat, lon)``."""
    r = metres * math.sqrt(rng.random())
    a = rng.uniform(0.0, 2 * math.pi)
    return (
        lat + r * math.sin(a) / M_PER_DEG,
        lon + r * math.cos(a) / (M_PER_DEG * math.cos(math.radians(lat))),
    )


async def in_parallel(
    items: Sequence[T], work: Callable[[T], Awaitable[None]], concurrency: int, desc: str
) -> None:
    """``work(item)`` for every item, ``concurrency`` at a time, with a progress bar."""
    queue: asyncio.Queue[T] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    with bar(len(items), desc) as pbar:

        async def worker() -> None:
            while not queue.empty():
                await work(queue.get_nowait())
                pbar.update(1)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(items)))))


async def retried(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """``send()``, again (up to twice) if the connection broke: httpx may reuse a keep-alive
    connection just as uvicorn closes it (its keep-alive timeout is 5 s)."""
    for attempt in range(3):
        try:
            return await send()
        except httpx.TransportError:
            if attempt == 2:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


async def enrol(
    http: httpx.AsyncClient, roster: Roster, *, available: bool, concurrency: int
) -> None:
    """PUT the volunteers, make them available, issue tokens, send their first fixes."""

    async def put(i: int) -> None:
        body = {
            "name": f"志愿者{roster.ids[i]}",
            "roles": ["patrol"],
            "teams": [],
            "mode": roster.mode[i],
        }
        r = await retried(lambda: http.put(f"/api/v1/volunteers/{roster.ids[i]}", json=body))
        if r.status_code not in (200, 201):
            raise RuntimeError(f"PUT volunteer: {r.status_code} {r.text}")

    async def on_duty(i: int) -> None:
        r = await retried(
            lambda: http.put(
                f"/api/v1/volunteers/{roster.ids[i]}/availability", json={"status": "available"}
            )
        )
        if r.status_code != 200:
            raise RuntimeError(f"availability: {r.status_code} {r.text}")

    tokens: dict[int, str] = {}

    async def token(i: int) -> None:
        r = await retried(lambda: http.post(f"/api/v1/volunteers/{roster.ids[i]}/tokens"))
        if r.status_code != 201:
            raise RuntimeError(f"token: {r.status_code} {r.text}")
        tokens[i] = r.json()["token"]

    everyone = list(range(len(roster)))
    await in_parallel(everyone, put, concurrency, "PUT /volunteers")
    if available:
        await in_parallel(everyone, on_duty, concurrency, "PUT availability")
    await in_parallel(everyone, token, concurrency, "POST tokens")
    roster.tokens = [tokens[i] for i in everyone]
    step = 500
    for k in range(0, len(roster), step):
        ts = to_iso(time.time())
        body = {
            "positions": [
                {
                    "volunteer_id": roster.ids[i],
                    "lat": roster.lat[i],
                    "lon": roster.lon[i],
                    "ts": ts,
                    "accuracy_m": 8,
                }
                for i in range(k, min(k + step, len(roster)))
            ]
        }
        r = await retried(functools.partial(http.post, "/api/v1/positions", json=body))
        if r.status_code != 200 or r.json()["rejected"]:
            raise RuntimeError(f"positions: {r.status_code} {r.text[:300]}")


def operator_client(server: ChildServer, concurrency: int = 64) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        timeout=60,
        trust_env=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


def httpx_post(http: httpx.AsyncClient) -> Post:
    async def post(path: str, body: object) -> tuple[int, Any]:
        r = await http.post(path, json=body)
        return r.status_code, r.json()

    return post


def raw_post(raw: RawHttp) -> Post:
    async def post(path: str, body: object) -> tuple[int, Any]:
        return await raw.request("POST", path, body)

    return post


async def round_trips(get: Callable[[], Awaitable[object]], n: int = 200) -> list[float]:
    """Round trips of ``get()`` (``GET /healthz``), ms: the HTTP floor under everything."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await get()
        times.append((time.perf_counter() - started) * 1e3)
    return times


# --------------------------------------------------------------------------- the fleet


@dataclass
class _Watch:
    expected: int
    done: asyncio.Future[None]


class Fleet:
    """Volunteer websockets (``websockets`` clients) and what they receive.

    Every ``assignment.offered`` is timestamped on arrival (``perf_counter``) under its
    incident id, whether or not the POST that caused it has answered yet.
    """

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.receipts: dict[str, list[float]] = {}
        self._watches: dict[str, _Watch] = {}
        self.kinds: Counter[str] = Counter()
        self.errors: list[str] = []
        self.closed = 0
        self._readers: list[asyncio.Task[None]] = []

    async def open(
        self, ws_url: str, tokens: Sequence[str], *, concurrency: int, deflate: bool
    ) -> None:
        """Connect every volunteer and wait for each one's ``hello``."""
        slots: list[ClientConnection | None] = [None] * len(tokens)

        async def one(i: int) -> None:
            ws = await connect(
                f"{ws_url}/ws/volunteer?token={tokens[i]}",
                compression="deflate" if deflate else None,
                proxy=None,
                ping_interval=None,  # the server pings every 20 s; the phones need not
                open_timeout=60,
                max_queue=64,
            )
            hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if hello.get("type") != "hello":
                raise RuntimeError(f"expected hello, got {hello}")
            slots[i] = ws

        await in_parallel(list(range(len(tokens))), one, concurrency, "websockets")
        self.sockets = [ws for ws in slots if ws is not None]
        self._readers = [asyncio.create_task(self._read(ws)) for ws in self.sockets]

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                arrived = time.perf_counter()
                message = json.loads(raw)
                kind = message.get("type")
                self.kinds[kind] += 1
                if kind == "assignment.offered":
                    incident_id = message["incident"]["id"]
                    self.receipts.setdefault(incident_id, []).append(arrived)
                    self._check(incident_id)
                elif kind == "error" and len(self.errors) < 10:
                    self.errors.append(str(raw)[:200])
        except ConnectionClosed:
            self.closed += 1

    def _check(self, incident_id: str) -> None:
        watch = self._watches.get(incident_id)
        if watch is not None and len(self.receipts.get(incident_id, ())) >= watch.expected:
            if not watch.done.done():
                watch.done.set_result(None)
            del self._watches[incident_id]

    async def offers(self, incident_id: str, expected: int, wait_s: float) -> list[float]:
        """Arrival times of the incident's first ``expected`` offers (waits for them).

        Raises:
            TimeoutError: fewer arrived within ``wait_s``.
        """
        done = asyncio.get_running_loop().create_future()
        self._watches[incident_id] = _Watch(expected, done)
        self._check(incident_id)
        try:
            await asyncio.wait_for(done, wait_s)
        finally:
            self._watches.pop(incident_id, None)
        return sorted(self.receipts[incident_id])[:expected]

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


class OperatorFeeds:
    """Operator websockets (the command center's console): read everything, count kinds."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.kinds: Counter[str] = Counter()
        self.bytes = 0
        self._readers: list[asyncio.Task[None]] = []

    async def open(self, ws_url: str, n: int) -> None:
        for _ in range(n):
            ws = await connect(
                f"{ws_url}/ws/operator?token={OPERATOR_TOKEN}",
                compression=None,
                proxy=None,
                ping_interval=None,
                max_size=None,
            )
            self.sockets.append(ws)
            self._readers.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self.bytes += len(raw)
                self.kinds[json.loads(raw).get("type")] += 1

    def describe(self) -> str:
        if not self.sockets:
            return "no operator feed connected"
        return (
            f"{len(self.sockets)} operator feed(s) connected, received "
            f"{self.bytes / 2**20:,.1f} MiB: {dict(self.kinds)}"
        )

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        await asyncio.gather(*self._readers, return_exceptions=True)


@dataclass
class FeedStats:
    sent: int = 0
    seconds: float = 0.0
    failed: int = 0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


async def background_fixes(
    fleet: Fleet, roster: Roster, rate: float, stop: asyncio.Event, stats: FeedStats
) -> None:
    """``rate`` position messages a second, round-robin over the fleet's sockets, each a
    few metres from the volunteer's place, ``ts`` the clock at sending (never stale)."""
    rng = random.Random(11)
    n = len(fleet.sockets)
    start = time.perf_counter()
    turn = 0
    while not stop.is_set():
        due = int((time.perf_counter() - start) * rate)
        ts = to_iso(time.time())
        while stats.sent < due:
            k = turn % n
            turn += 1
            lat, lon = near(roster.lat[k], roster.lon[k], 15.0, rng)
            try:
                await fleet.sockets[k].send(position_text(lat, lon, ts))
            except ConnectionClosed:
                stats.failed += 1
            stats.sent += 1
        await asyncio.sleep(0.005)
    stats.seconds = time.perf_counter() - start


@contextlib.asynccontextmanager
async def fixes_in_background(
    fleet: Fleet, roster: Roster, rate: float
) -> AsyncIterator[FeedStats]:
    stop = asyncio.Event()
    stats = FeedStats()
    task = asyncio.create_task(background_fixes(fleet, roster, rate, stop, stats))
    try:
        yield stats
    finally:
        stop.set()
        await task


# --------------------------------------------------------------------------- incidents


@dataclass
class IncidentRun:
    first_ms: list[float] = field(default_factory=list)
    response_ms: list[float] = field(default_factory=list)
    offers: list[int] = field(default_factory=list)
    no_offer: int = 0


async def run_incidents(
    post: Post, fleet: Fleet, roster: Roster, n: int, seed: int, desc: str
) -> IncidentRun:
    """``n`` incidents one after another, each timed to its first offer, then closed."""
    rng = random.Random(seed)
    out = IncidentRun()
    with bar(n, desc) as pbar:
        for _ in range(n):
            j = rng.randrange(len(roster))
            lat, lon = near(roster.lat[j], roster.lon[j], 200.0, rng)
            body = {"type": INCIDENT_TYPE, "lat": lat, "lon": lon}
            started = time.perf_counter()
            status, incident = await post("/api/v1/incidents", body)
            answered = time.perf_counter()
            if status != 201:
                raise RuntimeError(f"POST /incidents: {status} {incident}")
            offered = len(incident["assignments"])
            out.response_ms.append((answered - started) * 1e3)
            out.offers.append(offered)
            if offered:
                (first,) = await fleet.offers(incident["id"], 1, wait_s=10)
                out.first_ms.append((first - started) * 1e3)
            else:
                out.no_offer += 1
            status, answer = await post(f"/api/v1/incidents/{incident['id']}/close", {})
            if status != 200:
                raise RuntimeError(f"close: {status} {answer}")
            pbar.update(1)
            await asyncio.sleep(rng.uniform(0.005, 0.025))
    return out


async def run_manual_offers(
    post: Post, fleet: Fleet, roster: Roster, batches: int, size: int
) -> tuple[list[float], list[float]]:
    """Manual incidents, each offered to ``size`` volunteers in one POST.

    Returns:
        The time from just before that POST to each receipt, and to its response, ms.
    """
    receipts: list[float] = []
    responses: list[float] = []
    with bar(batches, f"manual offers to {size}") as pbar:
        for b in range(batches):
            chosen = [roster.ids[(b * size + k) % len(roster)] for k in range(size)]
            body = {"type": INCIDENT_TYPE, "lat": SEAT[0], "lon": SEAT[1], "dispatch": "manual"}
            status, incident = await post("/api/v1/incidents", body)
            if status != 201:
                raise RuntimeError(f"POST /incidents: {status} {incident}")
            started = time.perf_counter()
            status, answer = await post(
                f"/api/v1/incidents/{incident['id']}/offers", {"volunteer_ids": chosen}
            )
            responses.append((time.perf_counter() - started) * 1e3)
            if status != 201:
                raise RuntimeError(f"offers: {status} {answer}")
            times = await fleet.offers(incident["id"], size, wait_s=60)
            receipts += [(t - started) * 1e3 for t in times]
            await post(f"/api/v1/incidents/{incident['id']}/close", {})
            pbar.update(1)
            await asyncio.sleep(0.05)
    return receipts, responses


# --------------------------------------------------------------------------- the table


@dataclass
class Row:
    metric: str
    value: float
    unit: str
    target: float | None = None
    at_most: bool = True

    def cells(self) -> tuple[str, str, str, str, str]:
        digits = 2 if abs(self.value) < 10 else (1 if abs(self.value) < 1000 else 0)
        value = f"{self.value:,.{3 if self.unit == 'x' else digits}f} {self.unit}"
        if self.target is None or math.isnan(self.value):
            return self.metric, value, "", "", ""
        ratio = self.value / self.target
        ok = ratio <= 1.0 if self.at_most else ratio >= 1.0
        verdict = "ok" if ok else ("OVER" if self.at_most else "UNDER")
        target = f"{'<=' if self.at_most else '>='} {self.target:,.4g} {self.unit}"
        return self.metric, value, target, f"{ratio:.3f}", verdict


def print_table(rows: Sequence[Row]) -> None:
    cells = [("metric", "value", "target", "ratio", ""), *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    print()
    for k, c in enumerate(cells):
        first = c[0].ljust(widths[0])
        print("  " + "  ".join([first, *(c[i].rjust(widths[i]) for i in range(1, 5))]))
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))


# --------------------------------------------------------------------------- phases


@dataclass(frozen=True)
class Options:
    volunteers: int
    incidents: int
    rate: float
    ingest_connections: int
    ingest_seconds: float
    ingest_repeats: int
    big: int
    offer_batches: int
    offer_size: int
    deflate: bool
    operators: int
    server_cores: tuple[int, ...]
    concurrency: int


async def phase_latency(o: Options, rows: list[Row]) -> None:
    progress(f"latency: starting a server, enrolling {o.volunteers:,} volunteers")
    server = ChildServer(o.server_cores)
    raw = RawHttp(HOST, server.port, OPERATOR_TOKEN)
    try:
        roster = place(o.volunteers, "L", 3_000.0, seed=1)
        async with operator_client(server, o.concurrency) as http:
            await enrol(http, roster, available=True, concurrency=o.concurrency)
            floor_raw = await round_trips(lambda: raw.request("GET", "/healthz"))
            floor_httpx = await round_trips(lambda: http.get("/healthz"))
            fleet = Fleet()
            await fleet.open(
                server.ws_url, roster.tokens, concurrency=o.concurrency, deflate=o.deflate
            )
            operators = OperatorFeeds()
            await operators.open(server.ws_url, o.operators)
            progress(f"latency: {len(fleet.sockets):,} websockets open; {o.rate:,.0f} fixes/s")
            async with fixes_in_background(fleet, roster, o.rate) as feed:
                await asyncio.sleep(3.0)
                before = (await http.get("/metrics")).text
                usage = Usage(server.pid, o.server_cores)
                run = await run_incidents(raw_post(raw), fleet, roster, o.incidents, 2, "incidents")
                used = usage.line(o.incidents, "incident (create + close)")
                after = (await http.get("/metrics")).text
                n_httpx = max(20, o.incidents // 4)
                via_httpx = await run_incidents(
                    httpx_post(http), fleet, roster, n_httpx, 3, "incidents (httpx)"
                )
            await fleet.close()
            await operators.close()
        rejected = counter(after, "dispatch_fixes_total", 'outcome="rejected"')
        dispatch_ms = mean_ms(before, after, "dispatch_incident_seconds")
        route_ms = mean_ms(
            before,
            after,
            "dispatch_http_request_seconds",
            'method="POST",route="/api/v1/incidents"',
        )
        print(
            f"\nlatency: {len(fleet.sockets):,} volunteers connected, {o.incidents} incidents "
            f"({INCIDENT_TYPE}) one at a time; background fixes {feed.rate:,.0f}/s sent "
            f"({feed.failed} failed, {rejected:.0f} rejected by the server)"
        )
        print(f"  during the incidents {used}; {operators.describe()}")
        print("  " + summary("incident -> first assignment.offered", run.first_ms))
        print("  " + summary("POST /incidents -> its response", run.response_ms))
        print(
            f"  server side, mean: {dispatch_ms:.2f} ms from the lock to the offers queued "
            f"(dispatch_incident_seconds), {route_ms:.2f} ms in the POST /incidents route "
            f"(timing middleware)"
        )
        print("  " + summary("GET /healthz round trip, minimal client", floor_raw))
        print("  " + summary("GET /healthz round trip, httpx", floor_httpx))
        print("  " + summary("incident -> first offered, httpx as the client", via_httpx.first_ms))
        print(
            f"  offers per incident: median {statistics.median(run.offers):.0f}, "
            f"{run.no_offer + via_httpx.no_offer} incidents without an offer; "
            f"messages received: {dict(fleet.kinds)}"
        )
        if fleet.errors:
            print(f"  error replies (first): {fleet.errors[:3]}")
        label = f"({len(fleet.sockets):,} conn, {feed.rate:,.0f} fixes/s)"
        rows.append(
            Row(f"incident -> offered p50 {label}", pct(run.first_ms, 50), "ms", TARGET_P50_MS)
        )
        rows.append(Row("incident -> offered p99", pct(run.first_ms, 99), "ms", TARGET_P99_MS))
    finally:
        await raw.close()
        server.stop()


@dataclass
class Blast:
    frames: int
    seconds: float
    server_cpu_s: float
    generator_cpu_s: float
    polls: list[float]

    @property
    def rate(self) -> float:
        """Accepted fixes per second of wall time (the server saturated throughout)."""
        return self.frames / self.seconds

    @property
    def per_cpu_second(self) -> float:
        """Accepted fixes per second of the server's CPU time."""
        return self.frames / self.server_cpu_s

    @property
    def cpu_share(self) -> float:
        return self.server_cpu_s / self.seconds


async def blast(
    feeds: Sequence[RawFeed],
    chunks: Sequence[bytes],
    frames: int,
    count: Callable[[], Awaitable[float]],
    pid: int,
) -> Blast:
    """Every connection writes its chunk until about ``frames`` are written in all, as fast
    as TCP takes them; timed from the first write until the server's accepted counter has
    grown by all of them. TCP buffers hold far more than a poll interval's work, so the
    server never runs dry before the end.
    """
    times = max(1, math.ceil(frames / (len(feeds) * PER_CHUNK)))
    total = times * PER_CHUNK * len(feeds)
    base = await count()
    cpu0, gen0 = cpu_seconds(pid), time.process_time()
    started = time.perf_counter()
    writers = [asyncio.create_task(f.blast(c, times)) for f, c in zip(feeds, chunks, strict=True)]
    polls: list[float] = []
    accepted, stalled_since = 0.0, time.perf_counter()
    while accepted < total:
        asked = time.perf_counter()
        now = await count() - base
        polls.append(time.perf_counter() - asked)
        if now > accepted:
            accepted, stalled_since = now, time.perf_counter()
        elif time.perf_counter() - stalled_since > 5.0:
            raise RuntimeError(f"the server stalled at {accepted:,.0f} of {total:,} fixes")
        await asyncio.sleep(POLL_S)
    seconds = time.perf_counter() - started
    server_cpu = cpu_seconds(pid) - cpu0
    await asyncio.gather(*writers)
    return Blast(total, seconds, server_cpu, time.process_time() - gen0, polls)


def frames_of(n_feeds: int, seed: int) -> list[bytes]:
    """Per connection, ``PER_CHUNK`` position frames a few metres apart, ``ts`` now (the same
    in every frame: an equal timestamp is accepted, never ``stale``)."""
    rng = random.Random(seed)
    ts = to_iso(time.time())
    out = []
    for _ in range(n_feeds):
        lat, lon = near(SEAT[0], SEAT[1], 3_000.0, rng)
        texts = [position_text(*near(lat, lon, 15.0, rng), ts) for _ in range(PER_CHUNK)]
        out.append(RawFeed.frames(texts))
    return out


async def phase_ingest(o: Options, rows: list[Row]) -> None:
    n = o.ingest_connections
    progress(f"ingest: starting the service and the bare websockets server, {n} volunteers")
    server = ChildServer(o.server_cores)
    bare = BareServer(n, "I", o.server_cores)
    raw = RawHttp(HOST, server.port, OPERATOR_TOKEN)
    raw_bare = RawHttp(HOST, bare.port, "-")
    try:
        roster = place(n, "I", 3_000.0, seed=3)

        async def served() -> float:
            _, text = await raw_text(raw, "/metrics")
            return counter(text, "dispatch_fixes_total", 'outcome="accepted"')

        async def bare_count() -> float:
            _, answer = await raw_bare.request("GET", "/count")
            return float(answer["accepted"])

        async with operator_client(server, o.concurrency) as http:
            await enrol(http, roster, available=False, concurrency=o.concurrency)
        svc_feeds = [
            await RawFeed.open(f"{server.ws_url}/ws/volunteer?token={t}") for t in roster.tokens
        ]
        bare_feeds = [
            await RawFeed.open(f"{bare.ws_url}/ws/volunteer?token={v}") for v in roster.ids
        ]
        targets = {
            "service": (svc_feeds, served, server.pid),
            "bare": (bare_feeds, bare_count, bare.pid),
        }
        runs: dict[str, list[Blast]] = {"service": [], "bare": []}
        estimate: dict[str, float] = {}
        for r in range(-1, o.ingest_repeats):  # -1: the warm-up, sizes the next runs
            for name, (feeds, count, pid) in targets.items():
                seconds = o.ingest_seconds if r >= 0 else 2.0
                frames = int(estimate.get(name, 20_000.0) * seconds)
                result = await blast(feeds, frames_of(len(feeds), 100 + r), frames, count, pid)
                estimate[name] = result.rate
                if r >= 0:
                    runs[name].append(result)
                which = "warm-up" if r < 0 else f"run {r + 1}/{o.ingest_repeats}"
                progress(
                    f"ingest {name}, {which}: {result.frames:,} fixes in {result.seconds:.1f} s "
                    f"= {result.rate:,.0f}/s; server CPU {result.cpu_share:.0%} of a core "
                    f"({result.per_cpu_second:,.0f}/CPU-s); counter read in "
                    f"{statistics.median(result.polls) * 1e3:,.0f} ms (median)"
                )
        errors = {name: sum(f.error_count for f in t[0]) for name, t in targets.items()}
        samples = [e for f in svc_feeds + bare_feeds for e in f.errors][:3]
        for f in svc_feeds + bare_feeds:
            await f.close()

        def med(name: str, key: Callable[[Blast], float]) -> float:
            return statistics.median(key(b) for b in runs[name])

        svc, base = med("service", lambda b: b.rate), med("bare", lambda b: b.rate)
        svc_cpu = med("service", lambda b: b.per_cpu_second)
        base_cpu = med("bare", lambda b: b.per_cpu_second)
        print(
            f"\ningest: {n} connections blasting pre-built position frames (no id), "
            f"{o.ingest_repeats} runs of ~{o.ingest_seconds:.0f} s each, alternating; medians. "
            f"The service pinned to core(s) {sorted(server.affinity())}, the bare server to "
            f"{sorted(bare.affinity())}, the load generator to {sorted(os.sched_getaffinity(0))}"
        )
        for name, label, rate, per_cpu in (
            ("service", "service (uvicorn + FastAPI + dispatch)", svc, svc_cpu),
            ("bare", "bare websockets + parse + LiveIndex.update", base, base_cpu),
        ):
            print(
                f"  {label}: {rate:,.0f} fixes/s (runs "
                f"{', '.join(f'{b.rate:,.0f}' for b in runs[name])}), server CPU "
                f"{med(name, lambda b: b.cpu_share):.0%} of its core; "
                f"{per_cpu:,.0f} fixes per CPU-second = {1e6 / per_cpu:.1f} µs of CPU a fix"
            )
        gen = max(b.generator_cpu_s / b.seconds for bs in runs.values() for b in bs)
        print(f"  load generator: at most {gen:.0%} of its core; error replies {errors} {samples}")
        rows.append(Row("ws fix ingest, service, one core", svc, "fixes/s"))
        rows.append(Row("ws fix ingest, bare websockets, same core", base, "fixes/s"))
        rows.append(Row("ingest ratio service / bare", svc / base, "x", TARGET_RATIO, False))
        rows.append(
            Row("ingest ratio per CPU-second", svc_cpu / base_cpu, "x", TARGET_RATIO, False)
        )
    finally:
        await raw.close()
        await raw_bare.close()
        server.stop()
        bare.stop()


async def raw_text(raw: RawHttp, path: str) -> tuple[int, str]:
    """A GET whose body is text (``/metrics``)."""
    status, body = await raw.request("GET", path, None, decode=False)
    return status, str(body)


async def phase_big(o: Options, rows: list[Row]) -> None:
    n = o.big
    progress(f"10k: starting a server, enrolling {n:,} volunteers")
    server = ChildServer(o.server_cores)
    raw = RawHttp(HOST, server.port, OPERATOR_TOKEN)
    try:
        rss_start = rss_mb(server.pid)
        roster = place(n, "T", 5_000.0, seed=5)
        async with operator_client(server, o.concurrency) as http:
            await enrol(http, roster, available=True, concurrency=o.concurrency)
            await asyncio.sleep(2.0)
            rss_before = rss_mb(server.pid)
            fleet = Fleet()
            await fleet.open(
                server.ws_url, roster.tokens, concurrency=o.concurrency, deflate=o.deflate
            )
            operators = OperatorFeeds()
            await operators.open(server.ws_url, o.operators)
            await asyncio.sleep(2.0)
            rss_open = rss_mb(server.pid)
            progress(
                f"10k: {len(fleet.sockets):,} websockets open; server RSS {rss_before:,.0f} -> "
                f"{rss_open:,.0f} MiB"
            )
            async with fixes_in_background(fleet, roster, o.rate) as feed:
                await asyncio.sleep(3.0)
                usage = Usage(server.pid, o.server_cores)
                post = raw_post(raw)
                run = await run_incidents(post, fleet, roster, o.incidents, 4, "incidents (10k)")
                used = usage.line(o.incidents, "incident (create + close)")
                usage = Usage(server.pid, o.server_cores)
                manual, responses = await run_manual_offers(
                    post, fleet, roster, o.offer_batches, o.offer_size
                )
                used_manual = usage.line(o.offer_batches, f"batch of {o.offer_size} offers")
                rss_load = rss_mb(server.pid)
            await fleet.close()
            await operators.close()
        added = max(rss_open, rss_load) - rss_before
        print(
            f"\n10k: {len(fleet.sockets):,} volunteers connected to one process "
            f"(RLIMIT_NOFILE {raise_nofile()} here and in the server); background fixes "
            f"{feed.rate:,.0f}/s ({feed.failed} failed); permessage-deflate "
            f"{'on' if o.deflate else 'off'}"
        )
        print(
            f"  server RSS: {rss_start:,.0f} MiB at start, {rss_before:,.0f} with the roster, "
            f"{rss_open:,.0f} with the sockets open, {rss_load:,.0f} after the load: "
            f"{added:,.0f} MiB added = {added * 1024 / max(1, len(fleet.sockets)):.1f} KiB each"
        )
        print(f"  during the incidents {used}; during the manual offers {used_manual}")
        print(f"  {operators.describe()}")
        print("  " + summary("incident -> first offered", run.first_ms))
        print("  " + summary(f"manual offer to {o.offer_size} -> each receipt", manual))
        print("  " + summary(f"manual offer to {o.offer_size} -> its response", responses))
        print(f"  messages received: {dict(fleet.kinds)}")
        k = f"{len(fleet.sockets):,}"
        rows.append(Row(f"added RSS, {k} connected", added, "MiB", TARGET_RSS_MB))
        rows.append(
            Row(
                f"push p99, incident -> offered ({k} conn)",
                pct(run.first_ms, 99),
                "ms",
                TARGET_PUSH_P99_MS,
            )
        )
        rows.append(
            Row(
                f"push p99, manual offer x{o.offer_size} -> each receipt",
                pct(manual, 99),
                "ms",
                TARGET_PUSH_P99_MS,
            )
        )
    finally:
        await raw.close()
        server.stop()


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke run")
    parser.add_argument("--volunteers", type=int, help="latency phase (2,000; quick 200)")
    parser.add_argument("--incidents", type=int, help="per phase (500; quick 50)")
    parser.add_argument("--rate", type=float, default=2_000.0, help="background fixes/s")
    parser.add_argument("--big", type=int, help="the 10k phase's volunteers (quick 1,000)")
    parser.add_argument("--skip-10k", action="store_true", help="skip the 10,000 phase")
    parser.add_argument("--skip-latency", action="store_true", help="skip the latency phase")
    parser.add_argument("--skip-ingest", action="store_true", help="skip the ingest phase")
    parser.add_argument("--ingest-connections", type=int, help="ingest blasters (100; quick 20)")
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="volunteer sockets negotiate permessage-deflate (the mini-program's default: off)",
    )
    parser.add_argument(
        "--operators", type=int, default=1, help="operator feeds connected (the console): 1"
    )
    args = parser.parse_args()
    q = args.quick
    cores = sorted(os.sched_getaffinity(0))
    load_cores: tuple[int, ...] = ()
    server_cores: tuple[int, ...] = ()
    if len(cores) >= 2:
        load_cores, server_cores = (cores[0],), (cores[1],)
        pin_threads(os.getpid(), load_cores)
    o = Options(
        volunteers=args.volunteers or (200 if q else 2_000),
        incidents=args.incidents or (50 if q else 500),
        rate=args.rate,
        ingest_connections=args.ingest_connections or (20 if q else 100),
        ingest_seconds=3.0 if q else 10.0,
        ingest_repeats=1 if q else 3,
        big=args.big or (1_000 if q else 10_000),
        offer_batches=3 if q else 30,
        offer_size=100,
        deflate=args.deflate,
        operators=args.operators,
        server_cores=server_cores,
        concurrency=32 if q else 64,
    )
    limits = raise_nofile()
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"bench_service: os.cpu_count() = {os.cpu_count()}, python {sys.version.split()[0]}; "
        f"load generator on core(s) {list(load_cores) or 'any'}, each server on "
        f"{list(server_cores) or 'any'}; RLIMIT_NOFILE {limits}; load average {' '.join(load)}"
    )
    rows: list[Row] = []
    started = time.perf_counter()

    async def run() -> None:
        if not args.skip_latency:
            await phase_latency(o, rows)
        if not args.skip_ingest:
            await phase_ingest(o, rows)
        if not args.skip_10k:
            await phase_big(o, rows)

    uvloop.run(run())
    print_table(rows)
    print(f"\n  total {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
