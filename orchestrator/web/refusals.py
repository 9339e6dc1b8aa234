"""What members and admins read when a form or an API call is refused: texts of the catalogs, in their language,
each naming the field it concerns.

The actions (``submit_in_session``, ``submit_application``, an admin's decision) raise errors written in English
for the command line. The web layer checks the values itself first, field by field (the same rules), and says
what is wrong in the visitor's language; an error an action still raises is shown by its kind (NotFound,
Conflict, QuotaExceeded...) with a translated text, never as its raw English message to a member.
"""

from __future__ import annotations

from pydantic import ValidationError

from orchestrator.catalog import SIZES, Parameter, Service, parameter_problem
from orchestrator.errors import Conflict, InvalidInput, NotFound, QuotaExceeded, RucheError
from orchestrator.i18n import N_, Translator
from orchestrator.state.associations import AssociationSpec, is_slug

MESSAGE_MAX_LENGTH = 2000

NAME_INVALID = N_(
    "%(field)s: “%(value)s” cannot be used: use lower-case letters a-z, digits 0-9 and single dashes between "
    "them, 32 characters at most (for example agenda-2)."
)
SLUG_INVALID = N_(
    "%(field)s: use lower-case letters a-z, digits 0-9 and single dashes between them, 32 characters at most "
    "(for example jardin-partage)."
)
NAME_TAKEN = N_(
    "%(field)s: your association already has a service or a request named “%(value)s”: choose another name."
)
CHOOSE_ONE = N_("%(field)s: choose one of: %(choices)s.")
REQUIRED = N_("%(field)s: this field is required, fill it in.")
TOO_LONG = N_("%(field)s: %(max)s characters at most.")
CONTROL_CHARACTERS = N_("%(field)s: line breaks and control characters are not accepted.")
NOT_AN_EMAIL = N_("%(field)s: this is not an e-mail address (expected something like name@example.org).")
NOT_A_LOCALE = N_("%(field)s: expected a language code such as fr or fr_FR.")
NOT_A_BOOLEAN = N_("%(field)s: choose yes or no.")
NOT_A_NUMBER = N_("%(field)s: expected a whole number, such as 12.")
TOO_SMALL = N_("%(field)s: %(minimum)s at least.")
TOO_LARGE = N_("%(field)s: %(maximum)s at most.")
UNKNOWN_PARAMETER = N_("%(field)s: this service has no such setting (its settings: %(known)s).")
UNKNOWN_SERVICE = N_("service: the catalogue has no service “%(service)s” (GET /espace/demande lists them).")
NOT_ACCEPTED = N_("%(field)s: this value is not accepted; check it and try again.")
NOT_RECORDED = N_(
    "The request could not be recorded: check the values and send it again. If it happens again, tell "
    "%(collective)s's admins."
)

# The fields' names as a form shows them (the API names its own keys).
FIELD_NAMES = {
    "name": N_("Name of the service"),
    "size": N_("Size"),
    "slug": N_("Short name"),
    "association_name": N_("Name of the association"),
    "email": N_("Contact e-mail address"),
    "message": N_("A few words on what you need"),
}


def request_problems(service: Service, *, name: str | None, size: str, parameters: dict[str, str], _: Translator,
                     field_name=None) -> list[str]:  # fmt: skip
    """What is wrong with a member's request for ``service``, one translated text per field (empty: nothing).
    ``field_name(key, parameter)`` names a field (default: the form's labels in the member's language)."""
    if field_name is None:
        field_name = form_field_name(_)
    problems = []
    instance_name = name or service.id
    if not is_slug(instance_name):
        problems.append(_(NAME_INVALID, field=field_name("name", None), value=instance_name[:40]))
    if size not in SIZES:
        problems.append(_(CHOOSE_ONE, field=field_name("size", None), choices=", ".join(_.label(s) for s in SIZES)))
    known = {p.name: p for p in service.parameters}
    for key in parameters:
        if key not in known:
            problems.append(_(UNKNOWN_PARAMETER, field=field_name(key, None)[:40], known=", ".join(known) or "-"))
    for parameter in service.parameters:
        value = parameters.get(parameter.name, parameter.default)
        if value is None:
            if parameter.required:
                problems.append(_(REQUIRED, field=field_name(parameter.name, parameter)))
            continue
        problem = parameter_problem(parameter, value)
        if problem is not None:
            code, values = problem
            problems.append(_(PARAMETER_TEXTS[code], field=field_name(parameter.name, parameter), **values))
    return problems


def form_field_name(_: Translator):
    def name(key: str, parameter: Parameter | None) -> str:
        if parameter is not None:
            return getattr(parameter.label, _.language, parameter.label.fr)
        return _(FIELD_NAMES[key]) if key in FIELD_NAMES else key

    return name


def api_field_name(key: str, parameter: Parameter | None) -> str:
    return key if parameter is None else f"parameters.{key}"


# The catalogue's parameter rules (orchestrator.catalog.parameter_problem), by their code.
PARAMETER_TEXTS = {
    "too_long": TOO_LONG,
    "control_characters": CONTROL_CHARACTERS,
    "not_an_email": NOT_AN_EMAIL,
    "not_a_locale": NOT_A_LOCALE,
    "not_a_boolean": NOT_A_BOOLEAN,
    "not_a_choice": CHOOSE_ONE,
    "not_a_number": NOT_A_NUMBER,
    "too_small": TOO_SMALL,
    "too_large": TOO_LARGE,
}


def submission_error_text(error: RucheError, *, name: str, collective: str, _: Translator, field: str) -> str:
    """What a member reads when submit_in_session refuses what the checks above let through, by the error's
    kind: the name taken (Conflict), anything else a general text (the English message stays in the logs)."""
    if isinstance(error, Conflict) and not isinstance(error, QuotaExceeded):
        return _(NAME_TAKEN, field=field, value=name)
    return _(NOT_RECORDED, collective=collective)


# pydantic's error types, as the join form's fields meet them (see join_problems).
PYDANTIC_TEXTS = {
    "missing": REQUIRED,
    "string_too_short": REQUIRED,
    "string_too_long": TOO_LONG,
}
JOIN_FIELDS = {"slug": "slug", "name": "association_name", "email": "email"}


def join_problems(values: dict[str, str], _: Translator) -> list[str]:
    """What is wrong with an application to join, one translated text per field (pydantic's errors of the
    association's fields mapped to texts by field and type)."""
    problems = []
    try:
        AssociationSpec(slug=values.get("slug", ""), name=values.get("name", ""), email=values.get("email", ""))
    except ValidationError as error:
        for found in error.errors():
            key = str(found.get("loc", ("",))[0])
            field = _(FIELD_NAMES[JOIN_FIELDS[key]]) if key in JOIN_FIELDS else key
            kind = found.get("type", "")
            if key == "slug" and kind != "missing":
                problems.append(_(SLUG_INVALID, field=field))
            elif key == "email" and kind == "string_pattern_mismatch":
                problems.append(_(NOT_AN_EMAIL, field=field))
            elif key == "name" and kind == "string_pattern_mismatch":
                problems.append(_(CONTROL_CHARACTERS, field=field))
            elif kind in PYDANTIC_TEXTS:
                problems.append(
                    _(PYDANTIC_TEXTS[kind], field=field, max=(found.get("ctx") or {}).get("max_length", ""))
                )
            else:
                problems.append(_(NOT_ACCEPTED, field=field))
    if len(values.get("message", "")) > MESSAGE_MAX_LENGTH:
        problems.append(_(TOO_LONG, field=_(FIELD_NAMES["message"]), max=MESSAGE_MAX_LENGTH))
    return problems


class Refused(InvalidInput):
    """A refusal whose message is already a translated text for the page (raised by a route's own checks)."""


ADMIN_NOT_FOUND = N_("Nothing was changed: this request or application does not exist (any more). Reload the page.")
ADMIN_OVER_OFFER = N_(
    "Not approved: the association's offer does not allow it. Give it a larger offer, or approve it over its "
    "offer from the command line (ruche request approve ID --over-quota). Details: %(detail)s"
)
ADMIN_BEYOND_OFFER = N_(
    "Not approved: it is beyond the association's offer (%(offer)s): %(excesses)s. Give it a larger offer, or "
    "approve it over its offer from the command line (ruche request approve ID --over-quota)."
)
EXCESS = N_("%(limit)s %(requested)s where the offer allows %(allowed)s (%(over)s over)")
LIMIT_NAMES = {"instances": N_("services"), "memory": N_("memory"), "disk": N_("disk")}


def excesses_text(excesses, _: Translator) -> str:
    """The limits an offer would pass (quotas.Excess), in the reader's language."""
    return "; ".join(
        _(EXCESS, limit=_(LIMIT_NAMES.get(e.limit, e.limit)), requested=quantity(e.requested, e.unit),
          allowed=quantity(e.allowed, e.unit), over=quantity(e.over, e.unit))
        for e in excesses
    )  # fmt: skip


def quantity(value: float, unit: str) -> str:
    return f"{value:g} {unit}" if unit else f"{value:g}"


ADMIN_CONFLICT = N_(
    "Nothing was changed: it conflicts with the current state (already decided, a name already taken, or no "
    "server with room). Reload the page. Details: %(detail)s"
)
ADMIN_INVALID = N_("Nothing was changed: a value is not accepted. Details: %(detail)s")
ADMIN_FAILED = N_("Nothing was changed: the action failed. Details: %(detail)s")


def admin_error_text(error: RucheError, _: Translator) -> str:
    """What an admin reads when a decision is refused, by the error's kind (the details, for the admin who
    will act on them, follow as the action wrote them)."""
    if isinstance(error, Refused):
        return error.message
    if isinstance(error, NotFound):
        return _(ADMIN_NOT_FOUND)
    detail = str(error).replace("\n", " ")
    if isinstance(error, QuotaExceeded):
        if error.excesses:
            return _(ADMIN_BEYOND_OFFER, offer=error.offer, excesses=excesses_text(error.excesses, _))
        return _(ADMIN_OVER_OFFER, detail=detail)
    if isinstance(error, Conflict):
        return _(ADMIN_CONFLICT, detail=detail)
    if isinstance(error, InvalidInput):
        return _(ADMIN_INVALID, detail=detail)
    return _(ADMIN_FAILED, detail=detail)
