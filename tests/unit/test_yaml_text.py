"""The fast writer of inventory YAML (orchestrator/yaml_text.py) writes exactly what PyYAML writes with
ruche's settings, for every bundled service's variables and for values chosen to trip it (strings that
resolve to other types, indicators, quotes, several lines, long lines, unicode, control characters)."""

from __future__ import annotations

import datetime
import random

import pytest

from orchestrator.deployment import instance_variables
from orchestrator.inventory import render_instance
from orchestrator.yaml_text import Unsafe, Unsure, Vaulted, dump_yaml, mapping_lines
from tests.helpers import CATALOG, instance_record

TRICKY = [
    "",
    " ",
    "a",
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "n",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "17",
    "-3",
    "0x1f",
    "0o17",
    "017",
    "1_000",
    "1.0",
    "1e3",
    "1.0e+3",
    ".5",
    ".inf",
    "-.Inf",
    ".NaN",
    "2024-01-01",
    "2024-01-01 10:00:00",
    "12:30",
    "1:2:3",
    "=",
    "<<",
    "a b",
    " lead",
    "trail ",
    "a: b",
    "a:b",
    "a:",
    ":a",
    "a #b",
    "a#b",
    "#x",
    "-",
    "-x",
    "- x",
    "--x",
    "---",
    "--- x",
    "...",
    "...x",
    "?",
    "? x",
    "?x",
    "@x",
    "a@b",
    "%x",
    "!x",
    "*x",
    "&x",
    "|x",
    ">x",
    "{x}",
    "[x]",
    "a,b",
    ",x",
    "'q'",
    "it's",
    '"dq"',
    "a\\b",
    "`x`",
    "é",
    "naïve café",
    "日本語",
    "tab\tx",
    "\x07bell",
    "\ufeffbom",
    "nbsp\u00a0x",
    "line\nbreak",
    "line\n\n  indented",
    "\nlead break",
    "trail break\n",
    "cr\rx",
    "sep\u2028x",
    "docker.io/library/nextcloud:34.0.2-apache",
    "10.0.0.0/8",
    "admin@example.org",
    "1 GB",
    "--value",
    "/cron.sh",
    "x" * 199,
    "x" * 201,
    ("word " * 60).strip(),
    ("word " * 250).strip(),
    "a" * 1200,
    "{{ lookup('pipe', 'id') }}",
]
VAULT = Vaulted("$ANSIBLE_VAULT;1.1;AES256\n" + "\n".join(["3061626364656667686970" * 3] * 5))


def as_item(value: dict) -> str:
    return dump_yaml({"k": [value]}).removeprefix("k:\n")


def tree(chance: random.Random, depth: int = 0):
    """A random plain value: mappings and sequences of the tricky scalars, Unsafe or not."""
    kind = chance.random()
    if depth < 4 and kind < 0.25:
        return {pick_key(chance): tree(chance, depth + 1) for _ in range(chance.randint(0, 4))}
    if depth < 4 and kind < 0.45:
        return [tree(chance, depth + 1) for _ in range(chance.randint(0, 4))]
    scalar = chance.choice(
        [*TRICKY, 0, 1, -7, 10**20, 0.25, 2.0, 1e20, 1e-7, float("inf"), float("nan"), True, False, None]
    )
    return Unsafe(scalar) if isinstance(scalar, str) and chance.random() < 0.5 else scalar


def pick_key(chance: random.Random) -> str:
    key = chance.choice(
        ["name", "a", "z_9", "port", "yes", "17", "", "with space", "é", "a: b", "x" * 120, *TRICKY[:30]]
    )
    return Unsafe(key) if chance.random() < 0.3 else key


@pytest.mark.parametrize("service", sorted(CATALOG.services))
def test_every_bundled_service_is_written_as_pyyaml_writes_it(service):
    secrets = {"admin_password": VAULT, "db_password": VAULT}
    record = instance_record("amap", "app", secrets, admin_email="a@amap.example.org", title="{{ x }}: it's\nnew line")
    variables = instance_variables(record, CATALOG.get(service))
    listed = {k: v for k, v in variables.items() if k != "secrets"}
    assert mapping_lines(listed, 2, "- ") == as_item(listed)
    assert mapping_lines({variables["identifier"]: variables["secrets"]}, 2) == dump_yaml(
        {"s": {variables["identifier"]: variables["secrets"]}}
    ).removeprefix("s:\n")
    rendered = render_instance(variables, {"ruche_base_domain": "example.org"})
    assert rendered.item == as_item({**listed, "fingerprint": rendered.item.split("fingerprint: ")[1].split("\n")[0]})


def test_random_values_are_written_as_pyyaml_writes_them_or_left_to_it():
    chance = random.Random(20261127)
    written = unsure = 0
    for _ in range(3000):
        value = {pick_key(chance): tree(chance) for _ in range(chance.randint(1, 5))}
        try:
            text = mapping_lines(value, 2, "- ")
        except Unsure:
            unsure += 1
            continue
        written += 1
        assert text == as_item(value), value
        assert mapping_lines(value, 0) == dump_yaml(value)
    assert written > 2000, (written, unsure)  # it is not unsure of everything


def test_each_tricky_string_alone():
    for text in TRICKY:
        for value in (text, Unsafe(text)):
            for entry in ({"k": value}, {"k": [value]}, {"k": [[value]]}, {"k": {"n": value}}, {value or "e": 1}):
                try:
                    assert mapping_lines(entry, 4, "  - ") == dump_yaml({"a": {"b": [entry]}}).split("\n", 2)[2], entry
                except Unsure:
                    pass


def test_a_type_it_does_not_know_is_left_to_pyyaml():
    value = {"name": "x", "when": datetime.date(2026, 11, 27), "nested": {"at": datetime.datetime(2026, 11, 27, 10, 0)}}
    assert mapping_lines(value, 2, "- ") == as_item(value)
