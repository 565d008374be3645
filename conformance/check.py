"""`parity run`, `parity diff` and `parity check`, and `run_check`, the library function behind them.

`run_check` is what the CLI, the certificate and the pytest plugin share: run every target (or read their
stored snapshots), normalize, diff each comparison and each target against its golden baseline under the
contract, apply the waivers. The commands only add input and output around it: stdout carries the report,
stderr what was written and what happened to the baselines.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from conformance import baselines, runner
from conformance.baselines import (
    BaselineChange,
    baseline_file,
    baseline_form,
    display_path,
    load_baseline,
    write_atomically,
)
from conformance.config import LoadedConfig, load_config
from conformance.contract import CompiledWaiver, Contract, apply_waivers, compile_waivers, load_contract
from conformance.differ import Side, diff_snapshots, divergence_id
from conformance.errors import BadInput
from conformance.model import CheckResult, ComparisonResult, Divergence
from conformance.snapshot import dumps_snapshot, load_snapshot, validate_snapshot

SNAPSHOTS_DIR = Path(".parity") / "snapshots"


@dataclass
class CheckOutcome:
    """A check's verdict plus what it was computed from."""

    result: CheckResult
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    normalized: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: list[BaselineChange] = field(default_factory=list)


def run_check(
    loaded: LoadedConfig,
    *,
    update_baselines: bool = False,
    prune_baselines: bool = False,
    snapshots_dir: Path | None = None,
    targets: list[str] | None = None,
    update_command: str | None = None,
) -> CheckOutcome:
    """Check parity for `loaded`'s targets (all, or `targets`) and their baselines.

    With `snapshots_dir`, `<snapshots_dir>/<target>.json` is read instead of running the target. With
    `update_baselines`, new and changed baselines are written first (and unused ones deleted when
    `prune_baselines`), so the baseline comparisons hold. `update_command` is the command a missing
    baseline's hint tells the user to run (default: the `parity check … --update-baselines` matching this
    call). Raises BadInput / InfrastructureError.
    """
    if update_command is None:
        update_command = f"parity check -c {display_path(loaded.path)}"
        if snapshots_dir:
            update_command += f" --snapshots {display_path(snapshots_dir)}"
        update_command += " --update-baselines"
    if prune_baselines and not update_baselines:
        raise BadInput(None, "--prune-baselines", "only works together with --update-baselines")
    contract = load_contract(loaded.config.contract, display_path(loaded.path))
    selected = _select_targets(loaded, targets)
    pairs = [
        pair
        for pair in loaded.config.resolved_comparisons()
        if pair.left in selected and pair.right in selected
    ]
    waivers = _compile_waivers(loaded)

    if snapshots_dir:
        raw = _read_snapshots(snapshots_dir, selected)
    else:
        raw = {target: outcome.snapshot for target, outcome in run_targets(loaded, selected).items()}
    normalized = {target: contract.normalize(snapshot) for target, snapshot in raw.items()}

    comparisons = [
        ComparisonResult(
            name=f"{pair.left}~{pair.right}",
            kind="pair",
            left=pair.left,
            right=pair.right,
            divergences=diff_snapshots(
                Side.of(pair.left, normalized[pair.left]),
                Side.of(pair.right, normalized[pair.right]),
                contract,
                comparison=f"{pair.left}~{pair.right}",
            ),
        )
        for pair in pairs
    ]
    forms = {target: baseline_form(normalized[target]) for target in selected}
    if update_baselines:
        changes = baselines.update_baselines(loaded, forms, contract, prune=prune_baselines)
    else:
        changes = [BaselineChange(None, path, "unused") for path in baselines.unused_baselines(loaded)]
    comparisons += [
        _baseline_comparison(loaded, target, forms[target], contract, update_command) for target in selected
    ]

    # A waiver scoped to a comparison this run did not make (`--target`) can be neither used nor unused.
    compared = {comparison.name for comparison in comparisons}
    in_scope = [waiver for waiver in waivers if waiver.waiver.comparison in (None, *compared)]
    notes = apply_waivers(comparisons, in_scope, dt.datetime.now(dt.timezone.utc).date())
    result = CheckResult(
        generated_at=dt.datetime.now(dt.timezone.utc),
        config=display_path(loaded.path),
        suite=loaded.config.suite,
        comparisons=comparisons,
        waiver_notes=notes,
    )
    return CheckOutcome(result=result, raw=raw, normalized=normalized, baselines=changes)


def _select_targets(loaded: LoadedConfig, targets: list[str] | None) -> list[str]:
    known = list(loaded.config.targets)
    if not known:
        raise BadInput(
            display_path(loaded.path), "targets", "no targets: declare at least one target to check"
        )
    unknown = [name for name in targets or [] if name not in known]
    if unknown:
        raise BadInput(
            None,
            "--target",
            f"no target {unknown[0]!r} in {display_path(loaded.path)} (targets: {', '.join(known)})",
        )
    return [name for name in known if not targets or name in targets]


def _compile_waivers(loaded: LoadedConfig) -> list[CompiledWaiver]:
    """The waivers, checked: a waiver scoped to a comparison that does not exist is a typo, not a no-op."""
    names = [f"{pair.left}~{pair.right}" for pair in loaded.config.resolved_comparisons()]
    names += [f"baseline:{target}" for target in loaded.config.targets]
    for index, waiver in enumerate(loaded.config.waivers):
        if waiver.comparison and waiver.comparison not in names:
            raise BadInput(
                display_path(loaded.path),
                f"waivers.{index}.comparison",
                f"no comparison {waiver.comparison!r} (comparisons: {', '.join(names) or 'none'})",
            )
    return compile_waivers(loaded.config.waivers, display_path(loaded.path))


def _read_snapshots(directory: Path, targets: list[str]) -> dict[str, dict[str, Any]]:
    snapshots = {}
    for target in targets:
        path = directory / f"{target}.json"
        if not path.exists():
            raise BadInput(
                path, None, f"no snapshot for target {target!r} (write one with `parity run -t {target}`)"
            )
        snapshots[target] = load_snapshot(path)
    return snapshots


def run_targets(
    loaded: LoadedConfig, targets: list[str], labels: dict[str, str] | None = None
) -> dict[str, runner.RunOutcome]:
    """Run every target concurrently (one thread each) with one hash key, so equal secrets hash equal.

    Each outcome's snapshot is validated (raw, not normalized). `labels` go on every container and volume
    the engines create. The first failure is raised once every run has finished or been cancelled;
    engines clean up their own resources on every path, including when this thread is interrupted.
    """
    plans = runner.build_plans(loaded, targets)
    hash_key = secrets.token_bytes(32)
    with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="parity-target") as pool:
        futures = {
            target: pool.submit(runner.run_target, loaded, target, hash_key, plans[target], labels)
            for target in targets
        }
        try:
            outcomes = {target: future.result() for target, future in futures.items()}
        except BaseException:
            for future in futures.values():
                future.cancel()
            raise
    for target, outcome in outcomes.items():
        outcome.snapshot = validate_snapshot(outcome.snapshot, f"target {target}")
    return outcomes


def _baseline_comparison(
    loaded: LoadedConfig, target: str, form: dict[str, Any], contract: Contract, update_command: str
) -> ComparisonResult:
    path = baseline_file(loaded, target)
    shown = display_path(path)
    name = f"baseline:{target}"
    baseline = load_baseline(path)
    if baseline is None:
        divergences = [_missing_baseline(target, shown, update_command)]
    else:
        divergences = diff_snapshots(
            Side.of(shown, baseline), Side.of(target, form), contract, comparison=name, baseline=True
        )
    return ComparisonResult(name=name, kind="baseline", left=shown, right=target, divergences=divergences)


def _missing_baseline(target: str, shown: str, command: str) -> Divergence:
    return Divergence(
        id=divergence_id("probe", f"baseline:{target}", "extra"),
        comparison=f"baseline:{target}",
        category="probe",
        path=shown,
        kind="extra",
        severity="high",
        rule="baseline",
        hint=(
            f"No golden baseline for target {target!r} yet, and none is created without asking: review "
            f"this run, then create {shown} with `{command}` (under pytest: --parity-update-baselines) "
            "and commit it."
        ),
    )


# ---- the commands ---------------------------------------------------------------------------------------


def run_command(config_path: Path, target: str, out: Path | None) -> int:
    """`parity run`: run the probe in one target and write its raw snapshot."""
    loaded = load_config(config_path)
    outcome = runner.run_target(loaded, target, secrets.token_bytes(32))
    snapshot = validate_snapshot(outcome.snapshot, f"target {target}")
    destination = out or loaded.base_dir / SNAPSHOTS_DIR / f"{target}.json"
    write_atomically(destination, dumps_snapshot(snapshot))
    click.echo(f"{target}: snapshot written to {display_path(destination)}")
    return 0


def diff_command(left: Path, right: Path, fmt: str, out: Path | None, config_path: Path | None) -> int:
    """`parity diff`: compare two snapshot files under the contract (parity.yaml's, or the built-in one)."""
    if config_path is not None:
        loaded = load_config(config_path)
        contract = load_contract(loaded.config.contract, display_path(loaded.path))
        waivers = compile_waivers(loaded.config.waivers, display_path(loaded.path))
    else:
        contract, waivers = load_contract(), []
    left_raw, right_raw = load_snapshot(left), load_snapshot(right)
    left_label, right_label = _label(left_raw, left), _label(right_raw, right)
    if left_label == right_label:
        left_label, right_label = str(left), str(right)
    name = f"{left_label}~{right_label}"
    comparison = ComparisonResult(
        name=name,
        kind="pair",
        left=left_label,
        right=right_label,
        divergences=diff_snapshots(
            Side.of(left_label, contract.normalize(left_raw)),
            Side.of(right_label, contract.normalize(right_raw)),
            contract,
            comparison=name,
        ),
    )
    in_scope = [waiver for waiver in waivers if waiver.waiver.comparison in (None, name)]
    notes = apply_waivers([comparison], in_scope, dt.datetime.now(dt.timezone.utc).date())
    result = CheckResult(
        generated_at=dt.datetime.now(dt.timezone.utc),
        config=str(config_path) if config_path else None,
        comparisons=[comparison],
        waiver_notes=notes,
        snapshots={left_label: str(left), right_label: str(right)},
    )
    _emit(result, fmt, out)
    return result.exit_code


def _label(snapshot: dict[str, Any], path: Path) -> str:
    harness = snapshot.get("harness") or {}
    return harness.get("target") or snapshot.get("probe", {}).get("label") or path.stem


def check_command(
    config_path: Path,
    update_baselines: bool,
    prune_baselines: bool,
    snapshots_dir: Path | None,
    out_dir: Path | None,
    fmt: str,
    targets: list[str],
) -> int:
    """`parity check`: the report on stdout, baseline changes on stderr, everything in --out-dir."""
    loaded = load_config(config_path)
    outcome = run_check(
        loaded,
        update_baselines=update_baselines,
        prune_baselines=prune_baselines,
        snapshots_dir=snapshots_dir,
        targets=targets or None,
    )
    result = outcome.result
    if out_dir is not None:
        for target, snapshot in outcome.raw.items():
            destination = out_dir / "snapshots" / f"{target}.json"
            write_atomically(destination, dumps_snapshot(snapshot))
            result.snapshots[target] = str(destination)
        from conformance.reports import write_all

        written = write_all(result, out_dir)
        click.echo(
            f"reports written to {display_path(out_dir)}: {', '.join(p.name for p in written.values())}",
            err=True,
        )
    _emit(result, fmt, None)
    for change in outcome.baselines:
        click.echo(f"baseline {change.describe()}", err=True)
    return result.exit_code


def _emit(result: CheckResult, fmt: str, out: Path | None) -> None:
    from conformance.reports import print_terminal, render

    if out is None and fmt == "text":
        print_terminal(result)
        return
    document = render(result, fmt)
    if out is not None:
        write_atomically(out, document)
    else:
        sys.stdout.write(document if document.endswith("\n") else document + "\n")
