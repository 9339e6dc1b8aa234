"""What an instance deploys on its server: the variables the ``ruche_instance`` role works from.

Everything here is derived from the instance's record and its catalogue entry; the result goes
into the inventory as the server's ``ruche_instances``.  User values (names, parameters, and
text produced from them) are marked unsafe; secrets appear only as vault ciphertext and are
referenced by name from the environment ("parts"), so the role assembles env files on the server
and no plaintext secret is ever written on the control machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from secrets import token_hex

from orchestrator.catalog import REFERENCE, Service
from orchestrator.idranges import RANGE_SIZE
from orchestrator.images import deployed_image
from orchestrator.inventory import Unsafe, Vaulted, fingerprint  # noqa: F401 (fingerprint: used from here)
from orchestrator.secrets import generate_secret

# The database sidecar of each engine: its image's environment interface, data directory, port.
DATABASE_ENGINES = {
    "postgresql": {
        "port": 5432,
        "data_mount": "/var/lib/postgresql/data",
        "environment": {"POSTGRES_USER": "app", "POSTGRES_DB": "app", "POSTGRES_PASSWORD": "${secret.db_password}"},
        "secrets": ["db_password"],
    },
    "mariadb": {
        "port": 3306,
        "data_mount": "/var/lib/mysql",
        "environment": {
            "MARIADB_USER": "app",
            "MARIADB_DATABASE": "app",
            "MARIADB_PASSWORD": "${secret.db_password}",
            "MARIADB_ROOT_PASSWORD": "${secret.db_root_password}",
        },  # fmt: skip
        "secrets": ["db_password", "db_root_password"],
    },
}
DEFAULT_RETENTION = {"daily": 7, "weekly": 4, "monthly": 6}
FIRST_HTTP_PORT = 20000
LAST_HTTP_PORT = 29999


@dataclass(frozen=True)
class MailRelay:
    """The collective's outgoing mail relay (ruche.toml's [mail]); the password only as vault ciphertext."""

    host: str
    port: int
    security: str  # starttls | tls | none
    sender_domain: str
    username: str | None = None
    password: str | None = None  # vault ciphertext


# ${mail.NAME} of catalogue entries; each service spells the connection's protection its own way.
_PHP_SECURE = {"tls": "ssl", "starttls": "tls", "none": ""}  # PHPMailer / Nextcloud SMTP_SECURE / LimeSurvey
_UPPER_SECURITY = {"tls": "TLS", "starttls": "STARTTLS", "none": ""}  # Mattermost's ConnectionSecurity


def mail_values(relay: MailRelay | None, association: str, name: str) -> dict[str, str]:
    """Give the ``${mail.*}`` values of one instance (empty strings when no relay is configured)."""
    if relay is None:
        return {"host": "", "port": "", "security": "", "php_secure": "", "security_upper": "", "from": "",
                "from_local": "", "domain": "", "user": "", "auth": "false", "enabled": "false", "password": ""}  # fmt: skip
    local = f"{name}-{association}"
    return {
        "host": relay.host, "port": str(relay.port), "security": relay.security, "php_secure": _PHP_SECURE[relay.security],
        "security_upper": _UPPER_SECURITY[relay.security], "from": f"{local}@{relay.sender_domain}", "from_local": local,
        "domain": relay.sender_domain, "user": relay.username or "", "auth": "true" if relay.username else "false",
        "enabled": "true", "password": "vaulted" if relay.password else "",  # the value itself: a vaulted secret
    }  # fmt: skip


@dataclass(frozen=True)
class InstanceRecord:
    """The recorded facts about one instance that its deployment depends on."""

    association: str
    name: str
    domain: str
    http_port: int
    desired_state: str
    cpu: float
    memory_mb: int
    parameters: dict[str, str]
    secrets: dict[str, str]  # name -> vault ciphertext
    limits: dict[str, str] = field(default_factory=dict)  # the service's limits under the association's offer
    backup_retention: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_RETENTION))
    backup_password: str | None = None  # the association's restic password (vault ciphertext), when backups are on
    id_start: int | None = None  # first host ID of its subordinate UID/GID range (orchestrator.idranges)
    mail: MailRelay | None = None
    version: str | None = None  # the service version it runs (None: the one new instances get)
    own_domains: tuple[str, ...] = ()  # the association's own domains attached to it (proven: `ruche domain verify`)
    primary_domain: str | None = None  # the name its application calls itself by (None: ``domain``)

    @property
    def identifier(self) -> str:
        return instance_identifier(self.association, self.name)

    @property
    def primary_name(self) -> str:
        """The name the application calls itself by: its primary own domain, else the collective's name."""
        return self.primary_domain or self.domain

    @property
    def names(self) -> list[str]:
        """Every name the instance answers on, its primary address first."""
        return [self.primary_name] + [name for name in (self.domain, *self.own_domains) if name != self.primary_name]


def instance_identifier(association: str, name: str) -> str:
    """An instance's id: its containers, directories, units and inventory entries are named after it."""
    return f"{association}--{name}"


def instance_domain(association: str, name: str, base_domain: str) -> str:
    """Give the domain an instance answers on: ``NAME.ASSOCIATION.BASE_DOMAIN``."""
    return f"{name}.{association}.{base_domain}"


def generate_secrets(service: Service) -> dict[str, str]:
    """Give a new value of each secret an instance of ``service`` needs, in its declared format."""
    values = {}
    for name in secret_names(service):
        form = service.secret_formats.get(name, "password")
        values[name] = generate_secret() if form == "password" else token_hex(int(form.removeprefix("hex")))
    return values


def secret_names(service: Service) -> list[str]:
    """Give the names of the secrets an instance of ``service`` needs (its own and its database's)."""
    names = list(service.secrets)
    if service.database != "none":
        names += DATABASE_ENGINES[service.database]["secrets"]
    return names


def free_http_port(used: set[int]) -> int:
    """Give the lowest loopback port not in ``used``; raises ValueError when the range is full."""
    for port in range(FIRST_HTTP_PORT, LAST_HTTP_PORT + 1):
        if port not in used:
            return port
    raise ValueError("no free loopback port left on this server")


def _container(identifier: str, role: str) -> str:
    return f"ruche-{identifier}-{role}"


def _parts(template: str, values: dict[str, dict[str, str]]) -> list[dict]:
    """Split ``template`` into literal text parts and secret references, substituting the rest."""
    parts: list[dict] = []
    position = 0

    def add_text(text: str) -> None:
        if not text:
            return
        if parts and "text" in parts[-1]:
            parts[-1] = {"text": Unsafe(parts[-1]["text"] + text)}
        else:
            parts.append({"text": Unsafe(text)})

    for match in REFERENCE.finditer(template):
        add_text(template[position : match.start()])
        kind, name = match.groups()
        if kind == "mail" and name == "password" and not values["mail"].get("password"):
            add_text("")  # no relay password: nothing to decrypt
        elif kind == "secret" or (kind in ("db", "mail") and name == "password"):
            parts.append({"secret": {"db": "db_password", "mail": "mail_password"}.get(kind, name)})
        else:
            add_text(values[kind].get(name, ""))  # an optional parameter left unset is empty
        position = match.end()
    add_text(template[position:])
    return parts


def _environment(templates: dict[str, str], values: dict[str, dict[str, str]]) -> list[dict]:
    return [{"name": key, "parts": _parts(template, values)} for key, template in sorted(templates.items())]


def instance_variables(record: InstanceRecord, service: Service, *, image_registry: str | None = None) -> dict:
    """Give the variables of one instance for the ``ruche_instance`` role (see the module's docstring).

    ``image_registry``: ruche.toml's [images] registry, where the lab's own images are pulled from when set
    (``images.deployed_image``)."""
    identifier = record.identifier
    release = service.release(record.version)
    image = deployed_image(release.image, image_registry)
    database_image = deployed_image(release.database_image, image_registry) if release.database_image else None
    database = None
    limits = {name: limit.default for name, limit in service.limits.items()} | dict(record.limits)
    values = {
        "param": dict(record.parameters),
        "instance": {"name": record.name, "association": record.association, "domain": record.primary_name,
                     "url": f"https://{record.primary_name}", "domains": " ".join(record.names),
                     "collective_domain": record.domain},
        "db": {},
        "limit": limits,
        "mail": mail_values(record.mail, record.association, record.name),
    }  # fmt: skip
    if service.database != "none":
        engine = DATABASE_ENGINES[service.database]
        values["db"] = {"host": _container(identifier, "db"), "port": str(engine["port"]), "name": "app", "user": "app"}
        database = {
            "engine": service.database,
            "image": database_image,
            "major": release.database_major,
            "container": _container(identifier, "db"),
            "port": engine["port"],
            "data_mount": engine["data_mount"],
            "environment": _environment(engine["environment"], values),
        }
    return {
        "identifier": Unsafe(identifier),
        "association": Unsafe(record.association),
        "name": Unsafe(record.name),
        "service": service.id,
        "version": release.version,
        "state": record.desired_state,
        "domain": Unsafe(record.domain),
        # the association's own domains (proven), served beside the collective's name with ACME certificates
        "own_domains": [Unsafe(name) for name in record.own_domains],
        "http_port": record.http_port,
        "limits": {"cpu": record.cpu, "memory_mb": record.memory_mb},
        # every container of the instance: container IDs 0..size-1 are host IDs start..start+size-1
        "ids": {"start": record.id_start, "size": RANGE_SIZE} if record.id_start is not None else None,
        # the directories its containers own (relative to its directory), and the image whose default user owns each
        "id_volumes": [
            {"path": f"volumes/{v.name}", "image": image, "mount": v.mount, "seed": v.seed_from_image}
            for v in service.volumes
        ]
        + (
            [
                {
                    "path": "database",
                    "image": database_image,
                    "mount": DATABASE_ENGINES[service.database]["data_mount"],
                }
            ]
            if service.database != "none"
            else []
        ),
        "health": {
            "path": service.health.path,
            "status": service.health.expected_status,
            "body_contains": service.health.body_contains,
        },
        "app": {
            "image": image,
            "container": _container(identifier, "app"),
            "port": service.port,
            "volumes": [{"name": v.name, "mount": v.mount} for v in service.volumes],
            "environment": _environment(service.environment, values),
            "exec_user": service.exec_user,
            "setup": [
                [Unsafe(_substitute(argument, {"limit": limits, "param": values["param"]})) for argument in command]
                for command in service.setup
            ],
        },
        "sidecars": [
            {
                "name": s.name,
                "image": deployed_image(service.sidecar_image(s, release.version), image_registry),
                "container": _container(identifier, s.name),
                "command": list(s.command),
                "shares_volumes": s.shares_volumes,
            }
            for s in service.sidecars
        ],  # fmt: skip
        "database": database,
        "backup": {
            "volumes": list(service.backup.volumes),
            "before": [list(command) for command in service.backup.before],
            "after": [list(command) for command in service.backup.after],
            "after_restore": [list(command) for command in service.backup.after_restore],
            "retention": dict(record.backup_retention),
        },
        "parameters": {Unsafe(key): Unsafe(value) for key, value in sorted(record.parameters.items())},
        "secrets": {name: Vaulted(ciphertext) for name, ciphertext in sorted(_all_secrets(record).items())},
    }


def _all_secrets(record: InstanceRecord) -> dict[str, str]:
    secrets = dict(record.secrets)
    if record.backup_password is not None:
        secrets["restic_password"] = record.backup_password
    if record.mail is not None and record.mail.password is not None:
        secrets["mail_password"] = record.mail.password
    return secrets


def _substitute(argument: str, variables: dict[str, dict[str, str]]) -> str:
    """Replace ${limit.X} and ${param.X} once, as plain text (an unset optional parameter is empty)."""
    return REFERENCE.sub(lambda match: variables[match.group(1)].get(match.group(2), ""), argument)
