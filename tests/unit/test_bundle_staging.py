"""A bundle's data checked as it is unpacked for `ruche-backup load` (operations/bundle_staging.py): what a trusted
but compromised sender could slip into volumes.tar, database.sql or an instance's manifest.json is refused, named."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from orchestrator.operations.bundle_staging import checked_dump, checked_manifest, checked_volumes

pytestmark = pytest.mark.unit


def tar_of(*members: tuple[str, str, dict]) -> io.BytesIO:
    """(name, kind 'dir'|'file'|'sym'|'link'|'fifo', attributes) -> a tar in memory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, kind, attributes in members:
            info = tarfile.TarInfo(name)
            info.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "sym": tarfile.SYMTYPE,
                         "link": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}[kind]  # fmt: skip
            info.mode = attributes.get("mode", 0o755 if kind == "dir" else 0o644)
            info.uid = info.gid = attributes.get("uid", 33)
            info.linkname = attributes.get("target", "")
            data = attributes.get("data", b"")
            info.size = len(data) if kind == "file" else 0
            archive.addfile(info, io.BytesIO(data) if kind == "file" else None)
    buffer.seek(0)
    return buffer


def test_a_plain_volumes_archive_is_copied_with_set_id_bits_cleared(tmp_path):
    source = tar_of(("volumes", "dir", {}), ("volumes/data", "dir", {}),
                    ("volumes/data/LocalSettings.php", "file", {"data": b"<?php", "uid": 0, "mode": 0o4750}),
                    ("volumes/data/current", "sym", {"target": "/var/lib/mediawiki"}))  # fmt: skip
    assert checked_volumes(source, tmp_path / "volumes.tar", "wiki", {"data"}) == []
    with tarfile.open(tmp_path / "volumes.tar") as copied:
        members = {m.name: m for m in copied.getmembers()}
        assert copied.extractfile(members["volumes/data/LocalSettings.php"]).read() == b"<?php"
    assert members["volumes/data/LocalSettings.php"].mode == 0o750 and members["volumes/data/current"].issym()


@pytest.mark.parametrize(("member", "said"), [
    (("volumes/data/l/passwd", "file", {"data": b"x"}), "below a symbolic link"),
    (("volumes/data/hard", "link", {"target": "volumes/data/f"}), "neither a directory"),
    (("volumes/data/pipe", "fifo", {}), "neither a directory"),
    (("volumes/other/x", "file", {"data": b"x"}), "one of the service's volumes (data)"),
    (("volumes/data/../../etc/x", "file", {"data": b"x"}), "not a plain relative path"),
    (("/etc/x", "file", {"data": b"x"}), "not a plain relative path"),
    (("etc/x", "file", {"data": b"x"}), "not under volumes/"),
    (("volumes/data/f", "file", {"data": b"x", "uid": 70000}), "outside one ID range"),
])  # fmt: skip
def test_each_thing_a_volumes_archive_must_not_hold_is_named(tmp_path, member, said):
    source = tar_of(("volumes/data", "dir", {}), ("volumes/data/l", "sym", {"target": "/etc"}), member)
    problems = checked_volumes(source, tmp_path / "volumes.tar", "wiki", {"data"})
    assert len(problems) == 1 and said in problems[0] and problems[0].startswith("wiki: volumes.tar:"), problems
    with tarfile.open(tmp_path / "volumes.tar") as copied:
        assert member[0] not in copied.getnames()


def test_a_dump_with_a_client_command_outside_copy_data_is_refused(tmp_path):
    clean = (b"\\restrict abc\nCREATE TABLE t (x text);\nCOPY public.t (x) FROM stdin;\n\\! not a command: data\n"
             b"\\.\nSELECT 1;\n\\unrestrict abc\n")  # fmt: skip
    assert checked_dump(io.BytesIO(clean), tmp_path / "a.sql", "veille", "postgresql") == []
    assert (tmp_path / "a.sql").read_bytes() == clean
    for text, said in ((b"SELECT 1;\n\\! id > /tmp/pwned\n", "line 2: a psql command"),
                       (b"COPY t TO PROGRAM 'id';\n", "PROGRAM"), (b"\\o |sh\n", "psql command")):  # fmt: skip
        problems = checked_dump(io.BytesIO(text), tmp_path / "b.sql", "veille", "postgresql")
        assert len(problems) == 1 and said in problems[0], problems
    assert checked_dump(io.BytesIO(b"INSERT INTO t VALUES ('a');\nsystem id\n"), tmp_path / "c.sql", "w", "mariadb")
    long_line = (
        b"INSERT INTO t VALUES ('" + b"\\" * (3 << 20) + b"');\n"
    )  # a backslash at a block's start: no line start
    assert checked_dump(io.BytesIO(long_line), tmp_path / "d.sql", "w", "postgresql") == []


def test_an_instance_manifest_of_another_shape_is_refused(tmp_path):
    good = {"volumes": {"data": {"a": "0" * 64}}, "owners": {"data": {"a": "33:33"}}, "database": {"tables": {"t": 2}}}
    assert checked_manifest(io.BytesIO(json.dumps(good).encode()), tmp_path / "m.json", "wiki") == []
    for bad in ([], {"volumes": ["a"]}, {"database": {"tables": {"t": "2"}}}, "[" * 60000):
        data = bad.encode() if isinstance(bad, str) else json.dumps(bad).encode()
        assert checked_manifest(io.BytesIO(data), tmp_path / "n.json", "wiki"), bad
