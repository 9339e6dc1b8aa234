"""Reading a bundle: one streaming pass that checks it whole (structure, signature, schema, every member's
SHA-256), then the data members given to an importer, checked again as they are read."""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from orchestrator.bundles.format import (
    BLOCK,
    FORMAT,
    MANIFEST,
    MANIFEST_LIMIT,
    MEMBER_LIMIT,
    README,
    REFUSED_HEADER,
    ROOT,
    SIGNATURE,
    SIGNATURE_LIMIT,
    BoundedTarInfo,
    BundleManifest,
    MemberDigest,
    VerifiedBundle,
    manifest_problems,
    member_path,
    member_problem,
    refusal,
    schema_problems,
)
from orchestrator.bundles.streams import HashingReader
from orchestrator.errors import InvalidInput
from orchestrator.signing import PublicKey, UntrustedSignature, signer_of

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
    if isinstance(error, tarfile.TarError) and REFUSED_HEADER in str(error):
        return str(error)[str(error).index(REFUSED_HEADER) :]
    if isinstance(error, tarfile.TarError):
        return f"not a complete tar archive inside its compression ({error})"
    return f"cannot be read ({error})"


READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, tarfile.TarError, OSError)


def _members(raw: HashingReader) -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None, list[str]]]:
    """Each member of the gzip tar read from ``raw``, with a file object over its content (regular files the checks
    accept only) and the problems of its name or type; then the check that only zeros follow the tar's end (tarfile
    stops silently at a damaged header) and the file's end is reached (gzip checks its CRC there). Reading errors
    propagate (READ_ERRORS); so do headers BoundedTarInfo refuses, and more than MEMBER_LIMIT members.

    Every member's data is read in blocks, never whole (but for manifest.json and manifest.sig, within their
    limits), so the work is bounded by what the file decompresses to. The ratio is not capped: deflate's own
    maximum (about 1032 to 1) is reached by legitimate zero-filled files (preallocated database files), and with
    sparse members refused nothing makes more bytes than that from the file."""
    with gzip.GzipFile(filename="", mode="rb", fileobj=raw) as unzipped:
        archive = tarfile.open(fileobj=unzipped, mode="r|", bufsize=BLOCK, tarinfo=BoundedTarInfo)
        for count, member in enumerate(archive, start=1):
            if count > MEMBER_LIMIT:
                raise tarfile.ReadError(f"{REFUSED_HEADER}more than {MEMBER_LIMIT} members")
            archive.members.clear()  # tarfile keeps every member read otherwise, even in a stream
            problem = member_problem(member)
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
        raw = HashingReader(handle)
        try:
            for member, content, member_problems in _members(raw):
                problems.extend(member_problems)
                if member.name in seen:
                    problems.append(f"member {member.name!r} appears twice")
                seen.add(member.name)
                scanned.order.append(member.name)
                if content is None:
                    continue
                name = member_path(member.name)
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
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error, RecursionError):
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
        raise refusal(path, problems)
    if scanned.order and not any(name == ROOT or name.startswith(ROOT + "/") for name in scanned.order):
        raise refusal(path, [f"not a ruche bundle: none of its members is under {ROOT}/ (is it a `ruche export` "
                              "archive? those are read by hand, not imported)"])  # fmt: skip
    last_two = [f"{ROOT}/{MANIFEST}", f"{ROOT}/{SIGNATURE}"]
    for name in (MANIFEST, SIGNATURE):
        if name not in scanned.files:
            problems.append(f"{name} is missing")
    if scanned.manifest is not None and scanned.signature is not None and scanned.order[-2:] != last_two:
        problems.append(f"{MANIFEST} and {SIGNATURE} are not the last two members")
    if scanned.manifest is None or scanned.signature is None:
        raise refusal(path, problems)
    signer, untrusted = _signer(scanned, trusted)
    if signer is None:
        raise refusal(path, [*problems, untrusted], UntrustedSignature)
    try:
        document = json.loads(scanned.manifest.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError both are
        raise refusal(path, [*problems, f"{MANIFEST} is not JSON in UTF-8 ({error})"]) from None
    except RecursionError:  # a signed manifest still: the sender's ruche never nests this deep
        raise refusal(path, [*problems, f"{MANIFEST} nests arrays or objects too deeply to be read"]) from None
    if isinstance(document, dict) and document.get("format") != FORMAT:
        raise refusal(path, [*problems, f"{MANIFEST}: format {document.get('format')!r}; this ruche reads format "
                                         f"{FORMAT} only (a newer ruche made it?)"])  # fmt: skip
    try:
        manifest = BundleManifest.model_validate(document)
    except ValidationError as error:
        raise refusal(path, [*problems, *schema_problems(error)]) from None
    except RecursionError:
        raise refusal(path, [*problems, f"{MANIFEST} nests arrays or objects too deeply to be read"]) from None
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
        raise refusal(path, problems)
    return VerifiedBundle(path=path, manifest=manifest, manifest_bytes=scanned.manifest, signer=signer,
                          sha256=scanned.sha256, size=scanned.size)  # fmt: skip


def _difference(found: MemberDigest, listed: MemberDigest) -> str:
    if found.size != listed.size:
        return f"{found.size} bytes, {listed.size} listed"
    return f"SHA-256 {found.sha256}, {listed.sha256} listed"


class _CheckedMember(io.RawIOBase):
    """A data member's content for the importer, hashed as it is read."""

    def __init__(self, content: BinaryIO) -> None:
        self._reader = HashingReader(content)

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
        raw = HashingReader(handle)
        try:
            for member, content, problems in _members(raw):
                relative = member_path(member.name)
                if problems:
                    raise refusal(path, ["it changed since it was verified", *problems])
                if content is None:
                    continue
                if relative in (MANIFEST, SIGNATURE):
                    digest, held = _copy_hashing(content, MANIFEST_LIMIT)
                    if relative == MANIFEST and held != verified.manifest_bytes:
                        raise refusal(path, [f"it changed since it was verified: {MANIFEST} differs"])
                    continue
                if relative not in expected:
                    raise refusal(path, [f"it changed since it was verified: member {relative!r} appeared"])
                checked = _CheckedMember(content)
                if relative != README:
                    yield relative, checked
                found = checked.finish()
                if found != expected[relative]:
                    raise refusal(path, [f"it changed since it was verified: member {relative!r} differs "
                                          f"({_difference(found, expected[relative])})"])  # fmt: skip
        except READ_ERRORS as error:
            raise refusal(path, [f"it changed since it was verified: {_read_error(error)}"]) from None
    if raw.digest.hexdigest() != verified.sha256:
        raise refusal(path, ["it changed since it was verified (its SHA-256 differs)"])
