"""What the member's space and the manager's page show of a service's own domains (issue 25), and what a manager
reads when a claim or a removal is refused.

Every member sees each domain of a running or suspended service whose catalogue entry takes one, in words
(waiting for its proof, proven, served with its certificate's issuer and expiry, failing and why), which name is
the primary address, and the DNS records it needs published. Only the association's managers add or remove one
(routes/manager_domains.py); the proofs are the worker's (operations/own_domains.retry_pending).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from babel.dates import format_date
from sqlalchemy.orm import Session

from orchestrator.catalog import Catalog
from orchestrator.domains import (
    MAX_OWN_DOMAINS_PER_INSTANCE,
    normalise,
    records_to_publish,
    shown,
    state,
)
from orchestrator.errors import Conflict, DomainRefused, InvalidInput
from orchestrator.i18n import N_, Translator
from orchestrator.state.domains import domains_of
from orchestrator.state.instances import list_instances
from orchestrator.state.models import Association, Domain, Instance, as_utc
from orchestrator.workspace import Workspace

# The states in which a service shows its domains and a manager may add one.
DOMAIN_STATES = ("running", "suspended")
STATE_TEXTS = {
    "pending": N_("waiting for its proof: publish the records below; ruche checks them every few minutes"),
    "verified": N_("proven: the service answers on it once its certificate is issued (a few minutes)"),
    "serving": N_("served, with a certificate from %(issuer)s valid until %(date)s"),
    "failing": N_("proven, but not served properly: %(detail)s"),
}
LAST_CHECK = N_("Last check, %(date)s: %(problem)s")
# what a proof's fault is, by kind (operations/own_domains records them; the admins' sentences stay in the trail)
PROOF_FAULTS = {
    "token": N_("the TXT record _ruche.%(name)s does not hold your token yet"),
    "foreign-token": N_(
        "_ruche.%(name)s also holds the token of another claim: remove it, or ask the collective's admins"
    ),  # fmt: skip
    "pointer": N_("%(name)s does not point at your service's server only, or not yet"),
    "round-trip": N_(
        "a request to http://%(name)s/ did not reach your service's server (is port 80 redirected, or "
        "a parking page in front?)"
    ),  # fmt: skip
    "conflict": N_("another association of the collective proved this name first"),
}

NOT_A_DOMAIN = N_(
    "Domain name: “%(name)s” cannot be used: give a domain name such as wiki.amap-du-coin.org (letters, digits "
    "and hyphens between dots; accents are fine; no address, no wildcard)."
)
COLLECTIVE_DOMAIN = N_(
    "Domain name: %(name)s is %(collective)s's own domain, or a name above or under it: your services already "
    "have their address under it. Give a domain your association holds itself."
)
HELD_ELSEWHERE = N_(
    "Domain name: %(name)s, or a name above or under it, is already used by another association of "
    "%(collective)s. If this is your association's domain, tell %(collective)s's admins."
)
CLAIMED_FOR_ANOTHER = N_(
    "Domain name: %(name)s is already claimed for your service “%(service)s”: remove it there first."
)
TOO_MANY_HERE = N_("Nothing was changed: this service has %(max)s domains already, the most one service takes. "
                   "Remove one first.")  # fmt: skip
TOO_MANY_PENDING = N_(
    "Nothing was changed: your association has %(max)s domains waiting for their proof already. Publish their "
    "records and wait for ruche's check, or remove some first."
)
NOT_NOW = N_(
    "Nothing was changed: “%(service)s” cannot take its own domain now (it must be running or suspended, and its "
    "kind of service must accept one). Reload the page."
)
NOT_RECORDED = N_("Nothing was changed: the domain could not be recorded. Try again; if it happens again, tell "
                  "%(collective)s's admins.")  # fmt: skip
TYPE_THE_DOMAIN = N_("Nothing was changed: to remove “%(name)s”, type it exactly in the box next to the button.")
NO_SUCH_DOMAIN = N_("Nothing was changed: this service has no domain “%(name)s” (any more). Reload the page.")
ADDED = N_(
    "“%(name)s” is recorded for “%(service)s”. Publish the records shown on the service's card at your "
    "association's DNS provider: ruche checks them within a few minutes, then the service gets its certificate "
    "for the name. Until then nothing changes for the service."
)
ALREADY_ADDED = N_("“%(name)s” was already recorded for “%(service)s”: its records are shown on the service's card.")
REMOVED = N_("“%(name)s” is removed from “%(service)s”. You may now remove its records at your DNS provider.")
REMOVED_ATTACHED = N_(
    "“%(name)s” is removed from “%(service)s”: the service stops answering on it once its set-up, now queued, "
    "has run. You may then remove its records at your DNS provider."
)


@dataclass
class DomainRow:
    """One domain as a card shows it."""

    name: str  # as recorded (IDNA A-labels)
    shown: str  # as people read it
    state: str  # pending, verified, serving, failing
    text: str
    primary: bool
    problem: str
    records: list[dict[str, str]]


@dataclass
class DomainBlock:
    """A service's own domains, and whether it takes another."""

    service: str  # the instance's name
    collective_address: str
    primary: str  # the address the application calls itself by (shown)
    rows: list[DomainRow] = field(default_factory=list)
    full: bool = False


def printable(text: str, length: int = 80) -> str:
    """``text`` cut to ``length``, each character that is not printable replaced: safe to repeat in a message."""
    return "".join(c if c.isprintable() else "\ufffd" for c in text.strip()[:length])


def domain_row(domain: Domain, instance: Instance, _: Translator) -> DomainRow:
    current = state(domain.status, domain.tls_status)
    if current == "serving":
        expiry = (
            format_date(as_utc(domain.tls_not_after), format="long", locale=_.language) if domain.tls_not_after else "?"
        )
        text = _(STATE_TEXTS["serving"], issuer=domain.tls_issuer or "?", date=expiry)
    elif current == "failing":
        text = _(STATE_TEXTS["failing"], detail=domain.tls_detail or "?")
    else:
        text = _(STATE_TEXTS[current])
    problem = ""
    if current == "pending" and domain.problem and domain.checked_at is not None:
        checked = format_date(as_utc(domain.checked_at), format="medium", locale=_.language)
        checked += as_utc(domain.checked_at).strftime(" %H:%M UTC")
        kinds = domain.problem[1:].split("]", 1)[0].split(",") if domain.problem.startswith("[") else []
        faults = [_(PROOF_FAULTS[kind], name=shown(domain.name)) for kind in kinds if kind in PROOF_FAULTS]
        problem = _(LAST_CHECK, date=checked, problem="; ".join(faults)) if faults else ""
    return DomainRow(name=domain.name, shown=shown(domain.name), state=current, text=text,
                     primary=instance.primary_domain == domain.name, problem=problem,
                     records=records_to_publish(domain.name, domain.token, instance.server.address))  # fmt: skip


def takes_domains(catalog: Catalog, instance: Instance) -> bool:
    """Whether ``instance`` shows its own domains (and a manager may add one): it runs or is suspended, is to stay,
    and its catalogue entry says how it takes an own domain."""
    service = catalog.services.get(instance.service_id)
    return (instance.state in DOMAIN_STATES and instance.desired_state in ("present", "suspended")
            and service is not None and service.own_domain is not None)  # fmt: skip


def domain_blocks(
    session: Session, catalog: Catalog, association: Association, _: Translator
) -> dict[str, DomainBlock]:
    """The own domains of each of the association's services that take them, by the service's name."""
    blocks = {}
    for instance in list_instances(session, association=association.slug):
        if not takes_domains(catalog, instance):
            continue
        rows = [domain_row(d, instance, _) for d in domains_of(session, instance_id=instance.id)]
        blocks[instance.name] = DomainBlock(
            service=instance.name, collective_address=instance.domain,
            primary=shown(instance.primary_domain) if instance.primary_domain else instance.domain,
            rows=rows, full=len(rows) >= MAX_OWN_DOMAINS_PER_INSTANCE,
        )  # fmt: skip
    return blocks


def claim_refusal(workspace: Workspace, instance: Instance, name: str, error: Exception, _: Translator) -> str:
    """What a manager reads when add_claim refuses ``name`` (normalised already) for ``instance``: the rule it
    broke (DomainRefused.reason), in the manager's language; never another association's name."""
    collective = workspace.config.collective
    shown_name = shown(name)
    if isinstance(error, DomainRefused):
        text = {"collective-domain": COLLECTIVE_DOMAIN, "held-elsewhere": HELD_ELSEWHERE,
                "claimed-for-another": CLAIMED_FOR_ANOTHER, "too-many-here": TOO_MANY_HERE,
                "too-many-pending": TOO_MANY_PENDING}[error.reason]  # fmt: skip
        return _(text, name=shown_name, collective=collective, **error.values)
    if isinstance(error, Conflict):
        return _(NOT_NOW, service=instance.name)
    return _(NOT_RECORDED, collective=collective)


def typed_domain(text: str) -> str | None:
    """The domain a manager typed (as recorded), or None if it is no domain name."""
    try:
        return normalise(text[:300])
    except InvalidInput:
        return None
