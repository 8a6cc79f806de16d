"""Every URL the application serves or links to, in one place: the route patterns the
router registers, and the builders that fill them in (quoting every value)."""

from __future__ import annotations

from typing import Any
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
AVATAR = "/avatars/{did}"


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


def avatar(did: str, cid: str) -> str:
    """A member's cached avatar; ``v`` (the image's CID) makes each image a URL of its
    own, so browsers may keep it for good and a new avatar is a new URL."""
    return f"{AVATAR.format(did=_q(did))}?{urlencode({'v': cid})}"


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
API_ADMIN_EVENTS = "/api/admin/events"


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


def api_admin_events(after: int = 0, limit: int | None = None, *,
                     public: bool = False) -> str:
    query: dict[str, str | int] = {"after": after}
    if limit is not None:
        query["limit"] = limit
    if public:
        query["public"] = "1"
    return f"{API_ADMIN_EVENTS}?{urlencode(query)}"


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


# --- administration: structure, roles, themes (docs/api.md) -------------------------------
API_ADMIN_MEMBERS = "/api/admin/members"
API_ADMIN_MEMBERS_ME = "/api/admin/members/me"
API_ADMIN_MEMBER_ROLE = "/api/admin/members/{did}/role"
API_ADMIN_ROLES = "/api/admin/roles"
API_ADMIN_CATEGORIES = "/api/admin/categories"
API_ADMIN_CATEGORY = "/api/admin/categories/{id}"
API_ADMIN_BOARDS = "/api/admin/boards"
API_ADMIN_BOARD = "/api/admin/boards/{id}"
API_ADMIN_THEMES = "/api/admin/themes"
API_ADMIN_THEME = "/api/admin/themes/{rkey}"
API_ADMIN_THEME_DUPLICATE = "/api/admin/themes/{rkey}/duplicate"
API_ADMIN_THEME_POLICY = "/api/admin/theme-policy"


def api_admin_members(search: str | None = None, offset: int | None = None,
                      limit: int | None = None) -> str:
    params = {k: str(v) for k, v in (("search", search), ("offset", offset),
                                      ("limit", limit)) if v is not None}
    return API_ADMIN_MEMBERS + (f"?{urlencode(params)}" if params else "")


def api_admin_members_me() -> str:
    return API_ADMIN_MEMBERS_ME


def api_admin_member_role(did: str) -> str:
    return API_ADMIN_MEMBER_ROLE.format(did=_q(did))


def api_admin_roles() -> str:
    return API_ADMIN_ROLES


def api_admin_categories() -> str:
    return API_ADMIN_CATEGORIES


def api_admin_category(category_id: str) -> str:
    return API_ADMIN_CATEGORY.format(id=_q(category_id))


def api_admin_boards() -> str:
    return API_ADMIN_BOARDS


def api_admin_board(board_id: str) -> str:
    return API_ADMIN_BOARD.format(id=_q(board_id))


def api_admin_themes() -> str:
    return API_ADMIN_THEMES


def api_admin_theme(rkey: str) -> str:
    return API_ADMIN_THEME.format(rkey=_q(rkey))


def api_admin_theme_duplicate(rkey: str) -> str:
    return API_ADMIN_THEME_DUPLICATE.format(rkey=_q(rkey))


def api_admin_theme_policy() -> str:
    return API_ADMIN_THEME_POLICY


# --- administration pages: structure, members, themes, settings (docs/web.md) -------------
ADMIN_STRUCTURE = "/admin/structure"
ADMIN_CATEGORIES = "/admin/structure/categories"
ADMIN_CATEGORY = "/admin/structure/categories/{id}"
ADMIN_CATEGORY_DELETE = "/admin/structure/categories/{id}/delete"
ADMIN_CATEGORY_MOVE = "/admin/structure/categories/{id}/move"
ADMIN_BOARDS = "/admin/structure/boards"
ADMIN_BOARD = "/admin/structure/boards/{id}"
ADMIN_BOARD_DELETE = "/admin/structure/boards/{id}/delete"
ADMIN_BOARD_MOVE = "/admin/structure/boards/{id}/move"
ADMIN_MEMBERS = "/admin/members"
ADMIN_MEMBER_ROLE = "/admin/members/{did}/role"


def admin_structure() -> str:
    return ADMIN_STRUCTURE


def admin_categories() -> str:
    return ADMIN_CATEGORIES


def admin_category(category_id: str) -> str:
    return ADMIN_CATEGORY.format(id=_q(category_id))


def admin_category_delete(category_id: str) -> str:
    return ADMIN_CATEGORY_DELETE.format(id=_q(category_id))


def admin_category_move(category_id: str) -> str:
    return ADMIN_CATEGORY_MOVE.format(id=_q(category_id))


def admin_boards() -> str:
    return ADMIN_BOARDS


def admin_board(board_id: str) -> str:
    return ADMIN_BOARD.format(id=_q(board_id))


def admin_board_delete(board_id: str) -> str:
    return ADMIN_BOARD_DELETE.format(id=_q(board_id))


def admin_board_move(board_id: str) -> str:
    return ADMIN_BOARD_MOVE.format(id=_q(board_id))


def admin_members(search: str | None = None, page: int | None = None) -> str:
    params = {k: str(v) for k, v in (("search", search),
                                      ("page", page if page and page > 1 else None)) if v}
    return ADMIN_MEMBERS + (f"?{urlencode(params)}" if params else "")


def admin_member_role(did: str) -> str:
    return ADMIN_MEMBER_ROLE.format(did=_q(did))


ADMIN_THEMES = "/admin/themes"
ADMIN_THEME = "/admin/themes/{rkey}"
ADMIN_THEME_DUPLICATE = "/admin/themes/{rkey}/duplicate"
ADMIN_THEME_DELETE = "/admin/themes/{rkey}/delete"
ADMIN_THEME_EXPORT = "/admin/themes/{rkey}/export"
ADMIN_THEME_PREVIEW = "/admin/themes/{rkey}/preview"
ADMIN_THEME_RESET = "/admin/themes/{rkey}/reset-to-preset"
ADMIN_THEME_SAVE = "/admin/themes/{rkey}/save"  # the original's path of the editor's save
ADMIN_THEMES_IMPORT = "/admin/themes/import"
ADMIN_THEME_POLICY = "/admin/theme-policy"
ADMIN_THEME_SWATCHES = "/admin/themes/swatches.css"
THEME_PREVIEW_CSS = "/admin/themes/preview.css"
SETTINGS = "/settings"
SETTINGS_PREVIEW = "/settings/preview"
SETTINGS_APPEARANCE = "/settings/appearance"


def admin_themes() -> str:
    return ADMIN_THEMES


def admin_theme(rkey: str) -> str:
    return ADMIN_THEME.format(rkey=_q(rkey))


def admin_theme_duplicate(rkey: str) -> str:
    return ADMIN_THEME_DUPLICATE.format(rkey=_q(rkey))


def admin_theme_delete(rkey: str) -> str:
    return ADMIN_THEME_DELETE.format(rkey=_q(rkey))


def admin_theme_export(rkey: str) -> str:
    return ADMIN_THEME_EXPORT.format(rkey=_q(rkey))


def admin_theme_preview(rkey: str) -> str:
    return ADMIN_THEME_PREVIEW.format(rkey=_q(rkey))


def admin_theme_save(rkey: str) -> str:
    return ADMIN_THEME_SAVE.format(rkey=_q(rkey))


def admin_theme_reset(rkey: str) -> str:
    return ADMIN_THEME_RESET.format(rkey=_q(rkey))


def admin_themes_import() -> str:
    return ADMIN_THEMES_IMPORT


def admin_theme_policy() -> str:
    return ADMIN_THEME_POLICY


def admin_theme_swatches() -> str:
    return ADMIN_THEME_SWATCHES


def theme_preview_css(tokens: dict[str, str]) -> str:
    return THEME_PREVIEW_CSS + (f"?{urlencode(sorted(tokens.items()))}" if tokens else "")


def settings() -> str:
    return SETTINGS


def settings_preview(**query: str) -> str:
    return SETTINGS_PREVIEW + (f"?{urlencode(query)}" if query else "")


def settings_appearance() -> str:
    return SETTINGS_APPEARANCE


# The administration pages in the order the Admin link offers them, with the permission
# each needs (short names, as Viewer.has takes them).
ADMIN_PAGES = (("manageForum", ADMIN), ("manageCategories", ADMIN_STRUCTURE),
               ("manageMembers", ADMIN_MEMBERS), ("manageThemes", ADMIN_THEMES))


def admin_url_for(viewer: Any) -> str | None:
    """The first administration page ``viewer`` (a ``projections.views.Viewer``) may
    use: what the site's Admin link points to; None for those who may use none."""
    for permission, url in ADMIN_PAGES:
        if viewer.has(permission):
            return url
    return None


# --- moderation (docs/api.md) -------------------------------------------------------------
API_MOD_BAN = "/api/mod/ban"
API_MOD_UNBAN = "/api/mod/ban/{did}"
API_MOD_LOCK = "/api/mod/lock"
API_MOD_UNLOCK = "/api/mod/lock/{topicId}"
API_MOD_PIN = "/api/mod/pin"
API_MOD_UNPIN = "/api/mod/pin/{topicId}"
API_MOD_HIDE = "/api/mod/hide"
API_MOD_UNHIDE = "/api/mod/hide/{postId}"
API_ADMIN_MODLOG = "/api/admin/modlog"
MOD_ACTION = "/mod/{action}"
REPORT_POST = "/p/{id}/report"
MOD_REPORTS = "/mod/reports"
MOD_REPORTS_CLOSE = "/mod/reports/close"


def api_mod(action: str, subject: str | None = None) -> str:
    """``ban``/``lock``/``pin``/``hide`` (POST), with ``subject`` the DELETE that lifts it."""
    base = f"/api/mod/{_q(action)}"
    return base if subject is None else f"{base}/{_q(subject)}"


def api_admin_modlog(offset: int | None = None, limit: int | None = None) -> str:
    return API_ADMIN_MODLOG + _page(offset, limit)


def mod_action(action: str) -> str:
    """The page form of a moderation action (confirmation, then the POST)."""
    return MOD_ACTION.format(action=_q(action))


def report_post(post_id: str) -> str:
    return REPORT_POST.format(id=_q(post_id))


def mod_reports() -> str:
    return MOD_REPORTS


def admin_modlog_filtered(page: int | None = None, *, moderator: str | None = None,
                          action: str | None = None, member: str | None = None) -> str:
    params = {k: v for k, v in (("moderator", moderator), ("action", action),
                                ("member", member)) if v}
    if page is not None and page > 1:
        params["page"] = str(page)
    return ADMIN_MODLOG + (f"?{urlencode(params)}" if params else "")


def mod_confirm(action: str, subject: str, *, next_path: str | None = None,
                post: str | None = None) -> str:
    """The confirmation page of a moderation action on ``subject`` (a post id, or the
    DID for ban/unban with ``post`` the post it was taken from)."""
    params = {k: v for k, v in (("subject", subject), ("post", post), ("next", next_path)) if v}
    return MOD_ACTION.format(action=_q(action)) + f"?{urlencode(params)}"


def mod_reports_close() -> str:
    return MOD_REPORTS_CLOSE
# --- live updates (web/pages/live.py) -----------------------------------------------------
TOPIC_LIVE = "/t/{id}/live"
BOARD_LIVE = "/b/{id}/live"


def topic_live(topic_id: str) -> str:
    return TOPIC_LIVE.format(id=_q(topic_id))


def board_live(board_id: str) -> str:
    return BOARD_LIVE.format(id=_q(board_id))


# --- notifications and read state (web/pages/notifications.py, web/pages/unread.py) -------
NOTIFICATIONS = "/notifications"
NOTIFICATIONS_READ = "/notifications/read"
NOTIFICATIONS_FEED = "/notifications/{did}/{token}/feed.atom"


def notifications() -> str:
    return NOTIFICATIONS


def notifications_read() -> str:
    return NOTIFICATIONS_READ


def notifications_feed(did: str, token: str) -> str:
    return NOTIFICATIONS_FEED.format(did=_q(did), token=_q(token))


TOPIC_UNREAD = "/t/{id}/unread"
BOARD_READ = "/b/{id}/read"
FORUM_READ = "/read"


def topic_unread(topic_id: str) -> str:
    return TOPIC_UNREAD.format(id=_q(topic_id))


def board_read(board_id: str) -> str:
    return BOARD_READ.format(id=_q(board_id))


def forum_read() -> str:
    return FORUM_READ


FORUM_FEED = "/feed.atom"


def forum_feed() -> str:
    return FORUM_FEED
# --- search and edit history ----------------------------------------------------------------
SEARCH = "/search"
API_SEARCH = "/api/search"
POST_VERSIONS = "/p/{id}/versions"
API_POST_VERSIONS = "/api/posts/{id}/versions"
SEARCH_FILTERS = ("board", "author", "since", "until", "sort", "type")
"""The search's query parameters besides ``q`` (and ``page`` or ``offset``/``limit``)."""


def _search_query(q: str | None, filters: dict[str, str | None],
                  extra: dict[str, str]) -> str:
    params = {"q": q} if q else {}
    params.update({k: v for k, v in filters.items() if k in SEARCH_FILTERS and v})
    params.update(extra)
    return f"?{urlencode(params)}" if params else ""


def search(q: str | None = None, page: int | None = None, **filters: str | None) -> str:
    """The search page; ``filters`` are those of ``SEARCH_FILTERS`` (empty ones left out)."""
    extra = {"page": str(page)} if page is not None and page > 1 else {}
    return SEARCH + _search_query(q, filters, extra)


def api_search(q: str | None = None, offset: int | None = None, limit: int | None = None,
               **filters: str | None) -> str:
    extra = {k: str(v) for k, v in (("offset", offset), ("limit", limit)) if v is not None}
    return API_SEARCH + _search_query(q, filters, extra)


def post_versions(post_id: str) -> str:
    return POST_VERSIONS.format(id=_q(post_id))


def api_post_versions(post_id: str) -> str:
    return API_POST_VERSIONS.format(id=_q(post_id))
