"""HTTP as the OAuth client speaks it: JSON fetches that follow no redirect, and
requests carrying a DPoP proof, with the server's nonces remembered per origin and a
request retried once when the server asks for a fresh nonce (RFC 9449 §8, §9), in the
order of the reference client's ``fetch-dpop``."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from joserfc.jwk import ECKey

from appview.auth.errors import AuthError
from appview.auth.jose_keys import dpop_proof
from appview.clock import Clock

TIMEOUT_SECONDS = 15.0
MAX_BODY = 1 << 20  # metadata and token answers are small; anything bigger is refused


class TransportError(AuthError):
    """The server could not be reached, or answered with something that is not HTTP
    we can read."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON, None when it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, UnicodeDecodeError):
            return None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class DpopNonces:
    """The latest nonce each origin handed out (shared by every session's requests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nonces: dict[str, str] = {}

    def get(self, origin: str) -> str | None:
        with self._lock:
            return self._nonces.get(origin)

    def set(self, origin: str, nonce: str) -> None:
        with self._lock:
            self._nonces[origin] = nonce


async def send(http: aiohttp.ClientSession, method: str, url: str, *,
               headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
               form: Mapping[str, str] | None = None, body: Any = None) -> Answer:
    """One request, no redirects followed (a metadata or token answer must be a 200 of
    its own URL); ``form`` is sent url-encoded, ``body`` as JSON."""
    data: Any = None
    all_headers = dict(headers or {})
    if form is not None:
        data = aiohttp.FormData(dict(form))
    elif body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    try:
        async with http.request(method, url, headers=all_headers, params=params, data=data,
                                allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as response:
            raw = await response.content.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                raise TransportError(f"{url}: answer larger than {MAX_BODY} bytes")
            return Answer(response.status, dict(response.headers), raw)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TransportError(f"{url}: {type(exc).__name__}: {exc}".rstrip(": ")) from exc


def _asks_for_nonce(answer: Answer, *, auth_server: bool) -> bool:
    if auth_server:
        if answer.status != 400:
            return False
        data = answer.json()
        return isinstance(data, dict) and data.get("error") == "use_dpop_nonce"
    if answer.status != 401:
        return False
    challenge = answer.headers.get("WWW-Authenticate", "")
    return challenge.startswith("DPoP") and 'error="use_dpop_nonce"' in challenge


async def send_with_dpop(http: aiohttp.ClientSession, key: ECKey, nonces: DpopNonces,
                         clock: Clock, method: str, url: str, *, auth_server: bool,
                         access_token: str | None = None,
                         params: Mapping[str, str] | None = None,
                         form: Mapping[str, str] | None = None, body: Any = None) -> Answer:
    """A request with a DPoP proof (and ``Authorization: DPoP <token>`` when there is an
    access token). A fresh ``DPoP-Nonce`` is remembered; if the answer is the server's
    ``use_dpop_nonce`` error, the request is sent once more with a new proof."""
    origin = origin_of(url)
    sent_nonce = nonces.get(origin)
    answer = await _send_proved(http, key, clock, method, url, sent_nonce, access_token,
                                params, form, body)
    fresh = answer.headers.get("DPoP-Nonce")
    if not fresh or fresh == sent_nonce:
        return answer
    nonces.set(origin, fresh)
    if not _asks_for_nonce(answer, auth_server=auth_server):
        return answer
    retry = await _send_proved(http, key, clock, method, url, fresh, access_token, params,
                               form, body)
    newer = retry.headers.get("DPoP-Nonce")
    if newer and newer != fresh:
        nonces.set(origin, newer)
    return retry


async def _send_proved(http: aiohttp.ClientSession, key: ECKey, clock: Clock, method: str,
                       url: str, nonce: str | None, access_token: str | None,
                       params: Mapping[str, str] | None, form: Mapping[str, str] | None,
                       body: Any) -> Answer:
    headers = {"DPoP": dpop_proof(key, method=method, url=url, now_s=clock.now_us() // 1_000_000,
                                  nonce=nonce, access_token=access_token)}
    if access_token is not None:
        headers["Authorization"] = f"DPoP {access_token}"
    return await send(http, method, url, headers=headers, params=params, form=form, body=body)
