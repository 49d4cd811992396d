import random

import pytest
import torch
from config_values import ppo_config

from segnas.errors import ArtifactError
from segnas.search.controller import (
    Controller,
    choices_to_genotype,
    decision_sequence,
    genotype_to_choices,
    load_controller,
    save_controller,
)
from segnas.search.ppo import PPOTrainer
from segnas.space import SearchSpace

SPACE = SearchSpace()


def test_decisions_follow_the_space_and_skip_fixed_strides():
    steps = decision_sequence(SPACE)
    assert len(steps) == SPACE.num_decisions == 3 * 3 + 4 * 7 + 3
    assert [s.kind for s in steps].count("stride") == SPACE.num_strided_blocks
    locs = [s.num_choices for s in steps if s.kind == "loc"]
    assert locs == [n for i in range(7) for n in (2 + i, 2 + i)]
    for seed in range(20):
        genotype = SPACE.sample(seed)
        assert choices_to_genotype(genotype_to_choices(genotype, SPACE), SPACE) == genotype


def test_parameters_are_uniform_in_init_range():
    controller = Controller(SPACE, init_range=0.1, seed=3)
    values = torch.cat([p.detach().flatten() for p in controller.parameters()])
    assert values.abs().max() <= 0.1
    assert values.min() < -0.09 and values.max() > 0.09
    again = Controller(SPACE, init_range=0.1, seed=3)
    assert all(
        torch.equal(a, b) for a, b in zip(controller.parameters(), again.parameters(), strict=True)
    )


@torch.no_grad()
def _stepwise_log_probs(controller, choices):
    """Per-decision log-probabilities, one LSTM step at a time (independent of evaluate)."""
    x = controller.start.unsqueeze(0)
    state = None
    out = []
    for index, (step, choice) in enumerate(zip(controller.steps, choices, strict=True)):
        output, state = controller.lstm(x, state)
        logits = controller.heads[step.kind](output[0, 0])[: step.num_choices]
        out.append(torch.log_softmax(logits, dim=-1)[choice])
        x = controller.embeddings[step.kind](torch.tensor([[choice]]))
        assert index < len(controller.steps)
    return torch.stack(out)


def test_log_prob_is_the_sum_over_decisions_and_matches_sampling():
    controller = Controller(SPACE, seed=1)
    with torch.no_grad():  # make the policy far from uniform
        for param in controller.heads.parameters():
            param.mul_(30)
    generator = torch.Generator().manual_seed(7)
    genotypes, sampled = zip(*(controller.sample(generator) for _ in range(6)), strict=True)
    with torch.no_grad():
        log_prob, entropy = controller.log_probs(list(genotypes))
    for genotype, expected, got in zip(genotypes, sampled, log_prob, strict=True):
        per_decision = _stepwise_log_probs(controller, genotype_to_choices(genotype, SPACE))
        assert len(per_decision) == SPACE.num_decisions
        assert float(per_decision.detach().sum()) == pytest.approx(expected, abs=1e-4)
        assert float(got) == pytest.approx(expected, abs=1e-4)
    assert torch.all(entropy > 0)
    assert len({g.hash for g in genotypes}) > 1


def test_entropy_of_a_uniform_policy_counts_only_real_decisions():
    controller = Controller(SPACE, seed=0)
    with torch.no_grad():
        for head in controller.heads.values():
            head.weight.zero_()
            head.bias.zero_()
    import math

    expected = sum(math.log(s.num_choices) for s in decision_sequence(SPACE))
    with torch.no_grad():
        log_prob, entropy = controller.log_probs([SPACE.sample(0)])
    assert float(entropy[0]) == pytest.approx(expected, rel=1e-5)
    assert float(log_prob[0]) == pytest.approx(-expected, rel=1e-5)


def test_sampling_is_reproducible_from_the_generator_seed():
    controller = Controller(SPACE, seed=0)
    a = controller.sample(torch.Generator().manual_seed(5))
    b = controller.sample(torch.Generator().manual_seed(5))
    assert a == b


def test_controller_learns_a_synthetic_reward_beyond_uniform_sampling():
    torch.set_num_threads(1)
    target = genotype_to_choices(SPACE.sample(123), SPACE)

    def reward(genotype):
        choices = genotype_to_choices(genotype, SPACE)
        return sum(a == b for a, b in zip(choices, target, strict=True)) / len(choices)

    uniform = [reward(SPACE.sample(random.Random(i))) for i in range(300)]
    uniform_mean = sum(uniform) / len(uniform)
    controller = Controller(SPACE, seed=0)
    trainer = PPOTrainer(controller, ppo_config(lr=1e-2, buffer_size=20))
    rewards = []
    for update in range(300):
        genotype, log_prob = controller.sample(torch.Generator().manual_seed(update))
        rewards.append(reward(genotype))
        trainer.add(genotype, rewards[-1], log_prob)
        trainer.step()
    window = sum(rewards[-50:]) / 50
    assert sum(rewards[:50]) / 50 < uniform_mean + 0.05
    assert window > uniform_mean + 0.1, (window, uniform_mean)


def test_checkpoint_round_trip_and_clear_mismatch_errors(tmp_path):
    controller = Controller(SPACE, seed=2)
    path = tmp_path / "final.pt"
    save_controller(path, controller, "abc123")
    loaded = load_controller(path, space=SPACE, params_hash="abc123")
    generator = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert loaded.sample(generator()) == controller.sample(generator())
    with pytest.raises(ArtifactError, match="search space"):
        load_controller(path, space=SearchSpace(num_blocks=5))
    with pytest.raises(ArtifactError, match="params hash abc123"):
        load_controller(path, params_hash="other")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match="junk.pt"):
        load_controller(tmp_path / "junk.pt")
