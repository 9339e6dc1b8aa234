"""Alerts told through Apprise (https://github.com/caronc/apprise): the admins' channels, and an association's
address for its own instances' alerts when it opted in.

The admins' channels: every Apprise URL of ``[alerts] urls`` (stored as ansible-vault ciphertext, opened here
only, in memory) and ``[alerts] admin_emails`` mailed through the collective's relay (``[mail]``, the lab's SMTP
sink while the lab is up) as Apprise's ``mailto://`` URL built from it. A channel is named in errors and outputs
by Apprise's own privacy form of its URL (``url(privacy=True)``: passwords and tokens masked), never in clear.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from orchestrator.config import MailSettings
from orchestrator.notices import Text
from orchestrator.workspace import Workspace

# Apprise's email plugin's names for [mail] security
_MODES = {"starttls": "starttls", "tls": "ssl", "none": "insecure"}
SENDER = "ruche-alerts"


@dataclass(frozen=True)
class Channel:
    """One place a notice goes: ``url`` in clear (memory only) and ``shown``, its masked form."""

    url: str
    shown: str


def relay_url(mail: MailSettings, recipients: list[str], *, password: str | None, sender_name: str) -> str:
    """Apprise's mailto:// URL that sends to ``recipients`` through the relay ``mail`` (password opened)."""
    credentials = ""
    if mail.username:
        credentials = quote(mail.username, safe="")
        if password:
            credentials += ":" + quote(password, safe="")
        credentials += "@"
    query = urlencode({"from": f"{SENDER}@{mail.sender_domain}", "name": sender_name, "mode": _MODES[mail.security],
                       "smtp": mail.host}, quote_via=quote)  # fmt: skip
    targets = "/".join(quote(r, safe="@+") for r in recipients)
    return f"mailto://{credentials}{mail.host}:{mail.port}/{targets}?{query}"


def _masked(url: str) -> str:
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    return plugin.url(privacy=True) if plugin else url.split(":", 1)[0] + "://(not an Apprise URL)"


def admin_channels(workspace: Workspace) -> list[Channel]:
    """The admins' channels, opened (vault) in memory."""
    settings = workspace.config.alerts
    channels = []
    if settings.urls:
        vault = workspace.vault()
        for ciphertext in settings.urls:
            url = vault.decrypt(ciphertext)
            channels.append(Channel(url, _masked(url)))
    if settings.admin_emails and workspace.config.mail is not None:
        channels.append(mail_channel(workspace, settings.admin_emails))
    return channels


def mail_channel(workspace: Workspace, recipients: list[str]) -> Channel:
    """Mail to ``recipients`` through the collective's relay."""
    mail = workspace.config.mail
    password = workspace.vault().decrypt(mail.password) if mail.password else None
    url = relay_url(mail, recipients, password=password, sender_name=workspace.config.collective)
    return Channel(url, f"mail to {', '.join(recipients)} through {mail.host}:{mail.port}")


def send(channels: list[Channel], text: Text) -> str | None:
    """Send ``text`` on every channel; give None when all took it, else which did not (masked)."""
    import apprise

    failed = []
    for channel in channels:
        plugin = apprise.Apprise.instantiate(channel.url)
        if plugin is None:
            failed.append(f"{channel.shown}: not an Apprise URL Apprise knows")
            continue
        with apprise.LogCapture(level=logging.WARNING) as log:
            ok = plugin.notify(body=text.body, title=text.title)
        if not ok:
            said = " ".join(line.strip() for line in log.getvalue().splitlines()[-2:])
            failed.append(f"{channel.shown}: {said[:300] or 'refused'}")
    return "; ".join(failed) if failed else None


def probe_channels(workspace: Workspace) -> list[dict]:
    """Each admin channel in its masked form, and whether Apprise knows its URL (`ruche alerts notify list`)."""
    import apprise

    return [{"channel": c.shown, "known": apprise.Apprise.instantiate(c.url) is not None}
            for c in admin_channels(workspace)]  # fmt: skip
