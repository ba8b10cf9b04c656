import math

import pytest
import torch

from razzle.model.network import NetworkOutput, RazzleNet
from razzle.model.samples import Samples
from razzle.train.loss import CompositeLoss
from razzle.train.metrics import ValueSkill, learning_metrics
from razzle.train.module import AlphaZeroModule

A = 897


def batch_of(policy, legal, value, difficulty, search_value=None) -> Samples:
    n = len(value)
    return Samples(
        planes=torch.zeros(n, 12, 8, 7),
        legal=legal,
        policy=policy,
        value=torch.tensor(value),
        difficulty=torch.tensor(difficulty),
        turn=torch.zeros(n, dtype=torch.int64),
        search_value=torch.tensor(search_value if search_value is not None else [0.0] * n),
    )


def hand_example():
    """Two samples whose every term has a closed form."""
    logits = torch.zeros(2, A)
    logits[1, 0] = math.log(896)  # sample 1: p(0) = 1/2, every other action 1/1792
    policy = torch.zeros(2, A)
    policy[0, :2] = 0.5
    policy[1, 0] = 1.0
    legal = torch.zeros(2, A, dtype=torch.bool)
    legal[0, :3] = True
    legal[1, 0] = True
    output = NetworkOutput(
        policy=logits, value=torch.tensor([0.5, -0.2]), difficulty_logit=torch.tensor([0.0, math.log(3)])
    )
    return output, batch_of(policy, legal, value=[1.0, 0.0], difficulty=[0.2, 1.0])


def test_every_term_against_hand_computed_values():
    output, batch = hand_example()
    terms = CompositeLoss(policy=1.0, value=1.0, quartic=0.25, difficulty=0.5, illegal=2.0)(output, batch)
    expected = {
        "policy_loss": (math.log(897) + math.log(2)) / 2,  # CE vs uniform; -log(1/2)
        "value_loss": (0.5**2 + 0.2**2) / 2,
        "value_loss_quartic": (0.5**4 + 0.2**4) / 2,
        "difficulty_loss": (math.log(2) - math.log(0.75)) / 2,  # d = 1/2 vs 0.2; d = 3/4 vs 1
        "illegal_penalty": (894 / 897 + 0.5) / 2,
    }
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-5), name
    total = (
        expected["policy_loss"]
        + expected["value_loss"]
        + 0.25 * expected["value_loss_quartic"]
        + 0.5 * expected["difficulty_loss"]
        + 2.0 * expected["illegal_penalty"]
    )
    assert terms["loss_total"].item() == pytest.approx(total, rel=1e-5)


@pytest.mark.parametrize(
    "error, squared, weighted_quartic",
    [(0.1, 0.01, 0.000025), (0.5, 0.25, 0.015625), (1.0, 1.0, 0.25), (2.0, 4.0, 4.0)],
)
def test_quartic_table(error, squared, weighted_quartic):
    loss = CompositeLoss(policy=0.0, value=1.0, quartic=0.25, difficulty=0.0, illegal=0.0)
    legal = torch.ones(1, A, dtype=torch.bool)
    batch = batch_of(torch.full((1, A), 1 / A), legal, value=[1.0], difficulty=[0.5])
    output = NetworkOutput(torch.zeros(1, A), torch.tensor([1.0 - error]), torch.zeros(1))
    terms = loss(output, batch)
    assert terms["value_loss"].item() == pytest.approx(squared, rel=1e-5)
    assert 0.25 * terms["value_loss_quartic"].item() == pytest.approx(weighted_quartic, rel=1e-5)
    assert terms["loss_total"].item() == pytest.approx(squared + weighted_quartic, rel=1e-5)


def test_adaptive_multiplier_follows_dual_ascent():
    loss = CompositeLoss(illegal=1.0, illegal_mode="adaptive", illegal_target=0.01, illegal_step=0.5)
    loss.update_multiplier(torch.tensor(0.21))
    assert loss.illegal_multiplier.item() == pytest.approx(1.0 + 0.5 * 0.2)
    loss.update_multiplier(torch.tensor(0.0))
    assert loss.illegal_multiplier.item() == pytest.approx(1.1 - 0.5 * 0.01)
    for _ in range(300):
        loss.update_multiplier(torch.tensor(0.0))
    assert loss.illegal_multiplier.item() == 0.0  # never negative
    fixed = CompositeLoss(illegal=1.0)
    fixed.update_multiplier(torch.tensor(0.9))
    assert fixed.illegal_multiplier.item() == 1.0


def test_updating_the_multiplier_before_backward_keeps_this_steps_weight():
    output, batch = hand_example()
    logits = output.policy.clone().requires_grad_()
    loss = CompositeLoss(policy=0.0, value=0.0, difficulty=0.0, illegal=1.0, illegal_mode="adaptive")
    terms = loss(output._replace(policy=logits), batch)
    loss.update_multiplier(terms["illegal_penalty"])
    terms["loss_total"].backward()  # would fail if the buffer had changed in place
    (reference,) = torch.autograd.grad(loss(output._replace(policy=logits), batch)["illegal_penalty"], logits)
    assert torch.allclose(logits.grad, reference)


@pytest.mark.parametrize(
    "target, mix, expected",
    [
        ("outcome", 0.5, [1.0, -1.0, 0.0]),  # z; the mix is not read
        ("mix", 0.0, [1.0, -1.0, 0.0]),
        ("mix", 0.5, [0.7, -0.5, -0.1]),  # soft-Z: (z + q) / 2
        ("mix", 0.25, [0.85, -0.75, -0.05]),
        ("mix", 1.0, [0.4, 0.0, -0.2]),  # q alone
    ],
)
def test_the_value_target_mixes_outcome_and_search_value(target, mix, expected):
    weights = {"policy": 0.0, "value": 1.0, "quartic": 1.0, "difficulty": 0.0, "illegal": 0.0}
    loss = CompositeLoss(**weights, value_target=target, value_target_mix=mix)
    legal = torch.ones(3, A, dtype=torch.bool)
    policy = torch.full((3, A), 1 / A)
    batch = batch_of(policy, legal, value=[1.0, -1.0, 0.0], difficulty=[0.5] * 3, search_value=[0.4, 0.0, -0.2])
    value = torch.tensor([0.2, -0.2, 0.3])
    terms = loss(NetworkOutput(torch.zeros(3, A), value, torch.zeros(3)), batch)
    error = value - torch.tensor(expected)
    assert terms["value_loss"].item() == pytest.approx(error.square().mean().item(), rel=1e-5)
    assert terms["value_loss_quartic"].item() == pytest.approx(error.pow(4).mean().item(), rel=1e-5)
    assert loss.uses_search_value == (target == "mix")


def test_the_metrics_judge_the_value_against_the_outcome_whatever_the_target(real_samples):
    """`AlphaZeroModule.measure` hands the metrics z; only the loss terms follow the target."""
    torch.manual_seed(0)
    net = RazzleNet.of_size("tiny")
    computed = {}
    for target in ("outcome", "mix"):
        module = AlphaZeroModule(net, CompositeLoss(value_target=target, value_target_mix=1.0)).eval()
        metrics = learning_metrics()
        with torch.no_grad():
            module.measure(real_samples, metrics)
        computed[target] = metrics.compute()
    for name in ("value_skill", "value_calibration_error"):
        assert computed["outcome"][name] == computed["mix"][name]
    assert computed["outcome"]["value_loss"] != computed["mix"]["value_loss"]
    searched = ValueSkill()
    searched.update(real_samples.search_value, real_samples.value)
    assert computed["mix"]["search_value_skill"] == searched.compute()  # the samples' q, not the network


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"value_target": "soft_z"}, "loss.value_target must be one of outcome, mix"),
        ({"value_target_mix": 1.5}, r"loss.value_target_mix must be a number in \[0, 1\]"),
        ({"value_target_mix": "half"}, "loss.value_target_mix"),
        ({"quartic": -1.0}, "loss.quartic"),
        ({"policy": float("nan")}, "loss.policy"),
        ({"illegal_mode": "sometimes"}, "fixed, adaptive"),
        ({"illegal_target": 1.5}, "illegal_target"),
        ({"illegal_step": 0.0}, "illegal_step"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        CompositeLoss(**settings)
