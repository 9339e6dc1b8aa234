"""Parsing and printing of sizes such as ``512M``, ``8G`` or ``1.5T``."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_FACTORS_MIB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def parse_size_mib(text: str) -> int:
    """Give ``text`` (``512M``, ``8G``, ``8GiB``, a bare number meaning MiB) in MiB; raises ValueError."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size such as 512M, 8G or 1.5T")
    number, unit = match.groups()
    mebibytes = float(number) * _FACTORS_MIB[unit.upper()]
    if mebibytes < 1:
        raise ValueError(f"{text!r} is smaller than 1 MiB")
    return int(round(mebibytes))


def format_mib(mebibytes: int) -> str:
    """Give a short human form of a size in MiB: ``512M``, ``8G``, ``1.5T``."""
    for unit, factor in (("T", 1024 * 1024), ("G", 1024)):
        if mebibytes >= factor:
            value = mebibytes / factor
            return f"{value:.1f}".rstrip("0").rstrip(".") + unit
    return f"{mebibytes}M"
