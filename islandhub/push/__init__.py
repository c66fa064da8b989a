"""Push: reverse mappings, the outbox written with the publish, and idempotent delivery.

- reverse.py: a mapping file's `push:` section, resident fields -> the island's fields;
- rules.py: what a target may receive (ownership, recency, non-disclosure);
- outbox.py: the hook publish calls, one outbox row per target whose payload changed;
- deliver.py: sending due rows idempotently, backoff, dead letters, replay, dry runs;
- diff.py: payload documents and the field-level diff a dry run prints.
"""
