"""Masks national identity codes (HETU) wherever text leaves the hub: logs, errors, output."""

from __future__ import annotations

import logging
import re

# A HETU-shaped token: birth date, century sign (1800s +, 1900s - Y X W V U, 2000s A-F),
# individual number, check character. Lower case is matched too: users type it.
HETU_PATTERN = re.compile(
    r"(?<![0-9A-Za-z])([0-3]\d[01]\d\d\d)([-+ABCDEFUVWXYabcdefuvwxy])(\d{3}[0-9A-Ya-y])(?![0-9A-Za-z])"
)


def mask_hetu(value: str) -> str:
    """Return the HETU with the individual number hidden: `131052-308T` becomes `131052-***T`.

    The birth date, century sign and check character stay visible: staff need them to tell
    people apart (and to read an id back over the phone), and they identify nobody on their
    own; the individual number, which with the date does, is hidden.
    """
    return HETU_PATTERN.sub(lambda m: f"{m.group(1)}{m.group(2)}***{m.group(3)[-1]}", value)


def mask_text(text: str) -> str:
    """Mask every HETU-shaped token in free text."""
    return mask_hetu(text) if text else text


class MaskingFilter(logging.Filter):
    """A logging filter that masks national ids in every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
