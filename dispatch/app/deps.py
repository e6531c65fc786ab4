"""Dependencies declared once (FastAPI's ``Annotated`` style): the service and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from dispatch.service import Principal, Service

__all__ = ["AnyCaller", "OperatorOnly", "ServiceDep", "bearer"]


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def get_caller(request: Request, service: ServiceDep) -> Principal:
    principal = await service.authenticate(bearer(request.headers.get("authorization")))
    if principal is None:
        raise HTTPException(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


async def get_operator(caller: Annotated[Principal, Depends(get_caller)]) -> Principal:
    if not caller.is_operator:
        raise HTTPException(403, "operators only")
    return caller


AnyCaller = Annotated[Principal, Depends(get_caller)]
OperatorOnly = Annotated[Principal, Depends(get_operator)]
