"""secp256k1 signing keys, checked with the SDK's own verifier."""

from __future__ import annotations

from atproto_crypto.consts import SECP256K1_CURVE_ORDER
from atproto_crypto.did import parse_did_key, parse_multikey
from atproto_crypto.verify import verify_signature

from appview.devnet.keys import SigningKey


def test_same_seed_same_key_and_different_seeds_differ() -> None:
    a, b, c = (
        SigningKey.from_seed(b"one"),
        SigningKey.from_seed(b"one"),
        SigningKey.from_seed(b"two"),
    )
    assert a.private_bytes == b.private_bytes and a.did_key == b.did_key
    assert a.did_key != c.did_key
    assert SigningKey.generate().did_key != SigningKey.generate().did_key


def test_multikey_and_did_key_parse_with_the_sdk() -> None:
    key = SigningKey.from_seed(b"alice")
    assert key.multibase.startswith("zQ3s")
    assert key.did_key == f"did:key:{key.multibase}"
    parsed = parse_multikey(key.multibase)
    assert parsed.jwt_alg == "ES256K"
    assert parse_did_key(key.did_key).key_bytes == parsed.key_bytes
    assert len(key.public_compressed) == 33


def test_signatures_verify_are_compact_low_s_and_deterministic() -> None:
    key = SigningKey.from_seed(b"signer")
    for i in range(40):
        message = f"commit {i}".encode()
        signature = key.sign(message)
        assert len(signature) == 64
        assert int.from_bytes(signature[32:], "big") <= SECP256K1_CURVE_ORDER // 2
        assert signature == key.sign(message)
        assert verify_signature(key.did_key, message, signature)


def test_a_signature_does_not_verify_for_another_message_or_key() -> None:
    key, other = SigningKey.from_seed(b"a"), SigningKey.from_seed(b"b")
    signature = key.sign(b"hello")
    assert not verify_signature(key.did_key, b"hellp", signature)
    assert not verify_signature(other.did_key, b"hello", signature)
