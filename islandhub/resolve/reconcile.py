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
  resident (steward.py): neither this pass nor a retrained model undoes a decision.

Running it twice changes nothing the second time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from splink.internals.exceptions import EMTrainingException

from islandhub.errors import RunFailed
from islandhub.ids import uuid7_batch
from islandhub.push import outbox
from islandhub.resolve import steward
from islandhub.resolve.keys import NATIONAL_ID, national_id_key
from islandhub.resolve.matching import (
    TrainedModel,
    frame_from_store,
    load_model,
    predict_pairs,
    record_key,
    resolve_frame,
    save_model,
    train,
    unique_id,
)
from islandhub.resolve.publish import _observations_of, _write_golden
from islandhub.resolve.settings import load_settings
from islandhub.store.bulk import insert_rows, member_of
from islandhub.store.db import Store, now
from islandhub.store.tables import links, resident_keys, residents

RULE = "probabilistic"


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

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return dict(self.__dict__)


def resolve(
    root: Path,
    store: Store,
    priority: tuple[str, ...],
    *,
    retrain: bool = False,
    push: outbox.Plan | None = None,
) -> ResolveResult:
    """Cluster every current record and make the residents follow, keeping ids stable.

    New golden versions go to the outbox of the islands subscribed in `push`, as in publish.
    """
    frame = frame_from_store(store)
    model, trained = _model(root, store, frame, retrain)
    if frame.empty:
        return ResolveResult(0, 0, 0, 0, 0, trained)
    clusters = resolve_frame(frame, model, model.settings.threshold)
    with store.connect() as conn:
        constraints = steward.load_constraints(conn)
    clusters = _respect_stewards(frame, model, clusters, constraints)
    with store.begin() as conn:
        steward.check_unchanged(conn, constraints)
        current = _current_links(conn)
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
        len(clusters), len(set(clusters.values())), relinked, merged, len(new), trained
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


def _model(root: Path, store: Store, frame: Any, retrain: bool) -> tuple[TrainedModel, bool]:
    model = None if retrain else load_model(store)
    if model is not None:
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
