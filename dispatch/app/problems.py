"""RFC 9457 problem details: the only shape an error leaves the API in.

The engine raises the :mod:`dispatch.errors` tree; here, and only here, each error becomes
an HTTP status. No request, however malformed, gets a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dispatch.errors import Conflict, InvalidInput, NotFound, StoreError

__all__ = ["install_problem_handlers", "problem"]

log = logging.getLogger(__name__)

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    kind: str | None = None,
) -> JSONResponse:
    """A problem-details response: ``{type, title, status, detail[, errors]}``."""
    body: dict[str, Any] = {
        "type": f"https://gucheng-dispatch.example/problems/{kind or status}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to problem details."""

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        malformed = False
        for error in exc.errors():
            if error.get("type") == "json_invalid":
                malformed = True
            errors.append(
                {"field": _field_of(tuple(error.get("loc", ()))), "message": error["msg"]}
            )
        if malformed:
            return problem(400, "the body is not valid JSON", errors=errors, kind="malformed-json")
        return problem(422, "the request has invalid fields", errors=errors, kind="validation")

    @app.exception_handler(InvalidInput)
    async def invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        errors = [{"field": exc.field or "body", "message": str(exc)}]
        return problem(422, str(exc), errors=errors, kind="validation")

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc), kind="not-found")

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return problem(409, str(exc), kind="conflict")

    @app.exception_handler(PermissionError)
    async def forbidden(_: Request, exc: PermissionError) -> JSONResponse:
        return problem(403, str(exc) or "not allowed", kind="forbidden")

    @app.exception_handler(StoreError)
    async def store_down(_: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", exc)
        return problem(503, "the store is unavailable; try again", kind="store-unavailable")

    @app.exception_handler(StarletteHTTPException)
    async def http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem(500, "unexpected error; it has been logged", kind="internal")
