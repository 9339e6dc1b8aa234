"""``ruche server set``: change a registered server's address, SSH settings, capacity or labels."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened, parse_labels
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.state.events import record_event
from orchestrator.state.instances import capacities
from orchestrator.state.servers import (
    changed_spec,
    check_address_free,
    disk_gib,
    get_server,
    memory_mib,
    server_as_dict,
    ssh_key_file,
    update_server,
)

OPTIONS = ("--address", "--ssh-user", "--ssh-port", "--ssh-key", "--cpu", "--memory", "--disk", "--label", "--unlabel")
# What the inventory (and so every SSH connection ansible makes) takes from a server's row.
CONNECTION_FIELDS = ("address", "ssh_user", "ssh_port", "ssh_key_path")


def set_server(
    workspace_path: Path | None,
    name: str,
    *,
    address: str | None = None,
    ssh_user: str | None = None,
    ssh_port: int | None = None,
    ssh_key: str | None = None,
    cpu: int | None = None,
    memory: str | None = None,
    disk: str | None = None,
    labels: tuple[str, ...] = (),
    unlabels: tuple[str, ...] = (),
    force: bool = False,
    dry_run: bool = False,
) -> dict:
    """Change server ``name``; give ``{"server", "before", "after", "changed", "over_capacity", "dry_run"}``.

    Values are validated as `server add` validates them. Refused, with the state unchanged: nothing
    to change (InvalidInput), an unknown server (NotFound), a lab server (Conflict: `ruche lab up`
    owns it), an address another server has (Conflict), and a capacity lowered below what its active
    instances hold, as placement counts it (Conflict), unless ``force``: then the figures are
    recorded in a ``capacity.override`` event. The change itself is recorded by the audit trail
    (``servers.changed``). ``dry_run``: the same checks and answer, nothing stored.
    """
    given = (address, ssh_user, ssh_port, ssh_key, cpu, memory, disk)
    if all(value is None for value in given) and not labels and not unlabels:
        raise InvalidInput(f"nothing to change on server {name}: give at least one of {', '.join(OPTIONS)}")
    changes: dict = {"address": address, "ssh_user": ssh_user, "ssh_port": ssh_port, "cpu": cpu}
    changes = {field: value for field, value in changes.items() if value is not None}
    if memory is not None:
        changes["memory_mb"] = memory_mib(memory)
    if disk is not None:
        changes["disk_gb"] = disk_gib(disk)
    if ssh_key is not None:
        changes["ssh_key_path"] = ssh_key_file(ssh_key)
    added = parse_labels(labels)
    removed = _unlabel_keys(unlabels, added)
    with opened(workspace_path) as (workspace, store), store.session() as session:
        server = get_server(session, name)
        if server.origin == "lab":
            raise Conflict(
                f"{name} belongs to the lab: its address, SSH key and size are the lab's own",
                hint="`ruche lab up` manages lab servers (`ruche lab down`, then `ruche lab up`, makes them again)",
            )
        if added or removed:
            unknown = sorted(set(removed) - set(server.labels))
            if unknown:
                have = ", ".join(f"{k}={v}" for k, v in sorted(server.labels.items())) or "none"
                raise InvalidInput(f"--unlabel {', '.join(unknown)}: server {name} has no such label (labels: {have})")
            changes["labels"] = {k: v for k, v in server.labels.items() if k not in removed} | added
        spec = changed_spec(server, changes)
        if spec.address != server.address:
            check_address_free(session, server, spec.address)
        over = _over_capacity(session, workspace.config.placement, server, spec)
        if over and not force:
            raise Conflict(
                f"server {name}'s active instances hold more than it would offer: "
                + "; ".join(o["text"] for o in over),
                hint="move or delete instances first, or add --force to record the server as over capacity "
                "(placement then puts nothing more on it; `ruche quota report` flags it)",
            )
        before = server_as_dict(server)
        after = {**before, **{k: (dict(sorted(v.items())) if k == "labels" else v) for k, v in spec.model_dump().items()
                              if k in before}}  # fmt: skip
        changed = [field for field in before if before[field] != after[field]]
        if not dry_run and changed:
            update_server(session, server, spec)
            if over:
                record_event(session, kind="capacity.override", subject=f"server/{name}", detail={"over": over})
            after = server_as_dict(server)
        return {
            "server": name, "before": before, "after": after, "changed": changed,
            "connection_changed": [f for f in CONNECTION_FIELDS if f in changed], "over_capacity": over,
            "dry_run": dry_run,
        }  # fmt: skip


def _unlabel_keys(keys: tuple[str, ...], added: dict[str, str]) -> list[str]:
    """The keys of ``--unlabel``; raises InvalidInput for one given twice or also given to ``--label``."""
    seen: list[str] = []
    for key in keys:
        if key in seen:
            raise InvalidInput(f"--unlabel {key} is given twice")
        if key in added:
            raise InvalidInput(f"label {key} is given to both --label and --unlabel")
        seen.append(key)
    return seen


def _over_capacity(session, ratios, server, spec) -> list[dict]:
    """What would be lowered below what the server's active instances hold, counted as placement and
    `quota report` count it (CPU and memory with the [placement] overcommit ratios)."""
    held = next(c for c in capacities(session, 0) if c.name == server.name)
    checks = (
        ("cpu", server.cpu, spec.cpu, held.allocated_cpu, ratios.cpu_overcommit, " core(s)", "cpu_overcommit"),
        ("memory_mb", server.memory_mb, spec.memory_mb, held.allocated_memory_mb, ratios.memory_overcommit, " MiB",
         "memory_overcommit"),
        ("disk_gb", server.disk_gb, spec.disk_gb, held.allocated_disk_gb, 1, " GiB", None),
    )  # fmt: skip
    over = []
    for field, current, new, allocated, ratio, unit, setting in checks:
        ceiling = new * ratio
        if new < current and allocated > ceiling + 1e-9:
            times = f" ({new:g}{unit} x {setting} {ratio:g})" if setting and ratio != 1 else ""
            over.append({
                "field": field, "from": current, "to": new, "allocated": round(allocated, 2), "ceiling": ceiling,
                "text": f"{field} {current:g} -> {new:g}: its instances hold {allocated:g}{unit}, "
                        f"more than {ceiling:g}{unit}{times}",
            })  # fmt: skip
    return over
