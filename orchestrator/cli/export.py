"""``ruche export``."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.actions.data_export import export_association
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json


@click.command("export")
@click.argument("association")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path), help="Archive to write (.tar.gz).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_context
def export(context: Context, association: str, output: Path, as_json: bool, quiet: bool) -> None:
    """Write ASSOCIATION's data (database dumps, files, manifest with checksums) to an archive readable without ruche."""
    result = export_association(
        context.workspace, association, output, progress=ProgressPrinter(not quiet and not as_json)
    )
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{result['output']}: {len(result['instances'])} instance(s), {result['files']} file(s), "
                   f"{result['size']} bytes, sha256 {result['sha256']}")  # fmt: skip
