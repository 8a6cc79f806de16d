"""Why a write was not made, in words a member can read, with the HTTP status the web
answers it with. Every failure of ``appview.writes`` is a :class:`WriteError`; nothing
half-done is left behind any of them (the event log and the read models change only
after the PDS has accepted a write)."""

from __future__ import annotations


class WriteError(Exception):
    """Base of every refused or failed write: ``status`` is the HTTP status to answer,
    ``code`` a short machine name (the JSON API's ``error``), the message the sentence."""

    status = 500
    code = "WriteFailed"


class InvalidRecord(WriteError):
    """The record would be marked invalid by our own lexicon validator (so the
    projections would skip it): never sent. ``field`` names the record's field (``text``,
    ``title``, ``reaction``...), ``reason`` the validator's words."""

    status = 400
    code = "InvalidRecord"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class BadWrite(WriteError):
    """The request itself is wrong (a parent in another thread, a title on a reply)."""

    status = 400
    code = "BadRequest"


class NotFound(WriteError):
    """The board, topic or post the write is about is not known (or not visible)."""

    status = 404
    code = "NotFound"


class Forbidden(WriteError):
    """The read models say no: banned (the message carries the reason), a locked topic,
    a role without the permission, another member's post."""

    status = 403
    code = "Forbidden"


class RateLimited(WriteError):
    """Too many writes by one member: ``retry_after`` whole seconds until the next one
    is accepted."""

    status = 429
    code = "RateLimited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SignInAgain(WriteError):
    """The member's session at their PDS has ended (refresh refused, signed out)."""

    status = 401
    code = "SessionExpired"


class WriteRefused(WriteError):
    """The member's PDS refused the write (a 4xx): ``pds_status`` and ``pds_error`` are
    its answer, the message its words. A changed record (``InvalidSwap``) is a 409."""

    code = "PdsRefused"

    def __init__(self, message: str, *, pds_status: int, pds_error: str) -> None:
        super().__init__(message)
        self.pds_status = pds_status
        self.pds_error = pds_error
        self.status = 409 if pds_error == "InvalidSwap" else 400


class PdsUnavailable(WriteError):
    """The member's PDS did not answer in time, could not be reached, or failed (5xx).
    Nothing was logged; if the PDS did commit the write after all, it arrives with the
    network's copy like any other record."""

    status = 503
    code = "PdsUnavailable"


class ForumNotReady(WriteError):
    """The forum has no forum record in the read models yet: posts cannot reference it."""

    status = 503
    code = "ForumNotReady"


class Conflict(WriteError):
    """The forum's state forbids the change: a category that still has boards, a board
    with posts, a theme the policy names as a default."""

    status = 409
    code = "Conflict"

