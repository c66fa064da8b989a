"""Constrained clustering of scored record pairs: who may join whom, and who stays apart.

Pairs are taken by descending match weight; each joins the clusters of its two records
(union-find) unless a rule refuses:

- **one person, one national id**: two different permanent national ids never share a
  cluster (a chain of id-less records cannot join them either);
- **one person, one birth date** (`ClusterRules.birth_dates`): two birth dates that clearly
  disagree (not the same year, nor one keying error apart: a digit, two swapped digits, day
  and month swapped) never share a cluster: a parent and a child never share a birth date.
  It is the birth-date veto of pairs, kept by whole clusters;
- **adults only**: a record of a system that serves adults only (`RecordFacts.adult`)
  never shares a cluster with a birth date younger than `ClusterRules.minor_after`;
- **ambiguity** (`ClusterRules.margin`, bits): a side without a national id that matches,
  nearly as well as the other side, a third cluster that cannot be the other side's person
  (the rules above) is ambiguous: it joins neither, and waits for more evidence or a
  steward. A side with a national id is a known person: it takes what fits it, and the
  record it takes is the side checked. How well a side matches a cluster is its *profile*
  weight: per comparison, the best level any pair between them reached, summed; so a
  record's email that equals one record of a resident and its family name that equals
  another both count. A tie between two who live apart is broken by the household: the
  side's email or phone held by someone living where one of them lives (a vetoed pair,
  kept as that evidence only), and by no one where the other lives;
- **namesakes** (`ClusterRules.namesake_guard`): a side without any birth date whose
  names fit two different persons living at one address (a father and his namesake son;
  "Arska" fits both Aris) cannot be told apart by its names and address. When one of them
  is a minor it joins none of them: a child's records carry a guardian's email and phone.
  When both are adults it joins only a cluster it shares an email or a phone with.

The cluster key of a record is the smallest record id of its cluster.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: Per pair (row), the weight (bits) each comparison (column) contributed; NaN: no value.
Evidence = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ClusterRules:
    """Which rules clustering applies (see the module docstring)."""

    margin: float = 0.0
    namesake_guard: bool = False
    minor_after: str | None = None  # ISO date: born after it is a minor
    birth_dates: bool = True


@dataclass(frozen=True)
class RecordFacts:
    """What the cluster rules read of each record, by record index (one list per fact)."""

    ids: Sequence[str]
    national_ids: Sequence[str | None]
    births: Sequence[str | None] = ()
    adult: Sequence[bool] = ()
    streets: Sequence[tuple[str, ...]] = ()


@dataclass(frozen=True)
class ScoredPairs:
    """Scored pairs by record index, and what the ambiguity and namesake rules read."""

    left: Sequence[int]
    right: Sequence[int]
    weight: Sequence[float]
    names_alike: Sequence[bool] = ()  # the same names, a nickname or variant, or swapped
    evidence: Evidence | None = None  # rows of per-comparison weights, or None: pair weight
    contact: Sequence[bool] = ()  # the same email or phone
    vetoed: Sequence[bool] = ()  # never links: evidence of a household only


BIG_SIDE = 5  # members from which a side's links are kept between offers


@dataclass(slots=True)
class _Cluster:
    members: list[int]
    national_id: str | None
    births: set[str]
    adult: bool
    youngest: str | None
    streets: set[str] = field(default_factory=set)


def cluster(
    facts: RecordFacts,
    pairs: ScoredPairs,
    rules: ClusterRules = ClusterRules(),
    link_weight: float = -math.inf,
) -> list[int]:
    """The cluster (its smallest record index) of every record.

    Records are indexed in the order of `facts.ids`, which must be sorted (the smallest id
    is the cluster key). Pairs below `link_weight` never join clusters; they are evidence
    for the ambiguity and namesake rules only.

    Every rule needs two records that cannot be one person. Where the pairs (and shared
    national ids) connect no such two records, the rules can refuse nothing, and the
    clusters are the connected components of the linking pairs; only the other components
    are taken pair by pair (for the demo, a third of the records).
    """
    n = len(facts.ids)
    left, right = np.asarray(pairs.left, dtype=np.int64), np.asarray(pairs.right, dtype=np.int64)
    can_link = ~np.asarray(pairs.vetoed, dtype=bool) if pairs.vetoed else np.ones(len(left), bool)
    strong = (np.asarray(pairs.weight, dtype=float) >= link_weight) & can_link
    same_id = _same_national_id(facts.national_ids)
    reach = _components(n, np.concatenate([left[can_link], same_id[0]]),
                        np.concatenate([right[can_link], same_id[1]]))  # fmt: skip
    calm = _calm(facts, rules, reach)
    calm_pair = calm[reach[left]] & calm[reach[right]]
    calm_strong = calm_pair & strong
    linked = _components(n, np.concatenate([left[calm_strong], same_id[0]]),
                         np.concatenate([right[calm_strong], same_id[1]]))  # fmt: skip
    roots = _smallest_member(linked)
    busy = np.flatnonzero(~calm_pair)
    state = _State(facts, _subset(pairs, busy), rules)
    state.join_national_ids()
    weight = np.asarray(pairs.weight, dtype=float)[busy]
    order = np.flatnonzero(strong[busy])
    order = order[np.lexsort((right[busy][order], left[busy][order], -weight[order]))]
    for index in order.tolist():
        state.offer(index)
    for record in np.flatnonzero(~calm[reach]).tolist():
        roots[record] = state.find(record)
    return roots.tolist()


def _same_national_id(national_ids: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Edges joining each record with a permanent national id to the first record of it."""
    first: dict[str, int] = {}
    edges = [(first.setdefault(h, i), i) for i, h in enumerate(national_ids) if h]
    edges = [(a, b) for a, b in edges if a != b]
    return (np.array([a for a, _ in edges], dtype=np.int64),
            np.array([b for _, b in edges], dtype=np.int64))  # fmt: skip


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected component label of every record."""
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return np.asarray(connected_components(graph, directed=False)[1])


def _smallest_member(labels: np.ndarray) -> np.ndarray:
    """Every record's component named by its smallest record index."""
    smallest = np.full(labels.max() + 1 if len(labels) else 0, len(labels), dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(len(labels)))
    return smallest[labels]


def _calm(facts: RecordFacts, rules: ClusterRules, labels: np.ndarray) -> np.ndarray:
    """Per component: True when no two of its records could be two persons by the rules."""
    calm = np.ones(labels.max() + 1 if len(labels) else 0, dtype=bool)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for group in np.split(order, bounds):
        if len(group) > 1 and not _one_person_possible(facts, rules, group.tolist()):
            calm[labels[group[0]]] = False
    return calm


def _one_person_possible(facts: RecordFacts, rules: ClusterRules, records: list[int]) -> bool:
    national_ids = {h for h in (facts.national_ids[i] for i in records) if h}
    births = {b for b in (facts.births[i] for i in records) if b} if facts.births else set()
    if len(national_ids) > 1 or (rules.birth_dates and _births_disagree(births, births)):
        return False
    limit = rules.minor_after
    minor = bool(limit and any(b > limit for b in births))
    return not (minor and facts.adult and any(facts.adult[i] for i in records))


def _subset(pairs: ScoredPairs, keep: np.ndarray) -> ScoredPairs:
    """The pairs `keep` (indexes), renumbered from 0."""
    chosen = keep.tolist()
    return ScoredPairs(
        [pairs.left[i] for i in chosen],
        [pairs.right[i] for i in chosen],
        [pairs.weight[i] for i in chosen],
        [pairs.names_alike[i] for i in chosen] if pairs.names_alike else [],
        pairs.evidence[keep] if pairs.evidence is not None else None,
        [pairs.contact[i] for i in chosen] if pairs.contact else [],
        [pairs.vetoed[i] for i in chosen] if pairs.vetoed else [],
    )


class _State:
    """Union-find over record indexes whose roots carry what the rules need."""

    def __init__(self, facts: RecordFacts, pairs: ScoredPairs, rules: ClusterRules) -> None:
        n = len(facts.ids)
        self.facts, self.pairs, self.rules = facts, pairs, rules
        self.parent = list(range(n))
        self.clusters: dict[int, _Cluster] = {}  # made when a rule first reads a root
        self.neighbours = _adjacency(n, pairs)
        self.sharing = _sharing(n, pairs) if pairs.contact else {}
        self.links: dict[int, tuple[int, dict[int, list[int]]]] = {}  # size, links of a side
        # A pair's evidence summed: the profile of a side joined by one pair (the most).
        self.totals = (
            np.nansum(pairs.evidence, axis=1).tolist() if pairs.evidence is not None else []
        )

    def cluster_of(self, root: int) -> _Cluster:
        """What the rules read of the cluster whose root is `root`."""
        return self.clusters.get(root) or self._first_read(root)

    def _first_read(self, root: int) -> _Cluster:
        facts = self.facts
        birth = facts.births[root] if facts.births else None
        found = _Cluster(
            [root],
            facts.national_ids[root],
            {birth} if birth else set(),
            bool(facts.adult and facts.adult[root]),
            birth,
            set(facts.streets[root]) if facts.streets else set(),
        )
        self.clusters[root] = found
        return found

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def join_national_ids(self) -> None:
        """The same permanent national id is one person, whatever else the records say."""
        first: dict[str, int] = {}
        for i, national_id in enumerate(self.facts.national_ids):
            if national_id:
                self.union(self.find(first.setdefault(national_id, i)), self.find(i))

    def offer(self, index: int) -> bool:
        """Join the clusters of pair `index` unless a rule refuses; True when joined."""
        a, b = self.find(self.pairs.left[index]), self.find(self.pairs.right[index])
        if a == b:
            return True
        if self.conflict(a, b) or self.ambiguous(a, b) or self.ambiguous(b, a):
            return False
        self.union(a, b)
        return True

    def union(self, a: int, b: int) -> None:
        if a == b:
            return
        if b < a:
            a, b = b, a
        self.parent[b] = a
        keep, gone = self.cluster_of(a), self.cluster_of(b)
        del self.clusters[b]
        keep.members += gone.members
        keep.national_id = keep.national_id or gone.national_id
        keep.births |= gone.births
        keep.adult = keep.adult or gone.adult
        keep.youngest = max(filter(None, (keep.youngest, gone.youngest)), default=None)
        keep.streets |= gone.streets

    # --- the rules ------------------------------------------------------------------------

    def conflict(self, a: int, b: int) -> bool:
        """True when clusters a and b cannot be one person (national ids, birth dates, ages)."""
        return self._apart(self.cluster_of(a), self.cluster_of(b))

    def _apart(self, ca: _Cluster, cb: _Cluster) -> bool:
        if ca.national_id and cb.national_id and ca.national_id != cb.national_id:
            return True
        if self.rules.birth_dates and _births_disagree(ca.births, cb.births):
            return True
        limit = self.rules.minor_after
        if not limit:
            return False
        return bool(
            (ca.adult and cb.youngest and cb.youngest > limit)
            or (cb.adult and ca.youngest and ca.youngest > limit)
        )

    def ambiguous(self, side: int, other: int) -> bool:
        """True when `side` matches a rival of `other` as well, or hides household namesakes."""
        known, own = self.cluster_of(other), self.cluster_of(side)
        if own.national_id:
            return False  # an identified person takes what fits; the other side may hesitate
        # A rival must be another person than `other` and not than `side`: when `other`
        # knows nothing `side` does not (national id, birth dates, adult), none can be.
        rival = self.rules.margin and not _adds_nothing(known, own)
        # A side with a birth date tells namesakes apart.
        names = self.rules.namesake_guard and not own.births
        if not (rival or names):
            return False
        links = self._links_of(side)
        if rival and self._rival(side, other, links):
            return True
        return names and self._namesakes(side, other, links)

    def _links_of(self, side: int) -> dict[int, list[int]]:
        """The pairs (by index) from `side`'s records to each other cluster."""
        members = self.cluster_of(side).members
        parent = self.parent
        cached = self.links.get(side)
        # A big side (a weekly series offered to each of its namesakes) is scanned once: its
        # links hold while it has not grown and every cluster it links to is still whole.
        if cached and cached[0] == len(members) and all(parent[r] == r for r in cached[1]):
            return cached[1]
        by_root: dict[int, list[int]] = {}
        adjacency, find = self.neighbours, self.find
        for member in members:
            outward: list[int] = []
            flat = iter(adjacency[member])
            for record, index in zip(flat, flat, strict=True):
                root = parent[record]
                if parent[root] != root:  # most records point at their root already
                    root = find(record)
                if root != side:
                    by_root.setdefault(root, []).append(index)
                    outward += (record, index)
            # Clusters only grow: a pair inside `side` stays inside, so it is dropped for good.
            adjacency[member] = outward
        if len(members) >= BIG_SIDE:
            self.links[side] = (len(members), by_root)
        return by_root

    def _rival(self, side: int, other: int, links: dict[int, list[int]]) -> bool:
        cs, co = self.cluster_of(side), self.cluster_of(other)
        floor, homes = None, None
        for root, indexes in links.items():
            if root == other:
                continue
            candidate = self.cluster_of(root)
            if not self._apart(candidate, co) or self._apart(candidate, cs):
                continue  # could be `other`'s person, or cannot be `side`'s: no rival
            if floor is None:
                floor = self._profile(links[other]) - self.rules.margin
            if self._profile(indexes) < floor:
                continue
            # A tie is broken by the household: `side`'s email or phone is also held by
            # someone living where `other` lives, and by no one where the rival lives (if
            # the two live apart: in one home everyone holds the family's email and phone).
            homes = self._homes_sharing(side) if homes is None else homes
            apart = not co.streets & candidate.streets
            if not (apart and homes & co.streets and not homes & candidate.streets):
                return True
        return False

    def _homes_sharing(self, side: int) -> set[str]:
        """Streets of other records holding an email or a phone of `side`'s records."""
        homes: set[str] = set()
        streets, sharing = self.facts.streets, self.sharing
        for member in self.cluster_of(side).members:
            for record in sharing.get(member, ()):
                if streets and self.find(record) != side:
                    homes.update(streets[record])
        return homes

    def _profile(self, indexes: list[int]) -> float:
        """Per comparison the best level any of the pairs reached, summed (bits)."""
        evidence = self.pairs.evidence
        if evidence is None:
            return max(self.pairs.weight[i] for i in indexes)
        if len(indexes) == 1:
            return float(self.totals[indexes[0]])
        total = 0.0
        for column in zip(*evidence[indexes].tolist(), strict=True):  # few rows: plain Python
            known = [w for w in column if w == w]  # NaN (no value) is not equal to itself
            total += max(known) if known else 0.0
        return total

    def _namesakes(self, side: int, other: int, links: dict[int, list[int]]) -> bool:
        """`side`'s names fit two persons at one address whom it cannot tell apart.

        Fit: names alike ("Arska" fits two Aris). One of them a minor: never (a minor's
        records carry a guardian's email and phone). Both adults: unless `side` shares an
        email or a phone with `other` (an adult's own).
        """
        alike, cs, limit = self.pairs.names_alike, self.cluster_of(side), self.rules.minor_after
        named = [self.cluster_of(root) for root, pairs in links.items()
                 if any(alike[i] for i in pairs)]  # fmt: skip
        named = [c for c in named if not self._apart(c, cs)]
        adults = False
        for i, first in enumerate(named):
            for second in named[i + 1 :]:
                if first.streets & second.streets and self._apart(first, second):
                    if any(c.youngest and limit and c.youngest > limit for c in (first, second)):
                        return True
                    adults = True
        contact = self.pairs.contact
        return adults and not any(contact[i] for i in links.get(other, ()))


def _adjacency(n: int, pairs: ScoredPairs) -> list[list[int]]:
    """For every record, its pairs as a flat list: other record, pair index, other, ...

    Vetoed pairs are left out: they never link, and say nothing of how alike two are.
    """
    neighbours: list[list[int]] = [[] for _ in range(n)]
    vetoed = pairs.vetoed or [False] * len(pairs.left)
    for index, (a, b, no) in enumerate(zip(pairs.left, pairs.right, vetoed, strict=True)):
        if not no:
            neighbours[a] += (b, index)  # flat: no tuple per pair (millions of them at scale)
            neighbours[b] += (a, index)
    return neighbours


def _sharing(n: int, pairs: ScoredPairs) -> dict[int, list[int]]:
    """For records that share an email or a phone with others: those others."""
    shared: dict[int, list[int]] = {}
    for a, b, same in zip(pairs.left, pairs.right, pairs.contact, strict=True):
        if same:
            shared.setdefault(a, []).append(b)
            shared.setdefault(b, []).append(a)
    return shared


def _adds_nothing(other: _Cluster, side: _Cluster) -> bool:
    """True when `other` holds no national id, birth date or adult record `side` lacks."""
    return (
        (not other.national_id or other.national_id == side.national_id)
        and other.births <= side.births
        and (side.adult or not other.adult)
    )


def _births_disagree(a: set[str], b: set[str]) -> bool:
    # The same year is the common case and needs no closer look.
    return any(x[:4] != y[:4] and not same_birth_date(x, y) for x in a for y in b)


def same_birth_date(a: str, b: str) -> bool:
    """True when two ISO dates can be one person's: the same year, or one keying error apart."""
    if a[:4] == b[:4]:
        return True
    if len(a) != len(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diff) == 1:
        return True
    # Two neighbouring digits swapped (day and month swapped keep the year: caught above).
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and (a[diff[0]], a[diff[1]])
        == (
            b[diff[1]],
            b[diff[0]],
        )
    )
