"""The one way parity connects to a Docker daemon, with failures that say what to do."""

from __future__ import annotations

import docker
from docker.errors import DockerException

from conformance.errors import InfrastructureError

START_DOCKER = (
    "start the daemon (as root: `dockerd --bridge=none --iptables=false &`, or `scripts/dev-up`) "
    "or point DOCKER_HOST at one"
)


def connect() -> docker.DockerClient:
    """A client for the daemon in the environment (DOCKER_HOST or the local socket), checked with a ping."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except DockerException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InfrastructureError(f"cannot reach the Docker daemon ({reason})", START_DOCKER) from None
    return client


def image_exists(client: docker.DockerClient, reference: str) -> bool:
    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True
