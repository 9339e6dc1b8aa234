"""``ruche key show|create``: the collective's signing key, which signs association bundles (orchestrator/signing.py).

The receiving collective trusts a bundle by this key: `key show` prints the public part (and its key id, to read
out over another channel); `key create` makes one for a workspace created before keys existed (`ruche init` makes
it for new workspaces).
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.signing import PUBLIC_FILE, PublicKey, create_signing_key, public_key
from orchestrator.workspace import open_workspace


def _view(root: Path, key: PublicKey) -> dict:
    return {"public_key": key.text, "key_id": key.key_id, "file": str(root / PUBLIC_FILE)}


def show(workspace_path: Path | None) -> dict:
    """The workspace's public key; raises MissingPrerequisite when it has none."""
    workspace = open_workspace(workspace_path)
    return _view(workspace.root, public_key(workspace.root))


def create(workspace_path: Path | None) -> dict:
    """Make the workspace's signing key (the private part vault-encrypted); raises Conflict if it has one."""
    workspace = open_workspace(workspace_path)
    return _view(workspace.root, create_signing_key(workspace.root, workspace.vault()))
