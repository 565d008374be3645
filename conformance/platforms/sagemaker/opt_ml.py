"""The /opt/ml tree a SageMaker container sees: modes, owners, and the byte format of its JSON files.

Sources (sagemaker-contract.md; "SS" = the files and `ls -la` listings captured from real jobs in
shiftan/simple_sagemaker `examples/single_task` and `examples/processing_cli`):
- everything is root:root; directories 0755, files 0644 — except processing's /opt/ml/config, a 0644
  directory (`drw-r--r--`) that only root can enter;
- the platform writes the job's JSON compactly in Go's encoding/json style (no spaces; `&`, `<`, `>`
  escaped as `\\u0026`, `\\u003c`, `\\u003e`: SS processingjobconfig.json), except training's
  resourceconfig.json, which has Python's `", "`/`": "` separators (SS single_task);
- request enums inside trainingjobconfig.json use internal names (`S3_PREFIX`, `SHARDED_BY_S3_KEY`,
  `NONE`), while inputdataconfig.json keeps the API's (`ShardedByS3Key`, `None`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from conformance.plan import FileEntry, Volume

DIR_MODE = 0o755
FILE_MODE = 0o644
PROCESSING_CONFIG_DIR_MODE = 0o644

OPT_ML = "/opt/ml"
INPUT = f"{OPT_ML}/input"
MODEL = f"{OPT_ML}/model"
OUTPUT = f"{OPT_ML}/output"
PROCESSING = f"{OPT_ML}/processing"
PROCESSING_CONFIG = f"{OPT_ML}/config"
METADATA = f"{OPT_ML}/metadata"
WARM_POOL_CACHE = f"{OPT_ML}/sagemaker/warmpoolcache"
DEFAULT_CHECKPOINT_PATH = f"{OPT_ML}/checkpoints"
FAILURE_FILE = f"{OUTPUT}/failure"
PROCESSING_MESSAGE_FILE = f"{OUTPUT}/message"
# FailureReason / ExitMessage keep the first 1024 characters (DG; BC FailureReason max 1024).
FAILURE_LIMIT = 1024

_GO_HTML_ESCAPES = {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def go_json(value: Any) -> bytes:
    """JSON as the platform's agent writes it: compact, UTF-8, HTML-sensitive characters escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _GO_HTML_ESCAPES.items():
        text = text.replace(char, escaped)  # these characters only ever occur inside JSON strings
    return text.encode("utf-8")


def python_json(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def internal_enum(value: str) -> str:
    """`ShardedByS3Key` -> `SHARDED_BY_S3_KEY`, `S3Prefix` -> `S3_PREFIX`, `None` -> `NONE`."""
    return _CAMEL_BOUNDARY.sub("_", value).upper()


def directory(path: str, mode: int = DIR_MODE) -> FileEntry:
    return FileEntry(path=path, kind="dir", mode=mode)


def file(path: str, content: bytes) -> FileEntry:
    return FileEntry(path=path, kind="file", content=content, mode=FILE_MODE)


def volume(name: str, entries: list[FileEntry], mode: int = DIR_MODE) -> Volume:
    return Volume(name=name, mode=mode, entries=entries)


def relative_to(mount_point: str, path: str) -> str | None:
    """`path` relative to `mount_point`, or None when it lies elsewhere."""
    if path.rstrip("/") == mount_point:
        return ""
    prefix = mount_point.rstrip("/") + "/"
    return path[len(prefix) :].rstrip("/") if path.startswith(prefix) else None
