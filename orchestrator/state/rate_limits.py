"""Rate limits kept in the state database, so that every `ruche serve` process (--workers N, or several
machines on one PostgreSQL) counts the same hits: at most ``limit`` hits per ``window`` seconds per key.

Each (limiter, key) has a row that a hit locks first (a row lock on PostgreSQL; SQLite serialises
writers anyway), then the hits of the window are counted; a refused hit is not recorded, so a client
that keeps trying is let in again once its window has passed. Old hits are pruned as keys are hit.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.state.models import RateLimitHit, RateLimitKey, utc_now

KEY_LENGTH = 64


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
    if count >= limit:
        return False
    session.add(RateLimitHit(key_id=row.id, at=now))
    return True
