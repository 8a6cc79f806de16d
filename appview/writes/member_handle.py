"""A member's handle, logged when they sign in. Until the log holds an identity event of
a DID, its pages name the member by the DID; the network sends one when an account is
made or its handle changes, which for most members happened before this appview
listened (then only a full_sync would find it). Signing in is the moment the appview
resolves the member anyway: the handle their DID document claims, once it resolves back
to that DID, is logged as an ``IdentityChanged`` with source ``local`` and projected
before the sign-in's redirect (``appview.handle_claims`` says which seq it takes, so
the network's own identity events still win).

Best effort: a handle that does not resolve back, a directory that does not answer
within ``timeout`` seconds, or a log that cannot be written leaves the member signed in
and their pages as they were (logged)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from appview.auth.errors import AuthError
from appview.auth.identity import Identity
from appview.clock import Clock
from appview.handle_claims import identity_to_log
from appview.writes.writer import RecordWriter
from events.log import EventLog
from events.model import IdentityChanged

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0


class MemberHandles:
    def __init__(self, writer: RecordWriter, event_log: EventLog, clock: Clock,
                 identity: Callable[[], Identity], *, timeout: float = CHECK_SECONDS) -> None:
        self._writer = writer
        self._log = event_log
        self._clock = clock
        self._identity = identity
        self._timeout = timeout

    async def signed_in(self, did: str) -> IdentityChanged | None:
        """Log ``did``'s verified handle when the log names another (or none); the event
        logged, or None (nothing to log, or the check was not conclusive)."""
        try:
            handle = await asyncio.wait_for(self._verified(did), self._timeout)
        except (AuthError, TimeoutError) as exc:
            log.info("the handle of %s was not checked at sign-in: %s", did, exc or
                     "no answer in time")
            return None
        except Exception:  # a surprise from the network: the member is signed in anyway
            log.exception("checking the handle of %s at sign-in failed", did)
            return None
        if handle is None:
            return None
        try:
            event = await asyncio.to_thread(identity_to_log, self._log, did, handle,
                                            source="local", now=self._clock.now_us())
            if event is not None:
                await self._writer.log_observed(event)
        except Exception:  # the member is signed in either way; their pages show the DID
            log.exception("logging the handle of %s at sign-in failed", did)
            return None
        return event

    async def _verified(self, did: str) -> str | None:
        """The handle ``did``'s document claims when it resolves back to ``did``."""
        identity = self._identity()
        claimed = (await identity.resolve_did(did, fresh=False)).handle
        if claimed is None:
            return None
        handle = claimed.lower()
        try:
            resolved = await identity.resolve_handle(handle)
        except AuthError as exc:
            log.info("the handle %s of %s is not shown: %s", handle, did, exc)
            return None
        if resolved != did:
            log.info("the handle %s of %s is not shown: it resolves to %s", handle, did,
                     resolved)
            return None
        return handle
