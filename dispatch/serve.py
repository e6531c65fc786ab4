"""``dispatch serve``: run the service under uvicorn (uvloop, httptools).

With ``--demo`` the Gucheng roster is loaded into an empty store, the volunteers on duty at
this hour are made available at their homes, and an operator token and five volunteer tokens
are printed, so the console and a phone (or ``python -m simulations drill``) can be pointed at
it at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import sys
from dataclasses import replace
from typing import TextIO

import numpy as np
import uvicorn

from dispatch.app import create_app
from dispatch.service import OPERATOR, Service
from dispatch.settings import Settings
from dispatch.store.base import VolunteerRecord
from geo.dataset.load import load_dataset
from geo.modes import Mode
from units.vocab import Role, Team, names_of

__all__ = ["seed_demo", "serve"]

log = logging.getLogger(__name__)


async def seed_demo(service: Service, settings: Settings, out: TextIO = sys.stdout) -> None:
    """Load the dataset's roster into an empty store, put the volunteers on duty now at
    their homes, and print five volunteer tokens (near the county seat)."""
    dataset = load_dataset(settings.dataset)
    vols = dataset.volunteers
    now = service.clock.now()
    local = dt.datetime.fromtimestamp(now, dt.timezone(dt.timedelta(hours=8)))  # China time
    on_duty = vols.on_duty(local.weekday(), local.hour)
    if not await service.store.list_volunteers():
        print(f"demo: loading {len(vols):,} volunteers into the store...", file=out, flush=True)
        for i in range(len(vols)):
            unit = int(vols.unit[i])
            await service.put_volunteer(
                VolunteerRecord(
                    id=vols.id[i],
                    name=vols.name[i],
                    unit_id=dataset.units.id[unit] if unit >= 0 else None,
                    roles=tuple(names_of(Role, int(vols.roles[i]))),
                    teams=tuple(names_of(Team, int(vols.teams[i]))),
                    mode=Mode(int(vols.mode[i])).wire,
                )
            )
    for i in np.flatnonzero(on_duty).tolist():
        await service.set_availability(vols.id[i], "available", OPERATOR)
    service.ingest(
        [
            (vols.id[i], float(vols.home_lat[i]), float(vols.home_lon[i]), now, 10.0)
            for i in np.flatnonzero(on_duty).tolist()
        ]
    )
    seat = (37.3472, 115.9651)
    d2 = (vols.home_lat - seat[0]) ** 2 + (vols.home_lon - seat[1]) ** 2
    nearest = [i for i in np.argsort(d2).tolist() if on_duty[i]][:5]
    print(f"demo: {int(on_duty.sum()):,} volunteers on duty at {local:%a %H:%M} (UTC+8)", file=out)
    for i in nearest:
        token = await service.issue_token(vols.id[i])
        print(f"demo: volunteer {vols.id[i]} {vols.name[i]} token {token}", file=out)


def serve(settings: Settings, *, host: str, port: int, demo: bool, out: TextIO = sys.stdout) -> int:
    """Run until interrupted; returns the exit code."""
    if not settings.operator_tokens:
        token = secrets.token_urlsafe(24)
        settings = replace(settings, operator_tokens=(token,))
        print(f"operator token (generated, shown once): {token}", file=out, flush=True)
    elif demo:
        print(f"operator token: {settings.operator_tokens[0]}", file=out, flush=True)

    async def on_start(service: Service) -> None:
        if demo:
            await seed_demo(service, settings, out)
        print(
            f"dispatch: serving on http://{host}:{port} (store {service.store.name}, "
            f"OpenAPI at /docs)",
            file=out,
            flush=True,
        )

    app = create_app(settings, on_start=on_start)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=1 << 20,
        lifespan="on",
        log_level="info",
    )
    uvicorn.Server(config).run()
    return 0
