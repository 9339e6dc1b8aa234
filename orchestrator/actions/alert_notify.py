"""``ruche alerts notify list|add|remove|test``: the admins' notification channels (ruche.toml's [alerts]).

An Apprise URL (mailto://, matrix://, xmpp://, ntfy://, json:// ...) is kept only as ansible-vault ciphertext: it
often holds a token or a password. An e-mail address is kept as it is in ``admin_emails`` and mailed through the
collective's relay. Listed, a channel shows as its scheme, host and a digest (operations/notify.label).
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import AlertSettings
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.notices import Text
from orchestrator.operations.notify import ADDRESS, admin_channels, label, opened_urls, send
from orchestrator.workspace import Workspace, open_workspace


def _known(url: str) -> bool:
    import apprise

    return apprise.Apprise.instantiate(url) is not None


def channels(workspace_path: Path | None) -> list[dict]:
    """Every channel, numbered as `remove` takes them: URLs (masked) first, then the mailed addresses."""
    workspace = open_workspace(workspace_path)
    settings = workspace.file_config.alerts
    listed = [
        {"number": number, "kind": "url", "channel": label(url), "known": _known(url)}
        for number, url in enumerate(opened_urls(workspace), start=1)
    ]
    for address in settings.admin_emails:
        listed.append({"number": len(listed) + 1, "kind": "email", "channel": address,
                       "through": "the [mail] relay" if workspace.config.mail else "no relay configured: not sent"})  # fmt: skip
    return listed


def _write(workspace: Workspace, settings: AlertSettings) -> None:
    workspace.edit_config({"alerts": settings})


def add(workspace_path: Path | None, channel: str) -> dict:
    """Add an Apprise URL (checked by Apprise, kept encrypted) or an admin's address (mailed through the relay)."""
    workspace = open_workspace(workspace_path)
    settings = workspace.file_config.alerts
    channel = channel.strip()
    if "://" not in channel and "@" in channel:
        if not ADDRESS.match(channel):
            raise InvalidInput(f"{channel!r} is not an address mail can be sent to",
                               hint="letters, digits and . _ % + - before the @, e.g. admins@chatons.example.org")  # fmt: skip
        if channel in settings.admin_emails:
            raise InvalidInput(f"{channel} is already told of the alerts")
        _write(workspace, settings.model_copy(update={"admin_emails": [*settings.admin_emails, channel]}))
        warning = None if workspace.config.mail else "no mail relay is configured: set one with `ruche mail set`"
        return {"added": channel, "kind": "email", "warning": warning}
    if not _known(channel):
        raise InvalidInput(
            "not an Apprise URL Apprise knows (it is not shown here: it may hold a secret)",
            hint="e.g. ntfy://ntfy.sh/TOPIC, matrixs://USER:TOKEN@matrix.org/#room, json://hooks.example.org/ruche, "
            "mailtos://USER:PASSWORD@smtp.example.org?to=admin@example.org (https://github.com/caronc/apprise/wiki), "
            "or an e-mail address",
        )
    ciphertext = workspace.vault().encrypt(channel)
    _write(workspace, settings.model_copy(update={"urls": [*settings.urls, ciphertext]}))
    return {"added": label(channel), "kind": "url", "warning": None}


def remove(workspace_path: Path | None, number: int) -> dict:
    """Remove channel ``number`` of `channels`."""
    workspace = open_workspace(workspace_path)
    settings = workspace.file_config.alerts
    listed = channels(workspace_path)
    if not 1 <= number <= len(listed):
        raise NotFound(f"no channel {number} ({len(listed)} configured)", hint="`ruche alerts notify list`")
    entry = listed[number - 1]
    if entry["kind"] == "url":
        urls = [u for i, u in enumerate(settings.urls) if i != number - 1]
        _write(workspace, settings.model_copy(update={"urls": urls}))
    else:
        emails = [e for e in settings.admin_emails if e != entry["channel"]]
        _write(workspace, settings.model_copy(update={"admin_emails": emails}))
    return {"removed": entry["channel"], "kind": entry["kind"]}


def test(workspace_path: Path | None) -> dict:
    """Send a test notice on every admin channel; give which failed (masked)."""
    workspace = open_workspace(workspace_path)
    configured = admin_channels(workspace)
    if not configured:
        raise InvalidInput("no channel to test", hint="`ruche alerts notify add URL|ADDRESS`")
    text = Text(title=f"[{workspace.config.collective}] ruche: test notice",
                body="This is a test of ruche's alert channels (`ruche alerts notify test`). Nothing is wrong.")  # fmt: skip
    error = send(configured, text)
    return {"channels": [c.shown for c in configured], "ok": error is None, "error": error}
