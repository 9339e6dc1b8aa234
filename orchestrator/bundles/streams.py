"""File objects that hash what goes through them, in blocks (the bundle is never held in memory)."""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO

# -- streams -------------------------------------------------------------------------------------------------------


class HashingReader(io.RawIOBase):
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


class HashingWriter(io.RawIOBase):
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
