"""Render the ruche_instance role's templates outside Ansible, the way its template module does.

Used by the golden-file tests (unit tier) and compared with the files Ansible really wrote on lab
servers (lab tier), which shows the two renderings agree.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import jinja2

from orchestrator.runner import PLAYBOOKS_DIR

TEMPLATES = PLAYBOOKS_DIR / "roles" / "ruche_instance" / "templates"
ROLE_DEFAULTS = {"ruche_instance_root": "/srv/ruche", "ruche_instance_resource_limits": True}


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined, autoescape=False,
    )  # fmt: skip
    environment.filters["quote"] = shlex.quote
    return environment


def render_instance_files(variables: dict, secrets: dict[str, str], *, resource_limits: bool = True) -> dict[str, str]:
    """Give ``{file name on the server: text}`` for one instance's role variables, with ``secrets`` in clear."""
    environment = _environment()
    instance = {k: v for k, v in variables.items() if k != "secrets"}
    identifier = str(instance["identifier"])
    base = {
        **ROLE_DEFAULTS,
        "ruche_instance_resource_limits": resource_limits,
        "ruche_instance": instance,
        "ruche_secrets": {identifier: secrets},
        "_dir": f"/srv/ruche/{instance['association']}/{instance['name']}",
        "_running": instance["state"] == "present",
    }
    files = {
        f"ruche-{identifier}.network": environment.get_template("instance.network.j2").render(base),
        f"{instance['app']['container']}.container": environment.get_template("app.container.j2").render(base),
        "app.env": environment.get_template("env.j2").render(
            base, item={"environment": instance["app"]["environment"]}
        ),
        f"{identifier}.caddy": environment.get_template("site.caddy.j2").render(base),
    }
    if instance["database"]:
        database = instance["database"]
        files[f"{database['container']}.container"] = environment.get_template("db.container.j2").render(base)
        files["db.env"] = environment.get_template("env.j2").render(base, item={"environment": database["environment"]})
    for sidecar in instance["sidecars"]:
        files[f"{sidecar['container']}.container"] = environment.get_template("sidecar.container.j2").render(
            base, sidecar=sidecar
        )
    return files


def read_golden(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())} if directory.is_dir() else {}
