"""The texts of alert notices (title and body), in a language, through the gettext catalogs (i18n.py).

Admins read every alert with its evidence and how to acknowledge it; an association reads only what concerns
its own instances, in its own words and language, never another association's. Pure: values in, text out.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.i18n import N_, translator

# What an alert is, by kind, in a few words (placeholders from the alert's values).
KIND_TITLES = {
    "instance.down": N_("%(subject)s does not answer"),
    "server.unreachable": N_("server %(subject)s does not answer over SSH"),
    "server.disk": N_("server %(subject)s: disk %(percent)s%% full"),
    "server.memory": N_("server %(subject)s: memory %(percent)s%% used"),
    "backup.overdue": N_("%(subject)s: no recent backup"),
    "backup.unverified": N_("%(subject)s: backups not checked recently"),
    "quota.over": N_("%(subject)s uses more than its offer"),
    "run.failed": N_("the last run on %(subject)s failed"),
    "certificate.expiring": N_("%(subject)s: certificate to renew"),
    "queue.stuck": N_("queued run %(subject)s is stuck"),
}
# What an association reads about its own alert (placeholders: its values; every kind of scope "instance").
MEMBER_TEXTS = {
    "instance.down": N_(
        "Your service %(instance)s (%(address)s) does not answer since %(since)s. The collective's admins have been "
        "told and are looking into it."
    ),
    "backup.overdue": N_(
        "Your service %(instance)s has not been backed up since %(last)s. The collective's admins have been told."
    ),
    "backup.unverified": N_(
        "The restore check of your service %(instance)s's backups has not passed since %(last)s. The collective's "
        "admins have been told."
    ),
    "quota.over": N_(
        "Your association uses %(used)s of %(what)s where its offer gives %(limit)s. Please free some space, or "
        "ask the collective's admins for a larger offer."
    ),
    "certificate.expiring": N_(
        "The certificate of %(domain)s (your service %(instance)s) is to be renewed: %(detail)s. Check that the "
        "name still points at the collective's server."
    ),
}
# the words of the values a text is filled with
WHAT = {"disk": N_("disk space"), "memory": N_("memory")}
NEVER = N_("never")
TITLE = N_("%(head)s: %(what)s")
OPENED = N_("Alert")
REMINDER = N_("Still open")
CLEARED = N_("Recovered")
HEADS = {"opened": OPENED, "reminder": REMINDER, "cleared": CLEARED}
CLEARED_TEXT = N_("This is over: %(title)s, seen from %(since)s until %(until)s.")
ADMIN_FOOTER = N_(
    "Alert %(id)s (%(kind)s), first seen %(since)s. Acknowledge it with: ruche alerts ack %(id)s --reason TEXT"
)


@dataclass(frozen=True)
class Text:
    title: str
    body: str


def _filled(_, values: dict, subject: str) -> dict:
    """The values a text may name, in its language, with every placeholder present (a missing one shows as '?')."""
    names = ("instance", "address", "since", "until", "last", "used", "what", "limit", "domain", "detail", "percent")
    filled = {**{name: "?" for name in names}, **{k: str(v) for k, v in values.items()}, "subject": subject}
    filled["what"] = _(WHAT[filled["what"]]) if filled["what"] in WHAT else filled["what"]
    for name in ("since", "last"):
        filled[name] = _(NEVER) if filled[name] == "never" else filled[name]
    return filled


def _minute(stamp: str | None) -> str:
    """An ISO stamp of alert_as_dict to the minute, as people read it."""
    return (stamp or "")[:16].replace("T", " ")


def _title(_, event: str, what: str, collective: str) -> str:
    return f"[{collective}] " + _(TITLE, head=_(HEADS[event]), what=what)


def _cleared(_, what: str, since: str, alert: dict) -> str:
    return _(CLEARED_TEXT, title=what, since=since, until=_minute(alert.get("cleared_at")))


def admin_text(language: str, event: str, alert: dict, *, collective: str) -> Text:
    """What the collective's admins read: ``alert`` is state/alerts.alert_as_dict's view with its ``values``."""
    _ = translator(language)
    values = _filled(_, alert.get("values") or {}, alert["subject"])
    what = _(KIND_TITLES[alert["kind"]], **values)
    since = values["since"] if values["since"] not in ("?", _(NEVER)) else _minute(alert["first_seen"])
    body = _cleared(_, what, since, alert) if event == "cleared" else alert["summary"]
    footer = _(ADMIN_FOOTER, id=alert["id"], kind=alert["kind"], since=since)
    return Text(title=_title(_, event, what, collective), body=f"{body}\n\n{footer}")


def member_text(language: str, event: str, alert: dict, *, collective: str) -> Text | None:
    """What the association whose own the alert is reads (None: a kind it is not told of)."""
    if alert["kind"] not in MEMBER_TEXTS:
        return None
    _ = translator(language)
    values = _filled(_, alert.get("values") or {}, alert["subject"])
    what = _(KIND_TITLES[alert["kind"]], **values)
    if event == "cleared":
        body = _cleared(_, what, values["since"], alert)
    else:
        body = _(MEMBER_TEXTS[alert["kind"]], **values)
    return Text(title=_title(_, event, what, collective), body=body)
