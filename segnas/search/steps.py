"""Rounds of the search as three resumable steps over files under the search directory.

Round ``r``: ``sample`` writes B genotypes proposed by the strategy as it stands after round
``r - 1`` (the controller as updated, uniform draws, or evolution's population); ``evaluate``
scores one of them; ``update`` feeds the B results to the strategy (PPO for the controller,
the population for evolution) and saves its state in the round checkpoint. Each step reads
and writes files atomically, so the local pool (``search.runner``) and a Snakemake/SLURM
fan-out run the very same computations, and a killed search resumes from its last completed
evaluation. Every random choice derives from (seed, round, index), never from the worker
count or the completion order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from ..errors import ArtifactError, ConfigError
from ..io import write_json
from ..seeds import derive_seed
from ..space import DEFAULT_SPACE, Genotype, SearchSpace
from ..trial.jobs import TrialJob, check_stamp, read_stamped, run_trial_to_file
from ..trial.recipe import TrialResult
from .config import SearchConfig
from .controller import Controller, read_checkpoint, save_controller
from .layout import SearchLayout
from .log import Record, write_outputs
from .ppo import PPOTrainer
from .strategies import evolution_proposal, evolved_population, random_proposal

# What a step says when a file of the search carries another params hash.
STALE = (
    "rerun the local search (it continues an extended search and moves a search made with "
    "other params aside)"
)


def _check_position(config: SearchConfig, round_index: int, index: int | None = None) -> None:
    """Refuse a round (or an index within it) outside the configured search."""
    if not 0 <= round_index < config.rounds:
        raise ConfigError(
            f"round {round_index} is outside the search: search.rounds is {config.rounds} "
            f"(rounds 0..{config.rounds - 1})"
        )
    if index is not None and not 0 <= index < config.archs_per_round:
        raise ConfigError(
            f"index {index} is outside round {round_index}: search.archs_per_round is "
            f"{config.archs_per_round} (indices 0..{config.archs_per_round - 1})"
        )


def _new_trainer(config: SearchConfig, space: SearchSpace) -> PPOTrainer:
    controller = Controller(
        space,
        config.controller.hidden_size,
        config.controller.num_layers,
        config.controller.init_range,
        seed=derive_seed(config.seed, "controller"),
    )
    return PPOTrainer(controller, config.ppo)


def load_trainer(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    after_round: int,
    space: SearchSpace = DEFAULT_SPACE,
) -> PPOTrainer:
    """The controller and PPO state after ``after_round`` (-1: freshly initialised)."""
    trainer = _new_trainer(config, space)
    if after_round < 0:
        return trainer
    path = layout.checkpoint(after_round)
    payload = read_checkpoint(path)
    check_stamp(path, payload, params_hash, STALE)
    trainer.controller.load_state_dict(payload["state_dict"])
    trainer.load_state_dict(payload["ppo"])
    return trainer


def load_population(layout: SearchLayout, params_hash: str, after_round: int) -> list[dict]:
    """Evolution's population after ``after_round`` (empty before the first round)."""
    if after_round < 0:
        return []
    path = layout.checkpoint(after_round)
    payload = read_checkpoint(path)
    check_stamp(path, payload, params_hash, STALE)
    return list(payload.get("population", []))


def _controller_step(fn: Callable[[], object]) -> object:
    """Run controller work single-threaded and deterministic (same bits in any process)."""
    threads = torch.get_num_threads()
    mode = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(mode)


def sample_round(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    round_index: int,
    space: SearchSpace = DEFAULT_SPACE,
) -> list[dict]:
    """Write (or reuse) ``samples.json`` of ``round_index``: genotypes and log-probabilities."""
    _check_position(config, round_index)
    path = layout.samples(round_index)
    if path.is_file():
        return read_stamped(path, params_hash, STALE)["samples"]
    if config.strategy == "controller":
        trainer = load_trainer(layout, config, params_hash, round_index - 1, space)

        def draw() -> list[dict]:
            samples = []
            for index in range(config.archs_per_round):
                generator = torch.Generator().manual_seed(
                    derive_seed(config.seed, "sample", round_index, index)
                )
                genotype, log_prob = trainer.controller.sample(generator)
                samples.append({"index": index, **genotype.to_record(), "log_prob": log_prob})
            return samples

        samples = _controller_step(draw)
    else:
        samples = [
            {"index": index, **genotype.to_record(), "log_prob": 0.0}
            for index, genotype in enumerate(
                _proposals(layout, config, params_hash, round_index, space)
            )
        ]
    write_json(path, {"params_hash": params_hash, "round": round_index, "samples": samples})
    return samples


def _proposals(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    round_index: int,
    space: SearchSpace,
) -> list[Genotype]:
    """Round ``round_index``'s genotypes from the random or the evolution strategy."""
    indices = range(config.archs_per_round)
    if config.strategy == "random":
        return [random_proposal(space, config.seed, round_index, i) for i in indices]
    population = load_population(layout, params_hash, round_index - 1)
    return [
        evolution_proposal(population, config.evolution, space, config.seed, round_index, i)
        for i in indices
    ]


def run_trial_index(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    round_index: int,
    index: int,
    evaluate: Callable[[Genotype, int], TrialResult],
    space: SearchSpace = DEFAULT_SPACE,
) -> TrialResult:
    """Evaluate sample ``index`` of ``round_index`` and write its result file (or reuse it)."""
    _check_position(config, round_index, index)

    def locate() -> tuple[Genotype, int]:
        samples_path = layout.samples(round_index)
        samples = read_stamped(samples_path, params_hash, STALE)["samples"]
        if not 0 <= index < len(samples):
            raise ConfigError(f"{samples_path} has no sample {index}")
        genotype = space.from_record(samples[index], f"{samples_path} sample {index}")
        return genotype, derive_seed(config.seed, "eval", round_index, index)

    return run_trial_to_file(
        layout.evaluation(round_index, index),
        params_hash,
        STALE,
        locate,
        evaluate,
        {"round": round_index, "index": index},
    )


def trial_job(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    round_index: int,
    index: int,
    space: SearchSpace = DEFAULT_SPACE,
) -> TrialJob:
    """Sample ``index`` of ``round_index`` as a job for ``segnas.trial.jobs.TrialPool`` (the
    evaluator recipe ``search``)."""
    step = functools.partial(
        run_trial_index, layout, config, params_hash, round_index, index, space=space
    )
    where = f"round {round_index} architecture {index} ({layout.evaluation(round_index, index)})"
    return TrialJob(step, "search", where)


def _read_round(
    layout: SearchLayout, params_hash: str, round_index: int, space: SearchSpace
) -> list[tuple[Genotype, float, TrialResult]]:
    samples_path = layout.samples(round_index)
    samples = read_stamped(samples_path, params_hash, STALE)
    out = []
    for sample in samples["samples"]:
        path = layout.evaluation(round_index, sample["index"])
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; evaluate round {round_index} first")
        payload = read_stamped(path, params_hash, STALE)
        genotype = space.from_record(sample, f"{samples_path} sample {sample['index']}")
        out.append((genotype, float(sample["log_prob"]), TrialResult.from_dict(payload["result"])))
    return out


def update_round(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    round_index: int,
    space: SearchSpace = DEFAULT_SPACE,
) -> dict:
    """Feed round ``round_index``'s results to PPO (in index order) and save the controller."""
    _check_position(config, round_index)
    path = layout.checkpoint(round_index)
    if path.is_file():
        payload = read_checkpoint(path)
        check_stamp(path, payload, params_hash, STALE)
        return payload["stats"]
    results = _read_round(layout, params_hash, round_index, space)
    trainer = load_trainer(layout, config, params_hash, round_index - 1, space)
    extra: dict = {}
    if config.strategy == "controller":

        def step() -> dict:
            for genotype, log_prob, result in results:
                trainer.add(genotype, result.reward, log_prob)
            return trainer.step()

        stats = _controller_step(step)
    else:  # the controller stays as initialised: the round checkpoint keeps the file contract
        stats = {}
        if config.strategy == "evolution":
            extra["population"] = evolved_population(
                load_population(layout, params_hash, round_index - 1),
                [(genotype, result.reward) for genotype, _, result in results],
                round_index * config.archs_per_round,
                config.evolution,
            )
    save_controller(
        path,
        trainer.controller,
        params_hash,
        {"round": round_index, "ppo": trainer.state_dict(), "stats": stats, **extra},
    )
    return stats


def collect_records(
    layout: SearchLayout, config: SearchConfig, params_hash: str, space: SearchSpace
) -> list[Record]:
    """Every evaluated architecture of the finished search."""
    records = []
    for round_index in range(config.rounds):
        results = _read_round(layout, params_hash, round_index, space)
        records += [Record(round_index, index, r) for index, (_, _, r) in enumerate(results)]
    return records


def round_stats(layout: SearchLayout, config: SearchConfig, params_hash: str) -> list[dict]:
    """PPO's statistics of every round's update, from the round checkpoints."""
    stats = []
    for round_index in range(config.rounds):
        path = layout.checkpoint(round_index)
        payload = read_checkpoint(path)
        check_stamp(path, payload, params_hash, STALE)
        stats.append(payload["stats"])
    return stats


def assemble(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    space: SearchSpace = DEFAULT_SPACE,
    run_provenance: dict | None = None,
) -> list[Record]:
    """Write ``archs.csv``, ``timings.csv``, ``controller.csv``, ``top.json``,
    ``metrics.json`` (with ``run_provenance``) and ``final.pt``."""
    last = layout.checkpoint(config.rounds - 1)
    if not last.is_file():
        raise ArtifactError(f"{last} is missing; the search has not finished all its rounds")
    records = collect_records(layout, config, params_hash, space)
    stats = round_stats(layout, config, params_hash)
    write_outputs(layout.root, records, stats, config.top_k, run_provenance)
    controller = load_trainer(layout, config, params_hash, config.rounds - 1, space).controller
    save_controller(layout.final_checkpoint, controller, params_hash, {"round": config.rounds - 1})
    return records
