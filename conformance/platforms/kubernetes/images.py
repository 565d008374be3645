"""The one image fact kubelet reads before starting a container: its configured USER.

Kubelet asks the runtime for the image's user (`getImageUser`) to decide the process's uid when the pod
sets none and to enforce runAsNonRoot. It is read from the local Docker daemon's image config; the engine
never pulls, so an image that is not present is an infrastructure error here as it would be there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import docker.errors

from conformance.dockerhost import connect
from conformance.errors import InfrastructureError

ImageUsers = Callable[[Iterable[str]], dict[str, str]]


def docker_image_users(images: Iterable[str]) -> dict[str, str]:
    """image reference -> its `Config.User` ("" when unset), from the local Docker daemon."""
    wanted = sorted(set(images))
    if not wanted:
        return {}
    client = connect()
    try:
        users = {}
        for image in wanted:
            try:
                config = client.images.get(image).attrs.get("Config") or {}
            except docker.errors.ImageNotFound:
                raise InfrastructureError(
                    f"image {image} is not in the local Docker daemon",
                    "build or load it first (`docker build -t IMAGE …`, `docker load`); "
                    "parity never pulls images",
                ) from None
            except docker.errors.DockerException as exc:
                raise InfrastructureError(
                    f"cannot inspect image {image} ({exc})", "check the Docker daemon"
                ) from None
            users[image] = config.get("User") or ""
        return users
    finally:
        client.close()
