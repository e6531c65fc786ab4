"""The FastAPI application: lifespan-owned resources, thin routers, problem details.

``create_app(settings)`` builds everything from the frozen settings: the store, the policy,
the dataset's units and villages (for "nearest unit" and coverage), the travel model, the
service. Resources live on ``app.state`` from the lifespan, never in module globals, so tests
can run several apps in one process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from dispatch.app.deps import OperatorOnly, ServiceDep
from dispatch.app.problems import install_problem_handlers, problem
from dispatch.app.routes import router
from dispatch.app.ws import ws_router
from dispatch.core.clock import Clock, FakeClock, to_iso
from dispatch.core.policy import load_policy
from dispatch.errors import StoreError
from dispatch.metrics import CONTENT_TYPE_LATEST
from dispatch.service import Service
from dispatch.settings import Settings
from dispatch.store import create_store
from geo.dataset.load import load_dataset
from geo.roads import RoadModel, RoadNetwork
from geo.travel import CrowFlyModel, TravelModel
from simulations.coverage import Demand

__all__ = ["build_service", "create_app"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def build_service(settings: Settings, clock: Clock | None = None) -> Service:
    """A service from the settings: store, policy, dataset, travel model.

    Raises:
        DatasetError, PolicyError, StoreError: a resource cannot be built.
    """
    policy = load_policy(settings.policy)
    dataset = load_dataset(settings.dataset)
    model: TravelModel
    if settings.travel_model == "road":
        model = RoadModel(RoadNetwork.from_file(dataset.roads_path))
    else:
        model = CrowFlyModel()
    if clock is None and settings.fake_clock_start is not None:
        clock = FakeClock(settings.fake_clock_start)
    if settings.store == "redis":
        raise StoreError("the redis store is not available yet")
    return Service(
        create_store(settings.store, data_dir=settings.data_dir),
        policy,
        model,
        clock=clock,
        operator_tokens=settings.operator_tokens,
        unit_ids=dataset.units.id,
        unit_lat=dataset.units.lat,
        unit_lon=dataset.units.lon,
        demand=Demand.from_dataset(dataset),
        position_flush_s=settings.position_flush_s,
        feed_batch_s=settings.feed_batch_s,
        gc_full_every_s=settings.gc_full_every_s or None,
        gc_full_max_s=settings.gc_full_max_s,
    )


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 before the app sees them.

    A declared ``content-length`` over the limit is refused at once; otherwise the body is
    read here (at most ``limit`` bytes are ever held) and replayed to the app in one message.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": bytes(body), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, f"request bodies are limited to {self.limit} bytes")
        await response(scope, receive, send)


def _replay(first: list[Message], receive: Receive) -> Receive:
    queued = list(first)

    async def replay() -> Message:
        return queued.pop(0) if queued else await receive()

    return replay


class Timing:
    """Observe each HTTP request's latency by route (a pure ASGI middleware: no extra task
    and no body streaming, unlike ``@app.middleware("http")``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            service = getattr(scope["app"].state, "service", None)
            if service is not None:
                service.metrics.request_latency.labels(scope["method"], path).observe(
                    time.perf_counter() - started
                )


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(strict=True, ge=0, le=7 * 86400, allow_inf_nan=False)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    service: Service | None = None,
    on_start: Callable[[Service], Awaitable[None]] | None = None,
) -> FastAPI:
    """The application.

    Args:
        settings: the frozen settings.
        clock: injected time (a FakeClock in tests).
        service: a prebuilt service (tests); otherwise built from ``settings`` in the lifespan.
        on_start: awaited once the service has started (the demo seeds its roster there).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = service or build_service(settings, clock)
        app.state.service = svc
        await svc.start()
        if on_start is not None:
            await on_start(svc)
        try:
            yield
        finally:
            await svc.stop()

    app = FastAPI(
        title="故城义警 dispatch engine",
        version="1",
        summary="Live 1-3-5 minute ring dispatch for the Gucheng county volunteer police",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(router)
    app.include_router(ws_router)

    app.add_middleware(Timing)

    @app.get("/healthz")
    async def healthz(svc: ServiceDep) -> JSONResponse:
        try:
            await svc.store.ping()
        except StoreError as exc:
            return JSONResponse(
                {"status": "unavailable", "store": svc.store.name, "reason": str(exc)},
                status_code=503,
            )
        return JSONResponse({"status": "ok", "store": svc.store.name})

    @app.get("/metrics")
    async def metrics(svc: ServiceDep) -> Response:
        return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/api/v1/admin/clock/advance")
    async def advance_clock(body: ClockAdvance, svc: ServiceDep, _: OperatorOnly) -> dict[str, Any]:
        """Move a fake clock forward (only when the server runs on one: drills and tests)."""
        if not isinstance(svc.clock, FakeClock):
            raise HTTPException(404, "the server runs on the real clock")
        svc.clock.advance(body.seconds)
        svc.wake()
        return {"now": to_iso(svc.clock.now())}

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
