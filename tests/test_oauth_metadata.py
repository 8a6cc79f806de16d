"""The client's own metadata documents, and the checks an authorization server's
metadata must pass before a member is sent to it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web

from appview.auth.errors import MetadataError
from appview.auth.jose_keys import new_key
from appview.auth.oauth_metadata import (
    SCOPE,
    check_atproto_profile,
    check_issuer_form,
    client_metadata_document,
    confidential_client,
    jwks_document,
    loopback_client,
    server_for_pds,
)
from tests.auth_support import url_of

ISSUER = "https://pds.example"
GOOD: dict[str, Any] = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/oauth/authorize",
    "token_endpoint": f"{ISSUER}/oauth/token",
    "pushed_authorization_request_endpoint": f"{ISSUER}/oauth/par",
    "require_pushed_authorization_requests": True,
    "dpop_signing_alg_values_supported": ["ES256"],
    "scopes_supported": ["atproto", "transition:generic"],
    "authorization_response_iss_parameter_supported": True,
    "code_challenge_methods_supported": ["S256"],
    "response_types_supported": ["code"],
    "grant_types_supported": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
    "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
    "client_id_metadata_document_supported": True,
}
LOOPBACK = loopback_client("http://127.0.0.1:8080/oauth/callback")
CONFIDENTIAL = confidential_client("https://forum.example", (new_key("k1"),),
                                   client_name="forum")


def test_the_loopback_client_names_its_redirect_and_scope() -> None:
    parts = urlsplit(LOOPBACK.client_id)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "localhost", "")
    assert parse_qs(parts.query) == {"redirect_uri": ["http://127.0.0.1:8080/oauth/callback"],
                                     "scope": [SCOPE]}
    assert LOOPBACK.auth_method == "none" and LOOPBACK.allow_http
    assert jwks_document(LOOPBACK) == {"keys": []}
    with pytest.raises(MetadataError, match="no metadata document"):
        client_metadata_document(LOOPBACK)
    for wrong in ("http://localhost:8080/oauth/callback", "https://127.0.0.1/cb",
                  "http://192.168.1.2/cb"):
        with pytest.raises(MetadataError, match="loopback"):
            loopback_client(wrong)


def test_the_confidential_client_publishes_its_documents() -> None:
    document = client_metadata_document(CONFIDENTIAL)
    assert document["client_id"] == "https://forum.example/oauth/client-metadata.json"
    assert document["redirect_uris"] == ["https://forum.example/oauth/callback"]
    assert document["jwks_uri"] == "https://forum.example/oauth/jwks.json"
    assert document["scope"] == "atproto transition:generic"
    assert document["dpop_bound_access_tokens"] is True
    assert (document["token_endpoint_auth_method"],
            document["token_endpoint_auth_signing_alg"]) == ("private_key_jwt", "ES256")
    [key] = jwks_document(CONFIDENTIAL)["keys"]
    assert key["kid"] == "k1" and "d" not in key
    with pytest.raises(MetadataError, match="https"):
        confidential_client("http://forum.example", (new_key("k"),), client_name="x")
    with pytest.raises(MetadataError, match="keys"):
        confidential_client("https://forum.example", (), client_name="x")
    with pytest.raises(MetadataError, match="origin"):
        confidential_client("https://forum.example/?x=1", (new_key("k"),), client_name="x")


def test_a_compliant_server_passes_for_both_clients() -> None:
    check_atproto_profile(GOOD, CONFIDENTIAL)
    check_atproto_profile(GOOD, LOOPBACK)


@pytest.mark.parametrize(("change", "problem"), [
    ({"require_pushed_authorization_requests": False}, "pushed authorization"),
    ({"pushed_authorization_request_endpoint": None}, "no pushed_authorization"),
    ({"dpop_signing_alg_values_supported": ["RS256"]}, "DPoP with ES256"),
    ({"scopes_supported": ["openid"]}, "atproto scope"),
    ({"authorization_response_iss_parameter_supported": None}, "iss response"),
    ({"code_challenge_methods_supported": ["plain"]}, "S256"),
    ({"response_types_supported": ["token"]}, "code response"),
    ({"grant_types_supported": ["authorization_code"]}, "refresh_token grant"),
    ({"token_endpoint_auth_methods_supported": ["none"]}, "private_key_jwt"),
    ({"token_endpoint_auth_signing_alg_values_supported": ["RS256"]}, "signed with ES256"),
    ({"token_endpoint_auth_signing_alg_values_supported": ["ES256", "none"]}, "unsigned"),
    ({"token_endpoint": "http://pds.example/oauth/token"}, "plain http"),
])
def test_each_missing_requirement_is_named(change: dict[str, Any], problem: str) -> None:
    metadata = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(MetadataError, match=problem):
        check_atproto_profile(metadata, CONFIDENTIAL)


@pytest.mark.parametrize("issuer", ["https://pds.example/", "https://pds.example?x",
                                    "https://u:p@pds.example", "ftp://pds.example", 7])
def test_an_issuer_not_in_canonical_form_is_refused(issuer: Any) -> None:
    with pytest.raises(MetadataError):
        check_issuer_form(issuer)


async def serve(aiohttp_server, resource: Any, servers: Any = None,
                content_type: str = "application/json") -> str:
    app = web.Application()

    async def resource_metadata(request: web.Request) -> web.Response:
        origin = f"http://{request.host}"
        body = resource(origin) if callable(resource) else resource
        return web.json_response(body, content_type=content_type)

    async def server_metadata(request: web.Request) -> web.Response:
        origin = f"http://{request.host}"
        return web.json_response({**GOOD, "issuer": origin, **(servers or {})})

    app.router.add_get("/.well-known/oauth-protected-resource", resource_metadata)
    app.router.add_get("/.well-known/oauth-authorization-server", server_metadata)
    return url_of(await aiohttp_server(app))


@pytest.mark.parametrize(("resource", "content_type", "problem"), [
    (lambda origin: {"resource": "https://elsewhere.example",
                     "authorization_servers": [origin]}, "application/json", "is not"),
    (lambda origin: {"resource": origin, "authorization_servers": [origin, origin + "0"]},
     "application/json", "exactly one"),
    (lambda origin: {"resource": origin, "authorization_servers": []}, "application/json",
     "exactly one"),
    (lambda origin: {"resource": origin, "authorization_servers": [origin]}, "text/html",
     "content type"),
])
async def test_protected_resource_metadata_must_describe_its_pds(
        aiohttp_server, resource: Any, content_type: str, problem: str) -> None:
    url = await serve(aiohttp_server, resource, content_type=content_type)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(MetadataError, match=problem):
            await server_for_pds(http, url, allow_http=True)


async def test_plain_http_is_refused_outside_development(aiohttp_server) -> None:
    url = await serve(aiohttp_server, lambda o: {"resource": o, "authorization_servers": [o]})
    async with aiohttp.ClientSession() as http:
        with pytest.raises(MetadataError, match="plain http"):
            await server_for_pds(http, url, allow_http=False)
        metadata = await server_for_pds(http, url, allow_http=True)
        assert metadata is not None and metadata["issuer"] == url


async def test_a_server_that_does_not_protect_the_pds_is_refused(aiohttp_server) -> None:
    url = await serve(aiohttp_server, lambda o: {"resource": o, "authorization_servers": [o]},
                      servers={"protected_resources": ["https://other.example"]})
    async with aiohttp.ClientSession() as http:
        with pytest.raises(MetadataError, match="not protected"):
            await server_for_pds(http, url, allow_http=True)
