"""`ruche catalog check --skip`: which steps a quicker check may leave out."""

from __future__ import annotations

import pytest

from orchestrator.actions.catalog_check import planned_steps, skipped_steps
from orchestrator.catalog import load_catalog
from orchestrator.errors import InvalidInput
from orchestrator.workspace import BUNDLED_CATALOG_DIR

pytestmark = pytest.mark.unit


def test_catalog_check_skips_only_steps_that_neither_make_nor_need_the_data():
    service = load_catalog(BUNDLED_CATALOG_DIR).get("radicale")
    upgrades = [name for name in planned_steps(service, service.version) if name.startswith("upgrade-from-")]
    assert skipped_steps(service, service.version, ("verify", "restore-into")) == ["restore-into", "verify"]
    assert skipped_steps(service, service.version, ("upgrades",)) == upgrades
    for essential in ("create", "data", "backup", "restore", "delete"):
        with pytest.raises(InvalidInput):
            skipped_steps(service, service.version, (essential,))
