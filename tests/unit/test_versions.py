"""Versions in the catalogue: upgrade paths, refusals, entries in the single-version form refused with the fix."""

from pathlib import Path

import pytest
import yaml

from orchestrator.catalog import load_service
from orchestrator.errors import ConfigError, InvalidInput
from orchestrator.workspace import BUNDLED_CATALOG_DIR

RADICALE = yaml.safe_load((BUNDLED_CATALOG_DIR / "radicale.yaml").read_text())


def entry(tmp_path: Path, versions: list[dict], **more) -> object:
    document = {**RADICALE, "versions": versions, **more}
    path = tmp_path / "radicale.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_service(path)


def image(tag: str) -> str:
    return f"lab.ruche.invalid/radicale:{tag}"


def majors(tmp_path: Path):
    """32.0.1 -> 33.0.1 -> 33.0.2 -> 34.0.1, one major at a time, patches freely."""
    return entry(tmp_path, [
        {"version": "32.0.1", "image": image("a")},
        {"version": "33.0.1", "image": image("b"), "upgrade_from": ["32.*", "33.*"]},
        {"version": "33.0.2", "image": image("c"), "upgrade_from": ["32.*", "33.*"]},
        {"version": "34.0.1", "image": image("d"), "upgrade_from": ["33.*", "34.*"]},
    ])  # fmt: skip


def test_the_path_takes_one_major_at_a_time_and_skips_patches(tmp_path):
    service = majors(tmp_path)
    assert service.version == "34.0.1"  # the last listed, without default_version
    assert [v.version for v in service.upgrade_path("32.0.1")] == ["33.0.2", "34.0.1"]
    assert [v.version for v in service.upgrade_path("32.0.1", "33.0.1")] == ["33.0.1"]
    assert [v.version for v in service.upgrade_path("33.0.1")] == ["34.0.1"]  # 34 accepts any 33
    assert service.upgrade_path("34.0.1") == []


def test_a_downgrade_an_unknown_version_and_a_skipped_major_are_refused(tmp_path):
    service = majors(tmp_path)
    with pytest.raises(InvalidInput, match="older than"):
        service.upgrade_path("34.0.1", "33.0.2")
    with pytest.raises(InvalidInput, match="target version 35.0.0 is not in the catalogue"):
        service.upgrade_path("33.0.1", "35.0.0")
    with pytest.raises(InvalidInput, match="instance's version 31.0.0 is not in the catalogue"):
        service.upgrade_path("31.0.0")
    skipping = entry(tmp_path, [
        {"version": "32.0.1", "image": image("a")},
        {"version": "34.0.1", "image": image("d"), "upgrade_from": ["33.*", "34.*"]},
    ])  # fmt: skip
    with pytest.raises(InvalidInput, match="34.0.1 accepts upgrades from 33.\\*, 34.\\* only"):
        skipping.upgrade_path("32.0.1")


def test_without_upgrade_from_only_the_previous_version_steps_up(tmp_path):
    service = entry(tmp_path, [{"version": "1.0", "image": image("a")}, {"version": "2.0", "image": image("b")},
                               {"version": "3.0", "image": image("c")}])  # fmt: skip
    assert [v.version for v in service.upgrade_path("1.0")] == ["2.0", "3.0"]


def test_versions_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="oldest version cannot be upgraded to"):
        entry(tmp_path, [{"version": "1.0", "image": image("a"), "upgrade_from": ["0.*"]}])
    with pytest.raises(ConfigError, match="database_image is required exactly when"):
        entry(
            tmp_path, [{"version": "1.0", "image": image("a"), "database_image": image("pg"), "database_major": "17"}]
        )


def test_an_entry_in_the_single_version_form_is_refused_with_the_fix(tmp_path):
    old = {"id": "radicale", "version": "3+31.0.9", "image": {"reference": "docker.io/library/nextcloud:31.0.9-apache"}}
    path = tmp_path / "radicale.yaml"
    path.write_text(yaml.safe_dump(old))
    with pytest.raises(ConfigError) as raised:
        load_service(path)
    assert "single-version form" in raised.value.message and str(path) in raised.value.message
    assert "versions: [{version: X, image: REFERENCE" in raised.value.hint


def test_bundled_lab_entries_have_the_version_pairs_upgrades_are_tested_with():
    from orchestrator.catalog import load_catalog

    catalog = load_catalog(BUNDLED_CATALOG_DIR)
    wiki = catalog.get("mediawiki-debian")
    (step,) = wiki.upgrade_path("1.39.17")
    assert (wiki.release("1.39.17").database_major, step.database_major) == ("15", "17")
    assert [v.version for v in catalog.get("radicale").upgrade_path("3.1.8")] == ["3.5.3"]
    nextcloud = catalog.get("nextcloud")
    assert [v.version for v in nextcloud.upgrade_path("33.0.7")] == [nextcloud.version]


def test_audit_warns_ninety_days_before_a_versions_end_of_support_and_flags_it_after(tmp_path):
    from datetime import date
    from types import SimpleNamespace

    from orchestrator.actions.audit import support_ending, versions_supported
    from orchestrator.catalog import SUPPORT_WARNING_DAYS, Catalog

    service = entry(tmp_path, [
        {"version": "3.1.8", "image": image("a"), "end_of_support": "2027-03-01"},
        {"version": "3.5.3", "image": image("b"), "upgrade_from": ["3.*"]},
    ])  # fmt: skip
    catalog = Catalog(services={"radicale": service})
    old = SimpleNamespace(service_id="radicale", service_version="3.1.8", address="amap/agendas")
    new = SimpleNamespace(service_id="radicale", service_version="3.5.3", address="amap/notes")
    assert SUPPORT_WARNING_DAYS == 90
    assert support_ending(catalog, [old, new], today=date(2026, 11, 30)) == []  # 91 days ahead
    (warning,) = support_ending(catalog, [old, new], today=date(2026, 12, 1))
    assert (warning.rule, warning.object) == ("versions.support-ending", "amap/agendas")
    assert "2027-03-01 (in 90 days)" in warning.evidence and "ruche instance upgrade amap/agendas" in warning.fix
    assert "3.5.3" in warning.fix
    assert versions_supported(catalog, [old], today=date(2027, 3, 1)) == []
    assert support_ending(catalog, [old], today=date(2027, 3, 2)) == []  # past: a finding, no longer a warning
    (finding,) = versions_supported(catalog, [old, new], today=date(2027, 3, 2))
    assert (finding.rule, finding.object) == ("versions.supported", "amap/agendas")
