import math

import pytest
import torch

from razzle.model.network import NetworkOutput
from razzle.train.loss import CompositeLoss
from razzle.metric_names import CANONICAL_METRICS, GAME_METRICS, ITERATION_METRICS, KNOWN_METRICS, METRIC_DESCRIPTIONS
from razzle.model.samples import Samples
from razzle.train.metrics import (
    LegalMass,
    LossTerm,
    PolicyAccuracy,
    PolicyConfidence,
    PolicyEBF,
    PolicyEntropy,
    ValueCalibrationError,
    ValueConfidentAccuracy,
    ValueExtremity,
    ValueMean,
    ValueSkill,
    ValueStd,
    learning_metrics,
    legal_probabilities,
)

T, F = True, False


def value(metric) -> float:
    return metric.compute().item()


def test_canonical_names_are_the_issues_and_all_are_measured():
    assert len(set(CANONICAL_METRICS)) == len(CANONICAL_METRICS) == 27
    measured = set(learning_metrics().keys())
    assert measured | set(GAME_METRICS) == set(CANONICAL_METRICS)


def test_every_metric_of_a_report_has_a_description():
    assert KNOWN_METRICS == set(METRIC_DESCRIPTIONS) >= set(CANONICAL_METRICS) | set(ITERATION_METRICS)
    assert all(METRIC_DESCRIPTIONS[name] for name in KNOWN_METRICS)


def test_policy_accuracy_hand_example():
    # Legal argmax: action 1 (action 0 is illegal) and action 2 (action 3 is illegal).
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    legal = torch.tensor([[F, T, T, T], [T, T, T, F]])
    target = torch.tensor([[0.0, 0.7, 0.2, 0.1], [0.6, 0.3, 0.1, 0.0]])  # most visited: 1, then 0
    legal_policy = legal_probabilities(logits, legal)
    top1, top3 = PolicyAccuracy(top_k=1), PolicyAccuracy(top_k=3)
    top1.update(legal_policy, target)
    top3.update(legal_policy, target)
    assert value(top1) == 0.5  # hit, then 0 is only the network's third legal choice
    assert value(top3) == 1.0


def test_policy_shape_metrics_hand_example():
    logits = torch.tensor([[0.0, 0.0, 5.0], [1.0, 2.0, 3.0]])
    legal = torch.tensor([[T, T, F], [F, F, T]])  # renormalised: (1/2, 1/2, 0) and (0, 0, 1)
    legal_policy = legal_probabilities(logits, legal)
    entropy, ebf, confidence, mass = PolicyEntropy(), PolicyEBF(), PolicyConfidence(), LegalMass()
    for metric in (entropy, ebf, confidence):
        metric.update(legal_policy)
    mass.update(logits, legal)
    assert value(entropy) == pytest.approx(math.log(2) / 2)
    assert value(ebf) == pytest.approx(math.sqrt(2))
    assert value(confidence) == pytest.approx(0.75)
    e = math.e
    assert value(mass) == pytest.approx((2 / (2 + e**5) + e**3 / (e + e**2 + e**3)) / 2)


def test_value_metrics_hand_example():
    v = torch.tensor([0.9, -0.65, 0.25, 0.05, 0.85])
    z = torch.tensor([1.0, 1.0, 0.0, -1.0, 0.0])
    metrics = {"mean": ValueMean(), "std": ValueStd(), "extremity": ValueExtremity()}
    for metric in metrics.values():
        metric.update(v)
    metrics |= {"confident": ValueConfidentAccuracy(), "calibration": ValueCalibrationError()}
    for name in ("confident", "calibration"):
        metrics[name].update(v, z)
    mean = (0.9 - 0.65 + 0.25 + 0.05 + 0.85) / 5
    assert value(metrics["mean"]) == pytest.approx(mean)
    variance = sum((x - mean) ** 2 for x in (0.9, -0.65, 0.25, 0.05, 0.85)) / 5
    assert value(metrics["std"]) == pytest.approx(math.sqrt(variance), rel=1e-6)
    assert value(metrics["extremity"]) == pytest.approx((0.9 + 0.65 + 0.25 + 0.05 + 0.85) / 5)
    # Confident: 0.9 (outcome 1: right), -0.65 (outcome 1: wrong), 0.85 (draw: wrong).
    assert value(metrics["confident"]) == pytest.approx(1 / 3)
    # Bins of width 0.2: [0.8, 1] holds 0.9 and 0.85 (mean 0.875, outcomes mean 0.5);
    # -0.65, 0.25 and 0.05 are alone in theirs.
    expected = (2 * 0.375 + abs(-0.65 - 1) + 0.25 + abs(0.05 + 1)) / 5
    assert value(metrics["calibration"]) == pytest.approx(expected, rel=1e-6)


def test_reliability_diagram_data():
    metric = ValueCalibrationError()
    metric.update(torch.tensor([0.9, -0.65, 0.85]), torch.tensor([1.0, 1.0, 0.0]))
    diagram = metric.reliability()
    assert diagram["bin_low"][0] == -1.0 and diagram["bin_high"][-1] == 1.0
    assert diagram["count"] == [0, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert diagram["mean_value"][9] == pytest.approx(0.875) and diagram["mean_outcome"][9] == 0.5
    assert diagram["mean_outcome"][1] == 1.0
    assert math.isnan(diagram["mean_value"][0])


def test_value_skill_hand_example():
    # Outcomes 1, 1, 0, -1: mean 1/4, so the constant predictor's MSE is their variance,
    # (9/16 + 9/16 + 1/16 + 25/16) / 4 = 11/16. The values miss by 0.5, 0, 0.5, 1: MSE 3/8.
    metric = ValueSkill()
    metric.update(torch.tensor([0.5, 1.0]), torch.tensor([1.0, 1.0]))
    metric.update(torch.tensor([-0.5, 0.0]), torch.tensor([0.0, -1.0]))
    assert value(metric) == pytest.approx(1 - (3 / 8) / (11 / 16))


def test_value_skill_of_the_constant_is_zero_and_worse_is_negative():
    outcome = torch.tensor([1.0, -1.0, 1.0, 1.0])
    constant, backwards = ValueSkill(), ValueSkill()
    constant.update(torch.full((4,), 0.5), outcome)
    backwards.update(-outcome, outcome)
    assert value(constant) == pytest.approx(0.0, abs=1e-12)
    assert value(backwards) == pytest.approx(1 - 4 / 0.75)


def test_value_skill_is_nan_when_the_outcomes_do_not_vary():
    all_won, nothing = ValueSkill(), ValueSkill()
    all_won.update(torch.tensor([0.2, 0.9]), torch.tensor([1.0, 1.0]))
    assert math.isnan(value(all_won))
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(value(nothing))


def test_value_skill_merged_across_processes_equals_the_union():
    # What a distributed sync does: every state is summed over the processes.
    generator = torch.Generator().manual_seed(3)
    v, z = torch.rand(40, generator=generator) * 2 - 1, torch.randint(-1, 2, (40,), generator=generator).float()
    first, second, union = ValueSkill(), ValueSkill(), ValueSkill()
    first.update(v[:9], z[:9])
    second.update(v[9:], z[9:])
    union.update(v, z)
    first.merge_state(second)
    assert value(first) == pytest.approx(value(union), rel=1e-12)


def test_search_value_skill_judges_the_search_value_not_the_network():
    outcome = torch.tensor([1.0, -1.0, 1.0, 1.0])
    metrics = learning_metrics()
    metrics["value_skill"].update(torch.full((4,), 0.5), outcome)
    metrics["search_value_skill"].update(search_value=-outcome, outcome=outcome)
    assert value(metrics["value_skill"]) == pytest.approx(0.0, abs=1e-12)  # the constant
    assert value(metrics["search_value_skill"]) == pytest.approx(1 - 4 / 0.75)  # as ValueSkill(-z, z)


def test_loss_terms_are_weighted_by_batch_size():
    metric = LossTerm("policy_loss")
    metric.update({"policy_loss": torch.tensor(2.0)}, batch_size=1)
    metric.update({"policy_loss": torch.tensor(5.0)}, batch_size=3)
    assert value(metric) == pytest.approx(4.25)


def test_nothing_to_average_is_nan():
    metric = ValueConfidentAccuracy()
    metric.update(torch.tensor([0.1, -0.2]), torch.tensor([1.0, -1.0]))
    assert math.isnan(value(metric))


def random_batch(generator: torch.Generator, n: int, actions: int = 897):
    legal = torch.rand(n, actions, generator=generator) < 0.05
    legal[:, 0] = True
    visits = torch.rand(n, actions, generator=generator) * legal
    samples = Samples(
        planes=torch.zeros(n, 12, 8, 7),
        legal=legal,
        policy=visits / visits.sum(1, keepdim=True),
        value=torch.randint(-1, 2, (n,), generator=generator).float(),
        difficulty=torch.rand(n, generator=generator),
        turn=torch.zeros(n, dtype=torch.int64),
        search_value=torch.rand(n, generator=generator) * 2 - 1,
    )
    output = NetworkOutput(
        policy=torch.randn(n, actions, generator=generator) * 3,
        value=torch.rand(n, generator=generator) * 2 - 1,
        difficulty_logit=torch.randn(n, generator=generator),
    )
    return output, samples


def update(metrics, loss, output, samples):
    metrics.update(
        logits=output.policy,
        legal=samples.legal,
        target_policy=samples.policy,
        value=output.value,
        outcome=samples.value,
        search_value=samples.search_value,
        losses=loss(output, samples),
        batch_size=len(samples),
    )


def test_accumulating_batches_equals_the_metric_of_their_union():
    generator = torch.Generator().manual_seed(0)
    loss = CompositeLoss(quartic=0.25)
    batches = [random_batch(generator, n) for n in (7, 50, 23)]
    accumulated, union = learning_metrics(), learning_metrics()
    for output, samples in batches:
        update(accumulated, loss, output, samples)
    union_output = NetworkOutput(*(torch.cat(parts) for parts in zip(*(output for output, _ in batches))))
    update(union, loss, union_output, Samples.cat([samples for _, samples in batches]))
    by_batches, at_once = accumulated.compute(), union.compute()
    assert set(by_batches) == set(at_once) and len(by_batches) == 19
    for name in by_batches:
        assert by_batches[name].item() == pytest.approx(at_once[name].item(), rel=1e-6, abs=1e-9), name
