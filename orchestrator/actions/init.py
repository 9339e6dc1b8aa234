"""``ruche init``: create a workspace."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from orchestrator.config import WorkspaceConfig
from orchestrator.errors import InvalidInput
from orchestrator.state.database import StateStore
from orchestrator.validation import describe_validation_error
from orchestrator.workspace import create_workspace


def init_workspace(path: Path, *, collective: str, base_domain: str, state_url: str | None) -> dict:
    """Create a workspace at ``path`` with its config and an up-to-date state database; give a summary.

    Raises InvalidInput for a bad name/domain/URL and Conflict if a workspace is already there;
    nothing is written in either case.
    """
    fields = {"collective": collective, "base_domain": base_domain}
    if state_url:
        fields["state_url"] = state_url
    try:
        config = WorkspaceConfig(**fields)
    except ValidationError as error:
        raise InvalidInput("\n".join(describe_validation_error(error, "init"))) from None
    workspace = create_workspace(path, config)
    try:
        StateStore(workspace.state_url).close()
    except BaseException:
        workspace.config_path.unlink()  # a refused init leaves no half workspace behind
        raise
    return {"workspace": str(workspace.root), "config": str(workspace.config_path)}
