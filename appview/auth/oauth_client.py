"""The AT Protocol OAuth client: from what a member typed to a pushed authorization
request, and from the redirect back to DPoP-bound tokens whose account is checked;
refresh and revocation. It holds no state of its own between calls: what a sign-in in
progress needs (PKCE verifier, DPoP key, expected account) is a ``PendingAuthorization``
the caller keeps, and tokens are a ``TokenSet`` the caller stores.

Steps and checks follow the reference client (``@atproto/oauth-client``): ``authorize``,
``callback``, ``OAuthServerAgent.exchangeCode``/``refresh``/``verifyIssuer``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from joserfc.jwk import ECKey

from appview.auth.errors import (
    AuthError,
    CallbackError,
    IdentityError,
    MetadataError,
    NoOAuth,
    ServerRefused,
)
from appview.auth.identity import Identity, is_did, normalise_handle
from appview.auth.jose_keys import (
    ASSERTION_TYPE,
    client_assertion,
    key_from_jwk,
    new_key,
    private_jwk,
    random_token,
    sha256_b64url,
)
from appview.auth.oauth_metadata import (
    ClientConfig,
    authorization_server,
    check_atproto_profile,
    server_for_pds,
)
from appview.auth.transport import DpopNonces, origin_of, send_with_dpop
from appview.clock import Clock

METADATA_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Resolution:
    """Where a sign-in input leads: the account (unless a PDS URL was typed), its PDS,
    and the PDS's authorization server's metadata (checked)."""

    did: str | None
    handle: str | None
    pds_url: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class PendingAuthorization:
    """A sign-in between the pushed request and the redirect back, kept by the caller
    under ``state`` (it holds a private key and the PKCE verifier: keep it secret)."""

    state: str
    issuer: str
    dpop_jwk: dict[str, Any]
    verifier: str
    expected_did: str | None
    handle: str | None
    app_state: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingAuthorization:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class TokenSet:
    issuer: str
    sub: str
    pds_url: str  # the resource server the tokens are for ("aud")
    scope: str
    access_token: str
    refresh_token: str | None
    expires_at: float | None  # Unix seconds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenSet:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


class OAuthClient:
    def __init__(self, client: ClientConfig, http: aiohttp.ClientSession, identity: Identity,
                 clock: Clock, nonces: DpopNonces | None = None) -> None:
        self.config = client
        self._http = http
        self._identity = identity
        self._clock = clock
        self.nonces = nonces if nonces is not None else DpopNonces()
        self._metadata: dict[str, tuple[float, dict[str, Any]]] = {}

    def _now(self) -> float:
        return self._clock.now_us() / 1e6

    # -- resolving ----------------------------------------------------------------------

    async def resolve(self, text: str) -> Resolution:
        """A handle, DID or PDS URL → account, PDS and checked AS metadata. Raises
        ``NoOAuth`` when the PDS serves no OAuth metadata (sign in with an app password),
        ``IdentityError`` or ``MetadataError`` otherwise."""
        value = text.strip()
        did: str | None = None
        handle: str | None = None
        if value.startswith(("https://", "http://")):
            parts = urlsplit(value)
            if not parts.hostname:
                raise IdentityError(f"{value!r} is not a PDS URL")
            pds_url = origin_of(value)
        else:
            if is_did(value):
                did = value
            else:
                typed = normalise_handle(value)
                if typed is None:
                    raise IdentityError(f"{value!r} is not a handle, a DID or a PDS URL")
                did = await self._identity.resolve_handle(typed)
                handle = typed
            resolved = await self._identity.resolve_did(did, fresh=False)
            pds_url = resolved.pds_url
            if handle is None:
                handle = resolved.handle
            elif resolved.handle != handle:
                handle = None  # a handle counts only when the DID document claims it back
        metadata = await server_for_pds(self._http, pds_url, allow_http=self.config.allow_http)
        if metadata is None:
            raise NoOAuth(f"{pds_url} does not offer OAuth sign-in", did=did, handle=handle,
                          pds_url=pds_url)
        check_atproto_profile(metadata, self.config)
        self._remember(metadata)
        return Resolution(did, handle, pds_url, metadata)

    def _remember(self, metadata: dict[str, Any]) -> None:
        self._metadata[str(metadata["issuer"])] = (time.monotonic(), metadata)

    async def _server(self, issuer: str) -> dict[str, Any]:
        cached = self._metadata.get(issuer)
        if cached is not None and time.monotonic() - cached[0] < METADATA_CACHE_SECONDS:
            return cached[1]
        metadata = await authorization_server(self._http, issuer,
                                              allow_http=self.config.allow_http)
        check_atproto_profile(metadata, self.config)
        self._remember(metadata)
        return metadata

    # -- the authorization request ------------------------------------------------------

    async def authorize(self, text: str, *, app_state: str = "",
                        ) -> tuple[str, PendingAuthorization]:
        """Resolve ``text``, push the authorization request (PKCE S256, DPoP with a key
        of this sign-in's own) and answer the URL to send the member's browser to, with
        the pending sign-in to keep under its ``state``."""
        resolution = await self.resolve(text)
        metadata = resolution.metadata
        dpop_key = new_key()
        verifier = random_token(32)
        state = random_token(24)
        parameters = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": self.config.scope,
            "state": state,
            "code_challenge": sha256_b64url(verifier),
            "code_challenge_method": "S256",
        }
        hint = resolution.handle or resolution.did
        if hint:
            parameters["login_hint"] = hint
        answer = await self._request(metadata, "pushed_authorization_request_endpoint",
                                     parameters, dpop_key)
        request_uri = answer.get("request_uri")
        if not isinstance(request_uri, str) or not request_uri:
            raise MetadataError(f"{metadata['issuer']}: the PAR answer has no request_uri")
        url = str(metadata["authorization_endpoint"]) + "?" + urlencode(
            {"client_id": self.config.client_id, "request_uri": request_uri})
        pending = PendingAuthorization(
            state=state, issuer=str(metadata["issuer"]), dpop_jwk=private_jwk(dpop_key),
            verifier=verifier, expected_did=resolution.did, handle=resolution.handle,
            app_state=app_state, created_at=self._now())
        return url, pending

    # -- the redirect back --------------------------------------------------------------

    async def callback(self, params: Mapping[str, str],
                       pending: PendingAuthorization) -> TokenSet:
        """Finish the sign-in ``pending`` (the caller found it by ``params['state']``
        and removed it, so a state works once): the issuer named in the redirect must be
        the one the request went to; the code is exchanged with the same DPoP key; the
        token's ``sub`` must be the account the sign-in started from, and its PDS's
        authorization server the issuer (else the tokens are revoked and refused)."""
        if params.get("state") != pending.state:
            raise CallbackError("the sign-in state does not match")
        if "response" in params:
            raise CallbackError("JARM responses are not supported")
        metadata = await self._server(pending.issuer)
        issuer = params.get("iss")
        if issuer is None:
            if metadata.get("authorization_response_iss_parameter_supported") is True:
                raise CallbackError("the redirect does not say which server it is from (iss)")
        elif issuer != pending.issuer:
            raise CallbackError(f"the redirect comes from {issuer}, not {pending.issuer}")
        if "error" in params:
            description = params.get("error_description") or params["error"]
            raise CallbackError(f"the authorization server refused: {description}")
        code = params.get("code")
        if not code:
            raise CallbackError("the redirect carries no authorization code")
        dpop_key = key_from_jwk(pending.dpop_jwk, private=True)
        answer = await self._request(metadata, "token_endpoint", {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": pending.verifier,
            "redirect_uri": self.config.redirect_uri,
        }, dpop_key)
        tokens = self._token_set(answer, pending.issuer, pds_url="")
        try:
            if pending.expected_did is not None and tokens.sub != pending.expected_did:
                raise CallbackError(f"the tokens are for {tokens.sub}, not for"
                                    f" {pending.expected_did} who signed in")
            pds_url = await self._verify_issuer(tokens.sub, pending.issuer)
        except AuthError:
            await self._revoke(metadata, tokens.refresh_token or tokens.access_token,
                               dpop_key)
            raise
        return TokenSet(**{**tokens.to_json(), "pds_url": pds_url})

    def _token_set(self, answer: Mapping[str, Any], issuer: str, *, pds_url: str) -> TokenSet:
        sub, scope = answer.get("sub"), answer.get("scope")
        access, refresh = answer.get("access_token"), answer.get("refresh_token")
        if answer.get("token_type") != "DPoP":
            raise CallbackError(f"token type {answer.get('token_type')!r} is not DPoP")
        if not isinstance(sub, str) or not is_did(sub):
            raise CallbackError(f"the token answer's sub {sub!r} is not a DID")
        if not isinstance(scope, str) or "atproto" not in scope.split():
            raise CallbackError(f"the token's scope {scope!r} lacks atproto")
        if not isinstance(access, str) or not access:
            raise CallbackError("the token answer has no access token")
        expires_in = answer.get("expires_in")
        expires_at = self._now() + expires_in if isinstance(expires_in, int | float) and \
            not isinstance(expires_in, bool) else None
        return TokenSet(issuer, sub, pds_url, scope, access,
                        refresh if isinstance(refresh, str) and refresh else None, expires_at)

    async def _verify_issuer(self, sub: str, issuer: str) -> str:
        """The PDS of ``sub``, resolved afresh, whose authorization server must be
        ``issuer``: only then does the token speak for ``sub``."""
        resolved = await self._identity.resolve_did(sub, fresh=True)
        metadata = await server_for_pds(self._http, resolved.pds_url,
                                        allow_http=self.config.allow_http)
        if metadata is None or metadata.get("issuer") != issuer:
            raise CallbackError(f"{issuer} is not the authorization server of {sub}'s PDS")
        return resolved.pds_url

    # -- refresh and revocation ---------------------------------------------------------

    async def refresh(self, tokens: TokenSet, dpop_jwk: Mapping[str, Any]) -> TokenSet:
        """New tokens for ``tokens`` (the refresh token is spent). The account's PDS is
        checked to still be served by the issuer before the refresh token is used."""
        if tokens.refresh_token is None:
            raise ServerRefused("no refresh token", status=400, error="invalid_grant")
        pds_url = await self._verify_issuer(tokens.sub, tokens.issuer)
        metadata = await self._server(tokens.issuer)
        answer = await self._request(metadata, "token_endpoint", {
            "grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
        }, key_from_jwk(dpop_jwk, private=True))
        fresh = self._token_set(answer, tokens.issuer, pds_url=pds_url)
        if fresh.sub != tokens.sub:
            raise CallbackError(f"the refreshed tokens are for {fresh.sub}, not {tokens.sub}")
        return fresh

    async def revoke(self, tokens: TokenSet, dpop_jwk: Mapping[str, Any]) -> None:
        """Ask the issuer to revoke the grant (best effort: an unreachable server does not
        keep a member signed in here)."""
        try:
            metadata = await self._server(tokens.issuer)
        except AuthError:
            return
        await self._revoke(metadata, tokens.refresh_token or tokens.access_token,
                           key_from_jwk(dpop_jwk, private=True))

    async def _revoke(self, metadata: Mapping[str, Any], token: str, key: ECKey) -> None:
        if not isinstance(metadata.get("revocation_endpoint"), str):
            return
        try:
            await self._request(metadata, "revocation_endpoint", {"token": token}, key)
        except AuthError:
            return

    # -- one request to the authorization server ----------------------------------------

    async def _request(self, metadata: Mapping[str, Any], endpoint: str,
                       payload: Mapping[str, str], key: ECKey) -> dict[str, Any]:
        url = metadata.get(endpoint)
        if not isinstance(url, str):
            raise MetadataError(f"{metadata.get('issuer')} has no {endpoint}")
        form = {**payload, **self._client_auth(str(metadata["issuer"]))}
        answer = await send_with_dpop(self._http, key, self.nonces, self._clock, "POST", url,
                                      auth_server=True, form=form)
        data = answer.json()
        if 200 <= answer.status < 300:
            return data if isinstance(data, dict) else {}
        error = data.get("error") if isinstance(data, dict) else None
        description = data.get("error_description") if isinstance(data, dict) else None
        raise ServerRefused(
            f"{metadata.get('issuer')} refused ({endpoint.removesuffix('_endpoint')}):"
            f" {description or error or f'HTTP {answer.status}'}",
            status=answer.status, error=str(error or "unknown"))

    def _client_auth(self, issuer: str) -> dict[str, str]:
        if not self.config.confidential:
            return {"client_id": self.config.client_id}
        return {
            "client_id": self.config.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(
                self.config.keys[0], client_id=self.config.client_id, audience=issuer,
                now_s=int(self._now())),
        }
