"""The HTTP server against real sockets: slow clients cut off after the header timeout,
normal and keep-alive requests unharmed, aiohttp's own 400s carrying our headers, and no
response naming aiohttp or its version."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from appview.bootstrap import bootstrap
from appview.settings import Settings
from web import server
from web.app import create_app
from web.metrics import Metrics
from web.security import SECURITY_HEADERS

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 1.0  # seconds: short, so the test is quick; the default is REQUEST_READ_TIMEOUT
FORM_HEAD = (b"POST /theme HTTP/1.1\r\nHost: forum.example\r\n"
             b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\n")


@asynccontextmanager
async def serving(tmp_path: Path, header_timeout: float = TIMEOUT) -> AsyncIterator[
        tuple[int, web.AppRunner]]:
    services = bootstrap(Settings(data_dir=tmp_path / "data",
                                  request_read_timeout=header_timeout))
    try:
        runner, port = await server.start(create_app(services), "127.0.0.1", 0,
                                          header_timeout=header_timeout)
        try:
            yield port, runner
        finally:
            await runner.cleanup()
    finally:
        services.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body: status, headers, body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, head + body


async def _closed_after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        trickle: bytes | None, limit: float) -> float | None:
    """Seconds until the server closes the connection (None: still open at ``limit``),
    sending ``trickle`` every 0.2 s meanwhile when given."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            data = await asyncio.wait_for(reader.read(1024), 0.2)
        except TimeoutError:
            if trickle is not None:
                try:
                    writer.write(trickle)
                    await writer.drain()
                except ConnectionError:
                    return time.monotonic() - start
            continue
        if data == b"":
            return time.monotonic() - start
    return None


async def test_a_client_trickling_its_headers_is_cut_off(tmp_path: Path) -> None:
    async with serving(tmp_path) as (port, _runner):
        reader, writer = await _connect(port)
        writer.write(b"GET /robots.txt HTTP/1.1\r\nHost: forum.example\r\n")
        closed = await _closed_after(reader, writer, b"X-Slow: 1\r\n", limit=TIMEOUT * 5)
        assert closed is not None and TIMEOUT * 0.8 <= closed <= TIMEOUT * 3, closed
        writer.close()


async def test_many_slow_connections_are_all_released(tmp_path: Path) -> None:
    async with serving(tmp_path) as (port, runner):
        clients = [await _connect(port) for _ in range(60)]
        for _, writer in clients:
            writer.write(b"GET / HTTP/1.1\r\n")  # and nothing more
        await asyncio.sleep(0.2)
        assert runner.server is not None and len(runner.server.connections) == 60
        closed = await asyncio.gather(*(_closed_after(r, w, None, TIMEOUT * 5)
                                        for r, w in clients))
        assert all(c is not None for c in closed)
        await asyncio.sleep(0.1)
        assert runner.server.connections == []
        # the server still answers
        reader, writer = await _connect(port)
        writer.write(b"GET /robots.txt HTTP/1.1\r\nHost: forum.example\r\n\r\n")
        assert (await _response(reader))[0] == 200
        writer.close()


async def test_normal_and_keep_alive_requests_are_unharmed(tmp_path: Path) -> None:
    async with serving(tmp_path) as (port, _):
        reader, writer = await _connect(port)
        for _ in range(3):  # one connection, three requests, pauses shorter than the timeout
            writer.write(b"GET /robots.txt HTTP/1.1\r\nHost: forum.example\r\n\r\n")
            status, _headers, raw = await _response(reader)
            assert status == 200 and b"User-agent: *" in raw
            await asyncio.sleep(TIMEOUT / 2)
        # a form on the same connection
        writer.write(FORM_HEAD + b"theme=dark")
        assert (await _response(reader))[0] == 303
        # an idle keep-alive connection is closed after the timeout too
        closed = await _closed_after(reader, writer, None, limit=TIMEOUT * 5)
        assert closed is not None and closed <= TIMEOUT * 3
        writer.close()


async def test_a_client_trickling_a_form_gets_a_408(tmp_path: Path) -> None:
    async with serving(tmp_path) as (port, _):
        reader, writer = await _connect(port)
        writer.write(FORM_HEAD + b"th")
        started = time.monotonic()
        status, _headers, raw = await asyncio.wait_for(_response(reader), TIMEOUT * 5)
        assert status == 408 and b"did not arrive" in raw
        assert TIMEOUT * 0.8 <= time.monotonic() - started <= TIMEOUT * 3
        writer.close()


async def test_the_default_timeout_is_the_setting(tmp_path: Path) -> None:
    settings = Settings()
    assert 10 <= settings.request_read_timeout <= 30
    async with serving(tmp_path, header_timeout=settings.request_read_timeout) as (port, _):
        reader, writer = await _connect(port)
        writer.write(b"GET / HTTP/1.1\r\n")
        assert await _closed_after(reader, writer, b"X-Slow: 1\r\n", limit=TIMEOUT) is None
        writer.close()


@pytest.mark.parametrize("request_bytes", [
    b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: forum.example\r\n\r\n",  # URL too long
    b"F\x01O / HTTP/1.1\r\nHost: forum.example\r\n\r\n",  # not a method
    b"GET / HTTP/1.1 extra\r\nHost: forum.example\r\n\r\n",  # malformed request line
    b"garbage\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: forum.example\r\nBad Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: forum.example\r\nX-Long: " + b"x" * 10_000 + b"\r\n\r\n",
], ids=["url-too-long", "bad-method", "bad-request-line", "garbage", "bad-header",
        "header-too-long"])
async def test_aiohttps_own_400s_carry_our_headers(tmp_path: Path,
                                                    request_bytes: bytes) -> None:
    async with serving(tmp_path) as (port, _):
        reader, writer = await _connect(port)
        writer.write(request_bytes)
        status, headers, raw = await _response(reader)
        writer.close()
    assert status == 400
    assert headers["server"] == server.SERVER_NAME
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value, name
    assert b"aiohttp" not in raw.lower() and b"python" not in raw.lower()
    assert b"bytearray" not in raw and raw.endswith(b"\n")


async def test_no_response_names_aiohttp(tmp_path: Path) -> None:
    async with serving(tmp_path) as (port, _):
        answers = []
        for request_line in (b"GET / HTTP/1.1", b"GET /robots.txt HTTP/1.1",
                             b"GET /static/style.css HTTP/1.1", b"GET /nope HTTP/1.1",
                             b"GET /api/nope HTTP/1.1", b"DELETE /api/forum HTTP/1.1",
                             b"GET /admin HTTP/1.1", b"HEAD / HTTP/1.1"):
            reader, writer = await _connect(port)
            writer.write(request_line + b"\r\nHost: forum.example\r\nConnection: close\r\n\r\n")
            answers.append(await reader.read())
            writer.close()
    for raw in answers:
        head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        assert f"\r\nServer: {server.SERVER_NAME}\r\n" in head, head
        assert "aiohttp" not in raw.decode("latin-1").lower(), head


def test_atbb_serve_runs_this_server(tmp_path: Path) -> None:
    """The command (not only ``server.start``): its header timeout comes from the setting."""
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "PORT": str(port),
           "REQUEST_READ_TIMEOUT": "1", "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "web", "serve", "--no-ingest"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "not serving"
                time.sleep(0.2)
        with probe:
            probe.sendall(b"F\x01O / HTTP/1.1\r\n\r\n")
            answer = probe.recv(65536).decode("latin-1")
        assert answer.split("\r\n")[0].endswith(" 400 Bad Request"), answer
        assert f"\r\nServer: {server.SERVER_NAME}\r\n" in answer, answer
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(b"GET / HTTP/1.1\r\n")
            started = time.monotonic()
            assert slow.recv(1024) == b""  # closed by the server, well before our 5 s
            assert time.monotonic() - started < 4
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


async def test_a_streamed_answer_leaves_our_server_as_it_is_written(tmp_path: Path) -> None:
    """Behind a proxy, a stream (Server-Sent Events) must not wait for its end anywhere:
    our server and every middleware of the app (metrics included) send each chunk as
    the handler writes it, and say so to nginx (X-Accel-Buffering)."""
    services = bootstrap(Settings(data_dir=tmp_path / "data"))
    release = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await release.wait()
        await response.write(b"data: second\n\n")
        await response.write_eof()
        return response

    app = create_app(services, metrics=Metrics(services, None))
    app.router.add_get("/stream-probe", stream)
    runner, port = await server.start(app, "127.0.0.1", 0, header_timeout=TIMEOUT)
    try:
        reader, writer = await _connect(port)
        writer.write(b"GET /stream-probe HTTP/1.1\r\nHost: forum.example\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"x-accel-buffering: no" in head.lower()
        first = await asyncio.wait_for(reader.readuntil(b"first\n\n"), 5)
        assert b"second" not in first  # arrived while the handler still waits
        release.set()
        rest = await asyncio.wait_for(reader.readuntil(b"second\n\n"), 5)
        assert rest.endswith(b"data: second\n\n")
        writer.close()
    finally:
        await runner.cleanup()
        services.close()
