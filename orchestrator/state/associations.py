"""Associations: validation of new entries and queries."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import Conflict, InvalidInput, NotFound
from orchestrator.secrets import generate_secret
from orchestrator.state.models import Association
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


def get_association(session: Session, slug: str) -> Association:
    """Give association ``slug``; raises NotFound."""
    association = session.scalars(select(Association).where(Association.slug == slug)).first()
    if association is None:
        raise NotFound(f"no association {slug!r}", hint="`ruche association list` shows them")
    return association


def association_as_dict(association: Association) -> dict:
    return {"slug": association.slug, "name": association.name, "email": association.email, "offer": association.offer,
            "listed": association.listed}  # fmt: skip


def ensure_backup_password(association: Association, vault) -> bool:
    """Give ``association`` a random restic password (vault-encrypted) if it has none; tell whether one was made."""
    if association.backup_password is not None:
        return False
    association.backup_password = vault.encrypt(generate_secret())
    return True
