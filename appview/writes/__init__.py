"""Writing to repositories on members' behalf (and, through the same writer, the Forum
account's): ``writer`` (validate, limit, write through a PDS session, log as ``local``,
project: read-your-writes), ``forum`` (what the read models allow a member to write:
topics, replies, edits, deletes, reactions, membership), ``ratelimit`` and ``errors``.
docs/writing.md tells the whole path."""
