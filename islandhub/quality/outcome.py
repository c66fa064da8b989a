"""What a validation found, as plain data: per check the counts and masked examples.

The GX adapter produces these; the pipeline's hook, the review and the report read them.
Counts of two slices of one batch add up (`merged`), so a big batch can be validated in
slices and still give one result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

EXAMPLES = 5  # masked examples kept per check


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result over a batch."""

    check: str  # suites.Check.id
    field: str
    kind: str
    dimension: str
    mostly: float
    origin: str
    elements: int = 0  # rows seen
    missing: int = 0  # of them without a value
    unexpected: int = 0  # of the checked ones, failing
    examples: tuple[dict[str, str], ...] = ()  # {"source_id", "value"}, masked
    error: str | None = None  # Great Expectations could not evaluate the check

    @property
    def checked(self) -> int:
        """The values the check judged: every row for not_null, else the present ones."""
        return self.elements if self.kind == "not_null" else self.elements - self.missing

    @property
    def passed_share(self) -> float:
        """The share of checked values that passed (1.0 when none were checked)."""
        return 1.0 if self.checked == 0 else (self.checked - self.unexpected) / self.checked

    @property
    def success(self) -> bool:
        """Whether at least `mostly` of the checked values passed (GX's rule)."""
        return self.error is None and self.passed_share >= self.mostly - 1e-12

    def merged(self, other: CheckOutcome) -> CheckOutcome:
        """The outcome over two slices of one batch."""
        return replace(
            self,
            elements=self.elements + other.elements,
            missing=self.missing + other.missing,
            unexpected=self.unexpected + other.unexpected,
            examples=(self.examples + other.examples)[:EXAMPLES],
            error=self.error or other.error,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data for dq_results and the report."""
        data = asdict(self)
        data["examples"] = list(self.examples)
        data["success"] = self.success
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckOutcome:
        """Read back what `as_dict` wrote."""
        names = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in names}
        values["examples"] = tuple(values.get("examples") or ())
        return cls(**values)


@dataclass
class Validation:
    """One suite over one batch: per check outcomes, filled counts, and GX's own result."""

    suite: str
    rows: int
    outcomes: list[CheckOutcome]
    filled: dict[str, int] = field(default_factory=dict)  # per field: rows with a value
    gx: dict[str, Any] = field(default_factory=dict)  # GX's result as JSON, masked

    @property
    def success(self) -> bool:
        """Whether every check passed."""
        return all(o.success for o in self.outcomes)
