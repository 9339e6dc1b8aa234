"""Unit tests of the lab's pure parts and its prerequisite checks (no server is booted here)."""

import os
from collections import namedtuple

import pytest

from orchestrator.errors import InvalidInput, MissingPrerequisite, OperationFailed
from orchestrator.lab import host
from orchestrator.lab.images import LAB_IMAGES, import_changes
from orchestrator.lab.layout import LabLayout, plan_servers
from orchestrator.lab.network import LabNetwork
from orchestrator.lab.record import LabRecord, MachineRecord, ProcessRecord


def test_lab_addresses_and_link_names():
    network = LabNetwork.parse("10.213.47.0/24")
    assert network.gateway == "10.213.47.1"
    assert network.registry_address == "10.213.47.1:5000"
    assert [network.address(p.host_index) for p in plan_servers(2)] == ["10.213.47.11", "10.213.47.12", "10.213.47.10"]
    names = [network.bridge, network.host_link(0), network.host_link(7) + "g"]
    assert all(len(name) <= 15 for name in names)  # the kernel's limit on interface names
    assert LabNetwork.parse("10.213.48.0/24").bridge != network.bridge


def test_a_subnet_too_small_for_the_servers_is_refused():
    network = LabNetwork.parse("10.213.47.0/28")
    assert network.address(14) == "10.213.47.14"
    with pytest.raises(InvalidInput, match="too small"):
        network.address(15)


def test_plan_has_one_backup_server():
    plans = plan_servers(3)
    assert [p.name for p in plans] == ["lab-1", "lab-2", "lab-3", "lab-backup"]
    assert [p.role for p in plans].count("backup") == 1


def test_record_round_trips(tmp_path):
    record = LabRecord(subnet="10.213.47.0/24", bridge="rlabx", registry=ProcessRecord(10, 20), registry_address="a:1")
    record.machines["lab-1"] = MachineRecord("lab-1", "10.213.47.11", "apps", "/x", "rl-0", ProcessRecord(30, 40))
    path = tmp_path / "lab.json"
    record.save(path)
    assert LabRecord.load(path) == record
    assert LabRecord.load(tmp_path / "none.json") is None


def test_layout_never_owns_paths_outside_the_lab(tmp_path):
    layout = LabLayout(tmp_path / "lab")
    assert layout.owns(tmp_path / "lab" / "machines" / "lab-1")
    assert not layout.owns(tmp_path / "lab")
    assert not layout.owns(tmp_path / "lab" / ".." / "elsewhere")
    assert not layout.owns(tmp_path)


def test_not_root_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(MissingPrerequisite, match="needs root") as caught:
        host.require_root()
    assert caught.value.exit_code == 6


def test_missing_programs_are_named_with_their_packages(monkeypatch):
    monkeypatch.setattr(
        host.shutil, "which", lambda program: None if program in ("mmdebstrap", "systemd-nspawn") else "/bin/x"
    )
    with pytest.raises(MissingPrerequisite) as caught:
        host.require_programs()
    assert "mmdebstrap, systemd-nspawn" in caught.value.message
    assert caught.value.hint == "install them with: apt-get install mmdebstrap systemd-container"


def test_too_little_disk_is_a_clear_error(monkeypatch, tmp_path):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(host.shutil, "disk_usage", lambda path: usage(10, 10, 100 * 1024 * 1024))
    with pytest.raises(MissingPrerequisite, match="100 MiB free .* 2400 MiB needed"):
        host.require_free_disk(tmp_path, 2400, "building the server base")


def test_a_full_disk_during_a_command_says_so():
    with pytest.raises(MissingPrerequisite, match="the disk is full"):
        host.run(["sh", "-c", "echo 'write error: No space left on device' >&2; exit 1"], what="debootstrap")


def test_a_failing_command_reports_its_error_output():
    with pytest.raises(OperationFailed, match=r"probe failed \(exit 3\):\nboom"):
        host.run(["sh", "-c", "echo boom >&2; exit 3"], what="probe")


def test_commands_never_go_through_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    output = host.run(["echo", f"$(touch {marker})"]).stdout
    assert output.strip() == f"$(touch {marker})" and not marker.exists()


def test_image_metadata_is_well_formed():
    for image in LAB_IMAGES:
        changes = import_changes(image)
        assert changes[0].startswith('CMD ["/')
        assert f"EXPOSE {image.port}" in changes
        assert image.reference.startswith("lab.ruche.invalid/")
    assert len({image.fingerprint() for image in LAB_IMAGES}) == len(LAB_IMAGES)


def test_lab_images_are_built_from_one_base_per_release_only_when_missing_and_given_in_order(monkeypatch, tmp_path):
    """lab up's image step: the container base of a release is made only for images neither the registry nor this
    machine holds, once per release, before the images (two at a time); references come back in the order asked;
    a build's failure reaches the caller."""
    import threading

    from orchestrator.actions import lab_up
    from orchestrator.lab import images

    old, new = [i for i in LAB_IMAGES if i.suite != "trixie"][:1], [i for i in LAB_IMAGES if i.suite == "trixie"][:3]
    selected = tuple(new[:2] + old + new[2:])
    held = {new[0].reference}  # in the registry already: no base needed for it, but still given
    bases, built, lock = [], [], threading.Lock()
    monkeypatch.setattr(images, "is_in_registry", lambda registry, image: image.reference in held)
    monkeypatch.setattr(images, "is_built", lambda image: False)
    monkeypatch.setattr(images, "container_base", lambda cache, suite: bases.append(suite))

    def build_and_push(image, *, registry_address, cache_dir):
        with lock:
            if image.reference not in held:  # (one already there returns at once)
                assert sorted(bases) == sorted({i.suite for i in selected})  # every base first
            built.append(image.name)
        return image.reference

    monkeypatch.setattr(images, "build_and_push", build_and_push)
    assert lab_up._push_images("10.0.0.1:5000", tmp_path, selected) == [i.reference for i in selected]
    assert sorted(bases) == sorted({i.suite for i in selected}) and len(bases) == len(set(bases))

    bases.clear()
    held = {i.reference for i in selected}  # everything there: no base at all
    monkeypatch.setattr(images, "is_in_registry", lambda registry, image: image.reference in held)
    assert lab_up._push_images("10.0.0.1:5000", tmp_path, selected) == [i.reference for i in selected]
    assert bases == []

    def failing(image, **_):
        raise OperationFailed(f"apt-get install for {image.name} failed")

    monkeypatch.setattr(images, "build_and_push", failing)
    with pytest.raises(OperationFailed, match="apt-get install"):
        lab_up._push_images("10.0.0.1:5000", tmp_path, selected)
