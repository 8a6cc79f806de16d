"""The devnet's PLC directory: ``GET /<did>`` serves DID documents the SDK's
``IdResolver(plc_url=...)`` resolves unchanged."""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from appview.devnet.keys import SigningKey
from appview.repos.cbor import encode

_CONTEXT = (
    "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/multikey/v1",
    "https://w3id.org/security/suites/secp256k1-2019/v1",
)


def genesis_did(key: SigningKey, handle: str, pds_name: str) -> str:
    """A did:plc the way the real directory derives one: base32 of sha256 of the signed
    genesis operation, 24 characters. The operation names the PDS host by name, not URL,
    because loopback ports change between runs and seeded DIDs must not."""
    operation: dict[str, Any] = {
        "type": "plc_operation",
        "rotationKeys": [key.did_key],
        "verificationMethods": {"atproto": key.did_key},
        "alsoKnownAs": [f"at://{handle}"],
        "services": {
            "atproto_pds": {"type": "AtprotoPersonalDataServer", "endpoint": f"https://{pds_name}"}
        },
        "prev": None,
    }
    operation["sig"] = base64.urlsafe_b64encode(key.sign(encode(operation))).decode().rstrip("=")
    digest = hashlib.sha256(encode(operation)).digest()
    return "did:plc:" + base64.b32encode(digest).decode("ascii").lower()[:24]


@dataclass(frozen=True, slots=True)
class PlcEntry:
    did: str
    handle: str
    signing_key_multibase: str
    pds_url: str


class PlcDirectory:
    def __init__(self) -> None:
        self._entries: dict[str, PlcEntry] = {}
        self._lock = threading.Lock()

    def register(self, did: str, handle: str, signing_key_multibase: str, pds_url: str) -> None:
        """Adds a DID, or replaces what the directory says about it."""
        if not did.startswith("did:plc:"):
            raise ValueError(f"not a did:plc: {did!r}")
        with self._lock:
            self._entries[did] = PlcEntry(did, handle, signing_key_multibase, pds_url)

    def update_handle(self, did: str, handle: str) -> None:
        self._update(did, handle=handle)

    def update_pds(self, did: str, pds_url: str) -> None:
        self._update(did, pds_url=pds_url)

    def _update(self, did: str, **changes: str) -> None:
        with self._lock:
            entry = self._entries.get(did)
            if entry is None:
                raise ValueError(f"DID not registered: {did}")
            self._entries[did] = replace(entry, **changes)

    def entry(self, did: str) -> PlcEntry | None:
        with self._lock:
            return self._entries.get(did)

    def dids(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    def document(self, did: str) -> dict[str, Any] | None:
        entry = self.entry(did)
        if entry is None:
            return None
        return did_document(entry)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_health", self._health)
        app.router.add_get("/{did}", self._get_document)
        app.router.add_get("/{did}/data", self._get_data)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "atbb-devnet"})

    async def _get_document(self, request: web.Request) -> web.Response:
        document = self.document(request.match_info["did"])
        if document is None:
            return _not_registered()
        return web.json_response(document, content_type="application/did+ld+json")

    async def _get_data(self, request: web.Request) -> web.Response:
        entry = self.entry(request.match_info["did"])
        if entry is None:
            return _not_registered()
        did_key = f"did:key:{entry.signing_key_multibase}"
        return web.json_response(
            {
                "did": entry.did,
                "rotationKeys": [did_key],
                "verificationMethods": {"atproto": did_key},
                "alsoKnownAs": [f"at://{entry.handle}"],
                "services": {
                    "atproto_pds": {
                        "type": "AtprotoPersonalDataServer",
                        "endpoint": entry.pds_url,
                    }
                },
            }
        )


def did_document(entry: PlcEntry) -> dict[str, Any]:
    return {
        "@context": list(_CONTEXT),
        "id": entry.did,
        "alsoKnownAs": [f"at://{entry.handle}"],
        "verificationMethod": [
            {
                "id": f"{entry.did}#atproto",
                "type": "Multikey",
                "controller": entry.did,
                "publicKeyMultibase": entry.signing_key_multibase,
            }
        ],
        "service": [
            {
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": entry.pds_url,
            }
        ],
    }


def _not_registered() -> web.Response:
    return web.json_response({"message": "DID not registered"}, status=404)
