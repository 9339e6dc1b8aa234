"""``ruche domain add|verify|list|remove|primary``: associations' own domains."""

from __future__ import annotations

import click

from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table
from orchestrator.errors import OperationFailed

PROOF = """\b
How a domain is proven (`ruche domain verify`, and the worker every few minutes):
- the TXT record _ruche.DOMAIN holds the token `ruche domain add` gave;
- DOMAIN resolves (A/AAAA, or a CNAME to the server's name) to the instance's server only;
- an HTTP request to http://DOMAIN/ reaches that server's Caddy and gets back a one-time value.
Then it is attached: the instance's Caddy serves it with a certificate from [domains] acme_directory
(Let's Encrypt by default). A name another association holds, a name above or under it, and a name
under the collective's base_domain are refused. docs/own-domains.md says what to publish (French, English)."""


@click.group()
def domain() -> None:
    """Associations' own domains (wiki.amap-du-coin.org beside wiki.amap.COLLECTIVE-DOMAIN): claimed, proven,
    served with their own certificate, and watched (`ruche status`, `ruche audit`)."""


def _publish_text(result: dict) -> str:
    lines = [f"{result['domain']['shown']} for {result['domain']['instance']}: "
             f"{'claimed' if result['added'] else 'already claimed'} ({result['domain']['state']})",
             "Publish in the domain's DNS zone:"]  # fmt: skip
    lines += [f"  {record['line']}" for record in result["publish"]]
    lines.append(f"then: ruche domain verify {result['domain']['instance']} {result['domain']['domain']}")
    return "\n".join(lines)


def _fail_if_run_failed(run: dict | None, what: str) -> None:
    """Exit 1 (OperationFailed) when ``run``, the converge that ``what``, did not succeed."""
    if run and run["status"] != "successful":
        raise OperationFailed(f"the run {run['id']} that {what} failed",
                              hint=f"`ruche runs show {run['id']}`, then `ruche apply`")  # fmt: skip


@domain.command(epilog=PROOF)
@click.argument("address", metavar="ASSOCIATION/NAME")
@click.argument("name", metavar="DOMAIN")
@click.option("--primary", is_flag=True, help="Once proven, make it the address the application calls itself by.")
@click.option("--json", "as_json", is_flag=True, help="Print the claim and the records as JSON.")
@pass_context
def add(context: Context, address: str, name: str, primary: bool, as_json: bool) -> None:
    """Claim DOMAIN for the instance ASSOCIATION/NAME and print the DNS records to publish: a TXT record with the
    association's token, and the record that points DOMAIN at the instance's server. Adding it again prints them
    again. Exit 2 for a name that is not a domain, 5 for one that cannot be claimed."""
    from orchestrator.actions.domain_add import add_domain

    result = add_domain(context.workspace, address, name, primary=primary)
    if as_json:
        emit_json(result)
    else:
        click.echo(_publish_text(result))


@domain.command(epilog=PROOF)
@click.argument("address", metavar="[ASSOCIATION/NAME]", required=False)
@click.argument("name", metavar="[DOMAIN]", required=False)
@click.option("--wait", "wait_seconds", type=click.IntRange(0, 900), default=120, show_default=True,
              help="Seconds to wait for the certificates of the domains attached now.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def verify(context: Context, address: str | None, name: str | None, wait_seconds: int, as_json: bool,
           quiet: bool) -> None:  # fmt: skip
    """Check the proof of each pending domain (of ASSOCIATION/NAME, or its DOMAIN; every one without), attach
    those that hold and apply their instance, then wait for their certificates. Exit 1 when a domain is not
    proven or not served, each with what to fix."""
    from orchestrator.actions.domain_verify import verify_domains

    progress = ProgressPrinter(not quiet and not as_json)
    result = verify_domains(context.workspace, address, name, wait_seconds=wait_seconds, progress=progress)
    if as_json:
        emit_json(result)
    else:
        for proof in result["proofs"]:
            if proof["proven"]:
                click.echo(f"{proof['domain']}: proven, attached to {proof['instance']}")
            else:
                click.echo(f"{proof['domain']}: not proven yet:")
                click.echo("\n".join(f"  - {problem}" for problem in proof["problems"]))
        for served in result["served"]:
            click.echo(f"{served['domain']}: {'serving' if served['ok'] else 'FAILING'}: {served['detail']}")
        if not result["proofs"] and not result["served"]:
            click.echo("no domain to verify")
    failed = [p["domain"] for p in result["proofs"] if not p["proven"]]
    failed += [s["domain"] for s in result["served"] if not s["ok"]]
    failed += [f"run {r['run']} of {r['instance']}" for r in result["runs"] if r["status"] != "successful"]
    if failed:
        raise OperationFailed(f"not proven or not served: {', '.join(failed)}",
                              hint="fix what is said above, then run `ruche domain verify` again")  # fmt: skip


@domain.command("list")
@click.option("--association", help="Only this association's domains.")
@click.option("--check", is_flag=True, help="Look at each attached domain's certificate as served now (TLS).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def list_(context: Context, association: str | None, check: bool, as_json: bool) -> None:
    """List the own domains: instance, state (pending, verified, serving, failing), primary or not, and the
    certificate's issuer and expiry as last seen (--check looks now)."""
    from orchestrator.actions.domain_list import list_domains

    domains = list_domains(context.workspace, association=association, check=check)
    if as_json:
        emit_json(domains)
        return
    if not domains:
        click.echo("no own domain")
        return
    rows = [(d["shown"], d["instance"], d["state"], "yes" if d["primary"] else "no", d["certificate"]["issuer"] or "-",
             (d["certificate"]["not_after"] or "-")[:10], d["problem"] or d["certificate"]["detail"] or "")
            for d in domains]  # fmt: skip
    click.echo(table(rows, ["DOMAIN", "INSTANCE", "STATE", "PRIMARY", "ISSUER", "EXPIRES", "DETAIL"]))


@domain.command()
@click.argument("address", metavar="ASSOCIATION/NAME")
@click.argument("name", metavar="DOMAIN")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def remove(context: Context, address: str, name: str, yes: bool, as_json: bool, quiet: bool) -> None:
    """Take DOMAIN away from ASSOCIATION/NAME: the instance stops answering on it (applied at once) and the name is
    free again. Asks first, unless --yes."""
    from orchestrator.actions.domain_remove import remove_domain

    if not yes:
        click.confirm(f"{address} will stop answering on {name}. Go on?", abort=True, err=True)
    result = remove_domain(context.workspace, address, name, progress=ProgressPrinter(not quiet and not as_json))
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{result['domain']} removed from {address} (it was {result['was']})")
    _fail_if_run_failed(result["run"], f"withdraws {name}")


@domain.command()
@click.argument("address", metavar="ASSOCIATION/NAME")
@click.argument("name", metavar="[DOMAIN]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def primary(context: Context, address: str, name: str | None, as_json: bool, quiet: bool) -> None:
    """Make DOMAIN (attached) the name ASSOCIATION/NAME's application calls itself by (its links, mails, Site
    URL); without DOMAIN, the collective's name again. Applied at once; every name keeps answering."""
    from orchestrator.actions.domain_primary import set_primary

    result = set_primary(context.workspace, address, name, progress=ProgressPrinter(not quiet and not as_json))
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{address} calls itself {result['primary'] or 'by its collective name'}")
    _fail_if_run_failed(result["run"], "applies it")
