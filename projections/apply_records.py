"""Record tables: how each collection's record maps to columns, and the per-record merge
(newest rev decides rev/deleted, newest live version supplies the fields).

Extraction never raises: a field of the wrong type is stored as NULL (or the column's
default), so a malformed record that ingest let through cannot stop the projection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from events import collections as c
from events.model import RecordEvent, tid_to_int
from events.records import reference
from projections.apply_fold import RecordFold, Version
from projections.db import Session
from projections.ids import post_id, record_id
from projections.timestamps import from_unix_micros, normalize_datetime

Row = dict[str, Any]
Extract = Callable[[str, str, Mapping[str, Any] | None], Row]

CHUNK = 500

MOD_ACTION_PREFIX = "space.atbb.modAction."
ACTION_FAMILIES: Mapping[str, str] = {
    "ban": "ban",
    "unban": "ban",
    "lock": "lock",
    "unlock": "lock",
    "pin": "pin",
    "unpin": "pin",
    "delete": "hide",
    "undelete": "hide",
}
"""Each action and the family it shares with its reversal (latest per family wins)."""

ENFORCING_ACTIONS = frozenset({"ban", "lock", "pin", "delete"})


def dumps(value: Any) -> str:
    """JSON text with a canonical form, so equal values give equal rows."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_PLAIN = re.compile(r"[A-Za-z0-9_.-]*")


def string_list_json(items: list[str]) -> str:
    """:func:`dumps` of a list of strings; language tags need no escaping, so the common
    case is joined directly (a post's langs, on every post)."""
    if all(_PLAIN.fullmatch(item) for item in items):
        return "[" + ",".join(f'"{item}"' for item in items) + "]"
    return dumps(items)


def text_of(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def int_of(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    # BIGINT range on both dialects
    return value if -(2**63) <= value < 2**63 else None


def ref_of(value: Any) -> tuple[str | None, str | None]:
    """(uri, cid) of a strongRef; Nones when it is not one. A record's objects came out
    of a JSON parser, so they are dicts: asking for ``dict`` and not the ``Mapping`` ABC
    saves a Python-level ``__instancecheck__`` on each (five per reply at 1M events)."""
    if not isinstance(value, dict):
        return None, None
    uri = value.get("uri")
    cid = value.get("cid")
    return (uri if isinstance(uri, str) else None, cid if isinstance(cid, str) else None)


def rkey_time(rkey: str) -> str:
    """The creation time a TID record key encodes; the epoch for other keys. Used when
    a record has no parseable createdAt, so the fallback is a function of the uri."""
    try:
        micros = tid_to_int(rkey) >> 10
    except ValueError:
        micros = 0
    try:
        return from_unix_micros(micros)
    except (OverflowError, OSError, ValueError):
        return from_unix_micros(0)


def _get(record: Mapping[str, Any] | None, key: str) -> Any:
    return None if record is None else record.get(key)


def _forum(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    return {
        "name": text_of(_get(record, "name")),
        "description": text_of(_get(record, "description")),
        "created_at": normalize_datetime(_get(record, "createdAt")),
    }


def _category(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    return {
        "name": text_of(_get(record, "name")) or "",
        "description": text_of(_get(record, "description")),
        "slug": text_of(_get(record, "slug")),
        "sort_order": int_of(_get(record, "sortOrder")) or 0,
        "created_at": normalize_datetime(_get(record, "createdAt")),
    }


def _board(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    category_uri, category_cid = reference(record, "category")
    row = _category(uri, rkey, record)
    row["category_uri"] = category_uri
    row["category_cid"] = category_cid
    return row


def _post(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    if record is None:
        return dict.fromkeys(POST_FIELDS)
    reply = record.get("reply")
    langs = record.get("langs")
    created = normalize_datetime(record.get("createdAt")) or rkey_time(rkey)
    text = text_of(record.get("text"))
    common = {
        "text": text,
        # rendered once per batch by ``projections.prepare`` (in the preparing processes
        # during a bulk load, or carried over from the generation a rebuild replaces),
        # not on every view of a page
        "html": None,
        "created_at": created,
        "updated_at": normalize_datetime(record.get("updatedAt")),
        "langs": string_list_json([x for x in langs if isinstance(x, str)])
        if isinstance(langs, list)
        else None,
    }
    if reply is None:
        board_uri, _ = reference(record, "board")
        return {
            **common,
            "kind": "topic",
            "title": text_of(record.get("title")),
            "board_uri": board_uri,
            "root_uri": None,
            "parent_uri": None,
            "thread_uri": uri,
        }
    root_uri, _ = ref_of(reply.get("root")) if isinstance(reply, dict) else (None, None)
    parent_uri, _ = ref_of(reply.get("parent")) if isinstance(reply, dict) else (None, None)
    return {
        **common,
        "kind": "reply",
        "title": None,
        "board_uri": None,
        "root_uri": root_uri,
        "parent_uri": parent_uri,
        "thread_uri": root_uri,
    }


POST_FIELDS = (
    "kind",
    "title",
    "text",
    "html",
    "board_uri",
    "root_uri",
    "parent_uri",
    "thread_uri",
    "created_at",
    "updated_at",
    "langs",
)


def _membership(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    forum_uri, forum_cid = reference(record, "forum")
    return {
        "forum_uri": forum_uri,
        "forum_cid": forum_cid,
        "created_at": normalize_datetime(_get(record, "createdAt")),
    }


def _role(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    permissions = _get(record, "permissions")
    tokens = sorted({p for p in permissions if isinstance(p, str)}) if isinstance(
        permissions, list
    ) else []
    return {
        "name": text_of(_get(record, "name")) or "",
        "description": text_of(_get(record, "description")),
        "permissions": dumps(tokens),
        "priority": int_of(_get(record, "priority")),
        "created_at": normalize_datetime(_get(record, "createdAt")),
    }


def _role_assignment(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    role_uri, role_cid = ref_of(_get(record, "role"))
    return {
        # the record key is the member's DID: authority never comes from a field that
        # could disagree with it
        "subject_did": rkey,
        "role_uri": role_uri,
        "role_cid": role_cid,
        "created_by": text_of(_get(record, "createdBy")),
        "created_at": normalize_datetime(_get(record, "createdAt")),
    }


def action_name(value: Any) -> str | None:
    """The short name of a modAction token (``ban``...), None when unknown."""
    if not isinstance(value, str):
        return None
    name = value.removeprefix(MOD_ACTION_PREFIX)
    return name if name in ACTION_FAMILIES else None


def _mod_action(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    raw = _get(record, "action")
    name = action_name(raw)
    subject = _get(record, "subject")
    subject_did = subject_uri = subject_cid = None
    if isinstance(subject, dict):
        subject_did = text_of(subject.get("did"))
        subject_uri, subject_cid = ref_of(subject.get("post"))
    return {
        "action": MOD_ACTION_PREFIX + name if name else text_of(raw),
        "family": ACTION_FAMILIES[name] if name else None,
        "subject_did": subject_did,
        "subject_uri": subject_uri,
        "subject_cid": subject_cid,
        "reason": text_of(_get(record, "reason")),
        "created_by": text_of(_get(record, "createdBy")),
        "created_at": normalize_datetime(_get(record, "createdAt")),
        "expires_at": normalize_datetime(_get(record, "expiresAt")),
    }


def _reaction(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    subject_uri, subject_cid = ref_of(_get(record, "subject"))
    return {
        "subject_uri": subject_uri,
        "subject_cid": subject_cid,
        "reaction": text_of(_get(record, "reaction")),
        "created_at": normalize_datetime(_get(record, "createdAt")),
    }


def theme_fields(record: Mapping[str, Any] | None) -> Row:
    tokens = _get(record, "tokens")
    fonts = _get(record, "fontUrls")
    return {
        "name": text_of(_get(record, "name")) or "",
        "color_scheme": text_of(_get(record, "colorScheme")),
        "tokens": dumps(
            {k: v for k, v in tokens.items() if isinstance(v, str)}
            if isinstance(tokens, dict)
            else {}
        ),
        "css_overrides": text_of(_get(record, "cssOverrides")),
        "font_urls": dumps(
            [u for u in fonts if isinstance(u, str)] if isinstance(fonts, list) else []
        ),
        "created_at": normalize_datetime(_get(record, "createdAt")),
    }


def _theme(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    return theme_fields(record)


def _theme_policy(uri: str, rkey: str, record: Mapping[str, Any] | None) -> Row:
    entries = _get(record, "availableThemes")
    available: list[dict[str, str]] = []
    if isinstance(entries, list):
        for entry in entries:
            entry_uri, entry_cid = ref_of(entry)
            if entry_uri:
                available.append({"uri": entry_uri, **({"cid": entry_cid} if entry_cid else {})})
    choice = _get(record, "allowUserChoice")
    return {
        "available_themes": dumps(available),
        "default_light_theme": text_of(_get(record, "defaultLightTheme")),
        "default_dark_theme": text_of(_get(record, "defaultDarkTheme")),
        "allow_user_choice": 0 if choice is False else 1,
        "updated_at": normalize_datetime(_get(record, "updatedAt")),
    }


@dataclass(frozen=True)
class RecordTable:
    """How one collection lands in its table."""

    table: str
    collection: str
    extract: Extract
    fields: tuple[str, ...]
    id_of: Callable[[str], str] | None = None
    with_rkey: bool = True
    derived: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        head = ("uri", "id") if self.id_of else ("uri",)
        rkey = ("rkey",) if self.with_rkey else ()
        return (
            *head,
            "did",
            *rkey,
            "rev",
            "live_rev",
            "deleted",
            "cid",
            *self.fields,
            "indexed_at",
            *self.derived,
        )

    def select_in_sql(self, columns: Sequence[str]) -> str:
        """``columns`` of the rows of some uris, for :meth:`Session.query_in`."""
        return f"SELECT {', '.join(columns)} FROM {self.table} WHERE uri {{in}}"

    @property
    def update_action(self) -> str:
        return "UPDATE SET " + ", ".join(f"{col} = excluded.{col}" for col in self.columns[1:])

    def version(self, event: RecordEvent, uri: str) -> Version:
        """What a row needs of ``event``, whose at-uri is ``uri``: its fields extracted
        (None for a delete). The caller's uri, because ``RecordEvent.uri`` formats it
        anew at each call (two calls a version were 1.8M formattings at 1M events)."""
        fields = None if event.operation == "delete" else \
            self.extract(uri, event.rkey, event.record)
        return Version(uri, event.did, event.rkey, event.rev, event.operation,
                       event.cid, event.observed_at, fields)

    def new_row(self, top: Version, live: Version | None) -> Row:
        """A first row for ``top``'s record, with ``live``'s fields (if any)."""
        uri = top.uri
        row: Row = {"uri": uri}
        if self.id_of:
            row["id"] = self.id_of(uri)
        row["did"] = top.did
        if self.with_rkey:
            row["rkey"] = top.rkey
        row["rev"] = top.rev
        row["deleted"] = 1 if top.operation == "delete" else 0
        row["indexed_at"] = top.observed_at
        if live is None or live.fields is None:
            row["live_rev"] = row["cid"] = None
            row.update(self.extract(uri, top.rkey, None))
        else:
            row["live_rev"] = live.rev
            row["cid"] = live.cid
            row.update(live.fields)
        return row

    def merge(self, existing: Row | None, folded: RecordFold) -> Row:
        """The row after ``folded``: greatest rev decides rev/deleted/indexed_at,
        greatest live rev supplies cid and fields."""
        top, live = folded.top, folded.live
        if existing is None:
            row = self.new_row(top, live)
            if row["deleted"] and self.collection == c.POST:
                row["title"] = row["text"] = row["html"] = None
            return row
        row = dict(existing)
        if top.rev > row["rev"]:
            row["rev"] = top.rev
            row["deleted"] = 1 if top.operation == "delete" else 0
            row["indexed_at"] = top.observed_at
        if live is not None and live.fields is not None and (
                row["live_rev"] is None or live.rev > row["live_rev"]):
            row["live_rev"] = live.rev
            row["cid"] = live.cid
            row.update(live.fields)
        if row["deleted"] and self.collection == c.POST:
            # deleted by its author: the body and title are gone, the structure stays
            row["title"] = None
            row["text"] = None
            row["html"] = None
        return row


POST_DERIVED = (
    "state",
    "state_reason",
    "hidden",
    "suspended",
    "counted",
    "locked",
    "pinned",
)

TABLES: Mapping[str, RecordTable] = {
    t.collection: t
    for t in (
        RecordTable(
            "forum", c.FORUM, _forum, ("name", "description", "created_at"), with_rkey=False
        ),
        RecordTable(
            "categories",
            c.CATEGORY,
            _category,
            ("name", "description", "slug", "sort_order", "created_at"),
            id_of=record_id,
        ),
        RecordTable(
            "boards",
            c.BOARD,
            _board,
            (
                "name",
                "description",
                "slug",
                "sort_order",
                "created_at",
                "category_uri",
                "category_cid",
            ),
            id_of=record_id,
        ),
        RecordTable("posts", c.POST, _post, POST_FIELDS, id_of=post_id, derived=POST_DERIVED),
        RecordTable(
            "memberships", c.MEMBERSHIP, _membership, ("forum_uri", "forum_cid", "created_at")
        ),
        RecordTable(
            "roles",
            c.ROLE,
            _role,
            ("name", "description", "permissions", "priority", "created_at"),
            id_of=record_id,
        ),
        RecordTable(
            "role_assignments",
            c.ROLE_ASSIGNMENT,
            _role_assignment,
            ("subject_did", "role_uri", "role_cid", "created_by", "created_at"),
        ),
        RecordTable(
            "mod_actions",
            c.MOD_ACTION,
            _mod_action,
            (
                "action",
                "family",
                "subject_did",
                "subject_uri",
                "subject_cid",
                "reason",
                "created_by",
                "created_at",
                "expires_at",
            ),
            id_of=record_id,
        ),
        RecordTable(
            "reactions",
            c.REACTION,
            _reaction,
            ("subject_uri", "subject_cid", "reaction", "created_at"),
        ),
        RecordTable(
            "themes",
            c.THEME,
            _theme,
            ("name", "color_scheme", "tokens", "css_overrides", "font_urls", "created_at"),
            id_of=record_id,
        ),
        RecordTable(
            "theme_policy",
            c.THEME_POLICY,
            _theme_policy,
            (
                "available_themes",
                "default_light_theme",
                "default_dark_theme",
                "allow_user_choice",
                "updated_at",
            ),
            with_rkey=False,
        ),
    )
}
"""Every record table by collection."""


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def load_rows(session: Session, spec: RecordTable, uris: Iterable[str],
              columns: Sequence[str] | None = None) -> dict[str, Row]:
    """The stored rows of ``uris`` by uri: every column, or only ``columns`` (which
    must name ``uri``)."""
    wanted = sorted(set(uris))
    columns = spec.columns if columns is None else columns
    rows: dict[str, Row] = {}
    for values in session.query_in(spec.select_in_sql(columns), wanted):
        row = dict(zip(columns, values, strict=True))
        rows[row["uri"]] = row
    return rows


def write_rows(session: Session, spec: RecordTable, rows: Iterable[Row],
               stored: Container[str]) -> None:
    """Write ``rows`` into ``spec``'s table: those whose uri is in ``stored`` (the rows
    this transaction read) over the stored ones, the others as new rows
    (``Session.insert``: on PostgreSQL a straight COPY instead of an upsert)."""
    columns = spec.columns
    values = itemgetter(*columns)  # in C: a row of posts has 30 columns
    new: list[tuple[Any, ...]] = []
    old: list[tuple[Any, ...]] = []
    for row in rows:
        (old if row["uri"] in stored else new).append(values(row))
    session.insert(spec.table, columns, new)
    session.upsert(spec.table, columns, old, conflict="uri", action=spec.update_action)


@dataclass
class MergedTable:
    """What merging a batch did to one table: the stored rows before (absent when new)
    and after, for every record the batch touched."""

    spec: RecordTable
    before: dict[str, Row]
    after: dict[str, Row]

    def changed(self) -> list[str]:
        return [uri for uri, row in self.after.items() if self.before.get(uri) != row]


def merge_table(
    session: Session, spec: RecordTable, folds: Mapping[str, RecordFold],
    fresh: Container[str] = frozenset(),
) -> MergedTable:
    """Merge ``folds`` into their stored rows, read first; the uris in ``fresh`` are
    known to have none (``FoldedBatch.fresh``) and are not looked for."""
    before = load_rows(session, spec, [uri for uri in folds if uri not in fresh])
    after = {uri: spec.merge(before.get(uri), fold) for uri, fold in folds.items()}
    return MergedTable(spec, before, after)
