"""JSON responses: masked (every national id as 131052-***T) unless it is the person's own data.

Masking the serialised text, not chosen fields, is deliberate: national ids also hide in
places no field list names (the register's source ids, lineage, an island's error text).
For the same reason a national id still sealed as the store keeps it (`nid1:...`, e.g. a
register source id in lineage) is opened in the text first, then masked like the rest.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

from islandhub.privacy.crypto import unseal_text
from islandhub.privacy.masking import mask_text


def _json(content: Any) -> bytes:
    # orjson: the golden record and its lineage are most of a read's serialising time.
    return orjson.dumps(content, default=str)


class MaskedJSONResponse(JSONResponse):
    """The default response: JSON with every HETU-shaped token masked."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:  # noqa: D102
        return mask_text(unseal_text(_json(content).decode("utf-8"))).encode("utf-8")


class PersonalJSONResponse(JSONResponse):
    """JSON as it is: only for the person's own data (the GDPR API's GET)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:  # noqa: D102
        return unseal_text(_json(content).decode("utf-8")).encode("utf-8")
