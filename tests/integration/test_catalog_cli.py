import json
import shutil
from pathlib import Path

from orchestrator.workspace import BUNDLED_CATALOG_DIR


def test_catalog_list_show_and_validate(workspace, ruche):
    w = ["--workspace", str(workspace)]
    listed = json.loads(ruche(*w, "catalog", "list", "--json").stdout)
    assert [s["id"] for s in listed] == sorted(s["id"] for s in listed)
    assert {"nextcloud", "mattermost", "limesurvey"} <= {s["id"] for s in listed}
    shown = json.loads(ruche(*w, "catalog", "show", "nextcloud", "--json").stdout)
    assert shown["health"]["path"] == "/status.php"
    assert ruche(*w, "catalog", "validate").exit_code == 0
    missing = ruche(*w, "catalog", "show", "wordpress")
    assert missing.exit_code == 4 and "known: limesurvey" in missing.stderr


def test_validate_reports_a_bad_file_with_exit_code_3(tmp_path, ruche):
    entry = tmp_path / "radicale.yaml"
    entry.write_text(
        (BUNDLED_CATALOG_DIR / "radicale.yaml").read_text().replace("expected_status: 200", "expected_status: 999")
    )
    result = ruche("catalog", "validate", str(entry))
    assert result.exit_code == 3
    assert f"{entry}: At 'health.expected_status'" in result.stderr


def test_catalog_list_says_an_entry_never_ran_and_check_refuses_what_it_cannot_run(workspace, ruche):
    w = ["--workspace", str(workspace)]
    listed = json.loads(ruche(*w, "catalog", "list", "--json").stdout)
    assert {s["id"]: s["last_check"] for s in listed}["radicale"] is None
    assert "never run (ruche catalog check)" in ruche(*w, "catalog", "list").stdout
    unknown = ruche(*w, "catalog", "check", "wordpress")
    assert unknown.exit_code == 4 and "known: limesurvey" in unknown.stderr
    no_version = ruche(*w, "catalog", "check", "radicale", "--version", "9.9")
    assert no_version.exit_code == 4 and "no version 9.9" in no_version.stderr
    no_server = ruche(*w, "catalog", "check", "radicale", "--server", "nowhere")
    assert no_server.exit_code == 4 and "nowhere" in no_server.stderr
    # nothing was recorded, no association was made
    assert json.loads(ruche(*w, "catalog", "show", "radicale", "--json").stdout)["checks"] == []
    assert json.loads(ruche(*w, "association", "list", "--json").stdout) == []


def test_an_entry_without_a_check_hook_is_refused_with_where_to_add_one(workspace, ruche):
    catalog = workspace / "catalog"
    shutil.copytree(BUNDLED_CATALOG_DIR, catalog)
    text = (catalog / "miniflux.yaml").read_text()
    (catalog / "miniflux.yaml").write_text(text[: text.index("\ncheck:")] + "\n")
    config = workspace / "ruche.toml"
    config.write_text('catalog_dir = "catalog"\n' + config.read_text())
    refused = ruche("--workspace", str(workspace), "catalog", "check", "miniflux")
    assert refused.exit_code == 2 and "miniflux has no `check` hook" in refused.stderr, refused.stderr


def test_a_check_that_fails_is_recorded_with_the_failing_step_the_commands_and_what_was_left(workspace, ruche):
    """A server nobody answers on (port 1 of this machine): the converge fails; the record names it, the commands to
    reproduce it (the check again with --keep, then the apply), and that the clean-up could not delete the instance."""
    w = ["--workspace", str(workspace)]
    added = ruche(
        *w, "server", "add", "web-1", "--no-connect", "--address", "127.0.0.1", "--ssh-port", "1", "--memory", "8G"
    )
    assert added.exit_code == 0, added.stderr
    checked = ruche(*w, "catalog", "check", "radicale", "--server", "web-1", "--json")
    assert checked.exit_code == 1, checked.stderr[-2000:]
    record = json.loads(checked.stdout)
    assert (record["status"], record["failed_step"], record["steps_passed"]) == ("failed", "converge", 1)
    assert [(s["name"], s["status"]) for s in record["steps"]] == [("create", "passed"), ("converge", "failed")]
    association = record["association"]
    assert record["reproduce"].splitlines()[0].startswith(f"ruche -w {workspace} catalog check radicale --version ")
    assert "--keep --server web-1" in record["reproduce"].splitlines()[0]
    assert f"apply --instance {association}/radicale --json" in record["reproduce"]
    assert record["cleanup_problems"], record  # the instance could not be deleted from a server nobody answers on
    log = Path(record["log_dir"]) / "02-converge.log"
    assert f"apply --instance {association}/radicale" in log.read_text()
    assert oct(Path(record["log_dir"]).parent.stat().st_mode & 0o777) == "0o700"
    listed = {s["id"]: s for s in json.loads(ruche(*w, "catalog", "list", "--json").stdout)}
    assert listed["radicale"]["last_check"]["status"] == "failed"
    assert "FAILED at converge" in ruche(*w, "catalog", "list").stdout
    events = json.loads(ruche(*w, "events", "--json").stdout)
    assert any(e["kind"] == "catalog.checked" and e["detail"]["status"] == "failed" for e in events)
