"""Members' sign-in to their own PDS: AT Protocol OAuth (a confidential client in
production, the loopback client in development), app passwords as the fallback, and the
server-side sessions that hold their tokens encrypted (docs/auth.md)."""
