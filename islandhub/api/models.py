"""The API's request and response shapes: what the OpenAPI document promises.

Hot paths return their JSON directly (no second validation pass); these models are the
contract that schemathesis and the tests hold the responses to.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fi import hetu

# Shape only; the check character and the date are checked by python-stdnum.
HETU_SHAPE = r"^[0-3][0-9][01][0-9]{3}[-+A-FU-Ya-fu-y][0-9]{3}[0-9A-Ya-y]$"
ACTIVITY_TYPES = Literal["booking", "case", "signup", "feedback", "invoice", "membership", "other"]


class Problem(BaseModel):
    """An error: what went wrong, in words (national ids masked)."""

    detail: str


class NationalIdQuery(BaseModel):
    """Find a resident by national id: in the body, so it never reaches a URL or access log."""

    model_config = ConfigDict(extra="forbid")

    national_id: str = Field(
        pattern=HETU_SHAPE,
        description="A permanent Finnish national identity code (HETU), check character "
        "and date valid; temporary ids (individual number 900-999) identify nobody.",
    )

    @field_validator("national_id")
    @classmethod
    def _valid_hetu(cls, value: str) -> str:
        # The value never goes into the message: a wrong HETU may still be somebody's.
        try:
            return str(hetu.validate(value))
        except StdnumError as exc:
            raise ValueError(f"not a valid permanent national id: {exc}") from None


class Resident(BaseModel):
    """A resident's golden record, as staff may see it."""

    resident_id: str = Field(description="The current id (a merged id redirects here).")
    requested_id: str | None = Field(
        description="The id asked for, when it was merged into resident_id."
    )
    version: int
    active: bool
    updated_at: str = Field(description="ISO 8601, UTC.")
    record: dict[str, Any] = Field(
        description="Target paths of the resident schema; national_id masked, addresses "
        "absent under a non-disclosure order (turvakielto)."
    )
    lineage: dict[str, dict[str, Any]] = Field(
        description="Per field: system, stream, source_id, run_id, observed_at, rule."
    )


class Activity(BaseModel):
    """A booking, case, signup ... of the resident in one island."""

    type: ACTIVITY_TYPES
    system: str
    system_title: dict[str, str]
    stream: str
    source_id: str
    date: str | None
    title: str | None


class Activities(BaseModel):
    """A resident's activities across the islands, newest first."""

    resident_id: str
    activities: list[Activity]


class LastRun(BaseModel):
    """The newest run of one stream."""

    run_id: str
    status: str
    started_at: str | None
    finished_at: str | None
    pulled: int | None
    unchanged: int | None
    mapped: int | None
    quarantined: int | None
    published: int | None
    deleted: int | None
    error: str | None


class StreamStatus(BaseModel):
    """One stream: its newest run and what sits in the store."""

    stream: str
    last_run: LastRun | None
    records: int
    quarantined: int


class SystemStatus(BaseModel):
    """One island."""

    system: str
    title: dict[str, str]
    owner: dict[str, str]
    connector: str
    schedule: str | None
    streams: list[StreamStatus]


class ResidentCount(BaseModel):
    """Residents with a golden record (not merged away, not erased)."""

    active: int


class Status(BaseModel):
    """The hub at a glance."""

    systems: list[SystemStatus]
    residents: ResidentCount


class QualityResult(BaseModel):
    """The newest data-quality result of one system, stream, scope and suite."""

    system: str
    stream: str | None
    scope: str
    suite: str
    validated_at: str
    batch_size: int
    success: bool
    scores: dict[str, Any]
    validations: int = Field(description="Results of this kind kept in the store.")
    failures: int = Field(description="How many of them failed.")


class Quality(BaseModel):
    """Data-quality summaries (empty until the checks have run)."""

    results: list[QualityResult]
    validations: int
    failures: int


class Health(BaseModel):
    """The API is up and its store answers."""

    status: Literal["ok"]


# --- the GDPR API (open-city-profile's gdpr-api-openapi.yaml) -------------------------------


def _plain_optional_members(schema: dict[str, Any]) -> None:
    # The profile's Node has plain optional members (a string, a list of nodes), not
    # nullable ones with defaults: say it the way its own document does.
    for member in schema.get("properties", {}).values():
        member.pop("default", None)
        kinds = member.pop("anyOf", None)
        if kinds:
            member.update(next(k for k in kinds if k.get("type") != "null"))


class Node(BaseModel):
    """A node of the data tree: a key with a value, or with children (open-city-profile)."""

    model_config = ConfigDict(json_schema_extra=_plain_optional_members)

    key: str = Field(description="SNAKE_CASE_WITH_CAPITAL_LETTERS")
    value: str | None = Field(default=None, description="Always a string.")
    children: list[Node] | None = None


class LocalizedMessage(BaseModel):
    """A message in Finnish, Swedish and English."""

    model_config = ConfigDict(extra="allow")

    fi: str
    sv: str
    en: str


class GdprError(BaseModel):
    """Why the erasure is refused (code: the island's, e.g. OPEN_CASE)."""

    code: str
    message: LocalizedMessage


class GdprErrorResponse(BaseModel):
    """The reasons a deletion is refused."""

    errors: list[GdprError]
