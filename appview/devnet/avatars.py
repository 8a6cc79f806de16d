"""Avatars for the devnet's members, so the demo shows some: a small PNG drawn from the
DID (a mirrored 5x5 pattern in one colour, like the identicons of code forges), uploaded
as a blob and named by the member's ``app.bsky.actor.profile/self``, as a member's own
client would. Not part of the seeded forum: the seed's repos and events stay the same."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Mapping

from appview.devnet.pds import PdsHost
from appview.devnet.seed import SeededAccount

PROFILE = "app.bsky.actor.profile"
GRID = 5
CELL = 12  # pixels per cell: a 60 x 60 image


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")


def avatar_png(did: str) -> bytes:
    """The same image for the same DID, another for another."""
    digest = hashlib.sha256(did.encode()).digest()
    colour = bytes(64 + b % 160 for b in digest[:3])  # neither too dark nor too light
    background = b"\xf0\xf0\xf0"
    half = (GRID + 1) // 2
    on = [[bool(digest[3 + row * half + min(col, GRID - 1 - col)] & 1) for col in range(GRID)]
          for row in range(GRID)]
    rows = []
    for row in range(GRID):
        line = b"".join((colour if on[row][col] else background) * CELL
                        for col in range(GRID))
        rows += [b"\x00" + line] * CELL  # filter type 0 per scanline
    size = GRID * CELL
    header = size.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(b"".join(rows))) + _chunk(b"IEND", b""))


def give_avatars(hosts: Mapping[str, PdsHost], accounts: Iterable[SeededAccount], *,
                 every: int = 2) -> list[str]:
    """Every ``every``-th of ``accounts`` gets a profile with an avatar (the others keep
    their initials, as members without one do); their DIDs. ``hosts``: the network's PDS
    hosts, found by URL."""
    by_url = {host.url: host for host in hosts.values()}
    given = []
    for index, account in enumerate(accounts):
        if index % every:
            continue
        host = by_url[account.pds_url]
        blob = host.upload_blob(account.did, avatar_png(account.did), "image/png")
        host.repo(account.did).put(PROFILE, "self", {
            "$type": PROFILE, "displayName": account.handle.split(".")[0], "avatar": blob})
        given.append(account.did)
    return given
