"""The bundle format (version 1): an association's data signed by its collective, for another collective's ruche.

A bundle is a gzip-compressed POSIX (pax) tar, written and read as a stream so that a bundle larger than memory is
never held in it (members are copied and hashed in blocks of 1 MiB). Its members, all under ``ruche-bundle/``, come
in this order:

- ``README.txt``: what each file is and how to check and load them by hand (for a hoster without ruche);
- ``instances/NAME/...``: each instance's data (``database.sql``, ``manifest.json``, ``volumes.tar``, ...);
- ``manifest.json``: :class:`BundleManifest` as JSON with sorted keys, in UTF-8, listing the SHA-256 and size of
  every member before it;
- ``manifest.sig``: the Ed25519 signature of manifest.json's exact bytes by the collective's key (orchestrator.signing).

:class:`BundleWriter` writes one, :func:`verify_bundle` checks one in a single pass (the signature before anything the
manifest says is believed), :func:`read_members` gives its data to an importer while checking it again (the file may
change between the two passes). docs/bundle-format.md describes the format for a receiving hoster without ruche.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import InvalidInput, OperationFailed
from orchestrator.signing import PREFIX, PublicKey, SigningKey, UntrustedSignature, signer_of

FORMAT = 1
ROOT = "ruche-bundle"
README = "README.txt"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
BLOCK = 1 << 20
# manifest.json and manifest.sig are the only members held in memory (to check the signature over their bytes)
MANIFEST_LIMIT = 16 << 20
SIGNATURE_LIMIT = 64 << 10
# gzip's own default: level 9 (tarfile's "w|gz") costs several times the time for a few per cent of a volume's size
COMPRESSLEVEL = 6
SHOWN_PROBLEMS = 40
INSTANCE_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
SHA256_HEX = r"^[0-9a-f]{64}$"


class MemberDigest(BaseModel):
    """What one member of the bundle holds, to check it by."""

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=SHA256_HEX, description="SHA-256 of the member's content (64 lowercase hex digits).")
    size: int = Field(ge=0, description="The member's size in bytes.")


class BundleAssociation(BaseModel):
    """The association the bundle is of, as the sending collective knows it."""

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=SLUG, max_length=32, description="Its short name (lowercase letters, digits, dashes).")
    name: str = Field(min_length=1, max_length=200, description="Its full name.")
    email: str = Field(max_length=320, description="Its contact address.")
    offer: str | None = Field(description="The name of its offer at the sender (None: it had none).")
    offer_figures: dict[str, int | float | None] = Field(
        description="The offer's quotas at the sender (e.g. max_instances, memory_mb, disk_gb), for the receiver "
        "to choose an offer with room enough; None: no limit."
    )


class BundleInstance(BaseModel):
    """One instance of the association and what its data directory instances/NAME/ holds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=INSTANCE_NAME, description="Its name in the association, and its directory's.")
    service: str = Field(min_length=1, description="The catalogue's service id (e.g. miniflux).")
    version: str = Field(min_length=1, description="The service's version it ran.")
    size: str = Field(min_length=1, description="Its size in the catalogue (e.g. small).")
    parameters: dict[str, str] = Field(description="Its parameters' values; non-secret ones only.")
    domains: list[str] = Field(description="The domains it answered on, its main one first.")
    database: Literal["postgresql", "mariadb"] | None = Field(
        description="The engine of its database dump instances/NAME/database.sql (None: no database)."
    )
    data: dict[str, Any] = Field(
        description="What the data held when exported, as the server's manifest said (tables' row counts, files' "
        "counts): the importer compares it with what it restored."
    )


class SealedBox(BaseModel):
    """Bytes only one collective opens: X25519 with a fresh key, HKDF-SHA256, ChaCha20-Poly1305 (signing.py)."""

    model_config = ConfigDict(extra="forbid")

    ephemeral: str = Field(min_length=1, description="The sender's one-time X25519 public key (base64).")
    nonce: str = Field(min_length=1, description="ChaCha20-Poly1305's nonce (base64, 12 bytes).")
    ciphertext: str = Field(min_length=1, description="The sealed bytes with their tag (base64).")


class BundleSecrets(BaseModel):
    """The instances' application secrets, sealed for the receiving collective's key (`export --to KEY`)."""

    model_config = ConfigDict(extra="forbid")

    sealed_for: str = Field(pattern=r"^[0-9a-f]{16}$", description="The id of the key they are sealed for.")
    box: SealedBox = Field(
        description="JSON {instance name: {secret name: value}} sealed for that key (database passwords left out)."
    )


class BundleManifest(BaseModel):
    """manifest.json: what the bundle holds, signed by the sending collective."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = Field(description="The bundle format's version.")
    created_at: str = Field(min_length=1, description="When the bundle was made (ISO 8601, UTC).")
    ruche_version: str = Field(min_length=1, description="The version of ruche that made it.")
    collective: str = Field(min_length=1, description="The name of the sending collective.")
    key_id: str = Field(
        pattern=r"^[0-9a-f]{16}$",
        description="The id of the key that signs it (the first 16 hex digits of its SHA-256).",
    )
    association: BundleAssociation = Field(description="The association.")
    catalogue: dict[str, str] = Field(description="Service id -> the version the sender's catalogue runs.")
    instances: list[BundleInstance] = Field(description="The association's instances.")
    members: dict[str, MemberDigest] = Field(
        description="Every member before manifest.json, by its path under ruche-bundle/ (README.txt, "
        "instances/NAME/FILE), with its SHA-256 and size."
    )
    secrets: BundleSecrets | None = Field(
        default=None, description="The application secrets sealed for the receiver; None: left out (the default)."
    )


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature and every member were checked: what :func:`read_members` checks again."""

    path: Path
    manifest: BundleManifest
    manifest_bytes: bytes
    signer: PublicKey
    sha256: str  # of the whole file: what the audit trail names the bundle by
    size: int


README_TEXT = f"""\
ruche bundle, format 1
======================

This archive holds an association's data as its hosting collective exported it with ruche
(`ruche association export`), so that another host can take the association in: with ruche
(`ruche association import FILE --trust KEY`) or by hand, with the steps below.

Files (all under ruche-bundle/):
  README.txt                      this text
  instances/NAME/manifest.json    what instance NAME held when exported: its files' checksums and
                                  owners, its database tables' row counts
  instances/NAME/database.sql     its database as a plain SQL dump (pg_dump or mariadb-dump), if it has one
  instances/NAME/volumes.tar      its files, volumes/VOLUME/... for each volume; owners are numbered inside
                                  the instance's own user namespace (uid 0 = the container's root)
  manifest.json                   the association, each instance (service, version, size, parameters,
                                  domains, database engine), and the SHA-256 and size of every file above
  manifest.sig                    the sending collective's Ed25519 signature of manifest.json's bytes

Application secrets (passwords, keys) are never in the bundle in clear: they are left out (set new
ones where you install the services), or sealed in manifest.json's "secrets" for the receiving
collective's key, which only its ruche opens.

Check the checksums, from the directory holding ruche-bundle/, with jq:

  cd ruche-bundle && jq -r '.members | to_entries[] | "\\(.value.sha256)  \\(.key)"' manifest.json | sha256sum -c

or with Python 3 alone:

  python3 - <<'EOF'
  import hashlib, json, pathlib
  root = pathlib.Path("ruche-bundle")
  for name, want in json.loads((root / "manifest.json").read_bytes())["members"].items():
      digest = hashlib.sha256()
      with open(root / name, "rb") as handle:
          for block in iter(lambda: handle.read(1 << 20), b""):
              digest.update(block)
      print("OK  " if digest.hexdigest() == want["sha256"] else "BAD ", name)
  EOF

Check the signature (Python 3 with the `cryptography` package; the argument is the sending
collective's public key, '{PREFIX}BASE64', which it gives you itself: `ruche key show` prints it;
its first 32 bytes are the Ed25519 key that signs):

  python3 - '{PREFIX}...' <<'EOF'
  import base64, json, pathlib, sys
  from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
  root = pathlib.Path("ruche-bundle")
  key = Ed25519PublicKey.from_public_bytes(base64.b64decode(sys.argv[1].split(":", 1)[1])[:32])
  signature = json.loads((root / "manifest.sig").read_text())["signature"]
  key.verify(base64.b64decode(signature), (root / "manifest.json").read_bytes())  # raises if it does not match
  print("signature OK")
  EOF

Load a dump:
  PostgreSQL:  psql -v ON_ERROR_STOP=1 -d DATABASE -f ruche-bundle/instances/NAME/database.sql
  MariaDB:     mariadb DATABASE < ruche-bundle/instances/NAME/database.sql
Unpack files:  tar --extract --numeric-owner --file ruche-bundle/instances/NAME/volumes.tar --directory DIR
  (as root; add the first host uid of the service's user namespace to each owner, or unpack inside
  `podman unshare` so that the owners map into your rootless user's range.)

The full description of the format: docs/bundle-format.md in ruche's sources.
"""


# -- names ---------------------------------------------------------------------------------------------------------


def data_name_problem(name: str) -> str | None:
    """Why ``name`` (a path under ruche-bundle/) cannot name an instance's data member; None when it can."""
    parts = name.split("/")
    if name.startswith("/"):
        return f"{name!r} is absolute"
    if len(parts) < 3 or parts[0] != "instances":
        return f"{name!r} is not under instances/NAME/"
    if not re.match(INSTANCE_NAME, parts[1]):
        return f"{name!r}: {parts[1]!r} is not an instance name (lowercase letters, digits and dashes)"
    if any(part in ("", ".", "..") for part in parts) or "\0" in name or "\\" in name:
        return f"{name!r} has an empty, '.' or '..' part, a backslash or a NUL"
    return None


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member of the tar is refused before anything else is looked at: its name or its type."""
    name = member.name
    if name.startswith("/"):
        return f"member {name!r} has an absolute name"
    if ".." in name.split("/"):
        return f"member {name!r} has a '..' in its name"
    if name != ROOT and not name.startswith(ROOT + "/"):
        return f"member {name!r} is outside {ROOT}/"
    if name == ROOT and not member.isdir():
        return f"member {name!r} is not a directory"
    if any(part in ("", ".") for part in name.split("/")) or "\0" in name:
        return f"member {name!r} has an empty or '.' part in its name"
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        return f"member {name!r} is a {kind} link (to {member.linkname!r}); a bundle holds only files and directories"
    if member.isdev() or member.isfifo():
        return f"member {name!r} is a device or a FIFO; a bundle holds only files and directories"
    if not (member.type in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.isdir()):
        return f"member {name!r} has tar type {member.type!r}; a bundle holds only files and directories"
    return None


def _relative(name: str) -> str:
    return name[len(ROOT) + 1 :]


def _location(location: tuple[Any, ...]) -> str:
    """A pydantic error's location as ``instances[0].data``."""
    parts: list[str] = []
    for item in location:
        parts.append(f"[{item}]" if isinstance(item, int) else ("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _schema_problems(error: ValidationError) -> list[str]:
    lines = []
    for problem in error.errors(include_url=False):
        message = "unknown field" if problem["type"] == "extra_forbidden" else problem["msg"]
        lines.append(f"manifest.json: at '{_location(problem['loc'])}': {message}")
    return lines


def manifest_problems(manifest: BundleManifest) -> list[str]:
    """What the schema cannot say: the members' names are README.txt or under instances/NAME/ of an instance the
    manifest lists, and no two instances share a name."""
    problems = []
    names = [instance.name for instance in manifest.instances]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"manifest.json: two instances are named {name!r}")
    for member in manifest.members:
        if member == README:
            continue
        problem = data_name_problem(member)
        if problem:
            problems.append(f"manifest.json: member {problem}")
        elif member.split("/")[1] not in names:
            problems.append(f"manifest.json: member {member!r} belongs to no instance of the manifest")
    return problems


def _refusal(path: Path | str, problems: list[str], kind: type[InvalidInput] = InvalidInput) -> InvalidInput:
    """The refusal of the bundle at ``path``: one line per problem, each naming the file."""
    shown = problems[:SHOWN_PROBLEMS]
    if len(problems) > SHOWN_PROBLEMS:
        shown.append(f"... and {len(problems) - SHOWN_PROBLEMS} more problems")
    hint = "ask the sending collective for a new bundle"
    if kind is UntrustedSignature:
        hint = ("check the sender's key with them (`ruche key show` there), then give it with --trust; "
                "if it is the one you trust, the bundle was changed after it was signed: ask for a new one")  # fmt: skip
    return kind("\n".join(f"{path}: {line}" for line in shown), hint=hint)


# -- streams -------------------------------------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """A file object whose bytes are hashed (and counted) as they are read."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _HashingWriter(io.RawIOBase):
    """A file object whose bytes are hashed (and counted) as they are written."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        written = self.raw.write(data)
        view = memoryview(data)[: len(data) if written is None else written]
        self.digest.update(view)
        self.size += len(view)
        return len(view)

    def flush(self) -> None:
        self.raw.flush()


# -- writing -------------------------------------------------------------------------------------------------------


class BundleWriter:
    """Write a bundle: README.txt first (on entering), each :meth:`add`, then :meth:`finish` the manifest and its
    signature. Over a path: written to PATH.partial (mode 0600), renamed to PATH once finished, removed on any
    failure or when left without :meth:`finish`; over a binary file object: written there, never closed.

        with BundleWriter(path) as bundle:
            bundle.add("instances/wiki/volumes.tar", handle, size)
            manifest = bundle.finish(fields, key)
        bundle.sha256, bundle.size   # of the whole file
    """

    def __init__(self, target: Path | str | BinaryIO) -> None:
        self._path = Path(target) if isinstance(target, str | os.PathLike) else None
        self._target = None if self._path is not None else target
        self._file: BinaryIO | None = None
        self._members: dict[str, MemberDigest] = {}
        self._finished = False
        self._mtime = int(time.time())
        self.sha256: str | None = None
        self.size: int | None = None

    @property
    def partial(self) -> Path | None:
        return None if self._path is None else self._path.with_name(self._path.name + ".partial")

    def __enter__(self) -> BundleWriter:
        if self._path is not None:
            if self._path.exists():
                raise InvalidInput(f"{self._path} exists already", hint="choose another file, or remove it")
            descriptor = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(descriptor, 0o600)  # a partial file left by an earlier run keeps its mode otherwise
            self._file = os.fdopen(descriptor, "wb")
            target = self._file
        else:
            target = self._target
        try:
            self._hashed = _HashingWriter(target)
            self._gzip = gzip.GzipFile(filename="", mode="wb", compresslevel=COMPRESSLEVEL, fileobj=self._hashed,
                                       mtime=0)  # fmt: skip
            # a stream ("w|"): nothing is sought back; bufsize and copybufsize make tarfile move 1 MiB blocks
            self._tar = tarfile.open(fileobj=self._gzip, mode="w|", format=tarfile.PAX_FORMAT, bufsize=BLOCK,
                                     copybufsize=BLOCK)  # fmt: skip
            self._write(README, io.BytesIO(README_TEXT.encode()), len(README_TEXT.encode()))
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None or not self._finished:
            self._discard()
            if kind is None:
                raise RuntimeError("a bundle was left without finish(): it was not written")
            return
        if self._file is not None:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self.partial.rename(self._path)
            except BaseException:
                self._discard()
                raise

    def _discard(self) -> None:
        for closing in (getattr(self, "_tar", None), getattr(self, "_gzip", None)):
            with contextlib.suppress(Exception):  # the failure being reported matters, not this close's
                closing and closing.close()
        if self._file is not None:
            self._file.close()
            self.partial.unlink(missing_ok=True)

    def add(self, name: str, fileobj: BinaryIO, size: int) -> MemberDigest:
        """Write ``size`` bytes read from ``fileobj`` (from where it stands, in 1 MiB blocks) as the member ``name``
        (``instances/NAME/FILE``); give its digest. Raises InvalidInput for a bad or repeated name, OperationFailed
        when ``fileobj`` holds fewer or more than ``size`` bytes (a file that changed while it was read)."""
        self._check_open()
        if not isinstance(size, int) or size < 0:
            raise InvalidInput(f"bundle member {name!r}: its size must be a whole number of bytes, not {size!r}")
        problem = data_name_problem(name)
        if problem:
            raise InvalidInput(f"bundle member {problem}")
        if name in self._members:
            raise InvalidInput(f"bundle member {name!r} is added twice")
        return self._write(name, fileobj, size)

    def add_bytes(self, name: str, data: bytes) -> MemberDigest:
        """:meth:`add` for content already in memory (a manifest, a small dump)."""
        return self.add(name, io.BytesIO(data), len(data))

    def _write(self, name: str, fileobj: BinaryIO, size: int) -> MemberDigest:
        info = tarfile.TarInfo(f"{ROOT}/{name}")
        info.size, info.mode, info.mtime = size, 0o644, self._mtime
        reader = _HashingReader(fileobj)
        try:
            self._tar.addfile(info, reader)
        except OSError as error:
            if "unexpected end of data" in str(error):  # tarfile's words when the source gives less than size
                raise OperationFailed(f"{name}: its source ended after {reader.size} of {size} bytes") from None
            raise
        if fileobj.read(1):
            raise OperationFailed(f"{name}: its source holds more than the {size} bytes announced (did it change?)")
        digest = MemberDigest(sha256=reader.digest.hexdigest(), size=size)
        self._members[name] = digest
        return digest

    def _check_open(self) -> None:
        if getattr(self, "_tar", None) is None:
            raise RuntimeError("a BundleWriter is used inside its `with` block")
        if self._finished:
            raise RuntimeError("the bundle is finished already")

    def finish(self, fields: dict[str, Any], key: SigningKey) -> BundleManifest:
        """Write manifest.json (``fields`` with ``format``, ``key_id`` and ``members`` filled in; ``created_at`` now
        unless given) and manifest.sig, and close the archive; give the manifest. ``sha256`` and ``size`` then name
        the whole file. Raises InvalidInput naming each field of ``fields`` the schema refuses."""
        self._check_open()
        given = set(fields) & {"format", "key_id", "members"}
        if given:
            raise InvalidInput(f"the bundle's writer fills {', '.join(sorted(given))} itself")
        document = {
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(self._mtime)),
            **fields,
            "format": FORMAT,
            "key_id": key.public.key_id,
            "members": {name: digest.model_dump() for name, digest in self._members.items()},
        }
        try:
            manifest = BundleManifest.model_validate(document)
        except ValidationError as error:
            raise InvalidInput("\n".join(_schema_problems(error))) from None
        problems = manifest_problems(manifest)
        if problems:
            raise InvalidInput("\n".join(problems))
        data = manifest_json(manifest)
        signature = signature_json(key, data)
        self._write(MANIFEST, io.BytesIO(data), len(data))
        self._write(SIGNATURE, io.BytesIO(signature), len(signature))
        self._tar.close()
        self._gzip.close()
        self._hashed.flush()
        self._finished = True
        self.sha256, self.size = self._hashed.digest.hexdigest(), self._hashed.size
        return manifest


def manifest_json(manifest: BundleManifest) -> bytes:
    """manifest.json's bytes: sorted keys, UTF-8, one field a line (readable, and the same bytes every time)."""
    return (json.dumps(manifest.model_dump(mode="json"), indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def signature_json(key: SigningKey, data: bytes) -> bytes:
    """manifest.sig's bytes: the signature of ``data`` with the key that made it, named."""
    document = {"format": FORMAT, "key_id": key.public.key_id, "public_key": key.public.text,
                "signature": base64.b64encode(key.sign(data)).decode("ascii")}  # fmt: skip
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()


# -- reading -------------------------------------------------------------------------------------------------------


@dataclass
class _Scanned:
    """What one pass over a bundle found."""

    order: list[str]  # every member's name, in the tar's order
    files: dict[str, MemberDigest]  # regular files under ruche-bundle/, by their relative name
    manifest: bytes | None = None
    signature: bytes | None = None
    sha256: str = ""
    size: int = 0


def _open_stream(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as error:
        raise InvalidInput(f"{path}: cannot be read ({error.strerror})") from None


def _read_error(error: BaseException) -> str:
    """What a failure of reading the gzip tar stream means, for a human."""
    if isinstance(error, EOFError):
        return "the file ends before its compressed data does: it is truncated"
    if isinstance(error, gzip.BadGzipFile):
        return f"not a gzip-compressed file, or its compressed data is damaged ({error})"
    if isinstance(error, zlib.error):
        return f"its compressed data is damaged ({error})"
    if isinstance(error, tarfile.TarError):
        return f"not a complete tar archive inside its compression ({error})"
    return f"cannot be read ({error})"


READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, tarfile.TarError, OSError)


def _members(raw: _HashingReader) -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None, list[str]]]:
    """Each member of the gzip tar read from ``raw``, with a file object over its content (regular files the checks
    accept only) and the problems of its name or type; then the check that only zeros follow the tar's end (tarfile
    stops silently at a damaged header) and the file's end is reached (gzip checks its CRC there). Reading errors
    propagate (READ_ERRORS)."""
    with gzip.GzipFile(filename="", mode="rb", fileobj=raw) as unzipped:
        archive = tarfile.open(fileobj=unzipped, mode="r|", bufsize=BLOCK)
        for member in archive:
            problem = _member_problem(member)
            content = archive.extractfile(member) if problem is None and member.isfile() else None
            yield member, content, [problem] if problem else []
        while block := archive.fileobj.read(BLOCK):
            if block.count(0) != len(block):
                raise tarfile.ReadError("data follows the tar's end (a damaged member header?)")
        while raw.read(BLOCK):  # whatever gzip left unread, for the whole file's digest
            pass


def _copy_hashing(content: BinaryIO, limit: int | None = None) -> tuple[MemberDigest, bytes | None]:
    """Read ``content`` to its end in 1 MiB blocks; give its digest and, when at most ``limit`` bytes, its bytes."""
    digest, size, kept = hashlib.sha256(), 0, []
    while block := content.read(BLOCK):
        digest.update(block)
        size += len(block)
        if limit is not None and size <= limit:
            kept.append(block)
    held = b"".join(kept) if limit is not None and size <= limit else None
    return MemberDigest(sha256=digest.hexdigest(), size=size), held


def _scan(path: Path, problems: list[str]) -> _Scanned | None:
    """One pass: every member's name and type checked and its content hashed. Problems are added to ``problems``;
    None when the file could not be read to its end (it is then no bundle at all)."""
    scanned = _Scanned(order=[], files={})
    seen: set[str] = set()
    with _open_stream(path) as handle:
        raw = _HashingReader(handle)
        try:
            for member, content, member_problems in _members(raw):
                problems.extend(member_problems)
                if member.name in seen:
                    problems.append(f"member {member.name!r} appears twice")
                seen.add(member.name)
                scanned.order.append(member.name)
                if content is None:
                    continue
                name = _relative(member.name)
                limit = {MANIFEST: MANIFEST_LIMIT, SIGNATURE: SIGNATURE_LIMIT}.get(name)
                digest, held = _copy_hashing(content, limit)
                if limit is not None and held is None:
                    problems.append(f"{name} is {digest.size} bytes, more than the {limit} it may have")
                if name == MANIFEST:
                    scanned.manifest = held
                elif name == SIGNATURE:
                    scanned.signature = held
                scanned.files.setdefault(name, digest)
        except READ_ERRORS as error:
            problems.append("the file is empty" if raw.size == 0 else _read_error(error))
            return None
    scanned.sha256, scanned.size = raw.digest.hexdigest(), raw.size
    return scanned


def _signer(scanned: _Scanned, trusted: list[PublicKey]) -> tuple[PublicKey | None, str | None]:
    """The trusted key that signed manifest.json, or why none did."""
    try:
        document = json.loads(scanned.signature.decode("utf-8"))
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            return None, f"{SIGNATURE} is not a format {FORMAT} signature"
        signature = base64.b64decode(document["signature"], validate=True)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error):
        return None, f"{SIGNATURE} is not a JSON document with a base64 'signature'"
    try:
        return signer_of(scanned.manifest, signature, trusted), None
    except UntrustedSignature as refusal:
        named = document.get("public_key")
        try:
            claimed = PublicKey.from_text(named) if isinstance(named, str) else None
        except InvalidInput:
            claimed = None
        if claimed is not None and claimed not in trusted:
            names = ", ".join(k.key_id for k in trusted) or "none"
            return None, f"signed by key {claimed.key_id} ({claimed.text}), which is not trusted (trusted: {names})"
        if claimed is not None:
            return None, f"{MANIFEST} was changed after key {claimed.key_id} signed it (the signature does not match)"
        return None, refusal.message


def verify_bundle(path: Path | str, trusted: Iterable[PublicKey]) -> VerifiedBundle:
    """Check the bundle at ``path`` in one streaming pass: its structure, the signature of its manifest by one of
    ``trusted`` (before anything the manifest says is believed), the manifest's schema, and every member's SHA-256
    and size against it. Raises InvalidInput (UntrustedSignature when the signature is the problem) naming each
    problem on its own line."""
    path = Path(path)
    trusted = list(trusted)
    problems: list[str] = []
    scanned = _scan(path, problems)
    if scanned is None:
        raise _refusal(path, problems)
    if scanned.order and not any(name == ROOT or name.startswith(ROOT + "/") for name in scanned.order):
        raise _refusal(path, [f"not a ruche bundle: none of its members is under {ROOT}/ (is it a `ruche export` "
                              "archive? those are read by hand, not imported)"])  # fmt: skip
    last_two = [f"{ROOT}/{MANIFEST}", f"{ROOT}/{SIGNATURE}"]
    for name in (MANIFEST, SIGNATURE):
        if name not in scanned.files:
            problems.append(f"{name} is missing")
    if scanned.manifest is not None and scanned.signature is not None and scanned.order[-2:] != last_two:
        problems.append(f"{MANIFEST} and {SIGNATURE} are not the last two members")
    if scanned.manifest is None or scanned.signature is None:
        raise _refusal(path, problems)
    signer, refusal = _signer(scanned, trusted)
    if signer is None:
        raise _refusal(path, [*problems, refusal], UntrustedSignature)
    try:
        document = json.loads(scanned.manifest.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError both are
        raise _refusal(path, [*problems, f"{MANIFEST} is not JSON in UTF-8 ({error})"]) from None
    if isinstance(document, dict) and document.get("format") != FORMAT:
        raise _refusal(path, [*problems, f"{MANIFEST}: format {document.get('format')!r}; this ruche reads format "
                                         f"{FORMAT} only (a newer ruche made it?)"])  # fmt: skip
    try:
        manifest = BundleManifest.model_validate(document)
    except ValidationError as error:
        raise _refusal(path, [*problems, *_schema_problems(error)]) from None
    problems.extend(manifest_problems(manifest))
    if manifest.key_id != signer.key_id:
        problems.append(f"{MANIFEST} names key {manifest.key_id}, but key {signer.key_id} signed it")
    for relative, found in scanned.files.items():
        if relative in (MANIFEST, SIGNATURE):
            continue
        listed = manifest.members.get(relative)
        if listed is None:
            problems.append(f"member {relative!r} is not in the manifest")
        elif found != listed:
            problems.append(f"member {relative!r} differs from the manifest: {_difference(found, listed)}")
    for relative in manifest.members:
        if relative not in scanned.files:
            problems.append(f"member {relative!r} is in the manifest but not in the bundle")
    if problems:
        raise _refusal(path, problems)
    return VerifiedBundle(path=path, manifest=manifest, manifest_bytes=scanned.manifest, signer=signer,
                          sha256=scanned.sha256, size=scanned.size)  # fmt: skip


def _difference(found: MemberDigest, listed: MemberDigest) -> str:
    if found.size != listed.size:
        return f"{found.size} bytes, {listed.size} listed"
    return f"SHA-256 {found.sha256}, {listed.sha256} listed"


class _CheckedMember(io.RawIOBase):
    """A data member's content for the importer, hashed as it is read."""

    def __init__(self, content: BinaryIO) -> None:
        self._reader = _HashingReader(content)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._reader.read(size)

    def readinto(self, buffer) -> int:
        return self._reader.readinto(buffer)

    def finish(self) -> MemberDigest:
        while self._reader.read(BLOCK):
            pass
        return MemberDigest(sha256=self._reader.digest.hexdigest(), size=self._reader.size)


def read_members(path: Path | str, verified: VerifiedBundle) -> Iterator[tuple[str, BinaryIO]]:
    """Each data member of the bundle ``verified`` checked, in the bundle's order: (``instances/NAME/FILE``, a file
    object over its content, to read in blocks), re-hashed as it goes. A member is checked against the manifest when
    the next one is asked for (what the importer left unread is read then), and the whole file when the loop ends:
    InvalidInput then if the file changed since :func:`verify_bundle`. Act on a member's data only once it passed
    (e.g. unpack into a staging place, used after the loop ends)."""
    path = Path(path)
    expected = verified.manifest.members
    with _open_stream(path) as handle:
        raw = _HashingReader(handle)
        try:
            for member, content, problems in _members(raw):
                relative = _relative(member.name)
                if problems:
                    raise _refusal(path, ["it changed since it was verified", *problems])
                if content is None:
                    continue
                if relative in (MANIFEST, SIGNATURE):
                    digest, held = _copy_hashing(content, MANIFEST_LIMIT)
                    if relative == MANIFEST and held != verified.manifest_bytes:
                        raise _refusal(path, [f"it changed since it was verified: {MANIFEST} differs"])
                    continue
                if relative not in expected:
                    raise _refusal(path, [f"it changed since it was verified: member {relative!r} appeared"])
                checked = _CheckedMember(content)
                if relative != README:
                    yield relative, checked
                found = checked.finish()
                if found != expected[relative]:
                    raise _refusal(path, [f"it changed since it was verified: member {relative!r} differs "
                                          f"({_difference(found, expected[relative])})"])  # fmt: skip
        except READ_ERRORS as error:
            raise _refusal(path, [f"it changed since it was verified: {_read_error(error)}"]) from None
    if raw.digest.hexdigest() != verified.sha256:
        raise _refusal(path, ["it changed since it was verified (its SHA-256 differs)"])
