"""``ruche footprint``: one month's energy and carbon per association, instance and server."""

from __future__ import annotations

import csv
import io

import click
from babel.numbers import format_decimal

from orchestrator.actions.footprint import footprint as footprint_action
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, table, user_language
from orchestrator.footprint import FIGURES
from orchestrator.i18n import Translator

COLUMNS = ("cpu_hours", "memory_gb_hours", "disk_gb_months", "database_gb_months", "backup_gb_months", "energy_kwh",
           "carbon_kg_co2e", "embodied_kg_co2e", "total_kg_co2e")  # fmt: skip
HEADERS = ["CPU-H", "MEMORY GB-H", "DISK GB-M", "DATABASE GB-M", "BACKUP GB-M", "KWH", "KGCO2E ENERGY",
           "KGCO2E MANUFACTURING", "KGCO2E TOTAL"]  # fmt: skip


@click.command()
@click.option("--association", "-a", metavar="SLUG", help="Only this association (shares are still the fleet's).")
@click.option("--month", metavar="YYYY-MM", help="The month, in UTC (default: the last full month).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print everything as JSON, the constants used with their sources."
)
@click.option("--csv", "as_csv", is_flag=True, help="Print as CSV: associations, instances, servers, then constants.")
@pass_context
def footprint(context: Context, association: str | None, month: str | None, as_json: bool, as_csv: bool) -> None:
    """Energy (kWh) and carbon (kgCO2e) per association over a month: each instance's share of its server's idle
    power (by reserved memory), its own CPU-hours' share of the dynamic power, backups by GB-months, times the PUE
    and the grid's carbon intensity, plus the servers' manufacturing share. Constants: [footprint] in ruche.toml;
    the method: docs/footprint.md."""
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    language = user_language()
    result = footprint_action(context.workspace, association=association, month=month, language=language)
    if as_json:
        emit_json(result)
    elif as_csv:
        click.echo(as_csv_text(result), nl=False)
    else:
        click.echo(as_text(result, Translator(language)))


def as_csv_text(result: dict) -> str:
    """One row per association, instance, server, the collective's own and the totals, then one per constant."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["kind", "name", "association", "server", *FIGURES, "value"])
    period = result["period"]
    writer.writerow(["period", f"{period['start']}/{period['end']}", "", "", *[""] * len(FIGURES), period["hours"]])
    for entry in result["associations"]:
        writer.writerow(["association", entry["slug"], entry["slug"], "", *[entry[key] for key in FIGURES], ""])
        for instance in entry["instances"]:
            writer.writerow(["instance", instance["address"], entry["slug"], instance["server"],
                             *[instance[key] for key in FIGURES], ""])  # fmt: skip
    for server in result["servers"]:
        writer.writerow(["server", server["name"], "", server["name"], *[server.get(key, "") for key in FIGURES], ""])
    writer.writerow(["collective", "", "", "", *[result["collective"][key] for key in FIGURES], ""])
    writer.writerow(["total", "", "", "", *[result["totals"][key] for key in FIGURES], ""])
    for name, constant in result["method"].items():
        if isinstance(constant, dict) and "value" in constant:
            value = constant["value"]
            if isinstance(value, dict):
                value = ";".join(f"{key}={number}" for key, number in value.items())
            writer.writerow(["constant", name, "", "", *[""] * len(FIGURES), value])
    return out.getvalue()


def as_text(result: dict, _: Translator) -> str:
    """The tables (associations, their instances when one is asked for, servers) and the constants, numbers in the
    reader's locale."""

    def number(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else format_decimal(round(value, digits), format=f"#,##0.{'0' * digits}",
                                                        locale=_.language)  # fmt: skip

    def row(name: str, figures: dict) -> list[str]:
        return [name, *[number(figures.get(key)) for key in COLUMNS]]

    period = result["period"]
    lines = [_("Footprint from %(start)s to %(end)s (UTC, %(hours)s hours)", start=period["start"][:10],
               end=period["end"][:10], hours=number(period["hours"], 0))]  # fmt: skip
    rows = [row(entry["slug"], entry) for entry in result["associations"]]
    rows.append(row(_("(the collective's own)"), result["collective"]))
    rows.append(row(_("total"), result["totals"]))
    lines += ["", table(rows, ["ASSOCIATION", *HEADERS])]
    if len(result["associations"]) == 1:
        instances = [row(i["address"], i) for i in result["associations"][0]["instances"]]
        lines += ["", table(instances, ["INSTANCE", *HEADERS]) if instances else _("No instance measured.")]
    servers = [
        [s["name"], s["role"], s["country"] or "-", f"{number(100 * s['cpu_utilisation'], 1)} %",
         f"{number(100 * s['reserved_memory_share'], 1)} %", number(s["energy_kwh"]), number(s["carbon_kg_co2e"]),
         number(s["embodied_kg_co2e"]), number(s["total_kg_co2e"]),
         _("collective's own") if s["to_collective"] else _("shared")]
        for s in result["servers"]
    ]  # fmt: skip
    lines += ["", table(servers, ["SERVER", "ROLE", "COUNTRY", "CPU USED", "MEMORY RESERVED", "KWH", "KGCO2E ENERGY",
                                  "KGCO2E MANUFACTURING", "KGCO2E TOTAL", "CARRIED BY"])]  # fmt: skip
    lines += ["", _("Constants used ([footprint] in ruche.toml; the method: docs/footprint.md):")]
    for name, constant in result["method"].items():
        if isinstance(constant, dict) and "value" in constant:
            origin = _("default") if constant["default"] else _("set in ruche.toml")
            value = constant["value"]
            if isinstance(value, dict):  # each country: default or set
                shown = ", ".join(f"{k} {number(v, 1)} ({_('set in ruche.toml') if k in constant.get('set', ()) else _('default')})"
                                  for k, v in value.items())  # fmt: skip
                lines.append(f"  {name} = {shown}")
            elif isinstance(value, str):
                lines.append(f"  {name} = {value} ({origin})")
            else:
                lines.append(f"  {name} = {number(value, 3)} ({origin})")
    for name, own in result["method"]["servers"].items():
        lines.append("  " + _("server %(name)s: %(figures)s", name=name,
                              figures=", ".join(f"{k} {number(v, 1)}" for k, v in own.items())))  # fmt: skip
    return "\n".join(lines)
