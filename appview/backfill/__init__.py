"""Backfill: repairing the log when live ingest was not enough. ``catch_up`` replays the
firehose from the stored cursor; ``full_sync`` re-reads every known repo from its PDS and
appends what the log lacks, then rebuilds the read models. See docs/backfill.md."""
