#!/usr/bin/env python3
"""parity probe: record everything a workload can observe about its environment as one JSON snapshot.

The harness runs this file *as the workload* (through the image's ENTRYPOINT, replacing only the command)
and compares what it prints across platforms. It is copied into images we do not control, so it is one file,
standard library only, Python 3.8+, and it never crashes: each collector runs isolated in its own thread with
its own time budget, a failure becomes an entry in `errors`, and whatever a size bound or the deadline cut is
listed in `truncated`. Secrets never leave in clear: they become HMAC-SHA256 hashes under the run's key.

    python3 parity_probe.py [--config FILE] [--out FILE]

The snapshot format (parity.snapshot/v1) and the config keys are described in docs/SNAPSHOT.md.
"""

import sys

sys.dont_write_bytecode = True  # the probe writes nothing but its --out file, not even .pyc files
# (every import below comes after this switch on purpose)

import base64
import errno
import hashlib
import hmac
import json
import math
import os
import re
import socket
import stat
import threading
import time
from collections import deque

PROBE_VERSION = "1.0.0"
SCHEMA = "parity.snapshot/v1"
FRAME_BEGIN = "===== PARITY SNAPSHOT BEGIN v1 ====="
FRAME_END = "===== PARITY SNAPSHOT END v1 ====="
HASH_PREFIX = "hmac-sha256:"

CONFIG_DEFAULTS = {
    "hash_key": None,
    "label": "",
    "paths": [],
    "secret_files": [],
    "hyperparameter_paths": [],
    "resolve": [],
    "send_test_metric": False,
    "deadline_seconds": 10.0,
    "max_depth": 3,
    "max_files": 2000,
    "max_file_bytes": 1024 * 1024,
    "max_output_bytes": 4 * 1024 * 1024,
    "exclude_paths": [],
    "exclude_env": [],
}

# Word lists below are wrapped by hand.
# fmt: off
DEFAULT_FILESYSTEM_ROOTS = ("/opt/ml", "$HOME", "$CWD", "/tmp", "/dev/shm", "/var/run/secrets")
SAGEMAKER_HYPERPARAMETERS = "/opt/ml/input/config/hyperparameters.json"
STATSD_DEFAULT_HOST = "localhost"
STATSD_DEFAULT_PORT = 8125
# File systems the walker never descends into: their contents describe the kernel, not the workload's world.
VIRTUAL_FILESYSTEMS = frozenset((
    "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs", "securityfs", "pstore",
    "bpf", "configfs", "fusectl", "binfmt_misc", "autofs", "hugetlbfs", "rpc_pipefs", "nsfs",
))
# overlayfs options naming the host's layer directories: different for every container, meaningless inside.
HOST_LAYER_OPTIONS = frozenset(("lowerdir", "upperdir", "workdir"))
# cgroup v1 reports "no memory limit" as PAGE_COUNTER_MAX pages; anything this large is unlimited.
CGROUP_V1_UNLIMITED = 1 << 62

# Linux capability names by bit number (include/uapi/linux/capability.h).
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)
REPORTED_SIGNALS = (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGPIPE", "SIGCHLD", "SIGALRM",
    "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGWINCH", "SIGXFSZ",
)
RLIMITS = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
    "rtprio", "rttime", "sigpending", "stack",
)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "FTP_PROXY")

# ---------------------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------------------
# A name is secret-looking when one of its words (split at non-alphanumerics and camelCase) is a secret word
# or ends in a strong one (GITHUBTOKEN), unless its last word says it names a location or an identifier
# (AWS_WEB_IDENTITY_TOKEN_FILE is a path, AWS_ACCESS_KEY_ID an id). Whole words avoid the classic false
# positives: KEYBOARD, MONKEY, AUTHOR, TOKENIZERS_PARALLELISM.
SECRET_WORDS = frozenset((
    "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PASSPHRASE", "KEY", "APIKEY", "CREDENTIAL",
    "CREDENTIALS", "CREDS", "AUTH", "PRIVATE",
))
SECRET_SUFFIXES = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY")
# Hyperparameter keys such as pad_token or max_tokens are ordinary in ML code: only unambiguous words count.
HYPERPARAMETER_SECRET_WORDS = frozenset((
    "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "APIKEY", "CREDENTIAL", "CREDENTIALS", "PRIVATE",
))
LOCATION_WORDS = frozenset((
    "FILE", "FILES", "PATH", "DIR", "URI", "URL", "ARN", "ID", "NAME", "HOST", "PORT", "ENDPOINT", "REGION",
    "SOCK",
))
# fmt: on
_NAME_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_AWS_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
_TOKEN_SEPARATORS = re.compile(r"[\s,;:'\"@&?()<>\[\]{}|`]+")
HIGH_ENTROPY_MIN_LENGTH = 32
HIGH_ENTROPY_MIN_BITS = 4.5  # bits per character; random base64 is ~5, hex and file paths stay below 4.2
SCRUB_MIN_LENGTH = 8  # known secrets at least this long are also masked wherever else they appear


def name_words(name):
    """The upper-cased words of an identifier: `apiKey` -> [API, KEY]; API then KEY counts as APIKEY."""
    words = []
    for part in re.split(r"[^A-Za-z0-9]+", name):
        words.extend(word.upper() for word in _NAME_WORD.findall(part))
    joined = []
    for word in words:
        if word == "KEY" and joined and joined[-1] == "API":
            joined[-1] = "APIKEY"
        else:
            joined.append(word)
    return joined


def is_secret_name(name, secret_words=SECRET_WORDS):
    words = name_words(name)
    if not words or words[-1] in LOCATION_WORDS:
        return False
    suffixes = tuple(suffix for suffix in SECRET_SUFFIXES if suffix in secret_words)
    return any(word in secret_words or word.endswith(suffixes) for word in words)


def shannon_bits_per_char(text):
    counts = {}
    for char in text:
        counts[char] = counts.get(char, 0) + 1
    length = float(len(text))
    return -sum((n / length) * math.log2(n / length) for n in counts.values())


def looks_like_random_token(piece):
    """Long, mixed-case with digits, high entropy; absolute paths (a leading /) are never tokens."""
    if len(piece) < HIGH_ENTROPY_MIN_LENGTH or piece.startswith("/"):
        return False
    has_classes = (
        any(c.islower() for c in piece)
        and any(c.isupper() for c in piece)
        and any(c.isdigit() for c in piece)
    )
    return has_classes and shannon_bits_per_char(piece) >= HIGH_ENTROPY_MIN_BITS


def looks_secret_value(text):
    """AWS access key ids, PEM blocks, JWTs, URLs with a password, long high-entropy tokens."""
    if len(text) < 16:
        return False
    if "-----BEGIN " in text or _AWS_ACCESS_KEY_ID.search(text) or _JWT.search(text):
        return True
    if _URL_WITH_PASSWORD.search(text):
        return True
    return any(looks_like_random_token(piece) for piece in _TOKEN_SEPARATORS.split(text))


def worth_scrubbing(text):
    """Long enough, and not a plain word or number: masking `production` or `8080` everywhere a secret-named
    variable happened to hold it would hide ordinary values, not protect anything."""
    if len(text) < SCRUB_MIN_LENGTH or text.isdigit():
        return False
    return not (text.isalpha() and (text.islower() or text.isupper()))


def as_bytes(value):
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


class Secrets:
    """Keyed hashing of secret values, and a scrubber that masks any known secret wherever it reappears."""

    def __init__(self, key, comparable):
        self.key = key
        self.comparable = comparable
        self.key_id = hashlib.sha256(key).hexdigest()[:12]
        self._known = set()

    def digest(self, value):
        return HASH_PREFIX + hmac.new(self.key, as_bytes(value), hashlib.sha256).hexdigest()

    def conceal(self, value):
        """The keyed hash of `value`; the value is remembered so it is masked anywhere else it shows up."""
        text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
        for candidate in {text, text.strip()}:
            if worth_scrubbing(candidate):
                self._known.add(candidate)
        return self.digest(value)

    def scrubber(self):
        """A function masking every secret known so far (longest first) inside a string."""
        known = sorted(self._known, key=len, reverse=True)
        masks = [(secret, "<" + self.digest(secret) + ">") for secret in known]

        def scrub(text):
            for secret, mask in masks:
                if secret in text:
                    text = text.replace(secret, mask)
            return text

        return scrub

    def maybe_conceal(self, name, value, secret_words=SECRET_WORDS):
        """`value` hashed when its name or the value itself looks secret, else unchanged."""
        if (name is not None and is_secret_name(name, secret_words)) or looks_secret_value(value):
            return self.conceal(value)
        return value


# ---------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------
def b64(data):
    return base64.b64encode(data).decode("ascii")


def text_or_base64(data):
    """A JSON string for valid UTF-8, else {"base64": ...} so no byte is lost."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": b64(data)}


def read_bytes(path, limit):
    with open(path, "rb") as handle:
        return handle.read(limit)


def read_text(path, limit=1024 * 1024):
    return read_bytes(path, limit).decode("utf-8", "replace")


def read_optional_text(path, limit=1024 * 1024):
    try:
        return read_text(path, limit)
    except OSError:
        return None


def errno_name(exc):
    code = getattr(exc, "errno", None)
    return errno.errorcode.get(code, type(exc).__name__) if code else type(exc).__name__


def file_type(mode):
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
    ):
        if test(mode):
            return name
    return "unknown"


def octal_mode(mode):
    return f"{stat.S_IMODE(mode):04o}"


def is_writable(path):
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.W_OK, effective_ids=effective)


def is_under(path, prefix):
    prefix = prefix.rstrip("/") or "/"
    return path == prefix or prefix == "/" or path.startswith(prefix + "/")


# ---------------------------------------------------------------------------------------------------------
# Parsers: pure functions over text, unit-tested on crafted files
# ---------------------------------------------------------------------------------------------------------
def parse_environ(data):
    """`/proc/self/environ` bytes -> [(name, value)] in order; an entry without `=` has an empty value."""
    entries = []
    for item in data.split(b"\0"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        entries.append((name, value))
    return entries


def unescape_mount_field(field):
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text):
    """`/proc/self/mountinfo` -> [{root, mount_point, options, fstype, super_options}] in kernel order
    (a later entry on the same mount point hides an earlier one)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 7:
            continue
        separator = fields.index("-")
        tail = fields[separator + 1 :]
        mounts.append(
            {
                "root": unescape_mount_field(fields[3]),
                "mount_point": unescape_mount_field(fields[4]),
                "options": fields[5].split(","),
                "fstype": tail[0] if tail else "",
                "super_options": tail[2].split(",") if len(tail) > 2 else [],
            }
        )
    return mounts


def visible_mounts(mounts):
    """Mount point -> the mount that is visible there (the last one mounted)."""
    visible = {}
    for mount in mounts:
        visible[mount["mount_point"]] = mount
    return visible


def covering_mount(path, mount_points):
    """The longest mount point that is `path` or a lexical ancestor of it."""
    best = None
    for point in mount_points:
        if is_under(path, point) and (best is None or len(point) > len(best)):
            best = point
    return best


def parse_proc_cgroup(text):
    """`/proc/self/cgroup` -> [(hierarchy_id, [controllers], path)]; v2 is hierarchy 0, no controller."""
    entries = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers = [name for name in parts[1].split(",") if name]
        entries.append((int(parts[0]), controllers, parts[2]))
    return entries


def _cgroup_dir(mount, process_path):
    root = mount["root"]
    if root == "/":
        relative = process_path
    elif process_path == root or process_path.startswith(root.rstrip("/") + "/"):
        relative = process_path[len(root) :]
    else:  # the process's cgroup is outside this mount's view (private cgroup namespace)
        relative = ""
    return mount["mount_point"].rstrip("/") + ("/" + relative.strip("/") if relative.strip("/") else "")


def _read_int(path):
    text = read_optional_text(path, 4096)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def cgroup_limits(mounts, proc_cgroup, sysroot=""):
    """CPU and memory limits as the process's own cgroup states them, for cgroup v1 or v2.

    `sysroot` prefixes every /sys path so the function can run on a crafted tree in tests.
    """
    result = {
        "version": None,
        "cpu_quota_us": None,
        "cpu_period_us": None,
        "cpu_limit_cores": None,
        "cpu_shares": None,
        "cpu_weight": None,
        "memory_limit_bytes": None,
    }
    v1_mounts = [m for m in mounts if m["fstype"] == "cgroup"]
    v2_mounts = [m for m in mounts if m["fstype"] == "cgroup2"]
    v1_paths = {}
    v2_path = None
    for _hierarchy, controllers, path in proc_cgroup:
        if controllers:
            for controller in controllers:
                v1_paths[controller] = path
        else:
            v2_path = path

    def v1_dir(controller):
        for mount in v1_mounts:
            if controller in mount["super_options"] and controller in v1_paths:
                return sysroot + _cgroup_dir(mount, v1_paths[controller])
        return None

    cpu_dir, memory_dir = v1_dir("cpu"), v1_dir("memory")
    if cpu_dir or memory_dir:
        result["version"] = 1
        if cpu_dir:
            quota = _read_int(cpu_dir + "/cpu.cfs_quota_us")
            period = _read_int(cpu_dir + "/cpu.cfs_period_us")
            result["cpu_quota_us"] = quota if quota is not None and quota > 0 else None
            result["cpu_period_us"] = period
            result["cpu_shares"] = _read_int(cpu_dir + "/cpu.shares")
        if memory_dir:
            limit = _read_int(memory_dir + "/memory.limit_in_bytes")
            result["memory_limit_bytes"] = (
                limit if limit is not None and limit < CGROUP_V1_UNLIMITED else None
            )
    elif v2_mounts and v2_path is not None:
        result["version"] = 2
        base = sysroot + _cgroup_dir(v2_mounts[-1], v2_path)
        cpu_max = (read_optional_text(base + "/cpu.max", 4096) or "").split()
        if len(cpu_max) == 2:
            result["cpu_quota_us"] = None if cpu_max[0] == "max" else int(cpu_max[0])
            result["cpu_period_us"] = int(cpu_max[1])
        result["cpu_weight"] = _read_int(base + "/cpu.weight")
        memory_max = (read_optional_text(base + "/memory.max", 4096) or "").strip()
        result["memory_limit_bytes"] = int(memory_max) if memory_max.isdigit() else None
    if result["cpu_quota_us"] and result["cpu_period_us"]:
        result["cpu_limit_cores"] = round(result["cpu_quota_us"] / float(result["cpu_period_us"]), 3)
    return result


def parse_resolv_conf(text):
    resolv = {"nameservers": [], "search": [], "options": [], "domain": None}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        keyword, arguments = words[0], words[1:]
        if keyword == "nameserver" and arguments:
            resolv["nameservers"].append(arguments[0])
        elif keyword == "search":
            resolv["search"] = arguments  # the last search line wins, as in glibc
        elif keyword == "domain" and arguments:
            resolv["domain"] = arguments[0]
        elif keyword == "options":
            resolv["options"].extend(arguments)
    return resolv


def parse_hosts(text):
    """/etc/hosts -> (first comment line or None, [{ip, names}]) in file order."""
    header = None
    entries = []
    for number, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if number == 0 and stripped.startswith("#"):
            header = stripped
        words = stripped.split("#", 1)[0].split()
        if len(words) >= 2:
            entries.append({"ip": words[0], "names": words[1:]})
    return header, entries


def parse_java_properties(text):
    """spark-defaults.conf: Java properties (key and value separated by whitespace, `=` or `:`; `#`/`!`
    comments; backslash continues a line). Values are trimmed as Spark does."""
    properties = {}
    logical_lines = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.lstrip() if pending else raw.strip()
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending = line[:-1]
            continue
        pending = ""
        logical_lines.append(line)
    if pending:
        logical_lines.append(pending)
    for line in logical_lines:
        if not line or line[0] in "#!":
            continue
        match = re.match(r"((?:\\.|[^\s=:\\])+)\s*[=:]?\s*(.*)$", line)
        if match:
            key = re.sub(r"\\(.)", r"\1", match.group(1))
            properties[key] = match.group(2).strip()
    return properties


def parse_hadoop_xml(data):
    """A Hadoop *-site.xml -> {name: value} (the last definition of a name wins, as in Configuration)."""
    from xml.etree import ElementTree

    root = ElementTree.fromstring(data)
    properties = {}
    for prop in root.iter("property"):
        name = prop.findtext("name")
        if name is not None:
            properties[name.strip()] = (prop.findtext("value") or "").strip()
    return properties


def parse_proc_status(text):
    fields = {}
    for line in text.splitlines():
        key, separator, value = line.partition(":")
        if separator:
            fields[key.strip()] = value.strip()
    return fields


def capability_names(hex_mask):
    mask = int(hex_mask, 16)
    names = []
    bit = 0
    while mask >> bit:
        if (mask >> bit) & 1:
            names.append("CAP_" + (CAPABILITIES[bit] if bit < len(CAPABILITIES) else str(bit)))
        bit += 1
    return sorted(names)


def signal_names(hex_mask, numbers_to_names):
    mask = int(hex_mask, 16)
    return sorted(numbers_to_names.get(bit + 1, f"SIG{bit + 1}") for bit in range(64) if (mask >> bit) & 1)


def security_from_status(fields):
    """Capabilities, NoNewPrivs and seccomp mode from parsed /proc/self/status fields."""
    capabilities = {}
    for key, label in (
        ("CapEff", "effective"),
        ("CapPrm", "permitted"),
        ("CapBnd", "bounding"),
        ("CapAmb", "ambient"),
    ):
        if key in fields:
            capabilities[label] = capability_names(fields[key])
    if "CapEff" in fields:
        capabilities["effective_hex"] = fields["CapEff"]
    result = {
        "capabilities": capabilities,
        "no_new_privs": None,
        "seccomp": None,
        "umask": fields.get("Umask"),
    }
    for key, target in (("NoNewPrivs", "no_new_privs"), ("Seccomp", "seccomp")):
        if fields.get(key, "").isdigit():
            result[target] = int(fields[key])
    return result


def describe_user(uid, gid, getpwuid, getgrgid):
    """Name, passwd home and shell of `uid` (None when it has no passwd entry) and the name of `gid`."""
    user = {"user": None, "passwd_home": None, "shell": None, "group": None}
    try:
        entry = getpwuid(uid)
        user.update(user=entry.pw_name, passwd_home=entry.pw_dir, shell=entry.pw_shell)
    except KeyError:
        pass
    try:
        user["group"] = getgrgid(gid).gr_name
    except KeyError:
        pass
    return user


def parse_os_release(text):
    values = {}
    for line in text.splitlines():
        key, separator, value = line.partition("=")
        if separator and key.strip():
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key.strip()] = value
    return values


def parse_java_release(text):
    """$JAVA_HOME/release -> JAVA_VERSION."""
    return parse_os_release(text).get("JAVA_VERSION")


def parse_ini_sections(text):
    """AWS shared credentials/config files -> {section: {key: value}} (no interpolation, like botocore)."""
    sections = {}
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = sections.setdefault(stripped[1:-1].strip(), {})
        elif current is not None and "=" in stripped:
            key, _, value = stripped.partition("=")
            current[key.strip()] = value.strip()
    return sections


def statsd_settings(env):
    """Where the `statsd` package's env defaults (statsd.defaults.env) send: STATSD_HOST / STATSD_PORT,
    over IPv4 unless STATSD_IPV6 is a non-zero integer."""
    return {
        "host": env.get("STATSD_HOST", STATSD_DEFAULT_HOST),
        "port": _port(env.get("STATSD_PORT"), STATSD_DEFAULT_PORT),
        "ipv6": env.get("STATSD_IPV6", "0").strip() not in ("", "0"),
        "source": {
            "host": "STATSD_HOST" if "STATSD_HOST" in env else "default",
            "port": "STATSD_PORT" if "STATSD_PORT" in env else "default",
        },
    }


def dogstatsd_settings(env):
    """Where a DogStatsD client sends: DD_DOGSTATSD_URL (udp://host:port or unix:///path) wins over
    DD_AGENT_HOST / DD_DOGSTATSD_PORT, then localhost:8125."""
    settings = {
        "host": env.get("DD_AGENT_HOST", STATSD_DEFAULT_HOST),
        "port": _port(env.get("DD_DOGSTATSD_PORT"), STATSD_DEFAULT_PORT),
        "socket_path": None,
        "url": env.get("DD_DOGSTATSD_URL"),
        "source": {
            "host": "DD_AGENT_HOST" if "DD_AGENT_HOST" in env else "default",
            "port": "DD_DOGSTATSD_PORT" if "DD_DOGSTATSD_PORT" in env else "default",
        },
    }
    url = settings["url"]
    if url:
        if url.startswith("unix://"):
            settings.update(host=None, port=None, socket_path=url[len("unix://") :])
            settings["source"] = {"host": "DD_DOGSTATSD_URL", "port": "DD_DOGSTATSD_URL"}
        elif url.startswith("udp://"):
            host, _, port = url[len("udp://") :].rpartition(":")
            if not host:
                host, port = port, ""
            settings.update(host=host.strip("[]"), port=_port(port or None, STATSD_DEFAULT_PORT))
            settings["source"] = {"host": "DD_DOGSTATSD_URL", "port": "DD_DOGSTATSD_URL"}
    return settings


def _port(text, default):
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        return text  # recorded as given: user code would fail on it too


def detect_context(env, exists):
    """Which platform the probe believes it runs on, with the evidence; the first matching rule wins."""
    rules = (
        (
            "sagemaker-training",
            [("env", "TRAINING_JOB_NAME"), ("env", "TRAINING_JOB_ARN"), ("path", "/opt/ml/input/config")],
        ),
        ("sagemaker-processing", [("path", "/opt/ml/config/processingjobconfig.json")]),
        ("sagemaker-notebook", [("path", "/opt/ml/metadata/resource-metadata.json")]),
        (
            "kubernetes",
            [("env", "KUBERNETES_SERVICE_HOST"), ("path", "/var/run/secrets/kubernetes.io/serviceaccount")],
        ),
        ("docker", [("path", "/.dockerenv"), ("path", "/run/.containerenv")]),
    )
    evidence, matched = [], []
    for platform, signals in rules:
        found = [
            f"{platform}: {kind} {name}"
            for kind, name in signals
            if (name in env if kind == "env" else exists(name))
        ]
        if found:
            matched.append(platform)
            evidence.extend(found)
    return {"platform": matched[0] if matched else "local", "matched": matched, "evidence": evidence}


def aws_resolved_source(sources):
    """The provider botocore's default chain would use: env, then web identity, then the shared files,
    then the container endpoint (instance metadata cannot be told without the network: "none")."""
    for name in ("env", "web_identity", "shared_files", "container"):
        if sources.get(name) and sources[name].get("usable", True):
            return name
    return "none"


# ---------------------------------------------------------------------------------------------------------
# The run context shared by collectors
# ---------------------------------------------------------------------------------------------------------
class Context:
    def __init__(self, config, secrets, environ_entries, environ_source, excluded_paths, probe_file):
        self.config = config
        self.secrets = secrets
        self.environ_entries = environ_entries
        self.environ_source = environ_source
        # names -> str values (first occurrence wins, as getenv does); undecodable bytes kept as surrogates
        self.env = {}
        for name, value in environ_entries:
            key = name.decode("utf-8", "surrogateescape")
            if key not in self.env:
                self.env[key] = value.decode("utf-8", "surrogateescape")
        self.excluded_paths = excluded_paths
        self.probe_file = probe_file
        self.errors = []
        self.truncated = []
        self.abandoned = set()
        self.max_file_bytes = config["max_file_bytes"]
        self._distributions = None
        self._distributions_lock = threading.Lock()

    def error(self, collector, exc_type, message):
        if collector not in self.abandoned:
            self.errors.append({"collector": collector, "type": exc_type, "message": message})

    def exception(self, collector, exc):
        self.error(collector, type(exc).__name__, str(exc)[:500])

    def truncate(self, collector, what, limit):
        if collector not in self.abandoned:
            self.truncated.append({"collector": collector, "what": what, "limit": limit})

    def attempt(self, collector, function, *args):
        """Run one step of a collector; a failure is recorded and the collector carries on with the rest."""
        try:
            return function(*args)
        except Exception as exc:  # noqa: BLE001  isolation is the point: any failure becomes an `errors` entry
            self.exception(collector, exc)
            return None

    def is_excluded(self, path):
        return any(is_under(path, excluded) for excluded in self.excluded_paths)

    def distributions(self):
        """Installed distributions, listed once for the runtime and spark collectors."""
        with self._distributions_lock:
            if self._distributions is None:
                self._distributions = installed_distributions(sys.path)
            return self._distributions

    def mounts(self):
        return parse_mountinfo(read_text("/proc/self/mountinfo", 4 * 1024 * 1024))

    def file_info(self, path, with_hash=False):
        """path, mode, owner, size (and the keyed hash of the content) of a file; `exists: false` if
        absent."""
        info = {"path": path, "exists": False}
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                info["error"] = errno_name(exc)
            return info
        info.update(
            exists=True,
            type=file_type(st.st_mode),
            mode=octal_mode(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            size=st.st_size,
        )
        if with_hash and stat.S_ISREG(st.st_mode):
            try:
                content = read_bytes(path, self.max_file_bytes)
            except OSError as exc:
                info["error"] = errno_name(exc)
            else:
                info["hmac"] = self.secrets.conceal(content)
                if st.st_size > self.max_file_bytes:
                    info["hashed_bytes"] = len(content)
                    self.truncate(
                        "credentials",
                        f"{path}: hashed the first {len(content)} bytes",
                        f"max_file_bytes={self.max_file_bytes}",
                    )
        return info


# ---------------------------------------------------------------------------------------------------------
# Collectors: each fills its own section dict in place, so a collector stopped by its budget keeps what it had
# ---------------------------------------------------------------------------------------------------------
def collect_env(ctx, out):
    excluded = set(ctx.config["exclude_env"])
    out.update(source=ctx.environ_source, count=0, vars={}, redacted=[], undecodable=[], duplicates=[])
    seen = set()
    for raw_name, raw_value in ctx.environ_entries:
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            name = None
        if name in excluded:
            continue
        out["count"] += 1
        value_text = raw_value.decode("utf-8", "replace")
        secret = is_secret_name(raw_name.decode("utf-8", "replace")) or looks_secret_value(value_text)
        if name is None:
            entry = {"name_base64": b64(raw_name)}
            if secret:
                entry.update(value=ctx.secrets.conceal(raw_value), redacted=True)
            else:
                entry["value_base64"] = b64(raw_value)
            out["undecodable"].append(entry)
            continue
        if name in seen:
            out["duplicates"].append(name)  # getenv() and os.environ see only the first definition
            continue
        seen.add(name)
        if secret:
            out["vars"][name] = ctx.secrets.conceal(raw_value)
            out["redacted"].append(name)
        else:
            out["vars"][name] = text_or_base64(raw_value)
    out["redacted"].sort()


def collect_identity(ctx, out):
    import grp
    import pwd

    uid, gid = os.getuid(), os.getgid()
    out.update(
        uid=uid,
        gid=gid,
        euid=os.geteuid(),
        egid=os.getegid(),
        groups=sorted(set(os.getgroups())),
        home=ctx.env.get("HOME"),
    )
    status = parse_proc_status(read_text("/proc/self/status"))
    security = security_from_status(status)
    out.update(
        capabilities=security["capabilities"],
        no_new_privs=security["no_new_privs"],
        seccomp=security["seccomp"],
    )
    out["umask"] = security["umask"] or _umask_by_syscall()
    # NSS lookups can hang (LDAP, sssd): they come last so everything above survives a stopped collector
    out.update(describe_user(uid, gid, pwd.getpwuid, grp.getgrgid))


def _umask_by_syscall():
    """Kernels before 4.7 have no Umask line in /proc/self/status: set it and restore it to read it."""
    current = os.umask(0o022)
    os.umask(current)
    return f"{current:04o}"


def collect_credentials(ctx, out):
    env = ctx.env
    profile = env.get("AWS_PROFILE", env.get("AWS_DEFAULT_PROFILE", "default"))
    sources = {}
    aws = {"profile": profile, "sources": sources}
    out["aws"] = aws
    sources["env"] = aws_env_source(ctx)
    sources["web_identity"] = web_identity_source(ctx)
    sources["shared_files"] = shared_files_source(ctx, profile)
    sources["container"] = container_source(ctx)
    aws["resolved_source"] = aws_resolved_source(sources)
    # botocore reads AWS_DEFAULT_REGION, then the profile's region; AWS_REGION is what other SDKs read
    config_region = (sources["shared_files"] or {}).get("config_file", {}).get("region")
    if env.get("AWS_DEFAULT_REGION"):
        aws["region"], aws["region_source"] = env["AWS_DEFAULT_REGION"], "AWS_DEFAULT_REGION"
    elif config_region:
        aws["region"], aws["region_source"] = config_region, "config_file"
    else:
        aws["region"], aws["region_source"] = None, None
    out["secret_files"] = {}
    collect_secret_files(ctx, out["secret_files"])


def aws_env_source(ctx):
    env = ctx.env
    if not (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")):
        return None
    return {
        name: ctx.secrets.conceal(env[name]) if env.get(name) else None
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }


def web_identity_source(ctx):
    env = ctx.env
    if not (env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN")):
        return None
    return {
        "role_arn": env["AWS_ROLE_ARN"],
        "role_session_name": env.get("AWS_ROLE_SESSION_NAME"),
        "token_file": ctx.file_info(env["AWS_WEB_IDENTITY_TOKEN_FILE"], with_hash=True),
    }


# Keys that make a profile a credential source for botocore (static keys, assume role, process, SSO).
PROFILE_CREDENTIAL_KEYS = (
    "aws_access_key_id",
    "role_arn",
    "credential_process",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
)
SHARED_FILE_SECRET_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def shared_files_source(ctx, profile):
    """The shared credentials and config files: hashed whole, with their profile names and the active
    profile's region; `usable` when the active profile defines credentials in either file."""
    env = ctx.env
    home = env.get("HOME") or "/"
    files = (
        (
            "credentials_file",
            env.get("AWS_SHARED_CREDENTIALS_FILE", os.path.join(home, ".aws", "credentials")),
            profile,
        ),
        (
            "config_file",
            env.get("AWS_CONFIG_FILE", os.path.join(home, ".aws", "config")),
            profile if profile == "default" else "profile " + profile,
        ),
    )
    shared = {"usable": False}
    for label, path, section_name in files:
        info = ctx.file_info(path, with_hash=True)
        shared[label] = info
        if "hmac" not in info:
            continue
        sections = parse_ini_sections(read_text(path, ctx.max_file_bytes))
        for values in sections.values():
            for key in SHARED_FILE_SECRET_KEYS:
                if values.get(key):
                    ctx.secrets.conceal(values[key])
        info["profiles"] = sorted(profile_name(section) for section in sections)
        active = sections.get(section_name, {})
        shared["usable"] = shared["usable"] or any(key in active for key in PROFILE_CREDENTIAL_KEYS)
        if label == "config_file" and active.get("region"):
            info["region"] = active["region"]
    if not (shared["credentials_file"].get("exists") or shared["config_file"].get("exists")):
        return None
    return shared


def profile_name(section):
    """`profile train` (config file) and `train` (credentials file) name the same profile."""
    prefix = "profile "
    return section[len(prefix) :] if section.startswith(prefix) else section  # noqa: FURB188  (3.8)


def container_source(ctx):
    env = ctx.env
    relative_uri = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    full_uri = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not (relative_uri or full_uri):
        return None
    token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    token_path = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    return {
        "relative_uri": relative_uri,
        "full_uri": full_uri,
        "authorization_token": ctx.secrets.conceal(token) if token else None,
        "authorization_token_file": ctx.file_info(token_path, with_hash=True) if token_path else None,
    }


def collect_secret_files(ctx, out):
    if not ctx.config["secret_files"]:
        return
    import glob

    for pattern in ctx.config["secret_files"]:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        for path in matches:
            path = os.path.abspath(path)
            if ctx.is_excluded(path) or os.path.isdir(path):
                continue
            info = ctx.file_info(path, with_hash=True)
            info.pop("path")
            out[path] = info


def collect_metrics(ctx, out):
    env = ctx.env
    statsd = statsd_settings(env)
    dogstatsd = dogstatsd_settings(env)
    out.update(statsd=statsd, dogstatsd=dogstatsd, delivered=None)
    out["test_metric"] = {
        "sent": False,
        "target": None,
        "address": None,
        "payload": None,
        "nonce": None,
        "error": None,
    }
    for settings in (statsd, dogstatsd):
        if settings["host"] is not None and isinstance(settings["port"], int):
            settings["resolved"] = _resolve(
                settings["host"], settings["port"], socket.SOCK_DGRAM, address_family(settings)
            )
        else:
            settings["resolved"] = None
    uses_datadog = any(name in env for name in ("DD_DOGSTATSD_URL", "DD_AGENT_HOST", "DD_DOGSTATSD_PORT"))
    target = dogstatsd if uses_datadog else statsd
    if ctx.config["send_test_metric"]:
        send_test_metric(out["test_metric"], target)


def address_family(settings):
    """The `statsd` client resolves with AF_INET (AF_INET6 with ipv6); DogStatsD clients take any family."""
    if "ipv6" not in settings:
        return socket.AF_UNSPEC
    return socket.AF_INET6 if settings["ipv6"] else socket.AF_INET


def ascii_host(host):
    """ASCII host names as bytes: the same lookup, without importing the idna codec (a few ms)."""
    try:
        return host.encode("ascii")
    except UnicodeEncodeError:
        return host


def send_test_metric(record, target):
    """One DogStatsD-tagged counter to the configured target; a gateway there confirms it by the nonce."""
    nonce = os.urandom(8).hex()
    payload = f"parity.probe.test:1|c|#parity_nonce:{nonce}"
    record.update(nonce=nonce, payload=payload)
    if target.get("socket_path"):
        record["target"] = "unix://" + target["socket_path"]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(payload.encode("ascii"), target["socket_path"])
                record["sent"] = True
            except OSError as exc:
                record["error"] = f"{errno_name(exc)}: {exc.strerror}"
        return
    record["target"] = f"{target['host']}:{target['port']}"
    try:
        family, socktype, proto, _, address = socket.getaddrinfo(
            ascii_host(target["host"]), target["port"], address_family(target), socket.SOCK_DGRAM
        )[0]
        with socket.socket(family, socktype, proto) as sock:
            sock.sendto(payload.encode("ascii"), address)
        record.update(sent=True, address=address[0])
    except (OSError, ValueError, TypeError) as exc:
        record["error"] = f"{errno_name(exc)}: {getattr(exc, 'strerror', None) or exc}"


def _resolve(host, port=None, socktype=socket.SOCK_STREAM, family=socket.AF_UNSPEC):
    try:
        infos = socket.getaddrinfo(ascii_host(host), port, family, socktype)
    except (OSError, UnicodeError) as exc:
        return {"error": f"{errno_name(exc)}: {getattr(exc, 'strerror', None) or exc}"}
    return sorted({info[4][0] for info in infos})


def collect_hyperparameters(ctx, out):
    sources = out.setdefault("sources", {})
    paths = [SAGEMAKER_HYPERPARAMETERS] + list(ctx.config["hyperparameter_paths"])
    for path in paths:
        path = os.path.abspath(path)
        if path in sources or ctx.is_excluded(path):
            continue
        sources[path] = read_hyperparameters(ctx, path)


def read_hyperparameters(ctx, path):
    record = {"exists": False, "format": None, "values": None, "error": None}
    try:
        data = read_bytes(path, ctx.max_file_bytes + 1)
    except FileNotFoundError:
        return record
    except OSError as exc:
        record.update(exists=os.path.lexists(path), error=errno_name(exc))
        return record
    record["exists"] = True
    if len(data) > ctx.max_file_bytes:
        record["error"] = "larger than max_file_bytes; not parsed"
        record["content_hmac"] = ctx.secrets.digest(data)
        ctx.truncate("hyperparameters", path, f"max_file_bytes={ctx.max_file_bytes}")
        return record
    try:
        values = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        # JSON decode errors quote only a position, never the text; YAML and others are compared by hash
        record.update(
            format="unparsed",
            content_hmac=ctx.secrets.digest(data),
            error=f"not JSON ({type(exc).__name__}): compared by keyed hash only",
        )
        return record
    record.update(format="json", values=conceal_tree(ctx.secrets, values, None))
    return record


def conceal_tree(secrets, value, key):
    """Hyperparameters with types kept; secret-looking strings (by key or by value) hashed."""
    if isinstance(value, dict):
        return {k: conceal_tree(secrets, v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [conceal_tree(secrets, item, key) for item in value]
    if isinstance(value, str):
        return secrets.maybe_conceal(key, value, HYPERPARAMETER_SECRET_WORDS)
    return value


def collect_spark(ctx, out):
    env = ctx.env
    prefixes = ("SPARK_", "PYSPARK_")
    names = sorted(
        n for n in env if n.startswith(prefixes) or n in ("JAVA_HOME", "HADOOP_CONF_DIR", "HADOOP_HOME")
    )
    out["env"] = {name: ctx.secrets.maybe_conceal(name, env[name]) for name in names}
    spark_home = env.get("SPARK_HOME")
    conf_dir = env.get("SPARK_CONF_DIR") or (os.path.join(spark_home, "conf") if spark_home else None)
    out["conf_dir"] = conf_dir
    out["defaults"] = {}
    out["spark_env_sh"] = None
    if conf_dir:
        defaults_path = os.path.join(conf_dir, "spark-defaults.conf")
        text = read_optional_text(defaults_path, ctx.max_file_bytes)
        if text is not None:
            out["defaults"] = {
                key: ctx.secrets.maybe_conceal(key, value)
                for key, value in parse_java_properties(text).items()
            }
        env_sh = os.path.join(conf_dir, "spark-env.sh")
        out["spark_env_sh"] = {"path": env_sh, "exists": os.path.exists(env_sh)}
    hadoop_dir = env.get("HADOOP_CONF_DIR") or (
        os.path.join(env["HADOOP_HOME"], "etc", "hadoop") if env.get("HADOOP_HOME") else None
    )
    out["hadoop_conf_dir"] = hadoop_dir
    out["hadoop"] = {}
    if hadoop_dir and os.path.isdir(hadoop_dir):
        for name in sorted(os.listdir(hadoop_dir)):
            if name.endswith("-site.xml"):
                path = os.path.join(hadoop_dir, name)
                properties = ctx.attempt(
                    "spark", lambda p=path: parse_hadoop_xml(read_bytes(p, ctx.max_file_bytes))
                )
                if properties is not None:
                    out["hadoop"][name] = {k: ctx.secrets.maybe_conceal(k, v) for k, v in properties.items()}
    out["versions"] = {"pyspark": pyspark_version(ctx.distributions(), spark_home), "java": None}
    java_home = env.get("JAVA_HOME")
    if java_home:
        release = read_optional_text(os.path.join(java_home, "release"), 65536)
        out["versions"]["java"] = parse_java_release(release) if release else None


def pyspark_version(packages, spark_home):
    """pyspark's version without importing it (that pulls in py4j and more): its distribution metadata on
    sys.path, else pyspark/version.py on sys.path or under $SPARK_HOME/python."""
    if "pyspark" in packages:
        return packages["pyspark"]
    candidates = [os.path.join(entry, "pyspark", "version.py") for entry in sys.path if entry]
    if spark_home:
        candidates.append(os.path.join(spark_home, "python", "pyspark", "version.py"))
    for candidate in candidates:
        text = read_optional_text(candidate, 65536)
        if text:
            match = re.search(r"__version__\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", text)
            if match:
                return match.group(1)
    return None


def canonical_distribution_name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions(path_entries):
    """{canonical name: version} from *.dist-info / *.egg-info on the path; the first entry on the path
    wins, as for importlib.metadata. Reads only metadata headers, never imports a package."""
    found = {}
    for entry in path_entries:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = sorted(os.listdir(entry))
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            metadata = os.path.join(entry, name)
            if os.path.isdir(metadata):
                metadata = os.path.join(metadata, "METADATA" if name.endswith(".dist-info") else "PKG-INFO")
            headers = _metadata_headers(metadata)
            stem = name.rsplit(".", 1)[0]
            fallback_name, _, fallback_version = stem.partition("-")
            key = canonical_distribution_name(headers.get("Name") or fallback_name)
            if key not in found:
                found[key] = headers.get("Version") or fallback_version.split("-")[0] or None
    return found


def _metadata_headers(path):
    headers = {}
    text = read_optional_text(path, 8192)
    for line in (text or "").splitlines():
        if not line.strip():
            break
        key, separator, value = line.partition(":")
        if separator and key in ("Name", "Version") and key not in headers:
            headers[key] = value.strip()
    return headers


def collect_filesystem(ctx, out):
    mounts = visible_mounts(ctx.attempt("filesystem", ctx.mounts) or [])
    out["mounts"] = {}
    for point in sorted(mounts):
        if ctx.is_excluded(point):
            continue
        mount = mounts[point]
        out["mounts"][point] = {
            "fstype": mount["fstype"],
            "ro": "ro" in mount["options"],
            "options": mount["options"],
            "super_options": [
                option
                for option in mount["super_options"]
                if option.partition("=")[0] not in HOST_LAYER_OPTIONS
            ],
        }
    out["paths"] = {}
    roots = []
    for root in list(DEFAULT_FILESYSTEM_ROOTS) + list(ctx.config["paths"]):
        if root == "$HOME":
            root = ctx.env.get("HOME")
        elif root == "$CWD":
            root = ctx.attempt("filesystem", os.getcwd)
        if root:
            root = os.path.abspath(root)
            if root not in roots:
                roots.append(root)
    walker = Walker(ctx, out["paths"], mounts)
    for root in roots:
        if not walker.walk(root):
            break


class Walker:
    """Breadth-first walk of declared roots: shallow entries first, so a size bound cuts the deep ones."""

    def __init__(self, ctx, paths, mounts):
        self.ctx = ctx
        self.paths = paths
        self.mounts = mounts
        self.max_depth = ctx.config["max_depth"]
        self.max_files = ctx.config["max_files"]
        self.visited_dirs = {}

    def walk(self, root):
        """Describe `root` and its descendants; False once max_files is reached."""
        # Walking "/" (cwd or HOME of an arbitrary uid) at full depth would describe the whole image.
        max_depth = min(self.max_depth, 1) if root == "/" else self.max_depth
        queue = deque([(root, 0, covering_mount(root, self.mounts))])
        deep_dirs = 0
        while queue:
            path, depth, mount = queue.popleft()
            if self.ctx.is_excluded(path):
                continue
            if path in self.paths:
                if depth > 0:
                    continue
                # a declared root already seen shallowly (under "/" or another root): walk it now
                info, st = self.paths[path], self.lstat_or_none(path)
            else:
                if len(self.paths) >= self.max_files:
                    self.ctx.truncate(
                        "filesystem",
                        f"entries from {path} on (walk stopped)",
                        f"max_files={self.max_files}",
                    )
                    return False
                info, st = self.describe(path, path if path in self.mounts else mount)
                self.paths[path] = info
            descend = info["type"] == "dir" or (depth == 0 and info.get("target_type") == "dir")
            if not descend or (depth > 0 and self.is_virtual_mount(path)):
                continue
            if depth >= max_depth:
                deep_dirs += 1
                continue
            try:
                identity = self.directory_identity(path, st)
            except OSError as exc:
                info["error"] = errno_name(exc)
                continue
            if identity in self.visited_dirs:
                info["error"] = f"ELOOP: same directory as {self.visited_dirs[identity]}"
                continue
            self.visited_dirs[identity] = path
            try:
                names = sorted(os.listdir(path))
            except OSError as exc:
                info["error"] = errno_name(exc)
                continue
            child_mount = info.get("mount")
            queue.extend((os.path.join(path, name), depth + 1, child_mount) for name in names)
        if deep_dirs:
            self.ctx.truncate(
                "filesystem",
                f"{root}: contents of {deep_dirs} directories at depth {max_depth} not listed",
                f"max_depth={max_depth}",
            )
        return True

    def is_virtual_mount(self, path):
        mount = self.mounts.get(path)
        return mount is not None and mount["fstype"] in VIRTUAL_FILESYSTEMS

    @staticmethod
    def lstat_or_none(path):
        try:
            return os.lstat(path)
        except OSError:
            return None

    @staticmethod
    def directory_identity(path, st):
        if st is None or stat.S_ISLNK(st.st_mode):
            st = os.stat(path)
        return (st.st_dev, st.st_ino)

    def describe(self, path, mount):
        """lstat-based facts about one entry; `mount` is the mount point covering it."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return {"type": "missing"}, None
        except OSError as exc:
            return {"type": "unreadable", "error": errno_name(exc)}, None
        kind = file_type(st.st_mode)
        info = {
            "type": kind,
            "mode": octal_mode(st.st_mode),
            "uid": st.st_uid,
            "gid": st.st_gid,
            "writable": is_writable(path),
            "mount": mount,
        }
        if kind == "file":
            info["size"] = st.st_size
        elif kind == "symlink":
            try:
                info["link_target"] = os.readlink(path)
            except OSError as exc:
                info["error"] = errno_name(exc)
            try:
                info["target_type"] = file_type(os.stat(path).st_mode)
            except FileNotFoundError:
                info["target_type"] = "missing"
            except OSError as exc:
                info["target_type"] = "loop" if exc.errno == errno.ELOOP else "unreadable"
        return info, st


def collect_network(ctx, out):
    header_and_hosts = ctx.attempt("network", lambda: parse_hosts(read_text("/etc/hosts")))
    out["hosts_header"], out["hosts"] = header_and_hosts if header_and_hosts else (None, [])
    resolv = read_optional_text("/etc/resolv.conf")
    out["resolv_conf"] = parse_resolv_conf(resolv) if resolv is not None else None
    etc_hostname = read_optional_text("/etc/hostname", 4096)
    out["etc_hostname"] = etc_hostname.strip() if etc_hostname is not None else None
    out["hostname"] = socket.gethostname()
    out["interfaces"] = sorted(name for _, name in ctx.attempt("network", socket.if_nameindex) or [])
    out["proxies"] = {
        name: ctx.secrets.maybe_conceal(name, ctx.env[name])
        for variable in PROXY_VARIABLES
        for name in (variable, variable.lower())
        if name in ctx.env
    }
    # Name resolution can block for as long as the resolver's timeouts: each name runs on its own thread.
    out["resolve"] = {}
    names = ctx.config["resolve"]
    results = {}

    def resolve_into(name):
        results[name] = _resolve(name)

    threads = []
    for name in names:
        thread = threading.Thread(target=resolve_into, args=(name,), daemon=True)
        thread.start()
        threads.append((name, thread))
    fqdn_result = {}
    fqdn_thread = threading.Thread(
        target=lambda: fqdn_result.update(fqdn=fully_qualified_name(out["hostname"])), daemon=True
    )
    fqdn_thread.start()
    wait_seconds = ctx.config["deadline_seconds"] * 0.4
    wait_until = time.monotonic() + wait_seconds
    for name, thread in threads:
        thread.join(max(0.0, wait_until - time.monotonic()))
        out["resolve"][name] = results.get(name, {"error": "timeout: no answer within the probe's budget"})
    fqdn_thread.join(max(0.0, wait_until - time.monotonic()))
    out["fqdn"] = fqdn_result.get("fqdn")
    if "fqdn" not in fqdn_result:
        ctx.truncate("network", "fqdn (the reverse lookup did not answer)", f"{wait_seconds:.1f} s")


def fully_qualified_name(hostname):
    """What socket.getfqdn() returns for this host (the first name with a dot among the reverse lookup's
    names), looking an ASCII name up as bytes so the idna codec is not imported."""
    try:
        name, aliases, _ = socket.gethostbyaddr(ascii_host(hostname))
    except OSError:
        return hostname
    for candidate in [name] + aliases:
        if "." in candidate:
            return candidate
    return name


def collect_runtime(ctx, out):
    import locale

    python = {
        "version": "{}.{}.{}".format(*sys.version_info[:3]),
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "sys_path": list(sys.path),
    }
    out["python"] = python
    release = read_optional_text("/etc/os-release") or read_optional_text("/usr/lib/os-release") or ""
    values = parse_os_release(release)
    out["os"] = {
        "id": values.get("ID"),
        "version_id": values.get("VERSION_ID"),
        "pretty_name": values.get("PRETTY_NAME"),
    }
    out["arch"] = os.uname().machine
    out["locale"] = {
        "LANG": ctx.env.get("LANG"),
        "LC_ALL": ctx.env.get("LC_ALL"),
        "LC_CTYPE": ctx.env.get("LC_CTYPE"),
        "preferred_encoding": locale.getpreferredencoding(False),
        "filesystem_encoding": sys.getfilesystemencoding(),
    }
    localtime_link = None
    if os.path.islink("/etc/localtime"):
        localtime_link = os.readlink("/etc/localtime")
    timezone_file = read_optional_text("/etc/timezone", 4096)
    out["tz"] = {
        "TZ": ctx.env.get("TZ"),
        "localtime_link": localtime_link,
        "timezone_file": timezone_file.strip() if timezone_file is not None else None,
        "tzname": list(time.tzname),
    }
    python["packages"] = dict(ctx.distributions())


def collect_resources(ctx, out):
    affinity = getattr(os, "sched_getaffinity", None)
    out["cpu"] = {"count": os.cpu_count(), "affinity": sorted(affinity(0)) if affinity else None}
    mounts = ctx.attempt("resources", ctx.mounts) or []
    proc_cgroup = parse_proc_cgroup(read_optional_text("/proc/self/cgroup") or "")
    out["cgroup"] = cgroup_limits(mounts, proc_cgroup)
    meminfo = parse_proc_status(read_optional_text("/proc/meminfo") or "")
    total = meminfo.get("MemTotal", "").split()
    out["memory"] = {"meminfo_total_bytes": int(total[0]) * 1024 if total and total[0].isdigit() else None}
    shm = {"size_bytes": None, "fstype": None}
    try:
        vfs = os.statvfs("/dev/shm")
        shm["size_bytes"] = vfs.f_blocks * vfs.f_frsize
    except OSError as exc:
        shm["error"] = errno_name(exc)
    shm_mount = visible_mounts(mounts).get("/dev/shm")
    shm["fstype"] = shm_mount["fstype"] if shm_mount else None
    out["shm"] = shm
    import resource

    rlimits = {}
    for name in RLIMITS:
        number = getattr(resource, "RLIMIT_" + name.upper(), None)
        if number is not None:
            soft, hard = resource.getrlimit(number)
            rlimits[name] = [
                -1 if soft == resource.RLIM_INFINITY else soft,
                -1 if hard == resource.RLIM_INFINITY else hard,
            ]
    out["rlimits"] = rlimits


def collect_process(ctx, out):
    import signal

    items = read_bytes("/proc/self/cmdline", 1024 * 1024).split(b"\0")[:-1]  # every item ends with NUL
    out["argv"] = [
        ctx.secrets.maybe_conceal(None, value) if isinstance(value, str) else value
        for value in (text_or_base64(item) for item in without_probe_arguments(items, ctx.probe_file))
    ]
    out["cwd"] = os.getcwd()
    pid, ppid = os.getpid(), os.getppid()
    out.update(pid=pid, ppid=ppid, is_pid1=pid == 1)
    parent_comm = read_optional_text(f"/proc/{ppid}/comm", 4096) if ppid > 0 else None
    out["parent_name"] = parent_comm.strip() if parent_comm else None
    numbers_to_names = {int(member.value): member.name for member in signal.Signals}
    signals = {}
    for name in REPORTED_SIGNALS:
        number = getattr(signal, name, None)
        if number is None:
            continue
        handler = signal.getsignal(number)
        signals[name] = (
            "default" if handler == signal.SIG_DFL else "ignore" if handler == signal.SIG_IGN else "handled"
        )
    out["signals"] = signals
    blocked = parse_proc_status(read_text("/proc/self/status")).get("SigBlk")
    out["signals_blocked"] = signal_names(blocked, numbers_to_names) if blocked else None


def without_probe_arguments(items, probe_file):
    """The process's argv without the probe's script and its own arguments (all of them follow the script)."""
    for index, item in enumerate(items):
        if os.path.abspath(item.decode("utf-8", "surrogateescape")) == probe_file:
            return items[:index]
    return items


def collect_context(ctx, out):
    out.update(detect_context(ctx.env, os.path.lexists))


COLLECTORS = (
    # name, function, share of the deadline it may take (all collectors run in parallel)
    ("env", collect_env, 0.9),
    ("identity", collect_identity, 0.5),
    ("credentials", collect_credentials, 0.5),
    ("metrics", collect_metrics, 0.5),
    ("hyperparameters", collect_hyperparameters, 0.5),
    ("spark", collect_spark, 0.5),
    ("filesystem", collect_filesystem, 0.8),
    ("network", collect_network, 0.5),
    ("runtime", collect_runtime, 0.8),
    ("resources", collect_resources, 0.5),
    ("process", collect_process, 0.5),
    ("context", collect_context, 0.5),
)
COLLECTOR_NAMES = tuple(name for name, _, _ in COLLECTORS)


# ---------------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------------
USAGE = """usage: parity_probe.py [--config FILE] [--out FILE]

Record what this process can observe about its environment as a parity snapshot (JSON on stdout, framed
by marker lines). --config is the JSON config the harness writes (see docs/SNAPSHOT.md); --out also
writes the snapshot to FILE. Exit status 0 whenever a snapshot was produced.
"""


def parse_arguments(argv):
    """-> ({config, out, help}, [problems]); a problem is recorded in the snapshot, never fatal."""
    options = {"config": None, "out": None, "help": False}
    problems = []
    index = 0
    while index < len(argv):
        argument = argv[index]
        name, equals, inline = argument.partition("=")
        if argument in ("-h", "--help"):
            options["help"] = True
        elif name in ("--config", "--out"):
            if equals:
                options[name[2:]] = inline
            elif index + 1 < len(argv):
                index += 1
                options[name[2:]] = argv[index]
            else:
                problems.append(f"{name} needs a value")
        else:
            problems.append(f"unknown argument #{index} ignored")  # never echoed: it could be a secret
        index += 1
    return options, problems


def load_config(path):
    """The probe config merged over the defaults -> (config, [(type, message)]). Never echoes a value."""
    config = dict(CONFIG_DEFAULTS)
    problems = []
    if path is None:
        return config, problems
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except OSError as exc:
        return config, [("ConfigUnreadable", f"cannot read the config: {errno_name(exc)}")]
    except (UnicodeDecodeError, ValueError) as exc:
        position = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        return config, [("ConfigInvalid", f"the config is not valid JSON{position}")]
    if not isinstance(data, dict):
        return config, [("ConfigInvalid", "the config must be a JSON object")]
    unknown = sorted(key for key in data if key not in CONFIG_DEFAULTS)
    if unknown:
        problems.append(("ConfigUnknownKeys", "unknown config keys ignored: " + ", ".join(unknown)))
    for key, default in CONFIG_DEFAULTS.items():
        if key not in data:
            continue
        value = data[key]
        if key == "hash_key":
            valid = value is None or isinstance(value, str)
        elif isinstance(default, list):
            valid = isinstance(value, list) and all(isinstance(item, str) for item in value)
        elif isinstance(default, bool):
            valid = isinstance(value, bool)
        elif isinstance(default, float):
            valid = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
        elif isinstance(default, int):
            minimum = 0 if key == "max_depth" else 1
            valid = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        else:
            valid = isinstance(value, str)
        if valid:
            config[key] = value
        else:
            problems.append(("ConfigInvalid", f"{key}: wrong type or range, the default is used"))
    return config, problems


def make_secrets(hash_key):
    """The run's hashing key from the config, else a random one (then hashes are not comparable)."""
    if hash_key:
        try:
            key = bytes.fromhex(hash_key)
            if key:
                return Secrets(key, True), None
        except ValueError:
            pass
        return Secrets(os.urandom(32), False), "hash_key is not a hex string; a random key is used"
    return Secrets(os.urandom(32), False), None


def read_environ():
    """The environment this process was started with, bytes-exact (os.environ is not: PEP 538 may add
    LC_CTYPE to it)."""
    try:
        return parse_environ(read_bytes("/proc/self/environ", 64 * 1024 * 1024)), "/proc/self/environ"
    except OSError:
        return sorted(os.environb.items()), "os.environ"


def run_collectors(ctx, deadline_end):
    """Every collector on its own daemon thread; a collector still running at its budget or the deadline is
    abandoned with the partial section it built."""
    sections = {}
    timings = {}
    threads = []
    started = time.monotonic()
    for name, function, share in COLLECTORS:
        section = {}
        sections[name] = section

        def run(name=name, function=function, section=section):
            begin = time.monotonic()
            try:
                function(ctx, section)
            except Exception as exc:  # noqa: BLE001  a collector's failure never reaches the others
                ctx.exception(name, exc)
            finally:
                timings[name] = int((time.monotonic() - begin) * 1000)

        thread = threading.Thread(target=run, name="parity-" + name, daemon=True)
        thread.start()
        threads.append((name, thread, share))
    deadline = ctx.config["deadline_seconds"]
    for name, thread, share in threads:
        budget_end = min(started + share * deadline, deadline_end)
        thread.join(max(0.0, budget_end - time.monotonic()))
        if thread.is_alive():
            ctx.error(
                name,
                "Timeout",
                f"did not finish within its budget of {share * deadline:.1f} s; partial data kept",
            )
            ctx.truncate(name, "collector stopped before it finished", f"budget {share * deadline:.1f} s")
            ctx.abandoned.add(name)
            sections[name] = frozen_copy(sections[name])
            timings[name] = int((time.monotonic() - started) * 1000)
    return sections, dict(timings), any(thread.is_alive() for _, thread, _ in threads)


def frozen_copy(section):
    """A private copy of a section another thread may still be writing to. The C JSON encoder runs without
    releasing the GIL, so one dumps() call sees a consistent state."""
    for _ in range(3):
        try:
            return json.loads(json.dumps(section))
        except (RuntimeError, TypeError, ValueError):
            continue
    return {}


def finalize(value, scrub):
    """Mask known secrets in every string (keys too) and make undecodable strings JSON-safe."""
    if isinstance(value, dict):
        return {finalize_key(k, scrub): finalize(v, scrub) for k, v in list(value.items())}
    if isinstance(value, (list, tuple)):
        return [finalize(item, scrub) for item in list(value)]
    if isinstance(value, str):
        if value.startswith(HASH_PREFIX):
            return value
        value = scrub(value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # surrogate-escaped bytes from the OS: keep them losslessly
            return {"base64": b64(value.encode("utf-8", "surrogateescape"))}
        return value
    return value


def finalize_key(key, scrub):
    key = scrub(key)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return key


def serialize(snapshot):
    return json.dumps(snapshot, sort_keys=True, indent=1, ensure_ascii=True, allow_nan=False)


def enforce_output_limit(snapshot, limit):
    """Halve the largest container in the largest section until the document fits; every cut is recorded."""
    text = serialize(snapshot)
    for _ in range(200):
        if len(text) <= limit:
            return text
        name = max(COLLECTOR_NAMES, key=lambda section: len(serialize(snapshot[section])))
        path, container = largest_container(snapshot[name], name)
        if container is None or len(container) <= 1:
            snapshot[name] = {}
            path, kept = name, "section dropped"
        else:
            keep = len(container) // 2
            if isinstance(container, dict):
                for key in sorted(container)[keep:]:
                    del container[key]
            else:
                del container[keep:]
            kept = f"kept the first {keep} entries"
        snapshot["truncated"].append(
            {"collector": name, "what": f"{path}: {kept}", "limit": f"max_output_bytes={limit}"}
        )
        text = serialize(snapshot)
    return text


def largest_container(value, path):
    """The deepest dict/list holding most of `value`'s serialized size."""
    best_path, best = (path, value) if isinstance(value, (dict, list)) else (path, None)
    while isinstance(best, (dict, list)):
        children = best.items() if isinstance(best, dict) else enumerate(best)
        sized = [
            (len(serialize(child)), key, child) for key, child in children if isinstance(child, (dict, list))
        ]
        if not sized:
            break
        size, key, child = max(sized, key=lambda item: item[0])
        if size * 2 < len(serialize(best)) or len(child) <= 1:
            break
        best_path, best = f"{best_path}.{key}", child
    return best_path, best


def input_channel_mounts(inputs):
    """Mounts that exist only to bring the probe or its config in: the file itself or its directory is a
    mount point (other than /). The --out file's directory is not one of them: it may be a workload mount."""
    mount_points = set(visible_mounts(parse_mountinfo(read_text("/proc/self/mountinfo", 4 * 1024 * 1024))))
    channels = []
    for path in inputs:
        for candidate in (path, os.path.dirname(path)):
            if candidate != "/" and candidate in mount_points:
                channels.append(candidate)
    return channels


def build_snapshot(argv, probe_file):
    started_wall = time.time()
    started = time.monotonic()
    options, argument_problems = parse_arguments(argv)
    config, config_problems = load_config(options["config"])
    secrets, key_problem = make_secrets(config["hash_key"])
    deadline_end = started + config["deadline_seconds"] * 0.9  # the rest is for serializing and writing
    inputs = [probe_file] + ([os.path.abspath(options["config"])] if options["config"] else [])
    own_paths = inputs + ([os.path.abspath(options["out"])] if options["out"] else [])
    try:
        channels, channel_problem = input_channel_mounts(inputs), None
    except Exception as exc:  # noqa: BLE001  no /proc: nothing is mounted for us to leave out
        channels, channel_problem = [], exc
    excluded_paths = sorted(set(own_paths + channels + [os.path.abspath(p) for p in config["exclude_paths"]]))
    environ, environ_source = read_environ()
    ctx = Context(config, secrets, environ, environ_source, excluded_paths, probe_file)
    if channel_problem is not None:
        ctx.exception("probe", channel_problem)
    for problem in argument_problems:
        ctx.error("probe", "UsageError", problem)
    for kind, message in config_problems:
        ctx.error("probe", kind, message)
    if key_problem:
        ctx.error("probe", "ConfigInvalid", key_problem)
    script_dir = os.path.dirname(probe_file)
    removed_sys_path = [entry for entry in sys.path if entry and os.path.abspath(entry) == script_dir]
    sys.path[:] = [entry for entry in sys.path if entry not in removed_sys_path]
    sections, timings, still_running = run_collectors(ctx, deadline_end)
    snapshot = {
        "schema": SCHEMA,
        "probe": {
            "version": PROBE_VERSION,
            "label": config["label"],
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started_wall))
            + f".{int((started_wall % 1) * 1000):03d}Z",
            "duration_ms": int((time.monotonic() - started) * 1000),
            "timings_ms": timings,
            "deadline_seconds": config["deadline_seconds"],
            "hash": {"algorithm": "hmac-sha256", "comparable": secrets.comparable, "key_id": secrets.key_id},
        },
        "errors": list(ctx.errors),
        "truncated": list(ctx.truncated),
        "excluded": {
            "paths": excluded_paths,
            "argv_items": len(argv) + 1,
            "env": sorted(name for name in config["exclude_env"] if name in ctx.env),
            "sys_path": removed_sys_path,
            "note": "the probe's own file, arguments, config and --out file, the harness's mounts "
            "(exclude_paths) and variables (exclude_env) are left out of what it reports",
        },
    }
    snapshot.update(sections)
    snapshot = finalize(snapshot, secrets.scrubber())
    snapshot["errors"].sort(key=lambda e: (e["collector"], e["type"], e["message"]))
    snapshot["truncated"].sort(key=lambda t: (t["collector"], t["what"]))
    return snapshot, options, config, still_running


def emit(snapshot, options, config):
    """Write --out (if asked) and print the framed snapshot. Returns whether any copy was written."""
    text = enforce_output_limit(snapshot, config["max_output_bytes"])
    written = False
    if options["out"]:
        try:
            with open(options["out"], "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
            written = True
        except OSError as exc:
            snapshot["errors"].append(
                {
                    "collector": "probe",
                    "type": "OutputError",
                    "message": f"cannot write --out: {errno_name(exc)}",
                }
            )
            text = serialize(snapshot)
    framed = f"{FRAME_BEGIN}\n{text}\n{FRAME_END}\n"
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(framed.encode("utf-8"))
        sys.stdout.buffer.flush()
        written = True
    except (OSError, ValueError):
        pass
    return written


def emergency_snapshot(exc):
    """The snapshot when the probe itself failed outside every collector: empty sections, one error."""
    snapshot = {name: {} for name in COLLECTOR_NAMES}
    snapshot.update(
        schema=SCHEMA,
        probe={
            "version": PROBE_VERSION,
            "label": "",
            "started_at": None,
            "duration_ms": None,
            "timings_ms": {},
            "deadline_seconds": None,
            "hash": {"algorithm": "hmac-sha256", "comparable": False, "key_id": None},
        },
        errors=[
            {
                "collector": "probe",
                "type": type(exc).__name__,
                "message": "the probe failed before collecting",
            }
        ],
        truncated=[],
        excluded={
            "paths": [],
            "argv_items": 0,
            "env": [],
            "sys_path": [],
            "note": "unknown: the probe failed early",
        },
    )
    return snapshot


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    probe_file = os.path.abspath(__file__)
    options = {"out": None, "help": False}
    config = dict(CONFIG_DEFAULTS)
    still_running = False
    try:
        options, _ = parse_arguments(argv)
        if options["help"]:
            sys.stdout.write(USAGE)
            return 0
        snapshot, options, config, still_running = build_snapshot(argv, probe_file)
    except Exception as exc:  # noqa: BLE001  never crash: report the failure inside a snapshot
        snapshot = emergency_snapshot(exc)
    written = emit(snapshot, options, config)
    if still_running:  # a collector is stuck in a system call: do not wait for it at interpreter exit
        sys.stdout.flush()
        os._exit(0 if written else 1)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
