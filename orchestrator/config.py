"""The workspace configuration (``ruche.toml``), defined only by these pydantic models."""

from __future__ import annotations

import ipaddress
import re
import textwrap
import tomllib
import typing
from datetime import UTC, date
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from orchestrator.errors import ConfigError
from orchestrator.validation import validate_document

CONFIG_FILE_NAME = "ruche.toml"
LAB_SETTINGS_FILE_NAME = "settings.toml"  # in the lab's directory, see Workspace.lab_settings_path
# what the lab's settings may replace while it is up (the rest of ruche.toml applies to the lab as it is)
LAB_SETTINGS_KEYS = ("registry", "proxy_tls", "resource_limits", "backup", "mail", "domains")
DEFAULT_LAB_SUBNET = "10.213.47.0/24"
LAB_IMAGE_NAMESPACE = "lab.ruche.invalid"

_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def dns_name(value: str) -> str:
    """Give ``value`` if it is a lower-case DNS name; raises ValueError saying what is expected."""
    if not _DOMAIN.match(value):
        raise ValueError("must be a lower-case DNS name such as 'chatons.example.org'")
    return value


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


_REGISTRY_PATH = re.compile(
    r"^(?=.{1,255}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
)


class ImageSettings(StrictModel):
    registry: Annotated[
        str | None,
        Field(
            description=f"The collective's own registry (host[:port][/path], no scheme) holding the images "
            f"`ruche images build --push REGISTRY` built from Debian, as the lab does: every {LAB_IMAGE_NAMESPACE}/NAME:TAG "
            "image of the catalogue is then deployed as REGISTRY/NAME:TAG. Unset: those images are served by the lab's "
            "registry only, and instances that use them are refused on servers other than the lab's."
        ),
    ] = None
    insecure: Annotated[
        bool,
        Field(
            description="Whether that registry speaks plain HTTP (or has a certificate the servers do not trust): the "
            "servers are told so. True only for a lab or a private network."
        ),
    ] = False

    @field_validator("registry")
    @classmethod
    def _registry_is_host_path(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if "://" in value or not _REGISTRY_PATH.match(value):
            raise ValueError(
                "must be a registry's host[:port] and optional path, without scheme, e.g. 'registry.example.org/chatons'"
            )
        host = value.split("/", 1)[0]
        if "." not in host and ":" not in host and host != "localhost":
            # otherwise "chatons/radicale" would name docker.io/chatons/radicale
            raise ValueError(
                "its host must hold a dot or a port (or be localhost), e.g. 'registry.example.org/chatons'"
            )
        if host == LAB_IMAGE_NAMESPACE:
            raise ValueError(f"{LAB_IMAGE_NAMESPACE} is the lab's own name for these images: name another registry")
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


class LocalizedText(StrictModel):
    fr: Annotated[str, Field(min_length=1, max_length=200, description="French text (shown first).")]
    en: Annotated[str, Field(min_length=1, max_length=200, description="English text.")]


class Retention(StrictModel):
    daily: Annotated[int, Field(ge=0, le=366, description="Daily snapshots kept (restic --keep-daily).")] = 7
    weekly: Annotated[int, Field(ge=0, le=260, description="Weekly snapshots kept (restic --keep-weekly).")] = 4
    monthly: Annotated[int, Field(ge=0, le=120, description="Monthly snapshots kept (restic --keep-monthly).")] = 6

    @property
    def window_days(self) -> int:
        """How far back the oldest kept snapshot may reach, in days (for final backups)."""
        return max(self.daily, 7 * self.weekly, 31 * self.monthly, 1)


class Offer(StrictModel):
    label: Annotated[LocalizedText, Field(description="Name shown to associations.")]
    max_instances: Annotated[int, Field(ge=0, le=1000, description="Most instances an association may have.")]
    memory_mb: Annotated[int, Field(ge=0, description="Total memory of its instances' sizes, in MiB.")]
    disk_gb: Annotated[int, Field(ge=0, description="Total disk of its instances' sizes, in GiB.")]
    services: Annotated[
        dict[str, dict[str, str]],
        Field(
            description="Per-service limits, by service id then limit name (the names a catalogue entry declares "
            "under `limits`, e.g. nextcloud's user_quota); unset limits take the entry's default."
        ),
    ] = {}
    backup_retention: Annotated[Retention, Field(description="How many snapshots are kept.")] = Retention()
    backup_window_hours: Annotated[
        int, Field(ge=1, le=24 * 31, description="`backup status` flags an instance whose last good backup is older.")
    ] = 26
    trash_retention_days: Annotated[
        int,
        Field(
            ge=0,
            le=3660,
            description="Days the data of an instance deleted without --purge stays in its server's trash "
            "(/srv/ruche/trash) before `ruche trash empty` erases it; 0: at the next emptying. An association's "
            "entries are due at once when it has no offer or is removed.",
        ),
    ] = 30
    auto_approve: Annotated[
        bool, Field(description="Whether an association's request within this offer goes straight to provisioning.")
    ] = False
    maintenance_window: Annotated[
        str | None,
        Field(
            pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$",
            description="When fleet upgrades (`ruche upgrade`) may touch this offer's instances, as HH:MM-HH:MM in "
            "UTC (may span midnight, e.g. 22:00-06:00); unset: any time.",
        ),
    ] = None

    def in_maintenance_window(self, moment) -> bool:
        """Tell whether ``moment`` (an aware datetime) falls in the maintenance window (always, when unset)."""
        if self.maintenance_window is None:
            return True
        start, end = (int(part[:2]) * 60 + int(part[3:]) for part in self.maintenance_window.split("-"))
        minute = moment.astimezone(UTC).hour * 60 + moment.astimezone(UTC).minute
        return start <= minute < end if start <= end else (minute >= start or minute < end)


class UpgradeSettings(StrictModel):
    start_timeout_seconds: Annotated[
        int,
        Field(
            ge=10, le=3600, description="How long a new version may take to answer healthy before it is rolled back."
        ),
    ] = 300


class AuditSettings(StrictModel):
    verify_max_age_days: Annotated[
        int,
        Field(
            ge=1,
            le=3660,
            description="`ruche audit`: a running instance's last passed `backup verify` may be at most this old.",
        ),
    ] = 35


class FirewallRule(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)  # `from` in ruche.toml

    port: Annotated[int, Field(ge=1, le=65535, description="Port to open on every application server.")]
    proto: Annotated[Literal["tcp", "udp"], Field(description="Protocol.")] = "tcp"
    from_: Annotated[
        str | None,
        Field(alias="from", description="Only from this IP address or network (CIDR); unset: from anywhere."),
    ] = None

    @field_validator("from_")
    @classmethod
    def _is_address_or_network(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                return str(ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or network (e.g. 192.0.2.0/24)") from None
        return value


class FirewallSettings(StrictModel):
    extra_rules: Annotated[
        list[FirewallRule],
        Field(
            max_length=64,
            description="Ports opened on the application servers besides SSH, 80 and 443 (e.g. a monitoring "
            'agent: [{port = 9100, from = "192.0.2.5"}]). Everything else inbound is dropped.',
        ),
    ] = []


LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


class AcmeSettings(StrictModel):
    email: Annotated[
        str | None,
        Field(
            pattern=r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$",
            description="Contact address given to the ACME CA (expiry warnings, account recovery); recommended.",
        ),
    ] = None
    staging: Annotated[
        bool,
        Field(
            description="Ask Let's Encrypt's staging CA (untrusted certificates, generous rate limits): for a first "
            "try of a new collective's DNS and ports. Certificates must be renewed from production after."
        ),
    ] = False


LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class DomainSettings(StrictModel):
    acme_directory: Annotated[
        str,
        Field(
            pattern=r"^https://[A-Za-z0-9.:/_-]+$",
            description="ACME directory Caddy gets the certificates of associations' own domains from, over HTTP-01 "
            "(Let's Encrypt's by default; the lab's settings name the lab's Pebble).",
        ),
    ] = LETS_ENCRYPT
    acme_ca_root: Annotated[
        str | None,
        Field(
            description="PEM file (on this machine) of the root that signs the ACME directory's own HTTPS "
            "certificate, when it is not a public one (a private ACME CA such as the lab's Pebble); copied to the "
            "servers for Caddy."
        ),
    ] = None
    resolvers: Annotated[
        list[str],
        Field(
            max_length=8,
            description="DNS servers (IP addresses, optionally :PORT) that `ruche domain verify` and `ruche audit` "
            "ask; empty: this machine's own resolvers.",
        ),
    ] = []
    verify_port: Annotated[
        int,
        Field(
            ge=1, le=65535, description="Port of the HTTP request that checks a domain routes to the servers' Caddy."
        ),
    ] = 80
    certificate_warning_days: Annotated[
        int,
        Field(ge=1, le=60, description="`ruche audit` flags a certificate of an own domain expiring within this."),
    ] = 14
    pending_days: Annotated[
        int,
        Field(
            ge=1,
            le=365,
            description="The worker forgets a claimed domain still unproven after this many days (`domain.expired` "
            "in the trail): a name nobody proves is not retried forever.",
        ),
    ] = 30
    lost_days: Annotated[
        int,
        Field(
            ge=1,
            le=365,
            description="The worker detaches an attached domain whose _ruche TXT token has been missing this many "
            "days (`domain.detached`): the name may have changed hands; its association publishes the token again "
            "to have it back.",
        ),
    ] = 14

    @field_validator("resolvers")
    @classmethod
    def _resolvers_are_addresses(cls, value: list[str]) -> list[str]:
        from orchestrator.resolver import parse_resolver

        for entry in value:
            parse_resolver(entry)  # its ValueError says which entry and what is expected
        return value


def default_offers() -> dict[str, Offer]:
    """The offers a new workspace starts with (edit them in ruche.toml)."""
    return {
        "decouverte": Offer(
            label=LocalizedText(fr="Découverte", en="Discovery"), max_instances=2, memory_mb=512, disk_gb=5,
            services={"nextcloud": {"user_quota": "1 GB"}}, backup_retention=Retention(daily=7, weekly=2, monthly=0),
        ),
        "association": Offer(
            label=LocalizedText(fr="Association", en="Association"), max_instances=6, memory_mb=4096, disk_gb=60,
            services={"nextcloud": {"user_quota": "10 GB"}},
        ),
    }  # fmt: skip


class BackupSettings(StrictModel):
    repository: Annotated[
        str | None,
        Field(
            description="Where restic repositories live, one per association under it: a local path on the servers "
            "(/srv/backup), sftp:USER@HOST:/PATH, or s3:https://HOST/BUCKET. Unset: no backups."
        ),
    ] = None
    managed_server: Annotated[
        str | None,
        Field(
            description="Name of a registered backup server (role backup) that ruche sets up as the SFTP target: a "
            "restricted account that the application servers' keys may use for SFTP only."
        ),
    ] = None
    schedule: Annotated[
        str,
        Field(pattern=r"^[A-Za-z0-9*:,./ -]{1,64}$", description="systemd OnCalendar expression of scheduled backups."),
    ] = "*-*-* 02:30:00"
    s3_credentials_file: Annotated[
        str | None,
        Field(
            description="File outside the workspace holding AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... lines."
        ),
    ] = None
    control_plane_repository: Annotated[
        str | None,
        Field(
            description="The restic repository `ruche backup control-plane` writes to, as the control machine reaches "
            "it: a local path (e.g. a mounted disk), sftp:USER@HOST:/PATH, s3:https://HOST/BUCKET, rest:URL... "
            "(restic's own syntax; credentials from the environment, as restic reads them). It holds the state, "
            "ruche.toml, the inventories' history, the servers' host keys and SSH keys, encrypted with a password "
            "derived from the vault password: keep it off this machine. Unset: give `--to`."
        ),
    ] = None

    @field_validator("control_plane_repository")
    @classmethod
    def _restic_repository(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(r"^(/|(local|sftp|rest|s3|b2|azure|gs|swift|rclone):)\S+$", value):
            raise ValueError(
                "expected a restic repository: an absolute path, or sftp:, s3:, rest:, b2:, azure:, gs:, swift: or "
                "rclone: followed by its location (no spaces)"
            )
        return value

    @field_validator("repository")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(
            r"^(/[A-Za-z0-9._/-]+|sftp:[A-Za-z0-9._-]+@[A-Za-z0-9.:-]+:/[A-Za-z0-9._/-]+|s3:https?://[A-Za-z0-9.:-]+/[A-Za-z0-9._/-]+)$",
            value,
        ):
            raise ValueError(
                "expected an absolute path, sftp:USER@HOST:/PATH or s3:https://HOST/BUCKET (letters, digits, . _ - /)"
            )
        return value.rstrip("/")


class MailSettings(StrictModel):
    """The collective's outgoing mail relay, which every instance sends through (``${mail.*}`` in entries)."""

    host: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]{1,253}$", description="SMTP relay's host name or address.")]
    port: Annotated[int, Field(ge=1, le=65535, description="SMTP port: 587 (STARTTLS), 465 (TLS) or 25.")] = 587
    security: Annotated[
        Literal["starttls", "tls", "none"],
        Field(
            description="How the connection is protected: 'starttls' (587), 'tls' (implicit TLS, 465) or 'none' (a local relay only)."
        ),
    ] = "starttls"
    sender_domain: Annotated[
        str, Field(description="Domain of the senders: each instance sends as NAME-ASSOCIATION@sender_domain.")
    ]
    username: Annotated[
        str | None, Field(pattern=r"^[A-Za-z0-9@._+-]{1,128}$", description="SMTP user name; unset: no authentication.")
    ] = None
    password: Annotated[
        str | None,
        Field(
            description="SMTP password as ansible-vault ciphertext, written by `ruche mail set-password` (never in clear)."
        ),
    ] = None

    _sender_domain_is_valid = field_validator("sender_domain")(lambda value: dns_name(value))

    @field_validator("password")
    @classmethod
    def _password_is_vaulted(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("$ANSIBLE_VAULT;"):
            raise ValueError("must be ansible-vault ciphertext: set it with `ruche mail set-password`, never in clear")
        return value


class WebSettings(StrictModel):
    base_url: Annotated[
        str,
        Field(
            pattern=r"^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?$",
            description="Public address of `ruche serve`, used in invite links (https in production; `ruche init` "
            "writes its --base-url, by default https://ruche.DOMAIN).",
        ),
    ] = "http://127.0.0.1:8080"
    host: Annotated[str, Field(pattern=r"^[A-Za-z0-9.:-]+$", description="Address `ruche serve` listens on.")] = (
        "127.0.0.1"
    )
    port: Annotated[int, Field(ge=1, le=65535, description="Port `ruche serve` listens on.")] = 8080
    secure_cookies: Annotated[
        bool, Field(description="Send the session cookie over HTTPS only (turn off only for a loopback test).")
    ] = True
    max_body_bytes: Annotated[
        int, Field(ge=1024, le=10 * 1024 * 1024, description="Largest request body accepted; larger ones get 413.")
    ] = 65536
    invite_days: Annotated[int, Field(ge=1, le=365, description="How long a new invite link stays valid.")] = 30
    trusted_proxies: Annotated[
        list[str],
        Field(
            max_length=64,
            description="Addresses (or networks, e.g. 10.0.0.0/24) of the reverse proxies in front of `ruche serve` "
            "whose X-Forwarded-For header is believed: the client address that rate limits count. Empty (the "
            "default): the header is ignored from anyone, the connection's address counts.",
        ),
    ] = []

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network, e.g. '127.0.0.1' or '10.0.0.0/24'"
                ) from None
        return value


class AlertSettings(StrictModel):
    """The watcher (`ruche watch`, `ruche worker --watch`): when its findings open an alert and who is told."""

    urls: Annotated[
        list[str],
        Field(
            max_length=32,
            description="The collective's admins' notification channels: Apprise URLs (mailto://, matrix://, xmpp://, "
            "ntfy://, json:// for a webhook...), each as ansible-vault ciphertext, written by `ruche alerts notify "
            "add` (they hold tokens and passwords: never in clear).",
        ),
    ] = []
    admin_emails: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")]],
        Field(
            max_length=32,
            description="The admins' addresses, mailed through the collective's relay ([mail], the lab's sink while "
            "the lab is up) without writing its password again.",
        ),
    ] = []
    language: Annotated[
        Literal["fr", "en"], Field(description="The language of the admins' notices (an association's: its own).")
    ] = "en"
    interval_minutes: Annotated[
        int, Field(ge=1, le=1440, description="Minutes between two watches of `ruche worker` and `ruche watch`.")
    ] = 5
    usage_minutes: Annotated[
        int,
        Field(
            ge=0,
            le=10080,
            description="A watch measures every instance's disk and memory (as `ruche usage "
            "collect`) when the newest measure is older than this; 0: never (quota alerts then read the "
            "measures `usage collect` records).",
        ),  # fmt: skip
    ] = 60
    remind_hours: Annotated[
        int,
        Field(
            ge=0,
            le=24 * 31,
            description="An alert still open (and not acknowledged) is told again after this many hours; 0: never.",
        ),  # fmt: skip
    ] = 24
    disk_used_percent: Annotated[
        int, Field(ge=1, le=100, description="A server whose /srv file system is at least this full opens an alert.")
    ] = 90
    memory_used_percent: Annotated[
        int,
        Field(
            ge=1,
            le=100,
            description="A server whose memory (less what the kernel may reclaim) is at least "
            "this used opens an alert.",
        ),  # fmt: skip
    ] = 95
    failed_run_days: Annotated[
        int,
        Field(
            ge=1,
            le=365,
            description="A target's last run that failed opens an alert while it is at most "
            "this many days old (a later good run clears it).",
        ),  # fmt: skip
    ] = 7
    queue_stuck_minutes: Annotated[
        int,
        Field(
            ge=1,
            le=10080,
            description="A queued run no worker took, or whose worker stopped beating, for "
            "this many minutes opens an alert.",
        ),  # fmt: skip
    ] = 30

    @field_validator("urls")
    @classmethod
    def _urls_are_vaulted(cls, value: list[str]) -> list[str]:
        for index, url in enumerate(value):
            if not url.startswith("$ANSIBLE_VAULT;"):
                raise ValueError(f"entry {index + 1} is not ansible-vault ciphertext (an URL in clear?): remove it and "
                                 "add it again with `ruche alerts notify add`, which keeps it encrypted")  # fmt: skip
        return value


class UsageSettings(StrictModel):
    """How long measured use (`ruche usage collect`, the watcher's measures) is kept at each grain: raw samples,
    then one row per instance and hour, then one per instance and day, kept for good (operations/usage_rollup)."""

    raw_days: Annotated[
        int, Field(ge=1, le=366, description="Raw samples older than this many days are rolled up into hours.")
    ] = 2
    hourly_days: Annotated[
        int,
        Field(ge=1, le=3660, description="Hourly rows older than this many days are rolled up into days (UTC)."),
    ] = 35


class ServerFootprint(StrictModel):
    """One server's own power and manufacturing figures (`[footprint.servers.NAME]`), in place of the estimates
    [footprint] derives from its vCPUs, memory and disk (see docs/footprint.md)."""

    idle_watts: Annotated[
        float | None, Field(ge=0, le=100_000, description="Its power draw when idle, in watts (measured at the wall).")
    ] = None
    max_watts: Annotated[
        float | None, Field(ge=0, le=100_000, description="Its power draw with every CPU busy, in watts.")
    ] = None
    embodied_kg_co2e: Annotated[
        float | None,
        Field(ge=0, le=1_000_000, description="Its manufacturing emissions (life-cycle assessment), in kgCO2e."),
    ] = None
    lifetime_years: Annotated[
        float | None, Field(gt=0, le=50, description="How long it is expected to serve, in years.")
    ] = None


DEFAULT_CARBON_INTENSITY = {"FR": 51.1, "DE": 311.0, "GB": 225.0, "IT": 213.4, "IE": 278.6}
FOOTPRINT_KINDS = ("vps", "dedicated")


class FootprintSettings(StrictModel):
    """The constants of `ruche footprint` (energy and carbon per association, docs/footprint.md): each default is a
    published figure whose source and year its description gives; set your own (a measured figure, a newer
    source) and `ruche footprint` prints which were used."""

    pue: Annotated[
        float,
        Field(
            ge=1,
            le=5,
            description="Power usage effectiveness of the rooms the servers are in (site energy / IT energy). Default "
            "1.58: the industry average of the Uptime Institute Global Data Center Survey 2023.",
        ),
    ] = 1.58
    carbon_intensity: Annotated[
        dict[Annotated[str, Field(pattern=r"^[A-Z]{2}$")], Annotated[float, Field(ge=0, le=2000)]],
        Field(
            description="Grid carbon intensity in gCO2e/kWh by country code (a server's `country` label), life-cycle "
            "scope (manufacturing is counted too). The countries set here are merged over the defaults: FR 51.1, DE "
            "311, GB 225, IT 213.4, IE 278.6, the figures of Cloud Carbon Footprint's methodology (appendix V, "
            "grid emissions factors; their year is not stated there). ADEME's Base Empreinte gives a French "
            "life-cycle figure too: 60 for its 2024 average mix (residential and tertiary uses) as another project "
            "quotes it, not checked at base-empreinte.ademe.fr; check it there and set FR to it if you prefer it.",
        ),
    ] = dict(DEFAULT_CARBON_INTENSITY)
    fallback_carbon_intensity: Annotated[
        float,
        Field(
            ge=0,
            le=2000,
            description="Grid carbon intensity in gCO2e/kWh of a server without a `country` label or of a country "
            "not in carbon_intensity, life-cycle scope. Default 480: the world's power generation in 2023 (Ember, "
            "Global Electricity Review 2024).",
        ),
    ] = 480.0
    idle_watts_per_vcpu: Annotated[
        float,
        Field(
            ge=0,
            le=1000,
            description="A server's idle power per vCPU when it has no idle_watts of its own, in watts. Default 0.74: "
            "Cloud Carbon Footprint's average minimum watts per vCPU (AWS, SPECpower data, methodology 2021-2023).",
        ),
    ] = 0.74
    max_watts_per_vcpu: Annotated[
        float,
        Field(
            ge=0,
            le=1000,
            description="A server's power per vCPU at full load when it has no max_watts of its own, in watts. "
            "Default 3.5: Cloud Carbon Footprint's average maximum watts per vCPU (AWS, SPECpower data).",
        ),
    ] = 3.5
    watts_per_memory_gb: Annotated[
        float,
        Field(
            ge=0,
            le=100,
            description="Memory's power per GB, added to both estimates (idle and max), in watts. Default 0.392: Cloud "
            "Carbon Footprint's memory coefficient (mean of Crucial's and Micron's DDR4 figures).",
        ),
    ] = 0.392
    watts_per_disk_tb: Annotated[
        float,
        Field(
            ge=0,
            le=100,
            description="Disk's power per TB of a server's disk_gb, added to both estimates, in watts. Default 1.2: "
            "Cloud Carbon Footprint's SSD coefficient (6 W for a 5 TB disk, 2020 projections of the 2016 U.S. Data "
            "Center Energy Usage Report).",
        ),
    ] = 1.2
    unmeasured_utilisation: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="The CPU utilisation taken for a backup server, where ruche measures none (0 to 1). Default "
            "0.5: Cloud Carbon Footprint's fallback, the 2020 hyperscale projection of the 2016 U.S. Data Center "
            "Energy Usage Report (LBNL).",
        ),
    ] = 0.5
    embodied_kg_co2e: Annotated[
        float,
        Field(
            ge=0,
            le=1_000_000,
            description="A server's manufacturing emissions when it has none of its own, in kgCO2e. Default 1000: "
            "Teads' base rack server (from Dell's PowerEdge R740 life-cycle assessment, 2021), which Cloud Carbon "
            "Footprint's embodied-emissions method starts from.",
        ),
    ] = 1000.0
    lifetime_years: Annotated[
        float,
        Field(
            gt=0,
            le=50,
            description="A server's expected service life when it has none of its own, in years; its manufacturing "
            "emissions are spread evenly over it. Default 4: Cloud Carbon Footprint's embodied-emissions method.",
        ),
    ] = 4.0
    default_kind: Annotated[
        Literal["vps", "dedicated"],
        Field(
            description="The kind of a server without a `footprint_kind` label: `vps` (a share of a cloud host: the "
            "per-vCPU figures, manufacturing scaled by its vCPUs / reference_host_vcpus) or `dedicated` (a whole "
            "machine: dedicated_idle_watts, dedicated_max_watts, embodied_kg_co2e whole).",
        ),
    ] = "vps"
    reference_host_vcpus: Annotated[
        int,
        Field(
            ge=1,
            le=4096,
            description="The vCPUs of the physical host a `vps` server is a share of: its manufacturing emissions are "
            "embodied_kg_co2e x its vCPUs / this (capped at 1), as Cloud Carbon Footprint divides by the vCPUs of "
            "the largest instance of the family. Default 96: the vCPUs of a two-socket host of 48 cores with SMT "
            "(e.g. AWS m5.24xlarge); assumed, not sourced as a general figure.",
        ),
    ] = 96
    dedicated_idle_watts: Annotated[
        float,
        Field(
            ge=0,
            le=100_000,
            description="A `dedicated` server's idle power when it has no idle_watts of its own, in watts, the whole "
            "machine. Default 50: assumed, not sourced (a small single-socket server; measure yours at the wall).",
        ),
    ] = 50.0
    dedicated_max_watts: Annotated[
        float,
        Field(
            ge=0,
            le=100_000,
            description="A `dedicated` server's power with every CPU busy when it has no max_watts of its own, in "
            "watts. Default 150: assumed, not sourced.",
        ),
    ] = 150.0
    servers: Annotated[
        dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$")], ServerFootprint],
        Field(
            description="Servers' own figures by server name, in place of the estimates above; a server giving "
            "idle_watts alone gets max_watts = idle_watts + its kind's default span (and max_watts alone: idle_watts "
            "= max_watts - that span, at least 0)."
        ),
    ] = {}

    @field_validator("carbon_intensity")
    @classmethod
    def _merge_over_default_intensities(cls, value: dict[str, float]) -> dict[str, float]:
        return {**DEFAULT_CARBON_INTENSITY, **value}

    @field_validator("dedicated_max_watts")
    @classmethod
    def _dedicated_max_not_below_idle(cls, value: float, info: ValidationInfo) -> float:
        idle = info.data.get("dedicated_idle_watts")
        if idle is not None and value < idle:
            raise ValueError(f"dedicated_max_watts {value} is below dedicated_idle_watts {idle}: give a max at least "
                             "the idle power")  # fmt: skip
        return value

    @field_validator("servers")
    @classmethod
    def _servers_max_not_below_idle(cls, value: dict[str, ServerFootprint]) -> dict[str, ServerFootprint]:
        for name, own in value.items():
            if own.idle_watts is not None and own.max_watts is not None and own.max_watts < own.idle_watts:
                raise ValueError(f"[footprint.servers.{name}]: max_watts {own.max_watts} is below idle_watts "
                                 f"{own.idle_watts}: the power with every CPU busy is at least the idle power; "
                                 "fix one of them (measured at the wall)")  # fmt: skip
        return value


class MetricsSettings(StrictModel):
    """`ruche serve`'s /metrics (Prometheus' exposition format): answered only to a bearer of the token or to a
    client of the listed networks; neither set (the default): not served at all."""

    token_sha256: Annotated[
        str | None,
        Field(
            pattern=r"^[0-9a-f]{64}$",
            description="SHA-256 (hex) of the bearer token a scraper sends (`Authorization: Bearer TOKEN`), written "
            "by `ruche metrics token`, which prints the token once.",
        ),
    ] = None
    clients: Annotated[
        list[str],
        Field(max_length=64, description="Addresses or networks (e.g. 10.0.0.5, 10.0.0.0/24) allowed without a token."),
    ] = []

    @field_validator("clients")
    @classmethod
    def _clients_are_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network, e.g. '10.0.0.5' or '10.0.0.0/24'"
                ) from None
        return value


CHATONSINFOS_URL = r"^https?://[^\s/]+\.[^\s/]+(/[^\s]*)?$"
COUNTRY_CODE = r"^[A-Z]{2}$"


class ChatonsInfosHost(StrictModel):
    """Where the services run, as ChatonsInfos' ``host.*`` fields say it: a server's labels (``provider``,
    ``provider_type``, ``server_type``, ``country``, ``country_name``) come first, these values for what its
    labels leave out."""

    name: Annotated[
        str | None,
        Field(min_length=1, max_length=120, description="Who hosts the servers (host.name): the provider, or the "
              "collective itself when self-hosted; a server's label `provider` says it for that server."),
    ] = None  # fmt: skip
    description: Annotated[str | None, Field(max_length=500, description="A sentence on the hosting.")] = None
    provider_type: Annotated[
        Literal["HOME", "HOSTEDBAY", "HOSTEDSERVER", "OUTSOURCED"] | None,
        Field(description="host.provider.type: HOME (at someone's home), HOSTEDBAY (the collective's machine in a "
              "provider's bay), HOSTEDSERVER (a provider's server), OUTSOURCED (all outsourced); label "
              "`provider_type`."),
    ] = None  # fmt: skip
    server_type: Annotated[
        Literal["NANO", "PHYSICAL", "VIRTUAL", "SHARED", "CLOUD"] | None,
        Field(description="host.server.type: NANO, PHYSICAL, VIRTUAL, SHARED or CLOUD; label `server_type`."),
    ] = None
    country_code: Annotated[
        str | None,
        Field(pattern=COUNTRY_CODE, description="host.country.code, ISO 3166-1 alpha-2 (FR); label `country`."),
    ] = None
    country_name: Annotated[
        str | None, Field(min_length=1, max_length=80, description="host.country.name; label `country_name`.")
    ] = None


class ChatonsInfosSettings(StrictModel):
    """What only the collective knows for its ChatonsInfos files (`ruche report --chatonsinfos`, published by
    `ruche serve` at /.well-known/chatonsinfos/): the format's organisation fields. The rest comes from the
    state and the catalogue; a mandatory field left unset is refused by name, never invented."""

    name: Annotated[
        str | None,
        Field(min_length=1, max_length=120, description="organization.name (default: `collective`)."),
    ] = None
    description: Annotated[
        str | None, Field(min_length=1, max_length=500, description="organization.description: one sentence.")
    ] = None
    website: Annotated[
        str | None, Field(pattern=CHATONSINFOS_URL, description="organization.website: the collective's site.")
    ] = None
    logo: Annotated[str | None, Field(pattern=CHATONSINFOS_URL, description="organization.logo: its logo's URL.")] = (
        None
    )
    contact_email: Annotated[
        str | None,
        Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="organization.contact.email: a public address."),
    ] = None
    contact_url: Annotated[
        str | None, Field(pattern=CHATONSINFOS_URL, description="organization.contact.url: its contact page.")
    ] = None
    legal_url: Annotated[
        str | None, Field(pattern=CHATONSINFOS_URL, description="organization.legal.url: its legal notices page.")
    ] = None
    type: Annotated[
        Literal["ASSOCIATION", "INFORMAL", "COOPERATIVE", "MICROCOMPANY", "COMPANY", "INDIVIDUAL", "OTHER"] | None,
        Field(description="organization.type: ASSOCIATION, INFORMAL, COOPERATIVE, MICROCOMPANY, COMPANY, "
              "INDIVIDUAL or OTHER."),
    ] = None  # fmt: skip
    status: Annotated[
        Literal["ACTIVE", "IDLE", "AWAY"],
        Field(description="organization.status.level: ACTIVE, IDLE (paused) or AWAY (closed)."),
    ] = "ACTIVE"
    start_date: Annotated[date | None, Field(description="organization.startdate: when the collective began.")] = None
    chatons_status: Annotated[
        Literal["ACTIVE", "IDLE", "AWAY"],
        Field(description="organization.memberof.chatons.status.level: its standing in the CHATONS collective."),
    ] = "ACTIVE"
    chatons_since: Annotated[
        date | None,
        Field(description="organization.memberof.chatons.startdate: when it joined the CHATONS collective."),
    ] = None
    country_code: Annotated[
        str | None, Field(pattern=COUNTRY_CODE, description="organization.country.code, ISO 3166-1 alpha-2 (FR).")
    ] = None
    country_name: Annotated[
        str | None, Field(min_length=1, max_length=80, description="organization.country.name (France).")
    ] = None
    language: Annotated[
        Literal["fr", "en"], Field(description="Language of the services' names and descriptions (the catalogue's).")
    ] = "fr"
    socialnetworks: Annotated[
        dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,30}$")], Annotated[str, Field(pattern=CHATONSINFOS_URL)]],
        Field(max_length=20, description="organization.socialnetworks.NAME: its accounts, e.g. mastodon = URL."),
    ] = {}
    host: Annotated[ChatonsInfosHost, Field(description="The host.* fields servers' labels leave out.")] = (
        ChatonsInfosHost()
    )


class WorkspaceConfig(StrictModel):
    """The workspace's settings. While the lab is up, the lab's own file (lab/settings.toml, written by `ruche lab
    up`, removed by `ruche lab down`) replaces registry, proxy_tls, resource_limits, backup and mail; ruche.toml
    itself is never changed by the lab (`ruche mail show` says which relay applies)."""

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
    images: Annotated[
        ImageSettings,
        Field(
            description="Where servers pull the Debian-built images of the lab's services from (`ruche images build`)."
        ),
    ] = ImageSettings()
    proxy_tls: Annotated[
        Literal["acme", "internal"],
        Field(description="How Caddy gets certificates: 'acme' (public CA) or 'internal' (its own CA, for the lab)."),
    ] = "acme"
    resource_limits: Annotated[
        bool,
        Field(
            description="Whether containers get the CPU and memory limits of their size. Needs the cgroup v2 cpu and "
            "memory controllers on the servers; the lab's settings set false, its servers have none."
        ),
    ] = True
    placement: Annotated[PlacementSettings, Field(description="How full servers may get.")] = PlacementSettings()
    lab: Annotated[LabSettings, Field(description="Settings of the local lab (`ruche lab up`).")] = LabSettings()
    secrets: Annotated[SecretsSettings, Field(description="Where the vault password comes from.")] = SecretsSettings()
    offers: Annotated[
        dict[Annotated[str, Field(pattern=r"^[a-z0-9-]{1,63}$")], Offer],
        Field(description="Quota packages associations sign up for, by name."),
    ] = {}
    default_offer: Annotated[
        str | None,
        Field(
            description="The offer (a name under [offers]) an association gets when it is registered without one "
            "(`ruche association add` without --offer, an accepted application to join); unset: such an "
            "association has no offer, so no limit at all (`ruche audit` warns about it).",
        ),
    ] = None
    backup: Annotated[BackupSettings, Field(description="Where and when instances are backed up.")] = BackupSettings()
    web: Annotated[WebSettings, Field(description="The web app (`ruche serve`) for associations and admins.")] = (
        WebSettings()
    )
    mail: Annotated[
        MailSettings | None,
        Field(description="Outgoing mail relay of every instance; unset: services are given no mail settings."),
    ] = None
    upgrades: Annotated[
        UpgradeSettings, Field(description="How instances are upgraded (`ruche instance upgrade`).")
    ] = UpgradeSettings()
    audit: Annotated[AuditSettings, Field(description="What `ruche audit` holds the fleet to.")] = AuditSettings()
    firewall: Annotated[
        FirewallSettings, Field(description="The application servers' inbound firewall (nftables, by ruche_server).")
    ] = FirewallSettings()
    acme: Annotated[
        AcmeSettings, Field(description="Public certificates (with proxy_tls acme): Caddy's ACME account.")
    ] = AcmeSettings()
    domains: Annotated[
        DomainSettings,
        Field(description="Associations' own domains (`ruche domain`): proof, DNS, their certificates' ACME CA."),
    ] = DomainSettings()
    alerts: Annotated[
        AlertSettings, Field(description="The watcher's alerts (`ruche watch`, `ruche alerts`) and who is told.")
    ] = AlertSettings()
    chatonsinfos: Annotated[
        ChatonsInfosSettings,
        Field(description="The organisation fields of the ChatonsInfos files (`ruche report --chatonsinfos`)."),
    ] = ChatonsInfosSettings()
    metrics: Annotated[
        MetricsSettings, Field(description="`ruche serve`'s Prometheus metrics (/metrics): who may read them.")
    ] = MetricsSettings()
    usage: Annotated[
        UsageSettings, Field(description="How long measured use is kept, raw then hourly, before it is rolled up.")
    ] = UsageSettings()
    footprint: Annotated[
        FootprintSettings,
        Field(description="The constants of `ruche footprint`: energy and carbon per association (docs/footprint.md)."),
    ] = FootprintSettings()

    _domain_is_valid = field_validator("base_domain")(lambda value: dns_name(value))

    @field_validator("default_offer")
    @classmethod
    def _default_offer_is_an_offer(cls, value: str | None, info: ValidationInfo) -> str | None:
        offers = info.data.get("offers")  # absent when [offers] itself is wrong: that error is reported instead
        if value is not None and offers is not None and value not in offers:
            known = ", ".join(sorted(offers)) or "none"
            raise ValueError(f"names no offer of [offers] (offers: {known}); add [offers.{value}] or name one of them")
        return value


def load_config(path: Path) -> WorkspaceConfig:
    """Give the validated configuration in ``path``; raises ConfigError naming the file and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", hint="run `ruche init` to create a workspace") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return parse_config(text, path)


def parse_config(text: str, source: str | Path) -> WorkspaceConfig:
    """Give the validated configuration in ``text`` (read from ``source``); raises ConfigError naming it and the
    field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    return validate_document(WorkspaceConfig, data, source)


def load_lab_settings(path: Path) -> dict[str, Any]:
    """Give the lab's settings file at ``path`` (written by `ruche lab up`) as plain values by key, {} when there
    is none; raises ConfigError naming the file for a key the lab may not set or a file that is not TOML."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}", hint="`ruche lab down` removes it") from None
    unknown = [key for key in data if key not in LAB_SETTINGS_KEYS]
    if unknown:
        raise ConfigError(
            "\n".join(f"{path}: At '{key}': not a setting the lab may set" for key in unknown),
            hint=f"the lab's settings hold only {', '.join(LAB_SETTINGS_KEYS)}; `ruche lab down` removes the file",
        )
    return data


def with_lab_settings(config: WorkspaceConfig, settings: dict[str, Any], source: Path) -> WorkspaceConfig:
    """Give ``config`` with the lab's ``settings`` (read from ``source``) in place of its keys: each replaces
    ruche.toml's value whole (a table with every key of its own). Raises ConfigError naming ``source`` and the
    field."""
    if not settings:
        return config
    return validate_document(WorkspaceConfig, {**config.model_dump(), **settings}, source)


def dump_lab_settings(settings: dict[str, Any]) -> str:
    """Give the text of the lab's settings file (plain values by key, each one of LAB_SETTINGS_KEYS)."""
    header = [
        "# The lab's own settings, written by `ruche lab up` and removed by `ruche lab down`. While the lab is up",
        "# each key here replaces ruche.toml's (which the lab never edits); ruche.toml's apply again after.",
        "",
    ]
    return "\n".join(header) + tomli_w.dumps(settings)


def dump_config(config: WorkspaceConfig) -> str:
    """Give the TOML text of ``config``, leaving out unset optional values, each key and table under a comment
    of its field's description (the models' own text: `ruche init` writes a ruche.toml that explains itself)."""
    text = tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))
    lines = ["# ruche.toml: the workspace's settings. Every field is described in docs/reference/ruche-toml.md;",
             "# `ruche schema config` prints the JSON Schema editors validate it with.", ""]  # fmt: skip
    table: tuple[str, ...] = ()
    unset = _unset_default_offer(config)
    for line in text.splitlines():
        if unset and not table and not line:  # the end of the top-level keys
            lines += unset
            unset = []
        header = re.match(r"^\[([^\[\]]+)\]$", line)
        key = re.match(r"^([A-Za-z0-9_-]+) = ", line)
        if header:
            table = tuple(part.strip('"') for part in header.group(1).split("."))
            lines += _comment(_description_of(table))
        elif key:
            lines += _comment(_description_of(table + (key.group(1),)))
        lines.append(line)
    return "\n".join(lines + unset) + "\n"


def _unset_default_offer(config: WorkspaceConfig) -> list[str]:
    """``default_offer`` commented out, naming the smallest offer, when offers exist but none is the default."""
    if config.default_offer is not None or not config.offers:
        return []
    smallest = min(
        config.offers.items(), key=lambda item: (item[1].memory_mb, item[1].disk_gb, item[1].max_instances, item[0])
    )
    return _comment(_description_of(("default_offer",))) + [
        "# Uncomment to put new associations on an offer when none is given:",
        f'# default_offer = "{smallest[0]}"',
    ]


def _description_of(path: tuple[str, ...]) -> str:
    """The description of the field at ``path`` (table names and key, dictionaries' keys skipped); "" if none."""
    model: Any = WorkspaceConfig
    description = ""
    expecting_key = False
    for part in path:
        if expecting_key:  # a key of a dict[str, Model] field (an offer's name, a service's id)
            expecting_key = False
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return ""
        field = fields[part]
        description = field.description or ""
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:
            model, expecting_key = typing.get_args(annotation)[1], True
        else:
            options = [a for a in typing.get_args(annotation) if isinstance(a, type)] or [annotation]
            model = next((a for a in options if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return description


def _comment(description: str) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(description, width=98)] if description else []
