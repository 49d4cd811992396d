"""The Dockerfile builds on the local podman base image and its default command runs the
quickstart (opt-in with SEGNAS_TEST_CONTAINER=1; skipped where podman or the base image is
missing; see docs/pipeline.md)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASE = "localhost/python-base:3.11-bookworm"
TAG = "localhost/segnas:test"
CONF = Path("/var/tmp/podman-conf/containers.conf")


def _podman(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if CONF.is_file():
        env.setdefault("CONTAINERS_CONF", str(CONF))
    return subprocess.run(
        ["podman", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def podman_ready():
    if os.environ.get("SEGNAS_TEST_CONTAINER") != "1":
        pytest.skip(
            "container build + quickstart takes ~10 min; run it with SEGNAS_TEST_CONTAINER=1 "
            "pytest tests/test_container.py (docs/pipeline.md)"
        )
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (run ../shared/tools/podman-local-base.sh)")
    if _podman("image", "exists", BASE).returncode != 0:
        pytest.skip(f"base image {BASE} is missing (run ../shared/tools/podman-local-base.sh)")


@pytest.mark.slow
def test_image_builds_and_runs_the_quickstart(podman_ready):
    build = _podman(
        "build", "--format", "docker", "--build-arg", f"BASE={BASE}", "-t", TAG, str(REPO)
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    user = _podman("run", "--rm", TAG, "id", "-u")
    assert user.returncode == 0 and user.stdout.strip() != "0", "the image must not run as root"
    inspect = _podman("image", "inspect", "--format", "{{json .Config.Cmd}}", TAG)
    default_cmd = json.loads(inspect.stdout)
    assert default_cmd[0] == "snakemake", default_cmd
    script = f"{shlex.join(default_cmd)} && test -s report/report.html && echo REPORT-OK"
    run = _podman("run", "--rm", TAG, "bash", "-c", script)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "REPORT-OK" in run.stdout
