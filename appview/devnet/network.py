"""The whole devnet in one process: a PLC directory, PDS hosts (each on its own port), the
Jetstream server and a relay that crawls the PDS hosts, on loopback, with free ports
unless told otherwise.

``DevNetwork`` is an async context manager for tests and ``atbb demo``; ``run_devnet`` is
the ``atbb devnet`` command: start, seed, print where everything is, run until SIGINT or
SIGTERM, stop cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Literal, TextIO

from aiohttp import web

from appview.devnet.clock import DevClock
from appview.devnet.firehose import PATH as FIREHOSE_PATH
from appview.devnet.jetstream import JetstreamServer
from appview.devnet.pds import PdsHost
from appview.devnet.plc import PlcDirectory
from appview.devnet.relay import Relay
from appview.devnet.scenario import ScenarioSize, SizeName, build_scenario
from appview.devnet.seed import SeededForum, seed_forum

_SHUTDOWN_TIMEOUT_S = 2.0


class DevNetwork:
    """PLC, PDS hosts and Jetstream on ``host``. Ports default to free ones.

    ``clock`` stamps Jetstream ``time_us``; ``pds_clock`` drives the PDS hosts' TIDs,
    revs and rate-limit windows (``seed`` freezes it while seeding so revs reproduce; the
    Jetstream clock keeps real time so consumers see a live stream). Both default to
    real-time clocks; pass one clock twice to share it."""

    def __init__(
        self,
        *,
        pds_hosts: int | Sequence[str] = 1,
        host: str = "127.0.0.1",
        plc_port: int = 0,
        pds_ports: Sequence[int] | None = None,
        jetstream_port: int = 0,
        relay_port: int = 0,
        clock: DevClock | None = None,
        pds_clock: DevClock | None = None,
        retention_us: int | None = None,
        rate_limit: int | None = None,
        rate_window_s: float = 300.0,
        relay_crawl_interval_s: float | None = None,
    ) -> None:
        names = (
            [f"pds{index + 1}" for index in range(pds_hosts)]
            if isinstance(pds_hosts, int)
            else list(pds_hosts)
        )
        if not names or len(set(names)) != len(names):
            raise ValueError(f"need one or more distinct PDS host names, got {names}")
        if pds_ports is not None and len(pds_ports) != len(names):
            raise ValueError(f"{len(names)} PDS hosts but {len(pds_ports)} PDS ports")
        self.host = host
        self.clock = clock if clock is not None else DevClock()
        self.pds_clock = pds_clock if pds_clock is not None else DevClock()
        self.plc = PlcDirectory()
        self.jetstream = JetstreamServer(self.clock, retention_us=retention_us)
        self.pds: dict[str, PdsHost] = {
            name: PdsHost(
                name,
                clock=self.pds_clock,
                sink=self.jetstream,
                plc=self.plc,
                rate_limit=rate_limit,
                rate_window_s=rate_window_s,
                firehose_clock=self.clock,
            )
            for name in names
        }
        # crawls on ``seed`` and when asked (``relay.crawl()``), or every
        # ``relay_crawl_interval_s`` seconds
        self.relay = Relay(crawl_interval_s=relay_crawl_interval_s)
        self._ports = {"plc": plc_port, "jetstream": jetstream_port, "relay": relay_port}
        for index, name in enumerate(names):
            self._ports[f"pds:{name}"] = pds_ports[index] if pds_ports is not None else 0
        self._runners: list[web.AppRunner] = []
        self._urls: dict[str, str] = {}

    async def __aenter__(self) -> DevNetwork:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._runners:
            raise RuntimeError("the devnet is already running")
        try:
            self._urls["plc"] = await self._serve(self.plc.app(), self._ports["plc"])
            for name, pds in self.pds.items():
                url = await self._serve(pds.app(), self._ports[f"pds:{name}"])
                pds.set_url(url)
                self.relay.add_host(url)
                self._urls[f"pds:{name}"] = url
            self._urls["jetstream"] = await self._serve(
                self.jetstream.app(), self._ports["jetstream"]
            )
            self._urls["relay"] = await self._serve(self.relay.app(), self._ports["relay"])
        except BaseException:
            await self.stop()
            raise

    async def _serve(self, app: web.Application, port: int) -> str:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.host, port)
        await site.start()
        bound = runner.addresses[0][1]
        return f"http://{self.host}:{bound}"

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()
        self._urls.clear()

    def _url(self, key: str) -> str:
        url = self._urls.get(key)
        if url is None:
            raise RuntimeError("the devnet is not running")
        return url

    @property
    def plc_url(self) -> str:
        return self._url("plc")

    @property
    def pds_urls(self) -> dict[str, str]:
        """PDS URL by host name."""
        return {name: self._url(f"pds:{name}") for name in self.pds}

    @property
    def jetstream_url(self) -> str:
        """The full ``/subscribe`` websocket URL a consumer connects to."""
        return self._url("jetstream").replace("http://", "ws://", 1) + "/subscribe"

    def firehose_url(self, name: str | None = None) -> str:
        """The ``subscribeRepos`` websocket URL of PDS host ``name`` (default: the
        first), usable as FIREHOSE_URL."""
        host = name if name is not None else next(iter(self.pds))
        return self._url(f"pds:{host}").replace("http://", "ws://", 1) + FIREHOSE_PATH

    @property
    def relay_url(self) -> str:
        """The relay's base URL (``RELAY_URL``: ``listReposByCollection``)."""
        return self._url("relay")

    @property
    def handle_resolver_dev_urls(self) -> str:
        """``HANDLE_RESOLVER_DEV_URLS`` for this network: its PDS hosts, each of which
        answers ``/.well-known/atproto-did`` for its own handles."""
        return ",".join(self.pds_urls.values())

    @property
    def jetstream_admin_url(self) -> str:
        """Where ``/_devnet/faults`` and ``/_devnet/status`` are served."""
        return self._url("jetstream")

    async def seed(
        self,
        seed: int = 1,
        size: SizeName | ScenarioSize = "small",
        *,
        concurrency: int = 1,
        via: Literal["xrpc", "direct"] = "xrpc",
        crawl_relay: bool = True,
    ) -> SeededForum:
        """Builds the scenario of ``seed`` for this network's PDS hosts and writes it
        through XRPC, or straight into the repos with ``via="direct"`` (see
        ``appview.devnet.seed``), then has the relay crawl it (``crawl_relay=False``
        leaves the hosts' rate-limit windows untouched for a test that measures them)."""
        scenario = build_scenario(seed, size, pds_names=tuple(self.pds))
        seeded = await seed_forum(
            scenario, self.pds, clock=self.pds_clock, concurrency=concurrency, via=via
        )
        if crawl_relay:
            await self.relay.crawl()
        return seeded


def describe(network: DevNetwork, seeded: SeededForum | None) -> list[str]:
    """What ``atbb devnet`` prints: the URLs, and the seeded accounts' credentials."""
    lines = ["atbb devnet: a local AT Protocol network (loopback only)"]
    lines.append(f"  PLC directory  {network.plc_url}")
    for name, url in network.pds_urls.items():
        lines.append(f"  PDS {name:<10} {url}")
        lines.append(f"    firehose     {network.firehose_url(name)}")
    lines.append(f"  Jetstream      {network.jetstream_url}")
    lines.append(f"  fault admin    {network.jetstream_admin_url}/_devnet/faults")
    lines.append(f"  Relay          {network.relay_url}")
    lines.append(f"  RELAY_URL={network.relay_url}")
    lines.append(f"  HANDLE_RESOLVER_DEV_URLS={network.handle_resolver_dev_urls}")
    if seeded is not None:
        expected = seeded.expected
        lines.append(
            f"seeded forum {seeded.forum_name!r} (seed {seeded.seed}): "
            f"{expected.categories} categories, {len(expected.boards)} boards, "
            f"{expected.visible_topics} topics, {expected.posts} posts"
        )
        lines.append(f"  FORUM_DID={seeded.forum_did}")
        lines.append("accounts (handle, DID, app password, password, PDS):")
        for account in seeded.accounts:
            lines.append(
                f"  {account.handle:<28} {account.did}  {account.app_password}  "
                f"{account.password}  {account.pds_url}"
            )
    lines.append("Ctrl-C stops the network.")
    return lines


async def serve_devnet(
    stop: asyncio.Event,
    *,
    seed: int | None = 1,
    size: SizeName | ScenarioSize = "small",
    pds_hosts: int = 1,
    host: str = "127.0.0.1",
    plc_port: int = 0,
    pds_ports: Sequence[int] | None = None,
    jetstream_port: int = 0,
    via: Literal["xrpc", "direct"] = "xrpc",
    out: Callable[[str], None] = print,
) -> None:
    """Runs the devnet until ``stop`` is set: started, seeded (unless ``seed`` is None),
    described through ``out``."""
    async with DevNetwork(
        pds_hosts=pds_hosts,
        host=host,
        plc_port=plc_port,
        pds_ports=pds_ports,
        jetstream_port=jetstream_port,
        # what people write by hand reaches listReposByCollection within seconds
        relay_crawl_interval_s=5.0,
    ) as network:
        seeded = None
        if seed is not None:
            out("seeding the forum...")
            # A stop while seeding ends the run at once rather than after the forum is
            # written and described.
            seeding = asyncio.ensure_future(network.seed(seed, size, via=via))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({seeding, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not seeding.done():
                seeding.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await seeding
                out("stopping the devnet...")
                return
            seeded = seeding.result()
        for line in describe(network, seeded):
            out(line)
        await stop.wait()
        out("stopping the devnet...")


def run_devnet(
    *,
    seed: int | None = 1,
    size: SizeName | ScenarioSize = "small",
    pds_hosts: int = 1,
    host: str = "127.0.0.1",
    plc_port: int = 0,
    pds_ports: Sequence[int] | None = None,
    jetstream_port: int = 0,
    via: Literal["xrpc", "direct"] = "xrpc",
    stream: TextIO | None = None,
) -> None:
    """``atbb devnet``: runs the network in the foreground until SIGINT or SIGTERM.
    ``seed=None`` starts it empty; ``via="direct"`` seeds a large forum in seconds."""
    target = stream if stream is not None else sys.stdout

    def out(line: str) -> None:
        target.write(line + "\n")
        target.flush()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await serve_devnet(
                stop,
                seed=seed,
                size=size,
                pds_hosts=pds_hosts,
                host=host,
                plc_port=plc_port,
                pds_ports=pds_ports,
                jetstream_port=jetstream_port,
                via=via,
                out=out,
            )
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError, RuntimeError):
                    loop.remove_signal_handler(sig)

    asyncio.run(main())

