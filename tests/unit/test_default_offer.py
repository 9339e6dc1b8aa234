"""ruche.toml's default_offer: validated against [offers], written (or shown commented out) by dump_config, and
what a new association is registered on."""

import tomllib

import pytest

from orchestrator.config import LocalizedText, Offer, WorkspaceConfig, default_offers, dump_config, load_config
from orchestrator.errors import ConfigError, InvalidInput
from orchestrator.quotas import offer_for_new_association


def config(**fields) -> WorkspaceConfig:
    return WorkspaceConfig(collective="Test", base_domain="test.example.org", **fields)


def test_a_default_naming_no_offer_is_refused_with_the_file_and_the_path(tmp_path):
    path = tmp_path / "ruche.toml"
    path.write_text('collective = "X"\nbase_domain = "x.example.org"\ndefault_offer = "gold"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.message == (
        f"{path}: At 'default_offer': Value error, names no offer of [offers] (offers: none); "
        "add [offers.gold] or name one of them (got 'gold')"
    )
    path.write_text(dump_config(config(offers=default_offers())).replace("# default_offer =", "default_offer ="))
    assert load_config(path).default_offer == "decouverte"


def test_a_wrong_offer_table_is_reported_alone_not_as_a_missing_default(tmp_path):
    path = tmp_path / "ruche.toml"
    path.write_text('collective = "X"\nbase_domain = "x.example.org"\ndefault_offer = "small"\n[offers.small]\n'
                    'label = { fr = "P", en = "S" }\nmax_instances = -1\nmemory_mb = 1\ndisk_gb = 1\n')  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.message.splitlines() == [
        f"{path}: At 'offers.small.max_instances': Input should be greater than or equal to 0 (got -1)"
    ]


def test_a_set_default_is_written_and_reads_back_an_unset_one_is_shown_commented_out_with_the_smallest_offer():
    chosen = config(offers=default_offers(), default_offer="association")
    text = dump_config(chosen)
    assert 'default_offer = "association"\n' in text and "# default_offer" not in text
    assert WorkspaceConfig(**tomllib.loads(text)) == chosen
    unset = config(offers=default_offers())
    lines = dump_config(unset).splitlines()
    index = lines.index('# default_offer = "decouverte"')  # 512 MiB, the smallest
    assert lines[index - 1].startswith("# Uncomment") and "no limit at all" in " ".join(lines[index - 5 : index])
    assert lines[index + 1] == "" and lines[index + 3] == "[registry]"  # after the top-level keys
    assert WorkspaceConfig(**tomllib.loads("\n".join(lines))) == unset
    assert "default_offer" not in dump_config(config())  # no offer to name: nothing said


def test_a_new_association_gets_the_offer_given_else_the_default_else_none():
    small = Offer(label=LocalizedText(fr="P", en="S"), max_instances=1, memory_mb=1, disk_gb=1)
    with_default = config(offers={"small": small, "big": small}, default_offer="small")
    assert offer_for_new_association(with_default, None) == "small"
    assert offer_for_new_association(with_default, "big") == "big"
    assert offer_for_new_association(config(offers={"small": small}), None) is None
    with pytest.raises(InvalidInput, match="offer 'gold' does not exist"):
        offer_for_new_association(with_default, "gold")
