"""What a SIGKILLed parity leaves behind is removed by the next run on the same host, and nothing else."""

from __future__ import annotations

import subprocess
import sys
import uuid

from conformance.engines.reaper import LABEL_OWNER, LABEL_RUN, owner_id, sweep_orphans


def _dead_owner() -> str:
    """The owner label of a parity process that has exited: a real one, asked for its id before it ends."""
    code = "from conformance.engines.reaper import owner_id; print(owner_id())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _leftovers(docker_client, base_image, owner: str) -> str:
    run_id = f"test-{uuid.uuid4().hex}"
    labels = {LABEL_RUN: run_id, LABEL_OWNER: owner}
    docker_client.volumes.create(name=f"parity-test-{run_id}", labels=labels)
    docker_client.containers.create(base_image, ["true"], network_mode="none", labels=labels)
    return run_id


def _count(docker_client, run_id: str) -> int:
    selector = {"label": f"{LABEL_RUN}={run_id}"}
    return len(docker_client.containers.list(all=True, filters=selector)) + len(
        docker_client.volumes.list(filters=selector)
    )


def test_the_leftovers_of_a_dead_parity_process_are_swept_and_a_live_ones_are_kept(docker_client, base_image):
    dead = _leftovers(docker_client, base_image, _dead_owner())
    live = _leftovers(docker_client, base_image, owner_id())
    other_host = _leftovers(docker_client, base_image, "some-other-host:1:1")
    try:
        assert (_count(docker_client, dead), _count(docker_client, live)) == (2, 2)
        swept = sweep_orphans(docker_client)
        assert dead in swept and live not in swept and other_host not in swept
        assert _count(docker_client, dead) == 0
        assert _count(docker_client, live) == 2 and _count(docker_client, other_host) == 2
    finally:
        from conformance.engines.reaper import remove_run_resources

        for run_id in (dead, live, other_host):
            remove_run_resources(docker_client, run_id)
