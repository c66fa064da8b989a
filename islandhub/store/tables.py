"""SQLAlchemy Core tables of the store. Alembic migrations in migrations/ create them.

JSON documents are stored as text the hub serialises itself: the same bytes are hashed,
and SQLite and PostgreSQL then store them alike.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = sa.DateTime(timezone=True)
SYSTEM = sa.String(64)
SOURCE_ID = sa.String(255)
RESIDENT_ID = sa.String(36)
RUN_ID = sa.String(36)

# One row per run of one stream (or of a step: remap, resolve).
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", RUN_ID, primary_key=True),
    sa.Column("system", SYSTEM, nullable=False),
    sa.Column("stream", SYSTEM, nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),  # sync | remap
    sa.Column("status", sa.String(16), nullable=False),  # running | succeeded | failed
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS, nullable=True),
    sa.Column("pulled", sa.Integer, nullable=False, default=0),
    sa.Column("unchanged", sa.Integer, nullable=False, default=0),
    sa.Column("mapped", sa.Integer, nullable=False, default=0),
    sa.Column("quarantined", sa.Integer, nullable=False, default=0),
    sa.Column("published", sa.Integer, nullable=False, default=0),
    sa.Column("deleted", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index(None, "system", "stream", "started_at"),
)

# The cursor of each stream, committed with the batch it follows.
sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    # Progress of the stream's landed records: each landing gets the next sequence number;
    # records up to published_seq are resolved and published (a crash leaves the rest).
    sa.Column("landed_seq", sa.BigInteger, nullable=False, default=0),
    sa.Column("published_seq", sa.BigInteger, nullable=False, default=0),
)

sync_state_history = sa.Table(
    "sync_state_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("system", SYSTEM, nullable=False),
    sa.Column("stream", SYSTEM, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("recorded_at", TS, nullable=False),
    sa.Index(None, "system", "stream", "id"),
)

# The latest raw payload of every source record. Published when its seq is at most the
# stream's published_seq (sync_state).
landing = sa.Table(
    "landing",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("source_id", SOURCE_ID, primary_key=True),
    sa.Column("content_hash", sa.String(32), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # mapped | quarantined | deleted
    sa.Column("seq", sa.BigInteger, nullable=False),  # landing order within the stream
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("landed_at", TS, nullable=False),
    sa.Index(None, "system", "stream", "seq"),
)

# A source record in resident terms: the mapping's output (flat target paths).
source_records = sa.Table(
    "source_records",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("source_id", SOURCE_ID, primary_key=True),
    sa.Column("fields", sa.Text, nullable=False),
    sa.Column("warnings", sa.Text, nullable=True),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("observed_at", TS, nullable=False),
)

# Ids of other islands' records that a source record holds (its mapping's `references:`,
# migration 0009): deterministic evidence that the two describe one person. Written by
# landing with the record's source_records row and removed with it; a HETU-shaped
# ref_source_id is sealed like the source id it names, so the two compare equal. The index
# answers "who refers to this record" when the record itself is published.
record_references = sa.Table(
    "record_references",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("source_id", SOURCE_ID, primary_key=True),
    sa.Column("ref_system", SYSTEM, primary_key=True),
    sa.Column("ref_stream", SYSTEM, primary_key=True),
    sa.Column("ref_source_id", SOURCE_ID, nullable=False),
    sa.Index(None, "ref_system", "ref_stream", "ref_source_id"),
)

# Which resident each source record belongs to, and by which rule.
links = sa.Table(
    "links",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("source_id", SOURCE_ID, primary_key=True),
    sa.Column("resident_id", RESIDENT_ID, nullable=False, index=True),
    sa.Column("rule", sa.String(32), nullable=False),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("linked_at", TS, nullable=False),
)

# Keys that identify a resident deterministically; the national id only as a hash.
resident_keys = sa.Table(
    "resident_keys",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("resident_id", RESIDENT_ID, nullable=False, index=True),
)

residents = sa.Table(
    "residents",
    metadata,
    sa.Column("resident_id", RESIDENT_ID, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("merged_into", RESIDENT_ID, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# Every version of every golden record, as published.
resident_versions = sa.Table(
    "resident_versions",
    metadata,
    sa.Column("resident_id", RESIDENT_ID, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

# Where each value of a golden record version came from: field -> system, source id, run, rule.
lineage = sa.Table(
    "lineage",
    metadata,
    sa.Column("resident_id", RESIDENT_ID, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("fields", sa.Text, nullable=False),
)

# Records that could not be mapped (or read), with every reason, until they can be.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("source_id", SOURCE_ID, primary_key=True),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("excerpt", sa.Text, nullable=True),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("quarantined_at", TS, nullable=False),
)

# One run at a time per stream: the holder renews its lease with every batch.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("holder", sa.String(255), nullable=False),  # host:pid
    sa.Column("expires_at", TS, nullable=False),
)

# Every read, export and change of a person's data: who, when, why, what.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("purpose", sa.String(255), nullable=False),
    sa.Column("resident_id", RESIDENT_ID, nullable=True, index=True),
    sa.Column("detail", sa.Text, nullable=True),
)

# Every trained resolution model, newest last: the settings it was trained with and Splink's
# model JSON (migration 0002).
resolution_models = sa.Table(
    "resolution_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("trained_at", TS, nullable=False),
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
)


# Merges, splits and pins made by a data steward, with who and why; every later run and
# retraining respects the active ones (migration 0003, islandhub/resolve/steward.py).
# Merges and splits are kept as constraints over source records, which outlive resident ids:
# `records` must stay one resident, and never share one with `apart` (JSON lists of
# [system, stream, source_id]). A pin fixes `field` of `resident_id` to `value` (JSON).
steward_decisions = sa.Table(
    "steward_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # merge | split | pin | unpin
    sa.Column("resident_id", RESIDENT_ID, nullable=False, index=True),
    # merge: the id redirected; split: where the records went; pin: the resident it came from
    sa.Column("other_resident_id", RESIDENT_ID, nullable=True),
    sa.Column("records", sa.Text, nullable=True),
    sa.Column("apart", sa.Text, nullable=True),
    sa.Column("field", sa.String(128), nullable=True),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    # Publishing probes for active pins with every chunk; the resolve pass reads merges/splits.
    sa.Index(None, "kind", "active"),
)

# The result of every validated batch (scope "batch") and cross-system check (scope
# "cross"), kept as history for the quality report's trends (migration 0004).
dq_results = sa.Table(
    "dq_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", RUN_ID, nullable=True),
    sa.Column("system", SYSTEM, nullable=False),
    sa.Column("stream", SYSTEM, nullable=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("suite", sa.String(128), nullable=False),
    sa.Column("validated_at", TS, nullable=False),
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("scores", sa.Text, nullable=False),  # JSON: completeness, validity, ...
    sa.Column("results", sa.Text, nullable=False),  # JSON: per expectation, masked examples
    sa.Index(None, "system", "validated_at"),
)


# Changes owed to subscribed islands: written in the publish's transaction, delivered
# idempotently (one key per resident, version and target), retried with backoff, dead-lettered
# with the reason (migration 0005, islandhub/push/). A row superseded by a newer version of
# the same resident and target is never sent: each payload carries every field it sets.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target", SYSTEM, nullable=False),
    sa.Column("stream", SYSTEM, nullable=False),
    sa.Column("resident_id", RESIDENT_ID, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
    sa.Column("payload", sa.Text, nullable=False),  # JSON: the target's fields to send
    sa.Column("status", sa.String(16), nullable=False),  # pending|delivered|dead|superseded
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", TS, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("delivered_at", TS, nullable=True),
    sa.Index(None, "status", "next_attempt_at"),
    # The newest row per resident and target: what a new version's payload is compared with.
    sa.Index(None, "resident_id", "target", "stream"),
)


# Source records erased on a resident's request whose island has not deleted them yet:
# landing skips them until the island reports the delete (migration 0006).
tombstones = sa.Table(
    "tombstones",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("source_id", SOURCE_ID, primary_key=True),
    sa.Column("erasure_id", sa.String(36), nullable=False),
    sa.Column("erased_at", TS, nullable=False),
)

# Source records published since the last resolution pass: what an incremental pass resolves
# against the existing residents (migration 0007). Publish queues a record in the transaction
# that links it; the pass deletes the entries it read (same run_id) in the transaction that
# writes its result, so a record published meanwhile stays queued for the next pass.
resolution_queue = sa.Table(
    "resolution_queue",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("source_id", SOURCE_ID, primary_key=True),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("queued_at", TS, nullable=False),
)


# The fingerprint of the key the store's national ids are sealed with (migration 0008,
# islandhub/store/sealing.py): opening the store with another key is refused.
sealing_keys = sa.Table(
    "sealing_keys",
    metadata,
    sa.Column("purpose", sa.String(32), primary_key=True),  # national_id
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("sealed_at", TS, nullable=False),
)

# Each current source record standardised for matching (matching.frame_from_store), kept so
# that a pass reads it instead of standardising every record again. A cache: a row is used
# only while its stamp (frame version, key fingerprint, the source record's run) still holds,
# and rows whose source record is gone are deleted by the next read and by erasure. National
# ids are held only as their keyed lookup hash (migration 0007).
resolution_frame = sa.Table(
    "resolution_frame",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("source_id", SOURCE_ID, primary_key=True),
    sa.Column("stamp", sa.String(120), nullable=False),
    sa.Column("row", sa.Text, nullable=False),
)

# The kept frame's blocking keys and term-frequency keys (resolve/frame_store.py): 64-bit
# hashes of the values a blocking rule or a term-frequency column of the model reads, one
# row per key and record, written and deleted with the record's frame row. An incremental
# pass finds a changed record's candidates and the frequencies of its values by key here
# instead of reading the whole frame. They go wherever the frame's row goes (erasure too).
resolution_keys = sa.Table(
    "resolution_keys",
    metadata,
    sa.Column("key", sa.BigInteger, primary_key=True),
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("source_id", SOURCE_ID, primary_key=True),
    sa.Index(None, "system", "stream", "source_id"),
)

# How far the kept frame has followed each stream: every record landed up to `seq` (landing's
# sequence, which moves with every change, deletion or quarantine of a record) has its row
# and keys made with `stamp` (frame version, key fingerprint, keys' spec). A pass checks
# only the records landed since; a stream without a mark, or with another stamp, is checked
# whole. Deleted with the frame when it is dropped (a new sealing key).
resolution_marks = sa.Table(
    "resolution_marks",
    metadata,
    sa.Column("system", SYSTEM, primary_key=True),
    sa.Column("stream", SYSTEM, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("stamp", sa.String(120), nullable=False),
)


def is_current() -> sa.ColumnElement[bool]:
    """A resident who is someone now: active, and not merged into another resident."""
    return sa.and_(residents.c.active.is_(True), residents.c.merged_into.is_(None))


def same_source(a: sa.Table, b: sa.Table) -> sa.ColumnElement[bool]:
    """The join condition of two tables keyed by a source record (system, stream, source_id)."""
    return sa.and_(
        a.c.system == b.c.system, a.c.stream == b.c.stream, a.c.source_id == b.c.source_id
    )
