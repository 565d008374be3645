"""The `parity` command. Thin: parses options, calls the module that does the work, maps errors to exit codes.

Exit codes: 0 parity holds · 1 unwaived divergences · 2 bad input · 3 infrastructure.
An expected failure (`ParityError`) prints one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from conformance.engines.reaper import install_interrupt_handlers
from conformance.errors import InfrastructureError, ParityError

REPORT_FORMATS = ("text", "json", "junit", "markdown", "html")
DEFAULT_CONFIG = "parity.yaml"


class ParityGroup(click.Group):
    """Turns ParityError and Ctrl-C into their exit codes with a one-line message."""

    def invoke(self, ctx: click.Context):
        # Runs may happen on worker threads; only this (main) thread can make Ctrl-C/SIGTERM remove them.
        install_interrupt_handlers()
        try:
            return super().invoke(ctx)
        except ParityError as exc:
            click.echo(f"parity: {exc.one_line()}", err=True)
            if isinstance(exc, InfrastructureError) and exc.details:
                click.echo(exc.details.rstrip(), err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("parity: interrupted; everything this run started was removed", err=True)
            ctx.exit(130)


config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="parity.yaml: targets, probe scope, contract, waivers",
)


@click.group(cls=ParityGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="parity-conformance", prog_name="parity")
def cli() -> None:
    """Prove a workload sees the same world on Kubernetes and SageMaker."""


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="also write the snapshot here")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="use the probe scope of this parity.yaml",
)
def probe(out: Path | None, config_path: Path | None) -> None:
    """Snapshot the environment this process is in (no Docker needed)."""
    from conformance.local_probe import probe_command

    sys.exit(probe_command(out=out, config_path=config_path))


@cli.command()
@click.option("--target", "-t", required=True, help="target name in parity.yaml")
@config_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="snapshot file (default: .parity/snapshots/<target>.json beside parity.yaml)",
)
def run(target: str, config_path: Path, out: Path | None) -> None:
    """Run the probe in one target and write its snapshot."""
    from conformance.check import run_command

    sys.exit(run_command(config_path=config_path, target=target, out=out))


@cli.command()
@click.argument("left", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("right", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write the report here")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="take the contract and waivers from this parity.yaml (default: the built-in contract)",
)
def diff(left: Path, right: Path, fmt: str, out: Path | None, config_path: Path | None) -> None:
    """Compare two snapshots under the contract."""
    from conformance.check import diff_command

    sys.exit(diff_command(left=left, right=right, fmt=fmt, out=out, config_path=config_path))


@cli.command()
@config_option
@click.option("--update-baselines", is_flag=True, help="write new and changed baselines (atomically)")
@click.option(
    "--prune-baselines", is_flag=True, help="with --update-baselines: delete baselines no target uses"
)
@click.option(
    "--snapshots",
    "snapshots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="compare stored snapshots (<target>.json) instead of running the targets",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="write snapshots and reports (json, junit, markdown, html) here",
)
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="text", show_default=True)
@click.option("--target", "-t", "targets", multiple=True, help="only these targets (repeatable)")
def check(
    config_path: Path,
    update_baselines: bool,
    prune_baselines: bool,
    snapshots_dir: Path | None,
    out_dir: Path | None,
    fmt: str,
    targets: tuple[str, ...],
) -> None:
    """Run every target, diff the pairs and the golden baselines."""
    from conformance.check import check_command

    sys.exit(
        check_command(
            config_path=config_path,
            update_baselines=update_baselines,
            prune_baselines=prune_baselines,
            snapshots_dir=snapshots_dir,
            out_dir=out_dir,
            fmt=fmt,
            targets=list(targets),
        )
    )


@cli.command()
@config_option
@click.option(
    "--out-dir", type=click.Path(file_okay=False, path_type=Path), help="where the certificate goes"
)
@click.option(
    "--verify",
    type=click.Path(dir_okay=False, path_type=Path),
    help="re-check every digest of an existing certificate.json instead of certifying",
)
@click.option(
    "--snapshots",
    "snapshots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="certify stored snapshots (<target>.json) instead of running the targets",
)
def certify(config_path: Path, out_dir: Path | None, verify: Path | None, snapshots_dir: Path | None) -> None:
    """Check, then write a cutover certificate (JSON + Markdown) and every report."""
    from conformance.certify import certify_command

    sys.exit(
        certify_command(config_path=config_path, out_dir=out_dir, verify=verify, snapshots_dir=snapshots_dir)
    )


@cli.command()
@click.option(
    "--break",
    "break_name",
    metavar="CLASS",
    help="run the training job with one known compat-layer bug and show it caught (see --list-breaks)",
)
@click.option("--list-breaks", is_flag=True, help="list the bug classes --break takes, and exit")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="write snapshots and reports (json, junit, markdown, html) here",
)
@click.option(
    "--update-baselines",
    is_flag=True,
    help="write the demo's golden baselines (baselines/compat-demo/) from this clean run",
)
def demo(break_name: str | None, list_breaks: bool, out_dir: Path | None, update_baselines: bool) -> None:
    """The reference compat image on both emulated sides, end to end (needs Docker; builds the image)."""
    from conformance.demo import demo_command

    sys.exit(
        demo_command(
            break_name=break_name, list_breaks=list_breaks, out_dir=out_dir, update_baselines=update_baselines
        )
    )


@cli.command(name="schema")
@click.argument("which", type=click.Choice(["snapshot", "config", "report"]))
def schema_command(which: str) -> None:
    """Print a JSON Schema: the snapshot, parity.yaml, or the JSON report."""
    if which == "snapshot":
        from conformance.snapshot import snapshot_json_schema

        document = snapshot_json_schema()
    elif which == "config":
        from conformance.config import config_json_schema

        document = config_json_schema()
    else:
        from conformance.reports.schema import report_json_schema

        document = report_json_schema()
    click.echo(json.dumps(document, indent=2, sort_keys=True))


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except ParityError as exc:  # raised outside a command, e.g. while parsing
        click.echo(f"parity: {exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
