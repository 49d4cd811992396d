import pytest
import torch
from config_values import ppo_config, quickstart_section

from segnas.config import load_config
from segnas.errors import ConfigError
from segnas.search.config import PPOConfig
from segnas.search.controller import Controller
from segnas.search.ppo import PPOTrainer
from segnas.space import SearchSpace

SPACE = SearchSpace()


def _params(controller):
    return [p.detach().clone() for p in controller.parameters()]


def test_config_loads_from_params_and_names_an_unknown_key():
    section = quickstart_section("search.ppo")
    config = load_config(PPOConfig, section, "search.ppo")
    assert config == ppo_config(**section)
    with pytest.raises(ConfigError, match="search.ppo.cliip: unknown key \\(did you mean 'clip'"):
        load_config(PPOConfig, {**section, "cliip": 0.2}, "search.ppo")


def test_baseline_is_an_ema_and_the_buffer_keeps_the_last_entries():
    trainer = PPOTrainer(Controller(SPACE), ppo_config(buffer_size=3, baseline_decay=0.5))
    genotype = SPACE.sample(0)
    rewards = [0.2, 0.6, 0.4, 1.0]
    advantages = [trainer.add(genotype, r, -50.0).advantage for r in rewards]
    assert advantages[:2] == pytest.approx([0.0, 0.4])  # first reward seeds the baseline
    assert trainer.baseline == pytest.approx(((0.2 * 0.5 + 0.3) * 0.5 + 0.2) * 0.5 + 0.5)
    assert [r.reward for r in trainer.buffer] == rewards[1:]


def test_clipping_stops_updates_when_the_ratio_is_out_of_range():
    controller = Controller(SPACE, seed=0)
    trainer = PPOTrainer(controller, ppo_config(lr=1e-2))
    genotype, log_prob = controller.sample(torch.Generator().manual_seed(0))
    trainer.baseline = 0.0
    trainer.add(genotype, 1.0, log_prob - 5.0)  # ratio e^5 >> 1 + clip, positive advantage
    before = _params(controller)
    stats = trainer.step()
    assert stats["ratio_mean"] > 100
    assert all(torch.equal(a, b) for a, b in zip(before, controller.parameters(), strict=True))


def test_an_update_raises_the_probability_of_a_rewarded_genotype():
    controller = Controller(SPACE, seed=0)
    trainer = PPOTrainer(controller, ppo_config(lr=1e-2))
    good, good_lp = controller.sample(torch.Generator().manual_seed(1))
    bad, bad_lp = controller.sample(torch.Generator().manual_seed(2))
    trainer.baseline = 0.5
    trainer.add(bad, 0.0, bad_lp)
    trainer.add(good, 1.0, good_lp)
    trainer.step()
    new_good, new_bad = controller.log_probs([good, bad])[0].tolist()
    assert new_good > good_lp
    assert new_good - good_lp > new_bad - bad_lp


def test_state_round_trip_continues_identically():
    torch.set_num_threads(1)
    a = PPOTrainer(Controller(SPACE, seed=0), ppo_config(lr=1e-3))
    for seed in range(3):
        genotype, log_prob = a.controller.sample(torch.Generator().manual_seed(seed))
        a.add(genotype, seed / 3, log_prob)
        a.step()
    b = PPOTrainer(Controller(SPACE, seed=9), ppo_config(lr=1e-3))
    b.controller.load_state_dict(a.controller.state_dict())
    b.load_state_dict(a.state_dict())
    for trainer in (a, b):
        trainer.add(SPACE.sample(4), 0.9, -52.0)
        trainer.step()
    assert all(
        torch.equal(p, q)
        for p, q in zip(a.controller.parameters(), b.controller.parameters(), strict=True)
    )
