"""`parity demo` without Docker: its refusals, the run's configuration, delivery records, verdicts and the
local services it starts and stops. The demo itself, end to end, is in test_demo_e2e.py."""

from __future__ import annotations

import datetime as dt
import errno
import io
import json
import socket
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from conformance import demo
from conformance.cli import cli
from conformance.compat_image import COMPAT_IMAGE_DIR, load_breaks
from conformance.config import load_config
from conformance.errors import InfrastructureError
from conformance.model import CheckResult, ComparisonResult, Divergence
from conformance.platforms.sagemaker import load_request
from conformance.runner import RunOutcome

REPO = Path(__file__).resolve().parent.parent


def invoke(*args: str):
    return CliRunner().invoke(cli, ["demo", *args], catch_exceptions=False)


def test_list_breaks_names_every_class_with_its_category():
    result = invoke("--list-breaks")
    assert result.exit_code == 0
    for entry in load_breaks().values():
        assert entry.name in result.stdout and entry.category in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--break", "env-cpa"],
            "parity: --break: unknown break 'env-cpa' (known: hyperparameters-as-strings",
        ),
        (
            ["--break", "env-cap", "--update-baselines"],
            "parity: --update-baselines: baselines come from the clean demo: drop --break",
        ),
    ],
)
def test_a_wrong_request_is_bad_input_before_anything_starts(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)


def test_without_moto_it_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "moto.server", None)  # makes `import moto.server` fail
    result = invoke()
    assert result.exit_code == 3
    assert result.stderr == (
        "parity: moto is not installed (the demo runs AWS as a local moto server) — install the demo extra: "
        "`pip install 'parity-conformance[demo]'` (in a checkout, `uv sync` installs it)\n"
    )


def test_outside_a_checkout_it_says_the_demo_runs_from_one(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "DEMO_CONFIG", tmp_path / "examples" / "compat-image" / "parity.yaml")
    result = invoke()
    assert result.exit_code == 3
    assert "parity demo runs from a checkout of parity's repository" in result.stderr


def test_the_run_gets_its_endpoint_break_and_credentials_without_touching_the_committed_files(tmp_path):
    committed = {path: path.read_bytes() for path in COMPAT_IMAGE_DIR.rglob("*") if path.is_file()}
    loaded = load_config(demo.DEMO_CONFIG)
    effective = demo.demo_config(
        loaded,
        tmp_path,
        aws_url="http://127.0.0.1:5000",
        credentials_url="http://127.0.0.1:5001/v2/credentials/parity",
        break_name="env-cap",
    )
    assert {path: path.read_bytes() for path in COMPAT_IMAGE_DIR.rglob("*") if path.is_file()} == committed
    assert effective.baselines_root.resolve() == REPO / "baselines" / "compat-demo"
    assert effective.config.targets["kubernetes"] == loaded.config.targets["kubernetes"]

    sagemaker = effective.config.targets["sagemaker"]
    original = loaded.config.targets["sagemaker"]
    assert sagemaker.options == {
        **original.options,
        "container_credentials_full_uri": "http://127.0.0.1:5001/v2/credentials/parity",
    }
    request = load_request(effective.resolve(sagemaker.spec))
    committed_request = load_request(loaded.resolve(original.spec))
    assert request == {
        **committed_request,
        "Environment": {
            **committed_request["Environment"],
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "COMPAT_BREAK": "env-cap",
        },
    }


def snapshot_with_test_metric(nonce: str | None, sent: bool = True) -> dict:
    return {"metrics": {"delivered": None, "test_metric": {"sent": sent, "nonce": nonce}}}


def test_delivery_is_confirmed_at_a_sidecar_or_at_the_gateway_and_only_by_the_nonce():
    gateway = demo.MetricsGateway()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            host, port = gateway.address.split(":")
            sender.sendto(b"parity.probe.test:1|c|#parity_nonce:bbbb", (host, int(port)))
        outcomes = {
            "pod": RunOutcome(
                snapshot_with_test_metric("aaaa"),
                0,
                sidecar_logs={"statsd": "statsd-relay: 127.0.0.1 parity.probe.test:1|c|#parity_nonce:aaaa\n"},
            ),
            "job": RunOutcome(snapshot_with_test_metric("bbbb"), 0),
            "lost": RunOutcome(snapshot_with_test_metric("cccc"), 0, sidecar_logs={"statsd": "other\n"}),
            "silent": RunOutcome(snapshot_with_test_metric(None, sent=False), 0),
        }
        where = demo.record_delivery(outcomes, gateway)
    finally:
        gateway.close()
    assert where == {
        "pod": "the pod's statsd sidecar",
        "job": f"the gateway {gateway.address}",
        "lost": None,
        "silent": None,
    }
    delivered = {target: outcome.snapshot["metrics"]["delivered"] for target, outcome in outcomes.items()}
    assert delivered == {"pod": True, "job": True, "lost": False, "silent": None}


def divergence(comparison: str, category: str, path: str, hint: str | None = None) -> Divergence:
    return Divergence(
        id=f"{category}-{abs(hash(path)) % 10**10:010d}",
        comparison=comparison,
        category=category,
        path=path,
        kind="changed",
        severity="high",
        hint=hint,
    )


def result_of(pair: list[Divergence], sagemaker_baseline: list[Divergence] = (), kubernetes_baseline=()):
    comparisons = [
        ComparisonResult(
            name="kubernetes~sagemaker", kind="pair", left="kubernetes", right="sagemaker", divergences=pair
        ),
        ComparisonResult(
            name="baseline:kubernetes",
            kind="baseline",
            left="baselines/compat-demo/kubernetes.json",
            right="kubernetes",
            divergences=list(kubernetes_baseline),
        ),
        ComparisonResult(
            name="baseline:sagemaker",
            kind="baseline",
            left="baselines/compat-demo/sagemaker.json",
            right="sagemaker",
            divergences=list(sagemaker_baseline),
        ),
    ]
    return CheckResult(generated_at=dt.datetime.now(dt.timezone.utc), comparisons=comparisons)


SPARK_PATH = "spark.defaults['spark.eventLog.dir']"
SWITCH = "filesystem.paths['/opt/ml/input/config/trainingjobconfig.json'].size"


@pytest.mark.parametrize(
    ("pair", "sagemaker_baseline", "kubernetes_baseline", "holds", "said"),
    [
        (
            [divergence("kubernetes~sagemaker", "spark", SPARK_PATH, "Spark key lost")],
            [
                divergence("baseline:sagemaker", "spark", SPARK_PATH),
                divergence("baseline:sagemaker", "filesystem", SWITCH),
            ],
            [],
            True,
            "caught spark-conf-key-dropped: 1 spark divergence(s) with the expected hint ('spark')",
        ),
        (
            [divergence("kubernetes~sagemaker", "spark", SPARK_PATH, "a key differs")],
            [],
            [],
            False,
            "no spark divergence whose hint mentions 'spark'",
        ),
        (
            [
                divergence("kubernetes~sagemaker", "spark", SPARK_PATH, "Spark key lost"),
                divergence("kubernetes~sagemaker", "env", "env.vars.SPARK_HOME", "env"),
            ],
            [],
            [],
            False,
            "1 unexpected divergence(s) (kubernetes~sagemaker: env.vars.SPARK_HOME)",
        ),
        (
            [divergence("kubernetes~sagemaker", "spark", SPARK_PATH, "Spark key lost")],
            [],
            [divergence("baseline:kubernetes", "spark", SPARK_PATH)],
            False,
            f"1 unexpected divergence(s) (baseline:kubernetes: {SPARK_PATH})",
        ),
        (
            [divergence("kubernetes~sagemaker", "spark", "spark.defaults['spark.master']", "Spark master")],
            [],
            [],
            False,
            f"no divergence at {SPARK_PATH}",
        ),
    ],
    ids=[
        "caught",
        "hint-without-keyword",
        "unexpected-category",
        "untouched-baseline",
        "catalogued-path-same",
    ],
)
def test_a_break_is_caught_only_as_the_catalogue_says(
    pair, sagemaker_baseline, kubernetes_baseline, holds, said
):
    expected = load_breaks()["spark-conf-key-dropped"]
    verdict = demo.break_verdict(
        result_of(pair, sagemaker_baseline, kubernetes_baseline), expected, load_config(demo.DEMO_CONFIG)
    )
    assert verdict.holds is holds
    assert said in verdict.line


def test_the_clean_demo_holds_only_without_unwaived_divergences():
    assert demo.clean_verdict(result_of([])).holds
    failed = demo.clean_verdict(result_of([], [divergence("baseline:sagemaker", "env", "env.vars.X")]))
    assert (failed.holds, failed.line) == (
        False,
        "parity does not hold: 1 unwaived divergence(s) in the clean demo",
    )


def refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, ConnectionRefusedError)
    return False


def test_the_services_serve_the_seed_and_are_all_stopped_afterwards():
    with demo.demo_services() as services:
        seeded_gateway = services.seed.objects["compat/bootstrap.json"]["metrics"]["gateway"]
        assert seeded_gateway == services.gateway.address != "127.0.0.1:8125"
        credentials = json.load(urllib.request.urlopen(services.credentials_url, timeout=5))
        assert set(credentials) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
        assert urllib.request.urlopen(f"{services.aws_url}/moto-api/", timeout=5).status == 200
    assert refused(services.aws_url) and refused(services.credentials_url)
    host, port = services.gateway.address.split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rebound:
        rebound.bind((host, int(port)))  # the gateway let go of its port
    assert not [thread.name for thread in threading.enumerate() if "_server_entry" in thread.name]


def test_a_busy_statsd_port_stops_the_demo_before_anything_starts():
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        holder.bind(("127.0.0.1", 8125))
    except OSError as exc:  # something on this machine holds it already: the demo must see that too
        assert exc.errno == errno.EADDRINUSE
    try:
        with pytest.raises(InfrastructureError) as caught:
            with demo.demo_services():
                pass
    finally:
        holder.close()
    assert "UDP 127.0.0.1:8125 is already in use on this machine" in caught.value.problem
    assert "ss -ulpn 'sport = :8125'" in caught.value.remedy


def test_a_failed_image_build_shows_its_whole_output(monkeypatch):
    steps = [f"Step {number}/30 : RUN make step-{number}" for number in range(1, 31)]

    def failing_build(tag, on_output):
        for line in steps:
            on_output(line)
        raise InfrastructureError(
            f"building {tag} failed: pip exited 1", "check the network", "\n".join(steps[-20:])
        )

    monkeypatch.setattr(demo, "build_compat_image", failing_build)
    with pytest.raises(InfrastructureError) as caught:
        demo.build_image("parity-compat:latest", Console(file=io.StringIO()))
    assert caught.value.problem == "building parity-compat:latest failed: pip exited 1"
    assert caught.value.details.splitlines() == steps
