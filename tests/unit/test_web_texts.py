"""What members read of the worker's progress lines: step names and translated phases, nothing else."""

from orchestrator.i18n import members_progress, translator


def test_progress_lines_become_step_names_or_phases_in_the_members_language():
    fr, en = translator("fr"), translator("en")
    assert members_progress("task: Install Caddy", fr) == "étape : Install Caddy"
    assert members_progress("task: Install Caddy", en) == "step: Install Caddy"
    assert members_progress("started", fr) == "démarrage de l'installation"
    assert members_progress("checking health through Caddy", en) == "checking that the service answers"
    assert members_progress("interrupted: worker h:1:2:ab stopped answering; queued again", en).startswith(
        "interrupted, the set-up"
    )
    assert members_progress("", fr) == ""


def test_admin_lines_with_paths_hosts_or_errors_are_not_shown_to_members():
    en = translator("en")
    for line in (
        "inventory written: /srv/ruche-workspace/inventories/production",
        "  changed on lab-1",
        "  FAILED on web-1: Start unit: Unable to start service amap-cloud.service: password=...",
        "  UNREACHABLE: web-2",
    ):
        assert members_progress(line, en) == "in progress"
