import os
import subprocess
import sys

import pytest

from segnas.device import KEEP_FREED_MEMORY_ENV, keep_freed_memory

glibc_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="keep_freed_memory tunes glibc's malloc (Linux only)",
)

# Frees a 256 MB tensor and reports whether its pages stayed resident.
_RESIDENT_AFTER_FREE = """
import os, sys, torch
from segnas.device import keep_freed_memory
kept = keep_freed_memory()
def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
before = resident_mb()
big = torch.ones(64 * 2**20)
del big
print(kept, resident_mb() - before > 200)
"""

# Three seeded SGD steps of a small network; prints a digest of the trained weights.
_TRAINED_DIGEST = """
import torch
from segnas.device import keep_freed_memory
from segnas.loss import segmentation_loss
from segnas.model import build_model
from segnas.published import resolve_genotype
from segnas.stem import stem_state_hash
keep_freed_memory()
torch.set_num_threads(1)
model = build_model(resolve_genotype("arch0"), num_classes=5, seed=0, agg_width=16)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
generator = torch.Generator().manual_seed(0)
for _ in range(3):
    images = torch.randn(2, 3, 64, 64, generator=generator)
    labels = torch.randint(0, 5, (2, 64, 64), generator=generator)
    optimizer.zero_grad()
    segmentation_loss(model(images), labels).backward()
    optimizer.step()
print(stem_state_hash(model))
"""


def _run(script: str, keep: bool) -> str:
    env = {**os.environ, KEEP_FREED_MEMORY_ENV: "1" if keep else "0"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_opt_out_leaves_the_allocator_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEEP_FREED_MEMORY_ENV, "0")
    assert keep_freed_memory() is False


@glibc_linux
def test_freed_memory_stays_with_the_process_only_when_kept() -> None:
    assert _run(_RESIDENT_AFTER_FREE, keep=True) == "True True"
    assert _run(_RESIDENT_AFTER_FREE, keep=False) == "False False"


@glibc_linux
def test_keeping_freed_memory_leaves_training_bitwise_unchanged() -> None:
    assert _run(_TRAINED_DIGEST, keep=True) == _run(_TRAINED_DIGEST, keep=False)
