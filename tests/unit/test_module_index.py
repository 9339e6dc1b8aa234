"""docs/architecture.md names every module of the package with what it is for, as the code says it."""

import pytest

from tests import module_index

pytestmark = pytest.mark.unit


def test_the_architecture_map_lists_every_module_as_its_docstring_says():
    assert module_index.current() == module_index.index(), (
        "docs/architecture.md's module index is stale: run `python -m tests.module_index --write`"
    )


def test_every_module_says_what_it_is_for():
    missing = [line for line in module_index.index().splitlines() if line.endswith("(no docstring)")]
    assert missing == []
