"""Probabilistic record linkage: standardised records, a Splink model, constrained clustering.

Deterministic rules come first: the same permanent national id is one resident, and two
different permanent national ids are never one resident, whatever the model says. The
Splink model (DuckDB backend) scores the other pairs; clusters are then built by
constrained clustering (see `constrained_clusters`). Temporary ids (900-999) are only a
weak comparison column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
import sqlalchemy as sa
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from islandhub.demo import names
from islandhub.resolve.evaluate import RecordKey
from islandhub.resolve.keys import is_temporary_hetu
from islandhub.resolve.settings import ComparisonSettings, ResolutionSettings, Rule
from islandhub.store.db import Store, dumps, loads, now
from islandhub.store.tables import landing, resolution_models, same_source, source_records

#: Columns of the standardised frame, in order.
COLUMNS = (
    "unique_id", "system", "national_id", "temporary_id", "given_name", "given_names",
    "given_canonical", "given_keys", "family_name", "birth_date", "birth_year", "email",
    "email_local", "phone", "postal_code", "street", "house",
)  # fmt: skip
_CENTURY = {"+": 1800, "-": 1900, "A": 2000, **dict.fromkeys("YXWVU", 1900)}
_CENTURY.update(dict.fromkeys("BCDEF", 2000))
_SPACES = re.compile(r"\s+")
_HOUSE = re.compile(r"\s(\d.*)$")  # "iso kylätie 12 b 7" -> "12 b 7"
DUCKDB = "duckdb"


# --- standardised records ---------------------------------------------------------------


def unique_id(system: str, stream: str, source_id: str) -> str:
    """The frame's id of a source record: "system|stream|source_id"."""
    return f"{system}|{stream}|{source_id}"


def record_key(uid: str) -> RecordKey:
    """(system, stream, source_id) of a frame id (system and stream never hold '|')."""
    system, stream, source_id = uid.split("|", 2)
    return system, stream, source_id


def frame_from_store(store: Store) -> pd.DataFrame:
    """One standardised row per current (mapped, not deleted) source record of the store."""
    join = source_records.join(
        landing,
        same_source(landing, source_records),
    )
    query = (
        sa.select(
            source_records.c.system,
            source_records.c.stream,
            source_records.c.source_id,
            source_records.c.fields,
        )
        .select_from(join)
        .where(landing.c.status == "mapped")
        .order_by(source_records.c.system, source_records.c.stream, source_records.c.source_id)
    )
    with store.connect() as conn:
        rows = [
            standardise(row.system, row.stream, row.source_id, loads(row.fields))
            for row in conn.execute(query)
        ]
    return frame_of(rows)


def frame_of(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A frame of standardised rows (from `standardise`) with the columns Splink expects."""
    return pd.DataFrame(list(rows), columns=list(COLUMNS))


def standardise(
    system: str, stream: str, source_id: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """One source record's mapped fields as the comparable columns of the frame."""
    hetu = _text(fields.get("national_id"))
    temporary = hetu if hetu and is_temporary_hetu(hetu) else None
    given_names = _name(fields.get("given_name"))
    first = given_names.split()[0] if given_names else None
    birth = _text(fields.get("birth_date")) or (birth_date_of(hetu) if hetu else None)
    email = (_text(fields.get("email")) or "").lower() or None
    street = _name(fields.get("address.street")) or None
    house = _HOUSE.search(street) if street else None
    return {
        "unique_id": unique_id(system, stream, source_id),
        "system": system,
        "national_id": None if temporary else hetu,
        "temporary_id": temporary,
        "given_name": first,
        "given_names": given_names.split() if given_names else None,
        "given_canonical": canonical_name(first) if first else None,
        "given_keys": sorted(name_keys(first)) if first else None,
        "family_name": _name(fields.get("family_name")) or None,
        "birth_date": birth,
        "birth_year": birth[:4] if birth else None,
        "email": email,
        "email_local": email.split("@")[0] if email else None,
        "phone": (_text(fields.get("phone")) or "").replace(" ", "") or None,
        "postal_code": _text(fields.get("address.postal_code")),
        "street": street,
        "house": house.group(1) if house else None,
    }


def birth_date_of(hetu: str) -> str | None:
    """The birth date (ISO) a national id encodes, temporary ones too; None if unreadable."""
    if len(hetu) != 11 or not hetu[:6].isdigit() or hetu[6] not in _CENTURY:
        return None
    year = _CENTURY[hetu[6]] + int(hetu[4:6])
    return f"{year:04d}-{hetu[2:4]}-{hetu[:2]}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _name(value: Any) -> str:
    """Lower-cased, spaces collapsed, accents kept ("Björk" stays "björk")."""
    return _SPACES.sub(" ", str(value)).strip().lower() if value else ""


# --- given names: nicknames and Finnish/Swedish variants --------------------------------


@cache
def _name_tables() -> tuple[dict[str, str], dict[str, set[str]], dict[str, str]]:
    """(variant group key by name, formal names by nickname, blocking component by name)."""
    group_key = {
        name.lower(): min(n.lower() for n in group)
        for group in names.VARIANT_GROUPS
        for name in group
    }
    formal: dict[str, set[str]] = {}
    for full, nick in names.NICKNAMES.items():
        formal.setdefault(nick.lower(), set()).add(full.lower())
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    for name, key in group_key.items():
        parent[find(name)] = find(key)
    for nick, fulls in formal.items():
        for full in fulls:
            a, b = sorted((find(nick), find(full)))
            parent[b] = a
    component = {name: find(name) for name in parent}
    return group_key, formal, component


def canonical_name(name: str) -> str:
    """One key for a given name, its nicknames and its fi/sv variants ("jussi" -> "johan").

    Transitive (Kalle joins Kalevi and Karl), so a loose key: for blocking only.
    """
    name = name.lower()
    return _name_tables()[2].get(name, name)


def name_keys(name: str) -> set[str]:
    """The strict keys of a given name: its variant group, and a nickname's formal names'.

    Two names share a key when one is the other's nickname or fi/sv variant; unlike
    `canonical_name` it is not transitive (Kalevi and Karl share none).
    """
    group_key, formal, _ = _name_tables()
    name = name.lower()
    keys = {group_key.get(name, name)}
    for full in formal.get(name, ()):
        keys.add(group_key.get(full, full))
    return keys


# --- the Splink model -------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedModel:
    """A trained Splink model (its JSON settings dict) and the hub settings it came from."""

    settings: ResolutionSettings
    model: dict[str, Any]
    trained_at: datetime
    record_count: int


def _level(level: Any, label: str) -> Any:
    return level.configure(label_for_charts=label)


def _custom(sql: str, label: str) -> Any:
    return cll.CustomLevel(sql, label, base_dialect_str=DUCKDB)


def _jw(column: str, options: ComparisonSettings) -> list[Any]:
    return [cll.JaroWinklerLevel(column, t) for t in options.jaro_winkler]


def _given_name(options: ComparisonSettings) -> Any:
    return cl.CustomComparison(
        output_column_name="given_name",
        comparison_levels=[
            cll.NullLevel("given_name"),
            cll.ExactMatchLevel("given_name", options.term_frequency),
            _level(cll.ArrayIntersectLevel("given_keys", 1), "nickname or fi/sv variant"),
            _custom(
                "list_contains(given_names_l, given_name_r) "
                "or list_contains(given_names_r, given_name_l)",
                "another of the given names",
            ),
            *_jw("given_name", options),
            _custom("given_name_l = family_name_r", "swapped with the family name"),
            cll.ElseLevel(),
        ],
    )


def _family_name(options: ComparisonSettings) -> Any:
    return cl.CustomComparison(
        output_column_name="family_name",
        comparison_levels=[
            cll.NullLevel("family_name"),
            cll.ExactMatchLevel("family_name", options.term_frequency),
            *_jw("family_name", options),
            _custom("family_name_l = given_name_r", "swapped with the given name"),
            cll.ElseLevel(),
        ],
    )


def _birth_date(options: ComparisonSettings) -> Any:
    swapped = (
        "birth_year_l = birth_year_r "
        "and substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) "
        "and substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2)"
    )
    return cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date", options.term_frequency),
            _custom(swapped, "day and month swapped"),
            _level(cll.DamerauLevenshteinLevel("birth_date", 1), "one digit off"),
            _level(cll.ExactMatchLevel("birth_year"), "same year"),
            cll.ElseLevel(),
        ],
    )


def _email(options: ComparisonSettings) -> Any:
    return cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.NullLevel("email"),
            cll.ExactMatchLevel("email", options.term_frequency),
            _level(cll.ExactMatchLevel("email_local"), "same local part"),
            *_jw("email", options),
            cll.ElseLevel(),
        ],
    )


def _street(options: ComparisonSettings) -> Any:
    return cl.CustomComparison(
        output_column_name="street",
        comparison_levels=[
            cll.NullLevel("street"),
            cll.ExactMatchLevel("street", options.term_frequency),
            *_jw("street", options),
            _level(cll.ExactMatchLevel("house"), "same house number (other language)"),
            cll.ElseLevel(),
        ],
    )


def _exact(column: str) -> Any:
    def build(options: ComparisonSettings) -> Any:
        return cl.ExactMatch(column).configure(term_frequency_adjustments=options.term_frequency)

    return build


def _temporary_id(_options: ComparisonSettings) -> Any:
    """Weak evidence with fixed weights: hospitals reuse temporary ids (Bayes factor 100)."""
    return cl.CustomComparison(
        output_column_name="temporary_id",
        comparison_levels=[
            cll.NullLevel("temporary_id"),
            _fixed(cll.ExactMatchLevel("temporary_id"), 0.5, 0.005),
            _fixed(cll.ElseLevel(), 0.5, 0.995),
        ],
    )


def _fixed(level: Any, m: float, u: float) -> Any:
    """A level whose m and u training leaves alone."""
    return level.configure(
        m_probability=m, u_probability=u, fix_m_probability=True, fix_u_probability=True
    )


_COMPARISONS = {
    "given_name": _given_name,
    "family_name": _family_name,
    "birth_date": _birth_date,
    "email": _email,
    "phone": _exact("phone"),
    "postal_code": _exact("postal_code"),
    "street": _street,
    "temporary_id": _temporary_id,
}


def _blocking(rules: Iterable[Rule]) -> list[Any]:
    return [block_on(*rule) for rule in rules]


def splink_settings(settings: ResolutionSettings) -> SettingsCreator:
    """Splink's settings for the hub's: comparisons and prediction blocking."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[_COMPARISONS[name](opts) for name, opts in settings.comparisons.items()],
        blocking_rules_to_generate_predictions=_blocking(settings.blocking),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=["national_id"],
    )


def train(frame: pd.DataFrame, settings: ResolutionSettings) -> TrainedModel:
    """Train the model on `frame`: prior from near-certain rules, u by seeded sampling, m by EM."""
    linker = Linker(
        frame, splink_settings(settings), db_api=DuckDBAPI(), set_up_basic_logging=False
    )
    if settings.prior_rules:
        linker.training.estimate_probability_two_random_records_match(
            _blocking(settings.prior_rules), recall=settings.prior_recall
        )
    linker.training.estimate_u_using_random_sampling(
        max_pairs=settings.u_max_pairs, seed=settings.seed
    )
    for rule in settings.em_blocking:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    model = linker.misc.save_model_to_json()
    return TrainedModel(settings, model, now(), len(frame))


def save_model(store: Store, model: TrainedModel) -> int:
    """Store a trained model (the newest is the one in use); returns its id."""
    with store.begin() as conn:
        result = conn.execute(
            resolution_models.insert().values(
                trained_at=model.trained_at,
                settings=model.settings.to_json(),
                model=dumps(model.model),
                record_count=model.record_count,
            )
        )
        key = result.inserted_primary_key
        return int(key[0]) if key else 0


def load_model(store: Store) -> TrainedModel | None:
    """The newest trained model of the store, or None when none was trained."""
    query = sa.select(resolution_models).order_by(resolution_models.c.id.desc()).limit(1)
    with store.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    trained_at = row.trained_at
    return TrainedModel(
        ResolutionSettings.from_json(row.settings), loads(row.model), trained_at, row.record_count
    )


def predict_pairs(frame: pd.DataFrame, model: TrainedModel, threshold: float) -> pd.DataFrame:
    """Scored pairs at or above `threshold`: unique_id_l, unique_id_r, probability, weight.

    Pairs that clearly disagree on a vetoing comparison (its last level: both values
    present, no similarity level holds) are dropped whatever their score.
    """
    settings = {
        **model.model,
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,
    }
    linker = Linker(frame, settings, db_api=DuckDBAPI(), set_up_basic_logging=False)
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    pairs = predictions.as_pandas_dataframe()
    predictions.drop_table_from_database_and_remove_from_cache()
    keep = pd.Series(True, index=pairs.index)
    for name in model.settings.veto:
        if f"gamma_{name}" in pairs:
            keep &= pairs[f"gamma_{name}"] != 0
    return pairs.loc[keep, ["unique_id_l", "unique_id_r", "match_probability", "match_weight"]]


# --- constrained clustering -------------------------------------------------------------


class _Clusters:
    """Union-find whose every cluster holds at most one permanent national id."""

    def __init__(self, national_ids: Mapping[str, str | None]) -> None:
        self.parent: dict[str, str] = {uid: uid for uid in national_ids}
        self.key: dict[str, str | None] = dict(national_ids)

    def find(self, uid: str) -> str:
        root = uid
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[uid] != root:  # path compression
            self.parent[uid], uid = root, self.parent[uid]
        return root

    def union(self, a: str, b: str) -> bool:
        """Join the clusters of a and b unless they hold different national ids."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        ka, kb = self.key[ra], self.key[rb]
        if ka and kb and ka != kb:
            return False
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.key[ra] = ka or kb
        return True


def constrained_clusters(
    national_ids: Mapping[str, str | None], pairs: Iterable[tuple[str, str, float]]
) -> dict[str, str]:
    """Cluster records: same national id first, then pairs by descending probability.

    `national_ids` maps every record to its permanent national id (or None); `pairs` are
    (record, record, match probability). A union that would put two different national ids
    in one cluster is refused, so a record between two residents joins the likelier one.
    Returns record -> cluster key (the smallest record id of its cluster).
    """
    clusters = _Clusters(national_ids)
    first_of: dict[str, str] = {}
    for uid, hetu in national_ids.items():
        if hetu:
            clusters.union(first_of.setdefault(hetu, uid), uid)
    ordered = sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))
    for a, b, _probability in ordered:
        clusters.union(a, b)
    return {uid: clusters.find(uid) for uid in national_ids}


def ambiguous_records(
    national_ids: Mapping[str, str | None],
    weighted: Iterable[tuple[str, str, float]],
    margin: float,
) -> set[str]:
    """Records without a national id that match two national ids' records almost equally.

    A father and his namesake son at one address look alike to a record that has neither
    birth date nor id: when its best match with a second national id is within `margin`
    (match weight, bits) of its best match of all, it links to neither and waits for more
    evidence or a steward. `weighted` holds (record, record, match weight).
    """
    best: dict[str, dict[str, float]] = {}
    for a, b, weight in weighted:
        ha, hb = national_ids.get(a), national_ids.get(b)
        if bool(ha) == bool(hb):
            continue
        uid, hetu = (b, ha) if ha else (a, hb)
        held = best.setdefault(uid, {})
        held[str(hetu)] = max(held.get(str(hetu), weight), weight)
    unsure = set()
    for uid, weights in best.items():
        top = sorted(weights.values(), reverse=True)
        if len(top) > 1 and top[0] - top[1] < margin:
            unsure.add(uid)
    return unsure


def cluster_frame(
    frame: pd.DataFrame, pairs: pd.DataFrame, ambiguity_margin: float = 0.0
) -> dict[str, str]:
    """Constrained clusters of `frame`'s records from scored `pairs` (see predict_pairs).

    With a positive `ambiguity_margin`, pairs of ambiguous records (`ambiguous_records`)
    are left out.
    """
    national_ids = dict(zip(frame["unique_id"], frame["national_id"], strict=True))
    national_ids = {uid: (h if isinstance(h, str) else None) for uid, h in national_ids.items()}
    triples = list(
        zip(pairs["unique_id_l"], pairs["unique_id_r"], pairs["match_probability"], strict=True)
    )
    unsure: set[str] = set()
    if ambiguity_margin:
        weighted = zip(
            pairs["unique_id_l"], pairs["unique_id_r"], pairs["match_weight"], strict=True
        )
        unsure = ambiguous_records(national_ids, weighted, ambiguity_margin)
    kept = [t for t in triples if t[0] not in unsure and t[1] not in unsure]
    return constrained_clusters(national_ids, kept)


def resolve_frame(frame: pd.DataFrame, model: TrainedModel, threshold: float) -> dict[str, str]:
    """Record -> cluster key for every record of `frame` (nothing is written)."""
    pairs = predict_pairs(frame, model, threshold)
    return cluster_frame(frame, pairs, model.settings.ambiguity_margin)


def resolve_all(
    store: Store, model: TrainedModel, threshold: float | None = None
) -> dict[str, str]:
    """Resolve every current source record of the store: unique_id -> cluster key.

    Writes nothing; `threshold` defaults to the model's settings.
    """
    frame = frame_from_store(store)
    return resolve_frame(frame, model, model.settings.threshold if threshold is None else threshold)


def by_record_key(clusters: Mapping[str, str]) -> dict[RecordKey, str]:
    """Clusters keyed (system, stream, source_id), as `evaluate.score` takes them."""
    return {record_key(uid): cluster for uid, cluster in clusters.items()}
