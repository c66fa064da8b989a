"""The kept resolution frame's keys (resolve/frame_store.py), on SQLite and PostgreSQL.

An incremental pass finds a changed record's candidates and the frequencies of its values by
key instead of reading the whole frame: the keys must give exactly what the whole frame
gives (Splink's blocking, term frequencies), and follow changes, removals and other rules.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa

from islandhub.resolve import frame_store, splink_columns
from islandhub.resolve.matching import (
    COLUMNS,
    KeptRows,
    blocking_candidates,
    frame_from_store,
    frame_spec,
    refresh_frame,
    score_pairs,
    term_frequencies,
)
from islandhub.resolve.settings import load_settings
from islandhub.store import open_store
from islandhub.store.db import dumps, loads, now
from islandhub.store.tables import landing, resolution_keys, source_records, sync_state

REPO = Path(__file__).resolve().parents[2]


def uids(found) -> set[str]:
    """The unique ids the kept rows of `found` (candidate_texts) hold."""
    return {loads(text)[COLUMNS.index("unique_id")] for _, text in found}


@pytest.mark.slow
def test_the_keys_find_the_records_blocking_pairs_and_count_like_the_whole_frame(
    small_demo, tmp_path
):
    store = small_demo.copy(tmp_path)
    spec = frame_spec(small_demo.model.settings)
    frame = frame_from_store(store, spec)
    chosen = frame["unique_id"].isin(frame["unique_id"].sample(20, random_state=3))
    rows = frame[chosen].itertuples(index=False)
    found = uids(frame_store.candidate_texts(store, rows, spec))
    expected = set(frame["unique_id"][blocking_candidates(frame, chosen, spec.rules)])
    assert set(frame["unique_id"][chosen]) <= found
    assert 20 < len(found) < len(frame) / 2
    assert found == expected
    names = [*frame["family_name"].sample(30, random_state=4), None]
    counted = frame_store.frequencies(store, "family_name", names)
    whole = term_frequencies(frame, "family_name")
    whole = whole[whole["family_name"].isin(names)]
    assert len(counted) == len(whole) > 10
    assert dict(zip(*counted.to_numpy().T, strict=True)) == dict(
        zip(*whole.to_numpy().T, strict=True)
    )
    # Scored against the stored rows (DuckDB reads them) with frequencies from the keys:
    # the same pairs and weights as against a frame of them weighed by the whole frame.
    chosen_ids = set(frame["unique_id"][chosen])
    texts = frame_store.candidate_texts(store, frame[chosen].itertuples(index=False), spec)
    others = KeptRows([text for key, text in texts if "|".join(key) not in chosen_ids])
    model = small_demo.model
    kept = score_pairs(
        frame[chosen],
        model,
        0.01,
        against=others,
        frequencies=partial(frame_store.frequencies, store),
    )
    candidates = frame["unique_id"].isin(found - chosen_ids)
    framed = score_pairs(frame[chosen], model, 0.01, against=frame[candidates], frequencies=frame)
    assert len(kept) > 0
    assert weights(kept) == weights(framed)
    store.dispose()


def weights(pairs) -> dict[frozenset[str], float]:
    columns = (pairs["unique_id_l"], pairs["unique_id_r"], pairs["match_weight"])
    return {frozenset((a, b)): round(w, 9) for a, b, w in zip(*columns, strict=True)}


def _record(conn, source_id, *, family, postal, email, seq, status="mapped"):
    run, at = f"run-{source_id}-{seq}", now()
    fields = {
        "given_name": f"Etu{source_id}",
        "family_name": family,
        "birth_date": f"1980-01-0{seq}",
        "email": email,
        "address.postal_code": postal,
    }
    key = {"system": "register", "stream": "people", "source_id": source_id}
    for table in (landing, source_records):
        conn.execute(
            table.delete().where(*(table.c[column] == value for column, value in key.items()))
        )
    conn.execute(
        landing.insert().values(
            **key,
            content_hash=str(seq),
            payload="{}",
            status=status,
            seq=seq,
            run_id=run,
            landed_at=at,
        )
    )
    conn.execute(source_records.insert().values(**key, fields=dumps(fields), run_id=run,
                                                observed_at=at))  # fmt: skip
    _landed_up_to(conn, seq)


def _landed_up_to(conn, seq):
    """The stream's landed sequence, as landing moves it with every record it lands."""
    where = (sync_state.c.system == "register", sync_state.c.stream == "people")
    conn.execute(sync_state.delete().where(*where))
    conn.execute(
        sync_state.insert().values(
            system="register",
            stream="people",
            state="{}",
            run_id="r",
            updated_at=now(),
            landed_seq=seq,
            published_seq=seq,
        )
    )


def test_the_keys_follow_changes_removals_and_other_rules(store_url, monkeypatch):
    store = open_store(store_url)
    settings = load_settings(REPO)
    spec = frame_spec(settings)
    with store.begin() as conn:
        _record(conn, "A", family="Virtanen", postal="00100", email="a@example.fi", seq=1)
        _record(conn, "B", family="Virtanen", postal="00100", email="b@example.fi", seq=2)
        _record(conn, "C", family="Korhonen", postal="00200", email="a@example.fi", seq=3)
    frame = frame_from_store(store, spec)
    a = frame[frame["unique_id"] == "register|people|A"].itertuples(index=False)
    a = list(a)
    assert uids(frame_store.candidate_texts(store, a, spec)) == {
        "register|people|A",
        "register|people|B",
        "register|people|C",  # name+postal, email
    }

    def share(name: str) -> float:
        table = frame_store.frequencies(store, "family_name", [name])
        return float(table["tf_family_name"].iloc[0])

    assert (share("virtanen"), share("korhonen")) == (2 / 3, 1 / 3)

    # C changes its name (a new run wrote it), B is deleted in its island.
    with store.begin() as conn:
        _record(conn, "C", family="Virtanen", postal="00200", email="c@example.fi", seq=4)
        deleted = landing.update().where(landing.c.source_id == "B")
        conn.execute(deleted.values(status="deleted", seq=5))
        _landed_up_to(conn, 5)
    with monkeypatch.context() as only_since:  # the marks: only what landed since is read
        only_since.setattr(frame_store, "_every_record", None)
        assert refresh_frame(store, spec) == 1  # C again; B's row and keys deleted
    assert uids(frame_store.candidate_texts(store, a, spec)) == {"register|people|A"}
    assert (share("virtanen"), share("korhonen")) == (1.0, 0.0)
    with store.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count())
            .select_from(resolution_keys)
            .where(resolution_keys.c.source_id == "B")
        ).scalar_one()
    assert left == 0  # nothing of a record that is no longer current stays

    # Other blocking rules: other keys, the rows stamped again.
    by_family = frame_spec(replace(settings, blocking=(("family_name",),)))
    assert by_family.digest != spec.digest
    assert frame_store.count(store) == 2
    frame_from_store(store, by_family)
    assert uids(frame_store.candidate_texts(store, a, by_family)) == {
        "register|people|A",
        "register|people|C",
    }
    store.dispose()


@pytest.mark.slow
def test_an_incremental_pass_does_not_read_the_whole_frame(small_demo, tmp_path, monkeypatch):
    from islandhub.resolve.matching import save_model
    from islandhub.resolve.reconcile import INCREMENTAL, resolve

    from .test_incremental import detach

    store = small_demo.copy(tmp_path)
    save_model(store, small_demo.model)
    resolve(REPO, store, small_demo.hub.priority, full=True)
    frame = frame_from_store(store, frame_spec(small_demo.model.settings))
    changed = [tuple(u.split("|", 2)) for u in frame["unique_id"].sample(5, random_state=5)]
    detach(store, changed, small_demo.hub.priority)

    def whole(_store):
        raise AssertionError("an incremental pass read the whole frame")

    monkeypatch.setattr(frame_store, "read_all", whole)
    result = resolve(REPO, store, small_demo.hub.priority)
    assert result.mode == INCREMENTAL and result.queued == 5
    store.dispose()


NAMES = ["given_name", "first name", "group", "coordinates['lat']", "tags[1]", '"sur NAME"']


def test_splinks_column_names_parse_once_and_alike():
    from splink.internals.input_column import InputColumn

    splink_columns.install()
    memoised = [InputColumn(n, sqlglot_dialect_str="duckdb") for n in NAMES]
    parsed = [splink_columns._parse(n, "duckdb") for n in NAMES]
    assert [c.col_builder for c in memoised] == parsed
    assert [c.name_l for c in memoised] == [
        InputColumn(n, sqlglot_dialect_str="duckdb").name_l for n in NAMES
    ]
    with pytest.raises(ValueError, match="Could not parse input column"):
        InputColumn("[]", sqlglot_dialect_str="duckdb")  # errors are not memoised: raised again
    with pytest.raises(ValueError, match="Could not parse input column"):
        InputColumn("[]", sqlglot_dialect_str="duckdb")


def test_splinks_column_names_are_parsed_once(monkeypatch):
    import sqlglot
    from splink.internals.input_column import InputColumn

    splink_columns.install()
    InputColumn("email_local", sqlglot_dialect_str="duckdb")
    calls = []
    original = sqlglot.parse_one
    monkeypatch.setattr(sqlglot, "parse_one", lambda *a, **k: calls.append(a) or original(*a, **k))
    InputColumn("email_local", sqlglot_dialect_str="duckdb")
    assert calls == []


CONDITIONS = [
    '"given_name_l" = "given_name_r"',
    "list_contains(given_names_l, given_name_r) or list_contains(given_names_r, given_name_l)",
    "jaro_winkler_similarity(email_l, email_r) >= 0.9",
    "coords_l['lat'] = coords_r['lat']",
]


def test_splinks_level_conditions_parse_once_and_alike(monkeypatch):
    from splink.internals import comparison_level, parse_sql
    from splink.internals.comparison_level import ComparisonLevel

    splink_columns.install()
    for sql in CONDITIONS:
        assert splink_columns.columns_used_from_sql(sql, "duckdb") == (
            parse_sql.get_columns_used_from_sql(sql, "duckdb")
        )
        first = comparison_level.get_columns_used_from_sql(sql, "duckdb")
        first.reverse()  # a caller changing its list does not change the next caller's
        assert comparison_level.get_columns_used_from_sql(sql, "duckdb") == first[::-1]
    level = ComparisonLevel(sql_condition=CONDITIONS[0], sqlglot_dialect="duckdb")
    calls = []
    monkeypatch.setattr(splink_columns, "_validate", lambda lv: calls.append(lv) or True)
    ComparisonLevel(sql_condition=CONDITIONS[0], sqlglot_dialect="duckdb")
    assert calls == [] and level.sql_condition == CONDITIONS[0]  # validated once, above
    monkeypatch.undo()
    for _ in range(2):  # a condition that does not parse raises every time
        with pytest.raises(ValueError, match="Error parsing sql_statement"):
            ComparisonLevel(sql_condition="given_name_l = = (", sqlglot_dialect="duckdb")


def test_splink_as_shipped_parses_again_and_the_memo_returns_after():
    import sqlglot
    from splink.internals.input_column import InputColumn

    splink_columns.install()
    InputColumn("house", sqlglot_dialect_str="duckdb")
    calls = []
    original = sqlglot.parse_one

    def counting(*a, **k):
        calls.append(a)
        return original(*a, **k)

    sqlglot.parse_one = counting
    try:
        with splink_columns.as_shipped():
            InputColumn("house", sqlglot_dialect_str="duckdb")
        parsed_as_shipped = len(calls)
        InputColumn("house", sqlglot_dialect_str="duckdb")
    finally:
        sqlglot.parse_one = original
    assert parsed_as_shipped > 0 and len(calls) == parsed_as_shipped
