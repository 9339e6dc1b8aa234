"""Leases: a job that only one process may do at a time, whichever worker or machine (e.g. the watch, which
several workers run: two at once would tell every alert twice). Taken with one conditional UPDATE, atomic on
SQLite and PostgreSQL alike; a holder that died loses it when ``until`` passes."""

from __future__ import annotations

import os
import socket
import threading
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from orchestrator.state.database import StateStore
from orchestrator.state.models import Lease, utc_now


def lease_holder() -> str:
    """This process and thread as a lease's holder: ``HOST:PID:THREAD``."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def take_lease(store: StateStore, name: str, holder: str, *, seconds: float) -> bool:
    """Take lease ``name`` for ``seconds`` when it is free, expired or already ``holder``'s; tell whether taken."""
    for _attempt in range(2):
        now = utc_now()
        with store.session() as session:
            taken = session.execute(
                update(Lease).where(Lease.name == name, or_(Lease.until < now, Lease.holder == holder))
                .values(holder=holder, until=now + timedelta(seconds=seconds))
            ).rowcount  # fmt: skip
            if taken:
                return True
            if session.get(Lease, name) is not None:
                return False
        try:
            with store.session() as session:
                session.add(Lease(name=name, holder=holder, until=now + timedelta(seconds=seconds)))
            return True
        except IntegrityError:  # another took it first: look again
            continue
    return False


def release_lease(store: StateStore, name: str, holder: str) -> None:
    """Give lease ``name`` back, if ``holder`` still holds it."""
    with store.session() as session:
        session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder).values(until=utc_now()))
