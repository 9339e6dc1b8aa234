"""French first, English too: the pages' texts as gettext catalogs, and the language of a request.

Texts are written in English in the templates (``{{ _("Your services") }}``) and the code
(``_("Page not found.")``, or ``N_(...)`` where a text is only named and translated later); Babel
extracts them into ``locale/messages.pot`` and each language has its catalog,
``locale/LANG/LC_MESSAGES/messages.po`` (English's repeats the source texts, so that both
languages are held to the same completeness check). The ``.po`` files are the only source: they
are compiled in memory the first time a language is used, so there is no compile step to forget.
``scripts/translations`` extracts and updates the catalogs; docs/translations.md says how a
translator adds a language.
"""

from __future__ import annotations

from functools import cache
from gettext import GNUTranslations
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
# The first is the default (ruche is French first); each has a catalog under LOCALE_DIR.
LANGUAGES = ("fr", "en")
# How the link to a language names it: in that language.
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it here (it is translated where shown)."""
    return message


# What members read of a value the state records (requests' and instances' states, health, sizes).
LABELS = {
    "small": N_("small"), "medium": N_("medium"), "large": N_("large"),
    "pending": N_("pending"), "approved": N_("approved"), "rejected": N_("rejected"),
    "provisioning": N_("being set up"), "done": N_("set up"), "failed": N_("failed"), "running": N_("running"),
    "planned": N_("planned"), "suspended": N_("suspended"), "deleted": N_("deleted"), "stopped": N_("stopped"),
    "healthy": N_("answers"), "unhealthy": N_("does not answer"), "unknown": N_("unknown"),
}  # fmt: skip
# What an instance's last upgrade did, by its status (placeholders: to, at, version).
UPGRADE_TEXTS = {
    "running": N_("update to %(to)s in progress"),
    "succeeded": N_("updated to %(to)s on %(at)s"),
    "rolled_back": N_("update to %(to)s cancelled on %(at)s: version %(version)s runs, your data is intact"),
    "rollback_failed": N_("update to %(to)s failed on %(at)s: the admins know"),
    "refused": N_("update to %(to)s postponed on %(at)s"),
}
# The phases of a run as members read them (see members_progress).
PHASES = {
    "started": N_("starting the set-up"),
    "checking health through Caddy": N_("checking that the service answers"),
    "finished": N_("finished"),
    "failed": N_("stopped on an error: the admins will see it"),
}


@cache
def catalog(language: str) -> GNUTranslations:
    """The compiled catalog of ``language`` (read from its .po file once per process)."""
    if language not in LANGUAGES:
        raise ValueError(f"no catalog for language {language!r}")
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        messages = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, messages)  # fuzzy entries are left out: they show the English text
    compiled.seek(0)
    return GNUTranslations(compiled)


class Translator:
    """The texts of one language: ``_("Request #%(id)s", id=3)``; values are filled in after translation."""

    def __init__(self, language: str) -> None:
        self.language = language
        self._catalog = catalog(language)

    def __call__(self, message: str, **values) -> str:
        translated = self._catalog.gettext(message)
        return translated % values if values else translated

    def label(self, value: str) -> str:
        """A recorded value (state, health, size) in words; an unknown value as it is."""
        return self(LABELS[value]) if value in LABELS else value

    def upgrade_text(self, upgrade) -> str:
        """What an instance's last upgrade did (``upgrade``: status, to, at, version)."""
        fields = upgrade if isinstance(upgrade, dict) else upgrade.model_dump()
        text = UPGRADE_TEXTS.get(fields["status"])
        return "" if text is None else self(text, to=fields["to"], at=fields["at"], version=fields["version"])


def translator(language: str) -> Translator:
    return Translator(language)


def choose_language(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """Give the language of a request: ?lang=, else the cookie, else the browser's first known one, else French."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return LANGUAGES[0]


def members_progress(line: str, _: Translator) -> str:
    """Give what a member reads of a run's progress ``line``: the step's name or a translated phase.

    The worker's lines are written for admins and may name paths, servers or error messages; a
    member sees only the playbook's step names (ours) and the phases, in their language.
    """
    if not line:
        return ""
    if line.startswith("task: "):
        return _("step: %(step)s", step=line.removeprefix("task: ")[:200])
    if line.startswith("interrupted"):
        return _("interrupted, the set-up will start again")
    return _(PHASES.get(line, N_("in progress")))
