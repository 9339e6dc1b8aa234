"""`ruche catalog check mediawiki-debian` on the lab: MediaWiki 1.43 from its first start to its deletion,
and a 1.39 wiki (PostgreSQL 15) upgraded to it (PostgreSQL 17) with its page read back. Its backups are taken
in read-only mode (a flag inside its volume), so the restore step shows a restored wiki leaving it."""

from __future__ import annotations

from tests.lab.test_catalog_check import run_check


def test_catalog_check_passes_for_mediawiki_from_139_to_143(lab, ruche):
    record = run_check(lab, ruche, "mediawiki-debian")
    assert record["version"] == "1.43.9" and "upgrade-from-1.39.17" in [s["name"] for s in record["steps"]]
