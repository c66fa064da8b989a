"""Probabilistic record linkage: standardised records, a Splink model, constrained clustering.

Deterministic rules come first: the same permanent national id is one resident, and two
different permanent national ids are never one resident, whatever the model says. The
Splink model (DuckDB backend) scores the other pairs; clusters are then built by
constrained clustering (clusters.py: national ids, birth dates, adults-only systems,
ambiguity and household namesakes). Temporary ids (900-999) are only a weak comparison
column.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
import sqlalchemy as sa
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from islandhub.demo import names
from islandhub.errors import RunFailed
from islandhub.gcpause import cyclic_gc_paused
from islandhub.resolve import frame_store, splink_columns
from islandhub.resolve.clusters import ClusterRules, RecordFacts, ScoredPairs, cluster
from islandhub.resolve.evaluate import RecordKey
from islandhub.resolve.frame_store import KeySpec, key_spec
from islandhub.resolve.keys import is_temporary_hetu
from islandhub.resolve.settings import ComparisonSettings, ResolutionSettings, Rule
from islandhub.store.db import Store, dumps, loads, now
from islandhub.store.tables import (
    resolution_models,
)

#: Columns of the standardised frame, in order.
#: Bumped whenever `standardise` changes what it makes of a record, or how a kept row is
#: stored: older rows of `resolution_frame` are then standardised again. 2: rows are JSON
#: arrays in COLUMNS order (half the bytes of objects; a frame is built from them directly).
#: 3: rows come with their blocking and term-frequency keys (frame_store.py).
FRAME_VERSION = 3

COLUMNS = (
    "unique_id", "system", "national_id", "temporary_id", "given_name", "given_names",
    "given_canonical", "given_keys", "family_name", "name_set", "birth_date", "birth_year",
    "email", "email_local", "email_year", "phone", "postal_code", "street", "street_sv",
    "house",
)  # fmt: skip
_CENTURY = {"+": 1800, "-": 1900, "A": 2000, **dict.fromkeys("YXWVU", 1900)}
_CENTURY.update(dict.fromkeys("BCDEF", 2000))
_SPACES = re.compile(r"\s+")
_HOUSE = re.compile(r"\s(\d.*)$")  # "iso kylätie 12 b 7" -> "12 b 7"
# A year at the end of an email's local part: "kk1948", "p.virtanen85" (not "anna2").
_EMAIL_YEAR = re.compile(r"(?<!\d)(?:19|20)?(\d\d)$")
#: Bits below the weakest link that rivals are still looked for: a cluster's profile can
#: exceed its best single pair.
EVIDENCE_SLACK = 2.0
DUCKDB = "duckdb"
splink_columns.install()


# --- standardised records ---------------------------------------------------------------


def unique_id(system: str, stream: str, source_id: str) -> str:
    """The frame's id of a source record: "system|stream|source_id"."""
    return f"{system}|{stream}|{source_id}"


def record_key(uid: str) -> RecordKey:
    """(system, stream, source_id) of a frame id (system and stream never hold '|')."""
    system, stream, source_id = uid.split("|", 2)
    return system, stream, source_id


def frame_from_store(store: Store, spec: KeySpec | None = None) -> pd.DataFrame:
    """One standardised row per current (mapped, not deleted) source record of the store.

    National ids are stored sealed: each record's is opened to standardise it (the birth
    date and the temporary-id test read the HETU), then the frame keeps only its keyed
    lookup hash, which is all clustering and the temporary-id comparison use (equality), so
    no clear id reaches DuckDB or its spill files.

    Standardised rows are kept in `resolution_frame` (frame_store.py): a row is reused while
    its stamp holds (see `refresh_frame`), so a pass standardises only what changed since the
    last one. With `spec` (the resolution settings' rules) each row's keys are kept with it,
    for the incremental passes that read the frame by key.
    """
    refresh_frame(store, spec, whole=True)
    return pd.DataFrame(frame_store.read_all(store), columns=list(COLUMNS))


def refresh_frame(
    store: Store,
    spec: KeySpec | None,
    *,
    whole: bool = False,
    queued: Iterable[RecordKey] = (),
) -> int:
    """Standardise the records whose kept row is stale; how many were.

    A row holds while its stamp does: this code's FRAME_VERSION, the sealing key's
    fingerprint, the key spec's digest (another spec: other keys) and the run that wrote
    the source record. Only records landed since the frame's marks, and the `queued` ones,
    are looked at, unless `whole` (frame_store.refresh).
    """
    from islandhub.privacy.crypto import fingerprint

    stamp = f"{FRAME_VERSION}:{fingerprint()[:16]}:{spec.digest if spec else '-'}:"
    return frame_store.refresh(store, stamp, spec, standardised_row, whole=whole, queued=queued)


def standardised_row(system: str, stream: str, source_id: str, text: str) -> list[Any]:
    """A stored source record's mapped fields (JSON) as a kept row, national ids hashed."""
    from islandhub.privacy.at_rest import unsealed_fields
    from islandhub.privacy.crypto import lookup_hash

    row = standardise(system, stream, source_id, unsealed_fields(loads(text)))
    for column in ("national_id", "temporary_id"):
        if row[column]:
            row[column] = lookup_hash(row[column])
    return [row[column] for column in COLUMNS]


def frame_spec(settings: ResolutionSettings) -> KeySpec:
    """The keys kept with each row for `settings` (blocking rules, tf columns)."""
    return key_spec(COLUMNS, settings)


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
    local = email.split("@")[0] if email else None
    family = _name(fields.get("family_name")) or None
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
        "given_keys": _sorted_keys(first) if first else None,
        "family_name": family,
        "name_set": " ".join(sorted((first, family))) if first and family else None,
        "birth_date": birth,
        "birth_year": birth[:4] if birth else None,
        "email": email,
        "email_local": local,
        "email_year": email_year(local) if local else None,
        "phone": (_text(fields.get("phone")) or "").replace(" ", "") or None,
        "postal_code": _text(fields.get("address.postal_code")),
        "street": street,
        "street_sv": _name(fields.get("address.street_sv")) or None,
        "house": house.group(1) if house else None,
    }


def email_year(local: str) -> str | None:
    """The two-digit year an email's local part ends with ("kk1948" -> "48"), or None.

    People often put their birth year there; the `email_year` comparison weighs it against
    the other record's birth date (EM learns how often it is the birth year).
    """
    if not local[-2:].isdigit():  # most have none: skip the regular expression
        return None
    found = _EMAIL_YEAR.search(local)
    return found.group(1) if found else None


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


@lru_cache(maxsize=65536)
def _sorted_keys(name: str) -> list[str]:
    # Given names repeat across records: computed once per name (the list is never changed).
    return sorted(name_keys(name))


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


#: Both names swapped ("Virtanen Matti" against "Matti Virtanen").
_SWAPPED = "given_name_l = family_name_r and family_name_l = given_name_r"
#: Level labels the namesake rule reads the names by (see _names_alike_sql).
EXACT_GIVEN, EXACT_FAMILY = "Exact match on given_name", "Exact match on family_name"
NICKNAME, SWAPPED = "nickname or fi/sv variant", "swapped with the family name"


def _given_name(options: ComparisonSettings) -> Any:
    return cl.CustomComparison(
        output_column_name="given_name",
        comparison_levels=[
            cll.NullLevel("given_name"),
            cll.ExactMatchLevel("given_name", options.term_frequency),
            _level(cll.ArrayIntersectLevel("given_keys", 1), NICKNAME),
            _custom(
                "list_contains(given_names_l, given_name_r) "
                "or list_contains(given_names_r, given_name_l)",
                "another of the given names",
            ),
            *_jw("given_name", options),
            # Weighs the whole swapped name (family_name's level of it is neutral).
            _custom(_SWAPPED, SWAPPED),
            cll.ElseLevel(),
        ],
    )


def _family_name(options: ComparisonSettings) -> Any:
    # Both comparisons see a swap; learning it twice would count one rare event twice, so
    # given_name weighs it and this level is fixed at weight 0 (m = u).
    swapped = _fixed(_custom(_SWAPPED, "swapped with the given name"), 0.01, 0.01)
    return cl.CustomComparison(
        output_column_name="family_name",
        comparison_levels=[
            cll.NullLevel("family_name"),
            cll.ExactMatchLevel("family_name", options.term_frequency),
            *_jw("family_name", options),
            swapped,
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
    # No "same local part" level: a local part is mostly the person's name ("matti.virtanen"),
    # so two namesakes share it at other providers, and its agreement would count the names
    # a second time. Jaro-Winkler levels (if configured) have the same weakness.
    return cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.NullLevel("email"),
            cll.ExactMatchLevel("email", options.term_frequency),
            *_jw("email", options),
            cll.ElseLevel(),
        ],
    )


def _email_year(_options: ComparisonSettings) -> Any:
    """The year an email ends with ("kk1948") against the other record's birth year."""
    one_way = "email_year_{a} = substr(birth_year_{b}, 3, 2)"
    comparable = "(email_year_{a} is not null and birth_year_{b} is not null)"
    either = " or ".join(comparable.format(a=a, b=b) for a, b in (("l", "r"), ("r", "l")))
    return cl.CustomComparison(
        output_column_name="email_year",
        comparison_levels=[
            _custom(f"not ({either})", "no email year and birth year to compare").configure(
                is_null_level=True
            ),
            _custom(
                " or ".join(one_way.format(a=a, b=b) for a, b in (("l", "r"), ("r", "l"))),
                "birth year in the email",
            ),
            cll.ElseLevel(),
        ],
    )


def _street(options: ComparisonSettings) -> Any:
    # The register holds the Finnish and the Swedish street name; other islands hold one
    # of them, in the resident's own language.
    other_language = "street_l = street_sv_r or street_sv_l = street_r"
    return cl.CustomComparison(
        output_column_name="street",
        comparison_levels=[
            cll.NullLevel("street"),
            cll.ExactMatchLevel("street", options.term_frequency),
            _custom(other_language, "the same street in the other language"),
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
    "email_year": _email_year,
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


@contextmanager
def _duckdb(settings: ResolutionSettings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection of its own for Splink, within the settings' memory limit.

    DuckDB's default is 80 % of the machine's memory, shared with everything else on it;
    with a limit it spills the large joins of training and scoring to a temporary folder.
    Closing it after use returns its memory at once, before the next step needs its own.
    """
    connection = duckdb.connect()
    try:
        if settings.memory_limit:  # validated by the schema: a number and a unit
            connection.execute(f"SET memory_limit = '{settings.memory_limit}'")
            connection.execute(f"SET temp_directory = '{tempfile.gettempdir()}/islandhub_duckdb'")
        yield connection
    finally:
        connection.close()


def train(frame: pd.DataFrame, settings: ResolutionSettings) -> TrainedModel:
    """Train the model on `frame`: prior from near-certain rules, u by seeded sampling, m by EM.

    With `max_training_records`, on a seeded sample of that many records: the prior, m and u
    are shares, which a uniform sample of records keeps, and EM's cost grows with the square
    of the records that share a blocking key.
    """
    limit = settings.max_training_records
    if limit and len(frame) > limit:
        frame = frame.sample(n=limit, random_state=settings.seed).reset_index(drop=True)
    with _duckdb(settings) as connection:
        db = DuckDBAPI(connection=connection)
        linker = Linker(frame, splink_settings(settings), db_api=db, set_up_basic_logging=False)
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


def has_model(store: Store) -> bool:
    """Whether a model was ever trained (without reading its JSON, as load_model does)."""
    with store.connect() as conn:
        return conn.execute(sa.select(resolution_models.c.id).limit(1)).first() is not None


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
    pairs = score_pairs(frame, model, threshold)
    kept = pairs.loc[~pairs["vetoed"]]
    return kept[["unique_id_l", "unique_id_r", "match_probability", "match_weight"]]


def score_pairs(
    frame: pd.DataFrame,
    model: TrainedModel,
    threshold: float,
    *,
    against: pd.DataFrame | KeptRows | None = None,
    frequencies: pd.DataFrame | Frequencies | None = None,
) -> pd.DataFrame:
    """Vetoed-out scored pairs at or above `threshold`, with what clustering weighs.

    Besides the ids, probability and weight: `w_<comparison>`, the bits each comparison
    contributed (term-frequency adjustment included; NaN where a value was missing), and
    `names_alike` (the same family name and the same given name or a nickname or fi/sv
    variant of it, or the two names swapped) and `contact` (the same email or phone).
    Vetoed pairs that share an email or a phone are kept with `vetoed` set: never to link,
    only to say whose household a record's email or phone belongs to.

    An incremental pass scores part of the records: with `against`, only the pairs between
    `frame` and `against` (term frequencies of the two together); with `frequencies`, the
    pairs weighed by the term frequencies of that larger frame, or by the lookup tables a
    function of the column and the values scored gives (frame_store.frequencies: counted
    from the kept keys). `against` may be kept rows as stored (`KeptRows`): DuckDB reads
    them itself. Either way a pair scores exactly as it would in a pass over every record.
    """
    # Only Splink's Bayes factors are kept, not every compared column of every pair (a
    # tenth of the scoring time): a level is known by its Bayes factor (see _evidence_sql).
    settings = {
        **model.model,
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": True,
        "additional_columns_to_retain": ["name_set"],
    }
    inputs: Any = frame
    aliases = None
    with _duckdb(model.settings) as connection:
        existing: Any = against
        if isinstance(against, KeptRows):
            existing = _kept_table(connection, against)
        if against is not None:
            settings["link_type"] = "link_only"
            inputs, aliases = [existing, frame], ["existing", "changed"]
        db = DuckDBAPI(connection=connection)
        # The settings were validated when the model was trained (a second of each pass).
        linker = Linker(
            inputs,
            settings,
            db_api=db,
            set_up_basic_logging=False,
            input_table_aliases=aliases,
            validate_settings=False,
        )
        if frequencies is not None:
            for column in tf_columns(model.model):
                if callable(frequencies):
                    values = [*frame[column], *_column_values(connection, existing, column)]
                    lookup = frequencies(column, values)
                else:
                    lookup = term_frequencies(frequencies, column)
                linker.table_management.register_term_frequency_lookup(lookup, column)
        predictions = linker.inference.predict(threshold_match_probability=threshold)
        sql = _evidence_sql(predictions.physical_name, model.model, model.settings.veto)
        pairs: pd.DataFrame = connection.execute(sql).df()  # one pass, straight to pandas
    return pairs


#: Term frequencies of `column` for the values scored: a lookup table as Splink takes it.
Frequencies = Callable[[str, list[Any]], pd.DataFrame]
_LIST_COLUMNS = frozenset({"given_names", "given_keys"})


@dataclass(frozen=True)
class KeptRows:
    """Kept frame rows as stored (JSON arrays in COLUMNS order).

    An incremental pass compares its records with tens of thousands of blocked candidates:
    DuckDB turns their stored text into a table far faster than Python objects are made.
    """

    texts: list[str]


def _kept_table(connection: duckdb.DuckDBPyConnection, rows: KeptRows) -> str:
    """A DuckDB table of `rows`, typed as a frame of the same records would be."""
    # Each text parsed once into a list of JSON values (a third of extracting each column).
    columns = ", ".join(
        f"CAST(v[{i}] AS VARCHAR[]) AS {name}"
        if name in _LIST_COLUMNS
        else f"v[{i}]->>'$' AS {name}"
        for i, name in enumerate(COLUMNS, start=1)
    )
    connection.register("kept_texts", pd.DataFrame({"j": rows.texts}, dtype=object))
    connection.execute(
        f"CREATE TABLE kept_rows AS SELECT {columns} "
        """FROM (SELECT json_transform(j, '["JSON"]') AS v FROM kept_texts)"""
    )
    connection.unregister("kept_texts")
    return "kept_rows"


def _column_values(connection: duckdb.DuckDBPyConnection, table: Any, column: str) -> list[Any]:
    """The values of `column` in `against` (a frame, a DuckDB table's name, or None)."""
    if table is None:
        return []
    if isinstance(table, str):
        return [
            v for (v,) in connection.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()
        ]
    return list(table[column])


def blocking_candidates(frame: pd.DataFrame, chosen: pd.Series, blocking: Iterable[Rule]) -> Any:
    """Which records of `frame` a blocking rule pairs with a `chosen` one (the chosen too).

    A record agreeing with a chosen record on every column of one rule: exactly the records
    Splink's prediction blocking would compare with them, found here so that an incremental
    pass hands Splink those, not the whole store. A boolean array in `frame`'s order.
    """
    keep = chosen.to_numpy(dtype=bool).copy()
    picked = frame[keep]
    for rule in blocking:
        columns = list(rule)
        keys = picked[columns].dropna().drop_duplicates()
        if keys.empty:
            continue
        joined = frame[columns].merge(keys.assign(_hit=True), on=columns, how="left")
        keep |= joined["_hit"].notna().to_numpy()
    return keep


def tf_columns(model: dict[str, Any]) -> list[str]:
    """The columns whose term frequencies adjust a comparison of `model` (Splink's JSON)."""
    return sorted(
        {
            level["tf_adjustment_column"]
            for comparison in model.get("comparisons", [])
            for level in comparison["comparison_levels"]
            if level.get("tf_adjustment_column")
        }
    )


def term_frequencies(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Each value's share of the non-null values of `column`, as Splink computes it."""
    shares = frame[column].dropna().value_counts(normalize=True)
    return pd.DataFrame({column: shares.index, f"tf_{column}": shares.to_numpy(dtype=float)})


def _evidence_sql(table: str, model: dict[str, Any], veto: Iterable[str]) -> str:
    """Select the ids, scores and per-comparison bits of the pairs no veto drops.

    Splink writes each level's Bayes factor as the literal m / u (the null level's as 1):
    a pair's Bayes factor equal to the last level's m / u is that level, "else", which a
    veto drops; one of 1 carries no evidence (a missing value, or a level fixed at 0 bits).
    """
    bits, kept = [], []
    for comparison in model.get("comparisons", []):
        name = comparison["output_column_name"]
        tf = any(level.get("tf_adjustment_column") for level in comparison["comparison_levels"])
        adjust = f" + log2(bf_tf_adj_{name})" if tf else ""
        bits.append(
            f"case when bf_{name} = 1 then null else log2(bf_{name}){adjust} end as w_{name}"
        )
        if name in veto:
            kept.append(f"bf_{name} <> {_else_factor(comparison)!r}")
    names = {c["output_column_name"] for c in model.get("comparisons", [])}
    # The same email or phone (a positive weight: its exact level).
    shared = " or ".join(f"coalesce(bf_{n} > 1, false)" for n in ("email", "phone") if n in names)
    allowed = " and ".join(kept) or "true"
    # A vetoed pair that shares an email or a phone is kept, flagged: housemates share them,
    # which tells whose household a record belongs to (clusters.py), though never one person.
    return (
        "select unique_id_l, unique_id_r, match_probability, match_weight, "
        f"{', '.join(bits)}, coalesce({_names_alike_sql(model)}, false) as names_alike, "
        f"{shared or 'false'} as contact, not ({allowed}) as vetoed "
        f"from {table} where ({allowed}) or ({shared or 'false'})"
    )


def _names_alike_sql(model: dict[str, Any]) -> str:
    """SQL: true for a pair whose names could be one person's.

    The family name exact and the given name exact or a nickname or fi/sv variant of it, or
    both names swapped; levels are known by their Bayes factors (see _evidence_sql).
    """
    levels = {
        (c["output_column_name"], lv.get("label_for_charts")): lv
        for c in model.get("comparisons", [])
        for lv in c["comparison_levels"]
    }

    def factor(name: str, label: str) -> str | None:
        level = levels.get((name, label), {})
        m, u = level.get("m_probability"), level.get("u_probability")
        return repr(m / u) if m and u else None

    given = [factor("given_name", label) for label in (EXACT_GIVEN, NICKNAME)]
    family, swapped = factor("family_name", EXACT_FAMILY), factor("given_name", SWAPPED)
    alike = ["name_set_l = name_set_r"]  # exact, either way round
    if family and any(given):
        known = ", ".join(f for f in given if f)
        alike.append(f"(bf_given_name in ({known}) and bf_family_name = {family})")
    if swapped:
        alike.append(f"bf_given_name = {swapped}")
    return "(" + " or ".join(alike) + ")"


def _else_factor(comparison: dict[str, Any]) -> float:
    """The Bayes factor of a comparison's last level (its "else"), as Splink computes it."""
    name = comparison["output_column_name"]
    levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
    trained = [lv for lv in levels if lv.get("m_probability") and lv.get("u_probability")]
    if not trained or trained[-1] is not levels[-1]:
        raise RunFailed(f"comparison {name!r}: its 'else' level is not trained; retrain")
    factors = [lv["m_probability"] / lv["u_probability"] for lv in trained]
    if factors.count(factors[-1]) > 1:  # another level weighs the same: not told apart
        raise RunFailed(
            f"comparison {name!r}: its 'else' level weighs as much as another level, so a "
            "veto cannot tell them apart; retrain the model"
        )
    return float(factors[-1])


# --- constrained clustering -------------------------------------------------------------

#: National ids only: what clustering always does.
NO_RULES = ClusterRules(birth_dates=False)


def rules_for(settings: ResolutionSettings, today: date | None = None) -> ClusterRules:
    """The clustering rules a model's settings ask for, with minors counted from `today`."""
    day = today or date.today()
    years = settings.adults_only.min_age
    try:
        minor_after = day.replace(year=day.year - years)
    except ValueError:  # 29 February
        minor_after = day.replace(year=day.year - years, day=28)
    return ClusterRules(
        settings.ambiguity_margin,
        settings.namesake_guard,
        minor_after.isoformat(),
        birth_dates="birth_date" in settings.veto,
    )


def constrained_clusters(
    national_ids: Mapping[str, str | None], pairs: Iterable[tuple[str, str, float]]
) -> dict[str, str]:
    """Cluster records: same national id first, then pairs by descending probability.

    `national_ids` maps every record to its permanent national id (or None); `pairs` are
    (record, record, match probability). A union that would put two different national ids
    in one cluster is refused, so a record between two residents joins the likelier one.
    Returns record -> cluster key (the smallest record id of its cluster).
    """
    ids = sorted(national_ids)
    index = {uid: i for i, uid in enumerate(ids)}
    triples = list(pairs)
    facts = RecordFacts(ids, [national_ids[uid] for uid in ids])
    scored = ScoredPairs(
        [index[a] for a, _, _ in triples],
        [index[b] for _, b, _ in triples],
        [float(p) for _, _, p in triples],
    )
    roots = cluster(facts, scored)
    return {uid: ids[roots[i]] for i, uid in enumerate(ids)}


def cluster_frame(
    frame: pd.DataFrame,
    pairs: pd.DataFrame,
    rules: ClusterRules = NO_RULES,
    *,
    threshold: float = 0.0,
    adult_systems: Iterable[str] = (),
) -> dict[str, str]:
    """Constrained clusters of `frame`'s records from scored `pairs` (see score_pairs).

    Pairs below `threshold` (match probability) join nothing: they are evidence for the
    ambiguity and namesake rules only. `pairs` may hold only ids and probability (then
    a pair's weight stands for its evidence); records of `adult_systems` are adults'.
    """
    ordered = frame.sort_values("unique_id", kind="stable")
    ids = ordered["unique_id"].tolist()
    facts = RecordFacts(
        ids,
        _texts(ordered["national_id"]),
        _texts(ordered["birth_date"]),
        ordered["system"].isin(list(adult_systems)).tolist(),
        _streets(ordered),
    )
    # Clustering builds Python objects per record and pair, none in cycles: without the
    # cyclic collector rescanning the heap every few hundred of them.
    with cyclic_gc_paused():
        roots = cluster(facts, _scored(pairs, ids), rules, _weight(threshold))
        return {uid: ids[roots[i]] for i, uid in enumerate(ids)}


def _scored(pairs: pd.DataFrame, ids: list[str]) -> ScoredPairs:
    codes = pd.Index(ids)
    if "match_weight" in pairs:
        weight = pairs["match_weight"].to_numpy(dtype=float)
    else:
        weight = np.array([_weight(p) for p in pairs["match_probability"]], dtype=float)
    columns = [c for c in pairs.columns if c.startswith("w_")]
    evidence = pairs[columns].to_numpy(dtype=float) if columns else None
    alike = pairs["names_alike"].astype(bool).tolist() if "names_alike" in pairs else []
    contact = pairs["contact"].astype(bool).tolist() if "contact" in pairs else []
    vetoed = pairs["vetoed"].astype(bool).tolist() if "vetoed" in pairs else []
    return ScoredPairs(
        codes.get_indexer(pairs["unique_id_l"]).tolist(),
        codes.get_indexer(pairs["unique_id_r"]).tolist(),
        weight.tolist(),
        alike,
        evidence,
        contact,
        vetoed,
    )


def _weight(probability: float) -> float:
    """Match weight (bits) of a match probability; -inf and inf at the ends."""
    if probability <= 0:
        return -math.inf
    if probability >= 1:
        return math.inf
    return math.log2(probability / (1 - probability))


def _texts(column: pd.Series) -> list[str | None]:
    return [v if isinstance(v, str) and v else None for v in column.tolist()]


def _streets(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    """Each record's street names (both languages where the record holds both)."""
    fi, sv = _texts(frame["street"]), _texts(frame["street_sv"])
    return [tuple(s for s in pair if s) for pair in zip(fi, sv, strict=True)]


def resolve_frame(
    frame: pd.DataFrame, model: TrainedModel, threshold: float, today: date | None = None
) -> dict[str, str]:
    """Record -> cluster key for every record of `frame` (nothing is written).

    Pairs are scored down to an evidence floor below `threshold`: a rival within the
    ambiguity margin of a link may itself be below the threshold.
    """
    settings = model.settings
    pairs = score_pairs(frame, model, evidence_floor(settings, threshold))
    rules = rules_for(settings, today)
    return cluster_frame(
        frame, pairs, rules, threshold=threshold, adult_systems=settings.adults_only.systems
    )


def evidence_floor(settings: ResolutionSettings, threshold: float) -> float:
    """The match probability pairs are scored down to for a link `threshold` (see above)."""
    floor = _probability(_weight(threshold) - settings.ambiguity_margin - EVIDENCE_SLACK)
    return min(threshold, floor)


def _probability(weight: float) -> float:
    return 1 / (1 + 2 ** (-weight))


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
