"""What changed between two inventories, read instance by instance (orchestrator.inventory_history):
in a server's file that changed only the instances whose text changed are read, and an association
whose other instance did not change is still hosted."""

from __future__ import annotations

from orchestrator.inventory import ServerEntry, render_inventory
from orchestrator.inventory_history import describe_changes
from tests.helpers import instance_entry

SERVERS = [
    ServerEntry("web-1", "192.0.2.1", "root", 22, "apps", False),
    ServerEntry("web-2", "192.0.2.2", "root", 22, "apps", False),
]


def test_one_instance_changed_removed_or_moved_among_unchanged_ones():
    base = [instance_entry("amap", "agenda", "web-1"), instance_entry("amap", "cloud", "web-1"),
            instance_entry("chorale", "agenda", "web-1"), instance_entry("chorale", "wiki", "web-2")]  # fmt: skip
    before = render_inventory(SERVERS, base)

    edited = [*base[:2], instance_entry("chorale", "agenda", "web-1", title="Chorale"), base[3]]
    changes = describe_changes(before, render_inventory(SERVERS, edited))
    assert changes["instances"] == {"added": [], "removed": [], "changed": {"chorale/agenda": ["parameters"]}}
    assert changes["associations"] == {"added": [], "removed": []} and changes["servers"]["changed"] == {}

    removed = describe_changes(before, render_inventory(SERVERS, [base[0], *base[2:]]))
    assert removed["instances"]["removed"] == ["amap/cloud"]
    assert removed["associations"]["removed"] == []  # amap/agenda, unchanged in the same file, is still hosted
    gone = describe_changes(before, render_inventory(SERVERS, base[2:]))
    assert gone["associations"]["removed"] == ["amap"] and gone["instances"]["removed"] == ["amap/agenda", "amap/cloud"]

    moved = describe_changes(
        before, render_inventory(SERVERS, [*base[:2], instance_entry("chorale", "agenda", "web-2"), base[3]])
    )
    assert moved["instances"] == {"added": [], "removed": [], "changed": {"chorale/agenda": ["server"]}}
    assert describe_changes(before, dict(before))["instances"] == {"added": [], "removed": [], "changed": {}}
