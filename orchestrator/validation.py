"""Turning pydantic validation errors into messages that name the file and the path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)
# fields whose values are never repeated in an error (a secret pasted in clear must not reach a terminal or a log)
SECRET_FIELDS = {"password", "urls"}


def error_path(location: tuple[Any, ...]) -> str:
    """Give a dotted path such as ``services.nextcloud.sizes[0].memory`` for a pydantic location."""
    parts: list[str] = []
    for item in location:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def describe_validation_error(error: ValidationError, source: str | Path) -> list[str]:
    """Give one line per problem, each ``FILE: At 'PATH': MESSAGE (got VALUE)``."""
    lines = []
    for problem in error.errors(include_url=False):
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        value = problem.get("input")
        quiet = (problem["type"] in ("missing", "extra_forbidden") or isinstance(value, dict)
                 or any(part in SECRET_FIELDS for part in problem["loc"]))  # fmt: skip
        shown = "" if quiet else f" (got {value!r:.80})"
        lines.append(f"{source}: At '{error_path(problem['loc'])}': {message}{shown}")
    return lines


def validate_document(model: type[Model], data: Any, source: str | Path) -> Model:
    """Give ``data`` validated as ``model``; raises ConfigError listing every problem with its path."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        lines = describe_validation_error(error, source)
        raise ConfigError("\n".join(lines)) from None
