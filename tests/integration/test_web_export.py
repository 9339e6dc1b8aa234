"""A member downloads their association's data from their space (issue 27, item 3), on SQLite and PostgreSQL: the
button queues one run of the worker (a second request, or a fourth in a day, is refused in the member's words); once
the worker's step marked it ready (the same function, with a real signed bundle: servers are not reached in this
tier), its link works once, for a signed-in member of that association only (another association's member, a
signed-out visitor, a used or expired link are refused, the file kept for the right member until then), the file is
deleted after the download or once expired, and the token is never in the access log, the audit trail or the page
except in its link."""

from __future__ import annotations

import io
import json
import logging
import re
import tarfile
from datetime import timedelta

import pytest
import requests
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import IntegrityError

from orchestrator.actions.worker import apply_queued
from orchestrator.bundles import BundleWriter
from orchestrator.operations.member_exports import exports_dir, record_ready
from orchestrator.signing import SigningKey
from orchestrator.state.database import MIGRATIONS_DIR, StateStore, upgrade_schema
from orchestrator.state.exports import EXPORTS_PER_DAY
from orchestrator.state.models import Association, Instance, MemberExport, QueuedRun, utc_now
from orchestrator.web.exports import human_size
from orchestrator.web.security import RedactSignInLinks
from orchestrator.workspace import open_workspace
from tests.browser import free_port, served, use_loopback_web_settings
from tests.integration.test_web import client_for, csrf_of, fleet, signed_in  # noqa: F401 (fixture)


def plain(text: str) -> str:
    """Babel's no-break spaces as plain ones ("12,3 Mo")."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def words(response) -> str:
    return plain(response.text)


def with_store(workspace, work):
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            return work(session)
    finally:
        store.close()


def running_service(w, workspace, ruche, state: str = "running") -> None:
    """amap gets a Radicale, recorded as ``state`` (no server is reached)."""
    assert ruche(*w, "instance", "create", "amap", "radicale", "--name", "agenda", "--version", "3.1.8").exit_code == 0

    def set_state(session):
        session.scalar(select(Instance).where(Instance.name == "agenda")).state = state

    with_store(workspace, set_state)


def ask(client):
    """The button "Télécharger nos données" of the member's space."""
    page = client.get("/espace")
    return client.post("/espace/export", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)


def exports(workspace) -> list[tuple]:
    return with_store(workspace, lambda s: [(e.id, e.status, e.path) for e in s.scalars(select(MemberExport))])


def export_runs(workspace) -> list[tuple]:
    return with_store(workspace, lambda s: [(r.server, r.kind, r.payload, r.state)
                                            for r in s.scalars(select(QueuedRun).where(QueuedRun.kind == "export"))])  # fmt: skip


def volumes() -> bytes:
    """An instance's volumes as the bundle carries them: a calendar of a few kB."""
    buffer, calendar = io.BytesIO(), b"BEGIN:VCALENDAR\nSUMMARY:distribution des paniers\nEND:VCALENDAR\n" * 60
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("volumes/data")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(info)
        info = tarfile.TarInfo("volumes/data/paniers.ics")
        info.size, info.mode = len(calendar), 0o644
        archive.addfile(info, io.BytesIO(calendar))
    return buffer.getvalue()


def prepared(workspace) -> tuple[int, bytes]:
    """What the worker does once write_bundle wrote the queued export: here a real bundle, signed with a new key,
    written where the export's row says, then the worker's own step (record_ready). Gives its id and bytes."""
    opened = open_workspace(workspace)
    ((export_id, _status, path),) = [e for e in exports(workspace) if e[1] == "queued"]
    exports_dir(opened)
    with BundleWriter(opened.root / path) as bundle:
        bundle.add_bytes("instances/agenda/manifest.json", json.dumps({"volumes": {"data": {}}}).encode())
        bundle.add_bytes("instances/agenda/volumes.tar", volumes())
        bundle.finish({
            "ruche_version": "test", "collective": "Test",
            "association": {"slug": "amap", "name": "Amap", "email": "c@amap.fr", "offer": "association",
                            "offer_figures": {}},
            "catalogue": {}, "instances": [{"name": "agenda", "service": "radicale", "version": "3.1.8",
                                            "size": "small", "parameters": {}, "domains": [], "database": None,
                                            "data": {}}],
        }, SigningKey.generate())  # fmt: skip
    store = StateStore(opened.state_url)
    try:
        succeeded, summary = record_ready(opened, store, export_id, {"size": bundle.size, "sha256": bundle.sha256})
    finally:
        store.close()
    assert succeeded and summary["status"] == "ready", summary
    assert (opened.root / path).stat().st_mode & 0o777 == 0o600
    assert (opened.root / "exports").stat().st_mode & 0o777 == 0o700
    return export_id, (opened.root / path).read_bytes()


def link_of(client) -> tuple[str, str]:
    """The ready export's link, from the form of the member's space; gives (the link, the page that shows it)."""
    issued = client.post("/espace/export/lien", data={"csrf_token": csrf_of(client.get("/espace").text)})
    assert issued.status_code == 200
    return re.search(r'href="(/espace/export/[^"]+)"', issued.text).group(1), issued.text


def file_of(workspace, export_id: int):
    (path,) = [p for i, _s, p in exports(workspace) if i == export_id]
    return open_workspace(workspace).root / path


def test_the_button_queues_one_export_and_a_second_or_a_fourth_in_a_day_is_refused(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    chorale = signed_in(workspace, links["chorale"])
    nothing = ask(chorale)  # no service: nothing to export
    assert nothing.status_code == 409 and "pas encore de service" in words(nothing)
    running_service(w, workspace, ruche)
    member = signed_in(workspace, links["amap"])
    page = words(member.get("/espace"))
    assert 'action="/espace/export"' in page and "Télécharger nos données" in page
    assert f"Au plus {EXPORTS_PER_DAY} fois par jour" in page
    assert member.post("/espace/export", data={}, follow_redirects=False).status_code == 400  # no CSRF token
    sent = ask(member)
    assert sent.status_code == 303 and sent.headers["location"] == "/espace#donnees"
    ((export_id, status, path),) = exports(workspace)
    assert status == "queued" and re.fullmatch(r"exports/[0-9a-f]{32}\.tar\.gz", path)
    assert export_runs(workspace) == [("exports", "export", {"export": export_id}, "queued")]
    page = words(member.get("/espace"))
    assert "Vos données sont en préparation" in page and 'action="/espace/export"' not in page
    again = ask(member)
    assert again.status_code == 409 and "déjà en préparation" in words(again)
    assert len(export_runs(workspace)) == 1  # exactly one run queued

    def fail_them(session):
        session.execute(update(MemberExport).where(MemberExport.status == "queued").values(status="failed"))

    for _second_and_third in range(EXPORTS_PER_DAY - 1):
        with_store(workspace, fail_them)
        assert ask(member).status_code == 303
    with_store(workspace, fail_them)
    over = ask(member)
    assert over.status_code == 429 and f"{EXPORTS_PER_DAY} fois ces dernières 24 heures" in words(over)
    assert len(export_runs(workspace)) == EXPORTS_PER_DAY
    csrf = csrf_of(member.get("/espace").text)
    english = member.post("/espace/export?lang=en", data={"csrf_token": csrf}, follow_redirects=False)
    assert english.status_code == 429 and "the most allowed: try again tomorrow" in english.text


def test_a_service_not_running_is_refused_and_a_failed_export_is_told_without_its_details(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    running_service(w, workspace, ruche, state="suspended")
    member = signed_in(workspace, links["amap"])
    idle = ask(member)
    assert idle.status_code == 409 and "Chaque service doit fonctionner" in words(idle)
    with_store(workspace, lambda s: setattr(s.scalar(select(Instance)), "state", "running"))
    assert ask(member).status_code == 303
    run = with_store(workspace, lambda s: s.scalar(select(QueuedRun).where(QueuedRun.kind == "export")))
    another = QueuedRun(id=run.id + 1000, kind="export", payload=run.payload)  # a run that does not own the export
    assert apply_queued(workspace, another, lambda _line: None)[2]["status"] == "skipped"  # never two writers
    assert exports(workspace)[0][1] == "queued"
    succeeded, run_id, summary = apply_queued(workspace, run, lambda _line: None)  # the worker's dispatch
    assert not succeeded and run_id is None and "no backup repository" in summary["error"]
    ((_id, status, path),) = exports(workspace)
    assert status == "failed" and not (open_workspace(workspace).root / path).exists()
    page = words(member.get("/espace"))
    assert "Vos données n&#39;ont pas pu être préparées" in page and "backup" not in page
    assert 'action="/espace/export"' in page  # asked again from the same page

    def interrupted(session):  # its worker lost, its attempts used up (state/queue.recover_stale)
        session.execute(update(QueuedRun).where(QueuedRun.state == "queued").values(state="interrupted"))

    assert ask(member).status_code == 303
    with_store(workspace, interrupted)
    assert "Vos données n&#39;ont pas pu être préparées" in words(member.get("/espace"))
    assert [status for _i, status, _p in exports(workspace)] == ["failed", "failed"]
    assert ask(member).status_code == 303  # not left queued for ever: the association may ask again


def test_a_member_downloads_the_export_once_and_nobody_else_can(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    running_service(w, workspace, ruche)
    member = signed_in(workspace, links["amap"])
    assert ask(member).status_code == 303
    export_id, content = prepared(workspace)
    path = file_of(workspace, export_id)
    assert plain(human_size(12_345_678, "fr")) == "12,3 Mo" and plain(human_size(12_345_678, "en")) == "12.3 MB"
    page = words(member.get("/espace"))
    assert f"Vos données sont prêtes : {plain(human_size(len(content), 'fr'))}" in page
    assert "ko" in page and "/espace/export/" not in page.replace('action="/espace/export/lien"', "")
    first_link, _shown = link_of(member)
    link, shown = link_of(member)  # a new link: the one before stops working
    token = link.rsplit("/", 1)[1]
    assert shown.count(token) == 1 and "fonctionne une fois" in shown  # in the link alone
    assert member.get(first_link).status_code == 404

    chorale = signed_in(workspace, links["chorale"])
    assert chorale.get(link).status_code == 404  # another association's member: as if there were none
    signed_out = client_for(workspace).get(link, follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/"
    assert path.read_bytes() == content and [s for i, s, _p in exports(workspace) if i == export_id] == ["ready"]

    downloaded = member.get(link)
    assert downloaded.status_code == 200 and downloaded.content == content
    assert downloaded.headers["content-type"] == "application/gzip"
    assert re.fullmatch(r'attachment; filename="amap-\d{8}\.ruche-bundle\.tar\.gz"',
                        downloaded.headers["content-disposition"])  # fmt: skip
    assert not path.exists()  # deleted once streamed
    second = member.get(link)
    assert second.status_code == 403 and "déjà servi" in words(second)
    assert chorale.get(link).status_code == 404
    assert "Vos données ont été téléchargées le" in words(member.get("/espace"))
    events = ruche(*w, "events", "--json")
    assert events.exit_code == 0 and token not in events.stdout and "member_exports" in events.stdout


def test_an_expired_link_is_refused_and_its_file_deleted_and_the_page_deletes_due_ones(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    running_service(w, workspace, ruche)
    member = signed_in(workspace, links["amap"])
    assert ask(member).status_code == 303
    export_id, _content = prepared(workspace)
    link, _shown = link_of(member)

    def a_day_later(session):
        session.execute(update(MemberExport).values(expires_at=utc_now() - timedelta(seconds=1)))

    with_store(workspace, a_day_later)
    assert file_of(workspace, export_id).exists()
    expired = member.get(link)
    assert expired.status_code == 403 and "a expiré" in words(expired)
    assert not file_of(workspace, export_id).exists()
    assert [s for i, s, _p in exports(workspace) if i == export_id] == ["expired"]

    assert ask(member).status_code == 303  # the next one, left to expire: the space's own view deletes it
    second_id, _content = prepared(workspace)
    leftover = (
        open_workspace(workspace).root / "exports" / f"{'0123' * 8}.tar.gz"
    )  # named as ruche names them: no export owns it
    leftover.write_bytes(b"x")
    admins = open_workspace(workspace).root / "exports" / "amap.ruche-bundle"  # an admin's `association export -o`
    admins.write_bytes(b"kept")
    with_store(workspace, a_day_later)
    page = words(member.get("/espace"))
    assert "n&#39;ont pas été téléchargées dans la journée" in page
    assert not file_of(workspace, second_id).exists() and not leftover.exists()
    assert admins.read_bytes() == b"kept"  # not a name the purge makes: never deleted


def test_the_download_token_never_reaches_the_access_log(fleet, workspace, ruche, tmp_path):  # noqa: F811
    w, links = fleet
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/espace/export/s3cr3t?lang=en", "1.1", 200), None)  # fmt: skip
    assert RedactSignInLinks().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /espace/export/(hidden)?lang=en HTTP/1.1" 200'
    running_service(w, workspace, ruche)
    port = free_port()
    use_loopback_web_settings(workspace, port)
    with served(workspace, tmp_path / "serve.log", port=port) as base:
        browser = requests.Session()
        opened = browser.get(f"{base}{links['amap'].split('8080', 1)[1]}", timeout=10, allow_redirects=False)
        assert opened.status_code == 303
        space = browser.get(f"{base}/espace", timeout=10)
        assert browser.post(f"{base}/espace/export", data={"csrf_token": csrf_of(space.text)}, timeout=10).ok
        _export_id, content = prepared(workspace)
        issued = browser.post(f"{base}/espace/export/lien", data={"csrf_token": csrf_of(space.text)}, timeout=10)
        link = re.search(r'href="(/espace/export/[^"]+)"', issued.text).group(1)
        downloaded = browser.get(f"{base}{link}", timeout=10)
        assert downloaded.status_code == 200 and downloaded.content == content
        assert browser.get(f"{base}{link}", timeout=10).status_code == 403
    log = (tmp_path / "serve.log").read_text()
    assert link.rsplit("/", 1)[1] not in log and "/espace/export/(hidden)" in log, log[-2000:]
    assert "POST /espace/export/lien" in log  # the form's own address stays readable


def test_migration_0024_makes_the_exports_table_and_goes_back(fleet, workspace):  # noqa: F811
    """0024 adds member_exports, whose partial unique index refuses a second open export of an association even
    when the code's own check is passed by; its downgrade removes the table, and upgrading again makes it again."""
    from alembic import command
    from alembic.config import Config

    store = StateStore(open_workspace(workspace).state_url)
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0023")
        assert "member_exports" not in inspect(store.engine).get_table_names()
        upgrade_schema(store.engine)
        assert "uq_member_export_open" in {i["name"] for i in inspect(store.engine).get_indexes("member_exports")}
        association = with_store(workspace, lambda s: s.scalar(select(Association.id)))
        rows = [MemberExport(association_id=association, requested_by="test", status=status, path=f"exports/{n}",
                             created_at=utc_now(), error="") for n, status in enumerate(("failed", "ready"))]  # fmt: skip
        with store.session() as session:
            session.add_all(rows)  # a closed one beside an open one: allowed
        with pytest.raises(IntegrityError), store.session() as session:
            session.add(MemberExport(association_id=association, requested_by="test", status="queued",
                                     path="exports/2", created_at=utc_now(), error=""))  # fmt: skip
    finally:
        store.close()
