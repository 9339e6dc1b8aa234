"""The bundle format's names and rules: its constants, the manifest's schema (pydantic), what a member may be
called, the problems a manifest can have, and the exact bytes of manifest.json and manifest.sig."""

from __future__ import annotations

import base64
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator import domains
from orchestrator.errors import InvalidInput
from orchestrator.signing import PublicKey, SigningKey, UntrustedSignature

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
KEY_ID = r"^[0-9a-f]{32}$"
# A tar header's own data (a GNU long name or link, a pax extended header) is read whole into memory by tarfile:
# a bundle's names are short and its members carry no extended attributes, so 1 MiB is far more than enough.
HEADER_LIMIT = 1 << 20
# extended headers before one member (pax, then GNU long name and long link at most: a few), each read recursively
HEADER_CHAIN = 8
# a member's name shown in a refusal; longer names are refused (a bundle's own are below 100 characters)
NAME_LIMIT = 1024
# members of one bundle (three or four an instance): tarfile's work and the reader's own lists stay bounded
MEMBER_LIMIT = 10_000
# C0 and C1 control characters and DEL: what a terminal may obey instead of print (escape sequences)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# -- free text -----------------------------------------------------------------------------------------------------


def _printable(value: str) -> str:
    """Text from a bundle is shown in terminals and put into suggested commands: no control character in it."""
    found = CONTROL.search(value)
    if found:
        raise ValueError(f"holds the control character {found.group()!r} (at {found.start()})")
    return value


def _host_name(value: str) -> str:
    """A domain as ruche records one (orchestrator.domains.normalise): IDNA A-labels, lowercase, no trailing dot."""
    try:
        normal = domains.normalise(value)
    except InvalidInput as error:
        raise ValueError(error.message) from None
    if normal != value:
        raise ValueError(f"is not a host name as ruche records one (that would be {normal!r})")
    return value


Text = Annotated[str, AfterValidator(_printable)]
HostName = Annotated[str, AfterValidator(_host_name)]


def _control_in(value: Any) -> str | None:
    """The first string (key or value) in the JSON ``value`` that holds a control character, shown; None if none.
    Iterative: the document's depth is whatever the sender made it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if CONTROL.search(item):
                return repr(item[:80])
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


class MemberDigest(BaseModel):
    """What one member of the bundle holds, to check it by."""

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=SHA256_HEX, description="SHA-256 of the member's content (64 lowercase hex digits).")
    size: int = Field(ge=0, description="The member's size in bytes.")


class BundleAssociation(BaseModel):
    """The association the bundle is of, as the sending collective knows it."""

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=SLUG, max_length=32, description="Its short name (lowercase letters, digits, dashes).")
    name: Text = Field(min_length=1, max_length=200, description="Its full name.")
    email: Text = Field(max_length=320, description="Its contact address.")
    offer: Text | None = Field(description="The name of its offer at the sender (None: it had none).")
    offer_figures: dict[Text, int | float | None] = Field(
        description="The offer's quotas at the sender (e.g. max_instances, memory_mb, disk_gb), for the receiver "
        "to choose an offer with room enough; None: no limit."
    )


class BundleInstance(BaseModel):
    """One instance of the association and what its data directory instances/NAME/ holds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=INSTANCE_NAME, description="Its name in the association, and its directory's.")
    service: Text = Field(min_length=1, description="The catalogue's service id (e.g. miniflux).")
    version: Text = Field(min_length=1, description="The service's version it ran.")
    size: Text = Field(min_length=1, description="Its size in the catalogue (e.g. small).")
    parameters: dict[Text, Text] = Field(
        description="Its parameters' values; non-secret ones only (any printable text, no control character)."
    )
    domains: list[HostName] = Field(
        description="The domains it answered on, its main one first: host names as ruche records them (IDNA "
        "A-labels, lowercase letters, digits and hyphens, at least two labels)."
    )
    database: Literal["postgresql", "mariadb"] | None = Field(
        description="The engine of its database dump instances/NAME/database.sql (None: no database)."
    )
    data: dict[str, Any] = Field(
        description="What the data held when exported, as the server's manifest said (tables' row counts, files' "
        "counts): the importer compares it with what it restored; no control character in any of its strings."
    )

    @model_validator(mode="after")
    def _data_printable(self) -> BundleInstance:
        shown = _control_in(self.data)
        if shown:
            raise ValueError(f"data holds a control character in {shown}")
        return self


class SealedBox(BaseModel):
    """Bytes only one collective opens: X25519 with a fresh key, HKDF-SHA256, ChaCha20-Poly1305 (signing.py)."""

    model_config = ConfigDict(extra="forbid")

    ephemeral: str = Field(min_length=1, description="The sender's one-time X25519 public key (base64).")
    nonce: str = Field(min_length=1, description="ChaCha20-Poly1305's nonce (base64, 12 bytes).")
    ciphertext: str = Field(min_length=1, description="The sealed bytes with their tag (base64).")


class BundleSecrets(BaseModel):
    """The instances' application secrets, sealed for the receiving collective's key (`export --to KEY`)."""

    model_config = ConfigDict(extra="forbid")

    sealed_for: str = Field(pattern=KEY_ID, description="The id of the key they are sealed for.")
    box: SealedBox = Field(
        description="JSON {instance name: {secret name: value}} sealed for that key (database passwords left out)."
    )


class BundleManifest(BaseModel):
    """manifest.json: what the bundle holds, signed by the sending collective."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = Field(description="The bundle format's version.")
    created_at: Text = Field(min_length=1, description="When the bundle was made (ISO 8601, UTC).")
    ruche_version: Text = Field(min_length=1, description="The version of ruche that made it.")
    collective: Text = Field(min_length=1, description="The name of the sending collective.")
    key_id: str = Field(
        pattern=KEY_ID,
        description="The id of the key that signs it (the first 32 hex digits of its SHA-256).",
    )
    association: BundleAssociation = Field(description="The association.")
    catalogue: dict[Text, Text] = Field(description="Service id -> the version the sender's catalogue runs.")
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


class BoundedTarInfo(tarfile.TarInfo):
    """A tar header read with bounds, for ``tarfile.open(..., tarinfo=BoundedTarInfo)`` on anything a bundle brings
    (the bundle itself, and each instance's volumes.tar): read before any signature is checked, its headers are
    the sender's (or a forger's) to make.

    tarfile reads a GNU long name or long link, or a pax extended header, into memory whole, whatever size its
    header declares, and follows a chain of them recursively: refused above HEADER_LIMIT bytes (checked before the
    data is read), above HEADER_CHAIN of them before one member, and global pax headers above HEADER_LIMIT bytes in
    all (tarfile keeps them for the whole archive). A sparse member (GNU type 'S', or GNU.sparse.* keys in a pax
    header over a plain file) is refused too: tarfile would give its declared size of zeros from a few bytes of
    file. Each refusal is a tarfile.HeaderError whose message starts with REFUSED_HEADER (tarfile turns one
    raised under an extended header into a ReadError with the same message)."""

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise tarfile.HeaderError(f"{REFUSED_HEADER}a GNU sparse member; a bundle holds no sparse file")
        if self.type not in EXTENDED_HEADERS:
            return super()._proc_member(archive)
        kind = "GNU long name or link" if self.type in GNU_LONG else "pax extended header"
        if self.size > HEADER_LIMIT:
            raise tarfile.HeaderError(f"{REFUSED_HEADER}a {kind} of {self.size} bytes, more than {HEADER_LIMIT}")
        chain = getattr(archive, "_ruche_header_chain", 0)
        if chain >= HEADER_CHAIN:
            raise tarfile.HeaderError(f"{REFUSED_HEADER}more than {HEADER_CHAIN} extended headers before one member")
        if self.type == tarfile.XGLTYPE:
            globals_read = getattr(archive, "_ruche_global_headers", 0) + self.size
            if globals_read > HEADER_LIMIT:
                raise tarfile.HeaderError(f"{REFUSED_HEADER}global pax headers of more than {HEADER_LIMIT} bytes")
            archive._ruche_global_headers = globals_read
        archive._ruche_header_chain = chain + 1
        try:
            return super()._proc_member(archive)
        finally:
            archive._ruche_header_chain = chain

    def _proc_gnusparse_00(self, *_args) -> None:
        raise tarfile.HeaderError(f"{REFUSED_HEADER}a pax sparse member (GNU.sparse.*); a bundle holds no sparse file")

    _proc_gnusparse_01 = _proc_gnusparse_10 = _proc_gnusparse_00

    def _apply_pax_info(self, pax_headers: dict, encoding: str, errors: str) -> None:
        if any(keyword.startswith("GNU.sparse.") for keyword in pax_headers):
            self._proc_gnusparse_00()
        super()._apply_pax_info(pax_headers, encoding, errors)


REFUSED_HEADER = "tar header refused: "
GNU_LONG = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
EXTENDED_HEADERS = (*GNU_LONG, tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member of the tar is refused before anything else is looked at: its name or its type."""
    name = member.name
    if len(name) > NAME_LIMIT:
        return f"member {name[:80]!r}... has a name of {len(name)} characters, more than {NAME_LIMIT}"
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
    if member.sparse is not None:  # BoundedTarInfo refuses them first; any other TarInfo is checked here
        return f"member {name!r} is a sparse file; a bundle holds only plain files and directories"
    return None


def member_path(name: str) -> str:
    return name[len(ROOT) + 1 :]


def _location(location: tuple[Any, ...]) -> str:
    """A pydantic error's location as ``instances[0].data``."""
    parts: list[str] = []
    for item in location:
        parts.append(f"[{item}]" if isinstance(item, int) else ("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def schema_problems(error: ValidationError) -> list[str]:
    lines = []
    for problem in error.errors(include_url=False):
        message = "unknown field" if problem["type"] == "extra_forbidden" else problem["msg"]
        lines.append(f"manifest.json: at '{_location(problem['loc'])}': {message}")
    return lines


INSTANCE_FILES = ("manifest.json", "volumes.tar")  # every instance's; database.sql too when it has a database
DATABASE_FILE = "database.sql"


def manifest_problems(manifest: BundleManifest) -> list[str]:
    """What the schema cannot say: the members' names are README.txt or under instances/NAME/ of an instance the
    manifest lists, no two instances share a name, and each instance has the members its data needs:
    ``instances/NAME/manifest.json`` and ``instances/NAME/volumes.tar`` always, ``instances/NAME/database.sql``
    exactly when its ``database`` is not None. Other files in an instance's directory are allowed (a later ruche
    may add some; docs/bundle-format.md says so): listed in the manifest, they are checked like the others."""
    problems = []
    names = [instance.name for instance in manifest.instances]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"manifest.json: two instances are named {name!r}")
    for instance in manifest.instances:
        needed = [*INSTANCE_FILES, *([DATABASE_FILE] if instance.database is not None else [])]
        for file in needed:
            if f"instances/{instance.name}/{file}" not in manifest.members:
                problems.append(f"manifest.json: instance {instance.name!r} has no member instances/{instance.name}/"
                                f"{file}")  # fmt: skip
        if instance.database is None and f"instances/{instance.name}/{DATABASE_FILE}" in manifest.members:
            problems.append(f"manifest.json: instance {instance.name!r} has no database, but a member "
                            f"instances/{instance.name}/{DATABASE_FILE}")  # fmt: skip
    for member in manifest.members:
        if member == README:
            continue
        problem = data_name_problem(member)
        if problem:
            problems.append(f"manifest.json: member {problem}")
        elif member.split("/")[1] not in names:
            problems.append(f"manifest.json: member {member!r} belongs to no instance of the manifest")
    return problems


def refusal(path: Path | str, problems: list[str], kind: type[InvalidInput] = InvalidInput) -> InvalidInput:
    """The refusal of the bundle at ``path``: one line per problem, each naming the file."""
    shown = problems[:SHOWN_PROBLEMS]
    if len(problems) > SHOWN_PROBLEMS:
        shown.append(f"... and {len(problems) - SHOWN_PROBLEMS} more problems")
    hint = "ask the sending collective for a new bundle"
    if kind is UntrustedSignature:
        hint = ("check the sender's key with them (`ruche key show` there), then give it with --trust; "
                "if it is the one you trust, the bundle was changed after it was signed: ask for a new one")  # fmt: skip
    return kind("\n".join(f"{path}: {line}" for line in shown), hint=hint)


def manifest_json(manifest: BundleManifest) -> bytes:
    """manifest.json's bytes: sorted keys, UTF-8, one field a line (readable, and the same bytes every time)."""
    return (json.dumps(manifest.model_dump(mode="json"), indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def signature_json(key: SigningKey, data: bytes) -> bytes:
    """manifest.sig's bytes: the signature of ``data`` with the key that made it, named."""
    document = {"format": FORMAT, "key_id": key.public.key_id, "public_key": key.public.text,
                "signature": base64.b64encode(key.sign(data)).decode("ascii")}  # fmt: skip
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()
