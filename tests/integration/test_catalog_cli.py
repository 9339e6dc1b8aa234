import json

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
