"""Great Expectations Data Docs of stored validations, built without the data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResultSchema,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from islandhub.quality.gx.context import SITE, context, gx_suite
from islandhub.quality.suites import Suite


def build_data_docs(
    folder: Path, entries: Sequence[tuple[Suite, dict[str, Any], str, datetime]]
) -> dict[str, str]:
    """Render validations (suite, GX JSON, run name, time) as Data Docs into `folder`.

    Returns each suite's validation page, relative to `folder`. The results are the stored,
    masked ones: building docs never needs the data again.
    """
    docs = context(folder)
    pages: dict[str, str] = {}
    keys = []
    schema = ExpectationSuiteValidationResultSchema()
    for suite, result, run_name, at in entries:
        docs.suites.add(gx_suite(suite))
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
            run_id=RunIdentifier(run_name=run_name, run_time=at.astimezone(UTC)),
            batch_identifier=f"{suite.system}-{suite.stream}",
        )
        docs.validation_results_store.set(key, schema.load(result))
        keys.append((suite.name, key))
    docs.build_data_docs(site_names=[SITE])
    for name, key in keys:
        url = docs.get_docs_sites_urls(resource_identifier=key, site_name=SITE)[0]
        page = Path(str(url["site_url"]).removeprefix("file://"))
        pages[name] = page.resolve().relative_to(folder.resolve()).as_posix()
    return pages
