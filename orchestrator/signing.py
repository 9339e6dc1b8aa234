"""The collective's key: an Ed25519 pair that signs an association's bundle (`ruche association export`), which
another collective trusts when it imports one (`ruche association import --trust KEY`), and an X25519 pair to which
a sender encrypts the application secrets a bundle carries (`ruche association export --to KEY`).

The private key is kept in the workspace only as ansible-vault ciphertext (``signing/key.vault``, opened with
the workspace's vault password, which never lies in the workspace); the public key beside it in the clear
(``signing/key.pub``): one line ``ruche-key:BASE64`` of the two public keys' 64 raw bytes (Ed25519, then
X25519). The control plane's backup holds both (``ruche backup control-plane``). A public key is named by its key
id, the first 32 hexadecimal digits (128 bits) of the SHA-256 of its 64 bytes: enough that nobody can make another
key with the same id (64 bits could be matched by a determined forger), still short enough to read out on the
phone. Sealing (secrets for a receiver) is X25519 with a fresh ephemeral key, HKDF-SHA256 and ChaCha20-Poly1305,
as libsodium's sealed boxes do with other primitives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from orchestrator.errors import Conflict, InvalidInput, MissingPrerequisite
from orchestrator.secrets import Vault

PREFIX = "ruche-key:"
SIGNING_DIR = Path("signing")
PRIVATE_FILE = SIGNING_DIR / "key.vault"
PUBLIC_FILE = SIGNING_DIR / "key.pub"
SEAL_INFO = b"ruche sealed secrets v1"
RAW = serialization.Encoding.Raw
KEY_ID_DIGITS = 32  # hexadecimal digits of a key id: 128 bits of the key's SHA-256


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class UntrustedSignature(InvalidInput):
    """A signature that no trusted key made (or that does not match what it signs)."""


@dataclass(frozen=True)
class PublicKey:
    """A collective's public key: Ed25519 (verifies its signatures) and X25519 (seals secrets for it), 32 bytes each."""

    raw: bytes

    @property
    def text(self) -> str:
        return PREFIX + _b64(self.raw)

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()[:KEY_ID_DIGITS]

    @classmethod
    def from_text(cls, text: str, *, source: str = "the key") -> PublicKey:
        """Read ``ruche-key:BASE64`` (surrounding blanks allowed); raises InvalidInput naming ``source``."""
        value = text.strip()
        hint = f"a public key is one line '{PREFIX}...' as `ruche key show` prints it"
        if not value.startswith(PREFIX):
            raise InvalidInput(f"{source}: not a ruche public key (it does not start with {PREFIX!r})", hint=hint)
        try:
            raw = base64.b64decode(value[len(PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{source}: its key is not valid base64", hint=hint) from None
        if len(raw) != 64:
            raise InvalidInput(f"{source}: a ruche public key has 64 bytes, this one {len(raw)}", hint=hint)
        return cls(raw)

    def verifies(self, data: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw[:32]).verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def seal(self, plaintext: bytes) -> dict:
        """``plaintext`` encrypted so that only this key's holder opens it: {"ephemeral", "nonce", "ciphertext"}."""
        ephemeral = X25519PrivateKey.generate()
        ephemeral_public = ephemeral.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.raw[32:]))
        nonce = os.urandom(12)
        cipher = ChaCha20Poly1305(_derive(shared, ephemeral_public, self.raw[32:]))
        return {"ephemeral": _b64(ephemeral_public), "nonce": _b64(nonce),
                "ciphertext": _b64(cipher.encrypt(nonce, plaintext, self.raw))}  # fmt: skip


def _derive(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=ephemeral_public + recipient_public, info=SEAL_INFO).derive(shared)


class SigningKey:
    """A collective's private keys (Ed25519 and X25519), held in memory only while signing or opening."""

    def __init__(self, signing: Ed25519PrivateKey, sealing: X25519PrivateKey) -> None:
        self._signing, self._sealing = signing, sealing

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @property
    def public(self) -> PublicKey:
        raw = self._signing.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)
        return PublicKey(raw + self._sealing.public_key().public_bytes(RAW, serialization.PublicFormat.Raw))

    def sign(self, data: bytes) -> bytes:
        return self._signing.sign(data)

    def open(self, sealed: dict) -> bytes:
        """The plaintext of what :meth:`PublicKey.seal` made for this key; raises InvalidInput if it was not."""
        try:
            ephemeral_public = base64.b64decode(sealed["ephemeral"], validate=True)
            shared = self._sealing.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
            own = self.public.raw
            cipher = ChaCha20Poly1305(_derive(shared, ephemeral_public, own[32:]))
            return cipher.decrypt(base64.b64decode(sealed["nonce"], validate=True),
                                  base64.b64decode(sealed["ciphertext"], validate=True), own)  # fmt: skip
        except (InvalidTag, KeyError, TypeError, ValueError, binascii.Error):
            raise InvalidInput(
                "the sealed secrets do not open with this collective's key (sealed for another key, or altered)",
                hint="the sender seals them with `--to` and the public key `ruche key show` prints here",
            ) from None

    def private_text(self) -> str:
        def raw(key) -> str:
            return _b64(key.private_bytes(RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()))

        return json.dumps({"ed25519": raw(self._signing), "x25519": raw(self._sealing)})

    @classmethod
    def from_private_text(cls, text: str) -> SigningKey:
        parts = json.loads(text)
        return cls(Ed25519PrivateKey.from_private_bytes(base64.b64decode(parts["ed25519"])),
                   X25519PrivateKey.from_private_bytes(base64.b64decode(parts["x25519"])))  # fmt: skip


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
