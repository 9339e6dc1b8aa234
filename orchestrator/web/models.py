"""The JSON API's bodies, which its OpenAPI description publishes (a request as the CLI shows it is
``orchestrator.state.requests.RequestView``, the same model as `ruche request list --json`).

Every model forbids fields it does not name, and responses are validated against them, so an
answer cannot carry a field it should not (a secret, an admin's note, another association's data).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.state.requests import RequestView


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestIn(Strict):
    """A service request as the API takes it (the same validation as the form and the CLI follows)."""

    service: str = Field(max_length=32, description="Catalogue id of the service, e.g. radicale.")
    name: str | None = Field(default=None, max_length=32, description="Instance name (default: the service id).")
    size: str = Field(default="small", max_length=16, description="small, medium or large.")
    parameters: dict[str, str] = Field(default_factory=dict, max_length=32, description="The service's parameters.")


class UpgradeView(Strict):
    """What an instance's last upgrade did."""

    status: str = Field(description="running, succeeded, rolled_back, rollback_failed or refused.")
    to: str = Field(description="The version it went (or tried to go) to.")
    version: str = Field(description="The version the instance runs now.")
    at: str = Field(description="When it finished (or started, while it runs): ISO 8601 in UTC with its offset.")


class InstanceView(Strict):
    """One of the association's services, as its members see it."""

    address: str = Field(description="ASSOCIATION/NAME.")
    name: str
    service: str = Field(description="Catalogue id of the service.")
    version: str
    url: str
    state: str = Field(description="planned, running, suspended or failed.")
    health: str = Field(description="healthy, unhealthy or unknown, from the last health check.")
    last_backup: str | None = Field(description="When its last good backup finished: ISO 8601 in UTC with its offset.")
    upgrade: UpgradeView | None = Field(description="Its last upgrade, if any.")


class QuotaView(Strict):
    """What the association uses of its offer."""

    instances: int
    max_instances: int
    memory: int = Field(description="MiB")
    max_memory: int = Field(description="MiB")
    disk: int = Field(description="GiB")
    max_disk: int = Field(description="GiB")


class SessionView(Strict):
    """The signed-in session, for an API client: the token its writes send in X-CSRF-Token."""

    association: str = Field(description="The association's short name.")
    csrf_token: str = Field(description="Send it in the X-CSRF-Token header of every write (POST).")
    expires_at: str = Field(description="When the session ends: ISO 8601 in UTC with its offset.")


class DeployedView(Strict):
    """The instance a request made, once it exists."""

    url: str
    state: str
    health: str


class RequestDetail(RequestView):
    """A request with its latest run's progress (in the member's language) and, once deployed, its service."""

    progress: str = Field(description="The run's current step or phase, as members read it.")
    deployed: DeployedView | None
