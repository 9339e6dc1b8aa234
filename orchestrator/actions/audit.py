"""``ruche audit``: read-only checks that the fleet keeps the rules the collective publishes.

Each finding names its rule, the object, the evidence and how to fix it. The rules read the state,
the inventories on disk, the run artifacts and the audit trail (never changing any of them):

- ``inventory.matches-state``: the inventories on disk are what the state generates (a hand edit is found);
- ``secrets.never-in-clear``: no secret of the workspace appears in clear in the inventories, the run
  artifacts or the audit trail (needs the vault password to know the secrets; said when it is missing);
- ``isolation.nothing-shared``: no two live instances share an ID range, a server port or a domain;
- ``backups.inside-window``: every running instance has a good backup inside its offer's window;
- ``backups.verified``: and a passed `backup verify` younger than [audit] verify_max_age_days;
- ``quota.within-offer``: no association over its offer without a recorded override;
- ``versions.supported``: no instance runs a version its catalogue entry no longer lists or whose
  end of support has passed;
- ``versions.support-ending`` (a warning: it does not fail the audit): an instance's version leaves
  upstream support within SUPPORT_WARNING_DAYS (90) days;
- ``quota.no-offer`` (a warning): an association on no offer, so under no limit at all (registered
  without --offer while ruche.toml set no ``default_offer``);
- ``audit-trail.intact``: the events' hash chain holds.

And, over SSH, read-only, what runs on each server against its inventory (``server.*`` rules, see
orchestrator.operations.server_audit): what was applied and what drifted since, images, unknown
containers and sites, the firewall table, the ID pool. With them, each attached own domain on the network
(``domains.*``, orchestrator.operations.own_domains.audit_findings): ``domains.certificate-valid`` (served,
valid, not expiring within [domains] certificate_warning_days), ``domains.points-here`` (its name still
resolves to its server), ``domains.token-kept`` (its ``_ruche`` TXT token still published).
"""

from __future__ import annotations

import difflib
import os
from collections import defaultdict
from dataclasses import asdict
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.actions.common import opened
from orchestrator.catalog import Catalog, load_catalog, support_status
from orchestrator.errors import RucheError
from orchestrator.findings import Finding
from orchestrator.inventory_history import files_at
from orchestrator.operations.backup_lapses import backup_lapses
from orchestrator.operations.inventories import inventory_files
from orchestrator.operations.own_domains import audit_findings as domain_findings
from orchestrator.operations.server_audit import server_findings
from orchestrator.quotas import excesses, find_offer
from orchestrator.state.event_chain import verify_chain
from orchestrator.state.instances import ACTIVE_STATES, allocation, list_instances
from orchestrator.state.models import Association, Event, Instance
from orchestrator.workspace import Workspace

# secrets shorter than this are not searched for (they would match by chance)
SHORTEST_SECRET = 8


def audit(workspace_path: Path | None, *, servers: bool = True, server: str | None = None) -> dict:
    """Run every rule; give ``{"findings": [...], "warnings": [...], "checked": {...}, "notes": [...], "ok": bool}``.

    Warnings have the findings' shape and announce one (a version near its end of support): they do not
    make ``ok`` false.

    ``servers``: also compare every application server (``server`` only, if given) with its inventory
    over SSH (see orchestrator.operations.server_audit); without, only the state-level rules run.
    """
    with opened(workspace_path) as (workspace, store):
        # own domains on the network first, with no session open (DNS and TLS may wait)
        found_domains = domain_findings(workspace, store, server=server) if servers or server is not None else []
        with store.session() as session:
            return _audit(workspace, session, found_domains, servers=servers, server=server)


def _audit(workspace: Workspace, session: Session, found_domains: list[Finding], *, servers: bool,
           server: str | None) -> dict:  # fmt: skip
    """The rules of `audit` in ``session`` (``found_domains``: the own domains' findings, looked at before)."""
    catalog = load_catalog(workspace.catalog_dir)
    instances = [i for i in list_instances(session) if i.state in ACTIVE_STATES]
    findings: list[Finding] = []
    notes: list[str] = []
    findings += inventories_match_state(workspace, session)
    found, note = secrets_in_clear(workspace, session, instances)
    findings += found
    notes += [note] if note else []
    findings += nothing_shared(instances)
    findings += backups_kept(workspace, session, instances)
    findings += quotas_kept(workspace, session)
    findings += versions_supported(catalog, instances)
    warnings = support_ending(catalog, instances) + offers_given(workspace, session)
    checked = verify_chain(session)
    if checked.problem is not None:
        findings.append(Finding("audit-trail.intact", f"event {checked.first_bad_seq}", checked.problem,
                                "compare the state database with a backup; `ruche events verify --head` with a head "
                                "kept outside ruche tells up to where history holds"))  # fmt: skip
    summary = {"instances": len(instances), "events": checked.length}
    if servers or server is not None:
        found_on_servers, inspected = server_findings(workspace, session, catalog, only=server)
        findings += found_on_servers
        findings += found_domains
        summary["servers"] = inspected
    else:
        notes.append("servers not inspected (--no-servers)")
    return {"ok": not findings, "findings": [asdict(f) for f in findings], "warnings": [asdict(w) for w in warnings],
            "checked": summary, "notes": notes}  # fmt: skip


def inventories_match_state(workspace: Workspace, session: Session) -> list[Finding]:
    environment = workspace.config.environment
    try:
        expected = inventory_files(workspace, session)
    except RucheError as error:
        return [
            Finding(
                "inventory.matches-state",
                f"inventories/{environment}",
                f"the state cannot generate the inventories: {error.message}",
                error.hint or "fix what the error names, then `ruche inventory export`",
            )
        ]
    on_disk = files_at(workspace.inventories_dir, None, environment)
    fix = ("`ruche inventory export` (or the next `ruche apply`) writes it again from the state; make changes "
           "through ruche, not in the files (`git -C inventories diff` shows the edit)")  # fmt: skip
    findings = []
    for path in sorted(expected.keys() | on_disk.keys()):
        shown = f"inventories/{environment}/{path}"
        if path not in on_disk:
            findings.append(Finding("inventory.matches-state", shown, "missing on disk", fix))
        elif path not in expected:
            findings.append(Finding("inventory.matches-state", shown, "a file the state does not generate", fix))
        elif on_disk[path] != expected[path]:
            changed = [line for line in difflib.unified_diff(expected[path].splitlines(), on_disk[path].splitlines(),
                                                              lineterm="", n=0)
                       if line[:1] in "+-" and not line.startswith(("+++", "---"))]  # fmt: skip
            generated = next((line[1:] for line in changed if line.startswith("-")), None)
            edited = next((line[1:] for line in changed if line.startswith("+")), None)
            evidence = (f"{len(changed)} line(s) differ from what the state generates; the state gives "
                        f"{generated[:120]!r} where the file has {edited[:120]!r}" if generated is not None and edited is not None
                        else f"{len(changed)} line(s) differ from what the state generates")  # fmt: skip
            findings.append(Finding("inventory.matches-state", shown, evidence, fix))
    return findings


def secrets_in_clear(
    workspace: Workspace, session: Session, instances: list[Instance]
) -> tuple[list[Finding], str | None]:
    """Look for every secret's clear value in the inventories, the run artifacts and the audit trail."""
    try:
        vault = workspace.vault()
    except RucheError as error:
        return [], f"secrets were not searched for: {error.message}"
    clear: dict[str, str] = {}  # value -> what it is (never printed)
    for instance in instances:
        for name, ciphertext in (instance.secrets or {}).items():
            clear[vault.decrypt(ciphertext)] = f"{instance.address}'s {name}"
    for association in session.scalars(select(Association)):
        if association.backup_password:
            clear[vault.decrypt(association.backup_password)] = f"{association.slug}'s backup repository password"
    if workspace.config.mail is not None and workspace.config.mail.password:
        clear[vault.decrypt(workspace.config.mail.password)] = "the mail relay's password"
    clear = {value: what for value, what in clear.items() if len(value) >= SHORTEST_SECRET}
    findings = []
    fix = ("remove the file or row, then find how it got there: ruche writes secrets only as vault ciphertext, "
           "and rotate the secret (it has been exposed)")  # fmt: skip
    places = [workspace.inventories_dir, workspace.root / "runs"]
    for root in places:
        for directory, _dirs, names in os.walk(root):
            if "/.git" in directory:
                continue
            for name in names:
                path = Path(directory) / name
                try:
                    text = path.read_text(errors="replace")
                except OSError:
                    continue
                for value, what in clear.items():
                    if value in text:
                        findings.append(Finding("secrets.never-in-clear", str(path.relative_to(workspace.root)),
                                                f"{what} appears in clear", fix))  # fmt: skip
    for event in session.scalars(select(Event)):
        text = f"{event.actor} {event.subject} {event.detail}"
        for value, what in clear.items():
            if value in text:
                findings.append(
                    Finding("secrets.never-in-clear", f"event {event.seq}", f"{what} appears in clear", fix)
                )
    return findings, None


def nothing_shared(instances: list[Instance]) -> list[Finding]:
    findings = []
    for label, key in (("ID range slot", lambda i: i.id_slot), ("port", lambda i: (i.server_id, i.http_port)),
                       ("domain", lambda i: i.domain)):  # fmt: skip
        holders: dict = defaultdict(list)
        for instance in instances:
            if key(instance) is not None:
                holders[key(instance)].append(instance.address)
        for value, addresses in holders.items():
            if len(addresses) > 1:
                shown = value[1] if isinstance(value, tuple) else value
                findings.append(
                    Finding(
                        "isolation.nothing-shared",
                        ", ".join(sorted(addresses)),
                        f"they share {label} {shown}",
                        "delete and create one of them again (ruche allocates each once); find who edited the state",
                    )
                )
    return findings


def backups_kept(workspace: Workspace, session: Session, instances: list[Instance]) -> list[Finding]:
    findings = []
    for lapse in backup_lapses(workspace, session, instances):
        if lapse.kind == "backup":
            findings.append(Finding(
                "backups.inside-window", lapse.instance,
                f"no good backup in the last {lapse.limit.total_seconds() / 3600:g} h ({lapse.last_text})",
                f"`ruche backup run {lapse.instance}`; check its server's timer (`ruche backup status`)",
            ))  # fmt: skip
        else:
            findings.append(Finding(
                "backups.verified", lapse.instance,
                f"no passed restore check in the last {lapse.limit.days} days ({lapse.last_text_day})",
                f"`ruche backup verify {lapse.instance}`",
            ))  # fmt: skip
    return findings


def quotas_kept(workspace: Workspace, session: Session) -> list[Finding]:
    findings = []
    for association in session.scalars(select(Association).order_by(Association.slug)):
        offer = find_offer(workspace.config.offers, association.offer)
        over = excesses(offer, allocation(session, association.id), instances=0)
        if not over:
            continue
        recorded = session.scalars(select(Event.id).where(Event.association == association.slug,
                                                          Event.kind.in_(("quota.override", "offer.set")))).first()  # fmt: skip
        if recorded is None:
            findings.append(
                Finding(
                    "quota.within-offer",
                    association.slug,
                    "; ".join(e.describe() for e in over) + "; no override recorded",
                    f"move it to a larger offer (`ruche association set-offer {association.slug} OFFER`), "
                    "or delete instances; an exception is recorded with --over-quota",
                )
            )
    return findings


def offers_given(workspace: Workspace, session: Session) -> list[Finding]:
    """Associations on no offer (warnings): no quota holds them, whatever their instances take."""
    config = workspace.config
    before = "" if config.offers else "define an offer under [offers] in ruche.toml, then "
    after = "" if config.default_offer else "; set default_offer in ruche.toml to give new associations one"
    query = select(Association.slug).where(Association.offer.is_(None)).order_by(Association.slug)
    return [
        Finding(
            "quota.no-offer",
            slug,
            "on no offer: no limit on its instances, memory or disk",
            f"{before}`ruche association set-offer {slug} {config.default_offer or 'OFFER'}`{after}",
        )
        for slug in session.scalars(query)
    ]


def versions_supported(catalog: Catalog, instances: list[Instance], today: date | None = None) -> list[Finding]:
    findings = []
    today = today or date.today()
    for instance in instances:
        service = catalog.services.get(instance.service_id)
        if service is None:
            findings.append(
                Finding(
                    "versions.supported",
                    instance.address,
                    f"service {instance.service_id!r} is gone from the catalogue",
                    "bring its entry back or move the association to another service",
                )
            )
            continue
        release = next((v for v in service.versions if v.version == instance.service_version), None)
        if release is None:
            findings.append(
                Finding(
                    "versions.supported",
                    instance.address,
                    f"{instance.service_id} {instance.service_version} is not a version the catalogue lists "
                    f"({', '.join(v.version for v in service.versions)})",
                    f"`ruche instance upgrade {instance.address}`",
                )
            )
        elif (support_status(release, today) or ("",))[0] == "ended":
            findings.append(
                Finding(
                    "versions.supported",
                    instance.address,
                    f"{instance.service_id} {instance.service_version}: upstream support ended on "
                    f"{release.end_of_support}",
                    f"`ruche instance upgrade {instance.address}`",
                )
            )
    return findings


def support_ending(catalog: Catalog, instances: list[Instance], today: date | None = None) -> list[Finding]:
    """Instances whose version leaves upstream support within SUPPORT_WARNING_DAYS days (not yet past it)."""
    today = today or date.today()
    warnings = []
    for instance in instances:
        service = catalog.services.get(instance.service_id)
        release = (
            next((v for v in service.versions if v.version == instance.service_version), None) if service else None
        )
        status = support_status(release, today) if release is not None else None
        if status is not None and status[0] == "ending":
            warnings.append(Finding("versions.support-ending", instance.address,
                                    f"{instance.service_id} {instance.service_version}: upstream support ends on "
                                    f"{release.end_of_support} (in {status[1]} days)",
                                    f"`ruche instance upgrade {instance.address}` (the catalogue's newest: "
                                    f"{service.versions[-1].version}; `ruche plan` shows the path)"))  # fmt: skip
    return warnings


def render_findings(result: dict, *, format: str) -> str:
    """The audit as a page readable without ruche: Markdown, or one static HTML page."""
    from html import escape

    rows = result["findings"]
    if format == "md":
        lines = ["# ruche audit", "", f"{len(rows)} finding(s); checked: "
                 + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in result["checked"].items()), ""]  # fmt: skip
        lines += [f"- **{f['rule']}** `{f['object']}`: {f['evidence']}. Fix: {f['fix']}" for f in rows]
        lines += [f"- warning **{w['rule']}** `{w['object']}`: {w['evidence']}. Fix: {w['fix']}"
                  for w in result.get("warnings", [])]  # fmt: skip
        lines += [f"- note: {n}" for n in result["notes"]]
        return "\n".join(lines) + "\n"
    items = "".join(f"<tr><td>{escape(f['rule'])}</td><td>{escape(f['object'])}</td><td>{escape(f['evidence'])}</td>"
                    f"<td>{escape(f['fix'])}</td></tr>" for f in rows)  # fmt: skip
    items += "".join(f"<tr><td>warning: {escape(w['rule'])}</td><td>{escape(w['object'])}</td><td>{escape(w['evidence'])}"
                     f"</td><td>{escape(w['fix'])}</td></tr>" for w in result.get("warnings", []))  # fmt: skip
    notes = "".join(f"<li>{escape(n)}</li>" for n in result["notes"])
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ruche audit</title></head><body><main>'
        f"<h1>ruche audit</h1><p>{len(rows)} finding(s)</p><table><thead><tr><th>Rule</th><th>Object</th>"
        f"<th>Evidence</th><th>Fix</th></tr></thead><tbody>{items}</tbody></table><ul>{notes}</ul></main></body></html>\n"
    )
