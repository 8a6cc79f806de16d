"""Handles verified both ways (appview.handles): the _atproto DNS TXT record, asked of a
DNS server on loopback; the well-known path of the development network's PDS through
HANDLE_RESOLVER_DEV_URLS; and the verdicts: verified, refuted, unknown."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import dns.asyncresolver
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from aiohttp.abc import AbstractResolver, ResolveResult

from appview.devnet.network import DevNetwork
from appview.handles import HandleResolver
from appview.settings import Settings

NOWHERE = "http://127.0.0.1:9"  # the discard port: connection refused


class LoopbackDns(asyncio.DatagramProtocol):
    """A DNS server: TXT answers from ``records`` (name -> strings), NXDOMAIN for names
    in ``missing``, SERVFAIL for everything else. ``asked`` lists the questions."""

    def __init__(self, records: dict[str, list[str]], missing: set[str]) -> None:
        self.records = records
        self.missing = missing
        self.asked: list[str] = []
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        [question] = query.question
        name = question.name.to_text(omit_final_dot=True)
        self.asked.append(name)
        if name in self.records:
            response.answer.append(dns.rrset.from_text_list(
                question.name, 300, "IN", "TXT", [f'"{text}"' for text in self.records[name]]))
        elif name in self.missing:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            response.set_rcode(dns.rcode.SERVFAIL)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def dns_server(records: dict[str, list[str]],
                     missing: set[str] = frozenset()  # type: ignore[assignment]
                     ) -> AsyncIterator[tuple[LoopbackDns, dns.asyncresolver.Resolver]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: LoopbackDns(records, set(missing)), local_addr=("127.0.0.1", 0))
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = transport.get_extra_info("sockname")[1]
    try:
        yield protocol, resolver
    finally:
        transport.close()


class EverythingOnLoopback(AbstractResolver):
    """Every host name is 127.0.0.1, where nothing serves HTTPS: the https:// fallback
    is refused instead of asking the machine's DNS."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host="127.0.0.1", port=port,
                              family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        return None


@asynccontextmanager
async def loopback_session() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(resolver=EverythingOnLoopback())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def test_a_dns_txt_record_verifies_the_handle_and_refutes_another_did() -> None:
    async with dns_server({"_atproto.alice.example.org": ["did=did:plc:alice"]}) as (
            server, resolver), loopback_session() as session:
        handles = HandleResolver(Settings(), session, dns_resolver=resolver, timeout=2)
        verified = await handles.verify("did:plc:alice", "Alice.Example.org")
        assert verified.outcome == "verified" and verified.handle == "alice.example.org"
        refuted = await handles.verify("did:plc:mallory", "alice.example.org")
        assert refuted.outcome == "refuted" and refuted.handle is None
        assert "did:plc:alice" in refuted.reason
        assert server.asked == ["_atproto.alice.example.org"] * 2


async def test_two_different_dids_in_dns_are_no_answer() -> None:
    """Not verified by DNS; and with https://twice.example.org/ refused, unknown."""
    records = {"_atproto.twice.example.org": ["did=did:plc:one", "did=did:plc:two"]}
    async with dns_server(records) as (_, resolver), loopback_session() as session:
        handles = HandleResolver(Settings(), session, dns_resolver=resolver, timeout=2)
        verdict = await handles.verify("did:plc:one", "twice.example.org")
        assert verdict.outcome == "unknown" and "2 different DIDs" in verdict.reason


async def test_a_name_that_does_not_exist_is_refuted_and_a_failing_dns_is_unknown() -> None:
    async with dns_server({}, {"_atproto.gone.example.org"}) as (_, resolver), \
            loopback_session() as session:
        handles = HandleResolver(Settings(), session, dns_resolver=resolver, timeout=2)
        gone = await handles.verify("did:plc:gone", "gone.example.org")
        assert gone.outcome == "refuted", gone
        # SERVFAIL, and https://broken.example.org/ refused: nothing can be concluded
        broken = await handles.verify("did:plc:broken", "broken.example.org")
        assert broken.outcome == "unknown", broken


async def test_handles_under_reserved_tlds_and_absent_claims_are_refused_unasked() -> None:
    async with dns_server({"_atproto.alice.test": ["did=did:plc:alice"]}) as (
            server, resolver), loopback_session() as session:
        handles = HandleResolver(Settings(), session, dns_resolver=resolver, timeout=2)
        assert (await handles.verify("did:plc:alice", "alice.test")).outcome == "refuted"
        assert (await handles.verify("did:plc:alice", None)).outcome == "refuted"
        malformed = await handles.verify("did:plc:alice", "evil.example.org/x?")
        assert malformed.outcome == "refuted" and "not a handle" in malformed.reason
        assert server.asked == []


async def test_development_urls_ask_each_pds_with_the_handle_as_host() -> None:
    async with DevNetwork(pds_hosts=2) as network, aiohttp.ClientSession() as session:
        alice = network.pds["pds1"].create_account("alice.test", "password-1")
        bob = network.pds["pds2"].create_account("bob.test", "password-2")
        settings = Settings(handle_resolver_dev_urls=network.handle_resolver_dev_urls)
        handles = HandleResolver(settings, session, timeout=2)
        assert handles.development
        assert (await handles.verify(alice.did, "alice.test")).outcome == "verified"
        assert (await handles.verify(bob.did, "bob.test")).outcome == "verified"
        assert (await handles.verify(alice.did, "bob.test")).outcome == "refuted"
        assert (await handles.verify(alice.did, "nobody.test")).outcome == "refuted"
        network.pds["pds1"].set_account_status(alice.did, "deleted")
        assert (await handles.verify(alice.did, "alice.test")).outcome == "refuted"
        unreachable = HandleResolver(Settings(handle_resolver_dev_urls=NOWHERE), session,
                                     timeout=2)
        assert (await unreachable.verify(bob.did, "bob.test")).outcome == "unknown"
