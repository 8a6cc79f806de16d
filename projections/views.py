"""What the read-model queries return: frozen dataclasses, plain values only.

Datetimes are the stored canonical text (``projections.timestamps``: UTC
``YYYY-MM-DDTHH:MM:SS.ffffffZ``); the web layer renders them. Field names are Python's;
the JSON API maps them to the camelCase of ``docs/api``. Ids are the read model's string
ids (``projections.ids``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from events.roles import PERMISSION

T = TypeVar("T")

PERMISSION_PREFIX: Final = PERMISSION
WILDCARD: Final = "*"
DELETED_TEXT: Final = "[deleted by author]"

MODERATION_PERMISSIONS: Final = frozenset(
    PERMISSION_PREFIX + name for name in ("moderatePosts", "banUsers", "lockTopics", "pinTopics")
)


def permission(name: str) -> str:
    """The full token of a permission given its short name (``moderatePosts``)."""
    return (
        name
        if name == WILDCARD or name.startswith(PERMISSION_PREFIX)
        else (PERMISSION_PREFIX + name)
    )


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: a DID (None when anonymous) and its resolved permissions (full
    tokens or ``*``). Queries decide visibility from this alone."""

    did: str | None
    permissions: frozenset[str] = frozenset()

    @staticmethod
    def anonymous() -> Viewer:
        return Viewer(None, frozenset())

    def has(self, name: str) -> bool:
        return WILDCARD in self.permissions or permission(name) in self.permissions

    @property
    def is_moderator(self) -> bool:
        # FORUM_DID resolves to {"*"} (see Queries.viewer), so it needs no special case.
        return WILDCARD in self.permissions or bool(self.permissions & MODERATION_PERMISSIONS)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list in its stable order: ``items`` are the entries at
    [offset, offset + limit) of a list ``total`` long. ``limit`` is the clamped one."""

    items: tuple[T, ...]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class Author:
    did: str
    handle: str | None


@dataclass(frozen=True, slots=True)
class Forum:
    id: str
    uri: str
    did: str
    name: str | None
    description: str | None
    created_at: str | None
    indexed_at: str
    cid: str | None


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    uri: str
    cid: str | None
    name: str
    description: str | None
    slug: str | None
    sort_order: int
    created_at: str | None
    board_count: int


@dataclass(frozen=True, slots=True)
class LastPost:
    """The newest publicly visible post of a board. ``topic_title`` is None when the
    thread's topic is not visible to the viewer (deleted, hidden, banned)."""

    id: str
    uri: str
    topic_id: str
    topic_uri: str
    topic_title: str | None
    author: Author
    created_at: str | None


@dataclass(frozen=True, slots=True)
class Board:
    id: str
    uri: str
    cid: str | None
    name: str
    description: str | None
    slug: str | None
    sort_order: int
    category_id: str
    category_uri: str
    created_at: str | None
    topic_count: int
    post_count: int
    last_post: LastPost | None


@dataclass(frozen=True, slots=True)
class ReactionCount:
    post_uri: str
    reaction: str
    count: int


@dataclass(frozen=True, slots=True)
class Post:
    """A topic's opening post or a reply, as one viewer may see it.

    The four moderation marks are separate on purpose: a moderator sees each reason that
    applies. A non-moderator only ever receives posts with the first three false; a post
    deleted by its author keeps its place as ``DELETED_TEXT`` with no title.
    ``position`` is the reply's 1-based rank in its thread by (createdAt, uri) among every
    reply that exists there (tombstones and hidden replies included), 0 for a topic.
    """

    id: str
    uri: str
    cid: str | None
    author: Author
    kind: str
    title: str | None
    text: str
    created_at: str | None
    updated_at: str | None
    board_id: str | None
    topic_id: str
    topic_uri: str
    parent_uri: str | None
    position: int
    reactions: tuple[ReactionCount, ...]
    hidden_by_moderator: bool
    author_banned: bool
    author_suspended: bool
    deleted_by_author: bool
    # ``text`` rendered and sanitised when the post was projected (``posts.html``); None
    # for a placeholder. Pages only: the API gives the text.
    html: str | None = field(default=None, metadata={"api": False})


@dataclass(frozen=True, slots=True)
class TopicSummary:
    """A topic in a board's list. ``reply_count`` / ``last_reply_at`` count publicly
    visible replies as of ``now``; ``last_activity_at`` orders the list."""

    id: str
    uri: str
    did: str
    rkey: str
    cid: str | None
    board_id: str | None
    title: str | None
    text: str
    author: Author
    created_at: str | None
    reply_count: int
    last_reply_at: str | None
    last_activity_at: str | None
    locked: bool
    pinned: bool
    hidden_by_moderator: bool
    author_banned: bool
    author_suspended: bool
    deleted_by_author: bool


@dataclass(frozen=True, slots=True)
class TopicPage:
    """A topic and one page of its replies. ``replies.total`` is the length of the reply
    list this viewer gets (placeholders included); ``reply_count`` counts the publicly
    visible replies as of ``now``."""

    topic: Post
    locked: bool
    pinned: bool
    reply_count: int
    replies: Page[Post]


@dataclass(frozen=True, slots=True)
class PostLocation:
    """Where a permalink lands: the topic, and the offset of the page (of ``limit``
    replies) holding the post; ``offset`` 0 for the topic itself."""

    topic_id: str
    post_id: str
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class Role:
    id: str
    uri: str
    cid: str | None
    name: str
    description: str | None
    permissions: frozenset[str]
    priority: int | None
    is_default: bool
    created_at: str | None


@dataclass(frozen=True, slots=True)
class MemberPermissions:
    """A DID's effective permissions (full tokens or ``*``) and authority (the role's
    priority, lower is more; -1 for FORUM_DID; None without any role)."""

    did: str
    permissions: frozenset[str]
    authority: int | None
    role: Role | None


@dataclass(frozen=True, slots=True)
class Member:
    """``suspended``: the account's content is hidden (not active); ``account_status``
    then says why, as the host did: takendown, suspended, deactivated, or inactive (no
    status given); None while the account's content shows."""

    did: str
    handle: str | None
    joined_at: str | None
    post_count: int
    role_id: str | None
    role_name: str | None
    banned: bool
    suspended: bool
    account_status: str | None


@dataclass(frozen=True, slots=True)
class MemberProfile:
    member: Member
    recent_topics: tuple[TopicSummary, ...]
    recent_posts: tuple[Post, ...]


@dataclass(frozen=True, slots=True)
class ModLogEntry:
    id: str
    uri: str
    action: str
    moderator: Author | None
    subject_did: str | None
    subject_uri: str | None
    reason: str | None
    created_at: str | None
    expires_at: str | None
    # who the action was about: the member acted on, or the post's author
    subject: Author | None = None
    subject_post_id: str | None = None


@dataclass(frozen=True, slots=True)
class AdminMember:
    """A member as the administrators' list shows them: the role assigned to them
    (None: none is, and the default role applies) and its priority."""

    did: str
    handle: str | None
    joined_at: str | None
    role: str | None
    role_uri: str | None
    priority: int | None


@dataclass(frozen=True, slots=True)
class Theme:
    id: str
    uri: str
    cid: str
    name: str
    color_scheme: str | None
    tokens: Mapping[str, str]
    css_overrides: str | None
    font_urls: tuple[str, ...]
    created_at: str | None


@dataclass(frozen=True, slots=True)
class ThemeRef:
    """A policy entry: a theme uri, pinned to ``cid`` when given."""

    uri: str
    cid: str | None


@dataclass(frozen=True, slots=True)
class ThemePolicy:
    cid: str | None
    available_themes: tuple[ThemeRef, ...]
    default_light_theme: str | None
    default_dark_theme: str | None
    allow_user_choice: bool
    updated_at: str | None


# --- what writes are decided on (projections.queries_writes) --------------------------


@dataclass(frozen=True, slots=True)
class PostTarget:
    """A post as a write about it needs it, whoever may see it: ``visible`` says whether
    the asking viewer may; ``locked`` is its thread's topic's lock; ``thread_uri`` the
    topic's uri (its own for a topic)."""

    id: str
    uri: str
    cid: str | None
    did: str
    rkey: str
    kind: str
    thread_uri: str
    board_uri: str | None
    deleted: bool
    hidden: bool
    locked: bool
    visible: bool


@dataclass(frozen=True, slots=True)
class Ban:
    """A ban in force: the moderator's ``reason`` and when it ends (None: never)."""

    did: str
    reason: str | None
    expires_at: str | None


@dataclass(frozen=True, slots=True)
class OwnReaction:
    """One of a member's live reactions to a post."""

    uri: str
    rkey: str
    reaction: str


@dataclass(frozen=True, slots=True)
class Reactions:
    """Who reacted to one post how: per reaction (sorted), the reactors (active
    accounts, by handle then DID); ``mine`` are the viewer's own reactions."""

    post_uri: str
    by_reaction: tuple[tuple[str, tuple[Author, ...]], ...]
    mine: frozenset[str]


# --- what moderation decides on (projections.queries_moderation) -----------------------


@dataclass(frozen=True, slots=True)
class ModSubject:
    """A post as a moderation action about it needs it, whoever may see it: its own
    ``hidden`` flag, and ``locked`` / ``pinned`` of the post itself (a topic's; a reply
    is never locked or pinned), ``thread_id`` its topic's id."""

    id: str
    uri: str
    cid: str | None
    did: str
    kind: str
    thread_id: str
    hidden: bool
    locked: bool
    pinned: bool
# --- search and edit history (projections.queries_search, projections.history) -------

Highlighted = tuple[tuple[str, bool], ...]
"""Text as (run, matched) pairs: the matched runs are what the search found."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A post a search found, as the viewer may see it. ``title`` and ``excerpt`` are
    highlighted runs of plain text (never markup); ``topic_title`` is None when the
    topic was deleted by its author. The moderation marks are as on ``Post``."""

    id: str
    uri: str
    kind: str
    author: Author
    board_id: str | None
    topic_id: str
    topic_uri: str
    topic_title: str | None
    title: Highlighted
    excerpt: Highlighted
    created_at: str | None
    hidden_by_moderator: bool
    author_banned: bool
    author_suspended: bool


@dataclass(frozen=True, slots=True)
class SearchResults:
    """One page of a search's hits in the order asked for. ``total`` counts the hits up
    to ``total_limit``; ``total_capped`` says there may be more."""

    query: str
    sort: str
    hits: tuple[SearchHit, ...]
    total: int
    total_capped: bool
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class PostVersion:
    """One version of a post the log holds: its rev, its record's fields, when it was
    observed (unix µs). ``number`` counts from 1, oldest rev first."""

    number: int
    rev: str
    cid: str | None
    title: str | None
    text: str
    created_at: str | None
    updated_at: str | None
    observed_at: int


@dataclass(frozen=True, slots=True)
class PostHistory:
    """Every valid version of a post the viewer may see, oldest first."""

    post: Post
    versions: tuple[PostVersion, ...]
