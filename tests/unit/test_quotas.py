"""Offers' arithmetic and per-service limits."""

import pytest

from orchestrator.catalog import load_catalog, load_service
from orchestrator.config import LocalizedText, Offer
from orchestrator.deployment import instance_variables
from orchestrator.errors import ConfigError
from orchestrator.quotas import Allocation, excesses, service_limits
from orchestrator.workspace import BUNDLED_CATALOG_DIR
from tests.helpers import instance_record

CATALOG = load_catalog(BUNDLED_CATALOG_DIR)


def offer(**services) -> Offer:
    return Offer(
        label=LocalizedText(fr="Petite", en="Small"), max_instances=2, memory_mb=512, disk_gb=5, services=services
    )


def test_excesses_name_each_limit_passed_and_by_how_much():
    found = excesses(offer(), Allocation(instances=2, memory_mb=400, disk_gb=4), memory_mb=200, disk_gb=1)
    assert [(e.limit, e.requested, e.allowed, e.over) for e in found] == [
        ("instances", 3, 2, 1),
        ("memory", 600, 512, 88),
    ]
    assert found[1].describe() == "memory 600 MiB where the offer allows 512 MiB (88 MiB over)"
    assert excesses(offer(), Allocation(1, 100, 1), 100, 4) == []  # exactly at the limit is allowed
    assert excesses(None, Allocation(99, 99999, 9999), 1, 1) == []  # no offer, no limit
    assert [e.limit for e in excesses(offer(), Allocation(3, 100, 1), instances=0)] == ["instances"]


def test_service_limits_take_the_offer_then_the_entry_default():
    nextcloud = CATALOG.get("nextcloud")
    assert service_limits(nextcloud, None, None) == {"user_quota": "5 GB"}
    assert service_limits(nextcloud, offer(nextcloud={"user_quota": "2 GB"}), "petite") == {"user_quota": "2 GB"}
    with pytest.raises(ConfigError, match=r"At 'offers\.petite\.services\.nextcloud\.quota'.*its limits: user_quota"):
        service_limits(nextcloud, offer(nextcloud={"quota": "2 GB"}), "petite")
    with pytest.raises(ConfigError, match="not a plain value"):
        service_limits(nextcloud, offer(nextcloud={"user_quota": "{{ lookup('pipe','id') }}"}), "petite")


def test_limits_reach_the_setup_commands_and_the_environment_as_literal_values():
    variables = instance_variables(
        instance_record(limits={"user_quota": "2 GB"}, admin_email="a@b.example"), CATALOG.get("nextcloud")
    )
    assert variables["app"]["setup"][0] == ["php", "occ", "config:app:set", "files", "default_quota", "--value", "2 GB"]
    assert variables["app"]["setup"][2] == ["php", "occ", "user:setting", "admin", "settings", "email", "a@b.example"]
    assert variables["app"]["exec_user"] == "www-data"
    mattermost = instance_variables(instance_record(), CATALOG.get("mattermost"))
    (entry,) = [e for e in mattermost["app"]["environment"] if e["name"] == "MM_TEAMSETTINGS_MAXUSERSPERTEAM"]
    assert entry["parts"] == [{"text": "50"}]


def test_setup_commands_may_only_use_the_entrys_own_limits_and_parameters(tmp_path):
    text = (BUNDLED_CATALOG_DIR / "nextcloud.yaml").read_text()
    for bad in ("${secret.admin_password}", "${db.password}", "${param.other}", "${limit.other}", "${limit.user_quota"):
        path = tmp_path / "nextcloud.yaml"
        path.write_text(text.replace('"${limit.user_quota}"', f'"{bad}"'))
        with pytest.raises(ConfigError, match=r"setup\[0\]: only \$\{limit\.NAME\} and \$\{param\.NAME\}"):
            load_service(path)
