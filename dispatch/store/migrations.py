"""The sqlite store's schema, as an ordered list of migration steps.

Theory of operation
-------------------
The schema version of a database file is SQLite's ``PRAGMA user_version`` (0 for a new,
empty file). :data:`MIGRATIONS` is the schema's whole history: step ``n`` takes a file from
version ``n - 1`` to ``n``. :func:`migrate` applies the steps a file lacks, in order, each in
its own ``BEGIN IMMEDIATE`` transaction that also sets ``user_version``: a step applies whole
or not at all, and a crash between steps leaves a file at a valid older version that the next
start continues from. A file whose version is newer than the last step (written by a newer
release) is refused with :class:`~dispatch.errors.StoreError` rather than guessed at.

Rules for whoever adds a step:

* never edit a released step; append one (``ALTER TABLE``, ``CREATE INDEX``, or the
  create-copy-drop-rename dance for what ``ALTER`` cannot do);
* statements only: no ``executescript`` (it commits on its own), no ``PRAGMA foreign_keys``
  (a no-op inside a transaction);
* a step must work on every file the previous steps could have produced, data included.

Schema (version 1)
------------------
.. code-block:: text

    volunteers     id PK, name, unit_id, roles JSON, teams JSON, mode, phone,
                   availability ('available' | 'off_duty'), availability_at
    tokens         token_hash PK, volunteer_id -> volunteers, created_at
    incidents      id PK, state, created_at, data JSON (dispatch.store.codec)
    assignments    id PK, incident_id -> incidents, volunteer_id, state, offered_at, data JSON
                   UNIQUE (volunteer_id) WHERE state IN ('offered', 'accepted', 'on_scene')
    events         id INTEGER PK AUTOINCREMENT, event, at, actor, kind, record_id, payload JSON
    credits        assignment_id PK, volunteer_id, points, service_seconds, at
    outbox_seqs    volunteer_id PK, last_seq
    outbox         (volunteer_id, seq) PK, message JSON       -- pending messages only
    positions      volunteer_id PK, lat, lon, ts, accuracy_m (NULL: unknown)

Incidents and assignments keep the codec's JSON in ``data`` (one exact round trip shared by
every backend) and copy into columns only what queries filter or sort on. The partial unique
index on ``assignments`` is the database's own guard for "one open or active assignment per
volunteer"; the store checks it first so that a violation is a clear
:class:`~dispatch.errors.Conflict`. ``events`` uses ``AUTOINCREMENT`` so that an id is never
reused, even after the newest rows were rolled back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from dispatch.errors import StoreError

__all__ = ["MIGRATIONS", "Migration", "latest_version", "migrate"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema's history: from ``version - 1`` to ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "roster, tokens, incidents, assignments, event log, credits, outbox, positions",
        (
            """
            CREATE TABLE volunteers (
                id              TEXT PRIMARY KEY,
                name            TEXT NOT NULL,
                unit_id         TEXT,
                roles           TEXT NOT NULL,
                teams           TEXT NOT NULL,
                mode            TEXT NOT NULL,
                phone           TEXT,
                availability    TEXT NOT NULL CHECK (availability IN ('available', 'off_duty')),
                availability_at REAL
            )
            """,
            """
            CREATE TABLE tokens (
                token_hash   TEXT PRIMARY KEY,
                volunteer_id TEXT NOT NULL REFERENCES volunteers (id),
                created_at   REAL NOT NULL
            )
            """,
            "CREATE INDEX tokens_by_volunteer ON tokens (volunteer_id)",
            """
            CREATE TABLE incidents (
                id         TEXT PRIMARY KEY,
                state      TEXT NOT NULL,
                created_at REAL NOT NULL,
                data       TEXT NOT NULL
            )
            """,
            "CREATE INDEX incidents_by_state ON incidents (state, created_at, id)",
            """
            CREATE TABLE assignments (
                id           TEXT PRIMARY KEY,
                incident_id  TEXT NOT NULL REFERENCES incidents (id),
                volunteer_id TEXT NOT NULL,
                state        TEXT NOT NULL,
                offered_at   REAL NOT NULL,
                data         TEXT NOT NULL
            )
            """,
            "CREATE INDEX assignments_by_incident ON assignments (incident_id, offered_at, id)",
            """
            CREATE UNIQUE INDEX assignments_one_held ON assignments (volunteer_id)
                WHERE state IN ('offered', 'accepted', 'on_scene')
            """,
            """
            CREATE TABLE events (
                id        INTEGER PRIMARY KEY AUTOINCREMENT,
                event     TEXT NOT NULL,
                at        REAL NOT NULL,
                actor     TEXT,
                kind      TEXT,
                record_id TEXT,
                payload   TEXT NOT NULL
            )
            """,
            "CREATE INDEX events_by_record ON events (kind, record_id)",
            """
            CREATE TABLE credits (
                assignment_id   TEXT PRIMARY KEY,
                volunteer_id    TEXT NOT NULL,
                points          INTEGER NOT NULL,
                service_seconds REAL NOT NULL,
                at              REAL NOT NULL
            )
            """,
            "CREATE INDEX credits_by_volunteer ON credits (volunteer_id)",
            """
            CREATE TABLE outbox_seqs (
                volunteer_id TEXT PRIMARY KEY,
                last_seq     INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE outbox (
                volunteer_id TEXT NOT NULL,
                seq          INTEGER NOT NULL,
                message      TEXT NOT NULL,
                PRIMARY KEY (volunteer_id, seq)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE positions (
                volunteer_id TEXT PRIMARY KEY,
                lat          REAL NOT NULL,
                lon          REAL NOT NULL,
                ts           REAL NOT NULL,
                accuracy_m   REAL
            )
            """,
        ),
    ),
)


def latest_version(steps: Sequence[Migration] = MIGRATIONS) -> int:
    """The version a file has once every step is applied."""
    return steps[-1].version if steps else 0


def _check_steps(steps: Sequence[Migration]) -> None:
    for expected, step in enumerate(steps, start=1):
        if step.version != expected:
            raise ValueError(f"migration steps must be numbered 1, 2, ...: got {step.version}")


def migrate(conn: sqlite3.Connection, steps: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database behind ``conn`` to the latest version of ``steps``.

    ``conn`` must be in autocommit mode (``isolation_level=None``); each missing step runs in
    its own ``BEGIN IMMEDIATE`` transaction together with the new ``user_version``.

    Args:
        conn: an open connection, outside any transaction.
        steps: the schema's history, numbered from 1 (:data:`MIGRATIONS`; tests pass others).

    Returns:
        The version the file had before (0 for a new file).

    Raises:
        StoreError: the file's version is newer than the last step.
        ValueError: ``steps`` are not numbered 1, 2, ... (a programming error).
        sqlite3.Error: a step failed (it is rolled back; the caller translates the error).
    """
    _check_steps(steps)
    latest = latest_version(steps)
    before = _user_version(conn)
    if before > latest:
        raise StoreError(
            f"database schema version {before} is newer than this release knows ({latest}); "
            "upgrade the engine or restore a matching backup"
        )
    for step in steps[before:]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied the step while we waited for the write lock.
            if _user_version(conn) >= step.version:
                conn.execute("COMMIT")
                continue
            for statement in step.statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(step.version)}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return before


def _user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])
