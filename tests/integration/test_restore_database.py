"""ruche-backup's restore empties the instance's database before loading a dump: run with the tool's own
command lines (psql, pg_dump as the restore and the backup call them) against the test PostgreSQL, as
a role that owns its database without being a superuser (as in the lab's PostgreSQL image).

The case is the one CI met: a dump of a wiki loaded into a database that holds tables the dump does
not name (a newer schema, or an application that installed itself first) stops at the dump's
`DROP SCHEMA`; emptied first, the database ends with exactly the dump's tables and rows.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import _drop_database
from tests.unit.test_idranges import load_script

pytestmark = pytest.mark.integration

SOURCE_SCHEMA = """
create schema mediawiki;
create table mediawiki.page (page_id serial primary key, page_title text not null);
insert into mediawiki.page (page_title) values ('Accueil'), ('Calendrier');
"""
# what the target holds beyond the dump: tables of a newer schema, a view, a table in public
TARGET_SCHEMA = (
    SOURCE_SCHEMA
    + """
create table mediawiki.block_target (bt_id serial primary key, bt_address text);
create view mediawiki.titles as select page_title from mediawiki.page;
create table public.leftover (id int);
"""
)
TABLES = "select table_schema || '.' || table_name from information_schema.tables " \
         "where table_schema not in ('pg_catalog', 'information_schema') order by 1"  # fmt: skip


@pytest.fixture
def databases():
    admin_url = os.environ.get("RUCHE_TEST_POSTGRESQL_URL")
    if not admin_url:
        pytest.skip("RUCHE_TEST_POSTGRESQL_URL is not set (scripts/test sets it)")
    url = make_url(admin_url)
    names = [f"ruche_restore_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'CREATE DATABASE "{name}"'))  # owned by the test role, not a superuser
    environment = {**os.environ, "POSTGRES_USER": url.username, "POSTGRES_PASSWORD": url.password,
                   "PGPORT": str(url.port or 5432)}  # fmt: skip
    try:
        yield [{**environment, "POSTGRES_DB": name} for name in names]
    finally:
        for name in names:
            _drop_database(admin, name)
        admin.dispose()


def in_database(environment: dict, argv: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run one of the tool's in-container commands here, with the container's environment variables."""
    return subprocess.run(argv, env=environment, input=stdin, capture_output=True)


def psql(environment: dict, sql: str) -> str:
    tool = load_script("ruche-backup")
    result = in_database(environment, tool.database_shell("postgresql", sql))
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_a_dump_loads_into_a_database_holding_more_tables_once_it_is_emptied(databases, tmp_path: Path):
    tool = load_script("ruche-backup")
    source, target = databases
    psql(source, SOURCE_SCHEMA)
    psql(target, TARGET_SCHEMA)
    dumped = in_database(source, ["sh", "-c", 'PGPASSWORD="$POSTGRES_PASSWORD" exec pg_dump -h 127.0.0.1 -U "$POSTGRES_USER" '
                                  '--clean --if-exists --no-owner --no-privileges "$POSTGRES_DB"'])  # fmt: skip
    assert dumped.returncode == 0, dumped.stderr.decode()
    load = [
        "sh",
        "-c",
        'PGPASSWORD="$POSTGRES_PASSWORD" exec psql -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v ON_ERROR_STOP=1',
    ]

    refused = in_database(target, load, dumped.stdout)
    assert refused.returncode != 0 and b"because other objects depend on it" in refused.stderr  # what CI met

    psql(target, tool.EMPTY_POSTGRESQL)
    assert psql(target, TABLES) == ""
    assert (
        psql(target, "select nspowner::regrole from pg_namespace where nspname = 'public'").strip()
        == "pg_database_owner"
    )
    loaded = in_database(target, load, dumped.stdout)
    assert loaded.returncode == 0, loaded.stderr.decode()
    assert psql(target, TABLES) == psql(source, TABLES) == "mediawiki.page\n"
    assert psql(target, "select page_title from mediawiki.page order by 1") == "Accueil\nCalendrier\n"
    assert psql(target, "select has_schema_privilege('public', 'public', 'USAGE')").strip() == "t"
