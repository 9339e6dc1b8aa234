"""`ruche footprint [--association A] [--month YYYY-MM]`: one month's energy and carbon per association, instance
and server (operations/footprint; the method: docs/footprint.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from orchestrator.actions.common import opened
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.i18n import Translator
from orchestrator.operations.footprint import footprint as fleet_footprint
from orchestrator.state.models import Association

MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # fullmatch: ASCII digits, nothing after


def month_range(month: str | None, now: datetime, _: Translator) -> tuple[datetime, datetime]:
    """[start, end) of ``month`` (YYYY-MM, UTC) or, without one, of the last full month before ``now``; a month
    not written so, or not over yet, is refused (InvalidInput) saying how to write one."""
    if month is None:
        this_month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        previous = (this_month.year, this_month.month - 1) if this_month.month > 1 else (this_month.year - 1, 12)
        return datetime(*previous, 1, tzinfo=UTC), this_month
    match = MONTH.fullmatch(month)
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise InvalidInput(_("--month %(month)s is not a month", month=repr(month)),
                           hint=_("write it YYYY-MM, e.g. --month %(example)s", example=now.strftime("%Y-%m")))  # fmt: skip
    year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    if start > now:  # before computing its end: 9999-12 has none a datetime can hold
        raise InvalidInput(_("--month %(month)s has not begun yet", month=month),
                           hint=_("give a past month, or leave --month out for the last full month"))  # fmt: skip
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if number == 12 else datetime(year, number + 1, 1, tzinfo=UTC)
    return start, min(end, now)


def footprint(workspace_path: Path | None, *, association: str | None = None, month: str | None = None,
              now: datetime | None = None, language: str = "en") -> dict:  # fmt: skip
    """The footprint of ``month`` (default: the last full month in UTC; the current month up to ``now``), of one
    association when given (NotFound naming it otherwise), as operations/footprint gives it."""
    _ = Translator(language)
    now = now or datetime.now(UTC)
    start, end = month_range(month, now, _)
    with opened(workspace_path) as (workspace, store), store.session() as session:
        association_id = None
        if association is not None:
            association_id = session.scalar(select(Association.id).where(Association.slug == association))
            if association_id is None:
                raise NotFound(_("no association %(slug)s", slug=repr(association)),
                               hint=_("`ruche association list` shows them"))  # fmt: skip
        return fleet_footprint(session, workspace.config, start=start, end=end, association_id=association_id)
