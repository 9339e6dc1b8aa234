"""Changing a TOML file in place with tomlkit: only what changes is rewritten, the rest stays as its author wrote it.

``changed_text(text, before, after)`` takes the file's text and two plain dictionaries, the values the file gives
now and the values it should give; keys whose values are equal are not touched (comments, order, blank lines,
quoting, keys left at their defaults all stay), a changed value is replaced where it stands (its end-of-line
comment kept), a table is changed key by key, a new key goes after the last key of its table (before the comments
that lead to the next table), a new table at the end of its parent, and a removed key or table goes with the
comment lines right above it (the comment lines at its end lead to what follows and stay).

It works on tomlkit's document bodies (their entries, the Null left by a removal, ``Container._insert_at``);
``Workspace.edit_config`` reads the text back and writes it only if it gives exactly the settings wanted.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Comment, InlineTable, Item, Null, Table, Whitespace
from tomlkit.toml_document import TOMLDocument


def changed_text(text: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """Give ``text`` (a TOML document whose values are ``before``) changed so that its values become ``after``.

    ``before`` may hold values the file leaves out (defaults): those are written only when they change.
    """
    document = tomlkit.parse(text)
    _edit(document, before, after)
    changed = document.as_string()
    if text.endswith("\n") and not text.endswith("\n\n"):
        changed = changed.rstrip("\n") + "\n"  # a table removed at the end leaves no blank line behind
    return changed


def _edit(mapping: MutableMapping, before: Mapping[str, Any], after: Mapping[str, Any], inline: bool = False) -> None:
    """Change ``mapping`` from ``before`` to ``after``; ``inline``: it is written on ``key = value`` lines (an inline
    table, or a table of dotted keys), where a new table must be written { ... } as well."""
    for key in [key for key in before if key not in after]:
        if key in mapping:
            _remove(mapping, key)
    for key, value in after.items():
        old = before.get(key)
        if key in before and old == value:
            continue
        if isinstance(value, dict) and isinstance(old, dict):
            current = mapping[key] if key in mapping else None
            if isinstance(current, MutableMapping):
                _edit(current, old, value, inline or isinstance(current, InlineTable) or _is_dotted(mapping, key))
                continue
            if current is None:  # a table the file leaves out (its defaults): it gets only what changes
                table = tomlkit.inline_table() if inline else tomlkit.table()
                _edit(table, old, value, inline)
                mapping[key] = table
                continue
        if inline:
            value = _inline(value)
        if key in mapping and _is_table(mapping[key]) != _is_table(value):
            _remove(mapping, key)  # a value becoming a [table], or the other way round, moves where that is written
        if key in mapping:
            mapping[key] = value  # tomlkit keeps the key's place and its end-of-line comment
        else:
            _add(mapping, key, value)


def _is_table(value: Any) -> bool:
    """Whether ``value`` is written as a [table] (or [[array of tables]]) of its own, not on a ``key = value`` line."""
    if isinstance(value, Item):
        return isinstance(value, (Table, AoT))
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, dict) and not isinstance(v, Item) for v in value)
    return isinstance(value, dict)


def _is_dotted(mapping: MutableMapping, key: str) -> bool:
    """Whether ``key`` of ``mapping`` is written as dotted keys (``key.name = value``) rather than a [table]."""
    container = _container(mapping)
    return container is not None and any(k == key and k.is_dotted() for k, _ in container.body if k is not None)


def _inline(value: Any) -> Any:
    """``value`` with its dictionaries as inline tables, at any depth."""
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        for key, item in value.items():
            table[key] = _inline(item)
        return table
    if isinstance(value, list):
        return [_inline(item) for item in value]
    return value


def _container(mapping: MutableMapping) -> Container | None:
    """The body of a document or of a [table] (None for inline tables and tables split across the file)."""
    if isinstance(mapping, Container):
        return mapping
    if isinstance(mapping, Table):
        return mapping.value
    return None


def _is_plain(key, item) -> bool:
    """Whether a body entry is a ``key = value`` line (dotted keys included), not a header, comment or blank."""
    if key is None or isinstance(item, AoT):
        return False
    return not isinstance(item, Table) or key.is_dotted()


def _add(mapping: MutableMapping, key: str, value: Any) -> None:
    """Add ``key``: a value right after the table's last ``key = value`` line, a table at the end."""
    container = _container(mapping)
    value = tomlkit.item(value)
    if container is None or isinstance(value, AoT):
        mapping[key] = value
        return
    if isinstance(value, Table):  # after the last table, before the comments that ended it (they end the new one)
        closing = _take_closing(container)
        mapping[key] = value
        _last_body(value).body.extend((None, item) for item in closing)
        return
    body = container.body
    last = max((index for index, (k, item) in enumerate(body) if _is_plain(k, item)), default=None)
    if last is None or last == len(body) - 1:
        mapping[key] = value
        return
    container._insert_at(last + 1, key, value)  # tomlkit's own insertion (no public one places a key)
    if isinstance(mapping, Table):
        dict.__setitem__(mapping, key, value)  # a Table mirrors its body as a dict


def _remove(mapping: MutableMapping, key: str) -> None:
    """Remove ``key`` with the comment lines right above it; a table's closing comments stay where it was."""
    container = _container(mapping)
    indexes = [index for index, (k, _) in enumerate(container.body) if k == key] if container is not None else []
    if len(indexes) != 1:  # inline table, or a table defined in several places: nothing around it is moved
        del mapping[key]
        return
    index = indexes[0]
    body_key, item = container.body[index]
    closing = _closing_trivia(item) if isinstance(item, Table) and not _is_plain(body_key, item) else []
    above = _comments_above(container, index)
    del mapping[key]
    for owner, position in above:
        owner.body[position] = (None, Null())
    if closing:
        if _ends_blank(container, index):
            while closing and isinstance(closing[0], Whitespace):
                closing.pop(0)
        container.body[index] = (None, Whitespace("".join(part.as_string() for part in closing)))


def _last_body(table: Table) -> Container:
    """The container whose end is the end of ``table`` as written: its last sub-table's, if it ends with one."""
    body = table.value
    while True:
        entries = [(k, item) for k, item in body.body if not isinstance(item, Null)]
        if entries and isinstance(entries[-1][1], Table) and not _is_plain(*entries[-1]):
            body = entries[-1][1].value
        else:
            return body


def _take_closing(container: Container) -> list:
    """Take off the comments and blank lines that end ``container``'s last table (none if it ends otherwise)."""
    entries = [(k, item) for k, item in container.body if not isinstance(item, Null)]
    if not entries or not isinstance(entries[-1][1], Table) or _is_plain(*entries[-1]):
        return []
    closing = _closing_trivia(entries[-1][1])
    body = _last_body(entries[-1][1]).body
    while body and isinstance(body[-1][1], (Null, Comment, Whitespace)):
        body.pop()  # unkeyed entries at the end: tomlkit's index of the keys is unaffected
    return closing


def _closing_trivia(table: Table) -> list:
    """The comments and blank lines at the end of ``table``, which lead to what follows it."""
    trailing = []
    for _, item in reversed(_last_body(table).body):
        if isinstance(item, Null):
            continue
        if not isinstance(item, (Comment, Whitespace)):
            break
        trailing.insert(0, item)
    return trailing


def _before(container: Container, index: int) -> tuple[Container, int, bool]:
    """Where the text written right before entry ``index`` ends: a container and a position in its body (the end
    of the previous table, when one comes before), and whether anything at all comes before it in ``container``."""
    previous = [i for i in range(index) if not isinstance(container.body[i][1], Null)]
    if previous:
        key, item = container.body[previous[-1]]
        if isinstance(item, Table) and not _is_plain(key, item):
            owner = _last_body(item)
            return owner, len(owner.body), True
    return container, index, bool(previous)


def _comments_above(container: Container, index: int) -> list[tuple[Container, int]]:
    """Where the comment lines right above entry ``index`` are (no blank line between them and it)."""
    owner, position, _ = _before(container, index)
    found = []
    for i in range(position - 1, -1, -1):
        item = owner.body[i][1]
        if isinstance(item, Null):
            continue
        if not isinstance(item, Comment):
            break
        found.append((owner, i))
    return found


def _ends_blank(container: Container, index: int) -> bool:
    """Whether what is written before entry ``index`` ends with a blank line, or is nothing (the file's start)."""
    owner, position, anything = _before(container, index)
    for i in range(position - 1, -1, -1):
        item = owner.body[i][1]
        if not isinstance(item, Null):
            return isinstance(item, Whitespace) and "\n" in item.as_string()
    return not anything and isinstance(container, TOMLDocument)
