"""Benchmarks: runnable scripts printing their figures beside a same-run baseline."""
