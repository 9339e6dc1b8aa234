"""Root file systems of lab servers: one cached Debian base, cloned for each server."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from orchestrator.lab.host import require_free_disk, run

SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
# What a server of the pool runs, so that the server role's package tasks are satisfied offline.
SERVER_PACKAGES = (
    "acl", "aardvark-dns", "ca-certificates", "caddy", "catatonit", "conmon", "crun", "curl", "dbus",
    "iproute2", "netavark", "nftables", "openssh-server", "podman", "procps", "python3", "python3-aiosmtpd", "python3-apt",
    "restic", "systemd", "systemd-sysv", "uidmap",
)  # fmt: skip
# Units that cannot work in a container, or that would wait for a network nothing configures.
MASKED_UNITS = (
    "sys-kernel-tracing.mount", "sys-kernel-debug.mount", "sys-kernel-config.mount",
    "systemd-modules-load.service", "systemd-networkd-wait-online.service", "getty@tty1.service",
    "console-getty.service", "apt-daily.timer", "apt-daily-upgrade.timer",
)  # fmt: skip
FILES_DIR = Path(__file__).parent / "files"
BASE_SIZE_MIB = 1200


def default_cache_dir() -> Path:
    """Give ``$RUCHE_LAB_CACHE`` or /var/cache/ruche/lab: where bases and images are kept across labs."""
    return Path(os.environ.get("RUCHE_LAB_CACHE", "/var/cache/ruche/lab"))


def package_key(suite: str, packages: tuple[str, ...], extra: str = "") -> str:
    """Give the cache key of a bootstrap of ``packages`` from ``suite`` (changes when the list does)."""
    text = "\n".join([suite, *sorted(packages), extra])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def bootstrap(target: Path, packages: tuple[str, ...], *, cache_dir: Path, what: str, suite: str = SUITE) -> Path:
    """Give a minbase ``suite`` (default ``SUITE``) root file system with ``packages`` at ``target``, building it if missing.

    Built by mmdebstrap (Debian's own, apt-driven successor of debootstrap: the same minbase system, about twice as
    fast here, 36 s against 61 s for the server base), keeping the package lists as debootstrap did. The build
    happens in a temporary sibling renamed at the end, so an interrupted build never leaves a half base in the
    cache.  Raises MissingPrerequisite when the disk is too full.
    """
    if target.is_dir():
        return target
    require_free_disk(cache_dir, BASE_SIZE_MIB * 2, f"building the {what}")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    arguments = ["mmdebstrap", "--variant=minbase", "--skip=cleanup/apt/lists"]  # (its output: the error's tail)
    if packages:
        arguments.append("--include=" + ",".join(sorted(packages)))
    try:
        run([*arguments, suite, partial, MIRROR], timeout=1800, what=f"mmdebstrap of the {what}")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(partial / "var/cache/apt/archives", ignore_errors=True)
    (partial / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    partial.rename(target)
    return target


def server_base(cache_dir: Path) -> Path:
    """Give the cached base root file system of lab servers, building it (about 90 s) if missing."""
    key = package_key(SUITE, SERVER_PACKAGES, extra="\n".join(MASKED_UNITS))
    target = cache_dir / f"server-base-{key}"
    if target.is_dir():
        return target
    built = bootstrap(cache_dir / f"server-debootstrap-{key}", SERVER_PACKAGES, cache_dir=cache_dir, what="server base")
    _apply_lab_quirks(built)
    built.rename(target)
    return target


def _apply_lab_quirks(root: Path) -> None:
    """Make a bootstrapped root bootable by systemd-nspawn in this sandbox."""
    units = root / "etc/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    for unit in MASKED_UNITS:
        link = units / unit
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("/dev/null")
    containers = root / "etc/containers"
    containers.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FILES_DIR / "containers.conf", containers / "containers.conf")
    for key in root.glob("etc/ssh/ssh_host_*"):
        key.unlink()  # each clone gets its own host keys
    (root / "etc/machine-id").write_text("")


def clone_server(base: Path, target: Path, *, hostname: str, authorized_key: str) -> str:
    """Copy ``base`` to ``target`` as server ``hostname`` that trusts ``authorized_key``.

    Gives the server's new SSH host public key (ed25519), for the lab's known_hosts file.
    """
    if target.exists():
        shutil.rmtree(target)
    require_free_disk(target.parent, BASE_SIZE_MIB, f"the root file system of {hostname}")
    run(["cp", "-a", "--reflink=auto", base, target], what=f"copy of the base for {hostname}")
    (target / "etc/hostname").write_text(hostname + "\n")
    (target / "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost\n")
    run(["ssh-keygen", "-A", "-f", target], what=f"host keys of {hostname}")
    ssh_dir = target / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(authorized_key.strip() + "\n")
    authorized.chmod(0o600)
    return (target / "etc/ssh/ssh_host_ed25519_key.pub").read_text().strip()


def install_unit(root: Path, unit: str) -> None:
    """Install ``unit`` (a file in orchestrator/lab/files) into the server root file system ``root``, enabled."""
    target = root / "etc/systemd/system" / unit
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FILES_DIR / unit, target)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / unit).unlink(missing_ok=True)
    (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
