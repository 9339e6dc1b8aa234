"""`ruche catalog check mediawiki-debian` on the lab: MediaWiki 1.43 from its first start to its deletion. Its
backups are taken in read-only mode (a flag inside its volume), so the restore step shows a restored wiki leaving
it; its verify step compares files of two owners and PostgreSQL tables (the Miniflux and Radicale checks skip verify,
suspend and resume, shown here). Skipped here (suite time), shown elsewhere: its upgrade step (a 1.39 wiki on
PostgreSQL 15 upgraded to 1.43 on PostgreSQL 17), as test_mediawiki.py upgrades its own 1.39 wiki that way, its
page read back, after the failure paths of that upgrade; restore-into (a new MediaWiki from the snapshot, one of
the check's longest steps), which verify does too, and test_ownership.py restores into another instance on the other
server (files of two owners, the copy's carried-over admin secret opening them)."""

from __future__ import annotations

from tests.lab.test_catalog_check import run_check


def test_catalog_check_passes_for_mediawiki_143(lab, ruche):
    record = run_check(lab, ruche, "mediawiki-debian", ("restore-into", "upgrades"))
    assert record["version"] == "1.43.9" and record["skipped"] == ["restore-into", "upgrade-from-1.39.17"]
