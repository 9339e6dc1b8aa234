"""Instances' secrets: generated at random, kept only as ansible-vault ciphertext.

The vault password comes from ``RUCHE_VAULT_PASSWORD``, else the file named by
``RUCHE_VAULT_PASSWORD_FILE``, else ``[secrets] vault_password_file`` in ruche.toml, and is
never kept in the workspace.  State and inventories hold only ciphertext (``!vault`` values),
so the same state gives byte-identical inventories and no plaintext secret is ever written.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ConfigError, MissingPrerequisite

PASSWORD_ENV = "RUCHE_VAULT_PASSWORD"
PASSWORD_FILE_ENV = "RUCHE_VAULT_PASSWORD_FILE"
# 32 characters from a URL-safe alphabet: safe in env files, URLs and connection strings.
SECRET_BYTES = 24


def generate_secret() -> str:
    """Give a new random secret (32 URL-safe characters), never starting with "-".

    A value starting with "-" is read as an option by command-line tools that take it as an argument (the
    Nextcloud image's `occ maintenance:install --admin-pass "$NEXTCLOUD_ADMIN_PASSWORD"`, nextcloud/docker
    PR #2586): about one secret in 64 would fail a first start. Drawing again keeps the others uniform."""
    while True:
        value = secrets.token_urlsafe(SECRET_BYTES)
        if not value.startswith("-"):
            return value


@dataclass(frozen=True)
class VaultPasswordSource:
    """Where the vault password was found: ``file`` (a path) or the environment variable."""

    password: bytes
    file: Path | None

    @property
    def description(self) -> str:
        return str(self.file) if self.file else f"${PASSWORD_ENV}"


def find_vault_password(workspace_root: Path, configured_file: str | None) -> VaultPasswordSource:
    """Give the vault password and where it came from.

    Raises MissingPrerequisite when none is set or its file is unreadable, and ConfigError when
    the file lies inside the workspace or can be read by others.
    """
    from_environment = os.environ.get(PASSWORD_ENV)
    if from_environment:
        return VaultPasswordSource(from_environment.encode(), None)
    name = os.environ.get(PASSWORD_FILE_ENV) or configured_file
    if not name:
        raise MissingPrerequisite(
            "no vault password: instances' secrets cannot be encrypted or read",
            hint=f"set {PASSWORD_ENV} or {PASSWORD_FILE_ENV}, or [secrets] vault_password_file in ruche.toml",
        )
    path = Path(name).expanduser().resolve()
    if path.is_relative_to(workspace_root.resolve()):
        raise ConfigError(
            f"the vault password file {path} lies inside the workspace",
            hint="keep it outside (e.g. ~/.config/ruche/), so that copying the workspace never copies the key",
        )
    try:
        mode = path.stat().st_mode
        password = path.read_bytes().strip()
    except OSError as error:
        raise MissingPrerequisite(f"cannot read the vault password file {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"the vault password file {path} is readable by others", hint=f"chmod 600 {path}")
    if not password:
        raise ConfigError(f"the vault password file {path} is empty")
    return VaultPasswordSource(password, path)


def create_password_file(path: Path) -> Path:
    """Write a new random vault password to ``path`` (mode 0600, parents 0700); give the path.

    Raises ConfigError if the file already exists (a password is never overwritten).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; ruche never overwrites a vault password") from None
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path


class Vault:
    """Encrypts and decrypts values with one vault password."""

    def __init__(self, password: bytes) -> None:
        from ansible.parsing.vault import VaultLib, VaultSecret  # loaded when secrets are handled, not at every start

        self._vault = VaultLib([("default", VaultSecret(password))])

    def encrypt(self, plaintext: str) -> str:
        """Give the ansible-vault ciphertext of ``plaintext`` (``$ANSIBLE_VAULT;1.1;AES256`` text)."""
        return self._vault.encrypt(plaintext).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Give the plaintext of ``ciphertext``; raises ConfigError when the password does not open it."""
        from ansible.errors import AnsibleError

        try:
            return self._vault.decrypt(ciphertext).decode("utf-8")
        except AnsibleError:
            raise ConfigError(
                "the vault password does not decrypt this workspace's secrets",
                hint="use the password the secrets were created with",
            ) from None
