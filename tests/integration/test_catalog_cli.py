import json
import shutil

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
