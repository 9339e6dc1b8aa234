"""The inventories' history: a Git repository of the workspace's ``inventories/``, one commit per apply
(tagged ``run/RUN_ID``) and per inventory export that changed something, so that an auditor reads it
with plain ``git log -p``; and what changed between two commits in the fleet's terms (associations,
instances, servers, the collective's settings).

Secrets are ansible-vault ciphertext in the files (nothing else to hide): a diff shows that a
secret changed, as the digest of its ciphertext, never its value.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import replace
from pathlib import Path, PurePosixPath

import yaml

from orchestrator.errors import InvalidInput, NotFound, OperationFailed
from orchestrator.inventory import HostVars, join_host_vars, split_host_vars

GITIGNORE = "# written by ruche: its locks and the directories it swaps in\n.*\n!.gitignore\n"
EMAIL = "ruche@localhost"


# A commit message lists at most this many changes (then says how many more).
MESSAGE_LINES = 2000


def _git(repository: Path, *arguments: str, check: bool = True, author: str = "ruche", stdin: str | None = None) -> str:
    command = ["git", "-C", str(repository), "-c", f"user.name={author}", "-c", f"user.email={EMAIL}",
               "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *arguments]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, input=stdin)
    except FileNotFoundError:
        raise OperationFailed(
            "git is not installed: the inventories' history needs it", hint="apt-get install git"
        ) from None
    if check and done.returncode != 0:
        raise OperationFailed(f"git {' '.join(arguments[:2])} in {repository}: {done.stderr.strip()[:500]}")
    return done.stdout


def ensure_repository(inventories: Path) -> None:
    """Make ``inventories/`` a Git repository (once), ignoring ruche's locks and staging directories."""
    inventories.mkdir(parents=True, exist_ok=True)
    if not (inventories / ".git").exists():
        _git(inventories, "init", "--quiet", "--initial-branch=main")
    ignore = inventories / ".gitignore"
    if not ignore.exists() or ignore.read_text() != GITIGNORE:
        ignore.write_text(GITIGNORE)


def has_commits(inventories: Path) -> bool:
    return (inventories / ".git").exists() and _git(
        inventories, "rev-parse", "--verify", "--quiet", "HEAD", check=False
    ) != ""


def read_tree(directory: Path) -> dict[str, str]:
    """The text of every file under ``directory`` by relative path (empty when it does not exist)."""
    if not directory.is_dir():
        return {}
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


def files_at(inventories: Path, revision: str | None, environment: str) -> dict[str, str]:
    """The files of ``environment`` at ``revision`` (None: as they are on disk now), by path inside it."""
    if revision is None:
        return read_tree(inventories / environment)
    listed = _git(inventories, "ls-tree", "-r", "--name-only", revision, "--", environment, check=False)
    return {str(PurePosixPath(name).relative_to(environment)): _git(inventories, "show", f"{revision}:{name}")
            for name in listed.splitlines() if name}  # fmt: skip


def record(inventories: Path, environment: str, *, what: str, actor: str, run_id: str | None = None,
           always: bool = False) -> dict | None:  # fmt: skip
    """Commit the inventories as they are on disk: ``what`` (apply, inventory export) by ``actor``.

    An apply commits even when nothing changed (``always``: one commit per apply, tagged with its run
    id); an export only when something did. Call it holding the inventory's lock. Gives the commit
    and the changes, or None when nothing was committed."""
    ensure_repository(inventories)
    _git(inventories, "add", "--all", "--", ".")
    staged = _git(inventories, "diff", "--cached", "--name-only").split()
    if not staged and not always:
        return None
    # the files as committed before: those git finds unchanged are as on disk, only the others are read
    now = read_tree(inventories / environment)
    before = dict(now)
    differing = [name for name in staged if name.startswith(f"{environment}/")]
    for name in differing:
        before.pop(name.removeprefix(f"{environment}/"), None)
    if differing and has_commits(inventories):
        for name in _git(inventories, "ls-tree", "-r", "--name-only", "HEAD", "--", *differing).split():
            before[name.removeprefix(f"{environment}/")] = _git(inventories, "show", f"HEAD:{name}")
    changes = describe_changes(before, now)
    title = f"{what}{f' {run_id}' if run_id else ''} by {actor}: {summary_line(changes)}"
    lines = change_lines(changes)
    if len(lines) > MESSAGE_LINES:
        lines = lines[:MESSAGE_LINES] + [f"... and {len(lines) - MESSAGE_LINES} more (git show --stat)"]
    body = "\n".join(lines) or "no change to the inventories"
    trailers = f"Actor: {actor}" + (f"\nRun: {run_id}" if run_id else "")
    # the message goes through standard input: a fleet's first commit lists more than a command line holds
    _git(inventories, "commit", "--quiet", "--allow-empty", "--author", f"{actor} <{EMAIL}>", "--file=-",
         author=actor, stdin=f"{title[:200]}\n\n{body}\n\n{trailers}\n")  # fmt: skip
    commit = _git(inventories, "rev-parse", "HEAD").strip()
    if run_id:
        _git(inventories, "tag", "--force", f"run/{run_id}", commit)
    return {"commit": commit, "changes": changes}


def resolve(inventories: Path, reference: str) -> str:
    """A run id (tagged at its apply) or any Git revision, as a commit."""
    if not has_commits(inventories):
        raise NotFound(
            f"{inventories} has no history yet", hint="it starts at the next `ruche apply` or `ruche inventory export`"
        )
    for candidate in (f"refs/tags/run/{reference}", reference):
        found = _git(inventories, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", check=False).strip()
        if found:
            return found
    raise InvalidInput(f"{reference!r} is neither a run id with a recorded apply nor a revision of {inventories}",
                       hint="`ruche runs` lists run ids; `git -C inventories log` the commits")  # fmt: skip


def parent_of(inventories: Path, commit: str) -> str | None:
    found = _git(inventories, "rev-parse", "--verify", "--quiet", f"{commit}^", check=False).strip()
    return found or None


# --- what changed, in the fleet's terms ---------------------------------------------------------


class _InventoryLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when available: ~6x faster
    """Reads the inventories' YAML: ``!unsafe`` values as they are, ``!vault`` ones as a digest of the ciphertext."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return f"(vault {hashlib.sha256(value.encode()).hexdigest()[:12]})" if suffix == "vault" else value
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_InventoryLoader.add_multi_constructor("!", _tagged)


def _fleet(files: dict[str, str]) -> dict:
    servers, instances = {}, {}
    for path, text in files.items():
        if path.startswith("host_vars/") and path.endswith(".yml"):
            name = PurePosixPath(path).stem
            variables = yaml.load(text, Loader=_InventoryLoader) or {}
            secrets = variables.pop("ruche_secrets", {}) or {}
            for entry in variables.pop("ruche_instances", []) or []:
                address = f"{entry.get('association')}/{entry.get('name')}"
                entry.pop("fingerprint", None)  # derived from the rest: it changes with whatever changed
                instances[address] = {
                    **entry,
                    "server": name,
                    "secrets": secrets.get(entry.get("identifier", entry.get("id")), {}),
                }
            servers[name] = variables
    settings = yaml.load(files.get("group_vars/all.yml", "") or "{}", Loader=_InventoryLoader) or {}
    return {"servers": servers, "instances": instances, "settings": settings}


def _compare(before: dict, after: dict) -> dict:
    changed = {}
    for key in sorted(before.keys() & after.keys()):
        if before[key] != after[key]:
            changed[key] = sorted(
                k for k in before[key].keys() | after[key].keys() if before[key].get(k) != after[key].get(k)
            )
    return {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "changed": changed,
    }


def describe_changes(before_files: dict[str, str], after_files: dict[str, str]) -> dict:
    """What differs between two inventories: servers, instances (with the variables that changed),
    associations (hosted or not any more), the collective's settings."""
    # only what differs is read as YAML (a fleet's inventory is a hundred megabytes): the files that
    # differ, and in a server's file that differs the instances whose text differs (an instance's
    # text holds its fingerprint, which covers its secrets: same text, same instance)
    differing = {p for p in before_files.keys() | after_files.keys() if before_files.get(p) != after_files.get(p)}
    kept = [t for p, t in after_files.items() if p not in differing]
    before_read, after_read = {}, {}
    for path in differing:
        old, new = before_files.get(path), after_files.get(path)
        parts = (split_host_vars(old), split_host_vars(new)) if old is not None and new is not None else (None, None)
        if path.startswith("host_vars/") and None not in parts:
            same = set(parts[0].items) & set(parts[1].items)
            before_read[path], after_read[path] = (_without(p, same) for p in parts)
            kept.extend(same)
            continue
        if old is not None:
            before_read[path] = old
        if new is not None:
            after_read[path] = new
    before, after = _fleet(before_read), _fleet(after_read)
    associations_before = {a.split("/")[0] for a in before["instances"]}
    associations_after = {a.split("/")[0] for a in after["instances"]}
    for slug in associations_before ^ associations_after:
        hosted = re.compile(rf"^[ -]*association: (!unsafe )?'?{re.escape(slug)}'?$", re.MULTILINE)
        if any(hosted.search(text) for text in kept):  # still hosted by an instance that did not change
            associations_before.discard(slug)
            associations_after.discard(slug)
    settings = sorted(k for k in before["settings"].keys() | after["settings"].keys()
                      if before["settings"].get(k) != after["settings"].get(k))  # fmt: skip
    return {
        "associations": {"added": sorted(associations_after - associations_before),
                         "removed": sorted(associations_before - associations_after)},
        "instances": _compare(before["instances"], after["instances"]),
        "servers": _compare(before["servers"], after["servers"]),
        "settings": settings,
    }  # fmt: skip


def _without(parts: HostVars, items: set[str]) -> str:
    """A server's file without the instance items ``items`` (their secrets entries stay: read by id)."""
    return join_host_vars(replace(parts, items=[item for item in parts.items if item not in items]))


def is_empty(changes: dict) -> bool:
    return not any([*changes["associations"].values(), changes["instances"]["added"], changes["instances"]["removed"],
                    changes["instances"]["changed"], changes["servers"]["added"], changes["servers"]["removed"],
                    changes["servers"]["changed"], changes["settings"]])  # fmt: skip


def summary_line(changes: dict) -> str:
    if is_empty(changes):
        return "no change"
    parts = []
    for kind in ("instances", "servers"):
        counted = changes[kind]
        for sign, key in (("+", "added"), ("-", "removed"), ("~", "changed")):
            if counted[key]:
                parts.append(f"{sign}{len(counted[key])} {kind[:-1] if len(counted[key]) == 1 else kind}")
    if changes["settings"]:
        parts.append("settings")
    return ", ".join(parts)


def change_lines(changes: dict) -> list[str]:
    lines = [f"association {slug}: now hosted" for slug in changes["associations"]["added"]]
    lines += [f"association {slug}: no longer hosted" for slug in changes["associations"]["removed"]]
    for kind in ("instances", "servers"):
        word = kind[:-1]
        lines += [f"{word} {name}: added" for name in changes[kind]["added"]]
        lines += [f"{word} {name}: removed" for name in changes[kind]["removed"]]
        lines += [f"{word} {name}: {', '.join(keys)} changed" for name, keys in changes[kind]["changed"].items()]
    if changes["settings"]:
        lines.append(f"settings: {', '.join(changes['settings'])} changed")
    return lines
