"""The service catalogue: how each free service is deployed, defined only by these pydantic models.

Environment values are templates over named variables only — ``${param.admin_email}``,
``${instance.domain}``, ``${db.password}``, ``${secret.NAME}`` — substituted as plain text by
:func:`render_environment`.  Nothing is ever evaluated: a value that looks like Jinja2 or
shell stays exactly what it is.
"""

from __future__ import annotations

import fnmatch
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
HTTPS_URL = r"^https://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:[0-9]{1,5})?(/[^\s]*)?$"
# an SPDX licence identifier, or an expression of them (https://spdx.github.io/spdx-spec/v2.3/SPDX-license-expressions/)
SPDX_EXPRESSION = r"^[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*$"
IMAGE_REFERENCE = r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$"
INSTANCE_VARIABLES = {"name", "domain", "url", "association", "domains", "collective_domain"}
DATABASE_VARIABLES = {"host", "port", "name", "user", "password"}
# The collective's mail relay (ruche.toml's [mail]), see orchestrator.deployment.mail_values.
MAIL_VARIABLES = {"host", "port", "security", "php_secure", "security_upper", "from", "from_local", "domain", "user",
                  "password", "auth", "enabled"}  # fmt: skip


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Texts(Strict):
    fr: Annotated[str, Field(min_length=1, description="French text (the default language).")]
    en: Annotated[str, Field(min_length=1, description="English text.")]


class Sidecar(Strict):
    name: Annotated[
        str, Field(pattern=r"^[a-z][a-z0-9-]{0,20}$", description="Name of the sidecar container (e.g. cron).")
    ]
    image: Annotated[
        str | None,
        Field(
            pattern=IMAGE_REFERENCE,
            description="Image of the sidecar; omitted: the application's image of the instance's version (a cron "
            "runner or job queue then follows the application through upgrades).",
        ),
    ] = None
    command: Annotated[list[str], Field(description="Command run by the sidecar, as an argument list.")] = []
    shares_volumes: Annotated[bool, Field(description="Whether the sidecar mounts the app's volumes.")] = True


class Volume(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$", description="Volume name, unique in the service.")]
    mount: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*$", description="Absolute path inside the container.")]
    seed_from_image: Annotated[
        bool,
        Field(
            description="Copy what the image holds at `mount` into the volume when it is created empty (a bind "
            "mount hides the image's content, e.g. LimeSurvey's upload/ skeleton)."
        ),
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
        Field(
            min_length=1,
            max_length=200,
            description="Text the answer must hold to count as healthy, e.g. '\"maintenance\":false' of a status page.",
        ),
    ] = None


class Size(Strict):
    cpu: Annotated[float, Field(gt=0, le=64, description="CPU cores the instance may use.")]
    memory_mb: Annotated[int, Field(ge=64, description="Memory limit in MiB.")]
    disk_gb: Annotated[int, Field(ge=1, description="Disk allocated to its volumes, in GiB.")]


class Sizes(Strict):
    small: Annotated[Size, Field(description="For a small association (a few users).")]
    medium: Annotated[Size, Field(description="For a medium association (tens of users).")]
    large: Annotated[Size, Field(description="For a large association (hundreds of users).")]


# The names of an instance's sizes, smallest first: the one list (placement, forms, the CLI's --size, quotas).
SIZES: tuple[str, ...] = tuple(Sizes.model_fields)


class BackupSpec(Strict):
    volumes: Annotated[list[str], Field(description="Names of the volumes to back up.")] = []
    database_dump: Annotated[bool, Field(description="Whether to dump the database with its native tool.")] = True
    before: Annotated[
        list[list[str]], Field(description="Commands (argument lists) run in the app container before the backup.")
    ] = []
    after: Annotated[list[list[str]], Field(description="Commands run in the app container after the backup.")] = []
    volatile_tables: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")]],
        Field(
            description="Tables (schema.table) whose rows the service changes by itself (caches, job queues): "
            "`backup verify` does not compare their row counts."
        ),
    ] = []
    after_restore: Annotated[
        list[list[str]],
        Field(
            description="Commands run in the app container once a restore has started it again "
            "(e.g. Nextcloud's `occ maintenance:data-fingerprint`, so clients resynchronise)."
        ),
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


VERSION = r"^[0-9][A-Za-z0-9.~-]{0,40}$"


class ServiceVersion(Strict):
    """One version of a service that ruche can run: its images, and which versions may step to it."""

    version: Annotated[str, Field(pattern=VERSION, description="The upstream version, e.g. 34.0.2 or 1.43.9.")]
    image: Annotated[str, Field(pattern=IMAGE_REFERENCE, description="The application's image for this version.")]
    database_image: Annotated[
        str | None,
        Field(pattern=IMAGE_REFERENCE, description="The database's image with this version (when it has one)."),
    ] = None
    database_major: Annotated[
        str | None,
        Field(
            pattern=r"^[0-9]+$",
            description="Major version of the database engine in database_image: when an upgrade changes it, the data "
            "is moved with the engine's own dump and restore (a new engine never opens the old data directory).",
        ),
    ] = None
    upgrade_from: Annotated[
        list[Annotated[str, Field(pattern=r"^[0-9*][A-Za-z0-9.~*?-]{0,40}$")]] | None,
        Field(
            description="Versions (shell-style patterns, e.g. '33.*') an instance may upgrade from to this one in one "
            "step; omitted: only the version listed just before it. One major at a time is written as "
            "`upgrade_from: ['33.*']` on each 34.x."
        ),
    ] = None
    notes: Annotated[str, Field(description="What an admin should know about this version (end of support, ...).")] = ""
    end_of_support: Annotated[
        date | None,
        Field(
            description="The day upstream stops supporting this version: from then on, `ruche audit` flags the instances "
            "that still run it."
        ),
    ] = None


# a version whose upstream support ends within this many days is announced (`ruche audit`, `catalog outdated`)
SUPPORT_WARNING_DAYS = 90


def support_status(release: ServiceVersion, today: date) -> tuple[str, int] | None:
    """``("ended", days since)`` or ``("ending", days left)`` (within SUPPORT_WARNING_DAYS); None otherwise."""
    if release.end_of_support is None:
        return None
    left = (release.end_of_support - today).days
    if left < 0:
        return "ended", -left
    return ("ending", left) if left <= SUPPORT_WARNING_DAYS else None


class UpgradeSpec(Strict):
    """How an instance moves from one version to the next (``ruche instance upgrade``)."""

    rule: Annotated[
        str, Field(description="The upstream project's upgrade rule in words, with its source (shown by `ruche plan`).")
    ] = ""
    after_start: Annotated[
        list[list[str]],
        Field(
            description="Commands (argument lists) run in the app container once a new version answers, in order "
            "(e.g. `occ upgrade`, `occ db:add-missing-indices`, MediaWiki's `update.php`); a failure rolls back."
        ),
    ] = []
    data_check: Annotated[
        list[str] | None,
        Field(
            description="A command run in the app container before and after each upgrade whose output must not "
            "change (e.g. counts of pages, users, calendars): the data written before is still there."
        ),
    ] = None


CHECK_TOKEN = "${check.token}"


class CheckRequest(Strict):
    """One HTTPS request to the instance, sent through its server's Caddy as a client of the service would."""

    method: Annotated[str, Field(pattern=r"^[A-Z]{3,12}$", description="HTTP method (GET, PUT, POST, MKCOL, ...).")]
    path: Annotated[
        str, Field(pattern=r"^/[^\s]*$", description="Path and query; may use ${check.token}.", max_length=500)
    ]
    body: Annotated[str, Field(description="Request body; may use ${check.token}.", max_length=10000)] = ""
    content_type: Annotated[str | None, Field(description="Content-Type of the body.", max_length=100)] = None
    headers: Annotated[
        dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,40}$")], Annotated[str, Field(max_length=200)]],
        Field(description="Other request headers (e.g. WebDAV's Depth)."),
    ] = {}
    user: Annotated[str | None, Field(description="HTTP Basic user, e.g. ${param.admin_user}.")] = None
    password: Annotated[str | None, Field(description="HTTP Basic password, e.g. ${secret.admin_password}.")] = None
    expected_status: Annotated[
        list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1, description="Statuses that mean success.")
    ] = [200, 201, 204]


class CheckStep(Strict):
    """A command run in the app container (as exec_user) or an HTTPS request; exactly one of them."""

    exec: Annotated[
        list[str] | None,
        Field(
            min_length=1,
            description="Argument list run in the app container with `podman exec`, never through a shell of "
            "ours; ${check.token} and ${param.NAME} are substituted as plain text.",
        ),
    ] = None
    http: Annotated[CheckRequest | None, Field(description="A request through the server's Caddy.")] = None

    @model_validator(mode="after")
    def _one_kind(self) -> CheckStep:
        if (self.exec is None) == (self.http is None):
            raise ValueError("give exactly one of exec and http")
        return self


class DataCheck(Strict):
    """How `ruche catalog check` writes a datum through the service's own CLI or API and reads it back."""

    source: Annotated[
        str, Field(pattern=r"^https://[^\s]+$", description="The upstream page documenting the CLI or API used.")
    ]
    write: Annotated[
        list[CheckStep],
        Field(min_length=1, description="Steps that write one datum holding ${check.token} (a fresh token each time)."),
    ]
    read: Annotated[
        CheckStep,
        Field(description="A step whose output (or answer's body) names every datum written and still there."),
    ]


class OwnDomain(Strict):
    """How an entry takes an association's own domain (``ruche domain``) beside the collective's name."""

    how: Annotated[
        str,
        Field(
            min_length=1,
            description="What in the entry makes the application accept and use a new name (which environment "
            "variables, which setup commands), for admins and auditors.",
        ),
    ]
    sources: Annotated[
        list[Annotated[str, Field(pattern=r"^https://[^\s]+$")]],
        Field(min_length=1, description="The upstream documentation (pages, files) the 'how' was checked against."),
    ]


class Software(Strict):
    """The upstream software an entry runs, as the collective publishes it (ChatonsInfos' ``software.*`` fields,
    `ruche report --chatonsinfos`): what the state cannot know."""

    name: Annotated[str, Field(min_length=1, max_length=80, description="The software's own name, e.g. Nextcloud.")]
    website: Annotated[str, Field(pattern=HTTPS_URL, description="The upstream project's website (https).")]
    license: Annotated[
        str,
        Field(
            pattern=SPDX_EXPRESSION,
            description="Its licence as an SPDX identifier or expression, e.g. AGPL-3.0-or-later "
            "(https://spdx.org/licenses/).",
        ),
    ]
    source: Annotated[str, Field(pattern=HTTPS_URL, description="Where its source code is published (https).")]

    @property
    def license_url(self) -> str:
        """The licence's page at SPDX (the first identifier of an expression)."""
        return f"https://spdx.org/licenses/{self.license.split()[0]}.html"


class Service(Strict):
    id: Annotated[str, Field(pattern=SERVICE_ID, description="Identifier, also the file's name.")]
    name: Annotated[Texts, Field(description="Name shown to associations.")]
    description: Annotated[Texts, Field(description="One or two sentences on what it is for.")]
    versions: Annotated[
        list[ServiceVersion],
        Field(
            min_length=1, description="The versions ruche can run, oldest first; an upgrade only ever moves forward."
        ),
    ]
    default_version: Annotated[
        str | None, Field(pattern=VERSION, description="The version new instances get (default: the last listed).")
    ] = None
    upgrade: Annotated[UpgradeSpec, Field(description="How instances move to a newer version.")] = UpgradeSpec()
    sidecars: Annotated[list[Sidecar], Field(description="Extra containers beside the app (cron runner, ...).")] = []
    database: Annotated[Literal["postgresql", "mariadb", "none"], Field(description="Database the service needs.")]
    port: Annotated[int, Field(ge=1, le=65535, description="Port the app listens on inside its container.")]
    environment: Annotated[
        dict[str, str],
        Field(
            description="Environment variables; values may use ${param.X}, ${instance.X}, ${db.X}, ${secret.X}, ${limit.X}, ${mail.X}."
        ),
    ] = {}
    secrets: Annotated[
        list[Annotated[str, Field(pattern=VARIABLE_NAME)]],
        Field(description="Names of random secrets generated per instance, usable as ${secret.NAME}."),
    ] = []
    secret_formats: Annotated[
        dict[
            Annotated[str, Field(pattern=VARIABLE_NAME)],
            Annotated[str, Field(pattern=r"^(password|hex(16|24|32|64))$")],
        ],
        Field(
            description="How a secret is generated when the service needs a key of a given form: 'password' "
            "(default, 32 URL-safe characters) or 'hexN' (N random bytes as hexadecimal, e.g. libsodium keys)."
        ),
    ] = {}
    volumes: Annotated[list[Volume], Field(description="Persistent volumes.")] = []
    health: Annotated[HealthCheck, Field(description="How ruche checks the instance answers.")]
    sizes: Annotated[Sizes, Field(description="Resource sizes an instance can be created with.")]
    backup: Annotated[BackupSpec, Field(description="What a backup of an instance holds.")] = BackupSpec()
    limits: Annotated[
        dict[Annotated[str, Field(pattern=VARIABLE_NAME)], ServiceLimit],
        Field(
            description="Per-service limits an offer may set (e.g. a storage quota per user), usable as ${limit.NAME}."
        ),
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
        Field(
            pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
            description="User that setup and backup commands run as in the app container.",
        ),
    ] = None
    parameters: Annotated[list[Parameter], Field(description="Values an association gives when requesting it.")] = []
    notes: Annotated[str, Field(description="Anything an admin should know (licence limits, upgrades).")] = ""
    software: Annotated[
        Software | None,
        Field(
            description="The upstream software: name, website, licence, source (published by `ruche report "
            "--chatonsinfos`, which refuses an offered entry without it)."
        ),
    ] = None
    verification: Annotated[
        Verification, Field(description="How this entry is known to work (shown by `ruche catalog list`).")
    ]
    check: Annotated[
        DataCheck | None,
        Field(description="The datum `ruche catalog check` writes and reads back through the service's CLI or API."),
    ] = None
    own_domain: Annotated[
        OwnDomain | None,
        Field(
            description="How the entry takes an association's own domain (wiki.example.org) beside the collective's "
            "name; omitted: it cannot take one and `ruche domain` refuses it."
        ),
    ] = None

    @model_validator(mode="after")
    def _references_resolve(self) -> Service:
        for key in self.environment:
            if not re.match(ENV_NAME, key):
                raise ValueError(f"environment name {key!r} must be letters, digits and _")
        self._check_versions()
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
                    raise ValueError(
                        f"setup[{index}]: only ${{limit.NAME}} and ${{param.NAME}} of this service may appear "
                        "in commands (they are passed as arguments, never through a shell)"
                    )
        if self.check is not None:
            self._check_hook_references(names)
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

    def _check_hook_references(self, names: dict[str, set[str]]) -> None:
        """The check hook's references: ``${check.token}`` in write steps; ``${param.NAME}`` (of a parameter that
        always has a value) in an http step's path, body and user; ``${secret.NAME}`` as an http password only.
        Exec steps take the token alone: their arguments may reach a shell in the container, and a parameter's
        value comes from an association."""
        valued = {p.name for p in self.parameters if p.default is not None or p.required}
        steps = [(f"check.write[{i}]", step, True) for i, step in enumerate(self.check.write)]
        steps.append(("check.read", self.check.read, False))
        for where, step, writes in steps:
            token = {"token"} if writes else set()
            if step.exec is not None:
                fields = [(f"exec[{i}]", value, {"check": token}) for i, value in enumerate(step.exec)]
            else:
                http = step.http
                plain = {"check": token, "param": valued}
                fields = [("path", http.path, plain), ("body", http.body, plain), ("user", http.user or "", plain),
                          ("password", http.password or "", {"secret": names["secret"]}),
                          ("content_type", http.content_type or "", {}),
                          *((f"headers.{k}", v, {}) for k, v in http.headers.items())]  # fmt: skip
                if http.password and not REFERENCE.fullmatch(http.password):
                    raise ValueError(f"{where}: password must be one reference, e.g. ${{secret.admin_password}}")
                if http.password and http.user is None:
                    raise ValueError(f"{where}: a password needs a user")
                if any(name.lower() == "host" for name in http.headers):
                    raise ValueError(f"{where}: the Host header is the instance's domain, not the entry's")
            for field, value, allowed in fields:
                unknown = [f"${{{kind}.{name}}}" for kind, name in REFERENCE.findall(value)
                           if name not in allowed.get(kind, set())]  # fmt: skip
                if unknown or "${" in REFERENCE.sub("", value):
                    raise ValueError(
                        f"{where}.{field}: {', '.join(unknown) or 'a malformed reference'} is not allowed here "
                        "(${check.token} in write steps; ${param.NAME} of a parameter with a value in an http "
                        "path, body or user; ${secret.NAME} as an http password only)"
                    )

    def _check_versions(self) -> None:
        seen: set[str] = set()
        for index, entry in enumerate(self.versions):
            if entry.version in seen:
                raise ValueError(f"versions[{index}]: {entry.version} is listed twice")
            seen.add(entry.version)
            if (self.database == "none") != (entry.database_image is None):
                raise ValueError(
                    f"versions[{index}] ({entry.version}): database_image is required exactly when "
                    "database is not 'none'"
                )
            if (entry.database_image is None) != (entry.database_major is None):
                raise ValueError(f"versions[{index}] ({entry.version}): give database_major with database_image")
            if index == 0 and entry.upgrade_from:
                raise ValueError(f"versions[0] ({entry.version}): the oldest version cannot be upgraded to")
        if self.default_version is not None and self.default_version not in seen:
            raise ValueError(f"default_version {self.default_version} is not one of versions ({', '.join(seen)})")

    def require_own_domain(self) -> OwnDomain:
        """Give how the entry takes an association's own domain; raises InvalidInput when it cannot take one."""
        if self.own_domain is None:
            raise InvalidInput(
                f"{self.id} cannot take an association's own domain: its catalogue entry "
                f"(service_catalog/{self.id}.yaml) has no own_domain block saying how the application accepts "
                "and uses a new name",
                hint="keep the instance on the collective's name, or add own_domain to the entry once its "
                "upstream documentation shows how (see docs/reference/catalog-entry.md)",
            )
        return self.own_domain

    @property
    def version(self) -> str:
        """The version new instances get."""
        return self.default_version or self.versions[-1].version

    def release(self, version: str | None = None) -> ServiceVersion:
        """Give the entry of ``version`` (default: the one new instances get); raises NotFound."""
        wanted = version or self.version
        for entry in self.versions:
            if entry.version == wanted:
                return entry
        raise NotFound(
            f"{self.id} has no version {wanted} in the catalogue (known: {', '.join(v.version for v in self.versions)})"
        )

    def sidecar_image(self, sidecar: Sidecar, version: str | None = None) -> str:
        return sidecar.image or self.release(version).image

    def upgrade_path(self, current: str, target: str | None = None) -> list[ServiceVersion]:
        """Give the steps from ``current`` to ``target`` (default: the version new instances get), in order.

        Each step goes to the newest version not beyond the target that accepts the previous one
        (``upgrade_from``). Raises InvalidInput for an unknown version, a downgrade, or a target no
        chain of allowed steps reaches (e.g. one that would skip a major).
        """
        names = [entry.version for entry in self.versions]
        target = target or self.version
        for name, what in ((current, "the instance's version"), (target, "the target version")):
            if name not in names:
                raise InvalidInput(f"{self.id}: {what} {name} is not in the catalogue (known: {', '.join(names)})")
        start, end = names.index(current), names.index(target)
        if end < start:
            raise InvalidInput(
                f"{self.id}: {target} is older than {current}: ruche does not downgrade "
                "(restore a backup taken before the upgrade instead)"
            )
        steps, position = [], start
        while position < end:
            candidates = [index for index in range(end, position, -1) if self._accepts(index, names[position])]
            if not candidates:
                nxt = self.versions[position + 1]
                allowed = ", ".join(nxt.upgrade_from or [names[position]])
                raise InvalidInput(
                    f"{self.id}: no allowed step from {names[position]} towards {target}: {nxt.version} accepts "
                    f"upgrades from {allowed} only ({self.upgrade.rule or 'see the entry'})"
                )
            position = candidates[0]
            steps.append(self.versions[position])
        return steps

    def upgrade_sources(self, target: str) -> list[str]:
        """The listed versions older than ``target`` that ``target`` accepts in one step (its ``upgrade_from``)."""
        names = [entry.version for entry in self.versions]
        end = names.index(target)
        return [names[index] for index in range(end) if self._accepts(end, names[index])]

    def _accepts(self, index: int, current: str) -> bool:
        entry = self.versions[index]
        if entry.upgrade_from is None:
            return index > 0 and self.versions[index - 1].version == current
        return any(fnmatch.fnmatchcase(current, pattern) for pattern in entry.upgrade_from)


EMAIL_ADDRESS = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")


def parameter_problem(parameter: Parameter, value: str) -> tuple[str, dict] | None:
    """Why ``value`` does not fit ``parameter``, as a rule's code and its figures (``too_long`` max,
    ``control_characters``, ``not_an_email``, ``not_a_locale``, ``not_a_boolean``, ``not_a_choice`` choices,
    ``not_a_number``, ``too_small`` minimum, ``too_large`` maximum), or None. The command line says it in English
    (``validate_parameter_value``), the web in the member's language (web/refusals.py): the rules live here only."""
    if len(value) > parameter.max_length:
        return "too_long", {"max": parameter.max_length}
    if any(ord(c) < 32 and c != "\t" for c in value):
        return "control_characters", {}
    if parameter.type == "email" and not EMAIL_ADDRESS.match(value):
        return "not_an_email", {}
    if parameter.type == "locale" and not _LOCALE.match(value):
        return "not_a_locale", {}
    if parameter.type == "boolean" and value not in ("true", "false"):
        return "not_a_boolean", {}
    if parameter.type == "choice" and value not in parameter.choices:
        return "not_a_choice", {"choices": ", ".join(parameter.choices)}
    if parameter.type == "integer":
        if not re.match(r"^-?[0-9]{1,12}$", value):
            return "not_a_number", {}
        if parameter.minimum is not None and int(value) < parameter.minimum:
            return "too_small", {"minimum": parameter.minimum}
        if parameter.maximum is not None and int(value) > parameter.maximum:
            return "too_large", {"maximum": parameter.maximum}
    return None


PARAMETER_PROBLEMS = {
    "too_long": "at most {max} characters",
    "control_characters": "control characters are not allowed",
    "not_an_email": "{value!r} is not an e-mail address",
    "not_a_locale": "{value!r} is not a locale such as fr or fr_FR",
    "not_a_boolean": "expected true or false",
    "not_a_choice": "expected one of {choices}",
    "not_a_number": "{value!r} is not a whole number",
    "too_small": "at least {minimum}",
    "too_large": "at most {maximum}",
}


def validate_parameter_value(parameter: Parameter, value: str) -> str:
    """Give ``value`` if acceptable for ``parameter``; raises ValueError saying what is expected."""
    problem = parameter_problem(parameter, value)
    if problem is not None:
        code, figures = problem
        raise ValueError(f"{parameter.name}: " + PARAMETER_PROBLEMS[code].format(value=value, **figures))
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
                problems.append(
                    f"missing required parameter {parameter.name!r} ({parameter.label.en}): add --param {parameter.name}=VALUE"
                )
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

    return {key: substitute(template, variables) for key, template in service.environment.items()}


def substitute(template: str, variables: dict[str, dict[str, str]]) -> str:
    """``template`` with every ``${kind.name}`` replaced by ``variables[kind][name]`` as plain text, in one pass."""
    return REFERENCE.sub(lambda match: variables[match.group(1)][match.group(2)], template)


def render_check_step(step: CheckStep, variables: dict[str, dict[str, str]]) -> CheckStep:
    """The data check's ``step`` with its references substituted (plain text, one pass)."""
    if step.exec is not None:
        return CheckStep(exec=[substitute(argument, variables) for argument in step.exec])
    http = step.http
    return CheckStep(
        http=http.model_copy(
            update={
                "path": substitute(http.path, variables),
                "body": substitute(http.body, variables),
                "user": substitute(http.user, variables) if http.user is not None else None,
                "password": substitute(http.password, variables) if http.password is not None else None,
            }
        )
    )


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
    _refuse_single_version_form(data, path)
    service = validate_document(Service, data, path)
    if service.id != path.stem:
        raise ConfigError(f"{path}: At 'id': {service.id!r} must match the file name {path.stem!r}")
    return service


def _refuse_single_version_form(data: object, path: Path) -> None:
    """Name the fix for an entry still in the single-version form of ruche before upgrades (``version``, ``image``,
    ``database_image`` at the top), which validation alone would only call extra fields."""
    if isinstance(data, dict) and "versions" not in data and "version" in data and "image" in data:
        raise ConfigError(f"{path}: written in the single-version form of ruche before upgrades (top-level 'version' "
                          "and 'image')", hint="move them into a list: versions: [{version: X, image: REFERENCE, "
                          "database_image: REFERENCE, database_major: 'N'}] (service_catalog/*.yaml are examples)")  # fmt: skip


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
