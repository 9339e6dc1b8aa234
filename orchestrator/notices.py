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
# What the admins read of an alert, by kind: its evidence (placeholders: the values the watch recorded; a value
# from a tool, "detail", stays as the tool said it). An alert recorded without these values: its summary, in English.
ADMIN_TEXTS = {
    "instance.down": N_("%(instance)s (%(service)s on %(server)s) does not answer through Caddy: %(detail)s"),
    "server.unreachable": N_("Server %(subject)s does not answer over SSH: %(detail)s"),
    "server.disk": N_(
        "Server %(subject)s: /srv is %(percent)s%% full (%(used_gib)s of %(size_gib)s GiB; [alerts] "
        "disk_used_percent %(threshold)s)."
    ),
    "server.memory": N_(
        "Server %(subject)s: memory %(percent)s%% used (%(available_mib)s MiB available of %(total_mib)s; [alerts] "
        "memory_used_percent %(threshold)s)."
    ),
    "backup.overdue": N_(
        "%(instance)s: no good backup in the last %(window_hours)s h (its offer's window); the last one: %(last)s."
    ),
    "backup.unverified": N_(
        "%(instance)s: no passed `backup verify` in the last %(days)s days; the last one: %(last)s."
    ),
    "quota.over": N_("%(subject)s (offer %(offer)s): %(excesses)s."),
    "run.failed": N_("The last run on %(subject)s failed on %(since)s (%(detail)s)."),
    "certificate.expiring": N_("%(domain)s (%(instance)s): %(detail)s"),
    "queue.stuck": N_("Queued run %(subject)s (%(target)s) %(waiting)s since %(since)s: is `ruche worker` running?"),
}
QUOTA_EXCESS = N_("%(what)s %(used)s measured, the offer gives %(limit)s")
QUEUE_WAITING = {"queued": N_("waits for a worker"), "running": N_("has had no heartbeat from its worker")}
CERTIFICATE_EXPIRES = N_("it expires on %(expires)s, within %(days)s days, and was not renewed")
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
    if values.get("expires"):  # a certificate still valid but not renewed: said in the reader's language
        filled["detail"] = _(CERTIFICATE_EXPIRES, expires=values["expires"], days=values.get("days", "?"))
    return filled


def _admin_evidence(_, alert: dict, filled: dict) -> str:
    """The alert's evidence in the admins' language, from the values the watch recorded; its English summary for
    an alert recorded before they were (a placeholder missing)."""
    values = alert.get("values") or {}
    if alert["kind"] == "quota.over" and isinstance(values.get("over"), list):
        filled = {**filled, "excesses": "; ".join(
            _(QUOTA_EXCESS, what=_(WHAT[w]) if w in WHAT else w, used=used, limit=limit) for w, used, limit in values["over"]
        )}  # fmt: skip
    if alert["kind"] == "queue.stuck" and values.get("waiting") in QUEUE_WAITING:
        filled = {**filled, "waiting": _(QUEUE_WAITING[values["waiting"]])}
    try:
        return _(ADMIN_TEXTS[alert["kind"]], **{k: v for k, v in filled.items() if k == "subject" or k in values
                                                 or k in ("excesses", "detail")})  # fmt: skip
    except (KeyError, ValueError, TypeError):
        return alert["summary"]


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
    body = _cleared(_, what, since, alert) if event == "cleared" else _admin_evidence(_, alert, values)
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
