"""What a person's identifier on the command line must look like, checked before any lookup.

A mistyped id is the user's mistake (exit code 2, from argparse), not "no such resident":
that answer would send staff looking for a person who may well be in the hub. Neither check
repeats the value in its message: it may be a national id.
"""

from __future__ import annotations

import argparse
import uuid

from stdnum.exceptions import ValidationError
from stdnum.fi import hetu

from islandhub.privacy.masking import HETU_PATTERN


def resident_id(text: str) -> str:
    """A resident id: the UUID the hub gave the resident (`islandhub resident list`)."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        hint = (
            "; to find a person by national id, give --national-id"
            if HETU_PATTERN.fullmatch(text.strip())
            else ""
        )
        raise argparse.ArgumentTypeError(
            "not a resident id (a UUID such as 0192a8c4-5b7e-7cc1-9d1e-3f4a5b6c7d8e, "
            f"from islandhub resident list){hint}"
        ) from None


def national_id(text: str) -> str:
    """A valid HETU (python-stdnum: every century sign; temporary ids 900-999 included)."""
    try:
        return str(hetu.validate(text, allow_temporary=True))
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"not a valid national id (HETU): {exc}") from None


def count(text: str) -> int:
    """A number of rows to list or skip: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is less than 0")
    return value
