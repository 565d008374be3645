"""Hand-made `parity.snapshot/v1` documents (docs/SNAPSHOT.md) for the normalizer, differ and check tests.

`kubernetes_snapshot()` and `sagemaker_snapshot()` look like what the probe sees in a pod and in a training
job running the same image through a compat entrypoint that works: with the default contract they compare
equal. Each call returns a fresh document; tests break one thing at a time.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

KEY = b"k" * 32
KEY_ID = hashlib.sha256(KEY).hexdigest()[:12]


def secret(value: str, key: bytes = KEY) -> str:
    return "hmac-sha256:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _base(label: str, hostname: str, platform: str, started_at: str, pid: int) -> dict[str, Any]:
    return {
        "schema": "parity.snapshot/v1",
        "probe": {
            "version": "1.0.0",
            "label": label,
            "started_at": started_at,
            "duration_ms": 412,
            "timings_ms": {"env": 1, "network": 12},
            "deadline_seconds": 10.0,
            "hash": {"algorithm": "hmac-sha256", "comparable": True, "key_id": KEY_ID},
        },
        "env": {
            "source": "/proc/self/environ",
            "count": 0,
            "vars": {
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": "/home/app",
                "HOSTNAME": hostname,
                "LANG": "C.UTF-8",
                "STATSD_HOST": "localhost",
                "STATSD_PORT": "8125",
                "AWS_REGION": "us-east-1",
                "DB_PASSWORD": secret("hunter2"),
            },
            "redacted": ["DB_PASSWORD"],
            "undecodable": [],
        },
        "identity": {
            "uid": 1000,
            "gid": 1000,
            "euid": 1000,
            "egid": 1000,
            "groups": [1000, 2000],
            "user": "app",
            "group": "app",
            "home": "/home/app",
            "passwd_home": "/home/app",
            "shell": "/bin/sh",
            "umask": "0022",
            "capabilities": {
                "effective": [],
                "permitted": [],
                "bounding": ["CAP_CHOWN", "CAP_KILL"],
                "ambient": [],
            },
            "no_new_privs": 0,
            "seccomp": 0,
        },
        "credentials": {
            "aws": {
                "resolved_source": "none",
                "sources": {"env": None, "web_identity": None, "container": None, "shared_files": None},
                "region": "us-east-1",
                "region_source": "AWS_REGION",
            },
            "secret_files": {
                "/etc/app/db.conf": {
                    "type": "file",
                    "mode": "0440",
                    "uid": 0,
                    "gid": 2000,
                    "size": 24,
                    "hmac": secret("db"),
                }
            },
        },
        "metrics": {
            "statsd": {
                "host": "localhost",
                "port": 8125,
                "source": {"host": "STATSD_HOST", "port": "STATSD_PORT"},
                "resolved": ["127.0.0.1"],
            },
            "dogstatsd": {
                "host": "localhost",
                "port": 8125,
                "source": {"host": "default", "port": "default"},
                "resolved": ["127.0.0.1"],
            },
            "test_metric": {
                "sent": True,
                "target": "localhost:8125",
                "payload": f"parity.probe.test:1|c|#parity_nonce:{pid:08x}",
                "nonce": f"{pid:08x}",
                "error": None,
            },
            "delivered": None,
        },
        "hyperparameters": {
            "sources": {
                "/etc/hp/hyperparameters.json": {
                    "exists": True,
                    "format": "json",
                    "values": {"epochs": 10, "lr": 0.1, "layers": [64, 32], "use_gpu": False},
                    "error": None,
                }
            }
        },
        "spark": {
            "env": {},
            "conf_dir": "/opt/spark/conf",
            "defaults": {"spark.executor.memory": "4g", "spark.sql.shuffle.partitions": "200"},
            "spark_env_sh": {"path": "/opt/spark/conf/spark-env.sh", "exists": False},
            "hadoop": {},
            "versions": {"pyspark": None, "java": None},
        },
        "filesystem": {
            "paths": {
                "/home/app": {
                    "type": "dir",
                    "mode": "0755",
                    "uid": 1000,
                    "gid": 1000,
                    "writable": True,
                    "mount": "/",
                },
                "/tmp": {"type": "dir", "mode": "1777", "uid": 0, "gid": 0, "writable": True, "mount": "/"},
            },
            "mounts": {
                "/": {"fstype": "overlay", "ro": False, "options": ["rw", "relatime"]},
                "/dev/shm": {
                    "fstype": "tmpfs",
                    "ro": False,
                    "options": ["rw", "nosuid", "nodev", "noexec", "relatime", "size=65536k"],
                },
            },
        },
        "network": {
            "hostname": hostname,
            "fqdn": hostname,
            "etc_hostname": hostname + "\n",
            "hosts": [{"ip": "127.0.0.1", "names": ["localhost"]}],
            "hosts_header": None,
            "resolv_conf": {"nameservers": ["10.100.0.10"], "search": [], "options": []},
            "proxies": {},
            "resolve": {"localhost": ["127.0.0.1"]},
            "interfaces": ["lo"],
        },
        "runtime": {
            "python": {
                "version": "3.11.2",
                "implementation": "CPython",
                "executable": "/usr/bin/python3",
                "sys_path": ["/home/app", "/usr/lib/python311.zip", "/usr/lib/python3.11"],
                "packages": {"boto3": "1.34.0"},
            },
            "os": {"id": "debian", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
            "arch": "x86_64",
            "locale": {
                "LANG": "C.UTF-8",
                "LC_ALL": None,
                "LC_CTYPE": None,
                "preferred_encoding": "UTF-8",
                "filesystem_encoding": "utf-8",
            },
            "tz": {
                "TZ": None,
                "localtime_link": "/usr/share/zoneinfo/Etc/UTC",
                "timezone_file": "Etc/UTC",
                "tzname": ["UTC", "UTC"],
            },
        },
        "resources": {
            "cpu": {"count": 2, "affinity": [0, 1]},
            "cgroup": {
                "version": 1,
                "cpu_quota_us": 100000,
                "cpu_period_us": 100000,
                "cpu_limit_cores": 1.0,
                "cpu_weight": None,
                "memory_limit_bytes": 1073741824,
            },
            "memory": {"meminfo_total_bytes": 8 * 1024**3},
            "shm": {"size_bytes": 67108864, "fstype": "tmpfs"},
            "rlimits": {"nofile": [1048576, 1048576]},
        },
        "process": {
            "argv": [],
            "cwd": "/home/app",
            "pid": pid,
            "ppid": pid - 1,
            "parent_name": "entrypoint",
            "is_pid1": False,
            "signals": {"SIGTERM": "default"},
        },
        "context": {"platform": platform, "evidence": []},
        "errors": [],
        "truncated": [],
        "excluded": {"paths": ["/.parity"], "argv_items": 3, "env": [], "note": "the probe's own footprint"},
        "harness": {
            "target": label,
            "platform": "sagemaker" if platform.startswith("sagemaker") else platform,
            "engine": "docker",
            "image": "compat:test",
            "image_id": "sha256:" + "ab" * 32,
            "exit_code": 0,
            "metadata": {},
        },
    }


def kubernetes_snapshot() -> dict[str, Any]:
    snapshot = _base("k8s", "trainer-7d9f8-x2x4z", "kubernetes", "2025-11-22T11:33:00.123456Z", 17)
    snapshot["env"]["vars"].update(
        {
            "KUBERNETES_SERVICE_HOST": "10.100.0.1",
            "KUBERNETES_SERVICE_PORT": "443",
            "KUBERNETES_PORT": "tcp://10.100.0.1:443",
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/trainer",
            "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
        }
    )
    snapshot["credentials"]["aws"]["resolved_source"] = "web_identity"
    snapshot["credentials"]["aws"]["sources"]["web_identity"] = {
        "role_arn": "arn:aws:iam::123456789012:role/trainer",
        "token_file": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    }
    snapshot["filesystem"]["paths"]["/var/run/secrets/kubernetes.io/serviceaccount/token"] = {
        "type": "symlink",
        "link_target": "..data/token",
        "mount": "/var/run/secrets/kubernetes.io/serviceaccount",
    }
    snapshot["filesystem"]["paths"][
        "/var/run/secrets/kubernetes.io/serviceaccount/..2025_11_22_11_33_00.123456789"
    ] = {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}
    snapshot["network"]["hosts_header"] = "# Kubernetes-managed hosts file."
    snapshot["network"]["hosts"].append({"ip": "10.1.2.3", "names": ["trainer-7d9f8-x2x4z"]})
    snapshot["context"]["evidence"] = [
        "KUBERNETES_SERVICE_HOST",
        "/var/run/secrets/kubernetes.io/serviceaccount",
    ]
    snapshot["env"]["count"] = len(snapshot["env"]["vars"])
    return snapshot


def sagemaker_snapshot() -> dict[str, Any]:
    snapshot = _base(
        "sagemaker", "ip-10-0-119-27.ec2.internal", "sagemaker-training", "2025-11-22T11:35:10Z", 23
    )
    snapshot["env"]["vars"].update(
        {
            "TRAINING_JOB_NAME": "trainer-2025-11-22-11-35-01-123",
            "TRAINING_JOB_ARN": (
                "arn:aws:sagemaker:us-east-1:123456789012:training-job/trainer-2025-11-22-11-35-01-123"
            ),
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/1f3d3b2b-0f1a-4b7a-9c8b-5d3a2f1e0c9b",
            "AWS_EXECUTION_ENV": "AWS_ECS_EC2",
        }
    )
    snapshot["credentials"]["aws"]["resolved_source"] = "container"
    snapshot["credentials"]["aws"]["sources"]["container"] = {
        "relative_uri": "/v2/credentials/1f3d3b2b-0f1a-4b7a-9c8b-5d3a2f1e0c9b"
    }
    snapshot["filesystem"]["paths"]["/opt/ml/input/config/hyperparameters.json"] = {
        "type": "file",
        "mode": "0644",
        "uid": 0,
        "gid": 0,
        "size": 58,
    }
    snapshot["network"]["hosts"].append({"ip": "10.0.119.27", "names": ["ip-10-0-119-27.ec2.internal"]})
    snapshot["network"]["resolv_conf"] = {
        "nameservers": ["10.0.0.2"],
        "search": ["ec2.internal"],
        "options": [],
    }
    snapshot["context"]["evidence"] = ["TRAINING_JOB_NAME", "/opt/ml/input/config"]
    snapshot["env"]["count"] = len(snapshot["env"]["vars"])
    return snapshot
