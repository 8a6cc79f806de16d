"""`atbb init`: a new forum in one command, as the original's bootstrap CLI. Through the
Forum account's agent (so every record is logged and projected at once, like any other
write), it writes to the Forum account's repo:

1. the forum record (``space.atbb.forum.forum/self``) with its name and description;
2. the default roles, Owner (``*``, priority 0), Admin (10), Moderator (20) and Member
   (30), each unless a role of that name is in the repo already;
3. the first Owner's role assignment (``space.atbb.forum.roleAssignment/<DID>``).

It asks the repo itself what is there (not the read models, which may lag or be
another log's), so running it twice writes nothing the second time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appview.auth.pds_session import XrpcFailure
from appview.clock import Clock
from appview.writes.forum import record_time
from appview.writes.writer import RecordWriter, RepoSession
from events.collections import FORUM, ROLE, ROLE_ASSIGNMENT
from events.records import StrongRef, forum_record, role_assignment_record, role_record
from events.roles import DEFAULT_ROLES, PERMISSION


@dataclass
class InitReport:
    """What ``init_forum`` did: each line ``created ...`` or ``kept ...``."""

    lines: list[str] = field(default_factory=list)
    created: int = 0

    def note(self, created: bool, what: str) -> None:
        self.lines.append(f"{'created' if created else 'kept'} {what}")
        self.created += int(created)


async def _get(session: RepoSession, collection: str, rkey: str) -> dict[str, Any] | None:
    try:
        return await session.call("GET", "com.atproto.repo.getRecord", params={
            "repo": session.did, "collection": collection, "rkey": rkey})
    except XrpcFailure as exc:
        if exc.status in (400, 404):
            return None
        raise


async def _roles(session: RepoSession) -> dict[str, StrongRef]:
    """The roles in the repo by name (the oldest of a name)."""
    found: dict[str, StrongRef] = {}
    cursor: str | None = None
    while True:
        params = {"repo": session.did, "collection": ROLE, "limit": "100", "reverse": "true"}
        if cursor:
            params["cursor"] = cursor
        page = await session.call("GET", "com.atproto.repo.listRecords", params=params)
        for item in page.get("records", []):
            value = item.get("value") if isinstance(item, dict) else None
            name = value.get("name") if isinstance(value, dict) else None
            if isinstance(name, str) and name not in found:
                found[name] = StrongRef(str(item["uri"]), str(item["cid"]))
        cursor = page.get("cursor") if isinstance(page.get("cursor"), str) else None
        if not cursor or not page.get("records"):
            return found


async def init_forum(writer: RecordWriter, session: RepoSession, clock: Clock, *,
                     name: str, description: str | None, owner: str | None) -> InitReport:
    """Write what a new forum needs that the repo lacks (module doc)."""
    report = InitReport()
    now = record_time(clock.now_us())
    if await _get(session, FORUM, "self") is None:
        await writer.create(session, FORUM, forum_record(name, created_at=now,
                                                         description=description),
                            rkey="self")
        report.note(True, f"the forum record {name!r}")
    else:
        report.note(False, "the forum record (already there)")
    roles = await _roles(session)
    for role_name, role_description, permissions, priority in DEFAULT_ROLES:
        if role_name in roles:
            report.note(False, f"the role {role_name}")
            continue
        written = await writer.create(session, ROLE, role_record(
            role_name, [p if p == "*" else PERMISSION + p for p in permissions], priority,
            created_at=now, description=role_description))
        assert written.cid is not None
        roles[role_name] = StrongRef(written.uri, written.cid)
        report.note(True, f"the role {role_name} (priority {priority})")
    if owner is not None:
        if await _get(session, ROLE_ASSIGNMENT, owner) is None:
            await writer.create(session, ROLE_ASSIGNMENT, role_assignment_record(
                owner, roles["Owner"], created_by=session.did, created_at=now), rkey=owner)
            report.note(True, f"{owner} as Owner")
        else:
            report.note(False, f"{owner}'s role assignment (already there)")
    return report
