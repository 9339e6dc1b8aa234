"""Opening the state database and bringing its schema up to date with Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import ConfigError, OperationFailed
from orchestrator.state.change_listener import record_changes

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _enable_sqlite_foreign_keys(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Give an engine for ``url``; raises ConfigError when the URL or its driver is unusable."""
    try:
        engine = create_engine(url, future=True)
    except (SQLAlchemyError, ImportError, ValueError) as error:
        raise ConfigError(f"state_url {url!r} cannot be used: {error}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def head_revision() -> str:
    """The newest migration's revision: migrations are named and numbered NNNN_what.py, revision "NNNN"."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def _is_current(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
                head_revision()
            ]
    except SQLAlchemyError:
        return False  # a new database (no alembic_version yet), or unreachable: Alembic says which


def upgrade_schema(engine: Engine) -> None:
    """Apply every pending Alembic migration to the database behind ``engine`` (Alembic is loaded only
    when the database is not at the newest revision: most commands find it current)."""
    if _is_current(engine):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as error:
        raise OperationFailed(f"cannot open the state database: {error.orig}") from None


class StateStore:
    """The state database of one workspace: ``with store.session() as s: ...`` commits on success."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        upgrade_schema(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # every change of state becomes a chained event (state/change_listener.py)
        event.listen(self._sessions, "after_flush", record_changes)

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()
