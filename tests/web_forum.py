"""A seeded forum for the reader-page tests: the deterministic scenario (seed 5, small)
appended and projected on the test's backend, optional extra records (the XSS corpus),
and an aiohttp test client reading as a chosen viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from appview.bootstrap import Services, bootstrap
from appview.devnet.jetstream_format import commit_line
from appview.devnet.scenario import Scenario, build_scenario, scenario_to_jetstream_lines
from appview.devnet.scenario_model import iso, record_cid, tid
from appview.devnet.sink import CommitOp
from appview.settings import Settings
from projections.runner import project_to_head
from projections.views import Viewer
from tests.conftest import Backend
from web.app import create_app
from web.pages.common import PAGE_VIEWER

SCENARIO_SEED = 5
MODERATOR = Viewer("did:plc:moderator-for-tests", frozenset({"*"}))


def settings_for(backend: Backend, forum_did: str) -> Settings:
    settings = Settings(data_dir=backend.tmp / "data", forum_did=forum_did)
    if backend.name == "postgresql":
        assert backend.schema is not None
        settings = settings.with_overrides(database_url=backend.url,
                                           database_schema=backend.schema)
    return settings


def scenario() -> Scenario:
    return build_scenario(SCENARIO_SEED, "small", real_dids=False)


@contextmanager
def seeded_services(backend: Backend, extra: Sequence[str] = ()) -> Iterator[Services]:
    """The scenario, then ``extra`` Jetstream lines, appended and projected to the head."""
    story = scenario()
    services = bootstrap(settings_for(backend, story.forum.did))
    try:
        appender = services.appender(batch_size=500)
        lines = list(scenario_to_jetstream_lines(story, start_time_us=story.start_us))
        for number, line in enumerate([*lines, *extra], start=1):
            appender.feed(line, number)
        appender.flush()
        project_to_head(services.event_log, services.projections)
        yield services
    finally:
        services.close()


@asynccontextmanager
async def page_client(
    services: Services, viewer: Viewer | None = None
) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(services)
    if viewer is not None:
        reader: Viewer = viewer

        def resolve(request: web.Request) -> Viewer:
            return reader

        app[PAGE_VIEWER] = resolve
    async with TestClient(TestServer(app)) as client:
        yield client


async def get_text(client: TestClient[Any, Any], path: str, status: int = 200,
                   **headers: str) -> str:
    response = await client.get(path, headers=headers, allow_redirects=False)
    text = await response.text()
    assert response.status == status, (path, response.status, text[:500])
    return text


# --- writing extra records ---------------------------------------------------------------


@dataclass
class Writer:
    """Builds Jetstream commit lines after the scenario's end, one second apart."""

    time_us: int
    counter: int = 0

    def write(self, did: str, collection: str, rkey: str | None, record: dict[str, Any],
              operation: str = "create") -> tuple[str, str, str]:
        """(line, uri, cid) of a create (or update) of ``record``."""
        self.counter += 1
        self.time_us += 1_000_000
        key = rkey or tid(self.time_us << 10 | 7)
        cid = record_cid(record)
        op = CommitOp("update" if operation == "update" else "create", collection, key,
                      record, cid)
        rev = tid((self.time_us << 10) | 7)
        line = commit_line(did, self.time_us, rev, op)
        return line, f"at://{did}/{collection}/{key}", cid

    def now(self) -> str:
        return iso(self.time_us)


# --- inspecting HTML ---------------------------------------------------------------------


class ExecutableMarkup(HTMLParser):
    """Collects what would run in a browser: script elements, on* attributes, and
    javascript:/data:/vbscript: URLs in link-like attributes."""

    URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href",
                                "data", "poster", "background", "srcset"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.findings: list[str] = []
        self.script_sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            src = dict(attrs).get("src")
            if src is None:
                self.findings.append("inline <script>")
            else:
                self.script_sources.append(src)
        if tag in {"iframe", "object", "embed", "style", "base", "form"} and tag != "form":
            self.findings.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.findings.append(f"{tag} {name}={value!r}")
            if name == "style":
                self.findings.append(f"{tag} style={value!r}")
            if name in self.URL_ATTRIBUTES and value is not None:
                compact = "".join(value.split()).lower()
                if compact.startswith(("javascript:", "vbscript:", "data:")):
                    self.findings.append(f"{tag} {name}={value!r}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def executable_markup(html: str) -> tuple[list[str], list[str]]:
    """(findings, external script sources) of a page."""
    parser = ExecutableMarkup()
    parser.feed(html)
    parser.close()
    return parser.findings, parser.script_sources



# --- an extended forum: XSS corpus, a long board, a long topic ---------------------------

XSS_PAYLOADS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "' onmouseover='alert(1)",
    "javascript:alert(1)",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1) )",
    "[click](&#106;avascript:alert(1))",
    "[click](java\tscript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "[x](vbscript:msgbox(1))",
    "[a]: javascript:alert(1)\n\n[ref link][a]",
    "<javascript:alert(1)>",
    '<a href="javascript:alert(1)">raw link</a>',
    '<iframe src="https://evil.example/"></iframe>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<div style="width:expression(alert(1))">x</div>',
    "```html\n<script>alert(1)</script>\n```",
    "<details open ontoggle=alert(1)>",
    '[x](https://ok.example/"onmouseover="alert(1))',
)

# Token values the lexicon lets through (it refuses ; { } < > \\) but our allow-list drops.
CSS_PAYLOADS = {
    "--color-bg": "url(https://evil.example/x)",
    "--color-text": "expression(alert(1))",
    "--color-accent": "javascript:alert(1)",
    "--color-muted": "image-set(\"https://evil.example/x\" 1x)",
    "--radius": "6px",
    "--font-body": "@import 'https://evil.example/x'",
}

EXTRA_TOPICS = 30  # with the scenario's topics, more than one board page
LONG_TOPIC_REPLIES = 60  # more than two topic pages


@dataclass(frozen=True)
class Extended:
    lines: tuple[str, ...]
    board_uri: str
    long_topic_uri: str
    xss_topic_uris: tuple[str, ...]


def _first(story: Scenario, collection: str, scheme: str | None = None) -> tuple[str, str, str]:
    for op in story.operations():
        if op.collection == collection and op.record is not None and (
            scheme is None or op.record.get("colorScheme") == scheme
        ):
            return op.uri, op.cid or "", op.rkey
    raise AssertionError(f"no {collection} in the scenario")


def extended_forum(story: Scenario) -> Extended:
    """Records written after the scenario: a board holding the XSS corpus as topics (titles
    and bodies) and replies, many plain topics, one long topic, and hostile structure
    (forum, category, board names) and theme tokens."""
    end = max(op.at_us for op in story.operations())
    writer = Writer(end + 10_000_000)
    forum_did = story.forum.did
    forum_uri, forum_cid, _ = _first(story, "space.atbb.forum.forum")
    board_uri, board_cid, board_rkey = _first(story, "space.atbb.forum.board")
    category_uri, category_cid, category_rkey = _first(story, "space.atbb.forum.category")
    forum_ref = {"cid": forum_cid, "uri": forum_uri}
    board_ref = {"cid": board_cid, "uri": board_uri}
    lines: list[str] = []
    payload_text = "\n\n".join(XSS_PAYLOADS)

    def post(title: str | None, text: str, root: dict[str, str] | None = None) -> tuple[str, str]:
        record: dict[str, Any] = {"$type": "space.atbb.post", "createdAt": writer.now(),
                                  "forum": forum_ref, "text": text}
        if root is None:
            record["board"] = board_ref
            record["title"] = title
        else:
            record["reply"] = {"parent": root, "root": root}
        line, uri, cid = writer.write(forum_did, "space.atbb.post", None, record)
        lines.append(line)
        return uri, cid

    xss_uris = []
    for payload in XSS_PAYLOADS:
        uri, cid = post(payload[:100], f"{payload}\n\n{payload_text}")
        xss_uris.append(uri)
        last_reply = post(None, f"[@quoted wrote]({uri}):\n\n> {payload}\n\n{payload}",
                          {"cid": cid, "uri": uri})
    for number in range(EXTRA_TOPICS):
        post(f"Plain topic {number}", f"Body of plain topic {number}.")
    long_uri, long_cid = post("A long topic", "The opening post of a long topic.")
    for number in range(LONG_TOPIC_REPLIES):
        post(None, f"Reply number {number + 1} of the long topic.",
             {"cid": long_cid, "uri": long_uri})
    hide = {"$type": "space.atbb.modAction", "action": "space.atbb.modAction.delete",
            "createdAt": writer.now(), "createdBy": forum_did, "reason": "Hidden for tests.",
            "subject": {"post": {"cid": last_reply[1], "uri": last_reply[0]}}}
    line, _uri, _cid = writer.write(forum_did, "space.atbb.modAction", None, hide)
    lines.append(line)
    lock = {"$type": "space.atbb.modAction", "action": "space.atbb.modAction.lock",
            "createdAt": writer.now(), "createdBy": forum_did, "reason": "Locked for tests.",
            "subject": {"post": {"cid": long_cid, "uri": long_uri}}}
    line, _uri, _cid = writer.write(forum_did, "space.atbb.modAction", None, lock)
    lines.append(line)
    hostile = XSS_PAYLOADS[0] + XSS_PAYLOADS[2]
    for collection, rkey, record in (
        ("space.atbb.forum.forum", "self", {
            "$type": "space.atbb.forum.forum", "createdAt": writer.now(),
            "description": hostile, "name": "Forum " + XSS_PAYLOADS[1]}),
        ("space.atbb.forum.category", category_rkey, {
            "$type": "space.atbb.forum.category", "createdAt": writer.now(),
            "description": hostile, "name": "Category " + XSS_PAYLOADS[2], "sortOrder": 0}),
        ("space.atbb.forum.board", board_rkey, {
            "$type": "space.atbb.forum.board", "category": {"cid": category_cid,
                                                             "uri": category_uri},
            "createdAt": writer.now(), "description": hostile,
            "name": "Board " + XSS_PAYLOADS[3], "sortOrder": 0}),
    ):
        line, _uri, _cid = writer.write(forum_did, collection, rkey, record, "update")
        lines.append(line)
    _dark_uri, _dark_cid, dark_rkey = _first(story, "space.atbb.forum.theme", "dark")
    theme = {"$type": "space.atbb.forum.theme", "colorScheme": "dark",
             "createdAt": writer.now(), "cssOverrides": "body{background:url(https://evil.example/)}",
             "name": "Dark " + XSS_PAYLOADS[0], "tokens": dict(CSS_PAYLOADS)}
    line, _uri, _cid = writer.write(forum_did, "space.atbb.forum.theme", dark_rkey, theme,
                                    "update")
    lines.append(line)
    return Extended(tuple(lines), board_uri, long_uri, tuple(xss_uris))
