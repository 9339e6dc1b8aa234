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
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from orchestrator.actions.common import opened
from orchestrator.backups import compare_with_manifest
from orchestrator.bundles import BundleManifest, VerifiedBundle, read_members, verify_bundle
from orchestrator.catalog import resolve_parameters
from orchestrator.errors import InvalidInput, NotFound, OperationFailed, RucheError
from orchestrator.idranges import RANGE_SIZE
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

UPLOAD_DIR = "/var/tmp/ruche-import-{identifier}"  # what `ruche-backup load IDENTIFIER` reads
SET_ID_BITS = 0o6000


def trusted_keys(values: tuple[str, ...], own: PublicKey | None) -> list[PublicKey]:
    """``--trust`` values (a key's line, or a file holding it), and this collective's own key."""
    keys = [own] if own is not None else []
    for value in values:
        path = Path(value).expanduser()
        text = path.read_text() if not value.startswith("ruche-key:") and path.is_file() else value
        keys.append(PublicKey.from_text(text, source=f"--trust {value}"))
    return keys


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
        if problems:
            raise InvalidInput(f"{path.name} cannot be imported, nothing was changed:\n- " + "\n- ".join(problems),
                               hint="give --as SLUG for a slug taken here, --offer OFFER for another offer")  # fmt: skip
        summary = {"association": slug, "from": manifest.association.slug, "collective": manifest.collective,
                   "key_id": verified.signer.key_id, "sha256": verified.sha256, "offer": plan["offer"],
                   "instances": plan["instances"], "secrets": "carried" if secrets else "left out",
                   "own_domains": {i.name: i.domains for i in manifest.instances if i.domains}, "dry_run": dry_run}  # fmt: skip
        if dry_run:
            return summary
        # a scratch directory beside the workspace's data (a bundle may not fit in /tmp), removed whatever happens
        with tempfile.TemporaryDirectory(prefix=".ruche-import-", dir=workspace.root) as scratch:
            progress(f"{path.name}: unpacking the data (checked again as it is read)")
            staged = _stage(path, verified, Path(scratch))  # refused if the file changed: nothing made yet
            recorded, problems = _plan(workspace, store, manifest, slug, offer, secrets, record=True)
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
                    summary["instances"][instance.name]["result"] = _load(workspace, store, address, instance,
                                                                          staged[instance.name], progress)  # fmt: skip
            except (RucheError, OSError) as error:
                progress(f"{slug}: the import failed, removing what it made")
                left = _undo(workspace, store, slug, made, progress)
                with store.session() as session:
                    record_event(session, kind="association.import-failed", subject=slug, association=None,
                                 detail={"sha256": verified.sha256, "key_id": verified.signer.key_id,
                                         "error": str(error)[:2000], "left": left})  # fmt: skip
                raise OperationFailed(f"importing {path.name} failed: {error}" + (f"; left: {left}" if left else ""),
                                      hint="nothing of the import is kept; fix the cause and import again") from None  # fmt: skip
        with store.session() as session:
            record_event(session, kind="association.imported", subject=slug, association=slug,
                         detail={"sha256": verified.sha256, "key_id": verified.signer.key_id,
                                 "collective": manifest.collective, "from": manifest.association.slug,
                                 "instances": made, "secrets": summary["secrets"]})  # fmt: skip
    return summary


def _own_key(workspace: Workspace) -> PublicKey | None:
    try:
        return public_key(workspace.root)
    except RucheError:
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
    opened_box = json.loads(signing_key(workspace.root, workspace.vault()).open(manifest.secrets.box.model_dump()))
    return opened_box, []


def _plan(workspace, store, manifest: BundleManifest, slug: str, offer: str | None, secrets: dict, *,
          record: bool) -> tuple[dict, list[str]]:  # fmt: skip
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
            carried = {k: v for k, v in (secrets.get(item.name) or {}).items() if not k.startswith("db_")}
            if carried:
                instance = get_instance(session, address)
                instance.secrets = {**instance.secrets, **{k: vault.encrypt(v) for k, v in carried.items()}}
            plan["instances"][item.name] = {"service": item.service, "version": item.version, "size": item.size,
                                            "server": planned["instance"]["server"]}  # fmt: skip
        if problems or not record:
            session.rollback()
    return plan, problems


def _stage(path: Path, verified: VerifiedBundle, scratch: Path) -> dict[str, Path]:
    """Write each instance's files under ``scratch/NAME/`` as `ruche-backup load` reads them, the volumes' archive
    checked member by member (only directories, files and links, inside volumes/, owners inside one ID range, no
    set-id bit); give each instance's directory. Used only once the whole bundle has been read again and matched
    its manifest (read_members raises otherwise)."""
    directories: dict[str, Path] = {}
    for name, content in read_members(path, verified):
        _, instance, member = name.split("/", 2)
        directory = directories.setdefault(instance, scratch / instance)
        directory.mkdir(mode=0o700, exist_ok=True)
        if member == "volumes.tar":
            _checked_volumes(content, directory / member, instance)
        elif member in ("database.sql", "manifest.json"):
            with (directory / member).open("wb") as handle:
                shutil.copyfileobj(content, handle, 1 << 20)
        else:
            raise OperationFailed(
                f"{name}: not a file an instance's data holds (database.sql, manifest.json, volumes.tar)"
            )
    return directories


def _checked_volumes(content, destination: Path, instance: str) -> None:
    with (
        tarfile.open(fileobj=content, mode="r|") as source,
        tarfile.open(destination, "w", format=tarfile.PAX_FORMAT) as checked,
    ):
        for member in source:
            parts = member.name.split("/")
            if parts[0] != "volumes" or ".." in parts or member.name.startswith("/"):
                raise OperationFailed(f"{instance}: volumes.tar names {member.name!r}, outside volumes/")
            if not (member.isdir() or member.isfile() or member.issym()):
                raise OperationFailed(
                    f"{instance}: volumes.tar holds {member.name!r}, neither a file, a directory nor a link"
                )
            if not (0 <= member.uid < RANGE_SIZE and 0 <= member.gid < RANGE_SIZE):
                raise OperationFailed(
                    f"{instance}: {member.name!r} has owner {member.uid}:{member.gid}, outside one ID range"
                )
            member.mode &= ~SET_ID_BITS
            checked.addfile(member, source.extractfile(member) if member.isfile() else None)


def _load(workspace, store, address: str, item, staged: Path, progress) -> dict:
    """Upload the instance's staged files to its server and run `ruche-backup load` there; then compare what it
    restored with the exporter's manifest. Raises OperationFailed when it fails or differs."""
    with store.session() as session:
        instance = get_instance(session, address)
        target, identifier = SshTarget.of(instance.server), instance.identifier
        volatile = tuple(workspace.catalog.get(instance.service_id).backup.volatile_tables)
    from orchestrator.remote import put_file, run_command  # Fabric, loaded when data is uploaded

    upload = UPLOAD_DIR.format(identifier=identifier)
    progress(f"{address}: uploading its data to {target.name}")
    run_command(target, ["rm", "-rf", "--one-file-system", upload])
    run_command(target, ["install", "-d", "-m", "0700", upload])
    for file in sorted(staged.iterdir()):
        put_file(target, str(file), f"{upload}/{file.name}")
    answer = put_back(workspace, store, address, ["load"], "loading the bundle's data", progress, inspect=True,
                      kind="import")  # fmt: skip
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
