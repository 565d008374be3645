"""Names SageMaker gives a job and its instance: ARNs, the host name, the credentials and metadata URIs.

Values that are random on the platform (the private IP in the host name, the credentials id, the ECS
metadata id) are derived from the job ARN and host here, so one request always produces the same
snapshot and baselines do not churn; their *form* is the platform's.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

from conformance.platforms.ec2 import private_dns_domain

# Where the ECS agent serves credentials and task metadata (botocore utils.py `IP_ADDRESS`).
ECS_AGENT = "http://169.254.170.2"
_ROLE_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):")


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def account_of_role(role_arn: str) -> str:
    """The account of an IAM role ARN (validated against the service model's RoleArn pattern first)."""
    match = _ROLE_ACCOUNT.match(role_arn)
    if match is None:
        raise ValueError(f"not an IAM role ARN: {role_arn!r}")
    return match.group(1)


def job_arn(kind: str, region: str, account: str, job_name: str) -> str:
    """`arn:aws:sagemaker:<region>:<account>:<kind>-job/<name>` with the name **lowercased**, as the
    platform writes it (sagemaker-contract.md §1 env; SS `TRAINING_JOB_ARN`, processingjobconfig.json)."""
    return f"arn:{partition(region)}:sagemaker:{region}:{account}:{kind}-job/{job_name.lower()}"


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode()).digest()


def private_dns_name(region: str, *seed: str) -> str:
    """The EC2 private DNS name SageMaker puts in HOSTNAME: `ip-10-a-b-c.ec2.internal` in us-east-1 (SS
    logs), `ip-10-a-b-c.<region>.compute.internal` elsewhere (EC2's private DNS naming)."""
    a, b, c = _digest("ip", *seed)[:3]
    return f"ip-10-{a}-{b}-{c % 254 + 1}.{private_dns_domain(region)}"


def training_credentials_uri(*seed: str) -> str:
    """`/v2/credentials/<uuid>`: the form seen in training jobs (SS single_task env dump)."""
    return f"/v2/credentials/{uuid.UUID(bytes=_digest('credentials', *seed)[:16], version=4)}"


def processing_credentials_uri(*seed: str) -> str:
    """`/v2/credentials/<43 base64url characters>`: the form seen in processing jobs (SS processing_cli)."""
    token = base64.urlsafe_b64encode(_digest("credentials", *seed)).decode().rstrip("=")
    return f"/v2/credentials/{token}"


def ecs_metadata_uris(*seed: str) -> tuple[str, str]:
    """ECS_CONTAINER_METADATA_URI and _V4: one id under /v3 and /v4 (SS single_task env dump)."""
    container_id = uuid.UUID(bytes=_digest("ecs", *seed)[:16], version=4)
    return f"{ECS_AGENT}/v3/{container_id}", f"{ECS_AGENT}/v4/{container_id}"
