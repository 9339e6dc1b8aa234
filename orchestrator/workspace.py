"""A workspace: the directory holding ``ruche.toml``, the state database and ``inventories/``."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import make_url

from orchestrator.catalog import Catalog, load_catalog
from orchestrator.config import (
    CONFIG_FILE_NAME,
    LAB_SETTINGS_FILE_NAME,
    LAB_SETTINGS_KEYS,
    WorkspaceConfig,
    dump_config,
    dump_lab_settings,
    load_config,
    load_lab_settings,
    parse_config,
    with_lab_settings,
)
from orchestrator.errors import ConfigError, Conflict, NotFound
from orchestrator.secrets import Vault, VaultPasswordSource, find_vault_password
from orchestrator.validation import validate_document

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
        """The workspace's settings: ruche.toml's, with the lab's own settings in place of those keys while the lab
        is up (see :attr:`lab_settings_path`)."""
        return with_lab_settings(self.file_config, self.lab_settings, self.lab_settings_path)

    @cached_property
    def file_config(self) -> WorkspaceConfig:
        """ruche.toml's settings alone, without the lab's."""
        return load_config(self.config_path)

    @cached_property
    def lab_settings(self) -> dict[str, Any]:
        """What the lab's settings file sets, by key ({} when the lab is down)."""
        return load_lab_settings(self.lab_settings_path)

    @property
    def lab_settings_path(self) -> Path:
        """The lab's own settings (registry mirror, proxy_tls, resource_limits, backup, mail): `ruche lab up` writes
        them, `ruche lab down` removes them with the lab's directory; ruche.toml is never changed by the lab."""
        return self.lab_dir / LAB_SETTINGS_FILE_NAME

    def setting_source(self, key: str) -> Path:
        """The file the value of the top-level setting ``key`` comes from: the lab's settings or ruche.toml."""
        return self.lab_settings_path if key in self.lab_settings else self.config_path

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

    @cached_property
    def catalog(self) -> Catalog:
        """The service catalogue, read once per opened workspace (raises ConfigError listing every invalid entry)."""
        return load_catalog(self.catalog_dir)

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

    def write_config(self, config: WorkspaceConfig) -> None:
        """Write the whole of ``ruche.toml`` from ``config``, each setting under its description (`ruche init`: every
        later change goes through :meth:`edit_config`, which keeps what the admin wrote)."""
        write_atomically(self.config_path, dump_config(config))
        self.forget_settings()

    def save_config(self, config: WorkspaceConfig) -> WorkspaceConfig:
        """Write into ruche.toml the top-level settings in which ``config`` differs from :attr:`config` (see
        :meth:`edit_config`). A setting that the lab's settings replace is written all the same: it applies once the
        lab is down."""
        current = self.config
        changes = {name: getattr(config, name) for name in type(config).model_fields}
        return self.edit_config({name: value for name, value in changes.items() if value != getattr(current, name)})

    def edit_config(self, changes: Mapping[str, Any]) -> WorkspaceConfig:
        """Set top-level settings of ruche.toml (a value or a settings model; None removes the key or table) and give
        ruche.toml's new settings.

        The file is changed in place (orchestrator.toml_edit): only the keys whose values change are written,
        comments, order, layout and every other key stay as they were. The result is validated before anything is
        written: a ConfigError naming the file and the field leaves the file untouched. The new file then replaces
        the old one atomically.
        """
        from orchestrator.toml_edit import changed_text  # tomlkit is loaded only by the commands that edit

        path = self.config_path
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            load_config(path)  # raises the ConfigError that says what is wrong
            raise
        current = parse_config(text, path)  # the file as it is now, whatever this object read earlier
        if not changes:
            return current
        wanted = validate_document(WorkspaceConfig, {**current.model_dump(), **changes}, path)
        edited = changed_text(
            text, current.model_dump(mode="json", exclude_none=True), wanted.model_dump(mode="json", exclude_none=True)
        )
        if parse_config(edited, path) != wanted:
            raise ConfigError(
                f"{path}: could not change {', '.join(changes)} in place; the file is left as it was",
                hint="make the change by hand (`ruche schema config` describes every field)",
            )
        with_lab_settings(wanted, self.lab_settings, self.lab_settings_path)  # the lab's settings still apply over it
        if edited != text:
            write_atomically(path, edited)
        self.forget_settings()
        return wanted

    def write_lab_settings(self, settings: Mapping[str, Any]) -> None:
        """Write the lab's own settings (values or settings models, by key of LAB_SETTINGS_KEYS), validated over
        ruche.toml's first; they apply until the lab's directory is removed."""
        plain = {
            key: value.model_dump(mode="json", exclude_none=True) if isinstance(value, BaseModel) else value
            for key, value in settings.items()
        }
        unknown = [key for key in plain if key not in LAB_SETTINGS_KEYS]
        if unknown:
            raise ValueError(f"not settings the lab may set: {', '.join(unknown)}")
        with_lab_settings(self.file_config, plain, self.lab_settings_path)
        self.lab_settings_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.lab_settings_path, dump_lab_settings(plain))
        self.forget_settings()

    def forget_settings(self) -> None:
        """Read ruche.toml, the lab's settings and the catalogue again when next asked (after a change on disk)."""
        for name in ("config", "file_config", "lab_settings", "catalog"):
            self.__dict__.pop(name, None)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a new file beside it renamed over it: a reader sees the old file or the new
    one, never part of one. An existing file keeps its mode (and its owner, when ruche runs as root)."""
    try:
        before = path.stat()
    except FileNotFoundError:
        before = None
    temporary = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if before is not None:
            os.chmod(temporary, stat.S_IMODE(before.st_mode))
            if os.geteuid() == 0:
                os.chown(temporary, before.st_uid, before.st_gid)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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
    workspace.write_config(config)
    return workspace
