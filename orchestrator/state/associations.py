"""Associations: validation of new entries and queries."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from orchestrator.errors import Conflict, InvalidInput, NotFound
from orchestrator.i18n import LANGUAGES
from orchestrator.secrets import generate_secret
from orchestrator.state.change_listener import IGNORED
from orchestrator.state.events import record_event
from orchestrator.state.models import (
    Association,
    BackupRun,
    Domain,
    HealthCheck,
    Instance,
    Invite,
    QueuedRun,
    Run,
    ServiceRequest,
    Upgrade,
    WebSession,
)
from orchestrator.validation import describe_validation_error

# Single inner dashes only: "--" separates association and instance in identifiers (asso--nextcloud).
ASSOCIATION_SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
SLUG_MAX_LENGTH = 32


def is_slug(text: str) -> bool:
    """Tell whether ``text`` is a valid association or instance name."""
    return len(text) <= SLUG_MAX_LENGTH and re.match(ASSOCIATION_SLUG, text) is not None


class AssociationSpec(BaseModel):
    """What an admin declares about an association; the only definition of its fields."""

    model_config = ConfigDict(extra="forbid")

    slug: Annotated[
        str,
        Field(
            pattern=ASSOCIATION_SLUG,
            max_length=SLUG_MAX_LENGTH,
            description="Short unique name used in addresses and paths: a-z, 0-9, single inner dashes, 32 at most.",
        ),  # fmt: skip
    ]
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$", description="Full name.")]
    email: Annotated[
        str,
        Field(
            pattern=r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$",
            description="Contact e-mail address.",
        ),
    ]
    offer: Annotated[
        str | None, Field(pattern=r"^[a-z0-9-]{1,63}$", description="The quota package signed up for.")
    ] = None


def validate_association_spec(**fields) -> AssociationSpec:
    """Give an AssociationSpec; raises InvalidInput naming each wrong field."""
    try:
        return AssociationSpec(**fields)
    except ValidationError as error:
        raise InvalidInput("\n".join(describe_validation_error(error, "association"))) from None


def add_association(session: Session, spec: AssociationSpec) -> Association:
    """Register ``spec``; raises Conflict when the slug is taken."""
    if session.scalars(select(Association).where(Association.slug == spec.slug)).first() is not None:
        raise Conflict(f"an association with slug {spec.slug!r} already exists")
    association = Association(**spec.model_dump())
    session.add(association)
    session.flush()
    return association


def list_associations(session: Session) -> list[Association]:
    return list(session.scalars(select(Association).order_by(Association.slug)))


def get_association(session: Session, slug: str, *, lock: bool = False) -> Association:
    """Give association ``slug``; raises NotFound. ``lock``: hold its row until the session ends (PostgreSQL:
    no instance can be added to it meanwhile; SQLite has one writer at a time anyway)."""
    query = select(Association).where(Association.slug == slug)
    association = session.scalars(query.with_for_update() if lock else query).first()
    if association is None:
        raise NotFound(f"no association {slug!r}", hint="`ruche association list` shows them")
    return association


def association_as_dict(association: Association) -> dict:
    return {"slug": association.slug, "name": association.name, "email": association.email, "offer": association.offer,
            "listed": association.listed, "alerts_opt_in": association.alerts_opt_in,
            "language": association.language}  # fmt: skip


def set_alert_choice(session: Session, association: Association, *, opt_in: bool | None, language: str | None,
                     actor: str | None = None) -> bool:  # fmt: skip
    """Record whether ``association`` is told by mail (its contact address, in ``language``) of the alerts on its own
    instances (None: keep); an ``association.alerts`` event with before and after when something changed (by
    ``actor``, else the session's). Raises InvalidInput for a language without a catalog. True when it changed."""
    if language is not None and language not in LANGUAGES:
        raise InvalidInput(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    before = {"alerts_opt_in": association.alerts_opt_in, "language": association.language}
    if opt_in is not None:
        association.alerts_opt_in = opt_in
    if language is not None:
        association.language = language
    after = {"alerts_opt_in": association.alerts_opt_in, "language": association.language}
    if after == before:
        return False
    record_event(session, kind="association.alerts", subject=association.slug, association=association.slug,
                 detail={"before": before, "after": after}, actor=actor)  # fmt: skip
    return True


def ensure_backup_password(association: Association, vault) -> bool:
    """Give ``association`` a random restic password (vault-encrypted) if it has none; tell whether one was made."""
    if association.backup_password is not None:
        return False
    association.backup_password = vault.encrypt(generate_secret())
    return True


def removable_instances(session: Session, association: Association) -> list[Instance]:
    """Give ``association``'s instances (sorted by name) when it may be removed: every one deleted, no run of one
    queued or running. Raises Conflict naming those that are not."""
    instances = list(
        session.scalars(select(Instance).where(Instance.association_id == association.id).order_by(Instance.name))
    )
    live = [f"{association.slug}/{i.name}" for i in instances if i.state != "deleted"]
    if live:
        raise Conflict(
            f"association {association.slug} still has {len(live)} instance(s) not deleted: {', '.join(live)}",
            hint="`ruche instance delete ADDRESS` each of them first",
        )
    queued = sorted(set(session.scalars(select(QueuedRun.instance_address).where(
        QueuedRun.state.in_(("queued", "running")),
        QueuedRun.instance_address.startswith(f"{association.slug}/", autoescape=True),
    ))))  # fmt: skip
    if queued:
        raise Conflict(
            f"runs of {', '.join(queued)} are still queued or running",
            hint="wait for the worker to finish them (`ruche queue list`)",
        )
    return instances


def _belongings(association: Association, instance_ids: list[int]) -> list[tuple[type, object]]:
    """The rows that go with ``association``, each table with its condition, in the order they are deleted.

    Its requests, invites and browser sessions (its own foreign keys); then the history that names its
    instances by address (no foreign key, or SET NULL): health checks, backups, restores and verifications,
    upgrades, runs of one of its instances alone (what the transparency report counts)."""
    prefix = f"{association.slug}/"
    invites = select(Invite.id).where(Invite.association_id == association.id)
    return [
        (Domain, Domain.association_id == association.id),
        (WebSession, or_(WebSession.association_id == association.id, WebSession.invite_id.in_(invites))),
        (Invite, Invite.association_id == association.id),
        (ServiceRequest, ServiceRequest.association_id == association.id),
        (HealthCheck, HealthCheck.instance_address.startswith(prefix, autoescape=True)),
        (BackupRun, or_(BackupRun.instance_id.in_(instance_ids), BackupRun.instance_address.startswith(prefix, autoescape=True))),
        (Upgrade, or_(Upgrade.instance_id.in_(instance_ids), Upgrade.instance_address.startswith(prefix, autoescape=True))),
        (Run, Run.target.startswith(prefix, autoescape=True)),
    ]  # fmt: skip


def association_belongings(session: Session, association: Association) -> dict[str, int]:
    """Give how many rows of each table go with ``association`` (its instances included) if it is removed."""
    instances = list(session.scalars(select(Instance.id).where(Instance.association_id == association.id)))
    counts = {"instances": len(instances)}
    for model, condition in _belongings(association, instances):
        counts[model.__tablename__] = session.scalar(select(func.count()).select_from(model).where(condition)) or 0
    return counts


def delete_association(session: Session, association: Association) -> dict[str, int]:
    """Delete ``association``, its instances (all deleted, see ``removable_instances``) and the rows that go with
    them (``_belongings``); give how many of each table.

    Rows are deleted through the session, so each is an event of the audit trail (those the trail leaves out,
    health checks, in one statement), dependents first: nothing relies on the database's cascades, which
    would leave no event. Usage samples (measurements) go with their instance by the database's cascade.
    """
    instances = removable_instances(session, association)
    counts = {"instances": len(instances)}
    for model, condition in _belongings(association, [i.id for i in instances]):
        table = model.__tablename__
        if table in IGNORED and IGNORED[table] is None:
            counts[table] = session.execute(delete(model).where(condition)).rowcount
        else:
            rows = list(session.scalars(select(model).where(condition)))
            for row in rows:
                session.delete(row)
            counts[table] = len(rows)
        session.flush()  # each table before the next: a sessions' invite, an instance's history
    for instance in instances:
        session.delete(instance)
    session.flush()  # the instances' events name the association: it must still be there
    session.delete(association)
    session.flush()
    return counts
