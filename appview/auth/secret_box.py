"""Encryption at rest of what a member's session holds (tokens, the DPoP private key):
AES-256-GCM with a key ring, each ciphertext bound to the row it belongs to.

The first key encrypts; every key decrypts, so a key is rotated by putting the new one
first and dropping the old one once no session it encrypted is left (docs/auth.md)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_VERSION = "v1"


class SecretBoxError(ValueError):
    """A key that is not usable, or a ciphertext no key opens."""


def new_key_text() -> str:
    """A fresh key in the form SESSION_ENCRYPTION_KEY takes (base64url, 32 bytes)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii").rstrip("=")


def parse_keys(raw: str) -> list[bytes]:
    """SESSION_ENCRYPTION_KEY: comma-separated base64url keys of 32 bytes, first first."""
    keys: list[bytes] = []
    for index, part in enumerate(p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            key = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError) as exc:
            raise SecretBoxError(f"key {index} is not base64url: {exc}") from None
        if len(key) != KEY_BYTES:
            raise SecretBoxError(f"key {index} has {len(key)} bytes, not {KEY_BYTES}")
        keys.append(key)
    return keys


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"atbb-secret-box\x00" + key).hexdigest()[:8]


class SecretBox:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SecretBoxError("no encryption key")
        self._keys = {_key_id(key): AESGCM(key) for key in keys}
        self._current = _key_id(keys[0])

    def seal(self, plaintext: bytes, *, bound_to: str) -> str:
        """``v1.<key id>.<base64url(nonce + ciphertext)>``; ``bound_to`` (the row's key)
        is authenticated, so a ciphertext copied into another row does not open."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plaintext, bound_to.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{_VERSION}.{self._current}.{body}"

    def open(self, text: str, *, bound_to: str) -> bytes:
        parts = text.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            raise SecretBoxError("not a sealed value")
        cipher = self._keys.get(parts[1])
        if cipher is None:
            raise SecretBoxError(f"sealed with key {parts[1]}, which is not configured")
        try:
            raw = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], bound_to.encode())
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SecretBoxError("the sealed value does not open (tampered or moved)") from exc
