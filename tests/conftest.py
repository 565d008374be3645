"""Shared fixtures. Docker-backed tests use the `docker` marker and the fixtures below.

When PARITY_REQUIRE_DOCKER=1 (set by .ci/run), a missing daemon or base image fails those tests
instead of skipping them, so CI can never pass with the container tests silently skipped.
"""

from __future__ import annotations

import os

# The testcontainers reaper image cannot be pulled here; tests clean up after themselves.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

import pytest

REQUIRE_DOCKER = os.environ.get("PARITY_REQUIRE_DOCKER") == "1"


def _unavailable(reason: str):
    if REQUIRE_DOCKER:
        pytest.fail(f"Docker-backed test cannot run (PARITY_REQUIRE_DOCKER=1): {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client():
    from conformance.dockerhost import connect
    from conformance.errors import ParityError

    try:
        client = connect()
    except ParityError as exc:
        _unavailable(exc.one_line())
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The offline Debian base image, built with debootstrap on first use (then reused)."""
    from conformance.baseimage import ensure_base_image
    from conformance.errors import ParityError

    try:
        return ensure_base_image()
    except ParityError as exc:
        _unavailable(exc.one_line())


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "docker_client" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("docker"):
            item.add_marker(pytest.mark.docker)


_skipped_docker_tests: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and "docker" in report.keywords:
        _skipped_docker_tests.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if REQUIRE_DOCKER and _skipped_docker_tests:
        print(f"\nPARITY_REQUIRE_DOCKER=1 but Docker-backed tests were skipped: {_skipped_docker_tests}")
        session.exitstatus = 1
