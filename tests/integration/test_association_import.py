"""`ruche association import`'s checks, before anything is made: a bundle is refused whole, each problem named, and
nothing is recorded (no association, no instance, no event) for a changed byte, an unknown signing key, a service or
version this catalogue lacks, a taken slug, an offer too small, secrets sealed for another collective. A dry run
says where each instance would go. (The import itself, deployed and filled on the lab: tests/lab/test_bundles.py.)"""

import io
import json
import subprocess
import tarfile

import pytest

from orchestrator.bundles import BundleWriter
from orchestrator.signing import PublicKey, SigningKey
from orchestrator.workspace import open_workspace

SENDER = SigningKey.generate()
ENGINES = {"miniflux": "postgresql"}  # the others have no database


def empty_volumes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("volumes/data")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(info)
    return buffer.getvalue()


def write_bundle(path, *, services, slug="amap", offer="association", key=SENDER, secrets=None):
    """A bundle as `ruche association export` writes one, with ``services`` [(name, service, version, size)]."""
    with BundleWriter(path) as bundle:
        for name, service, _version, _size in services:
            bundle.add_bytes(f"instances/{name}/manifest.json", json.dumps({"volumes": {"data": {}}}).encode())
            bundle.add_bytes(f"instances/{name}/volumes.tar", empty_volumes())
            if ENGINES.get(service):
                bundle.add_bytes(f"instances/{name}/database.sql", b"SELECT 1;\n")
        bundle.finish({
            "ruche_version": "test", "collective": "Les Chatons d'en face",
            "association": {"slug": slug, "name": "AMAP du coin", "email": "contact@amap.example", "offer": offer,
                            "offer_figures": {"max_instances": 3, "memory_mb": 2048, "disk_gb": 20}},
            "catalogue": {}, "secrets": secrets,
            "instances": [{"name": name, "service": service, "version": version, "size": size, "parameters": {},
                           "domains": [], "database": ENGINES.get(service), "data": {}} for name, service, version, size in services],
        }, key)  # fmt: skip
    return path


@pytest.fixture
def receiver(workspace, ruche, tmp_path):
    """A collective with two servers (never reached: the checks need none)."""
    w = ["--workspace", str(workspace)]
    key = tmp_path / "ruche_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    for name, address in (("web-1", "192.0.2.1"), ("web-2", "192.0.2.2")):
        added = ruche(*w, "server", "add", name, "--no-connect", "--address", address, "--memory", "8G",
                      "--ssh-key", str(key))  # fmt: skip
        assert added.exit_code == 0, added.stderr
    return w


def recorded(ruche, w) -> tuple:
    """What the state holds that an import would change."""
    return (ruche(*w, "association", "list", "--json").stdout, ruche(*w, "instance", "list", "--json").stdout,
            len(json.loads(ruche(*w, "events", "--json").stdout)))  # fmt: skip


def radicale(workspace) -> str:
    return open_workspace(workspace).catalog.get("radicale").version


def test_a_dry_run_checks_everything_and_says_where_each_instance_would_go(workspace, receiver, ruche, tmp_path):
    bundle = write_bundle(tmp_path / "amap.bundle", services=[("agendas", "radicale", radicale(workspace), "small")])
    before = recorded(ruche, receiver)
    checked = ruche(*receiver, "association", "import", str(bundle), "--trust", SENDER.public.text, "--dry-run",
                    "--json")  # fmt: skip
    assert checked.exit_code == 0, checked.stderr
    result = json.loads(checked.stdout)
    assert result["association"] == "amap" and result["collective"] == "Les Chatons d'en face"
    assert result["key_id"] == SENDER.public.key_id and result["offer"] == "association"
    assert result["instances"]["agendas"]["server"] in ("web-1", "web-2") and result["secrets"] == "left out"
    assert recorded(ruche, receiver) == before
    text = ruche(*receiver, "association", "import", str(bundle), "--trust", SENDER.public.text, "--dry-run")
    assert "would import amap from Les Chatons d'en face" in text.stdout


def test_a_changed_byte_or_an_unknown_key_refuses_the_bundle_and_changes_nothing(workspace, receiver, ruche, tmp_path):
    bundle = write_bundle(tmp_path / "amap.bundle", services=[("agendas", "radicale", radicale(workspace), "small")])
    before = recorded(ruche, receiver)
    unknown = ruche(*receiver, "association", "import", str(bundle))  # the sender's key not given
    assert unknown.exit_code == 2 and "which is not trusted" in unknown.stderr, unknown.stderr
    other = ruche(*receiver, "association", "import", str(bundle), "--trust", SigningKey.generate().public.text)
    assert other.exit_code == 2 and "which is not trusted" in other.stderr
    raw = bytearray(bundle.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    flipped = tmp_path / "flipped.bundle"
    flipped.write_bytes(bytes(raw))
    changed = ruche(*receiver, "association", "import", str(flipped), "--trust", SENDER.public.text)
    assert changed.exit_code == 2, changed.stderr
    key_file = tmp_path / "sender.pub"
    key_file.write_text(SENDER.public.text + "\n")
    bad_key = ruche(*receiver, "association", "import", str(bundle), "--trust", str(tmp_path / "nowhere"))
    assert bad_key.exit_code == 2 and "--trust" in bad_key.stderr
    assert recorded(ruche, receiver) == before
    # the key given as a file works as its line does
    assert ruche(*receiver, "association", "import", str(bundle), "--trust", str(key_file), "--dry-run").exit_code == 0


def test_every_problem_is_named_at_once_and_nothing_is_made(workspace, receiver, ruche, tmp_path):
    assert (
        ruche(*receiver, "association", "add", "amap", "--name", "Another AMAP", "--email", "a@b.example").exit_code
        == 0
    )
    bundle = write_bundle(tmp_path / "amap.bundle", services=[
        ("agendas", "radicale", radicale(workspace), "small"), ("forum", "phpbb", "3.3.15", "small"),
        ("veille", "miniflux", "0.0.1", "small"),
    ])  # fmt: skip
    before = recorded(ruche, receiver)
    refused = ruche(*receiver, "association", "import", str(bundle), "--trust", SENDER.public.text)
    assert refused.exit_code == 2
    assert "nothing was changed" in refused.stderr
    for said in ("association amap", "already exists", "--as", "amap/forum: this catalogue has no service 'phpbb'",
                 "amap/veille: miniflux 0.0.1 is not a version this catalogue runs"):  # fmt: skip
        assert said in refused.stderr, (said, refused.stderr)
    assert recorded(ruche, receiver) == before
    # under another slug, the services remain the problem
    again = ruche(*receiver, "association", "import", str(bundle), "--trust", SENDER.public.text, "--as", "amap-2")
    assert again.exit_code == 2 and "already exists" not in again.stderr and "phpbb" in again.stderr


def test_an_offer_too_small_and_secrets_sealed_for_another_collective_are_refused(workspace, receiver, ruche, tmp_path):
    version = radicale(workspace)
    many = [(f"agendas-{n}", "radicale", version, "small") for n in range(12)]
    bundle = write_bundle(tmp_path / "many.bundle", services=many)
    before = recorded(ruche, receiver)
    refused = ruche(
        *receiver, "association", "import", str(bundle), "--trust", SENDER.public.text, "--offer", "decouverte"
    )
    assert refused.exit_code == 2 and "offer" in refused.stderr, refused.stderr
    someone_else = SigningKey.generate().public
    sealed = write_bundle(tmp_path / "sealed.bundle", services=many[:1],
                          secrets={"sealed_for": someone_else.key_id, "box": someone_else.seal(b"{}")})  # fmt: skip
    mine = PublicKey.from_text(json.loads(ruche(*receiver, "key", "show", "--json").stdout)["public_key"])
    wrong = ruche(*receiver, "association", "import", str(sealed), "--trust", SENDER.public.text)
    assert (
        wrong.exit_code == 2 and f"sealed for key {someone_else.key_id}" in wrong.stderr and mine.key_id in wrong.stderr
    )
    unknown_offer = ruche(
        *receiver, "association", "import", str(bundle), "--trust", SENDER.public.text, "--offer", "gold"
    )
    assert unknown_offer.exit_code == 2 and "gold" in unknown_offer.stderr
    assert recorded(ruche, receiver) == before
