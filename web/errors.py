"""JSON errors for the API: `{"error": Name, "message": sentence}` with the right status,
never a stack trace, never a 500 for bad input."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, "InvalidRequest", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFound", message)


def error_response(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


def explanation(exc: web.HTTPException) -> str | None:
    """The sentence a handler raised ``exc`` with (``text=``); None when it gave none and
    the body is aiohttp's bare "403: Forbidden"."""
    text = exc.text
    if not text or text == f"{exc.status}: {exc.reason}":
        return None
    return text


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.error, exc.message)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        response = error_response(exc.status, exc.reason.replace(" ", ""),
                                  explanation(exc) or exc.reason)
        if "Allow" in exc.headers:  # a 405 says what the resource does allow
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not request.path.startswith("/api/"):
            raise
        return error_response(500, "InternalServerError", "Something went wrong on our side.")
