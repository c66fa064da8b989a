"""The demo's closing example: golden records of residents that several islands describe.

The demo's figures say that records became residents; these show what one became: a few
residents whose golden record joins records of the most islands, file islands among them
(the school's CSV, the daycare's XML, the billing XLSX), with the island each value came
from. No resident is in two file islands: pupils, children in daycare and billing customers
are different people in this municipality. They are read as `islandhub resident show`
reads them: masked, and audited.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from islandhub.config import Project
from islandhub.residents import Reader, show
from islandhub.store import Store
from islandhub.store.tables import is_current, links, residents

EXAMPLES = 3
FILE_CONNECTOR = "files"
PURPOSE = "demo: example golden records of the synthetic municipality"


def file_islands(project: Project) -> list[str]:
    """The systems the files connector reads (exports dropped in a folder)."""
    return sorted(s.system for s in project.systems.values() if s.connector == FILE_CONNECTOR)


def example_ids(store: Store, files: list[str], count: int = EXAMPLES) -> list[str]:
    """Current residents drawn from the most islands, one of them at least in `files`.

    Ties go by the smallest source id: resident ids are minted anew with every run, source
    ids are not, so a run with the same seed shows the same residents.
    """
    islands = sa.func.count(sa.distinct(links.c.system))
    from_files = sa.func.count(sa.distinct(sa.case((links.c.system.in_(files), links.c.system))))
    query = (
        sa.select(links.c.resident_id)
        .join(residents, residents.c.resident_id == links.c.resident_id)
        .where(is_current())
        .group_by(links.c.resident_id)
        .having(sa.and_(from_files >= 1, islands >= 2))
        .order_by(islands.desc(), from_files.desc(), sa.func.min(links.c.source_id))
        .limit(count)
    )
    with store.connect() as conn:
        return [str(rid) for rid in conn.execute(query).scalars()]


def examples(store: Store, project: Project, reader: Reader | None = None) -> list[dict[str, Any]]:
    """The example residents as `residents.show` returns them (masked; each read audited)."""
    reader = reader or Reader.from_environment(PURPOSE)
    found: list[dict[str, Any]] = []
    for rid in example_ids(store, file_islands(project)):
        shown = show(store, reader, resident_id=rid)
        if shown is not None:
            found.append(shown)
    return found
