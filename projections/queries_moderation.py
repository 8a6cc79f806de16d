"""What a moderation action is decided on (``appview.writes.forum_actions``): the post
acted on (hidden, locked, pinned), and whether a DID is known to the forum at all."""

from __future__ import annotations

from projections.ids import post_id
from projections.queries_common import Context, post_key
from projections.views import ModSubject


def subject(ctx: Context, post_ref: str) -> ModSubject | None:
    """The post (by id or at-uri) in state ``ok``, visible or not; None when unknown."""
    column, value = post_key(post_ref)
    row = ctx.session.query_one(
        "SELECT p.id, p.uri, p.cid, p.did, p.kind, p.thread_uri, p.hidden, p.locked,"
        f" p.pinned FROM posts p WHERE p.{column} = ? AND p.state = 'ok'"
        f" ORDER BY {ctx.text_order('p.uri')} LIMIT 1",
        (value,),
    )
    if row is None:
        return None
    pid, uri, cid, did, kind, thread_uri, hidden, locked, pinned = row
    return ModSubject(id=str(pid), uri=str(uri), cid=cid, did=str(did),
                      kind=str(kind or "reply"), thread_id=post_id(str(thread_uri or uri)),
                      hidden=hidden == 1, locked=locked == 1, pinned=pinned == 1)


def known(ctx: Context, did: str) -> bool:
    """Whether the forum knows ``did`` (a membership, a post, a role...; the Forum
    account itself)."""
    if did == ctx.forum_did:
        return True
    return ctx.session.query_one("SELECT 1 FROM members WHERE did = ?", (did,)) is not None


def did_for_handle(ctx: Context, handle: str) -> str | None:
    """The DID the forum knows by ``handle`` (as its members' handles are: lower case,
    an ``@`` in front dropped), None when none does."""
    name = handle.strip().removeprefix("@").lower()
    row = ctx.session.query_one(
        f"SELECT did FROM members WHERE handle = ? ORDER BY {ctx.text_order('did')} LIMIT 1",
        (name,))
    return None if row is None else str(row[0])
