"""The registry mirror setting and the collective's own image registry ([images]), as servers' Podman reads them
(containers-registries.conf v2)."""

from __future__ import annotations

from orchestrator.config import ImageSettings, RegistrySettings

MIRROR_DROP_IN_PATH = "/etc/containers/registries.conf.d/50-ruche-mirror.conf"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_mirror_drop_in(settings: RegistrySettings, images: ImageSettings | None = None) -> str:
    """Give the registries.conf drop-in that sends pulls of mirrored registries through the mirror, and allows
    plain HTTP to the collective's image registry when ``images`` says it is insecure.

    With no mirror configured (and no insecure image registry) it gives a drop-in that changes nothing (servers
    pull upstream).
    """
    lines = ["# Written by ruche from the workspace's [registry] settings; do not edit by hand.", ""]
    if images is not None and images.registry is not None and images.insecure:
        # the longest matching prefix wins: this table holds for REGISTRY/... images alone
        lines += ["[[registry]]", f"location = {_toml_string(images.registry)}", "insecure = true", ""]
    if settings.mirror is None:
        return "\n".join(lines)
    for upstream in settings.mirrored_registries:
        lines += [
            "[[registry]]",
            f"prefix = {_toml_string(upstream)}",
            f"location = {_toml_string(upstream)}",
            "",
            "[[registry.mirror]]",
            f"location = {_toml_string(settings.mirror + '/' + upstream)}",
            f"insecure = {'true' if settings.insecure else 'false'}",
            "",
        ]
    return "\n".join(lines)
