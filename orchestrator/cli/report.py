"""``ruche report``."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.actions.report import chatonsinfos_files, transparency_report
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json


@click.command()
@click.option(
    "--lang",
    "language",
    type=click.Choice(["fr", "en"]),
    default="fr",
    show_default=True,
    help="Language of the report.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["md", "html"]),
    default="md",
    show_default=True,
    help="Markdown, or a single static HTML page (no script, no outside resource).",
)
@click.option(
    "--days", type=click.IntRange(1, 3660), default=30, show_default=True, help="The period it covers, ending now."
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write it to this file (default: print it)."
)
@click.option(
    "--chatonsinfos",
    "chatonsinfos_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the collective's ChatonsInfos files (organization.properties and one SERVICE.properties per "
    "service it offers) into this directory instead; `ruche serve` publishes them at /.well-known/chatonsinfos/.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the report's figures as JSON instead of its text (-o still writes it).",
)
@pass_context
def report(context: Context, language: str, format_: str, days: int, output: Path | None,
           chatonsinfos_dir: Path | None, as_json: bool) -> None:  # fmt: skip
    """The collective's transparency report, for its public page: services and versions, associations hosted
    (named only if they agreed: `ruche association listing`), where the data lives (servers and their labels),
    backups and their verification, availability from recorded health checks, incidents, the versions the
    instances run (how many have been on one older than new instances get for over a month, how many on one
    past its upstream support), the software used.

    With --chatonsinfos DIR: the ChatonsInfos files (StatoolInfos' format) from the state, the catalogue and
    ruche.toml's [chatonsinfos]; a mandatory value missing there is refused by its key, nothing written."""
    if chatonsinfos_dir is not None:
        if output is not None:
            raise click.UsageError("--chatonsinfos writes its files into its own directory: leave out -o/--output")
        written = chatonsinfos_files(context.workspace, chatonsinfos_dir)
        if as_json:
            emit_json(written)
        else:
            for entry in written["files"]:
                click.echo(f"{entry['file']}  (published at {entry['url']})")
            for stale in written["removed"]:
                click.echo(f"{stale} removed (a service no longer offered)")
        return
    result = transparency_report(context.workspace, language=language, format=format_, days=days, output=output)
    if as_json:
        emit_json({key: value for key, value in result.items() if key != "text"})
    elif output is None:
        click.echo(result["text"], nl=False)
    else:
        click.echo(f"transparency report ({language}, {format_}, {days} days) written to {output}")
