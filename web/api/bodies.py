"""A JSON request body as the API reads it: within REQUEST_READ_TIMEOUT (else 408), JSON
(else 400), an object (else 400)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from web.errors import ApiError, bad_request
from web.keys import SERVICES


async def json_object(request: web.Request, *, empty_is_object: bool = False,
                      ) -> dict[str, Any]:
    """The body's JSON object; with ``empty_is_object`` no body at all reads as ``{}``
    (an endpoint whose fields are all optional)."""
    seconds = request.app[SERVICES].settings.request_read_timeout
    try:
        async with asyncio.timeout(seconds):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(408, "RequestTimeout",
                       f"The body did not arrive within {seconds:g} seconds.") from None
    if not raw and empty_is_object:
        return {}
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The body is not JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    return body
