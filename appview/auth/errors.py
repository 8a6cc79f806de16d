"""What can go wrong when a member signs in or writes through their session; every
message is meant to be shown to the member (or logged) as it is."""

from __future__ import annotations


class AuthError(Exception):
    """Base of every sign-in and session failure."""


class IdentityError(AuthError):
    """A handle, DID or PDS URL that does not resolve to an account."""


class MetadataError(AuthError):
    """A PDS's or authorization server's OAuth metadata is missing, malformed, or fails
    one of the checks AT Protocol OAuth requires."""


class NoOAuth(MetadataError):
    """The PDS serves no OAuth metadata at all: sign in with an app password instead."""

    def __init__(self, message: str, *, did: str | None, handle: str | None,
                 pds_url: str) -> None:
        super().__init__(message)
        self.did = did
        self.handle = handle
        self.pds_url = pds_url


class ServerRefused(AuthError):
    """An authorization server or PDS answered with an OAuth or XRPC error."""

    def __init__(self, message: str, *, status: int, error: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class CallbackError(AuthError):
    """The redirect back from the authorization server is not one to accept (unknown or
    reused state, wrong issuer, an error answer, a token for another account)."""


class SessionExpired(AuthError):
    """The session is gone (signed out, expired, revoked, or its refresh was refused):
    the member has to sign in again."""
