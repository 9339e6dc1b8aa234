"""What the member's space (/espace) says of each service and of the offer, in the member's words and language:
the service by its name and what it is for, its address once it runs, its health and last good backup as
"backed up 3 h ago" (Babel, the member's locale), its size in memory and disk, the offer's figures as bars, and
the updates: one under way, else the last one done (the state records no upgrade planned ahead); the footprint of
its services over the last full month (its own shares only: operations/footprint, docs/footprint.md)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from babel.dates import format_datetime, format_skeleton, format_timedelta
from babel.numbers import format_decimal
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.catalog import Catalog, Service
from orchestrator.config import WorkspaceConfig
from orchestrator.i18n import N_, Translator
from orchestrator.operations.footprint import footprint, last_full_month
from orchestrator.state.backups import runs_of
from orchestrator.state.database import StateStore
from orchestrator.state.instances import ACTIVE_STATES, list_instances
from orchestrator.state.models import Instance, Upgrade, WebSession, as_utc, utc_now
from orchestrator.state.upgrades import latest_upgrades

logger = logging.getLogger(__name__)

SIZE_NAMES = ("small", "medium", "large")
BACKED_UP = N_("backed up %(ago)s")
NEVER_BACKED_UP = N_("not backed up yet: the first backup runs in the night after it is set up")
CHECKED = N_("%(health)s (checked %(ago)s)")
NOT_CHECKED = N_("not checked yet")
ADDRESS_LATER = N_("given once it runs")
SIZE_TEXT = N_("%(size)s: %(memory)s MiB of memory, %(disk)s GiB of disk")
LAST_UPDATE = N_("Last update: %(what)s. No other update is planned yet.")
NO_UPDATE = N_("No update yet. No update is planned yet.")
UPDATE_RUNNING = N_("Maintenance under way: %(what)s. The service may not answer for a few minutes.")
MAINTENANCE_WINDOW = N_(
    "Updates of your services happen between %(start)s and %(end)s (UTC), your offer's maintenance window: a "
    "service may not answer for a few minutes then."
)


def maintenance_text(window: str | None, _: Translator) -> str:
    """When updates may touch the association's services (its offer's ``maintenance_window``), or "" (any time)."""
    if not window:
        return ""
    start, end = window.split("-")
    return _(MAINTENANCE_WINDOW, start=start, end=end)


def ago(moment: datetime, _: Translator) -> str:
    """How long ago ``moment`` was, in the member's language ("il y a 3 h", "3 hr. ago")."""
    return format_timedelta(as_utc(moment) - utc_now(), add_direction=True, format="short", locale=_.language)


def when(moment: datetime, _: Translator) -> str:
    """A date and time in the member's language (UTC, said so)."""
    return format_datetime(as_utc(moment), format="medium", tzinfo="UTC", locale=_.language) + " UTC"


def size_text(service: Service | None, size: str, _: Translator) -> str:
    resources = getattr(service.sizes, size, None) if service is not None and size in SIZE_NAMES else None
    if resources is None:
        return _.label(size)
    return _(SIZE_TEXT, size=_.label(size), memory=resources.memory_mb, disk=resources.disk_gb)


@dataclass
class ServiceCard:
    """One of the association's services as its page shows it."""

    address: str
    name: str
    service_id: str
    service_name: str
    purpose: str
    url: str | None
    address_text: str
    state: str
    health: str
    backup: str
    size: str
    version: str
    update: str
    updating: bool


def service_cards(session: Session, catalog: Catalog, signed_in: WebSession, _: Translator) -> list[ServiceCard]:
    instances = [i for i in list_instances(session, association=signed_in.association.slug) if i.state in ACTIVE_STATES]
    upgrades = latest_upgrades(session, [i.address for i in instances])
    return [card(session, catalog, instance, upgrades.get(instance.address), _) for instance in instances]


def card(session: Session, catalog: Catalog, instance: Instance, upgrade: Upgrade | None, _: Translator) -> ServiceCard:
    service = catalog.services.get(instance.service_id)
    lang = _.language
    last = next((r for r in runs_of(session, instance.address, kind="backup") if r.status == "success"), None)
    running = instance.state == "running"
    if instance.health_checked_at is not None:
        health = _(CHECKED, health=_.label(instance.health), ago=ago(instance.health_checked_at, _))
    else:
        health = _(NOT_CHECKED)
    updating = upgrade is not None and upgrade.status == "running"
    if upgrade is None:
        update = _(NO_UPDATE)
    else:
        what = _.upgrade_text({"status": upgrade.status, "to": upgrade.to_version, "version": instance.service_version,
                               "at": when(upgrade.finished_at or upgrade.started_at, _)})  # fmt: skip
        update = _(UPDATE_RUNNING if updating else LAST_UPDATE, what=what)
    return ServiceCard(
        address=instance.address, name=instance.name, service_id=instance.service_id,
        service_name=service.name.model_dump()[lang] if service else instance.service_id,
        purpose=service.description.model_dump()[lang] if service else "",
        url=f"https://{instance.domain}/" if running else None, address_text=_(ADDRESS_LATER),
        state=_.label(instance.state), health=health,
        backup=_(BACKED_UP, ago=ago(last.finished_at, _)) if last and last.finished_at else _(NEVER_BACKED_UP),
        size=size_text(service, instance.size, _), version=instance.service_version, update=update, updating=updating,
    )  # fmt: skip


@dataclass
class Bar:
    """One figure of the offer: ``used`` of ``allowed`` (a <meter>), and its text."""

    key: str
    text: str
    used: int
    allowed: int


OFFER_FIGURES = {
    "instances": N_("Services: %(used)s of %(allowed)s"),
    "memory": N_("Memory: %(used)s MiB of %(allowed)s MiB"),
    "disk": N_("Disk: %(used)s GiB of %(allowed)s GiB"),
}


def offer_bars(quota: dict | None, _: Translator) -> list[Bar]:
    """The offer's figures (``quota``: a QuotaView's fields) as bars; none without an offer."""
    if quota is None:
        return []
    pairs = {
        "instances": ("instances", "max_instances"),
        "memory": ("memory", "max_memory"),
        "disk": ("disk", "max_disk"),
    }
    return [Bar(key=key, text=_(OFFER_FIGURES[key], used=quota[used], allowed=quota[allowed]), used=quota[used],
                allowed=quota[allowed]) for key, (used, allowed) in pairs.items()]  # fmt: skip


@dataclass
class SizeGuide:
    """What small, medium and large mean for one service of the catalogue."""

    service_name: str
    sizes: list[str] = field(default_factory=list)


def size_guide(catalog: Catalog, service_ids: list[str], _: Translator) -> list[SizeGuide]:
    """What the sizes mean for each of ``service_ids`` (the association's services; the request form says it for
    the one asked for)."""
    services = [catalog.services[i] for i in dict.fromkeys(service_ids) if i in catalog.services]
    return [SizeGuide(service.name.model_dump()[_.language], [size_text(service, size, _) for size in SIZE_NAMES])
            for service in services]  # fmt: skip


# The fleet's footprint of the last full month (UTC), computed once and kept for FOOTPRINT_SECONDS by month in
# WebApp.kept, each association's page taking its own figures from it: a month takes seconds to compute at 30,000
# instances, and a past month changes only if samples arrive late.
FOOTPRINT_SECONDS = 3600
FOOTPRINT_INLINE_INSTANCES = 2000  # a larger fleet's month is computed in a thread, not in the page's request
_footprint_lock = threading.Lock()
_footprint_computing: set[tuple] = set()  # months being computed
FOOTPRINT_LINES = {
    "cpu_hours": (N_("Computing"), N_("%(amount)s hours of processor work (one processor core busy for an hour each)")),
    "memory_gb_hours": (N_("Memory"), N_("%(amount)s GB-hours, i.e. %(average)s GB held on average")),
    "storage_gb_months": (N_("Storage"), N_("%(amount)s GB-months of files and databases (1 GB kept a whole month counts 1)")),
    "backup_gb_months": (N_("Backups"), N_("%(amount)s GB-months of backup copies (their size before deduplication)")),
    "energy_kwh": (N_("Electricity"), N_("%(amount)s kWh, cooling and the rest of the building included")),
    "carbon_kg_co2e": (N_("Greenhouse gases"), N_("%(amount)s kg CO2e to produce that electricity")),
    "embodied_kg_co2e": (N_("Manufacturing"), N_("%(amount)s kg CO2e: your share of making the servers, counted apart")),
}  # fmt: skip
FOOTPRINT_COMPUTING = N_("The figures for %(month)s (UTC) are being computed: reload this page in a minute.")
FOOTPRINT_PERIOD = N_("Over %(month)s (UTC), your services used:")
FOOTPRINT_NOT_MEASURED = N_(
    "Not measured yet for %(month)s (UTC): the figures appear once your services' use has been recorded over a month."
)
FOOTPRINT_ESTIMATES = N_(
    "These are estimates: the collective measures what your services use, not the servers' watts. Your share of "
    "a server follows the memory your services reserve and the processor time they use."
)
FOOTPRINT_PUE = N_(
    "The servers' electricity is multiplied by %(pue)s (the PUE: what the building uses in all for each kWh the "
    "servers use)."
)
FOOTPRINT_GRID = N_("Greenhouse gases per kWh of the grid your servers are on: %(intensities)s.")
FOOTPRINT_INTENSITY = N_("%(grams)s g CO2e (%(country)s)")
FOOTPRINT_WORLD = N_("world average")
FOOTPRINT_METHOD = N_(
    "The method and the sources of each figure: ruche's docs/footprint.md; the collective's admins can tell you more."
)


@dataclass
class FootprintView:
    """The association's footprint as its page shows it: the month, and its figures as (term, text), or none."""

    period: str
    lines: list[tuple[str, str]]
    method: list[str]


def own_footprint(kept: dict, store: StateStore, config: WorkspaceConfig, association: str, now: datetime) -> dict:
    """The association's own figures for the last full month before ``now`` (``{"start", "measured", "computing",
    "figures", "hours", "pue", "intensities"}``). Only its own: no other association's, no server's name or total.
    The fleet's month is computed once (shares are of whole servers, so one association's figures need the whole
    fleet's use) and kept FOOTPRINT_SECONDS in ``kept`` for every association's page. A fleet of more than
    FOOTPRINT_INLINE_INSTANCES instances is computed in a thread of its own (seconds to tens of seconds at 30,000:
    benchmarks/footprint_scale.py), the page saying so meanwhile, or showing the figures kept until then."""
    start, end = last_full_month(now)
    key = ("footprint", start.isoformat())
    with _footprint_lock:
        found = kept.get(key)
        due = (found is None or time.monotonic() - found[0] >= FOOTPRINT_SECONDS) and key not in _footprint_computing
        if due:
            _footprint_computing.add(key)
    if due:
        with store.session() as session:
            inline = session.scalar(select(func.count(Instance.id))) <= FOOTPRINT_INLINE_INSTANCES
        if inline:
            _compute_footprint(kept, store, config, key, start, end)
            found = kept.get(key)
        else:
            threading.Thread(target=_compute_footprint, args=(kept, store, config, key, start, end), daemon=True,
                             name="ruche-footprint").start()  # fmt: skip
    if found is None:
        return {"start": start, "measured": False, "computing": key in _footprint_computing}
    result = found[1]
    entry = next((a for a in result["associations"] if a["slug"] == association), None)
    measured = entry is not None and bool(entry["instances"])
    figures, intensities = {}, []
    if measured:
        figures = {key: entry[key] for key in FOOTPRINT_LINES if key != "storage_gb_months"}
        figures["storage_gb_months"] = entry["disk_gb_months"] + entry["database_gb_months"]
        on = {instance["server"] for instance in entry["instances"]}
        intensities = sorted({(server["country"] or "", server["intensity_g_per_kwh"]) for server in result["servers"]
                              if server["name"] in on or (server["role"] == "backup" and entry["backup_gb_months"])})  # fmt: skip
    return {"start": start, "measured": measured, "computing": False, "figures": figures,
            "hours": result["period"]["hours"], "pue": result["method"]["pue"]["value"], "intensities": intensities}  # fmt: skip


def _compute_footprint(kept: dict, store: StateStore, config: WorkspaceConfig, key: tuple, start: datetime,
                       end: datetime) -> None:  # fmt: skip
    """The fleet's footprint of [start, end) into ``kept`` under ``key``, in a session of its own; a failure is
    logged and leaves what was kept (the page says "not measured yet" or shows the figures of before)."""
    try:
        with store.session() as session:
            result = footprint(session, config, start=start, end=end)
        with _footprint_lock:
            now_seconds = time.monotonic()
            for old in [
                k for k, (at, _) in kept.items() if k[0] == "footprint" and now_seconds - at >= FOOTPRINT_SECONDS
            ]:
                del kept[old]
            kept[key] = (now_seconds, result)
    except Exception:  # noqa: BLE001 (a page must not fail for its footprint section)
        logger.exception("the footprint of %s could not be computed", key[1])
    finally:
        with _footprint_lock:
            _footprint_computing.discard(key)


def amount(value: float, language: str) -> str:
    """A figure in the member's locale: two decimals at most, three below 1 (0,004 kg)."""
    return format_decimal(value, format="#,##0.##" if abs(value) >= 1 else "0.###", locale=language)


def footprint_view(own: dict, _: Translator) -> FootprintView:
    """``own`` (own_footprint) in the member's words and language; "not measured yet" rather than zeros."""
    month = format_skeleton("yMMMM", own["start"], locale=_.language)
    if not own["measured"]:
        text = FOOTPRINT_COMPUTING if own.get("computing") else FOOTPRINT_NOT_MEASURED
        return FootprintView(period=_(text, month=month), lines=[], method=[])
    figures = own["figures"]
    lines = []
    for key, (term, text) in FOOTPRINT_LINES.items():
        values = {"amount": amount(figures[key], _.language)}
        if key == "memory_gb_hours":
            values["average"] = amount(figures[key] / own["hours"] if own["hours"] else 0.0, _.language)
        lines.append((_(term), _(text, **values)))
    intensities = ", ".join(_(FOOTPRINT_INTENSITY, grams=amount(grams, _.language), country=country or _(FOOTPRINT_WORLD))
                            for country, grams in own["intensities"])  # fmt: skip
    method = [_(FOOTPRINT_ESTIMATES), _(FOOTPRINT_PUE, pue=amount(own["pue"], _.language))]
    if intensities:
        method.append(_(FOOTPRINT_GRID, intensities=intensities))
    method.append(_(FOOTPRINT_METHOD))
    return FootprintView(period=_(FOOTPRINT_PERIOD, month=month), lines=lines, method=method)
