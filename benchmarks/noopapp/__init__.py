"""Benchmark-only app: every job is a no-op, whichever worker runs it."""
