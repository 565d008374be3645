"""`parity demo`: the reference compat image (examples/compat-image/) on both emulated sides, end to end.

In order: build (or reuse) the image on the offline base image; start, on 127.0.0.1, what the SageMaker side
reaches at start-up — moto in server mode seeded with `seed.yaml`, a container-credentials server — and a
metrics gateway (a UDP listener); run the pod and the training job of `examples/compat-image/parity.yaml`
concurrently; record in each snapshot whether the probe's test metric arrived (`metrics.delivered`: at the
pod's StatsD sidecar, or at the gateway); then check both snapshots against each other and against the
committed baselines (`baselines/compat-demo/`) and print the report. `--break NAME` runs the job with one
known compat-layer bug (COMPAT_BREAK, catalogued in breaks.json) and succeeds when parity reports it as the
catalogue says it must, and nothing else.

The committed example files are never modified: the run's own values (moto's URL, the credentials server,
the break) go into a temporary copy of the job request and an in-memory copy of parity.yaml whose base
directory stays examples/compat-image/, so specs and baselines resolve exactly as for `parity check`.

The gateway is moved off the bootstrap document's `127.0.0.1:8125` to a free port: the job shares this
machine's network, where a gateway on 8125 would also receive what a job *without* the compat relay sends
to the StatsD default localhost:8125 — on SageMaker nothing listens there. So the relay's address (the
pod's localhost:8125) must be free here, and the gateway is elsewhere, as it is for a real job.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from conformance.atomic import write_atomically
from conformance.baselines import display_path
from conformance.check import CheckOutcome, run_check, run_targets
from conformance.compat_image import (
    BREAK_ENV,
    COMPAT_IMAGE_DIR,
    Break,
    Seed,
    build_compat_image,
    container_credentials_server,
    load_breaks,
    load_seed,
    seed_aws,
)
from conformance.config import LoadedConfig, load_config
from conformance.errors import BadInput, InfrastructureError
from conformance.model import CheckResult, ComparisonResult, Divergence
from conformance.paths import compile_glob
from conformance.platforms.sagemaker import load_request
from conformance.runner import RunOutcome
from conformance.snapshot import dumps_snapshot

DEMO_CONFIG = COMPAT_IMAGE_DIR / "parity.yaml"
# A break is switched on by COMPAT_BREAK in the job request's Environment, and SageMaker writes the whole
# request to trainingjobconfig.json (sagemaker-contract.md §1, /opt/ml/input/config): on the broken
# target's baseline, that file's size shows the switch, not the bug.
BREAK_SWITCH_PATHS = ("filesystem.paths['/opt/ml/input/config/trainingjobconfig.json'].size",)
DEMO_LABEL = "org.parity.demo"
# How long the gateway waits for a datagram the relay may still be forwarding when the job has exited.
DELIVERY_GRACE_SECONDS = 0.5
CHECKOUT_REMEDY = (
    "parity demo runs from a checkout of parity's repository (examples/ is not part of the package): "
    "clone it and run `uv run parity demo` there"
)
MOTO_REMEDY = (
    "install the demo extra: `pip install 'parity-conformance[demo]'` (in a checkout, `uv sync` installs it)"
)


# ---- the metrics gateway ---------------------------------------------------------------------------------


class MetricsGateway:
    """The demo's metrics gateway: a UDP socket on 127.0.0.1 that keeps every datagram sent to it.

    Datagrams wait in the socket's receive buffer until `received` drains it; the demo's jobs send a
    handful, far below what the buffer holds.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self._datagrams: list[bytes] = []

    def received(self, text: str, wait: float = DELIVERY_GRACE_SECONDS) -> bool:
        """Whether a datagram containing `text` arrived, waiting up to `wait` seconds for it."""
        needle = text.encode()
        deadline = time.monotonic() + wait
        while not any(needle in datagram for datagram in self._datagrams):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._sock.settimeout(remaining)
            try:
                self._datagrams.append(self._sock.recv(65535))
            except TimeoutError:
                return False
        return True

    def close(self) -> None:
        self._sock.close()


# ---- the services the SageMaker side reaches ------------------------------------------------------------


def require_moto() -> type:
    """moto's ThreadedMotoServer; InfrastructureError saying how to install it when moto is missing."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise InfrastructureError(
            "moto is not installed (the demo runs AWS as a local moto server)", MOTO_REMEDY
        ) from None
    return ThreadedMotoServer


@contextlib.contextmanager
def aws_endpoint() -> Iterator[str]:
    """moto in server mode on 127.0.0.1 (a free port); yields its URL, and is stopped and closed after."""
    ThreadedMotoServer = require_moto()
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # not one line per AWS request on the demo's terminal
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        # stop() ends the serving thread but leaves the listening socket open until garbage collection.
        server._server.server_close()
        werkzeug_log.setLevel(level)


@dataclass
class DemoServices:
    """What a demo run talks to on 127.0.0.1; one set can serve several runs (the end-to-end tests)."""

    aws_url: str
    credentials_url: str
    gateway: MetricsGateway
    seed: Seed = field(repr=False)


@contextlib.contextmanager
def demo_services(seed: Seed | None = None) -> Iterator[DemoServices]:
    """Start moto, the credentials server and the gateway; everything is stopped on every path.

    The seed's bootstrap documents get this gateway's address; the addresses their relay listens on (the
    pod's StatsD address, on this machine's network) must be free, or this raises InfrastructureError.
    """
    seed = seed or load_seed()
    with contextlib.ExitStack() as stack:
        gateway = MetricsGateway()
        stack.callback(gateway.close)
        seed = with_gateway(seed, gateway.address)
        ensure_free(relay_addresses(seed))
        aws_url = stack.enter_context(aws_endpoint())
        credentials_url = stack.enter_context(container_credentials_server())
        yield DemoServices(aws_url=aws_url, credentials_url=credentials_url, gateway=gateway, seed=seed)


def _bootstrap_documents(seed: Seed) -> dict[str, dict[str, Any]]:
    """The seed's S3 objects that are compat bootstrap documents with a metrics section."""
    return {
        key: value
        for key, value in seed.objects.items()
        if isinstance(value, dict) and isinstance(value.get("metrics"), dict)
    }


def with_gateway(seed: Seed, gateway: str) -> Seed:
    """The seed with every bootstrap document's metrics gateway set to `gateway`."""
    objects = dict(seed.objects)
    for key, document in _bootstrap_documents(seed).items():
        objects[key] = {**document, "metrics": {**document["metrics"], "gateway": gateway}}
    return seed.model_copy(update={"objects": objects})


def relay_addresses(seed: Seed) -> list[tuple[str, int]]:
    """Where the SageMaker side's compat relay listens: the StatsD/DogStatsD addresses user code was given."""
    addresses: list[tuple[str, int]] = []
    for document in _bootstrap_documents(seed).values():
        env = document["metrics"].get("env") or {}
        for host_var, port_var in (("STATSD_HOST", "STATSD_PORT"), ("DD_AGENT_HOST", "DD_DOGSTATSD_PORT")):
            if host_var in env or port_var in env:
                address = (env.get(host_var, "localhost"), int(env.get(port_var, "8125")))
                if address not in addresses:
                    addresses.append(address)
    return addresses


def ensure_free(addresses: list[tuple[str, int]]) -> None:
    """InfrastructureError when another process on this machine already receives UDP at one of `addresses`."""
    for host, port in addresses:
        for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM):
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                try:
                    sock.bind(sockaddr)
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        continue  # an address this machine does not have (e.g. no IPv6 loopback)
                    raise InfrastructureError(
                        f"UDP {sockaddr[0]}:{port} is already in use on this machine, and the demo's "
                        "SageMaker side needs it: the job shares this machine's network, and its compat "
                        f"relay listens where the pod's StatsD sidecar does ({host}:{port})",
                        f"stop what listens there (`ss -ulpn 'sport = :{port}'` shows it; often a local "
                        "StatsD agent, or another parity demo) and run again",
                    ) from None


# ---- one demo run ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoVerdict:
    """Whether the demo showed what it promises, and the final line that says so."""

    holds: bool
    line: str


@dataclass
class DemoOutcome:
    """One demo run: its check, its snapshot files, where each target's test metric arrived (None: it did
    not), the verdict, and the run id its containers were labelled with (`org.parity.demo`)."""

    checked: CheckOutcome
    snapshots: dict[str, Path]
    delivered: dict[str, str | None]
    verdict: DemoVerdict
    run_id: str

    @property
    def result(self) -> CheckResult:
        return self.checked.result


def demo_config(
    loaded: LoadedConfig, work_dir: Path, *, aws_url: str, credentials_url: str, break_name: str | None
) -> LoadedConfig:
    """parity.yaml as the demo runs it: each SageMaker target's job request gets the run's AWS endpoint
    (and COMPAT_BREAK) in its Environment, from a copy in `work_dir`, and the credentials server as
    `container_credentials_full_uri`. Everything else, and the base directory, stay as committed."""
    targets = {}
    for name, target in loaded.config.targets.items():
        if target.platform != "sagemaker":
            targets[name] = target
            continue
        request = load_request(loaded.resolve(target.spec))
        environment = {**(request.get("Environment") or {}), "AWS_ENDPOINT_URL": aws_url}
        if break_name:
            environment[BREAK_ENV] = break_name
        spec = work_dir / f"{name}.{Path(target.spec).stem}.json"
        spec.write_text(json.dumps({**request, "Environment": environment}, indent=2), encoding="utf-8")
        options = {**target.options, "container_credentials_full_uri": credentials_url}
        targets[name] = target.model_copy(update={"spec": str(spec), "options": options})
    return LoadedConfig(path=loaded.path, config=loaded.config.model_copy(update={"targets": targets}))


def record_delivery(outcomes: dict[str, RunOutcome], gateway: MetricsGateway) -> dict[str, str | None]:
    """Set each snapshot's `metrics.delivered` from where its test metric arrived; return where, by target.

    The nonce is looked for in the sidecars' output (a pod's StatsD sidecar prints what it receives: the
    pod has no network to reach the gateway) and at the gateway. A probe that sent nothing (or whose
    metrics collector failed) leaves `delivered` null: there was nothing to confirm.
    """
    where: dict[str, str | None] = {}
    for target, outcome in outcomes.items():
        metrics = outcome.snapshot.get("metrics")
        test_metric = (metrics or {}).get("test_metric") or {}
        nonce = test_metric.get("nonce")
        if not (isinstance(metrics, dict) and test_metric.get("sent") and nonce):
            where[target] = None
            continue
        sidecars = [name for name, log in outcome.sidecar_logs.items() if nonce in log]
        if sidecars:
            where[target] = f"the pod's {sidecars[0]} sidecar"
        elif gateway.received(nonce):
            where[target] = f"the gateway {gateway.address}"
        else:
            where[target] = None
        metrics["delivered"] = where[target] is not None
    return where


def run_demo(
    services: DemoServices,
    *,
    break_name: str | None = None,
    out_dir: Path | None = None,
    update_baselines: bool = False,
    console: Console | None = None,
) -> DemoOutcome:
    """One demo run against running `services`: seed, run both targets, record delivery, check.

    Snapshots (with `metrics.delivered`) and, with `out_dir`, every report are written to `out_dir`;
    without it, to a temporary directory removed afterwards (the returned paths then no longer exist).
    """
    console = console or Console(stderr=True, highlight=False)
    breaks = load_breaks()
    check_request(breaks, break_name, update_baselines)
    loaded = load_config(DEMO_CONFIG)
    run_id = secrets.token_hex(8)
    # Seeded right before each run: moto's state is process-wide, and in-process mocks may reset it.
    seed_aws(services.seed, services.aws_url)
    with tempfile.TemporaryDirectory(prefix="parity-demo-") as work:
        work_dir = Path(work)
        effective = demo_config(
            loaded,
            work_dir,
            aws_url=services.aws_url,
            credentials_url=services.credentials_url,
            break_name=break_name,
        )
        names = list(effective.config.targets)
        started = time.monotonic()
        with console.status(f"running {' and '.join(names)} on Docker…"):
            outcomes = run_targets(effective, names, labels={DEMO_LABEL: run_id})
        console.print(f"[green]✓[/] ran {', '.join(names)} in {time.monotonic() - started:.1f} s")
        delivered = record_delivery(outcomes, services.gateway)
        snapshots_dir = (out_dir or work_dir) / "snapshots"
        snapshots = {}
        for target, outcome in outcomes.items():
            snapshots[target] = snapshots_dir / f"{target}.json"
            write_atomically(snapshots[target], dumps_snapshot(outcome.snapshot))
        outcome = run_check(
            effective,
            snapshots_dir=snapshots_dir,
            update_baselines=update_baselines,
            update_command="parity demo --update-baselines",
        )
    if out_dir is not None:
        from conformance.reports import write_all

        outcome.result.snapshots.update({target: str(path) for target, path in snapshots.items()})
        write_all(outcome.result, out_dir)
    verdict = (
        break_verdict(outcome.result, breaks[break_name], effective)
        if break_name
        else clean_verdict(outcome.result)
    )
    return DemoOutcome(
        checked=outcome, snapshots=snapshots, delivered=delivered, verdict=verdict, run_id=run_id
    )


def check_request(breaks: dict[str, Break], break_name: str | None, update_baselines: bool) -> None:
    if break_name is not None and break_name not in breaks:
        raise BadInput(None, "--break", f"unknown break {break_name!r} (known: {', '.join(breaks)})")
    if break_name is not None and update_baselines:
        raise BadInput(None, "--update-baselines", "baselines come from the clean demo: drop --break")


# ---- verdicts --------------------------------------------------------------------------------------------


def clean_verdict(result: CheckResult) -> DemoVerdict:
    if result.passed:
        return DemoVerdict(
            True,
            "parity holds: user code sees the same world in the pod and in the training job, and both match "
            "their baselines",
        )
    unwaived = sum(len(comparison.unwaived) for comparison in result.comparisons)
    return DemoVerdict(False, f"parity does not hold: {unwaived} unwaived divergence(s) in the clean demo")


def break_verdict(result: CheckResult, expected: Break, loaded: LoadedConfig) -> DemoVerdict:
    """Caught: a pair divergence in the break's category whose hint names its keyword, every path the
    catalogue lists diverges, and no unwaived divergence falls outside the categories the bug affects —
    nor in the baseline of a target the break does not touch (only SageMaker targets run it). On a broken
    target's baseline, the switch itself (BREAK_SWITCH_PATHS) is expected too."""
    broken = {name for name, target in loaded.config.targets.items() if target.platform == "sagemaker"}
    allowed = {expected.category, *expected.also_affects}
    switch = [compile_glob(pattern) for pattern in BREAK_SWITCH_PATHS]
    pair_findings = [d for c in result.comparisons if c.kind == "pair" for d in c.unwaived]
    caught = [
        d
        for d in pair_findings
        if d.category == expected.category and expected.hint_keyword.lower() in (d.hint or "").lower()
    ]
    missing = [
        pattern
        for pattern in expected.paths
        if not any(compile_glob(pattern).matches_path_or_ancestor(d.path) for d in pair_findings)
    ]

    def is_expected(divergence: Divergence, comparison: ComparisonResult) -> bool:
        if comparison.kind == "pair":
            return divergence.category in allowed
        if comparison.right not in broken:
            return False
        return divergence.category in allowed or any(glob.matches(divergence.path) for glob in switch)

    unexpected = [d for c in result.comparisons for d in c.unwaived if not is_expected(d, c)]
    if caught and not missing and not unexpected:
        return DemoVerdict(
            True,
            f"caught {expected.name}: {len(caught)} {expected.category} divergence(s) with the expected hint "
            f"({expected.hint_keyword!r}), nothing unexpected",
        )
    problems = []
    if not caught:
        problems.append(f"no {expected.category} divergence whose hint mentions {expected.hint_keyword!r}")
    if missing:
        problems.append(f"no divergence at {', '.join(missing)}")
    if unexpected:
        shown = ", ".join(f"{d.comparison}: {d.path}" for d in unexpected[:3])
        problems.append(
            f"{len(unexpected)} unexpected divergence(s) ({shown}{', …' if len(unexpected) > 3 else ''})"
        )
    return DemoVerdict(False, f"{expected.name} NOT caught as catalogued: {'; '.join(problems)}")


# ---- the command -----------------------------------------------------------------------------------------


def breaks_table(breaks: dict[str, Break]) -> Table:
    table = Table(title="compat-layer bugs `parity demo --break CLASS` reproduces", title_justify="left")
    table.add_column("class", style="bold", no_wrap=True)
    table.add_column("category", no_wrap=True)
    table.add_column("the bug")
    for entry in breaks.values():
        table.add_row(entry.name, entry.category, entry.bug)
    return table


def build_image(tag: str, console: Console) -> None:
    """Build (or reuse) the compat image as `tag`, with the current build step on a status line; the whole
    build output is shown only when the build fails (as the error's details)."""
    output: list[str] = []
    started = time.monotonic()
    with console.status(f"{tag}: checking…") as status:

        def show(line: str) -> None:
            output.append(line)
            if not line.startswith(" "):  # steps and milestones, not the steps' own output
                status.update(f"{tag}: {line.strip()[:100]}")

        try:
            build_compat_image(tag, on_output=show)
        except InfrastructureError as exc:
            raise InfrastructureError(exc.problem, exc.remedy, "\n".join(output) or exc.details) from None
    if output and output[-1].startswith("reusing"):
        console.print(f"[green]✓[/] image {tag} reused (built from the same sources)")
    else:
        console.print(f"[green]✓[/] image {tag} built in {time.monotonic() - started:.0f} s")


def demo_command(
    break_name: str | None, list_breaks: bool, out_dir: Path | None, update_baselines: bool
) -> int:
    """`parity demo`: exit 0 when the demo showed what it promises, 1 when it did not, 2/3 as usual."""
    if not DEMO_CONFIG.is_file():
        raise InfrastructureError(
            f"the demo's files are not here ({display_path(DEMO_CONFIG)})", CHECKOUT_REMEDY
        )
    breaks = load_breaks()
    if list_breaks:
        Console(highlight=False).print(breaks_table(breaks))
        return 0
    check_request(breaks, break_name, update_baselines)
    require_moto()  # before the image build, which can take minutes

    console = Console(stderr=True, highlight=False)
    started = time.monotonic()
    for tag in dict.fromkeys(target.image for target in load_config(DEMO_CONFIG).config.targets.values()):
        build_image(tag, console)
    with demo_services() as services:
        console.print(
            f"[green]✓[/] AWS (moto) at {services.aws_url}, credentials server, "
            f"metrics gateway at udp://{services.gateway.address}"
        )
        if break_name:
            console.print(f"  the training job runs with {BREAK_ENV}={break_name}: {breaks[break_name].bug}")
        demo = run_demo(
            services,
            break_name=break_name,
            out_dir=out_dir,
            update_baselines=update_baselines,
            console=console,
        )
    for target, where in demo.delivered.items():
        arrived = f"arrived at {where}" if where else "[red]did not arrive[/]"
        console.print(f"  {target}: the probe's test metric {arrived}")
    from conformance.reports import print_terminal

    print_terminal(demo.result)
    for change in demo.checked.baselines:
        click.echo(f"baseline {change.describe()}", err=True)
    if out_dir is not None:
        click.echo(f"snapshots and reports written to {display_path(out_dir)}", err=True)
    mark = "✓" if demo.verdict.holds else "✗"
    click.echo(f"{mark} {demo.verdict.line} ({time.monotonic() - started:.0f} s)")
    return 0 if demo.verdict.holds else 1
