"""The pytest plugin: parity as test items, so a team's existing pytest/JUnit pipeline gates on it.

    pytest --parity-config parity.yaml [--parity-snapshots DIR] [--parity-update-baselines]

adds one test per comparison and category (`parity.yaml::k8s~sagemaker::env`, `parity.yaml::baseline:k8s::
identity`, …) and one for the waivers (an expired waiver fails it). The check runs once, when the first of
these items runs, through the same `run_check` as `parity check`; an item fails with its unwaived
divergences, and a bad config or an infrastructure failure fails every item with the same one-line message.
Without `--parity-config` the plugin adds nothing. Run the parity items in one process (not under
pytest-xdist `-n`), or each worker runs the check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

_OUTCOME = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parity", "parity conformance checks")
    group.addoption(
        "--parity-config", metavar="FILE", help="run parity's checks for this parity.yaml as tests"
    )
    group.addoption(
        "--parity-snapshots",
        metavar="DIR",
        help="compare stored snapshots (<target>.json) instead of running targets",
    )
    group.addoption(
        "--parity-update-baselines",
        action="store_true",
        help="write new and changed golden baselines (atomically)",
    )


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    option = config.getoption("parity_config")
    if not option:
        return
    from conformance.config import load_config
    from conformance.errors import ParityError

    try:
        loaded = load_config(option)
    except ParityError as exc:
        raise pytest.UsageError(f"--parity-config: {exc.one_line()}") from None
    parity_file = ParityFile.from_parent(session, path=loaded.path, loaded=loaded)
    parity_items = parity_file.collect()
    # Collection proper is over: report these items so the "collected N items" count includes them.
    config.hook.pytest_collectreport(
        report=pytest.CollectReport(parity_file.nodeid, "passed", None, parity_items)
    )
    items.extend(parity_items)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    outcome = config.stash.get(_OUTCOME, None)
    if outcome is None or isinstance(outcome, BaseException):
        return
    lines = [f"baseline {change.describe()}" for change in outcome.baselines]
    lines += [f"waiver {note.selector}: {note.problem}" for note in outcome.result.waiver_notes]
    if lines:
        terminalreporter.section("parity")
        for line in lines:
            terminalreporter.write_line(line)


class ParityFile(pytest.File):
    def __init__(self, *, loaded: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded

    def collect(self) -> list[pytest.Item]:
        from conformance.config import CATEGORIES

        config = self.loaded.config
        names = [f"{pair.left}~{pair.right}" for pair in config.resolved_comparisons()]
        names += [f"baseline:{target}" for target in config.targets]
        items: list[pytest.Item] = [
            ParityCategoryItem.from_parent(
                self, name=f"{name}::{category}", comparison=name, category=category
            )
            for name in names
            for category in CATEGORIES
        ]
        items.append(ParityWaiversItem.from_parent(self, name="waivers"))
        return items


class ParityFailure(Exception):
    """An item's failure: its message is the whole report for the item (no traceback is useful)."""


class _ParityItem(pytest.Item):
    def outcome(self) -> Any:
        """The check's outcome, computed by the first item that needs it and shared by all."""
        config = self.config
        if _OUTCOME not in config.stash:
            from conformance.check import run_check
            from conformance.errors import ParityError

            try:
                config.stash[_OUTCOME] = run_check(
                    self.parent.loaded,
                    update_baselines=config.getoption("parity_update_baselines"),
                    snapshots_dir=_path_option(config, "parity_snapshots"),
                )
            except ParityError as exc:
                config.stash[_OUTCOME] = exc
        outcome = config.stash[_OUTCOME]
        if isinstance(outcome, BaseException):
            raise ParityFailure(f"parity: {outcome.one_line()}")
        return outcome

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ParityFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"parity {self.name}"


class ParityCategoryItem(_ParityItem):
    def __init__(self, *, comparison: str, category: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.comparison = comparison
        self.category = category

    def runtest(self) -> None:
        outcome = self.outcome()
        comparison = next(c for c in outcome.result.comparisons if c.name == self.comparison)
        failing = [d for d in comparison.unwaived if d.category == self.category]
        if failing:
            raise ParityFailure("\n".join(_describe(divergence) for divergence in failing))


class ParityWaiversItem(_ParityItem):
    def runtest(self) -> None:
        expired = self.outcome().result.expired_waivers
        if expired:
            raise ParityFailure(
                "\n".join(
                    f"waiver {note.selector} (owner {note.owner}) expired on {note.expires}: {note.reason} — "
                    "renew it with a new date or remove it"
                    for note in expired
                )
            )


def _describe(divergence: Any) -> str:
    lines = [
        f"{divergence.severity.upper()} {divergence.kind} {divergence.path} [{divergence.id}]",
        f"  left:  {divergence.left!r}",
        f"  right: {divergence.right!r}",
    ]
    if divergence.rule:
        lines.append(f"  rule:  {divergence.rule}")
    if divergence.hint:
        lines.append(f"  hint:  {divergence.hint}")
    return "\n".join(lines)


def _path_option(config: pytest.Config, name: str) -> Path | None:
    value = config.getoption(name)
    return Path(value) if value else None
