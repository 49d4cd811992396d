"""The search reward: train a sampled architecture briefly and score it on meta-val.

Phase 1 trains the decoder alone on the cached stem outputs (Adam, ``lr_decoder_phase1``);
phase 2 trains end to end on meta-train images with random scale/crop/flip (Adam, decoder
``lr_decoder``, stem ``lr_stem``). Meta-val is scored after each phase; the reward is the
geometric mean of mIoU, mean accuracy and frequency-weighted IoU after the last phase run.
An evaluation that diverges, raises or runs out of memory gets reward 0 with its status and
reason; so does one whose worker process dies twice (``worker_died``, see ``pool``); the search
goes on.
"""

from __future__ import annotations

import time

import torch

from ..complexity import count_flops, count_params, measure_latency
from ..errors import SegnasError
from ..metrics import reward_from_scores
from ..model import SegmentationNet, build_model
from ..seeds import derive_seed
from ..space import DEFAULT_SPACE, Genotype, SearchSpace
from .data import TrialData
from .phases import Diverged, deterministic, train_phase1, train_phase2, validate
from .recipe import (
    STATUS_DIVERGED,
    STATUS_ERROR,
    STATUS_OOM,
    STATUS_STOPPED,
    TrialResult,
    TrialSetup,
)


def _failure_status(exc: BaseException) -> str:
    if isinstance(exc, Diverged):
        return STATUS_DIVERGED
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return STATUS_OOM
    if "out of memory" in str(exc).lower():
        return STATUS_OOM
    return STATUS_ERROR


def build_search_network(
    genotype: Genotype,
    setup: TrialSetup,
    data: TrialData,
    seed: int,
    space: SearchSpace = DEFAULT_SPACE,
) -> SegmentationNet:
    """The search-time network of ``genotype``: seeded decoder, stem weights of the cache."""
    model = build_model(
        genotype,
        data.num_classes,
        setup.agg_width,
        setup.sep_conv_units,
        space=space,
        seed=derive_seed(seed, "init"),
    )
    model.stem.load_state_dict(data.stem_state)
    return model


def estimated_cost(
    genotype: Genotype, setup: TrialSetup, space: SearchSpace = DEFAULT_SPACE
) -> int:
    """A cheap estimate of what evaluating ``genotype`` costs, so that a pool starts the costly
    evaluations first: the FLOPs of its search-time network on a 48x64 input (rank correlation
    0.84 with the phase-1 seconds of the 120 architectures of the CamVid search)."""
    model = build_model(genotype, 2, setup.agg_width, setup.sep_conv_units, space=space, seed=0)
    return count_flops(model, (48, 64))


def run_trial(
    genotype: Genotype,
    setup: TrialSetup,
    data: TrialData,
    seed: int,
    device: torch.device | str = "cpu",
    space: SearchSpace = DEFAULT_SPACE,
) -> TrialResult:
    """Train ``genotype`` for the two phases and score it; every random choice from ``seed``.

    Errors in training (NaN/inf loss, out of memory, exceptions) are recorded in the result
    with reward 0; user errors (:class:`SegnasError`) propagate.
    """
    device = torch.device(device)
    space.validate(genotype)
    result = TrialResult(genotype.to_text(), genotype.hash)
    result.downsampling_factor = genotype.downsampling_factor
    seconds = result.seconds
    start = time.perf_counter()
    cpu_start = time.process_time()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        seconds[name] = seconds.get(name, 0.0) + now - since
        return now

    with deterministic(setup.threads, device):
        mark = start
        try:
            model = build_search_network(genotype, setup, data, seed, space)
            result.params = count_params(model)
            result.flops = count_flops(model, setup.input_size)
            model = model.to(device)
            if setup.channels_last:
                model = model.to(memory_format=torch.channels_last)
            if setup.measure_latency:
                timing = measure_latency(model, setup.input_size, threads=setup.threads)
                result.latency_ms = timing.median_ms
            mark = lap("setup", mark)
            scores = None
            if setup.phase1_epochs:
                train_phase1(model, data, setup, derive_seed(seed, "phase1"), device)
                mark = lap("phase1", mark)
                scores = validate(model, data, setup, device)
                mark = lap("validation", mark)
                result.reward_phase1 = reward_from_scores(scores)
                result.scores_phase1 = {k: float(scores[k]) for k in ("miou", "mean_acc", "fwiou")}
            stop_early = (
                setup.early_stop_reward is not None
                and setup.phase1_epochs
                and result.reward_phase1 < setup.early_stop_reward
            )
            if stop_early:
                result.status = STATUS_STOPPED
                result.reason = (
                    f"phase-1 reward {result.reward_phase1:.4f} < early_stop_reward "
                    f"{setup.early_stop_reward}"
                )
            elif setup.phase2_epochs:
                train_phase2(model, data, setup, derive_seed(seed, "phase2"), device)
                mark = lap("phase2", mark)
                scores = validate(model, data, setup, device)
                mark = lap("validation", mark)
            result.miou = float(scores["miou"])
            result.mean_acc = float(scores["mean_acc"])
            result.fwiou = float(scores["fwiou"])
            result.reward = reward_from_scores(scores)
            if setup.latency_weight:
                ratio = result.latency_ms / setup.latency_target_ms
                result.reward *= ratio**setup.latency_weight
        except SegnasError:
            raise
        except Exception as exc:
            result.status = _failure_status(exc)
            result.reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
            result.reward = 0.0
    seconds["total"] = time.perf_counter() - start
    seconds["cpu"] = time.process_time() - cpu_start
    return result


def target_similarity_result(
    genotype: Genotype, target: Genotype, space: SearchSpace = DEFAULT_SPACE
) -> TrialResult:
    """A cheap synthetic reward without training: the share of decisions equal to ``target``'s.

    For checking the search machinery (controller, PPO, rounds, resumption) in seconds.
    """
    from ..search.controller import genotype_to_choices

    start = time.perf_counter()
    mine, theirs = genotype_to_choices(genotype, space), genotype_to_choices(target, space)
    share = sum(a == b for a, b in zip(mine, theirs, strict=True)) / len(mine)
    result = TrialResult(genotype.to_text(), genotype.hash, reward=share)
    result.downsampling_factor = genotype.downsampling_factor
    result.seconds["total"] = time.perf_counter() - start
    return result
