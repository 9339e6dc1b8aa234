"""Who acts: the actor every event of the audit trail records.

The actor is, in order: the session's ``info["actor"]`` (the web app sets the signed-in
member or admin), the ``acting_as`` context (the worker names itself and who queued the run), else
the shell's (``$RUCHE_ACTOR`` or the login name).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.orm import Session

_ACTOR: ContextVar[str | None] = ContextVar("ruche_actor", default=None)


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Record the state changes made in this block (in this thread) as ``actor``'s."""
    token = _ACTOR.set(actor[:120])
    try:
        yield
    finally:
        _ACTOR.reset(token)


def actor_of(session: Session) -> str:
    return (session.info.get("actor") or acting_actor())[:120]


def acting_actor() -> str:
    """Who acts here outside a web session: the ``acting_as`` context, else the shell's user."""
    return (_ACTOR.get() or current_actor())[:120]


def current_actor() -> str:
    """Give who is acting from this shell: ``$RUCHE_ACTOR`` if set, else the login name."""
    named = os.environ.get("RUCHE_ACTOR", "").strip()
    if named:
        return named[:120]
    try:
        return getpass.getuser()[:120]
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
