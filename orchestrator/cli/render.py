"""Rendering action results for a terminal or as JSON."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Iterable, Sequence

import click


def emit_json(data: Any) -> None:
    """Print ``data`` as indented, key-sorted JSON on standard output."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """Give a plain-text table with left-aligned columns."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
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
