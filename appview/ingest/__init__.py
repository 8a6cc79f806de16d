"""Getting observations into the event log: Jetstream v1 lines (live or from a file)."""
