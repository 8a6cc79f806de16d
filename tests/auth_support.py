"""A devnet PLC and PDS with its OAuth server on loopback, the settings of an appview
that signs members in against them, and a stand-in for the member's browser on the
authorize page (plain HTTP: the page is a form that works without JavaScript)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiohttp.test_utils import TestServer

from appview.auth.member_auth import MemberAuth
from appview.auth.oauth_metadata import CALLBACK_PATH, ClientConfig, loopback_client
from appview.devnet.clock import DevClock
from appview.devnet.oauth_server import OAuthOptions
from appview.devnet.pds import Account, PdsHost
from appview.devnet.plc import PlcDirectory
from appview.settings import Settings
from tests.conftest import Backend
from tests.recording_sink import RecordingSink

POST = "space.atbb.post"
REDIRECT = "http://127.0.0.1:8080" + CALLBACK_PATH


def url_of(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@dataclass
class AuthNet:
    clock: DevClock  # the PDS's OAuth server's clock, and the appview's
    plc: PlcDirectory
    pds: PdsHost
    plc_url: str
    pds_url: str
    alice: Account
    bob: Account


async def start_net(aiohttp_server, *, access_ttl_s: int = 3600, enabled: bool = True,
                    name: str = "pds1", clock: DevClock | None = None,
                    plc: PlcDirectory | None = None, plc_url: str | None = None) -> AuthNet:
    clock = clock or DevClock()
    plc = plc or PlcDirectory()
    pds = PdsHost(name, clock=DevClock(), sink=RecordingSink(), plc=plc,
                  oauth=OAuthOptions(clock=clock, access_ttl_s=access_ttl_s, enabled=enabled))
    if plc_url is None:
        plc_url = url_of(await aiohttp_server(plc.app()))
    pds_server = await aiohttp_server(pds.app())
    pds.set_url(url_of(pds_server))
    alice = pds.create_account(f"alice.{name}.test", "alice-pw", seed=f"alice{name}".encode())
    bob = pds.create_account(f"bob.{name}.test", "bob-pw", seed=f"bob{name}".encode())
    return AuthNet(clock, plc, pds, plc_url, url_of(pds_server), alice, bob)


def auth_settings(backend: Backend, net: AuthNet, *resolvers: str) -> Settings:
    urls = ",".join([net.pds_url, *resolvers])
    if backend.name == "sqlite":
        return Settings(data_dir=backend.tmp / "data", plc_url=net.plc_url,
                        handle_resolver_dev_urls=urls)
    return Settings(data_dir=backend.tmp / "data", database_url=backend.url,
                    database_schema=backend.schema or "public", plc_url=net.plc_url,
                    handle_resolver_dev_urls=urls)


def member_auth(settings: Settings, net: AuthNet,
                client: ClientConfig | None = None) -> MemberAuth:
    return MemberAuth(settings, net.clock, client=client or loopback_client(REDIRECT))


def form_fields(page: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)}


async def approve(url: str, who: Account, *, password: str | None = None,
                  decision: str = "approve") -> dict[str, str]:
    """What a member does in the browser: open the authorize page, type the password,
    press a button. Answers the query of the redirect back to the appview."""
    async with aiohttp.ClientSession() as browser:
        async with browser.get(url) as page:
            assert page.status == 200, await page.text()
            text = await page.text()
        assert "<form" in text and "<script" not in text
        action = urlsplit(url)._replace(query="").geturl()
        form = {**form_fields(text), "username": who.handle,
                "password": who.password if password is None else password,
                "decision": decision}
        async with browser.post(action, data=form, allow_redirects=False) as answer:
            assert answer.status == 303, await answer.text()
            location = answer.headers["Location"]
    assert location.startswith(REDIRECT) or "/oauth/callback" in location, location
    return dict(parse_qsl(urlsplit(location).query))


def record(text: str) -> dict[str, Any]:
    return {"$type": POST, "text": text, "createdAt": "2025-01-01T00:00:00.000Z"}
