"""Every URL the application serves or links to, in one place: the route patterns the
router registers, and the builders that fill them in (quoting every value)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from projections.post_html import POST_PERMALINK

INDEX = "/"
API_HEALTH = "/api/health"
API_FORUM = "/api/forum"
API_CATEGORIES = "/api/categories"
API_CATEGORY = "/api/categories/{id}"
API_CATEGORY_BOARDS = "/api/categories/{id}/boards"
API_BOARD = "/api/boards/{id}"
API_BOARD_TOPICS = "/api/boards/{id}/topics"
API_TOPIC = "/api/topics/{id}"
API_THEMES = "/api/themes"
API_THEME = "/api/themes/{rkey}"
API_THEME_POLICY = "/api/theme-policy"


def _q(value: str) -> str:
    return quote(value, safe="")


def _page(offset: int | None, limit: int | None) -> str:
    params = {k: str(v) for k, v in (("offset", offset), ("limit", limit)) if v is not None}
    return f"?{urlencode(params)}" if params else ""


def index() -> str:
    return INDEX


def api_health() -> str:
    return API_HEALTH


def api_forum() -> str:
    return API_FORUM


def api_categories() -> str:
    return API_CATEGORIES


def api_category(category_id: str) -> str:
    return API_CATEGORY.format(id=_q(category_id))


def api_category_boards(category_id: str) -> str:
    return API_CATEGORY_BOARDS.format(id=_q(category_id))


def api_board(board_id: str) -> str:
    return API_BOARD.format(id=_q(board_id))


def api_board_topics(board_id: str, offset: int | None = None, limit: int | None = None) -> str:
    return API_BOARD_TOPICS.format(id=_q(board_id)) + _page(offset, limit)


def api_topic(topic_id: str, offset: int | None = None, limit: int | None = None) -> str:
    return API_TOPIC.format(id=_q(topic_id)) + _page(offset, limit)


def api_themes() -> str:
    return API_THEMES


def api_theme(rkey: str) -> str:
    return API_THEME.format(rkey=_q(rkey))


def api_theme_policy() -> str:
    return API_THEME_POLICY


# --- reader pages (WEB-PAGES) ----------------------------------------------------------
STATIC = "/static/"
ROBOTS = "/robots.txt"
THEME_CSS = "/theme.css"
THEME_CHOICE = "/theme"
BOARD = "/b/{id}"
BOARD_FEED = "/b/{id}/feed.atom"
TOPIC = "/t/{id}"
TOPIC_FEED = "/t/{id}/feed.atom"
POST = POST_PERMALINK
MEMBER = "/u/{did}"


def _page_query(page: int | None) -> str:
    return "" if page is None or page <= 1 else f"?{urlencode({'page': str(page)})}"


def static(path: str) -> str:
    return STATIC + quote(path)


def robots() -> str:
    return ROBOTS


def theme_css() -> str:
    return THEME_CSS


def theme_choice() -> str:
    return THEME_CHOICE


def board(board_id: str, page: int | None = None) -> str:
    return BOARD.format(id=_q(board_id)) + _page_query(page)


def board_feed(board_id: str) -> str:
    return BOARD_FEED.format(id=_q(board_id))


def topic(topic_id: str, page: int | None = None, anchor: str | None = None) -> str:
    url = TOPIC.format(id=_q(topic_id)) + _page_query(page)
    return url + (f"#{_q(anchor)}" if anchor else "")


def topic_feed(topic_id: str) -> str:
    return TOPIC_FEED.format(id=_q(topic_id))


def post(post_id: str) -> str:
    return POST.format(id=_q(post_id))


def post_anchor(post_id: str) -> str:
    """The id attribute of a post on its topic page (its permalink's fragment)."""
    return f"p-{post_id}"


def member(did: str) -> str:
    return MEMBER.format(did=_q(did))


# --- sign-in and administration ----------------------------------------------------------
SIGNIN = "/signin"
SIGNIN_OAUTH = "/signin/oauth"
SIGNIN_PASSWORD = "/signin/password"
SIGNOUT = "/signout"
JOIN = "/join"
OAUTH_CALLBACK = "/oauth/callback"
OAUTH_CLIENT_METADATA = "/oauth/client-metadata.json"
OAUTH_JWKS = "/oauth/jwks.json"
API_ADMIN_PROJECTIONS = "/api/admin/projections"
API_ADMIN_PROJECTIONS_REBUILD = "/api/admin/projections/rebuild"
API_ADMIN_REBUILD = "/api/admin/projections/rebuilds/{id}"


def signin(next_path: str | None = None) -> str:
    return SIGNIN + (f"?{urlencode({'next': next_path})}" if next_path else "")


def signin_oauth() -> str:
    return SIGNIN_OAUTH


def signin_password() -> str:
    return SIGNIN_PASSWORD


def signout() -> str:
    return SIGNOUT


def join(next_path: str | None = None) -> str:
    return JOIN + (f"?{urlencode({'next': next_path})}" if next_path else "")


# What a browser removes from a URL before parsing it (WHATWG URL standard): C0 controls
# and spaces at either end, tabs and newlines anywhere. A check on the raw string misses
# "/\t/evil.example", which a browser reads as "//evil.example", another host.
_C0_OR_SPACE = "".join(chr(code) for code in range(0x21))
_TAB_OR_NEWLINE = dict.fromkeys(map(ord, "\t\n\r"))
# Kept as they are in the answer; anything else is percent-encoded, so a Location header
# holds printable ASCII only and no backslash (which browsers read as a slash).
_PATH_SAFE = "/?#[]@!$&'()*+,;=:%"
LOCAL_PATH_MAX = 2048


def local_path(candidate: str | None, default: str = INDEX) -> str:
    """``candidate`` as a path on this site, or ``default`` when a browser would read it
    as anything else (another host, another scheme): no open redirects through ``?next=``.

    Decided on what a browser parses, not on the raw string: ends stripped of C0 controls
    and spaces, tabs and newlines dropped, backslashes in the path taken as slashes. The
    answer is that parsed path, percent-encoded, so it means the same to every parser."""
    if not candidate or len(candidate) > LOCAL_PATH_MAX:
        return default
    cleaned = _scalar_values(candidate).strip(_C0_OR_SPACE).translate(_TAB_OR_NEWLINE)
    cut = min((i for i in (cleaned.find("?"), cleaned.find("#")) if i >= 0),
              default=len(cleaned))
    path = cleaned[:cut].replace("\\", "/")
    if not path.startswith("/") or path.startswith("//"):
        return default
    return quote(path + cleaned[cut:], safe=_PATH_SAFE)


def _scalar_values(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, as a browser reads it."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def api_admin_projections() -> str:
    return API_ADMIN_PROJECTIONS


def api_admin_projections_rebuild(projection: str | None = None) -> str:
    query = f"?{urlencode({'projection': projection})}" if projection else ""
    return API_ADMIN_PROJECTIONS_REBUILD + query


def api_admin_rebuild(run_id: str) -> str:
    return API_ADMIN_REBUILD.format(id=_q(run_id))


# --- backfill ---------------------------------------------------------------------------
API_ADMIN_BACKFILL = "/api/admin/backfill"
API_ADMIN_BACKFILL_RUN = "/api/admin/backfill/{id}"
API_ADMIN_BACKFILL_ERRORS = "/api/admin/backfill/{id}/errors"


def api_admin_backfill(force: str | None = None) -> str:
    return API_ADMIN_BACKFILL + (f"?{urlencode({'force': force})}" if force else "")


def api_admin_backfill_run(run_id: str) -> str:
    return API_ADMIN_BACKFILL_RUN.format(id=_q(run_id))


def api_admin_backfill_errors(run_id: str) -> str:
    return API_ADMIN_BACKFILL_ERRORS.format(id=_q(run_id))


# --- operator and moderator pages --------------------------------------------------------
ADMIN = "/admin"
ADMIN_STATUS = "/admin/status"
ADMIN_ACTION = "/admin/actions/{action}"
ADMIN_MODLOG = "/admin/modlog"
ADMIN_ACTIONS = ("catch_up", "full_sync", "rebuild")


def admin() -> str:
    return ADMIN


def admin_status() -> str:
    return ADMIN_STATUS


def admin_action(action: str) -> str:
    return ADMIN_ACTION.format(action=_q(action))


def admin_modlog(page: int | None = None) -> str:
    return ADMIN_MODLOG + _page_query(page)


# --- writing (docs/writing.md) ------------------------------------------------------------
NEW_TOPIC = "/b/{id}/new"
REPLY = "/t/{id}/reply"
EDIT_POST = "/p/{id}/edit"
DELETE_POST = "/p/{id}/delete"
REACT = "/p/{id}/react"
PREVIEW = "/preview"
API_TOPICS = "/api/topics"
API_POSTS = "/api/posts"
API_POST = "/api/posts/{id}"
API_POST_REACTIONS = "/api/posts/{id}/reactions"


def new_topic(board_id: str) -> str:
    return NEW_TOPIC.format(id=_q(board_id))


def reply(topic_id: str, *, parent: str | None = None, quote: str | None = None) -> str:
    params = {k: v for k, v in (("parent", parent), ("quote", quote)) if v}
    return REPLY.format(id=_q(topic_id)) + (f"?{urlencode(params)}" if params else "")


def edit_post(post_id: str) -> str:
    return EDIT_POST.format(id=_q(post_id))


def delete_post(post_id: str) -> str:
    return DELETE_POST.format(id=_q(post_id))


def react(post_id: str) -> str:
    return REACT.format(id=_q(post_id))


def preview() -> str:
    return PREVIEW


def api_topics() -> str:
    return API_TOPICS


def api_posts() -> str:
    return API_POSTS


def api_post(post_id: str) -> str:
    return API_POST.format(id=_q(post_id))


def api_post_reactions(post_id: str, reaction: str | None = None) -> str:
    query = f"?{urlencode({'reaction': reaction})}" if reaction else ""
    return API_POST_REACTIONS.format(id=_q(post_id)) + query
