"""Shared fixtures. Tests are marked by tier from their folder: unit, integration, lab."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import pytest

from orchestrator.cli.main import main as ruche_main
from tests.helpers import serve_lab_images_from

TIERS = ("unit", "integration", "lab")

# `ruche init` writes a vault password under $XDG_CONFIG_HOME: keep the tests' ones out of ~/.config.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="ruche-tests-config-")
for _name in ("RUCHE_VAULT_PASSWORD", "RUCHE_VAULT_PASSWORD_FILE", "RUCHE_WORKSPACE"):
    os.environ.pop(_name, None)


# Files in the order they are handed out. scripts/test runs the tiers with pytest-xdist
# (`-n 2 --dist loadfile --no-loadscope-reorder`): each file goes whole to one worker, in this order (a worker
# is handed its next file when two tests or fewer are left of the ones it holds). test_lab comes first: it checks a
# fresh lab (no failed unit); test_apply needs a lab no apply has run on (a first apply that changes something),
# which test_lab's lab still is. While the first worker brings its lab up (on a fresh machine it builds the
# server base and the service images first: about 5 minutes using one core), the other runs the longest
# integration files, then brings up its own lab from the cache. Then the lab files, longest first (from `.ci/run`'s
# slowest durations), so that the short ones fill in beside the long ones. Files not listed follow, in order: the
# rest of the integration and unit tiers, many short files, which either worker takes as it frees up: both end
# close together whatever the lab files' order.
HANDED_OUT_FIRST = [
    "lab/test_lab.py",
    "integration/test_web.py", "integration/test_web_probe.py", "integration/test_install.py",
    "integration/test_associations_and_instances.py", "integration/test_control_plane_backup.py",
    "integration/test_catalog_cli.py", "integration/test_browser_pages.py", "integration/test_transparency_report.py",
    "lab/test_apply.py",
    "lab/test_catalog_check.py", "lab/test_bundles.py", "lab/test_backups.py", "lab/test_upgrades.py", "lab/test_catalog_check_mediawiki.py", "lab/test_audit.py", "lab/test_instances.py", "lab/test_mediawiki.py",
    "lab/test_worker.py", "lab/test_molecule.py", "lab/test_firewall.py", "lab/test_ownership.py", "lab/test_browser.py",
    "lab/test_catalog_outdated.py",
]  # fmt: skip


def _rank(item) -> int:
    path = Path(str(item.fspath)).as_posix()
    for index, name in enumerate(HANDED_OUT_FIRST):
        if path.endswith("/tests/" + name):
            return index
    return len(HANDED_OUT_FIRST)


def pytest_collection_modifyitems(items):
    for item in items:
        for tier in TIERS:
            if f"{os.sep}tests{os.sep}{tier}{os.sep}" in str(item.fspath):
                item.add_marker(getattr(pytest.mark, tier))
    items[:] = sorted(items, key=_rank)  # stable: a file's tests keep their order


_STARTED = time.monotonic()
_WORKER_DONE: dict[str, tuple[float, int]] = {}  # pytest-xdist worker -> (when its last test ended, tests run)


def pytest_runtest_logreport(report):
    """On pytest-xdist's controller: when each worker ended its last test (shown at the end, to balance the files)."""
    worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", None)
    if worker and report.when == "teardown":
        _WORKER_DONE[worker] = (time.monotonic() - _STARTED, _WORKER_DONE.get(worker, (0, 0))[1] + 1)


def pytest_terminal_summary(terminalreporter):
    if _WORKER_DONE:
        ends = ", ".join(f"{worker} at {int(ended) // 60} min {int(ended) % 60} s ({tests} tests)"
                         for worker, (ended, tests) in sorted(_WORKER_DONE.items()))  # fmt: skip
        terminalreporter.write_line(f"workers' last test ended: {ends}")


class CliResult:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr


@pytest.fixture
def ruche(capsys):
    """Run the real ``ruche`` entry point in-process: ``ruche("server", "list")`` gives a CliResult."""

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            ruche_main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def _postgresql_admin_url() -> str | None:
    return os.environ.get("RUCHE_TEST_POSTGRESQL_URL")


@pytest.fixture(scope="session")
def postgresql_template():
    """A PostgreSQL database with the state's schema at its newest revision, made once per test process, that
    each PostgreSQL test copies (CREATE DATABASE ... TEMPLATE: a tenth of a second, where running the migrations
    again took most of a second): the copy is what a new database is after `ruche init`'s migrations. None
    without RUCHE_TEST_POSTGRESQL_URL."""
    admin_url = _postgresql_admin_url()
    if not admin_url:
        yield None
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from orchestrator.state.database import StateStore

    name = f"ruche_template_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        StateStore(make_url(admin_url).set(database=name).render_as_string(hide_password=False)).close()
        yield admin, name
    finally:
        _drop_database(admin, name)
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite state database with the schema at its newest revision and no row, made once per test process,
    that each SQLite test copies (running the migrations took a third of a second, every test again)."""
    from orchestrator.state.database import StateStore

    path = tmp_path_factory.mktemp("sqlite-template") / "state.db"
    StateStore(f"sqlite:///{path}").close()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path, postgresql_template, sqlite_template) -> str:
    """A fresh state database URL: a SQLite file (a copy of ``sqlite_template``), then a new PostgreSQL
    database (a copy of ``postgresql_template``): each the schema at its newest revision, no row, what a new
    database is after `ruche init`'s migrations.

    The PostgreSQL variant needs RUCHE_TEST_POSTGRESQL_URL (a role allowed to create databases);
    `scripts/test` sets it up.  Without it the variant is skipped, and says so.
    """
    if request.param == "sqlite":
        shutil.copyfile(sqlite_template, tmp_path / "state.db")
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    if postgresql_template is None:
        pytest.skip("RUCHE_TEST_POSTGRESQL_URL is not set (scripts/test sets it)")
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    admin, template = postgresql_template
    name = f"ruche_test_{uuid.uuid4().hex[:12]}"
    for attempt in range(10):  # an autovacuum worker on the template for a moment refuses the copy
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            break
        except DBAPIError:
            if attempt == 9:
                raise
            time.sleep(0.2 * (attempt + 1))
    try:
        yield make_url(_postgresql_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)


def _drop_database(admin, name: str) -> None:
    """Drop a test database; an autovacuum worker may hold it for a moment (its role cannot be signalled)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for attempt in range(10):
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            time.sleep(0.5 * (attempt + 1))
    warnings.warn(f"test database {name} left behind: it stayed in use", stacklevel=2)


@pytest.fixture
def workspace(tmp_path, state_url, ruche) -> Path:
    """A new workspace created with `ruche init`, on each state database, its [images] registry set."""
    path = tmp_path / "workspace"
    result = ruche("init", str(path), "--collective", "Test", "--domain", "test.example.org", "--state-url", state_url,
                   "--base-url", "http://127.0.0.1:8080")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    serve_lab_images_from(path)  # its servers are not the lab's: they pull the lab's services from a registry
    return path


@pytest.fixture(scope="module")
def ruche_module():
    """Like ``ruche``, for module-scoped fixtures (output captured with redirection, not capsys)."""
    import contextlib
    import io

    def invoke(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                ruche_main(list(args))
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
        return CliResult(code, out.getvalue(), err.getvalue())

    return invoke
