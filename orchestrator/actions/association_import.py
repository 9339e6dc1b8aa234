"""``ruche association import FILE``: take in an association another collective exported (`ruche association
export`): its bundle checked whole first, then the association registered, its instances placed, deployed and
filled with the bundle's data, each checked healthy and compared with what the sender exported.

Checked before anything is made, and refused in one message naming every problem: the signature (by a key given
with ``--trust``, or this collective's own), every member's checksum, that each service is in this catalogue at the
bundle's version, that the slug is free, that the offer exists and holds the instances, that the servers have room,
that no own domain is held here, and that the secrets, if any, were sealed for this collective's key. A failure
after that removes what the import made (its instances purged, the association removed), and is recorded.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from orchestrator.actions.common import opened, read_public_key
from orchestrator.backups import compare_with_manifest
from orchestrator.bundles import BundleManifest, verify_bundle
from orchestrator.catalog import resolve_parameters
from orchestrator.errors import InvalidInput, MissingPrerequisite, NotFound, OperationFailed, RucheError
from orchestrator.operations.bundle_staging import stage_bundle
from orchestrator.operations.converge import converge
from orchestrator.operations.instances import plan_instance
from orchestrator.operations.lifecycle import change_instance
from orchestrator.operations.restores import put_back
from orchestrator.remote import SshTarget
from orchestrator.signing import PublicKey, public_key, signing_key
from orchestrator.state.associations import (
    add_association,
    delete_association,
    get_association,
    validate_association_spec,
)
from orchestrator.state.events import record_event
from orchestrator.state.instances import get_instance
from orchestrator.state.models import Domain
from orchestrator.workspace import Workspace

UPLOAD_PARENT = "/var/lib/ruche/import"  # root's alone: no local user of the server can plant a link in it
UPLOAD_DIR = UPLOAD_PARENT + "/{identifier}"  # what `ruche-backup load IDENTIFIER` reads
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def trusted_keys(values: tuple[str, ...], own: PublicKey | None) -> list[PublicKey]:
    """``--trust`` values (a key's line, or a file holding it), and this collective's own key."""
    return ([own] if own is not None else []) + [read_public_key(value, "--trust") for value in values]


def import_bundle(workspace_path: Path | None, path: Path, *, as_slug: str | None = None, offer: str | None = None,
                  trust: tuple[str, ...] = (), dry_run: bool = False,
                  progress: Callable[[str], None] = lambda _m: None) -> dict:  # fmt: skip
    """Import the bundle at ``path``; give what was made (or, ``dry_run``, what would be).

    Raises NotFound (no such file), InvalidInput (a bundle refused: each problem on a line; state unchanged),
    OperationFailed (a step after the checks failed: what the import made is removed first)."""
    path = path.expanduser()
    if not path.is_file():
        raise NotFound(f"{path}: no such bundle")
    with opened(workspace_path) as (workspace, store):
        own = _own_key(workspace)
        progress(f"{path.name}: checking the signature and every member's checksum")
        verified = verify_bundle(path, trusted_keys(trust, own))
        manifest = verified.manifest
        slug = as_slug or manifest.association.slug
        secrets, problems = _secrets(workspace, manifest, own)
        plan, planning_problems = _plan(workspace, store, manifest, slug, offer, secrets, record=False)
        problems += planning_problems
        # a scratch directory beside the workspace's data (a bundle may not fit in /tmp), removed whatever happens
        with tempfile.TemporaryDirectory(prefix=".ruche-import-", dir=workspace.root) as scratch:
            progress(f"{path.name}: unpacking and checking the data (each member checked again as it is read)")
            staged, staging_problems = stage_bundle(path, verified, Path(scratch), _volumes_of(workspace, manifest))
            problems += staging_problems
            if problems:
                raise InvalidInput(f"{path.name} cannot be imported, nothing was changed:\n- " + "\n- ".join(problems),
                                   hint="give --as SLUG for a slug taken here, --offer OFFER for another offer")  # fmt: skip
            summary = {"association": slug, "from": manifest.association.slug, "collective": manifest.collective,
                       "key_id": verified.signer.key_id, "sha256": verified.sha256, "offer": plan["offer"],
                       "instances": plan["instances"], "secrets": "carried" if secrets else "left out",
                       "own_domains": {i.name: i.domains for i in manifest.instances if i.domains},
                       "dry_run": dry_run}  # fmt: skip
            if dry_run:
                return summary
            recorded, problems = _plan(workspace, store, manifest, slug, offer, secrets, record=True,
                                       sha256=verified.sha256)  # fmt: skip
            if problems:  # changed since the check (another admin at work): nothing was recorded
                raise InvalidInput(f"{path.name} cannot be imported, nothing was changed:\n- " + "\n- ".join(problems))
            summary["instances"] = recorded["instances"]
            made = [f"{slug}/{i.name}" for i in manifest.instances]
            try:
                for instance in manifest.instances:
                    address = f"{slug}/{instance.name}"
                    progress(f"{address}: deploying {instance.service} {instance.version}")
                    run = converge(workspace, store, instance=address, progress=progress, check_health=False,
                                   restoring=True)  # fmt: skip
                    if not run["succeeded"]:
                        raise OperationFailed(f"{address}: its deployment failed (run {run['run_id']})")
                    summary["instances"][instance.name]["result"] = _load(workspace, store, address,
                                                                          staged[instance.name], progress)  # fmt: skip
            except BaseException as error:  # an interruption too: what the import made is never left half done
                progress(f"{slug}: the import failed, removing what it made")
                left = _undo(workspace, store, slug, made, progress)
                with store.session() as session:
                    record_event(session, kind="association.import-failed", subject=slug, association=None,
                                 detail={"sha256": verified.sha256, "key_id": verified.signer.key_id,
                                         "error": str(error)[:2000] or type(error).__name__, "left": left})  # fmt: skip
                if not isinstance(error, RucheError | OSError):
                    raise
                raise OperationFailed(f"importing {path.name} failed: {error}" + (f"; left: {left}" if left else ""),
                                      hint="nothing of the import is kept; fix the cause and import again") from None  # fmt: skip
        with store.session() as session:
            record_event(session, kind="association.imported", subject=slug, association=slug,
                         detail={"sha256": verified.sha256, "key_id": verified.signer.key_id,
                                 "collective": manifest.collective, "from": manifest.association.slug,
                                 "instances": made, "secrets": summary["secrets"]})  # fmt: skip
    return summary


def _volumes_of(workspace: Workspace, manifest: BundleManifest) -> dict[str, set[str]]:
    found = {}
    for item in manifest.instances:
        if item.service in workspace.catalog.services:
            found[item.name] = {volume.name for volume in workspace.catalog.get(item.service).volumes}
    return found


def _own_key(workspace: Workspace) -> PublicKey | None:
    try:
        return public_key(workspace.root)
    except MissingPrerequisite:  # no key yet; a damaged one is said as such
        return None


def _secrets(workspace: Workspace, manifest: BundleManifest, own: PublicKey | None) -> tuple[dict, list[str]]:
    """The application secrets the bundle carries, opened ({} when it carries none), and what stops them."""
    if manifest.secrets is None:
        return {}, []
    sealed_for = manifest.secrets.sealed_for
    if own is None or sealed_for != own.key_id:
        mine = own.key_id if own else "none (`ruche key create`)"
        return {}, [f"its secrets are sealed for key {sealed_for}, and this collective's key is {mine}: ask the "
                    "sender to export again with --to and the line `ruche key show` prints here"]  # fmt: skip
    try:
        opened_box = json.loads(signing_key(workspace.root, workspace.vault()).open(manifest.secrets.box.model_dump()))
    except (ValueError, RecursionError):
        return {}, ["its sealed secrets are not JSON"]
    carried, problems = {}, []
    services = {i.name: i.service for i in manifest.instances}
    for name, values in opened_box.items() if isinstance(opened_box, dict) else [(None, None)]:
        if name not in services or not isinstance(values, dict):
            problems.append(f"its sealed secrets name {name!r}, not one of its instances with secrets by name")
            continue
        known = (
            set(workspace.catalog.get(services[name]).secrets)
            if services[name] in workspace.catalog.services
            else set()
        )
        for secret, value in values.items():
            if secret not in known or secret.startswith("db_"):
                continue  # a secret this catalogue's entry does not have, or the database's: the receiver's own
            if not isinstance(value, str) or CONTROL.search(value):
                problems.append(f"{name}: its secret {secret} is not text of printable characters")
            else:
                carried.setdefault(name, {})[secret] = value
    return carried, problems


def _plan(workspace, store, manifest: BundleManifest, slug: str, offer: str | None, secrets: dict, *,
          record: bool, sha256: str | None = None) -> tuple[dict, list[str]]:  # fmt: skip
    """Register the association and plan every instance in one session: committed with ``record``, else rolled
    back and only the problems given (each instance tried, so that every problem is named at once)."""
    problems: list[str] = []
    catalog = workspace.catalog
    chosen_offer = offer or (manifest.association.offer if manifest.association.offer in workspace.config.offers
                             else workspace.config.default_offer)  # fmt: skip
    plan = {"offer": chosen_offer, "instances": {}}
    with store.session() as session:
        try:
            association = add_association(session, validate_association_spec(
                slug=slug, name=manifest.association.name, email=manifest.association.email, offer=chosen_offer))  # fmt: skip
        except RucheError as error:
            problems.append(f"association {slug}: {error}" + (" (give --as ANOTHER)" if "exists" in str(error) else ""))
            association = None
        if chosen_offer is not None and chosen_offer not in workspace.config.offers:
            problems.append(
                f"offer {chosen_offer!r} is not one of this collective's ({', '.join(workspace.config.offers)})"
            )
        vault = workspace.vault()
        for item in manifest.instances:
            address = f"{slug}/{item.name}"
            for domain in item.domains:
                holder = session.scalars(select(Domain).where(Domain.name == domain)).first()
                if holder is not None:
                    problems.append(f"{address}: its domain {domain} is held here by {holder.instance.address}")
            try:
                definition = catalog.get(item.service)
            except NotFound:
                problems.append(f"{address}: this catalogue has no service {item.service!r}")
                continue
            if item.database != (None if definition.database == "none" else definition.database):
                problems.append(f"{address}: its data is a {item.database or 'no'} database, this catalogue's "
                                f"{item.service} uses {definition.database}")  # fmt: skip
                continue
            versions = [v.version for v in definition.versions]
            if item.version not in versions:
                problems.append(f"{address}: {item.service} {item.version} is not a version this catalogue runs "
                                f"({', '.join(versions)}); an older one needs the sender to upgrade it first")  # fmt: skip
                continue
            if association is None:
                continue
            try:
                values = resolve_parameters(definition, dict(item.parameters))
                planned = plan_instance(workspace, session, definition, association=slug, name=item.name,
                                        size=item.size, values=values, version=item.version)  # fmt: skip
                session.flush()
            except RucheError as error:
                problems.append(f"{address}: {error}")
                continue
            carried = secrets.get(item.name) or {}
            if carried:
                instance = get_instance(session, address)
                instance.secrets = {**instance.secrets, **{k: vault.encrypt(v) for k, v in carried.items()}}
            plan["instances"][item.name] = {"service": item.service, "version": item.version, "size": item.size,
                                            "server": planned["instance"]["server"]}  # fmt: skip
        if problems or not record:
            session.rollback()
        else:  # in the same transaction: an import killed half-way is found in the trail
            record_event(session, kind="association.import-started", subject=slug, association=slug,
                         detail={"sha256": sha256, "instances": sorted(plan["instances"])})  # fmt: skip
    return plan, problems


def _load(workspace, store, address: str, staged: Path, progress) -> dict:
    """Upload the instance's staged files to its server and run `ruche-backup load` there; then compare what it
    restored with the exporter's manifest. Raises OperationFailed when it fails or differs."""
    with store.session() as session:
        instance = get_instance(session, address)
        target, identifier = SshTarget.of(instance.server), instance.identifier
        volatile = tuple(workspace.catalog.get(instance.service_id).backup.volatile_tables)
    from orchestrator.remote import put_file, run_command  # Fabric, loaded when data is uploaded

    upload = UPLOAD_DIR.format(identifier=identifier)
    progress(f"{address}: uploading its data to {target.name}")
    try:
        run_command(target, ["rm", "-rf", "--one-file-system", upload])
        run_command(target, ["install", "-d", "-m", "0700", UPLOAD_PARENT, upload])
        for file in sorted(staged.iterdir()):
            put_file(target, str(file), f"{upload}/{file.name}")
        answer = put_back(workspace, store, address, ["load"], "loading the bundle's data", progress, inspect=True,
                          kind="import")  # fmt: skip
    finally:  # `load` removes it once read; never leave the association's data there after a failure
        run_command(target, ["rm", "-rf", "--one-file-system", upload])
    if answer.get("status") != "success":
        raise OperationFailed(f"{address}: {answer.get('error')}")
    sent = json.loads((staged / "manifest.json").read_text())
    differences = compare_with_manifest(sent, answer.get("inspected") or {}, volatile)
    if differences:
        raise OperationFailed(
            f"{address}: what was loaded differs from what was exported: " + "; ".join(differences[:10])
        )
    return {"health": answer.get("health"), "owners_moved": answer.get("owners_moved"),
            "tables": len(((sent.get("database") or {}).get("tables")) or {}),
            "files": sum(len(files) for files in (sent.get("volumes") or {}).values())}  # fmt: skip


def _undo(workspace, store, slug: str, addresses: list[str], progress) -> list[str]:
    """Purge the instances the import made and remove the association; give what could not be removed."""
    left = []
    for address in addresses:
        try:
            change_instance(workspace, store, address, "purge", final_backup=False, progress=progress)
        except NotFound:
            continue
        except RucheError as error:
            left.append(f"{address} ({error})")
    if left:
        return left
    with store.session() as session:
        delete_association(session, get_association(session, slug))
    return []
