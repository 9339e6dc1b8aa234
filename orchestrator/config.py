"""The workspace configuration (``ruche.toml``), defined only by these pydantic models."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.errors import ConfigError
from orchestrator.validation import validate_document

CONFIG_FILE_NAME = "ruche.toml"
DEFAULT_LAB_SUBNET = "10.213.47.0/24"
LAB_IMAGE_NAMESPACE = "lab.ruche.invalid"

_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class StrictModel(BaseModel):
    """Base of every schema: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistrySettings(StrictModel):
    mirror: Annotated[
        str | None,
        Field(
            description="Registry (host[:port]) that servers pull images through before the "
            "upstream registry, e.g. a collective's own mirror; unset pulls from upstream directly."
        ),
    ] = None
    insecure: Annotated[
        bool, Field(description="Whether the mirror speaks plain HTTP (true only for a lab or a private network).")
    ] = False
    mirrored_registries: Annotated[
        list[str],
        Field(description="Upstream registries whose images are looked up on the mirror first."),
    ] = ["docker.io", "quay.io", "ghcr.io", "codeberg.org", LAB_IMAGE_NAMESPACE]

    @field_validator("mirror")
    @classmethod
    def _mirror_is_host_port(cls, value: str | None) -> str | None:
        if value is not None and not _HOST_PORT.match(value):
            raise ValueError("must be host or host:port, without scheme or path, e.g. 'mirror.example.org:5000'")
        return value


class LabSettings(StrictModel):
    subnet: Annotated[
        str,
        Field(description="IPv4 subnet (at most /24, at least /28) for the lab's bridge, registry and servers."),
    ] = DEFAULT_LAB_SUBNET

    @field_validator("subnet")
    @classmethod
    def _subnet_is_small_ipv4(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError as error:
            raise ValueError(f"not an IPv4 network such as '{DEFAULT_LAB_SUBNET}': {error}") from None
        if not 24 <= network.prefixlen <= 28:
            raise ValueError("the prefix length must be between /24 and /28")
        return value


class PlacementSettings(StrictModel):
    cpu_overcommit: Annotated[
        float, Field(ge=1, le=16, description="Allocated CPU may reach a server's cores times this ratio.")
    ] = 2.0
    memory_overcommit: Annotated[
        float, Field(ge=1, le=4, description="Allocated memory may reach a server's memory times this ratio.")
    ] = 1.0


class SecretsSettings(StrictModel):
    vault_password_file: Annotated[
        str | None,
        Field(
            description="File holding the ansible-vault password that encrypts instances' secrets; it must lie "
            "outside the workspace. RUCHE_VAULT_PASSWORD (the password) or RUCHE_VAULT_PASSWORD_FILE override it."
        ),
    ] = None


class WorkspaceConfig(StrictModel):
    collective: Annotated[str, Field(min_length=1, max_length=120, description="The hosting collective's name.")]
    base_domain: Annotated[
        str, Field(description="Domain under which instances get their addresses, e.g. 'chatons.example.org'.")
    ]
    environment: Annotated[
        str,
        Field(pattern=r"^[a-z][a-z0-9-]{0,30}$", description="Name of the inventory environment (inventories/NAME)."),
    ] = "production"
    state_url: Annotated[
        str,
        Field(description="SQLAlchemy URL of the state database; a relative SQLite path is taken from the workspace."),
    ] = "sqlite:///ruche.db"
    catalog_dir: Annotated[
        str | None,
        Field(description="Directory of the service catalogue (*.yaml); unset uses the catalogue shipped with ruche."),
    ] = None
    registry: Annotated[RegistrySettings, Field(description="Where servers pull container images from.")] = (
        RegistrySettings()
    )
    proxy_tls: Annotated[
        Literal["acme", "internal"],
        Field(description="How Caddy gets certificates: 'acme' (public CA) or 'internal' (its own CA, for the lab)."),
    ] = "acme"
    resource_limits: Annotated[
        bool,
        Field(
            description="Whether containers get the CPU and memory limits of their size. Needs the cgroup v2 cpu and "
            "memory controllers on the servers; `ruche lab up` sets false, its servers have none."
        ),
    ] = True
    placement: Annotated[PlacementSettings, Field(description="How full servers may get.")] = PlacementSettings()
    lab: Annotated[LabSettings, Field(description="Settings of the local lab (`ruche lab up`).")] = LabSettings()
    secrets: Annotated[SecretsSettings, Field(description="Where the vault password comes from.")] = SecretsSettings()

    @field_validator("base_domain")
    @classmethod
    def _domain_is_valid(cls, value: str) -> str:
        if not _DOMAIN.match(value):
            raise ValueError("must be a lower-case DNS name such as 'chatons.example.org'")
        return value


def load_config(path: Path) -> WorkspaceConfig:
    """Give the validated configuration in ``path``; raises ConfigError naming the file and field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", hint="run `ruche init` to create a workspace") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return validate_document(WorkspaceConfig, data, path)


def dump_config(config: WorkspaceConfig) -> str:
    """Give the TOML text of ``config``, leaving out unset optional values."""
    return tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))
