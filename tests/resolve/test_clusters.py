"""Constrained clustering's rules and the comparisons they read: each fails without its rule."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from splink import DuckDBAPI, Linker

from islandhub.resolve.clusters import ClusterRules, same_birth_date
from islandhub.resolve.matching import (
    cluster_frame,
    email_year,
    frame_of,
    rules_for,
    splink_settings,
    standardise,
)
from islandhub.resolve.settings import ResolutionSettings, load_settings, parse_settings

REPO = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 20)
MINOR_AFTER = "2008-11-20"  # 18 years before TODAY
ADDRESS = {"address.street": "Kirkkotie 5", "address.postal_code": "04130"}
EVIDENCE = ("w_given_name", "w_family_name", "w_email", "w_street")


@pytest.fixture(autouse=True)
def _quiet_splink() -> Iterator[None]:
    logging.getLogger("splink").setLevel(logging.WARNING)
    yield


def record(uid: str, **fields: str) -> dict[str, object]:
    system, stream, source_id = uid.split("|")
    return standardise(system, stream, source_id, fields)


def pairs(*rows: tuple[str, str, float], **evidence: tuple[float, ...]) -> pd.DataFrame:
    """Scored pairs (left, right, weight); `evidence` per pair "left/right": bits by EVIDENCE."""
    table = pd.DataFrame(rows, columns=["unique_id_l", "unique_id_r", "match_weight"])
    table["match_probability"] = 1 / (1 + 2 ** (-table["match_weight"]))
    if evidence:
        keys = [f"{a}/{b}" for a, b, _ in rows]
        for i, column in enumerate(EVIDENCE):
            table[column] = [evidence[k][i] if k in evidence else float("nan") for k in keys]
    return table


def together(clusters: dict[str, str], a: str, b: str) -> bool:
    return clusters[a] == clusters[b]


# --- one person, one birth date ---------------------------------------------------------

FATHER, SON, SPORTS = "population|p|father", "population|p|son", "sports|b|1"


def test_a_parent_and_a_child_never_share_a_cluster_through_an_id_less_record():
    # Neither has a national id here: only the birth dates tell father and son apart.
    frame = frame_of([
        record("library|l|father", given_name="Juha", family_name="Virtanen",
               birth_date="1975-03-01", **ADDRESS),
        record("library|l|son", given_name="Juha", family_name="Virtanen",
               birth_date="2012-06-09", **ADDRESS),
        record("events|e|1", given_name="Juha", family_name="Virtanen", **ADDRESS),
    ])  # fmt: skip
    scored = pairs(("events|e|1", "library|l|son", 20.0), ("events|e|1", "library|l|father", 19.0))
    clusters = cluster_frame(frame, scored, ClusterRules(birth_dates=True))
    assert together(clusters, "events|e|1", "library|l|son")
    assert not together(clusters, "library|l|father", "library|l|son")
    # Without the rule (no birth-date veto configured) the signup joins them.
    loose = cluster_frame(frame, scored)
    assert together(loose, "library|l|father", "library|l|son")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("1975-03-01", "1975-03-01", True),
        ("1975-03-01", "1975-03-07", True),  # one digit mistyped
        ("1975-03-01", "1957-03-01", True),  # two neighbouring digits swapped
        ("1975-03-01", "1975-01-03", True),  # day and month swapped
        ("1975-03-01", "1975-11-30", True),  # the same year: the veto's "same year" level
        ("1975-03-01", "2012-06-09", False),
        ("1975-03-01", "1985-03-11", False),  # two keying errors: someone else
    ],
)
def test_birth_dates_one_keying_error_apart_can_be_one_person(a, b, same):
    assert same_birth_date(a, b) is same


# --- adults only ------------------------------------------------------------------------


def family_frame(**sports: str) -> pd.DataFrame:
    """Father (1975) and namesake son (2012) at one address, and a sports booking."""
    return frame_of([
        record(FATHER, national_id="010375-123J", given_name="Juha", family_name="Virtanen",
               **ADDRESS),
        record(SON, national_id="090612A1234", given_name="Juha", family_name="Virtanen",
               **ADDRESS),
        record(SPORTS, given_name="Juha", family_name="Virtanen", **sports),
    ])  # fmt: skip


def test_a_record_of_an_adults_only_system_never_joins_a_minor():
    frame = family_frame(email="juha@example.fi")
    scored = pairs((SPORTS, SON, 3.0), (SPORTS, FATHER, 2.0))
    rules = ClusterRules(minor_after=MINOR_AFTER)
    assert together(cluster_frame(frame, scored, rules), SPORTS, SON)  # the rule off
    clusters = cluster_frame(frame, scored, rules, adult_systems=["sports"])
    assert together(clusters, SPORTS, FATHER)
    assert not together(clusters, SPORTS, SON)


def test_minors_are_counted_from_the_day_of_the_run():
    settings = load_settings(REPO)
    assert rules_for(settings, TODAY).minor_after == MINOR_AFTER
    assert rules_for(settings, TODAY).birth_dates  # the demo vetoes birth dates
    assert rules_for(settings, date(2028, 2, 29)).minor_after == "2010-02-28"


# --- ambiguity ---------------------------------------------------------------------------


def namesakes_frame() -> pd.DataFrame:
    """Two unrelated Anna Laines with national ids, an id-less record, and Anna 1's email."""
    return frame_of([
        record("population|p|1", national_id="010180-1234", given_name="Anna",
               family_name="Laine", **ADDRESS),
        record("population|p|2", national_id="020290-5678", given_name="Anna",
               family_name="Laine", **{"address.street": "Mäkitie 9"}),
        record("library|l|1", given_name="Anna", family_name="Laine",
               email="anna.laine@example.fi", **ADDRESS),
        record("feedback|f|1", given_name="Anna", family_name="Laine",
               email="anna.laine@example.fi"),
    ])  # fmt: skip


def test_a_record_that_matches_two_residents_equally_joins_neither():
    frame = namesakes_frame()
    scored = pairs(("feedback|f|1", "population|p|1", 2.0), ("feedback|f|1", "population|p|2", 2.0))
    assert together(cluster_frame(frame, scored), "feedback|f|1", "population|p|1")  # off
    clusters = cluster_frame(frame, scored, ClusterRules(margin=2.0))
    assert not together(clusters, "feedback|f|1", "population|p|1")
    assert not together(clusters, "feedback|f|1", "population|p|2")


def test_a_resident_is_matched_by_the_best_level_of_each_comparison_over_its_records():
    # The feedback record's names equal both Annas' registers; its email equals the email
    # of Anna 1's library record. Per pair neither beats the other by the margin; summed
    # over Anna 1's records (names from one, email from another) she clearly does.
    frame = namesakes_frame()
    scored = pairs(
        ("library|l|1", "population|p|1", 30.0),
        ("feedback|f|1", "population|p|1", 2.0),
        ("feedback|f|1", "population|p|2", 2.0),
        ("feedback|f|1", "library|l|1", 1.5),
        **{
            "library|l|1/population|p|1": (8.0, 8.0, float("nan"), 12.0),
            "feedback|f|1/population|p|1": (8.0, 8.0, float("nan"), float("nan")),
            "feedback|f|1/population|p|2": (8.0, 8.0, float("nan"), float("nan")),
            "feedback|f|1/library|l|1": (8.0, -5.0, 12.0, float("nan")),  # a typo
        },
    )
    clusters = cluster_frame(frame, scored, ClusterRules(margin=2.0))
    assert together(clusters, "feedback|f|1", "population|p|1")
    assert not together(clusters, "feedback|f|1", "population|p|2")


def test_a_tie_between_namesakes_is_broken_by_a_housemate_sharing_the_email():
    # A booking by "Anna Laine" ties between two unrelated Anna Laines; its email is also
    # on the library card of Anna 1's husband (another given name: a vetoed pair, kept as
    # evidence of the household only). It joins Anna 1; without the husband's card, no one.
    frame = frame_of([*namesakes_frame().to_dict("records")[:2], record(
        "sports|s|1", given_name="Anna", family_name="Laine", email="laine@example.fi"),
        record("library|l|husband", given_name="Pekka", family_name="Laine",
               email="laine@example.fi", **ADDRESS)])  # fmt: skip
    scored = pairs(("sports|s|1", "population|p|1", 2.0), ("sports|s|1", "population|p|2", 2.0),
                   ("sports|s|1", "library|l|husband", 1.0))  # fmt: skip
    scored["contact"] = [False, False, True]
    scored["vetoed"] = [False, False, True]
    clusters = cluster_frame(frame, scored, ClusterRules(margin=2.0))
    assert together(clusters, "sports|s|1", "population|p|1")
    assert not together(clusters, "sports|s|1", "library|l|husband")  # vetoed: never linked
    alone = cluster_frame(frame, scored.iloc[:2].copy(), ClusterRules(margin=2.0))
    assert not together(alone, "sports|s|1", "population|p|1")
    assert not together(alone, "sports|s|1", "population|p|2")


# --- household namesakes -----------------------------------------------------------------


def test_a_record_without_birth_date_between_a_parent_and_a_namesake_child_joins_neither():
    # An event signup of "Juha Virtanen" with the father's phone: a child's signup carries
    # a guardian's phone, so the phone does not tell whose signup it is.
    frame = frame_of([
        record(FATHER, national_id="010375-123J", given_name="Juha", family_name="Virtanen",
               birth_date="1975-03-01", **ADDRESS),
        record(SON, national_id="090612A1234", given_name="Juha", family_name="Virtanen",
               birth_date="2012-06-09", **ADDRESS),
        record("events|e|1", given_name="Juha", family_name="Virtanen",
               phone="+358401234567", **ADDRESS),
    ])  # fmt: skip
    scored = pairs(("events|e|1", FATHER, 30.0), ("events|e|1", SON, 16.0))
    scored["names_alike"] = True
    off = cluster_frame(frame, scored, ClusterRules(minor_after=MINOR_AFTER))
    assert together(off, "events|e|1", FATHER)
    clusters = cluster_frame(
        frame, scored, ClusterRules(namesake_guard=True, minor_after=MINOR_AFTER)
    )
    assert not together(clusters, "events|e|1", FATHER)
    assert not together(clusters, "events|e|1", SON)


def test_adult_namesakes_are_told_apart_only_by_an_email_or_phone():
    # Mother and adult daughter of one name at one address: a signup with the daughter's own
    # phone is hers; one with only the names and the address could be either's.
    frame = frame_of([
        record("population|p|mother", national_id="010370-1234", given_name="Aino",
               family_name="Laine", birth_date="1970-03-01", **ADDRESS),
        record("population|p|daughter", national_id="010300A123B", given_name="Aino",
               family_name="Laine", birth_date="2000-03-01", **ADDRESS),
        record("library|l|1", given_name="Aino", family_name="Laine", phone="+358401111111"),
        record("events|e|1", given_name="Aino", family_name="Laine", **ADDRESS),
    ])  # fmt: skip
    scored = pairs(("library|l|1", "population|p|daughter", 30.0),
                   ("library|l|1", "population|p|mother", 16.0),
                   ("events|e|1", "population|p|daughter", 30.0),
                   ("events|e|1", "population|p|mother", 16.0))  # fmt: skip
    scored["names_alike"] = True
    scored["contact"] = [True, False, False, False]  # the library has her phone (say)
    rules = ClusterRules(namesake_guard=True, minor_after=MINOR_AFTER)
    clusters = cluster_frame(frame, scored, rules)
    assert together(clusters, "library|l|1", "population|p|daughter")
    assert not together(clusters, "events|e|1", "population|p|daughter")
    assert not together(clusters, "events|e|1", "population|p|mother")
    off = cluster_frame(frame, scored, ClusterRules(minor_after=MINOR_AFTER))
    assert together(off, "events|e|1", "population|p|daughter")


# --- standardised columns and the comparisons that read them ----------------------------


@pytest.mark.parametrize(
    ("local", "year"),
    [("kk1948", "48"), ("p.virtanen85", "85"), ("matti2019", "19"), ("anna2", None),
     ("anna123", None), ("x1234", None), ("ville.virtanen", None)],
)  # fmt: skip
def test_the_year_an_email_ends_with(local, year):
    assert email_year(local) == year


def test_standardise_adds_the_swap_key_and_the_swedish_street_name():
    streets = {"address.street": "Iso Kylätie 12", "address.street_sv": "Stora  Byvägen 12"}
    row = record("population|p|1", given_name="Matti Juhani", family_name="Virtanen",
                 email="MV1975@example.fi", **streets)  # fmt: skip
    assert row["name_set"] == record("crm|c|1", given_name="Virtanen",
                                     family_name="Matti")["name_set"]  # fmt: skip
    assert row["email_year"] == "75"
    assert row["street_sv"] == "stora byvägen 12"


def levels(settings: ResolutionSettings, left: dict, right: dict) -> dict[str, int]:
    """The level (gamma) each comparison gives a pair, from Splink with untrained weights."""
    frame = frame_of([left, right]).astype(object).where(lambda f: f.notna(), None)
    linker = Linker(frame, splink_settings(settings), db_api=DuckDBAPI(),
                    set_up_basic_logging=False)  # fmt: skip
    scored = linker.inference.compare_two_records(frame.iloc[[0]], frame.iloc[[1]])
    row = scored.as_pandas_dataframe().iloc[0]
    return {c[6:]: int(row[c]) for c in row.index if c.startswith("gamma_")}


def test_a_swapped_name_needs_both_names_swapped_and_counts_once():
    settings = load_settings(REPO)
    matti = record("population|p|1", given_name="Matti", family_name="Virtanen")
    swapped = levels(settings, matti, record("crm|c|1", given_name="Virtanen",
                                             family_name="Matti"))  # fmt: skip
    assert swapped["given_name"] == 1  # "swapped with the family name"
    assert swapped["family_name"] == 1  # its twin level, fixed at weight 0
    # One record's given name equal to the other's family name is no swap by itself.
    other = record("crm|c|2", given_name="Virtanen", family_name="Korhonen")
    assert levels(settings, other, matti)["given_name"] == 0


def test_the_email_year_and_the_street_in_the_other_language_are_compared():
    settings = load_settings(REPO)
    streets = {"address.street": "Iso Kylätie 12", "address.street_sv": "Stora Byvägen 12"}
    register = record("population|p|1", given_name="Kaarina", family_name="Koskinen",
                      birth_date="1948-03-20", **streets)  # fmt: skip
    swedish = {"address.street": "Stora Byvägen 12"}
    feedback = record("feedback|f|1", given_name="Kaarina", family_name="Koskinen",
                      email="kk1948@example.fi", **swedish)  # fmt: skip
    found = levels(settings, register, feedback)
    assert found["email_year"] == 1  # "birth year in the email"
    assert found["street"] == 3  # "the same street in the other language"
    assert found["email"] == -1  # the register has no email: nothing to compare


def test_email_levels_do_not_count_the_name_in_the_local_part_again():
    settings = load_settings(REPO)
    a = record("crm|c|1", given_name="Pertti", family_name="Ikonen",
               email="pertti.ikonen@yahoo.com")  # fmt: skip
    b = record("sports|s|1", given_name="Pertti", family_name="Ikonen",
               email="pertti.ikonen@gmail.com")  # fmt: skip
    assert levels(settings, a, b)["email"] == 0  # two namesakes' addresses: "else"


# --- settings ------------------------------------------------------------------------------


def test_the_rules_load_from_the_settings_and_old_models_load_without_them():
    settings = parse_settings(
        "threshold: 0.1\nambiguity_margin: 2\nnamesake_guard: true\nmemory_limit: 2GB\n"
        "adults_only: {systems: [crm], min_age: 16}\nblocking: [[email]]\n"
        "training: {em_blocking: [[email]], max_records: 5000}\ncomparisons: {email: {}}\n"
    )
    assert settings.adults_only.systems == ("crm",)
    assert settings.adults_only.min_age == 16
    assert settings.namesake_guard
    assert settings.memory_limit == "2GB"
    assert settings.max_training_records == 5000
    assert ResolutionSettings.from_json(settings.to_json()) == settings
    old = settings.to_json().replace('"namesake_guard": true, ', "")
    assert not ResolutionSettings.from_json(old).namesake_guard
