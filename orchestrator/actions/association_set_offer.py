"""``ruche association set-offer``: move an association to another quota package (recorded)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.errors import QuotaExceeded
from orchestrator.quotas import check_offer_name, excesses
from orchestrator.state.associations import association_as_dict, get_association, set_alert_choice
from orchestrator.state.events import record_event
from orchestrator.state.instances import allocation


def set_offer(workspace_path: Path | None, slug: str, offer_name: str, *, over_quota: bool = False) -> dict:
    """Put association ``slug`` on offer ``offer_name`` and record who did it; give the association.

    Refused with QuotaExceeded when its instances already take more than the new offer allows,
    unless ``over_quota`` (recorded as such). Raises InvalidInput for an unknown offer, NotFound
    for an unknown association; the state is unchanged on any error.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        check_offer_name(workspace.config.offers, offer_name)
        association = get_association(session, slug)
        used = allocation(session, association.id)
        offer = workspace.config.offers[offer_name]
        over = excesses(offer, used, instances=0)
        if over and not over_quota:
            raise QuotaExceeded(
                f"{slug}'s instances already take more than offer {offer_name!r} allows: "
                + "; ".join(e.describe() for e in over),
                hint="delete or shrink instances first, or add --over-quota to record an exception",
            )
        previous = association.offer
        association.offer = offer_name
        record_event(session, kind="offer.set", subject=slug, association=slug,
                     detail={"from": previous, "to": offer_name, "excesses": [e.as_dict() for e in over]})  # fmt: skip
        return association_as_dict(association)


def set_listing(workspace_path: Path | None, slug: str, *, listed: bool) -> dict:
    """Record whether association ``slug`` agreed to be named in the transparency report; give the association."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        association = get_association(session, slug)
        association.listed = listed
        record_event(session, kind="listing.agreed" if listed else "listing.withdrawn", subject=slug, association=slug,
                     detail={})  # fmt: skip
        return association_as_dict(association)


def set_alerts(workspace_path: Path | None, slug: str, *, opt_in: bool | None, language: str | None) -> dict:
    """Record whether association ``slug`` is told by mail (its contact address, in ``language``) of the alerts on
    its own instances (None: keep); give the association."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        association = get_association(session, slug)
        set_alert_choice(session, association, opt_in=opt_in, language=language)
        view = association_as_dict(association)
        if association.alerts_opt_in and workspace.config.mail is None:
            view["warning"] = "no mail relay is configured ([mail]): nothing can be mailed until one is"
        return view
