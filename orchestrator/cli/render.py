"""Rendering action results for a terminal or as JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import click


def user_language() -> str:
    """The language of names and labels the CLI shows (catalogue names, offer labels): French when the user's locale
    is French ($LC_ALL, $LC_MESSAGES, $LANG, as gettext reads them), English otherwise."""
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


def emit_json(data: Any) -> None:
    """Print ``data`` as key-sorted JSON on standard output: indented, except long lists (a listing, or
    a listing inside an answer), written one item per line with the C encoder: 30,000 instances take a
    fraction of a second (indenting is pure Python), `grep` finds an item, `jq` reads it all."""
    click.echo(
        _long_lists_json(data) if _has_long_list(data) else json.dumps(data, indent=2, sort_keys=True, default=str)
    )


LONG_LIST = 50


def _has_long_list(data: Any) -> bool:
    values = data.values() if isinstance(data, dict) else [data]
    return any(isinstance(value, list) and len(value) > LONG_LIST for value in values)


def _long_lists_json(data: Any) -> str:
    def encoded(value: Any) -> str:
        if isinstance(value, list) and value:
            return "[\n" + ",\n".join(json.dumps(item, sort_keys=True, default=str) for item in value) + "\n]"
        return json.dumps(value, sort_keys=True, default=str)

    if isinstance(data, dict):
        return "{\n" + ",\n".join(f"{json.dumps(key)}: {encoded(data[key])}" for key in sorted(data)) + "\n}"
    return encoded(data)


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """Give a plain-text table with left-aligned columns."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


class ProgressPrinter:
    """A progress callback printing ``[  12.3s] message`` lines on standard error."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.started
            click.echo(f"[{elapsed:6.1f}s] {message}", err=True)
            sys.stderr.flush()


def instances_table(entries: list[dict]) -> str:
    """Give the table of instances shown by `status` and `apply`: where, state, health, URL."""
    rows = [(e["address"], e["service"], e["server"], e["state"], e["health"], e["url"]) for e in entries]
    return table(rows, ["INSTANCE", "SERVICE", "SERVER", "STATE", "HEALTH", "URL"])
