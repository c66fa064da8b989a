"""The hub's custom expectations: HETU, Y-tunnus, E.164 phone, postal code, municipality code.

Each is a Great Expectations ColumnMapExpectation whose metric runs one vectorised check of
islandhub.quality.values on the pandas column, so Data Docs, `mostly` and the unexpected
counts work as for GX's own expectations. Defining the classes registers them with GX;
the adapter imports this module before it builds a suite.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer
from great_expectations.render.util import num_to_str

from islandhub.quality import values


class _Phrased(ColumnMapExpectation):
    """A column map expectation that Data Docs describe with its `phrase`."""

    phrase: ClassVar[str] = ""

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[RenderedStringTemplateContent]:
        # Without this, Data Docs print the bare kwargs of an expectation they do not know.
        config = configuration or (result.expectation_config if result else None)
        params = dict(config.kwargs) if config is not None else {}
        mostly = params.get("mostly")
        template = f"$column values must be {cls.phrase}"
        if isinstance(mostly, int | float) and mostly < 1:
            params["mostly_pct"] = num_to_str(mostly * 100, no_scientific=True)
            template += ", at least $mostly_pct % of the time"
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={"template": template + ".", "params": params},
            )
        ]


class ColumnValuesValidHetu(ColumnMapMetricProvider):
    """Metric: each value is a valid HETU (see values.valid_hetu)."""

    condition_metric_name = "column_values.islandhub_valid_hetu"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return values.valid_hetu(column)


class ExpectColumnValuesToBeValidHetu(_Phrased):
    """Expect values to be valid Finnish personal identity codes (HETU), compact."""

    map_metric: ClassVar[str] = "column_values.islandhub_valid_hetu"
    phrase: ClassVar[str] = "valid Finnish personal identity codes (HETU)"


class ColumnValuesValidYtunnus(ColumnMapMetricProvider):
    """Metric: each value is a valid Y-tunnus (see values.valid_ytunnus)."""

    condition_metric_name = "column_values.islandhub_valid_ytunnus"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return values.valid_ytunnus(column)


class ExpectColumnValuesToBeValidYtunnus(_Phrased):
    """Expect values to be valid Finnish business ids (Y-tunnus) written 1234567-8."""

    map_metric: ClassVar[str] = "column_values.islandhub_valid_ytunnus"
    phrase: ClassVar[str] = "valid Finnish business ids (Y-tunnus, 1234567-8)"


class ColumnValuesE164Phone(ColumnMapMetricProvider):
    """Metric: each value is a phone number in E.164 form."""

    condition_metric_name = "column_values.islandhub_e164_phone"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return values.e164_phone(column)


class ExpectColumnValuesToBeE164Phone(_Phrased):
    """Expect values to be phone numbers in E.164 form (+358401234567)."""

    map_metric: ClassVar[str] = "column_values.islandhub_e164_phone"
    phrase: ClassVar[str] = "phone numbers in E.164 form (+358401234567)"


class ColumnValuesFinnishPostalCode(ColumnMapMetricProvider):
    """Metric: each value is a Finnish postal code."""

    condition_metric_name = "column_values.islandhub_finnish_postal_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return values.finnish_postal_code(column)


class ExpectColumnValuesToBeFinnishPostalCode(_Phrased):
    """Expect values to be Finnish postal codes: five digits as text."""

    map_metric: ClassVar[str] = "column_values.islandhub_finnish_postal_code"
    phrase: ClassVar[str] = "Finnish postal codes (five digits)"


class ColumnValuesKnownMunicipality(ColumnMapMetricProvider):
    """Metric: each value is a code of the municipality classification."""

    condition_metric_name = "column_values.islandhub_known_municipality"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return values.known_municipality(column)


class ExpectColumnValuesToBeKnownMunicipalityCode(_Phrased):
    """Expect values to be codes of Statistics Finland's municipality classification."""

    map_metric: ClassVar[str] = "column_values.islandhub_known_municipality"
    phrase: ClassVar[str] = "known municipality codes (kuntanumero, e.g. 753)"


#: The custom expectation of each check kind that has one.
CUSTOM: dict[str, type[ColumnMapExpectation]] = {
    "hetu": ExpectColumnValuesToBeValidHetu,
    "ytunnus": ExpectColumnValuesToBeValidYtunnus,
    "e164_phone": ExpectColumnValuesToBeE164Phone,
    "postal_code": ExpectColumnValuesToBeFinnishPostalCode,
    "municipality_code": ExpectColumnValuesToBeKnownMunicipalityCode,
}
