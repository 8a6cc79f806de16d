"""secp256k1 signing keys of devnet accounts (repo commits, PLC operations)."""

from __future__ import annotations

import hashlib
import secrets

import libipld
from coincurve import PrivateKey
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_CURVE_ORDER = 0xFFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFE_BAAEDCE6_AF48A03B_BFD25E8C_D0364141
_MULTICODEC_SECP256K1_PUB = b"\xe7\x01"


class SigningKey:
    """A secp256k1 key pair. Signatures are RFC 6979 deterministic (so seeded repos
    reproduce byte for byte), low-S and compact (r || s, 64 bytes), as atproto requires."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256K1):
            raise ValueError(f"expected a secp256k1 key, got {private_key.curve.name}")
        self._private = private_key
        # libsecp256k1 signs the same RFC 6979 signatures several times faster
        self._fast = PrivateKey(self.private_bytes)

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The same seed always gives the same key."""
        digest = hashlib.sha256(b"atbb-devnet-signing-key\x00" + seed).digest()
        scalar = int.from_bytes(digest, "big") % (_CURVE_ORDER - 1) + 1
        return cls(ec.derive_private_key(scalar, ec.SECP256K1()))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_seed(secrets.token_bytes(32))

    @property
    def private_bytes(self) -> bytes:
        return self._private.private_numbers().private_value.to_bytes(32, "big")

    @property
    def public_compressed(self) -> bytes:
        return self._private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    @property
    def multibase(self) -> str:
        """The Multikey ``publicKeyMultibase`` of a DID document (``zQ3s…``)."""
        return libipld.encode_multibase("z", _MULTICODEC_SECP256K1_PUB + self.public_compressed)

    @property
    def did_key(self) -> str:
        return f"did:key:{self.multibase}"

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._fast.sign(data))
        if s > _CURVE_ORDER // 2:
            s = _CURVE_ORDER - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
