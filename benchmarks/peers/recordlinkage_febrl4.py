"""recordlinkage on FEBRL4 (its documented unsupervised example), run in its own virtualenv.

recordlinkage 0.16 needs pandas < 3, which the hub's environment cannot hold, so
benchmarks/resolution.py makes a small virtualenv for it and runs this file there, on the
same two CSV files the hub syncs, soc_sec_id left out as for the hub:

    python recordlinkage_febrl4.py dataset4a.csv dataset4b.csv   -> one JSON line on stdout

Method (recordlinkage's "unsupervised learning" example, standard blocking): candidate pairs
that agree on given_name or on surname; exact given_name, date of birth, suburb and state,
Jaro-Winkler >= 0.85 on surname and address_1; the ECM classifier (binarised features).
Scored pairwise against the true links (rec-N-org with rec-N-dup-0).
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
import recordlinkage as rl


def load(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, skipinitialspace=True, keep_default_na=False)
    frame.columns = [c.strip() for c in frame.columns]
    frame = frame.drop(columns=["soc_sec_id"]).set_index("rec_id")
    return frame.apply(lambda column: column.str.strip()).replace("", None)


def entity(rec_id: str) -> str:
    return "-".join(rec_id.split("-")[:2])


def main(first: str, second: str) -> dict[str, object]:
    a, b = load(first), load(second)
    started = time.perf_counter()
    indexer = rl.Index()
    indexer.block("given_name")
    indexer.block("surname")
    candidates = indexer.index(a, b)
    compare = rl.Compare()
    compare.exact("given_name", "given_name", label="given_name")
    compare.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    compare.exact("date_of_birth", "date_of_birth", label="date_of_birth")
    compare.exact("suburb", "suburb", label="suburb")
    compare.exact("state", "state", label="state")
    compare.string("address_1", "address_1", threshold=0.85, label="address_1")
    features = compare.compute(candidates, a, b)
    links = rl.ECMClassifier(binarize=0.8).fit_predict(features)
    seconds = time.perf_counter() - started
    predicted = {(x, y) for x, y in links}
    by_entity = {entity(y): y for y in b.index}
    true = {(x, by_entity[entity(x)]) for x in a.index if entity(x) in by_entity}
    hits = len(predicted & true)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {
        "method": "recordlinkage 0.16: block given_name | surname, ECM (binarize 0.8)",
        "candidates": len(candidates),
        "predicted": len(predicted),
        "true_links": len(true),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "seconds": round(seconds, 1),
        "versions": {"recordlinkage": rl.__version__, "pandas": pd.__version__},
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
