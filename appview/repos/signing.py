"""The public keys that sign repository commits, read from DID documents, and checking a
commit's signature with them.

Keys are parsed by the ``atproto`` SDK (``did:key`` and Multikey, secp256k1 and P-256);
its ``verify_signature`` parses the key again on every call, so a parsed key is kept and
checked here with the same rules: the signature is the 64-byte compact ``r || s`` and
only its low-S form is accepted (atproto refuses the malleable twin). secp256k1, the
curve of nearly every account, is checked by libsecp256k1 (``coincurve``), several times
faster than OpenSSL's; P-256 by ``cryptography``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atproto_core.exceptions import AtProtocolError
from atproto_crypto.algs import ALGORITHM_TO_CLASS
from atproto_crypto.consts import P256_JWT_ALG, SECP256K1_JWT_ALG
from atproto_crypto.did import parse_did_key
from atproto_crypto.multibase import multibase_to_bytes
from coincurve import PublicKey as Secp256k1PublicKey
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

# Verification method types of older DID documents, whose publicKeyMultibase is the bare
# compressed key (no multicodec prefix).
_LEGACY_TYPES = {
    "EcdsaSecp256k1VerificationKey2019": SECP256K1_JWT_ALG,
    "EcdsaSecp256r1VerificationKey2019": P256_JWT_ALG,
}
_ECDSA = ec.ECDSA(hashes.SHA256())


class SigningKeyError(ValueError):
    """A key that cannot be read; the message says why."""


@dataclass(frozen=True)
class VerifyingKey:
    """A repository signing key: its ``did:key`` form and the parsed public key."""

    did_key: str
    algorithm: str
    _public: ec.EllipticCurvePublicKey
    _half_order: int
    _k256: Secp256k1PublicKey | None

    @classmethod
    def from_did_key(cls, did_key: str) -> VerifyingKey:
        try:
            parsed = parse_did_key(did_key)
            return cls._make(did_key, parsed.jwt_alg, parsed.key_bytes)
        except (AtProtocolError, ValueError, TypeError, IndexError) as exc:
            raise SigningKeyError(f"not a usable did:key ({exc})") from exc

    @classmethod
    def _make(cls, did_key: str, algorithm: str, key_bytes: bytes) -> VerifyingKey:
        alg_class = ALGORITHM_TO_CLASS.get(algorithm)
        if alg_class is None:
            raise SigningKeyError(f"unsupported key algorithm {algorithm}")
        alg = alg_class()
        try:
            public = alg.get_elliptic_curve_public_key(key_bytes)
            k256 = Secp256k1PublicKey(key_bytes) if algorithm == SECP256K1_JWT_ALG else None
        except ValueError as exc:
            raise SigningKeyError(f"not a point of {algorithm}: {exc}") from exc
        return cls(did_key, algorithm, public, alg.curve_order // 2, k256)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (compact, low-S) signs ``data`` with this key."""
        if len(signature) != 64:
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if s > self._half_order or r == 0 or s == 0:
            return False
        if self._k256 is not None:
            try:
                return bool(self._k256.verify(encode_dss_signature(r, s), data))
            except ValueError:  # r or s out of the curve's range
                return False
        try:
            self._public.verify(encode_dss_signature(r, s), data, _ECDSA)
        except InvalidSignature:
            return False
        return True


def signing_key_of(document: Any) -> VerifyingKey | None:
    """The ``#atproto`` verification method of a DID document, None when it has none.
    Raises :class:`SigningKeyError` when it has one that cannot be read."""
    if not isinstance(document, dict):
        return None
    for method in document.get("verificationMethod") or []:
        if not isinstance(method, dict) or not str(method.get("id", "")).endswith("#atproto"):
            continue
        multibase = method.get("publicKeyMultibase")
        if not isinstance(multibase, str):
            raise SigningKeyError("the #atproto verification method has no publicKeyMultibase")
        kind = method.get("type")
        if kind == "Multikey":
            return VerifyingKey.from_did_key(f"did:key:{multibase}")
        if isinstance(kind, str) and kind in _LEGACY_TYPES:
            try:
                raw = multibase_to_bytes(multibase)
            except (AtProtocolError, ValueError) as exc:
                raise SigningKeyError(f"publicKeyMultibase is not multibase ({exc})") from exc
            return VerifyingKey._make(f"legacy:{multibase}", _LEGACY_TYPES[kind], raw)
        raise SigningKeyError(f"the #atproto verification method has the unknown type {kind!r}")
    return None
