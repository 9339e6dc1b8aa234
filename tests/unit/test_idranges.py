"""Fixed subordinate ID ranges: allocation, the pool's bounds, and ruche-idmap's moves of file owners."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
from pathlib import Path

import pytest
import yaml

from orchestrator.idranges import LAST_SLOT, POOL_SIZE, POOL_START, RANGE_SIZE, free_slot, id_range, overlapping

ROLES = Path(__file__).parents[2] / "playbooks" / "roles"


def load_script(name: str):
    path = ROLES / "ruche_server" / "files" / name
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def test_slots_give_disjoint_ranges_inside_the_pool_and_below_the_invalid_id():
    first, last = id_range(0), id_range(LAST_SLOT)
    assert first.start == POOL_START and last.end <= (1 << 32) - 2 and last.end == POOL_START + POOL_SIZE - 1
    assert not id_range(5).overlaps(id_range(6)) and id_range(5).overlaps(id_range(5))
    with pytest.raises(ValueError):
        id_range(LAST_SLOT + 1)
    assert free_slot({0, 1, 3}) == 2 and free_slot(set()) == 0
    assert overlapping({"a": id_range(1), "b": id_range(2)}) == [] and overlapping(
        {"a": id_range(1), "b": id_range(1)}
    ) == [("a", "b")]


def test_the_server_role_registers_the_same_pool():
    defaults = yaml.safe_load((ROLES / "ruche_server" / "defaults" / "main.yml").read_text())
    assert (defaults["ruche_server_id_pool_start"], defaults["ruche_server_id_pool_size"]) == (POOL_START, POOL_SIZE)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_idmap_moves_owners_between_ranges_and_from_the_old_auto_pool(tmp_path):
    idmap = load_script("ruche-idmap")
    old = idmap.LEGACY_AUTO_START + 2 * RANGE_SIZE  # an instance's range under UserNS=auto
    volume = tmp_path / "volumes" / "data"
    volume.mkdir(parents=True)
    for name, inside in (("root-file", 0), ("www-data-file", 33)):
        (volume / name).write_text(name)
        os.chown(volume / name, old + inside, old + inside)
    foreign = volume / "host-root-file"
    foreign.write_text("x")  # owned by the host's root: not the instance's, never moved
    start = id_range(7).start
    assert idmap.move_owners(str(volume), idmap.legacy(start, RANGE_SIZE)) == 2
    assert (os.stat(volume / "root-file").st_uid, os.stat(volume / "www-data-file").st_gid) == (start, start + 33)
    assert os.stat(foreign).st_uid == 0
    other = id_range(9).start
    assert idmap.move_owners(str(volume), idmap.shifter(start, other, RANGE_SIZE)) == 2
    assert os.stat(volume / "www-data-file").st_uid == other + 33 and os.stat(foreign).st_uid == 0

    # prepare: the marker records the range; the same range again changes nothing
    idmap.write_marker(str(tmp_path), other, RANGE_SIZE)
    again = idmap.prepare(str(tmp_path), other, RANGE_SIZE, json.dumps([]), [])
    assert again == {"status": "success", "changed": False}
    moved = idmap.prepare(str(tmp_path), start, RANGE_SIZE,
                          json.dumps([{"path": "volumes/data", "image": "lab.ruche.invalid/radicale:trixie", "mount": "/data"}]), [])  # fmt: skip
    assert moved["changed"] and os.stat(volume / "www-data-file").st_uid == start + 33
    with pytest.raises(idmap.Failure):
        idmap.prepare(
            str(tmp_path), other, RANGE_SIZE, json.dumps([{"path": "../escape", "image": "a.b/c", "mount": "/x"}]), []
        )


def test_idmap_registers_the_pool_once_drops_the_old_auto_entry_and_refuses_an_overlap(tmp_path, monkeypatch):
    idmap = load_script("ruche-idmap")
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    monkeypatch.setattr(idmap, "SUBID_FILES", (str(subuid), str(subgid)))
    subuid.write_text("admin:100000:65536\nruche:1:2\ncontainers:2147483647:2147483648\nruche:3:4\n")
    subuid.chmod(0o640)  # an admin's mode is kept
    wanted = f"ruche:{POOL_START}:{POOL_SIZE}"
    assert idmap.register_pool(POOL_START, POOL_SIZE) == {
        "status": "success", "changed": True, "written": [str(subuid), str(subgid)]
    }  # fmt: skip
    assert subuid.read_text() == f"admin:100000:65536\n{wanted}\n" and subgid.read_text() == f"{wanted}\n"
    assert (subuid.stat().st_mode & 0o777, subgid.stat().st_mode & 0o777) == (0o640, 0o644)
    assert idmap.register_pool(POOL_START, POOL_SIZE) == {"status": "success", "changed": False, "written": []}
    assert idmap.check_pool(POOL_START, POOL_SIZE)["status"] == "success"
    # another entry inside the pool: refused, naming it, and neither file is touched
    subgid.write_text(f"{wanted}\nsomeone:{POOL_START + 10}:65536\n")
    before = subuid.read_text(), subgid.read_text()
    refused = idmap.register_pool(POOL_START, POOL_SIZE)
    assert refused["status"] == "failed" and refused["conflicts"] == [f"{subgid}:2: someone:{POOL_START + 10}:65536"]
    assert (subuid.read_text(), subgid.read_text()) == before
    assert idmap.check_pool(POOL_START, POOL_SIZE)["conflicts"] == refused["conflicts"]
