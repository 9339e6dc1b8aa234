"""``ruche mail show|set|set-password|unset``: the collective's outgoing mail relay (ruche.toml's [mail]).

Every instance sends mail through it (catalogue entries read it as ``${mail.*}``); the password is
kept only as ansible-vault ciphertext, like the instances' secrets. A change reaches the servers at
the next ``ruche apply``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from orchestrator.config import MailSettings
from orchestrator.errors import InvalidInput
from orchestrator.validation import describe_validation_error
from orchestrator.workspace import open_workspace


def mail_as_dict(settings: MailSettings | None) -> dict:
    """The relay's settings without its password (only whether one is set)."""
    if settings is None:
        return {"configured": False}
    view = settings.model_dump(exclude={"password"})
    return {"configured": True, **view, "password_set": settings.password is not None}


def show(workspace_path: Path | None) -> dict:
    return mail_as_dict(open_workspace(workspace_path).config.mail)


def configure(workspace_path: Path | None, **fields) -> dict:
    """Set the relay's fields given (None: keep); raises InvalidInput naming the bad field; ruche.toml untouched then."""
    workspace = open_workspace(workspace_path)
    current = workspace.config.mail.model_dump() if workspace.config.mail is not None else {}
    wanted = {**current, **{k: v for k, v in fields.items() if v is not None}}
    try:
        settings = MailSettings(**wanted)
    except ValidationError as error:
        raise InvalidInput("; ".join(describe_validation_error(error, "ruche.toml [mail]")),
                           hint="e.g. ruche mail set --host smtp.example.org --sender-domain chatons.example.org") from None  # fmt: skip
    workspace.save_config(workspace.config.model_copy(update={"mail": settings}))
    return mail_as_dict(settings)


def set_password(workspace_path: Path | None, password: str | None) -> dict:
    """Keep the relay's password as vault ciphertext (None or empty: remove it)."""
    workspace = open_workspace(workspace_path)
    if workspace.config.mail is None:
        raise InvalidInput("no mail relay configured", hint="first `ruche mail set --host HOST --sender-domain DOMAIN`")
    if password and any(ord(c) < 32 for c in password):
        raise InvalidInput("the password must not contain control characters (a pasted newline?)")
    ciphertext = workspace.vault().encrypt(password) if password else None
    settings = workspace.config.mail.model_copy(update={"password": ciphertext})
    workspace.save_config(workspace.config.model_copy(update={"mail": settings}))
    return mail_as_dict(settings)


def unset(workspace_path: Path | None) -> dict:
    workspace = open_workspace(workspace_path)
    workspace.save_config(workspace.config.model_copy(update={"mail": None}))
    return mail_as_dict(None)
