"""``ruche mail show|set|set-password|unset``: the collective's outgoing mail relay (ruche.toml's [mail]).

Every instance sends mail through it (catalogue entries read it as ``${mail.*}``); the password is
kept only as ansible-vault ciphertext, like the instances' secrets. A change reaches the servers at
the next ``ruche apply``. While the lab is up, the lab's own relay (its SMTP sink, in the lab's
settings file) applies instead of ruche.toml's, which these commands still edit.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from orchestrator.config import MailSettings
from orchestrator.errors import InvalidInput
from orchestrator.validation import describe_validation_error
from orchestrator.workspace import Workspace, open_workspace


def mail_as_dict(settings: MailSettings | None) -> dict:
    """The relay's settings without its password (only whether one is set)."""
    if settings is None:
        return {"configured": False}
    view = settings.model_dump(exclude={"password"})
    return {"configured": True, **view, "password_set": settings.password is not None}


def show(workspace_path: Path | None) -> dict:
    """The relay in use, and the file it comes from: the lab's settings while the lab is up, else ruche.toml."""
    workspace = open_workspace(workspace_path)
    source = workspace.setting_source("mail")
    return {**mail_as_dict(workspace.config.mail), "source": str(source), "from_lab": source != workspace.config_path}


def _edited(workspace: Workspace, settings: MailSettings | None) -> dict:
    """ruche.toml's relay as just written, and the lab's settings file when the lab's relay applies instead."""
    view = {**mail_as_dict(settings), "source": str(workspace.config_path), "from_lab": False}
    if "mail" in workspace.lab_settings:
        view["lab_relay_applies"] = str(workspace.lab_settings_path)
    return view


def configure(workspace_path: Path | None, **fields) -> dict:
    """Set ruche.toml's relay fields given (None: keep); raises InvalidInput naming the bad field; ruche.toml untouched
    then. While the lab is up, its own relay applies instead until `ruche lab down`."""
    workspace = open_workspace(workspace_path)
    current = workspace.file_config.mail.model_dump() if workspace.file_config.mail is not None else {}
    wanted = {**current, **{k: v for k, v in fields.items() if v is not None}}
    try:
        settings = MailSettings(**wanted)
    except ValidationError as error:
        raise InvalidInput("; ".join(describe_validation_error(error, "ruche.toml [mail]")),
                           hint="e.g. ruche mail set --host smtp.example.org --sender-domain chatons.example.org") from None  # fmt: skip
    workspace.edit_config({"mail": settings})
    return _edited(workspace, settings)


def set_password(workspace_path: Path | None, password: str | None) -> dict:
    """Keep ruche.toml's relay password as vault ciphertext (None or empty: remove it)."""
    workspace = open_workspace(workspace_path)
    if workspace.file_config.mail is None:
        raise InvalidInput(
            f"no mail relay configured in {workspace.config_path.name}",
            hint="first `ruche mail set --host HOST --sender-domain DOMAIN`",
        )
    if password and any(ord(c) < 32 for c in password):
        raise InvalidInput("the password must not contain control characters (a pasted newline?)")
    ciphertext = workspace.vault().encrypt(password) if password else None
    settings = workspace.file_config.mail.model_copy(update={"password": ciphertext})
    workspace.edit_config({"mail": settings})
    return _edited(workspace, settings)


def unset(workspace_path: Path | None) -> dict:
    """Remove ruche.toml's [mail] table."""
    workspace = open_workspace(workspace_path)
    workspace.edit_config({"mail": None})
    return _edited(workspace, None)
