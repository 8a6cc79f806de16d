"""The OAuth metadata on both sides: the documents that describe this appview as a
client (``/oauth/client-metadata.json``, ``/oauth/jwks.json``, or the loopback client
id in development), and the checks a PDS's protected-resource metadata and its
authorization server's metadata must pass before a member is sent there.

The checks run in the reference client's order (``oauth-resolver``,
``oauth-protected-resource-metadata-resolver``,
``oauth-authorization-server-metadata-resolver``), then the requirements of the AT
Protocol OAuth profile (PAR required, DPoP with ES256, the ``atproto`` scope, the ``iss``
response parameter, PKCE S256, ``private_key_jwt`` or ``none``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from joserfc.jwk import ECKey

from appview.auth.errors import MetadataError
from appview.auth.jose_keys import ALG, public_jwk
from appview.auth.transport import TransportError, origin_of, send

SCOPE = "atproto transition:generic"
CLIENT_METADATA_PATH = "/oauth/client-metadata.json"
JWKS_PATH = "/oauth/jwks.json"
CALLBACK_PATH = "/oauth/callback"
LOOPBACK_CLIENT_ORIGIN = "http://localhost"


@dataclass(frozen=True)
class ClientConfig:
    """This appview as an OAuth client. ``keys`` empty: a public client (the loopback
    form, ``token_endpoint_auth_method=none``); else a confidential one signing its
    client assertions with ``keys[0]``. ``allow_http``: PDSs and authorization servers
    may be plain http (development networks only)."""

    client_id: str
    redirect_uri: str
    scope: str
    keys: tuple[ECKey, ...]
    client_name: str
    client_uri: str | None
    allow_http: bool

    @property
    def confidential(self) -> bool:
        return bool(self.keys)

    @property
    def auth_method(self) -> str:
        return "private_key_jwt" if self.confidential else "none"


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_client(redirect_uri: str, *, scope: str = SCOPE) -> ClientConfig:
    """The development client: no metadata document to host, its id names its redirect
    URI and scope (``http://localhost?redirect_uri=…&scope=…``). The redirect URI must
    be on a loopback IP (RFC 8252 §8.3: not ``localhost``)."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or not _is_loopback_ip(parts.hostname or ""):
        raise MetadataError(f"a loopback client redirects to http://127.0.0.1 or"
                            f" http://[::1], not {redirect_uri!r}")
    client_id = f"{LOOPBACK_CLIENT_ORIGIN}?" + urlencode(
        {"redirect_uri": redirect_uri, "scope": scope})
    return ClientConfig(client_id, redirect_uri, scope, (), "atBB (development)", None,
                        allow_http=True)


def confidential_client(public_url: str, keys: tuple[ECKey, ...], *, client_name: str,
                        scope: str = SCOPE, allow_http: bool = False) -> ClientConfig:
    """The production client: its id is the public URL of its metadata document. Only
    ``allow_http`` (tests against a development network) lets ``public_url`` be http."""
    base = public_url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
        raise MetadataError(f"the client's public URL must be https, not {public_url!r}")
    if parts.query or parts.fragment or not parts.hostname:
        raise MetadataError(f"the client's public URL must be an origin: {public_url!r}")
    if not keys or any(not key.kid for key in keys):
        raise MetadataError("a confidential client needs ES256 keys, each with a kid")
    return ClientConfig(base + CLIENT_METADATA_PATH, base + CALLBACK_PATH, scope,
                        tuple(keys), client_name, base, allow_http)


def client_metadata_document(client: ClientConfig) -> dict[str, Any]:
    """What ``/oauth/client-metadata.json`` serves (as application/json): the document
    an authorization server fetches from the client_id URL."""
    if not client.confidential:
        raise MetadataError("the loopback client has no metadata document")
    base = client.client_uri or ""
    return {
        "client_id": client.client_id,
        "client_name": client.client_name,
        "client_uri": base,
        "application_type": "web",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": [client.redirect_uri],
        "scope": client.scope,
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": ALG,
        "jwks_uri": base + JWKS_PATH,
        "dpop_bound_access_tokens": True,
    }


def jwks_document(client: ClientConfig) -> dict[str, Any]:
    """What ``/oauth/jwks.json`` serves: the public halves of the client's keys (empty
    for the loopback client)."""
    return {"keys": [public_jwk(key) for key in client.keys]}


# --- the server side: a PDS's and its authorization server's metadata ------------------


def check_issuer_form(issuer: Any) -> str:
    """An issuer identifier in canonical form: http(s) origin, no slash at the end, no
    credentials, query or fragment."""
    if not isinstance(issuer, str):
        raise MetadataError(f"issuer {issuer!r} is not a string")
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise MetadataError(f"issuer {issuer!r} is not an http(s) URL")
    if issuer.endswith("/") or parts.username or parts.password or parts.query or \
            parts.fragment or "#" in issuer or "?" in issuer:
        raise MetadataError(f"issuer {issuer!r} is not in canonical form")
    return issuer


def _check_scheme(url: str, *, allow_http: bool, what: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme == "https" or (scheme == "http" and allow_http):
        return
    if scheme == "http":
        raise MetadataError(f"{what} {url} is plain http, allowed only in development")
    raise MetadataError(f"{what} {url} is not an http(s) URL")


async def _get_metadata(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    try:
        answer = await send(http, "GET", url, headers={"Accept": "application/json"})
    except TransportError as exc:
        raise MetadataError(str(exc)) from exc
    if answer.status == 200 and answer.content_type != "application/json":
        raise MetadataError(f"{url}: unexpected content type {answer.content_type!r}")
    data = answer.json() if answer.status == 200 else None
    if answer.status == 200 and not isinstance(data, dict):
        raise MetadataError(f"{url}: not a JSON object")
    return answer.status, data


async def protected_resource(http: aiohttp.ClientSession, pds_url: str, *,
                             allow_http: bool) -> dict[str, Any] | None:
    """The PDS's ``/.well-known/oauth-protected-resource`` (RFC 9728), or None when it
    has none (404)."""
    _check_scheme(pds_url, allow_http=allow_http, what="PDS")
    origin = origin_of(pds_url)
    url = origin + "/.well-known/oauth-protected-resource"
    status, data = await _get_metadata(http, url)
    if status == 404:
        return None
    if status != 200 or data is None:
        raise MetadataError(f"{url}: unexpected status {status}")
    if data.get("resource") != origin:
        raise MetadataError(f"{url}: resource {data.get('resource')!r} is not {origin}")
    return dict(data)


async def authorization_server(http: aiohttp.ClientSession, issuer: str, *,
                               allow_http: bool) -> dict[str, Any]:
    """The issuer's ``/.well-known/oauth-authorization-server`` (RFC 8414), its issuer
    the one asked for (mix-up attacks), with client id metadata documents supported."""
    metadata = await _authorization_server(http, issuer, allow_http=allow_http)
    if metadata is None:
        raise MetadataError(
            f"{issuer}/.well-known/oauth-authorization-server: unexpected status 404")
    return metadata


async def _authorization_server(http: aiohttp.ClientSession, issuer: str, *,
                                allow_http: bool) -> dict[str, Any] | None:
    check_issuer_form(issuer)
    _check_scheme(issuer, allow_http=allow_http, what="authorization server")
    url = issuer + "/.well-known/oauth-authorization-server"
    status, data = await _get_metadata(http, url)
    if status == 404:
        return None
    if status != 200 or data is None:
        raise MetadataError(f"{url}: unexpected status {status}")
    if data.get("issuer") != issuer:
        raise MetadataError(f"{url}: its issuer {data.get('issuer')!r} is not {issuer}")
    if data.get("client_id_metadata_document_supported") is not True:
        raise MetadataError(f"{issuer} does not support client id metadata documents")
    return dict(data)


async def server_for_pds(http: aiohttp.ClientSession, pds_url: str, *,
                         allow_http: bool) -> dict[str, Any] | None:
    """The authorization server metadata of the PDS at ``pds_url``, or None when the PDS
    serves no OAuth metadata at all (neither document)."""
    resource = await protected_resource(http, pds_url, allow_http=allow_http)
    if resource is None:
        # the reference client then takes the PDS itself for its issuer
        return await _authorization_server(http, origin_of(pds_url), allow_http=allow_http)
    servers = resource.get("authorization_servers")
    if not isinstance(servers, list) or len(servers) != 1:
        raise MetadataError(
            f"PDS {pds_url}: expected exactly one authorization server, got {servers!r}")
    issuer = check_issuer_form(servers[0])
    metadata = await authorization_server(http, issuer, allow_http=allow_http)
    protected = metadata.get("protected_resources")
    if isinstance(protected, list) and resource["resource"] not in protected:
        raise MetadataError(f"PDS {pds_url} is not protected by issuer {issuer}")
    return metadata


def _has(metadata: Mapping[str, Any], name: str, value: str) -> bool:
    values = metadata.get(name)
    return isinstance(values, list) and value in values


def check_atproto_profile(metadata: Mapping[str, Any], client: ClientConfig) -> None:
    """What AT Protocol OAuth requires of an authorization server, checked before the
    member is sent to it."""
    issuer = str(metadata.get("issuer"))
    problems: list[str] = []
    for name in ("authorization_endpoint", "token_endpoint",
                 "pushed_authorization_request_endpoint"):
        value = metadata.get(name)
        if not isinstance(value, str):
            problems.append(f"no {name}")
            continue
        try:
            _check_scheme(value, allow_http=client.allow_http, what=name)
        except MetadataError as exc:
            problems.append(str(exc))
    if metadata.get("require_pushed_authorization_requests") is not True:
        problems.append("pushed authorization requests are not required")
    if not _has(metadata, "dpop_signing_alg_values_supported", ALG):
        problems.append(f"DPoP with {ALG} is not supported")
    if not _has(metadata, "scopes_supported", "atproto"):
        problems.append("the atproto scope is not supported")
    if metadata.get("authorization_response_iss_parameter_supported") is not True:
        problems.append("the iss response parameter is not supported")
    if not _has(metadata, "code_challenge_methods_supported", "S256"):
        problems.append("PKCE S256 is not supported")
    if not _has(metadata, "response_types_supported", "code"):
        problems.append("the code response type is not supported")
    for grant in ("authorization_code", "refresh_token"):
        if not _has(metadata, "grant_types_supported", grant):
            problems.append(f"the {grant} grant is not supported")
    if not _has(metadata, "token_endpoint_auth_methods_supported", client.auth_method):
        problems.append(f"client authentication {client.auth_method} is not supported")
    algs = metadata.get("token_endpoint_auth_signing_alg_values_supported", [ALG])
    if client.confidential and (not isinstance(algs, list) or ALG not in algs):
        problems.append(f"client assertions signed with {ALG} are not accepted")
    if isinstance(algs, list) and "none" in algs:
        problems.append("it accepts unsigned client assertions")
    if problems:
        raise MetadataError(f"authorization server {issuer}: " + "; ".join(problems))
