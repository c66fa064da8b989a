"""`islandhub resolve`: the probabilistic pass over the whole store, kept stable across runs.

Publishing links records deterministically (national id, earlier link). This pass clusters
every current source record with the trained model (matching.py) and makes the residents
follow the clusters, keeping ids stable:

- a cluster keeps the oldest resident id among its records' residents (ids are time-ordered);
- residents left without records are merged into the resident that took most of their
  records: `merged_into` redirects their id, so `resident show OLD` still finds the person;
- a resident whose records fall into several clusters is split: the other clusters get
  another of their residents, or a new one;
- golden records of every touched resident are rebuilt with lineage, in one transaction;
- a steward's merges and splits correct the model's clusters first, and pins follow a merged
  resident (steward.py): neither this pass nor a retrained model undoes a decision;
- records that name each other by a known cross-system id stay together, as if merged by a
  steward before any decision (references.py).

Running it twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from splink.internals.exceptions import EMTrainingException

from islandhub.errors import RunFailed
from islandhub.gcpause import cyclic_gc_paused
from islandhub.ids import uuid7, uuid7_batch
from islandhub.push import outbox
from islandhub.resolve import frame_store, references, steward
from islandhub.resolve.keys import NATIONAL_ID, national_id_key
from islandhub.resolve.matching import (
    COLUMNS,
    KeptRows,
    TrainedModel,
    cluster_frame,
    evidence_floor,
    frame_from_store,
    frame_spec,
    has_model,
    load_model,
    predict_pairs,
    record_key,
    refresh_frame,
    resolve_frame,
    rules_for,
    save_model,
    score_pairs,
    tf_columns,
    train,
    unique_id,
)
from islandhub.resolve.publish import _observations_of, _write_golden
from islandhub.resolve.settings import load_settings
from islandhub.store.bulk import insert_rows, member_of, of_sources
from islandhub.store.db import Store, lock_residents, now
from islandhub.store.lease import Lease, StreamBusy, acquire, release, renew
from islandhub.store.tables import links, resident_keys, residents, resolution_queue

RULE = "probabilistic"
#: One pass at a time: two passes writing the same residents would undo each other.
RESOLUTION_LEASE = ("hub", "resolution")
log = logging.getLogger(__name__)


#: Beyond this share of the records queued, a full pass costs less than an incremental one.
INCREMENTAL_SHARE = 0.25
FULL, INCREMENTAL = "full", "incremental"


@dataclass
class ResolveResult:
    """What one resolution pass did."""

    records: int
    clusters: int
    relinked: int
    merged: int
    founded: int
    trained: bool
    seconds_model: float = 0.0
    mode: str = FULL
    queued: int = 0  # records published since the last pass, taken off the queue

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return dict(self.__dict__)


def resolve(
    root: Path,
    store: Store,
    priority: tuple[str, ...],
    *,
    retrain: bool = False,
    full: bool = False,
    push: outbox.Plan | None = None,
) -> ResolveResult:
    """Resolve the records published since the last pass, or every record, keeping ids stable.

    With a trained model and no `full` or `retrain`, the pass is incremental: only the
    queued records (published since the last pass) are scored, against every record, and
    only the residents they touch are clustered again. Otherwise every current record is
    clustered (and the model trained when there is none, or `retrain`). New golden versions
    go to the outbox of the islands subscribed in `push`, as in publish.
    """
    lease = acquire(store, *RESOLUTION_LEASE, uuid7())
    try:
        return _resolve(root, store, priority, retrain, full, push, lease)
    finally:
        release(store, lease)


def resolve_published(
    root: Path, store: Store, priority: tuple[str, ...], push: outbox.Plan | None = None
) -> ResolveResult | None:
    """After a sync: resolve what it published, when a model is trained; None when not run.

    Without a model (nothing trained yet: `islandhub resolve` trains one) the records stay
    queued; when another pass holds the resolution lease they stay queued for the next.
    """
    if not has_model(store):  # after every sync: the model itself is read by the pass
        return None
    try:
        return resolve(root, store, priority, push=push)
    except StreamBusy as busy:
        log.info("resolution skipped, the records stay queued: %s", busy)
        return None


def _resolve(
    root: Path,
    store: Store,
    priority: tuple[str, ...],
    retrain: bool,
    full: bool,
    push: outbox.Plan | None,
    lease: Lease,
) -> ResolveResult:
    queued = _queued(store)
    model = None if retrain else load_model(store)
    settings = model.settings if model is not None else load_settings(root)
    spec = frame_spec(settings)
    if model is not None and not full:
        if not queued:
            return ResolveResult(0, 0, 0, 0, 0, False, mode=INCREMENTAL)
        refresh_frame(store, spec, queued=map(record_key, queued))
        if _keys_serve(model, spec) and len(queued) <= INCREMENTAL_SHARE * frame_store.count(store):
            # A pass of bounded size that builds many small objects (the frame's rows): the
            # cyclic collector would rescan the heap of pandas and Splink every few hundred.
            with cyclic_gc_paused():
                return _incremental(store, priority, model, spec, queued, push, lease)
    frame = frame_from_store(store, spec)
    model, trained = _model(root, store, frame, retrain, model)
    if frame.empty:
        with store.begin() as conn:
            _dequeue(conn, queued)
        return ResolveResult(0, 0, 0, 0, 0, trained, queued=len(queued))
    clusters = resolve_frame(frame, model, model.settings.threshold)
    with store.connect() as conn:
        constraints = steward.load_constraints(conn, references.must_links(conn))
    clusters = _respect_stewards(frame, model, clusters, constraints)
    result = _follow(store, clusters, constraints, queued, priority, push, lease)
    result.trained, result.queued = trained, len(queued)
    return result


def _keys_serve(model: TrainedModel, spec: frame_store.KeySpec) -> bool:
    """Whether the kept keys answer what the model asks: every tf column has its keys."""
    return set(tf_columns(model.model)) <= set(spec.tf)


def _incremental(
    store: Store,
    priority: tuple[str, ...],
    model: TrainedModel,
    spec: frame_store.KeySpec,
    queued: dict[str, str],
    push: outbox.Plan | None,
    lease: Lease,
) -> ResolveResult:
    """Resolve the queued records against the existing residents; only their region moves.

    The queued records are scored against every record a blocking rule pairs them with
    (found by key, frame_store.py); the *region* is the queued records, the records they
    score with (down to the evidence floor, so rivals count), and every record of the
    residents those belong to, widened by the steward decisions that reach into it. The
    region is clustered as a full pass would (its pairs weighed with the whole store's term
    frequencies, counted from the keys); residents outside it are not touched, and only the
    rows of these records are read. A record leaving a resident that it alone held together
    does not split the rest: a full pass does.
    """
    settings = model.settings
    floor = evidence_floor(settings, settings.threshold)
    with store.connect() as conn:
        constraints = steward.load_constraints(conn, references.must_links(conn))
    clusters: dict[str, str] = {}
    region: set[str] = set()
    kept = _rows(frame_store.read_rows(store, map(record_key, queued)))
    if not kept.empty:
        # The whole store's frequencies of the values scored, counted from the kept keys.
        weighed = partial(frame_store.frequencies, store)
        # Only the records a blocking rule pairs with a queued one go to Splink: the pairs
        # of a full pass, no others. DuckDB reads their stored rows itself.
        seeds = set(kept["unique_id"])
        found = frame_store.candidate_texts(store, kept.itertuples(index=False), spec)
        others = KeptRows([text for key, text in found if unique_id(*key) not in seeds])
        if others.texts:
            near = score_pairs(kept, model, floor, against=others, frequencies=weighed)
            seeds |= set(near["unique_id_l"]) | set(near["unique_id_r"])
        with store.connect() as conn:
            region = _region(conn, seeds, constraints)
        part = _rows(frame_store.read_rows(store, map(record_key, region)))
        pairs = score_pairs(part, model, floor, frequencies=weighed)
        clusters = cluster_frame(
            part,
            pairs,
            rules_for(settings),
            threshold=settings.threshold,
            adult_systems=settings.adults_only.systems,
        )
        clusters = _respect_stewards(part, model, clusters, constraints)
    result = _follow(store, clusters, constraints, queued, priority, push, lease, region)
    result.mode, result.queued = INCREMENTAL, len(queued)
    return result


def _rows(rows: list[list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _region(conn: sa.Connection, seeds: set[str], constraints: steward.Constraints) -> set[str]:
    """`seeds` with every record of their residents and of the decisions reaching them.

    A resident is clustered whole or not at all, and a steward's merge or split is seen
    whole, so the clusters of the region can be followed without touching anything else.
    Read from the store by key, so the cost follows the region, not the population.
    """
    # Record -> the groups holding it: references make the groups many, so each record
    # looks up its own instead of every group being tested against the region.
    groups_of: dict[str, list[set[str]]] = defaultdict(list)
    for decided in (*constraints.together, *(a | b for a, b in constraints.apart)):
        ids = {unique_id(*key) for key in decided}
        for uid in ids:
            groups_of[uid].append(ids)
    region: set[str] = set()
    frontier = set(seeds)
    while frontier:
        region |= frontier
        grown = set(_links_around(conn, frontier))
        reached = list(grown | frontier)
        while reached:
            for group in groups_of.pop(reached.pop(), ()):
                reached.extend(group - grown)
                grown |= group
        frontier = grown - region
    return region


def _links_around(conn: sa.Connection, records: Iterable[str]) -> dict[str, str]:
    """Record -> resident of `records` and of every other record of their residents."""
    columns = (links.c.system, links.c.stream, links.c.source_id, links.c.resident_id)
    where = of_sources(conn, links, map(record_key, set(records)))
    rids = sorted({r.resident_id for r in conn.execute(sa.select(*columns).where(where)).all()})
    rows = conn.execute(sa.select(*columns).where(member_of(conn, links.c.resident_id, rids)))
    return {unique_id(r.system, r.stream, r.source_id): r.resident_id for r in rows.all()}


def _follow(
    store: Store,
    clusters: dict[str, str],
    constraints: steward.Constraints,
    queued: dict[str, str],
    priority: tuple[str, ...],
    push: outbox.Plan | None,
    lease: Lease,
    region: set[str] | None = None,
) -> ResolveResult:
    """Make the residents follow `clusters`, in one transaction with taking the queue.

    `region`: the records an incremental pass clustered (None: every record). The lease is
    renewed in the same transaction: a pass whose lease was taken over writes nothing.
    """
    with store.begin() as conn:
        lock_residents(conn)  # a concurrent publish must not interleave
        renew(conn, lease)
        steward.check_unchanged(conn, constraints)
        _dequeue(conn, queued)
        current = _current_links(conn) if region is None else _links_around(conn, region)
        plan = _plan(clusters, current)
        relinked = _relink(conn, plan)
        merged = _redirect(conn, plan, current)
        steward.carry_pins(conn, steward.RESOLVER)
        touched = sorted({current[u] for u in plan.moves} | {plan.moves[u] for u in plan.moves})
        observations = _observations_of(conn, touched)
        _rekey(conn, touched, observations)
        new = set(plan.founded) & set(touched)
        existing = [r for r in touched if r not in new]
        _write_golden(conn, new, existing, observations, priority, "resolve", now(), push)
    return ResolveResult(
        len(clusters), len(set(clusters.values())), relinked, merged, len(new), False
    )


def _queued(store: Store) -> dict[str, str]:
    """The records published since the last pass: unique id -> the run that queued it."""
    query = sa.select(
        resolution_queue.c.system,
        resolution_queue.c.stream,
        resolution_queue.c.source_id,
        resolution_queue.c.run_id,
    )
    with store.connect() as conn:
        return {unique_id(r.system, r.stream, r.source_id): r.run_id for r in conn.execute(query)}


def _dequeue(conn: sa.Connection, queued: dict[str, str]) -> None:
    """Take the entries this pass read off the queue; one queued again meanwhile stays."""
    rows = []
    for uid, run_id in queued.items():
        system, stream, source_id = record_key(uid)
        rows.append({"s": system, "t": stream, "i": source_id, "r": run_id})
    if rows:
        conn.execute(
            resolution_queue.delete().where(
                resolution_queue.c.system == sa.bindparam("s"),
                resolution_queue.c.stream == sa.bindparam("t"),
                resolution_queue.c.source_id == sa.bindparam("i"),
                resolution_queue.c.run_id == sa.bindparam("r"),
            ),
            rows,
        )


def _respect_stewards(
    frame: Any, model: TrainedModel, clusters: dict[str, str], constraints: steward.Constraints
) -> dict[str, str]:
    """The clusters with the steward's merges and splits applied over the model's."""
    if not constraints.together and not constraints.apart:
        return clusters
    national_ids = {
        uid: (hetu if isinstance(hetu, str) else None)
        for uid, hetu in zip(frame["unique_id"], frame["national_id"], strict=True)
    }

    def score(records: list[str]) -> list[tuple[str, str, float]]:
        # Only the few clusters a decision touches are scored again, to re-form them.
        part = frame[frame["unique_id"].isin(records)].reset_index(drop=True)
        if len(part) < 2:
            return []
        pairs = predict_pairs(part, model, model.settings.threshold)
        columns = (pairs["unique_id_l"], pairs["unique_id_r"], pairs["match_probability"])
        return [(a, b, float(p)) for a, b, p in zip(*columns, strict=True)]

    return steward.apply_constraints(clusters, national_ids, constraints, score, unique_id)


def _model(
    root: Path, store: Store, frame: Any, retrain: bool, model: TrainedModel | None
) -> tuple[TrainedModel, bool]:
    if model is not None and not retrain:
        return model, False
    try:
        model = train(frame, load_settings(root))
    except EMTrainingException as exc:
        raise RunFailed(
            f"cannot train the matching model on {len(frame):,} records: "
            f"{str(exc).splitlines()[0]} Sync more islands first (training needs at least "
            "a few hundred comparable pairs)."
        ) from exc
    save_model(store, model)
    return model, True


def _current_links(conn: sa.Connection) -> dict[str, str]:
    query = sa.select(links.c.system, links.c.stream, links.c.source_id, links.c.resident_id)
    return {f"{r.system}|{r.stream}|{r.source_id}": r.resident_id for r in conn.execute(query)}


@dataclass
class _Plan:
    target: dict[str, str]  # cluster key -> resident id
    moves: dict[str, str]  # uid -> new resident id (only records that change resident)
    founded: list[str]


def _plan(clusters: dict[str, str], current: dict[str, str]) -> _Plan:
    """Choose each cluster's resident: the oldest of its records' residents not taken yet."""
    members: dict[str, list[str]] = defaultdict(list)
    for uid, key in clusters.items():
        members[key].append(uid)
    # Big clusters choose first, so a split keeps the id with the bulk of the person's records.
    order = sorted(members, key=lambda k: (-len(members[k]), k))
    taken: set[str] = set()
    target: dict[str, str] = {}
    needs_new: list[str] = []
    for key in order:
        candidates = sorted({current[u] for u in members[key] if u in current} - taken)
        if candidates:
            target[key] = candidates[0]
            taken.add(candidates[0])
        else:
            needs_new.append(key)
    founded = uuid7_batch(len(needs_new))
    target.update(zip(needs_new, founded, strict=True))
    # Records not linked yet (landed, not published) are the publish step's, not ours.
    moves = {
        uid: target[key]
        for key, uids in members.items()
        for uid in uids
        if uid in current and current[uid] != target[key]
    }
    return _Plan(target, moves, founded)


def _relink(conn: sa.Connection, plan: _Plan) -> int:
    """Point every moved record at its cluster's resident (new residents are written later)."""
    stamp = now()
    rows = []
    for uid, rid in plan.moves.items():
        system, stream, source_id = record_key(uid)
        rows.append({"s": system, "t": stream, "i": source_id, "rid": rid})
    if rows:
        where = sa.and_(
            links.c.system == sa.bindparam("s"),
            links.c.stream == sa.bindparam("t"),
            links.c.source_id == sa.bindparam("i"),
        )
        values = {"resident_id": sa.bindparam("rid"), "rule": RULE, "linked_at": stamp}
        conn.execute(links.update().where(where).values(**values), rows)
    return len(rows)


def _rekey(conn: sa.Connection, touched: list[str], observations: dict[str, list[Any]]) -> None:
    """National-id keys follow their records: rebuilt for every touched resident."""
    if not touched:
        return
    conn.execute(
        resident_keys.delete().where(member_of(conn, resident_keys.c.resident_id, touched))
    )
    rows = {}
    for rid in touched:
        for o in observations.get(rid, []):
            key = national_id_key(o.fields.get("national_id"))
            if key:
                rows[key] = {"kind": NATIONAL_ID, "key": key, "resident_id": rid}
    insert_rows(
        conn,
        resident_keys,
        ("kind", "key", "resident_id"),
        [(r["kind"], r["key"], r["resident_id"]) for r in rows.values()],
        upsert_on=("kind", "key"),
    )


def _redirect(conn: sa.Connection, plan: _Plan, current: dict[str, str]) -> int:
    """Residents left without records point to where most of their records went."""
    went: dict[str, Counter[str]] = defaultdict(Counter)
    for uid, rid in plan.moves.items():
        if uid in current:
            went[current[uid]][rid] += 1
    kept = set(plan.target.values())
    merged = 0
    for old, destinations in sorted(went.items()):
        if old in kept:
            continue
        conn.execute(
            residents.update()
            .where(residents.c.resident_id == old)
            .values(merged_into=destinations.most_common(1)[0][0], active=False, updated_at=now())
        )
        merged += 1
    return merged
