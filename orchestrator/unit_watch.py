"""Watching an instance's systemd units while waiting for it to come up.

A wait for an instance (its start, its health after a restore, an upgrade, a move) is bounded by a wall-clock
deadline and also watches the instance's units on its server: a unit that failed, or that systemd restarted
RESTART_LOOP times since the wait began, ends the wait at once with the unit's last journal lines, rather than
letting it run to its deadline. The role's own wait (``ruche-wait``, on the server) does the same there.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from orchestrator.errors import RucheError
from orchestrator.remote import SshTarget, run_tool

# each unit of the instance: its state and how often systemd restarted it (one SSH command); a unit whose file is
# gone (LOAD not-found: one of a removed instance, or a sidecar no longer deployed, remembered as failed) is not one
UNITS_SCRIPT = (
    'for unit in $(systemctl list-units --all --plain --no-legend --type=service "ruche-$1-*" '
    "| awk '$2 != \"not-found\" {print $1}'); do "
    'echo "$unit $(systemctl show -P ActiveState "$unit") $(systemctl show -P NRestarts "$unit")"; done'
)
RESTART_LOOP = 3  # restarts during one wait: the unit is failing, not starting
JOURNAL_LINES = 15  # of a failing unit, in what ends the wait

Units = dict[str, tuple[str, int]]


def parse_units(output: str, identifier: str) -> Units:
    """The units UNITS_SCRIPT listed, by name: (ActiveState, NRestarts). The pattern ``ruche-ID-*`` also matches the
    units of an instance whose identifier is ID followed by ``-...`` (``maj--x`` and ``maj--x-y``): those of another
    instance whose network unit is listed are left out."""
    units: Units = {}
    for line in output.splitlines():
        name, _, rest = line.partition(" ")
        state, _, restarts = rest.partition(" ")
        if name.startswith(f"ruche-{identifier}-"):
            units[name] = (state, int(restarts) if restarts.strip().isdigit() else 0)
    others = {
        name.removeprefix("ruche-").removesuffix("-network.service")
        for name in units
        if name.endswith("-network.service") and name != f"ruche-{identifier}-network.service"
    }
    return {
        name: value for name, value in units.items() if not any(name.startswith(f"ruche-{other}-") for other in others)
    }


def instance_units(target: SshTarget, identifier: str) -> Units:
    """The instance's units on ``target`` (application, database, sidecars, network), each with its ActiveState and
    NRestarts; raises OperationFailed when the server cannot be reached."""
    code, output = run_tool(target, ["sh", "-c", UNITS_SCRIPT, "sh", identifier], timeout=60)
    return parse_units(output, identifier) if code == 0 else {}


def failing_among(now: Units, first: Units) -> tuple[str, str] | None:
    """The first unit (by name) of ``now`` that failed, or that systemd restarted RESTART_LOOP times since ``first``
    was read: (its name, why); None while none is."""
    for unit, (state, restarts) in sorted(now.items()):
        more = restarts - first.get(unit, (state, restarts))[1]
        if state == "failed" or more >= RESTART_LOOP:
            return unit, "failed" if state == "failed" else f"restarted {more} times"
    return None


def failing_unit(target: SshTarget, identifier: str, first: Units) -> str | None:
    """A unit of the instance that failed, or that systemd restarted RESTART_LOOP times since ``first``: named,
    with its last log lines; None while none is."""
    found = failing_among(instance_units(target, identifier), first)
    if found is None:
        return None
    unit, why = found
    _code, journal = run_tool(
        target, ["journalctl", "-u", unit, "-n", str(JOURNAL_LINES), "--no-pager", "-o", "cat"], timeout=60
    )
    return f"{unit} {why}; its last lines:\n{journal.strip()}"


def wait_watching(
    probe: Callable[[], tuple[bool, str]], timeout: float, watch: tuple[SshTarget, str] | None, *,
    interval: float = 2.0,
) -> tuple[str, str]:  # fmt: skip
    """Call ``probe`` (giving (ready, detail)) until it is ready, at most ``timeout`` seconds: a wall-clock deadline,
    the probes' own time included. With ``watch`` (the instance's server and identifier), its units are watched
    between probes. Gives ``("ready", detail)``, ``("failed", the unit and its last log lines)`` as soon as a unit
    fails or restarts in a loop, or ``("timeout", the last probe's detail)``. A server that cannot be reached for
    the watch leaves the wait to its probe and deadline."""
    deadline = time.monotonic() + timeout
    first: Units | None = None
    if watch is not None:
        try:
            first = instance_units(*watch)
        except RucheError:
            first = None
    while True:
        ready, detail = probe()
        if ready:
            return "ready", detail
        if watch is not None:
            try:
                if first is None:
                    first = instance_units(*watch)
                failing = failing_unit(*watch, first)
            except RucheError:
                failing = None
            if failing:
                return "failed", failing
        if time.monotonic() >= deadline:
            return "timeout", detail
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
