"""A devnet PDS host: accounts with signing keys and repositories, served over the XRPC
methods the SDK's ``AsyncClient`` calls, with the reference PDS's error names."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, get_args

from aiohttp import web

from appview.devnet.clock import DevClock
from appview.devnet.firehose import FirehoseServer
from appview.devnet.keys import SigningKey
from appview.devnet.oauth_server import OAuthOptions, OAuthServer
from appview.devnet.plc import PlcDirectory, did_document, genesis_did
from appview.devnet.ratelimit import RateLimiter
from appview.devnet.repo import Repo, RepoError, StoredRecord
from appview.devnet.sink import FirehoseSink
from appview.devnet.tid import TidClock
from appview.devnet.tokens import (
    ACCESS_SCOPE,
    APP_PASS_SCOPE,
    REFRESH_SCOPE,
    Claims,
    TokenError,
    TokenIssuer,
)
from appview.repos.cbor import Cid

AccountStatus: TypeAlias = Literal["active", "takendown", "suspended", "deactivated", "deleted"]
ACCOUNT_STATUSES: frozenset[str] = frozenset(get_args(AccountStatus))

_HANDLE = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)
_APP_PASSWORD_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_STATE_ERRORS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "takendown": ("RepoTakendown", "Repo has been takendown"),
        "suspended": ("RepoSuspended", "Repo has been suspended"),
        "deactivated": ("RepoDeactivated", "Repo has been deactivated"),
        "deleted": ("RepoNotFound", "Could not find repo"),
    }
)
_WRITE_SCOPES = frozenset({ACCESS_SCOPE, APP_PASS_SCOPE})

Handler: TypeAlias = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Account:
    did: str
    handle: str
    password: str
    app_password: str
    key: SigningKey


class XrpcError(Exception):
    """An XRPC error answer: HTTP status and ``{error, message}``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def _app_password(secret: bytes) -> str:
    digest = hashlib.sha256(b"atbb-devnet-app-password\x00" + secret).digest()
    chars = "".join(_APP_PASSWORD_ALPHABET[b % 32] for b in digest[:16])
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


class PdsHost:
    """One PDS host (one aiohttp app). Writes made through its repos, over XRPC or from
    Python, are all reported to the sink."""

    def __init__(
        self,
        name: str,
        *,
        clock: DevClock,
        sink: FirehoseSink,
        plc: PlcDirectory,
        rate_limit: int | None = None,
        rate_window_s: float = 300.0,
        firehose_clock: DevClock | None = None,
        oauth: OAuthOptions | None = None,
    ) -> None:
        self.name = name
        self.service_did = f"did:web:{name}"
        self._clock = clock
        self._sink = sink
        self._plc = plc
        # A fixed clock id per host name keeps seeded rkeys and revs reproducible.
        self._tids = TidClock(clock, clock_id=zlib.crc32(name.encode()) % 1024)
        self._tokens = TokenIssuer(self.service_did)
        self._limiter = (
            RateLimiter(rate_limit, rate_window_s, clock.now_us) if rate_limit is not None else None
        )
        self._url: str | None = None
        # False: getRepo answers 501 like a PDS that does not serve it (a reader must fall
        # back to listRecords)
        self.serve_get_repo = True
        # False: describeRepo fails as the reference PDS's does on loopback (it cannot
        # resolve DIDs through a PLC directory named by IP address)
        self.serve_describe_repo = True
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        self._by_handle: dict[str, str] = {}
        self._status: dict[str, AccountStatus] = {}
        self._repos: dict[str, Repo] = {}
        # each account's blobs by CID: (mimeType as uploaded, bytes); served as uploaded,
        # like the reference PDS, so a blob may claim to be what it is not
        self._blobs: dict[str, dict[str, tuple[str, bytes]]] = {}
        # the host's com.atproto.sync.subscribeRepos; its frames' times come from
        # ``firehose_clock`` (the network's real-time clock while seeding freezes ours)
        self.firehose = FirehoseServer(firehose_clock or clock)
        self.oauth = OAuthServer(self, oauth)

    # --- host and accounts ------------------------------------------------------------

    @property
    def url(self) -> str:
        """The served URL, or a placeholder that resolves nowhere until ``set_url``."""
        return self._url if self._url is not None else f"http://{self.name}.invalid"

    def set_url(self, url: str) -> None:
        with self._lock:
            self._url = url.rstrip("/")
            for did in self._accounts:
                self._plc.update_pds(did, self._url)

    def create_account(self, handle: str, password: str, *, seed: bytes | None = None) -> Account:
        """A new active account; the same seed (and handle) gives the same DID and key."""
        if not _HANDLE.match(handle) or len(handle) > 253:
            raise ValueError(f"not a valid handle: {handle!r}")
        key = SigningKey.from_seed(seed) if seed is not None else SigningKey.generate()
        secret = seed if seed is not None else secrets.token_bytes(32)
        did = genesis_did(key, handle.lower(), self.name)
        account = Account(did, handle.lower(), password, _app_password(secret), key)
        with self._lock:
            if account.handle in self._by_handle:
                raise ValueError(f"handle {handle!r} is already taken on {self.name}")
            if did in self._accounts:
                raise ValueError(f"{did} already exists on {self.name}")
            self._accounts[did] = account
            self._by_handle[account.handle] = did
            self._status[did] = "active"
            self._repos[did] = Repo(did, key, self._tids, self._sink, self.firehose)
            self._plc.register(did, account.handle, key.multibase, self.url)
        self._sink.identity(did, account.handle)
        self._sink.account(did, True, None)
        self.firehose.identity(did, account.handle)
        self.firehose.account(did, True, None)
        return account

    def account(self, did_or_handle: str) -> Account | None:
        with self._lock:
            did = self._by_handle.get(did_or_handle.lower(), did_or_handle)
            return self._accounts.get(did)

    def accounts(self) -> list[Account]:
        with self._lock:
            return list(self._accounts.values())

    def status(self, did: str) -> AccountStatus:
        with self._lock:
            if did not in self._status:
                raise ValueError(f"no account {did} on {self.name}")
            return self._status[did]

    def set_account_status(self, did: str, status: AccountStatus) -> None:
        if status not in ACCOUNT_STATUSES:
            raise ValueError(f"unknown account status {status!r}")
        with self._lock:
            if did not in self._accounts:
                raise ValueError(f"no account {did} on {self.name}")
            self._status[did] = status
        active = status == "active"
        self._sink.account(did, active, None if active else status)
        self.firehose.account(did, active, None if active else status)

    def update_handle(self, did: str, handle: str) -> None:
        if not _HANDLE.match(handle):
            raise ValueError(f"not a valid handle: {handle!r}")
        handle = handle.lower()
        with self._lock:
            account = self._accounts.get(did)
            if account is None:
                raise ValueError(f"no account {did} on {self.name}")
            owner = self._by_handle.get(handle)
            if owner is not None and owner != did:
                raise ValueError(f"handle {handle!r} is already taken on {self.name}")
            del self._by_handle[account.handle]
            self._by_handle[handle] = did
            self._accounts[did] = Account(
                did, handle, account.password, account.app_password, account.key
            )
            self._plc.update_handle(did, handle)
        self._sink.identity(did, handle)
        self.firehose.identity(did, handle)

    def upload_blob(self, did: str, data: bytes, mime_type: str) -> dict[str, Any]:
        """Keep ``data`` as one of ``did``'s blobs; returns the blob ref a record names
        it by (``{"$type": "blob", "ref": {"$link": CID}, "mimeType", "size"}``)."""
        cid = str(Cid.for_raw(data))
        with self._lock:
            if did not in self._accounts:
                raise ValueError(f"no account {did} on {self.name}")
            self._blobs.setdefault(did, {})[cid] = (mime_type, data)
        return {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime_type,
                "size": len(data)}

    def repo(self, did: str) -> Repo:
        with self._lock:
            repo = self._repos.get(did)
        if repo is None:
            raise ValueError(f"no account {did} on {self.name}")
        return repo

    # --- the XRPC app ------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        routes: list[tuple[str, str, Handler]] = [
            ("POST", "com.atproto.server.createSession", self._create_session),
            ("POST", "com.atproto.server.refreshSession", self._refresh_session),
            ("GET", "com.atproto.server.getSession", self._get_session),
            ("GET", "com.atproto.server.describeServer", self._describe_server),
            ("POST", "com.atproto.repo.createRecord", self._create_record),
            ("POST", "com.atproto.repo.putRecord", self._put_record),
            ("POST", "com.atproto.repo.deleteRecord", self._delete_record),
            ("GET", "com.atproto.repo.getRecord", self._get_record),
            ("GET", "com.atproto.repo.listRecords", self._list_records),
            ("GET", "com.atproto.repo.describeRepo", self._describe_repo),
            ("GET", "com.atproto.sync.getRepo", self._get_repo),
            ("GET", "com.atproto.sync.getLatestCommit", self._get_latest_commit),
            ("GET", "com.atproto.sync.getBlob", self._get_blob),
            ("POST", "com.atproto.repo.uploadBlob", self._upload_blob),
            ("GET", "com.atproto.sync.getRepoStatus", self._get_repo_status),
            ("GET", "com.atproto.sync.listRepos", self._list_repos),
            ("GET", "com.atproto.identity.resolveHandle", self._resolve_handle),
        ]
        for method, nsid, handler in routes:
            app.router.add_route(method, f"/xrpc/{nsid}", handler)
        self.firehose.add_routes(app)
        app.router.add_route("*", "/xrpc/{nsid}", self._not_implemented)
        self.oauth.mount(app)
        app.router.add_get("/.well-known/atproto-did", self._well_known_did)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        limiter = self._limiter
        decision = limiter.hit(request.remote or "unknown") if limiter is not None else None
        if decision is not None and not decision.allowed:
            response: web.StreamResponse = _error_response(
                429, "RateLimitExceeded", "Rate Limit Exceeded"
            )
        else:
            try:
                response = await handler(request)
            except XrpcError as exc:
                response = _error_response(exc.status, exc.error, exc.message)
        if decision is not None and not response.prepared:  # a websocket has sent its own
            response.headers.update(decision.headers())
        return response

    async def _not_implemented(self, request: web.Request) -> web.Response:
        nsid = request.match_info["nsid"]
        raise XrpcError(501, "MethodNotImplemented", f"Method Not Implemented: {nsid}")

    # --- server ---

    async def _create_session(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        identifier, password = _str(body, "identifier"), _str(body, "password")
        account = self.account(identifier)
        if account is None or password not in (account.password, account.app_password):
            raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
        status = self.status(account.did)
        if status == "deleted":
            raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
        if status in ("takendown", "suspended"):
            raise XrpcError(401, "AccountTakedown", "Account has been taken down")
        return web.json_response(
            {
                **self._session_body(account, status),
                "accessJwt": self._tokens.access(
                    account.did, app_password=password == account.app_password
                ),
                "refreshJwt": self._tokens.refresh(account.did),
            }
        )

    async def _refresh_session(self, request: web.Request) -> web.Response:
        claims = self._claims(request, frozenset({REFRESH_SCOPE}))
        account = self._account_for_session(claims)
        return web.json_response(
            {
                **self._session_body(account, self.status(account.did)),
                "accessJwt": self._tokens.access(account.did),
                "refreshJwt": self._tokens.refresh(account.did),
            }
        )

    async def _get_session(self, request: web.Request) -> web.Response:
        account = self._account_for_session(self._claims(request, _WRITE_SCOPES))
        return web.json_response(self._session_body(account, self.status(account.did)))

    def _session_body(self, account: Account, status: AccountStatus) -> dict[str, Any]:
        body: dict[str, Any] = {
            "did": account.did,
            "handle": account.handle,
            "didDoc": self._did_doc(account.did),
            "active": status == "active",
        }
        if status != "active":
            body["status"] = status
        return body

    async def _describe_server(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "did": self.service_did,
                "availableUserDomains": [".test"],
                "inviteCodeRequired": False,
                "phoneVerificationRequired": False,
                "links": {},
                "contact": {},
            }
        )

    # --- repo writes ---

    async def _create_record(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        repo = self._writable_repo(request, _str(body, "repo"))
        collection, record = _str(body, "collection"), _record(body)
        rkey = _opt_str(body, "rkey")
        _opt_bool(body, "validate")
        self._check_swap_commit(repo, body)
        try:
            write = repo.create(collection, record, rkey=rkey)
        except RepoError as exc:
            raise XrpcError(400, "InvalidRequest", str(exc)) from exc
        return web.json_response(self._write_body(repo, write.uri, write.op.cid))

    async def _put_record(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        repo = self._writable_repo(request, _str(body, "repo"))
        collection, rkey, record = _str(body, "collection"), _str(body, "rkey"), _record(body)
        _opt_bool(body, "validate")
        self._check_swap_commit(repo, body)
        self._check_swap_record(repo, collection, rkey, body)
        try:
            write = repo.put(collection, rkey, record)
        except RepoError as exc:
            raise XrpcError(400, "InvalidRequest", str(exc)) from exc
        return web.json_response(self._write_body(repo, write.uri, write.op.cid))

    async def _delete_record(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        repo = self._writable_repo(request, _str(body, "repo"))
        collection, rkey = _str(body, "collection"), _str(body, "rkey")
        self._check_swap_commit(repo, body)
        self._check_swap_record(repo, collection, rkey, body)
        if repo.delete(collection, rkey) is None:
            return web.json_response({})
        commit = repo.commit()
        return web.json_response({"commit": {"cid": str(commit.cid), "rev": commit.rev}})

    def _write_body(self, repo: Repo, uri: str, cid: str | None) -> dict[str, Any]:
        commit = repo.commit()
        return {
            "uri": uri,
            "cid": cid,
            "commit": {"cid": str(commit.cid), "rev": commit.rev},
            "validationStatus": "unknown",
        }

    def _writable_repo(self, request: web.Request, repo_id: str) -> Repo:
        claims = self._claims(request, _WRITE_SCOPES)
        account = self._known_account(repo_id)
        if claims.sub != account.did:
            raise XrpcError(401, "AuthenticationRequired", "Not authorized to write to this repo")
        self._require_active(account.did)
        return self.repo(account.did)

    def _check_swap_commit(self, repo: Repo, body: dict[str, Any]) -> None:
        swap = _opt_str(body, "swapCommit")
        if swap is not None and swap != str(repo.commit().cid):
            raise XrpcError(400, "InvalidSwap", f"Commit was at {repo.commit().cid}")

    def _check_swap_record(
        self, repo: Repo, collection: str, rkey: str, body: dict[str, Any]
    ) -> None:
        if "swapRecord" not in body:
            return
        swap = _opt_str(body, "swapRecord")
        current = repo.get(collection, rkey)
        current_cid = current.cid if current is not None else None
        if swap != current_cid:
            raise XrpcError(400, "InvalidSwap", f"Record was at {current_cid}")

    # --- repo reads ---

    async def _get_record(self, request: web.Request) -> web.Response:
        query = request.query
        account = self._readable_account(_param(query, "repo"))
        collection, rkey = _param(query, "collection"), _param(query, "rkey")
        record = self.repo(account.did).get(collection, rkey)
        uri = f"at://{account.did}/{collection}/{rkey}"
        wanted_cid = query.get("cid")
        if record is None or (wanted_cid is not None and wanted_cid != record.cid):
            raise XrpcError(400, "RecordNotFound", f"Could not locate record: {uri}")
        return web.json_response(_record_view(account.did, record))

    async def _list_records(self, request: web.Request) -> web.Response:
        query = request.query
        account = self._readable_account(_param(query, "repo"))
        collection = _param(query, "collection")
        limit = _int_param(query, "limit", default=50, low=1, high=100)
        reverse = _bool_param(query, "reverse")
        cursor = query.get("cursor") or None
        records = self.repo(account.did).list_records(
            collection, limit=limit, cursor=cursor, reverse=reverse
        )
        body: dict[str, Any] = {"records": [_record_view(account.did, r) for r in records]}
        # Like the reference PDS: a cursor on every non-empty page, the last one included.
        if records:
            body["cursor"] = records[-1].rkey
        return web.json_response(body)

    async def _describe_repo(self, request: web.Request) -> web.Response:
        account = self._readable_account(_param(request.query, "repo"))
        if not self.serve_describe_repo:
            raise XrpcError(400, "InvalidRequest",
                            "Could not resolve DID: Error: Invalid hostname")
        return web.json_response(
            {
                "handle": account.handle,
                "did": account.did,
                "didDoc": self._did_doc(account.did),
                "collections": self.repo(account.did).collections(),
                "handleIsCorrect": True,
            }
        )

    # --- sync ---

    async def _get_repo(self, request: web.Request) -> web.Response:
        if not self.serve_get_repo:
            raise XrpcError(501, "MethodNotImplemented",
                            "Method Not Implemented: com.atproto.sync.getRepo")
        account = self._readable_account(_param(request.query, "did"), dids_only=True)
        return web.Response(
            body=self.repo(account.did).export_car(), content_type="application/vnd.ipld.car"
        )

    async def _get_blob(self, request: web.Request) -> web.Response:
        account = self._readable_account(_param(request.query, "did"), dids_only=True)
        cid = _param(request.query, "cid")
        with self._lock:
            blob = self._blobs.get(account.did, {}).get(cid)
        if blob is None:
            raise XrpcError(400, "BlobNotFound", "Blob not found")
        mime_type, data = blob
        # the reference PDS's headers: the uploaded type, no sniffing, nothing runs
        return web.Response(body=data, headers={
            "Content-Type": mime_type, "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox"})

    async def _upload_blob(self, request: web.Request) -> web.Response:
        account = self._account_for_session(self._claims(request, _WRITE_SCOPES))
        data = await request.read()
        mime_type = request.headers.get("Content-Type", "application/octet-stream")
        return web.json_response({"blob": self.upload_blob(account.did, data, mime_type)})

    async def _get_latest_commit(self, request: web.Request) -> web.Response:
        account = self._readable_account(_param(request.query, "did"), dids_only=True)
        commit = self.repo(account.did).commit()
        return web.json_response({"cid": str(commit.cid), "rev": commit.rev})

    async def _get_repo_status(self, request: web.Request) -> web.Response:
        account = self._known_account(_param(request.query, "did"), dids_only=True)
        status = self.status(account.did)
        if status == "deleted":
            raise XrpcError(400, "RepoNotFound", f"Could not find repo for DID: {account.did}")
        body: dict[str, Any] = {"did": account.did, "active": status == "active"}
        if status == "active":
            body["rev"] = self.repo(account.did).rev
        else:
            body["status"] = status
        return web.json_response(body)

    async def _list_repos(self, request: web.Request) -> web.Response:
        limit = _int_param(request.query, "limit", default=500, low=1, high=1000)
        cursor = request.query.get("cursor") or ""
        with self._lock:
            listed = sorted(
                did for did in self._accounts if self._status[did] != "deleted" and did > cursor
            )[:limit]
        repos = []
        for did in listed:
            commit = self.repo(did).commit()
            status = self.status(did)
            entry: dict[str, Any] = {
                "did": did,
                "head": str(commit.cid),
                "rev": commit.rev,
                "active": status == "active",
            }
            if status != "active":
                entry["status"] = status
            repos.append(entry)
        body: dict[str, Any] = {"repos": repos}
        if len(listed) == limit:
            body["cursor"] = listed[-1]
        return web.json_response(body)

    async def _resolve_handle(self, request: web.Request) -> web.Response:
        handle = _param(request.query, "handle").lower()
        with self._lock:
            did = self._by_handle.get(handle)
            if did is not None and self._status[did] == "deleted":
                did = None
        if did is None:
            raise XrpcError(400, "InvalidRequest", "Unable to resolve handle")
        return web.json_response({"did": did})

    async def _well_known_did(self, request: web.Request) -> web.Response:
        # The handle is the host asked for, as on the reference PDS: on loopback a client
        # connects to the PDS's address and names the handle in the Host header.
        handle = request.host.split(":", 1)[0]
        with self._lock:
            did = self._by_handle.get(handle.lower())
            if did is not None and self._status[did] == "deleted":
                did = None
        if did is None:
            return web.Response(status=404, text="User not found")
        return web.Response(text=did, content_type="text/plain")

    # --- helpers ---

    def _did_doc(self, did: str) -> dict[str, Any]:
        entry = self._plc.entry(did)
        if entry is None:
            raise XrpcError(500, "InternalServerError", f"{did} is missing from the PLC")
        return did_document(entry)

    def _claims(self, request: web.Request, scopes: frozenset[str]) -> Claims:
        header = request.headers.get("Authorization", "")
        if header.startswith("DPoP ") and self.oauth.options.enabled:
            return self.oauth.verify_access(request, scopes)
        if not header.startswith("Bearer "):
            raise XrpcError(401, "AuthenticationRequired", "Authentication Required")
        try:
            return self._tokens.verify(header.removeprefix("Bearer ").strip(), scopes=scopes)
        except TokenError as exc:
            raise XrpcError(
                400 if exc.error == "ExpiredToken" else 401, exc.error, str(exc)
            ) from exc

    def _account_for_session(self, claims: Claims) -> Account:
        account = self.account(claims.sub)
        if account is None or self.status(account.did) == "deleted":
            raise XrpcError(401, "AuthenticationRequired", "Account not found")
        if self.status(account.did) in ("takendown", "suspended"):
            raise XrpcError(401, "AccountTakedown", "Account has been taken down")
        return account

    def _known_account(self, repo_id: str, *, dids_only: bool = False) -> Account:
        account = None if dids_only and not repo_id.startswith("did:") else self.account(repo_id)
        if account is None:
            raise XrpcError(400, "RepoNotFound", f"Could not find repo: {repo_id}")
        return account

    def _readable_account(self, repo_id: str, *, dids_only: bool = False) -> Account:
        account = self._known_account(repo_id, dids_only=dids_only)
        self._require_active(account.did)
        return account

    def _require_active(self, did: str) -> None:
        status = self.status(did)
        if status != "active":
            error, message = _STATE_ERRORS[status]
            raise XrpcError(400, error, f"{message}: {did}")


# --- request parsing: every refusal is a 400 InvalidRequest with the reason -----------------


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise XrpcError(400, "InvalidRequest", f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise XrpcError(400, "InvalidRequest", "request body must be a JSON object")
    return body


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise XrpcError(400, "InvalidRequest", f"Input must have the property {name!r}")
    return value


def _opt_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise XrpcError(400, "InvalidRequest", f"Input/{name} must be a string")
    return value


def _opt_bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise XrpcError(400, "InvalidRequest", f"Input/{name} must be a boolean")
    return value


def _record(body: dict[str, Any]) -> dict[str, Any]:
    record = body.get("record")
    if not isinstance(record, dict):
        raise XrpcError(400, "InvalidRequest", "Input/record must be an object")
    return record


def _param(query: Any, name: str) -> str:
    value = query.get(name)
    if not isinstance(value, str) or not value:
        raise XrpcError(400, "InvalidRequest", f"Error: Params must have the property {name!r}")
    return value


def _int_param(query: Any, name: str, *, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise XrpcError(400, "InvalidRequest", f"Error: {name} must be an integer") from exc
    if not low <= value <= high:
        raise XrpcError(
            400, "InvalidRequest", f"Error: {name} must be between {low} and {high}, got {value}"
        )
    return value


def _bool_param(query: Any, name: str) -> bool:
    raw = query.get(name)
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise XrpcError(400, "InvalidRequest", f"Error: {name} must be a boolean")


def _record_view(did: str, record: StoredRecord) -> dict[str, Any]:
    return {
        "uri": f"at://{did}/{record.collection}/{record.rkey}",
        "cid": record.cid,
        "value": record.value,
    }


def _error_response(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)
