"""The SageMaker platform adapter: a Create*Job request, exactly as boto3 takes it → a LaunchPlan.

`build_plan(target_name, target, loaded)` reads the target's spec (YAML or JSON: the keyword arguments of
`create_training_job(**request)` or `create_processing_job(**request)`), enforces SageMaker's API limits
on the whole request before anything runs (limits.py), and reproduces what the job's container observes
(training.py, processing.py, opt_ml.py): its command, the /opt/ml tree, the environment the platform
sets and nothing else. Every reproduced behaviour names its source in
/work/shared/reference/sagemaker-contract.md.

The plan also carries the request as the real platform receives it (`LaunchPlan.spec`: the validated
request with the target's image in it), which `engine: aws` submits with the probe injected. For that
engine the adapter reads no input data: SageMaker reads the channels itself.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from conformance.config import LoadedConfig, TargetConfig, load_yaml_file
from conformance.errors import BadInput
from conformance.plan import LaunchPlan
from conformance.platforms.sagemaker import processing, training
from conformance.platforms.sagemaker.job import JobRequest
from conformance.platforms.sagemaker.limits import validate_request
from conformance.platforms.sagemaker.options import parse_options

JOB_NAME_KEYS = {"training": "TrainingJobName", "processing": "ProcessingJobName"}
BUILDERS = {"training": training.build, "processing": processing.build}
# Where each request names its container image: (section, key).
IMAGE_FIELDS = {
    "training": ("AlgorithmSpecification", "TrainingImage"),
    "processing": ("AppSpecification", "ImageUri"),
}


def build_plan(target_name: str, target: TargetConfig, loaded: LoadedConfig) -> LaunchPlan:
    options = parse_options(loaded.path, target_name, target.options)
    spec_path = loaded.resolve(target.spec)
    request = load_request(spec_path)
    api = options.api or request_api(request, spec_path, f"targets.{target_name}.options.api")
    validate_request(api, request, spec_path)
    job = JobRequest(
        target_name=target_name,
        image=target.image,
        request=request,
        options=options,
        spec_path=spec_path,
        config_path=loaded.path,
        reads_inputs=target.engine == "docker",
    )
    plan = BUILDERS[api](job)
    return plan.model_copy(update={"spec": platform_request(api, request, target.image)})


def platform_request(api: str, request: dict[str, Any], image: str) -> dict[str, Any]:
    """The request as the real platform receives it: the user's, with the target's image as its container
    image (the emulation runs the target's image whatever the request names; so does the real job). A
    training request that named a marketplace `AlgorithmName` names the image instead (the two exclude
    each other)."""
    section, key = IMAGE_FIELDS[api]
    submitted = copy.deepcopy(request)
    submitted[section].pop("AlgorithmName", None)
    submitted[section][key] = image
    return submitted


def load_request(path: Path) -> dict[str, Any]:
    """The request mapping from a .json file (parsed as JSON) or any other file (parsed as YAML)."""
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BadInput(path, None, "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(path, None, f"cannot read: {exc}") from None
        except json.JSONDecodeError as exc:
            raise BadInput(
                path, f"line {exc.lineno}, column {exc.colno}", f"invalid JSON: {exc.msg}"
            ) from None
    else:
        data = load_yaml_file(path)
    if not isinstance(data, dict):
        raise BadInput(path, None, "expected a CreateTrainingJob or CreateProcessingJob request (a mapping)")
    return data


def request_api(request: dict[str, Any], spec_path: Path, option_field: str) -> str:
    """Which API the request is for, from its job-name key."""
    found = [api for api, key in JOB_NAME_KEYS.items() if key in request]
    if len(found) == 1:
        return found[0]
    problem = (
        "has both TrainingJobName and ProcessingJobName"
        if found
        else "has neither TrainingJobName nor ProcessingJobName"
    )
    raise BadInput(spec_path, None, f"the request {problem}; say which API it is with {option_field}")
