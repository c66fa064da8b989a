"""A hub project with one island per input format, and the checks every hostile sync must pass.

Each island reads what the fuzz tests drop into its folder through the real pipeline
(`islandhub.pipeline.sync`) into a real SQLite store. A store is migrated once per session and
copied for each example, so that every example starts from an empty store in milliseconds.

`Hub.sync` returns the run's result only after checking the contract of issue 9: the run
either succeeded or failed with a source error (never another exception), the counts add up,
and no record was lost: every record a fresh pull yields is in the landing table or in
quarantine with a reason, and every record the connector rejected is in quarantine.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings

from islandhub.config import Project, load_project
from islandhub.landing import content_hash, stored_payload
from islandhub.pipeline import StreamResult, make_connector, sync
from islandhub.privacy.at_rest import seal_source_id
from islandhub.store import Store, open_store
from islandhub.store.db import dumps
from islandhub.store.tables import landing, quarantine, source_records

#: Settings of every property test of the suite: few examples each (the whole suite must stay under
#: two minutes on a 2-core CI machine), and a deadline that tells a hang from a slow example.
#: No shrinking: an example costs a sync, and shrinking one took minutes; the failing
#: example is printed as it was found (and replayed from the example database).
FUZZ = settings(
    max_examples=40,
    deadline=timedelta(seconds=20),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


STREAM = "people"
# Every transform of the registry, on source fields the strategies fill; `name` is required,
# so that random records split between mapped and quarantined. `note` has no transform at
# all: whatever the file holds (nested objects, numbers) travels on into the golden record.
MAPPING = """\
source: {system}.people
entity: resident
id: id
fields:
  national_id:         {{from: hetu, use: [strip, upper, hetu]}}
  given_name:          {{from: name, use: [collapse_spaces, {{name: given}}], required: true}}
  family_name:         {{from: name, use: [{{name: {{part: family, order: family_first}}}}]}}
  birth_date:          {{from: born, use: [{{date: ["%d.%m.%Y", "%Y-%m-%d"]}}]}}
  language:            {{from: lang, use: [lower, {{map: {{values: {{suomi: fi}}, default: sv}}}}]}}
  email:               {{from: email, use: [email]}}
  phone:               {{from: phone, use: [phone]}}
  address.street:      {{from: [street, house], use: [{{concat: " "}}, title]}}
  address.postal_code: {{from: zip, use: [postal_code]}}
  address.post_office: {{from: [town, town_sv], use: [coalesce, strip]}}
  municipality_code:   {{from: kunta, use: [{{regex: '\\d{{3}}'}}]}}
  non_disclosure:      {{from: secret, use: [bool]}}
  employer.business_id: {{from: ytunnus, use: [ytunnus]}}
  address.country:     {{from: country, use: [{{default: FI}}]}}
  note:                {{from: note}}
"""
#: Source fields the mapping reads; strategies use them as keys most of the time.
SOURCE_FIELDS = (
    "id",
    "hetu",
    "name",
    "born",
    "lang",
    "email",
    "phone",
    "street",
    "house",
    "zip",
    "town",
    "town_sv",
    "kunta",
    "secret",
    "ytunnus",
    "country",
    "note",
)
# Small batches: a file of a few records already crosses several batch boundaries.
ISLANDS = {
    "csv": "connector: files\nconnection: {path: drops/csv}\n"
    "streams:\n  people: {files: '*', format: csv, batch_size: 3, mapping: MAPPING}\n",
    "csv_auto": "connector: files\nconnection: {path: drops/csv_auto}\n"
    "streams:\n  people: {files: '*', format: csv, delimiter: ';', encoding: auto,"
    " batch_size: 3, mapping: MAPPING}\n",
    "json": "connector: files\nconnection: {path: drops/json}\n"
    "streams:\n  people: {files: '*', format: json, records: data, batch_size: 3,"
    " mapping: MAPPING}\n",
    "jsonl": "connector: files\nconnection: {path: drops/jsonl}\n"
    "streams:\n  people: {files: '*', format: jsonl, batch_size: 3, mapping: MAPPING}\n",
    "xlsx": "connector: files\nconnection: {path: drops/xlsx}\n"
    "streams:\n  people: {files: '*', format: xlsx, batch_size: 3, mapping: MAPPING}\n",
    "xml": "connector: files\nconnection: {path: drops/xml}\n"
    "streams:\n  people: {files: '*', format: xml, record_path: export/person,"
    " repeated: [phone], batch_size: 3, mapping: MAPPING}\n",
    "ics": "connector: ics\nconnection: {path: drops/ics/calendar.ics}\n"
    "streams:\n  people: {batch_size: 3, mapping: MAPPING}\n",
}
# The ics connector's records have their own field names: key, uid, summary, start, ...
ICS_MAPPING = """\
source: ics.people
entity: resident
id: key
fields:
  given_name:   {from: organizer.name, use: [collapse_spaces, {name: given}]}
  family_name:  {from: summary, use: [{name: family}], required: true}
  email:        {from: organizer.email, use: [email]}
  note:         {from: [location, description], use: [{concat: " / "}]}
  birth_date:   {from: start, use: [{date: ["%Y-%m-%d"]}]}
"""
SOURCE_ERRORS = ("FatalSourceError: ", "RetriableSourceError: ", "SourceError: ")


def write_project(root: Path, islands: dict[str, tuple[str, str]] | None = None) -> None:
    """Write hub.yaml and, per island, its system file and mapping (default: the fuzz ones).

    `islands` maps a system id to (system file after `system:`, mapping text); the text
    `MAPPING` in the system file stands for the mapping's path.
    """
    (root / "config" / "systems").mkdir(parents=True)
    (root / "config" / "hub.yaml").write_text("store: sqlite:///var/islandhub.db\n")
    if islands is None:
        islands = {
            system: (body, ICS_MAPPING if system == "ics" else MAPPING.format(system=system))
            for system, body in ISLANDS.items()
        }
    for system, (body, spec) in islands.items():
        mapping = f"mappings/{system}/people.yaml"
        (root / "mappings" / system).mkdir(parents=True)
        (root / mapping).write_text(spec)
        text = f"system: {system}\n{body.replace('MAPPING', mapping)}"
        (root / "config" / "systems" / f"{system}.yaml").write_text(text)
        (root / "drops" / system).mkdir(parents=True)


def migrated_store(path: Path) -> Path:
    """A migrated, empty SQLite store at `path`, to copy for each example."""
    store = open_store(f"sqlite:///{path}")
    store.dispose()
    return path


@dataclass
class Hub:
    """The fuzz project, and a fresh store per example."""

    root: Path
    template: Path
    project: Project
    examples: int = 0

    @classmethod
    def create(
        cls, root: Path, template: Path, islands: dict[str, tuple[str, str]] | None = None
    ) -> Hub:
        """Write the project under `root` (see write_project) and load it once."""
        write_project(root, islands)
        return cls(root, template, load_project(root, environ={}))

    def drop(self, system: str, files: dict[str, bytes]) -> None:
        """Replace whatever the island's folder holds by `files`."""
        folder = self.root / "drops" / system
        shutil.rmtree(folder)
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_bytes(content)

    def fresh_store(self) -> tuple[Store, Path]:
        """An empty, migrated store of its own (a copy of the template), and its file."""
        self.examples += 1
        path = self.root / "var" / f"example-{self.examples}.db"
        path.parent.mkdir(exist_ok=True)
        shutil.copyfile(self.template, path)
        return open_store(f"sqlite:///{path}"), path

    def sync(
        self, system: str, files: dict[str, bytes], *, keep: bool = False, incremental: bool = True
    ) -> Outcome:
        """Drop `files`, sync the island twice into a fresh store, check the contract.

        With `keep`, the store's file stays for the caller to look into (Outcome.path). An
        island that is not `incremental` gives everything again on the second run: then
        nothing of it may count as changed.
        """
        self.drop(system, files)
        store, path = self.fresh_store()
        try:
            [result] = sync(self.project, store, [system])
            outcome = self.check(store, system, result)
            outcome.path = path
            # A second run finds nothing new, or fails the same way: the state it committed
            # (file fingerprints, seen occurrences, reported rejects) holds.
            [again] = sync(self.project, store, [system])
            assert again.status == result.status, (result, again)
            assert again.pulled == again.unchanged + again.mapped + again.quarantined, again
            if again.status == "succeeded" and incremental:
                assert (again.pulled, again.mapped, again.quarantined) == (0, 0, 0), again
            elif again.status == "succeeded":
                assert again.mapped == 0, again
            return outcome
        finally:
            store.dispose()
            if not keep:
                path.unlink()

    def check(self, store: Store, system: str, result: StreamResult) -> Outcome:
        """The contract of one run; returns what it landed for further checks."""
        assert result.status in ("succeeded", "failed"), result
        assert result.pulled == result.unchanged + result.mapped + result.quarantined, result
        stored = Stored.read(store, system)
        stored.check_reasons()
        if result.status == "failed":
            # A bad file fails its run with the source error's message, never a traceback.
            assert result.error and result.error.startswith(SOURCE_ERRORS), result.error
            return Outcome(result, stored)
        expected = Expected.pull(self.project, system)
        assert result.pulled == expected.pulled, (result, expected.pulled)
        missing_ids = expected.source_ids - stored.landed.keys()
        assert not missing_ids, f"records lost between pull and landing: {sorted(missing_ids)}"
        missing_keys = expected.quarantine_keys - stored.quarantined.keys()
        assert not missing_keys, f"rejects lost on the way to quarantine: {sorted(missing_keys)}"
        unstorable = {k for k in stored.quarantined if k.startswith("@unstorable:")}
        assert len(unstorable) == expected.unstorable, (unstorable, expected.unstorable)
        return Outcome(result, stored)


@dataclass
class Outcome:
    """A checked run and what the store holds after it."""

    result: StreamResult
    stored: Stored
    path: Path | None = None  # the store's SQLite file, when kept


@dataclass
class Stored:
    """The island's rows in the store: landing status, mapped fields, quarantine reasons."""

    landed: dict[str, str]  # source id -> status
    mapped: dict[str, dict[str, Any]]
    quarantined: dict[str, list[str]]

    @classmethod
    def read(cls, store: Store, system: str) -> Stored:
        """Read the island's rows."""
        with store.connect() as conn:
            landed = {
                r.source_id: r.status
                for r in conn.execute(sa.select(landing).where(landing.c.system == system))
            }
            mapped = {
                r.source_id: json.loads(r.fields)
                for r in conn.execute(
                    sa.select(source_records).where(source_records.c.system == system)
                )
            }
            quarantined = {
                r.source_id: json.loads(r.reasons)
                for r in conn.execute(sa.select(quarantine).where(quarantine.c.system == system))
            }
        return cls(landed, mapped, quarantined)

    def check_reasons(self) -> None:
        """A mapped record has fields and no reasons; a quarantined one has reasons.

        A quarantined record may still have fields: those of an earlier version of it that
        mapped: landing.land keeps them when a later version goes to quarantine.
        """
        for source_id, status in self.landed.items():
            assert status in ("mapped", "quarantined"), (source_id, status)
            if status == "mapped":
                assert source_id in self.mapped, source_id
            assert (source_id in self.quarantined) == (status == "quarantined"), source_id
        for source_id, reasons in self.quarantined.items():
            assert reasons and all(isinstance(r, str) and r.strip() for r in reasons), source_id


@dataclass
class Expected:
    """What the island's connector yields for the files as they are, by a separate pull."""

    pulled: int
    source_ids: set[str]
    quarantine_keys: set[str]
    unstorable: int

    @classmethod
    def pull(cls, project: Project, system: str) -> Expected:
        """Pull the stream from scratch and name where each item must end up."""
        mapping = project.systems[system].streams[STREAM].mapping
        expected = cls(0, set(), set(), 0)
        unstorable: set[str] = set()
        for batch in make_connector(project, project.systems[system]).pull(STREAM, None):
            expected.pulled += len(batch.records) + len(batch.rejected)
            # A NUL is written out (as \x00) where it would land in a text column.
            # And the store keys a HETU-shaped name sealed (docs/privacy.md), as every id.
            expected.quarantine_keys.update(
                seal_source_id(f"@{r.position}".replace("\x00", "\\x00")) for r in batch.rejected
            )
            for record in batch.records:
                try:
                    dumps(record)
                except TypeError:  # the store's JSON cannot hold it: quarantined as such
                    unstorable.add(ascii(record))
                    continue
                source_id = mapping.source_id(record)
                if source_id is None or "\x00" in source_id:  # no id, or one no store holds
                    stored = stored_payload(record, mapping)  # national ids sealed
                    expected.quarantine_keys.add(f"@hash:{content_hash(stored)}")
                else:
                    expected.source_ids.add(seal_source_id(source_id))
        expected.unstorable = len(unstorable)
        return expected
