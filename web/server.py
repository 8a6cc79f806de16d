"""The HTTP server around the application: slow clients cut off, the server unnamed,
and aiohttp's own error answers dressed like ours.

Slow clients. aiohttp's keep-alive timer starts when a connection opens and again when a
response ends; it is not pushed back by incoming bytes, and it closes the connection
when it fires while the protocol still waits for a complete request head. So
``keepalive_timeout`` is the header timeout aiohttp lacks by name: a client trickling a
header line every few seconds (slowloris) is closed that long after it connected (or
after its previous response), and so is an idle keep-alive connection.
REQUEST_READ_TIMEOUT sets it (aiohttp's default is an hour).

Low-level errors. A request aiohttp cannot parse (a request line or URL too long, an
unknown method, a malformed header) never reaches the application or its middlewares;
``RequestHandler.handle_error`` answers it. Ours adds the security headers and our
``Server`` header, and logs one line instead of a traceback: such requests are what
scanners send all day.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from web.security import SECURITY_HEADERS

log = logging.getLogger(__name__)

_ECHO = re.compile(r":\s*(?:bytearray\(|b['\"])")

# Names the software, never its version (nor aiohttp's): no free hint for scanners.
SERVER_NAME = "atbb-appview"


async def name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every routed response says ``Server: atbb-appview``
    (aiohttp would say ``Python/3.x aiohttp/3.y``)."""
    response.headers["Server"] = SERVER_NAME


class HardenedRequestHandler(RequestHandler):
    """aiohttp's protocol with its own error answers (400s of unparsable requests, the
    500 of a handler that escaped every middleware) carrying our headers."""

    __slots__ = ()

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status == 400:
            # aiohttp's first line, without its echo of the bytes (a Python repr)
            reason = _ECHO.split((message or "").partition("\n")[0])[0].rstrip(": ") \
                or "the request could not be parsed"
            log.info("refused an unparsable request from %s: %s", request.remote, reason)
            if request.writer.output_size > 0:
                raise ConnectionError("a response was already sent; cannot send a 400")
            response: web.StreamResponse = web.Response(
                status=400, text=f"400 Bad Request: {reason}\n", content_type="text/plain")
            response.force_close()
        else:
            response = super().handle_error(request, status, exc, message)
        response.headers["Server"] = SERVER_NAME
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


class HardenedServer(web.Server):
    """The connection factory handing out ``HardenedRequestHandler``s."""

    def __call__(self) -> RequestHandler:
        return HardenedRequestHandler(self, loop=self._loop, **self._kwargs)


class HardenedRunner(web.AppRunner):
    """``web.AppRunner`` serving through ``HardenedServer``, with the header timeout."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        # lingering: how long a body nobody read (a 408's, say) is drained before the
        # connection closes; never longer than the timeout, nor aiohttp's 10 s
        super().__init__(app, keepalive_timeout=header_timeout,
                         lingering_time=min(header_timeout, 10.0), **kwargs)

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        # the application's own server, rebuilt with the same handler, factory and
        # protocol arguments; only the protocol class differs
        return HardenedServer(made.request_handler, request_factory=made.request_factory,
                              handler_cancellation=made.handler_cancellation,
                              loop=asyncio.get_running_loop(), **made._kwargs)


async def start(app: web.Application, host: str, port: int, *,
                header_timeout: float, reuse_port: bool = False) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on host:port (0: any free port); the runner (to clean up) and the
    port it listens on. ``reuse_port``: beside other processes listening on the same
    port (SO_REUSEPORT; `atbb serve --workers`)."""
    runner = HardenedRunner(app, header_timeout=header_timeout, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)
