"""The servers' trash: entry names parsed strictly, due dates by offer, the scripts' answers read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from orchestrator.config import LocalizedText, Offer
from orchestrator.trash import (
    TRASH_DIR,
    due_date,
    erase_entries,
    parse_entry_name,
    parse_erasure,
    parse_listing,
)

DELETED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
NAME = "20260304T050607Z-amap--agenda"


def offer(days: int | None = None) -> Offer:
    extra = {} if days is None else {"trash_retention_days": days}
    return Offer(label=LocalizedText(fr="x", en="x"), max_instances=1, memory_mb=1, disk_gb=1, **extra)


def test_a_name_the_role_gives_is_parsed():
    parsed = parse_entry_name(NAME)
    assert parsed is not None
    assert (parsed.deleted_at, parsed.association, parsed.instance, parsed.address) == (
        DELETED, "amap", "agenda", "amap/agenda")  # fmt: skip
    inner = parse_entry_name("20261231T235959Z-la-chorale--agenda-2")
    assert inner is not None and (inner.association, inner.instance) == ("la-chorale", "agenda-2")


@pytest.mark.parametrize(
    "name",
    [
        NAME + "\n", "\n" + NAME, " " + NAME, NAME + "/x", "../" + NAME, NAME + "/..", ".", "..", "",
        "20260304T050607Z-amap-agenda",  # no "--"
        "20260304T050607Z-amap---agenda", "20260304T050607Z--amap--agenda", "20260304T050607Z-amap--agenda-",
        "20260304T050607Z-Amap--agenda", "20260304T050607-amap--agenda", "2026-03-04T05:06:07Z-amap--agenda",
        "20261304T050607Z-amap--agenda",  # a 13th month
        "20260230T050607Z-amap--agenda",  # February 30th
        "２０２６0304T050607Z-amap--agenda",  # digits of another script
        "20260304T050607Z-amap--agenda--x", "20260304T050607Z-amap--agénda", "20260304T050607Z-amap--*",
        "20260304T050607Z-" + "a" * 33 + "--agenda", "20260304T050607Z-amap--" + "a" * 33,
    ],
)  # fmt: skip
def test_any_other_name_is_not_an_entry(name):
    assert parse_entry_name(name) is None


def test_the_offer_gives_the_retention_counted_from_the_deletion():
    entry = parse_entry_name(NAME)
    registered = DELETED - timedelta(days=400)
    due = due_date(entry, ("association", registered), {"association": offer(45)})
    assert (due.at, due.retention_days, due.rule) == (DELETED + timedelta(days=45), 45, "offer association: 45 day(s)")
    assert offer().trash_retention_days == 30
    assert due_date(entry, ("association", registered), {"association": offer(0)}).at == DELETED


def test_no_offer_or_no_association_makes_it_due_at_once():
    entry = parse_entry_name(NAME)
    removed = due_date(entry, None, {})
    assert removed.at == DELETED and "amap no longer exists: due at once" in removed.rule
    no_offer = due_date(entry, (None, DELETED - timedelta(days=1)), {})
    assert no_offer.at == DELETED and "has no offer: due at once" in no_offer.rule
    # an association of the same name registered after the deletion is another association
    again = due_date(entry, ("association", DELETED + timedelta(seconds=1)), {"association": offer(45)})
    assert again.at == DELETED and "registered again" in again.rule
    # SQLite gives times back naive: they are UTC
    naive = due_date(
        entry, ("association", (DELETED - timedelta(days=1)).replace(tzinfo=None)), {"association": offer(9)}
    )
    assert naive.at == DELETED + timedelta(days=9)


def test_an_offer_missing_from_ruche_toml_keeps_its_entries():
    due = due_date(parse_entry_name(NAME), ("gone", DELETED - timedelta(days=1)), {"association": offer()})
    assert due.at is None and due.rule == "offer gone is not in ruche.toml: kept until it is"


def test_the_retention_is_a_bounded_number_of_days():
    for wrong in (-1, 3661, "30 days"):
        with pytest.raises(ValidationError):
            offer(wrong)


def test_the_listing_keeps_only_entries_directly_under_the_trash():
    output = "".join(f"{record}\0" for record in [
        f"4096\t{TRASH_DIR}/{NAME}", f"0\t{TRASH_DIR}/weird\nname", f"12\t{TRASH_DIR}/a/b", "12\t/srv/ruche/amap/x",
        f"12\t{TRASH_DIR}/", f"12\t{TRASH_DIR}", "garbage", f"?\t{TRASH_DIR}/odd",
    ])  # fmt: skip
    assert parse_listing(output) == [(NAME, 4096), ("weird\nname", 0), ("odd", None)]
    assert parse_listing("") == []


def test_the_erasure_answer_says_what_went_and_what_did_not():
    output = f"erased\t{NAME}\0failed\t20260101T000000Z-a--b\trm: cannot remove 'x': Device or resource busy\n\0junk\0"
    assert parse_erasure(output) == (
        [NAME],
        {"20260101T000000Z-a--b": "rm: cannot remove 'x': Device or resource busy"},
    )


def test_erasing_passes_names_as_arguments_and_refuses_anything_else(monkeypatch):
    from orchestrator.remote import SshTarget

    commands = []
    monkeypatch.setattr("orchestrator.remote.run_command",
                        lambda target, argv, timeout: commands.append(argv) or f"erased\t{NAME}\0")  # fmt: skip
    target = SshTarget("web-1", "192.0.2.1")
    assert erase_entries(target, [NAME]) == ([NAME], {})
    assert commands[0][:2] == ["sh", "-c"] and commands[0][3:] == ["sh", TRASH_DIR, NAME]
    for wrong in (["../etc"], [NAME, "x; rm -rf /"], [f"{NAME}/.."], ["$(reboot)"]):
        with pytest.raises(ValueError):
            erase_entries(target, wrong)
    assert len(commands) == 1
    assert erase_entries(target, []) == ([], {}) and len(commands) == 1
