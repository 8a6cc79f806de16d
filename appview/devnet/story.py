"""The forum's storyline: the ordered writes of a scenario, generated from a seed.

The forum's setup (forum record, categories, boards, default roles, light and dark themes,
theme policy), members joining (membership plus a role assignment from the Forum
account), topics and replies in Markdown (quoting each other), edits, author deletes,
moderation (pins, locks, hides and unhides, a temporary ban lifted early, a spammer banned
for good) and reactions. Records reference each other by strongRef with real CIDs.

Fixed beats happen at fractions of the posting timeline so even a small forum has one of
each; random extras follow each post at the size's rates. The story avoids writes whose
meaning depends on read-side policy the appview decides (replies to locked topics, posts
by banned members, hidden or deleted topics, deleting or hiding a reply others answered),
so its expected read models are unambiguous (see ``appview.devnet.forum_summary``).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from appview.devnet.prose import (
    BOARD_BLURBS,
    BOARD_NAMES,
    CATEGORY_NAMES,
    DARK_TOKENS,
    LIGHT_TOKENS,
    SPAM,
    Prose,
)
from appview.devnet.scenario_model import (
    MOD_ACTION_PREFIX,
    Operation,
    ScenarioAccount,
    ScenarioSize,
    Write,
    iso,
    record_cid,
    slug,
    tid,
)
from events.collections import (
    BOARD,
    CATEGORY,
    FORUM,
    MEMBERSHIP,
    MOD_ACTION,
    POST,
    REACTION,
    ROLE,
    ROLE_ASSIGNMENT,
    THEME,
    THEME_POLICY,
)
from events.model import at_uri
from events.records import (
    Shape,
    StrongRef,
    board_record,
    category_record,
    edited,
    forum_record,
    membership_record,
    mod_action_record,
    reaction_record,
    reply_record,
    role_assignment_record,
    role_record,
    theme_policy_record,
    theme_record,
    topic_record,
)
from events.roles import DEFAULT_ROLES, PERMISSION

MIN_GAP_US = 1_000


@dataclass(slots=True, eq=False)
class _Post:
    uri: str
    rkey: str
    author: int  # member index
    record: dict[str, Any]
    cid: str
    topic: _Topic | None  # None for a topic itself
    deleted: bool = False
    hidden: bool = False
    answered: bool = False  # another reply names it as parent

    @property
    def ref(self) -> StrongRef:
        return StrongRef(self.uri, self.cid)


@dataclass(slots=True, eq=False)
class _Topic:
    post: _Post
    recent_replies: deque[_Post] = field(default_factory=lambda: deque(maxlen=4))
    locked: bool = False
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class _Roles:
    """Member indices with special parts in the story (None when the forum is too small)."""

    admin: int = 0
    moderator: int | None = None
    temp_banned: int | None = None
    promoted: int | None = None
    spammer: int | None = None


def _roles(members: int) -> _Roles:
    return _Roles(
        moderator=1 if members >= 2 else None,
        temp_banned=2 if members >= 5 else None,
        promoted=3 if members >= 4 else None,
        spammer=members - 1 if members >= 6 else None,
    )


def tell(
    seed: int,
    size: ScenarioSize,
    forum: ScenarioAccount,
    members: Sequence[ScenarioAccount],
    forum_name: str,
    start_us: int,
    shape: Shape = "original",
) -> Iterator[Operation]:
    """Every write of the story, in order; the same arguments give the same writes.
    Records are in the original atBB's shape (``events.records``) unless ``shape`` is
    ``"bare"``."""
    return _Story(seed, size, forum, members, forum_name, start_us, shape).run()


class _Story:
    def __init__(
        self,
        seed: int,
        size: ScenarioSize,
        forum: ScenarioAccount,
        members: Sequence[ScenarioAccount],
        forum_name: str,
        start_us: int,
        shape: Shape = "original",
    ) -> None:
        self.size = size
        self.shape: Shape = shape
        self.forum_name = forum_name
        self.rng = random.Random(seed * 7_919 + 17)
        self.prose = Prose(random.Random(seed * 104_729 + 3))
        self.forum = forum
        self.members = members
        self.roles = _roles(len(members))
        self.t = start_us
        expected = 20 + 2 * size.members + size.posts * (
            1 + size.reaction_rate * 1.1 + size.edit_rate + size.delete_rate + size.mod_action_rate
        )
        mean_gap = max(MIN_GAP_US * 2, int(size.days * 86_400_000_000 / expected))
        self.gap_low, self.gap_span = mean_gap // 4, mean_gap * 3 // 2
        self.forum_ref = StrongRef("", "")
        self.boards: list[tuple[str, dict[str, Any], str]] = []  # (rkey, record, cid)
        self.role_refs: dict[str, StrongRef] = {}
        self.joined: list[int] = []
        self.blocked: set[int] = set()
        self.moderators: list[int] = []
        self.topics: list[_Topic] = []
        self.open_topics: list[_Topic] = []
        self.recent_posts: deque[_Post] = deque(maxlen=300)
        self.recent_reactions: deque[tuple[int, str]] = deque(maxlen=100)
        self.hidden: list[_Post] = []
        self.spammer_joined: set[int] = set()

    # --- plumbing ---

    def tick(self) -> int:
        self.t += MIN_GAP_US + self.gap_low + int(self.rng.random() * self.gap_span)
        return self.t

    def did(self, member: int | None) -> str:
        return self.forum.did if member is None else self.members[member].did

    def write(
        self,
        member: int | None,
        op: Write,
        collection: str,
        rkey: str,
        record: dict[str, Any] | None,
    ) -> Operation:
        """``member`` None is the Forum account."""
        account = self.forum if member is None else self.members[member]
        cid = record_cid(record) if record is not None else None
        return Operation(account.alias, account.did, op, collection, rkey, record, cid, self.t)

    def tid(self) -> str:
        return tid(self.t << 10)

    # --- the story ---

    def run(self) -> Iterator[Operation]:
        yield from self.setup()
        size = self.size
        spammer = self.roles.spammer
        first_wave = min(len(self.members), max(3, len(self.members) // 4))
        for member in range(first_wave):
            if member != spammer:
                yield from self.join(member)
        slots = size.posts
        # The spammer signs up just before spamming (see the "spam" beat).
        later = [m for m in range(first_wave, len(self.members)) if m != spammer]
        join_at = {
            int(0.7 * slots * (k + 1) / (len(later) + 1)): member for k, member in enumerate(later)
        }
        pending_joins = deque(later)
        schedule = self.schedule(slots)
        topics_left = size.topics
        for slot in range(slots):
            if slot in join_at:
                # Several members may map to one slot on a crowded forum: catch up in order.
                while pending_joins and pending_joins[0] <= join_at[slot]:
                    yield from self.join(pending_joins.popleft())
            for event in schedule.get(slot, ()):
                yield from self.scheduled(event)
            want_topic = topics_left > 0 and (
                not self.open_topics or self.rng.random() * (slots - slot) < topics_left
            )
            if want_topic:
                topics_left -= 1
                yield self.new_topic()
            elif self.open_topics:
                yield self.new_reply(self.pick_author(), self.pick_topic())
            yield from self.extras()
        while pending_joins:
            yield from self.join(pending_joins.popleft())

    def setup(self) -> Iterator[Operation]:
        rng, size = self.rng, self.size
        self.tick()
        forum = forum_record(
            self.forum_name, created_at=iso(self.t),
            description=f"{self.forum_name}: repairs, builds and the occasional disaster.",
        )
        op = self.write(None, "create", FORUM, "self", forum)
        self.forum_ref = StrongRef(op.uri, op.cid or "")
        yield op
        categories = []
        for index in range(size.categories):
            self.tick()
            name = CATEGORY_NAMES[index] if index < len(CATEGORY_NAMES) else f"Area {index + 1}"
            record = category_record(
                name, created_at=iso(self.t), description=f"Everything about {name.lower()}.",
                slug=slug(name), sort_order=index,
            )
            op = self.write(None, "create", CATEGORY, self.tid(), record)
            categories.append(StrongRef(op.uri, op.cid or ""))
            yield op
        for index in range(size.boards):
            self.tick()
            category = index % size.categories
            names = BOARD_NAMES[category % len(BOARD_NAMES)]
            position = index // size.categories
            if position >= len(names):
                name = f"Board {index + 1}"
            elif category >= len(BOARD_NAMES):  # a named board again: number it
                name = f"{names[position]} {index + 1}"
            else:
                name = names[position]
            record = board_record(
                name, categories[category], created_at=iso(self.t),
                description=rng.choice(BOARD_BLURBS), slug=slug(name), sort_order=position,
                shape=self.shape,
            )
            rkey = self.tid()
            op = self.write(None, "create", BOARD, rkey, record)
            self.boards.append((rkey, record, op.cid or ""))
            yield op
        for name, description, permissions, priority in DEFAULT_ROLES:
            self.tick()
            record = role_record(
                name, [p if p == "*" else PERMISSION + p for p in permissions], priority,
                created_at=iso(self.t), description=description,
            )
            op = self.write(None, "create", ROLE, self.tid(), record)
            self.role_refs[name] = StrongRef(op.uri, op.cid or "")
            yield op
        themes = []
        for scheme, tokens in (("light", LIGHT_TOKENS), ("dark", DARK_TOKENS)):
            self.tick()
            record = theme_record(
                f"{self.forum_name} {scheme.title()}", scheme, tokens, created_at=iso(self.t),
                css_overrides=".post-body code { border-radius: 4px; }"
                if scheme == "dark" else None,
                font_urls=["https://fonts.example.org/css2?family=Inter"], shape=self.shape,
            )
            op = self.write(None, "create", THEME, self.tid(), record)
            themes.append(StrongRef(op.uri, op.cid or ""))
            yield op
        self.tick()
        # The light theme is pinned to this version; the dark one follows its latest.
        policy = theme_policy_record(
            [themes[0], themes[1].uri], default_light=themes[0].uri,
            default_dark=themes[1].uri, updated_at=iso(self.t),
        )
        yield self.write(None, "create", THEME_POLICY, "self", policy)

    def join(self, member: int) -> Iterator[Operation]:
        self.tick()
        membership = membership_record(self.forum_ref, created_at=iso(self.t), shape=self.shape)
        yield self.write(member, "create", MEMBERSHIP, self.tid(), membership)
        roles = self.roles
        role = "Admin" if member == roles.admin else "Member"
        if member == roles.moderator:
            role = "Moderator"
        if role != "Member":
            self.moderators.append(member)
        self.tick()
        yield self.write(None, "create", ROLE_ASSIGNMENT, self.did(member), self.assignment(
            member, role
        ))
        if member != roles.spammer:
            self.joined.append(member)

    def assignment(self, member: int, role: str) -> dict[str, Any]:
        return role_assignment_record(self.did(member), self.role_refs[role],
                                      created_by=self.forum.did, created_at=iso(self.t))

    def schedule(self, slots: int) -> dict[int, list[str]]:
        """The story's fixed beats, at fractions of the posting timeline."""
        beats: list[tuple[float, str]] = [
            (0.10, "pin"), (0.20, "lock"), (0.25, "pin"), (0.30, "edit-board"),
            (0.30, "hide"), (0.35, "unlock"), (0.55, "hide"), (0.65, "unhide"), (0.70, "unpin"),
        ]
        roles = self.roles
        if roles.temp_banned is not None:
            beats += [(0.40, "temp-ban"), (0.45, "lift-temp-ban")]
        if roles.promoted is not None:
            beats.append((0.50, "promote"))
        if roles.spammer is not None:
            spam = max(2, slots // 100)
            beats += [(0.50 + 0.08 * k / spam, "spam") for k in range(spam)]
            beats.append((0.60, "ban-spammer"))
        schedule: dict[int, list[str]] = {}
        for fraction, beat in beats:
            schedule.setdefault(int(fraction * slots), []).append(beat)
        return schedule

    def scheduled(self, beat: str) -> Iterator[Operation]:
        roles = self.roles
        if beat in ("pin", "lock", "hide", "unlock", "unhide", "unpin"):
            yield from self.moderate(beat)
        elif beat == "edit-board" and self.boards:
            rkey, record, _cid = self.boards[0]
            self.tick()
            changed = edited(record, description=record["description"] + " Read the pinned guide.")
            op = self.write(None, "put", BOARD, rkey, changed)
            self.boards[0] = (rkey, changed, op.cid or "")
            yield op
        elif beat == "temp-ban" and roles.temp_banned is not None:
            self.blocked.add(roles.temp_banned)
            yield self.mod_action(
                "ban", self.did(roles.temp_banned), "temporary-ban", expires_days=7
            )
        elif beat == "lift-temp-ban" and roles.temp_banned is not None:
            self.blocked.discard(roles.temp_banned)
            yield self.mod_action("unban", self.did(roles.temp_banned), "unban")
        elif beat == "promote" and roles.promoted is not None:
            if roles.promoted in self.joined:
                self.tick()
                record = self.assignment(roles.promoted, "Moderator")
                yield self.write(None, "put", ROLE_ASSIGNMENT, self.did(roles.promoted), record)
                self.moderators.append(roles.promoted)
        elif beat == "spam" and roles.spammer is not None and self.open_topics:
            if roles.spammer not in self.spammer_joined:
                self.spammer_joined.add(roles.spammer)
                yield from self.join(roles.spammer)
            if roles.spammer not in self.blocked:
                yield self.new_reply(roles.spammer, self.pick_topic(), spam=True)
        elif beat == "ban-spammer" and roles.spammer is not None:
            self.blocked.add(roles.spammer)
            yield self.mod_action("ban", self.did(roles.spammer), "ban")

    def mod_action(
        self, action: str, subject: str | StrongRef, reason: str, *, expires_days: int = 0
    ) -> Operation:
        """``subject``: a member's DID, or a post."""
        self.tick()
        moderator = self.rng.choice(self.moderators) if self.moderators else None
        record = mod_action_record(
            MOD_ACTION_PREFIX + action,
            subject_did=subject if isinstance(subject, str) else None,
            subject_post=subject if isinstance(subject, StrongRef) else None,
            reason=self.prose.reason(reason), created_by=self.did(moderator),
            created_at=iso(self.t),
            expires_at=iso(self.t + expires_days * 86_400_000_000) if expires_days else None,
        )
        return self.write(None, "create", MOD_ACTION, self.tid(), record)

    def moderate(self, kind: str) -> Iterator[Operation]:
        """One moderation action of ``kind`` on a fitting post, if there is one."""
        rng = self.rng
        if kind == "pin":
            candidates = [t for t in self.topics[-30:] if not t.pinned and not t.post.deleted]
            if candidates:
                topic = rng.choice(candidates)
                topic.pinned = True
                yield self.mod_action("pin", topic.post.ref, "pin")
        elif kind == "unpin":
            pinned = [t for t in self.topics if t.pinned]
            if pinned:
                pinned[0].pinned = False
                yield self.mod_action("unpin", pinned[0].post.ref, "unpin")
        elif kind == "lock":
            if len(self.open_topics) > 1:
                topic = self.open_topics[int(rng.random() * len(self.open_topics))]
                topic.locked = True
                self.open_topics.remove(topic)
                yield self.mod_action("lock", topic.post.ref, "lock")
        elif kind == "unlock":
            locked = [t for t in self.topics if t.locked]
            if locked:
                topic = locked[0]
                topic.locked = False
                self.open_topics.append(topic)
                yield self.mod_action("unlock", topic.post.ref, "unlock")
        elif kind == "hide":
            post = self.pick_recent(leaf_replies=True, by_moderators=False)
            if post is not None:
                post.hidden = True
                self.hidden.append(post)
                if post.topic is not None and post in post.topic.recent_replies:
                    post.topic.recent_replies.remove(post)
                yield self.mod_action("delete", post.ref, "hide")
        elif kind == "unhide" and self.hidden:
            post = self.hidden.pop(0)
            post.hidden = False
            yield self.mod_action("undelete", post.ref, "unhide")

    # --- posts ---

    def pick_author(self) -> int:
        joined, rng = self.joined, self.rng
        for _ in range(8):
            # Early joiners post the most, as on any forum.
            member = joined[int(len(joined) * rng.random() ** 1.6)]
            if member not in self.blocked:
                return member
        return self.roles.admin

    def pick_topic(self) -> _Topic:
        topics, rng = self.open_topics, self.rng
        if rng.random() < 0.7:
            recent = min(len(topics), 20)
            return topics[len(topics) - 1 - int(rng.random() * recent)]
        return topics[int(rng.random() * len(topics))]

    def pick_recent(
        self, *, leaf_replies: bool = False, by_moderators: bool = True
    ) -> _Post | None:
        """A recent live post; ``leaf_replies``: a reply nobody has answered (what gets
        deleted or hidden: whether replies under a removed post stay visible is the
        appview's policy, not the story's)."""
        posts, rng = self.recent_posts, self.rng
        if not posts:
            return None
        for _ in range(6):
            post = posts[int(rng.random() * len(posts))]
            if post.deleted or post.hidden or post.author in self.blocked:
                continue
            if leaf_replies and (post.topic is None or post.answered):
                continue
            if not by_moderators and (
                post.author in self.moderators or post.author == self.roles.spammer
            ):
                continue
            return post
        return None

    def new_topic(self) -> Operation:
        author = self.pick_author()
        rkey_board, _board, board_cid = self.boards[int(self.rng.random() * len(self.boards))]
        self.tick()
        text = self.prose.body()
        record = topic_record(
            self.prose.title(), text, forum=self.forum_ref,
            board=StrongRef(at_uri(self.forum.did, BOARD, rkey_board), board_cid),
            created_at=iso(self.t), langs=["en"], shape=self.shape,
        )
        rkey = self.tid()
        op = self.write(author, "create", POST, rkey, record)
        post = _Post(op.uri, rkey, author, record, op.cid or "", None)
        topic = _Topic(post)
        self.topics.append(topic)
        self.open_topics.append(topic)
        self.recent_posts.append(post)
        return op

    def new_reply(self, author: int, topic: _Topic, *, spam: bool = False) -> Operation:
        rng = self.rng
        parent = topic.post
        if topic.recent_replies and rng.random() < 0.35:
            parent = topic.recent_replies[int(rng.random() * len(topic.recent_replies))]
            parent.answered = True
        self.tick()
        if spam:
            text = SPAM[int(rng.random() * len(SPAM))]
        elif rng.random() < 0.2:
            quoted = self.members[parent.author].handle
            # the first paragraph: an edit only ever appends to a body
            text = self.prose.quoting(self.prose.excerpt(parent.record["text"]), quoted,
                                      parent.uri)
        else:
            text = self.prose.body()
        record = reply_record(
            text, forum=self.forum_ref, root=topic.post.ref, parent=parent.ref,
            created_at=iso(self.t), langs=["en"], shape=self.shape,
        )
        rkey = self.tid()
        op = self.write(author, "create", POST, rkey, record)
        post = _Post(op.uri, rkey, author, record, op.cid or "", topic)
        topic.recent_replies.append(post)
        self.recent_posts.append(post)
        return op

    def extras(self) -> Iterator[Operation]:
        """What follows a post: reactions, and now and then an edit, a delete or a
        moderation action."""
        size, rng = self.size, self.rng
        reactions = int(size.reaction_rate) + (rng.random() < size.reaction_rate % 1)
        for _ in range(reactions):
            yield from self.react()
        if rng.random() < size.edit_rate:
            yield from self.edit()
        if rng.random() < size.delete_rate:
            yield from self.delete()
        if rng.random() < size.mod_action_rate:
            kind = rng.choice(("hide", "hide", "pin", "lock", "unhide", "unpin", "unlock"))
            yield from self.moderate(kind)

    def react(self) -> Iterator[Operation]:
        rng = self.rng
        if self.recent_reactions and rng.random() < 0.08:
            member, rkey = self.recent_reactions.popleft()
            self.tick()
            yield self.write(member, "delete", REACTION, rkey, None)
            return
        post = self.pick_recent()
        if post is None:
            return
        member = self.pick_author()
        if member == post.author:
            return
        self.tick()
        record = reaction_record(post.ref, self.prose.reaction(), created_at=iso(self.t))
        rkey = self.tid()
        self.recent_reactions.append((member, rkey))
        yield self.write(member, "create", REACTION, rkey, record)

    def edit(self) -> Iterator[Operation]:
        post = self.pick_recent()
        if post is None:
            return
        self.tick()
        record = edited(post.record, text=post.record["text"] + "\n\n" + self.prose.edit_note(),
                        updatedAt=iso(self.t))
        op = self.write(post.author, "put", POST, post.rkey, record)
        post.record, post.cid = record, op.cid or ""
        yield op

    def delete(self) -> Iterator[Operation]:
        post = self.pick_recent(leaf_replies=True)
        if post is None:
            return
        post.deleted = True
        if post.topic is not None and post in post.topic.recent_replies:
            post.topic.recent_replies.remove(post)
        self.tick()
        yield self.write(post.author, "delete", POST, post.rkey, None)
