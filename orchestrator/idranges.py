"""Subordinate UID/GID ranges: one fixed range per instance, the same on every server.

Every container of an instance (application, database, sidecars) runs with the instance's own
range as its user namespace (``UIDMap=0:START:SIZE`` and the same ``GIDMap``), so a file owned by
www-data (33) inside the container is owned by ``START + 33`` on the server, whichever server and
however often the container is re-created. Ranges are allocated fleet-wide at ``instance create``
(slot N → ``POOL_START + N * RANGE_SIZE``), recorded in the state and the inventory, and never
shared by two live instances; a deleted instance's slot is freed.

The pool starts at 2^30, above Debian's default ``SUB_UID_MAX`` (600100000, login.defs), so the
ranges ``useradd`` gives to host users never reach it; the server role registers the whole pool
as the ``ruche`` entry of /etc/subuid and /etc/subgid and refuses a server whose other entries
overlap it.

Before fixed ranges, ruche's units used Podman's ``UserNS=auto`` over the ``containers`` entry
``2147483647:2147483648``, in allocations of 65536; :data:`LEGACY_AUTO_START` lets the role move
files of such instances into their new range once (container UID = (host UID - start) mod 65536).
"""

from __future__ import annotations

from dataclasses import dataclass

RANGE_SIZE = 65536
POOL_START = 1 << 30
# The highest slot whose range still ends below 2^32 - 1 (the invalid ID -1).
LAST_SLOT = ((1 << 32) - 1 - RANGE_SIZE - POOL_START) // RANGE_SIZE
POOL_SIZE = (LAST_SLOT + 1) * RANGE_SIZE
LEGACY_AUTO_START = 2147483647


@dataclass(frozen=True)
class IdRange:
    """The host IDs ``start`` .. ``start + size - 1`` that an instance's container IDs 0 .. size-1 map to."""

    slot: int
    start: int
    size: int = RANGE_SIZE

    @property
    def end(self) -> int:
        """The last host ID of the range."""
        return self.start + self.size - 1

    def overlaps(self, other: IdRange) -> bool:
        return self.start <= other.end and other.start <= self.end

    def as_dict(self) -> dict:
        return {"slot": self.slot, "start": self.start, "size": self.size, "end": self.end}


def id_range(slot: int) -> IdRange:
    """Give the range of ``slot``; raises ValueError outside the pool."""
    if not 0 <= slot <= LAST_SLOT:
        raise ValueError(f"ID range slot {slot} is outside the pool (0..{LAST_SLOT})")
    return IdRange(slot=slot, start=POOL_START + slot * RANGE_SIZE)


def free_slot(used: set[int]) -> int:
    """Give the lowest slot not in ``used``; raises ValueError when the pool is full."""
    for slot in range(LAST_SLOT + 1):
        if slot not in used:
            return slot
    raise ValueError(f"every one of the {LAST_SLOT + 1} subordinate ID ranges is taken")


def overlapping(ranges: dict[str, IdRange]) -> list[tuple[str, str]]:
    """Give the pairs of names whose ranges overlap (none when the allocation is sound)."""
    ordered = sorted(ranges.items(), key=lambda item: item[1].start)
    pairs = []
    for (name_a, a), (name_b, b) in zip(ordered, ordered[1:], strict=False):
        if a.overlaps(b):
            pairs.append((name_a, name_b))
    return pairs
