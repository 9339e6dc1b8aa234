"""Associations' own domains, as pure rules: a name normalised, whether an association may claim it, what it
publishes to prove it holds it (``_ruche.NAME`` TXT and a record pointing at the instance's server), and how a
domain's state reads.

A name is claimed for one instance (`ruche domain add`), then proven (`ruche domain verify`,
operations/domain_checks.py) and only then attached: served by the instance's Caddy with a certificate from
ruche.toml's [domains] ACME directory. No association may claim a name that another association holds (attached),
nor a name above or below one it holds, nor a name under the collective's own base domain.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import idna

from orchestrator.errors import DomainRefused, InvalidInput
from orchestrator.resolver import zone_line

TXT_LABEL = "_ruche"
TOKEN_PREFIX = "ruche-domain-verification="
CHALLENGE_PATH = "/.well-known/ruche-domain/"
MAX_OWN_DOMAINS_PER_INSTANCE = 5
MAX_PENDING_PER_ASSOCIATION = 10
MAX_NAME = 253 - len(TXT_LABEL) - 1  # _ruche.NAME must still be a name DNS can carry
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HINT = "give a domain name such as wiki.amap-du-coin.org (letters, digits, hyphens; accents are fine)"


def normalise(text: str) -> str:
    """Give ``text`` as the name ruche records: IDNA A-labels (UTS 46), lower case, no trailing dot.

    Raises InvalidInput saying what is wrong (not a host name, an IP address, a single label, a wildcard...)."""
    raw = text.strip()
    shown = raw[:80]
    if raw.endswith("."):
        raw = raw[:-1]
    if not raw or len(raw) > MAX_NAME:
        raise InvalidInput(f"domain {shown!r}: empty or longer than {MAX_NAME} characters", hint=_HINT)
    if raw.startswith("*") or "*" in raw:
        raise InvalidInput(f"domain {shown!r}: wildcards cannot be claimed, only one name at a time", hint=_HINT)
    try:
        ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        pass
    else:
        raise InvalidInput(f"domain {shown!r} is an IP address, not a domain name", hint=_HINT)
    try:
        name = idna.encode(raw, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise InvalidInput(f"domain {shown!r} is not a valid name: {error}", hint=_HINT) from None
    labels = name.split(".")
    if len(labels) < 2:
        raise InvalidInput(f"domain {shown!r}: a name with at least two labels is needed", hint=_HINT)
    bad = [label for label in labels if not _LABEL.match(label)]
    if bad or len(name) > MAX_NAME:
        raise InvalidInput(f"domain {shown!r}: label {bad[0] if bad else name!r} is not allowed", hint=_HINT)
    if labels[-1].isdigit():
        raise InvalidInput(f"domain {shown!r}: its last label cannot be a number", hint=_HINT)
    return name


def shown(name: str) -> str:
    """Give ``name`` as people read it (U-labels: ``amap-du-côté.org``), or as it is if it cannot be decoded."""
    try:
        return idna.decode(name)
    except (idna.IDNAError, UnicodeError):
        return name


def related(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are the same name or one is under the other."""
    return a == b or a.endswith("." + b) or b.endswith("." + a)


@dataclass(frozen=True)
class Claim:
    """A name already recorded: by which association (slug), for which instance (address), and its status."""

    name: str
    association: str
    instance: str
    status: str


def check_claim(name: str, association: str, instance: str, base_domain: str, claims: list[Claim]) -> Claim | None:
    """Check that ``association`` may claim ``name`` for ``instance`` given every recorded claim related to it.

    Gives the association's own claim of that name for that instance when there is one (adding it again is
    asking for its instructions again), else None. Raises Conflict for a name under the collective's domain,
    held (attached) by another association or above/below one it holds, or claimed for another instance."""
    if related(name, base_domain):
        raise DomainRefused(
            f"{name} is the collective's own domain {base_domain}, or above or under it: instances already answer "
            "under it, and it is not an association's to claim",
            hint="claim a domain the association holds itself, e.g. wiki.amap-du-coin.org",
            reason="collective-domain",
        )
    for claim in claims:
        if claim.association != association and claim.status == "attached" and related(name, claim.name):
            raise DomainRefused(
                f"{name} is held by another association of this collective"
                + ("" if claim.name == name else f" ({claim.name} and {name} are one inside the other)"),
                hint="a domain can only serve the association that proved it holds it; ask the collective's "
                "admins if this is your domain",
                reason="held-elsewhere",
            )
    for claim in claims:
        if claim.association == association and claim.name == name:
            if claim.instance == instance:
                return claim
            raise DomainRefused(
                f"{name} is already claimed for {claim.instance}",
                hint=f"remove it there first: ruche domain remove {claim.instance} {name}",
                reason="claimed-for-another",
                service=claim.instance.split("/", 1)[-1],
            )
    return None


def new_token(association: str) -> str:
    """A fresh value for ``_ruche.NAME``'s TXT record (not a secret: it is published), which says whose claim it
    proves: whoever is asked to publish it reads which association it is for."""
    return f"{TOKEN_PREFIX}{association}.{secrets.token_urlsafe(24)}"


def txt_name(name: str) -> str:
    return f"{TXT_LABEL}.{name}"


def records_to_publish(name: str, token: str, server_address: str) -> list[dict[str, str]]:
    """The DNS records an association publishes for ``name``: its proof, and the name pointing at the server."""
    pointer = zone_line(name, server_address)
    _owner, _ttl, _class, kind, value = pointer.split(" ", 4)
    return [
        {"name": txt_name(name), "type": "TXT", "value": token, "line": f'{txt_name(name)}. 3600 IN TXT "{token}"'},
        {"name": name, "type": kind, "value": value, "line": pointer},
    ]


def state(status: str, tls_status: str) -> str:
    """A domain's state as admins and members read it: pending (not proven), verified (attached, not yet seen
    served), serving (its certificate seen valid), failing (served badly or not at all)."""
    if status != "attached":
        return "pending"
    return {"ok": "serving", "failing": "failing"}.get(tls_status, "verified")


def expiring(not_after: datetime | None, now: datetime, days: int) -> bool:
    """Whether a certificate valid until ``not_after`` expires within ``days`` of ``now``."""
    return not_after is not None and not_after - now < timedelta(days=days)
