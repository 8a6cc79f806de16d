"""What the client asked for, as the reverse proxies in front of us saw it.

A proxy terminating TLS talks plain HTTP to the appview, so ``request.secure`` is false
and cookies would lose ``Secure``. Proxies say what their client used in ``Forwarded``
(RFC 7239: ``for=...;proto=https;host=...``) or ``X-Forwarded-For`` / ``-Proto`` /
``-Host``; anybody can send those headers, so they are believed only from a peer listed
in TRUSTED_PROXIES. Each proxy appends what it saw of its own client, so the chain is read
from the nearest proxy outwards, one hop at a time, while the hop's sender is trusted: the
first untrusted client's view (scheme, host, address) is the request's.

Every request's host is checked here too (the Host header when no trusted proxy speaks):
it becomes the feeds' absolute links, so it must be a host name or an IP literal with an
optional port, nothing that smuggles a path in.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiohttp import web

from appview.settings import Settings
from web.errors import Handler
from web.keys import SERVICES

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?:(?P<name>{_LABEL}(?:\.{_LABEL})*\.?)|\[(?P<ip6>[0-9A-Fa-f:.]+)\])"
                   r"(?::(?P<port>[0-9]{1,5}))?")
_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class Hop:
    """What one proxy says about the client that connected to it."""

    client: str | None = None
    proto: str | None = None
    host: str | None = None


def valid_host(value: str) -> bool:
    """A host name (or IPv4 address), or a bracketed IPv6 literal, with an optional port."""
    match = _HOST.fullmatch(value)
    if match is None or len(value) > 261:
        return False
    if match["ip6"] is not None:
        try:
            ipaddress.IPv6Address(match["ip6"])
        except ValueError:
            return False
    return match["port"] is None or 0 < int(match["port"]) <= 65535


def parse_address(value: str | None) -> Address | None:
    """The IP of a ``for=`` or X-Forwarded-For entry (``1.2.3.4``, ``1.2.3.4:5``,
    ``[::1]:5``, ``::1``); None for ``unknown``, obfuscated names and garbage."""
    if not value:
        return None
    text = value.strip().strip('"')
    if text.startswith("["):
        inside, bracket, _port = text[1:].partition("]")
        if not bracket:
            return None
        text = inside
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The networks of TRUSTED_PROXIES and the reading of the hops they forward."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self._networks = tuple(networks)

    @classmethod
    def from_settings(cls, settings: Settings) -> TrustedProxies:
        return cls(settings.trusted_proxy_networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str | None) -> bool:
        parsed = parse_address(address)
        return parsed is not None and any(parsed in network for network in self._networks)

    def client_view(self, peer: str | None, hops: Sequence[Hop]) -> Hop | None:
        """The scheme, host and address of the first untrusted client on the way to us,
        as the trusted proxies report it; None when the peer itself is not trusted.
        ``hops`` are in header order: the one the nearest proxy added comes last."""
        if not self.trusts(peer) or not hops:
            return None
        client = proto = host = None
        for hop in reversed(hops):
            # each hop was added by a trusted proxy: believe what it says of its client
            client = hop.client
            proto = hop.proto or proto
            host = hop.host or host
            if not self.trusts(hop.client):
                break
        return Hop(client, proto, host)


def _forwarded_hops(request: web.BaseRequest) -> list[Hop]:
    return [Hop(element.get("for"), _scheme(element.get("proto")), _host(element.get("host")))
            for element in request.forwarded]


def _x_forwarded_hops(request: web.BaseRequest) -> list[Hop]:
    def values(name: str) -> list[str]:
        return [item.strip() for header in request.headers.getall(name, ())
                for item in header.split(",")]

    clients = values("X-Forwarded-For")
    protos = [_scheme(v) for v in values("X-Forwarded-Proto")]
    hosts = [_host(v) for v in values("X-Forwarded-Host")]
    count = max(len(clients), len(protos), len(hosts))

    def at(items: Sequence[str | None], index: int) -> str | None:
        # lists are aligned on the right: the nearest proxy's entry is the last of each
        shift = count - len(items)
        return items[index - shift] if index >= shift else None

    return [Hop(at(clients, i), at(protos, i), at(hosts, i)) for i in range(count)]


def _scheme(value: str | None) -> str | None:
    lowered = (value or "").strip().lower()
    return lowered if lowered in _SCHEMES else None


def _host(value: str | None) -> str | None:
    text = (value or "").strip()
    return text if text and valid_host(text) else None


_PROXIES = web.AppKey("trusted_proxies", TrustedProxies)


def setup(app: web.Application) -> None:
    app[_PROXIES] = TrustedProxies.from_settings(app[SERVICES].settings)


def _bad_host() -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text="The Host header is not a host name with an optional port.")


@web.middleware
async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hands on the request as its client made it, when a trusted proxy says how."""
    proxies = request.app[_PROXIES]
    view = None
    if proxies and proxies.trusts(request.remote):
        hops = _forwarded_hops(request) if "Forwarded" in request.headers \
            else _x_forwarded_hops(request)
        view = proxies.client_view(request.remote, hops)
    if view is None:
        if not valid_host(request.host):
            raise _bad_host()
        return await handler(request)
    host = view.host or request.host
    if not valid_host(host):
        raise _bad_host()
    address = parse_address(view.client)
    return await handler(request.clone(
        scheme=view.proto or request.scheme, host=host,
        remote=str(address) if address is not None else request.remote or ""))
