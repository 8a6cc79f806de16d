"""Record validation against the ``space.atbb.*`` lexicons.

``LexiconValidator.load()`` reads the Lexicon JSON documents shipped in
``events/lexicons/`` and compiles every record type into a tree of small checking
closures, with each field's path baked in, so validating a record does no lexicon lookups
and builds no strings unless it fails. ``validate`` answers with a
:class:`events.model.Verdict`; it never raises, whatever it is given.

Beyond the lexicons, a few rules that Lexicon v1 cannot express are checked here after
the schema passes (``_RULES``): forum ownership, the role assignment's subject equal to
its record key, a topic's required title, the modAction subject kind fitting the action,
slugs, theme tokens and https font URLs, and the theme policy's defaults being offered.
``docs/lexicons.md`` lists them all.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

import regex

from events.ids import CID, DID, NSID, TID, AtUri, Handle, RecordKey
from events.model import ATBB_PREFIX, RecordEvent, Verdict

Check = Callable[[object], str | None]
"""A compiled check: None when the value fits, else the reason (starting with its path)."""

Rule = Callable[[dict[str, Any], str], str | None]

FORUM_OWNED_PREFIX: Final = "space.atbb.forum."
MOD_ACTION: Final = "space.atbb.modAction"
LEXICON_PACKAGE: Final = "events.lexicons"

# atproto integers are 64-bit, but only 53 bits survive JavaScript clients; the data model
# recommends staying inside that range, and our columns are BIGINT.
_MAX_SAFE_INT: Final = 2**53 - 1

_GRAPHEME: Final = regex.compile(r"\X")
# Ranges are in the pattern so that only days 29 to 31 need a calendar check.
_DATETIME: Final = re.compile(
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]{1,20})?"
    r"(?:Z|(?!-00:00)[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_URI: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:[^\x00-\x20\x7f\ud800-\udfff]+")
_LANGUAGE: Final = re.compile(r"[a-zA-Z]{1,8}(?:-[a-zA-Z0-9]{1,8})*")
_SLUG: Final = re.compile(r"[a-z0-9-]{1,64}")
# A theme token's name: a CSS custom property, with its dashes or (as the original atBB
# writes them) without.
_TOKEN_NAME: Final = re.compile(r"--[a-z0-9-]+|[a-z0-9][a-z0-9-]*")
_CSS_UNSAFE: Final = re.compile(r"[;{}<>\\\x00-\x1f\x7f]")
_HTTPS_URL: Final = re.compile(r"https://[^/?#\s\x00-\x1f]+(?:[/?#][^\s\x00-\x1f]*)?")
_DAYS_IN_MONTH: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Formats whose values repeat across records (the same forum, board and thread refs):
# a validator remembers the strings it has seen pass, up to a bound.
_MEMO_FORMATS: Final = frozenset({"at-uri", "cid", "did"})
_MEMO_SIZE: Final = 4096
MAX_THEME_TOKENS: Final = 500
MAX_TOKEN_VALUE_BYTES: Final = 1000

_MISSING: Final = object()

SUPERSEDED_REASONS: Final[tuple[re.Pattern[str], ...]] = (
    # Until the forum projection's version 3 the validator knew only bare strongRefs, and
    # said this of every reference the original atBB wraps ({forum: strongRef}, ...).
    re.compile(
        r"(?:post\.forum|post\.board|board\.category|membership\.forum)\.uri: "
        r"required field is missing"
    ),
    # ... and refused theme token names without their leading dashes ("color-bg").
    re.compile(r"theme\.tokens: .* is not a CSS custom property \(--\[a-z0-9-\]\+\)"),
)
"""Reasons an earlier validator gave for records this one may find valid: a stored
verdict with one of them is taken again (:meth:`LexiconValidator.reconsider`). Verdicts
are frozen in the log when a record is appended, and the log refuses the same record
again, so this is how a reading that became more lenient reaches the records already
stored (docs/adr/0012-reconsidered-verdicts.md). Only ever add to it."""


def is_superseded(reason: str | None) -> bool:
    """Whether an invalid verdict of this reason is one of the :data:`SUPERSEDED_REASONS`."""
    return reason is not None and any(
        pattern.fullmatch(reason) for pattern in SUPERSEDED_REASONS
    )


class LexiconError(ValueError):
    """A lexicon document we cannot use (unknown type, dangling ref, cycle...)."""


def is_forum_owned(collection: str) -> bool:
    """Whether only the Forum account may write this collection."""
    return collection.startswith(FORUM_OWNED_PREFIX) or collection == MOD_ACTION


def grapheme_count(text: str) -> int:
    """User-perceived characters (extended grapheme clusters), as atproto counts them."""
    return len(_GRAPHEME.findall(text))


def is_datetime(text: str) -> bool:
    """RFC 3339 with a timezone, as atproto requires: uppercase T and Z, no ``-00:00``."""
    if len(text) > 64 or _DATETIME.fullmatch(text) is None:
        return False
    day = int(text[8:10])
    if day <= 28:
        return True
    year, month = int(text[0:4]), int(text[5:7])
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return day <= (29 if leap else 28)
    return day <= _DAYS_IN_MONTH[month]


def _is_uri(text: str) -> bool:
    return len(text) <= 8192 and _URI.fullmatch(text) is not None


def _is_language(text: str) -> bool:
    return len(text) <= 128 and _LANGUAGE.fullmatch(text) is not None


def _is_at_identifier(text: str) -> bool:
    return DID.is_valid(text) or Handle.is_valid(text)


FORMATS: Final[Mapping[str, tuple[Callable[[str], bool], str]]] = MappingProxyType(
    {
        "datetime": (is_datetime, "an RFC 3339 datetime with a timezone"),
        "did": (DID.is_valid, "a did:plc or did:web DID"),
        "handle": (Handle.is_valid, "a handle"),
        "at-identifier": (_is_at_identifier, "a DID or a handle"),
        "at-uri": (AtUri.is_valid, "an at-uri (at://<did or handle>[/<nsid>[/<rkey>]])"),
        "nsid": (NSID.is_valid, "an NSID"),
        "cid": (CID.is_valid, "a CIDv1 in base32"),
        "uri": (_is_uri, "a URI"),
        "language": (_is_language, "a BCP-47 language tag"),
        "tid": (TID.is_valid, "a TID"),
        "record-key": (RecordKey.is_valid, "a record key"),
    }
)

_KEY_TYPES: Final[Mapping[str, tuple[Callable[[object], bool], str]]] = MappingProxyType(
    {
        "tid": (TID.is_valid, "a TID"),
        "any": (RecordKey.is_valid, "a record key"),
        "nsid": (NSID.is_valid, "an NSID"),
    }
)


def _kind(value: object) -> str:
    """The JSON name of a value's type, for reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _shown(value: object) -> str:
    """A short rendering of a rejected value (strings and numbers only: a rejected object
    could be huge)."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return f"a value of type {_kind(value)}"


def _plain(value: object) -> str:
    """A string as it is (shortened), anything else as :func:`_shown` renders it."""
    if isinstance(value, str):
        return value if len(value) <= 80 else value[:77] + "..."
    return _shown(value)


def _utf8_length(text: str) -> int | None:
    """UTF-8 length in bytes, or None when the string holds a lone surrogate."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _int_or_none(definition: Mapping[str, Any], key: str) -> int | None:
    value = definition.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise LexiconError(f"{key} must be an integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class _RecordType:
    collection: str
    key: str
    key_ok: Callable[[object], bool]
    key_description: str
    check: Check
    rule: Rule | None
    forum_owned: bool


class _Compiler:
    """Turns lexicon definitions into checks. Refs are compiled inline at every use, so
    each check knows the full path of the field it checks."""

    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        self._documents = documents
        # Shared by every field of a format, one set per format, owned by one validator.
        self._memos: Mapping[str, set[str]] = {name: set() for name in _MEMO_FORMATS}

    def resolve(self, ref: str, doc_id: str) -> tuple[str, str, Mapping[str, Any]]:
        """(document id, def name, definition) of a ref as written in ``doc_id``."""
        target_doc, _, name = ref.partition("#")
        target_doc = target_doc or doc_id
        name = name or "main"
        document = self._documents.get(target_doc)
        if document is None:
            raise LexiconError(f"{doc_id}: ref {ref!r} names an unknown lexicon {target_doc}")
        definition = document["defs"].get(name)
        if not isinstance(definition, Mapping):
            raise LexiconError(f"{doc_id}: ref {ref!r} names no definition")
        return target_doc, name, definition

    @staticmethod
    def type_name(doc_id: str, name: str) -> str:
        """The ``$type`` a union member carries."""
        return doc_id if name == "main" else f"{doc_id}#{name}"

    def compile(
        self, definition: Mapping[str, Any], path: str, doc_id: str, stack: tuple[str, ...]
    ) -> Check:
        kind = definition.get("type")
        builders: dict[str, Callable[[], Check]] = {
            "string": lambda: _string(definition, path, self._memos),
            "integer": lambda: _integer(definition, path),
            "boolean": lambda: _boolean(definition, path),
            "object": lambda: self._object(definition, path, doc_id, stack),
            "array": lambda: self._array(definition, path, doc_id, stack),
            "ref": lambda: self._ref(definition, path, doc_id, stack),
            "union": lambda: self._union(definition, path, doc_id, stack),
            "unknown": lambda: _unknown(path),
            "cid-link": lambda: _cid_link(path),
            "bytes": lambda: _bytes(definition, path),
            "blob": lambda: _blob(path),
            "null": lambda: _null(path),
        }
        builder = builders.get(kind) if isinstance(kind, str) else None
        if builder is None:
            raise LexiconError(f"{doc_id}: {path} has an unsupported type {kind!r}")
        return builder()

    def _object(
        self, definition: Mapping[str, Any], path: str, doc_id: str, stack: tuple[str, ...]
    ) -> Check:
        properties = definition.get("properties", {})
        required = set(definition.get("required", ()))
        nullable = frozenset(definition.get("nullable", ()))
        if not required <= set(properties):
            raise LexiconError(f"{doc_id}: {path} requires undeclared {required - set(properties)}")
        fields: list[tuple[str, Check, str | None]] = []
        for name, sub in properties.items():
            sub_path = f"{path}.{name}"
            missing = f"{sub_path}: required field is missing" if name in required else None
            fields.append((name, self.compile(sub, sub_path, doc_id, stack), missing))
        expected = f"{path}: expected an object, got "

        def check(value: object) -> str | None:
            if not isinstance(value, dict):
                return expected + _kind(value)
            for name, sub_check, missing in fields:
                item = value.get(name, _MISSING)
                if item is _MISSING:
                    if missing is not None:
                        return missing
                    continue
                if item is None and name in nullable:
                    continue
                problem = sub_check(item)
                if problem is not None:
                    return problem
            return None

        return check

    def _array(
        self, definition: Mapping[str, Any], path: str, doc_id: str, stack: tuple[str, ...]
    ) -> Check:
        max_items = _int_or_none(definition, "maxLength")
        min_items = _int_or_none(definition, "minLength")
        # Item checks are compiled once with a placeholder index; a failing item's reason
        # gets its real index substituted, so success builds no strings.
        item_path = f"{path}[\x00]"
        items = definition.get("items")
        item_check = self.compile(items, item_path, doc_id, stack) if items else None

        def check(value: object) -> str | None:
            if not isinstance(value, list):
                return f"{path}: expected an array, got {_kind(value)}"
            count = len(value)
            if max_items is not None and count > max_items:
                return f"{path}: {count} items, more than {max_items}"
            if min_items is not None and count < min_items:
                return f"{path}: {count} items, fewer than {min_items}"
            if item_check is not None:
                for index, item in enumerate(value):
                    problem = item_check(item)
                    if problem is not None:
                        return problem.replace(item_path, f"{path}[{index}]", 1)
            return None

        return check

    def _ref(
        self, definition: Mapping[str, Any], path: str, doc_id: str, stack: tuple[str, ...]
    ) -> Check:
        ref = definition.get("ref")
        if not isinstance(ref, str):
            raise LexiconError(f"{doc_id}: {path} is a ref without a ref string")
        target_doc, name, target = self.resolve(ref, doc_id)
        full = self.type_name(target_doc, name)
        if full in stack:
            raise LexiconError(f"{doc_id}: {path} refers to {full} recursively")
        return self.compile(target, path, target_doc, (*stack, full))

    def _union(
        self, definition: Mapping[str, Any], path: str, doc_id: str, stack: tuple[str, ...]
    ) -> Check:
        refs = definition.get("refs")
        if not isinstance(refs, list) or not refs:
            raise LexiconError(f"{doc_id}: {path} is a union without refs")
        closed = bool(definition.get("closed", False))
        members: list[tuple[str, frozenset[str], Check]] = []
        for ref in refs:
            target_doc, name, target = self.resolve(ref, doc_id)
            full = self.type_name(target_doc, name)
            if target.get("type") != "object":
                raise LexiconError(f"{doc_id}: union member {full} is not an object")
            if full in stack:
                raise LexiconError(f"{doc_id}: {path} refers to {full} recursively")
            check_member = self.compile(target, path, target_doc, (*stack, full))
            members.append((full, frozenset(target.get("required", ())), check_member))
        by_type = {full: member_check for full, _, member_check in members}
        names = ", ".join(full for full, _, _ in members)

        def check(value: object) -> str | None:
            if not isinstance(value, dict):
                return f"{path}: expected an object (one of {names}), got {_kind(value)}"
            declared = value.get("$type", _MISSING)
            if declared is not _MISSING:
                if not isinstance(declared, str):
                    return f"{path}.$type: expected a string, got {_kind(declared)}"
                member_check = by_type.get(declared)
                if member_check is not None:
                    return member_check(value)
                if closed:
                    return f"{path}: $type {_shown(declared)} is not one of {names}"
                # An open union's unknown $type is matched by shape: atBB's wrapped
                # references may carry the $type of whichever document declared the
                # wrapper, and the shape is what the reader goes by.
                return by_shape(value, declared)
            # atBB wrote union members without $type: match on required fields instead.
            return by_shape(value, None)

        def by_shape(value: dict[str, Any], declared: str | None) -> str | None:
            keys = value.keys()
            fit: Check | None = None
            count = 0
            for _, required, member_check in members:
                if keys >= required:
                    fit = member_check
                    count += 1
            if count == 1 and fit is not None:
                return fit(value)
            prefix = f"{path}: no $type, and it" if declared is None else (
                f"{path}: $type {_shown(declared)} names none of {names}, and it"
            )
            if count:
                fitting = ", ".join(full for full, required, _ in members if keys >= required)
                return f"{prefix} fits more than one of {fitting}"
            # The member with the most of its required fields present, if one stands out,
            # names the field that is missing: "post.forum.cid: required field is missing".
            present = sorted(((len(required & keys), c) for _, required, c in members),
                             key=lambda pair: pair[0], reverse=True)
            if present[0][0] and (len(present) == 1 or present[1][0] < present[0][0]):
                return present[0][1](value)
            return f"{prefix} has the required fields of none of {names}"

        return check


def _string(
    definition: Mapping[str, Any], path: str, memos: Mapping[str, set[str]]
) -> Check:
    max_bytes = _int_or_none(definition, "maxLength")
    min_bytes = _int_or_none(definition, "minLength")
    max_graphemes = _int_or_none(definition, "maxGraphemes")
    min_graphemes = _int_or_none(definition, "minGraphemes") or 0
    enum_values = definition.get("enum")
    allowed = frozenset(enum_values) if enum_values is not None else None
    listed = ", ".join(enum_values) if enum_values is not None else ""
    const = definition.get("const")
    fmt = definition.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise LexiconError(f"{path}: unknown string format {fmt!r}")
    valid_format, format_name = FORMATS[fmt] if fmt is not None else (None, "")
    not_string = f"{path}: expected a string, got "
    bare = (
        max_bytes is None
        and min_bytes is None
        and max_graphemes is None
        and not min_graphemes
        and const is None
    )
    # Most fields carry a format only or an enum only: they get a closure doing just that.
    # Every format rejects lone surrogates itself, so these need no UTF-8 check.
    if bare and allowed is None and valid_format is not None:
        memo = memos.get(fmt) if isinstance(fmt, str) else None
        return _format_only(path, valid_format, format_name, memo)
    if bare and allowed is not None and valid_format is None:

        def check_enum(value: object) -> str | None:
            if isinstance(value, str) and value in allowed:
                return None
            if not isinstance(value, str):
                return not_string + _kind(value)
            return f"{path}: {_shown(value)} is not one of {listed}"

        return check_enum

    def check(value: object) -> str | None:
        if not isinstance(value, str):
            return not_string + _kind(value)
        length = len(value)
        size = _utf8_length(value)
        if size is None:
            return f"{path}: holds a lone surrogate, not valid Unicode"
        if max_bytes is not None and size > max_bytes:
            return f"{path}: {size} bytes, more than {max_bytes}"
        if min_bytes is not None and size < min_bytes:
            return f"{path}: {size} bytes, fewer than {min_bytes}"
        # Graphemes never outnumber code points, so short strings need no count.
        if max_graphemes is not None and length > max_graphemes:
            count = grapheme_count(value)
            if count > max_graphemes:
                return f"{path}: {count} graphemes, more than {max_graphemes}"
        if min_graphemes and (length < min_graphemes or min_graphemes > 1):
            count = grapheme_count(value)
            if count < min_graphemes:
                return f"{path}: {count} graphemes, fewer than {min_graphemes}"
        if allowed is not None and value not in allowed:
            return f"{path}: {_shown(value)} is not one of {listed}"
        if const is not None and value != const:
            return f"{path}: must be {const!r}, got {_shown(value)}"
        if valid_format is not None and not valid_format(value):
            return f"{path}: not {format_name}: {_shown(value)}"
        return None

    return check


def _format_only(
    path: str, valid_format: Callable[[str], bool], format_name: str, memo: set[str] | None
) -> Check:
    not_string = f"{path}: expected a string, got "
    if memo is None:

        def check(value: object) -> str | None:
            if not isinstance(value, str):
                return not_string + _kind(value)
            if valid_format(value):
                return None
            return f"{path}: not {format_name}: {_shown(value)}"

        return check

    def check_memo(value: object) -> str | None:
        if not isinstance(value, str):
            return not_string + _kind(value)
        if value in memo:
            return None
        if valid_format(value):
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo.add(value)
            return None
        return f"{path}: not {format_name}: {_shown(value)}"

    return check_memo


def _integer(definition: Mapping[str, Any], path: str) -> Check:
    minimum = _int_or_none(definition, "minimum")
    maximum = _int_or_none(definition, "maximum")
    low = -_MAX_SAFE_INT if minimum is None else minimum
    high = _MAX_SAFE_INT if maximum is None else maximum
    enum_values = definition.get("enum")
    allowed = frozenset(enum_values) if enum_values is not None else None
    const = definition.get("const")

    def check(value: object) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{path}: expected an integer, got {_kind(value)}"
        if value < low:
            return f"{path}: {value} is less than the minimum {low}"
        if value > high:
            return f"{path}: {value} is more than the maximum {high}"
        if allowed is not None and value not in allowed:
            return f"{path}: {value} is not one of {sorted(allowed)}"
        if const is not None and value != const:
            return f"{path}: must be {const}, got {value}"
        return None

    return check


def _boolean(definition: Mapping[str, Any], path: str) -> Check:
    const = definition.get("const")

    def check(value: object) -> str | None:
        if not isinstance(value, bool):
            return f"{path}: expected a boolean, got {_kind(value)}"
        if const is not None and value != const:
            return f"{path}: must be {str(const).lower()}"
        return None

    return check


def _unknown(path: str) -> Check:
    def check(value: object) -> str | None:
        if not isinstance(value, dict):
            return f"{path}: expected an object, got {_kind(value)}"
        return None

    return check


def _null(path: str) -> Check:
    def check(value: object) -> str | None:
        return None if value is None else f"{path}: expected null, got {_kind(value)}"

    return check


def _cid_link(path: str) -> Check:
    def check(value: object) -> str | None:
        if not isinstance(value, dict) or set(value) != {"$link"}:
            return f"{path}: expected a CID link {{\"$link\": cid}}, got {_kind(value)}"
        if not CID.is_valid(value["$link"]):
            return f"{path}.$link: not a CIDv1 in base32: {_shown(value['$link'])}"
        return None

    return check


def _bytes(definition: Mapping[str, Any], path: str) -> Check:
    max_bytes = _int_or_none(definition, "maxLength")
    min_bytes = _int_or_none(definition, "minLength")

    def check(value: object) -> str | None:
        if not isinstance(value, dict) or set(value) != {"$bytes"}:
            return f"{path}: expected bytes {{\"$bytes\": base64}}, got {_kind(value)}"
        encoded = value["$bytes"]
        if not isinstance(encoded, str):
            return f"{path}.$bytes: expected a base64 string, got {_kind(encoded)}"
        try:
            size = len(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True))
        except (binascii.Error, ValueError):
            return f"{path}.$bytes: not base64"
        if max_bytes is not None and size > max_bytes:
            return f"{path}: {size} bytes, more than {max_bytes}"
        if min_bytes is not None and size < min_bytes:
            return f"{path}: {size} bytes, fewer than {min_bytes}"
        return None

    return check


def _blob(path: str) -> Check:
    link = _cid_link(f"{path}.ref")

    def check(value: object) -> str | None:
        if not isinstance(value, dict) or value.get("$type") != "blob":
            return f"{path}: expected a blob ({{\"$type\": \"blob\", ...}}), got {_kind(value)}"
        size = value.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return f"{path}.size: expected a non-negative integer"
        if not isinstance(value.get("mimeType"), str):
            return f"{path}.mimeType: expected a string"
        return link(value.get("ref"))

    return check


# --- rules Lexicon v1 cannot express ---------------------------------------------------


def _slug_rule(root: str) -> Rule:
    def rule(record: dict[str, Any], rkey: str) -> str | None:
        slug = record.get("slug")
        if slug is not None and _SLUG.fullmatch(slug) is None:
            return f"{root}.slug: {_shown(slug)} is not 1 to 64 characters of a-z, 0-9 and '-'"
        return None

    return rule


def _role_assignment_rule(record: dict[str, Any], rkey: str) -> str | None:
    subject = record["subject"]
    if subject != rkey:
        return (
            f"roleAssignment.subject: {_shown(subject)} is not the record key {_shown(rkey)} "
            "(an assignment is keyed by the member's DID)"
        )
    return None


def _theme_rule(record: dict[str, Any], rkey: str) -> str | None:
    tokens = record.get("tokens")
    if tokens is not None:
        if len(tokens) > MAX_THEME_TOKENS:
            return f"theme.tokens: {len(tokens)} entries, more than {MAX_THEME_TOKENS}"
        for name, value in tokens.items():
            if not isinstance(name, str) or _TOKEN_NAME.fullmatch(name) is None:
                return (
                    f"theme.tokens: {_shown(name)} is not a CSS custom property name "
                    "(--[a-z0-9-]+, or [a-z0-9][a-z0-9-]* without the dashes)"
                )
            if not isinstance(value, str):
                return f"theme.tokens.{name}: expected a string, got {_kind(value)}"
            size = _utf8_length(value)
            if size is None:
                return f"theme.tokens.{name}: holds a lone surrogate, not valid Unicode"
            if size > MAX_TOKEN_VALUE_BYTES:
                return f"theme.tokens.{name}: {size} bytes, more than {MAX_TOKEN_VALUE_BYTES}"
            if _CSS_UNSAFE.search(value):
                return (
                    f"theme.tokens.{name}: {_shown(value)} holds a character a token value may "
                    "not (; { } < > \\ or a control character)"
                )
    for index, url in enumerate(record.get("fontUrls") or ()):
        if _HTTPS_URL.fullmatch(url) is None:
            return f"theme.fontUrls[{index}]: only https URLs are allowed, got {_shown(url)}"
    return None


def _theme_policy_rule(record: dict[str, Any], rkey: str) -> str | None:
    offered = {entry["uri"] for entry in record["availableThemes"]}
    for name in ("defaultLightTheme", "defaultDarkTheme"):
        uri = record.get(name)
        if uri is not None and uri not in offered:
            return f"themePolicy.{name}: {_shown(uri)} is not in availableThemes"
    return None


_USER_ACTIONS: Final = frozenset({"ban", "unban"})


def _mod_action_rule(record: dict[str, Any], rkey: str) -> str | None:
    action = record["action"].rsplit(".", 1)[1]
    subject = record["subject"]
    declared = subject.get("$type")
    is_user = declared == f"{MOD_ACTION}#subjectUser" if declared is not None else (
        "did" in subject
    )
    if action in _USER_ACTIONS and not is_user:
        return f"modAction.subject: a {action} needs a user subject {{did}}, got a post subject"
    if action not in _USER_ACTIONS and is_user:
        return (
            f"modAction.subject: a {action} needs a post subject {{post: strongRef}}, "
            "got a user subject"
        )
    return None


def _post_rule(record: dict[str, Any], rkey: str) -> str | None:
    if "reply" not in record and "title" not in record:
        return "post.title: required on a topic (a post without reply)"
    return None


_RULES: Final[Mapping[str, Rule]] = MappingProxyType(
    {
        "space.atbb.forum.category": _slug_rule("category"),
        "space.atbb.forum.board": _slug_rule("board"),
        "space.atbb.forum.roleAssignment": _role_assignment_rule,
        "space.atbb.forum.theme": _theme_rule,
        "space.atbb.forum.themePolicy": _theme_policy_rule,
        MOD_ACTION: _mod_action_rule,
        "space.atbb.post": _post_rule,
    }
)


def read_documents() -> list[dict[str, Any]]:
    """The Lexicon JSON documents shipped in the package, sorted by id."""
    documents = []
    for entry in resources.files(LEXICON_PACKAGE).iterdir():
        if entry.name.endswith(".json"):
            documents.append(json.loads(entry.read_text(encoding="utf-8")))
    return sorted(documents, key=lambda document: str(document.get("id")))


class LexiconValidator:
    """Validates records of the collections its lexicons define. The lexicons are fixed at
    construction; the only state that changes is a bounded memo of strings that passed a
    format check (each set operation atomic), so one instance serves every thread."""

    def __init__(self, documents: Iterable[Mapping[str, Any]]) -> None:
        by_id: dict[str, Mapping[str, Any]] = {}
        for document in documents:
            doc_id = document.get("id")
            if document.get("lexicon") != 1 or not NSID.is_valid(doc_id):
                raise LexiconError(f"not a Lexicon v1 document with an NSID id: {doc_id!r}")
            if not isinstance(document.get("defs"), Mapping):
                raise LexiconError(f"{doc_id}: no defs")
            by_id[str(doc_id)] = document
        compiler = _Compiler(by_id)
        records: dict[str, _RecordType] = {}
        for doc_id, document in by_id.items():
            main = document["defs"].get("main")
            if not isinstance(main, Mapping) or main.get("type") != "record":
                continue
            records[doc_id] = self._record_type(compiler, doc_id, main)
        self._records: Mapping[str, _RecordType] = MappingProxyType(records)
        self._collections = frozenset(records)
        self._documents: Mapping[str, Mapping[str, Any]] = MappingProxyType(by_id)

    @classmethod
    def load(cls) -> LexiconValidator:
        """The validator of the lexicons shipped in ``events/lexicons/``."""
        return cls(read_documents())

    @staticmethod
    def _record_type(compiler: _Compiler, doc_id: str, main: Mapping[str, Any]) -> _RecordType:
        key = main.get("key")
        if not isinstance(key, str):
            raise LexiconError(f"{doc_id}: a record needs a key type")
        if key.startswith("literal:"):
            literal = key[len("literal:") :]

            def literal_ok(rkey: object) -> bool:
                return rkey == literal

            key_ok: Callable[[object], bool] = literal_ok
            key_description = f"the literal {literal!r}"
        elif key in _KEY_TYPES:
            key_ok, key_description = _KEY_TYPES[key]
        else:
            raise LexiconError(f"{doc_id}: unsupported record key type {key!r}")
        body = main.get("record")
        if not isinstance(body, Mapping) or body.get("type") != "object":
            raise LexiconError(f"{doc_id}: a record's body must be an object")
        root = doc_id.rsplit(".", 1)[1]
        return _RecordType(
            collection=doc_id,
            key=key,
            key_ok=key_ok,
            key_description=key_description,
            check=compiler.compile(body, root, doc_id, (doc_id,)),
            rule=_RULES.get(doc_id),
            forum_owned=is_forum_owned(doc_id),
        )

    @property
    def collections(self) -> frozenset[str]:
        """The record collections this validator knows."""
        return self._collections

    @property
    def documents(self) -> Mapping[str, Mapping[str, Any]]:
        """The lexicon documents, by id."""
        return self._documents

    def record_key_type(self, collection: str) -> str | None:
        """The lexicon's key type of a collection ("tid", "literal:self", "any"), if known."""
        record_type = self._records.get(collection)
        return None if record_type is None else record_type.key

    def validate(
        self, collection: str, rkey: str, record: object, *, did: str, forum_did: str
    ) -> Verdict:
        """The verdict on a created or updated record of ``did``'s repo. Never raises."""
        try:
            problem = self._envelope_problem(collection, rkey, did, forum_did)
            if problem is None:
                problem = self._record_problem(self._records[collection], rkey, record)
        except Exception as exc:  # bad input is normal: any surprise is a verdict, not a crash
            problem = f"record could not be validated ({type(exc).__name__})"
        return Verdict.ok() if problem is None else Verdict.invalid(problem)

    def reconsider(self, event: RecordEvent, *, forum_did: str) -> Verdict:
        """``event``'s verdict as this validator gives it, when the stored one is invalid
        for one of the :data:`SUPERSEDED_REASONS`; the stored verdict otherwise (any
        other invalid verdict, a signature's or a forged owner's, stands as it was)."""
        if event.valid or event.operation == "delete" or not is_superseded(event.reason):
            return Verdict(event.valid, event.reason)
        return self.validate(event.collection, event.rkey, event.record, did=event.did,
                             forum_did=forum_did)

    def validate_delete(
        self, collection: str, rkey: str, *, did: str, forum_did: str
    ) -> Verdict:
        """The verdict on a deletion: known collection, ownership and record key only."""
        try:
            problem = self._envelope_problem(collection, rkey, did, forum_did)
        except Exception as exc:  # as in validate: never raise on odd input
            problem = f"deletion could not be validated ({type(exc).__name__})"
        return Verdict.ok() if problem is None else Verdict.invalid(problem)

    def _envelope_problem(
        self, collection: str, rkey: str, did: str, forum_did: str
    ) -> str | None:
        record_type = self._records.get(collection) if isinstance(collection, str) else None
        if record_type is None:
            if isinstance(collection, str) and collection.startswith(ATBB_PREFIX):
                return f"unknown collection {_shown(collection)}: no lexicon defines it"
            return f"collection {_shown(collection)} is not a space.atbb.* record type"
        if record_type.forum_owned and did != forum_did:
            return (
                f"forum-owned collection {collection} from {_plain(did)}, "
                f"not the Forum account {_plain(forum_did)}"
            )
        if not record_type.key_ok(rkey):
            return (
                f"record key {_shown(rkey)} is not {record_type.key_description} "
                f"(the {collection} lexicon's key type is {record_type.key})"
            )
        return None

    @staticmethod
    def _record_problem(record_type: _RecordType, rkey: str, record: object) -> str | None:
        if not isinstance(record, dict):
            return f"record is not a JSON object but {_kind(record)}"
        declared = record.get("$type", _MISSING)
        if declared is _MISSING:
            return f"record has no $type (it must be {record_type.collection})"
        if declared != record_type.collection:
            return (
                f"record $type {_shown(declared)} does not match its collection "
                f"{record_type.collection}"
            )
        problem = record_type.check(record)
        if problem is None and record_type.rule is not None:
            problem = record_type.rule(record, rkey)
        return problem
