"""The web app's gettext catalogs are complete: every text of the pages and the code, extracted the way
`scripts/translations update` does, has a translation in every language, with the same placeholders."""

from __future__ import annotations

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from orchestrator import i18n
from orchestrator.catalog import SIZES
from orchestrator.i18n import LABELS, LANGUAGES, LOCALE_DIR, UPGRADE_TEXTS, translator
from orchestrator.state.instances import ACTIVE_STATES
from orchestrator.state.requests import NEXT_STATES

PACKAGE_DIR = LOCALE_DIR.parent
KEYWORDS = {"_": None, "gettext": None, "N_": None}


def extracted_texts() -> set[str]:
    with (PACKAGE_DIR / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    texts = {message for _file, _line, message, _comments, _context in
             extract_from_dir(PACKAGE_DIR, method_map, options_map, keywords=KEYWORDS)}  # fmt: skip
    assert all(isinstance(text, str) for text in texts), "no plural forms are used yet"
    return texts


def language_catalog(language: str, locale_dir=LOCALE_DIR):
    with (locale_dir / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


def catalog_problems(catalog, texts: set[str]) -> list[str]:
    """What keeps ``catalog`` from translating exactly ``texts``: missing, empty, fuzzy, stale, bad placeholders."""
    translated = {m.id: m for m in catalog if m.id}
    problems = [
        f"no entry for {t!r} (run scripts/translations update, then translate)"
        for t in sorted(texts - translated.keys())
    ]
    problems += [f"not translated (or fuzzy): {t!r}" for t in sorted(texts & translated.keys())
                 if not translated[t].string or translated[t].fuzzy]  # fmt: skip
    problems += [
        f"no page uses {t!r} any more (run scripts/translations update)" for t in sorted(translated.keys() - texts)
    ]
    problems += [f"{message.id!r}: {error}" for message, errors in catalog.check() for error in errors]
    return problems


def test_the_extraction_finds_the_texts_of_templates_and_code():
    texts = extracted_texts()
    assert "Your services" in texts  # a template
    assert "Page not found." in texts  # code, marked with N_
    assert "being set up" in texts  # a label of a recorded value
    assert len(texts) > 80


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_has_a_translation_with_the_same_placeholders(language):
    assert catalog_problems(language_catalog(language), extracted_texts()) == []


def test_the_check_catches_an_empty_entry_a_lost_placeholder_and_a_text_no_catalog_has(tmp_path, monkeypatch):
    original = (LOCALE_DIR / "fr" / "LC_MESSAGES" / "messages.po").read_text()
    broken = original.replace('msgstr "Vos services"', 'msgstr ""').replace(
        'msgstr "Demande n°%(id)s"', 'msgstr "Demande n°%(numero)s"'
    )
    assert broken.count("msgstr") == original.count("msgstr") and broken != original
    (tmp_path / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "fr" / "LC_MESSAGES" / "messages.po").write_text(broken)
    problems = catalog_problems(language_catalog("fr", tmp_path), extracted_texts() | {"A text added to a page"})
    assert any("'Your services'" in p for p in problems)
    assert any("'Request #%(id)s'" in p for p in problems)
    assert any("'A text added to a page'" in p for p in problems)
    # where a catalog lacks a text, the page shows the English text, never a blank
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.catalog.cache_clear()
    try:
        assert translator("fr")("Your services") == "Your services"
    finally:
        i18n.catalog.cache_clear()


def test_every_recorded_value_members_see_has_a_label_and_every_upgrade_status_a_text():
    shown = set(NEXT_STATES) | set(ACTIVE_STATES) | set(SIZES) | {"healthy", "unhealthy", "unknown"}
    assert shown - LABELS.keys() == set()
    assert set(UPGRADE_TEXTS) == {"running", "succeeded", "rolled_back", "rollback_failed", "refused"}


def test_texts_are_french_first_and_values_are_filled_after_translation():
    fr, en = translator("fr"), translator("en")
    assert fr("Request #%(id)s", id=7) == "Demande n°7" and en("Request #%(id)s", id=7) == "Request #7"
    assert fr.label("provisioning") == "en cours d'installation" and en.label("provisioning") == "being set up"
    assert fr.label("no-such-state") == "no-such-state"
    upgrade = {"status": "rolled_back", "to": "3.5", "at": "2026-11-27T10:00", "version": "3.1"}
    assert fr.upgrade_text(upgrade).startswith("mise à jour vers 3.5 annulée le 2026-11-27T10:00 : la version 3.1")
