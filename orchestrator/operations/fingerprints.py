"""Each instance's deployment fingerprint as the state gives it now (what ``plan`` compares and ``apply`` records)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from orchestrator.catalog import Catalog
from orchestrator.deployment import fingerprint
from orchestrator.operations.inventories import deployment_variables, read_cache, render_context, write_cache
from orchestrator.state.instances import ACTIVE_STATES, list_instances
from orchestrator.state.render_keys import instance_render_keys
from orchestrator.workspace import Workspace


def current_fingerprints(workspace: Workspace, session: Session, catalog: Catalog, ids: list[int]) -> dict[int, str]:
    """The fingerprint of each instance's deployment as the state gives it now, by id. One computed
    before is reused while the instance's deployment columns, ruche's code, the catalogue and the
    configuration are unchanged (state/render_keys.py; kept in the workspace's cache/): computing
    30,000 takes seconds, reading their keys a fraction of one."""
    cache_file = workspace.root / "cache" / f"fingerprints-{workspace.config.environment}.json"
    keys = instance_render_keys(session, ACTIVE_STATES, render_context(workspace))
    cached = read_cache(cache_file)
    found = {i: cached[str(i)][1] for i in ids if str(i) in cached and cached[str(i)][0] == keys.get(i)}
    missing = [i for i in ids if i not in found]
    for start in range(0, len(missing), 1000):
        for instance in list_instances(session, rows=missing[start : start + 1000]):  # with their associations
            found[instance.id] = fingerprint(deployment_variables(instance, catalog, workspace.config))
    if missing:
        kept = {key: value for key, value in cached.items() if int(key) in keys and value[0] == keys[int(key)]}
        write_cache(cache_file, kept | {str(i): [keys[i], found[i]] for i in missing if i in keys})
    return found
