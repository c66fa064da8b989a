"""What the command line's values must be, checked before any work is done.

A person's ids, counts, and the folder a command writes into. A mistyped id is the user's
mistake (exit code 2, from argparse), not "no such resident": that answer would send staff
looking for a person who may well be in the hub. Neither id check repeats the value in its
message: it may be a national id.
"""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path

from stdnum.exceptions import ValidationError
from stdnum.fi import hetu

from islandhub.errors import ConfigError
from islandhub.privacy.masking import HETU_PATTERN


def resident_id(text: str) -> str:
    """A resident id: the UUID the hub gave the resident (`islandhub resident list`)."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        hint = (
            "; that is a national id: find the resident's id with "
            "`islandhub resident show --national-id`"
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


def writable_folder(folder: Path, *, given: bool) -> None:
    """Make the folder a command writes into, or say why not, before the work is done."""
    where = f"--out {folder}" if given else str(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{where}: is a file; name a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create the folder ({exc.strerror})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: cannot write in this folder")
