"""The SageMaker adapter's options (`targets.<name>.options` in parity.yaml), validated strictly.

Where the sources on the platform disagree, the choice is an option with the documented default:
- `network_interface_name`: `eth0`, what real jobs wrote in resourceconfig.json (SS capture, NCCL/MPI
  logs); the Developer Guide's example shows `eth1` and SDK v3 local mode writes `ethwe`
  (sagemaker-contract.md §1 "Network").
- `max_keep_alive_seconds`: 21600, the service model's maximum for
  `ResourceConfig.KeepAlivePeriodInSeconds`; the warm-pool page of the Developer Guide says 3600 (§4).
  Set 3600 to hold requests to the documented limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conformance.config import describe_validation_error
from conformance.errors import BadInput

DEFAULT_REGION = "us-east-1"
DEFAULT_CHANNEL_BYTES = 64 * 1024 * 1024


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NotebookContext(_Options):
    """The job runs where a notebook would: /opt/ml/metadata/resource-metadata.json is present (§2)."""

    kind: Literal["notebook-instance", "studio"]
    resource_name: str = Field("parity-notebook", min_length=1, max_length=63)
    app_type: Literal["KernelGateway", "JupyterLab", "CodeEditor"] = Field(
        "JupyterLab", description="studio only"
    )
    domain_id: str = Field("d-parity000000", description="studio only")
    user_profile_name: str = Field("parity-user", description="studio only")
    execution_role_arn: str | None = Field(None, description="studio only; default: the request's RoleArn")


class SageMakerOptions(_Options):
    api: Literal["training", "processing"] | None = Field(
        None, description="which Create* request the spec is; default: from its job-name key"
    )
    region: str = Field(DEFAULT_REGION, pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$")
    account_id: str | None = Field(
        None, pattern=r"^\d{12}$", description="default: the account of the request's RoleArn"
    )
    instance_type: str | None = Field(None, description="default: the request's instance type")
    current_host: str = Field(
        "algo-1", pattern=r"^algo-[1-9]\d*$", description="which host this container is"
    )
    network: Literal["none", "host"] = Field(
        "none", description="host: reach servers on the machine's 127.0.0.1 (local moto, StatsD)"
    )
    network_interface_name: str = Field("eth0", min_length=1, max_length=15)
    max_keep_alive_seconds: int = Field(21600, ge=0, le=21600)
    warm_pool: bool = Field(
        False,
        description="the job reuses a warm-pool instance: /opt/ml/sagemaker/warmpoolcache and its variable",
    )
    notebook: NotebookContext | None = None
    container_credentials_full_uri: str | None = Field(
        None,
        pattern=r"^https?://",
        description="emulation aid: set AWS_CONTAINER_CREDENTIALS_FULL_URI (a local credentials server) "
        "instead of the RELATIVE_URI that only resolves against 169.254.170.2",
    )
    endpoint_url: str | None = Field(
        None, description="S3 endpoint for channel data (e.g. local moto); default: boto3's own resolution"
    )
    channel_data: dict[str, str] = Field(
        default_factory=dict,
        description="channel or processing-input name -> local file or directory (relative to the spec), "
        "used instead of its S3 data",
    )
    max_channel_bytes: int = Field(DEFAULT_CHANNEL_BYTES, ge=0, description="bound on all staged input data")


def parse_options(config_path: Path, target_name: str, options: dict[str, Any]) -> SageMakerOptions:
    """Validate a target's options; an unknown or invalid one is BadInput naming
    `targets.<name>.options.<key>`."""
    try:
        return SageMakerOptions.model_validate(options)
    except ValidationError as exc:
        field, problem = describe_validation_error(exc)
        raise BadInput(config_path, f"targets.{target_name}.options.{field}", problem) from None
