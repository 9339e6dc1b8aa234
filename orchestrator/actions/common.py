"""What every action needs: the workspace and its state store opened once (from operations.context), a progress
callback, the parsing of NAME=VALUE options."""

from __future__ import annotations

from orchestrator.errors import InvalidInput
from orchestrator.operations.context import Progress, no_progress, opened

__all__ = ["Progress", "no_progress", "opened", "parse_key_values", "parse_labels"]


def parse_key_values(pairs: tuple[str, ...], *, option: str, example: str) -> dict[str, str]:
    """Give ``{"k": "v"}`` for ``("k=v", ...)`` given as ``option``.

    Raises InvalidInput (quoting ``example``) for a pair without '=' or an empty key, and for a
    key given twice.
    """
    values: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise InvalidInput(f"{option} {pair!r}: expected NAME=VALUE, e.g. {example}")
        if key in values:
            raise InvalidInput(f"{option} {key} is given twice")
        values[key] = value
    return values


def parse_labels(pairs: tuple[str, ...]) -> dict[str, str]:
    """Give ``{"k": "v"}`` for ``--label k=v`` pairs; raises InvalidInput for a malformed or repeated one."""
    return parse_key_values(pairs, option="--label", example="region=lyon")
