"""Rate limits kept in the state database, so that every `ruche serve` process (--workers N, or several
machines on one PostgreSQL) counts the same hits: at most ``limit`` hits per ``window`` seconds per key.

Each (limiter, key) has a row that a hit locks first (a row lock on PostgreSQL; SQLite serialises
writers anyway), then the hits of the window are counted; a refused hit is not recorded, so a client
that keeps trying is let in again once its window has passed. Old hits are pruned as keys are hit, and each
hit also removes up to PRUNE_BATCH other keys of its limiter whose hits are all past the window (an address
seen once a month ago leaves no row behind).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.state.models import RateLimitHit, RateLimitKey, utc_now

KEY_LENGTH = 64
# Stale keys removed at most per hit: a hit's cost stays bounded, a backlog is gone after a few hits.
PRUNE_BATCH = 100


def hit(session: Session, *, name: str, key: str, limit: int, window_seconds: float) -> bool:
    """Count a hit of ``key`` on limiter ``name``; tell whether it is within the limit (then it is recorded)."""
    key = key[:KEY_LENGTH]
    now = utc_now()
    since = now - timedelta(seconds=window_seconds)
    row = session.scalars(
        select(RateLimitKey).where(RateLimitKey.name == name, RateLimitKey.key == key).with_for_update()
    ).first()
    if row is None:
        try:
            with session.begin_nested():
                session.add(RateLimitKey(name=name, key=key))
        except IntegrityError:  # another process made it first: take its lock
            pass
        row = session.scalars(
            select(RateLimitKey).where(RateLimitKey.name == name, RateLimitKey.key == key).with_for_update()
        ).one()
    session.execute(delete(RateLimitHit).where(RateLimitHit.key_id == row.id, RateLimitHit.at <= since))
    count = session.scalar(select(func.count()).select_from(RateLimitHit).where(RateLimitHit.key_id == row.id))
    prune(session, name=name, since=since, keep=row.id)
    if count >= limit:
        return False
    session.add(RateLimitHit(key_id=row.id, at=now))
    return True


def prune(session: Session, *, name: str, since, keep: int | None = None) -> int:
    """Remove up to PRUNE_BATCH keys of limiter ``name`` (and their hits) with no hit after ``since``, but
    ``keep``; give how many. Keys another process holds (it is counting a hit) are skipped, not waited for."""
    recent = exists().where(RateLimitHit.key_id == RateLimitKey.id, RateLimitHit.at > since)
    query = select(RateLimitKey.id).where(RateLimitKey.name == name, ~recent)
    if keep is not None:
        query = query.where(RateLimitKey.id != keep)
    stale = list(session.scalars(query.limit(PRUNE_BATCH).with_for_update(skip_locked=True)))
    if stale:
        session.execute(delete(RateLimitHit).where(RateLimitHit.key_id.in_(stale)))
        session.execute(delete(RateLimitKey).where(RateLimitKey.id.in_(stale)))
    return len(stale)
