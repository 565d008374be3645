"""`parity certify`: a cutover certificate a release manager can file, and its verification.

A certificate is `check` plus provenance: which repository and commit, which image (reference and id)
each target ran, the probe version, digests of the config, specs, contract, snapshots and reports, each
comparison's verdict and the waivers in force. `parity certify --verify CERT` recomputes every digest, so
an edited snapshot, report or config is caught.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from conformance.atomic import write_atomically
from conformance.check import run_check
from conformance.config import LoadedConfig, load_config
from conformance.contract import default_contract_config
from conformance.errors import BadInput
from conformance.reports import write_all
from conformance.snapshot import dumps_snapshot

CERTIFICATE_SCHEMA = "parity.certificate/v1"
CERTIFICATE_JSON = "certificate.json"
CERTIFICATE_MARKDOWN = "certificate.md"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _sha256_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _parity_version() -> str:
    try:
        return version("parity-conformance")
    except PackageNotFoundError:
        return "unknown"


def repository_of(directory: Path) -> dict[str, Any] | None:
    """Repository root, origin URL, commit and whether the work tree has changes; None outside git."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    return {
        "root": git("rev-parse", "--show-toplevel"),
        "remote": git("config", "--get", "remote.origin.url"),
        "commit": commit,
        "dirty": bool(git("status", "--porcelain")),
    }


def contract_digest(loaded: LoadedConfig) -> str:
    """Digest of the contract in force: the built-in layer (when extended) and the repo's own rules."""
    layers = {"repo": loaded.config.contract.model_dump(mode="json")}
    if loaded.config.contract.extends == "default":
        layers["default"] = default_contract_config().model_dump(mode="json")
    return _sha256_text(json.dumps(layers, sort_keys=True, separators=(",", ":")))


def _input_files(loaded: LoadedConfig, targets: list[str]) -> dict[str, Path]:
    """The repo files the verdict depends on: parity.yaml and every target's spec and resources."""
    files = {"config": loaded.path}
    for name in targets:
        target = loaded.config.targets[name]
        files[f"targets.{name}.spec"] = loaded.resolve(target.spec)
        for index, resource in enumerate(target.resources):
            files[f"targets.{name}.resources.{index}"] = loaded.resolve(resource)
    return files


def certify(loaded: LoadedConfig, out_dir: Path, *, snapshots_dir: Path | None = None) -> dict[str, Any]:
    """Run the check, write snapshots, reports and the certificate into `out_dir`; return the certificate."""
    outcome = run_check(loaded, snapshots_dir=snapshots_dir)
    result = outcome.result
    out_dir.mkdir(parents=True, exist_ok=True)

    targets: dict[str, Any] = {}
    for name, snapshot in outcome.raw.items():
        relative = Path("snapshots") / f"{name}.json"
        write_atomically(out_dir / relative, dumps_snapshot(snapshot))
        result.snapshots[name] = str(relative)
        target = loaded.config.targets[name]
        harness = snapshot.get("harness") or {}
        targets[name] = {
            "platform": target.platform,
            "engine": target.engine,
            "image": target.image,
            "image_id": harness.get("image_id"),
            "probe_version": (snapshot.get("probe") or {}).get("version"),
            "snapshot": {"file": str(relative), "digest": sha256_file(out_dir / relative)},
        }
    reports = {
        fmt: {"file": path.name, "digest": sha256_file(path)}
        for fmt, path in write_all(result, out_dir).items()
    }
    base = loaded.base_dir
    inputs = {
        role: {"file": _relative_to(path, base), "digest": sha256_file(path)}
        for role, path in _input_files(loaded, list(outcome.raw)).items()
    }
    waivers = [
        {
            "selector": waiver.id or waiver.path,
            "comparison": waiver.comparison,
            "reason": waiver.reason,
            "owner": waiver.owner,
            "expires": waiver.expires.isoformat() if waiver.expires else None,
            "applied": sum(
                1
                for comparison in result.comparisons
                for divergence in comparison.divergences
                if divergence.waiver is not None
                and (divergence.waiver.reason, divergence.waiver.owner, divergence.waiver.expires)
                == (waiver.reason, waiver.owner, waiver.expires)
            ),
        }
        for waiver in loaded.config.waivers
    ]
    certificate = {
        "schema": CERTIFICATE_SCHEMA,
        "issued_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "result": "certified" if result.passed else "not certified",
        "parity_version": _parity_version(),
        "suite": loaded.config.suite,
        "repository": repository_of(base),
        "base_dir": str(base),
        "inputs": inputs,
        "contract": {"extends": loaded.config.contract.extends, "digest": contract_digest(loaded)},
        "targets": targets,
        "comparisons": [
            {
                "name": comparison.name,
                "kind": comparison.kind,
                "verdict": "pass" if comparison.passed else "fail",
                "divergences": len(comparison.divergences),
                "unwaived": len(comparison.unwaived),
            }
            for comparison in result.comparisons
        ],
        "waivers": waivers,
        "waiver_problems": [note.model_dump(mode="json") for note in result.waiver_notes],
        "reports": reports,
    }
    write_atomically(out_dir / CERTIFICATE_JSON, json.dumps(certificate, indent=2, sort_keys=True) + "\n")
    write_atomically(out_dir / CERTIFICATE_MARKDOWN, render_certificate_markdown(certificate))
    return certificate


def _relative_to(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path.resolve())


def render_certificate_markdown(certificate: dict[str, Any]) -> str:
    repo = certificate["repository"] or {}
    mark = "✅" if certificate["result"] == "certified" else "❌"
    lines = [
        f"# Parity certificate — {mark} {certificate['result']}",
        "",
        f"- Issued: {certificate['issued_at']} by parity {certificate['parity_version']}",
        f"- Suite: `{certificate['suite']}`",
        f"- Repository: {repo.get('remote') or repo.get('root') or 'not in git'}"
        + (
            f" at `{repo['commit']}`" + (" (uncommitted changes)" if repo.get("dirty") else "")
            if repo
            else ""
        ),
        f"- Contract: extends `{certificate['contract']['extends']}`, `{certificate['contract']['digest']}`",
        "",
        "## Targets",
        "",
        "| target | platform | engine | image | image id | probe | snapshot digest |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, target in certificate["targets"].items():
        lines.append(
            f"| {name} | {target['platform']} | {target['engine']} | `{target['image']}` | "
            f"`{target['image_id'] or '-'}` | {target['probe_version'] or '-'} | "
            f"`{target['snapshot']['digest']}` |"
        )
    lines += [
        "",
        "## Comparisons",
        "",
        "| comparison | verdict | divergences | unwaived |",
        "|---|---|---|---|",
    ]
    for comparison in certificate["comparisons"]:
        lines.append(
            f"| {comparison['name']} | {comparison['verdict']} | {comparison['divergences']} | "
            f"{comparison['unwaived']} |"
        )
    lines += ["", "## Waivers in force", ""]
    if certificate["waivers"]:
        lines += ["| selector | reason | owner | expires | applied |", "|---|---|---|---|---|"]
        for waiver in certificate["waivers"]:
            reason = waiver["reason"].replace("|", "\\|")
            lines.append(
                f"| `{waiver['selector']}` | {reason} | {waiver['owner']} | "
                f"{waiver['expires'] or 'never'} | {waiver['applied']} |"
            )
    else:
        lines.append("None.")
    for problem in certificate["waiver_problems"]:
        lines.append(f"- waiver `{problem['selector']}` is **{problem['problem']}** ({problem['owner']})")
    lines += ["", "## Files and digests", "", "| file | digest |", "|---|---|"]
    for entry in [*certificate["inputs"].values(), *certificate["reports"].values()]:
        lines.append(f"| `{entry['file']}` | `{entry['digest']}` |")
    lines += ["", "Verify with `parity certify --verify certificate.json`.", ""]
    return "\n".join(lines)


def verify_certificate(path: Path) -> list[str]:
    """Every digest in the certificate recomputed; returns the problems found (empty: it verifies)."""
    try:
        certificate = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(path, None, "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(path, None, f"not a readable JSON certificate: {exc}") from None
    if not isinstance(certificate, dict) or certificate.get("schema") != CERTIFICATE_SCHEMA:
        found = certificate.get("schema") if isinstance(certificate, dict) else None
        raise BadInput(
            path, "schema", f"not a parity certificate (expected {CERTIFICATE_SCHEMA!r}, got {found!r})"
        )
    out_dir = path.parent
    base_dir = Path(certificate.get("base_dir") or out_dir)
    checks: list[tuple[Path, str, str]] = []
    try:
        for name, target in certificate["targets"].items():
            checks.append(
                (out_dir / target["snapshot"]["file"], target["snapshot"]["digest"], f"snapshot of {name}")
            )
        for fmt, entry in certificate["reports"].items():
            checks.append((out_dir / entry["file"], entry["digest"], f"{fmt} report"))
        for role, entry in certificate["inputs"].items():
            checks.append((base_dir / entry["file"], entry["digest"], role))
    except (KeyError, TypeError, AttributeError) as exc:
        raise BadInput(path, str(exc).strip("'"), "missing or malformed in the certificate") from None
    problems = []
    for file, expected, role in checks:
        if not file.is_file():
            problems.append(f"{role}: {file} is missing")
        elif sha256_file(file) != expected:
            problems.append(f"{role}: {file} was changed after certification (digest mismatch)")
    return problems


def certify_command(
    config_path: Path, out_dir: Path | None, verify: Path | None, snapshots_dir: Path | None
) -> int:
    """`parity certify`: write a certificate (exit 0 certified, 1 not), or `--verify` one (0 ok, 1 not)."""
    if verify is not None:
        problems = verify_certificate(verify)
        for problem in problems:
            click.echo(f"parity: {problem}", err=True)
        click.echo(f"{verify}: {'verification FAILED' if problems else 'verified, every digest matches'}")
        return 1 if problems else 0
    if out_dir is None:
        raise BadInput(None, "--out-dir", "required to write a certificate (or use --verify CERT)")
    certificate = certify(load_config(config_path), out_dir, snapshots_dir=snapshots_dir)
    click.echo(f"{out_dir / CERTIFICATE_JSON}: {certificate['result']}")
    return 0 if certificate["result"] == "certified" else 1
