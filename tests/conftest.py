"""Fixtures shared by several test modules."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SLURM_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "slurm-local.sh"


def slurm_up() -> bool:
    """Whether a SLURM cluster answers ``sinfo`` with a partition that is up."""
    if shutil.which("sinfo") is None:
        return False
    probe = subprocess.run(["sinfo", "-h", "-o", "%a"], capture_output=True, text=True)
    return probe.returncode == 0 and "up" in probe.stdout


@pytest.fixture(scope="session")
def slurm_cluster():
    """The single-node cluster of ../shared/tools/slurm-local.sh: used as it is when one is
    running, else started here (root only) and stopped at the end of the session."""
    if slurm_up():
        yield
        return
    if not SLURM_TOOL.is_file() or os.geteuid() != 0:
        pytest.skip(f"no SLURM cluster and {SLURM_TOOL} cannot start one (needs root)")
    subprocess.run(["bash", str(SLURM_TOOL), "start"], check=True, timeout=900)
    try:
        yield
    finally:
        subprocess.run(["bash", str(SLURM_TOOL), "stop"], check=False, timeout=120)
