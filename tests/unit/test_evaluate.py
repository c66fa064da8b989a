"""evaluate: pairwise precision/recall/F1 on hand-computed cases, scale, and bad truth files."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from islandhub.errors import ConfigError
from islandhub.resolve.evaluate import evaluate, format_report, read_truth, score
from islandhub.store import open_store
from islandhub.store.tables import links, residents


def keys(*ids: str) -> list[tuple[str, str, str]]:
    return [("sys", "people", i) for i in ids]


def mapping(pairs: str) -> dict[tuple[str, str, str], str]:
    """'a:1 b:1 c:2' -> {record a: 1, ...}."""
    return {("sys", "people", k): v for k, v in (item.split(":") for item in pairs.split())}


CASES = [
    # name, predicted, truth, precision, recall, f1, clusters, true_clusters, pairs p/t/c
    ("perfect", "a:1 b:1 c:2", "a:X b:X c:Y", 1.0, 1.0, 1.0, 2, 2, (1, 1, 1)),
    ("one wrong merge", "a:1 b:1 c:1", "a:X b:X c:Y", 1 / 3, 1.0, 0.5, 1, 2, (3, 1, 1)),
    ("one missed merge", "a:1 b:1 c:2", "a:X b:X c:X", 1.0, 1 / 3, 0.5, 2, 1, (1, 3, 1)),
    ("all singletons", "a:1 b:2 c:3", "a:X b:Y c:Z", 1.0, 1.0, 1.0, 3, 3, (0, 0, 0)),
    ("nothing merged", "a:1 b:2 c:3", "a:X b:X c:X", 1.0, 0.0, 0.0, 3, 1, (0, 3, 0)),
    (
        "two clusters, one split entity",
        "a:1 b:1 c:1 d:2 e:2",
        "a:X b:X c:Y d:Y e:Y",
        # predicted pairs 3+1=4; true 1+3=4; correct: (1,X)=1 (1,Y)=0 (2,Y)=1 -> 2
        0.5,
        0.5,
        0.5,
        2,
        2,
        (4, 4, 2),
    ),
]


@pytest.mark.parametrize(
    (
        "name",
        "predicted",
        "truth",
        "precision",
        "recall",
        "f1",
        "clusters",
        "true_clusters",
        "pairs",
    ),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_score_hand_computed(
    name: str,
    predicted: str,
    truth: str,
    precision: float,
    recall: float,
    f1: float,
    clusters: int,
    true_clusters: int,
    pairs: tuple[int, int, int],
) -> None:
    result = score(mapping(predicted), mapping(truth))
    assert result["precision"] == pytest.approx(precision)
    assert result["recall"] == pytest.approx(recall)
    assert result["f1"] == pytest.approx(f1)
    assert result["clusters"] == clusters
    assert result["true_clusters"] == true_clusters
    assert (result["pairs_predicted"], result["pairs_true"], result["pairs_correct"]) == pairs
    assert result["records"] == len(mapping(predicted))


def test_records_on_one_side_only_are_counted_not_scored() -> None:
    result = score(mapping("a:1 b:1 extra:1"), mapping("a:X b:X missing:X"))
    assert result["records"] == 2
    assert result["unmatched_predicted"] == 1
    assert result["unmatched_truth"] == 1
    assert result["precision"] == result["recall"] == 1.0
    assert set(result) == {
        "precision", "recall", "f1", "clusters", "true_clusters", "records", "unmatched_truth",
        "unmatched_predicted", "pairs_true", "pairs_predicted", "pairs_correct",
    }  # fmt: skip


def test_empty_inputs() -> None:
    result = score({}, {})
    assert (result["precision"], result["recall"], result["f1"]) == (1.0, 1.0, 1.0)
    assert result["records"] == result["clusters"] == 0


def test_a_million_records_in_linear_time() -> None:
    n = 1_000_000
    # Entities of 4 records; resolution merged every 2 entities into one cluster of 8,
    # except the last 1,000 records which stayed singletons.
    predicted = {("s", "r", str(i)): (i // 8 if i < n - 1000 else f"x{i}") for i in range(n)}
    truth = {("s", "r", str(i)): i // 4 for i in range(n)}
    started = time.perf_counter()
    result = score(predicted, truth)
    elapsed = time.perf_counter() - started
    assert elapsed < 30
    assert result["records"] == n
    assert result["true_clusters"] == n // 4
    assert result["pairs_true"] == (n // 4) * 6
    clusters_of_8 = (n - 1000) // 8
    assert result["pairs_predicted"] == clusters_of_8 * 28
    assert result["pairs_correct"] == clusters_of_8 * 2 * 6
    assert result["precision"] == pytest.approx(12 / 28)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "truth.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_truth(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "entity_id,system,stream,source_id\nP1,crm,contacts,7\n\nP1,crm,contacts,7\nP2,crm,contacts,8\n",
    )
    assert read_truth(path) == {("crm", "contacts", "7"): "P1", ("crm", "contacts", "8"): "P2"}


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("", "empty file", None),
        ("system,stream,id,entity_id\ncrm,c,1,P1\n", "header lacks column(s) source_id", 1),
        ("system,stream,source_id,entity_id\ncrm,c,1\n", "expected 4 fields, found 3", 2),
        ("system,stream,source_id,entity_id\ncrm,c,1,P1\ncrm,c,,P2\n", "empty source_id", 3),
        (
            "system,stream,source_id,entity_id\ncrm,c,1,P1\ncrm,c,1,P2\n",
            "record crm/c/1 given two entities (P1, P2)",
            3,
        ),
    ],
)
def test_bad_truth_file(tmp_path: Path, text: str, message: str, line: int | None) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        read_truth(path)
    problem = caught.value.problems[0]
    assert message in problem.message
    assert problem.file == str(path)
    assert problem.line == line
    assert caught.value.exit_code == 2


def test_missing_and_binary_truth_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the truth file"):
        read_truth(tmp_path / "nope.csv")
    binary = tmp_path / "truth.csv"
    binary.write_bytes(b"system,stream,source_id,entity_id\n\xff\xfe,1,2,3\n")
    with pytest.raises(ConfigError, match="not a UTF-8 CSV file"):
        read_truth(binary)


def test_evaluate_reads_links_and_follows_merges(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    now = datetime.now(UTC)
    with store.begin() as conn:
        conn.execute(
            sa.insert(residents),
            [
                {"resident_id": r, "version": 1, "active": m is None, "merged_into": m,
                 "created_at": now, "updated_at": now}
                for r, m in (("R1", None), ("R2", "R3"), ("R3", "R1"), ("R4", None))
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(links),
            [
                {"system": "crm", "stream": "c", "source_id": s, "resident_id": r,
                 "rule": "test", "run_id": "run-1", "linked_at": now}
                for s, r in (("1", "R1"), ("2", "R2"), ("3", "R4"), ("4", "R4"))
            ],
        )  # fmt: skip
    truth = write(
        tmp_path,
        "system,stream,source_id,entity_id\ncrm,c,1,P1\ncrm,c,2,P1\ncrm,c,3,P2\ncrm,c,9,P3\n",
    )
    result = evaluate(store, truth)
    assert result["precision"] == result["recall"] == result["f1"] == 1.0
    assert (result["clusters"], result["true_clusters"]) == (2, 2)
    assert (result["unmatched_truth"], result["unmatched_predicted"]) == (1, 1)
    assert "precision 1.0000" in format_report(result)
    store.dispose()


def test_a_truth_with_no_record_in_the_store_is_refused(tmp_path: Path) -> None:
    # Scored, nothing would read as precision, recall and F1 of 1.0.
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    truth = write(tmp_path, "system,stream,source_id,entity_id\nschool,pupils,NOPE,e1\n")
    with pytest.raises(ConfigError, match=r"none of its records \(1\) is in the store"):
        evaluate(store, truth)
    store.dispose()
