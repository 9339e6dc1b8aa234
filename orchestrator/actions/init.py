"""``ruche init``: create a workspace."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import ValidationError

from orchestrator.config import SecretsSettings, WorkspaceConfig, default_offers
from orchestrator.errors import InvalidInput
from orchestrator.secrets import PASSWORD_ENV, PASSWORD_FILE_ENV, create_password_file
from orchestrator.signing import PRIVATE_FILE, PUBLIC_FILE, create_signing_key
from orchestrator.state.database import StateStore
from orchestrator.validation import describe_validation_error
from orchestrator.workspace import create_workspace


def default_password_file(path: Path) -> Path:
    """Give where ``ruche init`` puts a new vault password for the workspace at ``path``.

    Under ``$XDG_CONFIG_HOME/ruche/vault/`` (default ``~/.config``), never inside the workspace.
    """
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    return config_home / "ruche" / "vault" / f"{path.resolve().name}-{digest}.password"


def init_workspace(
    path: Path, *, collective: str, base_domain: str, state_url: str | None, vault_password_file: Path | None = None,
    base_url: str | None = None,
) -> dict:  # fmt: skip
    """Create a workspace at ``path`` with its config and an up-to-date state database; give a summary.

    The vault password is ``vault_password_file`` if given; else, unless ``$RUCHE_VAULT_PASSWORD``
    or ``$RUCHE_VAULT_PASSWORD_FILE`` provides one, a new random password is written to
    :func:`default_password_file` (mode 0600) and named in ruche.toml. The collective's signing key (bundles) is
    made under signing/, its private part vault-encrypted.

    ``base_url`` (default ``https://ruche.BASE_DOMAIN``) is written as ``[web] base_url``, the address invite links
    name: without it they would point at 127.0.0.1:8080.

    Raises InvalidInput for a bad name/domain/URL and Conflict if a workspace is already there;
    nothing is written in either case.
    """
    fields = {"collective": collective, "base_domain": base_domain, "offers": default_offers(),
              "web": {"base_url": base_url or f"https://ruche.{base_domain}"}}  # fmt: skip
    if state_url:
        fields["state_url"] = state_url
    if vault_password_file is not None:
        fields["secrets"] = SecretsSettings(vault_password_file=str(vault_password_file.expanduser().resolve()))
    try:
        config = WorkspaceConfig(**fields)
    except ValidationError as error:
        if base_url is not None and any(e["loc"] == ("web", "base_url") for e in error.errors()):
            raise InvalidInput(f"--base-url {base_url!r}: expected http(s)://HOST[:PORT][/PATH] with no query",
                               hint="e.g. --base-url https://ruche.example.org (where members reach `ruche serve`)") from None  # fmt: skip
        raise InvalidInput("\n".join(describe_validation_error(error, "init"))) from None
    workspace = create_workspace(path, config)
    created_password = None
    try:
        if config.secrets.vault_password_file is None and not (
            os.environ.get(PASSWORD_ENV) or os.environ.get(PASSWORD_FILE_ENV)
        ):
            created_password = create_password_file(default_password_file(path))
            workspace.write_config(
                config.model_copy(update={"secrets": SecretsSettings(vault_password_file=str(created_password))})
            )
        workspace.vault_password()  # refuses a password file inside the workspace or readable by others
        StateStore(workspace.state_url).close()
        key = create_signing_key(workspace.root, workspace.vault())
    except BaseException:
        workspace.config_path.unlink()  # a refused init leaves no half workspace behind
        for name in (PRIVATE_FILE, PUBLIC_FILE):
            (workspace.root / name).unlink(missing_ok=True)
        if (workspace.root / PRIVATE_FILE.parent).is_dir():
            (workspace.root / PRIVATE_FILE.parent).rmdir()
        if created_password is not None:
            created_password.unlink()
        raise
    return {
        "workspace": str(workspace.root),
        "config": str(workspace.config_path),
        "vault_password": workspace.vault_password().description,
        "key_id": key.key_id,
    }
