"""Rounds of the search as three resumable steps, and a local worker pool that drives them.

Round ``r``: ``sample`` writes B genotypes drawn by the controller as updated after round
``r - 1``; ``evaluate`` scores one of them; ``update`` feeds the B results to PPO and saves
the controller. Each step reads and writes files under the search directory (atomically), so
the local pool and a Snakemake/SLURM fan-out run the very same computations, and a killed
search resumes from its last completed evaluation. Every random choice derives from
(seed, round, index), never from the worker count or the completion order.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TextIO

import torch

from ..errors import ArtifactError, ConfigError
from ..io import read_json, remove_stale_temps_under, sha256_json, write_json
from ..progress import Progress
from ..published import resolve_genotype
from ..space import DEFAULT_SPACE, Genotype, SearchSpace
from .controller import Controller, read_checkpoint, save_controller
from .log import Record, write_outputs
from .pool import WorkerPool
from .ppo import PPOConfig, PPOTrainer
from .reward import (
    EvalData,
    EvalResult,
    EvalSetup,
    derive_seed,
    evaluate_architecture,
    target_similarity_result,
    worker_died_result,
)

OBJECTIVES = ("train", "target")


@dataclass(frozen=True)
class ControllerConfig:
    """Controller architecture knobs (``search.controller``)."""

    hidden_size: int = 100
    num_layers: int = 2
    init_range: float = 0.1


def _from_mapping(cls: type, data: object, where: str) -> object:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")
    return cls(**data)


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides the search's results, plus how to run it (``workers``)."""

    seed: int = 0
    rounds: int = 2
    archs_per_round: int = 2
    objective: str = "train"
    target: str = "arch0"
    top_k: int = 5
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    eval: EvalSetup = field(default_factory=EvalSetup)
    workers: int = 1
    progress_interval: float = 10.0

    RUN_ONLY = ("workers", "progress_interval")

    @classmethod
    def from_params(cls, search: dict, root_seed: int, where: str = "search") -> SearchConfig:
        """Build from the ``search`` params section; ``search.seed: null`` uses the root seed."""
        values = dict(search)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")
        seed = values.pop("seed", None)
        config = cls(
            seed=int(root_seed if seed is None else seed),
            controller=_from_mapping(
                ControllerConfig, values.pop("controller", None), f"{where}.controller"
            ),
            ppo=PPOConfig.from_dict(values.pop("ppo", None) or {}, f"{where}.ppo"),
            eval=EvalSetup.from_dict(values.pop("eval", None) or {}, f"{where}.eval"),
            **values,
        )
        config.check(where)
        return config

    def check(self, where: str = "search") -> None:
        for key in ("rounds", "archs_per_round", "workers", "top_k"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key} must be an int >= 1, got {getattr(self, key)!r}")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"{where}.objective {self.objective!r} is not one of {OBJECTIVES}")
        if self.objective == "target":
            resolve_genotype(self.target)

    def result_fields(self) -> dict:
        """The fields that decide the results (hashed); not the worker count."""
        return {
            "seed": self.seed,
            "rounds": self.rounds,
            "archs_per_round": self.archs_per_round,
            "objective": self.objective,
            "target": self.target if self.objective == "target" else None,
            "controller": self.controller.__dict__,
            "ppo": self.ppo.to_dict(),
            "eval": self.eval.to_dict() if self.objective == "train" else None,
        }

    @property
    def total(self) -> int:
        return self.rounds * self.archs_per_round


class SearchLayout:
    """File names under the search directory."""

    def __init__(self, root: str | Path = "search") -> None:
        self.root = Path(root)

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def rounds_dir(self) -> Path:
        return self.root / "rounds"

    @property
    def controller_dir(self) -> Path:
        return self.root / "controller"

    def samples(self, round_index: int) -> Path:
        return self.rounds_dir / f"r{round_index:05d}" / "samples.json"

    def evaluation(self, round_index: int, index: int) -> Path:
        return self.rounds_dir / f"r{round_index:05d}" / f"e{index:04d}.json"

    def checkpoint(self, round_index: int) -> Path:
        return self.controller_dir / f"round_{round_index:05d}.pt"

    @property
    def final_checkpoint(self) -> Path:
        return self.controller_dir / "final.pt"


def _check_hash(path: Path, payload: dict, params_hash: str) -> None:
    if payload.get("params_hash") != params_hash:
        raise ArtifactError(
            f"{path} was written with params hash {payload.get('params_hash')} but the current "
            f"params hash to {params_hash}; delete the search directory (or let the local "
            "runner restart it) and rerun"
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
    _check_hash(path, payload, params_hash)
    trainer.controller.load_state_dict(payload["state_dict"])
    trainer.load_state_dict(payload["ppo"])
    return trainer


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
    path = layout.samples(round_index)
    if path.is_file():
        payload = read_json(path)
        _check_hash(path, payload, params_hash)
        return payload["samples"]
    trainer = load_trainer(layout, config, params_hash, round_index - 1, space)

    def draw() -> list[dict]:
        samples = []
        for index in range(config.archs_per_round):
            generator = torch.Generator().manual_seed(
                derive_seed(config.seed, "sample", round_index, index)
            )
            genotype, log_prob = trainer.controller.sample(generator)
            samples.append(
                {
                    "index": index,
                    "genotype": genotype.to_list(),
                    "text": genotype.to_text(),
                    "hash": genotype.hash,
                    "log_prob": log_prob,
                }
            )
        return samples

    samples = _controller_step(draw)
    write_json(path, {"params_hash": params_hash, "round": round_index, "samples": samples})
    return samples


@dataclass(frozen=True)
class EvaluatorSpec:
    """A picklable recipe for the reward function (built once per worker process)."""

    objective: str
    setup: EvalSetup
    target: str = "arch0"
    prepared_dir: str = ""
    split_dir: str = "data/split"
    cache_dir: str = "cache/stem"
    stem_weights: str = "none"
    device: str = "cpu"

    def build(self) -> Callable[[Genotype, int], EvalResult]:
        """``evaluate(genotype, seed) -> EvalResult``."""
        if self.objective == "target":
            target = resolve_genotype(self.target)
            return lambda genotype, seed: target_similarity_result(genotype, target)
        data = EvalData.from_paths(
            self.prepared_dir, self.split_dir, self.cache_dir, self.stem_weights
        )
        return lambda genotype, seed: evaluate_architecture(
            genotype, self.setup, data, seed, self.device
        )


def evaluate_index(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    round_index: int,
    index: int,
    evaluate: Callable[[Genotype, int], EvalResult],
    space: SearchSpace = DEFAULT_SPACE,
) -> EvalResult:
    """Evaluate sample ``index`` of ``round_index`` and write its result file (or reuse it)."""
    path = layout.evaluation(round_index, index)
    if path.is_file():
        payload = read_json(path)
        _check_hash(path, payload, params_hash)
        return EvalResult.from_dict(payload["result"])
    samples_path = layout.samples(round_index)
    samples = read_json(samples_path)
    _check_hash(samples_path, samples, params_hash)
    if not 0 <= index < len(samples["samples"]):
        raise ConfigError(f"{samples_path} has no sample {index}")
    genotype = space.from_list(samples["samples"][index]["genotype"])
    result = evaluate(genotype, derive_seed(config.seed, "eval", round_index, index))
    write_json(
        path,
        {
            "params_hash": params_hash,
            "round": round_index,
            "index": index,
            "result": result.to_dict(),
        },
    )
    return result


def _read_round(
    layout: SearchLayout, params_hash: str, round_index: int, space: SearchSpace
) -> list[tuple[Genotype, float, EvalResult]]:
    samples_path = layout.samples(round_index)
    samples = read_json(samples_path)
    _check_hash(samples_path, samples, params_hash)
    out = []
    for sample in samples["samples"]:
        path = layout.evaluation(round_index, sample["index"])
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; evaluate round {round_index} first")
        payload = read_json(path)
        _check_hash(path, payload, params_hash)
        genotype = space.from_list(sample["genotype"])
        out.append((genotype, float(sample["log_prob"]), EvalResult.from_dict(payload["result"])))
    return out


def update_round(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    round_index: int,
    space: SearchSpace = DEFAULT_SPACE,
) -> dict:
    """Feed round ``round_index``'s results to PPO (in index order) and save the controller."""
    path = layout.checkpoint(round_index)
    if path.is_file():
        payload = read_checkpoint(path)
        _check_hash(path, payload, params_hash)
        return payload["stats"]
    results = _read_round(layout, params_hash, round_index, space)
    trainer = load_trainer(layout, config, params_hash, round_index - 1, space)

    def step() -> dict:
        for genotype, log_prob, result in results:
            trainer.add(genotype, result.reward, log_prob)
        return trainer.step()

    stats = _controller_step(step)
    save_controller(
        path,
        trainer.controller,
        params_hash,
        {"round": round_index, "ppo": trainer.state_dict(), "stats": stats},
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


def assemble(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    space: SearchSpace = DEFAULT_SPACE,
) -> list[Record]:
    """Write ``archs.csv``, ``timings.csv``, ``top.json``, ``metrics.json`` and ``final.pt``."""
    last = layout.checkpoint(config.rounds - 1)
    if not last.is_file():
        raise ArtifactError(f"{last} is missing; the search has not finished all its rounds")
    records = collect_records(layout, config, params_hash, space)
    write_outputs(layout.root, records, config.top_k)
    payload = read_checkpoint(last)
    _check_hash(last, payload, params_hash)
    controller = load_trainer(layout, config, params_hash, config.rounds - 1, space).controller
    save_controller(layout.final_checkpoint, controller, params_hash, {"round": config.rounds - 1})
    return records


def prepare_directory(layout: SearchLayout, params_hash: str, stream: TextIO) -> None:
    """Record the params hash; a partial search made with other params is started over."""
    if layout.state.is_file():
        found = {read_json(layout.state).get("params_hash")}
    else:  # e.g. written by the Snakemake fan-out, which keeps no state file
        found = {read_json(p).get("params_hash") for p in layout.rounds_dir.glob("*/samples.json")}
    if found == {params_hash}:
        write_json(layout.state, {"params_hash": params_hash})
        return
    if found:
        stream.write(
            f"[search] {layout.root} holds a search with other params "
            f"({', '.join(sorted(map(str, found)))} != {params_hash}); starting over\n"
        )
    for stale in (layout.rounds_dir, layout.controller_dir):
        if stale.exists():
            shutil.rmtree(stale)
    write_json(layout.state, {"params_hash": params_hash})


_WORKER: dict = {}


def _worker_init(worker_index: int, spec: EvaluatorSpec) -> None:
    """Remember the evaluator recipe; worker k gets GPU k (mod the count) on ``cuda``. The
    evaluator is built at the first evaluation, so that its errors reach the caller."""
    if spec.device == "cuda" and torch.cuda.device_count() > 1:
        device = f"cuda:{worker_index % torch.cuda.device_count()}"
        spec = EvaluatorSpec(**{**spec.__dict__, "device": device})
    _WORKER.clear()
    _WORKER["spec"] = spec


def _worker_evaluate(
    root: str, config: SearchConfig, params_hash: str, round_index: int, index: int
) -> EvalResult:
    if "evaluate" not in _WORKER:
        _WORKER["evaluate"] = _WORKER["spec"].build()
    return evaluate_index(
        SearchLayout(root), config, params_hash, round_index, index, _WORKER["evaluate"]
    )


def _evaluate_in_pool(
    pool: WorkerPool,
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    round_index: int,
    indices: list[int],
    on_result: Callable[[EvalResult], None],
    stream: TextIO,
    space: SearchSpace,
) -> None:
    """Evaluate ``indices`` of ``round_index`` in ``pool``; an evaluation whose worker process
    dies is retried once, and recorded as ``worker_died`` (reward 0) if it dies again."""

    def where(index: int) -> str:
        return f"round {round_index} architecture {index} ({layout.evaluation(round_index, index)})"

    def retry(index: int) -> None:
        stream.write(f"[search] the worker evaluating {where(index)} died; retrying it once\n")

    def died(index: int, reason: str) -> None:
        stream.write(
            f"[search] the worker evaluating {where(index)} died again; recorded as worker_died "
            "with reward 0\n"
        )
        result = evaluate_index(
            layout,
            config,
            params_hash,
            round_index,
            index,
            lambda genotype, seed: worker_died_result(genotype, reason),
            space,
        )
        on_result(result)

    jobs = {i: (str(layout.root), config, params_hash, round_index, i) for i in indices}
    pool.run(_worker_evaluate, jobs, lambda _, result: on_result(result), died, retry)


def run_search(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    spec: EvaluatorSpec,
    stream: TextIO | None = None,
    space: SearchSpace = DEFAULT_SPACE,
) -> list[Record]:
    """The whole search on this machine with ``config.workers`` processes; resumable. A worker
    process that dies is replaced and its evaluation retried once (then ``worker_died``)."""
    stream = stream or sys.stderr
    prepare_directory(layout, params_hash, stream)
    remove_stale_temps_under(layout.root)
    done = sum(
        layout.evaluation(r, i).is_file()
        for r in range(config.rounds)
        for i in range(config.archs_per_round)
    )
    progress = Progress("search", config.total, config.progress_interval, stream, done=done)
    best = _best_so_far(layout, config, params_hash)
    pool = WorkerPool(config.workers, _worker_init, (spec,)) if config.workers > 1 else None
    local_evaluate = None
    try:
        for round_index in range(config.rounds):
            if layout.checkpoint(round_index).is_file():
                continue
            sample_round(layout, config, params_hash, round_index, space)
            missing = [
                i
                for i in range(config.archs_per_round)
                if not layout.evaluation(round_index, i).is_file()
            ]

            def finished(result: EvalResult, round_index: int = round_index) -> None:
                nonlocal best
                best = max(best, result.reward)
                progress.update(extra=_extra(round_index, config, best))

            if pool is None:
                for index in missing:
                    local_evaluate = local_evaluate or spec.build()
                    finished(
                        evaluate_index(
                            layout, config, params_hash, round_index, index, local_evaluate, space
                        )
                    )
            else:
                _evaluate_in_pool(
                    pool, layout, config, params_hash, round_index, missing, finished, stream, space
                )
            update_round(layout, config, params_hash, round_index, space)
    finally:
        if pool is not None:
            pool.close()
    records = assemble(layout, config, params_hash, space)
    return records


def _extra(round_index: int, config: SearchConfig, best: float) -> str:
    return f"round {round_index + 1}/{config.rounds} best reward {best:.4f}"


def _best_so_far(layout: SearchLayout, config: SearchConfig, params_hash: str) -> float:
    best = 0.0
    for r in range(config.rounds):
        for i in range(config.archs_per_round):
            path = layout.evaluation(r, i)
            if path.is_file():
                best = max(best, float(read_json(path)["result"]["reward"]))
    return best


def params_hash_of(config: SearchConfig, extra: dict | None = None) -> str:
    """16 hex digits identifying the result-deciding params (plus ``extra``, e.g. data)."""
    return sha256_json({"search": config.result_fields(), **(extra or {})})[:16]
