"""The service catalogue: how each free service is deployed, defined only by these pydantic models.

Environment values are templates over named variables only — ``${param.admin_email}``,
``${instance.domain}``, ``${db.password}``, ``${secret.NAME}`` — substituted as plain text by
:func:`render_environment`.  Nothing is ever evaluated: a value that looks like Jinja2 or
shell stays exactly what it is.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.errors import ConfigError, InvalidInput, NotFound
from orchestrator.validation import validate_document

SERVICE_ID = r"^[a-z][a-z0-9-]{1,30}$"
VARIABLE_NAME = r"^[a-z][a-z0-9_]{0,40}$"
REFERENCE = re.compile(r"\$\{([a-z_]+)\.([a-z0-9_]+)\}")
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
IMAGE_REFERENCE = r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$"
INSTANCE_VARIABLES = {"name", "domain", "url", "association"}
DATABASE_VARIABLES = {"host", "port", "name", "user", "password"}
# The collective's mail relay (ruche.toml's [mail]), see orchestrator.deployment.mail_values.
MAIL_VARIABLES = {"host", "port", "security", "php_secure", "security_upper", "from", "from_local", "domain", "user",
                  "password", "auth", "enabled"}  # fmt: skip


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Texts(Strict):
    fr: Annotated[str, Field(min_length=1, description="French text (the default language).")]
    en: Annotated[str, Field(min_length=1, description="English text.")]


class Image(Strict):
    reference: Annotated[
        str, Field(pattern=IMAGE_REFERENCE, description="Fully qualified upstream image, e.g. docker.io/library/nextcloud:31.")
    ]


class Sidecar(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,20}$", description="Name of the sidecar container (e.g. cron).")]
    image: Annotated[str, Field(pattern=IMAGE_REFERENCE, description="Image of the sidecar; often the app's own.")]
    command: Annotated[list[str], Field(description="Command run by the sidecar, as an argument list.")] = []
    shares_volumes: Annotated[bool, Field(description="Whether the sidecar mounts the app's volumes.")] = True


class Volume(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$", description="Volume name, unique in the service.")]
    mount: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*$", description="Absolute path inside the container.")]
    seed_from_image: Annotated[
        bool,
        Field(description="Copy what the image holds at `mount` into the volume when it is created empty (a bind "
              "mount hides the image's content, e.g. LimeSurvey's upload/ skeleton)."),
    ] = False

    @model_validator(mode="after")
    def _no_parent_steps(self) -> Volume:
        if ".." in self.mount.split("/"):
            raise ValueError("mount must not contain '..'")
        return self


class HealthCheck(Strict):
    path: Annotated[str, Field(pattern=r"^/[^\s]*$", description="HTTP path checked through the reverse proxy.")]
    expected_status: Annotated[int, Field(ge=100, le=599, description="HTTP status that means healthy.")] = 200
    timeout_seconds: Annotated[int, Field(ge=1, le=600, description="How long one check may take.")] = 10
    body_contains: Annotated[
        str | None,
        Field(min_length=1, max_length=200,
              description="Text the answer must hold to count as healthy, e.g. '\"maintenance\":false' of a status page."),
    ] = None


class Size(Strict):
    cpu: Annotated[float, Field(gt=0, le=64, description="CPU cores the instance may use.")]
    memory_mb: Annotated[int, Field(ge=64, description="Memory limit in MiB.")]
    disk_gb: Annotated[int, Field(ge=1, description="Disk allocated to its volumes, in GiB.")]


class Sizes(Strict):
    small: Annotated[Size, Field(description="For a small association (a few users).")]
    medium: Annotated[Size, Field(description="For a medium association (tens of users).")]
    large: Annotated[Size, Field(description="For a large association (hundreds of users).")]


class BackupSpec(Strict):
    volumes: Annotated[list[str], Field(description="Names of the volumes to back up.")] = []
    database_dump: Annotated[bool, Field(description="Whether to dump the database with its native tool.")] = True
    before: Annotated[
        list[list[str]], Field(description="Commands (argument lists) run in the app container before the backup.")
    ] = []
    after: Annotated[list[list[str]], Field(description="Commands run in the app container after the backup.")] = []
    volatile_tables: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")]],
        Field(description="Tables (schema.table) whose rows the service changes by itself (caches, job queues): "
              "`backup verify` does not compare their row counts."),
    ] = []
    after_restore: Annotated[
        list[list[str]],
        Field(description="Commands run in the app container once a restore has started it again "
              "(e.g. Nextcloud's `occ maintenance:data-fingerprint`, so clients resynchronise)."),
    ] = []


LIMIT_VALUE = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$"


class ServiceLimit(Strict):
    description: Annotated[Texts, Field(description="What the limit bounds, as shown in `ruche offer show`.")]
    default: Annotated[
        str, Field(pattern=LIMIT_VALUE, description="Value used when the association's offer sets none.")
    ]


class Parameter(Strict):
    name: Annotated[str, Field(pattern=VARIABLE_NAME, description="Name, used as ${param.NAME} in the environment.")]
    type: Annotated[
        Literal["string", "email", "locale", "integer", "boolean", "choice"], Field(description="Kind of value.")
    ]
    label: Annotated[Texts, Field(description="Label shown in the request form and the CLI help.")]
    required: Annotated[bool, Field(description="Whether a value must be given.")] = False
    default: Annotated[str | None, Field(description="Value used when none is given.")] = None
    choices: Annotated[list[str], Field(description="Allowed values (type 'choice' only).")] = []
    max_length: Annotated[int, Field(ge=1, le=4096, description="Longest accepted value.")] = 255
    minimum: Annotated[int | None, Field(description="Smallest accepted value (type 'integer').")] = None
    maximum: Annotated[int | None, Field(description="Largest accepted value (type 'integer').")] = None

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        if self.type == "choice" and not self.choices:
            raise ValueError("a 'choice' parameter needs choices")
        if self.type != "choice" and self.choices:
            raise ValueError("only 'choice' parameters take choices")
        if self.default is not None:
            validate_parameter_value(self, self.default)
        return self


class Verification(Strict):
    """How an entry is known to work: lab tests that run it, or a dated check against its upstream documents."""

    lab_tests: Annotated[
        list[Annotated[str, Field(pattern=r"^tests/lab/test_[a-z0-9_]+\.py$")]],
        Field(description="Lab tests (run in CI) that deploy this entry and use it through its own protocols."),
    ] = []
    upstream_checked: Annotated[
        date | None, Field(description="When the entry was last read against the upstream documents in `sources`.")
    ] = None
    sources: Annotated[
        list[Annotated[str, Field(pattern=r"^https://[^\s]+$")]],
        Field(description="Upstream documents the entry follows (image README and entrypoint, admin manual)."),
    ] = []

    @property
    def summary(self) -> str:
        """One line for `ruche catalog list`."""
        if self.lab_tests:
            return "runs in the lab: " + ", ".join(path.removeprefix("tests/lab/") for path in self.lab_tests)
        if self.upstream_checked is not None:
            return f"checked against upstream documents on {self.upstream_checked.isoformat()}, not run"
        return "not run, not checked against upstream documents"


class Service(Strict):
    id: Annotated[str, Field(pattern=SERVICE_ID, description="Identifier, also the file's name.")]
    name: Annotated[Texts, Field(description="Name shown to associations.")]
    description: Annotated[Texts, Field(description="One or two sentences on what it is for.")]
    version: Annotated[
        str,
        Field(
            pattern=r"^[0-9]+\+[A-Za-z0-9.-]+$",
            description="catalogue-version+upstream-version, e.g. 3+31.0.9: the first part counts changes of this entry.",
        ),
    ]
    image: Annotated[Image, Field(description="The application's image.")]
    sidecars: Annotated[list[Sidecar], Field(description="Extra containers beside the app (cron runner, ...).")] = []
    database: Annotated[Literal["postgresql", "mariadb", "none"], Field(description="Database the service needs.")]
    database_image: Annotated[
        str | None, Field(pattern=IMAGE_REFERENCE, description="Image of the database sidecar (when database is not none).")
    ] = None
    port: Annotated[int, Field(ge=1, le=65535, description="Port the app listens on inside its container.")]
    environment: Annotated[
        dict[str, str],
        Field(description="Environment variables; values may use ${param.X}, ${instance.X}, ${db.X}, ${secret.X}, ${limit.X}, ${mail.X}."),
    ] = {}
    secrets: Annotated[
        list[Annotated[str, Field(pattern=VARIABLE_NAME)]],
        Field(description="Names of random secrets generated per instance, usable as ${secret.NAME}."),
    ] = []
    secret_formats: Annotated[
        dict[Annotated[str, Field(pattern=VARIABLE_NAME)], Annotated[str, Field(pattern=r"^(password|hex(16|24|32|64))$")]],
        Field(description="How a secret is generated when the service needs a key of a given form: 'password' "
              "(default, 32 URL-safe characters) or 'hexN' (N random bytes as hexadecimal, e.g. libsodium keys)."),
    ] = {}
    volumes: Annotated[list[Volume], Field(description="Persistent volumes.")] = []
    health: Annotated[HealthCheck, Field(description="How ruche checks the instance answers.")]
    sizes: Annotated[Sizes, Field(description="Resource sizes an instance can be created with.")]
    backup: Annotated[BackupSpec, Field(description="What a backup of an instance holds.")] = BackupSpec()
    limits: Annotated[
        dict[Annotated[str, Field(pattern=VARIABLE_NAME)], ServiceLimit],
        Field(description="Per-service limits an offer may set (e.g. a storage quota per user), usable as ${limit.NAME}."),
    ] = {}
    setup: Annotated[
        list[list[str]],
        Field(
            description="Commands (argument lists, ${limit.NAME} and ${param.NAME} allowed) run in the app container once it answers, "
            "at every apply: they apply the offer's limits through the service's own settings, so they must be idempotent."
        ),
    ] = []
    exec_user: Annotated[
        str | None,
        Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$", description="User that setup and backup commands run as in the app container."),
    ] = None
    parameters: Annotated[list[Parameter], Field(description="Values an association gives when requesting it.")] = []
    notes: Annotated[str, Field(description="Anything an admin should know (licence limits, upgrades).")] = ""
    verification: Annotated[Verification, Field(description="How this entry is known to work (shown by `ruche catalog list`).")]

    @model_validator(mode="after")
    def _references_resolve(self) -> Service:
        for key in self.environment:
            if not re.match(ENV_NAME, key):
                raise ValueError(f"environment name {key!r} must be letters, digits and _")
        if (self.database == "none") != (self.database_image is None):
            raise ValueError("database_image is required exactly when database is not 'none'")
        names = {"param": {p.name for p in self.parameters}, "secret": set(self.secrets), "instance": INSTANCE_VARIABLES,
                 "limit": set(self.limits), "mail": MAIL_VARIABLES}  # fmt: skip
        names["db"] = DATABASE_VARIABLES if self.database != "none" else set()
        for key, value in self.environment.items():
            for kind, name in REFERENCE.findall(value):
                if name not in names.get(kind, set()):
                    raise ValueError(f"environment {key}: ${{{kind}.{name}}} is not defined by this service")
            leftover = REFERENCE.sub("", value)
            if "${" in leftover:
                raise ValueError(f"environment {key}: malformed reference (write ${{kind.name}})")
        for index, command in enumerate(self.setup):
            for argument in command:
                unknown = [name for kind, name in REFERENCE.findall(argument) if name not in {"limit": set(self.limits),
                           "param": names["param"]}.get(kind, set())]  # fmt: skip
                if unknown or "${" in REFERENCE.sub("", argument):
                    raise ValueError(f"setup[{index}]: only ${{limit.NAME}} and ${{param.NAME}} of this service may appear "
                                     "in commands (they are passed as arguments, never through a shell)")
        unknown_formats = [name for name in self.secret_formats if name not in self.secrets]
        if unknown_formats:
            raise ValueError(f"secret_formats names unknown secrets: {', '.join(unknown_formats)}")
        reserved = [name for name in self.secrets if name.startswith("db_")]
        if reserved:
            raise ValueError(f"secret names starting with db_ are reserved for the database: {', '.join(reserved)}")
        volume_names = {v.name for v in self.volumes}
        unknown = [v for v in self.backup.volumes if v not in volume_names]
        if unknown:
            raise ValueError(f"backup.volumes names unknown volumes: {', '.join(unknown)}")
        if len(volume_names) != len(self.volumes):
            raise ValueError("volume names must be unique")
        return self


_EMAIL = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")


def validate_parameter_value(parameter: Parameter, value: str) -> str:
    """Give ``value`` if acceptable for ``parameter``; raises ValueError saying what is expected."""
    if len(value) > parameter.max_length:
        raise ValueError(f"{parameter.name}: at most {parameter.max_length} characters")
    if any(ord(c) < 32 and c not in "\t" for c in value):
        raise ValueError(f"{parameter.name}: control characters are not allowed")
    if parameter.type == "email" and not _EMAIL.match(value):
        raise ValueError(f"{parameter.name}: {value!r} is not an e-mail address")
    if parameter.type == "locale" and not _LOCALE.match(value):
        raise ValueError(f"{parameter.name}: {value!r} is not a locale such as fr or fr_FR")
    if parameter.type == "boolean" and value not in ("true", "false"):
        raise ValueError(f"{parameter.name}: expected true or false")
    if parameter.type == "choice" and value not in parameter.choices:
        raise ValueError(f"{parameter.name}: expected one of {', '.join(parameter.choices)}")
    if parameter.type == "integer":
        if not re.match(r"^-?[0-9]{1,12}$", value):
            raise ValueError(f"{parameter.name}: {value!r} is not a whole number")
        number = int(value)
        if parameter.minimum is not None and number < parameter.minimum:
            raise ValueError(f"{parameter.name}: at least {parameter.minimum}")
        if parameter.maximum is not None and number > parameter.maximum:
            raise ValueError(f"{parameter.name}: at most {parameter.maximum}")
    return value


def resolve_parameters(service: Service, given: dict[str, str]) -> dict[str, str]:
    """Give every parameter's value (given, else default); raises InvalidInput naming each problem."""
    problems = [f"unknown parameter {name!r} (known: {', '.join(p.name for p in service.parameters) or 'none'})"
                for name in given if name not in {p.name for p in service.parameters}]  # fmt: skip
    values = {}
    for parameter in service.parameters:
        value = given.get(parameter.name, parameter.default)
        if value is None:
            if parameter.required:
                problems.append(f"missing required parameter {parameter.name!r} ({parameter.label.en}): add --param {parameter.name}=VALUE")
            continue
        try:
            values[parameter.name] = validate_parameter_value(parameter, value)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise InvalidInput(f"service {service.id}: " + "; ".join(problems))
    return values


def render_environment(service: Service, variables: dict[str, dict[str, str]]) -> dict[str, str]:
    """Give the environment with every ``${kind.name}`` replaced by ``variables[kind][name]`` as plain text.

    Substitution is single-pass: a substituted value is never scanned again, so it cannot inject.
    """

    def substitute(match: re.Match) -> str:
        return variables[match.group(1)][match.group(2)]

    return {key: REFERENCE.sub(substitute, template) for key, template in service.environment.items()}


class Catalog:
    """The services of a catalogue directory, by id."""

    def __init__(self, services: dict[str, Service]) -> None:
        self.services = dict(sorted(services.items()))

    def get(self, service_id: str) -> Service:
        """Give service ``service_id``; raises NotFound listing the known ids."""
        try:
            return self.services[service_id]
        except KeyError:
            raise NotFound(f"no service {service_id!r} in the catalogue (known: {', '.join(self.services)})") from None


def load_service(path: Path) -> Service:
    """Give the service defined in ``path``; raises ConfigError naming the file and each bad field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    service = validate_document(Service, data, path)
    if service.id != path.stem:
        raise ConfigError(f"{path}: At 'id': {service.id!r} must match the file name {path.stem!r}")
    return service


def load_catalog(directory: Path) -> Catalog:
    """Give every service in ``directory/*.yaml``; raises ConfigError listing the errors of all files."""
    services, errors = {}, []
    for path in sorted(directory.glob("*.yaml")):
        try:
            service = load_service(path)
            services[service.id] = service
        except ConfigError as error:
            errors.append(error.message)
    if errors:
        raise ConfigError("\n".join(errors))
    if not services:
        raise ConfigError(f"{directory}: no service (*.yaml) found")
    return Catalog(services)
