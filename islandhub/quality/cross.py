"""Cross-system checks over every island's current records, after publishing.

The input is one DataFrame, a row per current source record: system, stream, source_id,
resident (its resident after merges, or None) and the compared fields. Each check returns,
per system, counts and a few masked examples (source ids, never values: these checks
compare names and addresses, which a report must not show):

- agreement with the population register: given name, family name, address, language
  of the records whose resident the register also knows;
- records not linked to the register: their resident has no register record;
- conflicting contact points: an email or phone that residents of another home also have;
- suspected duplicates: records of one stream that resolution linked to one resident
  (not for streams of activities, where a person books or signs up many times).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pandas as pd

from islandhub.quality import examples
from islandhub.quality.values import text

EXAMPLES = 5
COMPARED = ("given_name", "family_name", "address", "language")
FRAME_COLUMNS = (
    "system",
    "stream",
    "source_id",
    "resident",
    "given_name",
    "family_name",
    "address.street",
    "address.street_sv",
    "address.postal_code",
    "language",
    "email",
    "phone",
)


def _norm(values: pd.Series) -> pd.Series:
    """Text compared the way people read it: case, spacing and hyphens do not matter."""
    # One pass in plain Python: each of pandas' string steps loops over the values as well.
    return pd.Series(
        [
            " ".join(v.casefold().replace("-", " ").split()) or None if type(v) is str else None
            for v in values.to_numpy()
        ],
        index=values.index,
        dtype=object,
    )


def _examples(frame: pd.DataFrame, mask: pd.Series) -> list[str]:
    return [examples.source_id(s) for s in frame.loc[mask, "source_id"].head(EXAMPLES)]


def register_agreement(frame: pd.DataFrame, register: str) -> dict[str, dict[str, Any]]:
    """Per system: for each compared field, how many records were compared and agreed."""
    reg = frame[(frame["system"] == register) & frame["resident"].notna()]
    reg = reg.drop_duplicates("resident").set_index("resident")
    others = frame[(frame["system"] != register) & frame["resident"].isin(reg.index)]
    found: dict[str, dict[str, Any]] = {}
    if others.empty:
        return found
    truth = reg.loc[others["resident"]].set_index(others.index)
    outcomes = {
        "given_name": _given_agrees(others["given_name"], truth["given_name"]),
        "family_name": _same(others["family_name"], truth["family_name"]),
        "address": _address_agrees(others, truth),
        "language": _same(others["language"], truth["language"]),
    }
    for system, rows in others.groupby("system").groups.items():
        entry: dict[str, Any] = {}
        for name, (compared, agreed) in outcomes.items():
            c, a = compared.loc[rows], agreed.loc[rows]
            entry[name] = {
                "compared": int(c.sum()),
                "agreed": int((c & a).sum()),
                "examples": _examples(others.loc[rows], c & ~a),
            }
        found[str(system)] = entry
    return found


def _same(island: pd.Series, register: pd.Series) -> tuple[pd.Series, pd.Series]:
    a, b = _norm(island), _norm(register)
    compared = a.notna() & b.notna()
    return compared, compared & (a == b)


def _given_agrees(island: pd.Series, register: pd.Series) -> tuple[pd.Series, pd.Series]:
    """An island that has one of the register's given names (Anna for Anna Maria) agrees."""
    a, b = _norm(island), _norm(register)
    compared = a.notna() & b.notna()
    agreed = [bool(x and y and x.split()[0] in y.split()) for x, y in zip(a, b, strict=True)]
    return compared, compared & pd.Series(agreed, index=island.index)


def _address_agrees(island: pd.DataFrame, register: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The street in Finnish or Swedish, and the postal code where both have one."""
    street = _norm(island["address.street"])
    fi, sv = _norm(register["address.street"]), _norm(register["address.street_sv"])
    compared = street.notna() & (fi.notna() | sv.notna())
    same_street = (street == fi) | (street == sv)
    code_a, code_b = island["address.postal_code"], register["address.postal_code"]
    same_code = code_a.isna() | code_b.isna() | (code_a == code_b)
    return compared, compared & same_street & same_code


def unlinked(frame: pd.DataFrame, register: str) -> dict[str, dict[str, Any]]:
    """Per system (but the register): records whose resident the register does not know."""
    known = set(frame.loc[frame["system"] == register, "resident"].dropna())
    others = frame[frame["system"] != register]
    found = {}
    for system, rows in others.groupby("system"):
        missing = ~rows["resident"].isin(known)
        found[str(system)] = {
            "records": len(rows),
            "unlinked": int(missing.sum()),
            "examples": _examples(rows, missing),
        }
    return found


def contact_conflicts(frame: pd.DataFrame, register: str | None) -> dict[str, dict[str, Any]]:
    """Per system: records whose email or phone residents of another home also have.

    A family email shared at one address is no conflict; the same address or number on
    residents living apart is (two people, or one person resolution failed to join). A
    resident's home is the register's address, else the first one an island gives.
    """
    homes = _homes(frame, register)
    conflicting = pd.Series(False, index=frame.index)
    has_contact = pd.Series(False, index=frame.index)
    for column in ("email", "phone"):
        value = _norm(frame[column])
        present = value.notna() & frame["resident"].notna()
        has_contact |= present
        owners: dict[str, set[Any]] = defaultdict(set)
        for shared_value, resident in zip(
            value[present], frame.loc[present, "resident"], strict=True
        ):
            owners[shared_value].add(resident)
        shared = {
            v
            for v, residents in owners.items()
            if len(residents) > 1 and len({homes.get(r) for r in residents} - {None}) > 1
        }
        conflicting |= present & value.isin(shared)
    found = {}
    for system, rows in frame.groupby("system").groups.items():
        found[str(system)] = {
            "records": int(has_contact.loc[rows].sum()),
            "conflicting": int(conflicting.loc[rows].sum()),
            "examples": _examples(frame.loc[rows], conflicting.loc[rows]),
        }
    return found


def _homes(frame: pd.DataFrame, register: str | None) -> dict[Any, str]:
    """Each resident's home as a comparable key: street and postal code."""
    street = _norm(frame["address.street"])
    key = street + "|" + text(frame["address.postal_code"]).fillna("")
    known = frame.assign(home=key)[street.notna() & frame["resident"].notna()]
    if register:
        known = pd.concat([known[known["system"] == register], known])
    return dict(known.drop_duplicates("resident")[["resident", "home"]].itertuples(index=False))


def duplicates(frame: pd.DataFrame, activity: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Per system: records of one person-record stream linked to one resident."""
    skip = set(activity)
    keys = list(zip(frame["system"], frame["stream"], strict=True))
    persons = frame[[key not in skip for key in keys] if keys else []]
    found: dict[str, dict[str, Any]] = {}
    for system, rows in persons.groupby("system"):
        linked = rows[rows["resident"].notna()]
        sizes = linked.groupby(["stream", "resident"])["source_id"].transform("size")
        repeated = sizes > 1
        groups = linked[repeated].groupby(["stream", "resident"]).ngroups
        found[str(system)] = {
            "records": len(rows),
            "duplicates": int(repeated.sum()) - groups,  # all but one record of each group
            "groups": int(groups),
            "examples": _examples(linked, repeated),
        }
    return found
