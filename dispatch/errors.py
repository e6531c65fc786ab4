"""The one error tree of the engine.

Every failure the engine raises on purpose derives from :class:`DispatchError`. Lower layers
(SQLite, Redis, file formats) are translated into this tree at their boundary with
``raise ... from exc``; HTTP statuses and websocket close codes are chosen only at the edge
(the API layer), never here.

.. code-block:: text

    DispatchError
    ├── InvalidInput                 bad data from outside; the message names the field
    │   ├── CoordinateError          lat/lon out of range, NaN or infinite
    │   ├── DatasetError             a county dataset file breaks an invariant
    │   └── PolicyError              data/policy.toml is malformed (names the line)
    ├── NotFound                     an id that does not exist
    ├── Conflict                     the request is valid but the current state forbids it
    │   └── IllegalTransition        an assignment event its state does not allow
    ├── StoreError                   the store failed (translated from sqlite3 / redis errors)
    └── DrillError                   simulations.drill: the server is unreachable or refuses

This module has no dependencies so that ``geo`` and ``units`` may import it without
pulling in the service.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "CoordinateError",
    "DatasetError",
    "DispatchError",
    "IllegalTransition",
    "InvalidInput",
    "NotFound",
    "PolicyError",
    "StoreError",
]


class DispatchError(Exception):
    """Root of every error the engine raises on purpose."""


class InvalidInput(DispatchError, ValueError):
    """Data from outside the engine is malformed.

    Attributes:
        field: the dotted name of the offending field, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class CoordinateError(InvalidInput):
    """A latitude or longitude is out of range, NaN or infinite."""


class DatasetError(InvalidInput):
    """A county dataset file is missing, unreadable or breaks one of its invariants."""


class PolicyError(InvalidInput):
    """The incident policy file is malformed; the message names the line."""


class NotFound(DispatchError, LookupError):
    """An id that does not exist."""


class Conflict(DispatchError):
    """The request is well-formed but the current state does not allow it."""


class IllegalTransition(Conflict):
    """An assignment received an event that its current state does not allow."""

    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"event {event!r} is not allowed in state {state!r}")
        self.state = state
        self.event = event


class StoreError(DispatchError):
    """The store failed; the lower-layer exception is chained as ``__cause__``."""
