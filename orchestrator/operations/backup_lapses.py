"""Running instances whose backups lapsed: no good backup inside their offer's window, no passed `backup verify`
younger than [audit] verify_max_age_days. `ruche audit` reports them as findings, the watcher as alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from orchestrator.state.backups import backup_window, last_success
from orchestrator.state.models import Instance, utc_now
from orchestrator.workspace import Workspace


@dataclass(frozen=True)
class Lapse:
    instance: str  # its address
    association: str
    kind: str  # "backup" (none good inside the window) or "verify" (none passed within the age)
    last_at: datetime | None  # the last good one (None: never)
    limit: timedelta  # the window, or the age

    @property
    def last_text(self) -> str:
        return "never" if self.last_at is None else f"last on {self.last_at:%Y-%m-%d %H:%M}"

    @property
    def last_text_day(self) -> str:
        return "never" if self.last_at is None else f"last on {self.last_at:%Y-%m-%d}"


def backup_lapses(workspace: Workspace, session: Session, instances: list[Instance]) -> list[Lapse]:
    """The lapses of ``instances`` that are running; none at all when no backup repository is configured."""
    if workspace.config.backup.repository is None:
        return []
    now = utc_now()
    max_age = timedelta(days=workspace.config.audit.verify_max_age_days)
    lapses = []
    for instance in (i for i in instances if i.state == "running"):
        slug = instance.association.slug
        window = backup_window(workspace.config.offers, instance.association.offer)
        _good, good_at = last_success(session, instance.address)
        if good_at is None or now - good_at > window:
            lapses.append(Lapse(instance.address, slug, "backup", good_at, window))
        _verified, verified_at = last_success(session, instance.address, kind="verify")
        if verified_at is None or now - verified_at > max_age:
            lapses.append(Lapse(instance.address, slug, "verify", verified_at, max_age))
    return lapses
