"""The bundle format (orchestrator/bundles/): what a writer makes is verified and read back whole; every kind of
damage or forgery is refused with its own message; a large member streams through without being held in memory;
the README's own check snippets work on a real bundle."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import tracemalloc
from pathlib import Path

import pydantic
import pytest

from orchestrator import bundles
from orchestrator.bundles import BundleWriter, read_members, verify_bundle
from orchestrator.errors import InvalidInput, OperationFailed
from orchestrator.signing import PublicKey, SigningKey, UntrustedSignature

pytestmark = pytest.mark.unit
MIB = 1 << 20
DUMP = b"CREATE TABLE feeds (id integer);\nINSERT INTO feeds VALUES (1);\n"
VOLUMES = bytes(range(256)) * 64  # 16 KiB that are not all one byte


def fields(**changes) -> dict:
    """The manifest's fields an exporter gives (all but format, key_id and members)."""
    document = {
        "created_at": "2026-11-30T12:00:00+00:00",
        "ruche_version": "0.1.0",
        "collective": "Les Ruches du Lot",
        "association": {"slug": "amap", "name": "AMAP du Causse", "email": "contact@amap.example",
                        "offer": "petite", "offer_figures": {"max_instances": 3, "memory_mb": 2048, "disk_gb": None}},
        "catalogue": {"miniflux": "2.2.3", "mediawiki": "1.42.3"},
        "instances": [
            {"name": "news", "service": "miniflux", "version": "2.2.3", "size": "small", "parameters": {"title": "Nos"},
             "domains": ["news.amap.example"], "database": "postgresql", "data": {"tables": {"feeds": 1}}},
            {"name": "wiki", "service": "mediawiki", "version": "1.42.3", "size": "small", "parameters": {},
             "domains": ["wiki.amap.example"], "database": "mariadb", "data": {"files": 2}},
        ],
    }  # fmt: skip
    document.update(changes)
    return document


CONTENT = {
    "instances/news/database.sql": DUMP,
    "instances/news/manifest.json": b'{"database": {"tables": {"feeds": 1}}}\n',
    "instances/news/volumes.tar": b"\0" * 1024,
    "instances/wiki/database.sql": b"-- MariaDB dump\n",
    "instances/wiki/manifest.json": b'{"volumes": {}}\n',
    "instances/wiki/volumes.tar": VOLUMES,
}
NEWS = {name: data for name, data in CONTENT.items() if name.startswith("instances/news/")}  # news alone


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def write(path: Path, key: SigningKey, content: dict[str, bytes] = CONTENT) -> BundleWriter:
    with BundleWriter(path) as bundle:
        for name, data in content.items():
            bundle.add(name, io.BytesIO(data), len(data))
        bundle.finish(fields(), key)
    return bundle


@pytest.fixture
def bundle(tmp_path, key) -> Path:
    path = tmp_path / "amap.ruche-bundle.tar.gz"
    write(path, key)
    return path


def members_of(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(path, "r:gz") as archive:
        return [(m, archive.extractfile(m).read() if m.isfile() else None) for m in archive.getmembers()]


def rebuild(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    """Write ``members`` as a valid gzip tar at ``path`` (by hand: what a forger or a damaged copy could give)."""
    with gzip.open(path, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member, data in members:
            if data is not None:
                member.size = len(data)
            archive.addfile(member, io.BytesIO(data) if data is not None else None)


def replaced(members, name: str, data: bytes):
    return [(m, data if m.name == f"ruche-bundle/{name}" else d) for m, d in members]


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def resign(members, key: SigningKey, edit) -> list:
    """``members`` with manifest.json edited by ``edit`` (on its parsed JSON) and signed again by ``key``."""
    manifest = {m.name: d for m, d in members}["ruche-bundle/manifest.json"]
    document = json.loads(manifest)
    edit(document)
    data = json.dumps(document, indent=1, sort_keys=True).encode()
    return replaced(replaced(members, "manifest.json", data), "manifest.sig", bundles.signature_json(key, data))


def refusal(path: Path, trusted: PublicKey, kind=InvalidInput) -> list[str]:
    """The lines of the refusal of the bundle at ``path`` (trusting ``trusted``), without their file name."""
    with pytest.raises(kind) as raised:
        verify_bundle(path, [trusted])
    lines = raised.value.message.splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    return [line.removeprefix(f"{path}: ") for line in lines]


# -- what a bundle is -----------------------------------------------------------------------------------------------


def test_a_bundle_written_is_verified_and_read_back_whole(bundle, key):
    verified = verify_bundle(bundle, [SigningKey.generate().public, key.public])
    assert verified.signer == key.public
    assert verified.sha256 == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert verified.size == bundle.stat().st_size
    manifest = verified.manifest
    assert manifest.format == 1 and manifest.key_id == key.public.key_id
    assert manifest.association.offer_figures == {"max_instances": 3, "memory_mb": 2048, "disk_gb": None}
    assert [i.name for i in manifest.instances] == ["news", "wiki"]
    assert list(manifest.members) == ["README.txt", *CONTENT]
    assert manifest.members["instances/news/database.sql"].sha256 == hashlib.sha256(DUMP).hexdigest()
    assert manifest.members["instances/wiki/volumes.tar"].size == len(VOLUMES)
    assert {name: handle.read() for name, handle in read_members(bundle, verified)} == CONTENT


def test_the_tar_holds_its_members_in_order_under_one_directory_and_the_signature_covers_the_manifest_bytes(
    bundle, key
):
    members = members_of(bundle)
    names = [m.name for m, _ in members]
    assert names == ["ruche-bundle/README.txt", *(f"ruche-bundle/{n}" for n in CONTENT),
                     "ruche-bundle/manifest.json", "ruche-bundle/manifest.sig"]  # fmt: skip
    content = {m.name: data for m, data in members}
    manifest = content["ruche-bundle/manifest.json"]
    assert manifest.decode() == json.dumps(json.loads(manifest), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    signature = json.loads(content["ruche-bundle/manifest.sig"])
    assert signature.keys() == {"format", "key_id", "public_key", "signature"}
    assert signature["public_key"] == key.public.text and signature["key_id"] == key.public.key_id
    assert key.public.verifies(manifest, base64.b64decode(signature["signature"]))
    assert bundle.stat().st_mode & 0o777 == 0o600
    assert not bundle.with_name(bundle.name + ".partial").exists()


def test_secrets_sealed_for_the_receiver_travel_in_the_signed_manifest(tmp_path, key):
    receiver = SigningKey.generate()
    sealed = {"sealed_for": receiver.public.key_id, "box": receiver.public.seal(b'{"wiki": {"secret_key": "s3"}}')}
    path = tmp_path / "b.tar.gz"
    with BundleWriter(path) as bundle:
        for name, data in NEWS.items():
            bundle.add_bytes(name, data)
        bundle.finish(fields(instances=fields()["instances"][:1], secrets=sealed), key)
    secrets = verify_bundle(path, [key.public]).manifest.secrets
    assert secrets.sealed_for == receiver.public.key_id
    assert receiver.open(secrets.box.model_dump()) == b'{"wiki": {"secret_key": "s3"}}'
    assert b"s3" not in gzip.decompress(path.read_bytes())


def test_the_readme_snippets_check_the_checksums_and_the_signature_by_hand(bundle, key, tmp_path, monkeypatch, capsys):
    with tarfile.open(bundle, "r:gz") as archive:
        archive.extractall(tmp_path / "out")
    readme = (tmp_path / "out/ruche-bundle/README.txt").read_text()
    snippets = [textwrap.dedent(s) for s in re.findall(r"<<'EOF'\n(.*?)\n  EOF\n", readme, re.S)]
    assert len(snippets) == 2
    monkeypatch.chdir(tmp_path / "out")
    exec(snippets[0], {})
    assert capsys.readouterr().out.splitlines() == [f"OK   {name}" for name in ["README.txt", *CONTENT]]
    monkeypatch.setattr(sys, "argv", ["-", key.public.text])
    exec(snippets[1], {})
    assert capsys.readouterr().out == "signature OK\n"
    if shutil.which("jq") and shutil.which("sha256sum"):
        [line] = [line.strip() for line in readme.splitlines() if "jq -r" in line]
        checked = subprocess.run(["sh", "-c", line], cwd=tmp_path / "out", capture_output=True, text=True)
        assert checked.stdout.splitlines() == [f"{name}: OK" for name in ["README.txt", *CONTENT]], checked.stderr


DOC = Path(__file__).resolve().parents[2] / "docs" / "bundle-format.md"


def test_the_format_page_lists_every_field_of_the_manifest():
    table = {line.split("`")[1] for line in DOC.read_text().splitlines() if line.startswith("| `")}

    def fields_of(model, prefix: str) -> set[str]:
        found = set()
        for name, field in model.model_fields.items():
            found.add(prefix + name)
            for inner in getattr(field.annotation, "__args__", (field.annotation,)):
                if isinstance(inner, type) and issubclass(inner, pydantic.BaseModel):
                    shape = str(field.annotation)
                    suffix = "[]" if shape.startswith("list") else ".*" if shape.startswith("dict") else ""
                    found |= fields_of(inner, f"{prefix}{name}{suffix}.")
        return found

    assert fields_of(bundles.BundleManifest, "") == table


def test_the_format_pages_snippets_check_a_real_bundle(bundle, key, tmp_path, monkeypatch, capsys):
    with tarfile.open(bundle, "r:gz") as archive:
        archive.extractall(tmp_path / "out")
    page = DOC.read_text()
    [signature] = re.findall(r"python3 - 'ruche-key:...' <<'EOF'\n(.*?)\nEOF\n", page, re.S)
    [sums] = re.findall(r"```python\n(.*?)```", page, re.S)
    monkeypatch.chdir(tmp_path / "out")
    monkeypatch.setattr(sys, "argv", ["-", key.public.text])
    exec(signature, {})
    assert capsys.readouterr().out == f"key id {key.public.key_id}\nsignature OK\n"
    exec(sums, {})
    assert capsys.readouterr().out.splitlines() == [f"OK   {name}" for name in ["README.txt", *CONTENT]]


# -- refusals -------------------------------------------------------------------------------------------------------


def test_one_flipped_byte_in_a_members_content_is_refused_by_its_checksum(bundle, key):
    flipped = bytearray(VOLUMES)
    flipped[5000] ^= 1
    rebuild(bundle, replaced(members_of(bundle), "instances/wiki/volumes.tar", bytes(flipped)))
    [line] = refusal(bundle, key.public)
    assert line.startswith("member 'instances/wiki/volumes.tar' differs from the manifest: SHA-256 ")


@pytest.mark.parametrize("where", ["middle", "trailer"])
def test_one_flipped_byte_in_the_compressed_file_is_refused(bundle, key, where):
    raw = bytearray(bundle.read_bytes())
    raw[len(raw) // 2 if where == "middle" else -6] ^= 0x10  # the trailer: gzip's CRC-32 of the tar
    bundle.write_bytes(bytes(raw))
    with pytest.raises(InvalidInput) as raised:
        verify_bundle(bundle, [key.public])
    assert str(bundle) in raised.value.message


def test_a_bundle_signed_by_a_key_not_trusted_is_refused_naming_both_keys(bundle, key):
    other = SigningKey.generate().public
    [line] = refusal(bundle, other, UntrustedSignature)
    assert (
        line == f"signed by key {key.public.key_id} ({key.public.text}), which is not trusted (trusted: {other.key_id})"
    )


def test_a_manifest_edited_after_signing_is_refused(bundle, key):
    members = members_of(bundle)
    manifest = dict((m.name, d) for m, d in members)["ruche-bundle/manifest.json"]
    rebuild(bundle, replaced(members, "manifest.json", manifest.replace(b"Les Ruches du Lot", b"Les Ruches du Tarn")))
    [line] = refusal(bundle, key.public, UntrustedSignature)
    assert line == f"manifest.json was changed after key {key.public.key_id} signed it (the signature does not match)"


def test_a_member_the_manifest_lacks_and_one_it_lists_but_is_gone_are_both_named(bundle, key):
    members = [(m, d) for m, d in members_of(bundle) if m.name != "ruche-bundle/instances/news/database.sql"]
    members.insert(2, file_member("ruche-bundle/instances/news/extra.sql", b"DROP TABLE feeds;\n"))
    rebuild(bundle, members)
    assert refusal(bundle, key.public) == [
        "member 'instances/news/extra.sql' is not in the manifest",
        "member 'instances/news/database.sql' is in the manifest but not in the bundle",
    ]


def test_a_member_removed_is_refused(bundle, key):
    rebuild(bundle, [(m, d) for m, d in members_of(bundle) if not m.name.endswith("wiki/volumes.tar")])
    assert refusal(bundle, key.public) == [
        "member 'instances/wiki/volumes.tar' is in the manifest but not in the bundle"
    ]


def test_a_name_with_dot_dot_or_outside_the_bundle_directory_is_refused(bundle, key):
    members = members_of(bundle)
    members[1:1] = [file_member("ruche-bundle/instances/../../etc/cron.d/x", b"* * * * * root sh\n"),
                    file_member("/etc/passwd", b"root::0:0::/:/bin/sh\n"), file_member("elsewhere.txt", b"x")]  # fmt: skip
    rebuild(bundle, members)
    assert refusal(bundle, key.public) == [
        "member 'ruche-bundle/instances/../../etc/cron.d/x' has a '..' in its name",
        "member '/etc/passwd' has an absolute name",
        "member 'elsewhere.txt' is outside ruche-bundle/",
    ]


def test_links_devices_and_fifos_are_refused(bundle, key):
    members = members_of(bundle)
    link = tarfile.TarInfo("ruche-bundle/instances/wiki/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("ruche-bundle/instances/wiki/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "ruche-bundle/README.txt"
    fifo = tarfile.TarInfo("ruche-bundle/instances/wiki/fifo")
    fifo.type = tarfile.FIFOTYPE
    members[1:1] = [(link, None), (hard, None), (fifo, None)]
    rebuild(bundle, members)
    assert refusal(bundle, key.public) == [
        "member 'ruche-bundle/instances/wiki/passwd' is a symbolic link (to '/etc/passwd'); "
        "a bundle holds only files and directories",
        "member 'ruche-bundle/instances/wiki/hard' is a hard link (to 'ruche-bundle/README.txt'); "
        "a bundle holds only files and directories",
        "member 'ruche-bundle/instances/wiki/fifo' is a device or a FIFO; a bundle holds only files and directories",
    ]


def test_a_repeated_name_and_members_after_the_signature_are_refused(bundle, key):
    members = members_of(bundle)
    rebuild(bundle, [*members, (members[1][0], members[1][1])])
    assert refusal(bundle, key.public) == [
        "member 'ruche-bundle/instances/news/database.sql' appears twice",
        "manifest.json and manifest.sig are not the last two members",
    ]


def test_a_bundle_without_its_signature_is_refused(bundle, key):
    rebuild(bundle, [(m, d) for m, d in members_of(bundle) if not m.name.endswith(".sig")])
    assert refusal(bundle, key.public) == ["manifest.sig is missing"]


def test_a_truncated_bundle_is_refused(bundle, key):
    bundle.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    assert refusal(bundle, key.public) == ["the file ends before its compressed data does: it is truncated"]


def test_a_file_that_is_no_gzip_at_all_is_refused(tmp_path, key):
    path = tmp_path / "notes.txt"
    path.write_text("not a bundle\n")
    [line] = refusal(path, key.public)
    assert line.startswith("not a gzip-compressed file, or its compressed data is damaged")


def test_an_empty_file_and_a_tar_of_other_files_are_refused_as_no_bundle(tmp_path, key):
    empty = tmp_path / "empty.tar.gz"
    empty.write_bytes(b"")
    assert refusal(empty, key.public) == ["the file is empty"]
    other = tmp_path / "export.tar.gz"
    rebuild(other, [file_member(f"amap-export/file{n}.txt", b"x") for n in range(60)])
    assert refusal(other, key.public) == [
        "not a ruche bundle: none of its members is under ruche-bundle/ (is it a `ruche export` archive? those are "
        "read by hand, not imported)"
    ]


def test_a_plain_gzip_of_something_else_is_refused(tmp_path, key):
    path = tmp_path / "notes.gz"
    path.write_bytes(gzip.compress(b"hello\n" * 200))
    [line] = refusal(path, key.public)
    assert line.startswith("not a complete tar archive inside its compression")


def test_a_signed_manifest_with_an_unknown_field_or_a_bad_value_is_refused_by_its_path(bundle, key):
    def edit(document):
        document["association"]["colour"] = "blue"
        document["instances"][1]["database"] = "oracle"

    rebuild(bundle, resign(members_of(bundle), key, edit))
    assert refusal(bundle, key.public) == [
        "manifest.json: at 'association.colour': unknown field",
        "manifest.json: at 'instances[1].database': Input should be 'postgresql' or 'mariadb'",
    ]


def test_a_newer_format_is_refused_as_such(bundle, key):
    rebuild(bundle, resign(members_of(bundle), key, lambda document: document.update(format=2)))
    assert refusal(bundle, key.public) == [
        "manifest.json: format 2; this ruche reads format 1 only (a newer ruche made it?)"
    ]


def test_a_signed_manifest_whose_members_belong_to_no_instance_is_refused(bundle, key):
    rebuild(bundle, resign(members_of(bundle), key, lambda document: document["instances"].pop()))
    assert refusal(bundle, key.public) == [
        f"manifest.json: member {name!r} belongs to no instance of the manifest"
        for name in CONTENT
        if name.startswith("instances/wiki/")
    ]


def test_a_manifest_naming_another_key_or_one_instance_twice_is_refused(bundle, key):
    other = SigningKey.generate()

    def edit(document):
        document["instances"].append(dict(document["instances"][0]))

    rebuild(bundle, resign(members_of(bundle), other, edit))
    assert refusal(bundle, other.public) == [
        "manifest.json: two instances are named 'news'",
        f"manifest.json names key {key.public.key_id}, but key {other.public.key_id} signed it",
    ]


def test_a_member_read_back_can_be_unpacked_as_a_stream(tmp_path, key):
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w") as archive:
        info = tarfile.TarInfo("data/index.html")
        info.size, info.uid, info.gid = 5, 33, 33
        archive.addfile(info, io.BytesIO(b"hello"))
    path = tmp_path / "b.tar.gz"
    write(path, key, {**CONTENT, "instances/wiki/volumes.tar": inner.getvalue()})
    unpacked = {}
    for name, handle in read_members(path, verify_bundle(path, [key.public])):
        if name.endswith("volumes.tar"):
            with tarfile.open(fileobj=handle, mode="r|") as archive:
                for member in archive:
                    unpacked[member.name] = (member.uid, archive.extractfile(member).read())
    assert unpacked == {"data/index.html": (33, b"hello")}


def test_a_bundle_changed_between_verification_and_reading_is_refused_while_read(bundle, key):
    verified = verify_bundle(bundle, [key.public])
    flipped = bytearray(DUMP)
    flipped[0] ^= 1
    rebuild(bundle, replaced(members_of(bundle), "instances/news/database.sql", bytes(flipped)))
    read = []
    with pytest.raises(InvalidInput, match="it changed since it was verified: member 'instances/news/database.sql'"):
        for name, handle in read_members(bundle, verified):
            read.append(name)
            handle.read(10)  # what is left unread is read (and checked) all the same
    assert read == ["instances/news/database.sql"]


def test_a_bundle_rewritten_with_the_same_members_but_another_envelope_is_refused_at_the_end(bundle, key):
    verified = verify_bundle(bundle, [key.public])
    rebuild(bundle, members_of(bundle))  # same content, other gzip bytes: the file's SHA-256 differs
    with pytest.raises(InvalidInput, match="its SHA-256 differs"):
        list(read_members(bundle, verified))


# -- the writer's own refusals --------------------------------------------------------------------------------------


def test_the_writer_refuses_bad_and_repeated_names_and_leaves_no_file(tmp_path, key):
    path = tmp_path / "b.tar.gz"
    for name in ["README.txt", "instances/Wiki/x", "instances/wiki/../x", "instances/wiki", "/instances/w/x",
                 "manifest.json", "instances/w//x"]:  # fmt: skip
        with pytest.raises(InvalidInput), BundleWriter(path) as bundle:
            bundle.add_bytes(name, b"x")
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidInput, match="added twice"), BundleWriter(path) as bundle:
        bundle.add_bytes("instances/w/x", b"x")
        bundle.add_bytes("instances/w/x", b"y")
    assert list(tmp_path.iterdir()) == []


def test_a_writer_left_without_finish_writes_nothing(tmp_path):
    path = tmp_path / "b.tar.gz"
    with pytest.raises(RuntimeError, match="without finish"), BundleWriter(path) as bundle:
        bundle.add_bytes("instances/w/x", b"x")
    assert list(tmp_path.iterdir()) == []


def test_the_writer_refuses_a_source_shorter_or_longer_than_announced(tmp_path, key):
    path = tmp_path / "b.tar.gz"
    with pytest.raises(OperationFailed, match="ended after 3 of 10 bytes"), BundleWriter(path) as bundle:
        bundle.add("instances/w/x", io.BytesIO(b"abc"), 10)
    with pytest.raises(OperationFailed, match="more than the 2 bytes"), BundleWriter(path) as bundle:
        bundle.add("instances/w/x", io.BytesIO(b"abc"), 2)
    assert list(tmp_path.iterdir()) == []


def test_the_writer_refuses_a_manifest_the_schema_refuses_or_an_existing_file(tmp_path, key):
    path = tmp_path / "b.tar.gz"
    with pytest.raises(InvalidInput) as raised, BundleWriter(path) as bundle:
        bundle.add_bytes("instances/news/database.sql", DUMP)
        bundle.finish(fields(collective="", key_id="0" * 16), key)
    assert raised.value.message == "the bundle's writer fills key_id itself"
    with pytest.raises(InvalidInput) as raised, BundleWriter(path) as bundle:
        bundle.add_bytes("instances/news/database.sql", DUMP)
        bundle.finish(fields(collective=""), key)
    assert raised.value.message == "manifest.json: at 'collective': String should have at least 1 character"
    with pytest.raises(InvalidInput) as raised, BundleWriter(path) as bundle:
        for name, data in CONTENT.items():
            bundle.add_bytes(name, data)
        bundle.add_bytes("instances/blog/database.sql", DUMP)
        bundle.finish(fields(), key)
    assert (
        raised.value.message
        == "manifest.json: member 'instances/blog/database.sql' belongs to no instance of the manifest"
    )
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"mine")
    with pytest.raises(InvalidInput, match="exists already"), BundleWriter(path):
        pass
    assert path.read_bytes() == b"mine"


def test_the_writer_writes_into_a_file_object_and_gives_its_digest(tmp_path, key):
    target = io.BytesIO()
    with BundleWriter(target) as bundle:
        for name, data in NEWS.items():
            bundle.add_bytes(name, data)
        manifest = bundle.finish(fields(instances=fields()["instances"][:1]), key)
    assert bundle.sha256 == hashlib.sha256(target.getvalue()).hexdigest() and bundle.size == len(target.getvalue())
    path = tmp_path / "b.tar.gz"
    path.write_bytes(target.getvalue())
    assert verify_bundle(path, [key.public]).manifest == manifest


# -- what a forger could make of the tar itself (read before the signature is checked) -------------------------------


def header_block(name: str, kind: bytes, size: int) -> bytes:
    """One raw tar header of type ``kind`` declaring ``size`` bytes of data (what tarfile's writer never makes)."""
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(tarfile.GNU_FORMAT)


def pax_record(keyword: str, value: str) -> bytes:
    body = f" {keyword}={value}\n".encode()
    length = len(body) + len(str(len(body)))
    length += len(str(length)) - len(str(len(body)))
    return str(length).encode() + body


def raw_bundle(path: Path, *blocks: bytes) -> None:
    """A gzip tar of ``blocks`` as they are (each padded to 512 bytes), then the tar's end."""
    data = b"".join(block + b"\0" * (-len(block) % 512) for block in blocks)
    path.write_bytes(gzip.compress(data + b"\0" * 1024))


@pytest.mark.parametrize(
    ("kind", "said"),
    [(tarfile.GNUTYPE_LONGNAME, "a GNU long name or link"), (tarfile.GNUTYPE_LONGLINK, "a GNU long name or link"),
     (tarfile.XHDTYPE, "a pax extended header"), (tarfile.XGLTYPE, "a pax extended header")],
)  # fmt: skip
def test_a_long_name_or_pax_header_larger_than_1_mib_is_refused_before_it_is_read(tmp_path, key, kind, said):
    path = tmp_path / "bomb.tar.gz"
    declared = 2 << 30  # what tarfile would read into memory whole: only 2 KiB of it follow
    raw_bundle(path, header_block("././@LongLink", kind, declared), b"1" * 2048)
    tracemalloc.start()
    try:
        lines = refusal(path, key.public)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == [f"tar header refused: {said} of {declared} bytes, more than {1 << 20}"]
    assert peak < 8 * MIB


def test_a_chain_of_small_extended_headers_is_refused(tmp_path, key):
    record = pax_record("comment", "x")
    path = tmp_path / "chain.tar.gz"
    raw_bundle(path, *[header_block("././@PaxHeader", tarfile.XHDTYPE, len(record)) + record] * 2000,
               header_block("ruche-bundle/README.txt", tarfile.REGTYPE, 0))  # fmt: skip
    assert refusal(path, key.public) == ["tar header refused: more than 8 extended headers before one member"]


def sparse_member(headers: dict[str, str], data: bytes = b"") -> tuple[tarfile.TarInfo, bytes]:
    """A regular file (type '0') whose pax headers make it a sparse file: tarfile would give its real size of
    zeros, 2 GiB here, from a few bytes."""
    info = tarfile.TarInfo("ruche-bundle/instances/wiki/volumes.tar")
    info.pax_headers = {"GNU.sparse.realsize": str(2 << 30), "GNU.sparse.name": info.name, **headers}
    info.size = len(data)
    return info, data


SPARSE = {
    "pax 0.0": {"GNU.sparse.size": str(2 << 30), "GNU.sparse.numblocks": "1", "GNU.sparse.offset": "0",
                "GNU.sparse.numbytes": str(2 << 30)},
    "pax 0.1": {"GNU.sparse.map": f"0,{2 << 30}", "GNU.sparse.size": str(2 << 30)},
    "pax 1.0": {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"},
    "pax, other keys only": {"GNU.sparse.realsize": str(2 << 30)},
}  # fmt: skip


@pytest.mark.parametrize("variant", SPARSE)
def test_a_sparse_member_is_refused_in_the_bundle_and_in_an_inner_tar(bundle, key, variant, tmp_path):
    data = f"1\n0\n{2 << 30}\n".encode() if variant == "pax 1.0" else b""
    members = members_of(bundle)
    members[1:1] = [sparse_member(SPARSE[variant], data)]
    rebuild(bundle, members)
    [line] = refusal(bundle, key.public)
    assert line == "tar header refused: a pax sparse member (GNU.sparse.*); a bundle holds no sparse file"
    inner = io.BytesIO()  # what the importer reads volumes.tar with: the same class
    with tarfile.open(fileobj=inner, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info, content = sparse_member(SPARSE[variant], data)
        archive.addfile(info, io.BytesIO(content))
    inner.seek(0)
    with pytest.raises(tarfile.TarError, match="a bundle holds no sparse file"):  # noqa: PT012
        with tarfile.open(fileobj=inner, mode="r|", tarinfo=bundles.BoundedTarInfo) as archive:
            list(archive)


def test_a_gnu_sparse_member_is_refused(tmp_path, key):
    path = tmp_path / "sparse.tar.gz"
    raw_bundle(path, header_block("ruche-bundle/instances/wiki/volumes.tar", tarfile.GNUTYPE_SPARSE, 0))
    assert refusal(path, key.public) == ["tar header refused: a GNU sparse member; a bundle holds no sparse file"]


def test_more_members_than_a_bundle_holds_are_refused(bundle, key, monkeypatch):
    from orchestrator.bundles import reader

    monkeypatch.setattr(reader, "MEMBER_LIMIT", 5)
    assert refusal(bundle, key.public) == ["tar header refused: more than 5 members"]


def test_a_deeply_nested_signature_or_signed_manifest_is_refused_without_a_traceback(bundle, key):
    members = members_of(bundle)
    rebuild(bundle, replaced(members, "manifest.sig", b"[" * 60000))
    assert refusal(bundle, key.public, UntrustedSignature) == [
        "manifest.sig is not a JSON document with a base64 'signature'"
    ]
    deep = b"[" * 60000 + b"]" * 60000
    rebuild(
        bundle, replaced(replaced(members, "manifest.json", deep), "manifest.sig", bundles.signature_json(key, deep))
    )
    assert refusal(bundle, key.public) == ["manifest.json nests arrays or objects too deeply to be read"]


# -- what the signed manifest may say ----------------------------------------------------------------------------------


def instance(**changes) -> dict:
    return {**fields()["instances"][0], **changes}


@pytest.mark.parametrize(
    ("changes", "where", "said"),
    [({"collective": "Les Ruches\x1b]8;;https://evil.example\x1b\\"}, "collective", "'\\x1b' (at 10)"),
     ({"association": {**fields()["association"], "name": "AMAP\x9b2J"}}, "association.name", "'\\x9b' (at 4)"),
     ({"association": {**fields()["association"], "email": "a@b.example\nrm -rf ~"}}, "association.email", "'\\n'"),
     ({"instances": [instance(parameters={"title": "a\x7fb"})], "members": None}, "instances[0].parameters.title",
      "'\\x7f'"),
     ({"instances": [instance(data={"files": [{"path": "\x1b[2J"}]})], "members": None}, "instances[0]",
      "data holds a control character in '\\x1b[2J'"),
     ({"instances": [instance(domains=["News.amap.example"])], "members": None}, "instances[0].domains[0]",
      "not a host name as ruche records one (that would be 'news.amap.example')"),
     ({"instances": [instance(domains=["news.amap.example."])], "members": None}, "instances[0].domains[0]",
      "(that would be 'news.amap.example')"),
     ({"instances": [instance(domains=["news amap.example"])], "members": None}, "instances[0].domains[0]",
      "is not a valid name"),
     ({"instances": [instance(domains=["localhost"])], "members": None}, "instances[0].domains[0]",
      "at least two labels"),
     ({"instances": [instance(domains=["x" * 64 + ".example"])], "members": None}, "instances[0].domains[0]",
      "is not a valid name")],
)  # fmt: skip
def test_control_characters_and_domains_that_are_no_host_names_are_refused(tmp_path, key, changes, where, said):
    content = NEWS if changes.pop("members", True) is None else CONTENT
    with pytest.raises(InvalidInput) as raised, BundleWriter(tmp_path / "b.tar.gz") as bundle:
        for name, data in content.items():
            bundle.add_bytes(name, data)
        bundle.finish(fields(**changes), key)
    [line] = raised.value.message.splitlines()
    assert line.startswith(f"manifest.json: at '{where}': ") and said in line, line
    assert list(tmp_path.iterdir()) == []


def test_printable_text_of_any_script_and_idna_domains_are_kept(tmp_path, key):
    path = tmp_path / "b.tar.gz"
    text = "Nos nouvelles, été 2026 — «lire» 🐝"
    with BundleWriter(path) as bundle:
        for name, data in NEWS.items():
            bundle.add_bytes(name, data)
        bundle.finish(fields(collective=text, instances=[instance(parameters={"title": text},
                                                                  domains=["xn--amap-du-ct-meb.org"])]), key)  # fmt: skip
    manifest = verify_bundle(path, [key.public]).manifest
    assert manifest.collective == text and manifest.instances[0].domains == ["xn--amap-du-ct-meb.org"]


def test_a_signed_manifest_with_a_control_character_is_refused_by_the_reader(bundle, key):
    rebuild(bundle, resign(members_of(bundle), key, lambda document: document.update(collective="a\x1b[31mb")))
    assert refusal(bundle, key.public) == [
        "manifest.json: at 'collective': Value error, holds the control character '\\x1b' (at 1)"
    ]


def test_each_instance_has_the_members_its_data_needs_and_others_are_allowed(tmp_path, key, bundle):
    def edit(document):
        document["instances"][1]["database"] = None  # wiki has a database.sql all the same
        del document["members"]["instances/news/volumes.tar"]
        del document["members"]["instances/news/manifest.json"]

    members = [(m, d) for m, d in members_of(bundle) if not m.name.endswith(("news/volumes.tar", "news/manifest.json"))]
    rebuild(bundle, resign(members, key, edit))
    assert refusal(bundle, key.public) == [
        "manifest.json: instance 'news' has no member instances/news/manifest.json",
        "manifest.json: instance 'news' has no member instances/news/volumes.tar",
        "manifest.json: instance 'wiki' has no database, but a member instances/wiki/database.sql",
    ]
    with pytest.raises(InvalidInput) as raised, BundleWriter(tmp_path / "w.tar.gz") as writer:
        writer.add_bytes("instances/news/manifest.json", b"{}")
        writer.add_bytes("instances/news/volumes.tar", b"")
        writer.finish(fields(instances=fields()["instances"][:1]), key)
    assert raised.value.message == "manifest.json: instance 'news' has no member instances/news/database.sql"
    extra = tmp_path / "extra.tar.gz"  # a file a later ruche may add: listed, checked, allowed
    write(extra, key, {**CONTENT, "instances/wiki/notes.txt": b"kept\n"})
    assert "instances/wiki/notes.txt" in verify_bundle(extra, [key.public]).manifest.members


def test_key_ids_are_128_bits_and_a_64_bit_one_is_refused(bundle, key):
    assert re.fullmatch(r"[0-9a-f]{32}", key.public.key_id)
    assert key.public.key_id == hashlib.sha256(key.public.raw).hexdigest()[:32]
    rebuild(bundle, resign(members_of(bundle), key, lambda document: document.update(key_id=key.public.key_id[:16])))
    assert refusal(bundle, key.public) == ["manifest.json: at 'key_id': String should match pattern '^[0-9a-f]{32}$'"]


def test_the_format_pages_volumes_check_passes_what_ruche_writes_and_names_what_it_must_not_hold(tmp_path, capsys):
    [check] = re.findall(r"python3 - ruche-bundle/instances/wiki/volumes.tar <<'EOF'\n(.*?)\nEOF\n", DOC.read_text(),
                         re.S)  # fmt: skip

    def run(members: list[tarfile.TarInfo]) -> tuple[int, list[str]]:
        path = tmp_path / "volumes.tar"
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
            for member in members:
                archive.addfile(member, io.BytesIO(b"x" * member.size) if member.isreg() else None)
        argv, sys.argv = sys.argv, ["-", str(path)]
        try:
            with pytest.raises(SystemExit) as exited:
                exec(check, {})
        finally:
            sys.argv = argv
        return exited.value.code, capsys.readouterr().out.splitlines()

    def member(name: str, kind: bytes = tarfile.REGTYPE, **attributes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.size, info.mode, info.uid, info.gid = kind, 1 if kind == tarfile.REGTYPE else 0, 0o644, 33, 33
        for attribute, value in attributes.items():
            setattr(info, attribute, value)
        return info

    good = [member("volumes", tarfile.DIRTYPE, mode=0o755), member("volumes/data", tarfile.DIRTYPE, mode=0o755),
            member("volumes/data/index.html"), member("volumes/data/current", tarfile.SYMTYPE, linkname="index.html")]  # fmt: skip
    assert run(good) == (0, ["volumes.tar OK"])
    bad = [*good, member("volumes/data/current/x"), member("volumes/hard", tarfile.LNKTYPE, linkname="volumes/x"),
           member("volumes/null", tarfile.CHRTYPE), member("volumes/su", mode=0o4755), member("volumes/big", uid=70000),
           member("etc/passwd")]  # fmt: skip
    code, lines = run(bad)
    assert code == 1 and lines == [
        "'volumes/data/current/x': below a symbolic link",
        "'volumes/hard': a hard link, device, FIFO or sparse file (type b'1')",
        "'volumes/null': a hard link, device, FIFO or sparse file (type b'3')",
        "'volumes/su': set-id bits (mode 4755)",
        "'volumes/big': owner 70000:33, not below 65536",
        "'etc/passwd': not a relative name under volumes/",
    ]


# -- the writer's own refusals (a shared or hostile output directory) --------------------------------------------------


def test_the_writer_never_writes_over_another_exports_partial_file_nor_through_a_link(tmp_path, key):
    path = tmp_path / "b.tar.gz"
    partial = tmp_path / "b.tar.gz.partial"
    partial.write_bytes(b"another export's")
    with pytest.raises(InvalidInput) as raised, BundleWriter(path):
        pass
    assert raised.value.message == f"{partial} exists already" and "another export writes it" in raised.value.hint
    assert partial.read_bytes() == b"another export's" and not path.exists()
    partial.unlink()
    target = tmp_path / "elsewhere"
    target.write_bytes(b"precious")
    partial.symlink_to(target)
    with pytest.raises(InvalidInput), BundleWriter(path):
        pass
    assert target.read_bytes() == b"precious" and partial.is_symlink() and not path.exists()


def test_the_writer_never_replaces_an_output_created_while_it_wrote(tmp_path, key):
    path = tmp_path / "b.tar.gz"
    with pytest.raises(InvalidInput, match="was created while the bundle was written"), BundleWriter(path) as bundle:
        for name, data in CONTENT.items():
            bundle.add_bytes(name, data)
        bundle.finish(fields(), key)
        path.write_bytes(b"mine")
    assert path.read_bytes() == b"mine" and sorted(tmp_path.iterdir()) == [path]
    path.unlink()
    path.symlink_to(tmp_path / "nowhere")  # a dangling link is a file that exists all the same
    with pytest.raises(InvalidInput, match="exists already"), BundleWriter(path):
        pass


def test_the_writer_names_a_missing_directory(tmp_path):
    path = tmp_path / "no" / "such" / "b.tar.gz"
    with pytest.raises(InvalidInput) as raised, BundleWriter(path):
        pass
    assert raised.value.message == f"{path}: its directory {path.parent} does not exist"


# -- streaming ------------------------------------------------------------------------------------------------------


class Generated(io.RawIOBase):
    """``size`` bytes made up as they are read (a file of that size that was never in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.pattern = (b"ruche streams its bundles " * 40000)[:MIB]

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return (self.pattern * (size // MIB + 1))[:size]


def test_a_64_mib_member_streams_through_writing_verifying_and_reading_without_being_held(tmp_path, key):
    size = 64 * MIB
    path = tmp_path / "big.tar.gz"
    tracemalloc.start()
    try:
        with BundleWriter(path) as bundle:
            bundle.add_bytes("instances/news/database.sql", DUMP)
            bundle.add_bytes("instances/news/manifest.json", b"{}")
            bundle.add("instances/news/volumes.tar", Generated(size), size)
            bundle.finish(fields(instances=fields()["instances"][:1]), key)
        verified = verify_bundle(path, [key.public])
        total = 0
        for name, handle in read_members(path, verified):
            while block := handle.read(MIB):
                total += len(block) if name.endswith("volumes.tar") else 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert verified.manifest.members["instances/news/volumes.tar"].size == size == total
    assert peak < 16 * MIB, f"peak of {peak / MIB:.1f} MiB of Python allocations"
