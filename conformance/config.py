"""`parity.yaml`: targets to run, what the probe looks at, and the parity contract between targets.

The file is validated with pydantic (unknown keys are errors, so a typo never silently disables a rule);
`parity schema config` prints the JSON Schema editors use. Any problem raises `BadInput` naming the file
and the field, which the CLI turns into exit code 2.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from conformance.errors import BadInput

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
Platform = Literal["kubernetes", "sagemaker"]
Engine = Literal["docker", "kubernetes", "aws"]
# One category per probe collector, plus "probe" for the probe's own bookkeeping (errors, truncation).
Category = Literal[
    "env",
    "identity",
    "credentials",
    "metrics",
    "hyperparameters",
    "spark",
    "filesystem",
    "network",
    "runtime",
    "resources",
    "process",
    "context",
    "probe",
]
CATEGORIES: tuple[str, ...] = get_args(Category)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Path patterns address snapshot leaves, e.g. ``env.vars.TRAINING_JOB_*`` or
# ``filesystem.paths['/opt/ml/*'].mode``; see conformance.paths for the syntax and matching rules.
PathPattern = Annotated[str, Field(min_length=1, description="snapshot path glob, e.g. env.vars.AWS_*")]


class ProbeScope(Strict):
    """What the probe looks at beyond its defaults. Passed to the probe as its JSON config."""

    paths: list[str] = Field(default_factory=list, description="extra filesystem paths to describe")
    secret_files: list[str] = Field(
        default_factory=list, description="globs of files whose content is secret (hashed, never shown)"
    )
    hyperparameter_paths: list[str] = Field(
        default_factory=list, description="JSON/YAML files user code reads hyperparameters from"
    )
    resolve: list[str] = Field(default_factory=list, description="host names user code resolves")
    send_test_metric: bool = Field(True, description="send one UDP StatsD metric to the configured host")
    deadline_seconds: float = Field(10.0, gt=0, le=600)
    max_depth: int = Field(3, ge=0, le=32, description="directory depth walked under each declared path")
    max_files: int = Field(2000, ge=1)


class TargetConfig(Strict):
    """One execution context the probe runs in: a platform spec on an engine."""

    platform: Platform
    engine: Engine = "docker"
    image: str = Field(min_length=1)
    spec: str = Field(
        min_length=1, description="Pod manifest or SageMaker job request, relative to parity.yaml"
    )
    resources: list[str] = Field(
        default_factory=list,
        description="kubernetes: ConfigMap/Secret/ServiceAccount/Service manifests beside the pod",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="platform-adapter options")
    engine_options: dict[str, Any] = Field(
        default_factory=dict,
        description="engine options (e.g. the namespace or S3 staging prefix of a real platform)",
    )
    timeout_seconds: float = Field(300.0, gt=0)


class Comparison(Strict):
    left: str
    right: str


class NormalizeRule(Strict):
    """Mask a volatile value with a named placeholder, so it compares equal across runs."""

    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    pattern: str = Field(description="regular expression matched against string values")
    paths: list[PathPattern] = Field(default_factory=lambda: ["*"], description="where the rule applies")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class Equivalence(Strict):
    """The value at `left` on the left target must equal the value at `right` on the right target."""

    left: PathPattern
    right: PathPattern
    severity: Severity | None = None


class SeverityRules(Strict):
    categories: dict[Category, Severity] = Field(default_factory=dict)
    paths: dict[PathPattern, Severity] = Field(default_factory=dict)


class ContractConfig(Strict):
    """Rules on snapshot paths. Extends the built-in Kubernetes → SageMaker contract unless told not to."""

    extends: Literal["default", "none"] = "default"
    ignore: list[PathPattern] = Field(default_factory=list)
    present: list[PathPattern] = Field(
        default_factory=list, description="must exist on both sides; the value may differ"
    )
    platform_only: dict[Platform, list[PathPattern]] = Field(
        default_factory=dict, description="may exist on the named platform's side only"
    )
    equivalent: list[Equivalence] = Field(default_factory=list)
    sets: list[PathPattern] = Field(default_factory=list, description="lists compared as sets")
    quantities: list[PathPattern] = Field(
        default_factory=list, description="values compared as byte quantities: '64M' = '65536k' = 67108864"
    )
    severity: SeverityRules = Field(default_factory=SeverityRules)
    normalize: list[NormalizeRule] = Field(default_factory=list)


class Waiver(Strict):
    """An accepted divergence: reported, but it does not fail the run until it expires."""

    id: str | None = Field(None, description="divergence id from a report")
    path: PathPattern | None = Field(None, description="or a snapshot path glob")
    comparison: str | None = Field(None, description="limit to one comparison, e.g. 'k8s~sagemaker'")
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: dt.date | None = None

    @model_validator(mode="after")
    def _has_selector(self) -> Waiver:
        if not (self.id or self.path):
            raise ValueError("a waiver needs an 'id' or a 'path'")
        return self


class ParityConfig(Strict):
    version: Literal[1] = 1
    suite: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$", description="baselines/<suite>/<target>.json")
    baselines_dir: str = Field("baselines", description="relative to this file")
    probe: ProbeScope = Field(default_factory=ProbeScope)
    targets: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], TargetConfig] = Field(
        default_factory=dict
    )
    comparisons: list[Comparison] = Field(
        default_factory=list, description="pairs to diff; default: the first target against each other one"
    )
    contract: ContractConfig = Field(default_factory=ContractConfig)
    waivers: list[Waiver] = Field(default_factory=list)

    @model_validator(mode="after")
    def _comparisons_name_targets(self) -> ParityConfig:
        for index, pair in enumerate(self.comparisons):
            for side in ("left", "right"):
                name = getattr(pair, side)
                if name not in self.targets:
                    raise ValueError(
                        f"comparisons.{index}.{side}: unknown target {name!r} "
                        f"(targets: {', '.join(self.targets) or 'none'})"
                    )
        return self

    def resolved_comparisons(self) -> list[Comparison]:
        if self.comparisons:
            return list(self.comparisons)
        names = list(self.targets)
        return [Comparison(left=names[0], right=other) for other in names[1:]]


class LoadedConfig(BaseModel):
    """A validated parity.yaml and where it came from (relative paths in it resolve against `base_dir`)."""

    model_config = ConfigDict(frozen=True)

    path: Path
    config: ParityConfig

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else (self.base_dir / candidate)

    @property
    def baselines_root(self) -> Path:
        return self.resolve(self.config.baselines_dir) / self.config.suite


_FIELD_FIRST = re.compile(r"^([A-Za-z0-9_.\[\]-]+): (.+)$", re.DOTALL)


def describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """The first pydantic error as (dotted field, problem) for a one-line message.

    A model-level validator names the field itself by starting its message with `field.path: `; a bad
    mapping key is reported at the key (`contract.severity.categories.envv`), not at pydantic's `[key]`.
    """
    first = exc.errors()[0]
    location = [str(part) for part in first["loc"]]
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "literal_error":
        message = f"{message} (got {first.get('input')!r})"
    elif first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] == "value_error":
        message = str(first.get("ctx", {}).get("error", message))
    if location and location[-1] == "[key]":
        location.pop()
        message = f"not an allowed key: {message}"
    field_first = _FIELD_FIRST.match(message)
    if field_first:
        location.append(field_first.group(1))
        message = field_first.group(2)
    return ".".join(location) or "(top level)", message


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML, except that dates stay text: pydantic parses them per field (so a bad date names its
    field), and specs handed to platforms keep what the user wrote (a SageMaker value must be a string)."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_input_text(path: Path) -> str:
    """A user-supplied file as UTF-8 text; a missing or unreadable file is BadInput naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(path, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(path, None, f"cannot read: {exc}") from None


def load_yaml_file(path: Path) -> Any:
    text = read_input_text(path)
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInput(path, where, f"invalid YAML: {problem}") from None


def load_config(path: str | Path) -> LoadedConfig:
    path = Path(path)
    data = load_yaml_file(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadInput(path, None, "expected a mapping at the top level")
    try:
        config = ParityConfig.model_validate(data)
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise BadInput(path, field, message) from None
    return LoadedConfig(path=path.resolve(), config=config)


def config_json_schema() -> dict[str, Any]:
    return ParityConfig.model_json_schema()
