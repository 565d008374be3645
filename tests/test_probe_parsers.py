"""The probe's parsers and collectors on crafted files: every format the probe reads, without a container."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.probe_support import expected_hmac, load_probe_module

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def probe():
    return load_probe_module()


def make_context(probe, environ=(), **config):
    """A probe run context over a crafted environment (list of (name, value) bytes) and config."""
    merged = dict(probe.CONFIG_DEFAULTS)
    merged.update(config)
    secrets = probe.Secrets(KEY, True)
    excluded = sorted(os.path.abspath(p) for p in merged["exclude_paths"])
    return probe.Context(merged, secrets, list(environ), "test", excluded, "/.parity/parity_probe.py")


# --- /proc/self/mountinfo -----------------------------------------------------------------------------------
DOCKER_V1_MOUNTINFO = textwrap.dedent(
    r"""
    1163 1046 0:118 / / rw,relatime master:456 - overlay overlay rw,lowerdir=/l/ABC:/l/DEF,upperdir=/x/diff
    1164 1163 0:121 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
    1165 1163 0:122 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
    1169 1163 0:125 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
    1170 1169 0:126 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
    1171 1170 0:29 /docker/0123abcd /sys/fs/cgroup/cpu,cpuacct ro master:11 - cgroup cgroup rw,cpu,cpuacct
    1172 1170 0:32 /docker/0123abcd /sys/fs/cgroup/memory ro,nosuid master:14 - cgroup cgroup rw,memory
    1180 1165 0:117 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
    1181 1163 8:1 /var/lib/docker/containers/abc/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw
    1190 1163 8:1 /home/user/my\040data /mnt/my\040data ro,relatime shared:7 master:3 - ext4 /dev/sda1 rw
    1191 1163 0:130 / /mnt/my\040data tmpfs rw,relatime - tmpfs tmpfs rw,size=1024k
    """
).strip()


def test_mountinfo_fields_escapes_and_optional_fields(probe):
    mounts = probe.parse_mountinfo(DOCKER_V1_MOUNTINFO)
    assert len(mounts) == 11
    root = mounts[0]
    assert (root["mount_point"], root["fstype"], root["options"]) == ("/", "overlay", ["rw", "relatime"])
    data = mounts[9]
    assert data["mount_point"] == "/mnt/my data" and data["root"] == "/home/user/my data"
    assert data["fstype"] == "ext4" and "ro" in data["options"]
    shm = mounts[7]
    assert shm["super_options"] == ["rw", "size=65536k"]


def test_the_last_mount_on_a_mount_point_is_the_visible_one(probe):
    visible = probe.visible_mounts(probe.parse_mountinfo(DOCKER_V1_MOUNTINFO))
    assert visible["/mnt/my data"]["fstype"] == "tmpfs"


def test_covering_mount_is_the_longest_lexical_prefix(probe):
    points = ["/", "/dev", "/dev/shm", "/etc/resolv.conf", "/opt/ml"]
    assert probe.covering_mount("/dev/shm/x", points) == "/dev/shm"
    assert probe.covering_mount("/dev/shmem", points) == "/dev"
    assert probe.covering_mount("/etc/resolv.conf", points) == "/etc/resolv.conf"
    assert probe.covering_mount("/opt/mlx", points) == "/"


def test_filesystem_mounts_section_leaves_out_excluded_mounts(probe, monkeypatch):
    info = DOCKER_V1_MOUNTINFO + "\n1200 1163 8:1 /tmp/parity-x /.parity ro,relatime - ext4 /dev/sda1 rw"
    ctx = make_context(probe, exclude_paths=["/.parity"], max_files=1)
    monkeypatch.setattr(ctx, "mounts", lambda: probe.parse_mountinfo(info))
    out = {}
    probe.collect_filesystem(ctx, out)
    assert "/.parity" not in out["mounts"]
    assert out["mounts"]["/sys"] == {
        "fstype": "sysfs",
        "ro": True,
        "options": ["ro", "nosuid", "nodev", "noexec", "relatime"],
        "super_options": ["ro"],
    }


# --- cgroups ------------------------------------------------------------------------------------------------
def write_files(root: Path, files: dict[str, str]) -> None:
    for relative, content in files.items():
        path = root / relative.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def test_cgroup_v1_limits_from_the_container_view(probe, tmp_path):
    write_files(
        tmp_path,
        {
            "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "50000\n",
            "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "/sys/fs/cgroup/cpu,cpuacct/cpu.shares": "512\n",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456\n",
        },
    )
    proc_cgroup = probe.parse_proc_cgroup(
        "12:memory:/docker/0123abcd\n4:cpu,cpuacct:/docker/0123abcd\n1:name=systemd:/docker/0123abcd\n0::/system.slice\n"
    )
    limits = probe.cgroup_limits(
        probe.parse_mountinfo(DOCKER_V1_MOUNTINFO), proc_cgroup, sysroot=str(tmp_path)
    )
    assert limits == {
        "version": 1,
        "cpu_quota_us": 50000,
        "cpu_period_us": 100000,
        "cpu_limit_cores": 0.5,
        "cpu_shares": 512,
        "cpu_weight": None,
        "memory_limit_bytes": 268435456,
    }


def test_cgroup_v1_unlimited_values_are_null(probe, tmp_path):
    write_files(
        tmp_path,
        {
            "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
            "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "/sys/fs/cgroup/cpu,cpuacct/cpu.shares": "1024\n",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        },
    )
    proc_cgroup = probe.parse_proc_cgroup("12:memory:/docker/0123abcd\n4:cpu,cpuacct:/docker/0123abcd\n")
    limits = probe.cgroup_limits(
        probe.parse_mountinfo(DOCKER_V1_MOUNTINFO), proc_cgroup, sysroot=str(tmp_path)
    )
    assert (limits["cpu_quota_us"], limits["cpu_limit_cores"], limits["memory_limit_bytes"]) == (
        None,
        None,
        None,
    )


V2_NAMESPACED = "30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate"


def test_cgroup_v2_limits_in_a_private_cgroup_namespace(probe, tmp_path):
    write_files(
        tmp_path,
        {
            "/sys/fs/cgroup/cpu.max": "50000 100000\n",
            "/sys/fs/cgroup/cpu.weight": "39\n",
            "/sys/fs/cgroup/memory.max": "536870912\n",
        },
    )
    limits = probe.cgroup_limits(
        probe.parse_mountinfo(V2_NAMESPACED), probe.parse_proc_cgroup("0::/\n"), str(tmp_path)
    )
    assert limits == {
        "version": 2,
        "cpu_quota_us": 50000,
        "cpu_period_us": 100000,
        "cpu_limit_cores": 0.5,
        "cpu_shares": None,
        "cpu_weight": 39,
        "memory_limit_bytes": 536870912,
    }


def test_cgroup_v2_max_means_unlimited_and_host_namespace_paths_resolve(probe, tmp_path):
    scope = "/sys/fs/cgroup/system.slice/docker-abc.scope"
    write_files(
        tmp_path,
        {f"{scope}/cpu.max": "max 100000\n", f"{scope}/cpu.weight": "100\n", f"{scope}/memory.max": "max\n"},
    )
    proc_cgroup = probe.parse_proc_cgroup("0::/system.slice/docker-abc.scope\n")
    limits = probe.cgroup_limits(probe.parse_mountinfo(V2_NAMESPACED), proc_cgroup, str(tmp_path))
    assert (limits["version"], limits["cpu_quota_us"], limits["cpu_period_us"]) == (2, None, 100000)
    assert (limits["cpu_weight"], limits["memory_limit_bytes"], limits["cpu_limit_cores"]) == (
        100,
        None,
        None,
    )


def test_no_cgroup_mounts_means_unknown_version(probe):
    limits = probe.cgroup_limits([], probe.parse_proc_cgroup("0::/\n"))
    assert limits["version"] is None and limits["memory_limit_bytes"] is None


# --- /etc/resolv.conf and /etc/hosts ------------------------------------------------------------------------
def test_resolv_conf_kubernetes_cluster_first(probe):
    text = textwrap.dedent(
        """\
        # generated by kubelet
        search old.example
        search team-a.svc.cluster.local svc.cluster.local cluster.local us-east-1.compute.internal
        nameserver 10.100.0.10
        nameserver 10.100.0.11 ; second
        options ndots:5 timeout:2
        domain cluster.local
        """
    )
    assert probe.parse_resolv_conf(text) == {
        "nameservers": ["10.100.0.10", "10.100.0.11"],
        "search": [
            "team-a.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
            "us-east-1.compute.internal",
        ],
        "options": ["ndots:5", "timeout:2"],
        "domain": "cluster.local",
    }


def test_hosts_kubernetes_managed_file(probe):
    text = (
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n10.0.0.7\ttrainer-0.workers.team-a.svc.cluster.local\ttrainer-0\n"
        "\n# Entries added by HostAliases.\n10.1.1.1\tdb\tdb.internal  # inline comment\n"
    )
    header, entries = probe.parse_hosts(text)
    assert header == "# Kubernetes-managed hosts file."
    assert entries[1] == {"ip": "::1", "names": ["localhost", "ip6-localhost", "ip6-loopback"]}
    assert entries[3] == {
        "ip": "10.0.0.7",
        "names": ["trainer-0.workers.team-a.svc.cluster.local", "trainer-0"],
    }
    assert entries[-1] == {"ip": "10.1.1.1", "names": ["db", "db.internal"]}


def test_docker_hosts_file_has_no_header(probe):
    header, entries = probe.parse_hosts("127.0.0.1\tlocalhost\nff02::1\tip6-allnodes\n")
    assert header is None and [e["ip"] for e in entries] == ["127.0.0.1", "ff02::1"]


# --- Spark and Hadoop ---------------------------------------------------------------------------------------
def test_spark_defaults_java_properties(probe):
    text = textwrap.dedent(
        """\
        # comment
        ! also a comment
        spark.master                     k8s://https://10.100.0.1:443
        spark.executor.memory=4g
        spark.driver.cores : 2
        spark.executor.extraJavaOptions  -XX:+UseG1GC \\
                                         -Dfoo=bar
        spark.empty
        """
    )
    text += "spark.app\\ name   my app   \n"  # an escaped space in the key, trailing blanks in the value
    assert probe.parse_java_properties(text) == {
        "spark.master": "k8s://https://10.100.0.1:443",
        "spark.executor.memory": "4g",
        "spark.driver.cores": "2",
        "spark.executor.extraJavaOptions": "-XX:+UseG1GC -Dfoo=bar",
        "spark.app name": "my app",
        "spark.empty": "",
    }


def test_hadoop_site_xml(probe):
    xml = b"""<?xml version="1.0"?>
    <?xml-stylesheet type="text/xsl" href="configuration.xsl"?>
    <configuration>
      <property><name>fs.defaultFS</name><value>s3a://bucket</value></property>
      <property>
        <name> fs.s3a.endpoint </name>
        <value>
          s3.us-east-1.amazonaws.com
        </value>
        <description>ignored</description>
      </property>
      <property><name>fs.defaultFS</name><value>hdfs://later-wins</value></property>
      <property><name>empty.value</name></property>
    </configuration>"""
    assert probe.parse_hadoop_xml(xml) == {
        "fs.defaultFS": "hdfs://later-wins",
        "fs.s3a.endpoint": "s3.us-east-1.amazonaws.com",
        "empty.value": "",
    }


def test_spark_collector_hashes_secret_settings_and_reads_versions(probe, tmp_path):
    conf = tmp_path / "conf"
    hadoop = tmp_path / "hadoop"
    java = tmp_path / "java"
    spark_home = tmp_path / "spark"
    write_files(
        tmp_path,
        {
            "conf/spark-defaults.conf": (
                "spark.authenticate.secret s3cr3t-value-123\nspark.executor.cores 4\n"
            ),
            "hadoop/core-site.xml": "<configuration><property><name>fs.s3a.secret.key</name>"
            "<value>hadoop-secret-xyz</value>"
            "</property><property><name>fs.s3a.endpoint</name><value>http://minio:9000</value></property></configuration>",
            "hadoop/broken-site.xml": "<configuration><property>",
            "hadoop/notes.txt": "not a site file",
            "java/release": 'IMPLEMENTOR="Eclipse Adoptium"\nJAVA_VERSION="17.0.9"\n',
            "spark/python/pyspark/version.py": '__version__: str = "3.5.1"\n',
        },
    )
    environ = [
        (b"SPARK_HOME", str(spark_home).encode()),
        (b"SPARK_CONF_DIR", str(conf).encode()),
        (b"HADOOP_CONF_DIR", str(hadoop).encode()),
        (b"JAVA_HOME", str(java).encode()),
        (b"PYSPARK_PYTHON", b"python3"),
        (b"SPARK_AUTH_TOKEN", b"abc"),
    ]
    ctx = make_context(probe, environ)
    out = {}
    probe.collect_spark(ctx, out)
    assert out["defaults"] == {
        "spark.authenticate.secret": expected_hmac(KEY, "s3cr3t-value-123"),
        "spark.executor.cores": "4",
    }
    assert out["hadoop"] == {
        "core-site.xml": {
            "fs.s3a.secret.key": expected_hmac(KEY, "hadoop-secret-xyz"),
            "fs.s3a.endpoint": "http://minio:9000",
        }
    }
    assert [e["collector"] for e in ctx.errors] == ["spark"]  # the broken XML, the rest still collected
    assert out["env"]["SPARK_AUTH_TOKEN"] == expected_hmac(KEY, "abc")
    assert out["env"]["PYSPARK_PYTHON"] == "python3"
    assert out["spark_env_sh"] == {"path": str(conf / "spark-env.sh"), "exists": False}
    assert out["versions"] == {"pyspark": "3.5.1", "java": "17.0.9"}


def test_installed_distributions_read_metadata_headers_first_on_path_wins(probe, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    write_files(
        first,
        {
            "Foo_Bar-1.2.3.dist-info/METADATA": (
                "Metadata-Version: 2.1\nName: Foo.Bar\nVersion: 1.2.3\n\nName: not-a-header\n"
            ),
            "legacy-0.9.egg-info": "Metadata-Version: 1.0\nName: legacy\nVersion: 0.9\n",
        },
    )
    write_files(
        second,
        {
            "foo_bar-9.9.dist-info/METADATA": "Name: foo-bar\nVersion: 9.9\n",
            "pyspark-3.5.0.dist-info/METADATA": "Name: pyspark\nVersion: 3.5.0\n",
        },
    )
    found = probe.installed_distributions([str(first), str(second), str(tmp_path / "missing")])
    assert found == {"foo-bar": "1.2.3", "legacy": "0.9", "pyspark": "3.5.0"}
    assert probe.pyspark_version(found, None) == "3.5.0"


# --- /proc/self/status, identity ----------------------------------------------------------------------------
def test_status_capabilities_no_new_privs_seccomp_umask(probe):
    status = probe.parse_proc_status(
        "Name:\tpython3\nUmask:\t0022\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\n"
        "CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n"
        "Seccomp:\t2\nSeccomp_filters:\t1\n"
    )
    security = probe.security_from_status(status)
    assert security["capabilities"]["effective"] == sorted(
        "CAP_" + name
        for name in [
            "CHOWN",
            "DAC_OVERRIDE",
            "FOWNER",
            "FSETID",
            "KILL",
            "SETGID",
            "SETUID",
            "SETPCAP",
            "NET_BIND_SERVICE",
            "NET_RAW",
            "SYS_CHROOT",
            "MKNOD",
            "AUDIT_WRITE",
            "SETFCAP",
        ]
    )
    assert security["capabilities"]["ambient"] == []
    assert security["capabilities"]["effective_hex"] == "00000000a80425fb"
    assert (security["no_new_privs"], security["seccomp"], security["umask"]) == (1, 2, "0022")


def test_non_root_has_no_effective_capabilities_and_unknown_bits_are_named(probe):
    assert probe.capability_names("0000000000000000") == []
    assert probe.capability_names("0000020000000001") == ["CAP_41", "CAP_CHOWN"]


def test_uid_without_passwd_entry_has_no_user_name(probe):
    def no_such_user(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    group = SimpleNamespace(gr_name="root")
    described = probe.describe_user(4242, 0, no_such_user, lambda gid: group)
    assert described == {"user": None, "passwd_home": None, "shell": None, "group": "root"}


def test_uid_with_passwd_entry(probe):
    entry = SimpleNamespace(pw_name="app", pw_dir="/home/app", pw_shell="/bin/bash")

    def no_such_group(gid):
        raise KeyError(gid)

    described = probe.describe_user(1000, 1000, lambda uid: entry, no_such_group)
    assert described == {"user": "app", "passwd_home": "/home/app", "shell": "/bin/bash", "group": None}


def test_os_release_and_java_release(probe):
    values = probe.parse_os_release(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n# c\n'
    )
    assert (values["ID"], values["VERSION_ID"], values["PRETTY_NAME"]) == (
        "debian",
        "12",
        "Debian GNU/Linux 12 (bookworm)",
    )
    assert probe.parse_java_release("JAVA_VERSION='11.0.21'\n") == "11.0.21"


# --- secrets ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, secret",
    [
        ("HF_TOKEN", True),
        ("GITHUBTOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("MYSQL_ROOT_PASSWORD", True),
        ("DB_PASS", True),
        ("apiKey", True),
        ("DD_API_KEY", True),
        ("JWT_PRIVATE", True),
        ("AWS_SESSION_TOKEN", True),
        ("spark.authenticate.secret", True),
        ("fs.s3a.access.key", True),
        ("SSH_AUTH", True),
        ("KEYBOARD", False),
        ("MONKEY_PATCH", False),
        ("AUTHOR", False),
        ("TOKENIZERS_PARALLELISM", False),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", False),
        ("AWS_ACCESS_KEY_ID", False),
        ("GOOGLE_APPLICATION_CREDENTIALS_PATH", False),
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", False),
        ("SSH_AUTH_SOCK", False),
        ("PWD", False),
        ("HOME", False),
    ],
)
def test_secret_names(probe, name, secret):
    assert probe.is_secret_name(name) is secret


def test_hyperparameter_keys_use_only_unambiguous_words(probe):
    words = probe.HYPERPARAMETER_SECRET_WORDS
    assert not probe.is_secret_name("pad_token", words) and not probe.is_secret_name("max_new_tokens", words)
    assert probe.is_secret_name("api_key", words) and probe.is_secret_name("db_password", words)


@pytest.mark.parametrize(
    "value, secret",
    [
        ("AKIAIOSFODNN7EXAMPLE", True),
        ("key=ASIAY34FZKBOKMUTVV7A;", True),
        (
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
                "-----END OPENSSH PRIVATE KEY-----"
            ),
            True,
        ),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            True,
        ),
        ("postgres://app:hunter2@db:5432/app", True),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
        ("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", False),
        ("sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945", False),
        ("arn:aws:sagemaker:us-east-1:123456789012:training-job/task1-2020-10-08-07-55-57-f4j22gh0", False),
        ("/var/lib/python3/site-packages/SomePackage-2.3.4-py3.11.egg", False),
        ("0d6a1f0c-6e44-4f7e-9bc9-1b3e3a1d8c55", False),
        ("http://proxy.internal:3128", False),
        ("short", False),
    ],
)
def test_secret_values(probe, value, secret):
    assert probe.looks_secret_value(value) is secret


def test_known_secrets_are_masked_wherever_they_reappear(probe):
    secrets = probe.Secrets(KEY, True)
    digest = secrets.conceal(b"canary-1234567")
    secrets.conceal("tiny")  # too short to mask safely elsewhere
    scrub = secrets.scrubber()
    assert scrub("url=https://x/?t=canary-1234567&tiny=1") == f"url=https://x/?t=<{digest}>&tiny=1"


# --- env ----------------------------------------------------------------------------------------------------
def test_env_section_is_lossless(probe):
    environ = [
        (b"PLAIN", b"value with = sign"),
        (b"LATIN1", b"caf\xe9"),
        (b"EMPTY", b""),
        (b"PLAIN", b"second"),
        (b"caf\xe9", b"x"),
        (b"caf\xe9_TOKEN", b"s"),
        (b"API_TOKEN", b"t0ken-value"),
        (b"HIDDEN_BY_HARNESS", b"1"),
        (b"NOEQUALS", b""),
    ]
    ctx = make_context(probe, environ, exclude_env=["HIDDEN_BY_HARNESS"])
    out = {}
    probe.collect_env(ctx, out)
    assert out["vars"] == {
        "PLAIN": "value with = sign",
        "LATIN1": {"base64": "Y2Fm6Q=="},
        "EMPTY": "",
        "API_TOKEN": expected_hmac(KEY, "t0ken-value"),
        "NOEQUALS": "",
    }
    assert out["duplicates"] == ["PLAIN"] and out["redacted"] == ["API_TOKEN"]
    assert out["undecodable"] == [
        {"name_base64": "Y2Fm6Q==", "value_base64": "eA=="},
        {"name_base64": "Y2Fm6V9UT0tFTg==", "value": expected_hmac(KEY, b"s"), "redacted": True},
    ]
    assert out["count"] == len(environ) - 1


def test_environ_block_parsing(probe):
    assert probe.parse_environ(b"A=1\0B==2\0C\0\0") == [(b"A", b"1"), (b"B", b"=2"), (b"C", b"")]


# --- credentials --------------------------------------------------------------------------------------------
def test_credentials_web_identity_with_hashed_token_file(probe, tmp_path):
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.web-identity-token")
    token.chmod(0o640)
    environ = [
        (b"AWS_ROLE_ARN", b"arn:aws:iam::123456789012:role/trainer"),
        (b"AWS_WEB_IDENTITY_TOKEN_FILE", str(token).encode()),
        (b"AWS_DEFAULT_REGION", b"us-east-1"),
        (b"HOME", str(tmp_path).encode()),
    ]
    ctx = make_context(probe, environ)
    out = {}
    probe.collect_credentials(ctx, out)
    aws = out["aws"]
    assert aws["resolved_source"] == "web_identity"
    assert (aws["region"], aws["region_source"]) == ("us-east-1", "AWS_DEFAULT_REGION")
    token_info = aws["sources"]["web_identity"]["token_file"]
    assert token_info["mode"] == "0640" and token_info["exists"] is True
    assert token_info["hmac"] == expected_hmac(KEY, "eyJhbGciOiJSUzI1NiJ9.web-identity-token")
    assert aws["sources"]["env"] is None and aws["sources"]["shared_files"] is None


def test_credentials_env_keys_beat_the_container_endpoint(probe):
    environ = [
        (b"AWS_ACCESS_KEY_ID", b"AKIAIOSFODNN7EXAMPLE"),
        (b"AWS_SECRET_ACCESS_KEY", b"wJalrXUtnFEMI/K7MDENG"),
        (b"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", b"/v2/credentials/uuid"),
        (b"HOME", b"/nonexistent"),
    ]
    ctx = make_context(probe, environ)
    out = {}
    probe.collect_credentials(ctx, out)
    sources = out["aws"]["sources"]
    assert out["aws"]["resolved_source"] == "env"
    assert sources["env"] == {
        "AWS_ACCESS_KEY_ID": expected_hmac(KEY, "AKIAIOSFODNN7EXAMPLE"),
        "AWS_SECRET_ACCESS_KEY": expected_hmac(KEY, "wJalrXUtnFEMI/K7MDENG"),
        "AWS_SESSION_TOKEN": None,
    }
    assert sources["container"]["relative_uri"] == "/v2/credentials/uuid"


def test_credentials_shared_files_profile_and_region(probe, tmp_path):
    write_files(
        tmp_path,
        {
            ".aws/credentials": (
                "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
                "aws_secret_access_key = shared-secret-value\n"
            ),
            ".aws/config": (
                "[profile train]\nregion = eu-west-1\nrole_arn = arn:aws:iam::1:role/x\n"
                "[default]\nregion = us-west-2\n"
            ),
        },
    )
    ctx = make_context(probe, [(b"HOME", str(tmp_path).encode()), (b"AWS_PROFILE", b"train")])
    out = {}
    probe.collect_credentials(ctx, out)
    aws = out["aws"]
    assert aws["resolved_source"] == "shared_files"
    assert aws["sources"]["shared_files"]["credentials_file"]["profiles"] == ["default"]
    assert aws["sources"]["shared_files"]["config_file"]["profiles"] == ["default", "train"]
    assert (aws["region"], aws["region_source"]) == ("eu-west-1", "config_file")
    assert "shared-secret-value" not in json.dumps(probe.finalize(out, ctx.secrets.scrubber()))


def test_declared_secret_files_by_glob(probe, tmp_path):
    write_files(
        tmp_path, {"secrets/db-password": "hunter2", "secrets/api-token": "tok", "secrets/sub/x": "1"}
    )
    ctx = make_context(probe, secret_files=[str(tmp_path / "secrets" / "*"), str(tmp_path / "absent")])
    out = {}
    probe.collect_secret_files(ctx, out)
    assert sorted(out) == [
        str(tmp_path / "absent"),
        str(tmp_path / "secrets/api-token"),
        str(tmp_path / "secrets/db-password"),
    ]
    assert out[str(tmp_path / "secrets/db-password")]["hmac"] == expected_hmac(KEY, "hunter2")
    assert out[str(tmp_path / "absent")] == {"exists": False}


# --- metrics and context ------------------------------------------------------------------------------------
def test_statsd_and_dogstatsd_settings(probe):
    assert probe.statsd_settings({})["host"] == "localhost" and probe.statsd_settings({})["port"] == 8125
    statsd = probe.statsd_settings(
        {"STATSD_HOST": "statsd.monitoring", "STATSD_PORT": "9125", "STATSD_IPV6": "1"}
    )
    assert (statsd["host"], statsd["port"], statsd["ipv6"], statsd["source"]) == (
        "statsd.monitoring",
        9125,
        True,
        {"host": "STATSD_HOST", "port": "STATSD_PORT"},
    )
    agent = probe.dogstatsd_settings({"DD_AGENT_HOST": "10.0.0.5"})
    assert (agent["host"], agent["port"], agent["source"]["port"]) == ("10.0.0.5", 8125, "default")
    url = probe.dogstatsd_settings({"DD_AGENT_HOST": "10.0.0.5", "DD_DOGSTATSD_URL": "udp://[::1]:8200"})
    assert (url["host"], url["port"], url["source"]["host"]) == ("::1", 8200, "DD_DOGSTATSD_URL")
    socket_url = probe.dogstatsd_settings({"DD_DOGSTATSD_URL": "unix:///var/run/datadog/dsd.socket"})
    assert (socket_url["host"], socket_url["socket_path"]) == (None, "/var/run/datadog/dsd.socket")
    assert probe.statsd_settings({"STATSD_PORT": "eighty"})["port"] == "eighty"


@pytest.mark.parametrize(
    "env, paths, platform",
    [
        ({"TRAINING_JOB_NAME": "job"}, {"/.dockerenv"}, "sagemaker-training"),
        ({}, {"/opt/ml/config/processingjobconfig.json"}, "sagemaker-processing"),
        ({}, {"/opt/ml/metadata/resource-metadata.json"}, "sagemaker-notebook"),
        (
            {"KUBERNETES_SERVICE_HOST": "10.100.0.1"},
            {"/var/run/secrets/kubernetes.io/serviceaccount"},
            "kubernetes",
        ),
        ({}, {"/.dockerenv"}, "docker"),
        ({}, set(), "local"),
    ],
)
def test_context_detection(probe, env, paths, platform):
    detected = probe.detect_context(env, paths.__contains__)
    assert detected["platform"] == platform
    assert all(item.split(":")[0] in detected["matched"] for item in detected["evidence"])


def test_context_lists_every_matching_platform_as_evidence(probe):
    detected = probe.detect_context(
        {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, {"/opt/ml/input/config", "/.dockerenv"}.__contains__
    )
    assert detected["matched"] == ["sagemaker-training", "kubernetes", "docker"]
    assert "kubernetes: env KUBERNETES_SERVICE_HOST" in detected["evidence"]


# --- hyperparameters ----------------------------------------------------------------------------------------
def test_hyperparameters_keep_json_types_and_hash_secret_values(probe, tmp_path):
    path = tmp_path / "hp.json"
    path.write_text(
        json.dumps(
            {
                "lr": 0.1,
                "epochs": 3,
                "layers": [64, 32],
                "name": "run",
                "api_key": "k-123",
                "pad_token": "<pad>",
                "nested": {"db_password": "pw"},
            }
        )
    )
    ctx = make_context(probe, hyperparameter_paths=[str(path)])
    out = {}
    probe.collect_hyperparameters(ctx, out)
    record = out["sources"][str(path)]
    assert record["format"] == "json" and record["error"] is None
    assert record["values"] == {
        "lr": 0.1,
        "epochs": 3,
        "layers": [64, 32],
        "name": "run",
        "api_key": expected_hmac(KEY, "k-123"),
        "pad_token": "<pad>",
        "nested": {"db_password": expected_hmac(KEY, "pw")},
    }
    assert out["sources"]["/opt/ml/input/config/hyperparameters.json"]["exists"] is False


def test_unparseable_hyperparameters_never_echo_their_content(probe, tmp_path):
    path = tmp_path / "hp.yaml"
    path.write_text("api_key: sup3r-s3cret-value\nlr: 0.1\n")
    ctx = make_context(probe, hyperparameter_paths=[str(path)])
    out = {}
    probe.collect_hyperparameters(ctx, out)
    record = out["sources"][str(path)]
    assert record["format"] == "unparsed" and record["values"] is None
    assert record["content_hmac"] == expected_hmac(KEY, path.read_bytes())
    assert "sup3r" not in json.dumps(out)


# --- filesystem walk ----------------------------------------------------------------------------------------
def test_walk_records_symlink_loops_and_depth_and_exclusions(probe, tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b" / "c" / "d").mkdir(parents=True)
    (root / "a" / "file").write_text("12345")
    (root / "harness").mkdir()
    (root / "harness" / "config.json").write_text("{}")
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")
    os.symlink("..", root / "a" / "up")
    os.symlink("missing-target", root / "dangling")
    ctx = make_context(probe, exclude_paths=[str(root / "harness")], max_depth=3)
    paths = {}
    assert probe.Walker(ctx, paths, {}).walk(str(root)) is True
    assert (
        paths[str(root / "loop-a")]["target_type"] == "loop"
        and paths[str(root / "loop-a")]["link_target"] == "loop-b"
    )
    assert paths[str(root / "a" / "up")]["target_type"] == "dir"
    assert paths[str(root / "dangling")]["target_type"] == "missing"
    assert paths[str(root / "a" / "file")]["size"] == 5 and paths[str(root / "a" / "file")]["mode"] == "0644"
    assert str(root / "a" / "b" / "c") in paths and str(root / "a" / "b" / "c" / "d") not in paths
    assert not any(path.startswith(str(root / "harness")) for path in paths)
    assert ctx.truncated == [
        {
            "collector": "filesystem",
            "what": f"{root}: contents of 1 directories at depth 3 not listed",
            "limit": "max_depth=3",
        }
    ]


def test_walk_stops_at_max_files_and_says_so(probe, tmp_path):
    for index in range(10):
        (tmp_path / f"f{index}").write_text("x")
    ctx = make_context(probe, max_files=4)
    paths = {}
    assert probe.Walker(ctx, paths, {}).walk(str(tmp_path)) is False
    assert len(paths) == 4
    assert ctx.truncated[0]["limit"] == "max_files=4"


def test_walk_describes_a_missing_root(probe, tmp_path):
    ctx = make_context(probe)
    paths = {}
    probe.Walker(ctx, paths, {}).walk(str(tmp_path / "nope"))
    assert paths == {str(tmp_path / "nope"): {"type": "missing"}}


# --- config, arguments, output bounds -----------------------------------------------------------------------
def test_config_problems_are_recorded_without_echoing_values(probe, tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"hash_key": "not-hex-SECRETVALUE", "max_files": -1, "paths": "/x", "surprise": 1}')
    config, problems = probe.load_config(str(path))
    assert config["max_files"] == probe.CONFIG_DEFAULTS["max_files"] and config["paths"] == []
    assert ("ConfigUnknownKeys", "unknown config keys ignored: surprise") in problems
    secrets, problem = probe.make_secrets(config["hash_key"])
    assert secrets.comparable is False and "SECRETVALUE" not in problem
    path.write_text('{"hash_key": "SECRETVALUE"')
    _, problems = probe.load_config(str(path))
    assert problems == [("ConfigInvalid", "the config is not valid JSON at line 1 column 27")]


def test_arguments(probe):
    options, problems = probe.parse_arguments(["--config=/c.json", "--out", "/o.json", "--s3cret"])
    assert (options["config"], options["out"]) == ("/c.json", "/o.json")
    assert problems == ["unknown argument #3 ignored"]


def test_output_limit_halves_the_largest_container_and_records_it(probe):
    snapshot = {name: {} for name in probe.COLLECTOR_NAMES}
    snapshot.update(schema=probe.SCHEMA, truncated=[])
    snapshot["env"] = {"vars": {f"VAR_{i:05d}": "x" * 50 for i in range(2000)}, "count": 2000}
    text = probe.enforce_output_limit(snapshot, 40_000)
    assert len(text) <= 40_000
    assert 0 < len(snapshot["env"]["vars"]) < 2000 and "VAR_00000" in snapshot["env"]["vars"]
    assert snapshot["truncated"] and all(
        t["collector"] == "env" and t["limit"] == "max_output_bytes=40000" for t in snapshot["truncated"]
    )
    assert snapshot["truncated"][0]["what"].startswith("env.vars: kept the first 1000 entries")


def test_probe_arguments_are_cut_from_argv(probe):
    items = [b"/usr/bin/python3", b"-u", b"/.parity/parity_probe.py", b"--config", b"/.parity/config.json"]
    assert probe.without_probe_arguments(items, "/.parity/parity_probe.py") == [b"/usr/bin/python3", b"-u"]
