"""The ChatonsInfos files' text (reports/chatonsinfos.py) read back by a parser of java.util.Properties.load's
rules (https://docs.oracle.com/en/java/javase/21/docs/api/java.base/java/util/Properties.html#load(java.io.Reader)):
every key and value comes back as it went in, whatever characters it holds."""

from __future__ import annotations

import pytest

from orchestrator.catalog import Software
from orchestrator.reports.chatonsinfos import escape, render


def parse_properties(text: str) -> dict[str, str]:
    """java.util.Properties.load's reading of ``text``: logical lines (a line ending in an odd number of
    backslashes goes on, the next one's leading blanks skipped), comments (# or ! first), the key up to the first
    unescaped '=', ':' or blank, the separator's blanks skipped, escapes (\\t \\n \\f \\r \\uXXXX, any other
    character as itself) resolved."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    logical: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index].lstrip(" \t\f")
        index += 1
        if not line or line[0] in "#!":
            continue
        while (len(line) - len(line.rstrip("\\"))) % 2 == 1 and index < len(lines):
            line = line[:-1] + lines[index].lstrip(" \t\f")
            index += 1
        logical.append(line)
    result = {}
    for line in logical:
        position, escaped = 0, False
        while position < len(line):
            char = line[position]
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char in "=: \t\f":
                break
            position += 1
        key = line[:position]
        rest = line[position:].lstrip(" \t\f")
        if rest[:1] in ("=", ":") and position < len(line) and line[position] in " \t\f":
            rest = rest[1:].lstrip(" \t\f")
        elif position < len(line) and line[position] in "=:":
            rest = line[position + 1 :].lstrip(" \t\f")
        result[unescape(key)] = unescape(rest)
    return result


def unescape(text: str) -> str:
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 == len(text):
            out.append(char)
            index += 1
            continue
        following = text[index + 1]
        if following == "u":
            code = text[index + 2 : index + 6]
            assert len(code) == 4 and all(c in "0123456789abcdefABCDEF" for c in code), f"malformed \\u in {text!r}"
            out.append(chr(int(code, 16)))
            index += 6
            continue
        out.append({"t": "\t", "n": "\n", "f": "\f", "r": "\r"}.get(following, following))
        index += 2
    return "".join(out)


AWKWARD = [
    "plain",
    "https://www.example.org/a?b=c&d=e#f",
    "Le chaton de l'April : hébergement éthique !",
    "  leading and trailing blanks  ",
    "a\\b\\\\c\\",
    "two\nlines\r\nand\ttab\fform",
    "# not a comment",
    "! not a comment either",
    "= starts with a separator",
    ": colon first",
    "control \x01\x1f\x7f\x85 and separators \u2028\u2029",
    "emoji 🐈 and CJK 猫",
    "",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_a_value_comes_back_as_it_went_in(value):
    text = render([("service.description", value)])
    assert parse_properties(text) == {"service.description": value}
    assert all(line == "" or line.isprintable() for line in text.split("\n")), text


@pytest.mark.parametrize("key", ["subs.my service", "odd=key", "odd:key", "#key", "!key", "back\\slash", "é.clé"])
def test_a_key_comes_back_as_it_went_in(key):
    assert parse_properties(render([(key, "v")])) == {key: "v"}


def test_escaping_follows_the_properties_rules():
    assert escape("a b=c:d#e!f", key=True) == "a\\ b\\=c\\:d\\#e\\!f"
    assert escape(" x=y:z #!") == "\\ x=y:z #!"  # in a value only a leading blank needs it
    assert escape("l1\nl2\\") == "l1\\nl2\\\\"
    assert escape("\x00é") == "\\u0000é"  # written as UTF-8, control characters as \uXXXX


def test_a_file_has_its_sections_apart_and_parses_whole():
    pairs = [("file.class", "Service"), ("service.name", "Nextcloud"), ("software.license.name", "AGPL-3.0-or-later")]
    text = render(pairs)
    assert "# [Service]" in text and "# [Software]" in text and text.endswith("\n")
    assert parse_properties(text) == dict(pairs)


@pytest.mark.parametrize(
    "fields, wrong",
    [
        ({"website": "http://example.org/"}, "website"),
        ({"source": "https://github.com/x/y z"}, "source"),
        ({"license": "GPL 3"}, "license"),
        ({"license": "AGPL-3.0-or-later; rm"}, "license"),
        ({"name": ""}, "name"),
    ],
)
def test_a_catalogue_software_block_is_checked_at_load(fields, wrong):
    good = {"name": "Radicale", "website": "https://radicale.org/", "license": "GPL-3.0-or-later",
            "source": "https://github.com/Kozea/Radicale"}  # fmt: skip
    assert Software(**good).license_url == "https://spdx.org/licenses/GPL-3.0-or-later.html"
    assert Software(**{**good, "license": "MIT OR Apache-2.0"}).license_url == "https://spdx.org/licenses/MIT.html"
    with pytest.raises(ValueError, match=wrong):
        Software(**{**good, **fields})
    with pytest.raises(ValueError, match="extra"):
        Software(**good, version="1")


def test_every_bundled_entry_says_its_software():
    from pathlib import Path

    from orchestrator.catalog import load_catalog

    catalog = load_catalog(Path(__file__).parents[2] / "service_catalog")
    assert {sid for sid, s in catalog.services.items() if s.software is None} == set()
