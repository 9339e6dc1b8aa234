"""The collective's ChatonsInfos files, as Java properties, from the state, the catalogue and ruche.toml.

``organization.properties`` and one ``SERVICE.properties`` per catalogue service it offers, read from the state,
the catalogue and ruche.toml's ``[chatonsinfos]``.

The format is StatoolInfos' (https://forge.devinsy.fr/statool/statoolinfos, GENERAL.md) as the CHATONS
collective uses it (ChatonsInfos): ``file.*`` in every file, ``organization.*`` and ``subs.*`` (one per service
file) in the organisation's, ``service.*``, ``software.*`` and ``host.*`` in a service's. Mandatory fields the
state cannot know come from ruche.toml; one left unset is refused by its key (ConfigError), never invented.

What comes from where:

- a service is offered when at least one instance of it is planned, running, suspended or failed (deleted ones
  do not count); its entry gives name and description (``[chatonsinfos] language``) and ``software``;
- ``service.startdate``: the day its oldest such instance was created;
- ``service.status.level``: from its running or failed instances' last health check: OK when all answered,
  WARNING when some did not or none was checked yet, ERROR when none answered;
- ``service.registration``: Member: services are for the collective's member associations (whether an offer
  approves their requests at once, ``auto_approve``, changes how fast, not who);
- ``service.registration.load``: OPEN when an apps server has room for its small size (placement's rules,
  overcommit included), else FULL;
- ``host.*``: the labels of the servers its instances run on (``provider``, ``provider_type``, ``server_type``,
  ``country``, ``country_name``), else ``[chatonsinfos.host]``; servers that differ give a ``;`` list (the
  format's SEPARATOR); ``host.server.distribution`` is Debian GNU/Linux (the server role refuses any other).

Associations are never named, listed or not: the files hold the collective's services, not its members.

Text is written as UTF-8 (what StatoolInfos reads), escaped as ``java.util.Properties.load`` reads it back:
backslashes and control characters (``\\n``, ``\\r``, ``\\t``, ``\\f``) everywhere, a leading space in a value,
and ``=``, ``:``, ``#``, ``!`` and spaces in keys. Values keep ``=``, ``:``, ``#`` and ``!`` as they are: after
the separator ``load`` reads them alike, and URLs stay readable to people and to simpler readers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.catalog import Catalog
from orchestrator.config import WorkspaceConfig
from orchestrator.errors import ConfigError
from orchestrator.placement import Demand, evaluate
from orchestrator.state.instances import capacities
from orchestrator.state.models import Instance, Server, as_utc, utc_now

PROTOCOL = "ChatonsInfos-0.5"
WELL_KNOWN = "/.well-known/chatonsinfos/"
ORGANIZATION_FILE = "organization.properties"
# a file's name as a request may give it: organization.properties or a catalogue id's (catalog.SERVICE_ID)
FILE_NAME = re.compile(r"^([a-z][a-z0-9-]{1,30})\.properties$")
OFFERED_STATES = ("planned", "running", "suspended", "failed")
DISTRIBUTION = "Debian GNU/Linux"  # playbooks/roles/ruche_server/tasks/validate.yml refuses any other
# ruche.toml's [chatonsinfos] keys a file cannot do without (its mandatory organisation fields), by field
REQUIRED_SETTINGS = {
    "organization.description": "description",
    "organization.website": "website",
    "organization.contact.email": "contact_email",
    "organization.type": "type",
    "organization.memberof.chatons.startdate": "chatons_since",
    "organization.country.name": "country_name",
    "organization.country.code": "country_code",
}
# host.* fields: (the server label, the [chatonsinfos.host] key) they come from; all mandatory but the last
HOST_FIELDS = {
    "host.name": ("provider", "name"),
    "host.provider.type": ("provider_type", "provider_type"),
    "host.server.type": ("server_type", "server_type"),
    "host.country.code": ("country", "country_code"),
    "host.country.name": ("country_name", "country_name"),
}
HOST_OPTIONAL = {"host.country.name"}
HOST_CHOICES = {
    "host.provider.type": {"HOME", "HOSTEDBAY", "HOSTEDSERVER", "OUTSOURCED"},
    "host.server.type": {"NANO", "PHYSICAL", "VIRTUAL", "SHARED", "CLOUD"},
}


@dataclass(frozen=True)
class ChatonsInfos:
    """The files, each as its ordered (key, value) pairs, by file name."""

    files: dict[str, list[tuple[str, str]]]

    def text(self, name: str) -> str:
        return render(self.files[name])

    def services(self) -> list[str]:
        return sorted(name.removesuffix(".properties") for name in self.files if name != ORGANIZATION_FILE)


def generator() -> str:
    try:
        return f"ruche {metadata.version('ruche')}"
    except metadata.PackageNotFoundError:
        return "ruche"


def file_url(config: WorkspaceConfig, name: str) -> str:
    """Where `ruche serve` publishes the file ``name``."""
    return config.web.base_url.rstrip("/") + WELL_KNOWN + name


def gather(session: Session, config: WorkspaceConfig, catalog: Catalog, *, now: datetime | None = None) -> ChatonsInfos:
    """Read the files' fields from the state, the catalogue and ``[chatonsinfos]``, as of ``now``.

    Raises ConfigError naming every missing ruche.toml key, catalogue ``software`` and host value at once."""
    moment = as_utc(now) if now is not None else utc_now()
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    settings = config.chatonsinfos
    missing = [f"[chatonsinfos] {key} ({field})" for field, key in REQUIRED_SETTINGS.items()
               if getattr(settings, key) is None]  # fmt: skip
    instances = [i for i in session.scalars(select(Instance).order_by(Instance.id)) if i.state in OFFERED_STATES]
    servers = {server.id: server for server in session.scalars(select(Server))}
    offered = sorted({i.service_id for i in instances if i.service_id in catalog.services})
    room = capacities(session, association_id=0)
    services: dict[str, list[tuple[str, str]]] = {}
    for service_id in offered:
        service = catalog.services[service_id]
        if service.software is None:
            missing.append(f"the catalogue entry {service_id}.yaml's `software` (name, website, license, source)")
            continue
        own = [i for i in instances if i.service_id == service_id]
        host, lacking = _host_fields(settings, [servers[i.server_id] for i in own if i.server_id in servers])
        missing += [f"{what} (for {service_id})" for what in lacking]
        level, why = _status(own, settings.language)
        small = service.sizes.small
        demand = Demand(association="-", cpu=small.cpu, memory_mb=small.memory_mb, disk_gb=small.disk_gb)
        ratios = {"cpu_ratio": config.placement.cpu_overcommit, "memory_ratio": config.placement.memory_overcommit}
        load = "OPEN" if any(evaluate(demand, server, **ratios).eligible for server in room) else "FULL"
        name = f"{service_id}.properties"
        versions = sorted({i.service_version for i in own})
        pairs = _file_section("Service", config, name, stamp) + [
            ("service.name", service.name.model_dump()[settings.language]),
            ("service.description", service.description.model_dump()[settings.language]),
            ("service.website", config.web.base_url.rstrip("/") + "/"),
            ("service.startdate", min(as_utc(i.created_at) for i in own).strftime("%Y-%m-%d")),
            ("service.status.level", level),
            ("service.status.description", why),
            ("service.registration", "Member"),
            ("service.registration.load", load),
            ("service.install.type", "CONTAINER"),
            ("software.name", service.software.name),
            ("software.website", service.software.website),
            ("software.license.url", service.software.license_url),
            ("software.license.name", service.software.license),
            ("software.version", ";".join(versions)),
            ("software.source.url", service.software.source),
            ("host.server.distribution", DISTRIBUTION),
        ] + host  # fmt: skip
        if settings.host.description:
            pairs.append(("host.description", settings.host.description))
        services[name] = pairs
    if missing:
        raise ConfigError(
            "the ChatonsInfos files need values ruche cannot know: " + "; ".join(missing),
            hint="set them in ruche.toml's [chatonsinfos] section (the host ones there under [chatonsinfos.host], or "
            "as the servers' labels: `ruche server set NAME --label provider=...`), then run it again; "
            "`ruche schema config` describes each key",
        )
    organization = _file_section("Organization", config, ORGANIZATION_FILE, stamp) + [
        ("organization.name", settings.name or config.collective),
        ("organization.description", settings.description),
        ("organization.type", settings.type),
        ("organization.website", settings.website),
        ("organization.status.level", settings.status),
        ("organization.contact.email", settings.contact_email),
        ("organization.memberof.chatons.status.level", settings.chatons_status),
        ("organization.memberof.chatons.startdate", settings.chatons_since.isoformat()),
        ("organization.country.name", settings.country_name),
        ("organization.country.code", settings.country_code),
    ]  # fmt: skip
    optional = {
        "organization.logo": settings.logo,
        "organization.contact.url": settings.contact_url,
        "organization.legal.url": settings.legal_url,
        "organization.startdate": settings.start_date.isoformat() if settings.start_date else None,
    }
    organization += [(key, value) for key, value in optional.items() if value is not None]
    organization += [(f"organization.socialnetworks.{network}", url)
                     for network, url in sorted(settings.socialnetworks.items())]  # fmt: skip
    organization += [(f"subs.{name.removesuffix('.properties')}", file_url(config, name)) for name in services]
    return ChatonsInfos({ORGANIZATION_FILE: organization, **services})


def _file_section(kind: str, config: WorkspaceConfig, name: str, stamp: str) -> list[tuple[str, str]]:
    return [("file.class", kind), ("file.protocol", PROTOCOL), ("file.datetime", stamp),
            ("file.generator", generator()), ("file.url", file_url(config, name))]  # fmt: skip


def _host_fields(settings, servers: list[Server]) -> tuple[list[tuple[str, str]], list[str]]:
    """The host.* pairs from the servers' labels, else [chatonsinfos.host]; and what is missing, by its key."""
    pairs, lacking = [], []
    for field, (label, key) in HOST_FIELDS.items():
        fallback = getattr(settings.host, key)
        values = sorted({server.labels.get(label) or fallback for server in servers} - {None})
        choices = HOST_CHOICES.get(field)
        wrong = [v for v in values if choices and v not in choices]
        if wrong:
            lacking.append(f"a server label {label}={wrong[0]} that is not one of {', '.join(sorted(choices))}")
        elif values and (None not in {server.labels.get(label) or fallback for server in servers}):
            pairs.append((field, ";".join(values)))
            if field == "host.name":
                pairs.append(("host.provider", ";".join(values)))  # GENERAL.md's host section names it so
        elif field not in HOST_OPTIONAL:
            lacking.append(f"[chatonsinfos.host] {key} or the label {label} on every server ({field})")
    return pairs, lacking


STATUS_TEXTS = {
    "fr": ("pas encore contrôlé", "{healthy} instance(s) sur {meant} ont répondu à leur dernier contrôle"),
    "en": ("not checked yet", "{healthy} of {meant} instances answered their last check"),
}


def _status(instances: list[Instance], language: str) -> tuple[str, str]:
    """service.status.level and its description from the last health checks of the instances meant to answer."""
    unchecked, counted = STATUS_TEXTS[language]
    meant = [i for i in instances if i.state in ("running", "failed")]
    checked = [i for i in meant if i.health in ("healthy", "unhealthy")]
    healthy = sum(1 for i in checked if i.health == "healthy")
    if not checked:
        return "WARNING", unchecked
    level = "OK" if healthy == len(meant) else "ERROR" if healthy == 0 else "WARNING"
    return level, counted.format(healthy=healthy, meant=len(meant))


def escape(text: str, *, key: bool = False) -> str:
    """``text`` as a key (``key=True``) or a value of a properties line that ``java.util.Properties.load`` reads
    back as it is (see the module's docstring)."""
    out = []
    for index, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[char])
        elif char == " " and (key or index == 0):
            out.append("\\ ")
        elif key and char in "=:#!":
            out.append("\\" + char)
        elif ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F or char in "\u2028\u2029":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


HEADER = "# ChatonsInfos (StatoolInfos GENERAL.md), written by ruche from its state: do not edit by hand."


def written_by_ruche(path) -> bool:
    """Whether the file at ``path`` is one ruche wrote (its first line is HEADER)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.readline().rstrip("\n") == HEADER
    except OSError:
        return False


def render(pairs: list[tuple[str, str]]) -> str:
    """The file's text: a comment, then one ``key = value`` line per pair, sections apart."""
    lines = [HEADER]
    section = None
    for key, value in pairs:
        if key.split(".", 1)[0] != section:
            section = key.split(".", 1)[0]
            lines += ["", f"# [{section.capitalize()}]"]
        lines.append(f"{escape(key, key=True)} = {escape(value)}")
    return "\n".join(lines) + "\n"
