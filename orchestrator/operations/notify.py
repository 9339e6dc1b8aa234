"""Alerts told through Apprise (https://github.com/caronc/apprise): the admins' channels, and an association's
address for its own instances' alerts when it opted in.

The admins' channels: every Apprise URL of ``[alerts] urls`` (stored as ansible-vault ciphertext, opened here
only, in memory) and ``[alerts] admin_emails`` mailed through the collective's relay (``[mail]``, the lab's SMTP
sink while the lab is up) as Apprise's ``mailto://`` URL built from it. A channel is named in errors and outputs
by its scheme, its host and a short digest of its URL (``label``), never by its path, query or credentials: a
webhook's path or headers are often its secret, which Apprise's own privacy form keeps. Notices are sent as plain
text (Apprise's default is HTML).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from orchestrator.config import MailSettings
from orchestrator.notices import Text
from orchestrator.workspace import Workspace

# Apprise's email plugin's names for [mail] security
_MODES = {"starttls": "starttls", "tls": "ssl", "none": "insecure"}
SENDER = "ruche-alerts"
# an address Apprise takes as one recipient: no comma, semicolon, slash or space (Apprise splits on them)
ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")


@dataclass(frozen=True)
class Channel:
    """One place a notice goes: ``url`` in clear (memory only), ``shown`` (its label) and ``key`` (what the alert
    records of the channels that took a notice)."""

    url: str
    shown: str

    @property
    def key(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]


def label(url: str) -> str:
    """An Apprise URL named without its secrets: scheme, host (and port), a digest telling two apart."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return f"{url.split(':', 1)[0][:20]}://? ({digest})"
    return f"{parts.scheme}://{host}{port} ({digest})"


def relay_url(mail: MailSettings, recipients: list[str], *, password: str | None, sender_name: str) -> str:
    """Apprise's mailto:// URL that sends to ``recipients`` through the relay ``mail`` (password opened); raises
    ValueError for an address Apprise would read as something else."""
    for recipient in recipients:
        if not ADDRESS.match(recipient):
            raise ValueError(f"{recipient!r} is not an address mail can be sent to (letters, digits, . _ % + - @)")
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


def opened_urls(workspace: Workspace) -> list[str]:
    """``[alerts] urls`` opened with the vault, in memory (none: the vault password is not asked for)."""
    urls = workspace.file_config.alerts.urls
    if not urls:
        return []
    vault = workspace.vault()
    return [vault.decrypt(ciphertext) for ciphertext in urls]


def admin_channels(workspace: Workspace) -> list[Channel]:
    """The admins' channels, opened (vault) in memory."""
    settings = workspace.config.alerts
    channels = [Channel(url, label(url)) for url in opened_urls(workspace)]
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
            ok = plugin.notify(body=text.body, title=text.title, body_format=apprise.NotifyFormat.TEXT)
        if not ok:
            failed.append(f"{channel.shown}: {_reason(log.getvalue(), channel.url)}")
    return "; ".join(failed) if failed else None


def _reason(logged: str, url: str) -> str:
    """Why Apprise says a delivery failed, from its log, with nothing of the URL but its host."""
    said = " ".join(line.strip() for line in logged.splitlines()[-2:])[:300] or "refused"
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query, parts.password, parts.username):
        if secret and len(secret) > 1:
            said = said.replace(secret, "***")
    return said
