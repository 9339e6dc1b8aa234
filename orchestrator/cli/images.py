"""``ruche images build``."""

from __future__ import annotations

import click

from orchestrator.actions.images_build import build_images
from orchestrator.cli.render import ProgressPrinter, emit_json


@click.group()
def images() -> None:
    """The lab's Debian-built service images, for the collective's own registry."""


@images.command()
@click.option(
    "--push", "registry", metavar="REGISTRY", help="Push each image as REGISTRY/NAME:TAG (host[:port][/path])."
)
@click.option("--insecure", is_flag=True, help="REGISTRY speaks plain HTTP (Podman's --tls-verify=false).")
@click.option(
    "--image", "names", multiple=True, metavar="NAME[:TAG]", help="Only this image (repeatable; default: all)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the images as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def build(registry: str | None, insecure: bool, names: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Build the images the lab's services run (Radicale, Miniflux, MediaWiki, PostgreSQL) from Debian packages,
    as `ruche lab up` does, and with --push put them in the collective's registry (`podman login` to it first
    when it needs credentials). Needs root. Unchanged images are not built again.

    Then set `[images] registry = "REGISTRY"` in ruche.toml: those services are deployed from there, on any server.
    """
    if insecure and registry is None:
        raise click.UsageError("--insecure applies to --push REGISTRY")
    result = build_images(names=names, push=registry, tls_verify=not insecure, progress=ProgressPrinter(not quiet))
    if as_json:
        emit_json(result)
    else:
        for entry in result["images"]:
            click.echo(f"{entry['pushed']} {entry['digest']}" if entry["pushed"] else f"{entry['local']} (built)")
    if result["setting"]:
        click.echo(
            "\nruche deploys these images from there once ruche.toml says (then `ruche apply`):\n"
            + "\n".join(f"  {line}" for line in result["setting"].splitlines()),
            err=True,
        )
    else:
        click.echo("\nbuilt only: push them with `ruche images build --push REGISTRY`", err=True)
