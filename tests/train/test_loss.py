import math

import pytest
import torch

from razzle.model.network import NetworkOutput
from razzle.model.samples import Samples
from razzle.train.loss import CompositeLoss

A = 897


def batch_of(policy, legal, value, difficulty) -> Samples:
    n = len(value)
    return Samples(
        planes=torch.zeros(n, 12, 8, 7),
        legal=legal,
        policy=policy,
        value=torch.tensor(value),
        difficulty=torch.tensor(difficulty),
        turn=torch.zeros(n, dtype=torch.int64),
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
    "settings, message",
    [
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
