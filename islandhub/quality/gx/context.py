"""The Great Expectations context and the hub's suites in Great Expectations' terms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from islandhub.quality.gx.expectations import CUSTOM
from islandhub.quality.suites import Check, Suite
from islandhub.quality.values import EMAIL, ISO_DATE

META_KEY = "islandhub_check"  # each expectation's meta names its check (suites.Check.id)
SITE = "islandhub"


def context(docs: Path | None = None) -> Any:
    """An ephemeral context, offline and quiet; with a Data Docs site in `docs` if given."""
    sites = {}
    if docs is not None:
        sites[SITE] = {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs.resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,  # the hub runs offline; nothing may call home
        progress_bars=ProgressBarsConfig(globally=False),  # Airflow logs are no terminal
        data_docs_sites=sites,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def gx_suite(suite: Suite) -> Any:
    """The suite as a Great Expectations ExpectationSuite."""
    expectations = [expectation(check) for check in suite.checks]
    return gx.ExpectationSuite(name=suite.name, expectations=expectations)


def expectation(check: Check) -> Any:
    """One check as a Great Expectations expectation, carrying its id in `meta`."""
    common: dict[str, Any] = {
        "column": check.field,
        "mostly": check.mostly,
        "meta": {META_KEY: check.id, "origin": check.origin},
    }
    if check.kind in CUSTOM:
        return CUSTOM[check.kind](**common)
    if check.kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(**common)
    if check.kind == "unique":
        return gxe.ExpectColumnValuesToBeUnique(**common)
    if check.kind == "in_set":
        return gxe.ExpectColumnValuesToBeInSet(value_set=list(check.values), **common)
    # GX's regex expectation searches; checks match whole values.
    pattern = {"email": EMAIL, "iso_date": ISO_DATE}.get(check.kind, check.pattern)
    return gxe.ExpectColumnValuesToMatchRegex(regex=f"^(?:{pattern})$", **common)
