import pytest

from orchestrator.errors import InvalidInput
from orchestrator.state.servers import validate_server_spec
from orchestrator.units import format_mib, parse_size_mib


@pytest.mark.parametrize(
    "text, mebibytes", [("512M", 512), ("8G", 8192), ("8GiB", 8192), ("1.5T", 1572864), ("300", 300), ("2048k", 2)]
)
def test_sizes_parse(text, mebibytes):
    assert parse_size_mib(text) == mebibytes


@pytest.mark.parametrize("text", ["", "G", "-1G", "8X", "0.1K", "1e3M"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError):
        parse_size_mib(text)


def test_sizes_format_back():
    assert [format_mib(m) for m in (512, 8192, 1536, 1572864)] == ["512M", "8G", "1.5G", "1.5T"]


@pytest.mark.parametrize(
    "name", ["../etc", "a/b", "Capital", "with space", "semi;colon", "$(id)", "-dash", "", "x" * 64]
)
def test_hostile_server_names_are_refused_naming_the_field(name):
    with pytest.raises(InvalidInput, match="At 'name'"):
        validate_server_spec(name=name, address="192.0.2.1")


@pytest.mark.parametrize("address", ["x;rm -rf /", "$(id)", "a b", "host/../x", ""])
def test_hostile_addresses_are_refused(address):
    with pytest.raises(InvalidInput, match="At 'address'"):
        validate_server_spec(name="s1", address=address)


def test_labels_are_checked():
    with pytest.raises(InvalidInput, match="label value"):
        validate_server_spec(name="s1", address="192.0.2.1", labels={"region": "lyon; rm"})
    assert validate_server_spec(name="s1", address="2001:db8::1", labels={"region": "lyon"}).labels == {
        "region": "lyon"
    }
