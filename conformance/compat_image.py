"""The reference compat image (examples/compat-image/): building it, its known breaks, and its AWS seed.

parity's demo and end-to-end tests run this image on both emulated sides. `build_compat_image` builds it on
the offline base image (or reuses it when nothing it is built from changed), `load_breaks` lists the bugs
its entrypoint reproduces under COMPAT_BREAK, `seed_aws` puts what its entrypoint fetches at start-up
(secrets, extra environment, typed hyperparameters, Spark defaults, the bootstrap document) into an AWS
endpoint — moto in server mode on 127.0.0.1 — and `container_credentials_server` gives the SageMaker side
credentials for it without 169.254.170.2.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import boto3
import docker
from botocore.exceptions import BotoCoreError, ClientError
from docker.utils.build import create_archive, exclude_paths
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conformance.baseimage import BASE_IMAGE, ensure_base_image
from conformance.config import Category, describe_validation_error, load_yaml_file
from conformance.dockerhost import connect
from conformance.errors import BadInput, InfrastructureError

COMPAT_IMAGE_DIR = Path(__file__).resolve().parent.parent / "examples" / "compat-image"
DEFAULT_TAG = "parity-compat:latest"
BOOTSTRAP_ENV = "COMPAT_BOOTSTRAP"
BREAK_ENV = "COMPAT_BREAK"
SOURCE_DIGEST_LABEL = "org.parity.compat.source-digest"
# Where the host's CA bundle goes in the build context: the Dockerfile's deps stage trusts build-ca/*.crt
# so pip reaches PyPI behind a TLS-intercepting proxy; the final image never contains it.
HOST_CA_IN_CONTEXT = "build-ca/host-ca-bundle.crt"
BUILD_REMEDY = (
    "the build needs the Debian mirror and PyPI over the host network; behind a TLS-intercepting proxy put "
    "its CA certificate in examples/compat-image/build-ca/ (see the build output above)"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Break(_Model):
    """One known compat-layer bug the entrypoint reproduces, and how parity must report it."""

    name: str = Field(pattern=r"^[a-z0-9-]+$")
    bug: str
    category: Category = Field(description="the divergence category parity must report")
    hint_keyword: str = Field(min_length=1, description="a word the divergence's hint must contain")
    paths: list[str] = Field(min_length=1, description="snapshot path globs that must diverge")
    also_affects: list[Category] = Field(default_factory=list, description="categories it may also show in")


class _BreakCatalog(_Model):
    schema_: Literal["parity.compat-breaks/v1"] = Field(alias="schema")
    description: str
    breaks: list[Break]


class Seed(_Model):
    """What the SageMaker side's entrypoint fetches: S3 objects, Secrets Manager secrets, SSM parameters."""

    region: str
    bucket: str
    objects: dict[str, Any] = Field(description="S3 key -> text, or a mapping/list stored as JSON")
    secrets: dict[str, dict[str, str]] = Field(default_factory=dict, description="secret id -> its keys")
    parameters: dict[str, str] = Field(default_factory=dict, description="SSM parameter name -> value")

    def object_body(self, key: str) -> bytes:
        value = self.objects[key]
        return (value if isinstance(value, str) else json.dumps(value, indent=2)).encode()


def load_breaks(path: Path = COMPAT_IMAGE_DIR / "breaks.json") -> dict[str, Break]:
    """The catalogue of breaks by name, in file order."""
    try:
        catalog = _BreakCatalog.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise BadInput(path, None, "file not found") from None
    except ValidationError as exc:
        raise BadInput(path, *describe_validation_error(exc)) from None
    return {entry.name: entry for entry in catalog.breaks}


def load_seed(path: Path = COMPAT_IMAGE_DIR / "seed.yaml") -> Seed:
    try:
        return Seed.model_validate(load_yaml_file(path))
    except ValidationError as exc:
        raise BadInput(path, *describe_validation_error(exc)) from None


def seed_aws(seed: Seed, endpoint_url: str) -> None:
    """Create the bucket, objects, secrets and parameters at `endpoint_url`; seeding twice is harmless."""
    session = boto3.session.Session(
        aws_access_key_id="parity", aws_secret_access_key="parity", region_name=seed.region
    )
    s3, secretsmanager, ssm = (
        session.client(name, endpoint_url=endpoint_url) for name in ("s3", "secretsmanager", "ssm")
    )
    try:
        bucket_options = (
            {}
            if seed.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": seed.region}}
        )
        try:
            s3.create_bucket(Bucket=seed.bucket, **bucket_options)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        for key in seed.objects:
            s3.put_object(Bucket=seed.bucket, Key=key, Body=seed.object_body(key))
        for secret_id, data in seed.secrets.items():
            try:
                secretsmanager.create_secret(Name=secret_id, SecretString=json.dumps(data))
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceExistsException":
                    raise
                secretsmanager.put_secret_value(SecretId=secret_id, SecretString=json.dumps(data))
        for name, value in seed.parameters.items():
            ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    except (BotoCoreError, ClientError) as exc:
        raise InfrastructureError(
            f"cannot seed AWS at {endpoint_url} ({exc})",
            "check that the endpoint (the demo's moto server) is running",
        ) from None


class _ContainerCredentialsHandler(BaseHTTPRequestHandler):
    """Answers every GET with short-lived credentials in the ECS container credentials format."""

    def do_GET(self) -> None:
        expiration = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        body = json.dumps(
            {
                "AccessKeyId": "parity",
                "SecretAccessKey": "parity",
                "Token": "parity",
                "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the credentials endpoint is not worth a log line per request."""


@contextlib.contextmanager
def container_credentials_server() -> Iterator[str]:
    """A local stand-in for SageMaker's container credentials endpoint (169.254.170.2), on 127.0.0.1.

    Yields the URL to give a SageMaker target as `container_credentials_full_uri`: botocore's
    ContainerProvider accepts a loopback AWS_CONTAINER_CREDENTIALS_FULL_URI, and moto accepts any keys.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ContainerCredentialsHandler)
    thread = threading.Thread(target=server.serve_forever, name="parity-credentials", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2/credentials/parity"
    finally:
        server.shutdown()
        server.server_close()


def host_ca_bundle() -> Path | None:
    """The CA bundle this machine's own TLS clients trust, if there is one."""
    defaults = ssl.get_default_verify_paths()
    candidates = [os.environ.get(name) for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")]
    candidates += [defaults.cafile, defaults.openssl_cafile]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _context_files(source_dir: Path) -> list[str]:
    """The files `docker build source_dir` would send, by the directory's .dockerignore."""
    ignore = source_dir / ".dockerignore"
    patterns = []
    if ignore.is_file():
        lines = (line.strip() for line in ignore.read_text(encoding="utf-8").splitlines())
        patterns = [line for line in lines if line and not line.startswith("#")]
    return sorted(exclude_paths(str(source_dir), patterns))


def source_digest(source_dir: Path, files: list[str], extra: dict[str, str], base_image_id: str) -> str:
    """SHA-256 over everything the image is built from: context files (path, exec bit, bytes) and the base."""
    digest = hashlib.sha256(base_image_id.encode())
    for name in files:
        path = source_dir / name
        if path.is_file():
            digest.update(f"\0{name}\0{os.access(path, os.X_OK)}\0".encode())
            digest.update(path.read_bytes())
    for name, content in sorted(extra.items()):
        digest.update(f"\0{name}\0".encode() + content.encode())
    return digest.hexdigest()


def build_compat_image(
    tag: str = DEFAULT_TAG,
    *,
    base_image: str = BASE_IMAGE,
    source_dir: Path = COMPAT_IMAGE_DIR,
    client: docker.DockerClient | None = None,
    on_output: Callable[[str], None] = print,
    layer_cache: bool = True,
) -> str:
    """Build the compat image as `tag` (FROM `base_image`, made first if missing) and return `tag`.

    Equivalent to `docker build --network host --build-arg BASE_IMAGE=… -t TAG examples/compat-image`,
    plus this machine's CA bundle for the deps stage. An image with this tag built from the same sources and
    base is reused as is (label org.parity.compat.source-digest); build output lines go to `on_output`.
    `layer_cache=False` builds every layer anew (`--no-cache`: what a first build on a machine costs).
    """
    if not (source_dir / "Dockerfile").is_file():
        raise InfrastructureError(
            f"no Dockerfile in {source_dir}",
            "run parity from a checkout of its repository (examples/ is not installed)",
        )
    client = client or connect()
    ensure_base_image(base_image, log=on_output)
    files = _context_files(source_dir)
    ca_bundle = host_ca_bundle()
    extra = {HOST_CA_IN_CONTEXT: ca_bundle.read_text(encoding="utf-8")} if ca_bundle else {}
    digest = source_digest(source_dir, files, extra, client.images.get(base_image).id)
    try:
        previous = client.images.get(tag)
    except docker.errors.ImageNotFound:
        previous = None
    if previous is not None and previous.labels.get(SOURCE_DIGEST_LABEL) == digest:
        on_output(f"reusing {tag} (built from the same sources)")
        return tag
    on_output(f"building {tag} from {source_dir} on {base_image}")
    context = create_archive(str(source_dir), files=files, extra_files=list(extra.items()))
    recent: list[str] = []
    try:
        for chunk in client.api.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            network_mode="host",
            pull=False,
            rm=True,
            forcerm=True,
            nocache=not layer_cache,
            buildargs={"BASE_IMAGE": base_image},
            labels={SOURCE_DIGEST_LABEL: digest},
            decode=True,
        ):
            if "error" in chunk:
                raise InfrastructureError(
                    f"building {tag} failed: {chunk['error'].strip()}", BUILD_REMEDY, "\n".join(recent[-20:])
                )
            for line in chunk.get("stream", "").splitlines():
                if line.strip():
                    recent.append(line)
                    on_output(line)
    except docker.errors.APIError as exc:
        raise InfrastructureError(f"building {tag} failed: {exc.explanation or exc}", BUILD_REMEDY) from None
    finally:
        context.close()
    if previous is not None and client.images.get(tag).id != previous.id:
        _remove_if_untagged(client, previous.id)
    return tag


def _remove_if_untagged(client: docker.DockerClient, image_id: str) -> None:
    """Remove an outdated build that no tag names any more (removing by id would drop every other tag)."""
    try:
        if not client.images.get(image_id).tags:
            client.images.remove(image_id)
    except docker.errors.APIError:
        pass  # gone already, or a container still uses it: it stays, as `docker build` would leave it
