"""Shared by the compat-image tests: the example's files and its entrypoint helper loaded as modules."""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import cache
from types import ModuleType
from typing import Any

import yaml

from conformance.compat_image import COMPAT_IMAGE_DIR

MANIFESTS = COMPAT_IMAGE_DIR / "manifests"


@cache
def load_module(name: str) -> ModuleType:
    """examples/compat-image/compat/<name>.py, imported the way the image runs it."""
    spec = importlib.util.spec_from_file_location(
        f"compat_{name}", COMPAT_IMAGE_DIR / "compat" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in examples/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


def manifest(relative: str) -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / relative).read_text(encoding="utf-8"))


def pod_environment() -> dict[str, str]:
    """The trainer container's variables as kubelet builds them: envFrom ConfigMaps, then env (plain values;
    secretKeyRef entries map to None)."""
    pod = manifest("kubernetes/pod.yaml")
    trainer = pod["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in trainer.get("envFrom", []):
        name = source["configMapRef"]["name"]
        env.update(configmap(name)["data"])
    for entry in trainer["env"]:
        env[entry["name"]] = entry.get("value")
    return env


def configmap(name: str) -> dict[str, Any]:
    for path in (MANIFESTS / "kubernetes").glob("configmap-*.yaml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if document["metadata"]["name"] == name:
            return document
    raise KeyError(name)


def typed_hyperparameters() -> dict[str, Any]:
    return json.loads(configmap("train-hyperparameters")["data"]["hyperparameters.json"])
