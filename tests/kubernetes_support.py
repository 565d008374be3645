"""Build kubernetes LaunchPlans from inline manifests, without Docker: the image USER comes from a dict."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from conformance.config import load_config
from conformance.plan import Container, LaunchPlan, Volume
from conformance.platforms.kubernetes import build_plan

IMAGE = "registry.example/train:1"


def write_target(tmp_path: Path, pod: str, resources: str | None = None, options: dict | None = None) -> Path:
    """parity.yaml with one kubernetes target `k8s`, its pod file and (optionally) a resources file."""
    (tmp_path / "pod.yaml").write_text(textwrap.dedent(pod), encoding="utf-8")
    target = {"platform": "kubernetes", "image": IMAGE, "spec": "pod.yaml", "options": options or {}}
    if resources is not None:
        (tmp_path / "resources.yaml").write_text(textwrap.dedent(resources), encoding="utf-8")
        target["resources"] = ["resources.yaml"]
    config = tmp_path / "parity.yaml"
    config.write_text(yaml.safe_dump({"targets": {"k8s": target}}), encoding="utf-8")
    return config


def plan_for(
    tmp_path: Path,
    pod: str,
    resources: str | None = None,
    options: dict | None = None,
    image_users: dict[str, str] | None = None,
) -> LaunchPlan:
    loaded = load_config(write_target(tmp_path, pod, resources, options))
    users = image_users or {}
    return build_plan(
        "k8s",
        loaded.config.targets["k8s"],
        loaded,
        image_users=lambda images: {image: users.get(image, "") for image in images},
    )


def pod(containers: str = "", spec: str = "", metadata: str = "") -> str:
    """A Pod manifest; `containers` defaults to one container `main` running IMAGE."""
    containers = containers or f"- name: main\n  image: {IMAGE}\n"
    return (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: trainer\n"
        + textwrap.indent(textwrap.dedent(metadata), "  ")
        + "spec:\n"
        + textwrap.indent(textwrap.dedent(spec), "  ")
        + "  containers:\n"
        + textwrap.indent(textwrap.dedent(containers), "  ")
    )


def env_of(container: Container) -> dict[str, str]:
    return dict(container.env)


def entries(volume: Volume) -> dict[str, tuple[str, int, int, int, str | None]]:
    """path (with the timestamped directory written as `..TS`) -> (kind, mode, uid, gid, symlink target)."""
    stamp = next((e.path for e in volume.entries if e.kind == "dir" and e.path.startswith("..")), None)

    def clean(text: str | None) -> str | None:
        return text.replace(stamp, "..TS") if (text and stamp) else text

    return {clean(e.path): (e.kind, e.mode, e.uid, e.gid, clean(e.target)) for e in volume.entries}


def content(volume: Volume, suffix: str) -> bytes:
    return next(e.content for e in volume.entries if e.kind == "file" and e.path.endswith(suffix))


def mount(container: Container, target: str):
    return next(m for m in container.mounts if m.target == target)
