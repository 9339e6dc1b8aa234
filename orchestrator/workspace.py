"""A workspace: the directory holding ``ruche.toml``, the state database and ``inventories/``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from sqlalchemy.engine import make_url

from orchestrator.config import CONFIG_FILE_NAME, WorkspaceConfig, dump_config, load_config
from orchestrator.errors import Conflict, NotFound
from orchestrator.secrets import Vault, VaultPasswordSource, find_vault_password

WORKSPACE_ENV = "RUCHE_WORKSPACE"
BUNDLED_CATALOG_DIR = Path(__file__).resolve().parent.parent / "service_catalog"


def default_workspace_path() -> Path:
    """Give ``$RUCHE_WORKSPACE`` if set, else the current directory."""
    return Path(os.environ.get(WORKSPACE_ENV) or os.getcwd())


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE_NAME

    @cached_property
    def config(self) -> WorkspaceConfig:
        return load_config(self.config_path)

    @property
    def inventories_dir(self) -> Path:
        return self.root / "inventories"

    @property
    def lab_dir(self) -> Path:
        """Where the lab keeps its machines, keys, registry, settings and record of what it created."""
        return self.root / "lab"

    @property
    def known_hosts_dir(self) -> Path:
        """Where `ruche server add` and `server trust` record each server's SSH host key (one file per server)."""
        return self.root / "known_hosts"

    @property
    def catalog_dir(self) -> Path:
        """The service catalogue directory: ``catalog_dir`` from the config, else the bundled one."""
        if self.config.catalog_dir is None:
            return BUNDLED_CATALOG_DIR
        return self.root / self.config.catalog_dir

    @property
    def state_url(self) -> str:
        """The state database URL, with a relative SQLite path made absolute from the workspace."""
        url = make_url(self.config.state_url)
        if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
            database = Path(url.database)
            if not database.is_absolute():
                url = url.set(database=str(self.root / database))
        return url.render_as_string(hide_password=False)

    def vault_password(self) -> VaultPasswordSource:
        """Give the vault password (see orchestrator.secrets); raises MissingPrerequisite or ConfigError."""
        return find_vault_password(self.root, self.config.secrets.vault_password_file)

    def vault(self) -> Vault:
        """Give the vault that encrypts and decrypts this workspace's secrets."""
        return Vault(self.vault_password().password)

    def save_config(self, config: WorkspaceConfig) -> None:
        """Write ``config`` to ``ruche.toml`` atomically and forget the cached copy."""
        temporary = self.config_path.with_suffix(".toml.tmp")
        temporary.write_text(dump_config(config), encoding="utf-8")
        temporary.replace(self.config_path)
        self.__dict__.pop("config", None)


def open_workspace(path: Path | None) -> Workspace:
    """Give the workspace at ``path`` (default: $RUCHE_WORKSPACE or the current directory).

    Raises NotFound when the directory has no ``ruche.toml``.
    """
    root = (path or default_workspace_path()).resolve()
    workspace = Workspace(root)
    if not workspace.config_path.is_file():
        raise NotFound(
            f"{root} is not a ruche workspace (no {CONFIG_FILE_NAME})",
            hint=f"run `ruche init {root}` or pass --workspace / set {WORKSPACE_ENV}",
        )
    return workspace


def create_workspace(path: Path, config: WorkspaceConfig) -> Workspace:
    """Create a workspace at ``path`` with ``config``; raises Conflict if one is already there."""
    root = path.resolve()
    workspace = Workspace(root)
    if workspace.config_path.exists():
        raise Conflict(f"{root} already holds a workspace ({CONFIG_FILE_NAME} exists)")
    root.mkdir(parents=True, exist_ok=True)
    workspace.inventories_dir.mkdir(exist_ok=True)
    workspace.save_config(config)
    return workspace
