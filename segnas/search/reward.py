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

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import ArtifactError, ConfigError, SegnasError
from ..facts import count_flops, count_params, measure_latency
from ..loss import segmentation_loss
from ..metrics import ConfusionMatrix, reward_from_scores
from ..model import SegmentationNet, build_model
from ..seeds import derive_seed
from ..space import DEFAULT_SPACE, Genotype, SearchSpace

STATUS_OK = "ok"
STATUS_STOPPED = "stopped_early"
STATUS_DIVERGED = "diverged"
STATUS_OOM = "out_of_memory"
STATUS_ERROR = "error"
STATUS_WORKER_DIED = "worker_died"


@dataclass(frozen=True)
class EvalSetup:
    """How one architecture is trained and scored (the ``search.eval`` params; build it with
    ``segnas.config.load_config``, the schema holds the types and ranges)."""

    phase1_epochs: int
    phase2_epochs: int
    lr_decoder_phase1: float
    lr_decoder: float
    lr_stem: float
    batch_size: int
    crop_size: tuple[int, int]
    scale_range: tuple[float, float]
    flip: bool
    val_size: tuple[int, int] | None
    agg_width: int
    sep_conv_units: int
    threads: int
    channels_last: bool
    early_stop_reward: float | None
    input_size: tuple[int, int]
    measure_latency: bool
    latency_target_ms: float | None
    latency_weight: float

    def check(self, where: str = "search.eval") -> None:
        """Raise :class:`ConfigError` when fields disagree with each other."""
        if self.phase1_epochs + self.phase2_epochs == 0:
            raise ConfigError(f"{where}: phase1_epochs + phase2_epochs must be at least 1")
        if not self.scale_range[0] <= self.scale_range[1]:
            raise ConfigError(f"{where}.scale_range must be [low, high] with low <= high")
        if self.latency_weight and not self.latency_target_ms:
            raise ConfigError(
                f"{where}.latency_weight is {self.latency_weight} but latency_target_ms is "
                "not set; set both (e.g. 50 and -0.07) or latency_weight: 0"
            )
        if self.latency_weight and not self.measure_latency:
            raise ConfigError(f"{where}.latency_weight needs measure_latency: true")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvalResult:
    """Outcome of one evaluation. ``to_row`` holds the reproducible fields (``archs.csv``),
    ``to_timing_row`` the wall-clock ones (``timings.csv``)."""

    genotype: str
    hash: str
    status: str = STATUS_OK
    reason: str = ""
    reward: float = 0.0
    miou: float = 0.0
    mean_acc: float = 0.0
    fwiou: float = 0.0
    reward_phase1: float = 0.0
    params: int = 0
    flops: int = 0
    downsampling_factor: int = 1
    latency_ms: float = math.nan
    seconds: dict[str, float] = field(default_factory=dict)

    ROW_FIELDS = (
        "genotype",
        "hash",
        "status",
        "reason",
        "reward",
        "miou",
        "mean_acc",
        "fwiou",
        "reward_phase1",
        "params",
        "flops",
        "downsampling_factor",
    )
    TIMING_FIELDS = (
        "latency_ms",
        "seconds_setup",
        "seconds_phase1",
        "seconds_phase2",
        "seconds_validation",
        "seconds_total",
        "seconds_cpu",
    )

    def to_row(self) -> dict:
        """Fields that are bit-for-bit reproducible on CPU."""
        return {name: getattr(self, name) for name in self.ROW_FIELDS}

    def to_timing_row(self) -> dict:
        """Wall-clock fields (latency and seconds per phase)."""
        row = {"latency_ms": self.latency_ms}
        for name in self.TIMING_FIELDS[1:]:
            row[name] = self.seconds.get(name.removeprefix("seconds_"), 0.0)
        return row

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EvalResult:
        return cls(**data)


class EvalData:
    """What every evaluation reads: the prepared dataset, the meta split and the stem cache.

    Construct with :meth:`from_paths`. The stem is loaded once from the cache's ``stem.pt``
    (checked against the cache's stem hash) after the cache header's ``stem_weights`` is
    checked against the configured ``stem.weights``.
    """

    def __init__(
        self,
        prepared: object,
        meta_train: list[str],
        meta_val: list[str],
        cache: object,
        stem_weights: str = "none",
        val_cache_bytes: int = 1 << 30,
    ) -> None:
        self.prepared = prepared
        self.meta_train = meta_train
        self.meta_val = meta_val
        self.cache = cache
        self.stem_weights = stem_weights
        stem = _cache_stem(cache, stem_weights)
        self.stem_state = {k: v.clone() for k, v in stem.state_dict().items()}
        self.num_classes = int(prepared.num_classes)
        self.val_cache_bytes = val_cache_bytes
        self._val_batches: dict[tuple, list] = {}

    @classmethod
    def from_paths(
        cls,
        prepared_dir: str | Path,
        split_dir: str | Path,
        cache_dir: str | Path,
        stem_weights: str = "none",
    ) -> EvalData:
        """Open ``data/prepared/<dataset>/``, ``data/split/`` and ``cache/stem/``."""
        from ..data.prepared import load_prepared
        from ..data.split import load_split
        from ..data.stem_cache import open_stem_cache

        prepared = load_prepared(prepared_dir)
        meta_train, meta_val = load_split(split_dir)
        cache = open_stem_cache(cache_dir)
        if int(cache.header.get("num_classes", prepared.num_classes)) != prepared.num_classes:
            raise ArtifactError(
                f"{cache_dir}/header.json: {cache.header.get('num_classes')} classes but "
                f"{prepared_dir} has {prepared.num_classes}; rerun cache_stem"
            )
        return cls(prepared, meta_train, meta_val, cache, stem_weights)

    def val_batches(self, val_size: tuple[int, int] | None, batch_size: int) -> list:
        """Meta-val (images, labels) batches of equal-size images; kept in memory when small."""
        key = (val_size, batch_size)
        if key in self._val_batches:
            return self._val_batches[key]
        from ..data.dataset import SegmentationDataset
        from ..data.transforms import EvalTransform

        dataset = SegmentationDataset(self.prepared, self.meta_val, EvalTransform(val_size))
        batches, pending, total = [], [], 0
        for index in range(len(dataset)):
            image, label = dataset[index]
            if pending and (pending[0][0].shape != image.shape or len(pending) == batch_size):
                batches.append(_stack(pending))
                pending = []
            pending.append((image, label))
            total += image.numel() * 4 + label.numel() * 8
        if pending:
            batches.append(_stack(pending))
        if total <= self.val_cache_bytes:
            self._val_batches[key] = batches
        return batches


def _cache_stem(cache: object, stem_weights: str) -> nn.Module:
    """The stem whose outputs the cache holds (``StemCache.load_stem``: ``<cache>/stem.pt``,
    checked against the header's hash), once the header says it was built with the configured
    ``stem.weights``."""
    built_with = cache.header.get("stem_weights")
    if built_with != stem_weights:
        raise ArtifactError(
            f"{Path(cache.root) / 'header.json'}: the stem cache was built with stem.weights "
            f"{built_with!r} but the search is configured with stem.weights {stem_weights!r}; "
            "rerun the cache_stem stage with the current params (or set stem.weights back to "
            f"{built_with!r})"
        )
    return cache.load_stem()


def _stack(items: list) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([i for i, _ in items]), torch.stack([lab for _, lab in items])


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


@contextlib.contextmanager
def deterministic(threads: int, device: torch.device) -> Iterator[None]:
    """``threads`` torch threads and deterministic algorithms (on CUDA, where bilinear
    upsampling has no deterministic backward, only a warning), restored afterwards."""
    previous_threads = torch.get_num_threads()
    previous_mode = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_mode, warn_only=previous_warn)


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    loss = segmentation_loss(logits, labels)
    if not torch.isfinite(loss):
        raise Diverged(f"training loss became {float(loss.detach())}")
    return loss


def _batches(num_items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches; a trailing batch of one item is dropped (BatchNorm needs two)."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch))
    order = torch.randperm(num_items, generator=generator).tolist()
    batches = [order[i : i + batch_size] for i in range(0, num_items, batch_size)]
    return [b for b in batches if len(b) > 1] or batches


def _to(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


AfterEpoch = Callable[[int], None]
"""Called at the end of each epoch of a training phase with the number of epochs done."""


def train_phase1(
    model: SegmentationNet,
    data: EvalData,
    setup: EvalSetup,
    seed: int,
    device: torch.device,
    after_epoch: AfterEpoch | None = None,
) -> None:
    """Decoder-only training on the cached stem outputs."""
    decoder = model.decoder
    decoder.train()
    optimizer = torch.optim.Adam(decoder.parameters(), lr=setup.lr_decoder_phase1)
    for epoch in range(setup.phase1_epochs):
        for batch in _batches(len(data.cache), setup.batch_size, seed, epoch):
            quarter, eighth, labels = data.cache.batch(sorted(batch))
            logits = decoder(
                _to(quarter, device, setup.channels_last), _to(eighth, device, setup.channels_last)
            )
            loss = _loss(logits, labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if after_epoch is not None:
            after_epoch(epoch + 1)


def train_phase2(
    model: SegmentationNet,
    data: EvalData,
    setup: EvalSetup,
    seed: int,
    device: torch.device,
    after_epoch: AfterEpoch | None = None,
) -> None:
    """End-to-end training on meta-train images with random scale, crop and flip."""
    from ..data.dataset import SegmentationDataset
    from ..data.transforms import TrainTransform

    transform = TrainTransform(setup.crop_size, setup.scale_range, setup.flip, seed)
    dataset = SegmentationDataset(data.prepared, data.meta_train, transform)
    model.train()
    optimizer = torch.optim.Adam(
        [
            {"params": model.decoder.parameters(), "lr": setup.lr_decoder},
            {"params": model.stem.parameters(), "lr": setup.lr_stem},
        ]
    )
    for epoch in range(setup.phase2_epochs):
        dataset.set_epoch(epoch)
        for batch in _batches(len(dataset), setup.batch_size, seed, epoch):
            images, labels = _stack([dataset[i] for i in batch])
            logits = model(_to(images, device, setup.channels_last))
            loss = _loss(logits, labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if after_epoch is not None:
            after_epoch(epoch + 1)


@torch.no_grad()
def validate(
    model: nn.Module, data: EvalData, setup: EvalSetup, device: torch.device
) -> dict[str, float]:
    """Scores on meta-val (logits upsampled to the label size)."""
    model.eval()
    confusion = ConfusionMatrix(data.num_classes)
    for images, labels in data.val_batches(setup.val_size, setup.batch_size):
        logits = model(_to(images, device, setup.channels_last))
        if not torch.isfinite(logits).all():
            raise Diverged("validation logits are not finite")
        confusion.update(logits.float().cpu(), labels)
    model.train()
    return confusion.scores()


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
    setup: EvalSetup,
    data: EvalData,
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


def evaluate_architecture(
    genotype: Genotype,
    setup: EvalSetup,
    data: EvalData,
    seed: int,
    device: torch.device | str = "cpu",
    space: SearchSpace = DEFAULT_SPACE,
) -> EvalResult:
    """Train ``genotype`` for the two phases and score it; every random choice from ``seed``.

    Errors in training (NaN/inf loss, out of memory, exceptions) are recorded in the result
    with reward 0; user errors (:class:`SegnasError`) propagate.
    """
    device = torch.device(device)
    space.validate(genotype)
    result = EvalResult(genotype.to_text(), genotype.hash)
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


def worker_died_result(genotype: Genotype, reason: str) -> EvalResult:
    """The record of an evaluation whose worker process died twice: reward 0."""
    result = EvalResult(
        genotype.to_text(), genotype.hash, status=STATUS_WORKER_DIED, reason=reason, reward=0.0
    )
    result.downsampling_factor = genotype.downsampling_factor
    return result


def target_similarity_result(
    genotype: Genotype, target: Genotype, space: SearchSpace = DEFAULT_SPACE
) -> EvalResult:
    """A cheap synthetic reward without training: the share of decisions equal to ``target``'s.

    For checking the search machinery (controller, PPO, rounds, resumption) in seconds.
    """
    from .controller import genotype_to_choices

    start = time.perf_counter()
    mine, theirs = genotype_to_choices(genotype, space), genotype_to_choices(target, space)
    share = sum(a == b for a, b in zip(mine, theirs, strict=True)) / len(mine)
    result = EvalResult(genotype.to_text(), genotype.hash, reward=share)
    result.downsampling_factor = genotype.downsampling_factor
    result.seconds["total"] = time.perf_counter() - start
    return result
