"""``ruche catalog check SERVICE``: an entry's whole lifecycle, run for real on one server of the registry.

The check plays the collective's admin: in a throwaway association (``check-XXXXXXXX``) it runs the same
``ruche`` commands an admin runs, each in its own process (so each step's command is the one to type to
reproduce it), and between them reaches the instance as its users would: HTTPS through the server's Caddy,
the entry's ``check`` hook (a datum written and read back through the service's own CLI or API), SSH for
the units and the files' owners. Steps, in order:

create (association and instance), converge, health, data (written, read back), restart (every unit; the
files' owners unchanged, the datum still there), backup, restore (a datum written after the snapshot is
gone, the one before is back, and it takes a new one: it left the backup's quiet state), restore-into (a new instance from the snapshot, read, deleted), verify,
suspend (nothing answers), resume (answers, datum there), upgrade-from-V for each version the entry's
``upgrade_from`` accepts (an instance of V with a datum, upgraded, read back, deleted), delete (its files
gone from the server), remove (the association, its backups).

The first failing step ends the check; unless ``keep``, what the check made is then deleted (purged) and
its association removed. Each step's output is kept under the workspace's ``checks/ID/``; the outcome is a
``catalog_checks`` row, shown by ``catalog list`` and ``catalog show``.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from sqlalchemy import select

from orchestrator import __version__
from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.catalog import CheckStep, Service, load_catalog, render_check_step
from orchestrator.errors import InvalidInput, RucheError
from orchestrator.health import HealthTarget, check, request
from orchestrator.remote import SshTarget, run_tool
from orchestrator.state.actors import current_actor
from orchestrator.state.events import record_event
from orchestrator.state.instances import get_instance
from orchestrator.state.models import CatalogCheck, utc_now
from orchestrator.state.servers import get_server
from orchestrator.unit_watch import wait_watching
from orchestrator.workspace import Workspace

COMMAND_TIMEOUT = 3600  # one ruche command (an upgrade with its safety backup and rollback)
HEALTH_TIMEOUT = 300  # an instance answering after a restart or a resume
OUTPUT_KEPT = 4000  # characters of a failing step's output in the record (the whole output is in its log)


class StepFailed(Exception):
    """A step of the check failed: what was expected and what happened."""


def check_record(row: CatalogCheck) -> dict:
    return {
        "id": row.id, "service": row.service_id, "version": row.version, "server": row.server,
        "association": row.association, "ruche_version": row.ruche_version, "status": row.status,
        "steps_passed": row.steps_passed, "steps_total": row.steps_total, "failed_step": row.failed_step,
        "requested_by": row.requested_by, "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None, **row.detail,
    }  # fmt: skip


def latest_checks(workspace_path: Path | None) -> dict[str, dict]:
    """The newest finished check of each service, by service id."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        rows = session.scalars(select(CatalogCheck).where(CatalogCheck.status != "running").order_by(CatalogCheck.id))
        return {row.service_id: check_record(row) for row in rows}


def checks_of(workspace_path: Path | None, service_id: str) -> list[dict]:
    """Every check of ``service_id``, newest first."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        rows = session.scalars(
            select(CatalogCheck).where(CatalogCheck.service_id == service_id).order_by(CatalogCheck.id.desc())
        )
        return [check_record(row) for row in rows]


def _parameters(service: Service, workspace: Workspace) -> list[str]:
    """``--param`` options for the parameters that need a value and have no default."""
    options = []
    for parameter in service.parameters:
        if parameter.default is not None or not parameter.required:
            continue
        value = {"email": f"catalog-check@{workspace.config.base_domain}", "integer": str(parameter.minimum or 1),
                 "boolean": "false", "locale": "en", "choice": (parameter.choices or [""])[0]}.get(
                     parameter.type, "ruche-check")  # fmt: skip
        options += ["--param", f"{parameter.name}={value}"]
    return options


SKIPPABLE = ("restart", "restore-into", "verify", "suspend", "resume", "upgrades")  # the rest make or need the data


def skipped_steps(service: Service, version: str, skip: tuple[str, ...]) -> list[str]:
    """The planned steps ``skip`` names (``upgrades``: every upgrade-from step); raises InvalidInput for a name
    that is not one of SKIPPABLE."""
    unknown = sorted(set(skip) - set(SKIPPABLE))
    if unknown:
        raise InvalidInput(f"--skip {', '.join(unknown)}: not a step that can be skipped",
                           hint=f"skippable: {', '.join(SKIPPABLE)}")  # fmt: skip
    return [name for name in planned_steps(service, version)
            if name in skip or ("upgrades" in skip and name.startswith("upgrade-from-"))]  # fmt: skip


def planned_steps(service: Service, version: str) -> list[str]:
    """The names of the check's steps for ``version``, in order."""
    upgrades = [f"upgrade-from-{source}" for source in service.upgrade_sources(version)]
    return ["create", "converge", "health", "data", "restart", "backup", "restore", "restore-into", "verify",
            "suspend", "resume", *upgrades, "delete", "remove"]  # fmt: skip


class _Check:
    """One run of the check: its workspace, throwaway association, log directory and steps."""

    def __init__(self, workspace: Workspace, service: Service, version: str, server: str | None,
                 log_dir: Path, progress: Progress, skip: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.workspace, self.service, self.version, self.server = workspace, service, version, server
        self.skip = skipped_steps(service, version, skip)
        self.association = f"check-{secrets.token_hex(4)}"
        self.log_dir, self.progress = log_dir, progress
        self.steps: list[dict] = []
        self.current: dict | None = None
        self.verify_tls = workspace.config.proxy_tls == "acme"
        self.secrets: set[str] = set()  # every secret value it read: never written to a log or the record

    def redact(self, text: str) -> str:
        for value in self.secrets:
            text = text.replace(value, "(secret)")
        return text

    def command(self, text: str) -> None:
        """Note a command the current step ran (the record's ``reproduce``)."""
        if self.current is not None:
            self.current.setdefault("commands", []).append(self.redact(text))

    # -- the ruche commands, each in its own process ---------------------------------------------------
    def shown(self, args: list[str]) -> str:
        return "ruche -w " + shlex.quote(str(self.workspace.root)) + " " + shlex.join(args)

    def ruche(self, *args: str) -> str:
        """Run ``ruche ARGS`` against the workspace; give its standard output. Raises StepFailed when it
        does not exit 0."""
        argv = [sys.executable, "-m", "orchestrator", "--workspace", str(self.workspace.root), *args]
        environment = {**os.environ, "RUCHE_ACTOR": f"{current_actor()} (catalog check)"}
        started = time.monotonic()
        self.command(self.shown(list(args)))
        # its own process group, so that a time-out or an interruption ends it with its Ansible children
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                   text=True, env=environment, start_new_session=True)  # fmt: skip
        try:
            out, err = process.communicate(timeout=COMMAND_TIMEOUT)
            code = process.returncode
        except subprocess.TimeoutExpired:
            _end_group(process)
            out, err = process.communicate()
            code, err = None, f"{err}\nno end within {COMMAND_TIMEOUT} s"
        except BaseException:
            _end_group(process)
            raise
        self.log(f"$ {self.shown(list(args))}\n(exit {code}, {time.monotonic() - started:.1f} s)\n{out}\n{err}\n")
        if code != 0:
            tail = (err.strip() or out.strip())[-OUTPUT_KEPT:]
            raise StepFailed(f"`{self.shown(list(args))}` exited {code}: {tail}")
        return out

    # -- the instance, as its users and its server see it ------------------------------------------------
    def instance_facts(self, address: str) -> dict:
        with opened(self.workspace.root) as (workspace, store), store.session() as session:
            instance = get_instance(session, address)
            vault = workspace.vault()
            server = instance.server
            clear = {name: vault.decrypt(value) for name, value in instance.secrets.items()}
            self.secrets |= {value for value in clear.values() if len(value) >= 6}
            return {"address": address, "identifier": instance.identifier, "domain": instance.domain,
                    "server": server.name, "server_address": server.address, "target": SshTarget.of(server),
                    "parameters": dict(instance.parameters),
                    "secrets": clear}  # fmt: skip

    def health(self, facts: dict) -> tuple[bool, str]:
        spec = self.service.health
        result = check(
            HealthTarget(
                key=facts["address"],
                server_address=facts["server_address"],
                domain=facts["domain"],
                path=spec.path,
                expected_status=spec.expected_status,
                timeout_seconds=spec.timeout_seconds,
                body_contains=spec.body_contains,
            ),  # fmt: skip
            verify_tls=self.verify_tls,
        )
        return result.healthy, result.detail

    def wait_healthy(self, facts: dict) -> None:
        """Wait until the instance answers healthy through Caddy, at most HEALTH_TIMEOUT; a unit of it that fails or
        restarts in a loop meanwhile ends the wait at once (raises StepFailed with its last log lines)."""
        outcome, detail = wait_watching(
            lambda: self.health(facts), HEALTH_TIMEOUT, (facts["target"], facts["identifier"]), interval=3
        )
        if outcome == "ready":
            self.log(f"healthy: {detail}\n")
            return
        if outcome == "failed":
            raise StepFailed(f"{facts['address']} does not come up on {facts['server']}: {detail}")
        raise StepFailed(f"{facts['address']} does not answer after {HEALTH_TIMEOUT} s: {detail}")

    def hook(self, facts: dict, step: CheckStep, token: str = "") -> str:
        """Run one step of the entry's data check against the instance; give its output (or answer's body)."""
        variables = {"check": {"token": token}, "param": facts["parameters"], "secret": facts["secrets"]}
        step = render_check_step(step, variables)
        if step.exec is not None:
            user = ["--user", self.service.exec_user] if self.service.exec_user else []
            argv = ["podman", "exec", "--env", f"RUCHE_CHECK_TOKEN={token}", *user,
                    f"ruche-{facts['identifier']}-app", *step.exec]  # fmt: skip
            code, output = self.on(facts, argv, timeout=600)
            if code != 0:
                raise StepFailed(f"on {facts['server']}: `{shlex.join(argv)}` exited {code}: {output[-OUTPUT_KEPT:]}")
            return output
        http = step.http
        headers = dict(http.headers) | ({"Content-Type": http.content_type} if http.content_type else {})
        auth = (http.user or "", http.password or "") if http.user is not None else None
        shown = f"{http.method} https://{facts['domain']}{http.path}"
        self.command(
            "curl --insecure --resolve " + shlex.quote(f"{facts['domain']}:443:{facts['server_address']}")
            + f" --request {http.method} " + shlex.quote(f"https://{facts['domain']}{http.path}")
            + "".join(f" --header {shlex.quote(f'{k}: {v}')}" for k, v in headers.items())
            + (f" --user {shlex.quote(http.user + ':')}PASSWORD" if auth else "")
            + (" --data-binary @BODY" if http.body else "")
            + (f"   # PASSWORD: ruche instance secrets {facts['address']}" if auth else "")
        )  # fmt: skip
        try:
            status, body = request(facts["server_address"], facts["domain"], http.method, http.path, body=http.body,
                                   headers=headers, auth=auth, verify_tls=self.verify_tls)  # fmt: skip
        except requests.RequestException as error:
            raise StepFailed(f"{shown}: no answer ({type(error).__name__})") from None
        self.log(f"{shown} (through {facts['server']}'s Caddy): HTTP {status}\n{body[:OUTPUT_KEPT]}\n")
        if status not in http.expected_status:
            raise StepFailed(f"{shown} answered HTTP {status}, expected {http.expected_status}: {body[:500]}")
        return body

    def write(self, facts: dict) -> str:
        token = "ruchecheck" + secrets.token_hex(6)
        for step in self.service.check.write:
            self.hook(facts, step, token)
        return token

    def read(self, facts: dict, *, present: tuple[str, ...] = (), absent: tuple[str, ...] = ()) -> None:
        output = self.hook(facts, self.service.check.read)
        missing = [token for token in present if token not in output]
        still = [token for token in absent if token in output]
        if missing:
            raise StepFailed(f"{facts['address']}: the datum {', '.join(missing)} is not read back")
        if still:
            raise StepFailed(
                f"{facts['address']}: the datum {', '.join(still)}, written after the snapshot, is still there"
            )

    def owners(self, facts: dict) -> dict[str, str]:
        root = f"/srv/ruche/{self.association}/{facts['address'].split('/')[1]}"
        code, output = run_tool(facts["target"], ["find", root, "-ignore_readdir_race", "-printf", "%U:%G %P\\n"],
                                timeout=600)  # fmt: skip
        if code != 0 and not output.strip():
            raise StepFailed(f"on {facts['server']}: cannot list the files of {root}: {output[-500:]}")
        return dict(reversed(line.split(" ", 1)) for line in output.splitlines() if " " in line)

    def units(self, facts: dict) -> list[str]:
        code, output = run_tool(facts["target"], ["systemctl", "list-units", "--all", "--plain", "--no-legend",
                                                  "--type=service", f"ruche-{facts['identifier']}-*"], timeout=60)  # fmt: skip
        # UNIT LOAD ACTIVE SUB DESCRIPTION; a unit whose file is gone but still known to systemd is "not-found"
        names = [
            line.split()[0] for line in output.splitlines() if len(line.split()) > 1 and line.split()[1] != "not-found"
        ]
        names = names if code == 0 else []
        return [name for name in names if not name.endswith("-network.service")]

    def on(self, facts: dict, argv: list[str], *, timeout: float = 600) -> tuple[int, str]:
        """Run ``argv`` on the instance's server, its standard error with its output (a failing command says
        why); noted as an ``ssh`` command to reproduce."""
        target = facts["target"]
        self.command(f"ssh -p {target.port} {target.user}@{target.address} -- {shlex.quote(shlex.join(argv))}")
        code, output = run_tool(target, ["sh", "-c", 'exec "$@" 2>&1', "sh", *argv], timeout=timeout)
        self.log(f"$ ssh {facts['server']} {shlex.join(argv)}\n(exit {code})\n{output}\n")
        return code, output

    def log(self, text: str) -> None:
        if self.current is not None:
            with open(self.log_dir / self.current["log"], "a", encoding="utf-8") as handle:
                handle.write(self.redact(text))


def _end_group(process: subprocess.Popen) -> None:
    """End a ruche process and everything it started: SIGTERM, then SIGKILL after 20 s."""
    for sent, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _run_steps(run: _Check, on_step) -> None:
    """Run every step; ``on_step(step)`` after each. Raises StepFailed at the first failing one."""
    service, association = run.service, run.association
    main = f"{association}/{service.id}"
    facts: dict = {}
    tokens: dict[str, str] = {}

    def step_create() -> None:
        run.ruche("association", "add", association, "--name", f"ruche catalog check of {service.id}",
                  "--email", f"catalog-check@{run.workspace.config.base_domain}", "--no-offer")  # fmt: skip
        run.ruche("instance", "create", association, service.id, "--version", run.version,
                  *(["--server", run.server] if run.server else []), *_parameters(service, run.workspace), "--json")  # fmt: skip

    def step_converge() -> None:
        run.ruche("apply", "--instance", main, "--json")
        facts.update(run.instance_facts(main))
        run.server = facts["server"]

    def step_health() -> None:
        run.wait_healthy(facts)

    def step_data() -> None:
        tokens["first"] = run.write(facts)
        run.read(facts, present=(tokens["first"],))

    def step_restart() -> None:
        before = run.owners(facts)
        units = run.units(facts)
        if not units:
            raise StepFailed(f"no unit of {main} found on {facts['server']}")
        code, output = run.on(facts, ["systemctl", "restart", *units])
        if code != 0:
            raise StepFailed(f"on {facts['server']}: `systemctl restart {' '.join(units)}` exited {code}: {output}")
        run.wait_healthy(facts)
        code, output = run.on(facts, ["systemctl", "is-active", *units], timeout=60)
        if code != 0:
            states = ", ".join(f"{unit} {state}" for unit, state in zip(units, output.split(), strict=False))
            raise StepFailed(f"after the restart not every unit of {main} is active: {states}")
        after = run.owners(facts)
        changed = [f"{path or '.'}: {before[path]} -> {after[path]}" for path in sorted(before.keys() & after.keys())
                   if before[path] != after[path]]  # fmt: skip
        if changed:
            raise StepFailed(f"files changed owner at restart: {'; '.join(changed[:10])}")
        run.read(facts, present=(tokens["first"],))

    def step_backup() -> None:
        run.ruche("backup", "run", main, "--json")

    def step_restore() -> None:
        tokens["after"] = run.write(facts)
        restored = json.loads(run.ruche("backup", "restore", main, "--yes", "--quiet", "--json"))
        if (restored.get("safety_backup") or {}).get("status") != "success":
            raise StepFailed(f"the restore of {main} took no safety backup first: {restored.get('safety_backup')}")
        run.wait_healthy(facts)
        run.read(facts, present=(tokens["first"],), absent=(tokens["after"],))
        # the snapshot was taken in the backup's quiet state (read-only, maintenance): the restored instance left it
        tokens["restored"] = run.write(facts)
        run.read(facts, present=(tokens["first"], tokens["restored"]))

    def step_restore_into() -> None:
        copy = f"{association}/copy"
        run.ruche("backup", "restore", main, "--into", copy, "--server", facts["server"], "--yes", "--quiet", "--json")
        copied = run.instance_facts(copy)
        run.wait_healthy(copied)
        run.read(copied, present=(tokens["first"],))
        run.ruche("instance", "delete", copy, "--purge", "--no-final-backup", "--yes", "--quiet", "--json")

    def step_verify() -> None:
        run.ruche("backup", "verify", main, "--json")

    def step_suspend() -> None:
        run.ruche("instance", "suspend", main, "--quiet", "--json")
        healthy, detail = run.health(facts)
        if healthy:
            raise StepFailed(f"{main} still answers while suspended: {detail}")
        _code, running = run.on(facts, ["podman", "ps", "--format", "{{.Names}}", "--filter",
                                        f"name=^ruche-{facts['identifier']}-"], timeout=60)  # fmt: skip
        if running.strip():
            raise StepFailed(f"containers of {main} still run while suspended: {' '.join(running.split())}")
        if not run.owners(facts):
            raise StepFailed(f"{main}'s files are gone while suspended")

    def step_resume() -> None:
        run.ruche("instance", "resume", main, "--quiet", "--json")
        run.wait_healthy(facts)
        run.read(facts, present=(tokens["first"],))

    def step_upgrade(source: str, index: int) -> None:
        name = f"from-{index}"
        address = f"{association}/{name}"
        run.ruche("instance", "create", association, service.id, "--name", name, "--version", source,
                  "--server", facts["server"], *_parameters(service, run.workspace), "--json")  # fmt: skip
        run.ruche("apply", "--instance", address, "--json")
        old = run.instance_facts(address)
        run.wait_healthy(old)
        token = run.write(old)
        run.ruche("instance", "upgrade", address, "--to", run.version, "--yes", "--json")
        run.wait_healthy(old)
        run.read(old, present=(token,))
        run.ruche("instance", "delete", address, "--purge", "--no-final-backup", "--yes", "--quiet", "--json")

    def step_delete() -> None:
        run.ruche("instance", "delete", main, "--purge", "--no-final-backup", "--yes", "--quiet", "--json")
        code, output = run.on(facts, ["find", f"/srv/ruche/{association}", "-mindepth", "1", "-maxdepth", "2"])
        if output.strip() and "No such file" not in output:
            raise StepFailed(f"files are left in /srv/ruche/{association} on {facts['server']}: {output.strip()}")
        left = run.units(facts)
        if left:
            raise StepFailed(f"units of {main} are left on {facts['server']}: {', '.join(left)}")

    def step_remove() -> None:
        run.ruche("association", "remove", association, "--yes", "--json")

    actions = {"create": step_create, "converge": step_converge, "health": step_health, "data": step_data,
               "restart": step_restart, "backup": step_backup, "restore": step_restore,
               "restore-into": step_restore_into, "verify": step_verify, "suspend": step_suspend,
               "resume": step_resume, "delete": step_delete, "remove": step_remove}  # fmt: skip
    for index, source in enumerate(service.upgrade_sources(run.version), start=1):
        actions[f"upgrade-from-{source}"] = lambda source=source, index=index: step_upgrade(source, index)
    names = planned_steps(service, run.version)
    for index, name in enumerate(names, start=1):
        step = {"name": name, "status": "running", "seconds": None, "log": f"{index:02d}-{name}.log", "error": None}
        run.steps.append(step)
        if name in run.skip:
            step.update(status="skipped", log=None)
            run.progress(f"[{index}/{len(names)}] {name}: skipped (--skip)")
            on_step(step)
            continue
        run.current = step
        run.progress(f"[{index}/{len(names)}] {name}")
        started = time.monotonic()
        try:
            actions[name]()
        except (StepFailed, RucheError) as error:  # RucheError: a server unreachable, a time-out, a vault missing
            step["status"], step["error"] = "failed", run.redact(str(error))[:OUTPUT_KEPT]
            raise StepFailed(step["error"]) from None
        except BaseException:  # interrupted (Ctrl-C, SIGTERM) or a defect: not passed
            step["status"], step["error"] = "interrupted", "interrupted"
            raise
        else:
            step["status"] = "passed"
        finally:
            step["seconds"] = round(time.monotonic() - started, 1)
            on_step(step)


def _clean_up(run: _Check) -> list[str]:
    """After a failure: purge every instance the check made and remove its association. Gives what failed."""
    problems = []
    run.current = {"log": "cleanup.log"}
    try:
        listed = json.loads(run.ruche("instance", "list", "--association", run.association, "--json") or "[]")
    except (StepFailed, ValueError) as error:
        return [str(error)]
    for instance in listed:
        if instance.get("state") == "deleted":
            continue
        try:
            run.ruche("instance", "delete", instance["address"], "--purge", "--no-final-backup", "--yes", "--quiet")
        except StepFailed as error:
            problems.append(str(error))
    try:
        run.ruche("association", "remove", run.association, "--yes")
    except StepFailed as error:
        if "no association" not in str(error):  # never made (the check stopped before), or removed already
            problems.append(str(error))
    return problems


def catalog_check(workspace_path: Path | None, service_id: str, *, version: str | None = None,
                  server: str | None = None, keep: bool = False, skip: tuple[str, ...] = (),
                  progress: Progress = no_progress) -> dict:  # fmt: skip
    """Run the whole lifecycle of ``service_id`` (at ``version``, default the one new instances get) on
    ``server`` (default: placement's choice) and record the outcome; give the record.

    ``skip``: steps of SKIPPABLE left out (recorded as skipped; the check passes on the others).

    Raises NotFound for an unknown service, version or server, InvalidInput for an entry without a ``check``
    hook or a step that cannot be skipped; a failing step does not raise: the record says which, with the
    command to reproduce it."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        service = load_catalog(workspace.catalog_dir).get(service_id)
        version = service.release(version).version
        if service.check is None:
            raise InvalidInput(
                f"{service_id} has no `check` hook: the check cannot write and read back its data",
                hint="add one to the entry (see docs/reference/catalog-entry.md, `check`)",
            )
        if server is not None:
            get_server(session, server)
        skipped = skipped_steps(service, version, skip)
        row = CatalogCheck(service_id=service_id, version=version, server=server or "", association="",
                           ruche_version=__version__, status="running",
                           steps_total=len(planned_steps(service, version)) - len(skipped),
                           requested_by=current_actor(), detail={})  # fmt: skip
        session.add(row)
        session.flush()
        check_id = row.id
    log_dir = workspace.root / "checks" / f"{check_id}-{service_id}"
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (workspace.root / "checks").chmod(0o700)
    run = _Check(workspace, service, version, server, log_dir, progress, skip)

    def save(status: str, failed: dict | None = None, cleanup: list[str] | None = None) -> dict:
        with opened(workspace.root) as (_workspace, store), store.session() as session:
            row = session.get(CatalogCheck, check_id)
            row.association, row.server, row.status = run.association, run.server or "", status
            row.steps_passed = sum(1 for step in run.steps if step["status"] == "passed")
            row.failed_step = failed["name"] if failed else None
            row.steps_total = len(planned_steps(run.service, run.version)) - len(run.skip)
            row.detail = {"log_dir": str(log_dir), "steps": [dict(step) for step in run.steps], "skipped": run.skip,
                          **({"cleanup_problems": cleanup} if cleanup else {})}  # fmt: skip
            if status != "running":
                row.finished_at = utc_now()
                record_event(session, kind="catalog.checked", subject=f"{service_id} {version}", association=None,
                             detail={"check": check_id, "status": status, "server": row.server,
                                     "failed_step": row.failed_step})  # fmt: skip
            session.flush()
            return check_record(row)

    progress(f"in association {run.association}; output in {log_dir}")
    previous = _terminate_as_interrupt()
    try:
        _run_steps(run, lambda step: save("running"))
    except StepFailed:
        failed = next(step for step in run.steps if step["status"] == "failed")
        cleanup = [] if keep else _clean_up(run)
        record = save("failed", failed, cleanup)
        record["reproduce"] = _reproduce(run, failed, keep)
        return record
    except BaseException:
        failed = next((step for step in run.steps if step["status"] not in ("passed", "skipped")), None)
        cleanup: list[str] = ["not cleaned up: interrupted again"]
        try:
            cleanup = [] if keep else _clean_up(run)  # a second Ctrl-C leaves it (the record says so)
        finally:
            save("interrupted", failed, cleanup)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return save("passed")


def _terminate_as_interrupt():
    """Have SIGTERM end the check as Ctrl-C does (recorded, cleaned up); give the handler it replaces."""

    def interrupt(_signal, _frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _reproduce(run: _Check, failed: dict, keep: bool) -> str:
    """The failing step's commands, after the check that keeps what it made (without it, what they name is gone)."""
    again = ["catalog", "check", run.service.id, "--version", run.version, "--keep"]
    again += ["--server", run.server] if run.server else []
    lines = [] if keep else [f"{run.shown(again)}   # again, keeping what it makes; then:"]
    return "\n".join(lines + failed.get("commands", []))
