"""Members, roles, bans, reactions and board listing: the derived rows outside posts.

Each function re-derives its rows for the keys a batch touched, from the record tables
(already merged in the same transaction), with set-based SQL.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping

from events.model import AccountStatusChanged, IdentityChanged
from projections.apply_records import MergedTable, Row, chunks
from projections.db import Session, placeholders
from projections.schema import MEMBER_DERIVATION, REACTION_COUNT

MEMBER_COLUMNS = (
    "did",
    "handle",
    "handle_seq",
    "account_active",
    "account_status",
    "account_seq",
    "account_state",
)

# statuses under which an inactive account's content stays visible (transient states)
_VISIBLE_INACTIVE = frozenset({"desynchronized", "throttled"})


def account_state(active: bool, status: str | None) -> str:
    """'active', 'suspended' (content hidden, reversible) or 'removed' (deleted)."""
    if active:
        return "active"
    if status == "deleted":
        return "removed"
    if status in _VISIBLE_INACTIVE:
        return "active"
    return "suspended"


def update_member_base(
    session: Session,
    dids: Iterable[str],
    identities: Mapping[str, IdentityChanged],
    accounts: Mapping[str, AccountStatusChanged],
    known: Container[str] = frozenset(),
) -> tuple[set[str], set[str]]:
    """Ensure a member row for every DID, apply identity and account events (greatest
    seq wins); returns the DIDs whose account_state changed, and those whose row this
    ensured. ``known``: DIDs that have a row already (member rows are never deleted),
    which a bulk load remembers from its earlier batches: not written again."""
    wanted = sorted(did for did in set(dids) | set(identities) | set(accounts)
                    if did not in known)
    session.upsert("members", ("did",), ((did,) for did in wanted), conflict="did",
                   action="NOTHING")
    touched = sorted(set(identities) | set(accounts))
    stored: dict[str, Row] = {}
    for values in session.query_in(
        f"SELECT {', '.join(MEMBER_COLUMNS)} FROM members WHERE did {{in}}", touched
    ):
        row = dict(zip(MEMBER_COLUMNS, values, strict=True))
        stored[row["did"]] = row
    state_changed: set[str] = set()
    updates: list[Row] = []
    for did in touched:
        before = stored[did]
        row = dict(before)
        identity = identities.get(did)
        if identity is not None and (row["handle_seq"] is None or identity.seq > row["handle_seq"]):
            row["handle"], row["handle_seq"] = identity.handle, identity.seq
        account = accounts.get(did)
        if account is not None and (
            row["account_seq"] is None or account.seq > row["account_seq"]
        ):
            row["account_active"] = 1 if account.active else 0
            row["account_status"] = account.status
            row["account_seq"] = account.seq
            row["account_state"] = account_state(account.active, account.status)
        if row != before:
            updates.append(row)
            if row["account_state"] != before["account_state"]:
                state_changed.add(did)
    # an upsert of existing rows: INSERT types each value by its target column, so
    # all-NULL columns work on PostgreSQL too (UPDATE ... FROM (VALUES ...) would not)
    session.upsert(
        "members",
        MEMBER_COLUMNS,
        ([row[col] for col in MEMBER_COLUMNS] for row in updates),
        conflict="did",
        action="UPDATE SET "
        + ", ".join(f"{col} = excluded.{col}" for col in MEMBER_COLUMNS[1:]),
    )
    return state_changed, set(wanted)


def refresh_members(session: Session, dids: Iterable[str], forum_uri: str) -> None:
    """Re-derive membership, joined date, first post and is_member."""
    first, second = MEMBER_DERIVATION
    for part in chunks(sorted(set(dids))):
        where = f" WHERE did IN ({placeholders(len(part))})"
        session.execute(first + where, [forum_uri, *part])
        session.execute(second + where, part)


def refresh_board_listing(
    session: Session, boards: Iterable[str], categories: Iterable[str]
) -> None:
    """A board is listed when it is live and its category is live."""
    statement = (
        "UPDATE boards SET listed = CASE WHEN deleted = 0 AND EXISTS"
        " (SELECT 1 FROM categories c WHERE c.uri = boards.category_uri AND c.deleted = 0)"
        " THEN 1 ELSE 0 END WHERE {} IN ({})"
    )
    for column, keys in (("uri", boards), ("category_uri", categories)):
        for part in chunks(sorted(set(keys))):
            session.execute(statement.format(column, placeholders(len(part))), part)


def refresh_default_role(session: Session) -> None:
    session.execute(
        "UPDATE roles SET is_default = CASE WHEN uri = (SELECT r.uri FROM roles r"
        " WHERE r.deleted = 0 AND LOWER(r.name) = 'member' ORDER BY r.rkey LIMIT 1)"
        " THEN 1 ELSE 0 END"
    )


def role_subjects(
    session: Session, assignments: MergedTable | None, roles: Iterable[str]
) -> set[str]:
    """DIDs whose effective role a batch may have changed."""
    dids: set[str] = set()
    if assignments is not None:
        for uri in assignments.changed():
            dids.add(assignments.after[uri]["subject_did"])
    dids.update(
        did
        for (did,) in session.query_in(
            "SELECT subject_did FROM role_assignments WHERE role_uri {in}", sorted(set(roles))
        )
    )
    return dids


def refresh_member_roles(session: Session, dids: Iterable[str], forum_did: str) -> None:
    session.execute(
        "INSERT INTO member_roles (did, role_uri, permissions, authority)"
        " VALUES (?, NULL, '[\"*\"]', -1) ON CONFLICT (did) DO NOTHING",
        (forum_did,),
    )
    for part in chunks(sorted(set(dids) - {forum_did})):
        marks = placeholders(len(part))
        session.execute(f"DELETE FROM member_roles WHERE did IN ({marks})", part)
        session.execute(
            "INSERT INTO member_roles (did, role_uri, permissions, authority)"
            " SELECT a.subject_did, r.uri, r.permissions, r.priority"
            " FROM role_assignments a JOIN roles r ON r.uri = a.role_uri"
            f" WHERE a.deleted = 0 AND r.deleted = 0 AND a.subject_did IN ({marks})",
            part,
        )


def refresh_bans(session: Session, dids: Iterable[str]) -> None:
    """The DIDs whose latest live ban/unban action (greatest rkey) is a ban."""
    for part in chunks(sorted(set(dids))):
        marks = placeholders(len(part))
        latest: dict[str, tuple[str, ...]] = {}
        for did, rkey, uri, action, expires, created, reason in session.query(
            "SELECT subject_did, rkey, uri, action, expires_at, created_at, reason"
            f" FROM mod_actions WHERE family = 'ban' AND deleted = 0 AND subject_did IN ({marks})",
            part,
        ):
            if did not in latest or rkey > latest[did][0]:
                latest[did] = (rkey, uri, action, expires, created, reason)
        session.execute(f"DELETE FROM bans WHERE did IN ({marks})", part)
        session.execute_values(
            "INSERT INTO bans (did, action_uri, expires_at, created_at, reason)"
            " VALUES {values}",
            (
                (did, uri, expires, created, reason)
                for did, (_rkey, uri, action, expires, created, reason) in sorted(latest.items())
                if action.endswith(".ban")
            ),
        )


def reaction_keys(
    session: Session, merged: MergedTable | None, dids: Iterable[str]
) -> set[tuple[str, str]]:
    """(post, reaction) pairs whose count a batch may have moved."""
    keys: set[tuple[str, str]] = set()
    if merged is not None:
        for uri in merged.changed():
            for row in (merged.before.get(uri), merged.after[uri]):
                if row is not None and row["subject_uri"] and row["reaction"]:
                    keys.add((row["subject_uri"], row["reaction"]))
    keys.update(
        (subject, reaction)
        for subject, reaction in session.query_in(
            "SELECT subject_uri, reaction FROM reactions WHERE did {in}"
            " AND subject_uri IS NOT NULL AND reaction IS NOT NULL",
            sorted(set(dids)),
        )
    )
    return keys


def refresh_reaction_counts(session: Session, keys: Iterable[tuple[str, str]]) -> None:
    ordered = sorted(keys)
    session.execute_values(
        # a row-value IN, not a correlated EXISTS: SQLite turns the latter into a scan
        "WITH v (post_uri, reaction) AS (VALUES {values})"
        " DELETE FROM reaction_counts WHERE (post_uri, reaction) IN"
        " (SELECT post_uri, reaction FROM v)",
        ordered,
    )
    session.execute_values(
        "WITH v (post_uri, reaction) AS (VALUES {values}) "
        + REACTION_COUNT.format(
            reactions="v JOIN reactions r"
            " ON r.subject_uri = v.post_uri AND r.reaction = v.reaction"
        ),
        ordered,
    )
