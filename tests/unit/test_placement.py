import pytest

from orchestrator.errors import Conflict
from orchestrator.placement import Capacity, Demand, place


def server(name, **overrides):
    values = dict(name=name, role="apps", draining=False, labels={}, cpu=4, memory_mb=8192, disk_gb=100)
    values.update(overrides)
    return Capacity(**values)


def demand(**overrides):
    values = dict(association="asso", cpu=1, memory_mb=1024, disk_gb=10)
    values.update(overrides)
    return Demand(**values)


def test_prefers_the_server_without_this_association_then_most_memory():
    decision = place(
        demand(), [server("a", association_instances=1), server("b", allocated_memory_mb=4096), server("c")]
    )
    assert decision.server == "c"
    assert [c.server for c in decision.candidates] == ["c", "b", "a"]


def test_spreads_one_association_across_servers():
    decision = place(
        demand(), [server("a", association_instances=1), server("b", association_instances=0, allocated_memory_mb=7000)]
    )
    assert decision.server == "b"


def test_never_oversubscribes_and_explains_each_refusal():
    servers = [
        server("full", allocated_memory_mb=7500),
        server("drained", draining=True),
        server("backup", role="backup"),
        server("cpu", allocated_cpu=7.5),
        server("disk", allocated_disk_gb=95),
    ]
    with pytest.raises(Conflict) as caught:
        place(demand(), servers, cpu_ratio=2.0)
    message = caught.value.message
    assert "full: not enough memory: 8524 MiB would exceed 8192 MiB" in message
    assert "drained: draining" in message and "backup: role is backup" in message
    assert "cpu: not enough CPU: 8.5 would exceed 8" in message
    assert "disk: not enough disk: 105 GiB would exceed 100 GiB" in message


def test_exactly_full_is_allowed():
    assert place(demand(memory_mb=8192), [server("a")]).server == "a"


def test_labels_and_explicit_server_are_honoured():
    servers = [server("lyon", labels={"region": "lyon"}), server("paris", labels={"region": "paris"})]
    assert place(demand(required_labels={"region": "paris"}), servers).server == "paris"
    assert place(demand(server="lyon"), servers).server == "lyon"
    with pytest.raises(Conflict, match="lacks label"):
        place(demand(required_labels={"region": "nantes"}), servers)


def test_no_server_at_all_is_a_clear_error():
    with pytest.raises(Conflict, match="no server is registered"):
        place(demand(), [])
