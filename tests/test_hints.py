"""Each known parity bug class is recognized and explained with the divergence's own values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from conformance.hints import BULK_MISSING_ENV, HintContext, hint_for
from tests.snapshot_factory import secret

CONTEXT = HintContext(
    left_label="k8s", right_label="sagemaker", left_platform="kubernetes", right_platform="sagemaker"
)


@dataclass
class Found:
    path: str
    kind: str
    left: Any = None
    right: Any = None
    category: str = ""


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (
            Found("hyperparameters.sources['/etc/hp.json'].values.epochs", "type_changed", 10, "10"),
            ["Hyperparameter stringified", "10 on k8s", "'10' on sagemaker", "json.loads"],
        ),
        (
            Found("hyperparameters.sources['/etc/hp.json'].values.name", "changed", "resnet", '"resnet"'),
            ["JSON-encoded twice", "SDK v2"],
        ),
        (
            Found("env.vars.STATSD_HOST", "changed", "localhost", "10.0.0.5"),
            ["StatsD/DogStatsD not rerouted", "'10.0.0.5' on sagemaker", "localhost:8125"],
        ),
        (Found("metrics.delivered", "changed", True, False), ["test metric", "gateway"]),
        (
            Found("credentials.secret_files['/etc/app/db.conf'].mode", "changed", "0440", "0644"),
            ["Credential file mode differs", "'0440' on k8s", "fsGroup"],
        ),
        (
            Found("env.vars.DB_PASSWORD", "changed", secret("a"), secret("b")),
            ["secret at env.vars.DB_PASSWORD has a different value"],
        ),
        (Found("env.vars.AWS_DEFAULT_REGION", "missing", "us-east-1"), ["AWS_DEFAULT_REGION=$AWS_REGION"]),
        (Found("identity.uid", "changed", 1000, 0), ["runAsUser", "1000 on k8s, 0 on sagemaker", "setpriv"]),
        (Found("env.vars.HOME", "changed", "/home/app", "/root"), ["HOME"]),
        (Found("resources.shm.size_bytes", "changed", 67108864, 1048576), ["64 MiB", "DataLoader"]),
        (Found("runtime.tz.TZ", "changed", "UTC", "Europe/Paris"), ["time zone", "TZ"]),
        (
            Found("env.vars.PATH", "changed", "/a:/b:/c", "/b:/a:/c"),
            ["same entries in a different order", "entry 0 is '/a' on k8s and '/b' on sagemaker"],
        ),
        (
            Found("env.vars.PYTHONPATH", "changed", "/a:/b", "/a:/c"),
            ["only on k8s: /b", "only on sagemaker: /c"],
        ),
        (
            Found("spark.defaults['spark.sql.shuffle.partitions']", "missing", "200"),
            ["spark.sql.shuffle.partitions is set on k8s only", "spark-defaults.conf"],
        ),
        (
            Found("network.fqdn", "changed", "<HOSTNAME>.ns.svc.cluster.local", "<HOSTNAME>"),
            ["algo-N", "resourceconfig.json"],
        ),
        (Found("env.vars.MODEL_BUCKET", "missing", "s3://models"), ["MODEL_BUCKET is set on k8s only"]),
        (
            Found("env.vars.REDIS_PORT", "missing", "tcp://10.100.3.4:6379"),
            ["service-link variable", "enableServiceLinks"],
        ),
        (Found("identity.capabilities.bounding", "missing", "CAP_NET_RAW"), ["capability"]),
        (
            Found("process.signals.SIGTERM", "changed", "handled", "default"),
            ['exec "$@"', "SIGKILL 120 s later"],
        ),
    ],
)
def test_known_bug_classes_are_explained(found, expected):
    hint = hint_for(found, CONTEXT)
    for text in expected:
        assert text in hint


def test_many_missing_variables_point_at_the_environment_cap():
    context = HintContext("k8s", "sagemaker", "kubernetes", "sagemaker").with_counts(
        [Found(f"env.vars.V{i}", "missing", "x") for i in range(BULK_MISSING_ENV)]
    )
    hint = hint_for(Found("env.vars.V3", "missing", "x"), context)
    assert f"{BULK_MISSING_ENV} environment variables are missing on sagemaker" in hint
    assert "at most 100 entries" in hint


def test_a_divergence_no_class_knows_has_no_hint():
    assert (
        hint_for(Found("resources.rlimits.nofile", "changed", [1024, 4096], [65536, 65536]), CONTEXT) is None
    )
