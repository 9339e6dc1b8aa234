"""``ruche images build``: the lab's Debian-built service images, for a collective's own registry.

The lab's services (Radicale, Miniflux, the lab's MediaWiki and their PostgreSQL) run images built from Debian
packages (``lab/images.py``) that only the lab's registry serves, as ``lab.ruche.invalid/NAME:TAG``. This builds
the same images, with the same code and cache (the lab's cache directory for the Debian bases, this machine's
Podman storage for the built images, kept as ``localhost/ruche-lab/NAME:FINGERPRINT`` so that building them again
unchanged costs nothing), and pushes them as ``REGISTRY/NAME:TAG``: with ``[images] registry = "REGISTRY"`` in
ruche.toml, ruche deploys them from there (``images.deployed_image``) on any server.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pydantic import ValidationError

from orchestrator.actions.common import Progress, no_progress
from orchestrator.config import ImageSettings
from orchestrator.errors import InvalidInput
from orchestrator.lab import images, rootfs
from orchestrator.lab.host import (
    cache_lock,  # a lab being brought up builds into the same storage
    require_programs,
    require_root,
)

BUILD_PROGRAMS = {"mmdebstrap": "mmdebstrap", "podman": "podman", "tar": "tar", "chroot": "coreutils"}


def select_images(names: tuple[str, ...]) -> list[images.LabImage]:
    """The lab images named by ``names`` (``NAME`` for every Debian release of it, ``NAME:TAG`` for one); all of
    them when ``names`` is empty. Raises InvalidInput for a name the lab does not build."""
    if not names:
        return list(images.LAB_IMAGES)
    chosen: list[images.LabImage] = []
    for wanted in names:
        name, _, tag = wanted.partition(":")
        found = [i for i in images.LAB_IMAGES if i.name == name and tag in ("", i.suite)]
        if not found:
            known = ", ".join(f"{i.name}:{i.suite}" for i in images.LAB_IMAGES)
            raise InvalidInput(f"--image {wanted}: the lab builds no such image (known: {known})")
        chosen += [i for i in found if i not in chosen]
    return chosen


def check_registry(registry: str) -> str:
    """Give ``registry`` if it is a registry's host[:port][/path] ([images] registry's own rule); else InvalidInput."""
    try:
        ImageSettings(registry=registry)
    except ValidationError as error:
        reason = re.sub(r"^Value error, ", "", error.errors()[0]["msg"])
        raise InvalidInput(f"--push {registry}: {reason}") from None
    return registry


def _prune(image: images.LabImage) -> None:
    """Remove this machine's builds of ``image``'s name that no current definition gives (older fingerprints)."""
    current = {i.fingerprint() for i in images.LAB_IMAGES if i.name == image.name}
    listed = subprocess.run(
        ["podman", "images", "--noheading", "--format", "{{.Repository}}:{{.Tag}}",
         "--filter", f"reference={images.LOCAL_REPOSITORY}/{image.name}"],
        capture_output=True, text=True,
    )  # fmt: skip
    stale = [line for line in listed.stdout.split() if line.rpartition(":")[2] not in current]
    if stale:
        subprocess.run(["podman", "rmi", "--ignore", *stale], capture_output=True)


def build_images(
    *,
    names: tuple[str, ...] = (),
    push: str | None = None,
    tls_verify: bool = True,
    cache_dir: Path | None = None,
    progress: Progress = no_progress,
) -> dict:
    """Build the lab's images ``names`` (default: all) and, with ``push`` (a registry's host[:port][/path]), push
    each as ``PUSH/NAME:TAG``.

    Gives ``{"images": [{"name", "tag", "catalogue", "local", "pushed", "digest"}], "registry", "setting"}``:
    ``catalogue`` is the reference entries write (``lab.ruche.invalid/NAME:TAG``), ``pushed`` and ``digest`` what the
    registry now holds (None without ``push``), ``setting`` the ruche.toml lines that make ruche deploy them.
    Raises InvalidInput (an unknown image, a malformed registry), MissingPrerequisite (not root, a program
    missing), OperationFailed (a build or a push failed: podman's answer).
    """
    chosen = select_images(names)
    if push is not None:
        check_registry(push)
    require_root()  # mmdebstrap and chroot
    require_programs(BUILD_PROGRAMS)
    cache_dir = cache_dir or rootfs.default_cache_dir()
    built = []
    with cache_lock(cache_dir, "images"):
        for image in chosen:
            present = images.is_built(image)
            progress(f"{image.name}:{image.suite}: {'already built' if present else 'building from Debian packages'}")
            local = images.build_local(image, cache_dir=cache_dir)
            if not present:
                _prune(image)
            entry = {"name": image.name, "tag": image.suite, "catalogue": image.reference, "local": local,
                     "pushed": None, "digest": None}  # fmt: skip
            if push is not None:
                destination = f"{push}/{image.name}:{image.suite}"
                progress(f"{image.name}:{image.suite}: pushing to {destination}")
                entry["pushed"], entry["digest"] = destination, images.push(local, destination, tls_verify=tls_verify)
            built.append(entry)
    setting = None
    if push is not None:
        setting = f'[images]\nregistry = "{push}"' + ("" if tls_verify else "\ninsecure = true")
    return {"images": built, "registry": push, "setting": setting}
