"""The collective's signing key (Ed25519): what signs an association's bundle (`ruche association export`) and
what another collective trusts when it imports one (`ruche association import --trust KEY`).

The private key is kept in the workspace only as ansible-vault ciphertext (``signing/key.vault``, opened with
the workspace's vault password, which never lies in the workspace); the public key beside it in the clear
(``signing/key.pub``). The control plane's backup holds both (``ruche backup control-plane``). A public key is written ``ruche-ed25519:BASE64`` (the 32 raw bytes) and named by its key id,
the first 16 hexadecimal digits of its SHA-256: short enough to read out on the phone to the receiving collective.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orchestrator.errors import Conflict, InvalidInput, MissingPrerequisite
from orchestrator.secrets import Vault

PREFIX = "ruche-ed25519:"
SIGNING_DIR = Path("signing")
PRIVATE_FILE = SIGNING_DIR / "key.vault"
PUBLIC_FILE = SIGNING_DIR / "key.pub"


class UntrustedSignature(InvalidInput):
    """A signature that no trusted key made (or that does not match what it signs)."""


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key (32 raw bytes)."""

    raw: bytes

    @property
    def text(self) -> str:
        return PREFIX + base64.b64encode(self.raw).decode("ascii")

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()[:16]

    @classmethod
    def from_text(cls, text: str, *, source: str = "the key") -> PublicKey:
        """Read ``ruche-ed25519:BASE64`` (surrounding blanks allowed); raises InvalidInput naming ``source``."""
        value = text.strip()
        hint = f"a public key is one line '{PREFIX}...' as `ruche key show` prints it"
        if not value.startswith(PREFIX):
            raise InvalidInput(f"{source}: not a ruche public key (it does not start with {PREFIX!r})", hint=hint)
        try:
            raw = base64.b64decode(value[len(PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{source}: its key is not valid base64", hint=hint) from None
        if len(raw) != 32:
            raise InvalidInput(f"{source}: an Ed25519 public key has 32 bytes, this one {len(raw)}", hint=hint)
        return cls(raw)

    def verifies(self, data: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


class SigningKey:
    """An Ed25519 private key, held in memory only while signing."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public(self) -> PublicKey:
        return PublicKey(
            self._private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def private_text(self) -> str:
        raw = self._private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    def from_private_text(cls, text: str) -> SigningKey:
        return cls(Ed25519PrivateKey.from_private_bytes(base64.b64decode(text.strip())))


def signer_of(data: bytes, signature: bytes, trusted: Iterable[PublicKey]) -> PublicKey:
    """The trusted key that made ``signature`` over ``data``; raises UntrustedSignature when none did."""
    keys = list(trusted)
    for key in keys:
        if key.verifies(data, signature):
            return key
    names = ", ".join(k.key_id for k in keys) or "none"
    raise UntrustedSignature(
        f"the signature was not made by a trusted key (trusted: {names}), or what it signs was changed",
        hint="ask the sending collective for its public key (`ruche key show` there) and give it with --trust",
    )


def create_signing_key(root: Path, vault: Vault) -> PublicKey:
    """Make the workspace's signing key (under ``root``); raises Conflict if it has one."""
    private_path, public_path = root / PRIVATE_FILE, root / PUBLIC_FILE
    if private_path.exists() or public_path.exists():
        raise Conflict(f"{private_path.parent} holds a signing key already", hint="`ruche key show` prints it")
    key = SigningKey.generate()
    private_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path.write_text(vault.encrypt(key.private_text()) + "\n")
    private_path.chmod(0o600)
    public_path.write_text(key.public.text + "\n")
    return key.public


def public_key(root: Path) -> PublicKey:
    """The workspace's public key; raises MissingPrerequisite when it has none."""
    path = root / PUBLIC_FILE
    if not path.exists():
        raise MissingPrerequisite("this workspace has no signing key yet", hint="create it with `ruche key create`")
    return PublicKey.from_text(path.read_text(), source=str(path))


def signing_key(root: Path, vault: Vault) -> SigningKey:
    """The workspace's private key, decrypted with the vault; raises MissingPrerequisite when it has none."""
    path = root / PRIVATE_FILE
    if not path.exists():
        raise MissingPrerequisite("this workspace has no signing key yet", hint="create it with `ruche key create`")
    key = SigningKey.from_private_text(vault.decrypt(path.read_text()))
    if key.public != public_key(root):
        raise MissingPrerequisite(f"{path} and {root / PUBLIC_FILE} are not one key pair",
                                  hint="restore both files from the workspace's backup")  # fmt: skip
    return key
