"""Steward decisions: merges, splits and pins a data steward makes, and how every run keeps them.

A data steward corrects identity resolution by hand:

- `merge A B`: A and B are one person. The older id stays; the other redirects to it
  (`merged_into`, as the probabilistic pass does), so `resident show` still finds the person.
- `split ID --records ...`: the named records are someone else. They move to a new resident,
  or `--into` an existing one.
- `pin ID FIELD VALUE`: the golden record's FIELD is VALUE whatever the islands say (lineage
  rule `steward-pin`), until `unpin ID FIELD`.

Each decision is a row of `steward_decisions` (who, why, when), an audit-log entry per
resident it changes, and the rebuilt golden records of those residents, in one transaction.

Merges and splits are kept as constraints over *source records*, because resident ids are
what the resolve pass moves: a decision says its `records` are one person (must-link) and
none of them is the same person as its `apart` records (cannot-link). `load_constraints`
reads them in the order they were made, and a later decision wins where two disagree: a
split frees the records it moves from earlier merges, a merge lifts the part of an earlier
split it straddles. `apply_constraints` then corrects the model's clusters (reconcile.py),
so neither `islandhub resolve` nor a retrained model undoes a decision. Publishing keeps
every record's resident, so a new sync keeps them too; pins are applied whenever a golden
record is rebuilt (`load_pins` + `apply_pins` in publish.py) and follow a merged resident
to the one it became (`carry_pins`).

National ids still come first: a merge of residents with different permanent national ids,
or a split that would part records carrying the same one, is refused. When source data later
contradicts a decision (a record gains the national id of the resident it was split from),
the national id wins.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from islandhub.errors import ConfigError, Problem, RunFailed
from islandhub.ids import uuid7
from islandhub.privacy.at_rest import seal_source_id, seal_tree
from islandhub.privacy.crypto import unseal_text
from islandhub.privacy.masking import mask_text
from islandhub.residents import Reader, audit, follow_redirects
from islandhub.resolve.keys import NATIONAL_ID, national_id_key
from islandhub.store.bulk import insert_rows, member_of
from islandhub.store.db import Store, as_utc, dumps, loads, lock_residents, now
from islandhub.store.tables import links, resident_keys, residents, steward_decisions

if TYPE_CHECKING:  # publish imports this module; the plan is only passed through
    from islandhub.push.outbox import Plan

RecordKey = tuple[str, str, str]  # (system, stream, source_id)
MERGE, SPLIT, PIN, UNPIN = "merge", "split", "pin", "unpin"
PIN_RULE = "steward-pin"  # lineage rule of a pinned golden value
LINK_RULE = "steward"  # links.rule of a record a steward moved
# Lineage names a pinned value's source like a source record: the decision that set it.
DECISION_SYSTEM, DECISION_STREAM = "steward", "decisions"
# Clusters the constraints re-form get keys of their own, so they never collide with the
# model's keys, whatever form those take.
CLUSTER_PREFIX = "steward:"
RESOLVER = Reader("islandhub resolve", "identity resolution: pins follow a merged resident")
# Never pinned: the resident id is the hub's, and the national id is evidence that decides
# identity, so it comes from the records (correct the island instead).
_NOT_PINNABLE = frozenset({"resident_id", "national_id"})


# --- constraints over source records -----------------------------------------------------


@dataclass(frozen=True)
class Constraints:
    """The active merges and splits, as must-link groups and cannot-link pairs of groups."""

    together: tuple[frozenset[RecordKey], ...] = ()
    apart: tuple[tuple[frozenset[RecordKey], frozenset[RecordKey]], ...] = ()
    latest: int = 0  # the newest decision read (0: none), to notice one made meanwhile


def load_constraints(conn: Connection, first: Iterable[frozenset[RecordKey]] = ()) -> Constraints:
    """Every active merge and split, oldest first, a later decision winning a disagreement.

    `first`: must-link groups older than every decision, the records that name each other by
    a known cross-system id (references.py): a split frees records from them as from an
    earlier merge, so a steward's split wins over a reference.
    """
    query = (
        sa.select(steward_decisions.c.id, steward_decisions.c.records, steward_decisions.c.apart)
        .where(steward_decisions.c.kind.in_((MERGE, SPLIT)), steward_decisions.c.active.is_(True))
        .order_by(steward_decisions.c.id)
    )
    together: list[set[RecordKey]] = [set(group) for group in first]
    apart: list[tuple[set[RecordKey], set[RecordKey]]] = []
    latest = 0
    for row in conn.execute(query):
        latest = row.id
        group, away = _keys(row.records), _keys(row.apart)
        if away:
            # A split: the records it moves leave every earlier group that kept them with
            # the records that stay.
            for earlier in together:
                if earlier & group and earlier & away:
                    earlier -= group
        joined = _component(group, together)
        for side, other in apart:
            # An earlier split that the merged records straddle no longer separates them.
            if joined & side and joined & other:
                other -= joined
        if len(group) > 1:
            together.append(set(group))
        if group and away:
            apart.append((set(group), set(away)))
    return Constraints(
        tuple(frozenset(g) for g in together if len(g) > 1),
        tuple((frozenset(a), frozenset(b)) for a, b in apart if a and b),
        latest,
    )


def _component(group: set[RecordKey], together: list[set[RecordKey]]) -> set[RecordKey]:
    """The records `group` joins: itself and every earlier group linked to it, transitively."""
    joined = set(group)
    grew = bool(joined)
    while grew:
        grew = False
        for earlier in together:
            if earlier & joined and not earlier <= joined:
                joined |= earlier
                grew = True
    return joined


def latest_constraint(conn: Connection) -> int:
    """The id of the newest active merge or split (0: none)."""
    query = sa.select(sa.func.max(steward_decisions.c.id)).where(
        steward_decisions.c.kind.in_((MERGE, SPLIT)), steward_decisions.c.active.is_(True)
    )
    return int(conn.execute(query).scalar_one_or_none() or 0)


def check_unchanged(conn: Connection, constraints: Constraints) -> None:
    """Fail a pass whose clusters were corrected with decisions that are no longer the newest."""
    if latest_constraint(conn) != constraints.latest:
        raise RunFailed(
            "a steward merged or split residents while this pass ran; nothing was changed: "
            "run islandhub resolve again"
        )


Pairs = Iterable[tuple[str, str, float]]


def apply_constraints(
    clusters: Mapping[str, str],
    national_ids: Mapping[str, str | None],
    constraints: Constraints,
    score: Callable[[list[str]], Pairs],
    uid: Callable[[str, str, str], str],
) -> dict[str, str]:
    """The model's clusters corrected by the steward's decisions: record id -> cluster key.

    `clusters` maps every record (by `uid(system, stream, source_id)`) to its cluster;
    `national_ids` gives each record's permanent national id or None. Only the clusters
    a broken decision holds a record of are re-formed (with those that other decisions tie
    to them): their records are joined again, same national id first, then each must-link
    group, then the model's pairs within each original cluster (`score(records)` gives
    (record, record, match probability)) by descending probability. A union that would hold
    two permanent national ids, or both sides of a split, is refused.
    """
    present = set(clusters)
    together = [_uids(group, uid) & present for group in constraints.together]
    together = [g for g in together if len(g) > 1]
    apart = [(_uids(a, uid) & present, _uids(b, uid) & present) for a, b in constraints.apart]
    apart = [(a, b) for a, b in apart if a and b]
    if not _broken(clusters, together, apart):
        return dict(clusters)
    keys = _to_reform(clusters, together, apart)
    region = sorted(u for u, key in clusters.items() if key in keys)
    tags: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for index, (side, other) in enumerate(apart):
        for u in side:
            tags[u].add((index, 0))
        for u in other:
            tags[u].add((index, 1))
    partition = _Partition(region, national_ids, tags)
    first_of: dict[str, str] = {}
    for u in region:
        hetu = national_ids.get(u)
        if hetu:
            partition.union(first_of.setdefault(hetu, u), u, force=True)
    for group in together:
        first, *rest = sorted(group)
        for u in rest:
            partition.union(first, u)
    # Only the model's links inside one of its clusters: the steward decides the rest.
    inside = set(region)
    pairs = [
        p
        for p in score(region)
        if p[0] in inside and p[1] in inside and clusters[p[0]] == clusters[p[1]]
    ]
    for left, right, _probability in sorted(pairs, key=lambda p: (-p[2], p[0], p[1])):
        partition.union(left, right)
    corrected = dict(clusters)
    for u in region:
        corrected[u] = CLUSTER_PREFIX + partition.find(u)
    return corrected


def _to_reform(
    clusters: Mapping[str, str],
    together: Sequence[set[str]],
    apart: Sequence[tuple[set[str], set[str]]],
) -> set[str]:
    """The cluster keys to re-form: those of broken decisions, and those tied to them.

    A decision is re-applied whole or not at all, so every cluster that a decision ties to
    a re-formed one is re-formed too, transitively. Decisions the model's clusters already
    keep are left alone otherwise: with known cross-system ids there are thousands of
    must-links, and re-forming every cluster they touch because one of them is broken would
    score the records of all of them again.
    """
    spans = [{clusters[u] for u in group} for group in together]
    spans += [{clusters[u] for u in a | b} for a, b in apart]
    broken = [i for i in range(len(together)) if len(spans[i]) > 1]
    broken += [
        len(together) + i
        for i, (a, b) in enumerate(apart)
        if {clusters[u] for u in a} & {clusters[u] for u in b}
    ]
    by_cluster: dict[str, list[int]] = defaultdict(list)
    for i, span in enumerate(spans):
        for key in span:
            by_cluster[key].append(i)
    keys: set[str] = set()
    waiting = list(broken)
    seen = set(broken)
    while waiting:
        for key in spans[waiting.pop()] - keys:
            keys.add(key)
            fresh = [i for i in by_cluster[key] if i not in seen]
            seen.update(fresh)
            waiting.extend(fresh)
    return keys


def _broken(
    clusters: Mapping[str, str],
    together: Sequence[set[str]],
    apart: Sequence[tuple[set[str], set[str]]],
) -> bool:
    if any(len({clusters[u] for u in group}) > 1 for group in together):
        return True
    return any({clusters[u] for u in a} & {clusters[u] for u in b} for a, b in apart)


class _Partition:
    """Union-find whose clusters hold at most one national id and one side of each split."""

    def __init__(
        self,
        records: Sequence[str],
        national_ids: Mapping[str, str | None],
        tags: Mapping[str, set[tuple[int, int]]],
    ) -> None:
        self.parent = {u: u for u in records}
        self.hetu = {u: national_ids.get(u) for u in records}
        self.tags = {u: set(tags.get(u, ())) for u in records}

    def find(self, u: str) -> str:
        root = u
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[u] != root:  # path compression
            self.parent[u], u = root, self.parent[u]
        return root

    def union(self, a: str, b: str, *, force: bool = False) -> bool:
        """Join the clusters of a and b unless that breaks a national id or a split.

        `force`: the same national id joins whatever an older decision said.
        """
        if a not in self.parent or b not in self.parent:
            return False
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        ha, hb = self.hetu[ra], self.hetu[rb]
        if not force and ((ha and hb and ha != hb) or _split_apart(self.tags[ra], self.tags[rb])):
            return False
        if rb < ra:  # the root is the smallest record id: a stable cluster key
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.hetu[ra] = ha or hb
        self.tags[ra] |= self.tags.pop(rb)
        return True


def _split_apart(a: set[tuple[int, int]], b: set[tuple[int, int]]) -> bool:
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return any((index, 1 - side) in large for index, side in small)


def _uids(group: Iterable[RecordKey], uid: Callable[[str, str, str], str]) -> set[str]:
    return {uid(*key) for key in group}


def _keys(text: str | None) -> set[RecordKey]:
    return {(s, t, i) for s, t, i in loads(text)} if text else set()


# --- pins ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """A golden field fixed by a steward: the value, and the decision that set it."""

    decision: int
    field: str
    value: Any
    at: str  # ISO 8601, UTC


def load_pins(conn: Connection, resident_ids: Sequence[str]) -> dict[str, dict[str, Pin]]:
    """The active pins of these residents: resident id -> field -> pin.

    Publishing calls this once per chunk of thousands of residents. Looking the chunk's ids up
    costs 10-30 ms on either backend (measured, 5,000 ids), while most hubs have no pin at all:
    a probe of the (small) table comes first and costs under a millisecond.
    """
    pins: dict[str, dict[str, Pin]] = {}
    if not resident_ids:
        return pins
    d = steward_decisions.c
    probe = sa.select(d.id).where(d.kind == PIN, d.active.is_(True)).limit(1)
    if conn.execute(probe).first() is None:
        return pins
    query = (
        sa.select(d.id, d.resident_id, d.field, d.value, d.at)
        .where(d.kind == PIN, d.active.is_(True), member_of(conn, d.resident_id, resident_ids))
        .order_by(d.id)
    )
    for row in conn.execute(query):
        # Oldest first: a later pin of the same field wins (pin replaces, but be safe).
        pins.setdefault(row.resident_id, {})[row.field] = Pin(
            row.id, row.field, loads(row.value), _iso(row.at)
        )
    return pins


def apply_pins(record: dict[str, Any], lineage: dict[str, Any], pins: Mapping[str, Pin]) -> None:
    """Set each pinned field of a golden record and its compact lineage (rule steward-pin)."""
    if not pins:
        return
    sources = lineage.setdefault("sources", [])
    fields = lineage.setdefault("fields", {})
    for name in sorted(pins):
        pin = pins[name]
        record[name] = pin.value
        fields[name] = [len(sources), PIN_RULE]
        sources.append(
            [DECISION_SYSTEM, DECISION_STREAM, str(pin.decision), run_id(pin.decision), pin.at]
        )


def carry_pins(conn: Connection, who: Reader) -> int:
    """Pins of residents merged into another now pin the one they became. Returns pins moved.

    A field the surviving resident pins itself keeps that pin. Each carried pin is a new
    decision (actor `who`) pointing back at the resident it came from.
    """
    d = steward_decisions.c
    query = (
        sa.select(d.id, d.resident_id, d.field, d.value)
        .select_from(steward_decisions.join(residents, residents.c.resident_id == d.resident_id))
        .where(d.kind == PIN, d.active.is_(True), residents.c.merged_into.is_not(None))
        .order_by(d.id)
    )
    stranded = conn.execute(query).all()
    if not stranded:
        return 0
    into = {row.resident_id: follow_redirects(conn, row.resident_id) for row in stranded}
    held = load_pins(conn, sorted({r for r in into.values() if r}))
    _deactivate_pins(conn, sorted(into))
    carried = 0
    for row in stranded:
        target = into[row.resident_id]
        if target is None or row.field in held.get(target, {}):
            continue
        reason = f"pin carried over from resident {row.resident_id}, merged into {target}"
        decision = _insert(
            conn,
            who.actor,
            reason,
            PIN,
            target,
            other=row.resident_id,
            field=row.field,
            value=row.value,
        )
        held.setdefault(target, {})[row.field] = Pin(decision, row.field, None, "")
        audit(
            conn,
            who,
            PIN,
            target,
            {"decision": decision, "field": row.field, "from": row.resident_id},
        )
        carried += 1
    return carried


@cache
def pinnable_fields() -> dict[str, dict[str, Any]]:
    """Golden fields a steward may pin, with their JSON Schema (resident.schema.json).

    The resident's scalar fields; contact lists keep every source's value instead.
    """
    from islandhub.config import SCHEMA_DIR

    schema = json.loads((SCHEMA_DIR / "resident.schema.json").read_text(encoding="utf-8"))
    return {
        name: spec
        for name, spec in schema["properties"].items()
        if spec.get("type") in ("string", "boolean") and name not in _NOT_PINNABLE
    }


def parse_pin_value(name: str, text: str) -> Any:
    """The value of a pin, checked against the resident schema; ConfigError when it is not."""
    from jsonschema import Draft202012Validator

    known = pinnable_fields()
    if name not in known:
        raise ConfigError(
            f"cannot pin {name!r}: pinnable fields are {', '.join(sorted(known))} "
            "(the national id comes from the islands' records: correct it there)"
        )
    spec = known[name]
    value: Any = text.strip()
    if spec["type"] == "boolean":
        if value.lower() not in ("true", "false"):
            raise ConfigError(f"{name}: expected true or false, got {text!r}")
        value = value.lower() == "true"
        if name == "non_disclosure" and not value:
            # Lifting a turvakielto would publish a protected person's address.
            raise ConfigError(
                "non_disclosure can only be pinned true: a non-disclosure order is lifted "
                "in the population register, not by a pin"
            )
    elif not value:
        raise ConfigError(f"{name}: the value is empty")
    validator = Draft202012Validator(spec, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = sorted(validator.iter_errors(value), key=str)
    if problems:
        raise ConfigError(f"{name}: {problems[0].message}")
    return value


# --- the decisions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """One recorded steward decision and what it changed."""

    id: int
    kind: str
    actor: str
    reason: str
    resident_id: str
    other_resident_id: str | None = None
    records: list[RecordKey] = field(default_factory=list)
    field: str | None = None
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json (the CLI masks national ids on the way out)."""
        data = dict(self.__dict__)
        data["records"] = [unseal_text(record_text(r)) for r in self.records]
        return data


def parse_records(texts: Iterable[str]) -> list[RecordKey]:
    """SYSTEM:STREAM:SOURCE_ID items (comma-separated); ConfigError naming every bad one."""
    found: list[RecordKey] = []
    problems = []
    for text in texts:
        for item in (part.strip() for part in text.split(",")):
            parts = item.split(":", 2)
            if len(parts) != 3 or not all(parts):
                problems.append(f"--records: {item!r} is not SYSTEM:STREAM:SOURCE_ID")
            elif (key := (parts[0], parts[1], parts[2])) not in found:
                found.append(key)
    if problems:
        raise ConfigError([Problem(p) for p in problems])
    if not found:
        raise ConfigError("--records: name at least one SYSTEM:STREAM:SOURCE_ID")
    # The store keys a register record by its sealed HETU: the steward types it in clear.
    return [(s, t, seal_source_id(i)) for s, t, i in found]


def record_text(key: RecordKey) -> str:
    """A record as the steward names it: SYSTEM:STREAM:SOURCE_ID."""
    return ":".join(key)


def run_id(decision: int) -> str:
    """The run id a decision writes links and golden versions under."""
    return f"steward-{decision}"


@dataclass(frozen=True)
class Steward:
    """Who decides and why: recorded with the decision and in the audit log."""

    actor: str
    reason: str

    @classmethod
    def of(cls, actor: str | None, reason: str) -> Steward:
        """--actor, else ISLANDHUB_ACTOR or the OS user; the reason with national ids masked."""
        why = mask_text(" ".join(reason.split()))  # a national id never belongs in a reason
        if not why:
            raise ConfigError("--reason: say why (it is recorded with the decision)")
        name = Reader.from_environment(why, actor=actor.strip() if actor else None).actor
        if not name or len(name) > 128:
            raise ConfigError("--actor: give a name of 1-128 characters")
        return cls(name, why)

    @property
    def reader(self) -> Reader:
        """The audit log's view: the reason is the purpose (cut to the column's length)."""
        return Reader(self.actor, f"steward decision: {self.reason}"[:255])


def merge(
    store: Store,
    who: Steward,
    a: str,
    b: str,
    priority: Sequence[str],
    push: Plan | None = None,
) -> Decision:
    """A and B are one person: the older id keeps every record, the other redirects to it."""
    with store.begin() as conn:
        lock_residents(conn)  # no publish may interleave
        first, second = _resident(conn, a), _resident(conn, b)
        if first == second:
            raise ConfigError(f"{a} and {b} are already one resident ({first})")
        kept, gone = sorted((first, second))  # ids are time-ordered: the older stays
        keys = _keys_of(conn, [kept, gone])
        if keys.get(kept) and keys.get(gone) and keys[kept] != keys[gone]:
            raise ConfigError(
                f"{kept} and {gone} hold different permanent national ids: two people by "
                "rule, whatever else they share (correct the national id in its island)"
            )
        held = _records_of(conn, [kept, gone])
        records = sorted(held[kept] | held[gone])
        decision = _insert(conn, who.actor, who.reason, MERGE, kept, other=gone, records=records)
        _relink(conn, sorted(held[gone]), kept, decision)
        conn.execute(
            residents.update()
            .where(residents.c.resident_id == gone)
            .values(merged_into=kept, active=False, updated_at=now())
        )
        carry_pins(conn, who.reader)
        _rebuild(conn, set(), [kept, gone], priority, decision, push)
        detail = {"decision": decision, "kept": kept, "merged": gone, "records": len(records)}
        audit(conn, who.reader, MERGE, kept, detail)
        audit(conn, who.reader, MERGE, gone, detail)
    return Decision(decision, MERGE, who.actor, who.reason, kept, gone, records)


def split(
    store: Store,
    who: Steward,
    resident_id: str,
    records: Sequence[RecordKey],
    priority: Sequence[str],
    into: str | None = None,
    push: Plan | None = None,
) -> Decision:
    """These records of the resident are someone else: move them to a new resident or `into`."""
    with store.begin() as conn:
        lock_residents(conn)  # no publish may interleave
        rid = _resident(conn, resident_id)
        mine = _records_of(conn, [rid])[rid]
        _check_records(conn, rid, records, mine)
        moved, stayed = set(records), mine - set(records)
        if not stayed:
            raise ConfigError(
                f"those are all of {rid}'s records: nothing would stay (name fewer records, "
                "or merge the residents instead)"
            )
        target, founded = (_resident(conn, into), False) if into else (uuid7(), True)
        if target == rid:
            raise ConfigError(f"--into {into}: that is the resident being split")
        joined = set() if founded else _records_of(conn, [target])[target]
        _check_national_ids(conn, rid, moved, stayed, target, joined)
        group = sorted(moved | joined)
        decision = _insert(
            conn,
            who.actor,
            who.reason,
            SPLIT,
            rid,
            other=target,
            records=group,
            apart=sorted(stayed),
        )
        _relink(conn, sorted(moved), target, decision)
        _rebuild(
            conn,
            {target} if founded else set(),
            [rid] if founded else [rid, target],
            priority,
            decision,
            push,
        )
        detail = {
            "decision": decision,
            "from": rid,
            "into": target,
            "records": [mask_text(unseal_text(record_text(r))) for r in sorted(moved)],
        }
        audit(conn, who.reader, SPLIT, rid, detail)
        audit(conn, who.reader, SPLIT, target, detail)
    return Decision(decision, SPLIT, who.actor, who.reason, rid, target, sorted(moved))


def pin(
    store: Store,
    who: Steward,
    resident_id: str,
    name: str,
    text: str,
    priority: Sequence[str],
    push: Plan | None = None,
) -> Decision:
    """Fix a golden field's value; it replaces an earlier pin of the same field."""
    value = parse_pin_value(name, text)
    with store.begin() as conn:
        lock_residents(conn)  # no publish may interleave
        rid = _resident(conn, resident_id)
        _deactivate_pins(conn, [rid], name)
        stored = dumps(seal_tree(value))  # a HETU-shaped value is sealed like any other
        decision = _insert(conn, who.actor, who.reason, PIN, rid, field=name, value=stored)
        _rebuild(conn, set(), [rid], priority, decision, push)
        audit(conn, who.reader, PIN, rid, {"decision": decision, "field": name})
    return Decision(decision, PIN, who.actor, who.reason, rid, field=name, value=value)


def unpin(
    store: Store,
    who: Steward,
    resident_id: str,
    name: str,
    priority: Sequence[str],
    push: Plan | None = None,
) -> Decision:
    """Lift a pin: the field is chosen by survivorship again."""
    with store.begin() as conn:
        lock_residents(conn)  # no publish may interleave
        rid = _resident(conn, resident_id)
        if not _deactivate_pins(conn, [rid], name):
            raise ConfigError(f"resident {rid} has no pin of {name!r}")
        decision = _insert(conn, who.actor, who.reason, UNPIN, rid, field=name)
        _rebuild(conn, set(), [rid], priority, decision, push)
        audit(conn, who.reader, UNPIN, rid, {"decision": decision, "field": name})
    return Decision(decision, UNPIN, who.actor, who.reason, rid, field=name)


def decisions_of(conn: Connection, resident_id: str) -> list[dict[str, Any]]:
    """The decisions naming a resident, oldest first (for explain; values left out)."""
    d = steward_decisions.c
    query = (
        sa.select(
            d.id,
            d.at,
            d.actor,
            d.reason,
            d.kind,
            d.resident_id,
            d.other_resident_id,
            d.field,
            d.active,
        )
        .where(sa.or_(d.resident_id == resident_id, d.other_resident_id == resident_id))
        .order_by(d.id)
    )
    return [{**row._asdict(), "at": _iso(row.at)} for row in conn.execute(query)]


# --- helpers of the decisions -----------------------------------------------------------------


def _resident(conn: Connection, given: str) -> str:
    """The current id of a resident (following merges); ConfigError if unknown or retired."""
    rid = follow_redirects(conn, given.strip())
    if rid is None:
        raise ConfigError(f"unknown resident {given!r}")
    active = conn.execute(
        sa.select(residents.c.active).where(residents.c.resident_id == rid)
    ).scalar_one()
    if not active:
        raise ConfigError(f"resident {rid} has no source records left (retired)")
    return rid


def _records_of(conn: Connection, resident_ids: Sequence[str]) -> dict[str, set[RecordKey]]:
    found: dict[str, set[RecordKey]] = {rid: set() for rid in resident_ids}
    query = sa.select(links.c.resident_id, links.c.system, links.c.stream, links.c.source_id).where(
        member_of(conn, links.c.resident_id, resident_ids)
    )
    for row in conn.execute(query):
        found[row.resident_id].add((row.system, row.stream, row.source_id))
    return found


def _check_records(
    conn: Connection, rid: str, records: Sequence[RecordKey], mine: set[RecordKey]
) -> None:
    problems = []
    for key in records:
        if key in mine:
            continue
        owner = conn.execute(
            sa.select(links.c.resident_id).where(
                links.c.system == key[0], links.c.stream == key[1], links.c.source_id == key[2]
            )
        ).scalar_one_or_none()
        where = f"a record of resident {owner}" if owner else "no published record"
        shown = unseal_text(record_text(key))
        problems.append(f"--records: {shown} is {where}, not of {rid}")
    if problems:
        raise ConfigError([Problem(p) for p in problems])


def _national_ids(conn: Connection, resident_ids: Sequence[str]) -> dict[RecordKey, str]:
    """The permanent national id key of each record of these residents that has one."""
    from islandhub.resolve.publish import _observations_of  # publish imports this module

    found = {}
    for observations in _observations_of(conn, resident_ids).values():
        for o in observations:
            key = national_id_key(o.fields.get("national_id"))
            if key:
                found[(o.system, o.stream, o.source_id)] = key
    return found


def _check_national_ids(
    conn: Connection,
    rid: str,
    moved: set[RecordKey],
    stayed: set[RecordKey],
    target: str,
    joined: set[RecordKey],
) -> None:
    ids = _national_ids(conn, [rid, target])
    leaving = {ids[k] for k in moved if k in ids}
    staying = {ids[k] for k in stayed if k in ids}
    if leaving & staying:
        shared = sorted(unseal_text(record_text(k)) for k in moved if ids.get(k) in staying)
        raise ConfigError(
            f"{', '.join(shared)}: the same permanent national id as records that stay with "
            f"{rid}; the same national id is the same person (correct it in its island)"
        )
    if len(leaving | {ids[k] for k in joined if k in ids}) > 1:
        raise ConfigError(
            f"the records would give {target} two different permanent national ids: two "
            "people by rule"
        )


def _keys_of(conn: Connection, resident_ids: Sequence[str]) -> dict[str, set[str]]:
    held: dict[str, set[str]] = defaultdict(set)
    query = sa.select(resident_keys.c.resident_id, resident_keys.c.key).where(
        resident_keys.c.kind == NATIONAL_ID,
        member_of(conn, resident_keys.c.resident_id, resident_ids),
    )
    for row in conn.execute(query):
        held[row.resident_id].add(row.key)
    return held


def _insert(
    conn: Connection,
    actor: str,
    reason: str,
    kind: str,
    resident_id: str,
    *,
    other: str | None = None,
    records: Sequence[RecordKey] | None = None,
    apart: Sequence[RecordKey] | None = None,
    field: str | None = None,
    value: str | None = None,
) -> int:
    result = conn.execute(
        steward_decisions.insert().values(
            at=now(),
            actor=actor,
            reason=reason,
            kind=kind,
            resident_id=resident_id,
            other_resident_id=other,
            records=dumps([list(k) for k in records]) if records else None,
            apart=dumps([list(k) for k in apart]) if apart else None,
            field=field,
            value=value,
            active=True,
        )
    )
    key = result.inserted_primary_key
    assert key is not None  # an insert of one row always has its key
    return int(key[0])


def _deactivate_pins(conn: Connection, resident_ids: Sequence[str], name: str | None = None) -> int:
    d = steward_decisions.c
    query = steward_decisions.update().where(
        d.kind == PIN, d.active.is_(True), member_of(conn, d.resident_id, resident_ids)
    )
    if name is not None:
        query = query.where(d.field == name)
    return int(conn.execute(query.values(active=False)).rowcount)


def _relink(conn: Connection, records: Sequence[RecordKey], target: str, decision: int) -> None:
    if not records:
        return
    rows = [{"s": s, "t": t, "i": i} for s, t, i in records]
    where = sa.and_(
        links.c.system == sa.bindparam("s"),
        links.c.stream == sa.bindparam("t"),
        links.c.source_id == sa.bindparam("i"),
    )
    values = {
        "resident_id": target,
        "rule": LINK_RULE,
        "run_id": run_id(decision),
        "linked_at": now(),
    }
    conn.execute(links.update().where(where).values(**values), rows)


def _rebuild(
    conn: Connection,
    founded: set[str],
    existing: Sequence[str],
    priority: Sequence[str],
    decision: int,
    push: Plan | None = None,
) -> None:
    """National-id keys follow the records; golden records rebuilt, pins applied.

    The pushes owed to subscribed islands are written too, as a publish writes them.
    """
    # Imported here: publish imports this module for pins.
    from islandhub.resolve.publish import _observations_of, _write_golden

    touched = sorted(founded | set(existing))
    observations = _observations_of(conn, touched)
    conn.execute(
        resident_keys.delete().where(member_of(conn, resident_keys.c.resident_id, touched))
    )
    rows = {}
    for rid in touched:
        for o in observations.get(rid, []):
            key = national_id_key(o.fields.get("national_id"))
            if key:
                rows[key] = (NATIONAL_ID, key, rid)
    insert_rows(
        conn,
        resident_keys,
        ("kind", "key", "resident_id"),
        list(rows.values()),
        upsert_on=("kind", "key"),
    )
    stamp = now()
    _write_golden(
        conn, founded, list(existing), observations, priority, run_id(decision), stamp, push
    )


def _iso(value: datetime | str) -> str:
    return value if isinstance(value, str) else as_utc(value).isoformat()
