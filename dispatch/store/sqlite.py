"""The default store: one SQLite file, WAL mode, stdlib ``sqlite3``.

Theory of operation
-------------------
One process, one connection, one file (``<DISPATCH_DATA_DIR>/dispatch.sqlite3``; the
constructor takes the path). :meth:`SqliteStore.open` creates the directory, connects in
autocommit mode (``isolation_level=None``: the store writes its own ``BEGIN IMMEDIATE`` /
``COMMIT``), sets the pragmas and applies the missing schema steps of
:mod:`dispatch.store.migrations`.

**Pragmas.** ``journal_mode=WAL`` (checked: a file system that cannot do WAL is refused),
``synchronous`` (below), ``foreign_keys=ON`` (assignments -> incidents, tokens ->
volunteers), ``busy_timeout`` (default 1 s; only another process, e.g. an operator's
``sqlite3`` shell, can hold the lock: the server itself never waits on itself).

**Durability: ``synchronous``.** In WAL mode a commit appends to the ``-wal`` file;

* ``NORMAL`` writes it without ``fsync``: the data is in the OS page cache when ``commit``
  returns, so a *process* crash (``SIGKILL``, OOM kill, a Python crash) loses nothing, but a
  power cut or kernel panic may lose the last transactions (never corrupts the file);
* ``FULL`` (the default here) ``fsync``\\ s the WAL on every commit: what ``commit`` returned is
  on disk, power cut included.

The service commits a few times per incident and per answer (tens a second at the busiest
hour of a county, not thousands) and a lost "accepted" would send a volunteer to a scene the
command center believes unattended, so the default is ``FULL``. Its cost is one ``fsync`` per
transaction. Measured on the development VM (ext4 on virtio, 1,000 rounds of one incident
commit, one offer commit with an outbox message, and a ``commit_many`` of four offers):

* ``NORMAL``: ``commit()`` median 0.15-0.24 ms, p99 0.6-2.4 ms (the WAL checkpoints, every
  1,000 pages, fsync too);
* ``FULL``: ``commit()`` median 0.24-0.36 ms, p99 1.2-1.6 ms on an idle disk (fsync ~0.08 ms);
  3.6-4.0 ms median (p99 8-12 ms) while other processes were loading the same disk;
* ``commit_many`` of four offers: one transaction, one fsync: 0.5-0.9 ms median with ``FULL``;
* ``save_positions`` of the whole county (13,556 fixes, one transaction): 35-60 ms;
  ``load_positions``: 25-35 ms.

Deployments on slow storage (SD cards, network disks) can pass ``synchronous="NORMAL"``;
the service can also pass every ``Persist`` group of one engine call to :meth:`commit_many`
to pay one fsync per call instead of one per group.

**Inline calls.** The methods are coroutines but run the sqlite calls inline on the event
loop thread (no ``to_thread``): a commit is one local transaction of a few statements, cheaper
than the thread hand-off it would need. The connection keeps ``check_same_thread=True``
because the service uses the store only from its one event loop thread: open, use and close
it on that thread (a test client that runs the app in another thread must also open the store
there, e.g. in the app's lifespan).

**Atomicity.** Each write method is one ``BEGIN IMMEDIATE ... COMMIT``; any exception inside
rolls it back, so a rule violation (:class:`~dispatch.errors.Conflict`, ...) or a lower-layer
failure leaves nothing half-applied. The rules of :meth:`commit` are checked by queries inside
that same transaction (it holds the write lock), never read-then-write across transactions.
Reads that need several queries (:meth:`load_live`) run in one read transaction, a consistent
snapshot.

**Errors.** ``sqlite3.Error`` and ``OSError`` become :class:`~dispatch.errors.StoreError`
(``raise ... from exc``) at every method; an unopened or closed store raises ``StoreError``
too. Not for several processes: one server per file (use the Redis store to scale out).
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from dispatch.core.engine import Assignment, Credit, Incident
from dispatch.core.states import AssignmentState
from dispatch.errors import Conflict, NotFound, StoreError
from dispatch.store.base import (
    Commit,
    EventRecord,
    PointsRecord,
    RecordKind,
    VolunteerRecord,
    check_ack_seq,
    check_assignment_write,
    check_availability,
    check_limit,
    check_snapshot,
    holds,
    log_time,
)
from dispatch.store.codec import (
    EncodedCommit,
    decode_assignment,
    decode_incident,
    decode_message,
    dumps,
    encode_commit,
    encode_message,
    encode_volunteer,
    loads,
)
from dispatch.store.migrations import MIGRATIONS, Migration, latest_version, migrate
from units.index import PositionSnapshot

__all__ = ["DEFAULT_FILENAME", "SqliteStore", "Synchronous"]

#: The file name under ``DISPATCH_DATA_DIR``.
DEFAULT_FILENAME: Final = "dispatch.sqlite3"

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
_SYNCHRONOUS: Final = ("OFF", "NORMAL", "FULL", "EXTRA")

#: States in which an assignment holds its volunteer (the partial unique index's WHERE).
_HELD_SQL: Final = ", ".join(f"'{s.value}'" for s in AssignmentState if holds(s))


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn lower-layer errors into :class:`StoreError`."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"sqlite store: {action} failed: {exc}") from exc


class SqliteStore:
    """The :class:`~dispatch.store.base.Store` on one SQLite file.

    Args:
        path: the database file (``<data_dir>/dispatch.sqlite3``); its directory is created.
        synchronous: the ``PRAGMA synchronous`` level; ``FULL`` survives power loss,
            ``NORMAL`` survives process crashes only (module docstring).
        busy_timeout_ms: how long a write waits for a lock held by another process.
        migrations: the schema's history (tests pass a longer or shorter one).

    Raises:
        ValueError: ``synchronous`` is not a known level.
    """

    name: Final = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 1000,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {_SYNCHRONOUS}, got {synchronous!r}")
        self.path = Path(path)
        self.synchronous: Synchronous = synchronous
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.migrations = tuple(migrations)
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else "closed"
        return f"SqliteStore({str(self.path)!r}, synchronous={self.synchronous!r}, {state})"

    # --------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Create the directory and file, set the pragmas, migrate. Idempotent.

        Raises:
            StoreError: the path is unwritable, the file is not a database or cannot use WAL,
                or its schema is newer than this release.
        """
        if self._conn is not None:
            return
        conn: sqlite3.Connection | None = None
        try:
            with _translated(f"opening {self.path}"):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"sqlite store: {self.path} cannot use WAL (mode {mode})")
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
                migrate(conn, self.migrations)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL into the file). Idempotent.

        Raises:
            StoreError: closing failed.
        """
        conn, self._conn = self._conn, None
        if conn is not None:
            with _translated("close"):
                conn.close()

    async def ping(self) -> None:
        """Read the schema version from the file.

        Raises:
            StoreError: the store is not open, unreadable, or its schema changed under us.
        """
        with _translated("ping"):
            version = int(self._db().execute("PRAGMA user_version").fetchone()[0])
        if version != latest_version(self.migrations):
            raise StoreError(
                f"sqlite store: schema version is {version}, "
                f"expected {latest_version(self.migrations)}"
            )

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("sqlite store is not open")
        return self._conn

    @contextmanager
    def _transaction(self, action: str, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction: committed if the body returns, rolled back if it raises."""
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with suppress(sqlite3.Error):  # the connection is gone; so is the transaction
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error | OSError):
                raise StoreError(f"sqlite store: {action} failed: {exc}") from exc
            raise

    def _query(self, action: str, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with _translated(action):
            return self._db().execute(sql, params).fetchall()

    @staticmethod
    def _log(
        db: sqlite3.Connection,
        event: str,
        at: float,
        actor: str | None,
        kind: RecordKind | None,
        record_id: str | None,
        payload: str,
    ) -> None:
        _log(db, event, at, actor, kind, record_id, payload)

    # ------------------------------------------------------------------ roster

    async def put_volunteer(
        self, record: VolunteerRecord, *, at: float | None = None, actor: str | None = None
    ) -> bool:
        """Create or replace a volunteer (see :class:`~dispatch.store.base.Store`).

        Raises:
            InvalidInput: ``record.availability`` is not a choosable one.
            StoreError: the record cannot be encoded, or sqlite failed.
        """
        check_availability(record.availability)
        data = encode_volunteer(record)
        when = log_time(at)
        with self._transaction("put_volunteer") as db:
            row = db.execute(
                "SELECT availability FROM volunteers WHERE id = ?", (record.id,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO volunteers (id, name, unit_id, roles, teams, mode, phone,"
                    " availability, availability_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        record.name,
                        record.unit_id,
                        dumps(data["roles"]),
                        dumps(data["teams"]),
                        record.mode,
                        record.phone,
                        record.availability,
                        when,
                    ),
                )
            else:
                db.execute(
                    "UPDATE volunteers SET name = ?, unit_id = ?, roles = ?, teams = ?,"
                    " mode = ?, phone = ? WHERE id = ?",
                    (
                        record.name,
                        record.unit_id,
                        dumps(data["roles"]),
                        dumps(data["teams"]),
                        record.mode,
                        record.phone,
                        record.id,
                    ),
                )
                data["availability"] = row[0]
            created = row is None
            event = "volunteer.created" if created else "volunteer.replaced"
            payload = dumps({"volunteer": data}, "event payload")
            self._log(db, event, when, actor, "volunteer", record.id, payload)
        return created

    async def get_volunteer(self, volunteer_id: str) -> VolunteerRecord | None:
        """The volunteer, or None.

        Raises:
            StoreError: sqlite failed or the row is corrupt.
        """
        rows = self._query("get_volunteer", _VOLUNTEER_SELECT + " WHERE id = ?", (volunteer_id,))
        return _volunteer(rows[0]) if rows else None

    async def list_volunteers(self) -> list[VolunteerRecord]:
        """Every volunteer, by id.

        Raises:
            StoreError: sqlite failed or a row is corrupt.
        """
        rows = self._query("list_volunteers", _VOLUNTEER_SELECT + " ORDER BY id")
        return [_volunteer(row) for row in rows]

    async def set_availability(
        self, volunteer_id: str, status: str, at: float, *, actor: str | None = None
    ) -> None:
        """Record a chosen availability.

        Raises:
            InvalidInput: ``status`` is not ``available`` or ``off_duty``.
            NotFound: unknown volunteer.
            StoreError: sqlite failed.
        """
        status = check_availability(status)
        with self._transaction("set_availability") as db:
            cursor = db.execute(
                "UPDATE volunteers SET availability = ?, availability_at = ? WHERE id = ?",
                (status, float(at), volunteer_id),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no volunteer {volunteer_id!r}")
            self._log(
                db,
                "volunteer.availability",
                at,
                actor,
                "volunteer",
                volunteer_id,
                dumps({"status": status}, "event payload"),
            )

    # ------------------------------------------------------------------ tokens

    async def add_token(self, volunteer_id: str, token_hash: str, at: float) -> None:
        """Remember a token hash for the volunteer.

        Raises:
            NotFound: unknown volunteer.
            Conflict: the hash belongs to another volunteer.
            StoreError: sqlite failed.
        """
        with self._transaction("add_token") as db:
            known = db.execute("SELECT 1 FROM volunteers WHERE id = ?", (volunteer_id,))
            if known.fetchone() is None:
                raise NotFound(f"no volunteer {volunteer_id!r}")
            owner = db.execute(
                "SELECT volunteer_id FROM tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            if owner is not None:
                if owner[0] != volunteer_id:
                    raise Conflict("this token hash is already issued to another volunteer")
                return
            db.execute(
                "INSERT INTO tokens (token_hash, volunteer_id, created_at) VALUES (?, ?, ?)",
                (token_hash, volunteer_id, float(at)),
            )
            self._log(db, "volunteer.token_added", at, None, "volunteer", volunteer_id, "{}")

    async def volunteer_for_token(self, token_hash: str) -> str | None:
        """The volunteer the hash was issued to, or None.

        Raises:
            StoreError: sqlite failed.
        """
        rows = self._query(
            "volunteer_for_token",
            "SELECT volunteer_id FROM tokens WHERE token_hash = ?",
            (token_hash,),
        )
        return str(rows[0][0]) if rows else None

    # ------------------------------------------------------ incidents, assignments

    async def commit(
        self,
        event: str,
        at: float,
        records: Sequence[Incident | Assignment],
        *,
        actor: str | None = None,
        outbox: Sequence[tuple[str, dict[str, Any]]] = (),
        credit: Credit | None = None,
    ) -> list[int]:
        """One atomic write (see :meth:`dispatch.store.base.Store.commit`).

        Raises:
            NotFound: an assignment's incident does not exist.
            IllegalTransition: an assignment's stored state does not allow its new state.
            Conflict: a volunteer would hold two open or active assignments.
            StoreError: a record or message cannot be encoded, or sqlite failed.
        """
        entry = Commit(event, at, records, actor=actor, outbox=outbox, credit=credit)
        return (await self.commit_many([entry]))[0]

    async def commit_many(self, entries: Sequence[Commit]) -> list[list[int]]:
        """Several commits in one transaction (see
        :meth:`dispatch.store.base.Store.commit_many`).

        Raises:
            NotFound, IllegalTransition, Conflict: a rule is broken (nothing is applied).
            StoreError: a record or message cannot be encoded, or sqlite failed.
        """
        # Encode everything first: a bad value fails before the transaction starts.
        encoded = [encode_commit(entry) for entry in entries]
        if not encoded:
            self._db()
            return []
        with self._transaction("commit") as db:
            return [_write_commit(db, entry) for entry in encoded]

    async def get_incident(self, incident_id: str) -> Incident | None:
        """The incident, or None.

        Raises:
            StoreError: sqlite failed or the row is corrupt.
        """
        rows = self._query(
            "get_incident", "SELECT data FROM incidents WHERE id = ?", (incident_id,)
        )
        return decode_incident(loads(rows[0][0], "incident")) if rows else None

    async def list_incidents(self, state: str | None = None) -> list[Incident]:
        """Incidents by creation time, optionally only those in ``state``.

        Raises:
            StoreError: sqlite failed or a row is corrupt.
        """
        if state is None:
            rows = self._query(
                "list_incidents", "SELECT data FROM incidents ORDER BY created_at, id"
            )
        else:
            rows = self._query(
                "list_incidents",
                "SELECT data FROM incidents WHERE state = ? ORDER BY created_at, id",
                (state,),
            )
        return [decode_incident(loads(row[0], "incident")) for row in rows]

    async def get_assignment(self, assignment_id: str) -> Assignment | None:
        """The assignment, or None.

        Raises:
            StoreError: sqlite failed or the row is corrupt.
        """
        rows = self._query(
            "get_assignment", "SELECT data FROM assignments WHERE id = ?", (assignment_id,)
        )
        return decode_assignment(loads(rows[0][0], "assignment")) if rows else None

    async def assignments_of(self, incident_id: str) -> list[Assignment]:
        """The incident's assignments by offer time.

        Raises:
            StoreError: sqlite failed or a row is corrupt.
        """
        rows = self._query(
            "assignments_of",
            "SELECT data FROM assignments WHERE incident_id = ? ORDER BY offered_at, id",
            (incident_id,),
        )
        return [decode_assignment(loads(row[0], "assignment")) for row in rows]

    async def load_live(self) -> tuple[list[Incident], list[Assignment]]:
        """Open incidents and all their assignments, in one read transaction.

        Raises:
            StoreError: sqlite failed or a row is corrupt.
        """
        with self._transaction("load_live", write=False) as db:
            incidents = db.execute(
                "SELECT data FROM incidents WHERE state = 'open' ORDER BY created_at, id"
            ).fetchall()
            assignments = db.execute(
                "SELECT a.data FROM assignments AS a JOIN incidents AS i ON i.id = a.incident_id"
                " WHERE i.state = 'open' ORDER BY a.offered_at, a.id"
            ).fetchall()
        return (
            [decode_incident(loads(row[0], "incident")) for row in incidents],
            [decode_assignment(loads(row[0], "assignment")) for row in assignments],
        )

    async def events(self, *, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        """Log entries after ``after``, oldest first.

        Raises:
            InvalidInput: ``limit`` is not positive.
            StoreError: sqlite failed or a row is corrupt.
        """
        limit = check_limit(limit)
        rows = self._query(
            "events",
            "SELECT id, event, at, actor, kind, record_id, payload FROM events"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (int(after), limit),
        )
        return [
            EventRecord(
                id=int(row[0]),
                event=row[1],
                at=float(row[2]),
                actor=row[3],
                kind=row[4],
                record_id=row[5],
                payload=loads(row[6], "event payload"),
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ points

    async def points(self, volunteer_id: str) -> PointsRecord:
        """The volunteer's account.

        Raises:
            StoreError: sqlite failed.
        """
        rows = self._query(
            "points",
            "SELECT coalesce(sum(points), 0), coalesce(sum(service_seconds), 0.0), count(*)"
            " FROM credits WHERE volunteer_id = ?",
            (volunteer_id,),
        )
        points, seconds, completed = rows[0]
        return PointsRecord(volunteer_id, int(points), float(seconds), int(completed))

    # ------------------------------------------------------------------ outbox

    async def enqueue(self, volunteer_id: str, message: dict[str, Any]) -> int:
        """Append a message to the volunteer's outbox; returns its seq.

        Raises:
            StoreError: the message is not JSON-encodable, or sqlite failed.
        """
        text = encode_message(message)
        with self._transaction("enqueue") as db:
            return _enqueue(db, volunteer_id, text)

    async def pending(self, volunteer_id: str, since: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """Unacknowledged messages with seq > ``since``, in order.

        Raises:
            StoreError: sqlite failed or a message is corrupt.
        """
        rows = self._query(
            "pending",
            "SELECT seq, message FROM outbox WHERE volunteer_id = ? AND seq > ? ORDER BY seq",
            (volunteer_id, int(since)),
        )
        return [(int(seq), decode_message(text)) for seq, text in rows]

    async def ack(self, volunteer_id: str, seq: int) -> None:
        """Delete the volunteer's messages up to ``seq``.

        Raises:
            InvalidInput: ``seq`` is not an int.
            StoreError: sqlite failed.
        """
        seq = check_ack_seq(seq)
        with self._transaction("ack") as db:
            db.execute(
                "DELETE FROM outbox WHERE volunteer_id = ? AND seq <= ?", (volunteer_id, seq)
            )

    async def last_seq(self, volunteer_id: str) -> int:
        """The volunteer's newest seq, 0 if none.

        Raises:
            StoreError: sqlite failed.
        """
        rows = self._query(
            "last_seq",
            "SELECT last_seq FROM outbox_seqs WHERE volunteer_id = ?",
            (volunteer_id,),
        )
        return int(rows[0][0]) if rows else 0

    # --------------------------------------------------------------- positions

    async def save_positions(self, snapshot: PositionSnapshot) -> None:
        """Upsert the last fixes, keeping a stored fix with a newer ``ts``.

        Raises:
            InvalidInput: the snapshot's columns differ in length.
            StoreError: sqlite failed.
        """
        check_snapshot(snapshot)
        rows = [
            (str(volunteer_id), lat, lon, ts, None if math.isnan(acc) else acc)
            for volunteer_id, lat, lon, ts, acc in zip(
                snapshot.ids,
                np.asarray(snapshot.lat, dtype=np.float64).tolist(),
                np.asarray(snapshot.lon, dtype=np.float64).tolist(),
                np.asarray(snapshot.ts, dtype=np.float64).tolist(),
                np.asarray(snapshot.accuracy_m, dtype=np.float64).tolist(),
                strict=True,
            )
        ]
        with self._transaction("save_positions") as db:
            db.executemany(
                "INSERT INTO positions (volunteer_id, lat, lon, ts, accuracy_m)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (volunteer_id) DO UPDATE SET"
                " lat = excluded.lat, lon = excluded.lon, ts = excluded.ts,"
                " accuracy_m = excluded.accuracy_m WHERE excluded.ts >= positions.ts",
                rows,
            )

    async def load_positions(self) -> PositionSnapshot:
        """Every stored fix, by volunteer id.

        Raises:
            StoreError: sqlite failed.
        """
        rows = self._query(
            "load_positions",
            "SELECT volunteer_id, lat, lon, ts, accuracy_m FROM positions ORDER BY volunteer_id",
        )
        return PositionSnapshot(
            ids=[str(row[0]) for row in rows],
            lat=np.array([row[1] for row in rows], dtype=np.float64),
            lon=np.array([row[2] for row in rows], dtype=np.float64),
            ts=np.array([row[3] for row in rows], dtype=np.float64),
            accuracy_m=np.array(
                [math.nan if row[4] is None else row[4] for row in rows], dtype=np.float64
            ),
        )


# ------------------------------------------------------------------- helpers

_VOLUNTEER_SELECT: Final = (
    "SELECT id, name, unit_id, roles, teams, mode, phone, availability FROM volunteers"
)


def _volunteer(row: Sequence[Any]) -> VolunteerRecord:
    return VolunteerRecord(
        id=row[0],
        name=row[1],
        unit_id=row[2],
        roles=tuple(loads(row[3], "roles")),
        teams=tuple(loads(row[4], "teams")),
        mode=row[5],
        phone=row[6],
        availability=row[7],
    )


def _upsert_incident(db: sqlite3.Connection, incident: Incident, text: str) -> None:
    db.execute(
        "INSERT INTO incidents (id, state, created_at, data) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET state = excluded.state,"
        " created_at = excluded.created_at, data = excluded.data",
        (incident.id, incident.state, float(incident.created_at), text),
    )


def _check_assignment(db: sqlite3.Connection, event: str, assignment: Assignment) -> None:
    incident = db.execute(
        "SELECT 1 FROM incidents WHERE id = ?", (assignment.incident_id,)
    ).fetchone()
    stored = db.execute("SELECT state FROM assignments WHERE id = ?", (assignment.id,)).fetchone()
    held = db.execute(
        f"SELECT id FROM assignments WHERE volunteer_id = ? AND state IN ({_HELD_SQL})",
        (assignment.volunteer_id,),
    ).fetchone()
    check_assignment_write(
        event,
        assignment,
        incident_exists=incident is not None,
        stored_state=None if stored is None else AssignmentState(stored[0]),
        held_by=None if held is None else str(held[0]),
    )


def _upsert_assignment(db: sqlite3.Connection, assignment: Assignment, text: str) -> None:
    db.execute(
        "INSERT INTO assignments (id, incident_id, volunteer_id, state, offered_at, data)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
        " incident_id = excluded.incident_id, volunteer_id = excluded.volunteer_id,"
        " state = excluded.state, offered_at = excluded.offered_at, data = excluded.data",
        (
            assignment.id,
            assignment.incident_id,
            assignment.volunteer_id,
            assignment.state.value,
            float(assignment.offered_at),
            text,
        ),
    )


def _log(
    db: sqlite3.Connection,
    event: str,
    at: float,
    actor: str | None,
    kind: RecordKind | None,
    record_id: str | None,
    payload: str,
) -> None:
    db.execute(
        "INSERT INTO events (event, at, actor, kind, record_id, payload) VALUES (?, ?, ?, ?, ?, ?)",
        (event, float(at), actor, kind, record_id, payload),
    )


def _write_commit(db: sqlite3.Connection, entry: EncodedCommit) -> list[int]:
    """One commit inside the caller's transaction: records, credit, outbox, log entry."""
    for encoded in entry.records:
        record = encoded.record
        if isinstance(record, Incident):
            _upsert_incident(db, record, encoded.text)
        else:
            _check_assignment(db, entry.event, record)
            _upsert_assignment(db, record, encoded.text)
    applied = False
    if entry.credit is not None:
        cursor = db.execute(
            "INSERT INTO credits (assignment_id, volunteer_id, points, service_seconds, at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (assignment_id) DO NOTHING",
            (
                entry.credit.assignment_id,
                entry.credit.volunteer_id,
                int(entry.credit.points),
                float(entry.credit.service_seconds),
                entry.at,
            ),
        )
        applied = cursor.rowcount == 1
    seqs = [_enqueue(db, m.volunteer_id, m.text) for m in entry.messages]
    kind, record_id = entry.subject
    _log(db, entry.event, entry.at, entry.actor, kind, record_id, entry.log_payload(seqs, applied))
    return seqs


def _enqueue(db: sqlite3.Connection, volunteer_id: str, text: str) -> int:
    rows = db.execute(
        "INSERT INTO outbox_seqs (volunteer_id, last_seq) VALUES (?, 1)"
        " ON CONFLICT (volunteer_id) DO UPDATE SET last_seq = last_seq + 1"
        " RETURNING last_seq",
        (volunteer_id,),
    ).fetchall()
    seq = int(rows[0][0])
    db.execute(
        "INSERT INTO outbox (volunteer_id, seq, message) VALUES (?, ?, ?)",
        (volunteer_id, seq, text),
    )
    return seq
