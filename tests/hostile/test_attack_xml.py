"""Named attacks on the XML reader: entity expansion and external entities.

Each file goes through the real pipeline (files island, SQLite store). The reader refuses any
DTD before a single entity is expanded or a single outside file is opened, so the run fails
with a clear message, nothing is landed, and the secret never reaches the store.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from connectors.file_formats import XML_REFUSED, read_items
from islandhub.errors import FatalSourceError
from tests.hostile.harness import Hub

OPTIONS = {"format": "xml", "record_path": "export/person"}
# A marker that must never show up in the store or in a message.
SECRET = "TOP-SECRET-7f3a91c2"


def laughs(levels: int) -> bytes:
    """The billion laughs: each entity ten of the one before; 10 levels are 10^10 lols."""
    entities = ['<!ENTITY lol0 "lol">']
    for i in range(1, levels + 1):
        entities.append(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">')
    doctype = f"<!DOCTYPE export [{''.join(entities)}]>"
    body = f"<export><person><id>1</id><name>&lol{levels};</name></person></export>"
    return (doctype + body).encode()


def quadratic_blowup() -> bytes:
    """One 50 kB entity used 5,000 times: 250 MB from a 60 kB file, no nesting needed."""
    doctype = f'<!DOCTYPE export [<!ENTITY a "{"a" * 50_000}">]>'
    return (
        doctype + "<export><person><name>" + "&a;" * 5000 + "</name></person></export>"
    ).encode()


EXPANSIONS = {
    "billion laughs": laughs(10),
    "quadratic blowup": quadratic_blowup(),
    "parameter entities": (
        b"<!DOCTYPE export [<!ENTITY % p \"<!ENTITY x 'xxxxxxxxxx'>\"> %p;]>"
        b"<export><person><name>&x;</name></person></export>"
    ),
}


@pytest.mark.parametrize("document", EXPANSIONS.values(), ids=EXPANSIONS.keys())
def test_entity_expansion_is_refused_before_anything_expands(hub: Hub, document: bytes) -> None:
    outcome = hub.sync("xml", {"export.xml": document})
    assert outcome.result.status == "failed"
    assert XML_REFUSED in (outcome.result.error or "")
    assert "export.xml" in (outcome.result.error or "")
    assert outcome.stored.landed == {} and outcome.stored.quarantined == {}
    # Memory stays that of a small file: the refusal comes at the DOCTYPE.
    (hub.root / "attack.xml").write_bytes(document)
    tracemalloc.start()
    try:
        with pytest.raises(FatalSourceError, match="entities/DTD"):
            list(read_items(hub.root / "attack.xml", OPTIONS))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, peak


def external(secret: Path) -> dict[str, bytes]:
    """Ways an XML file can ask its reader to open a local file."""
    url = secret.as_uri()
    return {
        "general entity": (
            f'<!DOCTYPE export [<!ENTITY xxe SYSTEM "{url}">]>'
            "<export><person><id>1</id><name>&xxe;</name></person></export>"
        ).encode(),
        "external DTD": (
            f'<!DOCTYPE export SYSTEM "{url}"><export><person><id>1</id></person></export>'
        ).encode(),
        "parameter entity": (
            f'<!DOCTYPE export [<!ENTITY % ext SYSTEM "{url}"> %ext;]>'
            "<export><person><id>1</id></person></export>"
        ).encode(),
    }


@pytest.mark.parametrize("kind", ["general entity", "external DTD", "parameter entity"])
def test_external_entities_never_read_a_local_file(hub: Hub, tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{SECRET}\n")
    outcome = hub.sync("xml", {"export.xml": external(secret)[kind]}, keep=True)
    assert outcome.result.status == "failed"
    assert XML_REFUSED in (outcome.result.error or "")
    assert SECRET not in (outcome.result.error or "")
    assert outcome.path is not None
    assert SECRET.encode() not in outcome.path.read_bytes()


def test_xinclude_is_data_not_an_instruction(hub: Hub, tmp_path: Path) -> None:
    # XInclude needs no DTD: the reader must treat it as an element, never fetch the href.
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{SECRET}\n")
    document = (
        '<export xmlns:xi="http://www.w3.org/2001/XInclude"><person><id>1</id>'
        f'<name>Anna Virtanen</name><xi:include href="{secret.as_uri()}" parse="text"/>'
        "</person></export>"
    ).encode()
    outcome = hub.sync("xml", {"export.xml": document}, keep=True)
    assert outcome.result.status == "succeeded"
    assert outcome.stored.landed == {"1": "mapped"}
    assert outcome.path is not None
    assert SECRET.encode() not in outcome.path.read_bytes()
