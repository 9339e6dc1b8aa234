"""The one error hierarchy of ruche.

Every error a user can meet is a :class:`RucheError`: it carries a message for humans, an
optional hint that says how to fix it, and the process exit code.  The CLI catches them at one
boundary (``orchestrator.cli.main``) and prints them without a traceback unless ``--debug``.

Exit codes:

====  =====================================================================
 0    success
 1    an operation ran and failed (a run, a health check, a remote command)
 2    bad usage or bad input (click's own usage errors use 2 as well)
 3    invalid configuration or catalogue file
 4    the named thing does not exist
 5    conflict with existing state (already exists, already in use)
 6    this machine lacks something (root, a program, free disk)
 7    a server did not answer in time
====  =====================================================================
"""

from __future__ import annotations


class RucheError(Exception):
    """Base of every error meant for a human; ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class OperationFailed(RucheError):
    """A command, run or check was carried out and did not succeed."""

    exit_code = 1


class InvalidInput(RucheError):
    """A value given on the command line or in a form is not acceptable."""

    exit_code = 2


class ConfigError(RucheError):
    """A configuration or catalogue file is missing or invalid."""

    exit_code = 3


class NotFound(RucheError):
    """The named object (server, association, instance, workspace) does not exist."""

    exit_code = 4


class Conflict(RucheError):
    """The request collides with existing state (a name or an address already in use)."""

    exit_code = 5


class QuotaExceeded(Conflict):
    """The request is beyond the association's offer (count, memory or disk). ``offer`` and ``excesses`` (the
    limits passed: quotas.Excess) let a page say it in its reader's language."""

    def __init__(self, message: str, *, hint: str | None = None, offer: str | None = None,
                 excesses: tuple = ()) -> None:  # fmt: skip
        super().__init__(message, hint=hint)
        self.offer = offer
        self.excesses = tuple(excesses)


class DomainRefused(Conflict):
    """An own domain cannot be claimed. ``reason`` says which rule (collective-domain, held-elsewhere,
    claimed-for-another, too-many-here, too-many-pending) and ``values`` what a page needs to say it in its
    reader's language (never another association's name)."""

    def __init__(self, message: str, *, hint: str | None = None, reason: str, **values) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        self.values = values


class MissingPrerequisite(RucheError):
    """This machine lacks what the command needs: root, a program, disk space."""

    exit_code = 6


class TimedOut(RucheError):
    """Something did not answer within its time limit."""

    exit_code = 7
