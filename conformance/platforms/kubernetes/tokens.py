"""Stand-ins for what the API server issues: projected service-account tokens and the cluster CA.

A token is JWT-shaped (three base64url parts) with the claims a bound service-account token carries
(`aud`, `exp`, `iat`, `nbf`, `iss`, `sub`, `kubernetes.io`), so code that decodes it without verifying
(e.g. to read `exp`) behaves as on a cluster; the signature is random bytes — nothing here can mint a
token a real STS or API server would accept. `ca.crt` is a fixed self-signed CA (CN=kubernetes) shipped
with parity, the content of the `kube-root-ca.crt` ConfigMap every namespace gets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CLUSTER_CA_PEM = (Path(__file__).with_name("cluster-ca.crt")).read_bytes()
# kube-apiserver --service-account-extend-token-expiration: a token requested for the admission default
# (3607 s) is issued for a year, with `warnafter` at the requested expiry (kubernetes-contract §2).
ADMISSION_TOKEN_SECONDS = 3607
EXTENDED_TOKEN_SECONDS = 365 * 24 * 3600
API_SERVER_AUDIENCE = "https://kubernetes.default.svc"


@dataclass(frozen=True)
class TokenSubject:
    namespace: str
    service_account: str
    pod_name: str
    pod_uid: str
    node_name: str
    issuer: str


def issuer_for(region: str | None, cluster_seed: str) -> str:
    """An EKS-style OIDC issuer URL (`https://oidc.eks.<region>.amazonaws.com/id/<32 hex>`)."""
    cluster_id = hashlib.sha256(cluster_seed.encode("utf-8")).hexdigest()[:32].upper()
    return f"https://oidc.eks.{region or 'us-east-1'}.amazonaws.com/id/{cluster_id}"


def service_account_token(subject: TokenSubject, audience: str | None, expiration_seconds: int) -> bytes:
    now = int(time.time())
    lifetime = EXTENDED_TOKEN_SECONDS if expiration_seconds == ADMISSION_TOKEN_SECONDS else expiration_seconds
    claims: dict = {
        "aud": [audience or API_SERVER_AUDIENCE],
        "exp": now + lifetime,
        "iat": now,
        "iss": subject.issuer,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {
            "namespace": subject.namespace,
            "node": {
                "name": subject.node_name,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, subject.node_name)),
            },
            "pod": {"name": subject.pod_name, "uid": subject.pod_uid},
            "serviceaccount": {
                "name": subject.service_account,
                "uid": str(
                    uuid.uuid5(uuid.NAMESPACE_URL, f"sa:{subject.namespace}/{subject.service_account}")
                ),
            },
        },
        "nbf": now,
        "sub": f"system:serviceaccount:{subject.namespace}:{subject.service_account}",
    }
    if lifetime != expiration_seconds:
        claims["kubernetes.io"]["warnafter"] = now + expiration_seconds
    header = {"alg": "RS256", "kid": hashlib.sha1(subject.issuer.encode("utf-8")).hexdigest()}
    parts = [
        _b64url(json.dumps(header, separators=(",", ":")).encode()),
        _b64url(json.dumps(claims, separators=(",", ":")).encode()),
        _b64url(secrets.token_bytes(256)),
    ]
    return ".".join(parts).encode("ascii")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
