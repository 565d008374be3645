"""A small fake Kubernetes API server that plays kubelet, for the kubernetes engine's tests.

No kube-apiserver or kubelet can run where parity is built, so the engine is tested against this: an HTTP
server on 127.0.0.1 that the engine reaches through a generated kubeconfig, i.e. through the real client
code path (config loading, bearer-token auth, REST calls, chunked watch streams, logs). It serves what the
engine uses and nothing more:

- create / get / delete of pods, secrets, configmaps, serviceaccounts and services in a namespace (a
  409 AlreadyExists, a 404 for an unknown namespace or object, Status bodies like the API server's);
- list and watch of pods (`watch=true`, `resourceVersion`, `fieldSelector=metadata.name=…`,
  `timeoutSeconds`): one JSON event per line in a chunked response;
- a container's log (`container`, `tailLines`): its stdout and stderr, as kubelet keeps them.

Playing kubelet, a created pod's containers run as local subprocesses: an image is an entry of `images`
(its ENTRYPOINT, CMD and ENV) and an image not there fails to pull (ErrImagePull, then ImagePullBackOff);
`env` values and configMapKeyRef/secretKeyRef resolve against the stored objects (a missing one is
CreateContainerConfigError); Secret and ConfigMap volumes are written to a temporary directory, and the
container's paths in its command line (`/.parity/…`, its terminationMessagePath) are rewritten to the
host paths, so `python3 /.parity/parity_probe.py --config /.parity/config.json` runs the probe the engine
put in the Secret. Exit codes, termination messages and phases are reported as kubelet reports them.
It is not a cluster: no scheduling, no admission, no init containers, no networking.

Test hooks: `refuse_next` (an error Status for the next matching request), `expire_next_watch` (a 410
Gone ERROR event), `requests` (everything received) and `deletions` (with their propagationPolicy).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

PLURALS = {
    "pods": "Pod",
    "secrets": "Secret",
    "configmaps": "ConfigMap",
    "serviceaccounts": "ServiceAccount",
    "services": "Service",
}
PATH = re.compile(
    r"^/api/v1/namespaces/(?P<namespace>[^/]+)/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>log))?$"
)
TOKEN = "parity-test-token"
IMAGE_PULL_BACKOFF_SECONDS = 0.2


@dataclass
class FakeImage:
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Refusal:
    method: str
    plural: str
    status: int
    reason: str
    message: str
    causes: list[dict[str, str]] = field(default_factory=list)


class ContainerConfigError(Exception):
    """What kubelet reports as CreateContainerConfigError."""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if causes:
        body["details"] = {"causes": causes}
    return body


class FakeCluster:
    """The fake API server and its kubelet. Use as a context manager; `url` once started."""

    def __init__(self, images: dict[str, FakeImage], namespaces: tuple[str, ...] = ("default", "ml")):
        self.images = images
        self.namespaces = set(namespaces)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.deletions: list[dict[str, Any]] = []
        self.refusals: list[Refusal] = []
        self.expire_next_watch = False
        self._events: list[tuple[int, str, dict[str, Any]]] = []  # (resourceVersion, type, pod)
        self._version = 0
        self._changed = threading.Condition()
        self._processes: dict[tuple[str, str], list[subprocess.Popen]] = {}
        self._root = Path(tempfile.mkdtemp(prefix="parity-fake-kubelet-"))
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> FakeCluster:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        with self._changed:
            groups = [process for processes in self._processes.values() for process in processes]
        for process in groups:
            _kill(process)
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self._root, ignore_errors=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def write_kubeconfig(self, path: Path, namespace: str = "ml") -> Path:
        """Contexts `fake` (current) and `stale-token` (credentials the server rejects)."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [
                {"name": "parity", "user": {"token": TOKEN}},
                {"name": "stale", "user": {"token": "expired-token"}},
            ],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "parity", "namespace": namespace}},
                {"name": "stale-token", "context": {"cluster": "fake", "user": "stale"}},
            ],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        return path

    # -- what tests look at --------------------------------------------------------------------------

    def received(self, method: str, plural: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["plural"] == plural]

    def stored(self, plural: str) -> list[dict[str, Any]]:
        with self._changed:
            return [copy.deepcopy(obj) for (p, _, _), obj in self.objects.items() if p == plural]

    def running_processes(self) -> int:
        with self._changed:
            return sum(process.poll() is None for group in self._processes.values() for process in group)

    def wait_for(self, predicate, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("the fake cluster never reached the expected state")
            time.sleep(0.02)

    def pod_phase(self, name_prefix: str) -> str | None:
        pods = [pod for pod in self.stored("pods") if pod["metadata"]["name"].startswith(name_prefix)]
        return pods[0].get("status", {}).get("phase") if pods else None

    # -- the API ---------------------------------------------------------------------------------------

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> tuple[int, dict]:
        if namespace not in self.namespaces:
            return 404, status_body(404, "NotFound", f'namespaces "{namespace}" not found')
        name = body.get("metadata", {}).get("name")
        with self._changed:
            if (plural, namespace, name) in self.objects:
                return 409, status_body(409, "AlreadyExists", f'{plural} "{name}" already exists')
            stored = copy.deepcopy(body)
            metadata = stored.setdefault("metadata", {})
            metadata.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=now())
            if plural == "pods":  # scheduled at once, to the one node
                stored["spec"].setdefault("nodeName", "fake-node")
                stored["status"] = {"phase": "Pending"}
            self._store(plural, namespace, name, stored, "ADDED")
            created = copy.deepcopy(stored)
        if plural == "pods":
            threading.Thread(target=self._kubelet, args=(namespace, name), daemon=True).start()
        return 201, created

    def get(self, plural: str, namespace: str, name: str) -> tuple[int, dict]:
        with self._changed:
            obj = self.objects.get((plural, namespace, name))
            if obj is None:
                return 404, status_body(404, "NotFound", f'{plural} "{name}" not found')
            return 200, copy.deepcopy(obj)

    def delete(self, plural: str, namespace: str, name: str, propagation: str | None) -> tuple[int, dict]:
        with self._changed:
            obj = self.objects.pop((plural, namespace, name), None)
            if obj is None:
                return 404, status_body(404, "NotFound", f'{plural} "{name}" not found')
            self.deletions.append({"plural": plural, "name": name, "propagationPolicy": propagation})
            self._version += 1
            if plural == "pods":
                self._events.append((self._version, "DELETED", copy.deepcopy(obj)))
            processes = self._processes.pop((namespace, name), [])
            self._changed.notify_all()
        for process in processes:
            _kill(process)
        return 200, obj

    def list_pods(self, namespace: str, name: str | None) -> tuple[int, dict]:
        with self._changed:
            items = [
                copy.deepcopy(obj)
                for (plural, ns, n), obj in self.objects.items()
                if plural == "pods" and ns == namespace and name in (None, n)
            ]
            return 200, {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self._version)},
                "items": items,
            }

    def watch_pods(self, namespace: str, name: str | None, since: int, timeout: float, send) -> None:
        """Send every pod event after resourceVersion `since` until `timeout`; `send` takes one event."""
        if self.expire_next_watch:
            self.expire_next_watch = False
            send({"type": "ERROR", "object": status_body(410, "Expired", "too old resource version")})
            return
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                pending = [
                    (version, kind, pod)
                    for version, kind, pod in self._events
                    if version > since
                    and pod["metadata"]["namespace"] == namespace
                    and name in (None, pod["metadata"]["name"])
                ]
                if not pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._changed.wait(remaining)
                    continue
            for version, kind, pod in pending:
                send({"type": kind, "object": pod})
                since = version

    def log(self, namespace: str, name: str, container: str, tail_lines: int | None) -> tuple[int, bytes]:
        path = self._root / namespace / name / f"log-{container}"
        if (("pods", namespace, name) not in self.objects) or not path.exists():
            return 400, json.dumps(
                status_body(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start')
            ).encode()
        data = path.read_bytes()
        if tail_lines is not None:
            data = b"".join(data.splitlines(keepends=True)[-tail_lines:])
        return 200, data

    # -- kubelet ---------------------------------------------------------------------------------------

    def _store(self, plural: str, namespace: str, name: str, obj: dict, event: str) -> None:
        """Under the lock: a new resourceVersion, the object, and a watch event for pods."""
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self.objects[(plural, namespace, name)] = obj
        if plural == "pods":
            self._events.append((self._version, event, copy.deepcopy(obj)))
        self._changed.notify_all()

    def _set_status(self, namespace: str, name: str, change) -> bool:
        """Apply `change(status)` to a pod that still exists; False when it was deleted."""
        with self._changed:
            pod = self.objects.get(("pods", namespace, name))
            if pod is None:
                return False
            pod = copy.deepcopy(pod)
            change(pod["status"])
            self._store("pods", namespace, name, pod, "MODIFIED")
            return True

    def _kubelet(self, namespace: str, name: str) -> None:
        code, pod = self.get("pods", namespace, name)
        if code != 200:
            return
        containers = pod["spec"]["containers"]
        missing = [c for c in containers if c["image"] not in self.images]
        if missing:
            for reason, message in (
                ("ErrImagePull", f'failed to pull and unpack image "{missing[0]["image"]}": not found'),
                ("ImagePullBackOff", f'Back-off pulling image "{missing[0]["image"]}"'),
            ):
                waiting = {"reason": reason, "message": message}
                if not self._set_status(namespace, name, _waiting(containers, missing[0]["name"], waiting)):
                    return
                time.sleep(IMAGE_PULL_BACKOFF_SECONDS)
            return
        directory = self._root / namespace / name
        volumes = self._volumes(pod, directory)
        if volumes is None:  # kubelet keeps retrying the mount: the pod stays ContainerCreating
            return
        environments = []
        for container in containers:
            try:
                environments.append(self._environment(pod, container))
            except ContainerConfigError as exc:
                waiting = {"reason": "CreateContainerConfigError", "message": str(exc)}
                self._set_status(namespace, name, _waiting(containers, container["name"], waiting))
                return
        started: list[subprocess.Popen] = []
        with self._changed:
            if ("pods", namespace, name) not in self.objects:
                return
            for container, environment in zip(containers, environments, strict=True):
                started.append(self._start(pod, container, environment, volumes, directory))
            self._processes[(namespace, name)] = list(started)
        self._set_status(namespace, name, lambda status: _running(status, pod))
        waiters = [
            threading.Thread(target=self._reap, args=(namespace, name, container, process, directory))
            for container, process in zip(containers, started, strict=True)
        ]
        for waiter in waiters:
            waiter.start()

    def _volumes(self, pod: dict, directory: Path) -> dict[str, Path] | None:
        """Secret, ConfigMap and emptyDir volumes as host directories, by volume name; None while a
        Secret or ConfigMap a volume needs does not exist."""
        namespace = pod["metadata"]["namespace"]
        paths = {}
        for volume in pod["spec"].get("volumes") or []:
            path = directory / "volumes" / volume["name"]
            path.mkdir(parents=True, exist_ok=True)
            files: dict[str, bytes] = {}
            if "secret" in volume:
                code, secret = self.get("secrets", namespace, volume["secret"]["secretName"])
                if code != 200:
                    return None
                files = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
            elif "configMap" in volume:
                code, config_map = self.get("configmaps", namespace, volume["configMap"]["name"])
                if code != 200:
                    return None
                files = {k: v.encode() for k, v in (config_map.get("data") or {}).items()}
            for key, content in files.items():
                (path / key).write_bytes(content)
            paths[volume["name"]] = path
        return paths

    def _environment(self, pod: dict, container: dict) -> dict[str, str]:
        namespace = pod["metadata"]["namespace"]
        environment = {
            "PATH": os.environ["PATH"],
            "HOSTNAME": pod["metadata"]["name"],
            "KUBERNETES_SERVICE_HOST": "10.100.0.1",
            "KUBERNETES_SERVICE_PORT": "443",
            **self.images[container["image"]].env,
        }
        for variable in container.get("env") or []:
            if "value" in variable:
                environment[variable["name"]] = variable["value"]
                continue
            source = variable.get("valueFrom") or {}
            for key, plural, kind in (
                ("configMapKeyRef", "configmaps", "configmap"),
                ("secretKeyRef", "secrets", "secret"),
            ):
                if key in source:
                    reference = source[key]
                    code, obj = self.get(plural, namespace, reference["name"])
                    if code == 404:
                        raise ContainerConfigError(f'{kind} "{reference["name"]}" not found')
                    data = obj.get("data") or {}
                    if reference["key"] not in data:
                        raise ContainerConfigError(
                            f"couldn't find key {reference['key']} in {kind} {namespace}/{reference['name']}"
                        )
                    value = data[reference["key"]]
                    environment[variable["name"]] = (
                        base64.b64decode(value).decode() if plural == "secrets" else value
                    )
        return environment

    def _start(
        self, pod: dict, container: dict, environment: dict, volumes: dict[str, Path], directory: Path
    ) -> subprocess.Popen:
        image = self.images[container["image"]]
        argv = list(container.get("command") or image.entrypoint)
        if "args" in container:
            argv += container["args"]
        elif "command" not in container:
            argv += image.cmd
        termination = directory / f"termination-{container['name']}"
        termination.touch()
        paths = {container.get("terminationMessagePath", "/dev/termination-log"): str(termination)}
        for mount in container.get("volumeMounts") or []:
            if mount["name"] in volumes:
                paths[mount["mountPath"].rstrip("/")] = str(volumes[mount["name"]])
        for container_path in sorted(paths, key=len, reverse=True):
            argv = [part.replace(container_path, paths[container_path]) for part in argv]
        rootfs = directory / "rootfs"
        rootfs.mkdir(exist_ok=True)
        log = open(directory / f"log-{container['name']}", "wb")  # noqa: SIM115 - the child owns it
        with log:
            return subprocess.Popen(
                argv,
                cwd=rootfs,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _reap(
        self, namespace: str, name: str, container: dict, process: subprocess.Popen, directory: Path
    ) -> None:
        code = process.wait()
        message = (directory / f"termination-{container['name']}").read_text(errors="replace")[:4096]

        def terminated(status: dict) -> None:
            for entry in status["containerStatuses"]:
                if entry["name"] == container["name"]:
                    entry["state"] = {
                        "terminated": {
                            "exitCode": code,
                            "reason": "Completed" if code == 0 else "Error",
                            "message": message,
                            "finishedAt": now(),
                        }
                    }
            states = [entry["state"] for entry in status["containerStatuses"]]
            if all("terminated" in state for state in states):
                failed = any(state["terminated"]["exitCode"] != 0 for state in states)
                status["phase"] = "Failed" if failed else "Succeeded"

        self._set_status(namespace, name, terminated)


def _waiting(containers: list[dict], name: str, waiting: dict[str, str]):
    def change(status: dict) -> None:
        status["containerStatuses"] = [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {
                    "waiting": waiting if container["name"] == name else {"reason": "ContainerCreating"}
                },
            }
            for container in containers
        ]

    return change


def _running(status: dict, pod: dict) -> None:
    status.update(phase="Running", podIP="10.0.1.23", hostIP="10.0.1.10", startTime=now())
    status["containerStatuses"] = [
        {
            "name": container["name"],
            "image": container["image"],
            "imageID": "registry.example/sha256:" + hashlib.sha256(container["image"].encode()).hexdigest(),
            "ready": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": now()}},
        }
        for container in pod["spec"]["containers"]
    ]


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:
        """A client that closes its connection (a watch it stopped reading) is normal; anything else is a
        bug in the fake and is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def do_DELETE(self):
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            match = PATH.match(url.path)
            plural = match["plural"] if match else None
            cluster.requests.append(
                {"method": method, "path": url.path, "plural": plural, "query": query, "body": body}
            )
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._json(401, status_body(401, "Unauthorized", "Unauthorized"))
            if match is None or plural not in PLURALS:
                return self._json(404, status_body(404, "NotFound", "the server could not find the resource"))
            for refusal in list(cluster.refusals):
                if (refusal.method, refusal.plural) == (method, plural):
                    cluster.refusals.remove(refusal)
                    body = status_body(refusal.status, refusal.reason, refusal.message, refusal.causes)
                    return self._json(refusal.status, body)
            namespace, name = match["namespace"], match["name"]
            if method == "POST" and name is None:
                return self._json(*cluster.create(plural, namespace, body))
            if method == "DELETE" and name is not None:
                propagation = query.get("propagationPolicy") or (body or {}).get("propagationPolicy")
                return self._json(*cluster.delete(plural, namespace, name, propagation))
            if method == "GET" and match["sub"] == "log":
                tail = int(query["tailLines"]) if "tailLines" in query else None
                code, data = cluster.log(namespace, name, query.get("container", ""), tail)
                return self._send(code, data, "text/plain" if code == 200 else "application/json")
            if method == "GET" and name is not None:
                return self._json(*cluster.get(plural, namespace, name))
            if method == "GET" and plural == "pods":
                selected = query.get("fieldSelector", "")
                pod_name = selected.removeprefix("metadata.name=") if selected else None
                if query.get("watch") in ("true", "1"):
                    return self._watch(namespace, pod_name, query)
                return self._json(*cluster.list_pods(namespace, pod_name))
            return self._json(405, status_body(405, "MethodNotAllowed", f"{method} is not served here"))

        def _watch(self, namespace: str, name: str | None, query: dict[str, str]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def send(event: dict) -> None:
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            try:
                since = int(query.get("resourceVersion") or 0)
                cluster.watch_pods(namespace, name, since, float(query.get("timeoutSeconds", 60)), send)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _json(self, code: int, body: dict) -> None:
            self._send(code, json.dumps(body).encode(), "application/json")

        def _send(self, code: int, data: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
