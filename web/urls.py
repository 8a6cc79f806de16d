"""Every URL the application serves or links to, in one place: the route patterns the
router registers, and the builders that fill them in (quoting every value)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

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
