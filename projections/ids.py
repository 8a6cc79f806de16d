"""Read-model ids: stable across rebuilds, derived only from the at-uri, URL-safe strings.

Forum-owned records (categories, boards, roles, themes, modActions) are identified by
their rkey: they all live in one repo, so the rkey is unique per collection. Posts come
from many repos, so their id adds a short digest of the author's DID.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

_AT_PREFIX = "at://"


def split_uri(uri: str) -> tuple[str, str, str] | None:
    """(did, collection, rkey) of an at-uri, or None when it is not of that shape."""
    if not uri.startswith(_AT_PREFIX):
        return None
    parts = uri[len(_AT_PREFIX) :].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


@lru_cache(maxsize=1 << 16)  # a pure function of the DID; a forum's authors repeat
def did_digest(did: str) -> str:
    """The first 6 characters of the lowercase base32 of sha256(did)."""
    # 6 base32 characters are the digest's first 30 bits; computed directly because
    # base64.b32encode is pure Python and this runs for every post
    bits = int.from_bytes(hashlib.sha256(did.encode("utf-8")).digest()[:4], "big") >> 2
    return "".join(_BASE32[(bits >> shift) & 31] for shift in (25, 20, 15, 10, 5, 0))


def post_id(uri: str) -> str:
    """``<rkey>-<did digest>`` for a post at-uri; a malformed uri gets the digest of
    the whole string so it still has a stable, URL-safe id."""
    parts = split_uri(uri)
    if parts is None:
        return f"x-{did_digest(uri)}"
    did, _collection, rkey = parts
    return f"{rkey}-{did_digest(did)}"


def record_id(uri: str) -> str:
    """The id of a forum-owned record: its rkey (the whole string if malformed)."""
    parts = split_uri(uri)
    return uri if parts is None else parts[2]
