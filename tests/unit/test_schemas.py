"""The schemas printed by `ruche schema` validate what ruche itself accepts, and docs/reference/ is what they write."""

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrator import schemas
from orchestrator.config import WorkspaceConfig, dump_config
from orchestrator.workspace import BUNDLED_CATALOG_DIR

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"


@pytest.mark.parametrize("kind", sorted(schemas.KINDS))
def test_the_reference_page_is_what_the_models_write(kind):
    page = REFERENCE / schemas.KINDS[kind][2]
    assert page.read_text() == schemas.markdown(kind), (
        f"{page} is stale: run `ruche schema {kind} --markdown > docs/reference/{page.name}`"
    )


def test_every_bundled_entry_validates_against_the_catalog_schema():
    validator = jsonschema.Draft202012Validator(schemas.json_schema("catalog"))
    for path in sorted(BUNDLED_CATALOG_DIR.glob("*.yaml")):
        document = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))  # dates as editors see them
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == [], (path.name, errors[:3])
    broken = yaml.safe_load((BUNDLED_CATALOG_DIR / "radicale.yaml").read_text()) | {"unknown_field": 1}
    assert not validator.is_valid(broken)  # extra="forbid" is in the schema too


def test_a_written_ruche_toml_validates_against_the_config_schema():
    config = WorkspaceConfig(collective="Test", base_domain="test.example.org")
    document = tomllib.loads(dump_config(config))
    jsonschema.Draft202012Validator(schemas.json_schema("config")).validate(document)
