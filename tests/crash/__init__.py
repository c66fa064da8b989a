"""Crash trials: syncs killed with SIGKILL part way, then run again (docs/testing.md)."""
