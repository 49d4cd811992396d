import math
import re

import pytest
import torch
from config_values import TEST_EVAL, quickstart_section
from search_project import make_project, tiny_params

from segnas.complexity import count_params
from segnas.config import load_config
from segnas.errors import ConfigError
from segnas.metrics import reward_from_scores
from segnas.model import build_model
from segnas.published import resolve_genotype
from segnas.space import DEFAULT_SPACE
from segnas.trial import phases
from segnas.trial import reward as ev
from segnas.trial.data import TrialData
from segnas.trial.recipe import TrialSetup
from segnas.trial.reward import run_trial

ARCH = resolve_genotype("arch1")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("eval") / "project", tiny_params())
    prepared = root / "data" / "prepared" / "synthetic"
    return TrialData.from_paths(prepared, root / "data/split", root / "cache/stem", "none")


def _setup(**overrides):
    values = {
        **TEST_EVAL,
        **{
            "phase1_epochs": 1,
            "phase2_epochs": 1,
            "batch_size": 8,
            "crop_size": (32, 32),
            "input_size": (48, 64),
            "measure_latency": False,
        },
    }
    values.update(overrides)
    return TrialSetup(**values)


def _load_setup(**changes):
    values = {**quickstart_section("search.eval"), **changes}
    return load_config(TrialSetup, values, "search.eval")


def test_setup_from_params_names_bad_keys_and_values():
    setup = _load_setup(crop_size=[160, 160], batch_size=16)
    assert setup.crop_size == (160, 160) and setup.batch_size == 16
    assert setup.scale_range == tuple(float(v) for v in setup.scale_range)
    with pytest.raises(ConfigError, match="search.eval.epochs: unknown key"):
        _load_setup(epochs=3)
    with pytest.raises(ConfigError, match="search.eval.batch_size: 1 is less than"):
        _load_setup(batch_size=1)
    with pytest.raises(ConfigError, match="latency_target_ms"):
        _load_setup(latency_weight=-0.07, latency_target_ms=None)
    with pytest.raises(ConfigError, match="search.eval.latency_weight: 0.07 is greater than"):
        _load_setup(latency_weight=0.07, latency_target_ms=10.0)


def test_evaluation_trains_scores_and_is_deterministic(data):
    setup = _setup()
    first = run_trial(ARCH, setup, data, seed=11)
    again = run_trial(ARCH, setup, data, seed=11)
    assert first.status == "ok", first.reason
    assert first.to_row() == again.to_row()
    scores = {"miou": first.miou, "mean_acc": first.mean_acc, "fwiou": first.fwiou}
    assert 0 < first.reward <= 1 and first.reward == reward_from_scores(scores)
    assert first.params == count_params(build_model(ARCH, data.num_classes, 48, 1))
    assert first.flops > 0 and first.downsampling_factor == ARCH.downsampling_factor
    assert set(first.seconds) >= {"setup", "phase1", "phase2", "validation", "total"}
    other_seed = run_trial(ARCH, setup, data, seed=12)
    assert other_seed.to_row() != first.to_row()


def test_early_termination_skips_phase_two(data):
    result = run_trial(ARCH, _setup(early_stop_reward=1.1), data, seed=0)
    assert result.status == "stopped_early" and "phase-1 reward" in result.reason
    assert result.reward == result.reward_phase1 > 0
    assert "phase2" not in result.seconds


def test_latency_aware_reward(data):
    setup = _setup(phase2_epochs=0, measure_latency=True)
    plain = run_trial(ARCH, setup, data, seed=0)
    target = plain.latency_ms * 2
    aware = run_trial(
        ARCH,
        _setup(
            phase2_epochs=0, measure_latency=True, latency_target_ms=target, latency_weight=-0.07
        ),
        data,
        seed=0,
    )
    assert aware.miou == plain.miou and aware.latency_ms > 0
    expected = (
        reward_from_scores({"miou": aware.miou, "mean_acc": aware.mean_acc, "fwiou": aware.fwiou})
        * (aware.latency_ms / target) ** -0.07
    )
    assert aware.reward == pytest.approx(expected)


def test_divergence_is_recorded_with_reward_zero(data):
    result = run_trial(ARCH, _setup(lr_decoder_phase1=1e30), data, seed=0)
    assert result.status == "diverged", (result.status, result.reason)
    assert result.reward == 0
    assert "not finite" in result.reason or "loss became" in result.reason


@pytest.mark.parametrize(
    "error, status",
    [
        (RuntimeError("CUDA out of memory. Tried to allocate"), "out_of_memory"),
        (MemoryError(), "out_of_memory"),  # CPU out of memory: an empty message
        (ValueError("shape mismatch"), "error"),
    ],
)
def test_failures_are_recorded_and_the_search_goes_on(data, monkeypatch, error, status):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(ev, "train_phase2", fail)
    result = run_trial(ARCH, _setup(), data, seed=0)
    assert (result.status, result.reward) == (status, 0.0)
    assert result.reason.startswith(type(error).__name__) and str(error) in result.reason
    assert result.reward_phase1 > 0 and not math.isnan(result.miou)


def test_thread_setting_is_restored(data):
    torch.set_num_threads(2)
    run_trial(ARCH, _setup(phase2_epochs=0), data, seed=0)
    assert torch.get_num_threads() == 2


def test_estimated_cost_grows_with_the_work():
    setup = _setup()
    text = ARCH.to_text()
    light = DEFAULT_SPACE.from_text(re.sub(r"-r\d", "-r1", text))
    heavy = DEFAULT_SPACE.from_text(re.sub(r"-r\d", "-r4", text))
    assert 0 < ev.estimated_cost(light, setup) < ev.estimated_cost(heavy, setup)
    assert ev.estimated_cost(heavy, setup) == ev.estimated_cost(heavy, setup)


def test_cosine_schedule_ends_near_zero_and_the_average_follows_the_weights():
    layer = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.4)
    schedule = phases._Schedule(optimizer, _setup(lr_schedule="cosine", ema_decay=0.5), 4, layer)
    rates, weights = [], []
    for _ in range(4):
        schedule.before_step()
        rates.append(optimizer.param_groups[0]["lr"])
        with torch.no_grad():
            layer.weight.add_(1.0)
        weights.append(layer.weight.detach().clone())
        schedule.after_step()
    # 0.4 * (1 + cos(pi * t / 4)) / 2 for t = 0..3
    assert rates == pytest.approx(
        [0.4, 0.4 * (1 + math.sqrt(0.5)) / 2, 0.2, 0.4 * (1 - math.sqrt(0.5)) / 2]
    )
    start = weights[0] - 1
    expected = start
    for w in weights:
        expected = 0.5 * expected + 0.5 * w
    schedule.end()
    assert torch.allclose(layer.weight, expected)


def test_common_order_shares_the_batches_of_every_evaluation_on_one_cache(data):
    common = _setup(common_order=True)
    assert phases.order_seed(data, common, 1, "phase1") == phases.order_seed(
        data, common, 2, "phase1"
    )
    assert phases.order_seed(data, _setup(), 1, "phase1") == 1
    first = run_trial(ARCH, common, data, seed=11)
    assert run_trial(ARCH, common, data, seed=11).to_row() == first.to_row()
    assert first.to_row() != run_trial(ARCH, _setup(), data, seed=11).to_row()


def test_each_lever_changes_the_reward_and_stays_deterministic(data):
    base = run_trial(ARCH, _setup(), data, seed=11).to_row()
    for lever in ({"lr_schedule": "cosine"}, {"ema_decay": 0.9}):
        first = run_trial(ARCH, _setup(**lever), data, seed=11)
        assert first.status == "ok", first.reason
        assert first.to_row() != base, lever
        assert run_trial(ARCH, _setup(**lever), data, seed=11).to_row() == first.to_row()
