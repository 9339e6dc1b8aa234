"""Opening the state without Alembic when it is current: the head read from the migrations' file names."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from orchestrator.state.database import MIGRATIONS_DIR, head_revision


def test_the_head_read_from_the_file_names_is_alembics():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == head_revision()
