"""``ruche backup control-plane`` and ``ruche backup restore-control-plane``: what the control machine alone holds,
kept in a restic repository, and put back on a new control machine.

Losing the control machine loses every backup's key: the state (associations, instances and their vaulted
secrets, each association's backup repository password), ruche.toml, the inventories' history, the servers'
host keys and the SSH keys ruche connects with. A snapshot (made here, with the control machine's restic) holds:

- ``ruche-control-plane/`` (made for the snapshot): ``manifest.json`` (what the snapshot holds and where each
  thing was), ``state.json`` (a portable dump of the state, orchestrator.state.dump: it loads into SQLite or
  PostgreSQL alike), ``ruche.toml``, ``keys/`` (the private keys the server rows name, with their paths in the
  manifest) and ``known_hosts/`` (the known_hosts files rows name outside the workspace's own);
- the workspace's ``inventories/`` (with its ``.git``), ``known_hosts/``, ``signing/`` (the bundles' signing key,
  its private part vault-encrypted) and its own catalogue, if any, where they are.

Never the vault password, nor ``lab/``, ``runs/``, ``checks/`` or ``cache/``. The repository's password is
derived from the vault password (HMAC-SHA256 under a fixed label), so the vault password kept off the machine and
the repository are all a restore needs; it reaches restic only through the child's environment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from orchestrator import __version__
from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.config import CONFIG_FILE_NAME, parse_config
from orchestrator.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    MissingPrerequisite,
    NotFound,
    OperationFailed,
    RucheError,
)
from orchestrator.secrets import PASSWORD_ENV, PASSWORD_FILE_ENV, Vault, find_vault_password
from orchestrator.signing import SIGNING_DIR
from orchestrator.state.models import utc_now

TAG = "ruche-control-plane"
STAGE = "ruche-control-plane"  # the directory made for the snapshot, and its name in it
MANIFEST_FORMAT = "ruche-control-plane"
MANIFEST_VERSION = 1
PASSWORD_LABEL = b"ruche control-plane backup repository, v1"
RESTIC_TIMEOUT = 6 * 3600
# restic settings of the admin's shell that would name another repository or password than ruche's
RESTIC_OVERRIDES = ("RESTIC_REPOSITORY", "RESTIC_REPOSITORY_FILE", "RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE",
                    "RESTIC_PASSWORD_COMMAND", PASSWORD_ENV, PASSWORD_FILE_ENV)  # fmt: skip
# secrets opened with the vault password before a restore says it is done, per kind (one is proof enough that
# it is the password they were made with: each has its own salt; a few of each kind catch a mixed workspace)
SECRETS_CHECKED_PER_KIND = 5


def repository_password(vault_password: bytes) -> str:
    """The control-plane repository's password: HMAC-SHA256 of the vault password under a fixed label, in hex.
    Whoever holds the vault password opens the repository; the repository's password alone opens no secret."""
    return hmac.new(vault_password, PASSWORD_LABEL, hashlib.sha256).hexdigest()


def repository_location(value: str) -> str:
    """``value`` as restic is given it: a local path made absolute, any other backend as it is."""
    if re.match(r"^(local|sftp|rest|s3|b2|azure|gs|swift|rclone):", value):
        return value
    return str(Path(value).expanduser().absolute())


def shown_repository(location: str) -> str:
    """``location`` as ruche shows and records it: a password in a URL (rest:https://USER:PASSWORD@HOST/) hidden."""
    return re.sub(r"(://[^/:@]+):[^/@]+@", r"\1:***@", location)


class Restic:
    """The restic command on one repository, its password in the child's environment only."""

    def __init__(self, location: str, password: str) -> None:
        self._location = location
        self.repository = shown_repository(location)  # what messages name
        self._password = password

    def _environment(self) -> dict[str, str]:
        environment = {name: value for name, value in os.environ.items() if name not in RESTIC_OVERRIDES}
        environment["RESTIC_PASSWORD"] = self._password
        return environment

    def run(self, *arguments: str) -> subprocess.CompletedProcess:
        command = ["restic", "--repo", self._location, "--no-cache", *arguments]
        try:
            return subprocess.run(command, env=self._environment(), capture_output=True, text=True,
                                  timeout=RESTIC_TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip
        except FileNotFoundError:
            raise MissingPrerequisite(
                "restic is not installed on this machine", hint="apt-get install restic (scripts/install does)"
            ) from None

    def _failed(self, what: str, done: subprocess.CompletedProcess) -> RucheError:
        message = done.stderr.strip() or done.stdout.strip()
        if done.returncode == 12 or "wrong password" in message:
            return ConfigError(
                f"the repository {self.repository} does not open with the password derived from this vault password",
                hint="it was made with another vault password (another workspace's?): give the vault password of "
                f"the workspace that made it (${PASSWORD_ENV} or ${PASSWORD_FILE_ENV})",
            )
        return OperationFailed(f"restic {what} on {self.repository} failed: {message[-800:]}")

    def exists(self) -> bool:
        """Whether the repository exists (and opens with the password: else ConfigError)."""
        done = self.run("cat", "config")
        if done.returncode == 0:
            return True
        if done.returncode == 10 or "Is there a repository at the following location?" in done.stderr:
            return False  # restic >= 0.17 exits 10; older ones say so
        raise self._failed("cat config", done)

    def init(self) -> None:
        done = self.run("init")
        if done.returncode != 0:
            raise self._failed("init", done)

    def backup(self, paths: list[Path], *, excludes: list[str], tags: list[str]) -> dict:
        arguments = ["backup", "--json", *[f"--tag={tag}" for tag in tags], *[f"--exclude={e}" for e in excludes]]
        done = self.run(*arguments, "--", *map(str, paths))
        if done.returncode != 0:
            raise self._failed("backup", done)
        for line in reversed(done.stdout.splitlines()):
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(message, dict) and message.get("message_type") == "summary":
                return message
        raise OperationFailed(f"restic backup on {self.repository} gave no summary: {done.stdout[-500:]}")

    def snapshots(self) -> list[dict]:
        done = self.run("snapshots", "--json", f"--tag={TAG}")
        if done.returncode != 0:
            if "Is there a repository at the following location?" in done.stderr or done.returncode == 10:
                raise NotFound(f"no restic repository at {self.repository}",
                               hint="give the repository `ruche backup control-plane` wrote to (--from)")  # fmt: skip
            raise self._failed("snapshots", done)
        return sorted(json.loads(done.stdout or "[]") or [], key=lambda s: s["time"])

    def restore(self, snapshot_id: str, target: Path) -> None:
        done = self.run("restore", snapshot_id, "--target", str(target))
        if done.returncode != 0:
            raise self._failed("restore", done)


# --- the backup ------------------------------------------------------------------------------------------------


def configured_repository(workspace) -> str | None:
    """``[backup] control_plane_repository``: ruche.toml's, also while the lab's settings replace [backup] (the
    lab's backup target is the servers'; this one is the control machine's)."""
    return workspace.config.backup.control_plane_repository or workspace.file_config.backup.control_plane_repository


def backup_control_plane(
    workspace_path: Path | None, *, to: str | None = None, progress: Progress = no_progress
) -> dict:
    """Make a snapshot of the control plane in ``to`` (else ``[backup] control_plane_repository``), creating the
    repository when it does not exist; record a ``control-plane.backup`` event; give what the snapshot holds.

    Raises InvalidInput when no repository is given, MissingPrerequisite without restic or the vault password,
    ConfigError when the repository was made with another vault password, OperationFailed when restic fails."""
    from orchestrator.runner import inventory_lock
    from orchestrator.state.dump import dump_lines, dump_state, row_counts
    from orchestrator.state.events import record_event

    with opened(workspace_path) as (workspace, store):
        chosen = to or configured_repository(workspace)
        if not chosen:
            raise InvalidInput(
                "no repository to back the control plane up to",
                hint="give --to REPOSITORY (a path, sftp:USER@HOST:/PATH, s3:...) or set [backup] "
                "control_plane_repository in ruche.toml; keep it off this machine",
            )
        source = workspace.vault_password()
        restic = Restic(repository_location(chosen), repository_password(source.password))
        repository = restic.repository
        root = workspace.root
        with tempfile.TemporaryDirectory(prefix="ruche-control-plane-") as temporary:
            stage = Path(temporary) / STAGE
            stage.mkdir(mode=0o700)
            progress("dumping the state")
            dump = dump_state(store.engine)
            with open(stage / "state.json", "w", encoding="utf-8") as handle:
                handle.writelines(dump_lines(dump))
            shutil.copy2(workspace.config_path, stage / CONFIG_FILE_NAME)
            keys, known_hosts_files, missing = _gather_server_files(root, dump, stage, never=source.file)
            parts = {
                "inventories": workspace.inventories_dir,
                "known_hosts": workspace.known_hosts_dir,
                "signing": root / SIGNING_DIR,
            }  # the bundles' signing key, its private part vault-encrypted
            if workspace.config.catalog_dir is not None:
                parts["catalog"] = workspace.catalog_dir
            parts = {name: path for name, path in parts.items() if path.is_dir()}
            manifest = {
                "format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, "made_at": utc_now().isoformat(),
                "ruche_version": __version__, "workspace": str(root), "environment": workspace.config.environment,
                "catalog_dir": workspace.config.catalog_dir, "paths": {name: str(path) for name, path in parts.items()},
                "state": {"file": "state.json", "revision": dump["revision"], "dialect": dump["dialect"],
                          "rows": row_counts(dump)},
                "keys": keys, "known_hosts_files": known_hosts_files, "missing": missing,
            }  # fmt: skip
            (stage / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            progress(f"opening {repository}")
            created = False
            if not restic.exists():
                progress(f"creating the restic repository {repository}")
                restic.init()
                created = True
            progress("writing the snapshot")
            # the inventories' locks and the directories an export swaps in (.ENV.*), not the history (.git*)
            excludes = [str(workspace.inventories_dir / ".[^g]*")]
            environment_dir = workspace.inventories_dir / workspace.config.environment
            with inventory_lock(environment_dir, shared=True):  # no export swaps the inventory meanwhile
                summary = restic.backup([stage, *parts.values()], excludes=excludes, tags=[TAG])
        holds = {
            "state_rows": manifest["state"]["rows"],
            "inventory_files": _count_files(workspace.inventories_dir),
            "inventory_commits": _commits(workspace.inventories_dir),
            "known_hosts_files": _count_files(workspace.known_hosts_dir) + len(known_hosts_files),
            "ssh_keys": len(keys),
            "catalog_files": _count_files(parts["catalog"]) if "catalog" in parts else None,
        }
        result = {
            "repository": repository, "repository_created": created, "snapshot_id": summary.get("snapshot_id"),
            "bytes": summary.get("total_bytes_processed"), "data_added_bytes": summary.get("data_added"),
            "files": summary.get("total_files_processed"), "revision": dump["revision"], "holds": holds,
            "missing": missing,
        }  # fmt: skip
        with store.session() as session:
            record_event(session, kind="control-plane.backup", subject="control-plane",
                         detail={k: result[k] for k in ("repository", "snapshot_id", "bytes", "revision", "missing")}
                         | {"rows": holds["state_rows"], "ssh_keys": len(keys)})  # fmt: skip
        return result


def _gather_server_files(
    root: Path, dump: dict, stage: Path, *, never: Path | None
) -> tuple[list[dict], list[dict], list[dict]]:
    """Copy into ``stage`` the private keys the server rows name, and the known_hosts files they name outside the
    workspace's known_hosts/ (backed up whole); give their entries for the manifest, and what could not be read.
    ``never``: the vault password's file, never copied whatever a row names."""
    table = dump["tables"]["servers"]
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]
    own_known_hosts = root / "known_hosts"
    keys: dict[str, dict] = {}
    known_hosts: dict[str, dict] = {}
    missing: list[dict] = []
    for row in rows:
        wanted = [("ssh key", row.get("ssh_key_path"), keys, "keys")]
        known = row.get("ssh_known_hosts_path")
        if known and not Path(known).is_relative_to(own_known_hosts):
            wanted.append(("known_hosts", known, known_hosts, "known_hosts"))
        for what, path, entries, folder in wanted:
            if not path:
                continue
            if path in entries:
                entries[path]["servers"].append(row["name"])
                continue
            stored = f"{folder}/{len(entries) + 1}-{Path(path).name}"
            if never is not None and Path(path).resolve() == never.resolve():
                missing.append({"server": row["name"], "what": what, "path": path, "error": "the vault password file"})
                continue
            try:
                data = Path(path).read_bytes()
            except OSError as error:
                missing.append({"server": row["name"], "what": what, "path": path, "error": error.strerror})
                continue
            (stage / folder).mkdir(mode=0o700, exist_ok=True)
            descriptor = os.open(stage / stored, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            entries[path] = {"file": stored, "path": path, "servers": [row["name"]]}
    return list(keys.values()), list(known_hosts.values()), missing


def _count_files(directory: Path) -> int:
    if not directory.is_dir():
        return 0
    return sum(1 for p in directory.rglob("*") if p.is_file() and ".git" not in p.relative_to(directory).parts[:1])


def _commits(inventories: Path) -> int:
    if not (inventories / ".git").exists():
        return 0
    done = subprocess.run(
        ["git", "-C", str(inventories), "rev-list", "--count", "HEAD"], capture_output=True, text=True
    )
    return int(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip().isdigit() else 0


# --- the restore -----------------------------------------------------------------------------------------------


def default_keys_dir(target: Path) -> Path:
    """Where a restore puts SSH keys it cannot put back where they were: outside the workspace, beside the vault
    password `ruche init` makes (``$XDG_CONFIG_HOME/ruche/keys/NAME-DIGEST/``, default ``~/.config``)."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:12]
    return config_home / "ruche" / "keys" / f"{target.name}-{digest}"


class _Undo:
    """What a restore made, removed again when it fails."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], None]]] = []

    def add(self, what: str, step: Callable[[], None]) -> None:
        self.steps.append((what, step))

    def run(self) -> list[str]:
        problems = []
        for what, step in reversed(self.steps):
            try:
                step()
            except Exception as error:  # noqa: BLE001 - undo the rest all the same, and say what was left
                problems.append(f"{what}: {error}")
        return problems


def restore_control_plane(
    directory: Path, *, repository: str, snapshot: str = "latest", state_url: str | None = None,
    progress: Progress = no_progress,
) -> dict:  # fmt: skip
    """Make the workspace ``directory`` (absent or empty) from a control-plane snapshot of ``repository``: its files,
    the state loaded into a new database (ruche.toml's ``state_url``, or ``state_url``, then written there), the SSH
    keys and host keys back; the vault password checked against the restored secrets; a ``control-plane.restored``
    event. The vault password comes from $RUCHE_VAULT_PASSWORD or $RUCHE_VAULT_PASSWORD_FILE (ruche.toml is in the
    repository it opens). On failure whatever it made is removed.

    Raises Conflict (``directory`` not empty, the database not empty), MissingPrerequisite (no vault password, no
    restic), ConfigError (a vault password that does not open the repository or the secrets), NotFound (no
    repository or snapshot), InvalidInput (a snapshot this ruche cannot read)."""
    target = directory.expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(
            f"{target} exists and is not an empty directory", hint="restore into a new directory (it is created)"
        )
    try:
        source = find_vault_password(target, None)
    except MissingPrerequisite:
        raise MissingPrerequisite(
            "no vault password: the control-plane backup opens with the vault password of the workspace that made it",
            hint=f"set {PASSWORD_FILE_ENV} to a file holding it (mode 600, outside {target}) or {PASSWORD_ENV}",
        ) from None
    restic = Restic(repository_location(repository), repository_password(source.password))
    progress(f"reading the snapshots of {restic.repository}")
    chosen = _choose_snapshot(restic.snapshots(), snapshot, restic.repository)
    undo = _Undo()
    staging = None
    try:
        if not target.exists():
            target.mkdir(parents=True)
            undo.add(f"remove {target}", lambda: shutil.rmtree(target))
        else:
            undo.add(f"empty {target}", lambda: _empty(target))
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=target.parent))
        progress(f"restoring snapshot {chosen['short_id']} ({chosen['time'][:19]})")
        restic.restore(chosen["id"], staging)
        result = _restore_from(staging, chosen, target, Vault(source.password), state_url, undo, progress)
        result |= {"repository": restic.repository, "snapshot_id": chosen["id"], "vault_password": source.description}
        return result
    except BaseException:
        left = undo.run()
        if left:
            progress("could not undo: " + "; ".join(left))
        raise
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _choose_snapshot(snapshots: list[dict], wanted: str, repository: str) -> dict:
    if not snapshots:
        raise NotFound(f"no control-plane snapshot in {repository}", hint="`ruche backup control-plane` makes one")
    if wanted == "latest":
        return snapshots[-1]
    found = [s for s in snapshots if s["id"].startswith(wanted)]
    if len(found) != 1:
        listed = ", ".join(f"{s['short_id']} ({s['time'][:19]})" for s in snapshots[-5:])
        raise NotFound(f"{'no' if not found else 'more than one'} control-plane snapshot {wanted} in {repository}",
                       hint=f"the latest: {listed}")  # fmt: skip
    return found[0]


def _empty(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _restore_from(
    staging: Path, snapshot: dict, target: Path, vault: Vault, state_url: str | None, undo: _Undo, progress: Progress
) -> dict:
    from orchestrator.state.database import make_engine

    stage = next((staging / p.lstrip("/") for p in snapshot["paths"] if Path(p).name == STAGE), None)
    manifest_path = stage / "manifest.json" if stage is not None else None
    if manifest_path is None or not manifest_path.is_file():
        raise InvalidInput(f"snapshot {snapshot['short_id']} is not a control-plane backup (no {STAGE}/manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("format_version") != MANIFEST_VERSION:
        raise InvalidInput(f"snapshot {snapshot['short_id']}: a control-plane backup of another format",
                           hint="restore it with the ruche version that made it, or a newer one")  # fmt: skip
    dump = json.loads((stage / manifest["state"]["file"]).read_text(encoding="utf-8"))
    from orchestrator.state.dump import check_dump

    check_dump(dump)
    config_text = (stage / CONFIG_FILE_NAME).read_text(encoding="utf-8")
    config = parse_config(config_text, f"{CONFIG_FILE_NAME} of snapshot {snapshot['short_id']}")
    checked = _check_vault(vault, dump, config)
    progress(f"the vault password opens {checked} recorded secret(s)")

    old_root = Path(manifest["workspace"])
    shutil.copy2(stage / CONFIG_FILE_NAME, target / CONFIG_FILE_NAME)
    for name, old in manifest["paths"].items():
        source = staging / old.lstrip("/")
        if name == "catalog":
            continue
        shutil.move(source, target / name)
    from orchestrator.workspace import Workspace

    workspace = Workspace(target)
    if "catalog" in manifest["paths"]:
        _restore_catalog(workspace, staging / manifest["paths"]["catalog"].lstrip("/"), old_root, manifest, undo)
    if state_url is not None:
        workspace.edit_config({"state_url": state_url})
    url = workspace.state_url
    shown_url = make_url(url).render_as_string(hide_password=True)
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.exists() and not _inside(sqlite_file, target):
        undo.add(f"remove {sqlite_file}", lambda: sqlite_file.unlink(missing_ok=True))
    engine = make_engine(url)
    try:
        from orchestrator.state.dump import clear_state, load_state

        progress(f"loading the state into {shown_url}")
        rows = load_state(engine, dump)  # refuses a database that is not empty, before changing it
        undo.add(f"drop the tables made in {shown_url}", lambda: clear_state(make_engine(url)))
    finally:
        engine.dispose()
    progress("putting the SSH keys and host keys back")
    placed_keys, key_paths = _place_files(manifest["keys"], stage, old_root, target, default_keys_dir(target), undo)
    placed_hosts, host_paths = _place_known_hosts(manifest, stage, old_root, target, undo)
    changed, inventory = _repoint_servers(workspace, old_root, key_paths, host_paths, manifest, snapshot)
    notes = [f"{m['server']}: its {m['what']} {m['path']} was not in the backup ({m['error']})"
             for m in manifest.get("missing", [])]  # fmt: skip
    configured = config.secrets.vault_password_file
    if configured and not Path(configured).expanduser().is_file():
        notes.append(f"ruche.toml's [secrets] vault_password_file {configured} is not on this machine: put the vault "
                     f"password there (mode 600), or keep {PASSWORD_ENV} / {PASSWORD_FILE_ENV} set")  # fmt: skip
    return {
        "workspace": str(target), "from_workspace": str(old_root), "made_at": manifest["made_at"],
        "state_url": shown_url, "revision": dump["revision"], "rows": rows, "secrets_checked": checked,
        "keys": placed_keys, "known_hosts": placed_hosts, "servers_changed": changed, "inventory_commit": inventory,
        "notes": notes,
    }  # fmt: skip


def _check_vault(vault: Vault, dump: dict, config) -> int:
    """Open a few secrets of each kind (instances', backup passwords, the mail relay's) with the vault password;
    give how many. Raises ConfigError naming the first that does not open."""
    samples: list[tuple[str, str]] = []
    instances = dump["tables"].get("instances", {"columns": [], "rows": []})
    if "secrets" in instances["columns"]:
        index, name = instances["columns"].index("secrets"), instances["columns"].index("name")
        found = [(f"instance {row[name]}'s {key}", value) for row in instances["rows"] if row[index]
                 for key, value in (json.loads(row[index]) or {}).items()]  # fmt: skip
        samples += found[:SECRETS_CHECKED_PER_KIND]
    associations = dump["tables"].get("associations", {"columns": [], "rows": []})
    if "backup_password" in associations["columns"]:
        index, slug = associations["columns"].index("backup_password"), associations["columns"].index("slug")
        found = [(f"{row[slug]}'s backup password", row[index]) for row in associations["rows"] if row[index]]
        samples += found[:SECRETS_CHECKED_PER_KIND]
    if config.mail is not None and config.mail.password:
        samples.append(("the mail relay's password", config.mail.password))
    for what, ciphertext in samples:
        try:
            vault.decrypt(ciphertext)
        except ConfigError:
            raise ConfigError(f"the vault password does not open {what}",
                              hint="give the vault password of the workspace that made the backup") from None  # fmt: skip
    return len(samples)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database)
    return None


def _restore_catalog(workspace, source: Path, old_root: Path, manifest: dict, undo: _Undo) -> None:
    """The workspace's own catalogue: at the same place inside the workspace; outside, where it was when free,
    else inside the workspace as ``catalog`` (ruche.toml then names it)."""
    setting = manifest.get("catalog_dir")
    old = Path(manifest["paths"]["catalog"])
    if _inside(old, old_root):
        shutil.move(source, workspace.root / old.relative_to(old_root))
        return
    if not old.exists():
        old.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, old)
        undo.add(f"remove {old}", lambda: shutil.rmtree(old, ignore_errors=True))
        return
    shutil.move(source, workspace.root / "catalog")
    if setting != "catalog":
        workspace.edit_config({"catalog_dir": "catalog"})


def _write_private(path: Path, data: bytes, undo: _Undo) -> None:
    """Write ``path`` (mode 0600; missing parents 0700, removed again on failure)."""
    missing = [p for p in path.parents if not p.exists()]
    if missing:
        path.parent.mkdir(mode=0o700, parents=True)
        top = missing[-1]
        undo.add(f"remove {top}", lambda: shutil.rmtree(top, ignore_errors=True))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    undo.add(f"remove {path}", lambda: path.unlink(missing_ok=True))
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _place_files(
    entries: list[dict], stage: Path, old_root: Path, target: Path, fallback_dir: Path, undo: _Undo
) -> tuple[list[dict], dict[str, str]]:
    """Put each stored key back: at its recorded path when that lies outside both workspaces and is free (or
    already holds the same key), else in ``fallback_dir``. Give what was placed and the new path by old path."""
    placed, paths = [], {}
    for entry in entries:
        data = (stage / entry["file"]).read_bytes()
        old = Path(entry["path"])
        destination = old
        if _inside(old, old_root) or _inside(old, target) or (old.exists() and _read(old) != data):
            destination = fallback_dir / Path(entry["file"]).name
        if destination.exists() and _read(destination) != data:
            raise Conflict(f"{destination} exists and holds another key", hint="move it away, then restore again")
        written = not destination.exists()
        if written:
            _write_private(destination, data, undo)
        placed.append({"servers": entry["servers"], "from": entry["path"], "path": str(destination),
                       "written": written})  # fmt: skip
        paths[entry["path"]] = str(destination)
    return placed, paths


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _place_known_hosts(
    manifest: dict, stage: Path, old_root: Path, target: Path, undo: _Undo
) -> tuple[list[dict], dict[tuple[str, str], str]]:
    """Put back the known_hosts files rows named outside the workspace's known_hosts/: where they were when that
    lies outside both workspaces and is free (or the same), else as the workspace's ``known_hosts/SERVER``. Give
    what was placed and the new path by (server, old path)."""
    placed, paths = [], {}
    own = target / "known_hosts"
    for entry in manifest.get("known_hosts_files", []):
        data = (stage / entry["file"]).read_bytes()
        old = Path(entry["path"])
        if not (_inside(old, old_root) or _inside(old, target)) and _read(old) in (None, data):
            if not old.exists():
                _write_private(old, data, undo)
            for server in entry["servers"]:
                paths[(server, entry["path"])] = str(old)
            placed.append({"servers": entry["servers"], "from": entry["path"], "path": str(old)})
            continue
        for server in entry["servers"]:
            destination = own / server
            if _read(destination) not in (None, data):
                destination = own / f"{server}.restored"
            if not destination.exists():
                _write_private(destination, data, undo)
            paths[(server, entry["path"])] = str(destination)
            placed.append({"servers": [server], "from": entry["path"], "path": str(destination)})
    return placed, paths


def _repoint_servers(
    workspace, old_root: Path, key_paths: dict, host_paths: dict, manifest: dict, snapshot: dict
) -> tuple[list[dict], str | None]:
    """Give the server rows the paths their keys and host keys now have (recorded as changes in the audit trail),
    record the restore, and write the inventory again when a server changed (its files name those paths)."""
    from orchestrator.operations.inventories import write_inventory
    from orchestrator.state.database import StateStore
    from orchestrator.state.events import record_event
    from orchestrator.state.servers import list_servers

    changed = []
    store = StateStore(workspace.state_url)
    try:
        with store.session() as session:
            for server in list_servers(session):
                new = {}
                if server.ssh_key_path in key_paths and key_paths[server.ssh_key_path] != server.ssh_key_path:
                    new["ssh_key_path"] = key_paths[server.ssh_key_path]
                known = server.ssh_known_hosts_path
                if known and (server.name, known) in host_paths:
                    new["ssh_known_hosts_path"] = host_paths[(server.name, known)]
                elif known and Path(known).is_relative_to(old_root / "known_hosts"):
                    new["ssh_known_hosts_path"] = str(workspace.known_hosts_dir / Path(known).relative_to(
                        old_root / "known_hosts"))  # fmt: skip
                new = {field: value for field, value in new.items() if getattr(server, field) != value}
                for field, value in new.items():
                    setattr(server, field, value)
                if new:
                    changed.append({"server": server.name, **new})
            session.flush()
            record_event(session, kind="control-plane.restored", subject="control-plane", detail={
                "snapshot_id": snapshot["id"], "made_at": manifest["made_at"], "from_workspace": str(old_root),
                "workspace": str(workspace.root), "servers_changed": changed,
            })  # fmt: skip
            commit = None
            if changed:
                written = write_inventory(workspace, session, history="control-plane restore (SSH key paths)")
                commit = written["commit"]
        return changed, commit
    finally:
        store.close()
