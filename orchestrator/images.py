"""Which image a server pulls for a catalogue entry's image reference, and where the lab's own images may run.

The lab's services (Radicale, Miniflux, the lab's MediaWiki) run images built from Debian packages
(``lab/images.py``), named ``lab.ruche.invalid/NAME:TAG``: only the lab's registry serves them.
``ruche images build --push REGISTRY`` builds the same images for a collective's own registry; with
``[images] registry`` in ruche.toml, :func:`deployed_image` names them there (``REGISTRY/NAME:TAG``). It is the
one place a catalogue's reference becomes the image a server pulls (deployments, upgrades' pulls and database
moves). An image still under ``lab.ruche.invalid`` after it is refused on a server that is not the lab's
(placement, ``instance upgrade``, and every inventory written: ``operations/inventories.refuse_lab_only``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.config import LAB_IMAGE_NAMESPACE
from orchestrator.errors import Conflict
from orchestrator.remote import SshTarget, run_tool

if TYPE_CHECKING:
    from orchestrator.catalog import Service

LAB_PREFIX = LAB_IMAGE_NAMESPACE + "/"
LAB_ONLY_HINT = (
    "build and push the lab's images to the collective's registry with `ruche images build --push REGISTRY`, "
    'then set [images] registry = "REGISTRY" in ruche.toml'
)


def deployed_image(reference: str, registry: str | None) -> str:
    """The image servers pull for ``reference`` (as a catalogue entry writes it): a lab image
    ``lab.ruche.invalid/NAME:TAG`` becomes ``REGISTRY/NAME:TAG`` when ``registry`` ([images] registry) is set."""
    if registry is not None and reference.startswith(LAB_PREFIX):
        return f"{registry}/{reference.removeprefix(LAB_PREFIX)}"
    return reference


def deployed_images(service: Service, version: str | None, registry: str | None) -> list[str]:
    """Every image an instance of ``service`` at ``version`` runs (application, database, sidecars), as pulled."""
    release = service.release(version)
    references = [release.image, release.database_image] + [service.sidecar_image(s, version) for s in service.sidecars]
    return list(dict.fromkeys(deployed_image(r, registry) for r in references if r))


def lab_only(images: list[str]) -> list[str]:
    """The images of ``images`` (as pulled) that only the lab's registry serves."""
    return [image for image in images if image.startswith(LAB_PREFIX)]


def lab_only_refusal(
    subject: str, server: str, images: list[str], *, others: list[str] = (), or_else: str = ""
) -> Conflict:
    """The refusal of ``subject`` (an instance) on ``server``, not a lab server, because of ``images``; ``others``:
    more instances refused alike; ``or_else``: another way out, added to the hint."""
    these = "this image is" if len(images) == 1 else "these images are"
    more = f"; so would {', '.join(others[:5])}" + (" and others" if len(others) > 5 else "") if others else ""
    return Conflict(
        f"{subject} would run {', '.join(images)} on server {server}, which is not a lab server: "
        f"{these} only served by the lab's registry{more}",
        hint=LAB_ONLY_HINT + (f"; or {or_else}" if or_else else ""),
    )


# each image: present on the server, else pulled (through its registries.conf mirror); the first that cannot be
# pulled ends the script with podman's own error
PULL_SCRIPT = ('for image do podman image exists "$image" && { echo "present: $image"; continue; }; '
               'podman pull --quiet "$image" 2>&1 >/dev/null || { echo "cannot pull $image"; exit 1; }; '
               'echo "pulled: $image"; done')  # fmt: skip


def ensure_present(target: SshTarget, images: list[str], *, timeout: float = 3600) -> tuple[bool, str]:
    """Have ``images`` on ``target`` (each pulled unless present), in one SSH command, before anything that needs
    them stops the service; give (all there, what podman said: the registry's answer when a pull failed)."""
    code, output = run_tool(target, ["sh", "-c", PULL_SCRIPT, "sh", *dict.fromkeys(images)], timeout=timeout)
    return code == 0, output.strip()
