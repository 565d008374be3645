"""The failures that are part of parity's interface, and the exit code each one maps to.

Every expected failure is raised as one of these and turned into exactly one line on stderr by the CLI
(never a traceback): bad input names the file and field, infrastructure failures say what to do next.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_DIVERGENCES = 1
EXIT_BAD_INPUT = 2
EXIT_INFRASTRUCTURE = 3


class ParityError(Exception):
    """Base class of expected failures. `exit_code` is what the `parity` command exits with."""

    exit_code = EXIT_INFRASTRUCTURE

    def one_line(self) -> str:
        return " ".join(str(self).split())


class BadInput(ParityError):
    """The user gave us something wrong: a config, spec, snapshot or a request over an API limit."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, source: str | Path | None, field: str | None, problem: str):
        self.source = str(source) if source is not None else None
        self.field = field
        self.problem = problem
        where = ": ".join(part for part in (self.source, self.field) if part)
        super().__init__(f"{where}: {problem}" if where else problem)


class InfrastructureError(ParityError):
    """Something outside the user's input failed: engine unreachable, image missing, probe crashed.

    `remedy` tells the user what to do next; `details` (for example a container's last log lines) is
    printed after the one-line message when present.
    """

    exit_code = EXIT_INFRASTRUCTURE

    def __init__(self, problem: str, remedy: str, details: str = ""):
        self.problem = problem
        self.remedy = remedy
        self.details = details
        super().__init__(f"{problem} — {remedy}")
