"""``ruche trash empty``: erase the servers' trash entries that are due, one audit event per entry erased.

The entries are those ``ruche trash list`` shows as due (``trash.survey``); only names that are
exactly ``STAMP-ASSOCIATION--NAME`` directly under /srv/ruche/trash are ever erased (``trash.erase_entries``),
servers in parallel. Each erased entry becomes a ``trash.erased`` event of the audit trail (subject: the
deleted instance's address), recorded once its server confirmed the erasure.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.remote import for_each_server
from orchestrator.state.events import record_event
from orchestrator.trash import erase_entries, survey


def empty_trash(
    workspace_path: Path | None,
    *,
    server: str | None = None,
    dry_run: bool = False,
    confirmed: set[tuple[str, str]] | None = None,
    parallel: int = 16,
    progress: Progress = no_progress,
) -> dict:
    """Erase every due entry of every application server's trash (or ``server``'s).

    ``confirmed``: erase only these (server, entry) pairs among the due ones (what a confirmation showed).
    With ``dry_run``, only give what would be erased. Gives ``{"erased" (or, dry run, "would_erase"): [entries],
    "kept": [entries not due], "failed": [entries with "error"], "errors": {server: message}, "servers",
    "checked_at", "dry_run"}``. Raises NotFound for an unknown ``server``; a server that cannot be read or
    emptied is in ``errors`` (its entries are not erased), an entry rm could not erase in ``failed``.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        surveyed, targets = survey(session, dict(workspace.config.offers), server=server, parallel=parallel,
                                   progress=progress)  # fmt: skip
    due = [e for e in surveyed["entries"] if e["due"] and (confirmed is None or (e["server"], e["entry"]) in confirmed)]
    kept = [e for e in surveyed["entries"] if not e["due"]]
    result = {"kept": kept, "failed": [], "errors": dict(surveyed["errors"]), "servers": surveyed["servers"],
              "checked_at": surveyed["checked_at"], "dry_run": dry_run}  # fmt: skip
    if dry_run:
        return {**result, "would_erase": due}
    by_server: dict[str, list[dict]] = {}
    for entry in due:
        by_server.setdefault(entry["server"], []).append(entry)
    progress(f"erasing {len(due)} entr{'y' if len(due) == 1 else 'ies'} on {len(by_server)} server(s)")
    answers = for_each_server(
        [targets[name] for name in by_server],
        lambda target: erase_entries(target, [e["entry"] for e in by_server[target.name]]),
        parallel=parallel,
    )
    erased = []
    for name, entries in by_server.items():
        answer = answers[name]
        if isinstance(answer, Exception):
            result["errors"][name] = str(answer)
            continue
        done, failures = answer
        for entry in entries:
            if entry["entry"] in done:
                erased.append(entry)
            else:
                result["failed"].append({**entry, "error": failures.get(entry["entry"], "not reported erased")})
    if erased:
        with opened(workspace_path) as (_workspace, store), store.session() as session:
            for entry in erased:
                record_event(session, kind="trash.erased", subject=entry["address"], association=entry["association"],
                             detail={k: entry[k] for k in ("server", "entry", "deleted_at", "bytes", "offer",
                                                           "retention_days", "due_at", "rule")})  # fmt: skip
    return {**result, "erased": erased}
