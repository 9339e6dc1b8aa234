"""A fresh PostgreSQL database for a benchmark, on the server scripts/postgresql-for-tests gives."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fresh_database_url(prefix: str) -> str | None:
    """Create an empty database named PREFIX_xxxxxxxx; give its URL (None without a PostgreSQL server)."""
    try:
        found = subprocess.run(
            [str(ROOT / "scripts" / "postgresql-for-tests")], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    url = found.stdout.strip().splitlines()[-1]
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name
