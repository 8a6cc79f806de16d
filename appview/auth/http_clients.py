"""The network client a service keeps: an aiohttp pool and the identity port over it.

Made at first use, because a pool belongs to the event loop that runs it (every command
bootstraps the services; few of them call the network), and made again after it was
closed. The identity port (DID documents, handles) uses the same pool, so it is made
again with it, unless one was given (tests pass their own)."""

from __future__ import annotations

import aiohttp

from appview.auth.identity import Identity, NetworkIdentity
from appview.handles import HandleResolver
from appview.settings import Settings


class PooledClient:
    def __init__(self, settings: Settings, identity: Identity | None = None) -> None:
        self._settings = settings
        self._given = identity
        self._http: aiohttp.ClientSession | None = None
        self._identity: Identity | None = None

    def session(self) -> aiohttp.ClientSession:
        """The pool, made if there is none or it was closed."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
            self._identity = None  # it held the pool that is gone
        return self._http

    def identity(self) -> Identity:
        """The identity port given, or one over :meth:`session`."""
        if self._given is not None:
            return self._given
        http = self.session()
        if self._identity is None:
            self._identity = NetworkIdentity(self._settings, http,
                                             HandleResolver(self._settings, http))
        return self._identity

    async def aclose(self) -> None:
        """Close the pool (the web app's cleanup); the next call makes another."""
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._identity = None
