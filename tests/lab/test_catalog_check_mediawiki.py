"""`ruche catalog check mediawiki-debian` on the lab: MediaWiki 1.43 from its first start to its deletion. Its
backups are taken in read-only mode (a flag inside its volume), so the restore step shows a restored wiki leaving
it. Its upgrade step (a 1.39 wiki on PostgreSQL 15 upgraded to 1.43 on PostgreSQL 17) is skipped here: test_mediawiki.py
upgrades its own 1.39 wiki that way, its page read back, after the failure paths of that upgrade."""

from __future__ import annotations

from tests.lab.test_catalog_check import run_check


def test_catalog_check_passes_for_mediawiki_143(lab, ruche):
    record = run_check(lab, ruche, "mediawiki-debian", ("upgrades",))
    assert record["version"] == "1.43.9" and record["skipped"] == ["upgrade-from-1.39.17"]
