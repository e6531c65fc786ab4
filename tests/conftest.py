"""Fixtures shared by several test modules.

``store``: every :class:`~dispatch.store.base.Store` backend, opened on an empty state, so
that one contract suite (``tests/test_store_contract.py``) runs on all of them (STYLE 4).
Adding a backend is one entry in :data:`STORE_BACKENDS`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from dispatch.store import MemoryStore, SqliteStore, Store

#: Backend name -> a new, unopened, empty store (given the test's ``tmp_path``).
STORE_BACKENDS: dict[str, Callable[[Path], Store]] = {
    "memory": lambda _tmp_path: MemoryStore(),
    "sqlite": lambda tmp_path: SqliteStore(tmp_path / "dispatch.sqlite3"),
}


@pytest_asyncio.fixture(params=list(STORE_BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An open, empty store of each backend; closed after the test."""
    backend = STORE_BACKENDS[request.param](tmp_path)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
