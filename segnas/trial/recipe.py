"""What one search evaluation is asked to do and what it returns: the recipe (``TrialSetup``, the
``search.eval`` params), the outcome (``TrialResult``, one row of ``archs.csv`` and of
``timings.csv``) and the statuses an outcome can have.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from ..errors import ConfigError
from ..space import Genotype

STATUS_OK = "ok"
STATUS_STOPPED = "stopped_early"
STATUS_DIVERGED = "diverged"
STATUS_OOM = "out_of_memory"
STATUS_ERROR = "error"
STATUS_WORKER_DIED = "worker_died"


@dataclass(frozen=True)
class TrialSetup:
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
    lr_schedule: str
    ema_decay: float | None
    common_order: bool

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
class TrialResult:
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
    scores_phase1: dict[str, float] = field(default_factory=dict)

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

    def without_phase2(self) -> TrialResult:
        """The result of this evaluation's setup with ``phase2_epochs: 0``, the same seed and
        no early stop or latency term: phase 1 is the same computation, so its meta-val scores
        (``scores_phase1``) are that setup's (bit for bit). A failure before phase 1 was
        scored is that setup's failure too. Wall-clock ``seconds`` are left empty."""
        if not self.scores_phase1:
            if self.status == STATUS_OK:
                raise ValueError(f"{self.hash}: no phase-1 scores (phase1_epochs: 0?)")
            return replace(self, seconds={})
        return replace(
            self,
            status=STATUS_OK,
            reason="",
            reward=self.reward_phase1,
            miou=self.scores_phase1["miou"],
            mean_acc=self.scores_phase1["mean_acc"],
            fwiou=self.scores_phase1["fwiou"],
            seconds={},
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
    def from_dict(cls, data: dict) -> TrialResult:
        return cls(**data)


def worker_died_result(genotype: Genotype, reason: str) -> TrialResult:
    """The record of an evaluation whose worker process died twice: reward 0."""
    result = TrialResult(
        genotype.to_text(), genotype.hash, status=STATUS_WORKER_DIED, reason=reason, reward=0.0
    )
    result.downsampling_factor = genotype.downsampling_factor
    return result
