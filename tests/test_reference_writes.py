"""Members sign in and write against the AT Protocol's own reference PDS and PLC directory
from npm (tests/reference_network.py), not only our development network: in Debian's
Chromium, OAuth through the reference PDS's own authorization server (its sign-in and
consent pages, driven as a member would), then joining the forum, a topic, a reply, a
quote, a reaction, an edit, a delete and signing out; the same with an app password.
The appview finds each member through the reference PLC (DID document → PDS), shows
every write at once (read-your-writes, logged as ``local``), and the PDS's own firehose
(``subscribeRepos``, verified) delivers the same commits as duplicates. The JSON API's
writes (cookie and Bearer) land there too.

Then where the reference PDS answers differently from the devnet: a denied consent, an
OAuth token about to expire or refused (refreshed, the write sent again), a restart (no
DPoP nonce remembered), a revoked grant (refresh refused: "sign in again" in words), an
expired app-password token and a session ended at the PDS, and an edit it refuses
(``InvalidSwap``: in words, the form kept, nothing logged).

One reference PDS for the module (it takes 5-25 s to start); each test has a Forum
account and members of its own on it. Under CI=true a missing reference network or
browser fails; elsewhere they skip only when npm or Chromium is missing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import OctKey

from appview.auth.app_password import refresh_session
from appview.auth.errors import ServerRefused
from appview.auth.identity import NetworkIdentity
from appview.auth.member_auth import SESSION_CACHE_SECONDS
from appview.auth.oauth_client import OAuthClient, TokenSet
from appview.bootstrap import Services, bootstrap
from appview.handles import HandleResolver
from appview.live import LiveIngest
from events import collections as c
from events.model import CommitRejected, RecordEvent
from events.records import StrongRef, reaction_record
from projections.ids import post_id
from tests.admin_support import csrf_from
from tests.conftest import Backend
from tests.reference_network import (
    PdsClient,
    RefAccount,
    ReferencePds,
    ReferenceUnavailable,
    free_port,
)
from tests.test_browser import browser, wait_for_text
from tests.web_forum import settings_for
from tests.writes_support import write_forum
from web import urls
from web.app import create_app


@pytest.fixture(scope="module")
def module_pds(reference_plc: Any, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[ReferencePds]:
    """One reference PDS for every test of this module, on the session's PLC."""
    try:
        pds = ReferencePds(reference_plc.url, tmp_path_factory.mktemp("reference-writes"))
    except ReferenceUnavailable as exc:
        pytest.fail(f"the reference PDS did not start: {exc}")
    try:
        yield pds
    finally:
        pds.stop()


async def shown(page: Any, selector: str, text: str) -> None:
    """``text`` in ``selector`` within 20 s: a write here is a round trip to a Node
    process on a shared machine, slower than the devnet's in-process PDS."""
    await wait_for_text(page, selector, text, tries=400)


def handle(name: str) -> str:
    """A handle of this test's own on the shared PDS (first label of 3+ characters)."""
    return f"{name}-{secrets.token_hex(3)}.test"


@dataclass
class RefForum:
    """An appview whose Forum account lives on the reference PDS, served on a port of its
    own (the loopback OAuth client's redirect), following that PDS's firehose."""

    base: str
    services: Services
    pds: ReferencePds
    client: PdsClient
    owner: RefAccount
    members: dict[str, RefAccount]
    board_rkey: str


@asynccontextmanager
async def reference_forum(backend: Backend, plc_url: str, pds: ReferencePds,
                          names: tuple[str, ...] = ("alice", "bob"), *,
                          live: bool = True) -> AsyncIterator[RefForum]:
    """``live=False``: no ingest from the PDS, so what the read models hold changes only
    through the appview's own writes (a test that edits behind its back needs that)."""
    port = free_port()
    async with aiohttp.ClientSession() as http:
        client = PdsClient(http, pds)
        owner = await client.create_account(handle("oak"))
        members = {name: await client.create_account(handle(name)) for name in names}
        settings = settings_for(backend, owner.did).with_overrides(
            port=port, plc_url=plc_url, handle_resolver_dev_urls=pds.url,
            ingest_source="firehose",
            firehose_url=pds.firehose_url,
            writes_per_minute=1000)
        services = bootstrap(settings)
        runner: web.AppRunner | None = None
        try:
            # the Forum account writes its forum through the appview, as any member does
            agent = await services.member_auth.sign_in_with_password(owner.handle,
                                                                     owner.password)
            session = await services.member_auth.pds_session(agent.session_id)
            assert session is not None
            written = await write_forum(services.writer, session)
            runner = web.AppRunner(create_app(services, live=LiveIngest(
                services, initial_cursor=0) if live else None))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            yield RefForum(f"http://127.0.0.1:{port}", services, pds, client, owner, members,
                           written.board.rkey)
        finally:
            if runner is not None:
                await runner.cleanup()
            await services.member_auth.aclose()
            services.close()


def sqlite(tmp_path: Path) -> Backend:
    return Backend("sqlite", f"sqlite:///{tmp_path / 'events.sqlite3'}", None, tmp_path)


async def authorize_on_the_reference_pds(page: Any, account: RefAccount, base: str, *,
                                         hinted: bool) -> None:
    """The reference PDS's own pages (a script-driven app): the account (filled in and
    fixed when our pushed request's ``login_hint`` named it), its password, then the
    consent; it redirects to our callback."""
    if not hinted:  # its welcome page: create an account, or sign in
        await page.get_by_role("button", name="Sign in", exact=True).click()
    password = page.locator("input[type=password]")
    await password.wait_for()
    username = page.locator("input[name=username]")
    if hinted:
        assert await username.input_value() == account.handle
    else:
        await username.fill(account.handle)
    await password.fill(account.password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.get_by_role("button", name="Authorize", exact=True).click()
    await page.wait_for_url(base + "/**")


async def oauth_sign_in(page: Any, forum: RefForum, account: RefAccount,
                        identifier: str | None = None) -> Any:
    """From our sign-in page through the reference PDS's pages back to ours; the stored
    session. ``identifier``: what the member types (their handle unless given: a DID,
    or the PDS's URL, when the PDS's page asks which account)."""
    await page.goto(forum.base + urls.signin())
    await page.fill("#oauth-identifier", identifier or account.handle)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    # the reference PDS is its own authorization server, at the name its DID documents
    # give it (the appview found it through the reference PLC)
    assert page.url.startswith(forum.pds.public_url + "/oauth/authorize?"), page.url
    await authorize_on_the_reference_pds(page, account, forum.base,
                                         hinted=not (identifier or "").startswith("http"))
    [stored] = forum.services.member_auth.store.for_did(account.did)
    assert stored.kind == "oauth" and stored.pds_url == forum.pds.public_url
    return stored


@dataclass
class Wrote:
    topic: str  # the topic's post id
    deleted_reply: str


async def write_everything(page: Any, forum: RefForum, account: RefAccount) -> Wrote:
    """Join, then a topic, a reply, a quote of it, a reaction, an edit and a delete, as a
    member does it on the pages (with or without JavaScript)."""
    assert "/join" in page.url, page.url
    await page.get_by_role("button", name="Join Writers' forum").click()
    await page.wait_for_url(forum.base + "/")
    await page.locator("main a[href^='/b/']").first.click()
    title = f"Hello from {account.handle}"
    await page.fill("#compose-title", title)
    await page.fill("#compose-text", "Written to the **reference** PDS.")
    await page.get_by_role("button", name="Post the topic").click()
    await shown(page, "main h1", title)
    assert "/t/" in page.url
    topic = page.url.split("/t/", 1)[1].split("#", 1)[0].split("?", 1)[0]
    await page.fill("#compose-text", "A first reply.")
    await page.get_by_role("button", name="Post the reply").click()
    await shown(page, "ol.posts", "A first reply.")
    reply = page.locator("article", has_text="A first reply.")
    reply_id = (await reply.first.get_attribute("id") or "").removeprefix("p-")
    await reply.get_by_role("link", name="Quote").click()
    assert "quote=" in page.url
    box = await page.locator("#compose-text").input_value()
    assert box.startswith(f"[@{account.handle} wrote](at://{account.did}/"), box
    await page.locator("#compose-text").press("Control+End")
    await page.locator("#compose-text").type("Quoting myself.")
    await page.get_by_role("button", name="Post the reply").click()
    await shown(page, "ol.posts", "Quoting myself.")
    assert await page.locator("ol.posts blockquote").count() == 1
    opening = page.locator("article").first
    await opening.get_by_role("button", name="👍").click()
    await shown(page, f"#{await opening.get_attribute('id')} .reactions", "👍 1")
    await opening.get_by_role("link", name="Edit").click()
    await page.fill("#compose-text", "Edited on the reference PDS.")
    await page.get_by_role("button", name="Save the edit").click()
    await shown(page, "ol.posts", "Edited on the reference PDS.")
    assert "edited" in await page.locator("article").first.inner_text()
    await page.locator("article", has_text="A first reply.").first.get_by_role(
        "link", name="Delete").click()
    await page.get_by_role("button", name="Delete it").click()
    await shown(page, "ol.posts", "Deleted by author.")
    return Wrote(topic, reply_id)


async def assert_logged_as_the_pds_holds(forum: RefForum, account: RefAccount) -> None:
    """Every record of the member the log holds has the CID the PDS holds now (deleted:
    gone there too), and the log's newest rev is the repo's."""
    heads = forum.services.event_log.repo_heads(account.did)
    assert heads
    for uri, head in heads.items():
        _did, collection, rkey = uri.removeprefix("at://").split("/")
        held = await forum.client.get_record(account.did, collection, rkey)
        if head.deleted:
            assert held is None, uri
        else:
            assert held is not None and held["cid"] == head.cid, (uri, held, head)
    assert max(head.rev for head in heads.values()) == \
        await forum.client.latest_rev(account.did)


def versions(services: Services, did: str) -> list[RecordEvent]:
    return [logged.event for logged in services.event_log.iter_from()
            if isinstance(logged.event, RecordEvent) and logged.event.did == did]


async def wait_for_the_firehose(forum: RefForum, topic_uri: str, topic_cid: str) -> None:
    """A marker written straight to the PDS after everything else (a reaction by the Forum
    account, which the appview did not write), seen in the log from the firehose: the
    stream is in order, so every earlier commit has been read by then."""
    marker = await forum.client.create_record(forum.owner, c.REACTION, {
        "$type": c.REACTION, "subject": {"uri": topic_uri, "cid": topic_cid},
        "reaction": "like", "createdAt": "2026-12-07T00:00:00.000Z"})
    for _ in range(1200):  # a minute, on a loaded machine
        found = [e for e in versions(forum.services, forum.owner.did)
                 if f"at://{e.did}/{e.collection}/{e.rkey}" == marker["uri"]]
        if found:
            assert found[0].source == "firehose"
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the reference PDS's firehose never delivered the marker")


async def assert_the_firehose_copies_were_duplicates(forum: RefForum,
                                                     account: RefAccount) -> None:
    logged = versions(forum.services, account.did)
    post = next(e for e in logged if e.collection == c.POST and e.operation == "create")
    assert post.cid is not None
    await wait_for_the_firehose(forum, f"at://{account.did}/{post.collection}/{post.rkey}",
                                post.cid)
    again = versions(forum.services, account.did)
    assert again == logged and {e.source for e in again} == {"local"}
    # and they were duplicates once verified (signature, blocks, tree), not refused
    refused = [logged.event for logged in forum.services.event_log.iter_from()
               if isinstance(logged.event, CommitRejected)]
    assert refused == []


async def test_a_member_signs_in_with_oauth_and_writes_in_chromium(
        reference_plc: Any, module_pds: ReferencePds, tmp_path: Path) -> None:
    async with reference_forum(sqlite(tmp_path), reference_plc.url, module_pds) as forum, \
            browser() as chromium:
        alice = forum.members["alice"]
        page = await (await chromium.new_context()).new_page()
        await oauth_sign_in(page, forum, alice)
        await write_everything(page, forum, alice)
        await assert_logged_as_the_pds_holds(forum, alice)
        await assert_the_firehose_copies_were_duplicates(forum, alice)
        [stored] = forum.services.member_auth.store.for_did(alice.did)
        await page.goto(forum.base + urls.signin())
        await page.get_by_role("button", name="Sign out").click()
        assert forum.services.member_auth.store.for_did(alice.did) == []
        async with aiohttp.ClientSession() as http:  # the grant was revoked at the server
            with pytest.raises(ServerRefused):
                await oauth_client(forum, http).refresh(
                    TokenSet.from_json(stored.secret["tokens"]), stored.secret["dpop_jwk"])


async def test_a_member_signs_in_with_an_app_password_without_javascript(
        reference_plc: Any, module_pds: ReferencePds, tmp_path: Path) -> None:
    async with reference_forum(sqlite(tmp_path), reference_plc.url, module_pds) as forum, \
            browser() as chromium:
        bob = forum.members["bob"]
        app_password = await forum.client.create_app_password(bob, "forum")
        context = await chromium.new_context(java_script_enabled=False)
        page = await context.new_page()
        await page.goto(forum.base + urls.signin())
        await page.get_by_text("With an app password", exact=True).click()
        await page.fill("#password-identifier", bob.handle)
        await page.fill("#app-password", app_password)
        await page.get_by_role("button", name="Sign in with the app password").click()
        [stored] = forum.services.member_auth.store.for_did(bob.did)
        assert stored.kind == "password" and stored.pds_url == module_pds.public_url
        await write_everything(page, forum, bob)
        await assert_logged_as_the_pds_holds(forum, bob)
        await assert_the_firehose_copies_were_duplicates(forum, bob)
        [stored] = forum.services.member_auth.store.for_did(bob.did)
        await page.goto(forum.base + urls.signin())
        await page.get_by_role("button", name="Sign out").click()
        assert forum.services.member_auth.store.for_did(bob.did) == []
        async with aiohttp.ClientSession() as http:  # signed out at the PDS too
            with pytest.raises(ServerRefused):
                await refresh_session(http, module_pds.public_url,
                                      stored.secret["refresh_jwt"])
        await context.close()


# -- where the reference PDS answers differently from the devnet --------------------------


class Browserless:
    """The pages as a browser without JavaScript uses them: a cookie jar (for
    ``127.0.0.1``), forms posted with their CSRF token, redirects not followed."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def get(self, path: str) -> str:
        async with self.http.get(self.base + path, allow_redirects=False) as answer:
            text = await answer.text()
            assert answer.status == 200, (path, answer.status, text[:300])
            return text

    async def post(self, path: str, form_page: str, **fields: str) -> tuple[int, str, str]:
        """The status, the Location (or "") and the page."""
        async with self.http.post(self.base + path, allow_redirects=False, data={
                "csrf_token": csrf_from(form_page), **fields}) as answer:
            return answer.status, answer.headers.get("Location", ""), await answer.text()


@asynccontextmanager
async def browserless(base: str) -> AsyncIterator[Browserless]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Browserless(http, base)


def expired(pds: ReferencePds, access_jwt: str) -> str:
    """The reference PDS's own app-password access token for the same account and scope,
    expired a minute ago (signed with its HS256 key, as it signs them)."""
    claims = dict(jwt.decode(access_jwt, OctKey.import_key(pds.jwt_secret.encode())).claims)
    claims["iat"], claims["exp"] = claims["iat"] - 7200, claims["iat"] - 60
    return jwt.encode({"typ": "at+jwt", "alg": "HS256"}, claims,
                      OctKey.import_key(pds.jwt_secret.encode()))


async def password_sign_in(pages: Browserless, forum: RefForum, account: RefAccount,
                           app_password: str) -> Any:
    """Signs in through the form; the stored session (no page has read it yet, so no
    cache holds it: what the test changes in the store is what the next page reads)."""
    status, location, text = await pages.post(
        urls.SIGNIN_PASSWORD, await pages.get(urls.signin()),
        identifier=account.handle, password=app_password)
    assert status == 303, text[:500]
    assert location.startswith(urls.JOIN)
    newest = forum.services.member_auth.store.for_did(account.did)[0]
    assert newest.kind == "password"
    return newest


def with_access_token(forum: RefForum, stored: Any, token: str) -> None:
    forum.services.member_auth.store.update(stored, secret={**stored.secret,
                                                            "access_jwt": token})


async def test_an_expired_app_password_token_is_refreshed_and_a_revoked_session_says_so(
        backend: Backend, reference_plc: Any, module_pds: ReferencePds) -> None:
    """The reference PDS answers an expired access token ``400 ExpiredToken``: the write
    refreshes the session once and goes through. When the session was ended at the PDS
    meanwhile, the refresh is refused: the page says to sign in again (401), keeps what
    was typed, logs nothing and forgets the session."""
    async with reference_forum(backend, reference_plc.url, module_pds, ("carol",),
                               live=False) as forum:
        carol = forum.members["carol"]
        app_password = await forum.client.create_app_password(carol, "forum")
        board = urls.new_topic(forum.board_rkey)
        async with browserless(forum.base) as pages:
            stored = await password_sign_in(pages, forum, carol, app_password)
            with_access_token(forum, stored, expired(module_pds, stored.secret["access_jwt"]))
            status, location, text = await pages.post(
                board, await pages.get(board), title="After a refresh", text="x",
                action="post")
            assert status == 303 and location.startswith("/t/"), text[:500]
            [renewed] = forum.services.member_auth.store.for_did(carol.did)
            assert renewed.secret["refresh_jwt"] != stored.secret["refresh_jwt"]
        async with browserless(forum.base) as pages:
            stored = await password_sign_in(pages, forum, carol, app_password)
            await forum.client.delete_session(stored.secret["refresh_jwt"])
            with_access_token(forum, stored, expired(module_pds, stored.secret["access_jwt"]))
            head = forum.services.event_log.head()
            status, _, text = await pages.post(board, await pages.get(board),
                                               title="Kept title", text="Kept words",
                                               action="post")
            assert status == 401, text[:500]
            assert "Your session has ended: sign in again" in text
            assert 'value="Kept title"' in text and "Kept words" in text
            assert forum.services.event_log.head() == head
            assert [s.key for s in forum.services.member_auth.store.for_did(carol.did)] == \
                [renewed.key]  # the other browser's session is untouched


async def test_an_edit_the_reference_pds_refuses_is_shown_in_words_and_kept(
        backend: Backend, reference_plc: Any, module_pds: ReferencePds) -> None:
    """The post was changed in another client since the forum last saw it: the edit's
    ``swapRecord`` (the CID the read models hold) makes the reference PDS refuse it
    (``InvalidSwap``); the page answers 409 with the PDS's words, keeps the edit, and
    logs nothing."""
    async with reference_forum(backend, reference_plc.url, module_pds, ("dora",),
                               live=False) as forum:
        dora = forum.members["dora"]
        app_password = await forum.client.create_app_password(dora, "forum")
        board = urls.new_topic(forum.board_rkey)
        async with browserless(forum.base) as pages:
            await password_sign_in(pages, forum, dora, app_password)
            status, location, _ = await pages.post(board, await pages.get(board),
                                                   title="First words", text="Version 1",
                                                   action="post")
            assert status == 303
            topic = location.split("/t/", 1)[1].split("#", 1)[0]
            rkey = topic.rsplit("-", 1)[0]  # the post id is <rkey>-<digest of the DID>
            held = await forum.client.get_record(dora.did, c.POST, rkey)
            assert held is not None
            await forum.client.put_record(dora, c.POST, rkey,
                                          {**held["value"], "text": "Changed elsewhere"})
            head = forum.services.event_log.head()
            edit = urls.edit_post(topic)
            status, _, text = await pages.post(edit, await pages.get(edit),
                                               title="First words", text="My edit",
                                               action="post")
            assert status == 409, text[:500]
            assert "This post was changed elsewhere since the forum last saw it" in text
            assert "Record was at" in text  # the reference PDS's own words, after ours
            assert "My edit" in text
            assert forum.services.event_log.head() == head


async def a_denied_sign_in_says_so(page: Any, forum: RefForum, account: RefAccount) -> None:
    """Started from the member's DID (the ``login_hint`` the PDS gets), the member presses
    "Deny access" on the reference PDS's consent page: its redirect back
    (``error=access_denied`` with ``iss``) is shown in words, and nothing stored."""
    await page.goto(forum.base + urls.signin())
    await page.fill("#oauth-identifier", account.did)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.locator("input[type=password]").fill(account.password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    async with page.expect_response(lambda r: urls.OAUTH_CALLBACK in r.url) as callback:
        await page.get_by_role("button", name="Deny access", exact=True).click()
    answer = await callback.value
    assert answer.status == 400
    assert "error=access_denied" in answer.url and "iss=" in answer.url, answer.url
    alert = await page.locator("[role=alert]").inner_text()
    assert "Signing in did not complete" in alert and "refused" in alert, alert
    assert forum.services.member_auth.store.for_did(account.did) == []


def oauth_client(forum: RefForum, http: aiohttp.ClientSession) -> OAuthClient:
    """The appview's OAuth client, as another process of it builds one."""
    settings = forum.services.settings
    return OAuthClient(forum.services.member_auth.client, http, NetworkIdentity(
        settings, http, HandleResolver(settings, http)), forum.services.clock)


async def a_restarted_appview_writes_with_the_stored_session(
        forum: RefForum, account: RefAccount, topic_page: str) -> None:
    """A new process on the same store (a restart): the session is read back and
    unsealed; the process remembers no DPoP nonce, so its first proof carries none and
    the reference PDS answers ``401 WWW-Authenticate: DPoP error="use_dpop_nonce"``; the
    call is sent once more with the nonce and the write lands."""
    restarted = bootstrap(forum.services.settings)
    try:
        session = await restarted.member_auth.pds_session_for_did(account.did)
        assert session is not None and session.kind == "oauth"
        rkey = topic_page.rsplit("/t/", 1)[1].rsplit("-", 1)[0]
        topic = await session.get_record(c.POST, rkey)
        written = await restarted.writer.create(session, c.REACTION, reaction_record(
            StrongRef(topic["uri"], topic["cid"]), "🎉", created_at=now()))
        held = await forum.client.get_record(account.did, c.REACTION, written.rkey)
        assert held is not None and held["cid"] == written.cid
    finally:
        await restarted.member_auth.aclose()
        restarted.close()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def with_tokens(forum: RefForum, did: str, **changes: Any) -> Any:
    """The member's stored OAuth session with ``changes`` made to its tokens."""
    [stored] = forum.services.member_auth.store.for_did(did)
    tokens = {**stored.secret["tokens"], **changes}
    return forum.services.member_auth.store.update(stored, secret={**stored.secret,
                                                                   "tokens": tokens})


async def past_the_session_cache() -> None:
    """What the store holds is what the next page reads once the process's few seconds
    of session cache have passed."""
    await asyncio.sleep(SESSION_CACHE_SECONDS + 0.2)


async def test_oauth_tokens_are_refreshed_by_the_reference_pds_and_a_revoked_grant_says_so(
        reference_plc: Any, module_pds: ReferencePds, tmp_path: Path) -> None:
    """An access token about to expire is refreshed before the write (the refresh grant,
    DPoP-bound, at the reference authorization server); one the PDS refuses
    (``401 DPoP error="invalid_token"``) is refreshed and the write sent once more; a grant
    revoked at the server ends the session: the page says to sign in again (401), keeps
    what was typed, logs nothing."""
    async with reference_forum(sqlite(tmp_path), reference_plc.url, module_pds, ("erin",),
                               live=False) as forum, browser() as chromium:
        erin = forum.members["erin"]
        signing_in = await chromium.new_context()
        await a_denied_sign_in_says_so(await signing_in.new_page(), forum, erin)
        # by the PDS's address: the reference PDS's page asks which account
        await oauth_sign_in(await signing_in.new_page(), forum, erin,
                            identifier=module_pds.public_url)
        # the rest without JavaScript: whole pages answer, errors included
        context = await chromium.new_context(java_script_enabled=False)
        await context.add_cookies(await signing_in.cookies())
        page = await context.new_page()
        before = with_tokens(forum, erin.did, expires_at=time.time() - 1)
        await past_the_session_cache()
        await page.goto(forum.base + urls.new_topic(forum.board_rkey))
        await page.fill("#compose-title", "After the refresh")
        await page.fill("#compose-text", "Refreshed ahead of expiry.")
        await page.get_by_role("button", name="Post the topic").click()
        assert "/t/" in page.url
        topic_page = page.url.split("#", 1)[0]
        [renewed] = forum.services.member_auth.store.for_did(erin.did)
        assert renewed.secret["tokens"]["refresh_token"] != \
            before.secret["tokens"]["refresh_token"]
        assert renewed.secret["tokens"]["expires_at"] > time.time()
        access = renewed.secret["tokens"]["access_token"]
        with_tokens(forum, erin.did, access_token=access[:-6] + (
            "AAAAAA" if not access.endswith("AAAAAA") else "BBBBBB"))
        await past_the_session_cache()
        await page.goto(topic_page)
        await page.fill("#compose-text", "After a refused token.")
        await page.get_by_role("button", name="Post the reply").click()
        assert "After a refused token." in await page.locator("ol.posts").inner_text()
        [again] = forum.services.member_auth.store.for_did(erin.did)
        assert again.version > renewed.version
        await a_restarted_appview_writes_with_the_stored_session(forum, erin, topic_page)
        async with aiohttp.ClientSession() as http:  # as a sign-out elsewhere does
            await oauth_client(forum, http).revoke(TokenSet.from_json(again.secret["tokens"]),
                               again.secret["dpop_jwk"])
        head = forum.services.event_log.head()
        await page.goto(topic_page)
        await page.fill("#compose-text", "Kept after the revocation.")
        await page.get_by_role("button", name="Post the reply").click()
        assert "Your session has ended: sign in again" in await page.content()
        assert await page.locator("#compose-text").input_value() == \
            "Kept after the revocation."
        assert forum.services.event_log.head() == head
        assert forum.services.member_auth.store.for_did(erin.did) == []


async def test_the_json_api_writes_to_the_reference_pds(
        backend: Backend, reference_plc: Any, module_pds: ReferencePds) -> None:
    """The original's ``POST /api/topics`` and ``POST /api/posts``, and our edit,
    reaction and delete, with a cookie session (and its CSRF header), then with a Bearer
    token acting as the member's DID through the session the appview holds for it: each
    answer's CID is the one the reference PDS stored."""
    async with reference_forum(backend, reference_plc.url, module_pds, ("fred",),
                               live=False) as forum:
        fred = forum.members["fred"]
        app_password = await forum.client.create_app_password(fred, "forum")
        board_uri = f"at://{forum.owner.did}/{c.BOARD}/{forum.board_rkey}"
        async with browserless(forum.base) as pages:
            await password_sign_in(pages, forum, fred, app_password)
            headers = {"X-CSRF-Token": csrf_from(await pages.get(urls.signin()))}

            async def call(method: str, path: str, body: Any = None,
                           status: int = 200) -> dict[str, Any]:
                async with pages.http.request(method, forum.base + path, json=body,
                                              headers=headers) as answer:
                    data: dict[str, Any] = await answer.json()
                    assert answer.status == status, data
                    return data

            async def held(uri: str) -> str | None:
                _did, collection, rkey = uri.removeprefix("at://").split("/")
                record = await forum.client.get_record(fred.did, collection, rkey)
                return None if record is None else str(record["cid"])

            topic = await call("POST", urls.api_topics(), {
                "title": "From the API", "text": "Scripted.", "boardUri": board_uri}, 201)
            assert await held(topic["uri"]) == topic["cid"]
            pid = post_id(topic["uri"])
            reply = await call("POST", urls.api_posts(), {
                "text": "A reply", "rootPostId": pid, "parentPostId": pid}, 201)
            assert await held(reply["uri"]) == reply["cid"]
            # a large text our lexicon accepts (3,000 graphemes, 75,000 bytes; about
            # 198 KB as JSON escaped to ASCII): past the PDS's usual 150 KB request body
            # limit, within the 1 MB its record writes allow
            family = "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"
            large = await call("POST", urls.api_posts(), {
                "text": family * 3000, "rootPostId": pid, "parentPostId": pid}, 201)
            assert await held(large["uri"]) == large["cid"]
            edited = await call("PUT", urls.api_post(pid), {"text": "Edited", "title": "T2"})
            assert edited["cid"] != topic["cid"] and await held(topic["uri"]) == edited["cid"]
            reaction = await call("POST", urls.api_post_reactions(pid), {"reaction": "👍"},
                                  201)
            assert await held(reaction["uri"]) is not None
            assert await call("DELETE", urls.api_post_reactions(pid, "👍")) == {"removed": 1}
            assert (await call("DELETE", urls.api_post(post_id(reply["uri"]))))["deleted"]
            assert await held(reply["uri"]) is None
        _, token = forum.services.admin_tokens.issue(fred.did, "fred's script")
        async with aiohttp.ClientSession() as http, http.post(
                forum.base + urls.api_topics(), headers={"Authorization": f"Bearer {token}"},
                json={"title": "By a script", "text": "x", "boardUri": board_uri}) as answer:
            scripted = await answer.json()
            assert answer.status == 201, scripted
        assert await held(scripted["uri"]) == scripted["cid"]
        await assert_logged_as_the_pds_holds(forum, fred)
