"""Domain errors become JSON answers with a sentence a person can act on: translated here only."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from waketrain.audio.decode import AudioRejected
from waketrain.store.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    ServiceBusy,
    WaketrainError,
    describe_validation_errors,
)

STATUS_BY_ERROR: list[tuple[type[Exception], int]] = [
    (AuthenticationFailed, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (RateLimited, 429),
    (ServiceBusy, 503),
]


def domain_error_response(exc: WaketrainError) -> JSONResponse:
    """The answer for a domain error; also used by middleware, which runs outside the handlers."""
    status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, RateLimited | ServiceBusy):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def on_audio_rejected(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AudioRejected)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    async def on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WaketrainError)
        return domain_error_response(exc)

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(
            {
                "detail": "Invalid request. " + describe_validation_errors(exc.errors(), "request"),
                "errors": [
                    {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                    for e in exc.errors()
                ],
            },
            status_code=422,
        )

    app.add_exception_handler(AudioRejected, on_audio_rejected)
    app.add_exception_handler(WaketrainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
