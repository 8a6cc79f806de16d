"""Sign-in with an app password, the fallback for a PDS without OAuth and for scripts:
``com.atproto.server.createSession``, refreshed by ``refreshSession``, ended by
``deleteSession``. Tokens are Bearer tokens (no DPoP)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from appview.auth.errors import AuthError, ServerRefused
from appview.auth.transport import Answer, send


@dataclass(frozen=True)
class PasswordTokens:
    did: str
    handle: str | None
    access_jwt: str
    refresh_jwt: str

    def to_json(self) -> dict[str, Any]:
        return {"access_jwt": self.access_jwt, "refresh_jwt": self.refresh_jwt}


def _xrpc(pds_url: str, nsid: str) -> str:
    return f"{pds_url.rstrip('/')}/xrpc/{nsid}"


def refusal(answer: Answer, what: str) -> ServerRefused:
    """An XRPC error answer in words: ``{error, message}`` when the server sent them."""
    data = answer.json()
    error = data.get("error") if isinstance(data, dict) else None
    message = data.get("message") if isinstance(data, dict) else None
    return ServerRefused(f"{what}: {message or error or f'HTTP {answer.status}'}",
                         status=answer.status, error=str(error or f"HTTP {answer.status}"))


def _tokens(answer: Answer, what: str) -> PasswordTokens:
    if answer.status != 200:
        raise refusal(answer, what)
    data = answer.json()
    if not isinstance(data, dict):
        raise AuthError(f"{what}: the PDS answered no JSON object")
    did, access, refresh = data.get("did"), data.get("accessJwt"), data.get("refreshJwt")
    handle = data.get("handle")
    if not all(isinstance(value, str) and value for value in (did, access, refresh)):
        raise AuthError(f"{what}: the PDS's answer lacks did, accessJwt or refreshJwt")
    return PasswordTokens(str(did), handle if isinstance(handle, str) else None,
                          str(access), str(refresh))


async def create_session(http: aiohttp.ClientSession, pds_url: str, identifier: str,
                         password: str) -> PasswordTokens:
    answer = await send(http, "POST", _xrpc(pds_url, "com.atproto.server.createSession"),
                        body={"identifier": identifier, "password": password})
    return _tokens(answer, "sign-in refused")


async def refresh_session(http: aiohttp.ClientSession, pds_url: str,
                          refresh_jwt: str) -> PasswordTokens:
    answer = await send(http, "POST", _xrpc(pds_url, "com.atproto.server.refreshSession"),
                        headers={"Authorization": f"Bearer {refresh_jwt}"})
    return _tokens(answer, "session refresh refused")


async def delete_session(http: aiohttp.ClientSession, pds_url: str, refresh_jwt: str) -> None:
    """Best effort: a PDS that cannot be reached or does not implement it leaves the
    tokens to expire on their own."""
    try:
        await send(http, "POST", _xrpc(pds_url, "com.atproto.server.deleteSession"),
                   headers={"Authorization": f"Bearer {refresh_jwt}"})
    except AuthError:
        return
