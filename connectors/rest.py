"""The declarative REST connector: streams, paginators, cursors, deletes and push from YAML.

A system owner describes each stream (path, record selector, id, paginator, incremental
cursor, parent, deletes, push) in the system file; this module wires small objects from
registries (paginators here, auth kinds in `connectors.http`) and never needs Python from them.

State of a stream (JSON, committed with each batch):

    {"cursor": highest cursor value seen (normalised),
     "recent": {fingerprint: cursor value} of records seen within the lookback window,
     "next": {"url", "params"} where an unfinished round continues, "since": its lower bound,
     "deleted": the same cursor/recent pair for a tombstone endpoint}

A child stream's state is `{"parent": the parent's state, "done": parent ids finished}`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, urljoin

import orjson
import requests

from connectors.base import (
    IDEMPOTENCY_KEY,
    Batch,
    CheckResult,
    Connector,
    ErasureAnswer,
    Rejected,
    State,
)
from connectors.http import HttpClient, auth_schema, redact
from islandhub.errors import FatalSourceError, SkippableRecordError, SourceError

__all__ = ["PAGINATORS", "Paginator", "RestConnector", "Watermark", "register_paginator"]

DEFAULT_BATCH_SIZE = 1000
EXCERPT_CHARS = 200
CLIENT_OPTIONS = (
    "base_url",
    "auth",
    "headers",
    "timeout",
    "retries",
    "backoff",
    "max_backoff",
    "rate",
    "rate_key",
    "verify",
    "max_response_bytes",
)
Position = dict[str, Any]  # {"url": absolute URL, "params": query parameters or None}
Path = tuple[str, ...]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def split_path(dotted: str) -> Path:
    """A dotted selector as keys ("" selects the document itself)."""
    return tuple(dotted.split(".")) if dotted else ()


def dig(document: Any, path: Path) -> Any:
    """The value at `path` in a JSON document, or MISSING."""
    for key in path:
        if isinstance(document, dict) and key in document:
            document = document[key]
        elif isinstance(document, list) and key.isdigit() and int(key) < len(document):
            document = document[int(key)]
        else:
            return MISSING
    return document


@dataclass
class Page:
    """One answer of the island: the parsed document, the response, the selected records."""

    document: Any
    response: requests.Response
    records: list[Any]


# ---------------------------------------------------------------- paginators


class Paginator:
    """Where the next page is. Positions are plain JSON, so they can live in the state."""

    kind: ClassVar[str]
    #: JSON Schema properties of the `paginator:` block (besides `type`).
    properties: ClassVar[dict[str, Any]] = {}

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = options

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        """Query parameters of the first page."""
        return params

    def next(self, position: Position, page: Page) -> Position | None:
        """The position after `page`, or None at the end."""
        return None


PAGINATORS: dict[str, type[Paginator]] = {}
P = TypeVar("P", bound=type[Paginator])


def register_paginator(cls: P) -> P:
    """Class decorator: make a paginator available to `paginator: {type: ...}`."""
    PAGINATORS[cls.kind] = cls
    return cls


_TOTALS = {
    "total": {"type": "string", "description": "dotted path to the total count in the body"},
    "total_header": {"type": "string", "description": "header with the total, X-Total-Count"},
}


def _total(options: Mapping[str, Any], page: Page) -> int | None:
    value: Any = MISSING
    if options.get("total"):
        value = dig(page.document, split_path(options["total"]))
    elif options.get("total_header"):
        value = page.response.headers.get(options["total_header"], MISSING)
    try:
        return int(value) if value is not MISSING else None
    except (TypeError, ValueError):
        return None


@register_paginator
class NextUrl(Paginator):
    """The body names the next page's URL (`next`, `meta.next`, `@odata.nextLink`)."""

    kind = "next_url"
    properties = {"path": {"type": "string", "default": "next"}}

    def next(self, position: Position, page: Page) -> Position | None:
        """Follow the URL in the body, relative to the page's own URL."""
        link = dig(page.document, split_path(self.options.get("path", "next")))
        if not isinstance(link, str) or not link:
            return None
        return {"url": urljoin(page.response.url, link), "params": None}


@register_paginator
class LinkHeader(Paginator):
    """RFC 8288 `Link: <...>; rel="next"` headers (Koha, GitHub)."""

    kind = "link_header"

    def next(self, position: Position, page: Page) -> Position | None:
        """Follow rel=next."""
        link = page.response.links.get("next", {}).get("url")
        return {"url": urljoin(page.response.url, link), "params": None} if link else None


@register_paginator
class PageNumber(Paginator):
    """`?page=N&page_size=S`; stops at a short page or when the total is reached."""

    kind = "page"
    properties = {
        "param": {"type": "string", "default": "page"},
        "start": {"type": "integer", "default": 1},
        "size_param": {"type": "string", "default": "page_size"},
        "size": {"type": "integer", "minimum": 1},
        **_TOTALS,
    }

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        """Page `start`, and the page size when configured."""
        first = {**params, self.options.get("param", "page"): self.options.get("start", 1)}
        if self.options.get("size"):
            first[self.options.get("size_param", "page_size")] = self.options["size"]
        return first

    def next(self, position: Position, page: Page) -> Position | None:
        """The following page number, unless this page was the last."""
        params = dict(position["params"] or {})
        name = self.options.get("param", "page")
        size = self.options.get("size") or len(page.records)
        pages = int(params[name]) - int(self.options.get("start", 1)) + 1
        if _last(page, size, pages * size, _total(self.options, page)):
            return None
        return {"url": position["url"], "params": {**params, name: int(params[name]) + 1}}


@register_paginator
class Offset(Paginator):
    """`?offset=N&limit=S`; stops at a short page or when the total is reached."""

    kind = "offset"
    properties = {
        "offset_param": {"type": "string", "default": "offset"},
        "limit_param": {"type": "string", "default": "limit"},
        "size": {"type": "integer", "minimum": 1, "default": 100},
        **_TOTALS,
    }

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        """Offset 0 with the page size as the limit."""
        return {
            **params,
            self.options.get("offset_param", "offset"): 0,
            self.options.get("limit_param", "limit"): self.options.get("size", 100),
        }

    def next(self, position: Position, page: Page) -> Position | None:
        """The following offset, unless this page was the last."""
        params = dict(position["params"] or {})
        name, size = self.options.get("offset_param", "offset"), self.options.get("size", 100)
        reached = int(params[name]) + len(page.records)
        if _last(page, size, reached, _total(self.options, page)):
            return None
        return {"url": position["url"], "params": {**params, name: reached}}


def _last(page: Page, size: int, reached: int, total: int | None) -> bool:
    return not page.records or len(page.records) < size or (total is not None and reached >= total)


@register_paginator
class Cursor(Paginator):
    """An opaque token in the body, sent back as a query parameter."""

    kind = "cursor"
    properties = {
        "path": {"type": "string", "description": "dotted path to the token in the body"},
        "param": {"type": "string", "description": "query parameter that carries it"},
    }

    def next(self, position: Position, page: Page) -> Position | None:
        """The same URL with the new token, until the body has none."""
        token = dig(page.document, split_path(self.options.get("path", "next_cursor")))
        if token in (MISSING, None, ""):
            return None
        params = {**(position["params"] or {}), self.options.get("param", "cursor"): token}
        return {"url": position["url"], "params": params}


def paginator_schema() -> dict[str, Any]:
    """JSON Schema of a `paginator:` block, one branch per registered type."""
    branches = [
        {
            "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": {"properties": {"type": {}, **cls.properties}, "additionalProperties": False},
        }
        for kind, cls in PAGINATORS.items()
    ]
    return {
        "type": "object",
        "properties": {"type": {"enum": list(PAGINATORS)}},
        "required": ["type"],
        "allOf": branches,
    }


# ---------------------------------------------------------------- incremental cursor


def normalise(value: Any) -> Any:
    """A cursor value that compares correctly: numbers as they are, timestamps as UTC strings."""
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    if isinstance(value, int | float):
        return value
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_time(value: Any) -> dt.datetime | None:
    if isinstance(value, str) and value.endswith("Z") and len(value) == 27:
        try:
            return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return None
    return None


def shift(value: Any, seconds: float) -> Any:
    """A cursor value `seconds` earlier (opaque strings are left as they are)."""
    if not seconds or value is None:
        return value
    if isinstance(value, int | float):
        return value - seconds
    when = _as_time(value)
    return normalise((when - dt.timedelta(seconds=seconds)).isoformat()) if when else value


def as_param(value: Any, fmt: str | None = None) -> str:
    """A cursor value as a query parameter: ISO 8601 with Z, or the `format` given."""
    when = _as_time(value)
    if when is not None:
        if fmt:
            return when.strftime(fmt)
        text = when.isoformat(timespec="microseconds" if when.microsecond else "seconds")
        return text.replace("+00:00", "Z")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _before(a: Any, b: Any) -> bool:
    try:
        return bool(a < b)
    except TypeError:
        return str(a) < str(b)


def fingerprint(record: Any) -> str:
    """A short hash of a record's content."""
    data = orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(data, digest_size=8).hexdigest()


class Watermark:
    """The incremental cursor: the highest value seen, and fingerprints of records near it.

    Records whose content was already seen within the lookback window are dropped, so a
    lookback (or an inclusive filter on the island) repeats nothing, while a late record
    with an older timestamp inside the window still arrives.
    """

    def __init__(self, cursor_field: str, lookback: float, state: Mapping[str, Any] | None) -> None:
        self.path = split_path(cursor_field)
        self.lookback = lookback
        state = state or {}
        self.cursor: Any = state.get("cursor")
        self.recent: dict[str, Any] = dict(state.get("recent") or {})

    def since(self, start: Any) -> Any:
        """The lower bound of the next round: the cursor minus the lookback, else `start`."""
        if self.cursor is None:
            return normalise(start)
        return shift(self.cursor, self.lookback)

    def admit(self, record: dict[str, Any], floor: Any) -> bool:
        """True when the record is new to the hub (and remember it)."""
        value = normalise(dig(record, self.path))
        if value is None:
            return True
        if floor is not None and _before(value, floor):
            return False
        key = fingerprint(record)
        if key in self.recent:
            return False
        self.recent[key] = value
        if self.cursor is None or _before(self.cursor, value):
            self.cursor = value
        return True

    def state(self) -> dict[str, Any]:
        """The JSON state, keeping only fingerprints still inside the lookback window."""
        if self.cursor is not None:
            edge = shift(self.cursor, self.lookback)
            self.recent = {k: v for k, v in self.recent.items() if not _before(v, edge)}
        return {"cursor": self.cursor, "recent": dict(self.recent)}


# ---------------------------------------------------------------- streams


@dataclass
class Collected:
    """What a batch gathers before it is yielded."""

    records: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def size(self) -> int:
        """Records and deletes gathered."""
        return len(self.records) + len(self.deleted)

    def batch(self, state: State) -> Batch:
        """The batch with the state it reaches."""
        return Batch(self.records, state, self.rejected, self.deleted)


@dataclass(frozen=True)
class RestStream:
    """One stream's options, read once with their defaults."""

    name: str
    options: Mapping[str, Any]

    @property
    def path(self) -> str:
        """The collection's path (relative to base_url) or absolute URL."""
        return str(self.options.get("path", ""))

    @property
    def id_path(self) -> Path:
        """Where the record's id is."""
        return split_path(str(self.options.get("id", "id")))

    @property
    def records_path(self) -> Path:
        """Where the page's records are."""
        return split_path(str(self.options.get("records", "")))

    @property
    def batch_size(self) -> int:
        """Records (and deletes) per batch; pages are never split."""
        return int(self.options.get("batch_size", DEFAULT_BATCH_SIZE))

    @property
    def incremental(self) -> Mapping[str, Any] | None:
        """The `incremental:` block, if any."""
        return self.options.get("incremental")

    @property
    def deletes(self) -> Mapping[str, Any]:
        """The `deletes:` block (empty when the island reports none)."""
        return self.options.get("deletes") or {}

    def paginator(self, options: Mapping[str, Any] | None = None) -> Paginator:
        """The paginator object (a single page when none is configured)."""
        options = options if options is not None else self.options.get("paginator")
        if not options:
            return Paginator({})
        return PAGINATORS[options["type"]](options)

    def params(self, extra: Mapping[str, Any] | None = None, floor: Any = None) -> dict[str, Any]:
        """Query parameters: the stream's, the incremental lower bound's, booleans as JSON."""
        params = {**(extra if extra is not None else self.options.get("params") or {})}
        if self.incremental and self.incremental.get("param") and floor is not None:
            params[self.incremental["param"]] = as_param(floor, self.incremental.get("format"))
        return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()}

    def watermark(self, state: Mapping[str, Any] | None) -> Watermark | None:
        """The incremental cursor of this stream, from its state."""
        if not self.incremental:
            return None
        lookback = float(self.incremental.get("lookback", 0))
        return Watermark(self.incremental["cursor_field"], lookback, state)

    def is_deleted(self, record: dict[str, Any]) -> bool:
        """True when the island marks this record as deleted (a soft delete)."""
        soft = self.deletes.get("soft_field")
        if not soft:
            return False
        return bool(dig(record, split_path(str(soft))) == self.deletes.get("soft_value"))


# ---------------------------------------------------------------- schemas

_STRING = {"type": "string"}
CONNECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "base_url": {"type": "string", "pattern": "^https?://"},
        "auth": auth_schema(),
        "headers": {
            "type": "object",
            "additionalProperties": {
                "anyOf": [_STRING, {"type": "object", "required": ["secret"]}]
            },
        },
        "timeout": {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {
                    "type": "array",
                    "items": {"type": "number", "exclusiveMinimum": 0},
                    "minItems": 2,
                    "maxItems": 2,
                },
            ]
        },
        "retries": {"type": "integer", "minimum": 0, "maximum": 20},
        "backoff": {"type": "number", "minimum": 0},
        "max_backoff": {"type": "number", "minimum": 0},
        "rate": {"type": "number", "exclusiveMinimum": 0, "description": "requests per second"},
        "rate_key": _STRING,
        "verify": {"type": ["boolean", "string"], "description": "false, or a CA bundle path"},
        "max_response_bytes": {"type": "integer", "minimum": 1},
        "check_path": _STRING,
    },
    "required": ["base_url"],
    "additionalProperties": False,
}

_TOMBSTONE = {
    "type": "object",
    "properties": {
        "path": _STRING,
        "records": _STRING,
        "id": _STRING,
        "cursor_field": _STRING,
        "param": _STRING,
        "params": {"type": "object"},
        "paginator": paginator_schema(),
    },
    "required": ["path", "id"],
    "additionalProperties": False,
}

STREAM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": _STRING,
        "params": {"type": "object"},
        "method": {"enum": ["GET"]},
        "records": {"type": "string", "description": "dotted path to the record list; '' = body"},
        "id": {"type": "string", "description": "dotted path to the record's id"},
        "paginator": paginator_schema(),
        "incremental": {
            "type": "object",
            "properties": {
                "cursor_field": _STRING,
                "param": _STRING,
                "format": _STRING,
                "lookback": {"type": "number", "minimum": 0},
                "start": {"type": ["string", "number"]},
            },
            "required": ["cursor_field"],
            "additionalProperties": False,
        },
        "parent": {
            "type": "object",
            "properties": {"stream": _STRING, "path": {"type": "string", "pattern": "\\{id\\}"}},
            "required": ["stream", "path"],
            "additionalProperties": False,
        },
        "deletes": {
            "type": "object",
            "properties": {"soft_field": _STRING, "soft_value": {}, "tombstone": _TOMBSTONE},
            "dependentRequired": {"soft_field": ["soft_value"], "soft_value": ["soft_field"]},
            "additionalProperties": False,
        },
        "push": {
            "type": "object",
            "properties": {
                "method": {"enum": ["POST", "PUT", "PATCH"]},
                "path": _STRING,
                "idempotency_header": _STRING,
            },
            "additionalProperties": False,
        },
        "erase": {
            "description": "A GDPR API (open-city-profile shape): DELETE path?dry_run=true "
            "answers 204 (allowed) or 403 with errors; without dry_run it erases.",
            "type": "object",
            "properties": {"path": {"type": "string", "pattern": "\\{id\\}"}},
            "required": ["path"],
            "additionalProperties": False,
        },
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
    },
    "anyOf": [{"required": ["path"]}, {"required": ["parent"]}],
    "additionalProperties": False,
}


# ---------------------------------------------------------------- the connector


class RestConnector(Connector):
    """Pulls and pushes any JSON REST island described declaratively in its system file."""

    kind = "rest"
    connection_schema = CONNECTION_SCHEMA
    stream_schema = STREAM_SCHEMA

    def __init__(self, system: str, connection: Any, streams: Any, *, root: Any = None) -> None:
        super().__init__(system, connection, streams, root=root)
        options = {k: connection[k] for k in CLIENT_OPTIONS if k in connection}
        self.client = HttpClient(system, **options)
        self.specs = {name: RestStream(name, spec.options) for name, spec in streams.items()}

    def _spec(self, stream: str) -> RestStream:
        if stream not in self.specs:
            known = ", ".join(sorted(self.specs)) or "none"
            raise FatalSourceError(f"{self.system} has no stream {stream!r}; streams: {known}")
        return self.specs[stream]

    # -- check
    def check(self) -> CheckResult:
        """GET the check path, or the first page of the first stream, and report."""
        try:
            if self.connection.get("check_path"):
                response = self.client.request("GET", str(self.connection["check_path"]))
                return CheckResult(True, f"GET {redact(response.url)}: HTTP {response.status_code}")
            spec = next((s for s in self.specs.values() if not s.options.get("parent")), None)
            if spec is None:
                return CheckResult(False, f"{self.system}: no stream with a path to check")
            page = self._fetch(spec, self._first(spec, None))
        except SourceError as error:
            return CheckResult(False, str(error))
        status = f"HTTP {page.response.status_code}"
        url = redact(self.client.strip_auth_params(page.response.url))
        return CheckResult(True, f"GET {url}: {status}, {len(page.records)} records on page 1")

    # -- pull
    def pull(self, stream: str, state: State | None) -> Iterator[Batch]:
        """Yield batches after `state`; the state of each batch resumes right after it."""
        spec = self._spec(stream)
        if spec.options.get("parent"):
            return self._pull_children(spec, state)
        return self._pull_pages(spec, state)

    def _first(self, spec: RestStream, floor: Any) -> Position:
        return {
            "url": self.client.url(spec.path),
            "params": spec.paginator().first(spec.params(floor=floor)),
        }

    def _pull_pages(self, spec: RestStream, state: State | None) -> Iterator[Batch]:
        state = dict(state or {})
        mark = spec.watermark(state)
        resuming = state.get("next") is not None
        if resuming:
            floor, position = state.get("since"), state["next"]
        else:
            floor = mark.since(spec.incremental.get("start")) if mark and spec.incremental else None
            position = self._first(spec, floor)
        paginator, collected = spec.paginator(), Collected()
        while position is not None:
            page = self._fetch(spec, position)
            position = self._advance(paginator, position, page)
            self._sort(spec, page, collected, mark, floor)
            if collected.size() >= spec.batch_size or position is None:
                yield collected.batch(self._state(state, mark, floor, position))
                collected = Collected()
        if spec.deletes.get("tombstone"):
            yield self._tombstones(spec, self._state(state, mark, floor, None))

    @staticmethod
    def _state(previous: State, mark: Watermark | None, floor: Any, at: Position | None) -> State:
        state: State = {"deleted": previous["deleted"]} if "deleted" in previous else {}
        if mark is not None:
            state.update(mark.state())
        if at is not None:
            state["next"] = at
            if floor is not None:
                state["since"] = floor
        return state

    def _fetch(self, spec: RestStream, position: Position, records: Path | None = None) -> Page:
        document, response = self.client.get_json(position["url"], position.get("params"))
        path = spec.records_path if records is None else records
        selected = dig(document, path)
        if selected is MISSING:
            keys = ", ".join(map(str, document)) if isinstance(document, dict) else "none"
            raise FatalSourceError(
                f"GET {redact(response.url)}: the answer has no {'.'.join(path)!r} "
                f"(check the stream's records option; keys: {keys})"
            )
        if selected is None:
            selected = []
        elif isinstance(selected, dict):
            selected = [selected]
        elif not isinstance(selected, list):
            raise FatalSourceError(f"GET {redact(response.url)}: records are not a list")
        return Page(document, response, selected)

    def _advance(self, paginator: Paginator, position: Position, page: Page) -> Position | None:
        after = paginator.next(position, page)
        if after is None:
            return None
        after["url"] = self.client.strip_auth_params(after["url"])
        if after == position:
            raise FatalSourceError(
                f"GET {redact(after['url'])}: the next page is the same page (paginator loops)"
            )
        return after

    def _sort(
        self, spec: RestStream, page: Page, into: Collected, mark: Watermark | None, floor: Any
    ) -> None:
        id_path, soft = spec.id_path, bool(spec.deletes.get("soft_field"))
        for index, record in enumerate(page.records):
            if not isinstance(record, dict):
                into.rejected.append(_rejected("not a JSON object", record, page, index))
                continue
            if mark is not None and not mark.admit(record, floor):
                continue
            key = dig(record, id_path)
            if key is MISSING or key is None:
                reason = f"no id in field {'.'.join(id_path)!r}"
                into.rejected.append(_rejected(reason, record, page, index))
            elif soft and spec.is_deleted(record):
                into.deleted.append(str(key))
            else:
                into.records.append(record)

    def _tombstones(self, spec: RestStream, state: State) -> Batch:
        options = spec.deletes["tombstone"]
        cursor_field = options.get("cursor_field")
        mark = Watermark(cursor_field, 0, state.get("deleted")) if cursor_field else None
        floor = mark.since(None) if mark else None
        param = options.get("param") or (spec.incremental or {}).get("param")
        params = spec.params(options.get("params", {}))
        if param and floor is not None:
            params[param] = as_param(floor, (spec.incremental or {}).get("format"))
        paginator = spec.paginator(options.get("paginator"))
        position: Position | None = {
            "url": self.client.url(options["path"]),
            "params": paginator.first(params),
        }
        gone, id_path = Collected(), split_path(options["id"])
        while position is not None:
            page = self._fetch(spec, position, split_path(options.get("records", "")))
            position = self._advance(paginator, position, page)
            for record in page.records:
                if isinstance(record, dict) and (mark is None or mark.admit(record, floor)):
                    key = dig(record, id_path)
                    gone.deleted += [] if key in (MISSING, None) else [str(key)]
        return gone.batch({**state, "deleted": mark.state()} if mark else state)

    # -- child streams
    def _pull_children(self, spec: RestStream, state: State | None) -> Iterator[Batch]:
        state = dict(state or {})
        parent = self._spec(str(spec.options["parent"]["stream"]))
        parent_state, done = state.get("parent"), list(state.get("done") or [])
        for parent_batch in self.pull(parent.name, parent_state):
            collected = Collected()
            for record in parent_batch.records:
                parent_id = dig(record, parent.id_path)
                if str(parent_id) in done:
                    continue
                self._collect_children(spec, parent_id, collected)
                done.append(str(parent_id))
                if collected.size() >= spec.batch_size:
                    yield collected.batch({"parent": parent_state, "done": list(done)})
                    collected = Collected()
            parent_state, done = parent_batch.state, []
            yield collected.batch({"parent": parent_state, "done": []})

    def _collect_children(self, spec: RestStream, parent_id: Any, into: Collected) -> None:
        template = str(spec.options["parent"]["path"])
        path = template.replace("{id}", quote(str(parent_id), safe=""))
        paginator = spec.paginator()
        position: Position | None = {
            "url": self.client.url(path),
            "params": paginator.first(spec.params()),
        }
        while position is not None:
            page = self._fetch(spec, position)
            position = self._advance(paginator, position, page)
            for record in page.records:
                if isinstance(record, dict):
                    record["_parent_id"] = parent_id
            self._sort(spec, page, into, None, None)

    # -- push
    @classmethod
    def push_problem(cls, options: Any) -> str | None:
        """A REST stream accepts writes when it has push settings."""
        if not options.get("push"):
            return "the stream has no push settings: add push: {method: POST}"
        return None

    def push(self, stream: str, records: list[dict[str, Any]]) -> None:
        """One request per record, each with an idempotency key derived from the record."""
        spec = self._spec(stream)
        options = spec.options.get("push")
        if not options:
            raise FatalSourceError(f"stream {stream!r} of {self.system} has no push settings")
        method = str(options.get("method", "POST"))
        header = str(options.get("idempotency_header", "Idempotency-Key"))
        skipped: list[str] = []
        for record in records:
            body = orjson.loads(
                orjson.dumps({k: v for k, v in record.items() if k != IDEMPOTENCY_KEY}, default=str)
            )
            key = str(record.get(IDEMPOTENCY_KEY) or self._idempotency_key(stream, body))
            try:
                path = self._push_path(spec, str(options.get("path") or spec.path), record)
            except SkippableRecordError as error:
                skipped.append(str(error))
                continue
            self.client.request(method, path, json=body, headers={header: key})
        if skipped:
            raise SkippableRecordError(
                f"{len(skipped)} of {len(records)} records not pushed: {skipped[0]}"
            )

    # -- erase (GDPR API)
    def erase(self, stream: str, source_ids: list[str], *, dry_run: bool) -> ErasureAnswer:
        """DELETE each record's GDPR API address; any 403 refuses the whole erasure."""
        options = self._spec(stream).options.get("erase")
        if not options:
            return ErasureAnswer(allowed=True, supported=False)
        errors: list[dict[str, Any]] = []
        erased = 0
        for source_id in source_ids:
            path = str(options["path"]).replace("{id}", quote(str(source_id), safe=""))
            params = {"dry_run": "true"} if dry_run else None
            response = self.client.request("DELETE", path, params=params, allow=_REFUSED)
            if response.status_code in _REFUSED:
                errors.extend(_gdpr_errors(response))
            elif not dry_run:
                erased += 1
        return ErasureAnswer(allowed=not errors, errors=tuple(errors), erased=erased)

    def _idempotency_key(self, stream: str, body: Any) -> str:
        data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(f"{self.system}/{stream}/".encode() + data).hexdigest()

    @staticmethod
    def _push_path(spec: RestStream, template: str, record: dict[str, Any]) -> str:
        if "{id}" not in template:
            return template
        key = dig(record, spec.id_path)
        if key in (MISSING, None):
            raise SkippableRecordError(
                f"record has no {'.'.join(spec.id_path)!r} to fill the push path {template}"
            )
        return template.replace("{id}", quote(str(key), safe=""))


_REFUSED = frozenset({403})


def _gdpr_errors(response: Any) -> list[dict[str, Any]]:
    """The errors of a GDPR API refusal; a refusal without a readable body still refuses."""
    try:
        errors = orjson.loads(response.content or b"{}").get("errors")
    except (orjson.JSONDecodeError, AttributeError):
        errors = None
    if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
        return [{"code": str(e.get("code", "")), "message": e.get("message", {})} for e in errors]
    unknown = "the island refused without a reason"
    return [{"code": "REFUSED", "message": {"en": unknown, "fi": unknown, "sv": unknown}}]


def _rejected(reason: str, record: Any, page: Page, index: int) -> Rejected:
    text = orjson.dumps(record, default=str)[:EXCERPT_CHARS].decode("utf-8", "replace")
    where = f"{redact(page.response.url)} record {index}"
    return Rejected(reason=reason, excerpt=redact(text), position=where)
