"""The devnet PDS's OAuth authorization server, spoken to directly: DPoP nonces and
replays, PKCE, single-use codes, refresh rotation, and DPoP-bound tokens at XRPC."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest

from appview.auth.jose_keys import dpop_proof, new_key, random_token, sha256_b64url
from appview.auth.oauth_metadata import loopback_client
from tests.auth_support import POST, REDIRECT, AuthNet, approve, record, start_net

CLIENT = loopback_client(REDIRECT)


class Raw:
    """A hand-driven client: every proof and form field is the test's to choose."""

    def __init__(self, net: AuthNet, http: aiohttp.ClientSession) -> None:
        self.net = net
        self.http = http
        self.key = new_key()
        self.nonce: str | None = None

    def proof(self, method: str, url: str, *, token: str | None = None,
              nonce: str | None = None) -> str:
        return dpop_proof(self.key, method=method, url=url,
                          now_s=self.net.clock.now_us() // 1_000_000,
                          nonce=nonce or self.nonce, access_token=token)

    async def post(self, path: str, form: dict[str, str], *, proof: str | None = None,
                   ) -> tuple[int, dict[str, Any]]:
        url = self.net.pds_url + path
        headers = {"DPoP": proof or self.proof("POST", url)}
        async with self.http.post(url, data=form, headers=headers) as answer:
            self.nonce = answer.headers.get("DPoP-Nonce", self.nonce)
            return answer.status, await answer.json()

    async def par(self, verifier: str, **extra: str) -> tuple[int, dict[str, Any]]:
        form = {"client_id": CLIENT.client_id, "response_type": "code",
                "redirect_uri": REDIRECT, "scope": CLIENT.scope, "state": "s1",
                "code_challenge": sha256_b64url(verifier), "code_challenge_method": "S256",
                **extra}
        return await self.post("/oauth/par", {k: v for k, v in form.items() if v})

    async def code(self, verifier: str) -> str:
        status, body = await self.par(verifier)
        assert status == 201, body
        url = self.net.pds_url + "/oauth/authorize?" + urlencode(
            {"client_id": CLIENT.client_id, "request_uri": body["request_uri"]})
        params = await approve(url, self.net.alice)
        assert params["iss"] == self.net.pds_url and params["state"] == "s1"
        return params["code"]

    async def tokens(self, code: str, verifier: str) -> tuple[int, dict[str, Any]]:
        return await self.post("/oauth/token", {
            "client_id": CLIENT.client_id, "grant_type": "authorization_code", "code": code,
            "code_verifier": verifier, "redirect_uri": REDIRECT})


@pytest.fixture
async def raw(aiohttp_server):
    net = await start_net(aiohttp_server)
    async with aiohttp.ClientSession() as http:
        client = Raw(net, http)
        status, body = await client.par(random_token())
        assert (status, body["error"]) == (400, "use_dpop_nonce")  # the first nonce
        assert client.nonce
        yield client


async def test_metadata_names_the_pds_as_its_own_authorization_server(raw: Raw) -> None:
    async with raw.http.get(raw.net.pds_url + "/.well-known/oauth-protected-resource") as r:
        assert (await r.json())["authorization_servers"] == [raw.net.pds_url]
    async with raw.http.get(raw.net.pds_url + "/.well-known/oauth-authorization-server") as r:
        metadata = await r.json()
    assert metadata["issuer"] == raw.net.pds_url
    assert metadata["require_pushed_authorization_requests"] is True
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256"]


async def test_a_replayed_dpop_proof_is_refused(raw: Raw) -> None:
    proof = raw.proof("POST", raw.net.pds_url + "/oauth/par")
    verifier = random_token()
    form = {"client_id": CLIENT.client_id, "response_type": "code", "redirect_uri": REDIRECT,
            "scope": CLIENT.scope, "state": "s", "code_challenge": sha256_b64url(verifier),
            "code_challenge_method": "S256"}
    status, _ = await raw.post("/oauth/par", form, proof=proof)
    assert status == 201
    status, body = await raw.post("/oauth/par", form, proof=proof)
    assert (status, body["error"], body["error_description"]) == (
        400, "invalid_dpop_proof", "DPoP proof replayed")


@pytest.mark.parametrize(("change", "error"), [
    ({"code_challenge_method": "plain"}, "PKCE"),
    ({"redirect_uri": "http://127.0.0.1:9999/elsewhere"}, "redirect_uri"),
    ({"scope": "atproto transition:chat.bsky"}, "scope"),
    ({"state": ""}, "state"),
])
async def test_a_pushed_request_out_of_bounds_is_refused(raw: Raw, change: dict[str, str],
                                                         error: str) -> None:
    status, body = await raw.par(random_token(), **change)
    assert status == 400 and error in body["error_description"]


async def test_a_code_is_spent_once_and_needs_its_verifier_and_key(raw: Raw) -> None:
    verifier = random_token()
    code = await raw.code(verifier)
    status, body = await raw.tokens(code, "wrong-" + verifier)
    assert (status, body["error"]) == (400, "invalid_grant")  # and the code is spent
    status, body = await raw.tokens(code, verifier)
    assert (status, body["error"]) == (400, "invalid_grant")
    code = await raw.code(verifier)
    own_key = raw.key
    raw.key = new_key()  # someone else's key cannot redeem the code
    status, body = await raw.tokens(code, verifier)
    assert (status, body["error"]) == (400, "invalid_dpop_proof")
    raw.key = own_key
    code = await raw.code(verifier)
    status, body = await raw.tokens(code, verifier)
    assert status == 200 and body["token_type"] == "DPoP" and body["sub"] == raw.net.alice.did


async def test_a_refresh_token_works_once_and_its_reuse_revokes_the_grant(raw: Raw) -> None:
    verifier = random_token()
    status, tokens = await raw.tokens(await raw.code(verifier), verifier)
    assert status == 200
    form = {"client_id": CLIENT.client_id, "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"]}
    status, fresh = await raw.post("/oauth/token", form)
    assert status == 200 and fresh["refresh_token"] != tokens["refresh_token"]
    status, body = await raw.post("/oauth/token", form)
    assert (status, body["error"]) == (400, "invalid_grant")
    [grant] = raw.net.pds.oauth.grants_of(raw.net.alice.did)
    assert grant.revoked


async def test_xrpc_writes_take_a_dpop_bound_token_with_its_proof(raw: Raw) -> None:
    verifier = random_token()
    _, tokens = await raw.tokens(await raw.code(verifier), verifier)
    token = tokens["access_token"]
    url = raw.net.pds_url + "/xrpc/com.atproto.repo.createRecord"
    body = {"repo": raw.net.alice.did, "collection": POST, "record": record("dpop")}

    async def write(headers: dict[str, str]) -> tuple[int, str, dict[str, Any]]:
        async with raw.http.post(url, json=body, headers=headers) as answer:
            return (answer.status, answer.headers.get("WWW-Authenticate", ""),
                    await answer.json())

    status, challenge, _ = await write({"Authorization": f"DPoP {token}"})
    assert status == 401 and 'error="invalid_dpop_proof"' in challenge
    status, challenge, _ = await write({"Authorization": f"Bearer {token}"})
    assert status == 401
    proof = raw.proof("POST", url, token=token)
    status, _, answer = await write({"Authorization": f"DPoP {token}", "DPoP": proof})
    assert status == 200 and answer["uri"].startswith(f"at://{raw.net.alice.did}/")
    stored = raw.net.pds.repo(raw.net.alice.did).count()
    status, challenge, _ = await write({"Authorization": f"DPoP {token}", "DPoP": proof})
    assert status == 401 and "replayed" in challenge
    assert raw.net.pds.repo(raw.net.alice.did).count() == stored  # the replay wrote nothing
    other = raw.proof("POST", url, token=token, nonce="stale")
    status, challenge, _ = await write({"Authorization": f"DPoP {token}", "DPoP": other})
    assert status == 401 and 'error="use_dpop_nonce"' in challenge


async def test_the_authorize_page_refuses_a_wrong_password_and_keeps_the_request(
        raw: Raw) -> None:
    _, body = await raw.par(random_token())
    url = raw.net.pds_url + "/oauth/authorize?" + urlencode(
        {"client_id": CLIENT.client_id, "request_uri": body["request_uri"]})
    form = {"client_id": CLIENT.client_id, "request_uri": body["request_uri"],
            "username": raw.net.alice.handle, "password": "nope", "decision": "approve"}
    async with raw.http.post(raw.net.pds_url + "/oauth/authorize", data=form,
                             allow_redirects=False) as answer:
        assert answer.status == 401
        assert "Wrong handle or password" in await answer.text()
    params = await approve(url, raw.net.alice)
    assert "code" in params and dict(parse_qsl(urlsplit(url).query))["request_uri"]
