"""The lab network: one host bridge in one small subnet, and a veth link per server."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass

from orchestrator.errors import Conflict, InvalidInput, OperationFailed
from orchestrator.lab.host import run

REGISTRY_PORT = 5000
BACKUP_HOST_INDEX = 10
FIRST_APP_HOST_INDEX = 11


@dataclass(frozen=True)
class LabNetwork:
    """Addresses and link names of a lab in ``subnet``: bridge .1, backup server .10, apps from .11."""

    subnet: ipaddress.IPv4Network

    @classmethod
    def parse(cls, subnet: str) -> LabNetwork:
        return cls(ipaddress.IPv4Network(subnet, strict=True))

    @property
    def _tag(self) -> str:
        return hashlib.sha256(str(self.subnet).encode()).hexdigest()[:6]

    @property
    def bridge(self) -> str:
        return f"rlab{self._tag}"

    def host_link(self, index: int) -> str:
        return f"rl{self._tag}-{index}"

    @property
    def prefix_length(self) -> int:
        return self.subnet.prefixlen

    @property
    def gateway(self) -> str:
        """The host's address on the lab bridge (also where the lab registry listens)."""
        return str(self.subnet.network_address + 1)

    @property
    def registry_address(self) -> str:
        return f"{self.gateway}:{REGISTRY_PORT}"

    def address(self, host_index: int) -> str:
        """Give the address with host part ``host_index``; raises InvalidInput past the subnet's end."""
        address = self.subnet.network_address + host_index
        if address >= self.subnet.broadcast_address:
            raise InvalidInput(
                f"subnet {self.subnet} is too small for host .{host_index}",
                hint="use fewer servers or a larger lab subnet (lab.subnet in ruche.toml, up to /24)",
            )
        return str(address)


def _host_networks() -> list[tuple[str, ipaddress.IPv4Network]]:
    """Give (link name, network) for every IPv4 address and route on this machine."""
    found: list[tuple[str, ipaddress.IPv4Network]] = []
    for link in json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]"):
        for info in link.get("addr_info", []):
            found.append((link["ifname"], ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)))
    for route in json.loads(run(["ip", "-j", "-4", "route", "show"]).stdout or "[]"):
        destination = route.get("dst", "")
        if destination and destination != "default":
            found.append((route.get("dev", "?"), ipaddress.IPv4Network(destination, strict=False)))
    return found


def ensure_subnet_free(network: LabNetwork) -> None:
    """Raise Conflict when any link but the lab's own bridge uses an address or route in the subnet."""
    for link, used in _host_networks():
        if link != network.bridge and used.overlaps(network.subnet):
            raise Conflict(
                f"lab subnet {network.subnet} is already in use on this machine ({link} has {used})",
                hint='choose another subnet in ruche.toml ([lab] subnet = "10.213.48.0/24") or remove what uses it',
            )


def link_exists(name: str) -> bool:
    return run(["ip", "-j", "link", "show"], what="ip link show").stdout.find(f'"ifname":"{name}"') >= 0


def create_bridge(network: LabNetwork) -> None:
    """Create the lab bridge with the gateway address (nothing is forwarded beyond the subnet)."""
    if not link_exists(network.bridge):
        run(["ip", "link", "add", network.bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"{network.gateway}/{network.prefix_length}", "dev", network.bridge])
    run(["ip", "link", "set", network.bridge, "up"])


def delete_link(name: str) -> None:
    """Delete link ``name`` if it exists (deleting one end of a veth pair deletes both). A link that goes away by
    itself meanwhile (a server's veth, when the server stops) is gone as wanted: only another failure raises."""
    if not link_exists(name):
        return
    try:
        run(["ip", "link", "delete", name])
    except OperationFailed:
        if link_exists(name):
            raise


def attach_server(network: LabNetwork, host_link: str, leader_pid: int, address: str) -> None:
    """Give the server whose init is ``leader_pid`` an ``eth0`` with ``address`` on the lab bridge.

    No default route is set: lab servers reach the lab subnet and nothing else.
    """
    guest_link = f"{host_link}g"
    run(["ip", "link", "add", host_link, "type", "veth", "peer", "name", guest_link, "netns", str(leader_pid)])
    run(["ip", "link", "set", host_link, "master", network.bridge, "up"])
    in_guest = ["nsenter", "-t", str(leader_pid), "-n", "ip"]
    run([*in_guest, "link", "set", guest_link, "name", "eth0"])
    run([*in_guest, "addr", "add", f"{address}/{network.prefix_length}", "dev", "eth0"])
    run([*in_guest, "link", "set", "eth0", "up"])
    run([*in_guest, "link", "set", "lo", "up"])
