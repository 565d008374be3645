"""Helpers for tests that run the Docker engine: unique target names and counting what a target left."""

from __future__ import annotations

import io
import tarfile
import uuid

from conformance.dockerhost import image_exists
from conformance.engines.reaper import LABEL_TARGET

TEST_IMAGE_LABEL = "org.parity.test-image"


def unique_target(prefix: str) -> str:
    """A target name no other test (or engineer) uses, so its labels count only this test's resources."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def leftovers(client, target: str) -> dict[str, list[str]]:
    """Containers and volumes still labelled with `target` (none after any run, on every path)."""
    selector = {"label": f"{LABEL_TARGET}={target}"}
    return {
        "containers": [c["Id"] for c in client.api.containers(all=True, filters=selector)],
        "volumes": [v["Name"] for v in client.api.volumes(filters=selector).get("Volumes") or []],
    }


def build_image(client, tag: str, dockerfile: str, files: dict[str, bytes] | None = None) -> str:
    """Build `tag` from a Dockerfile (and files) once; later calls reuse it. Never pulls, host network."""
    if image_exists(client, tag):
        return tag

    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for name, content in {"Dockerfile": dockerfile.encode(), **(files or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(content))
    context.seek(0)
    client.images.build(
        fileobj=context,
        custom_context=True,
        tag=tag,
        network_mode="host",
        rm=True,
        pull=False,
        labels={TEST_IMAGE_LABEL: "1"},
    )
    return tag
