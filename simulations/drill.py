"""``drill``: simulated volunteers and a stream of incidents against a running server.

Theory of operation
-------------------
The drill is a client of the wire contract (``shared/CONTRACT.md``) and nothing else: it
talks to the server only over HTTP and websockets (it borrows the timestamp helpers and the
error tree, never the service), so it works the same against ``dispatch serve --demo`` on a
laptop, a staging server, or the in-process server of the tests. It is the live demo (the console
shows volunteers moving and answering) and a load generator (it measures what a volunteer
would feel) in one.

Plan (pure, deterministic by ``--seed``, before any I/O; :func:`sample_volunteers`,
:func:`plan_incidents`):

* N volunteers of the county dataset, drawn without replacement with a weight of
  ``population of their home village / volunteers living there``, so that the played
  volunteers spread like the population; ``--near LAT,LON --radius-m R`` keeps to one area.
  Their ids are ``drill-<dataset id>`` (default), or the dataset's own ids (``--ids
  dataset``: ``PUT /volunteers/{id}`` is idempotent, so a demo server's roster is reused).
* A Poisson stream of incidents (``--incidents-per-minute``) over ``--duration``: the type
  and severity mixes of :mod:`simulations.params`, at a village drawn by population, jittered
  150 m, each with a deadline after which the operator gives up and closes it.

Run (asyncio; every task is one of a fixed set, never one per message):

1. Set-up through REST with the operator token, at most ``--concurrency`` requests at once:
   ``PUT /volunteers/{id}``, ``POST /volunteers/{id}/tokens``, and the points they hold
   already (``GET .../points``: points accumulate over runs; a run reports its own).
2. One task group per volunteer (:class:`_Player`): a *connection* task keeps one
   ``/ws/volunteer`` socket (reconnecting with ``since=<last seq seen>`` after a drop, with
   back-off; a 4401 or 4409 close ends the volunteer) and acks every message it reads
   (those the first ``hello`` already counted are another run's history, or offers made
   before the drill played the volunteer: acknowledged, not played); an
   *action* task runs the volunteer's own timetable (a heap): a ``position`` fix every
   ``--fix-interval`` s (a mean-reverting random walk around home, a straight line to the
   scene once accepted), answers to offers after a delay drawn from ``--answer-delay``
   (accept with probability ``--acceptance``; otherwise stay silent with probability
   ``--silent-share`` and let the offer expire, else decline), ``arrive`` after the offer's
   ``eta_s`` and ``complete`` after a service time (both times ``--time-scale``). Answers
   carry an ``id``; their replies drive the next step. An answer in flight when the socket
   drops is sent again after the reconnect; if the server says the state no longer allows
   it, the drill asks ``GET /incidents/{id}`` what happened (the first send was applied, or
   the offer expired meanwhile).
3. Once every socket says ``hello``: ``PUT .../availability`` (the volunteer's own token) and
   one bulk ``POST /positions`` of the first fixes, then the incident stream starts. Each
   ``POST /incidents`` goes through a bounded pool; the operator closes an incident
   (``POST /incidents/{id}/close``) once someone completed it and nobody it accepted is
   still busy with it, or at its deadline.
4. After ``--duration`` no new incidents; the drill waits up to ``--drain`` s for the open
   ones to resolve, closes the rest, lets the last messages arrive, puts its volunteers off
   duty (unless ``--keep-on-duty``) and closes the sockets. The first Ctrl-C (or SIGTERM)
   skips to this step; a second one aborts.
5. The server's view: ``GET /incidents/{id}`` per incident and ``GET /volunteers/{id}/points``
   per volunteer, then ``incidents.csv``, ``volunteers.csv``, ``incidents.geojson``,
   ``summary.json`` and the manifest (:mod:`simulations.report`), and a console summary.

Time. Fix timestamps come from a :class:`DrillClock`: ``--clock wall`` is this machine's
clock; ``--clock server`` starts from ``computed_at`` of ``GET /coverage?k=1`` and advances
with this machine's monotonic clock, and moves forward whenever the server shows a later
time (``offered_at``/``updated_at`` of a message): a server on a fake clock (tests, drills
replayed at another date) then accepts the fixes as neither stale nor in the future.

Latency. "Incident to first offer" is measured on this machine's monotonic clock, from just
before ``POST /incidents`` is sent to the first ``assignment.offered`` for that incident
read on a played volunteer's socket: ranking, the store's commit and the push, as a
volunteer feels them. It is counted only for incidents whose offers made at creation (the
``POST`` answer lists them) include a played volunteer; otherwise the first offer the drill
reads is a later one (after a decline or an expiry), or the first went to someone the drill
cannot hear (a demo roster's volunteer), and the figure would measure the escalation, not
the push. The server's own ``offered_at - created_at`` is reported beside it. Offers to
volunteers the drill does not play are seen only in the server's view at the end.

Closing an incident completes (and credits) the assignments on scene without a message to
their volunteers; the drill learns it from the close's answer and counts them as completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import heapq
import itertools
import json
import math
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Never, TextIO
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import numpy as np
import numpy.typing as npt
from tqdm import tqdm
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from dispatch.core.clock import parse_iso, to_iso
from dispatch.errors import DispatchError, InvalidInput
from geo.coords import check_latlon
from geo.dataset.load import CountyDataset
from geo.modes import Mode
from simulations import report
from simulations.commands import Common, dataset
from simulations.keyed import generator
from simulations.params import DEFAULT_TYPE_MIX, DayParams, to_jsonable
from units.vocab import Role, Team, names_of

__all__ = [
    "DrillClock",
    "DrillError",
    "DrillOptions",
    "DrillResult",
    "PlannedIncident",
    "VolunteerSpec",
    "drill",
    "parse_range",
    "plan_incidents",
    "run_drill",
    "sample_volunteers",
]

Range = tuple[float, float]
F64 = npt.NDArray[np.float64]

_METRES_PER_DEGREE: Final = 111_194.93
_DEFAULTS: Final = DayParams()
#: Streams of the keyed generators (apart from those of :class:`simulations.keyed.Stream`).
_VOLUNTEERS, _INCIDENTS, _PLAYER = 101, 102, 103
_API: Final = "/api/v1"
_CLOSE_UNAUTHORIZED, _CLOSE_REPLACED = 4401, 4409
_FIX_PULL: Final = 0.05  # share of the way home a random walk goes back each fix
_RETRY_S: Final = 0.5  # an action that could not be sent (socket down) is tried again after
_GRACE_S: Final = 0.5  # after the last close, for the last pushes to arrive
_HISTORY: Final = "history"


class DrillError(DispatchError):
    """The drill cannot go on: the server is unreachable, refused a set-up call, or the
    sockets did not open. (A client-side failure: it belongs to no engine layer.)"""


# ================================================================================ options


def parse_range(text: str, name: str = "range") -> Range:
    """``"5..40"`` (uniform between) or ``"7"`` (exactly), in seconds.

    Args:
        text: the flag's value.
        name: the flag, for the message.

    Raises:
        InvalidInput: not one or two finite numbers >= 0, or low above high.
    """
    parts = text.split("..")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise InvalidInput(f"{name} {text!r}: a number or LOW..HIGH", field=name) from None
    if len(values) not in (1, 2) or not all(math.isfinite(v) and v >= 0 for v in values):
        raise InvalidInput(f"{name} {text!r}: one or two numbers >= 0", field=name)
    low, high = values[0], values[-1]
    if low > high:
        raise InvalidInput(f"{name} {text!r}: LOW must not exceed HIGH", field=name)
    return low, high


@dataclass(frozen=True, slots=True)
class DrillOptions:
    """Options of ``drill``.

    Attributes:
        common: dataset, run folder, quiet, argv (``travel`` and ``plots`` are unused).
        url: the server, ``http://host:port``.
        token: an operator bearer token.
        volunteers: how many volunteers to play.
        incidents_per_minute: mean rate of the Poisson incident stream.
        duration_s: how long incidents are created.
        seed: keys the volunteers drawn, the incidents and every volunteer's choices.
        acceptance: probability that an offer is accepted.
        silent_share: of the offers not accepted, the share never answered (they expire).
        answer_delay_s: delay from offer to answer, uniform in this range (s, not scaled).
        fix_interval_s: seconds between two fixes of a volunteer.
        walk_m: standard deviation of a random-walk step between two fixes (m).
        service_s: time on scene from ``arrive`` to ``complete``, uniform in this range.
        close_after_s: the operator closes an incident nobody finished after this long.
        time_scale: travel (``eta_s``), service and ``close_after_s`` are multiplied by this
            (0.1: ten times faster than life); answer delays, fixes and the rate are not.
        drain_s: after ``duration_s``, wait at most this long for open incidents to resolve.
        clock: ``wall`` (this machine) or ``server`` (see the module doc).
        ids: ``drill`` (``drill-<dataset id>``) or ``dataset`` (the dataset's own ids).
        near: keep volunteers and incidents within ``radius_m`` of this (lat, lon).
        radius_m: see ``near``.
        concurrency: REST requests in flight at once (set-up, incidents, the final reads).
        keep_on_duty: leave the volunteers available at the end.
        type_mix: share per incident type (normalised).
        severity_mix: shares of severities 1, 2, 3.
        incident_jitter_m: incidents lie around their village's point, Gaussian, this sigma.

    Raises:
        InvalidInput: an option out of range (the message names it).
    """

    common: Common
    url: str
    token: str
    volunteers: int = 200
    incidents_per_minute: float = 6.0
    duration_s: float = 120.0
    seed: int = 1
    acceptance: float = _DEFAULTS.acceptance_mean
    silent_share: float = _DEFAULTS.silent_share
    answer_delay_s: Range = (5.0, 40.0)
    fix_interval_s: float = 5.0
    walk_m: float = 15.0
    service_s: Range = (60.0, 240.0)
    close_after_s: Range = (180.0, 600.0)
    time_scale: float = 1.0
    drain_s: float = 30.0
    clock: Literal["wall", "server"] = "wall"
    ids: Literal["drill", "dataset"] = "drill"
    near: tuple[float, float] | None = None
    radius_m: float = 3000.0
    concurrency: int = 16
    keep_on_duty: bool = False
    type_mix: Mapping[str, float] = field(default_factory=lambda: DEFAULT_TYPE_MIX)
    severity_mix: tuple[float, ...] = _DEFAULTS.severity_mix
    incident_jitter_m: float = _DEFAULTS.incident_jitter_m

    def __post_init__(self) -> None:  # noqa: PLR0912 (one flat list of rules)
        def fail(name: str, message: str) -> Never:
            raise InvalidInput(f"{name}: {message}", field=name)

        if self.volunteers < 1:
            fail("volunteers", f"must be >= 1, got {self.volunteers}")
        for name in ("acceptance", "silent_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                fail(name, f"must be in [0, 1], got {getattr(self, name)}")
        for name in ("incidents_per_minute", "duration_s", "walk_m", "drain_s", "radius_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                fail(name, f"must be finite and >= 0, got {value}")
        for name in ("fix_interval_s", "time_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                fail(name, f"must be finite and > 0, got {value}")
        for name in ("answer_delay_s", "service_s", "close_after_s"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
                fail(name, f"must be 0 <= low <= high, got {low}..{high}")
        if self.concurrency < 1:
            fail("concurrency", f"must be >= 1, got {self.concurrency}")
        if self.clock not in ("wall", "server"):
            fail("clock", f"'wall' or 'server', got {self.clock!r}")
        if self.ids not in ("drill", "dataset"):
            fail("ids", f"'drill' or 'dataset', got {self.ids!r}")
        if not self.token:
            fail("token", "an operator token is required (--token)")
        if self.near is not None:
            check_latlon(*self.near, prefix="near.")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            fail("url", f"an http(s) URL such as http://127.0.0.1:8000, got {self.url!r}")
        mix = self.type_mix
        if not mix or any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
            fail("type_mix", "non-negative shares per incident type, not all 0")
        sev = self.severity_mix
        if len(sev) != 3 or any(v < 0 for v in sev) or sum(sev) <= 0:
            fail("severity_mix", "three non-negative shares (severities 1, 2, 3), not all 0")

    def parameters(self) -> dict[str, object]:
        """Every option the results depend on, for the manifest (never the token)."""
        return to_jsonable(self, skip=("common", "token"))


# =================================================================================== plan


@dataclass(frozen=True, slots=True)
class VolunteerSpec:
    """One played volunteer, as drawn from the dataset.

    Attributes:
        id: the id on the server.
        dataset_id: the dataset's id.
        name, mode, roles, teams, unit_id: the ``PUT /volunteers/{id}`` body.
        home_lat, home_lon: where they live (the random walk's centre).
        village_id: their home village.
    """

    id: str
    dataset_id: str
    name: str
    mode: str
    roles: tuple[str, ...]
    teams: tuple[str, ...]
    unit_id: str | None
    home_lat: float
    home_lon: float
    village_id: str | None

    def body(self) -> dict[str, Any]:
        """The ``PUT /volunteers/{id}`` body."""
        body: dict[str, Any] = {
            "name": self.name,
            "roles": list(self.roles),
            "teams": list(self.teams),
            "mode": self.mode,
        }
        if self.unit_id is not None:
            body["unit_id"] = self.unit_id
        return body


@dataclass(frozen=True, slots=True)
class PlannedIncident:
    """One incident of the stream.

    Attributes:
        ordinal: 0, 1, ... in time order.
        at_s: seconds after the stream starts.
        type: the incident type (wire name).
        severity: 1-3.
        lat, lon: where.
        village_id: the village it was drawn at.
        close_after_s: the operator gives up this long after creating it (already scaled).
    """

    ordinal: int
    at_s: float
    type: str
    severity: int
    lat: float
    lon: float
    village_id: str
    close_after_s: float


def _metres(lat0: float, lon0: float, lat: F64, lon: F64) -> F64:
    """Equirectangular distance (m): plenty for a few kilometres."""
    dy = (lat - lat0) * _METRES_PER_DEGREE
    dx = (lon - lon0) * _METRES_PER_DEGREE * math.cos(math.radians(lat0))
    result: F64 = np.hypot(dx, dy)
    return result


def sample_volunteers(ds: CountyDataset, options: DrillOptions) -> list[VolunteerSpec]:
    """The volunteers to play: drawn without replacement, weight ``population of the home
    village / volunteers living there``; deterministic by ``options.seed``.

    Raises:
        InvalidInput: fewer eligible volunteers (in the ``near`` area) than asked for.
    """
    v = ds.volunteers
    village = np.asarray(v.village, dtype=np.int64)
    population = np.asarray(ds.villages.population, dtype=np.float64)
    known = village >= 0
    rows = np.where(known, village, 0)
    living = np.bincount(village[known], minlength=len(population)).astype(np.float64)
    weight = np.where(known, population[rows] / np.maximum(living[rows], 1.0), 0.0)
    if options.near is not None:
        lat0, lon0 = options.near
        weight = np.where(
            _metres(lat0, lon0, v.home_lat, v.home_lon) <= options.radius_m, weight, 0
        )
    eligible = int(np.count_nonzero(weight > 0))
    if eligible < options.volunteers:
        where = "" if options.near is None else f" within {options.radius_m:g} m of {options.near}"
        raise InvalidInput(
            f"{options.volunteers} volunteers asked for, {eligible} in the dataset{where}",
            field="volunteers",
        )
    rng = generator(options.seed, _VOLUNTEERS)
    chosen = np.sort(
        rng.choice(len(weight), options.volunteers, replace=False, p=weight / weight.sum())
    )
    specs = []
    for i in chosen.tolist():
        unit = int(v.unit[i])
        row = int(village[i])
        specs.append(
            VolunteerSpec(
                id=v.id[i] if options.ids == "dataset" else f"drill-{v.id[i]}",
                dataset_id=v.id[i],
                name=v.name[i],
                mode=Mode(int(v.mode[i])).wire,
                roles=tuple(names_of(Role, int(v.roles[i]))),
                teams=tuple(names_of(Team, int(v.teams[i]))),
                unit_id=ds.units.id[unit] if unit >= 0 else None,
                home_lat=float(v.home_lat[i]),
                home_lon=float(v.home_lon[i]),
                village_id=ds.villages.id[row] if row >= 0 else None,
            )
        )
    return specs


def plan_incidents(ds: CountyDataset, options: DrillOptions) -> list[PlannedIncident]:
    """The incident stream: Poisson arrivals over ``duration_s``, villages by population
    (within the ``near`` area if given), the type and severity mixes, a Gaussian jitter
    (cut at 2.5 sigma); deterministic by ``options.seed``.

    Raises:
        InvalidInput: no village in the ``near`` area.
    """
    villages = ds.villages
    population = np.asarray(villages.population, dtype=np.float64)
    if options.near is not None:
        inside = _metres(*options.near, villages.lat, villages.lon) <= options.radius_m
        population = np.where(inside, population, 0.0)
    if not population.sum() > 0:
        raise InvalidInput(
            f"no village within {options.radius_m:g} m of {options.near}", field="near"
        )
    rng = generator(options.seed, _INCIDENTS)
    names = [t for t, share in options.type_mix.items() if share > 0]
    mix = np.array([options.type_mix[t] for t in names], dtype=np.float64)
    sev = np.asarray(options.severity_mix, dtype=np.float64)
    out: list[PlannedIncident] = []
    rate = options.incidents_per_minute / 60.0
    t = 0.0
    while rate > 0:
        t += float(rng.exponential(1.0 / rate))
        if t >= options.duration_s:
            break
        j = int(rng.choice(len(population), p=population / population.sum()))
        offset = rng.standard_normal(2) * options.incident_jitter_m
        norm = float(np.hypot(*offset))
        limit = 2.5 * options.incident_jitter_m
        if norm > limit:
            offset *= limit / norm
        lat = float(villages.lat[j]) + float(offset[1]) / _METRES_PER_DEGREE
        lon = float(villages.lon[j]) + float(offset[0]) / (
            _METRES_PER_DEGREE * math.cos(math.radians(float(villages.lat[j])))
        )
        low, high = options.close_after_s
        out.append(
            PlannedIncident(
                ordinal=len(out),
                at_s=t,
                type=names[int(rng.choice(len(names), p=mix / mix.sum()))],
                severity=int(rng.choice(3, p=sev / sev.sum())) + 1,
                lat=round(lat, 7),
                lon=round(lon, 7),
                village_id=villages.id[j],
                close_after_s=float(rng.uniform(low, high)) * options.time_scale,
            )
        )
    return out


# ================================================================================== clock


class DrillClock:
    """The time the drill stamps fixes with: a start time advanced by this machine's
    monotonic clock, moved forward (never back) when the server shows a later time.

    Args:
        start: epoch seconds at the moment of creation.
        follow: move forward to times the server shows (``--clock server``).
    """

    def __init__(self, start: float, *, follow: bool) -> None:
        self._start = start
        self._mono = time.monotonic()
        self._follow = follow

    def now(self) -> float:
        """Epoch seconds."""
        return self._start + (time.monotonic() - self._mono)

    def observe(self, server_time: float) -> None:
        """A time the server showed (e.g. an offer's ``offered_at``)."""
        if self._follow:
            ahead = server_time - self.now()
            if ahead > 0:
                self._start += ahead


# ================================================================================== stats


@dataclass(slots=True)
class _Track:
    """What the drill learns about one incident (created lazily: an offer may be read on a
    socket before ``POST /incidents`` has answered)."""

    id: str
    plan: PlannedIncident | None = None
    ours: bool = False
    posted_mono: float = math.nan
    create_ms: float = math.nan
    created_at: str | None = None
    first_offer_mono: float = math.nan
    first_offered_at: str | None = None
    offers_at_creation: int = 0
    first_to_played: bool = False  # a played volunteer was among the offers made at creation
    offers: int = 0
    accepted: int = 0
    declined: int = 0
    silent: int = 0
    expired: int = 0
    cancelled: int = 0
    late: int = 0
    arrived: int = 0
    completed: int = 0
    pending_accepts: int = 0
    active: set[str] = field(default_factory=set)  # assignment ids accepted, not finished
    close_due_mono: float = math.inf
    closed_by: str | None = None  # resolved | deadline | end
    closing: bool = False

    @property
    def first_offer_ms(self) -> float:
        """POST sent -> first offer read on a played volunteer's socket; NaN unless that
        offer was among the incident's first (made at creation)."""
        if not self.first_to_played:
            return math.nan
        return (self.first_offer_mono - self.posted_mono) * 1000.0

    @property
    def resolved(self) -> bool:
        return self.completed > 0 and not self.active and self.pending_accepts == 0


@dataclass(slots=True)
class _Stats:
    incidents: int = 0
    offers: int = 0
    accepted: int = 0
    declined: int = 0
    silent: int = 0
    expired: int = 0
    cancelled: int = 0
    late: int = 0
    arrived: int = 0
    completed: int = 0
    fixes: int = 0
    fixes_unsent: int = 0
    reconnects: int = 0
    resent: int = 0
    reconciled: int = 0
    connected: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    create_ms: list[float] = field(default_factory=list)

    def line(self, tracks: Mapping[str, _Track], total: int) -> str:
        latency = [t.first_offer_ms for t in tracks.values() if t.ours]
        p50, p95 = _quantiles(latency)
        fixes_bad = sum(n for k, n in self.errors.items() if k.startswith("fix:"))
        return (
            f"incidents {self.incidents} | offers {self.offers} acc {self.accepted} "
            f"dec {self.declined} silent {self.silent} exp {self.expired} "
            f"stood-down {self.cancelled} done {self.completed} | 1st offer p50 "
            f"{_ms(p50)} p95 {_ms(p95)} | fixes {self.fixes} rej {fixes_bad} | "
            f"ws {self.connected}/{total}"
        )


def _quantiles(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    p50, p95 = np.percentile(finite, [50, 95]).tolist()
    return float(p50), float(p95)


def _ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.0f} ms"


# ================================================================================ volunteer


@dataclass(slots=True)
class _Play:
    """A volunteer's part in one assignment."""

    assignment_id: str
    incident_id: str
    lat: float
    lon: float
    eta_s: float | None
    intent: str  # accept | decline | silent
    state: str = "offered"  # offered | accepted | on_scene | done | refused (answered late)
    accept_pending: bool = False  # counted in the incident's pending_accepts
    travel_from: tuple[float, float] | None = None
    travel_start: float = 0.0
    travel_s: float = 0.0


@dataclass(slots=True)
class _Request:
    kind: str  # accept | decline | arrive | complete
    assignment_id: str
    resend: bool


_FIX, _ANSWER, _ARRIVE, _COMPLETE, _RECONCILE = "fix", "answer", "arrive", "complete", "reconcile"


class _Player:
    """One simulated volunteer: a socket kept open and a timetable of actions."""

    def __init__(self, spec: VolunteerSpec, index: int, run: _Run) -> None:
        self.spec = spec
        self.run = run
        self.options = run.options
        self.rng = generator(run.options.seed, _PLAYER, index)
        self.token = ""
        self.lat, self.lon = spec.home_lat, spec.home_lon
        self.ws: ClientConnection | None = None
        self.connected = asyncio.Event()
        self.ready = asyncio.Event()  # first hello read (or the volunteer is gone)
        self.stopping = asyncio.Event()
        self.gone: str | None = None  # why the volunteer stopped early
        self.last_seq = 0
        self.baseline: int | None = None  # hello seq of the first connection
        self.plays: dict[str, _Play] = {}
        self.pending: dict[str, _Request] = {}
        self.resend: list[_Request] = []
        self.heap: list[tuple[float, int, str, str, str, bool]] = []
        self.wake = asyncio.Event()
        self.counter = itertools.count()
        self.tally: Counter[str] = Counter()
        self.points_before: Mapping[str, Any] = {}

    # ------------------------------------------------------------------ life

    async def play(self) -> None:
        """Run until :meth:`stop` (or a 4401/4409 close)."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._connection())
            tg.create_task(self._actions())

    async def stop(self) -> None:
        """Close the socket and end both tasks."""
        self.stopping.set()
        self.wake.set()
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    def _url(self) -> str:
        url = f"{self.run.ws_url}/ws/volunteer?token={quote(self.token, safe='')}"
        if self.baseline is not None:
            url += f"&since={self.last_seq}"
        return url

    async def _connection(self) -> None:
        backoff = 0.2
        while not self.stopping.is_set():
            code: int | None = None
            try:
                async with connect(
                    self._url(), open_timeout=10, close_timeout=2, ping_interval=20,
                    max_size=1 << 20,
                ) as ws:  # fmt: skip
                    self.ws = ws
                    try:
                        if not self.stopping.is_set():  # stop() may have come mid-handshake
                            await self._session(ws)
                    finally:
                        code = ws.close_code
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                self.run.stats.errors[f"ws:{type(exc).__name__}"] += 1
            finally:
                if self.ws is not None:
                    self.ws = None
                    if self.connected.is_set():
                        self.connected.clear()
                        self.run.stats.connected -= 1
                    self._requeue_pending()
            if self.stopping.is_set():
                break
            if code in (_CLOSE_UNAUTHORIZED, _CLOSE_REPLACED):
                self.gone = (
                    "token refused (4401)" if code == _CLOSE_UNAUTHORIZED else "replaced (4409)"
                )
                self.run.stats.errors[f"ws:closed {code}"] += 1
                self.ready.set()
                self.stopping.set()
                self.wake.set()
                break
            self.run.stats.reconnects += 1
            self.tally["reconnects"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff * (0.5 + self.rng.random()))
            backoff = min(backoff * 2, 5.0)

    async def _session(self, ws: ClientConnection) -> None:
        hello = json.loads(await ws.recv())
        if hello.get("type") != "hello":
            raise ConnectionClosed(None, None)  # pragma: no cover - the contract says hello first
        if self.baseline is None:
            self.baseline = int(hello["seq"])  # older messages are another run's history
        self.connected.set()
        self.ready.set()
        self.run.stats.connected += 1
        for request in self.resend:
            self._schedule(0.0, _ACTION_OF[request.kind], request.assignment_id, resend=True)
        self.resend.clear()
        async for text in ws:
            await self._receive(ws, text)

    def _requeue_pending(self) -> None:
        """Answers whose reply was lost with the socket are sent again after a reconnect."""
        self.resend.extend(self.pending.values())
        self.pending.clear()

    # ------------------------------------------------------------- messages

    async def _receive(self, ws: ClientConnection, text: str | bytes) -> None:
        try:
            message = json.loads(text)
            await self._dispatch(ws, message)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Off contract: counted, and the volunteer carries on (a phone would too).
            self.run.stats.errors[f"ws: bad message ({type(exc).__name__})"] += 1

    async def _dispatch(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        kind = message.get("type")
        seq = message.get("seq")
        if isinstance(seq, int):
            if seq <= self.last_seq:
                return  # already seen (a replay)
            self.last_seq = seq
            await ws.send(json.dumps({"type": "ack", "seq": seq}))
            if self.baseline is not None and seq <= self.baseline:
                self.tally[_HISTORY] += 1
                return
        if kind == "assignment.offered":
            self._offered(message)
        elif kind in ("assignment.expired", "assignment.cancelled", "assignment.updated"):
            self.changed(kind, message["assignment"])
        elif kind == "result":
            request = self.pending.pop(str(message.get("re")), None)
            if request is not None:
                self._applied(request, message.get("assignment") or {})
        elif kind == "error":
            self._failed(message)

    def _offered(self, message: dict[str, Any]) -> None:
        a, incident = message["assignment"], message["incident"]
        if a["id"] in self.plays:
            return
        now = time.monotonic()
        self.run.clock.observe(parse_iso(a["offered_at"]))
        track = self.run.track(incident["id"])
        if track.offers == 0:
            track.first_offer_mono = now
            track.first_offered_at = a["offered_at"]
        track.offers += 1
        self.run.stats.offers += 1
        self.tally["alerts"] += 1
        o = self.options
        if self.rng.random() < o.acceptance:
            intent = "accept"
        elif self.rng.random() < o.silent_share:
            intent = "silent"
        else:
            intent = "decline"
        delay = float(self.rng.uniform(*o.answer_delay_s))
        play = _Play(a["id"], incident["id"], float(incident["lat"]), float(incident["lon"]),
                     a.get("eta_s"), intent)  # fmt: skip
        self.plays[play.assignment_id] = play
        if intent == "silent":
            track.silent += 1
            self.run.stats.silent += 1
            self.tally["silent"] += 1
            return
        if intent == "accept":
            play.accept_pending = True
            track.pending_accepts += 1
        self._schedule(delay, _ANSWER, play.assignment_id)

    def _settle(self, play: _Play) -> None:
        if play.accept_pending:
            play.accept_pending = False
            self.run.track(play.incident_id).pending_accepts -= 1

    def _end(self, play: _Play) -> None:
        self._settle(play)
        self.run.track(play.incident_id).active.discard(play.assignment_id)
        self.plays.pop(play.assignment_id, None)
        if play.travel_from is not None and play.state == "accepted":
            self._stop_travel(play)

    def changed(self, kind: str, a: dict[str, Any]) -> None:
        """``assignment.expired`` / ``.cancelled`` / ``.updated`` from the server."""
        with contextlib.suppress(InvalidInput, KeyError):
            self.run.clock.observe(parse_iso(a["updated_at"]))
        play = self.plays.get(a["id"])
        if play is None:
            return
        track = self.run.track(play.incident_id)
        if kind == "assignment.expired":
            track.expired += 1
            self.run.stats.expired += 1
            self.tally["expired"] += 1
            self._end(play)
        elif kind == "assignment.cancelled":
            track.cancelled += 1
            self.run.stats.cancelled += 1
            self.tally["stood_down"] += 1
            self._end(play)
        elif a.get("state") == "completed":
            # Closing an incident completes (and credits) those on scene; so may an operator.
            track.completed += 1
            self.run.stats.completed += 1
            self.tally["completed"] += 1
            self._end(play)
        elif a.get("state") in ("declined", "withdrawn"):
            self._end(play)  # an operator acted for the volunteer

    def _applied(self, request: _Request, a: dict[str, Any]) -> None:
        """The server applied ``request`` (a ``result``, or found by reconciling)."""
        play = self.plays.get(request.assignment_id)
        if play is None:
            return
        track = self.run.track(play.incident_id)
        stats = self.run.stats
        now = time.monotonic()
        if request.kind == "accept":
            self._settle(play)
            play.state = "accepted"
            track.accepted += 1
            track.active.add(play.assignment_id)
            stats.accepted += 1
            self.tally["accepted"] += 1
            eta = a.get("eta_s", play.eta_s)
            eta_s = float(eta) if isinstance(eta, int | float) else 300.0
            play.travel_from = (self.lat, self.lon)
            play.travel_start = now
            play.travel_s = eta_s * self.options.time_scale
            self._schedule(play.travel_s, _ARRIVE, play.assignment_id)
        elif request.kind == "decline":
            track.declined += 1
            stats.declined += 1
            self.tally["declined"] += 1
            self._end(play)
        elif request.kind == "arrive":
            play.state = "on_scene"
            play.travel_from = None
            self.lat, self.lon = play.lat, play.lon
            track.arrived += 1
            stats.arrived += 1
            self.tally["arrived"] += 1
            service = float(self.rng.uniform(*self.options.service_s)) * self.options.time_scale
            self._schedule(service, _COMPLETE, play.assignment_id)
        elif request.kind == "complete":
            play.state = "done"
            track.completed += 1
            stats.completed += 1
            self.tally["completed"] += 1
            self._end(play)

    def _failed(self, message: dict[str, Any]) -> None:
        code = str(message.get("code"))
        re_ = message.get("re")
        if re_ is None:
            self.run.stats.errors[f"fix:{code}"] += 1  # fixes and acks carry no id
            self.tally["fixes_rejected"] += 1
            return
        request = self.pending.pop(str(re_), None)
        if request is None:
            return
        play = self.plays.get(request.assignment_id)
        if code in ("conflict", "not_found") and request.resend:
            self._schedule(0.0, _RECONCILE, request.assignment_id, kind=request.kind)
            return
        if code not in ("conflict", "not_found"):
            self.run.stats.errors[f"{request.kind}:{code}"] += 1
            if play is not None:
                self._settle(play)
            return
        # Too late: the offer expired or was cancelled, or the incident closed. The server's
        # message saying so (which ends the play, and is counted) may still be on its way.
        self.run.stats.late += 1
        self.tally["late"] += 1
        if play is not None:
            self.run.track(play.incident_id).late += 1
            self._settle(play)
            play.state = "refused"

    # -------------------------------------------------------------- actions

    def _schedule(
        self, delay: float, action: str, assignment_id: str = "", *, kind: str = "",
        resend: bool = False,
    ) -> None:  # fmt: skip
        entry = (time.monotonic() + delay, next(self.counter), action, assignment_id, kind, resend)
        heapq.heappush(self.heap, entry)
        self.wake.set()

    async def _actions(self) -> None:
        interval = self.options.fix_interval_s
        next_fix = time.monotonic() + float(self.rng.uniform(0.0, interval))  # spread the load
        while not self.stopping.is_set():
            due = min(next_fix, self.heap[0][0]) if self.heap else next_fix
            delay = due - time.monotonic()
            if delay > 0:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)
                continue
            now = time.monotonic()
            if now >= next_fix:
                if self.run.fixing:
                    await self._fix(now)
                next_fix = max(next_fix + interval, now)
            while self.heap and self.heap[0][0] <= now and not self.stopping.is_set():
                _, _, action, assignment_id, kind, resend = heapq.heappop(self.heap)
                await self._act(action, assignment_id, kind, resend)

    def _position(self, now: float) -> tuple[float, float]:
        """Where the volunteer is: on the way to a scene, on it, or walking around home."""
        for play in self.plays.values():
            if play.state == "accepted" and play.travel_from is not None:
                lat0, lon0 = play.travel_from
                frac = (
                    1.0
                    if play.travel_s <= 0
                    else min(1.0, (now - play.travel_start) / play.travel_s)
                )
                self.lat = lat0 + (play.lat - lat0) * frac
                self.lon = lon0 + (play.lon - lon0) * frac
                return self.lat, self.lon
            if play.state == "on_scene":
                return self.lat, self.lon
        cos = math.cos(math.radians(self.spec.home_lat))
        north = (self.lat - self.spec.home_lat) * _METRES_PER_DEGREE
        east = (self.lon - self.spec.home_lon) * _METRES_PER_DEGREE * cos
        step = self.rng.standard_normal(2) * self.options.walk_m
        north = north * (1.0 - _FIX_PULL) + float(step[0])
        east = east * (1.0 - _FIX_PULL) + float(step[1])
        self.lat = self.spec.home_lat + north / _METRES_PER_DEGREE
        self.lon = self.spec.home_lon + east / (_METRES_PER_DEGREE * cos)
        return self.lat, self.lon

    def _stop_travel(self, play: _Play) -> None:
        """Stood down on the way: stay where the journey got to."""
        self._position(time.monotonic())
        play.travel_from = None

    async def _fix(self, now: float) -> None:
        lat, lon = self._position(now)
        ws = self.ws
        if ws is None or not self.connected.is_set():
            self.run.stats.fixes_unsent += 1
            return
        message = {
            "type": "position",
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "ts": to_iso(self.run.clock.now()),
            "accuracy_m": round(float(self.rng.uniform(5.0, 15.0)), 1),
        }
        try:
            await ws.send(json.dumps(message))
        except ConnectionClosed:
            self.run.stats.fixes_unsent += 1
            return
        self.run.stats.fixes += 1
        self.tally["fixes"] += 1

    async def _act(self, action: str, assignment_id: str, kind: str, resend: bool) -> None:
        if action == _RECONCILE:
            await self._reconcile(assignment_id, kind)
            return
        play = self.plays.get(assignment_id)
        if play is None:
            return
        expected = {_ANSWER: "offered", _ARRIVE: "accepted", _COMPLETE: "on_scene"}[action]
        if play.state != expected:
            return
        kind = play.intent if action == _ANSWER else action
        ws = self.ws
        if ws is None or not self.connected.is_set():
            self._schedule(_RETRY_S, action, assignment_id, resend=resend)
            return
        request_id = f"r{next(self.counter)}"
        if resend:
            self.run.stats.resent += 1
        body: dict[str, Any] = {"type": kind, "id": request_id, "assignment_id": assignment_id}
        if kind == "decline":
            body["reason"] = "drill: cannot come"
        self.pending[request_id] = _Request(kind, assignment_id, resend)
        # A send that fails leaves the request pending: the reconnect sends it again.
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(body))

    async def _reconcile(self, assignment_id: str, kind: str) -> None:
        """A resent answer was refused: ask the server whether the first one was applied."""
        play = self.plays.get(assignment_id)
        if play is None:
            return
        try:
            incident = await self.run.call("GET", f"/incidents/{play.incident_id}")
        except DrillError:
            self.run.stats.errors[f"{kind}:reconcile failed"] += 1
            self._settle(play)
            return
        found = next((a for a in incident["assignments"] if a["id"] == assignment_id), None)
        state = None if found is None else found["state"]
        if found is not None and state in ("expired", "cancelled"):
            self.changed(f"assignment.{state}", found)
            return
        applied = {
            "accept": ("accepted", "on_scene", "completed"),
            "decline": ("declined",),
            "arrive": ("on_scene", "completed"),
            "complete": ("completed",),
        }[kind]
        if found is not None and state in applied:
            self.run.stats.reconciled += 1
            self._applied(_Request(kind, assignment_id, resend=True), found)
            return
        self.run.stats.errors[f"{kind}:reconcile found {state}"] += 1
        self._end(play)


_ACTION_OF: Final = {
    "accept": _ANSWER,
    "decline": _ANSWER,
    "arrive": _ARRIVE,
    "complete": _COMPLETE,
}


# ==================================================================================== run


async def _each(items: Sequence[Any], work: Callable[[Any], Awaitable[None]], limit: int) -> None:
    """``work(item)`` for every item, at most ``limit`` at once (``limit`` worker tasks)."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await work(item)

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(limit, len(items))):
            tg.create_task(worker())


class _Pool:
    """Operator requests in flight, at most ``limit`` at once; ``submit`` waits for a slot."""

    def __init__(self, tg: asyncio.TaskGroup, limit: int) -> None:
        self._tg = tg
        self._slots = asyncio.Semaphore(limit)
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def submit(self, job: Callable[[], Awaitable[None]]) -> None:
        await self._slots.acquire()
        self._running += 1
        self._idle.clear()

        async def run() -> None:
            try:
                await job()
            finally:
                self._slots.release()
                self._running -= 1
                if not self._running:
                    self._idle.set()

        self._tg.create_task(run())

    async def idle(self) -> None:
        await self._idle.wait()


def _ws_base(url: str) -> str:
    parts = urlsplit(url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:200]
    return str(body)[:200]


class _Run:
    """The drill's shared state: the HTTP client, the clock, the incidents, the counters."""

    def __init__(
        self, options: DrillOptions, http: httpx.AsyncClient, clock: DrillClock, stop: asyncio.Event
    ) -> None:
        self.options = options
        self.http = http
        self.clock = clock
        self.stop = stop
        self.ws_url = _ws_base(options.url)
        self.tracks: dict[str, _Track] = {}
        self.players: dict[str, _Player] = {}
        self.stats = _Stats()
        self.fixing = False

    def track(self, incident_id: str) -> _Track:
        found = self.tracks.get(incident_id)
        if found is None:
            found = self.tracks[incident_id] = _Track(incident_id)
        return found

    def ours(self) -> list[_Track]:
        return [t for t in self.tracks.values() if t.ours]

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        token: str | None = None,
        expect: Iterable[int] = (200, 201),
    ) -> Any:
        """One REST call of the contract; the decoded answer.

        Raises:
            DrillError: the server is unreachable or answered another status.
        """
        headers = {"Authorization": f"Bearer {token or self.options.token}"}
        try:
            response = await self.http.request(method, _API + path, headers=headers, json=body)
        except httpx.HTTPError as exc:
            raise DrillError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code not in tuple(expect):
            raise DrillError(f"{method} {path}: {response.status_code} {_detail(response)}")
        return response.json()

    async def pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped first; True if stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), max(0.0, seconds))
        return self.stop.is_set()

    # ---------------------------------------------------------------- incidents

    async def create(self, planned: PlannedIncident) -> None:
        body = {
            "type": planned.type,
            "lat": planned.lat,
            "lon": planned.lon,
            "severity": planned.severity,
            "note": f"演练 drill seed {self.options.seed} #{planned.ordinal}",
        }
        posted = time.monotonic()
        try:
            data = await self.call("POST", "/incidents", body=body, expect=(201,))
        except DrillError as exc:
            self.stats.errors[f"create: {exc}"[:120]] += 1
            return
        elapsed_ms = (time.monotonic() - posted) * 1000.0
        track = self.track(data["id"])
        track.ours = True
        track.plan = planned
        track.posted_mono = posted
        track.create_ms = elapsed_ms
        track.created_at = data["created_at"]
        track.offers_at_creation = len(data["assignments"])
        track.first_to_played = any(a["volunteer_id"] in self.players for a in data["assignments"])
        track.close_due_mono = posted + planned.close_after_s
        self.stats.incidents += 1
        self.stats.create_ms.append(elapsed_ms)
        self.clock.observe(parse_iso(data["created_at"]))

    async def close(self, track: _Track, reason: str) -> None:
        try:
            closed = await self.call(
                "POST", f"/incidents/{track.id}/close", body={"outcome": f"drill: {reason}"},
                expect=(200, 409),
            )  # fmt: skip
        except DrillError as exc:
            self.stats.errors[f"close: {exc}"[:120]] += 1
            track.closing = False
            track.close_due_mono = time.monotonic() + 5.0  # try again later
            return
        track.closed_by = reason
        # Those on scene are completed by the close, and their sockets are not told.
        for a in closed.get("assignments", ()):
            player = self.players.get(a["volunteer_id"])
            if a["state"] == "completed" and player is not None:
                player.changed("assignment.updated", a)

    async def stream(self, plan: Sequence[PlannedIncident], pool: _Pool) -> None:
        """Create the planned incidents on time (until stopped)."""
        start = time.monotonic()
        for planned in plan:
            if await self.pause(start + planned.at_s - time.monotonic()):
                return
            await pool.submit(functools.partial(self.create, planned))

    async def closer(self, pool: _Pool, done: asyncio.Event) -> None:
        """Close incidents once resolved, or at their deadline."""
        while not done.is_set():
            now = time.monotonic()
            for track in self.ours():
                if track.closed_by is not None or track.closing:
                    continue
                reason = "resolved" if track.resolved else "deadline"
                if reason == "deadline" and now < track.close_due_mono:
                    continue
                track.closing = True
                await pool.submit(functools.partial(self.close, track, reason))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.2)

    async def status(self, players: Sequence[_Player], done: asyncio.Event) -> None:
        """A progress bar over the duration with the counters, every second."""
        options = self.options
        bar: tqdm[Never] = tqdm(
            total=round(options.duration_s), desc="drill", unit="s", disable=options.common.quiet,
            file=sys.stderr, leave=False, bar_format="{desc} {n_fmt}/{total_fmt} s {postfix}",
        )  # fmt: skip
        start = time.monotonic()
        total = round(options.duration_s)
        with bar:
            while not done.is_set():
                bar.n = min(round(time.monotonic() - start), total)
                bar.set_postfix_str(self.stats.line(self.tracks, len(players)), refresh=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 1.0)


@dataclass(frozen=True, slots=True)
class DrillResult:
    """What a drill wrote and found.

    Attributes:
        folder: the run folder.
        summary: the contents of ``summary.json``.
        incidents: the rows of ``incidents.csv``.
        volunteers: the rows of ``volunteers.csv``.
    """

    folder: Path
    summary: dict[str, Any]
    incidents: list[dict[str, Any]]
    volunteers: list[dict[str, Any]]


async def drill(
    options: DrillOptions, *, stop: asyncio.Event | None = None, out: TextIO = sys.stdout
) -> DrillResult:
    """Play the volunteers and the incidents against the server at ``options.url``.

    Args:
        options: the drill.
        stop: set it to end early (Ctrl-C): no new incidents, no drain; the drill still
            closes its incidents, writes its files and prints its summary.
        out: where the summary goes (unless ``quiet``).

    Raises:
        DatasetError: the dataset cannot be loaded.
        InvalidInput: the options ask for more volunteers than the area has.
        DrillError: the server is unreachable, refuses the token or a set-up call, or the
            volunteers' sockets do not open.
    """
    started = dt.datetime.now(dt.UTC)
    stop = stop or asyncio.Event()
    ds = dataset(options.common.dataset)
    specs = sample_volunteers(ds, options)
    plan = plan_incidents(ds, options)
    limits = httpx.Limits(max_connections=options.concurrency * 2)
    async with httpx.AsyncClient(base_url=options.url, timeout=30.0, limits=limits) as http:
        run = _Run(options, http, DrillClock(time.time(), follow=False), stop)
        store = await _preflight(run, specs[0].id)
        server_start = run.clock.now()
        players = [_Player(spec, i, run) for i, spec in enumerate(specs)]
        run.players = {p.spec.id: p for p in players}
        try:
            timing = await _play(run, players, plan)
        except* DrillError as group:
            raise group.exceptions[0] from None
        server_end = run.clock.now()
        incidents = await _server_incidents(run)
        points = await _server_points(run, players)
    return _write(
        run, players, plan, incidents, points, started=started, out=out,
        extra={
            "store": store,
            "server_time_start": to_iso(server_start),
            "server_time_end": to_iso(server_end),
            **timing,
        },
    )  # fmt: skip


async def _preflight(run: _Run, probe_id: str) -> str:
    """The server answers, the token is an operator's, and the clock is set; the store."""
    try:
        health = await run.http.get("/healthz")
    except httpx.HTTPError as exc:
        raise DrillError(f"{run.options.url} is unreachable: {type(exc).__name__}: {exc}") from exc
    if health.status_code != 200:
        raise DrillError(f"{run.options.url}/healthz: {health.status_code} {_detail(health)}")
    store = str(health.json().get("store"))
    if run.options.clock == "server":
        coverage = await run.call("GET", "/coverage?k=1")
        run.clock = DrillClock(parse_iso(coverage["computed_at"], "computed_at"), follow=True)
    else:  # any operator-only call proves the token: 200 or 404 both do
        await run.call("GET", f"/volunteers/{probe_id}", expect=(200, 404))
    return store


async def _play(
    run: _Run, players: Sequence[_Player], plan: Sequence[PlannedIncident]
) -> dict[str, float]:
    """Set-up, the incident stream, the drain and the tear-down; the phases' lengths."""
    options = run.options
    limit = options.concurrency

    async def register(player: _Player) -> None:
        await run.call("PUT", f"/volunteers/{player.spec.id}", body=player.spec.body())
        answer = await run.call("POST", f"/volunteers/{player.spec.id}/tokens", expect=(201,))
        player.token = str(answer["token"])
        # Points accumulate over runs (a reused id): the run's own are the difference.
        player.points_before = await run.call("GET", f"/volunteers/{player.spec.id}/points")

    await _each(players, register, limit)
    async with asyncio.TaskGroup() as tg:
        for player in players:
            tg.create_task(player.play())
        try:
            await _start(run, players)
            timing = await _stream(run, players, plan)
        finally:
            await _each(players, lambda p: p.stop(), limit * 4)
    return timing


async def _start(run: _Run, players: Sequence[_Player]) -> None:
    """Wait for every socket's hello; then on duty, first fixes, and fixes from now on."""
    options = run.options
    try:
        async with asyncio.timeout(30.0 + len(players) / 20.0):
            for player in players:
                await player.ready.wait()
    except TimeoutError:
        waiting = sum(not p.ready.is_set() for p in players)
        raise DrillError(f"{waiting} of {len(players)} volunteer sockets did not open") from None
    gone = [p for p in players if p.gone]
    if gone:
        raise DrillError(f"{len(gone)} volunteer sockets were closed: {gone[0].gone}")

    async def on_duty(player: _Player) -> None:
        await run.call(
            "PUT", f"/volunteers/{player.spec.id}/availability", body={"status": "available"},
            token=player.token,
        )  # fmt: skip

    await _each(players, on_duty, options.concurrency)
    now = to_iso(run.clock.now())
    for first in range(0, len(players), 1000):
        fixes = [
            {"volunteer_id": p.spec.id, "lat": p.lat, "lon": p.lon, "ts": now, "accuracy_m": 10.0}
            for p in players[first : first + 1000]
        ]
        answer = await run.call("POST", "/positions", body={"positions": fixes})
        for rejected in answer["rejected"]:
            run.stats.errors[f"fix:{rejected['reason']}"] += 1
        run.stats.fixes += int(answer["accepted"])
    run.fixing = True


async def _stream(
    run: _Run, players: Sequence[_Player], plan: Sequence[PlannedIncident]
) -> dict[str, float]:
    """The incidents, the drain, the last closes and off duty; the phases' lengths."""
    options = run.options
    done = asyncio.Event()  # no more closing by the closer, no more progress
    t0 = t1 = t2 = time.monotonic()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(run.status(players, done))
        async with asyncio.TaskGroup() as jobs:
            pool = _Pool(jobs, options.concurrency)
            closer = jobs.create_task(run.closer(pool, done))
            try:
                await run.stream(plan, pool)
                await run.pause(t0 + options.duration_s - time.monotonic())
                t1 = time.monotonic()
                await pool.idle()  # the last creations
                deadline = t1 + options.drain_s
                while any(t.closed_by is None for t in run.ours()) and time.monotonic() < deadline:
                    if await run.pause(min(0.2, deadline - time.monotonic())):
                        break
                done.set()
                await closer
                t2 = time.monotonic()
                for track in run.ours():
                    if track.closed_by is None and not track.closing:
                        track.closing = True
                        await pool.submit(functools.partial(run.close, track, "end"))
            finally:
                done.set()
        await asyncio.sleep(_GRACE_S)  # the last pushes (cancellations) reach the sockets
        if not options.keep_on_duty:

            async def off_duty(player: _Player) -> None:
                with contextlib.suppress(DrillError):
                    await run.call(
                        "PUT", f"/volunteers/{player.spec.id}/availability",
                        body={"status": "off_duty"},
                    )  # fmt: skip

            await _each(players, off_duty, options.concurrency)
    return {"duration_s": t1 - t0, "drain_s": t2 - t1, "teardown_s": time.monotonic() - t2}


async def _server_incidents(run: _Run) -> dict[str, dict[str, Any]]:
    """The server's view of each incident the drill created (``GET /incidents/{id}``)."""
    found: dict[str, dict[str, Any]] = {}

    async def fetch(track: _Track) -> None:
        try:
            found[track.id] = await run.call("GET", f"/incidents/{track.id}")
        except DrillError as exc:
            run.stats.errors[f"read incident: {exc}"[:120]] += 1

    await _each(run.ours(), fetch, run.options.concurrency)
    return found


async def _server_points(run: _Run, players: Sequence[_Player]) -> dict[str, dict[str, Any]]:
    """``GET /volunteers/{id}/points`` of each played volunteer."""
    found: dict[str, dict[str, Any]] = {}

    async def fetch(player: _Player) -> None:
        try:
            found[player.spec.id] = await run.call("GET", f"/volunteers/{player.spec.id}/points")
        except DrillError as exc:
            run.stats.errors[f"read points: {exc}"[:120]] += 1

    await _each(players, fetch, run.options.concurrency)
    return found


# ================================================================================ outputs

_STATES: Final = (
    "offered", "accepted", "on_scene", "completed", "declined", "expired", "cancelled",
    "withdrawn",
)  # fmt: skip
_RINGS: Final = ("1", "3", "5")


def _incident_row(track: _Track, server: Mapping[str, Any] | None) -> dict[str, Any]:
    planned = track.plan
    assert planned is not None
    assignments: list[dict[str, Any]] = [] if server is None else server["assignments"]
    states = Counter(a["state"] for a in assignments)
    first_server = math.nan
    if assignments and track.created_at is not None:
        first = min(parse_iso(a["offered_at"]) for a in assignments)
        first_server = first - parse_iso(track.created_at)
    rings: Mapping[str, Mapping[str, int]] = {} if server is None else server["rings"]
    wanted = [r for r in _RINGS if rings.get(r, {}).get("needed", 0) > 0]
    met = [r for r in wanted if rings[r]["accepted"] >= rings[r]["needed"]]
    row: dict[str, object] = {
        "id": track.id,
        "ordinal": planned.ordinal,
        "type": planned.type,
        "severity": planned.severity,
        "lat": planned.lat,
        "lon": planned.lon,
        "village_id": planned.village_id,
        "created_at": track.created_at,
        "create_ms": track.create_ms,
        "first_offer_ms": track.first_offer_ms,
        "first_offer_server_s": first_server,
        "offers_at_creation": track.offers_at_creation,
        "offers_seen": track.offers,
        "accepted": track.accepted,
        "declined": track.declined,
        "silent": track.silent,
        "expired": track.expired,
        "stood_down": track.cancelled,
        "late": track.late,
        "arrived": track.arrived,
        "completed": track.completed,
        "offers": len(assignments) if server is not None else None,
    }
    row.update({f"server_{s}": states[s] for s in _STATES})
    for r in _RINGS:
        row[f"ring{r}_needed"] = rings.get(r, {}).get("needed")
        row[f"ring{r}_accepted"] = rings.get(r, {}).get("accepted")
    row.update(
        rings_wanted=" ".join(wanted),
        rings_met=" ".join(met),
        unmet=" ".join(str(u) for u in (server or {}).get("unmet", [])),
        state=None if server is None else server["state"],
        outcome=None if server is None else server.get("outcome"),
        closed_at=None if server is None else server.get("closed_at"),
        closed_by=track.closed_by,
    )
    return row


_TALLIES: Final = (
    "alerts", "accepted", "declined", "silent", "expired", "stood_down", "late", "arrived",
    "completed", "fixes", "fixes_rejected", "reconnects", _HISTORY,
)  # fmt: skip


def _volunteer_row(player: _Player, points: Mapping[str, Any] | None) -> dict[str, Any]:
    spec, tally = player.spec, player.tally
    return {
        "id": spec.id,
        "dataset_id": spec.dataset_id,
        "name": spec.name,
        "mode": spec.mode,
        "unit_id": spec.unit_id,
        "village_id": spec.village_id,
        "home_lat": spec.home_lat,
        "home_lon": spec.home_lon,
        **{key: tally[key] for key in _TALLIES},
        "gone": player.gone,
        **_points_of(player, points),
    }


def _points_of(player: _Player, points: Mapping[str, Any] | None) -> dict[str, object]:
    """This run's points, service seconds and completions (the server's totals minus what
    the volunteer had before), and the totals."""
    if points is None:
        return dict.fromkeys(("points", "service_seconds", "completed_server", "points_total"))
    before = player.points_before
    return {
        "points": points["points"] - before.get("points", 0),
        "service_seconds": round(points["service_seconds"] - before.get("service_seconds", 0), 1),
        "completed_server": points["completed"] - before.get("completed", 0),
        "points_total": points["points"],
    }


def _stats_of(values: Sequence[float]) -> dict[str, float | int]:
    finite = [v for v in values if math.isfinite(v)]
    p50, p95 = _quantiles(finite)
    return {
        "n": len(finite),
        "p50": p50,
        "p95": p95,
        "max": max(finite) if finite else math.nan,
        "mean": float(np.mean(finite)) if finite else math.nan,
    }


def _write(
    run: _Run,
    players: Sequence[_Player],
    plan: Sequence[PlannedIncident],
    incidents: Mapping[str, Mapping[str, Any]],
    points: Mapping[str, Mapping[str, Any]],
    *,
    started: dt.datetime,
    out: TextIO,
    extra: Mapping[str, object],
) -> DrillResult:
    options, stats = run.options, run.stats
    ours = sorted(run.ours(), key=lambda t: t.plan.ordinal if t.plan else -1)
    incident_rows = [_incident_row(t, incidents.get(t.id)) for t in ours]
    volunteer_rows = [_volunteer_row(p, points.get(p.spec.id)) for p in players]
    states = Counter(a["state"] for i in incidents.values() for a in i["assignments"])
    played = {p.spec.id for p in players}
    to_others = sum(
        1 for i in incidents.values() for a in i["assignments"] if a["volunteer_id"] not in played
    )
    rings: dict[str, dict[str, int]] = {}
    for r in _RINGS:
        wanted = [row for row in incident_rows if r in str(row["rings_wanted"]).split()]
        met = [row for row in wanted if r in str(row["rings_met"]).split()]
        rings[r] = {"wanted": len(wanted), "met": len(met)}
    foreign = sum(t.offers for t in run.tracks.values() if not t.ours)
    summary: dict[str, Any] = {
        "server": options.url,
        **extra,
        "volunteers": len(players),
        "volunteers_gone": sum(1 for p in players if p.gone),
        "incidents": {
            "planned": len(plan),
            "created": stats.incidents,
            "with_offers": sum(1 for row in incident_rows if row["offers"]),
            "closed_by": dict(Counter(t.closed_by or "not closed" for t in ours)),
            "server_state": dict(Counter(str(i["state"]) for i in incidents.values())),
        },
        "offers": {
            "seen": stats.offers - foreign,
            "seen_other_incidents": foreign,
            "server": sum(len(i["assignments"]) for i in incidents.values()),
            "server_to_others": to_others,
        },
        "answers": {
            "accepted": stats.accepted,
            "declined": stats.declined,
            "silent": stats.silent,
            "late": stats.late,
        },
        "expired": stats.expired,
        "stood_down": stats.cancelled,
        "arrived": stats.arrived,
        "completed": stats.completed,
        "server_assignments": {s: states[s] for s in _STATES},
        "points": sum(int(row["points"] or 0) for row in volunteer_rows),
        "rings": rings,
        "first_offer_ms": _stats_of([t.first_offer_ms for t in ours]),
        "create_ms": _stats_of(stats.create_ms),
        "fixes": {"sent": stats.fixes, "unsent": stats.fixes_unsent},
        "reconnects": stats.reconnects,
        "answers_resent": stats.resent,
        "answers_reconciled": stats.reconciled,
        "errors": dict(stats.errors),
    }
    folder = report.run_folder("drill", options.common.out)
    report.write_csv(
        folder / "incidents.csv", _degrees(incident_rows, "lat", "lon"), fields=_incident_fields()
    )
    report.write_csv(folder / "volunteers.csv", _degrees(volunteer_rows, "home_lat", "home_lon"))
    report.write_geojson(
        folder / "incidents.geojson",
        [float(row["lat"]) for row in incident_rows],
        [float(row["lon"]) for row in incident_rows],
        incident_rows,
    )
    report.write_json(folder / "summary.json", summary)
    report.write_manifest(
        folder,
        command="drill",
        argv=options.common.argv,
        parameters=options.parameters(),
        seed=options.seed,
        travel={"name": "the server's", "url": options.url},
        dataset=options.common.dataset,
        policy=None,
        started=started,
        extra={"volunteers": [p.spec.id for p in players]},
    )
    if not options.common.quiet:
        _print_summary(summary, folder, out)
    return DrillResult(folder, summary, incident_rows, volunteer_rows)


def _degrees(rows: Sequence[Mapping[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """Coordinates to 7 decimals (1 cm) for the CSV, whose writer keeps 6 significant
    digits of other floats (about 10 m here)."""
    return [{**row, **{k: f"{row[k]:.7f}" for k in keys}} for row in rows]


def _incident_fields() -> list[str]:
    probe = _Track("", plan=PlannedIncident(0, 0.0, "", 1, 0.0, 0.0, "", 0.0))
    return list(_incident_row(probe, None))


def _print_summary(s: Mapping[str, Any], folder: Path, out: TextIO) -> None:
    inc, offers, answers = s["incidents"], s["offers"], s["answers"]
    p = print
    p(
        f"Drill against {s['server']} (store {s['store']}): {s['volunteers']} volunteers, "
        f"{s['duration_s']:.0f} s of incidents + {s['drain_s']:.0f} s drain",
        file=out,
    )
    p(
        f"  incidents       {inc['created']} created ({inc['planned']} planned), "
        f"{inc['with_offers']} with offers; closed: "
        + ", ".join(f"{k} {v}" for k, v in sorted(inc["closed_by"].items())),
        file=out,
    )
    p(
        f"  offers          {offers['server']} (server), {offers['seen']} read by the played "
        f"volunteers, {offers['server_to_others']} to volunteers the drill does not play",
        file=out,
    )
    p(
        f"  answers         accepted {answers['accepted']}, declined {answers['declined']}, "
        f"silent {answers['silent']}, too late {answers['late']}; expired {s['expired']}, "
        f"stood down {s['stood_down']}",
        file=out,
    )
    p(
        f"  on scene        arrived {s['arrived']}, completed {s['completed']}, "
        f"points credited {s['points']}",
        file=out,
    )
    first, create = s["first_offer_ms"], s["create_ms"]
    p(
        f"  first offer     p50 {_ms(first['p50'])}, p95 {_ms(first['p95'])}, "
        f"max {_ms(first['max'])} (POST /incidents -> assignment.offered read on a "
        f"played volunteer's socket; {first['n']} incidents offered to one at creation)",
        file=out,
    )
    p(
        f"  POST /incidents p50 {_ms(create['p50'])}, p95 {_ms(create['p95'])}, "
        f"max {_ms(create['max'])}",
        file=out,
    )
    rings = ", ".join(
        f"{r} min {v['met']}/{v['wanted']}" for r, v in s["rings"].items() if v["wanted"]
    )
    p(
        f"  rings met       {rings or 'none wanted'} (server's view, incidents that want the ring)",
        file=out,
    )
    p(
        f"  fixes           {s['fixes']['sent']} sent, {s['fixes']['unsent']} not sent "
        f"(socket down); reconnects {s['reconnects']}",
        file=out,
    )
    if s["errors"]:
        p(
            "  errors          " + "; ".join(f"{k} x{v}" for k, v in sorted(s["errors"].items())),
            file=out,
        )
    p(f"\nwritten to {folder}", file=out)


# ============================================================================ entry point


def run_drill(options: DrillOptions, *, out: TextIO = sys.stdout) -> Path:
    """Run :func:`drill` in a new event loop (the command line): the first Ctrl-C or SIGTERM
    ends it early but cleanly (incidents closed, files written); a second Ctrl-C aborts.

    Raises:
        DrillError, InvalidInput, DatasetError: see :func:`drill`.
        KeyboardInterrupt: aborted by a second Ctrl-C.
    """

    async def main() -> Path:
        stop = asyncio.Event()
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            if stop.is_set() and task is not None:
                task.cancel()
                return
            print("\ndrill: stopping (Ctrl-C again to abort)", file=sys.stderr, flush=True)
            stop.set()

        installed: list[signal.Signals] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, interrupt)
                    installed.append(sig)
        try:
            return (await drill(options, stop=stop, out=out)).folder
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
