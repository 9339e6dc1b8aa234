"""``ruche schema``."""

from __future__ import annotations

import click

from orchestrator.cli.render import emit_json


@click.command()
@click.argument("kind", type=click.Choice(["config", "catalog"]))
@click.option("--markdown", is_flag=True, help="The reference page (docs/reference/) instead of the JSON Schema.")
def schema(kind: str, markdown: bool) -> None:
    """Print the JSON Schema of ruche.toml (config) or of a catalogue entry (catalog), from ruche's own models.

    Editors validate the files with it (e.g. `ruche schema catalog > catalog.schema.json`); --markdown gives the
    reference page of docs/reference/, every field with its type, default and description."""
    from orchestrator import schemas

    if markdown:
        click.echo(schemas.markdown(kind), nl=False)
    else:
        emit_json(schemas.json_schema(kind))
