"""Input data for training channels and processing inputs: from a local path or from S3 through boto3.

A target's `channel_data` option maps a channel (or processing input) name to a local file or directory,
so a real job request with s3:// URIs runs unchanged with fixture data. Otherwise objects are listed and
read with boto3 (`endpoint_url` option, or boto3's own AWS_ENDPOINT_URL / credentials resolution, so a
local moto server works). Everything staged counts against `max_channel_bytes`, checked before anything
is read.

Layout rules reproduced (sagemaker-contract.md §1 "Other paths", SS single_task / processing_cli):
an object's path under the channel directory is its key with the URI's key prefix removed
(`s3://b/in` + `in/test` → `test`); a URI that names one object exactly stages that object under its
base name; files are root:root 0644 and directories 0755.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.errors import BadInput, InfrastructureError
from conformance.platforms.sagemaker.options import SageMakerOptions


@dataclass
class StagedObject:
    path: str
    """Relative to the channel directory."""
    content: bytes
    uri: str
    """The S3 URI the platform would have read it from (for the channel's manifest file)."""


@dataclass
class StagedInput:
    objects: list[StagedObject]
    """What this host receives."""
    listed_uris: list[str]
    """Every object of the source, in key order (a sharded channel's manifest lists them all: SS
    single_task)."""


@dataclass
class DataStager:
    """Reads input data for one request, within one byte budget."""

    spec_path: Path
    options: SageMakerOptions
    option_field: str
    """`targets.<name>.options` — where channel_data errors point."""
    used_bytes: int = 0
    _s3: Any = field(default=None, repr=False)

    def stage(
        self, name: str, s3_uri: str | None, field_path: str, shard: tuple[int, int] = (0, 1)
    ) -> StagedInput:
        """The objects of input `name`, from channel_data when given, else from `s3_uri`.

        `shard` = (host index, host count) for ShardedByS3Key: this host gets every count-th object in
        key order (the platform's assignment is not documented; this one is deterministic).
        """
        if name in self.options.channel_data:
            return self._local(name, s3_uri or "", shard)
        if s3_uri is None:
            raise BadInput(
                self.spec_path,
                field_path,
                f"this data source cannot be emulated; give input {name!r} local data in "
                f"{self.option_field}.channel_data",
            )
        return self._s3_objects(s3_uri, field_path, shard)

    def _charge(self, size: int, field_path: str, source: str) -> None:
        self.used_bytes += size
        limit = self.options.max_channel_bytes
        if self.used_bytes > limit:
            raise BadInput(
                self.spec_path,
                field_path,
                f"input data reaches {self.used_bytes} bytes at {source}; parity stages at most {limit} "
                f"({self.option_field}.max_channel_bytes)",
            )

    def _local(self, name: str, s3_uri: str, shard: tuple[int, int]) -> StagedInput:
        field_path = f"{self.option_field}.channel_data.{name}"
        root = Path(self.options.channel_data[name])
        root = root if root.is_absolute() else self.spec_path.parent / root
        if root.is_file():
            files = [(root, root.name)]
        elif root.is_dir():
            files = sorted(
                (Path(folder) / filename, (Path(folder) / filename).relative_to(root).as_posix())
                for folder, _, filenames in os.walk(root)
                for filename in filenames
                if (Path(folder) / filename).is_file()
            )
        else:
            raise BadInput(self.spec_path, field_path, f"{root} does not exist")
        base = s3_uri.rstrip("/")
        index, count = shard
        staged = []
        for path, relative in files[index::count]:
            self._charge(path.stat().st_size, field_path, str(path))
            staged.append(StagedObject(relative, path.read_bytes(), f"{base}/{relative}"))
        return StagedInput(staged, [f"{base}/{relative}" for _, relative in files])

    def _client(self):
        if self._s3 is None:
            import boto3  # only jobs that read S3 pay for importing boto3

            self._s3 = boto3.client(
                "s3", region_name=self.options.region, endpoint_url=self.options.endpoint_url
            )
        return self._s3

    def _s3_objects(self, uri: str, field_path: str, shard: tuple[int, int]) -> StagedInput:
        from botocore.exceptions import BotoCoreError, ClientError

        if not uri.startswith("s3://"):
            raise BadInput(
                self.spec_path,
                field_path,
                f"only s3:// URIs can be read (got {uri!r}); "
                f"or give local data in {self.option_field}.channel_data",
            )
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        try:
            client = self._client()
            listed = sorted(
                (
                    item
                    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                    for item in page.get("Contents", [])
                    if not item["Key"].endswith("/")
                ),
                key=lambda item: item["Key"],
            )
            index, count = shard
            mine = listed[index::count]
            for item in mine:
                self._charge(item["Size"], field_path, f"s3://{bucket}/{item['Key']}")
            staged = []
            for item in mine:
                key = item["Key"]
                relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
                staged.append(StagedObject(relative, body, f"s3://{bucket}/{key}"))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise InfrastructureError(
                f"cannot read {uri} for {field_path} ({code})",
                "check the bucket and the credentials, "
                f"or give local data in {self.option_field}.channel_data",
            ) from None
        except BotoCoreError as exc:
            raise InfrastructureError(
                f"cannot read {uri} for {field_path} ({exc})",
                f"set {self.option_field}.endpoint_url (e.g. a local moto server) and AWS credentials, "
                f"or give local data in {self.option_field}.channel_data",
            ) from None
        return StagedInput(staged, [f"s3://{bucket}/{item['Key']}" for item in listed])
