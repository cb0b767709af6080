"""One error shape for every endpoint: ``{"error": {"type", "code", "message"}}``.

It is the shape OpenAI-compatible clients already understand, so the same body serves the agent's own
API and ``/v1/chat/completions``. ``code`` is stable and machine-readable; ``message`` says what to fix.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from recai.errors import RecaiError

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}
# Starlette's own HTTP errors (routing, static files, body reading), by status.
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
}


class ErrorDetail(BaseModel):
    """What went wrong, in the OpenAI error layout so OpenAI clients show it."""

    type: str = Field(description="The kind (invalid_request_error, rate_limit_error, server_error, ...).")
    code: str = Field(description="A stable code a client can branch on (session_busy, ...).")
    message: str = Field(description="What went wrong and what to do about it.")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="Every problem, for a request that failed validation."
    )


class ErrorBody(BaseModel):
    """The JSON body of every error answer."""

    error: ErrorDetail = Field(description="The error.")


class ApiError(RecaiError):
    """An error a client can act on; raised anywhere in a request, answered as JSON with ``status``.

    Args:
        status: The HTTP status.
        code: The stable error code.
        message: What went wrong and what to do about it.
        headers: Extra response headers (Retry-After).
    """

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_type(status: int) -> str:
    if status in _TYPES:
        return _TYPES[status]
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error" if status < 500 else "server_error"


def clean_text(text: str) -> str:
    """``text`` without lone surrogates, which cannot be encoded as UTF-8 (a message may quote the
    client's input, and an error body that cannot be encoded would become a plain-text 500)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def error_body(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type(status), "code": code, "message": clean_text(message)}
    if details:
        error["details"] = _clean(details)
    return {"error": error}


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, code, message), status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Answer ApiError, validation errors and unknown routes with the one JSON error shape."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return JSONResponse(
            error_body(422, "invalid_request", f"{where}: {first['msg']}", details), status_code=422
        )

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this answer, so the server logs the traceback; the client learns only
        # the exception's type (a message could hold paths or data).
        return error_response(
            500, "internal_error", f"the server failed ({type(exc).__name__}); the log has the details"
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crashed)
