"""The YAML text of inventories: ``dump_yaml`` (PyYAML with ruche's settings and tags), and a writer of
block-style YAML for the inventory's plain values, byte-identical to it (``mapping_lines``).

PyYAML's representer builds a node for every value before libyaml writes it: at 30,000 instances it
is most of an inventory export that renders everything (40 of 60 seconds). This writer walks the
values once and writes them the way PyYAML does with ruche's settings (sorted keys, block style,
indentation 2, indentless sequences in mappings, no anchors, ``!unsafe`` single-quoted, ``!vault |``).
It only writes what it is sure of: a one-line scalar whose style it does not predict is asked of
PyYAML once (and remembered); an entry holding a value it cannot place (several lines, very long, a
key not in identifier form, a type it does not know) is written by PyYAML at the same column; what
even that cannot give raises ``Unsure``, and the caller writes the whole with PyYAML.
tests/unit/test_yaml_text.py holds it to PyYAML's output byte for byte.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import yaml

# a plain scalar that needs no quoting in block context when it resolves to a string (see
# yaml.emitter.Emitter.analyze_scalar: no indicator first, no ": " or " #", no space at the ends)
_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./@+=-]*(?::[A-Za-z0-9_./@+=-]+)*\Z")
# printable ASCII on one line: single-quoted as it is (quotes doubled)
_SINGLE = re.compile(r"[\x20-\x7e]*\Z")
_VAULT_LINE = re.compile(r"[0-9A-Za-z$;._-]+\Z")
_RESOLVER = yaml.resolver.Resolver()
_LONGEST = 200  # longer strings may be folded at the line width: left to PyYAML
_STR = "tag:yaml.org,2002:str"
_BREAKS = "\r\x85\u2028\u2029"  # line breaks to YAML besides "\n"


class Unsafe(str):
    """A string Ansible must never template (written as ``!unsafe``)."""


class Vaulted(str):
    """An ansible-vault ciphertext (written as ``!vault |``)."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml when available: ~10x faster
    def ignore_aliases(self, data) -> bool:
        # no anchors: each value is written where it is (an instance's text never depends on another's)
        return True


def _represent_unsafe(dumper: yaml.SafeDumper, value: Unsafe):
    if not value:
        # ansible-core 2.19 reads `!unsafe ''` as None; an empty string holds nothing to template
        return dumper.represent_str("")
    return dumper.represent_scalar("!unsafe", str(value), style="'")


def _represent_vaulted(dumper: yaml.SafeDumper, value: Vaulted):
    return dumper.represent_scalar("!vault", str(value).strip() + "\n", style="|")


_Dumper.add_representer(Unsafe, _represent_unsafe)
_Dumper.add_representer(Vaulted, _represent_vaulted)


def dump_yaml(data) -> str:
    """Give YAML text of ``data`` with sorted keys, block style, ``!unsafe`` for Unsafe strings."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1000)


def text_lines(text: str) -> list[str]:
    """The lines of ``text`` with their "\\n", cut at "\\n" only (str.splitlines also cuts at the
    separators YAML keeps inside a quoted scalar: \\r, \\x85, \\u2028...)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


class Unsure(Exception):
    """A value this writer does not write with certainty: write it with PyYAML."""


def mapping_lines(mapping: dict, column: int, lead: str | None = None) -> str:
    """The text of a non-empty ``mapping`` as PyYAML writes it with its keys at ``column`` (the first line
    starting with ``lead`` instead of spaces: "- " for an item of a sequence). Raises Unsure."""
    out: list[str] = []
    _mapping(mapping, column, " " * column if lead is None else lead, out)
    return "".join(out)


def _mapping(mapping: dict, column: int, lead: str, out: list[str]) -> None:
    pad = " " * column
    for n, key in enumerate(sorted(mapping)):
        start = lead if n == 0 else pad
        mark = len(out)
        try:
            _entry(key, mapping[key], column, start, out)
        except Unsure:
            del out[mark:]
            out.append(_shifted(key, mapping[key], column, start))


def _shifted(key, value, column: int, start: str) -> str:
    """PyYAML's text of one entry whose key is at ``column``, the first line starting with ``start``.
    PyYAML writes an entry the same wherever its key is at that column (a mapping's indentation is its
    keys' column, in a mapping or in an item of a sequence): it is written nested in single-key
    mappings that bring it there. Remembered: such entries are mostly the catalogue's (scripts)."""
    frozen = _frozen((key, value))
    remembered = (frozen, column) if frozen is not None else None
    text = _SHIFTED.get(remembered) if remembered is not None else None
    if text is None:
        text = _nested_text(key, value, column)
        if remembered is not None and len(_SHIFTED) < 4096:
            _SHIFTED[remembered] = text
    return start + text


_SHIFTED: dict[tuple, str] = {}


def _nested_text(key, value, column: int) -> str:
    wrapped = {key: value}
    for _level in range(column // 2):
        wrapped = {"k": wrapped}
    lines = text_lines(dump_yaml(wrapped))[column // 2 :]
    if not lines or not lines[0].startswith(" " * column):
        raise Unsure("an entry PyYAML writes elsewhere")
    return lines[0][column:] + "".join(lines[1:])


def _frozen(value):
    """A hashable form of a plain value that keeps its types apart (Unsafe from str, True from 1)."""
    if isinstance(value, dict):
        items = [(_frozen(k), _frozen(v)) for k, v in value.items()]
        return None if any(a is None or b is None for a, b in items) else ("d", tuple(sorted(items, key=repr)))
    if isinstance(value, (list, tuple)):
        items = [_frozen(v) for v in value]
        return None if any(i is None for i in items) else ("l", tuple(items))
    if value is None or type(value) in (str, int, float, bool, Unsafe, Vaulted):
        return (type(value).__name__, value)
    return None


def _entry(key, value, column: int, start: str, out: list[str]) -> None:
    pad = " " * column
    written = _key(key)
    if isinstance(value, dict) and value:
        out.append(f"{start}{written}:\n")
        _mapping(value, column + 2, " " * (column + 2), out)
    elif isinstance(value, list) and value:
        out.append(f"{start}{written}:\n")
        _sequence(value, column, pad, out)  # indentless, as PyYAML writes a sequence in a mapping
    elif isinstance(value, Vaulted):
        out.append(f"{start}{written}: !vault |\n")
        lines = str(value).strip().split("\n")
        if not all(_VAULT_LINE.match(line) for line in lines):
            raise Unsure("a vault text of an unexpected shape")
        out.extend(f"{pad}  {line}\n" for line in lines)
    else:
        out.append(f"{start}{written}: {_scalar(value)}\n")


def _sequence(items: list, column: int, lead: str, out: list[str]) -> None:
    pad = " " * column
    for n, item in enumerate(items):
        start = lead if n == 0 else pad
        if isinstance(item, dict) and item:
            _mapping(item, column + 2, start + "- ", out)
        elif isinstance(item, list) and item:
            _sequence(item, column + 2, start + "- ", out)
        elif isinstance(item, Vaulted):
            raise Unsure("a vault text in a sequence")
        else:
            out.append(f"{start}- {_scalar(item)}\n")


def _key(key) -> str:
    if not isinstance(key, str) or not key or len(key) > 100:
        raise Unsure(f"key {key!r}")
    if isinstance(key, Unsafe):
        if not _SINGLE.match(key):
            raise Unsure(f"key {key!r}")
        return "!unsafe '" + key.replace("'", "''") + "'"
    if _PLAIN.match(key) and not key.startswith(("---", "...")) and _resolves_to_str(key):
        return key
    raise Unsure(f"key {key!r}")


def _scalar(value) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        return _float(value)
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, list) and not value:
        return "[]"
    if isinstance(value, Unsafe):
        if not value:
            return "''"  # written as a plain empty string (see _represent_unsafe)
        if _SINGLE.match(value) and len(value) <= _LONGEST:
            return "!unsafe '" + value.replace("'", "''") + "'"
        return _asked(value, True)
    if type(value) is str:
        if _PLAIN.match(value) and not value.startswith(("---", "...")):
            return value if _resolves_to_str(value) else f"'{value}'"
        return _asked(value, False)
    raise Unsure(f"a value of type {type(value).__name__}")


def _float(value: float) -> str:
    # yaml.representer.SafeRepresenter.represent_float
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text


@lru_cache(maxsize=4096)
def _resolves_to_str(text: str) -> bool:
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR


@lru_cache(maxsize=65536)
def _asked_cached(text: str, unsafe: bool) -> str | None:
    written = dump_yaml({"k": Unsafe(text) if unsafe else text})
    if written.count("\n") != 1 or not written.startswith("k: ") or any(c in written for c in _BREAKS):
        return None  # several lines: their indentation depends on where the scalar is
    return written[3:-1]


def _asked(text: str, unsafe: bool) -> str:
    """PyYAML's writing of a one-line scalar (the same in any block position), remembered."""
    if len(text) > _LONGEST:
        raise Unsure("a long string")
    written = _asked_cached(str(text), unsafe)
    if written is None:
        raise Unsure("a string of several lines")
    return written
