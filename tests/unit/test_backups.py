"""Backup settings as the roles get them, and the comparison of a restore with its snapshot's manifest."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.backups import backup_variables, compare_with_manifest, repository_of, sftp_target
from orchestrator.config import BackupSettings


def test_an_sftp_repository_gives_the_account_and_pinned_host_keys_for_a_managed_target():
    settings = BackupSettings(repository="sftp:restic@192.0.2.10:/srv/restic/", managed_server="vault")
    assert settings.repository == "sftp:restic@192.0.2.10:/srv/restic"
    assert sftp_target(settings).host == "192.0.2.10" and sftp_target(settings).path == "/srv/restic"
    assert repository_of(settings, "amap") == "sftp:restic@192.0.2.10:/srv/restic/amap"
    variables = backup_variables(settings)
    assert variables["ruche_backup_managed_server"] == "vault"
    assert "StrictHostKeyChecking=yes" in variables["ruche_backup_sftp_args"]
    unmanaged = backup_variables(BackupSettings(repository="sftp:u@backup.example.org:/b"))
    assert "StrictHostKeyChecking=accept-new" in unmanaged["ruche_backup_sftp_args"]


def test_local_and_s3_repositories_need_no_ssh_and_no_repository_means_no_backups():
    assert backup_variables(BackupSettings(repository="/srv/backup"))["ruche_backup_sftp_args"] == ""
    assert (
        backup_variables(BackupSettings(repository="s3:https://s3.example.org/ruche"))["ruche_backup_sftp_host"] == ""
    )
    assert backup_variables(BackupSettings())["ruche_backup_repository"] == ""
    with pytest.raises(ValueError):
        repository_of(BackupSettings(), "amap")


@pytest.mark.parametrize("bad", ["relative/path", "sftp:host:/path", "ftp://x/y", "/srv/backup; rm -rf /", "s3:bucket"])
def test_other_repository_forms_are_refused(bad):
    with pytest.raises(ValidationError):
        BackupSettings(repository=bad)


def test_the_manifest_comparison_names_every_difference():
    manifest = {
        "volumes": {"data": {"a.ics": "1", "b.ics": "2"}},
        "database": {"tables": {"public.users": 1, "public.feeds": 3}},
    }
    same = {
        "volumes": {"data": {"a.ics": "1", "b.ics": "2"}},
        "database": {"tables": {"public.users": 1, "public.feeds": 3}},
    }
    assert compare_with_manifest(manifest, same) == []
    restored = {
        "volumes": {"data": {"a.ics": "9", "c.ics": "3"}},
        "database": {"tables": {"public.users": 1, "public.feeds": 2}},
    }
    assert compare_with_manifest(manifest, restored) == [
        "data/b.ics: missing",
        "data/a.ics: checksum differs",
        "data/c.ics: not in the snapshot",
        "table public.feeds: 3 rows in the snapshot, 2 restored",
    ]


@pytest.mark.parametrize("with_filter", [True, False])
def test_an_export_archive_is_extracted_inside_its_directory_only(tmp_path, monkeypatch, with_filter):
    import io
    import tarfile

    from orchestrator.actions.data_export import extract_data
    from orchestrator.errors import OperationFailed

    if not with_filter:  # as on Debian 12's Python 3.11.2
        monkeypatch.delattr(tarfile, "data_filter", raising=False)

    def archive(*members: tuple[str, bytes | None, str | None]) -> tarfile.TarFile:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as writing:
            for name, data, link in members:
                info = tarfile.TarInfo(name)
                if link is not None:
                    info.type, info.linkname = tarfile.SYMTYPE, link
                    writing.addfile(info)
                else:
                    info.size = len(data or b"")
                    writing.addfile(info, io.BytesIO(data or b""))
        buffer.seek(0)
        return tarfile.open(fileobj=buffer)

    extract_data(
        archive(("dump/database.sql", b"select 1;", None), ("volumes/data/a.ics", b"x", None)), tmp_path / "ok"
    )
    assert (tmp_path / "ok" / "dump" / "database.sql").read_bytes() == b"select 1;"
    for bad in (("../outside", b"x", None), ("volumes/link", None, "/etc/passwd")):
        with pytest.raises((OperationFailed, tarfile.TarError)):
            extract_data(archive(bad), tmp_path / "bad")
    assert not (tmp_path / "outside").exists() and not (tmp_path / "bad" / "volumes" / "link").is_symlink()
    try:  # an absolute name is refused, or (tarfile's own filter) made relative: never written at /
        extract_data(archive(("/ruche-test-evil", b"x", None)), tmp_path / "abs")
        assert (tmp_path / "abs" / "ruche-test-evil").exists()
    except OperationFailed:
        pass
    assert not Path("/ruche-test-evil").exists()
