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


def read_public_key(value: str, option: str):
    """A collective's public key given to ``option`` as its line (``ruche-key:...``) or as a file holding it;
    raises InvalidInput naming the option when it is neither."""
    from pathlib import Path

    from orchestrator.signing import PREFIX, PublicKey

    text = value
    if not value.startswith(PREFIX):
        path = Path(value).expanduser()
        try:
            text = path.read_text(encoding="utf-8", errors="replace")[:4096]
        except OSError as error:
            raise InvalidInput(f"{option} {value}: neither a public key ({PREFIX}...) nor a readable file "
                               f"({error.strerror})", hint="give the line `ruche key show` prints, or its file") from None  # fmt: skip
    return PublicKey.from_text(text, source=f"{option} {value}")
