"""What a correct appview shows after a scenario's writes: a small fold over the
operations, independent of the projections it is compared with.

Rules (from ``docs/``'s lexicon notes): a topic is a post without ``reply``; a reply
belongs to its ``reply.root``; the latest moderation action per subject wins; a post is
not shown when deleted by its author, hidden by a moderator or written by a banned author
(a ban with ``expiresAt`` at or before ``as_of_us`` has lapsed). Reply counts are kept
apart by reason so a test can compare whichever one its read model reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from appview.devnet.scenario_model import (
    MOD_ACTION_PREFIX,
    Operation,
)
from events.collections import (
    BOARD,
    CATEGORY,
    FORUM,
    MEMBERSHIP,
    MOD_ACTION,
    POST,
    REACTION,
)
from events.records import reference


@dataclass(frozen=True, slots=True)
class TopicSummary:
    uri: str
    board_uri: str
    title: str
    author_did: str
    visible: bool  # the topic itself is shown (exists, not hidden, author not banned)
    locked: bool
    pinned: bool
    replies: int  # reply records that exist (not deleted by their author)
    deleted_replies: int  # deleted by their author (tombstones)
    hidden_replies: int  # existing, hidden by a moderator
    banned_replies: int  # existing, not hidden, by a banned author
    visible_replies: int  # existing, not hidden, author not banned


@dataclass(frozen=True)
class ForumSummary:
    forum_uri: str | None
    forum_name: str | None
    categories: int
    boards: tuple[str, ...]  # board at-uris
    topics: tuple[TopicSummary, ...]
    memberships: int
    reactions: int
    mod_actions: int
    banned: frozenset[str]
    posts: int  # post records that exist
    operations: int
    as_of_us: int
    board_topics: dict[str, int] = field(default_factory=dict)  # visible topics per board

    def topic(self, uri: str) -> TopicSummary:
        for topic in self.topics:
            if topic.uri == uri:
                return topic
        raise KeyError(uri)

    @property
    def visible_topics(self) -> int:
        return sum(1 for topic in self.topics if topic.visible)


@dataclass(slots=True)
class _Post:
    author: str
    root: str | None  # None for a topic
    board: str | None
    title: str
    deleted: bool = False


def _latest(actions: dict[str, tuple[str, dict[str, Any]]], subject: str) -> str | None:
    entry = actions.get(subject)
    return entry[0] if entry is not None else None


def summarize(
    operations: Iterable[Operation], forum_did: str, *, as_of_us: int | None = None
) -> ForumSummary:
    """The expected read models after ``operations``. Forum-owned records count only
    from ``forum_did``. ``as_of_us`` (default: the last write) decides lapsed bans."""
    forum_uri: str | None = None
    forum_name: str | None = None
    categories: set[str] = set()
    boards: dict[str, None] = {}
    posts: dict[str, _Post] = {}
    memberships: set[str] = set()
    reactions: set[str] = set()
    mod_actions = 0
    user_actions: dict[str, tuple[str, dict[str, Any]]] = {}
    post_actions: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
        "hide": {},
        "lock": {},
        "pin": {},
    }
    count, last_us = 0, 0
    for op in operations:
        count += 1
        last_us = max(last_us, op.at_us)
        uri, record = op.uri, op.record
        owned = op.did == forum_did
        if op.collection == FORUM and owned and record is not None:
            forum_uri, forum_name = uri, record.get("name")
        elif op.collection == CATEGORY and owned:
            (categories.add if record is not None else categories.discard)(uri)
        elif op.collection == BOARD and owned:
            if record is not None:
                boards[uri] = None
            else:
                boards.pop(uri, None)
        elif op.collection == MEMBERSHIP:
            (memberships.add if record is not None else memberships.discard)(uri)
        elif op.collection == REACTION:
            (reactions.add if record is not None else reactions.discard)(uri)
        elif op.collection == MOD_ACTION and owned and record is not None:
            mod_actions += 1
            _note_action(record, user_actions, post_actions)
        elif op.collection == POST:
            _note_post(posts, uri, op.did, record)
    as_of = as_of_us if as_of_us is not None else last_us
    banned = frozenset(
        did
        for did, (action, record) in user_actions.items()
        if action == "ban" and not _lapsed(record, as_of)
    )
    topics = _topics(posts, banned, post_actions)
    board_topics = {board: 0 for board in boards}
    for topic in topics:
        if topic.visible and topic.board_uri in board_topics:
            board_topics[topic.board_uri] += 1
    return ForumSummary(
        forum_uri=forum_uri,
        forum_name=forum_name,
        categories=len(categories),
        boards=tuple(boards),
        topics=tuple(topics),
        memberships=len(memberships),
        reactions=len(reactions),
        mod_actions=mod_actions,
        banned=banned,
        posts=sum(1 for post in posts.values() if not post.deleted),
        operations=count,
        as_of_us=as_of,
        board_topics=board_topics,
    )


def _note_post(posts: dict[str, _Post], uri: str, did: str, record: dict[str, Any] | None) -> None:
    if record is None:
        if uri in posts:
            posts[uri].deleted = True
        return
    reply = record.get("reply")
    root = reply.get("root", {}).get("uri") if isinstance(reply, dict) else None
    posts[uri] = _Post(
        author=did,
        root=root,
        board=reference(record, "board")[0],
        title=str(record.get("title", "")),
    )


def _note_action(
    record: dict[str, Any],
    user_actions: dict[str, tuple[str, dict[str, Any]]],
    post_actions: dict[str, dict[str, tuple[str, dict[str, Any]]]],
) -> None:
    action = str(record.get("action", "")).removeprefix(MOD_ACTION_PREFIX)
    subject = record.get("subject")
    if not isinstance(subject, dict):
        return
    if action in ("ban", "unban") and isinstance(subject.get("did"), str):
        user_actions[subject["did"]] = (action, record)
        return
    post = subject.get("post")
    uri = post.get("uri") if isinstance(post, dict) else None
    if not isinstance(uri, str):
        return
    family = {
        "delete": "hide", "undelete": "hide", "lock": "lock", "unlock": "lock",
        "pin": "pin", "unpin": "pin",
    }.get(action)
    if family is not None:
        post_actions[family][uri] = (action, record)


def _lapsed(record: dict[str, Any], as_of_us: int) -> bool:
    expires = record.get("expiresAt")
    if not isinstance(expires, str):
        return False
    try:
        moment = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        return False
    return int(moment.timestamp() * 1_000_000) <= as_of_us


def _topics(
    posts: dict[str, _Post],
    banned: frozenset[str],
    post_actions: dict[str, dict[str, tuple[str, dict[str, Any]]]],
) -> list[TopicSummary]:
    hidden = {uri for uri, (action, _) in post_actions["hide"].items() if action == "delete"}
    tallies: dict[str, list[int]] = {}  # root -> [replies, deleted, hidden, banned, visible]
    for uri, post in posts.items():
        if post.root is None:
            continue
        tally = tallies.setdefault(post.root, [0, 0, 0, 0, 0])
        if post.deleted:
            tally[1] += 1
            continue
        tally[0] += 1
        if uri in hidden:
            tally[2] += 1
        elif post.author in banned:
            tally[3] += 1
        else:
            tally[4] += 1
    topics = []
    for uri, post in posts.items():
        if post.root is not None:
            continue
        replies, deleted, hidden_count, banned_count, visible = tallies.get(uri, [0] * 5)
        topics.append(
            TopicSummary(
                uri=uri,
                board_uri=post.board or "",
                title=post.title,
                author_did=post.author,
                visible=not post.deleted and uri not in hidden and post.author not in banned,
                locked=_latest(post_actions["lock"], uri) == "lock",
                pinned=_latest(post_actions["pin"], uri) == "pin",
                replies=replies,
                deleted_replies=deleted,
                hidden_replies=hidden_count,
                banned_replies=banned_count,
                visible_replies=visible,
            )
        )
    return topics
