"""ONNX export matches PyTorch for the published and random architectures."""

from __future__ import annotations

import random

import pytest
import torch

from segnas.export import export_and_check
from segnas.model import build_model
from segnas.published import resolve_genotype
from segnas.space import DEFAULT_SPACE

RANDOM = [DEFAULT_SPACE.sample(random.Random(seed)) for seed in range(3)]
GENOTYPES = [resolve_genotype("arch0"), resolve_genotype("arch1"), *RANDOM]


@pytest.mark.parametrize("genotype", GENOTYPES, ids=lambda g: g.hash)
def test_onnx_outputs_match_pytorch(genotype, tmp_path):
    torch.set_num_threads(1)
    model = build_model(genotype, num_classes=11, seed=1).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    check = export_and_check(model, tmp_path / "model.onnx", (64, 96), tolerance=1e-4)
    print(f"{genotype.hash}: ONNX max |onnxruntime - torch| = {check.max_abs_diff:.3e}")
    assert check.path.stat().st_size > 10_000
    assert check.ok, f"max abs diff {check.max_abs_diff}"
