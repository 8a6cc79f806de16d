"""The devnet PDS's OAuth authorization server, so that AT Protocol sign-in works
offline: protected-resource and authorization-server metadata, pushed authorization
requests, an authorize page (a plain HTML form: the account types its password and
approves; no JavaScript), the token endpoint (authorization code with PKCE S256, refresh
with rotation), revocation, and DPoP everywhere (ES256 proofs, server nonces, replay
refusal, tokens bound to the proof key). The PDS's XRPC write endpoints accept its
DPoP-bound access tokens through ``verify_access``.

Like the reference PDS (``@atproto/oauth-provider``) in what a client can observe; kept
in memory, as the rest of the devnet. Client metadata is fetched from a discoverable
client_id (http on loopback hosts allowed: this is a development server), or read from
a loopback client_id's query."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from appview.clock import Clock, SystemClock
from appview.devnet.tokens import ACCESS_SCOPE, Claims

ALG = "ES256"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PAR_SECONDS = 300
CODE_SECONDS = 60
NONCE_ROTATION_SECONDS = 60
PROOF_MAX_AGE_SECONDS = 180
SCOPES = ("atproto", "transition:generic")


@dataclass(frozen=True)
class OAuthOptions:
    """``clock`` ages tokens, codes and nonces (tests move it); ``enabled=False`` makes a
    PDS without OAuth (its clients fall back to app passwords)."""

    clock: Clock = field(default_factory=SystemClock)
    access_ttl_s: int = 3600
    refresh_ttl_s: int = 90 * 24 * 3600
    enabled: bool = True


class OAuthAccount(Protocol):
    @property
    def did(self) -> str: ...

    @property
    def handle(self) -> str: ...

    @property
    def password(self) -> str: ...


class AccountBook(Protocol):
    """What the authorization server needs of its PDS."""

    @property
    def url(self) -> str: ...

    service_did: str

    def account(self, did_or_handle: str) -> OAuthAccount | None: ...

    def status(self, did: str) -> str: ...


class OAuthFailure(Exception):
    """An OAuth error answer (RFC 6749 §5.2): ``error`` and its description."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Client:
    client_id: str
    redirect_uris: tuple[str, ...]
    scope: str
    auth_method: str  # none | private_key_jwt
    jwks: tuple[dict[str, Any], ...]
    name: str


@dataclass(frozen=True)
class PushedRequest:
    client: Client
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str
    login_hint: str | None
    jkt: str
    expires_at: float


@dataclass
class Grant:
    id: str
    client_id: str
    auth_method: str
    did: str
    scope: str
    jkt: str
    refresh_token: str
    refresh_expires_at: float
    revoked: bool = False


@dataclass(frozen=True)
class Code:
    request: PushedRequest
    did: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _sha256(text: str) -> str:
    return _b64(hashlib.sha256(text.encode()).digest())


def _is_loopback_host(host: str | None) -> bool:
    return host in ("127.0.0.1", "::1", "localhost", "[::1]")


class OAuthServer:
    def __init__(self, book: AccountBook, options: OAuthOptions | None = None) -> None:
        self._book = book
        self.options = options if options is not None else OAuthOptions()
        self._clock = self.options.clock
        self._key = ECKey.generate_key("P-256", parameters={"alg": ALG, "kid": "devnet-as"},
                                       private=True)
        self._nonce_secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._seen_jtis: dict[str, float] = {}
        self._requests: dict[str, PushedRequest] = {}
        self._codes: dict[str, Code] = {}
        self._grants: dict[str, Grant] = {}
        self._by_refresh: dict[str, str] = {}
        self._spent_refresh: dict[str, str] = {}

    # -- plumbing -----------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.now_us() / 1e6

    @property
    def issuer(self) -> str:
        return self._book.url

    def _nonce(self, counter: int) -> str:
        return _b64(hmac.new(self._nonce_secret, counter.to_bytes(8, "big", signed=True),
                             hashlib.sha256).digest())

    def next_nonce(self) -> str:
        return self._nonce(int(self._now() // NONCE_ROTATION_SECONDS) + 1)

    def _nonce_valid(self, nonce: str) -> bool:
        counter = int(self._now() // NONCE_ROTATION_SECONDS)
        return any(hmac.compare_digest(nonce, self._nonce(counter + step))
                   for step in (-1, 0, 1))

    def _unique(self, scope: str, jti: str, lifetime: float) -> bool:
        now = self._now()
        with self._lock:
            for stale in [k for k, until in self._seen_jtis.items() if until < now]:
                del self._seen_jtis[stale]
            key = f"{scope}|{jti}"
            if key in self._seen_jtis:
                return False
            self._seen_jtis[key] = now + lifetime
            return True

    def mount(self, app: web.Application) -> None:
        """Add the OAuth routes to the PDS's app (nothing when disabled)."""
        if not self.options.enabled:
            return
        app.router.add_get("/.well-known/oauth-protected-resource", self._resource_metadata)
        app.router.add_get("/.well-known/oauth-authorization-server", self._server_metadata)
        app.router.add_get("/oauth/jwks", self._jwks)
        app.router.add_post("/oauth/par", self._par)
        app.router.add_get("/oauth/authorize", self._authorize_page)
        app.router.add_post("/oauth/authorize", self._authorize_decision)
        app.router.add_post("/oauth/token", self._token)
        app.router.add_post("/oauth/revoke", self._revoke)
        app.on_response_prepare.append(self._add_nonce)

    async def _add_nonce(self, request: web.Request, response: web.StreamResponse) -> None:
        if "DPoP" in request.headers or request.path.startswith("/oauth/"):
            response.headers["DPoP-Nonce"] = self.next_nonce()

    # -- metadata -----------------------------------------------------------------------

    async def _resource_metadata(self, request: web.Request) -> web.Response:
        return web.json_response({
            "resource": self.issuer,
            "authorization_servers": [self.issuer],
            "scopes_supported": [],
            "bearer_methods_supported": ["header"],
        })

    def server_metadata(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "pushed_authorization_request_endpoint": f"{base}/oauth/par",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "jwks_uri": f"{base}/oauth/jwks",
            "require_pushed_authorization_requests": True,
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": [ALG],
            "dpop_signing_alg_values_supported": [ALG],
            "authorization_response_iss_parameter_supported": True,
            "client_id_metadata_document_supported": True,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": True,
            "protected_resources": [base],
        }

    async def _server_metadata(self, request: web.Request) -> web.Response:
        return web.json_response(self.server_metadata())

    async def _jwks(self, request: web.Request) -> web.Response:
        public = self._key.as_dict(private=False)
        return web.json_response({"keys": [public]})

    # -- errors -------------------------------------------------------------------------

    async def _guarded(self, handler: Callable[[], Any]) -> web.Response:
        try:
            result = await handler()
        except OAuthFailure as exc:
            return web.json_response({"error": exc.error, "error_description": exc.description},
                                     status=exc.status)
        assert isinstance(result, web.Response)
        return result

    # -- clients ------------------------------------------------------------------------

    async def _client(self, client_id: str) -> Client:
        if client_id.startswith("http://localhost"):
            return self._loopback_client(client_id)
        parts = urlsplit(client_id)
        if parts.scheme != "https" and not (parts.scheme == "http" and
                                            _is_loopback_host(parts.hostname)):
            raise OAuthFailure("invalid_client", f"unusable client_id {client_id!r}")
        document = await self._fetch_json(client_id)
        if document.get("client_id") != client_id:
            raise OAuthFailure("invalid_client", "the client metadata names another client_id")
        method = document.get("token_endpoint_auth_method", "none")
        if method not in ("none", "private_key_jwt"):
            raise OAuthFailure("invalid_client", f"unsupported auth method {method!r}")
        jwks: list[dict[str, Any]] = []
        if method == "private_key_jwt":
            keys = document.get("jwks")
            if keys is None and isinstance(document.get("jwks_uri"), str):
                keys = await self._fetch_json(str(document["jwks_uri"]))
            if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
                raise OAuthFailure("invalid_client", "the client publishes no JWKS")
            jwks = [k for k in keys["keys"] if isinstance(k, dict)]
        uris = document.get("redirect_uris")
        if not isinstance(uris, list) or not uris:
            raise OAuthFailure("invalid_client", "the client has no redirect_uris")
        return Client(client_id, tuple(str(u) for u in uris), str(document.get("scope", "")),
                      method, tuple(jwks), str(document.get("client_name") or client_id))

    def _loopback_client(self, client_id: str) -> Client:
        rest = client_id.removeprefix("http://localhost").removeprefix("/")
        if rest and not rest.startswith("?"):
            raise OAuthFailure("invalid_client", "a loopback client_id has no path")
        params = parse_qsl(rest.removeprefix("?"))
        uris = tuple(v for k, v in params if k == "redirect_uri") or \
            ("http://127.0.0.1/", "http://[::1]/")
        scopes = [v for k, v in params if k == "scope"]
        for uri in uris:
            host = urlsplit(uri).hostname
            if not uri.startswith("http://") or host not in ("127.0.0.1", "::1"):
                raise OAuthFailure("invalid_client", f"loopback redirect {uri!r} is not a"
                                   " loopback IP")
        return Client(client_id, uris, scopes[0] if scopes else "atproto", "none", (),
                      "a development client on this computer")

    async def _fetch_json(self, url: str) -> dict[str, Any]:
        try:
            async with aiohttp.ClientSession() as http, http.get(
                    url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=10)) as r:
                if r.status != 200:
                    raise OAuthFailure("invalid_client", f"{url} answered HTTP {r.status}")
                data = json.loads(await r.read())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OAuthFailure("invalid_client", f"{url}: {exc}") from exc
        if not isinstance(data, dict):
            raise OAuthFailure("invalid_client", f"{url} is not a JSON object")
        return data

    def _authenticate_client(self, client: Client, form: Mapping[str, str]) -> None:
        if form.get("client_id") != client.client_id:
            raise OAuthFailure("invalid_client", "client_id mismatch")
        assertion = form.get("client_assertion")
        if client.auth_method == "none":
            if assertion is not None:
                raise OAuthFailure("invalid_client", "a public client sends no assertion")
            return
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            raise OAuthFailure("invalid_client", "client authentication (private_key_jwt)"
                               " required")
        kid = _header(assertion).get("kid")
        key_data = next((k for k in client.jwks if k.get("kid") == kid), None)
        if key_data is None:
            raise OAuthFailure("invalid_client", f"no client key with kid {kid!r}")
        try:
            token = jwt.decode(assertion, ECKey.import_key(key_data), algorithms=[ALG])
        except (JoseError, ValueError) as exc:
            raise OAuthFailure("invalid_client", f"bad client assertion: {exc}") from exc
        claims = token.claims
        now = self._now()
        if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
            raise OAuthFailure("invalid_client", "client assertion iss/sub mismatch")
        if claims.get("aud") != self.issuer:
            raise OAuthFailure("invalid_client", "client assertion aud mismatch")
        exp, jti = claims.get("exp"), claims.get("jti")
        if not isinstance(exp, int) or exp <= now:
            raise OAuthFailure("invalid_client", "client assertion expired")
        if not isinstance(jti, str) or not self._unique("assertion", jti, exp - now + 1):
            raise OAuthFailure("invalid_client", "client assertion replayed")

    # -- DPoP ---------------------------------------------------------------------------

    def check_proof(self, request: web.Request, *, access_token: str | None) -> str:
        """The proof's key thumbprint (jkt); raises OAuthFailure ``use_dpop_nonce`` or
        ``invalid_dpop_proof``."""
        proofs = request.headers.getall("DPoP", [])
        if len(proofs) != 1 or not proofs[0]:
            raise OAuthFailure("invalid_dpop_proof", "one DPoP proof required")
        proof = proofs[0]
        try:
            jwk = _header(proof).get("jwk")
            if not isinstance(jwk, dict) or "d" in jwk or jwk.get("kty") != "EC":
                raise OAuthFailure("invalid_dpop_proof", "the proof carries no public EC jwk")
            key = ECKey.import_key(jwk)
            token = jwt.decode(proof, key, algorithms=[ALG])
        except OAuthFailure:
            raise
        except (JoseError, ValueError, TypeError, IndexError) as exc:
            raise OAuthFailure("invalid_dpop_proof", f"unreadable DPoP proof: {exc}") from exc
        if token.header.get("typ") != "dpop+jwt":
            raise OAuthFailure("invalid_dpop_proof", "the proof's typ is not dpop+jwt")
        claims = token.claims
        jti, iat, nonce = claims.get("jti"), claims.get("iat"), claims.get("nonce")
        if not isinstance(jti, str) or not jti:
            raise OAuthFailure("invalid_dpop_proof", "DPoP jti missing")
        if claims.get("htm") != request.method:
            raise OAuthFailure("invalid_dpop_proof", "DPoP htm mismatch")
        url = request.url
        if claims.get("htu") != f"{url.scheme}://{url.raw_authority}{url.path}":
            raise OAuthFailure("invalid_dpop_proof", "DPoP htu mismatch")
        now = self._now()
        if not isinstance(iat, int) or abs(now - iat) > PROOF_MAX_AGE_SECONDS:
            raise OAuthFailure("invalid_dpop_proof", "DPoP proof too old or from the future")
        if not isinstance(nonce, str) or not self._nonce_valid(nonce):
            raise OAuthFailure("use_dpop_nonce", "Authorization server requires nonce in"
                               " DPoP proof")
        if access_token is not None:
            if claims.get("ath") != _sha256(access_token):
                raise OAuthFailure("invalid_dpop_proof", "DPoP ath mismatch")
        elif "ath" in claims:
            raise OAuthFailure("invalid_dpop_proof", "DPoP ath not allowed here")
        if not self._unique("dpop", jti, 2 * PROOF_MAX_AGE_SECONDS):
            raise OAuthFailure("invalid_dpop_proof", "DPoP proof replayed")
        return str(key.thumbprint())

    # -- PAR and the authorize page -----------------------------------------------------

    async def _par(self, request: web.Request) -> web.Response:
        async def handle() -> web.Response:
            form = dict(await request.post())
            values = {k: str(v) for k, v in form.items()}
            jkt = self.check_proof(request, access_token=None)
            client = await self._client(values.get("client_id", ""))
            self._authenticate_client(client, values)
            if values.get("response_type") != "code":
                raise OAuthFailure("unsupported_response_type", "response_type must be code")
            redirect_uri = values.get("redirect_uri", "")
            if redirect_uri not in client.redirect_uris:
                raise OAuthFailure("invalid_request", "redirect_uri not registered")
            if values.get("code_challenge_method") != "S256" or \
                    len(values.get("code_challenge", "")) < 43:
                raise OAuthFailure("invalid_request", "PKCE with S256 is required")
            scope = values.get("scope", "")
            asked, allowed = scope.split(), client.scope.split()
            if "atproto" not in asked or any(s not in allowed or s not in SCOPES
                                             for s in asked):
                raise OAuthFailure("invalid_scope", f"scope {scope!r} not allowed")
            state = values.get("state", "")
            if not state:
                raise OAuthFailure("invalid_request", "state is required")
            request_uri = "urn:ietf:params:oauth:request_uri:req-" + secrets.token_hex(16)
            with self._lock:
                self._requests[request_uri] = PushedRequest(
                    client, redirect_uri, scope, state, values["code_challenge"],
                    values.get("login_hint"), jkt, self._now() + PAR_SECONDS)
            return web.json_response({"request_uri": request_uri, "expires_in": PAR_SECONDS},
                                     status=201)
        return await self._guarded(handle)

    def _pending_request(self, client_id: str, request_uri: str) -> PushedRequest:
        with self._lock:
            pushed = self._requests.get(request_uri)
        if pushed is None or pushed.expires_at <= self._now():
            raise OAuthFailure("invalid_request", "unknown or expired request_uri")
        if pushed.client.client_id != client_id:
            raise OAuthFailure("invalid_request", "request_uri of another client")
        return pushed

    async def _authorize_page(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            pushed = self._pending_request(query.get("client_id", ""),
                                           query.get("request_uri", ""))
        except OAuthFailure as exc:
            return _page("Sign-in failed", f"<p>{html.escape(exc.description)}</p>", 400)
        return self._form(pushed, query.get("request_uri", ""), pushed.login_hint or "", "")

    def _form(self, pushed: PushedRequest, request_uri: str, username: str, error: str,
              status: int = 200) -> web.Response:
        e = html.escape
        problem = f'<p role="alert">{e(error)}</p>' if error else ""
        body = (
            f"<p><strong>{e(pushed.client.name)}</strong> asks to act for your account on"
            f" {e(self._book.service_did)} (scope <code>{e(pushed.scope)}</code>).</p>"
            f"{problem}"
            '<form method="post" action="/oauth/authorize">'
            f'<input type="hidden" name="request_uri" value="{e(request_uri)}">'
            f'<input type="hidden" name="client_id" value="{e(pushed.client.client_id)}">'
            f'<p><label>Handle or DID <input name="username" value="{e(username)}"'
            ' autocomplete="username" required></label></p>'
            '<p><label>Password <input type="password" name="password"'
            ' autocomplete="current-password"></label></p>'
            '<p><button type="submit" name="decision" value="approve">Approve</button> '
            '<button type="submit" name="decision" value="deny">Deny</button></p>'
            "</form>")
        return _page("Sign in", body, status)

    async def _authorize_decision(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        request_uri = form.get("request_uri", "")
        try:
            pushed = self._pending_request(form.get("client_id", ""), request_uri)
        except OAuthFailure as exc:
            return _page("Sign-in failed", f"<p>{html.escape(exc.description)}</p>", 400)
        answer = {"state": pushed.state, "iss": self.issuer}
        if form.get("decision") != "approve":
            self._drop_request(request_uri)
            return _redirect(pushed.redirect_uri, {"error": "access_denied",
                                                   "error_description": "The account denied"
                                                   " the request", **answer})
        username = form.get("username", "").strip().removeprefix("@")
        account = self._book.account(username) if username else None
        if account is None or not hmac.compare_digest(form.get("password", ""),
                                                      account.password):
            return self._form(pushed, request_uri, username, "Wrong handle or password.", 401)
        if self._book.status(account.did) != "active":
            return self._form(pushed, request_uri, username, "This account is not active.",
                              403)
        self._drop_request(request_uri)
        code = "cod-" + secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = Code(pushed, account.did, self._now() + CODE_SECONDS)
        return _redirect(pushed.redirect_uri, {"code": code, **answer})

    def grants_of(self, did: str) -> list[Grant]:
        """The grants issued for ``did`` (revoked ones too), oldest first."""
        with self._lock:
            return [grant for grant in self._grants.values() if grant.did == did]

    def _drop_request(self, request_uri: str) -> None:
        with self._lock:
            self._requests.pop(request_uri, None)

    # -- tokens -------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        async def handle() -> web.Response:
            values = {k: str(v) for k, v in (await request.post()).items()}
            jkt = self.check_proof(request, access_token=None)
            client = await self._client(values.get("client_id", ""))
            self._authenticate_client(client, values)
            grant_type = values.get("grant_type")
            if grant_type == "authorization_code":
                grant = self._redeem_code(client, values, jkt)
            elif grant_type == "refresh_token":
                grant = self._rotate(client, values.get("refresh_token", ""), jkt)
            else:
                raise OAuthFailure("unsupported_grant_type", f"grant {grant_type!r}")
            return web.json_response(self._token_answer(grant),
                                     headers={"Cache-Control": "no-store"})
        return await self._guarded(handle)

    def _redeem_code(self, client: Client, values: Mapping[str, str], jkt: str) -> Grant:
        with self._lock:
            code = self._codes.pop(values.get("code", ""), None)
        if code is None or code.expires_at <= self._now():
            raise OAuthFailure("invalid_grant", "unknown, used or expired code")
        pushed = code.request
        if pushed.client.client_id != client.client_id or \
                pushed.client.auth_method != client.auth_method:
            raise OAuthFailure("invalid_grant", "the code was issued to another client")
        if values.get("redirect_uri") != pushed.redirect_uri:
            raise OAuthFailure("invalid_grant", "redirect_uri mismatch")
        if _sha256(values.get("code_verifier", "")) != pushed.code_challenge:
            raise OAuthFailure("invalid_grant", "PKCE verifier mismatch")
        if jkt != pushed.jkt:
            raise OAuthFailure("invalid_dpop_proof", "DPoP key differs from the PAR's")
        grant = Grant("grt-" + secrets.token_hex(8), client.client_id, client.auth_method,
                      code.did, pushed.scope, jkt, "", 0.0)
        self._new_refresh(grant)
        with self._lock:
            self._grants[grant.id] = grant
        return grant

    def _new_refresh(self, grant: Grant) -> None:
        token = "ref-" + secrets.token_urlsafe(32)
        with self._lock:
            if grant.refresh_token:
                self._by_refresh.pop(grant.refresh_token, None)
                self._spent_refresh[grant.refresh_token] = grant.id
            grant.refresh_token = token
            grant.refresh_expires_at = self._now() + self.options.refresh_ttl_s
            self._by_refresh[token] = grant.id

    def _rotate(self, client: Client, refresh_token: str, jkt: str) -> Grant:
        with self._lock:
            grant_id = self._by_refresh.get(refresh_token)
            spent = self._spent_refresh.get(refresh_token)
            grant = self._grants.get(grant_id or spent or "")
        if grant is not None and spent is not None:
            grant.revoked = True  # a spent refresh token again: the grant may be stolen
            raise OAuthFailure("invalid_grant", "refresh token already used")
        if grant is None or grant.revoked or grant.refresh_expires_at <= self._now():
            raise OAuthFailure("invalid_grant", "unknown, revoked or expired refresh token")
        if grant.client_id != client.client_id or grant.auth_method != client.auth_method:
            raise OAuthFailure("invalid_grant", "the refresh token belongs to another client")
        if grant.jkt != jkt:
            raise OAuthFailure("invalid_dpop_proof", "DPoP key differs from the grant's")
        self._new_refresh(grant)
        return grant

    def _token_answer(self, grant: Grant) -> dict[str, Any]:
        now = int(self._now())
        claims = {
            "iss": self.issuer, "aud": self._book.service_did, "sub": grant.did,
            "scope": grant.scope, "client_id": grant.client_id, "cnf": {"jkt": grant.jkt},
            "iat": now, "exp": now + self.options.access_ttl_s,
            "jti": f"{grant.id}.{secrets.token_hex(6)}",
        }
        access = jwt.encode({"alg": ALG, "typ": "at+jwt", "kid": "devnet-as"}, claims,
                            self._key, algorithms=[ALG])
        return {"access_token": access, "token_type": "DPoP",
                "expires_in": self.options.access_ttl_s, "refresh_token": grant.refresh_token,
                "scope": grant.scope, "sub": grant.did}

    async def _revoke(self, request: web.Request) -> web.Response:
        async def handle() -> web.Response:
            values = {k: str(v) for k, v in (await request.post()).items()}
            client = await self._client(values.get("client_id", ""))
            self._authenticate_client(client, values)
            grant = self._grant_of(values.get("token", ""))
            if grant is not None and grant.client_id == client.client_id:
                grant.revoked = True
            return web.json_response({})
        return await self._guarded(handle)

    def _grant_of(self, token: str) -> Grant | None:
        with self._lock:
            grant_id = self._by_refresh.get(token) or self._spent_refresh.get(token)
            if grant_id is None:
                try:
                    claims = jwt.decode(token, self._key, algorithms=[ALG]).claims
                    grant_id = str(claims.get("jti", "")).split(".", 1)[0]
                except (JoseError, ValueError):
                    return None
            return self._grants.get(grant_id)

    # -- the resource server side (the PDS's XRPC) ---------------------------------------

    def verify_access(self, request: web.Request, scopes: frozenset[str]) -> Claims:
        """The claims of a request carrying ``Authorization: DPoP <token>`` and its
        proof; raises ``web.HTTPUnauthorized`` with a ``WWW-Authenticate: DPoP`` error
        (``use_dpop_nonce``, ``invalid_dpop_proof``, ``invalid_token``) otherwise."""
        token = request.headers.get("Authorization", "").removeprefix("DPoP ").strip()
        try:
            if ACCESS_SCOPE not in scopes:
                raise OAuthFailure("invalid_token", "OAuth tokens cannot call this method")
            jkt = self.check_proof(request, access_token=token)
            try:
                claims = jwt.decode(token, self._key, algorithms=[ALG]).claims
            except (JoseError, ValueError) as exc:
                raise OAuthFailure("invalid_token", f"malformed token: {exc}") from exc
            grant = self._grant_of(token)
            exp, iat = claims.get("exp"), claims.get("iat")
            if grant is None or grant.revoked:
                raise OAuthFailure("invalid_token", "token revoked")
            if not isinstance(exp, int) or not isinstance(iat, int) or exp <= self._now():
                raise OAuthFailure("invalid_token", "token expired")
            if claims.get("aud") != self._book.service_did:
                raise OAuthFailure("invalid_token", "token for another service")
            if (claims.get("cnf") or {}).get("jkt") != jkt:
                raise OAuthFailure("invalid_dpop_proof", "the proof's key is not the token's")
            if "atproto" not in str(claims.get("scope", "")).split():
                raise OAuthFailure("invalid_token", "token lacks the atproto scope")
        except OAuthFailure as exc:
            description = exc.description.replace('"', "'")
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate":
                         f'DPoP error="{exc.error}", error_description="{description}"'},
                text=json.dumps({"error": "InvalidToken" if exc.error == "invalid_token"
                                 else exc.error, "message": exc.description}),
                content_type="application/json") from exc
        return Claims(str(claims["sub"]), ACCESS_SCOPE, iat, exp, str(claims.get("jti")))


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _header(token: str) -> dict[str, Any]:
    """A JWT's header, before its signature is checked (to pick the key that checks it)."""
    try:
        header = json.loads(_unb64(token.split(".")[0]))
    except (ValueError, UnicodeDecodeError):
        return {}
    return header if isinstance(header, dict) else {}


def _redirect(uri: str, params: Mapping[str, str]) -> NoReturn:
    joiner = "&" if urlsplit(uri).query else "?"
    raise web.HTTPSeeOther(uri + joiner + urlencode(params))


def _page(title: str, body: str, status: int) -> web.Response:
    document = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f"<title>{html.escape(title)}</title></head><body>"
                f"<h1>{html.escape(title)}</h1>{body}</body></html>")
    return web.Response(text=document, status=status, content_type="text/html")
