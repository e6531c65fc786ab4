"""The stores: where the service keeps what must survive a restart.

Modules:
    base        the :class:`~dispatch.store.base.Store` protocol, its records
                (:class:`VolunteerRecord`, :class:`EventRecord`, :class:`PointsRecord`,
                :class:`Commit`) and the rules every backend checks inside its transaction
    codec       incidents, assignments and messages to JSON and back (shared by the backends)
    memory      :class:`MemoryStore`: plain dicts, not durable (tests, demos)
    sqlite      :class:`SqliteStore`: the default; one file, WAL, versioned migrations
    migrations  the sqlite schema as an ordered list of steps

:func:`create_store` builds the backend the settings name (``DISPATCH_STORE``); the caller
then awaits :meth:`~dispatch.store.base.Store.open` (in the app's lifespan) and
:meth:`~dispatch.store.base.Store.close`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from dispatch.errors import InvalidInput
from dispatch.store.base import Commit, EventRecord, PointsRecord, Store, VolunteerRecord
from dispatch.store.memory import MemoryStore
from dispatch.store.sqlite import DEFAULT_FILENAME, SqliteStore, Synchronous

__all__ = [
    "BACKENDS",
    "DEFAULT_FILENAME",
    "Commit",
    "EventRecord",
    "MemoryStore",
    "PointsRecord",
    "SqliteStore",
    "Store",
    "VolunteerRecord",
    "create_store",
]

#: The backends :func:`create_store` knows (``redis`` arrives with its own issue).
BACKENDS: Final = ("sqlite", "memory")


def create_store(
    kind: str,
    *,
    data_dir: str | os.PathLike[str] = "var",
    synchronous: Synchronous = "FULL",
) -> Store:
    """A new, unopened store of the named backend.

    Args:
        kind: ``sqlite`` or ``memory`` (the ``DISPATCH_STORE`` setting).
        data_dir: the folder of the sqlite file (``DISPATCH_DATA_DIR``); the file is
            ``<data_dir>/dispatch.sqlite3``.
        synchronous: sqlite's durability level (see :mod:`dispatch.store.sqlite`).

    Raises:
        InvalidInput: ``kind`` is not a known backend.
    """
    if kind == "sqlite":
        return SqliteStore(Path(data_dir) / DEFAULT_FILENAME, synchronous=synchronous)
    if kind == "memory":
        return MemoryStore()
    raise InvalidInput(
        f"unknown store {kind!r}; expected one of {', '.join(BACKENDS)}", field="store"
    )
