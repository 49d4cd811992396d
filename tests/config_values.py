"""Explicit test configurations: the library has no defaults (the params schema requires every
key), so tests build their configs here, with keyword overrides."""

from __future__ import annotations

import copy
from pathlib import Path

from segnas.compare.config import CompareConfig
from segnas.config import load_params
from segnas.search.config import ControllerConfig, EvolutionConfig, PPOConfig, SearchConfig
from segnas.trainconfig import TrainConfig
from segnas.trial.recipe import TrialSetup

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"

TEST_TRAIN = dict(
    epochs=1000,
    time_budget_s=None,
    optimizer="sgd",
    lr=5e-2,
    momentum=0.9,
    weight_decay=1e-5,
    poly_power=0.9,
    batch_size=10,
    crop_size=(360, 480),
    scale_range=(0.5, 2.0),
    flip=True,
    class_weighting="none",
    input_size=None,
    agg_width=64,
    sep_conv_units=2,
    stem_weights="none",
    seed=0,
    channels_last=True,
    amp=True,
    checkpoint_every=5,
    val_every=1,
    num_workers=0,
)
TEST_EVAL = dict(
    phase1_epochs=5,
    phase2_epochs=5,
    lr_decoder_phase1=7e-3,
    lr_decoder=2e-3,
    lr_stem=5e-4,
    batch_size=32,
    crop_size=(321, 321),
    scale_range=(0.5, 2.0),
    flip=True,
    val_size=None,
    agg_width=48,
    sep_conv_units=1,
    threads=1,
    channels_last=False,
    early_stop_reward=None,
    input_size=(360, 480),
    measure_latency=True,
    latency_target_ms=None,
    latency_weight=0.0,
    lr_schedule="constant",
    ema_decay=None,
    common_order=False,
)
TEST_PPO = dict(
    clip=0.1,
    lr=1e-4,
    max_grad_norm=2.0,
    baseline_decay=0.95,
    buffer_size=100,
    entropy_weight=0.0,
    epochs=1,
)


def train_config(**overrides: object) -> TrainConfig:
    """A :class:`TrainConfig` with the test values, ``overrides`` replacing some."""
    return TrainConfig(**{**TEST_TRAIN, **overrides})


def eval_setup(**overrides: object) -> TrialSetup:
    """An :class:`TrialSetup` with the test values (the paper's recipe), ``overrides`` replacing
    some."""
    return TrialSetup(**{**TEST_EVAL, **overrides})


def ppo_config(**overrides: object) -> PPOConfig:
    """A :class:`PPOConfig` with the released values, ``overrides`` replacing some."""
    return PPOConfig(**{**TEST_PPO, **overrides})


def search_config(**overrides: object) -> SearchConfig:
    """A small :class:`SearchConfig` (2 rounds of 2), ``overrides`` replacing some."""
    values = dict(
        seed=0,
        rounds=2,
        archs_per_round=2,
        strategy="controller",
        evolution=EvolutionConfig(population=4, tournament=2),
        objective="train",
        target="arch0",
        top_k=5,
        controller=ControllerConfig(hidden_size=100, num_layers=2, init_range=0.1),
        ppo=ppo_config(),
        eval=eval_setup(),
        workers=1,
        progress_interval=10.0,
    )
    return SearchConfig(**{**values, **overrides})


def compare_config(**overrides: object) -> CompareConfig:
    """A :class:`CompareConfig` (20 per group, phase 2 of 20 epochs), ``overrides`` replacing
    some."""
    values = dict(num_archs=20, long_phase2_epochs=20, workers=1)
    return CompareConfig(**{**values, **overrides})


def quickstart_section(where: str) -> dict:
    """A copy of the dotted section ``where`` of ``configs/quickstart.yaml``."""
    node = load_params(QUICKSTART, validate=False)
    for key in where.split("."):
        node = node[key]
    return copy.deepcopy(node)
