"""Read models folded from the event log, their tracked positions and typed queries.
Imports `events` only."""
