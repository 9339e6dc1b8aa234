#!/usr/bin/python3
"""ruche_files: directories and whole files, owned by root, written in one module run.

The roles wrote each of them with its own task (ansible.builtin.file, copy or template: one or two runs of Python on
the server per file, about 0.4 s each, more on a busy server), some fifteen per instance converge and twenty for a
server's base. This module takes them all at once: directories created (owner root, the mode given), files written
whole (owner root, the mode given) when their content or mode differs, atomically (a temporary file in the same
directory, renamed over the old one), after a check of the new content when the file has one (``validate``, as
ansible.builtin.template's). It reports which files changed. It lives in the base role (ruche_server, library/); the
instance role's library/ links to it. With ``pending_marker``, a write also leaves that marker file, which the role removes once the units
are restarted: a run that fails between the write and the restart (the next step's failure, the connection lost)
leaves it, and the next run, finding the files as it would write them, still reloads systemd and restarts the units
(``pending``).
"""

from __future__ import annotations

import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: ruche_files
short_description: Create directories and write whole files, owned by root, in one run
options:
  directories:
    description: >-
      Directories to create (and their parents) with owner root: each a path (mode O(directory_mode)) or a C(path)
      with its own C(mode).
    type: list
    elements: raw
    default: []
  directory_mode:
    description: The mode of directories given as a path alone (set on existing ones too).
    type: str
    default: "0700"
  files:
    description: >-
      Files to write, each with its C(path), C(content) (never logged) and C(mode); owner and group root. With
      C(validate), a command holding C(%s): run on the new content before it replaces the file, which is left as it
      was when the command fails.
    type: list
    elements: dict
    default: []
  pending_marker:
    description: A file left when anything is written (removed by the role once the units are restarted).
    type: str
"""

RETURN = r"""
changed_files:
  description: The paths of the files whose content or mode changed (written).
  type: list
created_directories:
  description: The directories created, or whose owner or mode was set.
  type: list
pending:
  description: Whether O(pending_marker) exists (written now, or left by a run that did not restart the units).
  type: bool
"""


def _directory(path: str, mode: int) -> bool:
    """Create ``path`` (root's, ``mode``) or set its owner and mode; tell whether anything changed. A symbolic link to
    a directory is followed (an admin may put volumes on another disk), as ansible.builtin.file does."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        missing = [path]  # and its missing parents, which get the same owner and mode (as ansible.builtin.file)
        while not os.path.exists(os.path.dirname(missing[-1]) or "."):
            missing.append(os.path.dirname(missing[-1]))
        for created in reversed(missing):
            if os.path.islink(created):
                raise OSError(f"{created} is a symbolic link to nothing") from None
            try:
                os.mkdir(created, mode)
            except FileExistsError:  # made meanwhile by another run on this server: kept as it is
                if not os.path.isdir(created):
                    raise
                continue
            os.chown(created, 0, 0)
            os.chmod(created, mode)
        return True
    if not stat.S_ISDIR(found.st_mode):
        raise OSError(f"{path} exists and is not a directory")
    changed = False
    if (found.st_uid, found.st_gid) != (0, 0):
        os.chown(path, 0, 0)
        changed = True
    if stat.S_IMODE(found.st_mode) != mode:
        os.chmod(path, mode)
        changed = True
    return changed


def _differs(path: str, content: bytes, mode: int) -> bool:
    """Whether ``path`` is not already a regular file of root's holding ``content`` with ``mode``."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return True
    if not stat.S_ISREG(found.st_mode) or (stat.S_IMODE(found.st_mode), found.st_uid, found.st_gid) != (mode, 0, 0):
        return True
    if found.st_size != len(content):
        return True
    with open(path, "rb") as handle:
        return handle.read() != content


def _write(path: str, content: bytes, mode: int, check=None) -> None:
    """Write ``content`` to ``path`` (root's, ``mode``) atomically: a temporary file beside it, renamed over it once
    ``check`` (given the temporary file's path) has accepted it."""
    directory = os.path.dirname(path) or "."
    descriptor, temporary = tempfile.mkstemp(prefix=".ruche-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # before any byte: a secret is never readable by others
            os.fchown(handle.fileno(), 0, 0)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if check is not None:
            check(temporary)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def _directories(entries: list, default_mode: str) -> list[tuple[str, int]]:
    """The directories asked for, each as (path, mode): a path alone takes ``default_mode``."""
    found = []
    for entry in entries:
        if isinstance(entry, str):
            found.append((os.path.normpath(entry), int(default_mode, 8)))
        elif isinstance(entry, dict) and set(entry) == {"path", "mode"}:
            found.append((os.path.normpath(str(entry["path"])), int(str(entry["mode"]), 8)))
        else:
            raise ValueError(f"a directory is a path or a path and a mode, not {entry!r}")
    return found


def _validator(module: AnsibleModule, command: str | None):
    """A check of a new file's content: ``command`` with %s the temporary file's path, failing the write when the
    command fails (its output in the error)."""
    if not command:
        return None
    if "%s" not in command:
        raise ValueError(f"validate must hold %s (the new file's path): {command!r}")

    def check(temporary: str) -> None:
        rc, out, err = module.run_command(command % temporary)
        if rc != 0:
            raise ValueError(f"the new content was refused by {command!r} (rc {rc}): {(err or out).strip()}")

    return check


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directories": {"type": "list", "elements": "raw", "default": []},
            "directory_mode": {"type": "str", "default": "0700"},
            "files": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "path": {"type": "str", "required": True},
                    "content": {"type": "str", "required": True, "no_log": True},
                    "mode": {"type": "str", "required": True},
                    "validate": {"type": "str"},
                },
            },
            "pending_marker": {"type": "str"},
        },
        supports_check_mode=False,
    )
    created, written = [], []
    current, marker = "directories", module.params["pending_marker"]
    try:
        for path, mode in _directories(module.params["directories"], module.params["directory_mode"]):
            current = path
            if _directory(path, mode):
                created.append(path)
        for entry in module.params["files"]:
            current = entry["path"]
            content, mode = entry["content"].encode("utf-8"), int(entry["mode"], 8)
            if not _differs(entry["path"], content, mode):
                continue
            if marker and not written and not os.path.exists(marker):  # before the first write: a failure after it
                current = marker  # leaves the marker, so that the next run restarts the units
                _write(marker, b"", 0o600)
                current = entry["path"]
            _write(entry["path"], content, mode, _validator(module, entry.get("validate")))
            written.append(entry["path"])
    except (OSError, ValueError) as error:
        module.fail_json(
            msg=f"{current}: {error}", changed=bool(created or written), changed_files=written,
            created_directories=created,
        )  # fmt: skip
    pending = bool(marker) and os.path.exists(marker)
    module.exit_json(
        changed=bool(created or written), changed_files=written, created_directories=created, pending=pending
    )


if __name__ == "__main__":
    main()
