"""The running service: settings, the composition root, ingest, backfill, the devnet and the
CLI. Imports `events` and `projections`."""
