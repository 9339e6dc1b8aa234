"""A portable dump of the state: every table as JSON, with the schema's Alembic revision.

The dump is read and loaded through SQLAlchemy only (tables reflected from the database, never from SQL text
of one engine), so a dump of a SQLite state loads into PostgreSQL and the other way round: it is how
`ruche backup control-plane` keeps the state and how its restore moves it, possibly to another engine.

Values are written by the kind of their column: times as ISO 8601 in UTC (SQLite gives them back naive, as UTC),
JSON columns as the text the database holds (so that SQL NULL and JSON ``null`` stay apart, and the text that
render keys digest is the same after a load), binary columns in base64, the rest as JSON's own values. Loading
needs an empty database: it is migrated to the dump's revision, emptied of what migrations seed (the audit
trail's head), filled in one transaction, its sequences moved past the loaded ids (PostgreSQL), then migrated
to this ruche's newest revision.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from orchestrator.errors import Conflict, InvalidInput, OperationFailed
from orchestrator.state.database import MIGRATIONS_DIR, head_revision, upgrade_schema

FORMAT = "ruche-state-dump"
FORMAT_VERSION = 1
VERSION_TABLE = "alembic_version"


def known_revisions() -> list[str]:
    """Every migration's revision, oldest first (files are named NNNN_what.py, revision "NNNN")."""
    return sorted(p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def _kind(column_type: sa.types.TypeEngine) -> str:
    """How a column's values are written in a dump."""
    if isinstance(column_type, sa.JSON):
        return "json"
    if isinstance(column_type, sa.DateTime):
        return "datetime"
    if isinstance(column_type, sa.Date):
        return "date"
    if isinstance(column_type, sa.LargeBinary):
        return "bytes"
    if isinstance(column_type, sa.Boolean):
        return "bool"
    return "plain"


def _reflected(connection: Connection) -> sa.MetaData:
    metadata = sa.MetaData()
    metadata.reflect(connection)
    return metadata


def _tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The state's tables in an order that loads (a table after those its foreign keys name)."""
    return [t for t in metadata.sorted_tables if t.name != VERSION_TABLE]


def _revision(connection: Connection) -> str | None:
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _encode(kind: str, value: Any) -> Any:
    if value is None or kind in ("plain", "json"):
        return value
    if kind == "datetime":
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    if kind == "date":
        return value.isoformat()
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    return bool(value)


def _decode(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "json":
        parsed = json.loads(value)
        return sa.JSON.NULL if parsed is None else parsed  # JSON null, not SQL NULL (None)
    return value


def dump_state(engine: Engine) -> dict:
    """Give every table of the state behind ``engine`` as ``{"format", "format_version", "revision", "dialect",
    "tables": {NAME: {"columns": [...], "kinds": [...], "rows": [[...], ...]}}}``, rows by primary key, all read
    in one transaction (a consistent picture while other processes write). Raises InvalidInput for a database
    that holds no ruche state."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")  # one read transaction over every table (pysqlite begins none)
        try:
            revision = _revision(connection)
            if revision is None:
                raise InvalidInput("this database holds no ruche state (no Alembic revision)")
            tables = {}
            for table in _tables(_reflected(connection)):
                kinds = [_kind(c.type) for c in table.columns]
                selected = [
                    sa.cast(c, sa.Text) if k == "json" else c for c, k in zip(table.columns, kinds, strict=True)
                ]
                order = list(table.primary_key.columns) or list(table.columns)
                rows = connection.execute(sa.select(*selected).order_by(*order))
                tables[table.name] = {
                    "columns": [c.name for c in table.columns],
                    "kinds": kinds,
                    "rows": [[_encode(k, v) for k, v in zip(kinds, row, strict=True)] for row in rows],
                }
        finally:
            connection.rollback()
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "revision": revision,
            "dialect": engine.dialect.name, "tables": tables}  # fmt: skip


def dump_lines(dump: dict) -> Iterator[str]:
    """The text of ``dump`` as JSON, one row per line (a diff or `grep` finds a row), in pieces to write."""
    head = {key: value for key, value in dump.items() if key != "tables"}
    yield json.dumps(head, sort_keys=True)[:-1] + ', "tables": {'
    for number, (name, table) in enumerate(dump["tables"].items()):
        yield ("," if number else "") + f"\n{json.dumps(name)}: {{"
        yield f'"columns": {json.dumps(table["columns"])}, "kinds": {json.dumps(table["kinds"])}, "rows": ['
        for index, row in enumerate(table["rows"]):
            yield ("," if index else "") + "\n" + json.dumps(row, ensure_ascii=False)
        yield "]}"
    yield "\n}}\n"


def row_counts(dump: dict) -> dict[str, int]:
    return {name: len(table["rows"]) for name, table in dump["tables"].items()}


def check_dump(dump: dict) -> None:
    """Raise InvalidInput when ``dump`` is not a state dump this ruche can load (another format, a newer schema)."""
    if not isinstance(dump, dict) or dump.get("format") != FORMAT:
        raise InvalidInput("not a ruche state dump")
    if dump.get("format_version") != FORMAT_VERSION:
        raise InvalidInput(f"a state dump of format {dump.get('format_version')}; this ruche reads {FORMAT_VERSION}",
                           hint="restore it with the ruche version that made it, or a newer one")  # fmt: skip
    if dump.get("revision") not in known_revisions():
        raise InvalidInput(
            f"the dump's schema revision {dump.get('revision')!r} is unknown to this ruche (newest: {head_revision()})",
            hint="it was made by a newer ruche: install that version (or a newer one) to restore it",
        )


def load_state(engine: Engine, dump: dict) -> dict[str, int]:
    """Load ``dump`` into the empty database behind ``engine``, then bring its schema to the newest revision; give
    the rows loaded by table. Raises Conflict when the database already holds tables (nothing is changed), and
    InvalidInput when the dump is not one this ruche reads or does not match its revision's schema."""
    check_dump(dump)
    existing = sa.inspect(engine).get_table_names()
    if existing:
        raise Conflict(
            f"the database {engine.url.render_as_string(hide_password=True)} is not empty "
            f"({len(existing)} table(s), e.g. {sorted(existing)[0]})",
            hint="load a dump into a new, empty database",
        )
    try:
        _migrate_to(engine, dump["revision"])
        with engine.begin() as connection:
            tables = {t.name: t for t in _tables(_reflected(connection))}
            if set(dump["tables"]) != set(tables):
                raise InvalidInput(
                    f"the dump's tables are not those of schema revision {dump['revision']}: "
                    f"{', '.join(sorted(set(dump['tables']) ^ set(tables)))}"
                )
            for table in reversed(list(tables.values())):  # what migrations seeded (the audit trail's head)
                connection.execute(table.delete())
            for name, table in tables.items():
                _insert(connection, table, dump["tables"][name])
            if connection.dialect.name == "postgresql":
                _advance_sequences(connection, tables.values())
        upgrade_schema(engine)
    except BaseException as error:
        clear_state(engine)  # the database was empty: leave it so
        if isinstance(error, sa.exc.SQLAlchemyError):
            raise OperationFailed(f"the dump could not be loaded: {getattr(error, 'orig', None) or error}") from None
        raise
    return row_counts(dump)


def clear_state(engine: Engine) -> None:
    """Drop every table of the database behind ``engine`` (what a failed load or restore made in it)."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)


def _insert(connection: Connection, table: sa.Table, dumped: dict) -> None:
    columns = dumped["columns"]
    if set(columns) != {c.name for c in table.columns}:
        raise InvalidInput(f"the dump's columns of {table.name} are not those of its schema revision")
    kinds = dumped["kinds"]
    # JSON written with none_as_null: None is SQL NULL, sa.JSON.NULL the JSON null
    target = sa.table(table.name, *[sa.column(name, sa.JSON(none_as_null=True) if kind == "json" else table.c[name].type)
                                    for name, kind in zip(columns, kinds, strict=True)])  # fmt: skip
    rows = [
        {name: _decode(kind, value) for name, kind, value in zip(columns, kinds, row, strict=True)}
        for row in dumped["rows"]
    ]
    for start in range(0, len(rows), 1000):
        connection.execute(target.insert(), rows[start : start + 1000])


def _advance_sequences(connection: Connection, tables) -> None:
    """Move each serial column's sequence past the ids loaded, so new rows get new ids."""
    for table in tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, sa.Integer):
                continue
            sequence = connection.execute(
                sa.text("SELECT pg_get_serial_sequence(:table, :column)"), {"table": table.name, "column": column.name}
            ).scalar()
            if sequence is None:
                continue
            highest = connection.execute(sa.select(sa.func.max(column))).scalar()
            connection.execute(
                sa.text("SELECT setval(:sequence, :value, :called)"),
                {"sequence": sequence, "value": highest or 1, "called": highest is not None},
            )


def _migrate_to(engine: Engine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except sa.exc.OperationalError as error:
        raise OperationFailed(f"cannot create the state's schema: {error.orig}") from None
