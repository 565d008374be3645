"""EKS identity injected the way the pod-identity webhook does it (kubernetes-contract §5)."""

from __future__ import annotations

import base64
import json

from tests.kubernetes_support import IMAGE, content, entries, env_of, mount, plan_for, pod

IRSA_ACCOUNT = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: trainer
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/trainer
{extra}
"""
ROLE = "arn:aws:iam::111122223333:role/trainer"
TOKEN_FILE = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"


def account(extra: str = "") -> str:
    return IRSA_ACCOUNT.format(extra="".join(f"    {line}\n" for line in extra.splitlines()))


def irsa_pod(containers: str = "", spec: str = "", metadata: str = "") -> str:
    return pod(containers, spec="serviceAccountName: trainer\n" + spec, metadata=metadata)


def test_irsa_env_volume_and_mount(tmp_path):
    plan = plan_for(tmp_path, irsa_pod(), account(), options={"region": "eu-west-1"})
    env = env_of(plan.main)
    assert env["AWS_ROLE_ARN"] == ROLE
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == TOKEN_FILE
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert "AWS_STS_REGIONAL_ENDPOINTS" not in env  # only with the flag or the annotation
    token_mount = mount(plan.main, "/var/run/secrets/eks.amazonaws.com/serviceaccount")
    assert token_mount.read_only and token_mount.volume == "aws-iam-token"
    volume = plan.volume("aws-iam-token")
    assert volume.medium == "memory" and "token" in entries(volume)
    token = content(volume, "/token").split(b".")[1]
    claims = json.loads(base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4)))
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert claims["exp"] - claims["iat"] == 86400
    assert plan.metadata["identity"] == "irsa"


def test_irsa_without_region_option_sets_no_region(tmp_path):
    env = env_of(plan_for(tmp_path, irsa_pod(), account()).main)
    assert "AWS_REGION" not in env and "AWS_DEFAULT_REGION" not in env


def test_account_annotations_change_audience_expiry_and_sts(tmp_path):
    extra = (
        'eks.amazonaws.com/audience: custom-aud\neks.amazonaws.com/token-expiration: "3600"\n'
        'eks.amazonaws.com/sts-regional-endpoints: "true"'
    )
    plan = plan_for(tmp_path, irsa_pod(), account(extra))
    assert env_of(plan.main)["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"
    token = content(plan.volume("aws-iam-token"), "/token").split(b".")[1]
    claims = json.loads(base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4)))
    assert claims["aud"] == ["custom-aud"] and claims["exp"] - claims["iat"] == 3600


def test_keys_the_user_set_in_env_are_left_alone_but_env_from_is_not_looked_at(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      envFrom: [{{configMapRef: {{name: aws}}}}]
      env: [{{name: AWS_ROLE_ARN, value: mine}}]
    """
    config_map = (
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: aws}\ndata: {AWS_REGION: ap-south-1}\n"
    )
    env = env_of(
        plan_for(tmp_path, irsa_pod(containers), account() + config_map, options={"region": "eu-west-1"}).main
    )
    assert env["AWS_ROLE_ARN"] == "mine"
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" not in env  # the reserved pair is skipped together
    assert env["AWS_REGION"] == "eu-west-1"  # appended to env, so it overrides the envFrom value


def test_skip_containers_annotation(tmp_path):
    containers = f"- name: main\n  image: {IMAGE}\n- name: agent\n  image: {IMAGE}\n"
    plan = plan_for(
        tmp_path,
        irsa_pod(containers, metadata="annotations: {eks.amazonaws.com/skip-containers: agent}\n"),
        account(),
    )
    assert "AWS_ROLE_ARN" in env_of(plan.main)
    agent = plan.sidecars[0]
    assert "AWS_ROLE_ARN" not in env_of(agent)
    assert not any(m.volume == "aws-iam-token" for m in agent.mounts)


def test_init_containers_are_patched_too(tmp_path):
    spec = f"initContainers: [{{name: init, image: {IMAGE}}}]\n"
    plan = plan_for(tmp_path, irsa_pod(spec=spec), account())
    assert env_of(plan.init_containers[0])["AWS_ROLE_ARN"] == ROLE


def test_pod_identity_takes_precedence_over_irsa(tmp_path):
    plan = plan_for(
        tmp_path,
        irsa_pod(metadata="labels: {app: t}\n"),
        account(),
        options={"identity": "pod-identity", "region": "us-west-2"},
    )
    env = env_of(plan.main)
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://169.254.170.23/v1/credentials"
    assert env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == (
        "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
    )
    assert env["AWS_REGION"] == "us-west-2"
    assert "AWS_ROLE_ARN" not in env
    assert mount(plan.main, "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount").read_only
    token = content(plan.volume("eks-pod-identity-token"), "/eks-pod-identity-token").split(b".")[1]
    claims = json.loads(base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4)))
    assert claims["aud"] == ["pods.eks.amazonaws.com"]
    assert plan.metadata["identity"] == "pod-identity"


def test_pod_identity_on_an_ipv6_cluster_and_with_a_local_endpoint(tmp_path):
    ipv6 = plan_for(tmp_path, pod(), options={"identity": "pod-identity", "service_cidr": "fd00:10::/108"})
    assert env_of(ipv6.main)["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://[fd00:ec2::23]/v1/credentials"
    local = plan_for(
        tmp_path,
        pod(),
        options={"identity": "pod-identity", "pod_identity_endpoint": "http://127.0.0.1:9911/creds"},
    )
    assert env_of(local.main)["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://127.0.0.1:9911/creds"


def test_identity_none_injects_nothing(tmp_path):
    plan = plan_for(tmp_path, irsa_pod(), account(), options={"identity": "none", "region": "eu-west-1"})
    assert not any(name.startswith("AWS_") for name in env_of(plan.main))
    assert plan.metadata["identity"] == "none"
