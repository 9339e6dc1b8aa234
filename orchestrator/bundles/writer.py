"""A bundle written in order (README.txt, the data members as they stream, then the signed manifest)."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tarfile
import time
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError

from orchestrator.bundles.format import (
    BLOCK,
    COMPRESSLEVEL,
    FORMAT,
    MANIFEST,
    README,
    ROOT,
    SIGNATURE,
    BundleManifest,
    MemberDigest,
    data_name_problem,
    manifest_json,
    manifest_problems,
    schema_problems,
    signature_json,
)
from orchestrator.bundles.readme import README_TEXT
from orchestrator.bundles.streams import HashingReader, HashingWriter
from orchestrator.errors import InvalidInput, OperationFailed
from orchestrator.signing import SigningKey

# -- writing -------------------------------------------------------------------------------------------------------


class BundleWriter:
    """Write a bundle: README.txt first (on entering), each :meth:`add`, then :meth:`finish` the manifest and its
    signature. Over a path: written to PATH.partial (mode 0600, created new: never through a link, never over another
    writer's), linked to PATH once finished (refused if PATH appeared meanwhile: nothing is replaced), removed on
    any failure or when left without :meth:`finish`; over a binary file object: written there, never closed.

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
            if not self._path.parent.is_dir():
                raise InvalidInput(f"{self._path}: its directory {self._path.parent} does not exist",
                                   hint="create it first, or write the bundle elsewhere")  # fmt: skip
            if os.path.lexists(self._path):
                raise InvalidInput(f"{self._path} exists already", hint="choose another file, or remove it")
            try:
                # O_EXCL: never another export's file, never through a planted symbolic link (O_NOFOLLOW too)
                descriptor = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                raise InvalidInput(f"{self.partial} exists already",
                                   hint="another export writes it, or remove it (left by an export that was "
                                   "killed)") from None  # fmt: skip
            except OSError as error:
                raise InvalidInput(f"{self.partial} cannot be created ({error.strerror})") from None
            self._file = os.fdopen(descriptor, "wb")
            target = self._file
        else:
            target = self._target
        try:
            self._hashed = HashingWriter(target)
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
                os.link(self.partial, self._path)  # unlike a rename, never replaces a file created meanwhile
            except FileExistsError:
                self._discard()
                raise InvalidInput(f"{self._path} was created while the bundle was written: it is left as it is",
                                   hint="choose another file, or remove it and export again") from None  # fmt: skip
            except BaseException:
                self._discard()
                raise
            self.partial.unlink()

    def _discard(self) -> None:
        for closing in (getattr(self, "_tar", None), getattr(self, "_gzip", None)):
            with contextlib.suppress(Exception):  # the failure being reported matters, not this close's
                closing and closing.close()
        if self._file is not None:
            self._file.close()
            self.partial.unlink(missing_ok=True)
            self._file = None

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
        reader = HashingReader(fileobj)
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
            raise InvalidInput("\n".join(schema_problems(error))) from None
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
